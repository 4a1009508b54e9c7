//! Parties of a point-to-multipoint call: NdisClAddParty and NdisClDropParty, and the network's
//! drop of a leaf (ProtocolClIncomingDropParty), with the delivery of each completion they queue.
//!
//! Read: nf-ndis-ndiscladdparty, nf-ndis-ndiscldropparty, nc-ndis-protocol_cl_incoming_drop_party;
//! condis-reference.md §6; verifier-rules.md §7.8.
//!
//! Flow: an AddParty is validated against the call's SETUP and the call manager's limits and
//! answered at once or pended; a pended one is completed by [`deliver_add_party_complete`]
//! (Work::AddPartyComplete), which settles the party, writes NdisPartyHandle and calls
//! ProtocolClAddPartyComplete. A pended drop is completed by [`deliver_drop_party_complete`]; the
//! network drops a leaf with [`deliver_remote_drop`] (the last staying one releases the call).

use std::ffi::c_void;
use std::sync::Arc;

use ndis_sys::*;

use super::call::incoming_close;
use super::callmgr::{self, AtmAddr};
use super::condis::{
    check_parameters, client, mark_parameters_changed, outcome_and_failure_in, reject_parameters_reported,
    render_incoming, render_result, render_status_context, CALL_MANAGER, NETWORK,
};
use super::crossing::Fate;
use super::out_param::{self, When};
use super::params::{self, Parsed, Snapshot};
use super::parties::{AddressKey, Party, PartyState};
use super::vc::{live_vc_in, VcState};
use super::{
    call_driver, decode, driver_call, fmt_shown, handle, log_lazy, pend, rules, shown, violation, Kind,
    Logged, Ndis, Outcome, State, StatusName, Work,
};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{Call, Irql, World, DISPATCH_LEVEL};

/// Registers the party exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ndis.sys", NdisClAddParty = ndis_cl_add_party);
    export!(table, "ndis.sys", NdisClDropParty = ndis_cl_drop_party);
}

/// `NdisClAddParty`: <= DISPATCH; only on an active multipoint call of this client.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscladdparty>
unsafe extern "win64" fn ndis_cl_add_party(
    vc_handle: NDIS_HANDLE,
    party_context: NDIS_HANDLE,
    call_parameters: *mut CO_CALL_PARAMETERS,
    party_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const DDI: Ddi = Ddi::ndis(
        "NdisClAddParty",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let state = ndis.state();
            let [v0, v1, v2] = shown(&state, vc_handle as usize);
            let [p0, p1, p2] = shown(&state, call_parameters as usize);
            let words = [v0, v1, v2, party_context as u64, p0, p1, p2, party_handle as u64];
            log_lazy(world, processor, &CALL, &words, |a, f| {
                f.write_str("(")?;
                fmt_shown(a, 0, f)?;
                write!(f, ", {:#x}, ", a.word(3))?;
                fmt_shown(a, 4, f)?;
                write!(f, ", {:#x})", a.word(7))
            });
        })
    };
    // The whole request under one lock of the tables (nothing below calls into the driver, and
    // log entries and reports take locks of their own), released before a pended completion is
    // handed on.
    let mut guard = ndis.state();
    let state = &mut *guard;
    let Some(vc) = live_vc_in(state, vc_handle) else {
        violation(world, rules::VC_HANDLE_INVALID, EXPORT, "VC handle was deleted or never given");
        return NDIS_STATUS_FAILURE;
    };
    super::pnp::check_new_setup(world, state, vc, EXPORT);
    if party_context.is_null() || party_handle.is_null() || call_parameters.is_null() {
        violation(
            world,
            rules::NULL_ARGUMENT,
            EXPORT,
            "NULL ProtocolPartyContext, CallParameters or NdisPartyHandle",
        );
        return NDIS_STATUS_FAILURE;
    }
    let (vc_state, multipoint, closing, adapter) = {
        let entry = &state.vcs[&vc];
        let adapter = state.bindings.get(&entry.binding).map_or(0, |b| b.adapter);
        (entry.state, entry.multipoint, entry.incoming_close.is_some(), adapter)
    };
    if vc_state == VcState::Active && multipoint && closing {
        // The network released the call and its IncomingCloseCall may not have reached the client
        // yet (it can be running on another processor right now): the client could not know.
        // A call manager refuses the request; that is no rule broken.
        world.log_call(
            processor,
            "sim",
            "CallManager",
            format!("Vc#{vc} is being released: ADD PARTY refused"),
        );
        return NDIS_STATUS_FAILURE;
    }
    if vc_state != VcState::Active || !multipoint {
        violation(
            world,
            rules::ADD_PARTY_NOT_MULTIPOINT_ACTIVE,
            EXPORT,
            format!("Vc#{vc} is {vc_state:?}, multipoint {multipoint}"),
        );
        return NDIS_STATUS_FAILURE;
    }
    // Into the buffer of the last synchronous AddParty's snapshot (given back below).
    let buffer = std::mem::take(&mut state.snapshot_buffer);
    // SAFETY: non-NULL; NDIS requires the parameters to be readable for the whole request.
    let snapshot = match unsafe { params::snapshot_into(&state.pool, call_parameters as usize, buffer) } {
        Ok(snapshot) => snapshot,
        Err(what) => {
            violation(world, rules::CALL_PARAMETERS_INVALID, EXPORT, what);
            return NDIS_STATUS_INVALID_DATA;
        }
    };
    let (answer, address) = add_party_answer(world, processor, state, vc, adapter, &snapshot);
    let (outcome, fail) = outcome_and_failure_in(world, state, answer.min_delay, Some(EXPORT));
    let (status, cause) = if fail && answer.status == NDIS_STATUS_SUCCESS {
        (NDIS_STATUS_RESOURCES, 47)
    } else {
        (answer.status, answer.cause)
    };
    let party = state.new_id();
    // Only a pended completion checks the parameters again; a synchronous answer settles the
    // party below, and never needs them.
    let params = if outcome == Outcome::Synchronous {
        state.snapshot_buffer = snapshot.into_bytes();
        None
    } else {
        Some(snapshot)
    };
    let mut new =
        Party::new(vc, party_context as usize, PartyState::AddPending, address, params, answer.leave);
    new.handle_out = party_handle as usize;
    new.changed = answer.changed;
    state.parties.insert(party, new);
    let result = if outcome == Outcome::Synchronous {
        if add_party_settled_in(world, state, party, status, cause) == NDIS_STATUS_SUCCESS {
            mark_parameters_changed(world, processor, state, party, call_parameters as usize);
        }
        write_add_party_handle(world, state, party, party_handle as usize, status, When::Return);
        drop(guard);
        status
    } else {
        drop(guard);
        pend(world, ndis, processor, outcome, Work::AddPartyComplete { party, status, cause })
    };
    log_lazy(world, processor, &CALL, &[result as u64, party], |a, f| {
        write!(f, "-> {} (Pt#{})", StatusName(a.word(0) as i32), a.word(1))
    });
    result
}

/// The call manager's answer to an ADD PARTY on `vc` (of adapter `adapter`), and the leaf's
/// address: the parameters checked against the call's SETUP, then the call manager's limits
/// (the leaf already on the call, too many leaves, too many pending adds), then the network.
fn add_party_answer(
    world: &World,
    processor: usize,
    state: &State,
    vc: u64,
    adapter: usize,
    snapshot: &Snapshot,
) -> (callmgr::Answer, AddressKey) {
    let no_setup;
    let setup = match &state.vcs[&vc].setup {
        Some(setup) => &**setup,
        None => {
            no_setup = Parsed::default();
            &no_setup
        }
    };
    match params::validate_add_party(snapshot, setup) {
        Ok(parsed) => {
            let address = AddressKey::of_leaf(parsed);
            let on_call = state.parties.of_call(vc);
            let duplicate = on_call.has_address(&address);
            let pending_adds = on_call.add_pending() as u32;
            let leaves = on_call.alive() as u32;
            let behaviour = state
                .config
                .adapters
                .get(adapter)
                .map(|a| a.behaviour_of_leaf(parsed))
                .unwrap_or(callmgr::Behaviour::Accept);
            let config = &state.config.call_manager;
            let cm_reject =
                |cause: u8, why: &str| callmgr::Answer::rejected(cause).with_log(world, processor, why);
            if duplicate {
                cm_reject(21, "the leaf is already on this call")
            } else if config.max_leaves > 0 && leaves >= config.max_leaves {
                cm_reject(47, "too many leaves")
            } else if config.max_pending_adds > 0 && pending_adds >= config.max_pending_adds {
                cm_reject(92, "too many pending ADD PARTY requests")
            } else {
                callmgr::answer(&behaviour)
            }
            .with_address(address)
        }
        Err(reject) => {
            let report = state.config.call_manager.report_invalid_parameters;
            reject_parameters_reported(world, report, processor, "NdisClAddParty", &reject);
            (callmgr::Answer::rejected(reject.cause), AddressKey::of(&AtmAddr::default()))
        }
    }
}

trait AnswerExt: Sized {
    fn with_log(self, world: &World, processor: usize, why: &str) -> Self;
    fn with_address(self, address: AddressKey) -> (Self, AddressKey) {
        (self, address)
    }
}

impl AnswerExt for callmgr::Answer {
    fn with_log(self, world: &World, processor: usize, why: &str) -> Self {
        world.log_call(
            processor,
            "sim",
            "CallManager",
            format!("ADD PARTY rejected: UNI cause {} ({why})", self.cause),
        );
        self
    }
}

/// Settles party `party`'s add with `status` (UNI `cause` if it failed), unless the network
/// cleared the party while the add was pending ([`super::crossing`]): then it fails with that
/// ADD PARTY REJECT. Returns the status the add completes with.
fn add_party_settled(world: &World, ndis: &Ndis, party: u64, status: i32, cause: u8) -> i32 {
    add_party_settled_in(world, &mut ndis.state(), party, status, cause)
}

/// [`add_party_settled`] with the state already locked.
fn add_party_settled_in(world: &World, state: &mut State, party: u64, status: i32, cause: u8) -> i32 {
    let now = world.now();
    let rejected = super::crossing::take_add_rejected(state, party);
    let (status, cause) = match rejected {
        Some(rejected) if status == NDIS_STATUS_SUCCESS => rejected,
        _ => (status, cause),
    };
    let Some(leave) = state.parties.get(party).map(|p| p.leave) else { return status };
    // Checked by now (a completion checks them before settling): the party need not keep them.
    state.parties.take_params(party);
    if status == NDIS_STATUS_SUCCESS {
        state.parties.set_state(party, PartyState::Connected);
        state.counters.parties_added += 1;
        if let Some((ticks, status, cause)) = leave {
            state.schedule(now, ticks, Work::RemoteDrop { party, status, cause });
        }
    } else {
        state.parties.set_state(party, PartyState::Gone);
        state.counters.parties_rejected += 1;
        world.log_lazy(0, &CALL_MANAGER, &[party, status as u64, u64::from(cause)], |a, f| {
            let status = StatusName(a.word(1) as i32);
            write!(f, "Pt#{} ADD PARTY failed: {status} (UNI cause {})", a.word(0), a.word(2))
        });
    }
    status
}

/// `NdisClDropParty`: <= DISPATCH; the handle is dead from this call on; never the last party
/// (use NdisClCloseCall); not before the party's AddParty completed.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscldropparty>
extern "win64" fn ndis_cl_drop_party(
    party_handle: NDIS_HANDLE,
    buffer: *mut c_void,
    size: u32,
) -> NDIS_STATUS {
    const DDI: Ddi = Ddi::ndis(
        "NdisClDropParty",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_PROTOCOL_DRIVER_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    const CALL: Call = DDI.call();
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe {
        ddi::enter::<Ndis>(&DDI, |world, processor, ndis| {
            let [h0, h1, h2] = shown(&ndis.state(), party_handle as usize);
            log_lazy(world, processor, &CALL, &[h0, h1, h2, buffer as u64, u64::from(size)], |a, f| {
                f.write_str("(")?;
                fmt_shown(a, 0, f)?;
                write!(f, ", {:#x}, {})", a.word(3), a.word(4))
            });
        })
    };
    if buffer.is_null() && size != 0 {
        // nf-ndis-ndiscldropparty: Size is "zero if Buffer is NULL".
        violation(world, rules::DROP_PARTY_BUFFER_SIZE, EXPORT, format!("Buffer is NULL but Size is {size}"));
    }
    // The whole request under one lock of the tables (see NdisClAddParty).
    let mut guard = ndis.state();
    let state = &mut *guard;
    let id = decode(Kind::Party, party_handle as usize);
    let found = {
        id.and_then(|id| state.parties.get(id)).map(|p| {
            // The call's other parties that are neither gone nor being dropped by the client.
            let counted = !matches!(p.state(), PartyState::Gone | PartyState::DropPending);
            let others = state.parties.of_call(p.vc).not_drop_pending() - usize::from(counted);
            (p.state(), others)
        })
    };
    let (party_state, others) = match found {
        None | Some((PartyState::Gone | PartyState::DropPending, _)) => {
            violation(
                world,
                rules::PARTY_HANDLE_AFTER_DROP,
                EXPORT,
                "party handle was dropped, closed, failed, or never given",
            );
            return NDIS_STATUS_FAILURE;
        }
        Some(found) => found,
    };
    let id = id.unwrap_or_default();
    if party_state == PartyState::AddPending {
        violation(
            world,
            rules::DROP_BEFORE_ADD_COMPLETE,
            EXPORT,
            format!("Pt#{id}: its NdisClAddParty has not completed"),
        );
        return NDIS_STATUS_FAILURE;
    }
    // Answering the call manager's own IncomingDropParty with NdisClDropParty is what
    // nc-ndis-protocol_cl_incoming_drop_party requires, even if the parties that kept the call up
    // when it was dispatched (pending adds) have failed since: the last-party rule applies to
    // drops the client starts.
    let answering_incoming_drop = matches!(party_state, PartyState::IncomingDropped { .. });
    if others == 0 && !answering_incoming_drop {
        violation(
            world,
            rules::DROP_LAST_PARTY,
            EXPORT,
            format!("Pt#{id} is the last party of its call: use NdisClCloseCall"),
        );
        return NDIS_STATUS_FAILURE;
    }
    let (outcome, _) = outcome_and_failure_in(world, state, 0, None);
    let next = if outcome == Outcome::Synchronous { PartyState::Gone } else { PartyState::DropPending };
    state.parties.set_state(id, next).expect("party");
    if party_state == PartyState::Connected {
        state.counters.parties_dropped_locally += 1;
    }
    drop(guard);
    let status = if outcome == Outcome::Synchronous {
        NDIS_STATUS_SUCCESS
    } else {
        pend(
            world,
            ndis,
            processor,
            outcome,
            Work::DropPartyComplete { party: id, status: NDIS_STATUS_SUCCESS },
        )
    };
    log_lazy(world, processor, &CALL, &[status as u64], render_result);
    status
}

/// Writes NdisClAddParty's NdisPartyHandle, "a variable to be set by NDIS if the add-party
/// operation succeeds" (nf-ndis-ndiscladdparty): on success only, before the request returns, or,
/// if it pended, just before ProtocolClAddPartyComplete (the latest legal moment: the page does
/// not say when).
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscladdparty>
fn write_add_party_handle(world: &World, state: &State, party: u64, out: usize, status: i32, when: When) {
    if status == NDIS_STATUS_SUCCESS && out != 0 {
        let value = handle(Kind::Party, party) as NDIS_HANDLE;
        out_param::write(world, &state.pool, "NdisClAddParty", "NdisPartyHandle", out, value, when);
    }
}

/// Work::AddPartyComplete: a pended NdisClAddParty completes (ProtocolClAddPartyComplete), the
/// parameters checked again and NdisPartyHandle written just before.
pub(super) fn deliver_add_party_complete(
    world: &Arc<World>,
    ndis: &Ndis,
    party: u64,
    status: i32,
    cause: u8,
    processor: usize,
    irql: Irql,
) {
    let Some(client) = client(ndis) else { return };
    let (context, snapshot, out) = {
        let mut state = ndis.state();
        let Some((context, out)) = state.parties.get(party).map(|p| (p.context, p.handle_out)) else {
            return;
        };
        (context, state.parties.take_params(party), out)
    };
    if let Some(snapshot) = &snapshot {
        check_parameters(world, ndis, snapshot, "ProtocolClAddPartyComplete");
    }
    let status = add_party_settled(world, ndis, party, status, cause);
    let parameters = snapshot.map_or(0, |s| s.address);
    if status == NDIS_STATUS_SUCCESS {
        mark_parameters_changed(world, processor, &mut ndis.state(), party, parameters);
    }
    write_add_party_handle(world, &ndis.state(), party, out, status, When::Completion);
    let party_handle = if status == NDIS_STATUS_SUCCESS { handle(Kind::Party, party) } else { 0 };
    if let Some(complete) = client.ClAddPartyCompleteHandler {
        call_driver(
            world,
            ndis,
            processor,
            irql,
            Logged::Lazy(
                const { &driver_call("ProtocolClAddPartyComplete") },
                &[status as u64, context as u64, party, parameters as u64],
                |a, f| {
                    let status = StatusName(a.word(0) as i32);
                    write!(f, "({status}, {:#x}, Pt#{}, {:#x})", a.word(1), a.word(2), a.word(3))
                },
            ),
            || {
                // SAFETY: the driver's ProtocolClAddPartyComplete at <= DISPATCH.
                unsafe {
                    complete(
                        status,
                        context as NDIS_HANDLE,
                        party_handle as NDIS_HANDLE,
                        parameters as *mut CO_CALL_PARAMETERS,
                    )
                }
            },
        );
    }
}

/// Work::DropPartyComplete: a pended NdisClDropParty completes (ProtocolClDropPartyComplete).
pub(super) fn deliver_drop_party_complete(
    world: &Arc<World>,
    ndis: &Ndis,
    party: u64,
    status: i32,
    processor: usize,
    irql: Irql,
) {
    let Some(client) = client(ndis) else { return };
    let context = {
        let mut state = ndis.state();
        let Some(context) = state.parties.get(party).map(|p| p.context) else { return };
        state.parties.set_state(party, PartyState::Gone);
        context
    };
    if let Some(complete) = client.ClDropPartyCompleteHandler {
        call_driver(
            world,
            ndis,
            processor,
            irql,
            Logged::Lazy(
                const { &driver_call("ProtocolClDropPartyComplete") },
                &[status as u64, context as u64],
                render_status_context,
            ),
            || {
                // SAFETY: the driver's ProtocolClDropPartyComplete at <= DISPATCH.
                unsafe { complete(status, context as NDIS_HANDLE) }
            },
        );
    }
}

/// Work::RemoteDrop: the network drops a leaf. What the client sees depends on where the party
/// is ([`super::crossing::remote_drop`]): ProtocolClIncomingDropParty, ProtocolClIncomingCloseCall
/// when it was the call's last staying party, a failed completion of its pending add, or nothing
/// (absorbed by the call manager, with the reason logged).
pub(super) fn deliver_remote_drop(
    world: &Arc<World>,
    ndis: &Ndis,
    party: u64,
    status: i32,
    cause: u8,
    processor: usize,
    irql: Irql,
) {
    let Some(client) = client(ndis) else { return };
    let fate = super::crossing::remote_drop(&mut ndis.state(), world.now(), party, status, cause);
    world.log_lazy(processor, &NETWORK, &[party, u64::from(cause), status as u64], |a, f| {
        write!(f, "Pt#{} leaves: UNI cause {}, {}", a.word(0), a.word(1), StatusName(a.word(2) as i32))
    });
    if let Some(reason) = fate.reason() {
        world.log_call(processor, "sim", "CallManager", format!("Pt#{party}: {reason}"));
    }
    match fate {
        Fate::IncomingDropParty { context } => {
            if let Some(incoming) = client.ClIncomingDropPartyHandler {
                call_driver(
                    world,
                    ndis,
                    processor,
                    irql,
                    Logged::Lazy(
                        const { &driver_call("ProtocolClIncomingDropParty") },
                        &[status as u64, context as u64],
                        render_incoming,
                    ),
                    || {
                        // SAFETY: the driver's ProtocolClIncomingDropParty at <= DISPATCH.
                        unsafe { incoming(status, context as NDIS_HANDLE, std::ptr::null_mut(), 0) }
                    },
                );
            }
        }
        Fate::IncomingCloseCall { context } => {
            incoming_close(world, ndis, &client, processor, irql, status, context)
        }
        Fate::AddPartyRejected { .. } | Fate::SetupCleared { .. } | Fate::Absorbed(_) => {}
    }
}
