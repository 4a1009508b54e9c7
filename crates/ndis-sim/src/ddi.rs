//! How every simulated export starts, whatever its DLL: one descriptor per export ([`Ddi`]: DLL,
//! name, IRQL requirement, the rule that names it) and one entry path ([`enter`]) that finds the
//! world, the processor and the family's state, logs the call and checks the IRQL.
//!
//! Read: "Managing Hardware Priorities"
//! (https://learn.microsoft.com/windows-hardware/drivers/kernel/managing-hardware-priorities)
//! and each export's DDI page, which states the IRQL it may be called at.
//!
//! Flow: an export states its [`Ddi`] as a `const` next to its body and begins with
//! `enter::<Family>(&DDI, log)`; the family (`ndis::Ndis`, or `()` for the I/O manager's exports,
//! which find their own state) is looked up by [`Family::of`], `log` makes the export's log entry
//! (arguments are rendered per export), and an IRQL outside the requirement is reported under the
//! descriptor's rule. Depends only on `kernel` and `verifier`; the families depend on it.

use std::fmt;

use crate::kernel::{self, Call, Irql, World};
use crate::verifier::{self, Rule};

/// The DLL an export belongs to (the first half of `dll!name` in logs and violations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dll {
    Ndis,
    Ntoskrnl,
}

impl Dll {
    /// The DLL's file name.
    pub const fn name(self) -> &'static str {
        match self {
            Dll::Ndis => "ndis.sys",
            Dll::Ntoskrnl => "ntoskrnl.exe",
        }
    }
}

/// The IRQL an export may be called at, from its DDI page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IrqlRequirement {
    /// At this IRQL or below ("IRQL <= DISPATCH_LEVEL").
    AtMost(Irql),
    /// At exactly this IRQL ("IRQL = PASSIVE_LEVEL").
    Exactly(Irql),
    /// Not checked: NdisGetVersion, NdisAllocateSpinLock and NdisFreeSpinLock, whose pages say
    /// <= DISPATCH_LEVEL but whose IRQL the simulator has never checked (checking it is a new
    /// rule, for the rule catalogue, not part of the entry path).
    Unchecked,
}

/// What an export's entry checks: `dll!name` may be called at `irql`, and a call outside it
/// breaks `rule`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ddi {
    pub dll: Dll,
    pub name: &'static str,
    pub irql: IrqlRequirement,
    pub rule: Rule,
}

impl Ddi {
    /// An `ndis.sys` export.
    pub const fn ndis(name: &'static str, irql: IrqlRequirement, rule: Rule) -> Ddi {
        Ddi { dll: Dll::Ndis, name, irql, rule }
    }

    /// An `ntoskrnl.exe` export (I/O manager, security, object manager, kernel).
    pub const fn ntoskrnl(name: &'static str, irql: IrqlRequirement, rule: Rule) -> Ddi {
        Ddi { dll: Dll::Ntoskrnl, name, irql, rule }
    }

    /// `dll!name`, for a log entry.
    pub const fn call(&self) -> Call {
        Call::new(self.dll.name(), self.name)
    }

    /// What is wrong with being called at `irql`, if anything. (Each family keeps the wording its
    /// reports have always had.)
    fn irql_problem(&self, irql: Irql) -> Option<IrqlProblem> {
        let fine = match self.irql {
            IrqlRequirement::AtMost(max) => irql <= max,
            IrqlRequirement::Exactly(required) => irql == required,
            IrqlRequirement::Unchecked => true,
        };
        (!fine).then_some(IrqlProblem { dll: self.dll, irql, requirement: self.irql })
    }
}

/// A call at the wrong IRQL, as its violation's detail reads.
struct IrqlProblem {
    dll: Dll,
    irql: Irql,
    requirement: IrqlRequirement,
}

impl fmt::Display for IrqlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let irql = self.irql;
        match (self.requirement, self.dll) {
            (IrqlRequirement::AtMost(max), Dll::Ndis) => write!(f, "called at {irql}; allowed at most {max}"),
            (IrqlRequirement::AtMost(max), Dll::Ntoskrnl) => {
                write!(f, "called at {irql}; the routine may be called at {max} at most")
            }
            (IrqlRequirement::Exactly(required), _) => {
                write!(f, "called at {irql}; must be called at {required}")
            }
            (IrqlRequirement::Unchecked, _) => write!(f, "called at {irql}"),
        }
    }
}

/// A family of exports: the state its exports share, found from the world on every call.
pub(crate) trait Family: 'static {
    /// The family's state in `world`; stops the run if it has none (a simulator bug).
    fn of<'a>(world: &'a World, ddi: &Ddi) -> &'a Self;
}

/// Exports that find their own state (the I/O manager's, the object manager's).
impl Family for () {
    fn of<'a>(_: &'a World, _: &Ddi) -> &'a Self {
        &()
    }
}

/// Where an export runs: its world, its processor, its family's state, and whether the IRQL was
/// legal (an export that must not go on at a wrong IRQL returns early on `false`).
pub(crate) struct Context<'a, F> {
    pub world: &'a World,
    pub processor: usize,
    pub family: &'a F,
    pub irql_ok: bool,
}

/// Enters export `ddi`: finds the world, processor and family state (no reference count, no
/// lock), makes the export's log entry with `log`, then reports `ddi.rule` if the processor's
/// IRQL breaks `ddi.irql`.
///
/// # Safety
/// Only for an export called by the driver (or simulator code below a [`World::enter`] guard),
/// and the references only until it returns: see [`kernel::current_world`]. A family's state
/// lives as long as its world.
#[inline]
pub(crate) unsafe fn enter<'a, F: Family>(
    ddi: &Ddi,
    log: impl FnOnce(&'a World, usize, &'a F),
) -> Context<'a, F> {
    // SAFETY: this function's own contract.
    let (world, processor) = unsafe { kernel::current_world(ddi.name) };
    let family = F::of(world, ddi);
    log(world, processor, family);
    let problem = ddi.irql_problem(world.irql(processor));
    let irql_ok = problem.is_none();
    if let Some(problem) = problem {
        report_irql(world, ddi, problem);
    }
    Context { world, processor, family, irql_ok }
}

#[cold]
#[inline(never)]
fn report_irql(world: &World, ddi: &Ddi, problem: IrqlProblem) {
    verifier::report(world, ddi.rule, format!("{}!{}", ddi.dll.name(), ddi.name), problem.to_string());
}
