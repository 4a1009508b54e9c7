//! The simulator's verifier: every documented rule a driver action can break, and the record of
//! the violations a run found.
//!
//! Rules are named after Driver Verifier's or Static Driver Verifier's rule where one exists
//! (`Irql_Protocol_Driver_Function`, `SpinLock`, …) and otherwise after the DDI page that states
//! them; the list mirrors `shared/ndis/verifier-rules.md` §7. A violation records the rule, the
//! Microsoft Learn page, the simulated time, the call that broke it and what was wrong; any
//! violation makes the run fail.

use crate::kernel::World;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A documented rule the verifier checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Driver Verifier / SDV rule name, or `Ddi_<Routine>` for rules stated only in DDI prose.
    pub name: &'static str,
    /// The Microsoft Learn page that states it.
    pub page: &'static str,
}

impl Rule {
    pub const fn new(name: &'static str, page: &'static str) -> Rule {
        Rule { name, page }
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    /// Simulated time (100 ns ticks) when it happened.
    pub time: u64,
    /// The call or callback that broke it, e.g. `ndis.sys!NdisClDropParty`.
    pub call: String,
    /// What was wrong, in a sentence.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VIOLATION {} at t={} in {}: {}\n    see {}",
            self.rule.name, self.time, self.call, self.detail, self.rule.page
        )
    }
}

/// The violations of one world (a [`World`] extension).
#[derive(Default)]
pub struct Verifier {
    violations: Mutex<Vec<Violation>>,
    /// Set only by [`Verifier::set_enabled`]`(false)`, for measuring what the verifier costs
    /// (`partyline-bench`). Default: checking.
    disabled: AtomicBool,
}

impl Verifier {
    /// The verifier of `world`, created on first use.
    pub fn of(world: &World) -> Arc<Verifier> {
        if let Some(verifier) = world.extension::<Verifier>() {
            return verifier;
        }
        let verifier = Arc::new(Verifier::default());
        // Another thread may have raced us; whichever was inserted first is kept.
        match world.insert_extension(verifier.clone()) {
            Some(previous) => {
                world.insert_extension(previous.clone());
                previous
            }
            None => verifier,
        }
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.violations.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_clean(&self) -> bool {
        self.violations.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Turns the verifier's checks on (the default) or off. Off, rules are neither checked at
    /// idle ([`crate::ndis::check_obligations`]) nor recorded: a run proves nothing. Only for
    /// measuring the verifier's cost.
    pub fn set_enabled(&self, enabled: bool) {
        self.disabled.store(!enabled, Ordering::Relaxed);
    }

    /// Whether the verifier checks and records (true unless switched off).
    pub fn is_enabled(&self) -> bool {
        !self.disabled.load(Ordering::Relaxed)
    }

    /// Records `violation`; returns how many are recorded now.
    fn push(&self, violation: Violation) -> usize {
        let mut violations = self.violations.lock().unwrap_or_else(|p| p.into_inner());
        violations.push(violation);
        violations.len()
    }
}

/// Whether `world`'s verifier checks (true unless switched off; a world without one yet gets the
/// default, checking).
pub fn is_enabled(world: &World) -> bool {
    world.extension_ref::<Verifier>().is_none_or(Verifier::is_enabled)
}

/// Records that `call` broke `rule` in `world`.
pub fn report(world: &World, rule: Rule, call: impl Into<String>, detail: impl Into<String>) {
    let verifier = Verifier::of(world);
    if !verifier.is_enabled() {
        return;
    }
    if world.stop().is_some() {
        // After a stop nothing more is recorded: the run is over.
        return;
    }
    let violation = Violation { rule, time: world.now(), call: call.into(), detail: detail.into() };
    let count = verifier.push(violation);
    let cap = world.caps().violations;
    if count >= cap {
        crate::kernel::stop_run(
            world,
            crate::kernel::Stop::Capped(format!(
                "{count} violations recorded (the cap): the run goes no further"
            )),
        );
    }
}

/// Which driver routine had to leave nothing behind: DriverUnload, or a DriverEntry that failed
/// (which must clean up before it returns, since DriverUnload will not be called).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleanup {
    DriverUnload,
    FailedDriverEntry,
}

impl Cleanup {
    /// The routine the leftovers are charged to, as a call name.
    pub fn call(self) -> &'static str {
        match self {
            Cleanup::DriverUnload => "partyline.sys!DriverUnload",
            Cleanup::FailedDriverEntry => "partyline.sys!DriverEntry",
        }
    }

    /// How the routine ended, for the violation's detail.
    pub fn ended(self) -> &'static str {
        match self {
            Cleanup::DriverUnload => "returned",
            Cleanup::FailedDriverEntry => "failed",
        }
    }
}
