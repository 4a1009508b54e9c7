//! How an I/O-manager, security or object-manager export starts: through the one entry path of
//! every family ([`crate::ddi::enter`]), with its log entry made as text (or lazily, on hot paths)
//! and its body run with the world and processor.
//!
//! Each export states its [`Ddi`] next to its body: its name, its IRQL requirement (from its DDI
//! page) and the rule that names it.

use crate::ddi::{self, Context, Ddi};
use crate::kernel::World;

/// Runs `f` with the world and processor, after logging the call (rendered by `detail`) and
/// reporting `ddi.rule` if the processor's IRQL breaks `ddi.irql`.
pub(crate) fn enter<R>(ddi: &Ddi, detail: impl FnOnce() -> String, f: impl FnOnce(&World, usize) -> R) -> R {
    let log = |world: &World, processor| world.log_call(processor, ddi.dll.name(), ddi.name, detail());
    enter_logged(ddi, log, |world, processor| {
        super::IoManager::of_ref(world).probe(world, ddi.name);
        f(world, processor)
    })
}

/// [`enter`] with the log entry made by `log` (a lazily rendered one on hot paths).
pub(crate) fn enter_logged<R>(
    ddi: &Ddi,
    log: impl FnOnce(&World, usize),
    f: impl FnOnce(&World, usize) -> R,
) -> R {
    // SAFETY: an export (every caller is one), using the world only until it returns.
    let Context { world, processor, .. } =
        unsafe { ddi::enter::<()>(ddi, |world, processor, _| log(world, processor)) };
    f(world, processor)
}
