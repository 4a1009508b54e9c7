//! Special pool, as Driver Verifier's (option 0x1): every driver allocation on pages of its own,
//! ending at the end of its last page, with an inaccessible guard page after it; freed blocks made
//! inaccessible and kept out of use for a while.
//!
//! Read: "Special Pool" (devtest/special-pool), bug checks 0xD6
//! DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION and 0xCC PAGE_FAULT_IN_FREED_SPECIAL_POOL on Microsoft
//! Learn. [`crate::fault_trap`] turns a fault on these pages into a violation and a stop.
//!
//! Flow: one arena of address space per process is reserved inaccessible (`PROT_NONE`,
//! `MAP_NORESERVE`) on first use; [`ARENA`] holds its bounds in atomics, which the fault handler
//! reads without a lock. A block of `length` bytes takes a *slot*: `ceil(round16(length) / page)`
//! data pages made read-write, and one guard page left inaccessible. The block starts at
//! `data end - round16(length)`: its start is 16-byte aligned (`MEMORY_ALLOCATION_ALIGNMENT` on
//! x64, which the driver's code may rely on), so its end lies 0 to 15 bytes before the guard page.
//! Those *slack* bytes are filled with [`SLACK`] and checked at free, as Windows checks the bytes
//! between an aligned special-pool block and its page end; a length that is a multiple of 16
//! ends exactly at the guard page. On free the data pages become inaccessible again; blocks of
//! more than one page also give their pages back to the host (`MADV_DONTNEED`), one-page blocks
//! keep theirs (at most [`QUARANTINE_BLOCKS`] pages, 4 MiB): a syscall and a page fault less per
//! allocation when the slot is reused, which is most of special pool's cost. The slot stays in quarantine until [`QUARANTINE_BLOCKS`]
//! or [`QUARANTINE_PAGES`] are exceeded, then the oldest slot is released for reuse by a block of
//! the same page count. At most [`MAX_LIVE`] blocks are live in special pool at once (each costs
//! the process about two memory mappings, and `vm.max_map_count` is 65530 by default); beyond
//! that, or if the arena is full, an allocation falls back to the ordinary pool
//! ([`allocate`] returns `None`).
//!
//! The registry ([`REGISTRY`]) is taken only briefly by the pool exports, never while the
//! driver's code runs, so the fault trampoline can take it; it uses `try_lock` anyway.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Page size of the host (x86-64 Linux) and of the simulated kernel.
pub const PAGE: usize = 4096;
/// Address space reserved for the arena: 64 GiB.
const ARENA_BYTES: usize = 1 << 36;
/// Blocks kept inaccessible after free before their slot may be reused, at most (a window of
/// the last 1,024 frees: larger windows cost fresh pages, a page fault each, on every allocation).
pub const QUARANTINE_BLOCKS: usize = 1024;
/// Pages (data and guard) kept in quarantine, at most.
pub const QUARANTINE_PAGES: usize = 1 << 16;
/// Blocks live in special pool at once, at most (all simulations of the process together).
pub const MAX_LIVE: usize = 16_384;
/// Fill of the slack bytes between a block's end and its guard page.
pub const SLACK: u8 = 0xA5;
/// Block alignment: `MEMORY_ALLOCATION_ALIGNMENT` on x64.
const ALIGNMENT: usize = 16;

/// The arena's bounds, `[start, end)`, both 0 until it is reserved.
pub(crate) struct Arena {
    start: AtomicUsize,
    end: AtomicUsize,
}

/// The one arena of the process.
pub(crate) static ARENA: Arena = Arena { start: AtomicUsize::new(0), end: AtomicUsize::new(0) };

impl Arena {
    /// Whether `address` lies in the arena: lock-free, for the fault handler.
    pub(crate) fn contains(&self, address: usize) -> bool {
        let start = self.start.load(Ordering::Acquire);
        start != 0 && address >= start && address < self.end.load(Ordering::Acquire)
    }
}

/// One slot and the block in it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    /// First page of the slot.
    pub start: usize,
    /// Data pages (the guard page follows them).
    pub data_pages: usize,
    /// The block's address and length.
    pub address: usize,
    pub length: usize,
    pub tag: u32,
    pub number: u64,
    /// Return address of the `NdisAllocateMemoryWithTagPriority` call.
    pub allocated_by: usize,
    /// Return address of the `NdisFreeMemory` call, once freed.
    pub freed_by: Option<usize>,
}

impl Slot {
    fn pages(&self) -> usize {
        self.data_pages + 1
    }
    fn data_end(&self) -> usize {
        self.start + self.data_pages * PAGE
    }
}

#[derive(Default)]
struct Registry {
    /// Next unused offset in the arena.
    bump: usize,
    /// Live and quarantined slots by start.
    slots: BTreeMap<usize, Slot>,
    /// Quarantined slot starts, oldest first, and their pages in total.
    quarantine: VecDeque<usize>,
    quarantined_pages: usize,
    /// Released slots for reuse, by page count.
    released: BTreeMap<usize, Vec<usize>>,
    live: usize,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Blocks ever allocated in special pool (all simulations).
static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn registry() -> std::sync::MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reserves the arena (once); false if the host refused.
fn reserve(registry: &mut Option<Registry>) -> bool {
    if registry.is_some() {
        return true;
    }
    // SAFETY: a fresh private anonymous mapping at an address of the kernel's choosing; nothing
    // else refers to it.
    let start = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            ARENA_BYTES,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if start == libc::MAP_FAILED {
        return false;
    }
    let start = start as usize;
    ARENA.end.store(start + ARENA_BYTES, Ordering::Release);
    ARENA.start.store(start, Ordering::Release);
    *registry = Some(Registry::default());
    true
}

fn protect(address: usize, bytes: usize, protection: libc::c_int) -> bool {
    // SAFETY: `address..address + bytes` is a page-aligned range of the arena, owned by this
    // module; changing its protection affects only memory this module hands out.
    unsafe { libc::mprotect(address as *mut libc::c_void, bytes, protection) == 0 }
}

/// Allocates `length` (> 0) bytes in special pool: the block's address, or `None` if special pool
/// is full (the caller falls back to the ordinary pool). The block's bytes are not filled.
pub(crate) fn allocate(length: usize, tag: u32, number: u64, allocated_by: usize) -> Option<usize> {
    crate::fault_trap::install();
    let rounded = length.max(1).div_ceil(ALIGNMENT) * ALIGNMENT;
    let data_pages = rounded.div_ceil(PAGE);
    let mut guard = registry();
    if !reserve(&mut guard) {
        return None;
    }
    let registry = guard.as_mut()?;
    if registry.live >= MAX_LIVE {
        return None;
    }
    let pages = data_pages + 1;
    let start = match registry.released.get_mut(&pages).and_then(Vec::pop) {
        Some(start) => start,
        None => {
            if registry.bump + pages * PAGE > ARENA_BYTES {
                return None;
            }
            let start = ARENA.start.load(Ordering::Acquire) + registry.bump;
            registry.bump += pages * PAGE;
            start
        }
    };
    if !protect(start, data_pages * PAGE, libc::PROT_READ | libc::PROT_WRITE) {
        registry.released.entry(pages).or_default().push(start);
        return None;
    }
    let address = start + data_pages * PAGE - rounded;
    let slot = Slot { start, data_pages, address, length, tag, number, allocated_by, freed_by: None };
    // SAFETY: the slack lies in the data pages just made read-write, after the block.
    unsafe {
        std::ptr::write_bytes((address + length) as *mut u8, SLACK, slot.data_end() - address - length)
    };
    registry.slots.insert(start, slot);
    registry.live += 1;
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    Some(address)
}

/// Frees the live special-pool block at `address` (the caller knows it is one): its pages become
/// inaccessible and quarantined. Returns the block, and the offset past its end of the first
/// slack byte the driver overwrote, if any.
pub(crate) fn free(address: usize, freed_by: usize) -> Option<(Slot, Option<usize>)> {
    let mut guard = registry();
    let registry = guard.as_mut()?;
    let start = address & !(PAGE - 1);
    let (&start, slot) = registry.slots.range_mut(..=start).next_back()?;
    if slot.address != address || slot.freed_by.is_some() {
        return None;
    }
    let end = address + slot.length;
    // SAFETY: the slack bytes lie in the block's read-write data pages.
    let slack = unsafe { std::slice::from_raw_parts(end as *const u8, slot.data_end() - end) };
    let corrupted = slack.iter().position(|b| *b != SLACK);
    slot.freed_by = Some(freed_by);
    let freed = *slot;
    protect(start, freed.data_pages * PAGE, libc::PROT_NONE);
    if freed.data_pages > 1 {
        // SAFETY: the data pages belong to this slot; their contents are no longer needed.
        unsafe { libc::madvise(start as *mut libc::c_void, freed.data_pages * PAGE, libc::MADV_DONTNEED) };
    }
    registry.live -= 1;
    registry.quarantine.push_back(start);
    registry.quarantined_pages += freed.pages();
    while registry.quarantine.len() > QUARANTINE_BLOCKS || registry.quarantined_pages > QUARANTINE_PAGES {
        let Some(oldest) = registry.quarantine.pop_front() else { break };
        if let Some(old) = registry.slots.remove(&oldest) {
            registry.quarantined_pages -= old.pages();
            registry.released.entry(old.pages()).or_default().push(oldest);
        }
    }
    Some((freed, corrupted))
}

/// Gives back the slot of a live block without quarantine (its pool is gone: a leaked block).
pub(crate) fn release(address: usize) {
    let mut guard = registry();
    let Some(registry) = guard.as_mut() else { return };
    let start = address & !(PAGE - 1);
    let Some((&start, slot)) = registry.slots.range(..=start).next_back() else { return };
    if slot.address != address || slot.freed_by.is_some() {
        return;
    }
    let pages = slot.pages();
    let data = slot.data_pages * PAGE;
    registry.slots.remove(&start);
    protect(start, data, libc::PROT_NONE);
    // SAFETY: as in `free`.
    unsafe { libc::madvise(start as *mut libc::c_void, data, libc::MADV_DONTNEED) };
    registry.live -= 1;
    registry.released.entry(pages).or_default().push(start);
}

/// The slot `address` lies in (data or guard page), live or quarantined. `try_lock`: `None` also
/// if the registry is busy (the fault trampoline must not wait on it).
pub(crate) fn slot_of(address: usize) -> Option<Slot> {
    let guard = REGISTRY.try_lock().ok()?;
    let registry = guard.as_ref()?;
    registry
        .slots
        .range(..=address)
        .next_back()
        .map(|(_, slot)| *slot)
        .filter(|slot| address < slot.start + slot.pages() * PAGE)
}

/// The quarantined (freed) block that starts at `address`, if any: a second free of it.
pub(crate) fn freed_block(address: usize) -> Option<Slot> {
    if !ARENA.contains(address) {
        return None;
    }
    let guard = registry();
    let registry = guard.as_ref()?;
    registry
        .slots
        .range(..=address)
        .next_back()
        .map(|(_, slot)| *slot)
        .filter(|slot| slot.address == address && slot.freed_by.is_some())
}

/// Whether `address` is in the arena but not in a live block's bytes: freed, released, slack
/// or guard. The simulator never reads such memory (it would fault).
pub(crate) fn is_dead(address: usize) -> bool {
    if !ARENA.contains(address) {
        return false;
    }
    let guard = registry();
    let Some(registry) = guard.as_ref() else { return true };
    !registry.slots.range(..=address).next_back().is_some_and(|(_, slot)| {
        slot.freed_by.is_none() && address >= slot.address && address < slot.address + slot.length
    })
}

/// Blocks ever allocated in special pool (all simulations of the process).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Blocks live in special pool now (all simulations).
pub fn live_blocks() -> usize {
    registry().as_ref().map_or(0, |r| r.live)
}
