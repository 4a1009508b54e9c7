//! The rules the machine itself checks: a run in which nothing can run, no virtual time is left
//! to pass, and someone still waits or spins. Listed in the one catalogue through
//! `ndis::rules::ALL` (crate::rules), proved in tests/ndis_rules.rs.

use crate::verifier::Rule;

/// A spin lock no processor can ever release is spun on: a deadlock on real hardware (Driver
/// Verifier's deadlock detection).
pub const DEADLOCK: Rule =
    Rule::new("Deadlock", "https://learn.microsoft.com/windows-hardware/drivers/devtest/deadlock-detection");

/// NdisWaitEvent waiting forever with nothing left that could set the event.
pub const WAIT_DEADLOCK: Rule = Rule::new(
    "Ddi_NdisWaitEvent_Deadlock",
    "https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiswaitevent",
);
