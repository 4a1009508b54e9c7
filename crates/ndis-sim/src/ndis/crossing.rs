//! How the simulated Q.2931 call manager settles a network event that meets the client's own
//! request on the same party or call (a crossing): every remote DROP PARTY and RELEASE either
//! reaches the client or is absorbed by the call manager with a logged reason, never dropped
//! silently.
//!
//! Read: nf-ndis-ndiscmdispatchincomingdropparty ("the party ... must have other parties that are
//! still connected"; the last one goes with NdisCmDispatchIncomingCloseCall),
//! nf-ndis-ndiscmdispatchincomingclosecall, nc-ndis-protocol_cl_incoming_drop_party,
//! nc-ndis-protocol_cl_incoming_close_call, nc-ndis-protocol_cl_add_party_complete,
//! nc-ndis-protocol_cl_make_call_complete; atm-call-params.md §8 (endpoint states), §10 (how the CM
//! reports drops and releases).
//!
//! Flow: [`remote_drop`] and [`remote_release`] decide, under the state lock, what a DROP PARTY or
//! RELEASE from the network becomes for the party or call in the state the call manager sees it
//! in, make the state change, and return a [`Fate`] that the delivery code in [`super::party`] and
//! [`super::call`] carries out and logs:
//!
//! | network event | party / call as the CM sees it | what the client sees |
//! |---|---|---|
//! | DROP PARTY | connected, others stay | ProtocolClIncomingDropParty |
//! | DROP PARTY | connected, the last that stays | ProtocolClIncomingCloseCall |
//! | DROP PARTY | ADD PARTY sent, no ACK yet | ProtocolClAddPartyComplete(failure): an ADD PARTY REJECT, not a drop |
//! | DROP PARTY | first leaf of a SETUP not yet connected | ProtocolClMakeCallComplete(failure) |
//! | DROP PARTY | the client's DROP PARTY under way | nothing more: both are acknowledged, the client's NdisClDropParty completes |
//! | DROP PARTY | the client's RELEASE of the call under way | nothing more: the party goes with the call |
//! | DROP PARTY | already dropped by the network, or cleared | nothing (a repeat; DROP PARTY ACK, cause 89) |
//! | RELEASE | call active | ProtocolClIncomingCloseCall; pending ADD PARTYs fail |
//! | RELEASE | SETUP not yet connected | ProtocolClMakeCallComplete(failure) |
//! | RELEASE | the client's RELEASE under way (clear collision) | nothing more: the client's NdisClCloseCall completes |
//! | RELEASE | already released, or no call | nothing (a repeat, or RELEASE COMPLETE) |
//!
//! A rejected ADD PARTY or a cleared SETUP is kept here until its completion is delivered
//! ([`take_add_rejected`], [`take_setup_cleared`]), which then completes with the failure.

use std::collections::BTreeSet;

use ndis_sys::NDIS_STATUS_SUCCESS;

use super::callmgr::reject_status;
use super::parties::PartyState;
use super::vc::VcState;
use super::{State, Work};
use crate::fast_hash::FastMap;

/// What the call manager does with a network event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// ProtocolClIncomingDropParty for the party (its context).
    IncomingDropParty { context: usize },
    /// ProtocolClIncomingCloseCall for the call (its VC context).
    IncomingCloseCall { context: usize },
    /// The pending NdisClAddParty will complete with this failure (ADD PARTY REJECT).
    AddPartyRejected { status: i32 },
    /// The pending NdisClMakeCall will complete with this failure (the SETUP is cleared).
    SetupCleared { vc: u64, status: i32 },
    /// Nothing reaches the client; why, for the log.
    Absorbed(&'static str),
}

impl Fate {
    /// The call manager's log line for this fate (`None`: the usual dispatch, logged by the
    /// callback itself).
    pub fn reason(self) -> Option<String> {
        match self {
            Fate::IncomingDropParty { .. } | Fate::IncomingCloseCall { .. } => None,
            Fate::AddPartyRejected { status } => Some(format!(
                "ADD PARTY REJECT ({}): the leaf cleared before its ADD PARTY ACKNOWLEDGE; NdisClAddParty \
                 completes with it, no incoming drop",
                super::StatusName(status)
            )),
            Fate::SetupCleared { status, .. } => Some(format!(
                "the network clears the SETUP before CONNECT; NdisClMakeCall completes with {}",
                super::StatusName(status)
            )),
            Fate::Absorbed(why) => Some(why.to_owned()),
        }
    }
}

/// What the call manager keeps about crossings until the completion they change is delivered,
/// and what the client was told.
#[derive(Default)]
pub(crate) struct Crossings {
    /// Pending adds the network cleared before their acknowledgement: party -> (status, cause).
    add_rejected: FastMap<u64, (i32, u8)>,
    /// Pending MakeCalls whose SETUP the network cleared: VC -> (status, cause).
    setup_cleared: FastMap<u64, (i32, u8)>,
    /// VCs closed by the client after a ProtocolClIncomingCloseCall with a failure status: the
    /// client must delete them (nc-ndis-protocol_cl_incoming_close_call).
    must_delete: BTreeSet<u64>,
}

impl Crossings {
    /// VCs that must be deleted, by id.
    pub fn must_delete(&self) -> impl Iterator<Item = u64> + '_ {
        self.must_delete.iter().copied()
    }

    /// Forgets the VCs of [`Crossings::must_delete`] that were deleted (the set stays as small
    /// as the VCs still owed a delete).
    pub fn forget_deleted(&mut self, vcs: &std::collections::BTreeMap<u64, super::vc::Vc>) {
        self.must_delete.retain(|id| vcs.get(id).is_some_and(|vc| !vc.deleted));
    }

    /// Records that the client closed `vc` after an IncomingCloseCall with `status`.
    pub fn closed_after_release(&mut self, vc: u64, status: Option<i32>) {
        if status.is_some_and(|s| s != NDIS_STATUS_SUCCESS) {
            self.must_delete.insert(vc);
        }
    }
}

/// The failure a cleared request completes with: a normal clearing (SUCCESS, cause 16) is still
/// a failure for the request it ends.
fn failure(status: i32, cause: u8) -> i32 {
    if status == NDIS_STATUS_SUCCESS {
        reject_status(cause)
    } else {
        status
    }
}

/// The ADD PARTY REJECT that replaces party `party`'s pending completion, if the network cleared
/// it (taken: asked once, when the completion settles the party).
pub(crate) fn take_add_rejected(state: &mut State, party: u64) -> Option<(i32, u8)> {
    state.crossings.add_rejected.remove(&party)
}

/// The failure that replaces call `vc`'s pending MakeCall completion, if the network cleared its
/// SETUP (taken, as [`take_add_rejected`]).
pub(crate) fn take_setup_cleared(state: &mut State, vc: u64) -> Option<(i32, u8)> {
    state.crossings.setup_cleared.remove(&vc)
}

/// The queued completion that `is` picks is due now: the network's answer arrived, and the call
/// manager completes the request without waiting for the leaf's own answer time (rare: one scan
/// of the queue per crossing).
fn hasten(state: &mut State, now: u64, is: impl Fn(&Work) -> bool) {
    let Some(key) = state.queue.iter().find(|(_, (_, work))| is(work)).map(|(key, _)| *key) else { return };
    if key.0 > now {
        if let Some((on, work)) = state.queue.remove(&key) {
            state.schedule_on(now, 0, on, work);
        }
    }
}

/// Every pending add of call `vc` fails: the network released the call, and the parties go with
/// it (a pending ADD PARTY cannot outlive its call).
fn reject_pending_adds(state: &mut State, vc: u64, status: i32, cause: u8) {
    for party in state.parties.add_pending_ids(vc) {
        state.crossings.add_rejected.insert(party, (failure(status, cause), cause));
    }
}

/// A DROP PARTY from the network for `party` (`status` SUCCESS: the leaf hung up; else the CM
/// detected a failure, UNI `cause`): what the call manager does with it.
pub(crate) fn remote_drop(state: &mut State, now: u64, party: u64, status: i32, cause: u8) -> Fate {
    let Some(p) = state.parties.get(party) else {
        return Fate::Absorbed("DROP PARTY for an endpoint reference never used: DROP PARTY ACK, cause 89");
    };
    let (vc, context, party_state) = (p.vc, p.context, p.state());
    let (vc_state, released, vc_context) = match state.vcs.get(&vc) {
        Some(entry) if !entry.deleted => (entry.state, entry.incoming_close.is_some(), entry.context),
        _ => return Fate::Absorbed("DROP PARTY on a call that is gone: DROP PARTY ACK, cause 89"),
    };
    match party_state {
        PartyState::Gone => Fate::Absorbed(
            "DROP PARTY for a party already cleared: DROP PARTY ACK, cause 89; nothing for the client",
        ),
        PartyState::IncomingDropped { .. } => Fate::Absorbed(
            "DROP PARTY repeated for a party the network already dropped: the client's NdisClDropParty is \
             still owed; nothing more for the client",
        ),
        PartyState::DropPending => {
            state.counters.crossings_absorbed += 1;
            Fate::Absorbed(
                "DROP PARTY crosses the client's DROP PARTY: the call manager acknowledges both; the \
                 client's NdisClDropParty completes, no incoming drop",
            )
        }
        PartyState::AddPending if vc_state == VcState::MakeCallPending => {
            let failed = failure(status, cause);
            state.crossings.setup_cleared.insert(vc, (failed, cause));
            hasten(state, now, |work| matches!(work, Work::MakeCallComplete { vc: v, .. } if *v == vc));
            state.counters.crossings_absorbed += 1;
            Fate::SetupCleared { vc, status: failed }
        }
        PartyState::AddPending => {
            let failed = failure(status, cause);
            state.crossings.add_rejected.insert(party, (failed, cause));
            hasten(state, now, |work| matches!(work, Work::AddPartyComplete { party: p, .. } if *p == party));
            state.counters.crossings_absorbed += 1;
            Fate::AddPartyRejected { status: failed }
        }
        PartyState::Connected => match vc_state {
            VcState::Closing => {
                state.counters.crossings_absorbed += 1;
                Fate::Absorbed(
                    "DROP PARTY crosses the client's RELEASE of the call: the party goes with the call; \
                     the client's NdisClCloseCall completes",
                )
            }
            VcState::Active if released => Fate::Absorbed(
                "DROP PARTY on a call the network already released: the party goes with the call \
                 (NdisClCloseCall still owed)",
            ),
            VcState::Active => {
                // The parties that stay: those already leaving (dropped by the network and not
                // yet answered, or being dropped) do not keep the call up, so when only they are
                // left the network releases the call (IncomingCloseCall), as UNI clears a call
                // that loses its last party (nf-ndis-ndiscmdispatchincomingdropparty). This party
                // is Connected, so it is one of the call's staying parties.
                let others = state.parties.of_call(vc).staying() - 1;
                state.counters.parties_dropped_remotely += 1;
                if others > 0 {
                    state.parties.set_state(party, PartyState::IncomingDropped { status }).expect("party");
                    Fate::IncomingDropParty { context }
                } else {
                    state.set_incoming_close(vc, Some(status));
                    reject_pending_adds(state, vc, status, cause);
                    Fate::IncomingCloseCall { context: vc_context }
                }
            }
            VcState::Idle | VcState::MakeCallPending | VcState::Closed => {
                Fate::Absorbed("DROP PARTY on a VC with no call: DROP PARTY ACK, cause 89")
            }
        },
    }
}

/// A RELEASE from the network for call `vc` with `status` (SUCCESS: the remote side released):
/// what the call manager does with it.
pub(crate) fn remote_release(state: &mut State, now: u64, vc: u64, status: i32) -> Fate {
    let (vc_state, released, context) = match state.vcs.get(&vc) {
        Some(entry) if !entry.deleted => (entry.state, entry.incoming_close.is_some(), entry.context),
        _ => {
            return Fate::Absorbed("RELEASE for a VC that is gone: RELEASE COMPLETE; nothing for the client")
        }
    };
    let cause = if status == NDIS_STATUS_SUCCESS { 16 } else { 27 };
    match vc_state {
        VcState::Active if released => Fate::Absorbed(
            "RELEASE repeated for a call the network already released: NdisClCloseCall is still owed; \
             nothing more for the client",
        ),
        VcState::Active => {
            state.set_incoming_close(vc, Some(status));
            state.counters.remote_releases += 1;
            reject_pending_adds(state, vc, status, cause);
            Fate::IncomingCloseCall { context }
        }
        VcState::MakeCallPending => {
            let failed = failure(status, cause);
            state.crossings.setup_cleared.insert(vc, (failed, cause));
            hasten(state, now, |work| matches!(work, Work::MakeCallComplete { vc: v, .. } if *v == vc));
            state.counters.crossings_absorbed += 1;
            Fate::SetupCleared { vc, status: failed }
        }
        VcState::Closing => {
            state.counters.crossings_absorbed += 1;
            Fate::Absorbed(
                "RELEASE crosses the client's RELEASE (clear collision): the call manager completes the \
                 client's NdisClCloseCall; no IncomingCloseCall",
            )
        }
        VcState::Idle | VcState::Closed => {
            Fate::Absorbed("RELEASE for a VC with no call: RELEASE COMPLETE; nothing for the client")
        }
    }
}
