//! The driver's own state, checked: the rules a run breaks when, read through the control device
//! (IOCTL_PARTYLINE_READ_STATE, [`crate::scenario::audit`]), the driver still holds objects after a
//! teardown or objects no live parent accounts for, or refused events the run did not expect.
//!
//! Pages: nf-ndis-ndiscompleteunbindadapterex and devtest/pool-tracking (below), for what a
//! teardown must leave; nf-ndis-ndiscladdparty for the contexts NDIS hands back.
//!
//! Flow: the harness runs until idle, calls [`check_leftovers`] after every unbind (strict when
//! no binding is left: every table empty) and before DriverUnload (every object accounted for),
//! and [`check_refusals`] at the end of the run with what the run expected. Why before
//! DriverUnload and not after: DriverUnload deletes the control device first, so nothing can ask
//! the driver afterwards; the unbinds that its NdisDeregisterProtocolDriver makes run the same
//! ProtocolUnbindAdapterEx that the checked unbinds run.

use crate::kernel::World;
use crate::rules::Family;
use crate::scenario::audit::{Audit, Leftover, RefusalExpectation};
use crate::verifier::{self, Rule};
use partyline_core::Census;

/// A teardown left objects in the driver's tables, or a table holds objects no live parent
/// accounts for. "When the driver calls NdisCompleteUnbindAdapterEx, the driver has finished
/// cleaning up any per-binding context information that the driver maintains for the binding"
/// (nf-ndis-ndiscompleteunbindadapterex; an unbind that returns SUCCESS has done the same), and
/// at unload Pool Tracking requires every allocation freed: a slot kept in a chunk the driver
/// frees wholesale at unload is the same leak, invisible to pool tracking, so it is counted per
/// table here.
pub const OBJECTS_LEFT: Rule = Rule::new(
    "DriverState_ObjectsLeft",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompleteunbindadapterex",
);

/// The driver refused an event the run did not expect (or lost a deferred request). NDIS hands a
/// client back only the contexts it supplied, for objects in states where the event is legal
/// (nf-ndis-ndiscladdparty: ProtocolPartyContext is the client's per-party state), so a refused
/// NDIS event means the driver's state and NDIS's disagree; a refused control request must be
/// one the run sent on purpose.
pub const UNEXPECTED_REFUSAL: Rule = Rule::new(
    "DriverState_UnexpectedRefusal",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscladdparty",
);

/// The family's rules.
pub const RULES: &[Rule] = &[OBJECTS_LEFT, UNEXPECTED_REFUSAL];

/// The family, for [`crate::rules::FAMILIES`].
pub const FAMILY: Family = Family { name: "driver state", rules: RULES };

/// Reports each leftover of `audit` as a violation charged to `call`: with `all_unbound`, every
/// object and queued request ([`Audit::left_after_teardown`]), else the objects no live parent
/// accounts for ([`Audit::unaccounted`]). Returns what it reported.
pub fn check_leftovers(world: &World, audit: &Audit, all_unbound: bool, call: &str) -> Vec<Leftover> {
    let found = if all_unbound { audit.left_after_teardown() } else { audit.unaccounted() };
    for leftover in &found {
        verifier::report(world, OBJECTS_LEFT, call, leftover.to_string());
    }
    found
}

/// Reports every refusal outside `expected` (and lost deferred requests). Returns the problems.
pub fn check_refusals(
    world: &World,
    census: &Census,
    expected: &RefusalExpectation,
    call: &str,
) -> Vec<String> {
    let problems = expected.unexpected(census);
    for problem in &problems {
        verifier::report(world, UNEXPECTED_REFUSAL, call, problem.clone());
    }
    problems
}
