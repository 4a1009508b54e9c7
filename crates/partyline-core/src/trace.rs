//! Counters and a fixed ring of recent trace events, readable through the control device.

use crate::engine::{Action, AfState, BindingState, CallState, CloseReason, Error, Operational, PartyState};
use crate::model::Status;
use crate::slab::Id;

/// The kind of object an event concerns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum ObjectKind {
    Binding = 1,
    Af = 2,
    Call = 3,
    Party = 4,
}

/// What moved an object to a new state: a handler NDIS called, a request the driver made of
/// NDIS (the pending state is recorded as it is made), or a control-device request. Named after
/// the NDIS pages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Cause {
    /// `ProtocolBindAdapterEx`.
    BindAdapter = 1,
    /// `NdisOpenAdapterEx` completed.
    OpenAdapterComplete = 2,
    /// `ProtocolUnbindAdapterEx`.
    UnbindAdapter = 3,
    /// `NdisCloseAdapterEx` made.
    CloseAdapter = 4,
    /// `ProtocolCoAfRegisterNotify`.
    AfRegisterNotify = 5,
    /// `NdisClOpenAddressFamilyEx` completed.
    OpenAfComplete = 6,
    /// `ProtocolClNotifyCloseAf`.
    NotifyCloseAf = 7,
    /// `NdisClCloseAddressFamily` made.
    CloseAf = 8,
    /// `NdisClCloseAddressFamily` completed.
    CloseAfComplete = 9,
    /// A control-device MAKE_CALL.
    MakeCallRequest = 10,
    /// `NdisCoCreateVc` made.
    CreateVc = 11,
    /// `NdisCoCreateVc` returned.
    VcCreated = 12,
    /// `NdisClMakeCall` made.
    MakeCall = 13,
    /// `NdisClMakeCall` completed.
    MakeCallComplete = 14,
    /// A control-device ADD_PARTY.
    AddPartyRequest = 15,
    /// `NdisClAddParty` made.
    AddParty = 16,
    /// `NdisClAddParty` completed.
    AddPartyComplete = 17,
    /// A control-device DROP_PARTY (or the close of a call choosing a party to drop).
    DropPartyRequest = 18,
    /// `NdisClDropParty` made.
    DropParty = 19,
    /// `ProtocolClIncomingDropParty`.
    IncomingDropParty = 20,
    /// `NdisClCloseCall` made.
    CloseCall = 21,
    /// `NdisClCloseCall` completed.
    CloseCallComplete = 22,
    /// `NdisCoDeleteVc` made.
    DeleteVc = 23,
    /// `NdisClDropParty` completed (a refusal: the party is connected again).
    DropPartyComplete = 24,
    /// `NdisCoDeleteVc` returned (a failure: the VC is still alive).
    VcDeleted = 25,
    /// NetEventPause.
    Pause = 26,
    /// NetEventRestart.
    Restart = 27,
    /// NetEventSetPower.
    SetPower = 28,
    /// The last set-up in flight on a pausing binding completed: the pause is complete.
    PauseComplete = 29,
}

impl Cause {
    /// Every cause, in wire order.
    pub const ALL: [Cause; 29] = [
        Cause::BindAdapter,
        Cause::OpenAdapterComplete,
        Cause::UnbindAdapter,
        Cause::CloseAdapter,
        Cause::AfRegisterNotify,
        Cause::OpenAfComplete,
        Cause::NotifyCloseAf,
        Cause::CloseAf,
        Cause::CloseAfComplete,
        Cause::MakeCallRequest,
        Cause::CreateVc,
        Cause::VcCreated,
        Cause::MakeCall,
        Cause::MakeCallComplete,
        Cause::AddPartyRequest,
        Cause::AddParty,
        Cause::AddPartyComplete,
        Cause::DropPartyRequest,
        Cause::DropParty,
        Cause::IncomingDropParty,
        Cause::CloseCall,
        Cause::CloseCallComplete,
        Cause::DeleteVc,
        Cause::DropPartyComplete,
        Cause::VcDeleted,
        Cause::Pause,
        Cause::Restart,
        Cause::SetPower,
        Cause::PauseComplete,
    ];

    pub fn from_u8(value: u8) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| *c as u8 == value)
    }
}

/// What happened, in order. A state change is one entry, old ⇒ new with its cause (`from` is
/// `None` when the object was just made); an object's end is its `*Gone` entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TraceEvent {
    Binding {
        id: Id,
        from: Option<BindingState>,
        to: BindingState,
        cause: Cause,
    },
    BindingGone {
        id: Id,
        status: Status,
    },
    /// A binding's data path (NDIS 6 binding states) and whether its adapter is in a low-power
    /// state, old ⇒ new.
    Operational {
        id: Id,
        from: (Operational, bool),
        to: (Operational, bool),
        cause: Cause,
    },
    Af {
        id: Id,
        from: Option<AfState>,
        to: AfState,
        cause: Cause,
    },
    AfGone {
        id: Id,
        status: Status,
    },
    AfIgnored {
        binding: Id,
        family: u32,
        major: u32,
        minor: u32,
    },
    Call {
        id: Id,
        from: Option<CallState>,
        to: CallState,
        cause: Cause,
    },
    CallGone {
        id: Id,
        status: Status,
    },
    CloseRequested {
        call: Id,
        reason: CloseReason,
    },
    IncomingClose {
        call: Id,
        status: Status,
    },
    Party {
        id: Id,
        from: Option<PartyState>,
        to: PartyState,
        cause: Cause,
    },
    PartyGone {
        id: Id,
        status: Status,
    },
    IncomingDrop {
        party: Id,
        status: Status,
    },
    DropDeferred {
        party: Id,
    },
    Refused {
        kind: ObjectKind,
        id: Option<Id>,
        error: Error,
    },
    Lost {
        action: Action,
    },
}

/// Running totals since the driver loaded.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Counters {
    pub calls_requested: u64,
    pub calls_made: u64,
    pub calls_failed: u64,
    pub calls_closed: u64,
    pub parties_added: u64,
    pub parties_failed: u64,
    pub parties_dropped_local: u64,
    pub parties_dropped_remote: u64,
    pub drop_failures: u64,
    pub close_failures: u64,
    pub delete_failures: u64,
    /// Events refused as illegal in their object's state, or naming unknown objects.
    pub refused: u64,
    /// Deferred actions that found no room (never expected; a non-zero value is a bug).
    pub lost_actions: u64,
    /// NET_BUFFER_LISTs indicated by `ProtocolReceiveNetBufferLists` /
    /// `ProtocolCoReceiveNetBufferLists`, owned or only lent (`NDIS_RECEIVE_FLAGS_RESOURCES`).
    pub lists_received: u64,
    /// Received lists given back with `NdisReturnNetBufferLists` (every owned one whose binding
    /// is open; the rest were refused).
    pub lists_returned: u64,
    /// OID_CO_GET_ADDRESSES queries made (one per OID_CO_ADDRESS_CHANGE, plus retries).
    pub address_queries: u64,
    /// Address changes whose every query failed: the AF was left without an address.
    pub address_query_failures: u64,
}

impl Counters {
    pub const ZERO: Counters = Counters {
        calls_requested: 0,
        calls_made: 0,
        calls_failed: 0,
        calls_closed: 0,
        parties_added: 0,
        parties_failed: 0,
        parties_dropped_local: 0,
        parties_dropped_remote: 0,
        drop_failures: 0,
        close_failures: 0,
        delete_failures: 0,
        refused: 0,
        lost_actions: 0,
        lists_received: 0,
        lists_returned: 0,
        address_queries: 0,
        address_query_failures: 0,
    };
}

/// Entries in the trace ring (a power of two, so positions wrap with a mask).
pub const TRACE_LEN: usize = 128;

/// One entry of the ring. `#[repr(u8)]` with `Empty = 0`, so that an empty ring is all zero
/// bytes (the driver's static state is zero-fill; see [`crate::slab`]).
#[derive(Clone, Copy)]
#[repr(u8)]
enum Entry {
    Empty = 0,
    Event(TraceEvent) = 1,
}

/// The last [`TRACE_LEN`] events. Event number `n` is in entry `n % TRACE_LEN`.
pub struct Trace {
    events: [Entry; TRACE_LEN],
    next: u64,
}

impl Trace {
    pub const fn new() -> Self {
        Trace { events: [Entry::Empty; TRACE_LEN], next: 0 }
    }

    pub fn push(&mut self, event: TraceEvent) {
        let slot = (self.next % TRACE_LEN as u64) as usize;
        self.events[slot] = Entry::Event(event);
        self.next += 1;
    }

    /// Sequence number the next event will get.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// Events with sequence number `>= from`, oldest first (those still in the ring: each of
    /// the last [`TRACE_LEN`] numbers was written to its entry and not yet overwritten).
    pub fn since(&self, from: u64) -> impl Iterator<Item = (u64, TraceEvent)> + '_ {
        let first = self.next.saturating_sub(TRACE_LEN as u64).max(from);
        (first..self.next).filter_map(move |seq| match self.events[(seq % TRACE_LEN as u64) as usize] {
            Entry::Event(event) => Some((seq, event)),
            Entry::Empty => None,
        })
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}
