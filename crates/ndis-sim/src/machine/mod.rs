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
//! A stop ([`crate::kernel::fatal`]) on a worker ends only the run: the worker gives the baton to
//! the controller and parks for good (the driver's frames, which have only Windows unwind data,
//! are never unwound); every later request to the machine returns at once.

pub mod policy;

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
    /// The harness id of the work running, 0 if none or not harness work.
    running: u64,
    /// What it is doing, outermost first: work name, callbacks (true) and exports.
    calls: Calls,
}

/// What a context is doing, outermost first.
type Calls = Arc<SpinLock<Vec<Call>>>;

/// One entry of a context's calls: the name, whether it is a driver callback, and for an export
/// the driver's return address (0 otherwise).
type Call = (&'static str, bool, usize);

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
    finished: Vec<u64>,
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
                finished: Vec::new(),
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

    /// Scheduling points so far.
    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
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

    /// Whether harness work `id` has finished.
    pub fn finished(&self, id: u64) -> bool {
        lock(&self.sched).finished.contains(&id)
    }

    // ---------------------------------------------------------------- contexts

    /// Makes the calling (harness) thread a context on `processor`, holding the baton: for a
    /// thread that enters the world to act as the driver. Returns its id, or `None` if this thread
    /// is a context of this machine already.
    pub(crate) fn adopt(&self, world: &World, processor: usize) -> Option<usize> {
        if me_in(self).is_some() {
            return None;
        }
        let mut s = lock(&self.sched);
        let priority = s.chooser.new_priority();
        // The same thread coming back reuses what it had (a harness enters once per request).
        let this = std::thread::current().id();
        let (go, calls) =
            match s.ctxs.iter().find(|c| !c.worker && c.status == Status::Gone && c.thread.id() == this) {
                Some(old) => {
                    old.calls.lock().clear();
                    old.go.store(false, Ordering::Relaxed);
                    (Arc::clone(&old.go), Arc::clone(&old.calls))
                }
                None => (Arc::new(AtomicBool::new(false)), Arc::new(SpinLock::new(Vec::new()))),
            };
        let ctx = Ctx {
            thread: std::thread::current(),
            go,
            worker: false,
            status: Status::Ready,
            processor,
            holds: false,
            irql: world.irql(processor),
            priority,
            wake: Wake::Signaled,
            work: None,
            running: 0,
            calls: Arc::clone(&calls),
        };
        // A harness thread that left gives its slot to the next one (a harness enters once per
        // request: the list must not grow with the run).
        let id = match s
            .ctxs
            .iter()
            .position(|c| !c.worker && c.status == Status::Gone && c.thread.id() == this)
            .or_else(|| s.ctxs.iter().position(|c| !c.worker && c.status == Status::Gone))
        {
            Some(id) => {
                s.ctxs[id] = ctx;
                id
            }
            None => {
                s.ctxs.push(ctx);
                s.ctxs.len() - 1
            }
        };
        ME.with(|me| me.set((self, id)));
        CALLS.with(|c| *c.borrow_mut() = Some(calls));
        if s.baton == NONE && s.processors[processor] == NONE {
            self.take_baton(world, &mut s, id);
            return Some(id);
        }
        // Another thread holds the baton (or a context paused on this processor): wait to be
        // picked like any other context.
        self.contended.store(true, Ordering::Relaxed);
        let go = Arc::clone(&s.ctxs[id].go);
        drop(s);
        wait_for(&go);
        Some(id)
    }

    /// The adopted context `id` leaves the world: gives its processor and the baton up. Nothing
    /// else runs until the harness comes back (so a run stays a function of its seed).
    pub(crate) fn leave(&self, world: &World, id: usize) {
        let mut s = lock(&self.sched);
        if id >= s.ctxs.len() {
            return;
        }
        self.release_processor(world, &mut s, id);
        s.ctxs[id].status = Status::Gone;
        ME.with(|me| me.set((std::ptr::null(), NONE)));
        CALLS.with(|c| *c.borrow_mut() = None);
        if s.baton != id {
            return;
        }
        s.baton = NONE;
        // Another harness thread waiting to act as the driver gets the baton (several harness
        // threads are as deterministic as the host makes them); processor threads do not: they
        // wait for the harness to come back, so a single-threaded harness stays a function of
        // its seed.
        let next = s.ctxs.iter().position(|c| {
            !c.worker && c.status == Status::Ready && (c.holds || s.processors[c.processor] == NONE)
        });
        if let Some(next) = next {
            self.take_baton(world, &mut s, next);
            let target = (Arc::clone(&s.ctxs[next].go), s.ctxs[next].thread.clone());
            drop(s);
            target.0.store(true, Ordering::Release);
            target.1.unpark();
        }
    }

    fn take_baton(&self, world: &World, s: &mut Sched, id: usize) {
        s.baton = id;
        s.ctxs[id].status = Status::Running;
        if !s.ctxs[id].holds {
            let p = s.ctxs[id].processor;
            debug_assert!(s.processors[p] == NONE || s.processors[p] == id);
            s.processors[p] = id;
            s.ctxs[id].holds = true;
            world.set_irql(p, s.ctxs[id].irql);
        }
    }

    fn release_processor(&self, world: &World, s: &mut Sched, id: usize) {
        if s.ctxs[id].holds {
            let p = s.ctxs[id].processor;
            s.ctxs[id].irql = world.irql(p);
            s.ctxs[id].holds = false;
            s.processors[p] = NONE;
            world.set_irql(p, PASSIVE_LEVEL);
        }
    }

    /// An idle worker, or a new one (None at the limit).
    fn worker(self: &Arc<Self>, s: &mut Sched) -> Option<usize> {
        if let Some(id) = s.ctxs.iter().position(|c| c.worker && c.status == Status::Idle && c.work.is_none())
        {
            return Some(id);
        }
        if s.ctxs.iter().filter(|c| c.worker).count() >= MAX_WORKERS {
            return None;
        }
        let id = s.ctxs.len();
        let go = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(SpinLock::new(Vec::new()));
        let machine = Arc::clone(self);
        let (go2, calls2) = (Arc::clone(&go), Arc::clone(&calls));
        let spawned = std::thread::Builder::new()
            .name(format!("sim-cpu-ctx{id}"))
            .stack_size(WORKER_STACK)
            .spawn(move || worker_main(machine, id, go2, calls2));
        let handle = spawned.ok()?;
        let priority = s.chooser.new_priority();
        s.ctxs.push(Ctx {
            thread: handle.thread().clone(),
            go,
            worker: true,
            status: Status::Idle,
            processor: 0,
            holds: false,
            irql: PASSIVE_LEVEL,
            priority,
            wake: Wake::Signaled,
            work: None,
            running: 0,
            calls,
        });
        Some(id)
    }

    // ---------------------------------------------------------------- scheduling

    /// A scheduling point of the calling thread (see [`point`]).
    #[inline]
    fn at_point(self: &Arc<Self>, world: &World) {
        let step = self.steps.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.contended.load(Ordering::Relaxed)
            && step < self.next_event.load(Ordering::Relaxed)
            && !step.is_multiple_of(CAP_CHECK_EVERY)
        {
            return;
        }
        self.point_slow(world, step);
    }

    #[cold]
    #[inline(never)]
    fn point_slow(self: &Arc<Self>, world: &World, step: u64) {
        if self.is_stopped() {
            return;
        }
        if step.is_multiple_of(CAP_CHECK_EVERY) {
            world.check_caps(self.source().map_or(0, |source| source.pool_bytes()));
            if self.is_stopped() {
                return;
            }
        }
        let Some(me) = me_in(self) else { return };
        let mut s = lock(&self.sched);
        if s.baton != me {
            return;
        }
        let mut early_timer = false;
        if step >= self.next_event.load(Ordering::Relaxed) {
            if let Some(priority) = s.chooser.change_at(step) {
                s.ctxs[me].priority = priority;
            }
            early_timer = s.chooser.schedule().early_timer_per_10000 > 0;
            let next = s.chooser.next_event_after(step);
            self.next_event.store(next, Ordering::Relaxed);
        }
        if early_timer {
            self.start_early_timer(world, &mut s);
        }
        s.ctxs[me].status = Status::Ready;
        self.switch(world, s, me);
    }

    /// Starts the next timed item now (moving time to it) if a processor is free for it.
    fn start_early_timer(self: &Arc<Self>, world: &World, s: &mut Sched) {
        let Some(source) = self.source() else { return };
        let Some(due) = source.peek() else { return };
        let window = s.chooser.schedule().early_timer_window_ticks;
        if due.time <= world.now()
            || due.time - world.now() > window
            || self.free_processor(s, due.processor).is_none()
        {
            return;
        }
        // Never past what the harness asked for.
        match s.controller {
            Some((_, Until::Time(end))) if due.time > end => return,
            Some((_, Until::Done(id))) if s.finished.contains(&id) => return,
            _ => {}
        }
        world.advance_time(due.time - world.now());
        self.contended.store(true, Ordering::Relaxed);
    }

    fn free_processor(&self, s: &mut Sched, wanted: Option<usize>) -> Option<usize> {
        match wanted {
            Some(p) => (s.processors.get(p) == Some(&NONE)).then_some(p),
            None => {
                let free: Vec<usize> =
                    (0..self.processor_count).filter(|p| s.processors[*p] == NONE).collect();
                (!free.is_empty()).then(|| free[s.chooser.below(free.len())])
            }
        }
    }

    fn candidates(&self, world: &World, s: &mut Sched) -> Vec<Cand> {
        let mut out = Vec::new();
        for (id, c) in s.ctxs.iter().enumerate() {
            if c.status == Status::Ready && (c.holds || s.processors[c.processor] == NONE) {
                out.push(Cand::Ctx(id));
            }
        }
        let any_free = s.processors.contains(&NONE);
        let worker_free = s.ctxs.iter().filter(|c| c.worker).count() < MAX_WORKERS
            || s.ctxs.iter().any(|c| c.worker && c.status == Status::Idle && c.work.is_none());
        if any_free && worker_free {
            if let Some(i) =
                s.pending.iter().position(|p| p.processor.is_none_or(|p| s.processors.get(p) == Some(&NONE)))
            {
                out.push(Cand::Harness(i));
            }
            if let Some(due) = self.source().and_then(|source| source.peek()) {
                if due.time <= world.now() && due.processor.is_none_or(|p| s.processors.get(p) == Some(&NONE))
                {
                    out.push(Cand::Queued(due));
                }
            }
        }
        out
    }

    fn priority_of(&self, s: &mut Sched, cand: Cand) -> u64 {
        match cand {
            Cand::Ctx(id) => s.ctxs[id].priority,
            Cand::Harness(i) => s.pending[i].priority,
            Cand::Queued(due) => {
                if let Some((_, p)) = s.queued_priority.iter().find(|(id, _)| *id == due.id) {
                    return *p;
                }
                let p = s.chooser.new_priority();
                s.queued_priority.push((due.id, p));
                p
            }
        }
    }

    /// Starts `cand` (work) on a worker: returns the worker, which holds its processor and is
    /// Ready.
    fn start(self: &Arc<Self>, world: &World, s: &mut Sched, cand: Cand) -> Option<usize> {
        if let Cand::Ctx(id) = cand {
            return Some(id);
        }
        s.started += 1;
        let cap = world.caps().work_items;
        if s.started > cap {
            crate::kernel::record_stop(
                world,
                crate::kernel::Stop::Capped(format!(
                    "{} pieces of work started (the cap): the driver keeps the machine busy forever",
                    s.started - 1
                )),
            );
            self.stopped.store(true, Ordering::Release);
            return None;
        }
        let worker = self.worker(s)?;
        let (id, name, target_world, task, processor, priority) = match cand {
            Cand::Harness(i) => {
                let wanted = s.pending[i].processor;
                let processor = self.free_processor(s, wanted)?;
                let p = s.pending.remove(i)?;
                (p.id, p.name, p.world, p.task, processor, p.priority)
            }
            Cand::Queued(due) => {
                let processor = self.free_processor(s, due.processor)?;
                let source = self.source()?;
                let world_arc = world.arc();
                let (name, task) = source.take(&world_arc, processor)?;
                let priority = match s.queued_priority.iter().position(|(id, _)| *id == due.id) {
                    Some(at) => s.queued_priority.swap_remove(at).1,
                    None => s.chooser.new_priority(),
                };
                (0, name, world_arc, task, processor, priority)
            }
            Cand::Ctx(id) => return Some(id),
        };
        let ctx = &mut s.ctxs[worker];
        ctx.work = Some((id, name, target_world, task));
        ctx.processor = processor;
        ctx.priority = priority;
        ctx.irql = PASSIVE_LEVEL;
        ctx.status = Status::Ready;
        ctx.holds = true;
        s.processors[processor] = worker;
        world.set_irql(processor, PASSIVE_LEVEL);
        Some(worker)
    }

    /// Whether the controller's condition holds (nothing can run at this moment).
    fn satisfied(&self, world: &World, s: &Sched, until: Until) -> bool {
        match until {
            Until::Done(id) => s.finished.contains(&id),
            Until::Idle => {
                s.pending.is_empty()
                    && self.source().and_then(|source| source.peek()).is_none()
                    && !s
                        .ctxs
                        .iter()
                        .any(|c| matches!(c.status, Status::Waiting { .. } | Status::Spinning { .. }))
            }
            Until::Time(end) => {
                s.pending.is_empty()
                    && self.source().and_then(|source| source.peek()).is_none_or(|d| d.time > end)
                    && !s
                        .ctxs
                        .iter()
                        .any(|c| matches!(c.status, Status::Waiting { deadline: Some(d), .. } if d <= end))
                    && world.now() <= end
            }
        }
    }

    /// The next virtual time at which something happens (queued work or a wait's deadline),
    /// within the controller's limit.
    fn next_time(&self, world: &World, s: &Sched) -> Option<u64> {
        let queued = self.source().and_then(|source| source.peek()).map(|d| d.time);
        let deadline = s
            .ctxs
            .iter()
            .filter_map(|c| match c.status {
                Status::Waiting { deadline, .. } => deadline,
                _ => None,
            })
            .min();
        let next = match (queued, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }?;
        let next = next.max(world.now());
        match s.controller {
            Some((_, Until::Time(end))) if next > end => None,
            Some((_, Until::Done(id))) if s.finished.contains(&id) => None,
            _ => Some(next),
        }
    }

    /// Gives the baton to whoever the policy picks (`me` itself included, if it can run); returns
    /// when `me` holds it again. `me`'s status is set by the caller.
    fn switch(self: &Arc<Self>, world: &World, mut s: MutexGuard<'_, Sched>, me: usize) {
        loop {
            if self.is_stopped() {
                return self.after_stop(world, s, me);
            }
            let cands = self.candidates(world, &mut s);
            if !cands.is_empty() {
                let priorities: Vec<Candidate> =
                    cands.iter().map(|c| Candidate { priority: self.priority_of(&mut s, *c) }).collect();
                let chosen = cands[s.chooser.pick(&priorities)];
                let Some(next) = self.start(world, &mut s, chosen) else {
                    if self.is_stopped() {
                        continue;
                    }
                    // No worker could be made: treat as stuck below (rare: thread limit).
                    return self.stuck(world, s, me);
                };
                self.update_contended(world, &mut s, next);
                if next == me {
                    self.take_baton(world, &mut s, me);
                    if s.ctxs[me].work.is_some() {
                        // An idle worker that picked work for itself: its loop must not wait.
                        s.ctxs[me].go.store(true, Ordering::Release);
                    }
                    return;
                }
                return self.hand_over(world, s, me, next);
            }
            if let Some((controller, until)) = s.controller {
                if self.satisfied(world, &s, until) {
                    if controller == me {
                        self.take_baton_controller(&mut s, me);
                        return;
                    }
                    return self.hand_over(world, s, me, controller);
                }
            }
            if let Some(time) = self.next_time(world, &s) {
                let now = world.now();
                if time > now {
                    world.advance_time(time - now);
                }
                if time > world.caps().virtual_ticks {
                    crate::kernel::record_stop(
                        world,
                        crate::kernel::Stop::Capped(format!(
                            "virtual time t={time} is past the cap of {} ticks",
                            world.caps().virtual_ticks
                        )),
                    );
                    self.stopped.store(true, Ordering::Release);
                    continue;
                }
                for c in s.ctxs.iter_mut() {
                    if let Status::Waiting { deadline: Some(d), .. } = c.status {
                        if d <= time {
                            c.status = Status::Ready;
                            c.wake = Wake::TimedOut;
                            self.blocked.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
                continue;
            }
            let blocked =
                s.ctxs.iter().any(|c| matches!(c.status, Status::Waiting { .. } | Status::Spinning { .. }));
            if s.controller.is_some() || blocked {
                return self.stuck(world, s, me);
            }
            // At rest: nobody waits for anything.
            s.baton = NONE;
            return;
        }
    }

    fn take_baton_controller(&self, s: &mut Sched, me: usize) {
        s.baton = me;
        s.ctxs[me].status = Status::Running;
    }

    /// Recomputes the fast-path hint after `next` was chosen to run.
    fn update_contended(&self, world: &World, s: &mut Sched, next: usize) {
        let others = s.ctxs.iter().enumerate().any(|(id, c)| {
            id != next && c.status == Status::Ready && (c.holds || s.processors[c.processor] == NONE)
        });
        let work = !s.pending.is_empty()
            || self.source().and_then(|source| source.peek()).is_some_and(|d| d.time <= world.now());
        self.contended.store(others || work, Ordering::Relaxed);
    }

    /// Hands the baton from `me` to `next` and, unless `me` is done with the machine (idle
    /// worker, gone, parked), waits until it comes back.
    fn hand_over(self: &Arc<Self>, world: &World, mut s: MutexGuard<'_, Sched>, me: usize, next: usize) {
        if std::env::var_os("NDIS_SIM_MACHINE_TRACE").is_some() {
            eprintln!(
                "machine: {me} ({:?}, worker {}) -> {next} ({:?}, worker {}, work {})",
                s.ctxs[me].status,
                s.ctxs[me].worker,
                s.ctxs[next].status,
                s.ctxs[next].worker,
                s.ctxs[next].work.is_some()
            );
        }
        if s.ctxs[next].status == Status::Controlling {
            self.take_baton_controller(&mut s, next);
        } else {
            self.take_baton(world, &mut s, next);
        }
        let target = (Arc::clone(&s.ctxs[next].go), s.ctxs[next].thread.clone());
        let mine = Arc::clone(&s.ctxs[me].go);
        let waits = !matches!(s.ctxs[me].status, Status::Idle | Status::Gone | Status::Parked);
        drop(s);
        target.0.store(true, Ordering::Release);
        target.1.unpark();
        if waits {
            wait_for(&mine);
        }
    }

    /// Nothing can run, no time can pass, and someone still waits: a deadlock (or, with no
    /// worker to be had, a machine out of threads). Stops the run.
    fn stuck(self: &Arc<Self>, world: &World, s: MutexGuard<'_, Sched>, me: usize) {
        let report = self.describe(world, &s);
        let waits_on_event = s.ctxs.iter().any(|c| matches!(c.status, Status::Waiting { .. }));
        drop(s);
        let rule =
            if waits_on_event { crate::ndis::rules::WAIT_DEADLOCK } else { crate::ndis::rules::DEADLOCK };
        crate::verifier::report(world, rule, "sim!machine", report.clone());
        crate::kernel::record_stop(world, crate::kernel::Stop::Hang(format!("deadlock: {report}")));
        let s = lock(&self.sched);
        self.after_stop(world, s, me)
    }

    /// What every context is doing, for a deadlock report.
    fn describe(&self, world: &World, s: &Sched) -> String {
        let mut out = String::from("nothing can run and no virtual time is left to pass;");
        for (id, c) in s.ctxs.iter().enumerate() {
            let state = match c.status {
                Status::Waiting { key, deadline: None } => format!("waits forever on event {key:#x}"),
                Status::Waiting { key, deadline: Some(d) } => format!("waits on event {key:#x} until t={d}"),
                Status::Spinning { key } => format!("spins on lock {key:#x}"),
                Status::Controlling => "is the harness, waiting for the run".to_owned(),
                Status::Ready | Status::Running => "can run".to_owned(),
                _ => continue,
            };
            let calls: Vec<&str> = c.calls.lock().iter().map(|(name, _, _)| *name).collect();
            let calls = calls.join(" > ");
            let who = if c.worker { "processor" } else { "harness thread on processor" };
            out.push_str(&format!(" [context {id}, {who} {}] {state}; in: {calls};", c.processor));
        }
        out.push_str(&format!(" t={}", world.now()));
        out
    }

    /// After the run stopped: the controller gets the baton back; `me` returns if it is the
    /// controller, ends the process if it is a harness thread acting as the driver, and parks
    /// for good if it is a worker.
    fn after_stop(self: &Arc<Self>, world: &World, mut s: MutexGuard<'_, Sched>, me: usize) {
        self.stopped.store(true, Ordering::Release);
        let controller = s.controller.map(|(c, _)| c);
        if controller == Some(me) {
            self.take_baton_controller(&mut s, me);
            return;
        }
        if !s.ctxs[me].worker {
            drop(s);
            crate::kernel::exit_after_stop(world);
        }
        s.ctxs[me].status = Status::Parked;
        if let Some(controller) = controller {
            self.take_baton_controller(&mut s, controller);
            let target = (Arc::clone(&s.ctxs[controller].go), s.ctxs[controller].thread.clone());
            drop(s);
            target.0.store(true, Ordering::Release);
            target.1.unpark();
        } else {
            // An adopted thread acting as the driver waits somewhere: wake it to see the stop.
            let adopted: Vec<(Arc<AtomicBool>, Thread)> = s
                .ctxs
                .iter()
                .filter(|c| !c.worker && !matches!(c.status, Status::Gone | Status::Parked))
                .map(|c| (Arc::clone(&c.go), c.thread.clone()))
                .collect();
            s.baton = NONE;
            drop(s);
            for (go, thread) in adopted {
                go.store(true, Ordering::Release);
                thread.unpark();
            }
        }
        park_forever()
    }

    /// Stops the run from the calling thread (after [`crate::kernel::record_stop`]): see
    /// [`Machine::after_stop`]. Returns only on the controller.
    pub(crate) fn stop_here(self: &Arc<Self>, world: &World) {
        self.stopped.store(true, Ordering::Release);
        match me_in(self) {
            Some(me) => {
                let s = lock(&self.sched);
                self.after_stop(world, s, me)
            }
            None => crate::kernel::exit_after_stop(world),
        }
    }

    // ---------------------------------------------------------------- the harness

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

    /// Whether `until` holds already with nothing to run, queued or blocked (the common case of a
    /// harness that drains after every request): no context needs to be touched.
    fn nothing_to_do(&self, until: Until) -> bool {
        if !matches!(until, Until::Idle | Until::Time(_)) || self.contended.load(Ordering::Relaxed) {
            return false;
        }
        if self.blocked.load(Ordering::Relaxed) != 0 {
            return false;
        }
        let idle = {
            let s = lock(&self.sched);
            s.pending.is_empty()
                && s.ctxs.iter().all(|c| !matches!(c.status, Status::Ready | Status::Running) || !c.worker)
        };
        idle && self.source().and_then(|source| source.peek()).is_none()
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
        let result = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        result
    }

    // ---------------------------------------------------------------- blocking

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

    /// Worker `me` finished its work: frees its processor and hands the baton on.
    fn finish(self: &Arc<Self>, world: &World, me: usize, id: u64) {
        let mut s = lock(&self.sched);
        if id != 0 {
            s.finished.push(id);
        }
        s.ctxs[me].running = 0;
        self.release_processor(world, &mut s, me);
        s.ctxs[me].status = Status::Idle;
        self.switch(world, s, me);
    }
}

/// Waits until `go` is set (the baton arrived), consuming it.
fn wait_for(go: &AtomicBool) {
    while !go.swap(false, Ordering::Acquire) {
        std::thread::park();
    }
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// A worker's life: wait for work, run it on its processor, hand the baton on, again.
fn worker_main(machine: Arc<Machine>, me: usize, go: Arc<AtomicBool>, calls: Calls) {
    ME.with(|m| m.set((Arc::as_ptr(&machine), me)));
    CALLS.with(|c| *c.borrow_mut() = Some(calls));
    loop {
        wait_for(&go);
        let work = {
            let mut s = lock(&machine.sched);
            if s.exiting && s.ctxs[me].work.is_none() {
                s.ctxs[me].status = Status::Gone;
                return;
            }
            let work = s.ctxs[me].work.take();
            if let Some((id, _, _, _)) = &work {
                s.ctxs[me].running = *id;
            }
            work.map(|w| (w, s.ctxs[me].processor))
        };
        let Some(((id, name, world, task), processor)) = work else {
            if std::env::var_os("NDIS_SIM_MACHINE_TRACE").is_some() {
                eprintln!("machine: worker {me} woke without work");
            }
            continue;
        };
        if std::env::var_os("NDIS_SIM_MACHINE_TRACE").is_some() {
            eprintln!("machine: worker {me} runs {name}");
        }
        {
            let _entered = world.enter_worker(processor, me);
            push_call(name);
            task();
            pop_call();
        }
        machine.finish(&world, me, id);
        drop(world);
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
    push((name, true, 0));
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
        calls.iter().rev().find(|(_, _, caller)| *caller != 0).map(|(_, _, caller)| *caller)
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
