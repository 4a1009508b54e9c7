//! The machine's decisions: at a scheduling point, who runs next; when nothing can run, whether
//! time passes, the harness gets control back, or the run is deadlocked; and a stop.
//!
//! Read: the module documentation of [`super`], and [`super::policy`] for the choice itself.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::contexts::{park_forever, wait_for};
use super::*;
use crate::kernel::World;

impl Machine {
    /// A scheduling point of the calling thread (see [`point`]).
    #[inline]
    pub(super) fn at_point(self: &Arc<Self>, world: &World) {
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
    pub(super) fn point_slow(self: &Arc<Self>, world: &World, step: u64) {
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
    pub(super) fn start_early_timer(self: &Arc<Self>, world: &World, s: &mut Sched) {
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

    pub(super) fn free_processor(&self, s: &mut Sched, wanted: Option<usize>) -> Option<usize> {
        match wanted {
            Some(p) => (s.processors.get(p) == Some(&NONE)).then_some(p),
            None => {
                let free: Vec<usize> =
                    (0..self.processor_count).filter(|p| s.processors[*p] == NONE).collect();
                (!free.is_empty()).then(|| free[s.chooser.below(free.len())])
            }
        }
    }

    pub(super) fn candidates(&self, world: &World, s: &mut Sched) -> Vec<Cand> {
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

    pub(super) fn priority_of(&self, s: &mut Sched, cand: Cand) -> u64 {
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
    pub(super) fn start(self: &Arc<Self>, world: &World, s: &mut Sched, cand: Cand) -> Option<usize> {
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
    pub(super) fn satisfied(&self, world: &World, s: &Sched, until: Until) -> bool {
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
    pub(super) fn next_time(&self, world: &World, s: &Sched) -> Option<u64> {
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
    pub(super) fn switch(self: &Arc<Self>, world: &World, mut s: MutexGuard<'_, Sched>, me: usize) {
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

    pub(super) fn take_baton_controller(&self, s: &mut Sched, me: usize) {
        s.baton = me;
        s.ctxs[me].status = Status::Running;
    }

    /// Recomputes the fast-path hint after `next` was chosen to run.
    pub(super) fn update_contended(&self, world: &World, s: &mut Sched, next: usize) {
        let others = s.ctxs.iter().enumerate().any(|(id, c)| {
            id != next && c.status == Status::Ready && (c.holds || s.processors[c.processor] == NONE)
        });
        let work = !s.pending.is_empty()
            || self.source().and_then(|source| source.peek()).is_some_and(|d| d.time <= world.now());
        self.contended.store(others || work, Ordering::Relaxed);
    }

    /// Hands the baton from `me` to `next` and, unless `me` is done with the machine (idle
    /// worker, gone, parked), waits until it comes back.
    pub(super) fn hand_over(
        self: &Arc<Self>,
        world: &World,
        mut s: MutexGuard<'_, Sched>,
        me: usize,
        next: usize,
    ) {
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
    pub(super) fn stuck(self: &Arc<Self>, world: &World, s: MutexGuard<'_, Sched>, me: usize) {
        let report = self.describe(world, &s);
        let waits_on_event = s.ctxs.iter().any(|c| matches!(c.status, Status::Waiting { .. }));
        drop(s);
        let rule = if waits_on_event { super::rules::WAIT_DEADLOCK } else { super::rules::DEADLOCK };
        crate::verifier::report(world, rule, "sim!machine", report.clone());
        crate::kernel::record_stop(world, crate::kernel::Stop::Hang(format!("deadlock: {report}")));
        let s = lock(&self.sched);
        self.after_stop(world, s, me)
    }

    /// What every context is doing, for a deadlock report.
    pub(super) fn describe(&self, world: &World, s: &Sched) -> String {
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
    pub(super) fn after_stop(self: &Arc<Self>, world: &World, mut s: MutexGuard<'_, Sched>, me: usize) {
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

    /// Whether `until` holds already with nothing to run, queued or blocked (the common case of a
    /// harness that drains after every request): no context needs to be touched.
    pub(super) fn nothing_to_do(&self, until: Until) -> bool {
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

    /// Worker `me` finished its work: frees its processor and hands the baton on.
    pub(super) fn finish(self: &Arc<Self>, world: &World, me: usize, id: u64) {
        let mut s = lock(&self.sched);
        if id != 0 {
            s.finished.insert(id);
        }
        self.release_processor(world, &mut s, me);
        s.ctxs[me].status = Status::Idle;
        self.switch(world, s, me);
    }
}
