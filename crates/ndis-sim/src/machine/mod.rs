//! The deterministic multi-processor machine: every simulated processor runs driver code on a
//! host thread of its own, exactly one host thread runs at a time, and a seeded policy decides at
//! every scheduling point who runs next.
//!
//! Read: docs/ARCHITECTURE.md, "The machine"; [`policy`] for the choice and its sources.
//!
//! Flow. A *context* is a host thread the machine schedules: a *worker* (a thread of the
//! machine's own, which runs one piece of work at a time on a simulated processor: a completion,
//! a network event, a harness request such as a bind or an IOCTL's dispatch routine) or an
//! *adopted* thread (a test that plays the driver and calls exports itself, from the moment it
//! enters the world until it leaves). The *baton* says which context may run; every other one is
//! parked. A context gives the baton up only at a scheduling point — entry to and return from
//! every export ([`point`], called by the export thunks of [`crate::exports`]), entry to every
//! driver callback — or when it blocks: an infinite or timed wait on an event
//! ([`Machine::wait`]), a spin lock held by another processor ([`Machine::spin`]), or the end of
//! its work. At each one the policy picks among the contexts that can run (holding their
//! processor, or whose processor is free) and the work that can start on a free processor.
//! Work on virtual time (the simulated NDIS's queue, a [`WorkSource`]) starts when nothing else
//! can run, moving time on — or early, at a point the policy picks (the network does not wait).
//! A context waiting at PASSIVE_LEVEL gives its processor up (other work may run there, as a DPC
//! runs on a processor whose thread waits); one spinning keeps it.
//!
//! The harness is the *controller*: [`Machine::run`] lends the baton out until the machine is
//! idle, a virtual time is reached, or a given piece of work is done. When nothing can run, no
//! time is left to pass and the controller is not satisfied, the run is deadlocked: the machine
//! reports what every context was doing (its calls, innermost last) and stops the run.
//!
//! `NDIS_SIM_MACHINE_TRACE=1` prints every hand-over of the baton and every piece of work a
//! worker starts (debugging the machine itself).
//!
//! A stop ([`crate::kernel::fatal`]) on a worker ends only the run: the worker gives the baton to
//! the controller and parks for good (the driver's frames, which have only Windows unwind data,
//! are never unwound); every later request to the machine returns at once.

mod contexts;
pub mod policy;
pub mod rules;
mod switch;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;

use crate::kernel::{Irql, World, PASSIVE_LEVEL};
use crate::spin::SpinLock;
use policy::{Candidate, Chooser};
pub use policy::{Policy, Schedule};

/// A piece of work the machine runs on a worker, with the world entered on its processor.
pub type Task = Box<dyn FnOnce() + Send>;

/// Queued work on virtual time (the simulated NDIS's queue).
pub trait WorkSource: Send + Sync {
    /// The earliest queued item, if any.
    fn peek(&self) -> Option<Due>;
    /// Removes the earliest item and returns what delivers it on `processor`.
    fn take(&self, world: &Arc<World>, processor: usize) -> Option<(&'static str, Task)>;
    /// Bytes of pool the driver holds (for the run's memory cap).
    fn pool_bytes(&self) -> u64 {
        0
    }
}

/// When and where the earliest queued item wants to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// Virtual time it is due.
    pub time: u64,
    /// A stable id (for the policy's priorities).
    pub id: u64,
    /// The processor it must run on, if any.
    pub processor: Option<usize>,
}

/// What [`Machine::run`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Nothing left to run and nothing queued.
    Idle,
    /// Everything due by this virtual time has run (then time is moved there by the caller).
    Time(u64),
    /// The harness work with this id has finished.
    Done(u64),
}

/// No context (an id).
const NONE: usize = usize::MAX;
/// Workers a machine makes at most (beyond: work waits for one to be free).
const MAX_WORKERS: usize = 64;
/// Scheduling points between two checks of the run's caps on the fast path.
const CAP_CHECK_EVERY: u64 = 1 << 14;
/// Host stack of a worker: far more than a Windows kernel stack (24 KiB on x64).
const WORKER_STACK: usize = 1 << 20;

/// Why a blocked context was woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The event it waited for was set, or the lock released.
    Signaled,
    /// Its wait timed out.
    TimedOut,
    /// The run stopped.
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// A worker without work.
    Idle,
    /// Wants to run.
    Ready,
    /// Holds the baton.
    Running,
    /// Waits for `key` (an event), until `deadline` if any; processor given up.
    Waiting { key: usize, deadline: Option<u64> },
    /// Spins on the lock at `key`; processor kept.
    Spinning { key: usize },
    /// The harness, waiting in [`Machine::run`].
    Controlling,
    /// An adopted thread that left the world, or a worker that exited.
    Gone,
    /// Parked for good after a stop.
    Parked,
}

struct Ctx {
    thread: Thread,
    go: Arc<AtomicBool>,
    worker: bool,
    status: Status,
    processor: usize,
    holds: bool,
    irql: Irql,
    priority: u64,
    wake: Wake,
    /// Work handed to an idle worker: (harness id or 0, name, world, task).
    work: Option<(u64, &'static str, Arc<World>, Task)>,
    /// What it is doing, outermost first: work name, callbacks (true) and exports.
    calls: Calls,
}

/// What a context is doing, outermost first.
type Calls = Arc<SpinLock<Vec<Call>>>;

/// One entry of a context's calls: the name, whether it is a driver callback, and for an export
/// the driver's return address, for a callback its entry number ([`entries_so_far`]).
type Call = (&'static str, bool, usize);

/// Driver callbacks entered so far, over every world: each entry's number orders it against
/// what the driver was told before (see [`outermost_entry`]).
static ENTRIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The number of the last driver callback entered (any context, any world).
pub fn entries_so_far() -> usize {
    ENTRIES.load(Ordering::SeqCst)
}

/// The entry number of the outermost driver callback the calling context is in: when the
/// driver activity that is running now began.
pub fn outermost_entry() -> Option<usize> {
    CALLS.with(|c| {
        let calls = c.borrow();
        let calls = calls.as_ref()?.lock();
        calls.iter().find(|(_, callback, _)| *callback).map(|(_, _, entry)| *entry)
    })
}

/// Harness work not started yet.
struct Pending {
    id: u64,
    name: &'static str,
    processor: Option<usize>,
    world: Arc<World>,
    task: Task,
    priority: u64,
}

/// A candidate at a scheduling point.
#[derive(Clone, Copy, Debug)]
enum Cand {
    Ctx(usize),
    Harness(usize),
    Queued(Due),
}

struct Sched {
    chooser: Chooser,
    ctxs: Vec<Ctx>,
    processors: Vec<usize>,
    pending: VecDeque<Pending>,
    next_id: u64,
    /// Harness work finished and not yet collected by the `run_task` waiting for it (a set: a long
    /// run, such as the soak's millions of requests, must not search a list of every task ever run).
    finished: std::collections::BTreeSet<u64>,
    controller: Option<(usize, Until)>,
    baton: usize,
    /// Priorities given to queued work (PCT), by its id, until it starts.
    queued_priority: Vec<(u64, u64)>,
    exiting: bool,
    /// Pieces of work started so far.
    started: u64,
}

/// The machine of one world (see the module documentation).
pub struct Machine {
    sched: Mutex<Sched>,
    source: Mutex<Option<Arc<dyn WorkSource>>>,
    /// Whether a scheduling point has anything to decide besides going on (another context or
    /// work may be able to run). Kept conservatively true when unsure.
    contended: AtomicBool,
    /// Scheduling points so far.
    steps: AtomicU64,
    /// The next point at which the policy acts even when uncontended.
    next_event: AtomicU64,
    stopped: AtomicBool,
    /// Contexts waiting or spinning (a signal with none is free).
    blocked: AtomicUsize,
    processor_count: usize,
}

fn lock(mutex: &Mutex<Sched>) -> MutexGuard<'_, Sched> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

thread_local! {
    /// The machine and context of this thread, if it is one: (machine, context id).
    static ME: std::cell::Cell<(*const Machine, usize)> = const { std::cell::Cell::new((std::ptr::null(), NONE)) };
    /// The calls list of this thread's context (a clone of `Ctx::calls`).
    static CALLS: std::cell::RefCell<Option<Calls>> = const { std::cell::RefCell::new(None) };
}

/// This thread's context in `machine`, if any.
fn me_in(machine: &Machine) -> Option<usize> {
    let (m, id) = ME.with(std::cell::Cell::get);
    (std::ptr::eq(m, machine) && id != NONE).then_some(id)
}

impl Machine {
    /// A machine of `processor_count` processors, scheduled by `schedule` from `seed`.
    pub fn new(processor_count: usize, seed: u64, schedule: Schedule) -> Machine {
        let mut chooser = Chooser::new(seed, schedule);
        let next_event = chooser.next_event_after(0);
        Machine {
            sched: Mutex::new(Sched {
                chooser,
                ctxs: Vec::new(),
                processors: vec![NONE; processor_count],
                pending: VecDeque::new(),
                next_id: 0,
                finished: std::collections::BTreeSet::new(),
                controller: None,
                baton: NONE,
                queued_priority: Vec::new(),
                exiting: false,
                started: 0,
            }),
            source: Mutex::new(None),
            contended: AtomicBool::new(true),
            steps: AtomicU64::new(0),
            next_event: AtomicU64::new(next_event),
            stopped: AtomicBool::new(false),
            blocked: AtomicUsize::new(0),
            processor_count,
        }
    }

    /// Sets the seed and schedule (before anything ran).
    pub fn configure(&self, seed: u64, schedule: Schedule) {
        let mut s = lock(&self.sched);
        s.chooser = Chooser::new(seed, schedule);
        let next = s.chooser.next_event_after(self.steps.load(Ordering::Relaxed));
        self.next_event.store(next, Ordering::Relaxed);
    }

    /// The schedule in force.
    pub fn schedule(&self) -> Schedule {
        lock(&self.sched).chooser.schedule()
    }

    /// Installs the queue of work on virtual time.
    pub fn set_source(&self, source: Arc<dyn WorkSource>) {
        *self.source.lock().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    fn source(&self) -> Option<Arc<dyn WorkSource>> {
        self.source.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the run was stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Tells the machine that work may have become ready (queued work due now): the next
    /// scheduling point looks.
    pub fn notify(&self) {
        self.contended.store(true, Ordering::Relaxed);
    }

    /// Queues harness work `task` (named `name`) on `processor` (or any), returning its id for
    /// [`Until::Done`]. It starts at a scheduling point or in [`Machine::run`].
    pub fn spawn(&self, world: &Arc<World>, name: &'static str, processor: Option<usize>, task: Task) -> u64 {
        let mut s = lock(&self.sched);
        s.next_id += 1;
        let id = s.next_id;
        let priority = s.chooser.new_priority();
        s.pending.push_back(Pending { id, name, processor, world: Arc::clone(world), task, priority });
        drop(s);
        self.notify();
        id
    }

    /// Lends the baton out until `until` holds, the run is deadlocked, or it stopped. Called by the
    /// harness (not from driver code).
    pub fn run(self: &Arc<Self>, world: &World, until: Until) {
        if self.is_stopped() || self.nothing_to_do(until) {
            return;
        }
        let (me, adopted_here) = match me_in(self) {
            Some(me) => (me, false),
            None => match self.adopt(world, 0) {
                Some(me) => (me, true),
                None => return,
            },
        };
        {
            let mut s = lock(&self.sched);
            if s.ctxs[me].worker {
                drop(s);
                crate::kernel::fatal(
                    Some(world),
                    crate::kernel::Stop::SimulatorFault("Machine::run called from driver code".to_owned()),
                );
            }
            let previous = s.controller.replace((me, until));
            let status = s.ctxs[me].status;
            self.release_processor(world, &mut s, me);
            s.ctxs[me].status = Status::Controlling;
            self.contended.store(true, Ordering::Relaxed);
            self.switch(world, s, me);
            let mut s = lock(&self.sched);
            s.controller = previous;
            if !self.is_stopped() {
                s.ctxs[me].status = status;
                if matches!(status, Status::Running | Status::Ready) {
                    // Back to acting as the driver on its processor, once it is free.
                    let p = s.ctxs[me].processor;
                    if s.processors[p] == NONE {
                        s.processors[p] = me;
                        s.ctxs[me].holds = true;
                        world.set_irql(p, s.ctxs[me].irql);
                    }
                    s.ctxs[me].status = Status::Running;
                }
            }
        }
        if adopted_here {
            self.leave(world, me);
        }
    }

    /// Runs `f` as harness work on `processor` (or any processor if `None`) and returns its
    /// result, or `None` if the run stopped before it finished.
    pub fn run_task<R: Send + 'static>(
        self: &Arc<Self>,
        world: &Arc<World>,
        name: &'static str,
        processor: Option<usize>,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        if self.is_stopped() {
            return None;
        }
        let slot: Arc<Mutex<Option<R>>> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        let id = self.spawn(
            world,
            name,
            processor,
            Box::new(move || {
                let result = f();
                *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            }),
        );
        self.run(world, Until::Done(id));
        lock(&self.sched).finished.remove(&id);
        let result = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        result
    }

    /// Blocks the calling context until `signal(key)` (or `deadline`, virtual time). The caller
    /// checked the condition just before (nothing ran in between). Returns why it woke.
    pub fn wait(self: &Arc<Self>, world: &World, key: usize, deadline: Option<u64>) -> Wake {
        self.block(world, Status::Waiting { key, deadline })
    }

    /// Blocks the calling context until the lock at `key` is released (`signal(key)`); it keeps
    /// its processor, spinning.
    pub fn spin(self: &Arc<Self>, world: &World, key: usize) -> Wake {
        self.block(world, Status::Spinning { key })
    }

    fn block(self: &Arc<Self>, world: &World, status: Status) -> Wake {
        if self.is_stopped() {
            return Wake::Stopped;
        }
        let Some(me) = me_in(self) else {
            // Not a context (a thread outside the machine): cannot block here.
            return Wake::Stopped;
        };
        let mut s = lock(&self.sched);
        if matches!(status, Status::Waiting { .. }) {
            self.release_processor(world, &mut s, me);
        }
        s.ctxs[me].status = status;
        s.ctxs[me].wake = Wake::Signaled;
        self.blocked.fetch_add(1, Ordering::Relaxed);
        self.switch(world, s, me);
        if self.is_stopped() {
            return Wake::Stopped;
        }
        lock(&self.sched).ctxs[me].wake
    }

    /// Wakes every context blocked on `key` (an event set, a lock released).
    #[inline]
    pub fn signal(&self, key: usize) {
        if self.blocked.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.signal_slow(key);
    }

    #[cold]
    fn signal_slow(&self, key: usize) {
        let mut s = lock(&self.sched);
        let mut woke = false;
        for c in s.ctxs.iter_mut() {
            let matches = match c.status {
                Status::Waiting { key: k, .. } | Status::Spinning { key: k } => k == key,
                _ => false,
            };
            if matches {
                c.status = Status::Ready;
                c.wake = Wake::Signaled;
                self.blocked.fetch_sub(1, Ordering::Relaxed);
                woke = true;
            }
        }
        if woke {
            self.contended.store(true, Ordering::Relaxed);
        }
    }

    /// Ends the machine's idle workers (the world is going away).
    pub fn shutdown(&self) {
        let mut s = lock(&self.sched);
        s.exiting = true;
        let idle: Vec<(Arc<AtomicBool>, Thread)> = s
            .ctxs
            .iter()
            .filter(|c| c.worker && c.status == Status::Idle)
            .map(|c| (Arc::clone(&c.go), c.thread.clone()))
            .collect();
        drop(s);
        for (go, thread) in idle {
            go.store(true, Ordering::Release);
            thread.unpark();
        }
    }
}

/// Records that the calling context entered `name` (a piece of work), for reports.
#[inline]
pub fn push_call(name: &'static str) {
    push((name, false, 0));
}

/// Records that the calling context entered the export `name`, called from `caller` (the
/// driver's return address).
#[inline]
pub fn push_export(name: &'static str, caller: usize) {
    push((name, false, caller));
}

/// Records that the calling context entered the driver callback `name`.
#[inline]
pub fn push_callback(name: &'static str) {
    push((name, true, ENTRIES.fetch_add(1, Ordering::SeqCst) + 1));
}

#[inline]
fn push(call: Call) {
    CALLS.with(|c| {
        if let Some(calls) = c.borrow().as_ref() {
            calls.lock().push(call);
        }
    });
}

/// Records that the calling context left its innermost call.
#[inline]
pub fn pop_call() {
    CALLS.with(|c| {
        if let Some(calls) = c.borrow().as_ref() {
            calls.lock().pop();
        }
    });
}

/// The driver callbacks the calling context is inside, outermost first.
pub fn current_callbacks() -> Vec<&'static str> {
    CALLS.with(|c| match c.borrow().as_ref() {
        Some(calls) => {
            calls.lock().iter().filter(|(_, callback, _)| *callback).map(|(name, _, _)| *name).collect()
        }
        None => Vec::new(),
    })
}

/// The driver's return address of the innermost export the calling context is in.
pub fn current_caller() -> Option<usize> {
    CALLS.with(|c| {
        let calls = c.borrow();
        let calls = calls.as_ref()?.lock();
        calls
            .iter()
            .rev()
            .find(|(_, callback, caller)| !*callback && *caller != 0)
            .map(|(_, _, caller)| *caller)
    })
}

/// Whether the calling thread is one of `world`'s processor threads (running driver work).
pub fn on_worker(world: &World) -> bool {
    let machine = world.machine();
    match me_in(machine) {
        Some(me) => lock(&machine.sched).ctxs.get(me).is_some_and(|c| c.worker),
        None => false,
    }
}

/// Whether the calling thread is one of `world`'s contexts: a processor thread, or a harness
/// thread that entered the world to act as the driver.
pub fn is_context(world: &World) -> bool {
    me_in(world.machine()).is_some()
}

/// A scheduling point of the calling thread in its current world, if it is in one.
#[inline]
pub fn point() {
    if let Some(world) = crate::kernel::current_world_ref() {
        let machine = world.machine();
        machine.at_point(world);
    }
}
