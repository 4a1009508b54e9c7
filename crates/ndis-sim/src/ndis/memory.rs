//! Non-paged pool: `NdisAllocateMemoryWithTagPriority` / `NdisFreeMemory`, tracked per tag.
//!
//! Read: nf-ndis-ndisallocatememorywithtagpriority, nf-ndis-ndisfreememory; verifier-rules.md §7.3.
//!
//! Flow: every block is recorded with its tag, length and allocation number; bytes held are kept
//! exactly per tag. Blocks are filled with 0xCD (NDIS does not zero), and on free poisoned with
//! 0xDD and kept in quarantine, so a double free or a use after free is detected instead of
//! reusing the memory. Leaks are reported by tag at unload. Failures can be injected by rate and
//! tag filter. With [`FaultPolicy::special_pool`] blocks come from [`super::special_pool`] instead
//! (its own pages, a guard page after each, inaccessible once freed), still recorded here.
//!
//! [`FaultPolicy::special_pool`]: super::FaultPolicy::special_pool

use std::alloc::Layout;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::c_void;

use crate::fast_hash::FastMap;

use super::Ndis;
use super::{fmt_shown, log_lazy, rules, shown, violation};
use crate::ddi::{self, Context, Ddi, IrqlRequirement};
use crate::export;
use crate::exports::ExportTable;
use crate::kernel::{Call, DISPATCH_LEVEL};

/// Statistics of one pool tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagStats {
    /// Bytes currently allocated.
    pub bytes_held: u64,
    /// Blocks currently allocated.
    pub blocks_held: u64,
    /// Allocations ever made.
    pub allocations: u64,
    /// Frees ever made.
    pub frees: u64,
    /// Injected failures.
    pub failures: u64,
    /// Highest `bytes_held` seen.
    pub peak_bytes: u64,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub length: usize,
    pub tag: u32,
    pub number: u64,
    /// In special pool (its memory is [`super::special_pool`]'s, not the host allocator's).
    pub special: bool,
}

/// Blocks kept poisoned after free before their memory is really released.
const QUARANTINE: usize = 4096;

/// Blocks out of quarantine kept for reuse (instead of being given back to the host allocator)
/// at most.
const REUSABLE: usize = 64;

/// The pool of one simulation.
#[derive(Default)]
pub struct Pool {
    live: BTreeMap<usize, Block>,
    /// The live block the last lookup found (requests look at one block several times).
    last_found: Cell<Option<(usize, Block)>>,
    /// Freed blocks in quarantine, by start address (an interior address is found by a scan of
    /// `freed_order`: only an address outside every live block is looked for here).
    freed: FastMap<usize, Block>,
    /// The quarantine, oldest first.
    freed_order: std::collections::VecDeque<(usize, Block)>,
    /// Memory of blocks out of quarantine, (address, length), for the next allocations of that
    /// length.
    reusable: Vec<(usize, usize)>,
    /// Per tag, in order of first use (a handful of tags).
    stats: Vec<(u32, TagStats)>,
    number: u64,
    /// Bytes held now, over every tag.
    held: u64,
    /// The pool's high-water mark: the most bytes the driver ever held at once, over every tag.
    high_water: u64,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Leaked special-pool blocks give their pages back (ordinary leaked blocks stay, as the
        // driver may still refer to them; special pool's address space is bounded).
        for (address, _) in self.live.iter().filter(|(_, block)| block.special) {
            super::special_pool::release(*address);
        }
        // Quarantined and reusable memory goes back to the host allocator with the simulation
        // (live blocks are the driver's, leaked and reported at unload).
        for (address, block) in self.freed_order.drain(..) {
            // SAFETY: allocated by `allocate` with this length, freed by the driver once; the
            // simulation is gone, so nothing refers to it.
            unsafe { std::alloc::dealloc(address as *mut u8, layout(block.length)) };
        }
        for (address, length) in self.reusable.drain(..) {
            // SAFETY: as above.
            unsafe { std::alloc::dealloc(address as *mut u8, layout(length)) };
        }
    }
}

/// A tag as its four characters (`PlBd`).
pub fn tag_name(tag: u32) -> String {
    tag.to_le_bytes().iter().map(|b| if b.is_ascii_graphic() { *b as char } else { '?' }).collect()
}

fn layout(length: usize) -> Layout {
    Layout::from_size_align(length.max(1), 16).expect("pool block layout")
}

impl Pool {
    /// Allocates `length` bytes for `tag`; in special pool if `special` (and it has room), the
    /// driver's call returning to `caller`.
    fn allocate(&mut self, length: usize, tag: u32, special: bool, caller: usize) -> usize {
        let number = self.number + 1;
        let in_special =
            if special { super::special_pool::allocate(length, tag, number, caller) } else { None };
        let pointer = match in_special {
            Some(address) => address as *mut u8,
            None => match self.reusable.iter().rposition(|(_, l)| *l == length) {
                Some(index) => self.reusable.swap_remove(index).0 as *mut u8,
                // SAFETY: the layout has a non-zero size.
                None => unsafe { std::alloc::alloc(layout(length)) },
            },
        };
        if pointer.is_null() {
            return 0;
        }
        // SAFETY: `pointer` is a fresh allocation of `length` (at least 1) bytes.
        unsafe { std::ptr::write_bytes(pointer, 0xCD, length) };
        self.number = number;
        let block = Block { length, tag, number, special: in_special.is_some() };
        self.live.insert(pointer as usize, block);
        // The caller is about to describe it for the log.
        self.last_found.set(Some((pointer as usize, block)));
        let stats = self.tag(tag);
        stats.allocations += 1;
        stats.blocks_held += 1;
        stats.bytes_held += length as u64;
        stats.peak_bytes = stats.peak_bytes.max(stats.bytes_held);
        self.held += length as u64;
        self.high_water = self.high_water.max(self.held);
        pointer as usize
    }

    /// Frees `address`, the driver's call returning to `caller`; `Err` says what was wrong. A
    /// special-pool block is checked for writes into its slack bytes: `Ok((block, Some(what)))`.
    fn free(&mut self, address: usize, caller: usize) -> Result<(Block, Option<String>), String> {
        if let Some(block) = self.live.get(&address).copied().filter(|block| block.special) {
            self.live.remove(&address);
            if self.last_found.get().is_some_and(|(start, _)| start == address) {
                self.last_found.set(None);
            }
            let stats = self.tag(block.tag);
            stats.frees += 1;
            stats.blocks_held -= 1;
            stats.bytes_held -= block.length as u64;
            self.held -= block.length as u64;
            let corrupted = super::special_pool::free(address, caller).and_then(|(_, at)| at).map(|at| {
                format!(
                    "{} block #{} ({} bytes): slack byte {} past its end overwritten (found at free)",
                    tag_name(block.tag),
                    block.number,
                    block.length,
                    at
                )
            });
            return Ok((block, corrupted));
        }
        if let Some(block) = self.live.remove(&address) {
            if self.last_found.get().is_some_and(|(start, _)| start == address) {
                self.last_found.set(None);
            }
            let stats = self.tag(block.tag);
            stats.frees += 1;
            stats.blocks_held -= 1;
            stats.bytes_held -= block.length as u64;
            self.held -= block.length as u64;
            // SAFETY: the block was allocated by `allocate` with this length and is still ours.
            unsafe { std::ptr::write_bytes(address as *mut u8, 0xDD, block.length) };
            self.freed.insert(address, block);
            self.freed_order.push_back((address, block));
            if self.freed_order.len() > QUARANTINE {
                if let Some((oldest, old)) = self.freed_order.pop_front() {
                    self.freed.remove(&oldest);
                    if self.reusable.len() == REUSABLE {
                        let (address, length) = self.reusable.remove(0);
                        // SAFETY: allocated by `allocate` with `length`, freed once, out of
                        // quarantine, and no longer kept for reuse.
                        unsafe { std::alloc::dealloc(address as *mut u8, layout(length)) };
                    }
                    self.reusable.push((oldest, old.length));
                }
            }
            return Ok((block, None));
        }
        if let Some(slot) = super::special_pool::freed_block(address) {
            return Err(format!(
                "double free of {} block #{} ({} bytes, special pool)",
                tag_name(slot.tag),
                slot.number,
                slot.length
            ));
        }
        if let Some(block) = self.freed.get(&address) {
            return Err(format!(
                "double free of {} block #{} ({} bytes)",
                tag_name(block.tag),
                block.number,
                block.length
            ));
        }
        if let Some((start, block)) = self.containing(address) {
            return Err(format!(
                "interior pointer {:#x} = {} block #{} + {:#x}",
                address,
                tag_name(block.tag),
                block.number,
                address - start
            ));
        }
        Err(format!("{address:#x} was not returned by NdisAllocateMemoryWithTagPriority"))
    }

    /// The statistics of `tag`.
    fn tag(&mut self, tag: u32) -> &mut TagStats {
        let index = match self.stats.iter().position(|(t, _)| *t == tag) {
            Some(index) => index,
            None => {
                self.stats.push((tag, TagStats::default()));
                self.stats.len() - 1
            }
        };
        &mut self.stats[index].1
    }

    fn containing(&self, address: usize) -> Option<(usize, Block)> {
        let inside = |start: usize, block: &Block| start <= address && address < start + block.length.max(1);
        if let Some((start, block)) = self.last_found.get().filter(|(start, block)| inside(*start, block)) {
            return Some((start, block));
        }
        let found = self
            .live
            .range(..=address)
            .next_back()
            .filter(|(start, block)| inside(**start, block))
            .map(|(start, block)| (*start, *block));
        if found.is_some() {
            self.last_found.set(found);
        }
        found
    }

    /// The live block containing `address`: (start, length).
    pub fn live_block(&self, address: usize) -> Option<(usize, usize)> {
        self.containing(address).map(|(start, block)| (start, block.length))
    }

    /// Whether `address` lies in a block that has been freed (and is still in quarantine).
    pub fn is_freed(&self, address: usize) -> bool {
        super::special_pool::is_dead(address)
            || self.freed.contains_key(&address)
            || self
                .freed_order
                .iter()
                .any(|(start, block)| *start <= address && address < start + block.length.max(1))
    }

    /// The tag, allocation number and offset of the live block `address` lies in.
    pub(crate) fn block_of(&self, address: usize) -> Option<(u32, u64, usize)> {
        self.containing(address).map(|(start, block)| (block.tag, block.number, address - start))
    }

    /// `PlBd#3` or `PlBd#3+0x10` for an address inside a live block.
    pub fn describe(&self, address: usize) -> Option<String> {
        self.containing(address).map(|(start, block)| {
            if address == start {
                format!("{}#{}", tag_name(block.tag), block.number)
            } else {
                format!("{}#{}+{:#x}", tag_name(block.tag), block.number, address - start)
            }
        })
    }

    /// Bytes the driver holds, over every tag.
    pub fn bytes_held(&self) -> u64 {
        self.held
    }

    /// The high-water mark: the most bytes the driver ever held at once, over every tag (each
    /// tag's own is [`TagStats::peak_bytes`]). A soak checks that it stops growing after warm-up.
    pub fn high_water(&self) -> u64 {
        self.high_water
    }

    /// Bytes held per tag.
    pub fn bytes_held_per_tag(&self) -> BTreeMap<u32, u64> {
        self.stats.iter().map(|(tag, stats)| (*tag, stats.bytes_held)).collect()
    }

    /// All tag statistics.
    pub fn stats(&self) -> BTreeMap<u32, TagStats> {
        self.stats.iter().copied().collect()
    }

    /// Live blocks grouped by tag, in tag order: (tag, blocks, bytes).
    pub fn leaks(&self) -> Vec<(u32, u64, u64)> {
        self.stats()
            .into_iter()
            .filter(|(_, stats)| stats.blocks_held > 0)
            .map(|(tag, stats)| (tag, stats.blocks_held, stats.bytes_held))
            .collect()
    }
}

/// Registers the pool exports.
pub fn register(table: &mut ExportTable) {
    export!(
        table,
        "ndis.sys",
        NdisAllocateMemoryWithTagPriority = ndis_sim_NdisAllocateMemoryWithTagPriority
    );
    export!(table, "ndis.sys", NdisFreeMemory = ndis_sim_NdisFreeMemory);
}

// The pool exports' entries: each passes the caller's return address on as one more argument,
// for special pool's report of where a block was allocated and freed. At entry RSP is 8 mod 16
// with the return address on top. NdisAllocateMemoryWithTagPriority has four register arguments:
// the fifth goes to [rsp+0x20] of a new frame that keeps the 32-byte shadow area and leaves RSP
// 16-byte aligned at the call. NdisFreeMemory has three: the fourth is R9, and the Rust half
// returns straight to the driver.
std::arch::global_asm!(
    ".pushsection .text.ndis_sim_pool,\"ax\",@progbits",
    ".globl ndis_sim_NdisAllocateMemoryWithTagPriority",
    ".type ndis_sim_NdisAllocateMemoryWithTagPriority,@function",
    "ndis_sim_NdisAllocateMemoryWithTagPriority:",
    "    mov r10, [rsp]",
    "    sub rsp, 0x38",
    "    mov [rsp + 0x20], r10",
    "    call {allocate}",
    "    add rsp, 0x38",
    "    ret",
    ".size ndis_sim_NdisAllocateMemoryWithTagPriority, . - ndis_sim_NdisAllocateMemoryWithTagPriority",
    "",
    ".globl ndis_sim_NdisFreeMemory",
    ".type ndis_sim_NdisFreeMemory,@function",
    "ndis_sim_NdisFreeMemory:",
    "    mov r9, [rsp]",
    "    jmp {free}",
    ".size ndis_sim_NdisFreeMemory, . - ndis_sim_NdisFreeMemory",
    ".popsection",
    allocate = sym ndis_allocate_memory_with_tag_priority,
    free = sym ndis_free_memory,
);

#[allow(non_snake_case)]
extern "win64" {
    /// `NdisAllocateMemoryWithTagPriority` as the image sees it (assembly entry above).
    fn ndis_sim_NdisAllocateMemoryWithTagPriority(
        handle: *mut c_void,
        length: u32,
        tag: u32,
        priority: u32,
    ) -> *mut c_void;
    /// `NdisFreeMemory` as the image sees it (assembly entry above).
    fn ndis_sim_NdisFreeMemory(address: *mut c_void, length: u32, flags: u32);
}

/// `NdisAllocateMemoryWithTagPriority`: <= DISPATCH; tag must be non-zero.
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatememorywithtagpriority>
extern "win64" fn ndis_allocate_memory_with_tag_priority(
    ndis_handle: *mut c_void,
    length: u32,
    tag: u32,
    priority: u32,
    caller: usize,
) -> *mut c_void {
    const DDI: Ddi = Ddi::ndis(
        "NdisAllocateMemoryWithTagPriority",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_MISCELLANEOUS_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe { ddi::enter::<Ndis>(&DDI, |_, _, _| {}) };
    if tag == 0 {
        // A pool tag is required so that blocks can be attributed (SDV NdisAllocateMemoryWithTagPriority).
        violation(world, rules::NDIS_ALLOCATE_MEMORY_WITH_TAG_PRIORITY, EXPORT, "pool tag 0");
    }
    let mut state = ndis.state();
    let handle = shown(&state, ndis_handle as usize);
    let faults = &state.config.faults;
    let filtered = faults.allocation_failure_tags.is_empty() || faults.allocation_failure_tags.contains(&tag);
    let rate = faults.allocation_failure_per_10000;
    let fail = super::faults::inject(world, &mut state, EXPORT, Some(tag), filtered, rate);
    let address = if fail || length == 0 {
        state.stats_failure(tag);
        0
    } else {
        let special = state.config.faults.special_pool;
        state.pool.allocate(length as usize, tag, special, crate::thunk::driver_caller(caller))
    };
    let rendered = shown(&state, address);
    drop(state);
    const CALL: Call = DDI.call();
    let [h0, h1, h2] = handle;
    let [r0, r1, r2] = rendered;
    let words =
        [h0, h1, h2, u64::from(length), u64::from(tag), u64::from(priority), r0, r1, r2, u64::from(fail)];
    log_lazy(world, processor, &CALL, &words, |a, f| {
        f.write_str("(")?;
        fmt_shown(a, 0, f)?;
        write!(f, ", {}, '{}', {}) -> ", a.word(3), tag_name(a.word(4) as u32), a.word(5))?;
        fmt_shown(a, 6, f)?;
        f.write_str(if a.word(9) != 0 { " (injected failure)" } else { "" })
    });
    address as *mut c_void
}

impl super::State {
    fn stats_failure(&mut self, tag: u32) {
        self.pool.tag(tag).failures += 1;
        self.counters.allocations_failed += 1;
    }
}

/// `NdisFreeMemory`: <= DISPATCH with MemoryFlags 0 (the only kind this pool hands out).
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisfreememory>
extern "win64" fn ndis_free_memory(address: *mut c_void, length: u32, flags: u32, caller: usize) {
    const DDI: Ddi = Ddi::ndis(
        "NdisFreeMemory",
        IrqlRequirement::AtMost(DISPATCH_LEVEL),
        rules::IRQL_MISCELLANEOUS_FUNCTION,
    );
    const EXPORT: &str = DDI.name;
    // SAFETY: an export, using what it gets only until it returns.
    let Context { world, processor, family: ndis, .. } = unsafe { ddi::enter::<Ndis>(&DDI, |_, _, _| {}) };
    let mut state = ndis.state();
    let [r0, r1, r2] = shown(&state, address as usize);
    let result = state.pool.free(address as usize, crate::thunk::driver_caller(caller));
    drop(state);
    const CALL: Call = DDI.call();
    log_lazy(world, processor, &CALL, &[r0, r1, r2, u64::from(length), u64::from(flags)], |a, f| {
        f.write_str("(")?;
        fmt_shown(a, 0, f)?;
        write!(f, ", {}, {:#x})", a.word(3), a.word(4))
    });
    if flags != 0 {
        violation(
            world,
            rules::NDIS_FREE_MEMORY,
            EXPORT,
            format!("MemoryFlags {flags:#x} for NdisAllocateMemoryWithTagPriority memory (must be 0)"),
        );
    }
    match result {
        Err(what) => violation(world, rules::NDIS_FREE_MEMORY, EXPORT, what),
        Ok((_, Some(corrupted))) => violation(world, rules::SPECIAL_POOL_BEYOND_END, EXPORT, corrupted),
        Ok((_, None)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: u32 = u32::from_le_bytes(*b"PlCp");

    #[test]
    fn freed_blocks_are_detected_through_the_quarantine_then_reused() {
        let mut pool = Pool::default();
        let first = pool.allocate(232, TAG, false, 0);
        pool.free(first, 0).expect("a live block");
        assert!(pool.is_freed(first) && pool.is_freed(first + 100) && !pool.is_freed(first + 232));
        assert!(pool.free(first, 0).expect_err("freed twice").contains("double free"));
        // SAFETY: the block is quarantined, not released: still ours, poisoned.
        assert_eq!(unsafe { *(first as *const u8).add(7) }, 0xDD);
        for _ in 0..QUARANTINE {
            let block = pool.allocate(232, TAG, false, 0);
            assert_ne!(block, first, "no reuse while quarantined");
            pool.free(block, 0).expect("a live block");
        }
        assert!(!pool.is_freed(first), "out of quarantine");
        let again = pool.allocate(232, TAG, false, 0);
        assert_eq!(again, first, "its memory serves the next block of its size");
        // SAFETY: a live block of 232 bytes.
        assert_eq!(unsafe { *(again as *const u8).add(7) }, 0xCD, "filled as NDIS leaves new memory");
        assert_eq!(pool.stats()[&TAG].blocks_held, 1);
        pool.free(again, 0).expect("a live block");
    }
}

#[cfg(test)]
mod high_water {
    use super::*;

    /// The high-water mark is the most held at once over every tag, not the sum of each tag's peak,
    /// and freeing never lowers it.
    #[test]
    fn high_water_is_the_most_held_at_once_over_every_tag() {
        let (a, b) = (u32::from_le_bytes(*b"PlPt"), u32::from_le_bytes(*b"PlVc"));
        let mut pool = Pool::default();
        let first = pool.allocate(100, a, false, 0);
        pool.free(first, 0).expect("live");
        let second = pool.allocate(60, b, false, 0);
        assert_eq!((pool.bytes_held(), pool.high_water()), (60, 100));
        let third = pool.allocate(50, a, false, 0);
        assert_eq!((pool.bytes_held(), pool.high_water()), (110, 110));
        pool.free(second, 0).expect("live");
        pool.free(third, 0).expect("live");
        assert_eq!((pool.bytes_held(), pool.high_water()), (0, 110));
        assert_eq!(pool.stats()[&a].peak_bytes + pool.stats()[&b].peak_bytes, 160);
    }
}
