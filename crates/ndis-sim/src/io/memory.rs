//! The memory the I/O manager hands the driver: device and file objects ([`Block`]), IRPs
//! ([`Irps`], with the record of each) and system buffers ([`Arena`]). Nothing is reused or freed
//! before the manager drops, so a stale pointer from the driver still points at simulator memory
//! and a late completion is reported rather than corrupting anything.

use ndis_sys::base::NTSTATUS;
use ndis_sys::kernel::{IO_STACK_LOCATION, IRP};

use crate::chunk::Chunk;

pub(super) struct Block(Box<[u128]>);

impl Block {
    pub(super) fn new(len: usize) -> Block {
        Block(vec![0u128; len.div_ceil(16).max(1)].into_boxed_slice())
    }
    pub(super) fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }
    pub(super) fn ptr<T>(&self) -> *mut T {
        self.0.as_ptr() as *mut T
    }
}

/// Where IRPs and their system buffers are carved from: zeroed [`Chunk`]s (64 KiB, doubling up
/// to 2 MiB), handed out in order and never reused, freed only with the manager (like
/// [`Block`]s), without a heap allocation per request. Requests larger than 16 KiB get a
/// [`Block`] of their own.
#[derive(Default)]
pub(super) struct Arena {
    chunks: Vec<Chunk<u128>>,
}

impl Arena {
    /// `len` zeroed bytes (at least 1), 16-byte aligned, that stay valid until the manager drops.
    pub(super) fn allocate(&mut self, len: usize, big: &mut Vec<Block>) -> usize {
        let units = len.max(1).div_ceil(16);
        if units * 16 > 16 << 10 {
            let block = Block::new(len);
            let address = block.addr();
            big.push(block);
            return address;
        }
        let chunk = match self.chunks.last_mut() {
            Some(chunk) if chunk.room() >= units => chunk,
            _ => {
                let capacity =
                    self.chunks.last().map_or(4 << 10, |c| (2 * c.len()).min(crate::chunk::HUGE_PAGE / 16));
                self.chunks.push(Chunk::new(capacity));
                self.chunks.last_mut().expect("just pushed")
            }
        };
        chunk.reserve_zeroed(units) as usize
    }
}

/// Bytes of an IRP with its one stack location, rounded to 16.
pub(super) const IRP_LEN: usize =
    (std::mem::size_of::<IRP>() + std::mem::size_of::<IO_STACK_LOCATION>()).div_ceil(16) * 16;

/// Every IRP the manager sent, in fixed-size slots of zeroed [`Chunk`]s (never reused, freed
/// only with the manager, so a driver that completes one again later hits simulator memory and is
/// reported), and its record, found from the IRP's address without a hash table: the chunk that
/// holds the address, then the slot.
#[derive(Default)]
pub(super) struct Irps {
    /// Chunks of slots, each with the records of its IRPs (one per IRP sent, in order).
    chunks: Vec<(Chunk<u128>, Vec<IrpRecord>)>,
}

impl Irps {
    /// A fresh zeroed IRP, with a fresh record.
    pub(super) fn allocate(&mut self) -> *mut IRP {
        const UNITS: usize = IRP_LEN / 16;
        let chunk = match self.chunks.last_mut() {
            Some(chunk) if chunk.0.room() >= UNITS => chunk,
            _ => {
                // 64 slots, doubling up to 2 MiB exactly (a huge page; its tail, less than a
                // slot, stays unused).
                let units = self.chunks.last().map_or(64 * UNITS, |(c, _)| 2 * c.len());
                let units = units.min(crate::chunk::HUGE_PAGE / 16);
                self.chunks.push((Chunk::new(units), Vec::with_capacity(units / UNITS)));
                self.chunks.last_mut().expect("just pushed")
            }
        };
        chunk.1.push(IrpRecord::default());
        chunk.0.reserve_zeroed(UNITS).cast()
    }

    /// The record of the IRP at `address`, if the manager sent one there.
    pub(super) fn record_mut(&mut self, address: usize) -> Option<&mut IrpRecord> {
        // Newest first: completions concern recent IRPs.
        self.chunks.iter_mut().rev().find_map(|(chunk, records)| {
            let start = chunk.as_slice().as_ptr() as usize;
            let offset = address.checked_sub(start)?;
            if offset < chunk.len() * 16 && offset % IRP_LEN == 0 {
                records.get_mut(offset / IRP_LEN)
            } else {
                None
            }
        })
    }
}

#[derive(Default)]
/// What the I/O manager knows of one IRP it sent.
pub(super) struct IrpRecord {
    /// `(status, information)` of the first IofCompleteRequest (any later one is reported).
    pub(super) first_completion: Option<(NTSTATUS, usize)>,
    /// The dispatch routine has returned.
    pub(super) returned: bool,
}
