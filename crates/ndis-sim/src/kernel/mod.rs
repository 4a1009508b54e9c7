//! The kernel foundation: the simulated world, per-processor IRQL, virtual time, the call log, and
//! the host side of a few ntoskrnl.exe exports (`KeGetCurrentIrql`, `KeBugCheckEx`,
//! `KeQueryPerformanceCounter`) plus the compiler-support imports (`__chkstk`, `memcpy`, ...).
//!
//! Read: "KeGetCurrentIrql", "KeBugCheckEx", "KeQueryPerformanceCounter" and "Managing Hardware
//! Priorities" (IRQL) on Microsoft Learn.
//!
//! Flow: a [`World`] is one simulation, shared behind `Arc`. A host thread that calls into an
//! image first [`World::enter`]s it on a simulated processor; while the returned guard lives, the
//! thread's *current world* and *current processor* are set, and every export finds its world
//! through [`with_current`] (or, on hot paths, the crate's reference-count-free
//! `current_world`). Further DDI families (the simulated NDIS) keep their own state as a world
//! extension ([`World::insert_extension`], found by reference with [`World::extension_ref`]) and
//! log through [`World::log_lazy`]: an entry keeps its arguments and is turned into text only when
//! the log is read ([`World::log`]), so logging every call costs a record, not a `format!`
//! ([`World::log_call`] takes text made already, for rare entries).
//!
//! Files, one idea each: this one holds the [`World`] (processors and their IRQL, virtual time,
//! extensions) and which world is current on a thread ([`World::enter`], [`with_current`]);
//! `log.rs` the call log ([`Call`], [`LogEntry`]); `stop.rs` how a run stops ([`Stop`], [`Caps`],
//! [`fatal`]); `exports.rs` the ntoskrnl.exe foundation exports ([`register`]).

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::spin::SpinLock;

mod exports;
mod log;
mod stop;

pub(crate) use exports::{not_implemented_trap, reads_caller_frame};
pub use exports::{register, signatures};
use log::Log;
pub use log::{Args, Call, LogEntry, Render};
pub(crate) use stop::{exit_after_stop, record_stop};
pub use stop::{
    fatal, stop_run, BugCheck, Caps, Stop, BUGCHECK_EXIT_CODE, CAPPED_EXIT_CODE, HANG_EXIT_CODE,
    NOT_IMPLEMENTED_EXIT_CODE, SIMULATOR_FAULT_EXIT_CODE, SPECIAL_POOL_EXIT_CODE,
};

/// An interrupt request level of a simulated processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Irql(pub u8);

/// `PASSIVE_LEVEL` (0): threads run here; paged memory and waits allowed.
pub const PASSIVE_LEVEL: Irql = Irql(0);
/// `APC_LEVEL` (1).
pub const APC_LEVEL: Irql = Irql(1);
/// `DISPATCH_LEVEL` (2): DPCs and spin-lock holders; no waits, no paged memory.
pub const DISPATCH_LEVEL: Irql = Irql(2);

impl fmt::Display for Irql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PASSIVE_LEVEL => f.write_str("PASSIVE_LEVEL"),
            APC_LEVEL => f.write_str("APC_LEVEL"),
            DISPATCH_LEVEL => f.write_str("DISPATCH_LEVEL"),
            Irql(level) => write!(f, "IRQL {level}"),
        }
    }
}

/// One simulation: simulated processors with their IRQL, virtual time, the call log, how the run
/// stopped if it did, and extensions that further DDI families hang their state on.
pub struct World {
    irqls: Box<[AtomicU8]>,
    /// The processors' host threads and who runs next (see [`crate::machine`]).
    machine: Arc<crate::machine::Machine>,
    /// How to replay this run, printed with a stop (set by the harness that knows).
    replay: Mutex<Option<String>>,
    /// Unique in the process, never reused (see [`World::id`]).
    id: u64,
    /// The run's bounds, and when it started (host time).
    caps: Mutex<(Caps, std::time::Instant)>,
    time: AtomicU64,
    log: SpinLock<Log>,
    stop: Mutex<Option<Stop>>,
    /// Newest first; nodes are freed only with the world, so a reference to an extension lives
    /// as long as the world (see [`World::extension_ref`]).
    extensions: AtomicPtr<ExtensionNode>,
}

/// One inserted extension.
struct ExtensionNode {
    type_id: TypeId,
    value: Arc<dyn Any + Send + Sync>,
    next: *mut ExtensionNode,
}

impl Drop for World {
    fn drop(&mut self) {
        self.machine.shutdown();
        let mut node = *self.extensions.get_mut();
        while !node.is_null() {
            // SAFETY: every node was made by `Box::into_raw` in `insert_extension` and is owned
            // by this list alone; the world is being dropped, so nothing refers to it any more.
            let boxed = unsafe { Box::from_raw(node) };
            node = boxed.next;
        }
    }
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("processors", &self.irqls.len())
            .field("time", &self.now())
            .field("log_len", &self.log.lock().len)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl World {
    /// A world with `processor_count` simulated processors, all at `PASSIVE_LEVEL`, at time 0.
    ///
    /// # Panics
    /// If `processor_count` is 0.
    pub fn new(processor_count: usize) -> Arc<World> {
        assert!(processor_count > 0, "a world needs at least one processor");
        Arc::new(World {
            irqls: (0..processor_count).map(|_| AtomicU8::new(PASSIVE_LEVEL.0)).collect(),
            machine: Arc::new(crate::machine::Machine::new(
                processor_count,
                0,
                crate::machine::Schedule::default(),
            )),
            replay: Mutex::new(None),
            id: {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                NEXT.fetch_add(1, Ordering::Relaxed)
            },
            caps: Mutex::new((Caps::default(), std::time::Instant::now())),
            time: AtomicU64::new(0),
            log: SpinLock::new(Log::new()),
            stop: Mutex::new(None),
            extensions: AtomicPtr::new(std::ptr::null_mut()),
        })
    }

    /// The number of simulated processors.
    pub fn processor_count(&self) -> usize {
        self.irqls.len()
    }

    /// This world's number, unique in the process (from 1).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The machine that runs this world's processors.
    #[inline]
    pub fn machine(&self) -> &Arc<crate::machine::Machine> {
        &self.machine
    }

    /// The IRQL of `processor`.
    ///
    /// # Panics
    /// If `processor` is not one of this world's.
    pub fn irql(&self, processor: usize) -> Irql {
        Irql(self.irqls[processor].load(Ordering::Acquire))
    }

    /// Sets the IRQL of `processor`, returning the previous one. Checking that raises and lowers
    /// pair up is the business of the DDI that changes IRQL (spin locks, `KeRaiseIrql`).
    ///
    /// # Panics
    /// If `processor` is not one of this world's.
    pub fn set_irql(&self, processor: usize, irql: Irql) -> Irql {
        // A processor's IRQL is changed only by the host thread running that processor (a
        // processor is never run by two threads at once), so a load and a store suffice; they
        // cost no locked instruction, unlike a swap.
        let slot = &self.irqls[processor];
        let previous = slot.load(Ordering::Acquire);
        slot.store(irql.0, Ordering::Release);
        Irql(previous)
    }

    /// Virtual time in 100 ns ticks.
    pub fn now(&self) -> u64 {
        self.time.load(Ordering::SeqCst)
    }

    /// Advances virtual time by `ticks` (100 ns each). Time moves only when the simulation says.
    pub fn advance_time(&self, ticks: u64) {
        self.time.fetch_add(ticks, Ordering::SeqCst);
    }

    /// Stores `extension` as this world's `T`, replacing any previous one, which is returned.
    /// (The replaced one is kept, unused, until the world is dropped.)
    pub fn insert_extension<T: Any + Send + Sync>(&self, extension: Arc<T>) -> Option<Arc<T>> {
        let type_id = TypeId::of::<T>();
        let node =
            Box::into_raw(Box::new(ExtensionNode { type_id, value: extension, next: std::ptr::null_mut() }));
        let mut head = self.extensions.load(Ordering::Acquire);
        loop {
            // SAFETY: `node` is ours until the exchange below publishes it.
            unsafe { (*node).next = head };
            match self.extensions.compare_exchange_weak(head, node, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        Self::find(head, type_id)
            .map(|old| old.value.clone().downcast::<T>().expect("extensions are keyed by their TypeId"))
    }

    /// The newest node of `type_id` from `node` on.
    #[inline]
    fn find<'a>(mut node: *mut ExtensionNode, type_id: TypeId) -> Option<&'a ExtensionNode> {
        while !node.is_null() {
            // SAFETY: nodes are published complete (release/acquire on `extensions`), never
            // changed afterwards, and freed only when the world drops; the caller borrows the
            // world for `'a`.
            let current = unsafe { &*node };
            if current.type_id == type_id {
                return Some(current);
            }
            node = current.next;
        }
        None
    }

    /// This world's `T`, if one was inserted.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        Self::find(self.extensions.load(Ordering::Acquire), TypeId::of::<T>())
            .map(|node| node.value.clone().downcast::<T>().expect("extensions are keyed by their TypeId"))
    }

    /// This world's `T` by reference: no reference count is touched (the DDI modules look their
    /// state up on every export). Valid as long as the world, which keeps every extension ever
    /// inserted.
    #[inline]
    pub fn extension_ref<T: Any + Send + Sync>(&self) -> Option<&T> {
        let node = Self::find(self.extensions.load(Ordering::Acquire), TypeId::of::<T>())?;
        let pointer = Arc::as_ptr(&node.value).cast::<T>();
        // SAFETY: the node's `type_id` is `TypeId::of::<T>()`, recorded when it was made from an
        // `Arc<T>`, so its value is a `T`; it lives as long as the world (see `find`).
        Some(unsafe { &*pointer })
    }

    /// Another reference to this world (which, like every world, lives in an `Arc`).
    pub fn arc(&self) -> Arc<World> {
        let pointer: *const World = self;
        // SAFETY: a `World` is only ever made by `World::new`, inside an `Arc` (its fields are
        // private), so `self` is the contents of a live `Arc<World>`; taking one more strong
        // count first makes `from_raw` an owned reference of its own.
        unsafe {
            Arc::increment_strong_count(pointer);
            Arc::from_raw(pointer)
        }
    }

    /// Makes this world and `processor` current on the calling thread until the guard drops
    /// (which restores what was current before, so entries nest).
    ///
    /// # Panics
    /// If `processor` is not one of this world's.
    pub fn enter(self: &Arc<Self>, processor: usize) -> Entered {
        assert!(
            processor < self.processor_count(),
            "processor {processor} out of range (world has {})",
            self.processor_count()
        );
        let (current, _, _, ctx) = FAST.with(Cell::get);
        let nested = std::ptr::eq(current, Arc::as_ptr(self)) && ctx != NO_CONTEXT;
        let mut guard = self.enter_as(processor, if nested { ctx } else { NO_CONTEXT });
        if !nested {
            // A harness thread entering to act as the driver becomes one of the machine's
            // contexts (and waits for the baton) until the guard drops.
            if let Some(id) = self.machine.adopt(self, processor) {
                FAST.with(|fast| {
                    let (w, p, t, _) = fast.get();
                    fast.set((w, p, t, id));
                });
                guard.adopted = Some((Arc::clone(self), id));
            }
        }
        guard
    }

    /// Enters on a machine worker: `processor`, context `ctx`.
    pub(crate) fn enter_worker(self: &Arc<Self>, processor: usize, ctx: usize) -> Entered {
        self.enter_as(processor, ctx)
    }

    fn enter_as(self: &Arc<Self>, processor: usize, ctx: usize) -> Entered {
        let token = NEXT_TOKEN.with(|next| {
            let token = next.get() + 1;
            next.set(token);
            token
        });
        let previous = CURRENT.with(|current| current.replace(Some((Arc::clone(self), processor))));
        let previous_fast = FAST.with(|fast| fast.replace((Arc::as_ptr(self), processor, token, ctx)));
        Entered { previous, previous_fast, token, adopted: None, _not_send: std::marker::PhantomData }
    }
}

/// No machine context in [`FAST`].
const NO_CONTEXT: usize = usize::MAX;

thread_local! {
    static CURRENT: RefCell<Option<(Arc<World>, usize)>> = const { RefCell::new(None) };
    /// `CURRENT` without its reference count, for [`current_world`]: the world `CURRENT` holds
    /// (null if none), the processor, and the token of the guard that installed it.
    static FAST: Cell<(*const World, usize, u64, usize)> =
        const { Cell::new((std::ptr::null(), 0, 0, NO_CONTEXT)) };
    /// The last token given to a guard.
    static NEXT_TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// Guard returned by [`World::enter`]; restores the previous current world when dropped. Not
/// `Send`: it belongs to the thread that entered.
#[must_use = "the world is current only while the guard lives"]
pub struct Entered {
    previous: Option<(Arc<World>, usize)>,
    previous_fast: (*const World, usize, u64, usize),
    token: u64,
    /// The world and machine context this guard adopted the thread as, if it did.
    adopted: Option<(Arc<World>, usize)>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some((world, id)) = self.adopted.take() {
            world.machine.leave(&world, id);
        }
        let previous = self.previous.take();
        let replaced = CURRENT.with(|current| current.replace(previous));
        let (_, _, replaced_token, _) = FAST.with(|fast| fast.replace(self.previous_fast));
        // Guards drop in reverse order of entry, and then `replaced` is the very reference this
        // guard installed. If one was dropped out of order, `replaced` is another guard's, which
        // an export further down this thread's stack may still use (through `current_world`):
        // it is kept alive (leaked) instead.
        if let Some((world, _)) = replaced {
            if replaced_token != self.token {
                std::mem::forget(world);
            }
        }
    }
}

/// The calling thread's current world and processor, without touching a reference count: for
/// exports, on every call. An export called on a thread with no current world is a simulator
/// bug, and stops the run with a report naming `export`.
///
/// # Safety
/// The world must not be used after the export (or the code below a [`World::enter`] guard)
/// that called this returns: it is kept alive by the current-world reference of this thread,
/// which guards restore in order (see [`Entered`]'s drop), not by the returned reference.
#[inline]
pub(crate) unsafe fn current_world<'a>(export: &str) -> (&'a World, usize) {
    let (world, processor, _, _) = FAST.with(Cell::get);
    if world.is_null() {
        no_current_world(export);
    }
    // SAFETY: non-null, so it is the world `CURRENT` holds a reference to (they change
    // together); per this function's contract the caller uses it only while that holds.
    (unsafe { &*world }, processor)
}

impl World {
    /// [`World::enter`], unless this world is already current on `processor` on this thread:
    /// then nothing changes and there is no guard.
    pub fn enter_unless_current(self: &Arc<Self>, processor: usize) -> Option<Entered> {
        let (world, current, _, _) = FAST.with(Cell::get);
        (!std::ptr::eq(world, Arc::as_ptr(self)) || current != processor).then(|| self.enter(processor))
    }
}

/// The calling thread's current processor if `world` is its current world (no reference count
/// touched).
pub fn current_processor_in(world: &World) -> Option<usize> {
    let (current, processor, _, _) = FAST.with(Cell::get);
    std::ptr::eq(current, world).then_some(processor)
}

/// The calling thread's current processor, if it entered a world (no reference count touched).
pub fn current_processor() -> Option<usize> {
    let (world, processor, _, _) = FAST.with(Cell::get);
    (!world.is_null()).then_some(processor)
}

/// The calling thread's current world, by reference (no reference count), for scheduling
/// points: valid while the thread stays in it (see [`current_world`]).
#[inline]
pub fn current_world_ref<'a>() -> Option<&'a World> {
    let (world, _, _, _) = FAST.with(Cell::get);
    // SAFETY: non-null, so it is the world `CURRENT` holds a reference to; callers use it only
    // within the export or scheduling point that asked.
    (!world.is_null()).then(|| unsafe { &*world })
}

/// The calling thread's current world and processor, if it entered one.
pub fn current() -> Option<(Arc<World>, usize)> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Runs `f` with the current world and processor. For exports: an export called on a thread with
/// no current world is a simulator bug, and stops the run with a report naming `export`.
pub fn with_current<R>(export: &str, f: impl FnOnce(&Arc<World>, usize) -> R) -> R {
    match current() {
        Some((world, processor)) => f(&world, processor),
        None => fatal(
            None,
            Stop::SimulatorFault(format!("{export} was called on a thread with no current world")),
        ),
    }
}

#[cold]
#[inline(never)]
fn no_current_world(export: &str) -> ! {
    fatal(None, Stop::SimulatorFault(format!("{export} was called on a thread with no current world")))
}
