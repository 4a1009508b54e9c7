//! The engine: bindings, address families, point-to-multipoint calls and their parties.
//!
//! DDI pages: NdisClMakeCall, NdisClAddParty, NdisClDropParty, NdisClCloseCall,
//! ProtocolClIncomingDropParty, ProtocolClIncomingCloseCall, ProtocolClNotifyCloseAf,
//! NdisClCloseAddressFamily, ProtocolUnbindAdapterEx, NdisCoDeleteVc
//! (https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/).
//!
//! Flow. The glue holds one spin lock around every engine method. A method records the new state
//! and queues the object for work; the glue then calls [`Engine::poll`] repeatedly, and each
//! call does O(1) work and returns at most one [`Action`] — a request to make of NDIS — whose
//! *pending state is already recorded*. The glue releases the lock, makes the request, and if NDIS
//! returns anything but `NDIS_STATUS_PENDING` feeds the status back through the same `on_*`
//! method NDIS would have called, because NDIS will not call the completion handler itself
//! (NdisClDropParty: "the client should make an internal call to its ProtocolClDropPartyComplete").
//! A completion may therefore arrive before the request returns, on another processor: the state
//! never depends on code that runs after the request.
//!
//! Party bookkeeping per call is O(1): counts by state, an intrusive list of connected parties
//! (the teardown pops its head), and one deferred drop slot (see [`Call`]).

use crate::list::{Link, List, Thread, NIL};
use crate::model::{AtmAddress, Handle, Status, TrafficProfile};
use crate::slab::{Exhausted, Id, Returned, Slab};

mod local_address;
pub use local_address::{LocalAddress, Query, MAX_ATTEMPTS};

/// Memory lent to (or given back by) one of the engine's tables.
pub enum LentMemory {
    Bindings(Returned<Binding>),
    AddressFamilies(Returned<AddressFamily>),
    Calls(Returned<Call>),
    Parties(Returned<Party>),
}

use crate::census::{Census, Refusals, TableCensus, WorkCensus};
use crate::slab::Returned as Lent;
use crate::trace::{Cause, Counters, ObjectKind, Trace, TraceEvent};

/// Which table an allocation request is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Table {
    Bindings,
    AddressFamilies,
    Calls,
    Parties,
}

/// An event the engine refused. Counted and traced; the driver answers with a status.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// A table is full: the glue must lend memory (outside the lock) and try again.
    NeedMemory(Table, Exhausted),
    /// No live object has this id (never existed, already freed, or a stale NDIS context).
    UnknownId(ObjectKind),
    /// The event is not legal in the object's state.
    InvalidState(ObjectKind),
    /// The object is being torn down.
    Closing,
    /// The address family is not one partyline uses: not Q.2931 UNI 3.1, or the binding already
    /// has its Q.2931 UNI 3.1 family opening or open.
    UnsupportedAddressFamily,
    /// A call needs at least one leaf.
    NoLeaves,
}

impl Error {
    /// The status a request that failed this way is answered with.
    pub fn status(self) -> Status {
        match self {
            Error::NeedMemory(..) => Status::RESOURCES,
            Error::UnknownId(_) => Status::FAILURE,
            Error::InvalidState(_) => Status::INVALID_STATE,
            Error::Closing => Status::CLOSING,
            Error::UnsupportedAddressFamily => Status::NOT_SUPPORTED,
            Error::NoLeaves => Status::INVALID_ADDRESS,
        }
    }
}

/// A request the glue makes of NDIS, with the lock released.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// `NdisCoCreateVc(binding, af, call, &vc)`; answer with [`Engine::on_vc_created`].
    CreateVc { call: Id, binding: Handle, af: Handle },
    /// `NdisClMakeCall(vc, params, party, &handle)` with `MULTIPOINT_VC` and a SETUP for `leaf`
    /// from `calling`, the AF's own address.
    MakeCall {
        call: Id,
        party: Id,
        vc: Handle,
        leaf: AtmAddress,
        calling: AtmAddress,
        profile: TrafficProfile,
    },
    /// `NdisClAddParty(vc, party, params, &handle)` with ADD PARTY IEs for `leaf` from `calling`.
    AddParty {
        call: Id,
        party: Id,
        vc: Handle,
        leaf: AtmAddress,
        calling: AtmAddress,
        profile: TrafficProfile,
    },
    /// `NdisCoOidRequest(binding, handle, NULL, NULL, request)` querying OID_CO_GET_ADDRESSES into
    /// a `length`-byte buffer; answer with [`Engine::on_addresses_queried`].
    QueryAddresses { af: Id, binding: Handle, handle: Handle, length: u32 },
    /// `NdisClDropParty(handle, NULL, 0)`. The handle is dead from this moment.
    DropParty { party: Id, handle: Handle },
    /// `NdisClCloseCall(vc, party handle or NULL, NULL, 0)`.
    CloseCall { call: Id, vc: Handle, party: Option<(Id, Handle)> },
    /// `NdisCoDeleteVc(vc)`; answer with [`Engine::on_vc_deleted`].
    DeleteVc { call: Id, vc: Handle },
    /// `NdisClCloseAddressFamily(handle)`.
    CloseAf { af: Id, handle: Handle },
    /// `NdisClNotifyCloseAddressFamilyComplete(handle, SUCCESS)` after a pended ProtocolClNotifyCloseAf.
    NotifyCloseAfComplete { handle: Handle },
    /// Every address family of an unbinding binding is closed, or the last set-up of a pausing
    /// binding completed: wake the thread that waits for it (unbind or pause).
    BindingQuiet { binding: Id, cookie: usize },
    /// `NdisUnbindAdapter(handle)`: the binding's address family could not be opened, so the
    /// binding is of no use; NDIS unbinds it later (ProtocolUnbindAdapterEx), or not at all.
    /// nf-ndis-ndisclopenaddressfamilyex: "If the client's call to NdisClOpenAddressFamilyEx
    /// fails, the client should call the NdisUnbindAdapter function to request NDIS to release its
    /// binding to the underlying miniport adapter"; nf-ndis-ndisunbindadapter: outside
    /// ProtocolBindAdapterEx and ProtocolUnbindAdapterEx, <= DISPATCH_LEVEL, and the handle may be
    /// invalid once it returns.
    UnbindAdapter { binding: Id, handle: Handle },
}

// ---------------------------------------------------------------------------------------------
// Objects

/// `ProtocolBindAdapterEx` → `NdisOpenAdapterEx` → … → `NdisCloseAdapterEx`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BindingState {
    /// `NdisOpenAdapterEx` pended.
    Opening,
    Open {
        handle: Handle,
    },
    /// `ProtocolUnbindAdapterEx` ran: address families are being closed.
    Unbinding {
        handle: Handle,
    },
    /// `NdisCloseAdapterEx` was called; the handle is dead.
    Closing,
}

/// Where an open binding's data path is, after network/binding-states-of-a-protocol-driver:
/// a binding enters *Paused* when its open succeeds, *Running* when NDIS restarts it
/// (NetEventRestart), *Pausing* on NetEventPause, and *Paused* once the pause is complete.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Operational {
    Paused,
    Pausing,
    Running,
}

/// A PnP event that changes what a binding may start ([`Engine::on_pnp_event`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PnpEvent {
    /// NetEventPause.
    Pause,
    /// NetEventRestart.
    Restart,
    /// NetEventSetPower: `working` is D0.
    SetPower { working: bool },
}

/// A binding to a CoNDIS miniport.
#[derive(Debug)]
pub struct Binding {
    state: BindingState,
    /// Opaque glue value (its per-binding I/O block), returned in [`Action::BindingQuiet`].
    cookie: usize,
    afs: u32,
    operational: Operational,
    /// NetEventSetPower to D1-D3 was indicated and D0 not yet.
    low_power: bool,
    /// NdisClMakeCall / NdisClAddParty requests made on the binding and not yet completed.
    setups: u32,
}

/// `ProtocolCoAfRegisterNotify` → `NdisClOpenAddressFamilyEx` → … → `NdisClCloseAddressFamily`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AfState {
    /// `NdisClOpenAddressFamilyEx` pended.
    Opening,
    Open {
        handle: Handle,
    },
    /// Closing every call before `NdisClCloseAddressFamily`.
    Closing {
        handle: Handle,
    },
    /// `NdisClCloseAddressFamily` was called; the handle is dead (but for the notify completion).
    CloseAfPending {
        handle: Handle,
    },
    /// Closed while ProtocolClNotifyCloseAf was still running: kept until the handler returns,
    /// which then answers SUCCESS instead of PENDING.
    Closed,
}

/// Where a ProtocolClNotifyCloseAf stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Notify {
    None,
    /// The handler is running (it has not returned yet).
    InHandler,
    /// The handler returned PENDING: NdisClNotifyCloseAddressFamilyComplete is owed.
    Pending,
}

/// An opened address family.
#[derive(Debug)]
pub struct AddressFamily {
    binding: Id,
    state: AfState,
    notify: Notify,
    /// Calls on this AF that are not yet closing (linked through `Call::af_link`).
    open_calls: List<AfCalls>,
    /// Calls on this AF, closing or not.
    calls: u32,
    /// Its place in the AF work queue.
    work: Link,
    /// The AF's own address (the calling party) and its query.
    local: LocalAddress,
    /// `NdisClCloseAddressFamily` requests that failed so far (see [`REQUEST_ATTEMPTS`]).
    close_attempts: u8,
}

/// How many times partyline makes a teardown request that NDIS or the call manager failed
/// (`NdisClCloseCall`, `NdisCoDeleteVc`, `NdisClCloseAddressFamily`) before it gives up on the
/// object. Each failure leaves the object alive in NDIS (ProtocolClCloseCallComplete: the call
/// manager failed the close; nf-ndis-ndiscodeletevc: NOT_ACCEPTED / CLOSING, the VC is not
/// deleted; ProtocolClCloseAfComplete: FAILURE, the AF is not closed), so the request is made
/// again at once, from the same drive loop. A transient failure (a low-resources moment, a
/// deactivation still pending) clears within a few attempts; a call manager that fails every one
/// would otherwise hold the unbind forever, so after this many the engine forgets the object —
/// the unbind completes — and the failure stays counted (`close_failures`, `delete_failures`)
/// and traced (`CallGone`/`AfGone` with the last failure status). At Driver Verifier's default
/// 6 % failure rate, eight failures in a row happen once in 6 * 10^9 requests.
pub const REQUEST_ATTEMPTS: u8 = 8;

/// The life of a client-created multipoint VC and its call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CallState {
    /// Waiting for `NdisCoCreateVc`.
    NeedVc,
    /// `NdisCoCreateVc` issued (it never pends).
    CreatingVc,
    /// VC created; `NdisClMakeCall` not issued yet.
    Created,
    MakeCallPending,
    Active,
    /// `NdisClCloseCall` issued.
    CloseCallPending,
    /// The call is gone (closed, or MakeCall failed): `NdisCoDeleteVc` is next.
    NeedDelete,
    /// `NdisCoDeleteVc` issued.
    Deleting,
}

/// Why a call is being closed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CloseReason {
    /// A control-device request.
    Local,
    /// `ProtocolClIncomingCloseCall` with this status.
    Remote(Status),
    /// The address family or the binding is going away.
    Teardown,
}

/// A point-to-multipoint call on a VC the client created.
#[derive(Debug)]
pub struct Call {
    af: Id,
    state: CallState,
    vc: Handle,
    profile: TrafficProfile,
    close: Option<CloseReason>,
    /// Parties waiting for MakeCall to complete before their AddParty.
    queued: List<PartyLink>,
    /// Parties whose MakeCall/AddParty is pending.
    adding: u32,
    /// Connected parties, linked for O(1) removal and teardown.
    connected: List<PartyLink>,
    /// Parties whose NdisClDropParty is pending.
    dropping: u32,
    /// A local drop of the only connected party, asked while AddParty requests were pending:
    /// carried out (as a drop, or as the close of the call) once they complete.
    deferred_drop: Option<u32>,
    /// The party in the SETUP while `NdisClMakeCall` is pending.
    make_call_party: u32,
    /// Its place in its AF's `open_calls`.
    af_link: Link,
    /// Its place in the call work queue, from which a call freed while queued is taken out in
    /// O(1) (see [`Engine::unqueue_call_work`]).
    work: Link,
    parameters_changed: bool,
    /// Failed `NdisClCloseCall` (while closing) or `NdisCoDeleteVc` (while deleting) requests
    /// (see [`REQUEST_ATTEMPTS`]).
    attempts: u8,
    /// The party whose `NdisClDropParty` the call manager refused (FAILURE: "the last remaining"
    /// party), which goes with `NdisClCloseCall` and is never dropped (see
    /// [`Engine::on_drop_party_complete`]); NIL if none.
    refused_party: u32,
}

/// The life of one party of a multipoint call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PartyState {
    /// Waiting for the call's MakeCall to complete.
    Queued,
    /// `NdisClMakeCall` (the first party) or `NdisClAddParty` pended.
    AddPending {
        drop_requested: bool,
    },
    Connected {
        handle: Handle,
    },
    /// Chosen for dropping; `NdisClDropParty` is issued by the next poll.
    DropQueued {
        handle: Handle,
    },
    /// `NdisClDropParty` issued: the handle is dead.
    DropPending,
    /// This party's handle went to `NdisClCloseCall`.
    Closing,
}

/// One leaf of a point-to-multipoint call.
///
/// Its [`PartyState`] is kept as a one-byte [`Phase`] beside the handle rather than as the enum
/// (whose tag would take a word of its own), so that a party's slot is 56 bytes (checked below):
/// the nonpaged pool per party is the slot plus its share of the chunk directory, and the target
/// is at most 64 bytes. Read and write the state through [`Party::state`] and
/// [`Party::set_state`].
#[derive(Debug)]
pub struct Party {
    call: Id,
    /// The handle of [`PartyState::Connected`] and [`PartyState::DropQueued`]; kept through
    /// [`PartyState::DropPending`] and [`PartyState::Closing`] (not used there: the handle is
    /// NDIS's while its request is in flight) for the request that fails and gives it back; else
    /// NULL.
    handle: Handle,
    phase: Phase,
    remote_drop: bool,
    /// Its place in its call's `queued` or `connected` list, or in the party work queue: one at
    /// a time, which one told by its state (Queued, Connected, DropQueued).
    link: Link,
    address: AtmAddress,
}

/// A party's slot: generation, free-list link, and the party (`None` niche-packed into it).
const _: () = assert!(core::mem::size_of::<crate::slab::Slot<Party>>() <= 56);

/// [`PartyState`] without its data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Queued,
    AddPending,
    AddPendingDropRequested,
    Connected,
    DropQueued,
    DropPending,
    Closing,
}

impl Party {
    fn new(call: Id, address: AtmAddress) -> Party {
        Party {
            call,
            handle: Handle::NULL,
            phase: Phase::Queued,
            remote_drop: false,
            link: Link::NONE,
            address,
        }
    }

    fn state(&self) -> PartyState {
        match self.phase {
            Phase::Queued => PartyState::Queued,
            Phase::AddPending => PartyState::AddPending { drop_requested: false },
            Phase::AddPendingDropRequested => PartyState::AddPending { drop_requested: true },
            Phase::Connected => PartyState::Connected { handle: self.handle },
            Phase::DropQueued => PartyState::DropQueued { handle: self.handle },
            Phase::DropPending => PartyState::DropPending,
            Phase::Closing => PartyState::Closing,
        }
    }

    fn set_state(&mut self, state: PartyState) {
        (self.phase, self.handle) = match state {
            PartyState::Queued => (Phase::Queued, Handle::NULL),
            PartyState::AddPending { drop_requested: false } => (Phase::AddPending, Handle::NULL),
            PartyState::AddPending { drop_requested: true } => (Phase::AddPendingDropRequested, Handle::NULL),
            PartyState::Connected { handle } => (Phase::Connected, handle),
            PartyState::DropQueued { handle } => (Phase::DropQueued, handle),
            PartyState::DropPending => (Phase::DropPending, self.handle),
            PartyState::Closing => (Phase::Closing, self.handle),
        };
    }
}

/// A call's queued or connected parties, and the parties chosen for dropping (`Party::link`).
enum PartyLink {}

impl Thread<Party> for PartyLink {
    fn link(party: &Party) -> &Link {
        &party.link
    }
    fn link_mut(party: &mut Party) -> &mut Link {
        &mut party.link
    }
}

/// An address family's calls that are not closing (`Call::af_link`).
enum AfCalls {}

impl Thread<Call> for AfCalls {
    fn link(call: &Call) -> &Link {
        &call.af_link
    }
    fn link_mut(call: &mut Call) -> &mut Link {
        &mut call.af_link
    }
}

/// The calls with work to do (`Call::work`).
enum CallWork {}

impl Thread<Call> for CallWork {
    fn link(call: &Call) -> &Link {
        &call.work
    }
    fn link_mut(call: &mut Call) -> &mut Link {
        &mut call.work
    }
}

/// The address families with work to do (`AddressFamily::work`).
enum AfWork {}

impl Thread<AddressFamily> for AfWork {
    fn link(af: &AddressFamily) -> &Link {
        &af.work
    }
    fn link_mut(af: &mut AddressFamily) -> &mut Link {
        &mut af.work
    }
}

/// What a query returns about a call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CallInfo {
    pub state: CallState,
    pub af: Id,
    pub profile: TrafficProfile,
    pub closing: Option<CloseReason>,
    pub queued: u32,
    pub adding: u32,
    pub connected: u32,
    pub dropping: u32,
    pub parameters_changed: bool,
}

/// What a query returns about a party.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PartyInfo {
    pub call: Id,
    pub state: PartyState,
    pub address: AtmAddress,
}

// ---------------------------------------------------------------------------------------------

/// Every object partyline owns, and the work queue that drives them.
pub struct Engine {
    bindings: Slab<Binding>,
    afs: Slab<AddressFamily>,
    calls: Slab<Call>,
    parties: Slab<Party>,
    call_work: List<CallWork>,
    af_work: List<AfWork>,
    party_work: List<PartyLink>,
    deferred: Deferred,
    pub counters: Counters,
    /// `counters.refused`, split by why and by object kind.
    pub refusals: Refusals,
    pub trace: Trace,
    /// The address family whose `NdisClCloseAddressFamily` the last [`Engine::poll`] asked for:
    /// the glue makes that request with the lock released, and polls again only after it, so
    /// until the next poll the family is still open in NDIS ([`Engine::binding_has_af`]).
    close_unissued: Option<Id>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// Shorthand for the result of an event.
pub type Result<T = ()> = core::result::Result<T, Error>;

impl Engine {
    /// An engine with no objects and no memory. Its bytes are all zero (slot number 0 is "none",
    /// empty queues and ring entries are tag 0), so the driver's static engine is zero-fill
    /// (`.bss`) and takes no room in the image; `tests/image.rs` checks that.
    pub const fn new() -> Self {
        Engine {
            bindings: Slab::new(),
            afs: Slab::new(),
            calls: Slab::new(),
            parties: Slab::new(),
            call_work: List::EMPTY,
            af_work: List::EMPTY,
            party_work: List::EMPTY,
            deferred: Deferred::EMPTY,
            counters: Counters::ZERO,
            refusals: Refusals::ZERO,
            trace: Trace::new(),
            close_unissued: None,
        }
    }

    // ----- memory -----

    /// Lends a chunk to a table (see [`crate::slab::Slab::add_chunk`]).
    pub fn lend(&mut self, table: Table, memory: LentMemory) -> core::result::Result<(), LentMemory> {
        macro_rules! lend_to {
            ($slab:expr, $variant:ident) => {
                match memory {
                    LentMemory::$variant(Lent::Chunk(chunk)) => {
                        $slab.add_chunk(chunk).map_err(|c| LentMemory::$variant(Lent::Chunk(c)))
                    }
                    LentMemory::$variant(Lent::Directory(dir)) => {
                        let old = $slab.replace_directory(dir);
                        if old.is_empty() {
                            Ok(())
                        } else {
                            Err(LentMemory::$variant(Lent::Directory(old)))
                        }
                    }
                    other => Err(other),
                }
            };
        }
        match table {
            Table::Bindings => lend_to!(self.bindings, Bindings),
            Table::AddressFamilies => lend_to!(self.afs, AddressFamilies),
            Table::Calls => lend_to!(self.calls, Calls),
            Table::Parties => lend_to!(self.parties, Parties),
        }
    }

    /// Live objects per table: bindings, address families, calls, parties.
    pub fn population(&self) -> [usize; 4] {
        [self.bindings.len(), self.afs.len(), self.calls.len(), self.parties.len()]
    }

    /// Gives back all memory; call only when every table is empty (else objects are lost).
    pub fn take_memory(&mut self, mut give_back: impl FnMut(LentMemory)) {
        self.bindings.take_memory(|m| give_back(LentMemory::Bindings(m)));
        self.afs.take_memory(|m| give_back(LentMemory::AddressFamilies(m)));
        self.calls.take_memory(|m| give_back(LentMemory::Calls(m)));
        self.parties.take_memory(|m| give_back(LentMemory::Parties(m)));
    }

    /// One block of memory to give back to pool, or `None` when the engine holds none. For
    /// unload, after every table emptied.
    pub fn take_one_memory(&mut self) -> Option<LentMemory> {
        if let Some(m) = self.parties.take_one() {
            return Some(LentMemory::Parties(m));
        }
        if let Some(m) = self.calls.take_one() {
            return Some(LentMemory::Calls(m));
        }
        if let Some(m) = self.afs.take_one() {
            return Some(LentMemory::AddressFamilies(m));
        }
        self.bindings.take_one().map(LentMemory::Bindings)
    }

    fn reject<T>(&mut self, kind: ObjectKind, id: Option<Id>, error: Error) -> Result<T> {
        self.refuse(kind, id, error);
        Err(error)
    }

    /// Counts and traces a refused event. Out of line and cold: refusals are rare, and there are
    /// some forty places that refuse (one copy of this code instead of forty in the image).
    #[cold]
    #[inline(never)]
    fn refuse(&mut self, kind: ObjectKind, id: Option<Id>, error: Error) {
        if !matches!(error, Error::NeedMemory(..)) {
            self.counters.refused += 1;
            self.refusals.count(kind, error);
            self.trace.push(TraceEvent::Refused { kind, id, error });
        }
    }

    // ----- bindings -----

    /// `ProtocolBindAdapterEx`: a new binding, about to call `NdisOpenAdapterEx`.
    pub fn bind(&mut self, cookie: usize) -> Result<Id> {
        let binding = Binding {
            state: BindingState::Opening,
            cookie,
            afs: 0,
            operational: Operational::Paused,
            low_power: false,
            setups: 0,
        };
        match self.bindings.insert(binding) {
            Ok(id) => {
                self.trace.push(TraceEvent::Binding {
                    id,
                    from: None,
                    to: BindingState::Opening,
                    cause: Cause::BindAdapter,
                });
                Ok(id)
            }
            Err((need, _)) => Err(Error::NeedMemory(Table::Bindings, need)),
        }
    }

    /// `NdisOpenAdapterEx` completed (synchronously or through ProtocolOpenAdapterCompleteEx).
    /// On failure the binding is gone.
    pub fn on_open_adapter_complete(&mut self, id: Id, status: Status, handle: Handle) -> Result {
        let Some(binding) = self.bindings.get_mut(id) else {
            return self.reject(ObjectKind::Binding, Some(id), Error::UnknownId(ObjectKind::Binding));
        };
        if binding.state != BindingState::Opening {
            return self.reject(ObjectKind::Binding, Some(id), Error::InvalidState(ObjectKind::Binding));
        }
        if status.is_success() && !handle.is_null() {
            self.binding_to(id, BindingState::Open { handle }, Cause::OpenAdapterComplete);
        } else {
            self.bindings.remove(id);
            self.trace.push(TraceEvent::BindingGone { id, status });
        }
        Ok(())
    }

    /// The glue's value recorded by [`Engine::bind`].
    pub fn binding_cookie(&self, id: Id) -> Option<usize> {
        self.bindings.get(id).map(|b| b.cookie)
    }

    /// The glue's per-binding value of the binding address family `af` is on.
    pub fn af_cookie(&self, af: Id) -> Option<usize> {
        self.afs.get(af).and_then(|a| self.bindings.get(a.binding)).map(|b| b.cookie)
    }

    pub fn binding_handle(&self, id: Id) -> Option<Handle> {
        match self.bindings.get(id)?.state {
            BindingState::Open { handle } | BindingState::Unbinding { handle } => Some(handle),
            _ => None,
        }
    }

    /// `ProtocolReceiveNetBufferLists` / `ProtocolCoReceiveNetBufferLists`: `lists` lists arrived
    /// on `binding` (the handler's binding context, `None` when it names no id). partyline's VCs
    /// are transmit-only, so it keeps nothing. When the driver owns them (`owned`:
    /// `NDIS_RECEIVE_FLAGS_RESOURCES` clear) the answer is the binding handle to give them back
    /// with at once (`NdisReturnNetBufferLists`), and they count as returned; when they are only
    /// lent, NDIS takes them back as the handler returns (`Ok(None)`). Owned lists on a binding
    /// that is unknown or not open cannot be returned (no handle): refused, counted and traced.
    /// network/receiving-data-in-protocol-drivers.
    pub fn on_receive(&mut self, binding: Option<Id>, lists: u32, owned: bool) -> Result<Option<Handle>> {
        self.counters.lists_received += u64::from(lists);
        if !owned {
            return Ok(None);
        }
        let Some(id) = binding else {
            return self.reject(ObjectKind::Binding, None, Error::UnknownId(ObjectKind::Binding));
        };
        match self.bindings.get(id).map(|b| b.state) {
            Some(BindingState::Open { handle } | BindingState::Unbinding { handle }) => {
                self.counters.lists_returned += u64::from(lists);
                Ok(Some(handle))
            }
            Some(_) => self.reject(ObjectKind::Binding, Some(id), Error::InvalidState(ObjectKind::Binding)),
            None => self.reject(ObjectKind::Binding, Some(id), Error::UnknownId(ObjectKind::Binding)),
        }
    }

    /// `ProtocolUnbindAdapterEx`: close every address family of the binding (which closes every
    /// call), then the adapter. Returns whether it is already quiet (no AF left), in which case
    /// the glue may call `NdisCloseAdapterEx` at once.
    pub fn unbind(&mut self, id: Id) -> Result<bool> {
        let Some(binding) = self.bindings.get_mut(id) else {
            return self.reject(ObjectKind::Binding, Some(id), Error::UnknownId(ObjectKind::Binding));
        };
        let BindingState::Open { handle } = binding.state else {
            return self.reject(ObjectKind::Binding, Some(id), Error::InvalidState(ObjectKind::Binding));
        };
        let quiet = binding.afs == 0;
        self.binding_to(id, BindingState::Unbinding { handle }, Cause::UnbindAdapter);
        // Address families are few (one per call manager); walking them here is not on any
        // party path.
        for index in self.afs.numbers() {
            if let Some(af) = self.afs.id_at(index) {
                if self.afs.get(af).is_some_and(|a| a.binding == id) {
                    self.begin_af_close(af, Cause::UnbindAdapter);
                }
            }
        }
        Ok(quiet)
    }

    /// Whether an unbinding binding has no address family left.
    pub fn binding_quiet(&self, id: Id) -> bool {
        self.bindings.get(id).is_some_and(|b| b.afs == 0)
    }

    /// About to call `NdisCloseAdapterEx`: returns the handle, dead from now on.
    pub fn begin_close_adapter(&mut self, id: Id) -> Result<Handle> {
        let Some(binding) = self.bindings.get_mut(id) else {
            return self.reject(ObjectKind::Binding, Some(id), Error::UnknownId(ObjectKind::Binding));
        };
        match binding.state {
            BindingState::Unbinding { handle } if binding.afs == 0 => {
                self.binding_to(id, BindingState::Closing, Cause::CloseAdapter);
                Ok(handle)
            }
            _ => self.reject(ObjectKind::Binding, Some(id), Error::InvalidState(ObjectKind::Binding)),
        }
    }

    /// `NdisCloseAdapterEx` completed: the binding is gone.
    pub fn on_close_adapter_complete(&mut self, id: Id) -> Result {
        match self.bindings.get(id).map(|b| b.state) {
            Some(BindingState::Closing) => {
                self.bindings.remove(id);
                self.trace.push(TraceEvent::BindingGone { id, status: Status::SUCCESS });
                Ok(())
            }
            Some(_) => self.reject(ObjectKind::Binding, Some(id), Error::InvalidState(ObjectKind::Binding)),
            None => self.reject(ObjectKind::Binding, Some(id), Error::UnknownId(ObjectKind::Binding)),
        }
    }

    /// Ids of live bindings, for listing (O(capacity); control path only).
    pub fn bindings(&self) -> impl Iterator<Item = (Id, BindingState, u32)> + '_ {
        self.bindings.numbers().filter_map(move |i| {
            let id = self.bindings.id_at(i)?;
            let b = self.bindings.get(id)?;
            Some((id, b.state, b.afs))
        })
    }

    // ----- PnP: pause, restart, power -----

    /// NetEventPause: the binding enters Pausing. network/pausing-a-binding: the protocol
    /// "should not initiate any new send requests" and the pause "is not complete until" its
    /// outstanding sends are; for a CoNDIS client partyline reads *sends* as the connection
    /// set-ups it starts (NdisClMakeCall, NdisClAddParty), which put signalling and then data on
    /// the paused adapter. New set-ups are held from now on ([`Engine::may_start_setups`]);
    /// teardown goes on (ProtocolUnbindAdapterEx, which NDIS calls only on a paused binding, must
    /// close every call). Returns whether the pause is already complete (no set-up in flight);
    /// otherwise the glue waits for [`Action::BindingQuiet`] and asks [`Engine::pause_settled`].
    pub fn on_pause(&mut self, id: Id) -> Result<bool> {
        self.on_pnp_event(id, PnpEvent::Pause).map(|waits| waits.is_none())
    }

    /// An open binding, or the refusal (counted and traced) of a PnP event for it.
    fn open_binding_mut(&mut self, id: Id) -> Result<&mut Binding> {
        let error = match self.bindings.get(id).map(|b| b.state) {
            Some(BindingState::Open { .. }) => None,
            Some(_) => Some(Error::InvalidState(ObjectKind::Binding)),
            None => Some(Error::UnknownId(ObjectKind::Binding)),
        };
        if let Some(error) = error {
            return self.reject(ObjectKind::Binding, Some(id), error);
        }
        self.bindings.get_mut(id).ok_or(Error::UnknownId(ObjectKind::Binding))
    }

    /// The three PnP events that change what the binding may start, in one entry (the glue's one
    /// call site): `Ok(Some(cookie))` when a pause must wait for set-ups in flight (the glue
    /// waits for [`Action::BindingQuiet`] and asks [`Engine::pause_settled`]).
    pub fn on_pnp_event(&mut self, id: Id, event: PnpEvent) -> Result<Option<usize>> {
        let binding = self.open_binding_mut(id)?;
        let (operational, low_power, cookie) = (binding.operational, binding.low_power, binding.cookie);
        match event {
            PnpEvent::Pause => self.operational_to(id, Operational::Pausing, low_power, Cause::Pause),
            PnpEvent::Restart => self.operational_to(id, Operational::Running, low_power, Cause::Restart),
            PnpEvent::SetPower { working } => self.operational_to(id, operational, !working, Cause::SetPower),
        }
        if event == PnpEvent::Pause {
            return Ok((!self.pause_settled(id)).then_some(cookie));
        }
        self.resume_setups(id);
        Ok(None)
    }

    /// Whether a pausing binding has no set-up in flight any more; if so it is now Paused.
    pub fn pause_settled(&mut self, id: Id) -> bool {
        let Some(binding) = self.bindings.get(id) else { return true };
        if binding.operational == Operational::Pausing && binding.setups == 0 {
            let low_power = binding.low_power;
            self.operational_to(id, Operational::Paused, low_power, Cause::PauseComplete);
        }
        self.bindings.get(id).is_none_or(|b| b.operational != Operational::Pausing)
    }

    /// NetEventRestart: the binding runs again (network/restarting-a-binding); the set-ups held
    /// while it was paused are started, unless the adapter is still in a low-power state.
    pub fn on_restart(&mut self, id: Id) -> Result {
        self.on_pnp_event(id, PnpEvent::Restart).map(|_| ())
    }

    /// NetEventSetPower: `working` is D0. ns-ndis-_net_pnp_event (NDIS 6.30): on a set-power
    /// event the driver "must stop generating new I/O requests" and "must not wait for the
    /// completion of any pending I/O requests"; handling-pnp-events-and-power-management-events-
    /// in-a-protocol-driver: no OID request while the adapter is in a low-power state. So a
    /// low-power state holds new set-ups (and nothing waits); D0 lets held ones go if running.
    pub fn on_set_power(&mut self, id: Id, working: bool) -> Result {
        self.on_pnp_event(id, PnpEvent::SetPower { working }).map(|_| ())
    }

    /// Whether new connection set-ups may be started on the binding: Running and powered.
    fn may_start_setups(&self, binding: Id) -> bool {
        self.bindings.get(binding).is_some_and(|b| b.operational == Operational::Running && !b.low_power)
    }

    /// Where the binding's data path is, and whether it is in a low-power state.
    pub fn operational(&self, id: Id) -> Option<(Operational, bool)> {
        self.bindings.get(id).map(|b| (b.operational, b.low_power))
    }

    /// Queues every call of the binding that may have been held (O(capacity) over the call
    /// table: control path, on restart and power-up only). Out of line: called twice.
    #[cold]
    #[inline(never)]
    fn resume_setups(&mut self, id: Id) {
        if !self.may_start_setups(id) {
            return;
        }
        for index in self.calls.numbers() {
            let Some(call) = self.calls.id_at(index) else { continue };
            let on_binding =
                self.calls.get(call).and_then(|c| self.afs.get(c.af)).is_some_and(|a| a.binding == id);
            if on_binding {
                self.push_call_work(call);
            }
        }
    }

    /// A set-up (NdisClMakeCall / NdisClAddParty) on `call`'s binding starts (`true`) or has
    /// completed (`false`). The completion of the last one wakes a pause that waits for it.
    #[inline(never)]
    fn count_setup(&mut self, call: Id, starts: bool) {
        let Some(binding) = self.calls.get(call).and_then(|c| self.afs.get(c.af)).map(|a| a.binding) else {
            return;
        };
        let Some(b) = self.bindings.get_mut(binding) else { return };
        if starts {
            b.setups += 1;
            return;
        }
        b.setups = b.setups.saturating_sub(1);
        if b.setups == 0 && b.operational == Operational::Pausing {
            let cookie = b.cookie;
            self.defer(Owed::BindingQuiet { binding, cookie });
        }
    }

    // ----- address families -----

    /// `ProtocolCoAfRegisterNotify`: a call manager registered an address family on the binding.
    /// partyline opens only Q.2931 UNI 3.1 (`CO_ADDRESS_FAMILY_Q2931`, version 3.1). Returns the
    /// new AF's id; the glue calls `NdisClOpenAddressFamilyEx` with it as the context.
    pub fn on_af_register_notify(&mut self, binding: Id, family: u32, major: u32, minor: u32) -> Result<Id> {
        if family != 1 || major != 3 || minor != 1 {
            self.trace.push(TraceEvent::AfIgnored { binding, family, major, minor });
            return Err(Error::UnsupportedAddressFamily);
        }
        match self.bindings.get(binding).map(|b| b.state) {
            Some(BindingState::Open { .. }) => {}
            // The call manager's registration crossed the unbind (ProtocolUnbindAdapterEx began,
            // or the adapter is closing): nc-ndis-protocol_co_af_register_notify lets NDIS notify
            // at any time the binding exists, so this is not an illegal event but one the client
            // declines, as it declines a family it does not use; not counted as a refusal (found
            // by the low-resources campaign, seed 323: `af-register; unbind`).
            Some(_) => {
                self.trace.push(TraceEvent::AfIgnored { binding, family, major, minor });
                return Err(Error::Closing);
            }
            None => {
                return self.reject(ObjectKind::Binding, Some(binding), Error::UnknownId(ObjectKind::Binding))
            }
        }
        // nc-ndis-protocol_co_af_register_notify: NDIS may notify the family again (from this or
        // another call manager); a client opens a family once per binding (verifier-rules.md §7.6
        // item 45), so a registration while the binding's AF is open in NDIS (opening, open, or
        // closing its calls before NdisClCloseAddressFamily, or that close decided and not yet
        // made) is declined. Once NdisClCloseAddressFamily is called, the family may be opened
        // anew.
        if self.binding_has_af(binding) {
            self.trace.push(TraceEvent::AfIgnored { binding, family, major, minor });
            return Err(Error::UnsupportedAddressFamily);
        }
        let af = AddressFamily {
            binding,
            state: AfState::Opening,
            notify: Notify::None,
            open_calls: List::EMPTY,
            calls: 0,
            work: Link::NONE,
            local: LocalAddress::NONE,
            close_attempts: 0,
        };
        let id = match self.afs.insert(af) {
            Ok(id) => id,
            Err((need, _)) => return Err(Error::NeedMemory(Table::AddressFamilies, need)),
        };
        if let Some(b) = self.bindings.get_mut(binding) {
            b.afs += 1;
        }
        self.trace.push(TraceEvent::Af {
            id,
            from: None,
            to: AfState::Opening,
            cause: Cause::AfRegisterNotify,
        });
        Ok(id)
    }

    /// Whether `binding` has an address family open in NDIS: opening, open, or closing its calls
    /// (AFs are few: one per call manager; not on any party path).
    fn binding_has_af(&self, binding: Id) -> bool {
        self.afs.numbers().filter_map(|index| self.afs.id_at(index)).any(|af| {
            self.afs.get(af).is_some_and(|a| {
                a.binding == binding
                    && (matches!(a.state, AfState::Opening | AfState::Open { .. } | AfState::Closing { .. })
                        // Its close decided but not yet made: a registration on another processor
                        // would otherwise open the family again before NDIS sees the close (found
                        // by the 10^6-seed concurrency campaign, seed 84726).
                        || self.close_unissued == Some(af))
            })
        })
    }

    /// `NdisClOpenAddressFamilyEx` completed. On failure the AF is gone, and when the binding is
    /// left open with no address family the engine asks NDIS to unbind it
    /// ([`Action::UnbindAdapter`], per nf-ndis-ndisclopenaddressfamilyex).
    pub fn on_open_af_complete(&mut self, id: Id, status: Status, handle: Handle) -> Result {
        let Some(af) = self.afs.get_mut(id) else {
            return self.reject(ObjectKind::Af, Some(id), Error::UnknownId(ObjectKind::Af));
        };
        if af.state != AfState::Opening {
            return self.reject(ObjectKind::Af, Some(id), Error::InvalidState(ObjectKind::Af));
        }
        if status.is_success() && !handle.is_null() {
            let binding = af.binding;
            self.af_to(id, AfState::Open { handle }, Cause::OpenAfComplete);
            // An OID_CO_ADDRESS_CHANGE that overtook this completion is queried now.
            self.push_af_work(id);
            // An unbind that began while the open was pending closes it now.
            if matches!(self.bindings.get(binding).map(|b| b.state), Some(BindingState::Unbinding { .. })) {
                self.begin_af_close(id, Cause::OpenAfComplete);
            }
        } else {
            let binding = af.binding;
            self.free_af(id, status);
            if let Some(b) = self.bindings.get(binding) {
                if let (BindingState::Open { handle }, 0) = (b.state, b.afs) {
                    self.defer(Owed::UnbindAdapter { binding, handle });
                }
            }
        }
        Ok(())
    }

    /// Live address families: id, binding, state, calls.
    pub fn address_families(&self) -> impl Iterator<Item = (Id, Id, AfState, u32)> + '_ {
        self.afs.numbers().filter_map(move |i| {
            let id = self.afs.id_at(i)?;
            let af = self.afs.get(id)?;
            Some((id, af.binding, af.state, af.calls))
        })
    }

    /// `ProtocolClNotifyCloseAf`: the call manager is closing the AF. partyline closes every
    /// call, then calls `NdisClCloseAddressFamily`; it never waits inside the handler
    /// (ProtocolClNotifyCloseAf: waiting there deadlocks). The glue drives the teardown, then
    /// calls [`Engine::finish_notify_close_af`] for the status the handler returns.
    pub fn on_notify_close_af(&mut self, id: Id) -> Result {
        let Some(af) = self.afs.get_mut(id) else {
            return self.reject(ObjectKind::Af, Some(id), Error::UnknownId(ObjectKind::Af));
        };
        if af.notify != Notify::None || af.state == AfState::Opening {
            return self.reject(ObjectKind::Af, Some(id), Error::InvalidState(ObjectKind::Af));
        }
        af.notify = Notify::InHandler;
        self.begin_af_close(id, Cause::NotifyCloseAf);
        Ok(())
    }

    /// The ProtocolClNotifyCloseAf handler is about to return: SUCCESS if the AF already closed
    /// (it is released now), else PENDING, and `NdisClNotifyCloseAddressFamilyComplete` follows
    /// when the close completes.
    pub fn finish_notify_close_af(&mut self, id: Id) -> Status {
        let Some(af) = self.afs.get_mut(id) else { return Status::SUCCESS };
        if af.state == AfState::Closed {
            self.free_af(id, Status::SUCCESS);
            Status::SUCCESS
        } else {
            af.notify = Notify::Pending;
            Status::PENDING
        }
    }

    fn begin_af_close(&mut self, id: Id, cause: Cause) {
        let Some(af) = self.afs.get_mut(id) else { return };
        if let AfState::Open { handle } = af.state {
            self.af_to(id, AfState::Closing { handle }, cause);
            self.push_af_work(id);
        }
    }

    /// `NdisClCloseAddressFamily` completed: SUCCESS, the AF is gone; FAILURE, it is still open.
    ///
    /// nc-ndis-protocol_cl_close_af_complete: FAILURE means VCs or SAPs are still on the AF, "that
    /// the client must release before attempting to close the AF", or a second close of an AF
    /// already closing. partyline has neither (it closes only once its calls are gone, and never
    /// twice), so the AF is still open and its handle still names it: the close is made again
    /// (at most [`REQUEST_ATTEMPTS`] times in all), and only then is the AF forgotten.
    pub fn on_close_af_complete(&mut self, id: Id, status: Status) -> Result {
        let Some(af) = self.afs.get_mut(id) else {
            return self.reject(ObjectKind::Af, Some(id), Error::UnknownId(ObjectKind::Af));
        };
        let AfState::CloseAfPending { handle } = af.state else {
            return self.reject(ObjectKind::Af, Some(id), Error::InvalidState(ObjectKind::Af));
        };
        if !status.is_success() {
            af.close_attempts = af.close_attempts.saturating_add(1);
            if af.close_attempts < REQUEST_ATTEMPTS {
                self.af_to(id, AfState::Closing { handle }, Cause::CloseAfComplete);
                self.push_af_work(id);
                return Ok(());
            }
        }
        match af.notify {
            Notify::InHandler => {
                self.af_to(id, AfState::Closed, Cause::CloseAfComplete);
                return Ok(());
            }
            Notify::Pending => self.defer(Owed::NotifyCloseAfComplete { handle }),
            Notify::None => {}
        }
        self.free_af(id, status);
        Ok(())
    }

    fn free_af(&mut self, id: Id, status: Status) {
        // No queue may link a freed slot (see `unqueue_call_work`).
        if self.afs.get(id).is_some() {
            self.af_work.remove(&mut self.afs, id.index());
        }
        let Some(af) = self.afs.remove(id) else { return };
        self.trace.push(TraceEvent::AfGone { id, status });
        if let Some(binding) = self.bindings.get_mut(af.binding) {
            binding.afs = binding.afs.saturating_sub(1);
            if binding.afs == 0 {
                if let BindingState::Unbinding { .. } = binding.state {
                    let cookie = binding.cookie;
                    self.defer(Owed::BindingQuiet { binding: af.binding, cookie });
                }
            }
        }
    }

    // ----- calls -----

    /// A control-device request: make a point-to-multipoint call on `af` to `leaves` (the first
    /// in the SETUP, the others by AddParty once the call is up). Fails without side effects.
    pub fn make_call<L>(&mut self, af: Id, profile: TrafficProfile, leaves: L) -> Result<Id>
    where
        L: IntoIterator<Item = AtmAddress>,
        L::IntoIter: ExactSizeIterator,
    {
        let leaves = leaves.into_iter();
        if leaves.len() == 0 {
            return self.reject(ObjectKind::Call, None, Error::NoLeaves);
        }
        match self.afs.get(af).map(|a| a.state) {
            Some(AfState::Open { .. }) => {}
            Some(_) => return self.reject(ObjectKind::Af, Some(af), Error::Closing),
            None => return self.reject(ObjectKind::Af, Some(af), Error::UnknownId(ObjectKind::Af)),
        }
        if let Some(need) = self.calls.needs() {
            return Err(Error::NeedMemory(Table::Calls, need));
        }
        if self.parties.capacity() - self.parties.len() < leaves.len() {
            return Err(Error::NeedMemory(Table::Parties, self.parties.growth()));
        }
        let call = Call {
            af,
            state: CallState::NeedVc,
            vc: Handle::NULL,
            profile,
            close: None,
            queued: List::EMPTY,
            adding: 0,
            connected: List::EMPTY,
            dropping: 0,
            deferred_drop: None,
            make_call_party: NIL,
            af_link: Link::NONE,
            work: Link::NONE,
            parameters_changed: false,
            attempts: 0,
            refused_party: NIL,
        };
        let Ok(id) = self.calls.insert(call) else {
            return Err(Error::NeedMemory(Table::Calls, Exhausted::Chunk));
        };
        for leaf in leaves {
            // Capacity was checked above.
            if let Ok(pid) = self.parties.insert(Party::new(id, leaf)) {
                self.list_push(ListOf::Queued(id), pid);
                let to = PartyState::Queued;
                self.trace.push(TraceEvent::Party { id: pid, from: None, to, cause: Cause::MakeCallRequest });
            }
        }
        if let Some(a) = self.afs.get_mut(af) {
            a.calls += 1;
        }
        self.af_link(af, id);
        self.counters.calls_requested += 1;
        self.trace.push(TraceEvent::Call {
            id,
            from: None,
            to: CallState::NeedVc,
            cause: Cause::MakeCallRequest,
        });
        self.push_call_work(id);
        Ok(id)
    }

    /// `NdisCoCreateVc` returned (it never pends).
    pub fn on_vc_created(&mut self, id: Id, status: Status, vc: Handle) -> Result {
        let Some(call) = self.calls.get_mut(id) else {
            return self.reject(ObjectKind::Call, Some(id), Error::UnknownId(ObjectKind::Call));
        };
        if call.state != CallState::CreatingVc {
            return self.reject(ObjectKind::Call, Some(id), Error::InvalidState(ObjectKind::Call));
        }
        if status.is_success() && !vc.is_null() {
            call.vc = vc;
            self.call_to(id, CallState::Created, Cause::VcCreated);
        } else {
            // No VC: the call never existed for NDIS. Its parties never reached NDIS either.
            self.counters.calls_failed += 1;
            self.free_call(id, status);
            return Ok(());
        }
        self.push_call_work(id);
        Ok(())
    }

    /// `NdisClMakeCall` completed. `party_handle` is the first party's handle on success.
    pub fn on_make_call_complete(
        &mut self,
        id: Id,
        status: Status,
        party_handle: Handle,
        changed: bool,
    ) -> Result {
        let Some(call) = self.calls.get_mut(id) else {
            return self.reject(ObjectKind::Call, Some(id), Error::UnknownId(ObjectKind::Call));
        };
        if call.state != CallState::MakeCallPending {
            return self.reject(ObjectKind::Call, Some(id), Error::InvalidState(ObjectKind::Call));
        }
        call.adding = call.adding.saturating_sub(1);
        call.parameters_changed |= changed;
        self.count_setup(id, false);
        let first = self.first_adding_party(id);
        if status.is_success() && !party_handle.is_null() {
            self.call_to(id, CallState::Active, Cause::MakeCallComplete);
            self.counters.calls_made += 1;
            if let Some(party) = first {
                self.party_connected(party, party_handle, Cause::MakeCallComplete);
            }
        } else {
            // ProtocolClMakeCallComplete: on failure release the party context and delete the VC.
            self.counters.calls_failed += 1;
            if let Some(party) = first {
                self.free_party(party, status);
            }
            self.discard_queued(id);
            self.call_to(id, CallState::NeedDelete, Cause::MakeCallComplete);
        }
        self.push_call_work(id);
        Ok(())
    }

    /// A control-device request: add a leaf to a call.
    pub fn add_party(&mut self, call: Id, leaf: AtmAddress) -> Result<Id> {
        let Some(c) = self.calls.get(call) else {
            return self.reject(ObjectKind::Call, Some(call), Error::UnknownId(ObjectKind::Call));
        };
        if c.close.is_some() {
            return self.reject(ObjectKind::Call, Some(call), Error::Closing);
        }
        if !matches!(
            c.state,
            CallState::NeedVc
                | CallState::CreatingVc
                | CallState::Created
                | CallState::MakeCallPending
                | CallState::Active
        ) {
            return self.reject(ObjectKind::Call, Some(call), Error::InvalidState(ObjectKind::Call));
        }
        let id = match self.parties.insert(Party::new(call, leaf)) {
            Ok(id) => id,
            Err((need, _)) => return Err(Error::NeedMemory(Table::Parties, need)),
        };
        self.list_push(ListOf::Queued(call), id);
        self.trace.push(TraceEvent::Party {
            id,
            from: None,
            to: PartyState::Queued,
            cause: Cause::AddPartyRequest,
        });
        self.push_call_work(call);
        Ok(id)
    }

    /// `NdisClAddParty` completed.
    pub fn on_add_party_complete(&mut self, id: Id, status: Status, handle: Handle, changed: bool) -> Result {
        let Some(party) = self.parties.get(id) else {
            return self.reject(ObjectKind::Party, Some(id), Error::UnknownId(ObjectKind::Party));
        };
        let PartyState::AddPending { .. } = party.state() else {
            return self.reject(ObjectKind::Party, Some(id), Error::InvalidState(ObjectKind::Party));
        };
        let call_id = party.call;
        if let Some(call) = self.calls.get_mut(call_id) {
            call.adding = call.adding.saturating_sub(1);
            call.parameters_changed |= changed;
        }
        self.count_setup(call_id, false);
        if status.is_success() && !handle.is_null() {
            // A drop requested meanwhile is carried out by `party_connected`.
            self.counters.parties_added += 1;
            self.party_connected(id, handle, Cause::AddPartyComplete);
        } else {
            // ProtocolClAddPartyComplete: on failure the handle is invalid; free the context.
            self.counters.parties_failed += 1;
            self.free_party(id, status);
        }
        self.after_add_settled(call_id);
        self.close_if_empty(call_id);
        self.push_call_work(call_id);
        Ok(())
    }

    /// A control-device request: drop one party. Dropping the only party closes the call.
    pub fn drop_party(&mut self, id: Id) -> Result {
        let Some(party) = self.parties.get_mut(id) else {
            return self.reject(ObjectKind::Party, Some(id), Error::UnknownId(ObjectKind::Party));
        };
        let call = party.call;
        match party.state() {
            PartyState::Queued => {
                // Never reached NDIS: just forget it.
                self.list_remove(ListOf::Queued(call), id);
                self.free_party(id, Status::SUCCESS);
                self.counters.parties_dropped_local += 1;
                self.push_call_work(call);
                Ok(())
            }
            PartyState::AddPending { drop_requested: false } => {
                // "A drop requested while that party's AddParty is pending is carried out when
                // it completes": the handle does not exist yet.
                self.party_to(id, PartyState::AddPending { drop_requested: true }, Cause::DropPartyRequest);
                Ok(())
            }
            PartyState::Connected { .. } => {
                if self.calls.get(call).is_some_and(|c| c.close.is_some()) {
                    return self.reject(ObjectKind::Party, Some(id), Error::Closing);
                }
                self.request_drop(id);
                self.push_call_work(call);
                Ok(())
            }
            _ => self.reject(ObjectKind::Party, Some(id), Error::InvalidState(ObjectKind::Party)),
        }
    }

    /// A connected party is to go: drop it now if another party stays connected, defer it while
    /// AddParty requests are pending, or close the call when it is the last party
    /// (NdisClDropParty: drop all but the last; the last goes with NdisClCloseCall).
    fn request_drop(&mut self, id: Id) {
        let Some(party) = self.parties.get(id) else { return };
        let call_id = party.call;
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.connected.len() >= 2 {
            self.issue_drop_later(id, Cause::DropPartyRequest);
        } else if call.adding > 0 || !call.queued.is_empty() {
            call.deferred_drop = Some(id.index());
            self.trace.push(TraceEvent::DropDeferred { party: id });
        } else {
            self.begin_call_close(call_id, CloseReason::Local);
        }
    }

    /// Marks a connected party for dropping: taken out of the connected list now (so the close
    /// never picks it), `NdisClDropParty` issued by the next poll.
    fn issue_drop_later(&mut self, id: Id, cause: Cause) {
        let Some(party) = self.parties.get_mut(id) else { return };
        let PartyState::Connected { handle } = party.state() else { return };
        let call = party.call;
        self.list_remove(ListOf::Connected(call), id);
        self.party_to(id, PartyState::DropQueued { handle }, cause);
        if let Some(c) = self.calls.get_mut(call) {
            c.dropping += 1;
        }
        self.push_party_work(id);
    }

    /// An active call left with no party at all (its last parties were dropped remotely while an
    /// AddParty was pending, and that AddParty failed) carries nothing: close it, with no party
    /// handle since none exists.
    fn close_if_empty(&mut self, call_id: Id) {
        let Some(call) = self.calls.get(call_id) else { return };
        let empty =
            call.connected.is_empty() && call.adding == 0 && call.dropping == 0 && call.queued.is_empty();
        if call.state == CallState::Active && call.close.is_none() && empty {
            self.begin_call_close(call_id, CloseReason::Local);
        }
    }

    /// The call's adds all settled: carry out a deferred drop.
    fn after_add_settled(&mut self, call_id: Id) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.adding > 0 || !call.queued.is_empty() {
            return;
        }
        let Some(index) = call.deferred_drop.take() else { return };
        if let Some(party) = self.parties.id_at(index) {
            if matches!(self.parties.get(party).map(|p| p.state()), Some(PartyState::Connected { .. })) {
                self.request_drop(party);
            }
        }
    }

    /// `NdisClDropParty` completed. SUCCESS: the party is gone.
    ///
    /// Any other status is a refusal, and partyline reads the two pages together this way:
    /// nc-ndis-protocol_cl_drop_party_complete says FAILURE means "the given party was the last
    /// remaining on the client's multipoint VC. Therefore, the client should call NdisClCloseCall
    /// to drop this party" — so the party was *not* dropped; nf-ndis-ndiscldropparty says the
    /// handle is invalid once passed to NdisClDropParty — which partyline takes to mean the handle
    /// is the request's while it is in flight, not that a refused request destroys it:
    /// nf-ndis-ndiscmdroppartycomplete has the call manager treat the handle as invalid only "if
    /// it passes NDIS_STATUS_SUCCESS". So after a refusal the party is connected again with the
    /// same handle, whose one remaining use is the one the completion page names: the call is
    /// closed (every other party dropped first, NdisClCloseCall on multipoint VCs) with this party
    /// as the one passed to NdisClCloseCall — never dropped again. The simulator checks this
    /// reading (`Ddi_DropPartyAfterRefusal`, and the call left up is a leak at unload).
    pub fn on_drop_party_complete(&mut self, id: Id, status: Status) -> Result {
        let Some(party) = self.parties.get_mut(id) else {
            return self.reject(ObjectKind::Party, Some(id), Error::UnknownId(ObjectKind::Party));
        };
        if party.state() != PartyState::DropPending {
            return self.reject(ObjectKind::Party, Some(id), Error::InvalidState(ObjectKind::Party));
        }
        let call = party.call;
        if let Some(c) = self.calls.get_mut(call) {
            c.dropping = c.dropping.saturating_sub(1);
        }
        if !status.is_success() {
            self.counters.drop_failures += 1;
            self.drop_refused(id);
            return Ok(());
        }
        if party.remote_drop {
            self.counters.parties_dropped_remote += 1;
        } else {
            self.counters.parties_dropped_local += 1;
        }
        self.free_party(id, status);
        self.close_if_empty(call);
        self.push_call_work(call);
        Ok(())
    }

    /// The call manager refused to drop party `id` (see [`Engine::on_drop_party_complete`]): it is
    /// connected again, the call's refused party (a teardown drops every other party, then closes
    /// with it), and the call is closed.
    fn drop_refused(&mut self, id: Id) {
        let Some(party) = self.parties.get_mut(id) else { return };
        let call = party.call;
        let handle = party.handle;
        self.party_to(id, PartyState::Connected { handle }, Cause::DropPartyComplete);
        self.list_push(ListOf::Connected(call), id);
        if let Some(c) = self.calls.get_mut(call) {
            c.refused_party = id.index();
        }
        self.begin_call_close(call, CloseReason::Local);
        self.push_call_work(call);
    }

    /// `ProtocolClIncomingDropParty`: the remote leaf (or the network) dropped a party that is
    /// not the last. The handle must not be used except to answer with `NdisClDropParty`
    /// (or `NdisClCloseCall` if it is the last party).
    pub fn on_incoming_drop_party(&mut self, id: Id, status: Status) -> Result {
        let Some(party) = self.parties.get_mut(id) else {
            return self.reject(ObjectKind::Party, Some(id), Error::UnknownId(ObjectKind::Party));
        };
        party.remote_drop = true;
        let call_id = party.call;
        let state = party.state();
        self.trace.push(TraceEvent::IncomingDrop { party: id, status });
        match state {
            PartyState::Connected { .. } => {
                let Some(call) = self.calls.get(call_id) else { return Ok(()) };
                if call.connected.len() >= 2 || call.adding > 0 {
                    if call.deferred_drop == Some(id.index()) {
                        if let Some(c) = self.calls.get_mut(call_id) {
                            c.deferred_drop = None;
                        }
                    }
                    self.issue_drop_later(id, Cause::IncomingDropParty);
                } else {
                    self.begin_call_close(call_id, CloseReason::Remote(status));
                }
                self.push_call_work(call_id);
                Ok(())
            }
            // The party's AddParty (or MakeCall) completed, by its synchronous return or by
            // ProtocolClAddPartyComplete on another processor, but that completion has not reached
            // the engine yet: the network dropped the party in between. The handle is not known
            // yet; the answer goes out when the completion connects the party (`party_connected`).
            PartyState::AddPending { .. } => {
                self.party_to(id, PartyState::AddPending { drop_requested: true }, Cause::IncomingDropParty);
                Ok(())
            }
            // Our own drop or close of this party crossed the remote one: already on its way.
            PartyState::DropQueued { .. } | PartyState::DropPending | PartyState::Closing => Ok(()),
            PartyState::Queued => {
                self.reject(ObjectKind::Party, Some(id), Error::InvalidState(ObjectKind::Party))
            }
        }
    }

    /// A control-device request: close a call (drop all parties but one, then close with it).
    pub fn close_call(&mut self, id: Id) -> Result {
        let Some(call) = self.calls.get(id) else {
            return self.reject(ObjectKind::Call, Some(id), Error::UnknownId(ObjectKind::Call));
        };
        if call.close.is_some() {
            return self.reject(ObjectKind::Call, Some(id), Error::Closing);
        }
        self.begin_call_close(id, CloseReason::Local);
        Ok(())
    }

    /// `ProtocolClIncomingCloseCall`: the network released the call (or its last party left).
    /// partyline drops all parties but one, closes with it, and deletes the VC (mandatory when
    /// `status` is not SUCCESS, ProtocolClIncomingCloseCall).
    pub fn on_incoming_close_call(&mut self, id: Id, status: Status) -> Result {
        let Some(call) = self.calls.get(id) else {
            return self.reject(ObjectKind::Call, Some(id), Error::UnknownId(ObjectKind::Call));
        };
        self.trace.push(TraceEvent::IncomingClose { call: id, status });
        match call.state {
            CallState::Active => {
                self.begin_call_close(id, CloseReason::Remote(status));
                if let Some(c) = self.calls.get_mut(id) {
                    c.close = Some(CloseReason::Remote(status));
                }
                Ok(())
            }
            // The MakeCall completed, by its synchronous return or by ProtocolClMakeCallComplete on
            // another processor, but that completion has not reached the engine yet: the network
            // released the call in between. Remembered; the completion then closes the call.
            CallState::MakeCallPending => {
                self.begin_call_close(id, CloseReason::Remote(status));
                if let Some(c) = self.calls.get_mut(id) {
                    c.close = Some(CloseReason::Remote(status));
                }
                Ok(())
            }
            // Our close crossed the remote one.
            CallState::CloseCallPending | CallState::NeedDelete | CallState::Deleting => Ok(()),
            _ => self.reject(ObjectKind::Call, Some(id), Error::InvalidState(ObjectKind::Call)),
        }
    }

    fn begin_call_close(&mut self, id: Id, reason: CloseReason) {
        let Some(call) = self.calls.get_mut(id) else { return };
        if call.close.is_some() {
            return;
        }
        call.close = Some(reason);
        call.deferred_drop = None;
        let af = call.af;
        self.trace.push(TraceEvent::CloseRequested { call: id, reason });
        self.af_unlink(af, id);
        self.discard_queued(id);
        self.push_call_work(id);
    }

    /// `NdisClCloseCall` completed. SUCCESS: the last party (if any) is gone with the call, and the
    /// VC is deleted next.
    ///
    /// Any other status: nc-ndis-protocol_cl_close_call_complete, "the call manager failed the
    /// request to close the call"; the call is still up (only SUCCESS "closed the call ... and
    /// deactivated the VC"), so its VC cannot be deleted yet (nf-ndis-ndiscodeletevc: only once
    /// the close "has completed successfully"), and its last party and that party's handle are
    /// still the call manager's (nf-ndis-ndiscmclosecallcomplete: unusable only after SUCCESS).
    /// The close is made again with the same party, at most [`REQUEST_ATTEMPTS`] times in all;
    /// then the call is forgotten (see [`REQUEST_ATTEMPTS`]).
    pub fn on_close_call_complete(&mut self, id: Id, status: Status) -> Result {
        let Some(call) = self.calls.get_mut(id) else {
            return self.reject(ObjectKind::Call, Some(id), Error::UnknownId(ObjectKind::Call));
        };
        if call.state != CallState::CloseCallPending {
            return self.reject(ObjectKind::Call, Some(id), Error::InvalidState(ObjectKind::Call));
        }
        if !status.is_success() {
            self.counters.close_failures += 1;
            call.attempts = call.attempts.saturating_add(1);
            let retry = call.attempts < REQUEST_ATTEMPTS;
            // The party that went with the close is connected again.
            if let Some(party) = self.parties.id_at(call.connected.head()) {
                if let Some(p) = self.parties.get(party).filter(|p| p.state() == PartyState::Closing) {
                    let handle = p.handle;
                    self.party_to(party, PartyState::Connected { handle }, Cause::CloseCallComplete);
                }
            }
            if retry {
                self.call_to(id, CallState::Active, Cause::CloseCallComplete);
                self.push_call_work(id);
            } else {
                self.abandon_call(id, status);
            }
            return Ok(());
        }
        call.attempts = 0;
        // The party that went with the close.
        for index in [call.connected.head()] {
            if let Some(party) = self.parties.id_at(index) {
                self.list_remove(ListOf::Connected(id), party);
                self.free_party(party, status);
            }
        }
        self.counters.calls_closed += 1;
        self.call_to(id, CallState::NeedDelete, Cause::CloseCallComplete);
        self.push_call_work(id);
        Ok(())
    }

    /// `NdisCoDeleteVc` returned. SUCCESS: the VC and the call are gone.
    ///
    /// nf-ndis-ndiscodeletevc: NOT_ACCEPTED, "the VC is still active, so it could not be deleted";
    /// CLOSING, "deactivation on the given VC is still pending". partyline deletes only a VC whose
    /// call never connected or whose close completed with SUCCESS, so either is the VC's
    /// deactivation not yet over below the call manager: the VC is still alive in NDIS and its
    /// handle still names it (the handle dies "when NdisCoDeleteVc returns control" — having
    /// deleted it). The delete is made again, at most [`REQUEST_ATTEMPTS`] times in all; then the
    /// call is forgotten (see [`REQUEST_ATTEMPTS`]).
    pub fn on_vc_deleted(&mut self, id: Id, status: Status) -> Result {
        let Some(call) = self.calls.get_mut(id) else {
            return self.reject(ObjectKind::Call, Some(id), Error::UnknownId(ObjectKind::Call));
        };
        if call.state != CallState::Deleting {
            return self.reject(ObjectKind::Call, Some(id), Error::InvalidState(ObjectKind::Call));
        }
        if !status.is_success() {
            self.counters.delete_failures += 1;
            call.attempts = call.attempts.saturating_add(1);
            if call.attempts < REQUEST_ATTEMPTS {
                self.call_to(id, CallState::NeedDelete, Cause::VcDeleted);
                self.push_call_work(id);
                return Ok(());
            }
        }
        self.free_call(id, status);
        Ok(())
    }

    /// Gives up on a call whose close failed [`REQUEST_ATTEMPTS`] times: its parties and the call
    /// are forgotten (their VC stays in NDIS; see [`REQUEST_ATTEMPTS`]).
    fn abandon_call(&mut self, id: Id, status: Status) {
        while let Some(index) = self.calls.get(id).map(|c| c.connected.head()).filter(|&h| h != NIL) {
            let Some(party) = self.parties.id_at(index) else { break };
            self.list_remove(ListOf::Connected(id), party);
            self.free_party(party, status);
        }
        self.free_call(id, status);
    }

    fn free_call(&mut self, id: Id, status: Status) {
        self.discard_queued(id);
        // Unlink while the call is still in its table (the links live in the calls).
        let Some(af) = self.calls.get(id).map(|c| c.af) else { return };
        self.af_unlink(af, id);
        // A freed slot cannot link on to the calls queued behind it.
        self.unqueue_call_work(id);
        if self.calls.remove(id).is_none() {
            return;
        }
        self.trace.push(TraceEvent::CallGone { id, status });
        if let Some(a) = self.afs.get_mut(af) {
            a.calls = a.calls.saturating_sub(1);
            if matches!(a.state, AfState::Closing { .. }) {
                self.push_af_work(af);
            }
        }
    }

    fn discard_queued(&mut self, call: Id) {
        while let Some(index) = self.calls.get(call).map(|c| c.queued.head()).filter(|&h| h != NIL) {
            let Some(party) = self.parties.id_at(index) else { break };
            self.list_remove(ListOf::Queued(call), party);
            self.free_party(party, Status::CLOSING);
        }
    }

    fn first_adding_party(&mut self, call: Id) -> Option<Id> {
        let c = self.calls.get_mut(call)?;
        let index = core::mem::replace(&mut c.make_call_party, NIL);
        self.parties.id_at(index)
    }

    fn party_connected(&mut self, id: Id, handle: Handle, cause: Cause) {
        let Some(party) = self.parties.get_mut(id) else { return };
        let call = party.call;
        let drop_requested = matches!(party.state(), PartyState::AddPending { drop_requested: true });
        let remote = party.remote_drop;
        self.party_to(id, PartyState::Connected { handle }, cause);
        self.list_push(ListOf::Connected(call), id);
        let closing = self.calls.get(call).is_some_and(|c| c.close.is_some());
        if drop_requested && remote {
            // ProtocolClIncomingDropParty raced this completion: answered now, with
            // NdisClDropParty (nc-ndis-protocol_cl_incoming_drop_party). A call this leaves
            // empty is then closed by `close_if_empty`.
            self.issue_drop_later(id, Cause::IncomingDropParty);
        } else if drop_requested && !closing {
            self.request_drop(id);
        }
    }

    fn free_party(&mut self, id: Id, status: Status) {
        // Out of the list its state says it is in, so that no list links a freed slot.
        match self.parties.get(id).map(|p| (p.phase, p.call)) {
            Some((Phase::Queued, call)) => self.list_remove(ListOf::Queued(call), id),
            Some((Phase::Connected, call)) => self.list_remove(ListOf::Connected(call), id),
            Some((Phase::DropQueued, _)) => {
                self.party_work.remove(&mut self.parties, id.index());
            }
            _ => {}
        }
        if self.parties.remove(id).is_some() {
            self.trace.push(TraceEvent::PartyGone { id, status });
        }
    }

    // ----- the one traced transition of each object -----

    /// Binding `id` moves to `to` because of `cause`; traced old ⇒ new.
    #[inline(never)]
    fn binding_to(&mut self, id: Id, to: BindingState, cause: Cause) {
        if let Some(binding) = self.bindings.get_mut(id) {
            let from = core::mem::replace(&mut binding.state, to);
            self.trace.push(TraceEvent::Binding { id, from: Some(from), to, cause });
        }
    }

    /// Binding `id`'s data path and power move to `to` and `low_power` because of `cause`;
    /// traced old ⇒ new.
    #[inline(never)]
    fn operational_to(&mut self, id: Id, to: Operational, low_power: bool, cause: Cause) {
        if let Some(binding) = self.bindings.get_mut(id) {
            let from = (binding.operational, binding.low_power);
            (binding.operational, binding.low_power) = (to, low_power);
            self.trace.push(TraceEvent::Operational { id, from, to: (to, low_power), cause });
        }
    }

    /// Address family `id` moves to `to` because of `cause`; traced old ⇒ new.
    #[inline(never)]
    fn af_to(&mut self, id: Id, to: AfState, cause: Cause) {
        if let Some(af) = self.afs.get_mut(id) {
            let from = core::mem::replace(&mut af.state, to);
            self.trace.push(TraceEvent::Af { id, from: Some(from), to, cause });
        }
    }

    /// Call `id` moves to `to` because of `cause`; traced old ⇒ new.
    #[inline(never)]
    fn call_to(&mut self, id: Id, to: CallState, cause: Cause) {
        if let Some(call) = self.calls.get_mut(id) {
            let from = core::mem::replace(&mut call.state, to);
            self.trace.push(TraceEvent::Call { id, from: Some(from), to, cause });
        }
    }

    /// Party `id` moves to `to` because of `cause`; traced old ⇒ new.
    #[inline(never)]
    fn party_to(&mut self, id: Id, to: PartyState, cause: Cause) {
        if let Some(party) = self.parties.get_mut(id) {
            let from = party.state();
            party.set_state(to);
            self.trace.push(TraceEvent::Party { id, from: Some(from), to, cause });
        }
    }

    // ----- queries -----

    pub fn call_info(&self, id: Id) -> Option<CallInfo> {
        let c = self.calls.get(id)?;
        Some(CallInfo {
            state: c.state,
            af: c.af,
            profile: c.profile,
            closing: c.close,
            queued: c.queued.len(),
            adding: c.adding,
            connected: c.connected.len(),
            dropping: c.dropping,
            parameters_changed: c.parameters_changed,
        })
    }

    pub fn party_info(&self, id: Id) -> Option<PartyInfo> {
        let p = self.parties.get(id)?;
        Some(PartyInfo { call: p.call, state: p.state(), address: p.address })
    }

    /// The parties of a call that are connected (the last one may be closing with the call),
    /// then those queued behind its MakeCall: O(those parties), walking the call's own lists.
    /// Parties with a request in flight are counted in [`CallInfo`] but not listed.
    pub fn parties_of(&self, call: Id) -> impl Iterator<Item = Id> + '_ {
        let (connected, queued) =
            self.calls.get(call).map_or((List::EMPTY, List::EMPTY), |c| (c.connected, c.queued));
        let parties = &self.parties;
        connected.iter(parties).chain(queued.iter(parties)).filter_map(|n| parties.id_at(n))
    }

    /// Live calls: id and AF.
    pub fn calls(&self) -> impl Iterator<Item = (Id, Id)> + '_ {
        self.calls.numbers().filter_map(move |i| {
            let id = self.calls.id_at(i)?;
            Some((id, self.calls.get(id)?.af))
        })
    }

    /// The driver's own state: live objects and memory per table, queued work, refusals. For
    /// the control device; O(1).
    pub fn census(&self) -> Census {
        fn table<T>(slab: &Slab<T>) -> TableCensus {
            TableCensus {
                live: slab.len() as u32,
                chunks: slab.chunks() as u32,
                directory: slab.directory_len() as u32,
                slot_bytes: core::mem::size_of::<crate::slab::Slot<T>>() as u32,
            }
        }
        let work = WorkCensus {
            calls: self.call_work.len(),
            afs: self.af_work.len(),
            parties: self.party_work.len(),
            deferred: self.deferred.len as u32,
        };
        let c = &self.counters;
        Census {
            tables: [table(&self.bindings), table(&self.afs), table(&self.calls), table(&self.parties)],
            work,
            refused: c.refused,
            lost_actions: c.lost_actions,
            drop_failures: c.drop_failures,
            close_failures: c.close_failures,
            delete_failures: c.delete_failures,
            refusals: self.refusals,
        }
    }

    // ----- the work queue -----

    /// The next request to make of NDIS, its pending state recorded. O(1) amortised.
    pub fn poll(&mut self) -> Option<Action> {
        // The request of the previous poll has been made (see `close_unissued`).
        self.close_unissued = None;
        loop {
            if let Some(action) = self.deferred.pop() {
                return Some(action);
            }
            if let Some(index) = self.pop_party_work() {
                if let Some(action) = self.advance_party(index) {
                    return Some(action);
                }
                continue;
            }
            if let Some(index) = self.pop_call_work() {
                if let Some(action) = self.advance_call(index) {
                    return Some(action);
                }
                continue;
            }
            if let Some(index) = self.pop_af_work() {
                if let Some(action) = self.advance_af(index) {
                    return Some(action);
                }
                continue;
            }
            return None;
        }
    }

    fn advance_call(&mut self, index: u32) -> Option<Action> {
        let id = self.calls.id_at(index)?;
        let (binding, af_handle, may_start, af_id) = {
            let call = self.calls.get(id)?;
            let af = self.afs.get(call.af)?;
            let binding = self.binding_handle(af.binding).unwrap_or(Handle::NULL);
            let af_handle = match af.state {
                AfState::Open { handle } | AfState::Closing { handle } => handle,
                _ => Handle::NULL,
            };
            (binding, af_handle, self.may_start_setups(af.binding), call.af)
        };
        let call = self.calls.get_mut(id)?;
        match call.state {
            CallState::NeedVc => {
                if call.close.is_some() {
                    // Nothing reached NDIS yet.
                    self.free_call(id, Status::CLOSING);
                    return None;
                }
                // Held until the AF knows its own address (the SETUP's calling party).
                match self.hold_for_address(af_id) {
                    Ok(true) => return None,
                    Ok(false) => {}
                    Err(status) => {
                        self.counters.calls_failed += 1;
                        self.free_call(id, status);
                        return None;
                    }
                }
                self.call_to(id, CallState::CreatingVc, Cause::CreateVc);
                Some(Action::CreateVc { call: id, binding, af: af_handle })
            }
            CallState::Created => {
                if call.close.is_some() {
                    self.call_to(id, CallState::NeedDelete, Cause::CloseCall);
                    return self.advance_call(index);
                }
                if !may_start {
                    // Held while the binding is paused or powered down; `resume_setups` queues
                    // the call again on restart / D0.
                    return None;
                }
                // The first queued party goes into the SETUP.
                let first = self.parties.id_at(call.queued.head())?;
                let vc = call.vc;
                let profile = call.profile;
                // Known: the call passed NeedVc, and an AF's address, once known, is never lost.
                let calling = self.local_address(af_id)?;
                self.list_remove(ListOf::Queued(id), first);
                let leaf = self.parties.get(first)?.address;
                self.party_to(first, PartyState::AddPending { drop_requested: false }, Cause::MakeCall);
                let call = self.calls.get_mut(id)?;
                call.adding += 1;
                call.make_call_party = first.index();
                self.call_to(id, CallState::MakeCallPending, Cause::MakeCall);
                self.count_setup(id, true);
                Some(Action::MakeCall { call: id, party: first, vc, leaf, calling, profile })
            }
            CallState::Active => {
                let vc = call.vc;
                let profile = call.profile;
                if call.close.is_none() {
                    if !may_start {
                        return None; // held, as above
                    }
                    // One AddParty per poll; the call stays queued while leaves wait.
                    let first = self.parties.id_at(call.queued.head())?;
                    // Known, as for the SETUP.
                    let calling = self.local_address(af_id)?;
                    self.list_remove(ListOf::Queued(id), first);
                    let call = self.calls.get_mut(id)?;
                    call.adding += 1;
                    let more = !call.queued.is_empty();
                    let leaf = self.parties.get(first)?.address;
                    self.party_to(first, PartyState::AddPending { drop_requested: false }, Cause::AddParty);
                    if more {
                        self.push_call_work(id);
                    }
                    self.count_setup(id, true);
                    return Some(Action::AddParty { call: id, party: first, vc, leaf, calling, profile });
                }
                // Closing: drop all but one party, one per poll; close once nothing is pending.
                if call.connected.len() >= 2 {
                    // Never the party whose drop the call manager refused: it goes with the close
                    // (moved to the back, it is the one left).
                    let head = self.parties.id_at(call.connected.head())?;
                    if head.index() == call.refused_party {
                        self.list_remove(ListOf::Connected(id), head);
                        self.list_push(ListOf::Connected(id), head);
                        self.push_call_work(id);
                        return None;
                    }
                    self.issue_drop_later(head, Cause::DropPartyRequest);
                    self.push_call_work(id);
                    return None; // the party work list issues the drop
                }
                if call.adding > 0 || call.dropping > 0 {
                    return None; // their completions re-queue the call
                }
                let party = self.parties.id_at(call.connected.head()).and_then(|p| {
                    let PartyState::Connected { handle } = self.parties.get(p)?.state() else { return None };
                    Some((p, handle))
                });
                if let Some((p, _)) = party {
                    self.party_to(p, PartyState::Closing, Cause::CloseCall);
                }
                self.call_to(id, CallState::CloseCallPending, Cause::CloseCall);
                Some(Action::CloseCall { call: id, vc, party })
            }
            CallState::NeedDelete => {
                if call.adding > 0 || call.dropping > 0 {
                    return None;
                }
                let vc = call.vc;
                self.call_to(id, CallState::Deleting, Cause::DeleteVc);
                Some(Action::DeleteVc { call: id, vc })
            }
            CallState::CreatingVc
            | CallState::MakeCallPending
            | CallState::CloseCallPending
            | CallState::Deleting => None,
        }
    }

    fn advance_af(&mut self, index: u32) -> Option<Action> {
        let id = self.afs.id_at(index)?;
        if let Some(action) = self.address_action(id) {
            return Some(action);
        }
        let af = self.afs.get(id)?;
        let AfState::Closing { handle } = af.state else { return None };
        if af.open_calls.head() != NIL {
            // One call per poll is told to close; the AF stays queued until none is left.
            let head = af.open_calls.head();
            match self.calls.id_at(head) {
                Some(call) if self.calls.get(call).is_some_and(|c| c.af == id) => {
                    self.begin_call_close(call, CloseReason::Teardown);
                }
                _ => {
                    // A link to a slot that is not one of this AF's calls: never expected, but
                    // the teardown must still make progress. Drop the list and count it.
                    self.counters.lost_actions += 1;
                    if let Some(af) = self.afs.get_mut(id) {
                        af.open_calls = List::EMPTY;
                    }
                }
            }
            self.push_af_work(id);
            return None;
        }
        if af.calls > 0 || self.address_query_out(id) {
            return None; // each call's deletion, and the query's completion, re-queue the AF
        }
        self.af_to(id, AfState::CloseAfPending { handle }, Cause::CloseAf);
        self.close_unissued = Some(id);
        Some(Action::CloseAf { af: id, handle })
    }
}

// ---------------------------------------------------------------------------------------------
// Lists and work queues (all O(1))

#[derive(Clone, Copy)]
enum ListOf {
    /// A call's parties waiting for MakeCall.
    Queued(Id),
    /// A call's connected parties.
    Connected(Id),
}

/// An AF- or binding-level request that outlives the object that produced it. `#[repr(u8)]`
/// with `Nothing = 0` so that an empty queue is all zero bytes.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Owed {
    Nothing = 0,
    NotifyCloseAfComplete { handle: Handle } = 1,
    BindingQuiet { binding: Id, cookie: usize } = 2,
    UnbindAdapter { binding: Id, handle: Handle } = 3,
}

impl Owed {
    fn action(self) -> Option<Action> {
        match self {
            Owed::Nothing => None,
            Owed::NotifyCloseAfComplete { handle } => Some(Action::NotifyCloseAfComplete { handle }),
            Owed::BindingQuiet { binding, cookie } => Some(Action::BindingQuiet { binding, cookie }),
            Owed::UnbindAdapter { binding, handle } => Some(Action::UnbindAdapter { binding, handle }),
        }
    }
}

/// AF- and binding-level requests that outlive the object that produced them
/// (`NdisClNotifyCloseAddressFamilyComplete` after the AF is freed, the unbind wake-up), first in
/// first out. At most two per address family, and address families are few.
struct Deferred {
    items: [Owed; DEFERRED_CAPACITY],
    /// Position of the oldest item (mod [`DEFERRED_CAPACITY`]).
    head: usize,
    len: usize,
}

/// A power of two: positions wrap with a mask, so no index can be out of bounds.
const DEFERRED_CAPACITY: usize = 64;

impl Deferred {
    const EMPTY: Deferred = Deferred { items: [Owed::Nothing; DEFERRED_CAPACITY], head: 0, len: 0 };

    fn push(&mut self, owed: Owed) -> bool {
        if self.len >= DEFERRED_CAPACITY {
            return false;
        }
        self.items[(self.head + self.len) % DEFERRED_CAPACITY] = owed;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<Action> {
        if self.len == 0 {
            return None;
        }
        let first = core::mem::replace(&mut self.items[self.head % DEFERRED_CAPACITY], Owed::Nothing);
        self.head = (self.head + 1) % DEFERRED_CAPACITY;
        self.len -= 1;
        first.action()
    }
}

impl Engine {
    #[inline(never)]
    fn defer(&mut self, owed: Owed) {
        if self.deferred.push(owed) {
            return;
        }
        if let Some(action) = owed.action() {
            self.counters.lost_actions += 1;
            self.trace.push(TraceEvent::Lost { action });
        }
    }

    fn party_list(&mut self, which: ListOf) -> Option<(&mut List<PartyLink>, &mut Slab<Party>)> {
        let (call, connected) = match which {
            ListOf::Queued(call) => (call, false),
            ListOf::Connected(call) => (call, true),
        };
        let c = self.calls.get_mut(call)?;
        Some((if connected { &mut c.connected } else { &mut c.queued }, &mut self.parties))
    }

    fn list_push(&mut self, which: ListOf, party: Id) {
        if let Some((list, parties)) = self.party_list(which) {
            list.push_back(parties, party.index());
        }
    }

    fn list_remove(&mut self, which: ListOf, party: Id) {
        if let Some((list, parties)) = self.party_list(which) {
            list.remove(parties, party.index());
        }
    }

    fn af_link(&mut self, af: Id, call: Id) {
        if let Some(a) = self.afs.get_mut(af) {
            a.open_calls.push_back(&mut self.calls, call.index());
        }
    }

    fn af_unlink(&mut self, af: Id, call: Id) {
        if let Some(a) = self.afs.get_mut(af) {
            a.open_calls.remove(&mut self.calls, call.index());
        }
    }

    fn push_call_work(&mut self, id: Id) {
        if self.calls.get(id).is_some() {
            self.call_work.push_back(&mut self.calls, id.index());
        }
    }

    fn pop_call_work(&mut self) -> Option<u32> {
        self.call_work.pop_front(&mut self.calls)
    }

    /// Takes call `id` out of the work queue, wherever it is in it. A call is freed when a
    /// request made with the lock released returns (NdisCoDeleteVc, a failed NdisCoCreateVc),
    /// and requests on other processors may have queued it meanwhile (a CLOSE_CALL, a dropped
    /// queued party): left in the queue, its freed slot would end the queue there, stranding
    /// every call behind it (found by the concurrency campaign: a stranded call kept its address
    /// family, then the unbind, from ever completing).
    fn unqueue_call_work(&mut self, id: Id) {
        if self.calls.get(id).is_some() {
            self.call_work.remove(&mut self.calls, id.index());
        }
    }

    fn push_af_work(&mut self, id: Id) {
        if self.afs.get(id).is_some() {
            self.af_work.push_back(&mut self.afs, id.index());
        }
    }

    fn pop_af_work(&mut self) -> Option<u32> {
        self.af_work.pop_front(&mut self.afs)
    }

    /// Parties chosen for dropping (DropQueued: in no other list).
    fn push_party_work(&mut self, id: Id) {
        if self.parties.get(id).is_some() {
            self.party_work.push_back(&mut self.parties, id.index());
        }
    }

    fn pop_party_work(&mut self) -> Option<u32> {
        self.party_work.pop_front(&mut self.parties)
    }

    fn advance_party(&mut self, index: u32) -> Option<Action> {
        let id = self.parties.id_at(index)?;
        let party = self.parties.get_mut(id)?;
        let PartyState::DropQueued { handle } = party.state() else { return None };
        self.party_to(id, PartyState::DropPending, Cause::DropParty);
        Some(Action::DropParty { party: id, handle })
    }
}
