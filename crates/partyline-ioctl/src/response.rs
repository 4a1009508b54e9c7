//! Responses: the driver's `encode_*_response` writers and the host tools' `decode_*` mirrors.
//!
//! Layouts (little-endian). Every response starts with `version: u16`, `flags: u16`. Paged
//! responses (lists, query, trace) continue with `count: u32` (entries in this response) and
//! `next: u64` (the cursor to send to continue), and set [`FLAG_MORE`] when entries were left out
//! because the output buffer was full: a caller with a small buffer pages by sending `next` back.
//! A writer refuses with [`IoctlError::BufferTooSmall`] only when not even the fixed part and one
//! entry fit.
//!
//! | IOCTL | output |
//! |---|---|
//! | LIST_BINDINGS | paged header (16), entries of 24: `id` u64, `parent` u64 (an AF's binding; 0 for a binding), `kind` u8 (1 binding, 2 AF), `state` u8, reserved u16, `count` u32 (a binding's AFs, an AF's calls) |
//! | LIST_CALLS | paged header (16), entries of 16: `call` id u64, `af` id u64 |
//! | MAKE_CALL | 16: header, reserved u32, `call` id u64 |
//! | ADD_PARTY | 16: header, reserved u32, `party` id u64 |
//! | DROP_PARTY, CLOSE_CALL | none (0 bytes) |
//! | QUERY_CALL | paged header (16; `next` is a party cursor), call (48), parties of 32: `id` u64, `state` u8, `flags` u8 (bit 0: drop requested), `AddressType` u8, `NumberOfDigits` u8, `Address` [u8; 20] |
//! | READ_COUNTERS | 144: header, `count` u32 (17), 17 × u64 in [`Counters`] field order |
//! | READ_STATE | 288: the driver's census, laid out in [`crate::state`] |
//! | READ_TRACE | paged header (16; `next` is the sequence to ask from), entries of 40: `sequence` u64, `tag` u8, `a` u8, `b` u8, `c` u8, `x` u32, `y` u32, `z` u32, `id` u64, `id2` u64 |
//!
//! Call (48 bytes): `id` u64, `af` u64, `state` u8, `closing` u8 (0 no, 1 local, 2 remote,
//! 3 teardown), `service` u8, `parameters_changed` u8, `close_status` i32 (remote closes),
//! `peak_cell_rate` u32, `max_sdu` u32, `queued` u32, `adding` u32, `connected` u32, `dropping` u32.

use partyline_core::engine::{
    Action, AfState, BindingState, CallInfo, CallState, CloseReason, Error as CoreError, Operational,
    PartyInfo, PartyState, Table,
};
use partyline_core::model::{AtmAddress, ServiceCategory, Status, TrafficProfile};
use partyline_core::slab::{Exhausted, Id};
use partyline_core::trace::{Cause, Counters, ObjectKind, TraceEvent};

use crate::error::{IoctlError, Malformed};
use crate::request::{encode_leaf, LEAF_LEN};
use crate::wire::{Reader, Writer};
use crate::VERSION;

/// Set in a paged response's flags when entries were left out for lack of room.
pub const FLAG_MORE: u16 = 1;
/// `version`, `flags`.
pub const RESPONSE_HEADER_LEN: usize = 4;
/// `version`, `flags`, `count`, `next`.
pub const PAGED_HEADER_LEN: usize = 16;
pub const LIST_ENTRY_LEN: usize = 24;
pub const CALL_ENTRY_LEN: usize = 16;
pub const ID_RESPONSE_LEN: usize = 16;
pub const CALL_BLOCK_LEN: usize = 48;
pub const PARTY_ENTRY_LEN: usize = 32;
/// Counters on the wire, in [`Counters`] field order.
pub const COUNTER_COUNT: usize = 17;
pub const COUNTERS_RESPONSE_LEN: usize = 8 + 8 * COUNTER_COUNT;
pub const TRACE_ENTRY_LEN: usize = 40;
/// An output buffer size that holds any response but the longest lists in one go.
pub const RECOMMENDED_OUTPUT_LEN: usize = 4096;

const fn bad(m: Malformed) -> IoctlError {
    IoctlError::Response(m)
}

// ---------------------------------------------------------------------------------------------
// States without kernel handles (user mode never sees NDIS handles).

/// A binding's state as user mode sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum BindingStatus {
    Opening = 0,
    Open = 1,
    Unbinding = 2,
    Closing = 3,
}

impl From<BindingState> for BindingStatus {
    fn from(s: BindingState) -> Self {
        match s {
            BindingState::Opening => BindingStatus::Opening,
            BindingState::Open { .. } => BindingStatus::Open,
            BindingState::Unbinding { .. } => BindingStatus::Unbinding,
            BindingState::Closing => BindingStatus::Closing,
        }
    }
}

impl BindingStatus {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => BindingStatus::Opening,
            1 => BindingStatus::Open,
            2 => BindingStatus::Unbinding,
            3 => BindingStatus::Closing,
            _ => return None,
        })
    }
}

/// An address family's state as user mode sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum AfStatus {
    Opening = 0,
    Open = 1,
    Closing = 2,
    CloseAfPending = 3,
    /// Closed while `ProtocolClNotifyCloseAf` was still running; gone once it returns.
    Closed = 4,
}

impl From<AfState> for AfStatus {
    fn from(s: AfState) -> Self {
        match s {
            AfState::Opening => AfStatus::Opening,
            AfState::Open { .. } => AfStatus::Open,
            AfState::Closing { .. } => AfStatus::Closing,
            AfState::CloseAfPending { .. } => AfStatus::CloseAfPending,
            AfState::Closed => AfStatus::Closed,
        }
    }
}

impl AfStatus {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => AfStatus::Opening,
            1 => AfStatus::Open,
            2 => AfStatus::Closing,
            3 => AfStatus::CloseAfPending,
            4 => AfStatus::Closed,
            _ => return None,
        })
    }
}

/// A party's state as user mode sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PartyStatus {
    Queued,
    AddPending { drop_requested: bool },
    Connected,
    DropQueued,
    DropPending,
    Closing,
}

impl From<PartyState> for PartyStatus {
    fn from(s: PartyState) -> Self {
        match s {
            PartyState::Queued => PartyStatus::Queued,
            PartyState::AddPending { drop_requested } => PartyStatus::AddPending { drop_requested },
            PartyState::Connected { .. } => PartyStatus::Connected,
            PartyState::DropQueued { .. } => PartyStatus::DropQueued,
            PartyState::DropPending => PartyStatus::DropPending,
            PartyState::Closing => PartyStatus::Closing,
        }
    }
}

impl PartyStatus {
    fn to_wire(self) -> (u8, u8) {
        match self {
            PartyStatus::Queued => (0, 0),
            PartyStatus::AddPending { drop_requested } => (1, drop_requested as u8),
            PartyStatus::Connected => (2, 0),
            PartyStatus::DropQueued => (3, 0),
            PartyStatus::DropPending => (4, 0),
            PartyStatus::Closing => (5, 0),
        }
    }

    fn from_wire(state: u8, flags: u8) -> Option<Self> {
        if flags > 1 || (flags == 1 && state != 1) {
            return None;
        }
        Some(match state {
            0 => PartyStatus::Queued,
            1 => PartyStatus::AddPending { drop_requested: flags == 1 },
            2 => PartyStatus::Connected,
            3 => PartyStatus::DropQueued,
            4 => PartyStatus::DropPending,
            5 => PartyStatus::Closing,
            _ => return None,
        })
    }
}

fn call_state_to_u8(s: CallState) -> u8 {
    match s {
        CallState::NeedVc => 0,
        CallState::CreatingVc => 1,
        CallState::Created => 2,
        CallState::MakeCallPending => 3,
        CallState::Active => 4,
        CallState::CloseCallPending => 5,
        CallState::NeedDelete => 6,
        CallState::Deleting => 7,
    }
}

fn call_state_from_u8(v: u8) -> Option<CallState> {
    Some(match v {
        0 => CallState::NeedVc,
        1 => CallState::CreatingVc,
        2 => CallState::Created,
        3 => CallState::MakeCallPending,
        4 => CallState::Active,
        5 => CallState::CloseCallPending,
        6 => CallState::NeedDelete,
        7 => CallState::Deleting,
        _ => return None,
    })
}

fn close_to_wire(c: Option<CloseReason>) -> (u8, i32) {
    match c {
        None => (0, 0),
        Some(CloseReason::Local) => (1, 0),
        Some(CloseReason::Remote(s)) => (2, s.0),
        Some(CloseReason::Teardown) => (3, 0),
    }
}

fn close_from_wire(code: u8, status: i32) -> Option<Option<CloseReason>> {
    Some(match (code, status) {
        (0, 0) => None,
        (1, 0) => Some(CloseReason::Local),
        (2, s) => Some(CloseReason::Remote(Status(s))),
        (3, 0) => Some(CloseReason::Teardown),
        _ => return None,
    })
}

fn service_from_u8(v: u8) -> Option<ServiceCategory> {
    match v {
        0 => Some(ServiceCategory::Ubr),
        1 => Some(ServiceCategory::Cbr),
        _ => None,
    }
}

fn kind_from_u8(v: u8) -> Option<ObjectKind> {
    Some(match v {
        1 => ObjectKind::Binding,
        2 => ObjectKind::Af,
        3 => ObjectKind::Call,
        4 => ObjectKind::Party,
        _ => return None,
    })
}

fn address_from_wire(bytes: &[u8]) -> Result<AtmAddress, IoctlError> {
    let r = Reader::new(bytes, bad(Malformed::Truncated));
    let raw: [u8; 20] = r.array(4)?;
    AtmAddress::from_raw(u32::from(r.u8(0)?), u32::from(r.u8(1)?), &raw).map_err(|_| bad(Malformed::Address))
}

// ---------------------------------------------------------------------------------------------
// Entries.

/// A fixed-size entry of a paged response.
pub trait WireEntry: Sized {
    /// Bytes per entry.
    const LEN: usize;
    /// Writes the entry at the start of `out` (`out.len() >= LEN`).
    fn encode(&self, out: &mut [u8]) -> Result<(), IoctlError>;
    /// Reads an entry of exactly `LEN` bytes.
    fn decode(bytes: &[u8]) -> Result<Self, IoctlError>;
    /// The cursor that resumes after this entry, if it is sequence-based (trace).
    fn resume_after(&self) -> Option<u64> {
        None
    }
}

/// One row of LIST_BINDINGS.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ListEntry {
    Binding { id: u64, state: BindingStatus, afs: u32 },
    AddressFamily { id: u64, binding: u64, state: AfStatus, calls: u32 },
}

impl ListEntry {
    /// From an item of `Engine::bindings()`.
    pub fn binding((id, state, afs): (Id, BindingState, u32)) -> Self {
        ListEntry::Binding { id: id.to_u64(), state: state.into(), afs }
    }

    /// From an item of `Engine::address_families()`.
    pub fn address_family((id, binding, state, calls): (Id, Id, AfState, u32)) -> Self {
        ListEntry::AddressFamily { id: id.to_u64(), binding: binding.to_u64(), state: state.into(), calls }
    }
}

impl WireEntry for ListEntry {
    const LEN: usize = LIST_ENTRY_LEN;

    fn encode(&self, out: &mut [u8]) -> Result<(), IoctlError> {
        let mut w = Writer::new(out);
        let (id, parent, kind, state, count) = match *self {
            ListEntry::Binding { id, state, afs } => (id, 0, 1, state as u8, afs),
            ListEntry::AddressFamily { id, binding, state, calls } => (id, binding, 2, state as u8, calls),
        };
        w.u64(0, id)?;
        w.u64(8, parent)?;
        w.u8(16, kind)?;
        w.u8(17, state)?;
        w.u16(18, 0)?;
        w.u32(20, count)
    }

    fn decode(bytes: &[u8]) -> Result<Self, IoctlError> {
        let r = Reader::new(bytes, bad(Malformed::Truncated));
        let (id, parent, state, count) = (r.u64(0)?, r.u64(8)?, r.u8(17)?, r.u32(20)?);
        let unknown = bad(Malformed::UnknownValue);
        match r.u8(16)? {
            1 if parent == 0 => Ok(ListEntry::Binding {
                id,
                state: BindingStatus::from_u8(state).ok_or(unknown)?,
                afs: count,
            }),
            2 => Ok(ListEntry::AddressFamily {
                id,
                binding: parent,
                state: AfStatus::from_u8(state).ok_or(unknown)?,
                calls: count,
            }),
            _ => Err(unknown),
        }
    }
}

/// One row of LIST_CALLS.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CallEntry {
    pub id: u64,
    pub af: u64,
}

impl CallEntry {
    /// From an item of `Engine::calls()`.
    pub fn new((id, af): (Id, Id)) -> Self {
        CallEntry { id: id.to_u64(), af: af.to_u64() }
    }
}

impl WireEntry for CallEntry {
    const LEN: usize = CALL_ENTRY_LEN;

    fn encode(&self, out: &mut [u8]) -> Result<(), IoctlError> {
        let mut w = Writer::new(out);
        w.u64(0, self.id)?;
        w.u64(8, self.af)
    }

    fn decode(bytes: &[u8]) -> Result<Self, IoctlError> {
        let r = Reader::new(bytes, bad(Malformed::Truncated));
        Ok(CallEntry { id: r.u64(0)?, af: r.u64(8)? })
    }
}

/// One party of QUERY_CALL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PartyEntry {
    pub id: u64,
    pub state: PartyStatus,
    pub address: AtmAddress,
}

impl PartyEntry {
    /// From a party id and `Engine::party_info`.
    pub fn new(id: Id, info: &PartyInfo) -> Self {
        PartyEntry { id: id.to_u64(), state: info.state.into(), address: info.address }
    }
}

impl WireEntry for PartyEntry {
    const LEN: usize = PARTY_ENTRY_LEN;

    fn encode(&self, out: &mut [u8]) -> Result<(), IoctlError> {
        let mut w = Writer::new(out);
        let (state, flags) = self.state.to_wire();
        let leaf = encode_leaf(&self.address);
        w.u64(0, self.id)?;
        w.u8(8, state)?;
        w.u8(9, flags)?;
        w.u8(10, leaf[0])?;
        w.u8(11, leaf[1])?;
        w.put(12, &leaf[4..])
    }

    fn decode(bytes: &[u8]) -> Result<Self, IoctlError> {
        let r = Reader::new(bytes, bad(Malformed::Truncated));
        let state = PartyStatus::from_wire(r.u8(8)?, r.u8(9)?).ok_or(bad(Malformed::UnknownValue))?;
        let mut leaf = [0u8; LEAF_LEN];
        leaf[0] = r.u8(10)?;
        leaf[1] = r.u8(11)?;
        leaf[4..].copy_from_slice(r.slice(12, 20)?);
        Ok(PartyEntry { id: r.u64(0)?, state, address: address_from_wire(&leaf)? })
    }
}

/// What the driver did, as user mode sees it (a [`TraceEvent`] without kernel handles).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// A state change: `from` ⇒ `state` because of `cause` (`from` is `None` for a new object).
    Binding {
        id: u64,
        from: Option<BindingStatus>,
        state: BindingStatus,
        cause: Cause,
    },
    BindingGone {
        id: u64,
        status: Status,
    },
    /// A binding's data path and low-power flag: `from` ⇒ `to` because of `cause`.
    Operational {
        id: u64,
        from: (Operational, bool),
        to: (Operational, bool),
        cause: Cause,
    },
    Af {
        id: u64,
        from: Option<AfStatus>,
        state: AfStatus,
        cause: Cause,
    },
    AfGone {
        id: u64,
        status: Status,
    },
    AfIgnored {
        binding: u64,
        family: u32,
        major: u32,
        minor: u32,
    },
    Call {
        id: u64,
        from: Option<CallState>,
        state: CallState,
        cause: Cause,
    },
    CallGone {
        id: u64,
        status: Status,
    },
    CloseRequested {
        call: u64,
        reason: CloseReason,
    },
    IncomingClose {
        call: u64,
        status: Status,
    },
    Party {
        id: u64,
        from: Option<PartyStatus>,
        state: PartyStatus,
        cause: Cause,
    },
    PartyGone {
        id: u64,
        status: Status,
    },
    IncomingDrop {
        party: u64,
        status: Status,
    },
    DropDeferred {
        party: u64,
    },
    /// `id` 0: the refused event named no object.
    Refused {
        kind: ObjectKind,
        id: u64,
        error: CoreError,
    },
    /// A deferred action that found no room: which, and the object it concerned.
    Lost {
        action: ActionKind,
        id: u64,
    },
}

/// The kind of a lost [`Action`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum ActionKind {
    CreateVc = 1,
    MakeCall = 2,
    AddParty = 3,
    DropParty = 4,
    CloseCall = 5,
    DeleteVc = 6,
    CloseAf = 7,
    NotifyCloseAfComplete = 8,
    BindingQuiet = 9,
    UnbindAdapter = 10,
    QueryAddresses = 11,
}

impl ActionKind {
    fn from_u8(v: u8) -> Option<Self> {
        use ActionKind::*;
        [
            CreateVc,
            MakeCall,
            AddParty,
            DropParty,
            CloseCall,
            DeleteVc,
            CloseAf,
            NotifyCloseAfComplete,
            BindingQuiet,
            UnbindAdapter,
            QueryAddresses,
        ]
        .into_iter()
        .find(|k| *k as u8 == v)
    }
}

impl From<TraceEvent> for Event {
    fn from(e: TraceEvent) -> Self {
        match e {
            TraceEvent::Binding { id, from, to, cause } => {
                Event::Binding { id: id.to_u64(), from: from.map(Into::into), state: to.into(), cause }
            }
            TraceEvent::BindingGone { id, status } => Event::BindingGone { id: id.to_u64(), status },
            TraceEvent::Operational { id, from, to, cause } => {
                Event::Operational { id: id.to_u64(), from, to, cause }
            }
            TraceEvent::Af { id, from, to, cause } => {
                Event::Af { id: id.to_u64(), from: from.map(Into::into), state: to.into(), cause }
            }
            TraceEvent::AfGone { id, status } => Event::AfGone { id: id.to_u64(), status },
            TraceEvent::AfIgnored { binding, family, major, minor } => {
                Event::AfIgnored { binding: binding.to_u64(), family, major, minor }
            }
            TraceEvent::Call { id, from, to, cause } => {
                Event::Call { id: id.to_u64(), from, state: to, cause }
            }
            TraceEvent::CallGone { id, status } => Event::CallGone { id: id.to_u64(), status },
            TraceEvent::CloseRequested { call, reason } => {
                Event::CloseRequested { call: call.to_u64(), reason }
            }
            TraceEvent::IncomingClose { call, status } => {
                Event::IncomingClose { call: call.to_u64(), status }
            }
            TraceEvent::Party { id, from, to, cause } => {
                Event::Party { id: id.to_u64(), from: from.map(Into::into), state: to.into(), cause }
            }
            TraceEvent::PartyGone { id, status } => Event::PartyGone { id: id.to_u64(), status },
            TraceEvent::IncomingDrop { party, status } => {
                Event::IncomingDrop { party: party.to_u64(), status }
            }
            TraceEvent::DropDeferred { party } => Event::DropDeferred { party: party.to_u64() },
            TraceEvent::Refused { kind, id, error } => {
                Event::Refused { kind, id: id.map_or(0, Id::to_u64), error }
            }
            TraceEvent::Lost { action } => {
                let (kind, id) = match action {
                    Action::CreateVc { call, .. } => (ActionKind::CreateVc, call.to_u64()),
                    Action::MakeCall { party, .. } => (ActionKind::MakeCall, party.to_u64()),
                    Action::AddParty { party, .. } => (ActionKind::AddParty, party.to_u64()),
                    Action::DropParty { party, .. } => (ActionKind::DropParty, party.to_u64()),
                    Action::CloseCall { call, .. } => (ActionKind::CloseCall, call.to_u64()),
                    Action::DeleteVc { call, .. } => (ActionKind::DeleteVc, call.to_u64()),
                    Action::CloseAf { af, .. } => (ActionKind::CloseAf, af.to_u64()),
                    Action::NotifyCloseAfComplete { .. } => (ActionKind::NotifyCloseAfComplete, 0),
                    Action::BindingQuiet { binding, .. } => (ActionKind::BindingQuiet, binding.to_u64()),
                    Action::UnbindAdapter { binding, .. } => (ActionKind::UnbindAdapter, binding.to_u64()),
                    Action::QueryAddresses { af, .. } => (ActionKind::QueryAddresses, af.to_u64()),
                };
                Event::Lost { action: kind, id }
            }
        }
    }
}

fn table_to_u8(t: Table) -> u8 {
    match t {
        Table::Bindings => 1,
        Table::AddressFamilies => 2,
        Table::Calls => 3,
        Table::Parties => 4,
    }
}

fn table_from_u8(v: u8) -> Option<Table> {
    Some(match v {
        1 => Table::Bindings,
        2 => Table::AddressFamilies,
        3 => Table::Calls,
        4 => Table::Parties,
        _ => return None,
    })
}

/// `(b, c, x, y)` of a refused event's error.
fn error_to_wire(e: CoreError) -> (u8, u8, u32, u32) {
    match e {
        CoreError::NeedMemory(t, Exhausted::Chunk) => (1, table_to_u8(t), 0, 0),
        CoreError::NeedMemory(t, Exhausted::Directory { len }) => {
            (1, table_to_u8(t), 1, u32::try_from(len).unwrap_or(u32::MAX))
        }
        CoreError::UnknownId(k) => (2, k as u8, 0, 0),
        CoreError::InvalidState(k) => (3, k as u8, 0, 0),
        CoreError::Closing => (4, 0, 0, 0),
        CoreError::UnsupportedAddressFamily => (5, 0, 0, 0),
        CoreError::NoLeaves => (6, 0, 0, 0),
    }
}

fn error_from_wire(b: u8, c: u8, x: u32, y: u32) -> Option<CoreError> {
    Some(match (b, x, y) {
        (1, 0, 0) => CoreError::NeedMemory(table_from_u8(c)?, Exhausted::Chunk),
        (1, 1, len) => CoreError::NeedMemory(table_from_u8(c)?, Exhausted::Directory { len: len as usize }),
        (2, 0, 0) => CoreError::UnknownId(kind_from_u8(c)?),
        (3, 0, 0) => CoreError::InvalidState(kind_from_u8(c)?),
        (4, 0, 0) if c == 0 => CoreError::Closing,
        (5, 0, 0) if c == 0 => CoreError::UnsupportedAddressFamily,
        (6, 0, 0) if c == 0 => CoreError::NoLeaves,
        _ => return None,
    })
}

/// A transition's old state on the wire: its code, or `NO_STATE` for a new object.
const NO_STATE: u32 = u32::MAX;

fn from_to_wire(code: Option<u32>) -> u32 {
    code.unwrap_or(NO_STATE)
}

/// `Some(from)` (the old state, `None` for a new object), or `None` if `code` names no state.
fn from_from_wire<S>(code: u32, state: impl FnOnce(u32) -> Option<S>) -> Option<Option<S>> {
    if code == NO_STATE {
        Some(None)
    } else {
        state(code).map(Some)
    }
}

/// A binding's data path and low-power flag in one byte: 0 Paused, 1 Pausing, 2 Running, +4 if
/// in a low-power state.
fn operational_to_u8((state, low_power): (Operational, bool)) -> u8 {
    let code = match state {
        Operational::Paused => 0,
        Operational::Pausing => 1,
        Operational::Running => 2,
    };
    code | u8::from(low_power) << 2
}

fn operational_from_u8(code: u8) -> Option<(Operational, bool)> {
    let state = match code & 3 {
        0 => Operational::Paused,
        1 => Operational::Pausing,
        2 => Operational::Running,
        _ => return None,
    };
    (code >> 3 == 0).then_some((state, code & 4 != 0))
}

fn cause_from_wire(code: u32) -> Option<Cause> {
    Cause::from_u8(u8::try_from(code).ok()?)
}

/// One trace entry: its sequence number and event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TraceRecord {
    pub sequence: u64,
    pub event: Event,
}

/// The fields of a trace entry after the sequence number.
#[derive(Default)]
struct Fields {
    tag: u8,
    a: u8,
    b: u8,
    c: u8,
    x: u32,
    y: u32,
    z: u32,
    id: u64,
    id2: u64,
}

impl Event {
    fn to_fields(self) -> Fields {
        let f = Fields::default();
        match self {
            Event::Binding { id, from, state, cause } => Fields {
                tag: 1,
                a: state as u8,
                y: from_to_wire(from.map(|s| s as u32)),
                z: cause as u32,
                id,
                ..f
            },
            Event::BindingGone { id, status } => Fields { tag: 2, x: status.0 as u32, id, ..f },
            Event::Af { id, from, state, cause } => Fields {
                tag: 3,
                a: state as u8,
                y: from_to_wire(from.map(|s| s as u32)),
                z: cause as u32,
                id,
                ..f
            },
            Event::AfGone { id, status } => Fields { tag: 4, x: status.0 as u32, id, ..f },
            Event::AfIgnored { binding, family, major, minor } => {
                Fields { tag: 5, x: family, y: major, z: minor, id: binding, ..f }
            }
            Event::Call { id, from, state, cause } => {
                let y = from_to_wire(from.map(|s| u32::from(call_state_to_u8(s))));
                Fields { tag: 6, a: call_state_to_u8(state), y, z: cause as u32, id, ..f }
            }
            Event::CallGone { id, status } => Fields { tag: 7, x: status.0 as u32, id, ..f },
            Event::CloseRequested { call, reason } => {
                let (a, status) = close_to_wire(Some(reason));
                Fields { tag: 8, a, x: status as u32, id: call, ..f }
            }
            Event::IncomingClose { call, status } => Fields { tag: 9, x: status.0 as u32, id: call, ..f },
            Event::Party { id, from, state, cause } => {
                let (a, b) = state.to_wire();
                let y = from_to_wire(from.map(|s| {
                    let (a, b) = s.to_wire();
                    u32::from(a) | u32::from(b) << 8
                }));
                Fields { tag: 10, a, b, y, z: cause as u32, id, ..f }
            }
            Event::PartyGone { id, status } => Fields { tag: 11, x: status.0 as u32, id, ..f },
            Event::IncomingDrop { party, status } => Fields { tag: 12, x: status.0 as u32, id: party, ..f },
            Event::DropDeferred { party } => Fields { tag: 13, id: party, ..f },
            Event::Refused { kind, id, error } => {
                let (b, c, x, y) = error_to_wire(error);
                Fields { tag: 14, a: kind as u8, b, c, x, y, id, ..f }
            }
            Event::Lost { action, id } => Fields { tag: 15, a: action as u8, id, ..f },
            Event::Operational { id, from, to, cause } => Fields {
                tag: 16,
                a: operational_to_u8(to),
                y: u32::from(operational_to_u8(from)),
                z: cause as u32,
                id,
                ..f
            },
        }
    }

    fn from_fields(f: &Fields) -> Option<Event> {
        let status = Status(f.x as i32);
        // Fields an event does not use must be zero, so each event has one encoding.
        let only = |a: bool, b: bool, x: bool, yz: bool, id2: bool| {
            (a || f.a == 0)
                && (b || (f.b == 0 && f.c == 0))
                && (x || f.x == 0)
                && (yz || (f.y == 0 && f.z == 0))
                && (id2 || f.id2 == 0)
        };
        let id = f.id;
        Some(match f.tag {
            1 if only(true, false, false, true, false) => Event::Binding {
                id,
                from: from_from_wire(f.y, |v| BindingStatus::from_u8(u8::try_from(v).ok()?))?,
                state: BindingStatus::from_u8(f.a)?,
                cause: cause_from_wire(f.z)?,
            },
            2 if only(false, false, true, false, false) => Event::BindingGone { id, status },
            3 if only(true, false, false, true, false) => Event::Af {
                id,
                from: from_from_wire(f.y, |v| AfStatus::from_u8(u8::try_from(v).ok()?))?,
                state: AfStatus::from_u8(f.a)?,
                cause: cause_from_wire(f.z)?,
            },
            4 if only(false, false, true, false, false) => Event::AfGone { id, status },
            5 if only(false, false, true, true, false) => {
                Event::AfIgnored { binding: id, family: f.x, major: f.y, minor: f.z }
            }
            6 if only(true, false, false, true, false) => Event::Call {
                id,
                from: from_from_wire(f.y, |v| call_state_from_u8(u8::try_from(v).ok()?))?,
                state: call_state_from_u8(f.a)?,
                cause: cause_from_wire(f.z)?,
            },
            7 if only(false, false, true, false, false) => Event::CallGone { id, status },
            8 if only(true, false, true, false, false) => {
                Event::CloseRequested { call: id, reason: close_from_wire(f.a, f.x as i32)?? }
            }
            9 if only(false, false, true, false, false) => Event::IncomingClose { call: id, status },
            10 if f.c == 0 && only(true, true, false, true, false) => Event::Party {
                id,
                from: from_from_wire(f.y, |v| {
                    let [a, b, 0, 0] = v.to_le_bytes() else { return None };
                    PartyStatus::from_wire(a, b)
                })?,
                state: PartyStatus::from_wire(f.a, f.b)?,
                cause: cause_from_wire(f.z)?,
            },
            11 if only(false, false, true, false, false) => Event::PartyGone { id, status },
            12 if only(false, false, true, false, false) => Event::IncomingDrop { party: id, status },
            13 if only(false, false, false, false, false) => Event::DropDeferred { party: id },
            14 if f.z == 0 && only(true, true, true, true, false) => {
                Event::Refused { kind: kind_from_u8(f.a)?, id, error: error_from_wire(f.b, f.c, f.x, f.y)? }
            }
            15 if only(true, false, false, false, false) => {
                Event::Lost { action: ActionKind::from_u8(f.a)?, id }
            }
            16 if only(true, false, false, true, false) => Event::Operational {
                id,
                from: operational_from_u8(u8::try_from(f.y).ok()?)?,
                to: operational_from_u8(f.a)?,
                cause: cause_from_wire(f.z)?,
            },
            _ => return None,
        })
    }
}

impl WireEntry for TraceRecord {
    const LEN: usize = TRACE_ENTRY_LEN;

    fn encode(&self, out: &mut [u8]) -> Result<(), IoctlError> {
        let f = self.event.to_fields();
        let mut w = Writer::new(out);
        w.u64(0, self.sequence)?;
        w.put(8, &[f.tag, f.a, f.b, f.c])?;
        w.u32(12, f.x)?;
        w.u32(16, f.y)?;
        w.u32(20, f.z)?;
        w.u64(24, f.id)?;
        w.u64(32, f.id2)
    }

    fn decode(bytes: &[u8]) -> Result<Self, IoctlError> {
        let r = Reader::new(bytes, bad(Malformed::Truncated));
        let f = Fields {
            tag: r.u8(8)?,
            a: r.u8(9)?,
            b: r.u8(10)?,
            c: r.u8(11)?,
            x: r.u32(12)?,
            y: r.u32(16)?,
            z: r.u32(20)?,
            id: r.u64(24)?,
            id2: r.u64(32)?,
        };
        let event = Event::from_fields(&f).ok_or(bad(Malformed::UnknownValue))?;
        Ok(TraceRecord { sequence: r.u64(0)?, event })
    }

    fn resume_after(&self) -> Option<u64> {
        Some(self.sequence.wrapping_add(1))
    }
}

// ---------------------------------------------------------------------------------------------
// Driver side: writers.

/// Writes a paged response: `prefix` bytes of fixed part (after the paged header) written by
/// `fixed`, then as many entries as fit. `cursor_base` is the skip-count cursor of the first
/// entry; sequence-based entries ([`WireEntry::resume_after`]) override it. `empty_next` is the
/// cursor reported when no entry was left to send.
fn write_paged<T: WireEntry>(
    out: &mut [u8],
    prefix: usize,
    fixed: impl FnOnce(&mut [u8]) -> Result<(), IoctlError>,
    entries: impl Iterator<Item = T>,
    cursor_base: u64,
    empty_next: u64,
) -> Result<usize, IoctlError> {
    let start = PAGED_HEADER_LEN + prefix;
    let mut entries = entries.peekable();
    if out.len() < start {
        let needed = start + if entries.peek().is_some() { T::LEN } else { 0 };
        return Err(IoctlError::BufferTooSmall { needed });
    }
    let mut count: u32 = 0;
    let mut next = empty_next;
    let mut more = false;
    let mut len = start;
    while let Some(entry) = entries.peek() {
        let end = len + T::LEN;
        if end > out.len() || count == u32::MAX {
            more = true;
            break;
        }
        let slot = out.get_mut(len..end).ok_or(IoctlError::BufferTooSmall { needed: end })?;
        entry.encode(slot)?;
        next = entry.resume_after().unwrap_or(cursor_base.saturating_add(u64::from(count) + 1));
        count += 1;
        len = end;
        entries.next();
    }
    if more && count == 0 {
        return Err(IoctlError::BufferTooSmall { needed: start + T::LEN });
    }
    fixed(out.get_mut(PAGED_HEADER_LEN..start).ok_or(IoctlError::BufferTooSmall { needed: start })?)?;
    let mut w = Writer::new(out);
    w.u16(0, VERSION)?;
    w.u16(2, if more { FLAG_MORE } else { 0 })?;
    w.u32(4, count)?;
    w.u64(8, next)?;
    Ok(len)
}

fn skip<I: Iterator>(entries: I, cursor: u64) -> impl Iterator<Item = I::Item> {
    entries.skip(usize::try_from(cursor).unwrap_or(usize::MAX))
}

/// LIST_BINDINGS: every binding then every address family, from the `cursor`-th.
/// E.g. `engine.bindings().map(ListEntry::binding).chain(engine.address_families().map(ListEntry::address_family))`.
pub fn encode_list_bindings_response(
    out: &mut [u8],
    cursor: u64,
    entries: impl Iterator<Item = ListEntry>,
) -> Result<usize, IoctlError> {
    write_paged(out, 0, |_| Ok(()), skip(entries, cursor), cursor, cursor)
}

/// LIST_CALLS: e.g. `engine.calls().map(CallEntry::new)`, from the `cursor`-th.
pub fn encode_list_calls_response(
    out: &mut [u8],
    cursor: u64,
    entries: impl Iterator<Item = CallEntry>,
) -> Result<usize, IoctlError> {
    write_paged(out, 0, |_| Ok(()), skip(entries, cursor), cursor, cursor)
}

fn id_response(out: &mut [u8], id: Id) -> Result<usize, IoctlError> {
    let out = out.get_mut(..ID_RESPONSE_LEN).ok_or(IoctlError::BufferTooSmall { needed: ID_RESPONSE_LEN })?;
    let mut w = Writer::new(out);
    w.u16(0, VERSION)?;
    w.u16(2, 0)?;
    w.u32(4, 0)?;
    w.u64(8, id.to_u64())?;
    Ok(ID_RESPONSE_LEN)
}

/// MAKE_CALL: the new call's id.
pub fn encode_make_call_response(out: &mut [u8], call: Id) -> Result<usize, IoctlError> {
    id_response(out, call)
}

/// ADD_PARTY: the new party's id.
pub fn encode_add_party_response(out: &mut [u8], party: Id) -> Result<usize, IoctlError> {
    id_response(out, party)
}

/// A call as QUERY_CALL reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CallSummary {
    pub id: u64,
    pub af: u64,
    pub state: CallState,
    pub closing: Option<CloseReason>,
    pub profile: TrafficProfile,
    pub queued: u32,
    pub adding: u32,
    pub connected: u32,
    pub dropping: u32,
    pub parameters_changed: bool,
}

impl CallSummary {
    /// From a call id and `Engine::call_info`.
    pub fn new(id: Id, info: &CallInfo) -> Self {
        CallSummary {
            id: id.to_u64(),
            af: info.af.to_u64(),
            state: info.state,
            closing: info.closing,
            profile: info.profile,
            queued: info.queued,
            adding: info.adding,
            connected: info.connected,
            dropping: info.dropping,
            parameters_changed: info.parameters_changed,
        }
    }

    fn encode(&self, out: &mut [u8]) -> Result<(), IoctlError> {
        let mut w = Writer::new(out);
        let (closing, status) = close_to_wire(self.closing);
        w.u64(0, self.id)?;
        w.u64(8, self.af)?;
        w.put(
            16,
            &[
                call_state_to_u8(self.state),
                closing,
                self.profile.service as u8,
                self.parameters_changed as u8,
            ],
        )?;
        w.u32(20, status as u32)?;
        w.u32(24, self.profile.peak_cell_rate)?;
        w.u32(28, self.profile.max_sdu)?;
        w.u32(32, self.queued)?;
        w.u32(36, self.adding)?;
        w.u32(40, self.connected)?;
        w.u32(44, self.dropping)
    }

    fn decode(bytes: &[u8]) -> Result<Self, IoctlError> {
        let r = Reader::new(bytes, bad(Malformed::Truncated));
        let unknown = bad(Malformed::UnknownValue);
        let changed = r.u8(19)?;
        if changed > 1 {
            return Err(unknown);
        }
        Ok(CallSummary {
            id: r.u64(0)?,
            af: r.u64(8)?,
            state: call_state_from_u8(r.u8(16)?).ok_or(unknown)?,
            closing: close_from_wire(r.u8(17)?, r.u32(20)? as i32).ok_or(unknown)?,
            profile: TrafficProfile {
                service: service_from_u8(r.u8(18)?).ok_or(unknown)?,
                peak_cell_rate: r.u32(24)?,
                max_sdu: r.u32(28)?,
            },
            queued: r.u32(32)?,
            adding: r.u32(36)?,
            connected: r.u32(40)?,
            dropping: r.u32(44)?,
            parameters_changed: changed == 1,
        })
    }
}

/// QUERY_CALL: the call, then its parties from the `cursor`-th.
/// E.g. `engine.parties_of(call).filter_map(|p| Some(PartyEntry::new(p, &engine.party_info(p)?)))`.
pub fn encode_query_call_response(
    out: &mut [u8],
    call: &CallSummary,
    cursor: u64,
    parties: impl Iterator<Item = PartyEntry>,
) -> Result<usize, IoctlError> {
    write_paged(out, CALL_BLOCK_LEN, |b| call.encode(b), skip(parties, cursor), cursor, cursor)
}

fn counters_array(c: &Counters) -> [u64; COUNTER_COUNT] {
    [
        c.calls_requested,
        c.calls_made,
        c.calls_failed,
        c.calls_closed,
        c.parties_added,
        c.parties_failed,
        c.parties_dropped_local,
        c.parties_dropped_remote,
        c.drop_failures,
        c.close_failures,
        c.delete_failures,
        c.refused,
        c.lost_actions,
        c.lists_received,
        c.lists_returned,
        c.address_queries,
        c.address_query_failures,
    ]
}

/// READ_COUNTERS.
pub fn encode_counters_response(out: &mut [u8], counters: &Counters) -> Result<usize, IoctlError> {
    let out = out
        .get_mut(..COUNTERS_RESPONSE_LEN)
        .ok_or(IoctlError::BufferTooSmall { needed: COUNTERS_RESPONSE_LEN })?;
    let mut w = Writer::new(out);
    w.u16(0, VERSION)?;
    w.u16(2, 0)?;
    w.u32(4, COUNTER_COUNT as u32)?;
    for (i, v) in counters_array(counters).into_iter().enumerate() {
        w.u64(8 + 8 * i, v)?;
    }
    Ok(COUNTERS_RESPONSE_LEN)
}

/// READ_TRACE: e.g. `encode_trace_response(out, trace.next_sequence(), trace.since(from))`.
/// `next` in the answer is the sequence after the last event sent, or `next_sequence` when none.
pub fn encode_trace_response(
    out: &mut [u8],
    next_sequence: u64,
    events: impl Iterator<Item = (u64, TraceEvent)>,
) -> Result<usize, IoctlError> {
    let records = events.map(|(sequence, e)| TraceRecord { sequence, event: e.into() });
    write_paged(out, 0, |_| Ok(()), records, next_sequence, next_sequence)
}

// ---------------------------------------------------------------------------------------------
// Host side: decoders.

/// A decoded paged response, every entry already validated.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a, T> {
    /// Entries were left out: send [`Page::next`] to continue.
    pub more: bool,
    /// The cursor to continue from.
    pub next: u64,
    entries: &'a [u8],
    _entry: core::marker::PhantomData<T>,
}

impl<'a, T: WireEntry> Page<'a, T> {
    pub fn len(&self) -> usize {
        self.entries.len() / T::LEN
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        self.entries.chunks_exact(T::LEN).filter_map(|b| T::decode(b).ok())
    }
}

fn response_header(bytes: &[u8], minimum: usize) -> Result<Reader<'_>, IoctlError> {
    let r = Reader::new(bytes, bad(Malformed::Truncated));
    if bytes.len() < RESPONSE_HEADER_LEN {
        return Err(bad(Malformed::Truncated));
    }
    let version = r.u16(0)?;
    if version != VERSION {
        return Err(IoctlError::Version { found: version });
    }
    if bytes.len() < minimum {
        return Err(bad(Malformed::Truncated));
    }
    Ok(r)
}

fn decode_paged<T: WireEntry>(bytes: &[u8], prefix: usize) -> Result<(Page<'_, T>, &[u8]), IoctlError> {
    let start = PAGED_HEADER_LEN + prefix;
    let r = response_header(bytes, start)?;
    let flags = r.u16(2)?;
    if flags & !FLAG_MORE != 0 {
        return Err(bad(Malformed::UnknownValue));
    }
    let count = r.u32(4)? as usize;
    let expected =
        count.checked_mul(T::LEN).and_then(|n| n.checked_add(start)).ok_or(bad(Malformed::Truncated))?;
    if bytes.len() < expected {
        return Err(bad(Malformed::Truncated));
    }
    if bytes.len() > expected {
        return Err(bad(Malformed::TrailingBytes));
    }
    let entries = r.slice(start, count * T::LEN)?;
    for entry in entries.chunks_exact(T::LEN) {
        T::decode(entry)?;
    }
    let page =
        Page { more: flags & FLAG_MORE != 0, next: r.u64(8)?, entries, _entry: core::marker::PhantomData };
    Ok((page, r.slice(PAGED_HEADER_LEN, prefix)?))
}

/// LIST_BINDINGS output.
pub fn decode_list_bindings_response(bytes: &[u8]) -> Result<Page<'_, ListEntry>, IoctlError> {
    Ok(decode_paged(bytes, 0)?.0)
}

/// LIST_CALLS output.
pub fn decode_list_calls_response(bytes: &[u8]) -> Result<Page<'_, CallEntry>, IoctlError> {
    Ok(decode_paged(bytes, 0)?.0)
}

fn decode_id_response(bytes: &[u8]) -> Result<u64, IoctlError> {
    let r = response_header(bytes, ID_RESPONSE_LEN)?;
    if bytes.len() > ID_RESPONSE_LEN {
        return Err(bad(Malformed::TrailingBytes));
    }
    if r.u16(2)? != 0 || r.u32(4)? != 0 {
        return Err(bad(Malformed::UnknownValue));
    }
    r.u64(8)
}

/// MAKE_CALL output: the call id.
pub fn decode_make_call_response(bytes: &[u8]) -> Result<u64, IoctlError> {
    decode_id_response(bytes)
}

/// ADD_PARTY output: the party id.
pub fn decode_add_party_response(bytes: &[u8]) -> Result<u64, IoctlError> {
    decode_id_response(bytes)
}

/// QUERY_CALL output.
pub fn decode_query_call_response(bytes: &[u8]) -> Result<(CallSummary, Page<'_, PartyEntry>), IoctlError> {
    let (page, call) = decode_paged(bytes, CALL_BLOCK_LEN)?;
    Ok((CallSummary::decode(call)?, page))
}

/// READ_COUNTERS output. Counters beyond the ones this side knows are ignored (a later driver
/// may append some); fewer than [`COUNTER_COUNT`] is malformed.
pub fn decode_counters_response(bytes: &[u8]) -> Result<Counters, IoctlError> {
    let r = response_header(bytes, COUNTERS_RESPONSE_LEN)?;
    let count = r.u32(4)? as usize;
    if r.u16(2)? != 0 || count < COUNTER_COUNT {
        return Err(bad(Malformed::UnknownValue));
    }
    if count.checked_mul(8).and_then(|n| n.checked_add(8)) != Some(bytes.len()) {
        return Err(bad(Malformed::TrailingBytes));
    }
    let v = |i: usize| r.u64(8 + 8 * i);
    Ok(Counters {
        calls_requested: v(0)?,
        calls_made: v(1)?,
        calls_failed: v(2)?,
        calls_closed: v(3)?,
        parties_added: v(4)?,
        parties_failed: v(5)?,
        parties_dropped_local: v(6)?,
        parties_dropped_remote: v(7)?,
        drop_failures: v(8)?,
        close_failures: v(9)?,
        delete_failures: v(10)?,
        refused: v(11)?,
        lost_actions: v(12)?,
        lists_received: v(13)?,
        lists_returned: v(14)?,
        address_queries: v(15)?,
        address_query_failures: v(16)?,
    })
}

/// READ_TRACE output.
pub fn decode_trace_response(bytes: &[u8]) -> Result<Page<'_, TraceRecord>, IoctlError> {
    Ok(decode_paged(bytes, 0)?.0)
}
