//! The machine's contexts: harness threads adopted while they act as the driver, the machine's own
//! processor threads (workers), and how the baton and the processors pass between them.
//!
//! Read: the module documentation of [`super`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;
use crate::kernel::{World, PASSIVE_LEVEL};
use crate::spin::SpinLock;

impl Machine {
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

    pub(super) fn take_baton(&self, world: &World, s: &mut Sched, id: usize) {
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

    pub(super) fn release_processor(&self, world: &World, s: &mut Sched, id: usize) {
        if s.ctxs[id].holds {
            let p = s.ctxs[id].processor;
            s.ctxs[id].irql = world.irql(p);
            s.ctxs[id].holds = false;
            s.processors[p] = NONE;
            world.set_irql(p, PASSIVE_LEVEL);
        }
    }

    /// An idle worker, or a new one (None at the limit).
    pub(super) fn worker(self: &Arc<Self>, s: &mut Sched) -> Option<usize> {
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
            calls,
        });
        Some(id)
    }
}

/// Waits until `go` is set (the baton arrived), consuming it.
pub(super) fn wait_for(go: &AtomicBool) {
    while !go.swap(false, Ordering::Acquire) {
        std::thread::park();
    }
}

pub(super) fn park_forever() -> ! {
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
