//! Nonpaged, tagged allocations through NDIS, and the memory lent to the engine's tables.
//!
//! Pages: nf-ndis-ndisallocatememorywithtagpriority (a tag on every allocation; NULL on failure;
//! callable at <= DISPATCH_LEVEL), nf-ndis-ndisfreememory (flags 0 for such memory).
//! Every allocation here is made with no spin lock held and every failure is handled by the
//! caller.

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::NonNull;
use ndis_sys::{NdisAllocateMemoryWithTagPriority, NdisFreeMemory, NormalPoolPriority};
use partyline_core::engine::{AddressFamily, Binding, Call, Party};
use partyline_core::slab::{Exhausted, Returned, Slot, CHUNK_LEN};
use partyline_core::{LentMemory, Table};

/// Pool tags, one per object type (NdisAllocateMemoryWithTagPriority rule: tags identify
/// allocation types). Stored little-endian as the kernel reads them.
pub mod tag {
    const fn tag(name: &[u8; 4]) -> u32 {
        u32::from_le_bytes(*name)
    }
    pub const BINDING: u32 = tag(b"PlBd");
    pub const AF: u32 = tag(b"PlAf");
    pub const CALL: u32 = tag(b"PlVc");
    pub const PARTY: u32 = tag(b"PlPt");
    pub const CALL_PARAMETERS: u32 = tag(b"PlCp");
    pub const DEVICE: u32 = tag(b"PlDv");
    /// An OID_CO_GET_ADDRESSES request and its information buffer (one block).
    pub const OID_REQUEST: u32 = tag(b"PlOr");
}

/// Allocates `len` bytes of nonpaged pool with `tag`, or `None`.
pub fn allocate(len: usize, tag: u32) -> Option<NonNull<u8>> {
    let handle = crate::global::protocol_handle();
    let len = u32::try_from(len).ok()?;
    if handle.is_null() || len == 0 {
        return None;
    }
    // SAFETY: PASSIVE..DISPATCH caller (every driver path); the handle is the protocol handle
    // NDIS gave us, which the allocation routine accepts for protocol drivers.
    let memory = unsafe { NdisAllocateMemoryWithTagPriority(handle, len, tag, NormalPoolPriority) };
    NonNull::new(memory.cast::<u8>())
}

/// Frees memory from [`allocate`].
///
/// # Safety
/// `memory` came from [`allocate`] and is not used afterwards.
pub unsafe fn free(memory: NonNull<u8>) {
    // SAFETY: flags 0 matches NdisAllocateMemoryWithTagPriority memory; caller guarantees
    // ownership.
    unsafe { NdisFreeMemory(memory.as_ptr().cast::<c_void>(), 0, 0) }
}

/// `len` values `init()` in fresh pool, leaked to `'static` (the engine owns them until it gives
/// them back through [`give_back`]).
fn allocate_values<T>(len: usize, tag: u32, init: impl Fn() -> T) -> Option<NonNull<T>> {
    let bytes = len.checked_mul(size_of::<T>())?;
    let memory = allocate(bytes, tag)?.cast::<T>();
    for i in 0..len {
        // SAFETY: `memory` has room for `len` Ts and pool memory is aligned to 16 bytes, enough
        // for every slot type here; each element is written once before anything reads it.
        unsafe { memory.as_ptr().add(i).write(init()) };
    }
    Some(memory)
}

fn chunk<T>(tag: u32) -> Option<Returned<T>> {
    let slots = allocate_values(CHUNK_LEN, tag, || Slot::<T>::VACANT)?;
    // SAFETY: CHUNK_LEN slots, all initialised, exclusively ours: exactly a `[Slot<T>; CHUNK_LEN]`.
    Some(Returned::Chunk(unsafe { &mut *slots.as_ptr().cast::<[Slot<T>; CHUNK_LEN]>() }))
}

fn directory<T>(len: usize, tag: u32) -> Option<Returned<T>> {
    let entries = allocate_values(len, tag, || None)?;
    // SAFETY: `len` entries, all initialised, exclusively ours.
    Some(Returned::Directory(unsafe { core::slice::from_raw_parts_mut(entries.as_ptr(), len) }))
}

/// Memory for `table` as the engine asked (`need`), or `None` when pool is exhausted.
pub fn memory_for(table: Table, need: Exhausted) -> Option<LentMemory> {
    Some(match (table, need) {
        (Table::Bindings, Exhausted::Chunk) => LentMemory::Bindings(chunk::<Binding>(tag::BINDING)?),
        (Table::Bindings, Exhausted::Directory { len }) => {
            LentMemory::Bindings(directory::<Binding>(len, tag::BINDING)?)
        }
        (Table::AddressFamilies, Exhausted::Chunk) => {
            LentMemory::AddressFamilies(chunk::<AddressFamily>(tag::AF)?)
        }
        (Table::AddressFamilies, Exhausted::Directory { len }) => {
            LentMemory::AddressFamilies(directory::<AddressFamily>(len, tag::AF)?)
        }
        (Table::Calls, Exhausted::Chunk) => LentMemory::Calls(chunk::<Call>(tag::CALL)?),
        (Table::Calls, Exhausted::Directory { len }) => LentMemory::Calls(directory::<Call>(len, tag::CALL)?),
        (Table::Parties, Exhausted::Chunk) => LentMemory::Parties(chunk::<Party>(tag::PARTY)?),
        (Table::Parties, Exhausted::Directory { len }) => {
            LentMemory::Parties(directory::<Party>(len, tag::PARTY)?)
        }
    })
}

fn free_returned<T>(returned: Returned<T>) {
    let pointer = match returned {
        Returned::Chunk(chunk) => chunk.as_mut_ptr().cast::<u8>(),
        Returned::Directory([]) => return,
        Returned::Directory(directory) => directory.as_mut_ptr().cast::<u8>(),
    };
    if let Some(pointer) = NonNull::new(pointer) {
        // SAFETY: every chunk and directory the engine holds came from `allocate_values`; the
        // engine gave it up, so nothing refers to it any more. Slots hold no resources that need
        // dropping (ids and handles only).
        unsafe { free(pointer) }
    }
}

/// Frees memory the engine gave back.
pub fn give_back(memory: LentMemory) {
    match memory {
        LentMemory::Bindings(m) => free_returned(m),
        LentMemory::AddressFamilies(m) => free_returned(m),
        LentMemory::Calls(m) => free_returned(m),
        LentMemory::Parties(m) => free_returned(m),
    }
}
