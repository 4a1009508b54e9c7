//! How an I/O-manager, security or object-manager export starts: find the world and processor,
//! log the call, and report it if the processor's IRQL is above what the routine allows.
//!
//! Each export states these facts as data, an [`Entry`] next to its body: its name, its highest
//! legal IRQL (from its DDI page) and the rule that names the IRQL requirement. (The global
//! export descriptor that will replace this for every family is not built here.)

use crate::kernel::{self, Irql, World};
use crate::verifier::{self, Rule};

/// What an export's entry checks: `ntoskrnl.exe!<name>` may be called at `max` at most, and a
/// call above it breaks `rule`.
pub(crate) struct Entry {
    pub name: &'static str,
    pub max: Irql,
    pub rule: Rule,
}

impl Entry {
    pub const fn new(name: &'static str, max: Irql, rule: Rule) -> Entry {
        Entry { name, max, rule }
    }
}

/// Runs `f` with the world and processor, after logging the call (rendered by `detail`) and
/// reporting `entry.rule` if the processor's IRQL is above `entry.max`.
pub(crate) fn enter<R>(
    entry: &Entry,
    detail: impl FnOnce() -> String,
    f: impl FnOnce(&World, usize) -> R,
) -> R {
    let log = |world: &World, processor| world.log_call(processor, "ntoskrnl.exe", entry.name, detail());
    enter_logged(entry, log, f)
}

/// [`enter`] with the log entry made by `log` (a lazily rendered one on hot paths).
pub(crate) fn enter_logged<R>(
    entry: &Entry,
    log: impl FnOnce(&World, usize),
    f: impl FnOnce(&World, usize) -> R,
) -> R {
    // SAFETY: an export (every caller is one), using the world only until it returns.
    let (world, processor) = unsafe { kernel::current_world(entry.name) };
    let irql = world.irql(processor);
    log(world, processor);
    if irql > entry.max {
        verifier::report(
            world,
            entry.rule,
            format!("ntoskrnl.exe!{}", entry.name),
            format!("called at {irql}; the routine may be called at {} at most", entry.max),
        );
    }
    f(world, processor)
}
