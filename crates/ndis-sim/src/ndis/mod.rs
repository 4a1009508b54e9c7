//! The simulated `ndis.sys`: every export `partyline.sys` imports from it, the simulated ATM
//! miniport and Q.2931 call manager behind them, the network of remote parties, the deterministic
//! scheduler and the verifier's NDIS rules.
//!
//! Read: `shared/ndis/condis-reference.md` (every routine), `shared/ndis/verifier-rules.md` §7
//! (the invariants), `shared/ndis/atm-call-params.md` §12 (what the call manager validates).
//!
//! Flow: [`install`] hangs an [`Ndis`] on a [`World`] as an extension; [`register`] puts every
//! `ndis.sys` export into an [`ExportTable`]. Each export states its descriptor and enters through
//! [`crate::ddi::enter`] (world and NDIS found with no reference count, no lock; the call logged;
//! IRQL checked for the current simulated processor), looks every handle
//! up in this module's tables (a pointer from the driver is an allegation), reports violations
//! with [`verifier::report`], and acts as NDIS documents. Answers are chosen by the seeded
//! [`sched::Rng`]: synchronous, PENDING with a completion queued on virtual time, or a completion
//! delivered on another processor before the request returns. The state lock is never held while
//! the driver runs: every callback goes through [`call_driver`], which releases it first.
//!
//! Modules: [`memory`] (pool, tags, leaks), [`sync`] (spin locks, events), [`protocol`]
//! (registration, PnP), [`binding`] (bind, open, close, unbind, and their completions); the
//! CoNDIS client surface, one object per module, each export next to the delivery of the
//! completions it queues: [`af`], [`vc`], [`call`], [`party`], with what they share in
//! [`condis`]; `parties` (every party with per-call indexes), `crossing` (network events that
//! cross the client's requests), [`callmgr`] (the Q.2931 CM and the
//! network), [`params`] (call-parameter validation), [`sched`] (generator, policy, queue),
//! [`rules`] (the rule catalogue).

pub mod af;
pub mod binding;
pub mod call;
pub mod callmgr;
pub mod co_oid;
pub mod condis;
pub(crate) mod crossing;
pub mod faults;
pub mod memory;
pub mod out_param;
pub mod params;
pub(crate) mod parties;
pub mod party;
pub mod pnp;
pub mod protocol;
pub mod receive;
pub mod rules;
pub mod sched;
pub mod special_pool;
pub mod sync;
pub mod vc;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::exports::ExportTable;
use crate::fast_hash::FastMap;
use crate::kernel::{self, Call, Irql, Render, Stop, World, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::spin::{SpinGuard, SpinLock};
use crate::verifier::{self, Rule};

pub use callmgr::{AdapterConfig, AtmAddr, Behaviour, CallManagerConfig, RemoteParty};
pub use parties::PartyState;
pub use sched::{FaultPolicy, Outcome, Rng, Work};

/// The DLL name exports are registered and logged under.
pub const NDIS_DLL: &str = "ndis.sys";
/// The name callbacks into the driver are logged under.
pub const DRIVER_DLL: &str = "partyline.sys";

/// What the simulated NDIS needs to know: the seed, the fault policy, the adapters (each with its
/// network), and the call manager's knobs. A plain struct a scenario file can map onto.
#[derive(Clone, Debug, Default)]
pub struct NdisConfig {
    /// Seed of the one generator every random choice comes from.
    pub seed: u64,
    /// How requests are answered and what is injected.
    pub faults: FaultPolicy,
    /// One simulated ATM miniport per entry.
    pub adapters: Vec<AdapterConfig>,
    /// The call manager's limits and strictness.
    pub call_manager: CallManagerConfig,
}

/// What happened, counted (for summaries and benchmarks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub bindings_opened: u64,
    pub bindings_closed: u64,
    pub afs_opened: u64,
    pub afs_closed: u64,
    pub vcs_created: u64,
    pub vcs_deleted: u64,
    pub calls_made: u64,
    pub calls_connected: u64,
    pub calls_rejected: u64,
    pub calls_closed: u64,
    pub parties_added: u64,
    pub parties_rejected: u64,
    pub parties_dropped_locally: u64,
    pub parties_dropped_remotely: u64,
    pub remote_releases: u64,
    /// Network events that crossed the client's own request and were absorbed by the call
    /// manager or turned into a failed completion ([`crossing`]).
    pub crossings_absorbed: u64,
    /// Calls and parties accepted with CALL_PARAMETERS_CHANGED.
    pub parameters_changed: u64,
    pub allocations_failed: u64,
}

/// Kinds of handle this NDIS gives out; encoded in the handle value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Protocol = 1,
    BindContext = 2,
    Binding = 3,
    UnbindContext = 4,
    Af = 5,
    Vc = 6,
    Party = 7,
}

const HANDLE_TAG: usize = 0x4E00_0000_0000_0000;

/// The handle value of object `id` of `kind`: a non-canonical address, so a driver that
/// dereferences an NDIS handle faults at once.
pub fn handle(kind: Kind, id: u64) -> usize {
    HANDLE_TAG | ((kind as usize) << 40) | (id as usize & 0xFF_FFFF_FFFF)
}

/// A key for a wait of NDIS's own (see [`crate::machine::Machine::wait`]): a non-canonical value
/// in the handle space with bit 39 set, so no handle and no address is ever equal to it.
pub(crate) const fn handle_wait_key(kind: Kind, id: usize) -> usize {
    HANDLE_TAG | ((kind as usize) << 40) | (1 << 39) | (id & 0x7F_FFFF_FFFF)
}

/// The object id behind `value` if it is a handle of `kind` (the object may still be dead).
pub fn decode(kind: Kind, value: usize) -> Option<u64> {
    if value & 0xFF00_0000_0000_0000 == HANDLE_TAG && (value >> 40) & 0xFF == kind as usize {
        Some((value & 0xFF_FFFF_FFFF) as u64)
    } else {
        None
    }
}

/// The words that stand for a pointer-sized argument in a log entry ([`fmt_shown`] renders them):
/// what the value was *when the call was made* (an NDIS handle, a pool block by tag and
/// allocation number, an image address by offset, anything else in hex), so the log reads the
/// same whenever it is rendered. Deterministic for a given seed.
pub(crate) const SHOWN_WORDS: usize = 3;

/// Captures `value` for the log: `[value, 0, 0]` (NULL, a handle, or a bare address),
/// `[number, 1 << 32 | tag, offset]` (inside a live pool block), `[offset, 2 << 32, name]`
/// (inside a loaded image).
pub(crate) fn shown(state: &State, value: usize) -> [u64; SHOWN_WORDS] {
    if value == 0 || decode_any(value).is_some() {
        return [value as u64, 0, 0];
    }
    if let Some((tag, number, offset)) = state.pool.block_of(value) {
        return [number, 1 << 32 | u64::from(tag), offset as u64];
    }
    if let Some((name, offset)) = crate::loader::image_offset(value) {
        return [offset as u64, 2 << 32, name];
    }
    [value as u64, 0, 0]
}

/// Writes the argument [`shown`] captured at `args` word `at`.
pub(crate) fn fmt_shown(args: &kernel::Args<'_>, at: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (first, kind, last) = (args.word(at), args.word(at + 1), args.word(at + 2));
    match kind >> 32 {
        1 => {
            let tag = memory::tag_name(kind as u32);
            if last == 0 {
                write!(f, "{tag}#{first}")
            } else {
                write!(f, "{tag}#{first}+{last:#x}")
            }
        }
        2 => write!(f, "{}+0x{first:x}", crate::loader::image_name(last)),
        _ => {
            let value = first as usize;
            if value == 0 {
                return f.write_str("NULL");
            }
            match decode_any(value) {
                Some((kind, id)) => write!(f, "{}#{id}", kind.prefix()),
                None => write!(f, "{value:#x}"),
            }
        }
    }
}

/// The kind and id of a handle of any kind.
fn decode_any(value: usize) -> Option<(Kind, u64)> {
    [Kind::Protocol, Kind::BindContext, Kind::Binding, Kind::UnbindContext, Kind::Af, Kind::Vc, Kind::Party]
        .into_iter()
        .find_map(|kind| decode(kind, value).map(|id| (kind, id)))
}

impl Kind {
    /// How the log names a handle of this kind (`Vc#3`).
    fn prefix(self) -> &'static str {
        match self {
            Kind::Protocol => "Proto",
            Kind::BindContext => "BindCtx",
            Kind::Binding => "Bd",
            Kind::UnbindContext => "UnbindCtx",
            Kind::Af => "Af",
            Kind::Vc => "Vc",
            Kind::Party => "Pt",
        }
    }
}

/// Renders a pointer-sized argument for the log at once (for entries made as text); the same
/// text [`shown`] + [`fmt_shown`] give.
pub(crate) fn render(state: &State, value: usize) -> String {
    struct Show([u64; SHOWN_WORDS]);
    impl fmt::Display for Show {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt_shown(&kernel::Args::new(&self.0), 0, f)
        }
    }
    Show(shown(state, value)).to_string()
}

/// An NDIS status as the log names it ([`status_name`]), without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusName(pub i32);

impl fmt::Display for StatusName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match status_str(self.0) {
            Some(name) => write!(f, "NDIS_STATUS_{name}"),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

/// A name for an NDIS status.
pub fn status_name(status: i32) -> String {
    StatusName(status).to_string()
}

fn status_str(status: i32) -> Option<&'static str> {
    use ndis_sys::*;
    Some(match status {
        NDIS_STATUS_SUCCESS => "SUCCESS",
        NDIS_STATUS_PENDING => "PENDING",
        NDIS_STATUS_NOT_ACCEPTED => "NOT_ACCEPTED",
        NDIS_STATUS_FAILURE => "FAILURE",
        NDIS_STATUS_RESOURCES => "RESOURCES",
        NDIS_STATUS_NOT_SUPPORTED => "NOT_SUPPORTED",
        NDIS_STATUS_CLOSING => "CLOSING",
        NDIS_STATUS_BAD_VERSION => "BAD_VERSION",
        NDIS_STATUS_BAD_CHARACTERISTICS => "BAD_CHARACTERISTICS",
        NDIS_STATUS_ADAPTER_NOT_FOUND => "ADAPTER_NOT_FOUND",
        NDIS_STATUS_UNSUPPORTED_MEDIA => "UNSUPPORTED_MEDIA",
        NDIS_STATUS_INVALID_DATA => "INVALID_DATA",
        NDIS_STATUS_INVALID_ADDRESS => "INVALID_ADDRESS",
        NDIS_STATUS_DEST_OUT_OF_ORDER => "DEST_OUT_OF_ORDER",
        NDIS_STATUS_VC_NOT_AVAILABLE => "VC_NOT_AVAILABLE",
        NDIS_STATUS_CELLRATE_NOT_AVAILABLE => "CELLRATE_NOT_AVAILABLE",
        NDIS_STATUS_INCOMPATIBLE_QOS => "INCOMPATIBLE_QOS",
        NDIS_STATUS_AAL_PARAMS_UNSUPPORTED => "AAL_PARAMS_UNSUPPORTED",
        NDIS_STATUS_NO_ROUTE_TO_DESTINATION => "NO_ROUTE_TO_DESTINATION",
        NDIS_STATUS_INVALID_PARAMETER => "INVALID_PARAMETER",
        NDIS_STATUS_INVALID_STATE => "INVALID_STATE",
        _ => return None,
    })
}

/// The simulated NDIS of one world (a [`World`] extension).
pub struct Ndis {
    state: SpinLock<State>,
}

/// A queued work item: the (processor, IRQL) it must be delivered at, if it must, and the work.
pub(crate) type Queued = (Option<(usize, Irql)>, Work);

/// Everything the simulated NDIS tracks. Held only briefly, never across a call into the driver.
pub(crate) struct State {
    pub config: NdisConfig,
    pub rng: Rng,
    pub next_id: u64,
    /// Work on virtual time by (due, sequence), each with the processor and IRQL it must be
    /// delivered at, if it must.
    pub queue: BTreeMap<(u64, u64), Queued>,
    pub queue_sequence: u64,
    pub protocol: Option<protocol::Protocol>,
    pub set_options_active: bool,
    pub bindings: BTreeMap<u64, binding::Binding>,
    pub afs: BTreeMap<u64, af::Af>,
    pub vcs: BTreeMap<u64, vc::Vc>,
    pub parties: parties::Parties,
    /// What the call manager keeps about crossings ([`crossing`]).
    pub crossings: crossing::Crossings,
    /// VCs whose `incoming_close` is set (see [`State::set_incoming_close`]), for the idle check.
    pub incoming_closes: std::collections::BTreeSet<u64>,
    pub pool: memory::Pool,
    pub locks: sync::Locks,
    pub events: FastMap<usize, bool>,
    pub pnp_pending: Option<u64>,
    pub pnp: pnp::PnpState,
    pub counters: Counters,
    /// A buffer for call-parameter snapshots that are not kept (see NdisClAddParty).
    pub snapshot_buffer: Vec<u8>,
    /// The call manager's registered addresses and what each AF was told ([`co_oid`]).
    pub addresses: co_oid::Addresses,
    /// Failures a scenario armed for the next requests of an export ([`faults::Armed`]).
    pub armed: faults::Armed,
}

impl State {
    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Queues `work` `delay` ticks from `now`, on a processor and at an IRQL chosen when it starts.
    pub fn schedule(&mut self, now: u64, delay: u64, work: Work) {
        self.schedule_on(now, delay, None, work);
    }

    /// Queues `work` `delay` ticks from `now`, on `on` (processor, IRQL) if given.
    pub fn schedule_on(&mut self, now: u64, delay: u64, on: Option<(usize, Irql)>, work: Work) {
        self.queue_sequence += 1;
        self.queue.insert((now + delay, self.queue_sequence), (on, work));
    }

    /// Records that call `vc` was released by the network with `status` and the client owes
    /// NdisClCloseCall (`Some`), or that it no longer does (`None`). Every change of
    /// `Vc::incoming_close` goes through here, so [`check_obligations`] looks only at these VCs.
    pub fn set_incoming_close(&mut self, vc: u64, status: Option<i32>) {
        let Some(entry) = self.vcs.get_mut(&vc) else { return };
        entry.incoming_close = status;
        if status.is_some() {
            self.incoming_closes.insert(vc);
        } else {
            self.incoming_closes.remove(&vc);
        }
    }

    /// IRQL for a callback NDIS may call at <= DISPATCH, chosen by the policy.
    pub fn callback_irql(&mut self) -> Irql {
        let rate = self.config.faults.dispatch_delivery_per_10000;
        if self.rng.chance(rate) {
            DISPATCH_LEVEL
        } else {
            PASSIVE_LEVEL
        }
    }
}

impl Ndis {
    /// The simulated NDIS of `world`, if installed.
    pub fn of(world: &World) -> Option<Arc<Ndis>> {
        world.extension::<Ndis>()
    }

    pub(crate) fn state(&self) -> SpinGuard<'_, State> {
        self.state.lock()
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.state().counters.clone()
    }

    /// Bytes currently held per pool tag (tags as stored, e.g. `u32::from_le_bytes(*b"PlBd")`).
    pub fn bytes_held_per_tag(&self) -> BTreeMap<u32, u64> {
        self.state().pool.bytes_held_per_tag()
    }

    /// The pool's high-water mark: the most bytes the driver ever held at once, over every tag.
    pub fn pool_high_water(&self) -> u64 {
        self.state().pool.high_water()
    }

    /// Per-tag allocation statistics.
    pub fn pool_stats(&self) -> BTreeMap<u32, memory::TagStats> {
        self.state().pool.stats()
    }

    /// Whether nothing is queued.
    pub fn is_idle(&self) -> bool {
        self.state().queue.is_empty()
    }

    /// Whether the protocol is registered.
    pub fn is_registered(&self) -> bool {
        self.state().protocol.is_some()
    }

    /// The ids of the bindings and whether each is bound (open and bound).
    pub fn bindings(&self) -> Vec<(u64, usize, bool)> {
        self.state()
            .bindings
            .iter()
            .map(|(id, b)| (*id, b.adapter, b.state == binding::BindingState::Bound))
            .collect()
    }

    /// A summary of live CoNDIS objects: (open AFs, live VCs, live parties).
    pub fn live_objects(&self) -> (usize, usize, usize) {
        let state = self.state();
        (
            state.afs.values().filter(|af| af.is_alive()).count(),
            state.vcs.values().filter(|vc| !vc.deleted).count(),
            state.parties.alive(),
        )
    }
}

/// Installs a simulated NDIS in `world` with `config`, replacing any previous one.
pub fn install(world: &World, config: NdisConfig) -> Arc<Ndis> {
    let state = State {
        rng: Rng::new(config.seed),
        config,
        next_id: 0,
        queue: BTreeMap::new(),
        queue_sequence: 0,
        protocol: None,
        set_options_active: false,
        bindings: BTreeMap::new(),
        afs: BTreeMap::new(),
        vcs: BTreeMap::new(),
        parties: parties::Parties::default(),
        crossings: crossing::Crossings::default(),
        incoming_closes: std::collections::BTreeSet::new(),
        pool: memory::Pool::default(),
        locks: sync::Locks::default(),
        events: FastMap::default(),
        pnp_pending: None,
        pnp: pnp::PnpState::default(),
        counters: Counters::default(),
        snapshot_buffer: Vec::new(),
        addresses: co_oid::Addresses::default(),
        armed: faults::Armed::default(),
    };
    let ndis = Arc::new(Ndis { state: SpinLock::new(state) });
    world.insert_extension(ndis.clone());
    world.machine().set_source(ndis.clone());
    ndis
}

/// The queue of work on virtual time, as the machine starts it: the earliest item, delivered on
/// the processor the machine gives it (or the one it must run on).
impl crate::machine::WorkSource for Ndis {
    fn peek(&self) -> Option<crate::machine::Due> {
        let state = self.state();
        let (&(time, id), (on, _)) = state.queue.iter().next()?;
        Some(crate::machine::Due { time, id, processor: on.map(|(p, _)| p) })
    }

    fn take(&self, world: &Arc<World>, processor: usize) -> Option<(&'static str, crate::machine::Task)> {
        let (on, work) = {
            let mut state = self.state();
            let key = *state.queue.keys().next()?;
            state.queue.remove(&key)?
        };
        let ndis = world.extension::<Ndis>()?;
        let world = Arc::clone(world);
        let name = work.name();
        let irql = on.map(|(_, irql)| irql);
        Some((name, Box::new(move || deliver(&world, &ndis, work, processor, irql))))
    }

    fn pool_bytes(&self) -> u64 {
        self.state().pool.bytes_held()
    }
}

/// Registers every `ndis.sys` export.
pub fn register(table: &mut ExportTable) {
    protocol::register(table);
    binding::register(table);
    memory::register(table);
    sync::register(table);
    af::register(table);
    vc::register(table);
    call::register(table);
    party::register(table);
    co_oid::register(table);
    receive::register(table);
}

/// The simulated NDIS is the family of every `ndis.sys` export (see [`crate::ddi::enter`]).
impl crate::ddi::Family for Ndis {
    fn of<'a>(world: &'a World, ddi: &crate::ddi::Ddi) -> &'a Self {
        match world.extension_ref::<Ndis>() {
            Some(ndis) => ndis,
            None => no_ndis(world, ddi.name),
        }
    }
}

#[cold]
#[inline(never)]
fn no_ndis(world: &World, export: &str) -> ! {
    kernel::fatal(
        Some(world),
        Stop::SimulatorFault(format!("{export} was called in a world without a simulated NDIS")),
    )
}

/// Reports a violation of `rule` by `export`.
pub(crate) fn violation(world: &World, rule: Rule, export: &str, detail: impl Into<String>) {
    let call = if export.contains('!') { export.to_owned() } else { format!("{NDIS_DLL}!{export}") };
    verifier::report(world, rule, call, detail);
}

/// Logs an export call whose detail is already text (rare entries; hot ones use [`log_lazy`]).
pub(crate) fn log_export(world: &World, processor: usize, export: &'static str, detail: String) {
    world.log_call(processor, NDIS_DLL, export, detail);
}

/// Logs `call` with `words`, rendered by `render` only when the log is read.
pub(crate) fn log_lazy<const N: usize>(
    world: &World,
    processor: usize,
    call: &'static Call,
    words: &[u64; N],
    render: Render,
) {
    world.log_lazy(processor, call, words, render);
}

/// `ndis.sys!name`, for a log entry.
pub(crate) const fn export_call(name: &'static str) -> Call {
    Call::new(NDIS_DLL, name)
}

/// `partyline.sys!name` (a driver callback), for a log entry.
pub(crate) const fn driver_call(name: &'static str) -> Call {
    Call::new(DRIVER_DLL, name)
}

/// A callback's log entry: which callback, the words, and how to render them; or, for rare
/// callbacks, the callback's name and its detail as text.
pub(crate) enum Logged<'a> {
    Lazy(&'static Call, &'a [u64], Render),
    Text(&'static str, String),
}

/// Calls into the driver: makes `processor` current at `irql`, logs the callback, runs `f` with
/// the state lock released, then checks the driver returned at the same IRQL and released every
/// spin lock it took (verifier-rules.md §7.1 item 4, §7.2 item 15), and restores the processor.
pub(crate) fn call_driver<R>(
    world: &Arc<World>,
    ndis: &Ndis,
    processor: usize,
    irql: Irql,
    logged: Logged<'_>,
    f: impl FnOnce() -> R,
) -> R {
    // A processor's thread runs the callback on its own processor (see crate::machine); the
    // `processor` asked for is only for a thread not yet in the world.
    let current = kernel::current_processor_in(world).filter(|_| crate::machine::is_context(world));
    let _entered = current.is_none().then(|| world.enter(processor));
    let processor = current.unwrap_or(processor);
    // Entry to a callback is a scheduling point (see crate::machine), before its log entry, so the
    // log shows the callback where it really starts.
    crate::machine::point();
    let previous = world.set_irql(processor, irql);
    let name = match logged {
        Logged::Lazy(call, words, render) => {
            world.log_words(processor, call, words, render);
            call.name
        }
        Logged::Text(name, detail) => {
            world.log_call(processor, DRIVER_DLL, name, detail);
            name
        }
    };
    let held_before: Vec<usize> = sync::held_by(&ndis.state(), processor);
    crate::machine::push_callback(name);
    let result = f();
    crate::machine::pop_call();
    let leaked: Vec<usize> = {
        let mut state = ndis.state();
        let held_after = sync::held_by(&state, processor);
        let leaked: Vec<usize> = held_after.into_iter().filter(|l| !held_before.contains(l)).collect();
        for lock in &leaked {
            if let Some(lock_state) = state.locks.get_mut(*lock) {
                lock_state.holder = None;
            }
        }
        leaked
    };
    for lock in leaked {
        violation(
            world,
            rules::SPIN_LOCK,
            &format!("{DRIVER_DLL}!{name}"),
            format!("returned still holding spin lock {lock:#x} (released by the simulator)"),
        );
    }
    let after = world.irql(processor);
    if after != irql {
        violation(
            world,
            rules::IRQL_RETURN,
            &format!("{DRIVER_DLL}!{name}"),
            format!("entered at {irql}, returned at {after}"),
        );
    }
    world.set_irql(processor, previous);
    result
}

/// Answers a request whose completion is `work` under `outcome`: queues it (PENDING) or delivers
/// it on the next processor before returning PENDING. `Synchronous` is the caller's business.
pub(crate) fn pend(world: &World, ndis: &Ndis, processor: usize, outcome: Outcome, work: Work) -> i32 {
    match outcome {
        Outcome::Synchronous | Outcome::Pending { .. } => {
            let delay = match outcome {
                Outcome::Pending { delay } => delay,
                _ => 1,
            };
            ndis.state().schedule(world.now(), delay, work);
        }
        Outcome::CrossProcessor => {
            // Due now on another processor: it may start at this export's return, or at any
            // later scheduling point, as the machine's policy decides (before or after the
            // driver's next instruction that takes its lock).
            let other = (processor + 1) % world.processor_count();
            ndis.state().schedule_on(world.now(), 0, Some((other, DISPATCH_LEVEL)), work);
            world.machine().notify();
        }
    }
    ndis_sys::NDIS_STATUS_PENDING
}

/// The due time of the earliest queued work.
pub fn next_due(world: &World) -> Option<u64> {
    world.extension_ref::<Ndis>().and_then(|ndis| ndis.state().queue.keys().next().map(|key| key.0))
}

/// Runs until nothing is left to run or queued (see [`crate::machine::Until::Idle`]), then
/// checks for completions the driver still owes.
pub fn run_until_idle(world: &Arc<World>) {
    world.machine().run(world, crate::machine::Until::Idle);
    if world.stop().is_none() {
        check_obligations(world);
    }
}

/// Runs work due within `ticks`, then moves time to now + `ticks`.
pub fn advance(world: &Arc<World>, ticks: u64) {
    let end = world.now() + ticks;
    world.machine().run(world, crate::machine::Until::Time(end));
    let now = world.now();
    if end > now && world.stop().is_none() {
        world.advance_time(end - now);
    }
}

/// Queues host work (for other DDI modules, e.g. I/O work items) to run at PASSIVE after `delay`.
pub fn queue_host_work(world: &World, delay: u64, name: &'static str, run: Box<dyn FnOnce() + Send>) {
    if let Some(ndis) = Ndis::of(world) {
        ndis.state().schedule(world.now(), delay, Work::Host { name, run });
        world.machine().notify();
    }
}

/// Reports every completion or answer the driver owes and has not given, with nothing left that
/// could make it (verifier-rules.md §7.5 item 35, §7.8 item 66).
pub fn check_obligations(world: &World) {
    let Some(ndis) = world.extension_ref::<Ndis>() else { return };
    if !verifier::is_enabled(world) {
        return;
    }
    let mut owed = Vec::new();
    {
        let mut state = ndis.state();
        let State { crossings, vcs, .. } = &mut *state;
        crossings.forget_deleted(vcs);
        // Nothing owed (the usual case) is told at a glance; otherwise each obligation is
        // listed below, in order.
        let anything_owed = state.pnp_pending.is_some()
            || !state.parties.no_incoming_dropped()
            || !state.incoming_closes.is_empty()
            || state.crossings.must_delete().next().is_some()
            || state.bindings.values().any(|b| b.bind_pending || b.unbind_pending)
            || state.afs.values().any(|af| af.notify_close_pending)
            || co_oid::unqueried(&state).next().is_some();
        if !anything_owed {
            return;
        }
        for (id, binding) in &state.bindings {
            if binding.bind_pending {
                owed.push((
                    rules::EXACTLY_ONCE_COMPLETION,
                    "NdisCompleteBindAdapterEx",
                    format!("Bind of Bd#{id} returned PENDING and was never completed"),
                ));
            }
            if binding.unbind_pending {
                owed.push((
                    rules::EXACTLY_ONCE_COMPLETION,
                    "NdisCompleteUnbindAdapterEx",
                    format!("Unbind of Bd#{id} returned PENDING and was never completed"),
                ));
            }
        }
        if let Some(binding) = state.pnp_pending {
            owed.push((
                rules::EXACTLY_ONCE_COMPLETION,
                "NdisCompleteNetPnPEvent",
                format!("a NetPnPEvent for Bd#{binding} returned PENDING and was never completed"),
            ));
        }
        for (id, af) in &state.afs {
            if af.notify_close_pending {
                owed.push((
                    rules::EXACTLY_ONCE_COMPLETION,
                    "NdisClNotifyCloseAddressFamilyComplete",
                    format!("ProtocolClNotifyCloseAf for Af#{id} returned PENDING and was never completed"),
                ));
            }
        }
        for af in co_oid::unqueried(&state) {
            owed.push((
                rules::ADDRESS_CHANGE_NOT_QUERIED,
                "NdisCoOidRequest",
                format!("Af#{af} was sent OID_CO_ADDRESS_CHANGE and never queried OID_CO_GET_ADDRESSES"),
            ));
        }
        for id in state.parties.incoming_dropped() {
            owed.push((
                rules::INCOMING_UNANSWERED,
                "NdisClDropParty",
                format!("ProtocolClIncomingDropParty for Pt#{id} was never answered with NdisClDropParty"),
            ));
        }
        for id in &state.incoming_closes {
            let Some(vc) = state.vcs.get(id) else { continue };
            if vc.incoming_close.is_some() && vc.state == vc::VcState::Active {
                owed.push((
                    rules::INCOMING_UNANSWERED,
                    "NdisClCloseCall",
                    format!(
                        "ProtocolClIncomingCloseCall for Vc#{id} was never answered with NdisClCloseCall"
                    ),
                ));
            }
        }
        for id in state.crossings.must_delete() {
            if state.vcs.get(&id).is_some_and(|vc| vc.state == vc::VcState::Closed && !vc.deleted) {
                owed.push((
                    rules::INCOMING_CLOSE_VC_NOT_DELETED,
                    "NdisCoDeleteVc",
                    format!(
                        "Vc#{id} was closed after ProtocolClIncomingCloseCall with a failure status and \
                         never deleted"
                    ),
                ));
            }
        }
    }
    co_oid::reported(&mut ndis.state());
    for (rule, export, detail) in owed {
        violation(world, rule, export, format!("{detail} (the simulation went idle)"));
    }
}

/// Delivers one work item on `processor` (the machine's worker runs it there), at `irql` if given,
/// else at an IRQL the generator picks (PASSIVE for callbacks NDIS makes at PASSIVE only), through
/// the delivery function beside the export that queued it.
pub(crate) fn deliver(world: &Arc<World>, ndis: &Ndis, work: Work, processor: usize, irql: Option<Irql>) {
    let passive_only = matches!(
        work,
        Work::AfRegisterNotify { .. }
            | Work::OpenAdapterComplete { .. }
            | Work::CloseAdapterComplete { .. }
            | Work::OpenAfComplete { .. }
            | Work::Unbind { .. }
            | Work::Pnp { .. }
            | Work::Host { .. }
    );
    let irql = if passive_only {
        PASSIVE_LEVEL
    } else {
        match irql {
            Some(irql) => irql,
            None => ndis.state().callback_irql(),
        }
    };
    match work {
        Work::AfRegisterNotify { binding, again } => {
            binding::deliver_af_register_notify(world, ndis, binding, again, processor)
        }
        Work::OpenAdapterComplete { binding, status } => {
            binding::deliver_open_complete(world, ndis, binding, status, processor)
        }
        Work::CloseAdapterComplete { binding } => {
            binding::deliver_close_complete(world, ndis, binding, processor)
        }
        Work::Unbind { binding } => binding::unbind_binding(world, ndis, binding, processor),
        Work::Pnp { binding, step } => {
            // A step that does not apply any more (the binding went away meanwhile) is dropped.
            let _ = pnp::deliver_step(world, ndis, binding, step);
        }
        Work::Host { name, run } => run_host(world, name, run, processor),
        Work::OpenAfComplete { af, status } => af::deliver_open_complete(world, ndis, af, status, processor),
        Work::CloseAfComplete { af, status } => {
            af::deliver_close_complete(world, ndis, af, status, processor, irql)
        }
        Work::NotifyCloseAf { af } => af::deliver_notify_close(world, ndis, af, processor, irql),
        Work::AddressChange { af } => co_oid::deliver_address_change(world, ndis, af, processor, irql),
        Work::CoOidRequestComplete { request, .. } => {
            co_oid::deliver_complete(world, ndis, request, processor, irql)
        }
        Work::MakeCallComplete { vc, status, cause } => {
            call::deliver_make_call_complete(world, ndis, vc, status, cause, processor, irql)
        }
        Work::CloseCallComplete { vc, status } => {
            call::deliver_close_call_complete(world, ndis, vc, status, processor, irql)
        }
        Work::RemoteRelease { vc, status } => {
            call::deliver_remote_release(world, ndis, vc, status, processor, irql)
        }
        Work::AddPartyComplete { party, status, cause } => {
            party::deliver_add_party_complete(world, ndis, party, status, cause, processor, irql)
        }
        Work::DropPartyComplete { party, status } => {
            party::deliver_drop_party_complete(world, ndis, party, status, processor, irql)
        }
        Work::RemoteDrop { party, status, cause } => {
            party::deliver_remote_drop(world, ndis, party, status, cause, processor, irql)
        }
    }
}

/// Runs host work queued by another DDI module ([`queue_host_work`]) at PASSIVE on `processor`.
fn run_host(world: &World, name: &'static str, run: Box<dyn FnOnce() + Send>, processor: usize) {
    let previous = world.set_irql(processor, PASSIVE_LEVEL);
    world.log_call(processor, "sim", name, String::new());
    run();
    world.set_irql(processor, previous);
}
