//! An address family's own ATM address, learned from the call manager: the calling party of
//! every SETUP and ADD PARTY on the AF.
//!
//! Pages: oid-co-address-change ("The call manager also sends OID_CO_ADDRESS_CHANGE to a client
//! immediately after the client opens an address family"; after it "the client must then send
//! an OID_CO_GET_ADDRESSES query"), oid-co-get-addresses, nf-ndis-ndiscooidrequest (a failure
//! such as NDIS_STATUS_RESOURCES or a too-short buffer is recoverable: resubmit),
//! nc-ndis-protocol_co_oid_request; atm-call-params.md §3 (CallingParty: the client's own
//! registered ATM address).
//!
//! Flow: ProtocolCoOidRequest(OID_CO_ADDRESS_CHANGE) → [`Engine::on_address_change`] marks the
//! query needed and queues the AF; [`Engine::poll`] turns that into
//! [`Action::QueryAddresses`] once the AF is open (never while it closes); the answer comes back
//! through [`Engine::on_addresses_queried`] (synchronously or from ProtocolCoOidRequestComplete).
//! A change that arrives while a query is out is queried again when it completes.
//!
//! Calls asked for before the AF knows its address are held before anything reaches NDIS (no VC
//! is created) and go on when the address arrives; when the AF closes first they are released
//! with NDIS_STATUS_CLOSING like any call that never reached NDIS. A failed query is retried
//! [`MAX_ATTEMPTS`] times per change (a too-short buffer with the `BytesNeeded` the call manager
//! gave, up to [`crate::addresses::MAX_LENGTH`]), then counted in `address_query_failures`. An AF
//! that never learned an address then fails its held and new calls with
//! NDIS_STATUS_INVALID_ADDRESS (counted in `calls_failed`) until the next change; one that knew
//! an address keeps calling from it (the pages do not say; the call manager refuses a SETUP
//! whose calling party it no longer registers, which is a failure the call already handles).
//! So an AF's address, once known, is never lost, and a call past NeedVc always has one. An
//! AF's close waits for a query that is out: the completion names the AF's context, which must
//! stay valid until then.

use super::{Action, AfState, CallState, Engine, Error, ObjectKind, Result};
use crate::addresses::{INITIAL_LENGTH, MAX_LENGTH};
use crate::list::NIL;
use crate::model::{AtmAddress, Handle, Status};
use crate::slab::Id;

/// Queries made per address change before the AF is left without an address.
pub const MAX_ATTEMPTS: u8 = 3;

/// Where an AF's OID_CO_GET_ADDRESSES query stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Query {
    /// Nothing to ask.
    Idle,
    /// OID_CO_ADDRESS_CHANGE arrived: query when the AF is open.
    Needed,
    /// The query is out.
    InFlight,
    /// The query is out and another change arrived meanwhile: query again when it completes.
    InFlightStale,
}

/// An AF's own address and its query.
#[derive(Clone, Copy, Debug)]
pub struct LocalAddress {
    address: Option<AtmAddress>,
    query: Query,
    /// Failed queries since the last change.
    attempts: u8,
    /// Information buffer to ask with.
    length: u32,
    /// The AF never learned an address and the last change's queries all failed: calls fail
    /// until the next change.
    unavailable: bool,
}

impl LocalAddress {
    pub(super) const NONE: LocalAddress = LocalAddress {
        address: None,
        query: Query::Idle,
        attempts: 0,
        length: INITIAL_LENGTH,
        unavailable: false,
    };
}

impl Engine {
    /// ProtocolCoOidRequest with OID_CO_ADDRESS_CHANGE for `af` (answered NDIS_STATUS_SUCCESS by
    /// the glue). Legal while the open is still completing: the call manager sends it right after
    /// its side of the open, which may overtake ProtocolClOpenAfCompleteEx.
    pub fn on_address_change(&mut self, af: Id) -> Result {
        let Some(entry) = self.afs.get_mut(af) else {
            return self.reject(ObjectKind::Af, Some(af), Error::UnknownId(ObjectKind::Af));
        };
        if !matches!(entry.state, AfState::Opening | AfState::Open { .. }) {
            // Closing: no call will be made on it; nothing to learn. The call manager may send a
            // change at any time the AF is open in NDIS (oid-co-address-change), so one that
            // crosses the close (an unbind, a close-AF) is declined, not counted as a refusal of
            // an invalid event (found by the 10^6-seed run: low-resources seed 6663, schedule
            // seed 72252).
            return Err(Error::Closing);
        }
        let local = &mut entry.local;
        local.attempts = 0;
        local.length = INITIAL_LENGTH;
        local.query = match local.query {
            Query::InFlight | Query::InFlightStale => Query::InFlightStale,
            Query::Idle | Query::Needed => Query::Needed,
        };
        self.push_af_work(af);
        Ok(())
    }

    /// The AF's current own address, if known.
    pub fn local_address(&self, af: Id) -> Option<AtmAddress> {
        self.afs.get(af)?.local.address
    }

    /// Whether `af`'s query is out (the AF may not close before it completes).
    pub(super) fn address_query_out(&self, af: Id) -> bool {
        self.afs.get(af).is_some_and(|a| matches!(a.local.query, Query::InFlight | Query::InFlightStale))
    }

    /// A needed query for an open AF, its in-flight state recorded ([`Engine::poll`]).
    pub(super) fn address_action(&mut self, af: Id) -> Option<Action> {
        let binding = self.afs.get(af)?.binding;
        let binding = self.binding_handle(binding).unwrap_or(Handle::NULL);
        let entry = self.afs.get_mut(af)?;
        let AfState::Open { handle } = entry.state else { return None };
        if entry.local.query != Query::Needed {
            return None;
        }
        entry.local.query = Query::InFlight;
        self.counters.address_queries += 1;
        Some(Action::QueryAddresses { af, binding, handle, length: entry.local.length })
    }

    /// OID_CO_GET_ADDRESSES for `af` completed with `status`: `address` is the first valid
    /// address of the list (`None` when the answer held none), `needed` the `BytesNeeded` of a
    /// too-short answer.
    pub fn on_addresses_queried(
        &mut self,
        af: Id,
        status: Status,
        address: Option<AtmAddress>,
        needed: u32,
    ) -> Result {
        let Some(entry) = self.afs.get_mut(af) else {
            return self.reject(ObjectKind::Af, Some(af), Error::UnknownId(ObjectKind::Af));
        };
        let local = &mut entry.local;
        let stale = match local.query {
            Query::InFlight => false,
            Query::InFlightStale => true,
            Query::Idle | Query::Needed => {
                return self.reject(ObjectKind::Af, Some(af), Error::InvalidState(ObjectKind::Af))
            }
        };
        let open = matches!(entry.state, AfState::Open { .. });
        // Calls are held only while the AF has no address: wake them when that may change.
        let held = local.address.is_none();
        local.query = Query::Idle;
        if stale && open {
            // The switch address changed while this query was out: its answer may be old.
            local.query = Query::Needed;
        } else if let (true, Some(address)) = (status.is_success(), address) {
            local.address = Some(address);
            local.unavailable = false;
            local.attempts = 0;
        } else if open {
            local.attempts += 1;
            // BytesNeeded comes with NDIS_STATUS_INVALID_LENGTH / BUFFER_TOO_SHORT.
            if needed > local.length && needed <= MAX_LENGTH {
                local.length = needed;
            }
            if local.attempts < MAX_ATTEMPTS {
                local.query = Query::Needed;
            } else {
                // Given up until the next change (nf-ndis-ndiscooidrequest lists the recoverable
                // statuses; three in a row is not a passing shortage).
                local.unavailable = local.address.is_none();
                self.counters.address_query_failures += 1;
            }
        }
        self.push_af_work(af);
        let settled = self.afs.get(af).is_some_and(|a| a.local.address.is_some() || a.local.unavailable);
        if held && settled {
            self.wake_held_calls(af);
        }
        Ok(())
    }

    /// Whether a call on `af` must wait before its VC is created: the address is not known and
    /// still may be. `Err` when it never will be (until the next change).
    pub(super) fn hold_for_address(&self, af: Id) -> core::result::Result<bool, Status> {
        let Some(entry) = self.afs.get(af) else { return Ok(false) };
        match entry.local {
            LocalAddress { address: Some(_), .. } => Ok(false),
            LocalAddress { unavailable: true, .. } => Err(Status::INVALID_ADDRESS),
            _ => Ok(true),
        }
    }

    /// Queues the calls of `af` that wait for its address (they are not closing, so they are in
    /// its list of open calls).
    fn wake_held_calls(&mut self, af: Id) {
        let Some(mut index) = self.afs.get(af).map(|a| a.open_calls.head()) else { return };
        while index != NIL {
            let Some(entry) = self.afs.get(af) else { return };
            let next = entry.open_calls.next_of(&self.calls, index);
            if let Some(id) = self.calls.id_at(index) {
                if self.calls.get(id).is_some_and(|c| c.state == CallState::NeedVc) {
                    self.push_call_work(id);
                }
            }
            index = next;
        }
    }
}
