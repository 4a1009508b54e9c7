//! Who runs next at a scheduling point: a seeded choice among the runnable contexts and the work
//! ready to start.
//!
//! Read: Burckhardt, Kothari, Musuvathi, Nagarakatte, "A Randomized Scheduler with Probabilistic
//! Guarantees of Finding Bugs" (ASPLOS 2010) for [`Policy::Pct`]; Musuvathi et al., "Finding and
//! Reproducing Heisenbugs in Concurrent Programs" (CHESS, OSDI 2008) for the model: every
//! interleaving decision is a function of the seed, so a run replays event for event.
//!
//! Flow: the machine lists its candidates in a fixed order (contexts by id, then the work that may
//! start) and asks [`Chooser::pick`]. [`Policy::Random`] picks uniformly. [`Policy::Pct`] gives
//! every context a random priority when it is made, always runs the highest-priority candidate,
//! and at `depth - 1` change points chosen uniformly among the first `steps` scheduling points
//! lowers the running context below every other: a bug that needs `depth` ordering constraints
//! is found with probability at least 1 / (n · steps^(depth-1)) per run.

use crate::rng::Rng;

/// How the machine chooses among runnable contexts. Part of the run's configuration; the seed
/// is the run's seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Uniformly at random among the candidates at every scheduling point.
    Random,
    /// PCT: random priorities, `depth - 1` priority change points among the first `steps`
    /// scheduling points.
    Pct {
        /// The bug depth aimed at (>= 1): the number of ordering constraints.
        depth: u32,
        /// How many scheduling points a run is expected to have (change points fall among them).
        steps: u64,
    },
}

/// The policy's knobs. `Default`: random, with a timed event pulled in early about once every
/// 64 scheduling points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The choice at each point.
    pub policy: Policy,
    /// Per 10 000 scheduling points with a processor free, the chance that the next timed event
    /// (a completion, a network event) is started at once, before the work that is running goes
    /// idle: the network and the call manager do not wait for the driver to be idle. 0: timed
    /// events start only when nothing else can run.
    pub early_timer_per_10000: u32,
    /// How far ahead of the current virtual time an early timed event may be (100 ns ticks):
    /// events closer than this may arrive while the driver works; later ones wait for time to
    /// pass (the harness's `advance`, or nothing else to run).
    pub early_timer_window_ticks: u64,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule { policy: Policy::Random, early_timer_per_10000: 150, early_timer_window_ticks: 1_000 }
    }
}

impl Schedule {
    /// Never preempts and never pulls timed events early: each piece of work runs until it
    /// blocks or ends (the most sequential schedule; for benchmarks of the bare simulator).
    pub fn sequential() -> Schedule {
        Schedule {
            policy: Policy::Pct { depth: 1, steps: 1 },
            early_timer_per_10000: 0,
            early_timer_window_ticks: 0,
        }
    }

    /// PCT with `depth` and `steps`, no early timers beyond the default rate.
    pub fn pct(depth: u32, steps: u64) -> Schedule {
        Schedule { policy: Policy::Pct { depth: depth.max(1), steps: steps.max(1) }, ..Schedule::default() }
    }
}

/// A candidate as the chooser sees it: its priority (PCT) and nothing else.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub priority: u64,
}

/// The policy's state for one run.
pub(crate) struct Chooser {
    schedule: Schedule,
    rng: Rng,
    /// PCT change points (scheduling-point numbers), ascending, with the priority each gives.
    change_points: Vec<(u64, u64)>,
    /// Next priority handed to a new context (PCT: distinct, above every change-point priority).
    next_priority_base: u64,
}

impl Chooser {
    pub fn new(seed: u64, schedule: Schedule) -> Chooser {
        // A generator of its own, so that adding a scheduling point does not shift every other
        // random choice of the run (requests' outcomes, remote behaviour).
        let mut rng = Rng::new(seed ^ 0x5CED_0135_C4ED_0001);
        let mut change_points = Vec::new();
        if let Policy::Pct { depth, steps } = schedule.policy {
            for i in 1..depth {
                change_points.push((1 + rng.below(steps), u64::from(depth - i)));
            }
            change_points.sort_unstable();
        }
        let depth = match schedule.policy {
            Policy::Pct { depth, .. } => u64::from(depth),
            Policy::Random => 0,
        };
        Chooser { schedule, rng, change_points, next_priority_base: depth + 1 }
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// A priority for a new context or a piece of work about to start.
    pub fn new_priority(&mut self) -> u64 {
        // Distinct with overwhelming probability, and above every change-point priority.
        self.next_priority_base + (self.rng.next_u64() >> 16)
    }

    /// The priority the running context drops to at scheduling point `step`, if it is a change
    /// point.
    pub fn change_at(&mut self, step: u64) -> Option<u64> {
        let (at, priority) = *self.change_points.first()?;
        if at > step {
            return None;
        }
        self.change_points.remove(0);
        Some(priority)
    }

    /// The next scheduling point after `step` at which the policy wants to act even when nothing
    /// else is runnable (a change point or an early timer), for the fast path.
    pub fn next_event_after(&mut self, step: u64) -> u64 {
        let change = self.change_points.first().map_or(u64::MAX, |(at, _)| *at);
        let timer = match self.schedule.early_timer_per_10000 {
            0 => u64::MAX,
            rate => {
                // Geometric gap with mean 10 000 / rate.
                let mean = 10_000 / u64::from(rate).max(1);
                step + 1 + self.rng.below(2 * mean.max(1))
            }
        };
        change.min(timer).max(step + 1)
    }

    /// Picks one of `candidates` (not empty): an index.
    pub fn pick(&mut self, candidates: &[Candidate]) -> usize {
        match self.schedule.policy {
            Policy::Random => self.rng.below(candidates.len() as u64) as usize,
            Policy::Pct { .. } => {
                let mut best = 0;
                for (i, c) in candidates.iter().enumerate() {
                    if c.priority > candidates[best].priority {
                        best = i;
                    }
                }
                best
            }
        }
    }

    /// A uniform choice in `0..n` from the policy's own generator (e.g. a free processor).
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.below(n as u64) as usize
    }
}
