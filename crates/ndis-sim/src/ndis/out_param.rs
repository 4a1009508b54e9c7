//! Out-parameters written when NDIS writes them, with the memory they point to checked to still
//! be the driver's.
//!
//! Read: the out-parameter's description on each request's page — nf-ndis-ndisopenadapterex
//! (NdisBindingHandle; SelectedMediumIndex on ns-ndis-_ndis_open_parameters),
//! nf-ndis-ndisclopenaddressfamilyex (NdisAfHandle), nf-ndis-ndisclmakecall and
//! nf-ndis-ndiscladdparty (NdisPartyHandle). Where each request writes is documented there, at
//! the write.
//!
//! Flow: a request answered synchronously writes its out-parameters just before it returns: the
//! caller's variable may then be anywhere it can write, its stack included; only a freed pool
//! block is refused. A request that pends writes them at its completion, just before the
//! driver's completion handler is called (the latest moment the pages allow, since the handler
//! may read them): the caller has returned by then, so the variable must lie in memory the
//! driver owns — a live pool block of its own, or a read-write section of a loaded image (or a
//! range a test registers as its driver's data, [`register_driver_data`]). Otherwise
//! [`rules::OUT_PARAMETER_OWNERSHIP`] fires and nothing is written.

use std::sync::Mutex;

use super::memory::Pool;
use super::{rules, violation};
use crate::kernel::World;

/// When an out-parameter is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum When {
    /// Before a request returns a final status: the caller's frame is still live.
    Return,
    /// At the completion of a request that returned (or is about to return) PENDING.
    Completion,
}

/// Ranges tests declare as their driver's own data (a host-code test driver has no image).
static DRIVER_DATA: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// Declares `[base, base + size)` as driver data (as an image's read-write section would be), for
/// a test driver written in host code.
pub fn register_driver_data(base: usize, size: usize) {
    DRIVER_DATA.lock().unwrap_or_else(|p| p.into_inner()).push((base, size));
}

fn in_driver_data(address: usize, size: usize) -> bool {
    crate::loader::in_writable_data(address, size)
        || DRIVER_DATA
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(base, length)| address >= *base && address.saturating_add(size) <= base + length)
}

/// Why the driver does not own `[address, address + size)` for a write at `when`, if it does not.
fn not_owned(pool: &Pool, address: usize, size: usize, when: When) -> Option<String> {
    if let Some((start, length)) = pool.live_block(address) {
        return (address + size > start + length)
            .then(|| format!("runs past the end of pool block {start:#x}"));
    }
    if pool.is_freed(address) {
        return Some("lies in a freed pool block".into());
    }
    if when == When::Return || in_driver_data(address, size) {
        return None;
    }
    Some(
        "lies neither in a live pool block of the driver nor in its image's data (the caller's stack?)"
            .into(),
    )
}

/// Writes `value` to the driver's out-parameter `name` of `export` at `address` (non-null), if
/// the driver still owns that memory at `when`; otherwise reports
/// [`rules::OUT_PARAMETER_OWNERSHIP`] and writes nothing. True if written.
pub(crate) fn write<T: Copy>(
    world: &World,
    pool: &Pool,
    export: &str,
    name: &str,
    address: usize,
    value: T,
    when: When,
) -> bool {
    if let Some(why) = not_owned(pool, address, std::mem::size_of::<T>(), when) {
        let moment = match when {
            When::Return => "before the request returned",
            When::Completion => "at the completion of the pended request",
        };
        violation(
            world,
            rules::OUT_PARAMETER_OWNERSHIP,
            export,
            format!("{name} at {address:#x}, written {moment}, {why}"),
        );
        return false;
    }
    // SAFETY: non-null, and memory the driver gave NDIS for this out-parameter and still owns
    // (checked above); written unaligned as the driver may pack it.
    unsafe { (address as *mut T).write_unaligned(value) };
    true
}
