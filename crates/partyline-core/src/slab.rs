//! Generation-checked object tables with stable slots and O(1) insert, lookup and remove.
//!
//! Every object partyline hands to NDIS (binding, address family, VC, party) lives in a slot of a
//! [`Slab`]. Slots live in fixed-size chunks that never move, so a slot's address is stable for
//! the object's whole life, and a chunk is only ever added, never reallocated. The chunks and the
//! chunk directory are memory the driver glue allocated from nonpaged pool (outside any spin
//! lock) and lent to the slab; the slab asks for more with [`Exhausted`] and gives everything
//! back with [`Slab::take_memory`].
//!
//! An [`Id`] names a slot *and* the generation of the object in it, so an id kept after its object
//! was freed (by NDIS passing a stale context, or by a user-mode caller) is refused instead of
//! reaching whatever object reuses the slot.
//!
//! Slots are numbered from 1, so that 0 means "no slot" in every link (free list, intrusive
//! lists, work queues): an empty slab, and an engine made of empty slabs and empty lists, is all
//! zero bytes, and the driver's static state needs no initialised data in the image (it is
//! zero-fill, `.bss`).

use core::fmt;

/// Slots per chunk. Small enough that an idle driver holds little, large enough that the directory
/// stays short (16 bytes of directory per 256 objects).
pub const CHUNK_LEN: usize = 256;

/// The name of one object: slot number (from 1) and generation. Never zero when encoded.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id {
    number: u32,
    generation: u32,
}

impl Id {
    /// The 64-bit form handed to NDIS as a context and to user mode as an object id: the
    /// generation, then the slot number. Both are non-zero, so no valid id encodes to zero (NULL).
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.number as u64
    }

    /// Decodes [`Id::to_u64`]; `None` for values no slab ever hands out.
    pub const fn from_u64(value: u64) -> Option<Id> {
        let number = value as u32;
        let generation = (value >> 32) as u32;
        if number == 0 || generation == 0 {
            return None;
        }
        Some(Id { number, generation })
    }

    /// The slot number, from 1: the link to this object in the engine's lists (0 is "none").
    pub const fn index(self) -> u32 {
        self.number
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.number.wrapping_sub(1), self.generation)
    }
}

/// One slot: the generation of its current (or last) occupant, and the occupant.
pub struct Slot<T> {
    generation: u32,
    /// The next free slot's number while this one is free (0: none).
    next_free: u32,
    value: Option<T>,
}

impl<T> Slot<T> {
    /// An empty slot, as freshly lent memory must be initialised.
    pub const VACANT: Slot<T> = Slot { generation: 0, next_free: NONE, value: None };
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot::VACANT
    }
}

/// No slot: slot numbers start at 1.
const NONE: u32 = 0;

/// A chunk of slots, lent by the glue. A reference to an array, not a slice: a directory entry is
/// one pointer, and the offset in the chunk needs no bounds check.
pub type Chunk<T> = &'static mut [Slot<T>; CHUNK_LEN];

/// What the slab needs before it can insert again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// A new chunk of [`CHUNK_LEN`] slots.
    Chunk,
    /// A bigger chunk directory, of at least this many entries.
    Directory { len: usize },
}

/// Memory a slab gives back: chunks and directories, for the glue to free.
pub enum Returned<T: 'static> {
    Chunk(Chunk<T>),
    Directory(Directory<T>),
}

/// A chunk directory, lent by the glue.
pub type Directory<T> = &'static mut [Option<Chunk<T>>];

/// A table of `T` with stable slots.
pub struct Slab<T: 'static> {
    /// `None` until the first directory is lent (so that an empty slab is all zero bytes).
    directory: Option<Directory<T>>,
    chunks: usize,
    free_head: u32,
    len: usize,
}

impl<T> Slab<T> {
    /// An empty slab with no memory; the first insert asks for a directory. All zero bytes.
    pub const fn new() -> Self {
        Slab { directory: None, chunks: 0, free_head: NONE, len: 0 }
    }

    /// Entries of the chunk directory.
    pub fn directory_len(&self) -> usize {
        self.directory.as_ref().map_or(0, |d| d.len())
    }

    /// Chunks lent to the table.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Objects in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots the table can hold without asking for memory.
    pub fn capacity(&self) -> usize {
        self.chunks * CHUNK_LEN
    }

    /// What an insert would need now, if anything. O(1).
    pub fn needs(&self) -> Option<Exhausted> {
        if self.free_head != NONE {
            None
        } else {
            Some(self.growth())
        }
    }

    /// What the slab needs to grow, whether or not it is full.
    pub fn growth(&self) -> Exhausted {
        let len = self.directory_len();
        if self.chunks < len {
            Exhausted::Chunk
        } else {
            Exhausted::Directory { len: (len * 2).max(4) }
        }
    }

    /// Lends a chunk; its slots join the free list. Gives it back when the slab has no room for
    /// it in its directory.
    pub fn add_chunk(&mut self, chunk: Chunk<T>) -> Result<(), Chunk<T>> {
        let Some(entry) = self.directory.as_mut().and_then(|d| d.get_mut(self.chunks)) else {
            return Err(chunk);
        };
        // Slot numbers of this chunk: base + 1 ..= base + CHUNK_LEN.
        let base = (self.chunks * CHUNK_LEN) as u32;
        let free_head = self.free_head;
        for (offset, slot) in chunk.iter_mut().enumerate() {
            slot.value = None;
            slot.next_free = if offset + 1 < CHUNK_LEN { base + offset as u32 + 2 } else { free_head };
        }
        *entry = Some(chunk);
        self.chunks += 1;
        self.free_head = base + 1;
        Ok(())
    }

    /// Lends a bigger directory (every entry `None`). Returns the one it replaces (or the new one,
    /// when it is not bigger) for the glue to free. O(chunks), rare: the directory doubles.
    pub fn replace_directory(&mut self, directory: Directory<T>) -> Directory<T> {
        if directory.len() <= self.directory_len() || directory.iter().any(Option::is_some) {
            return directory;
        }
        let Some(old) = self.directory.take() else {
            self.directory = Some(directory);
            return &mut [];
        };
        for (new, old) in directory.iter_mut().zip(old.iter_mut()) {
            *new = old.take();
        }
        self.directory = Some(directory);
        old
    }

    /// The slot numbered `number` (from 1); `None` for 0 and for numbers beyond the lent chunks.
    fn slot(&self, number: u32) -> Option<&Slot<T>> {
        let index = number.wrapping_sub(1) as usize;
        self.directory.as_ref()?.get(index / CHUNK_LEN)?.as_ref()?.get(index % CHUNK_LEN)
    }

    fn slot_mut(&mut self, number: u32) -> Option<&mut Slot<T>> {
        let index = number.wrapping_sub(1) as usize;
        self.directory.as_mut()?.get_mut(index / CHUNK_LEN)?.as_mut()?.get_mut(index % CHUNK_LEN)
    }

    /// Inserts `value`, or says what memory is needed first. O(1).
    pub fn insert(&mut self, value: T) -> Result<Id, (Exhausted, T)> {
        if let Some(need) = self.needs() {
            return Err((need, value));
        }
        let number = self.free_head;
        let Some(slot) = self.slot_mut(number) else {
            // The free list only ever names slots in lent chunks.
            return Err((Exhausted::Chunk, value));
        };
        let generation = slot.generation.wrapping_add(1).max(1);
        slot.generation = generation;
        let next = slot.next_free;
        slot.value = Some(value);
        slot.next_free = NONE;
        self.free_head = next;
        self.len += 1;
        Ok(Id { number, generation })
    }

    /// The object `id` names, if it is still alive. O(1).
    pub fn get(&self, id: Id) -> Option<&T> {
        let slot = self.slot(id.number)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_ref()
    }

    /// The object `id` names, if it is still alive. O(1).
    pub fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        let slot = self.slot_mut(id.number)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// The live object in slot `number` (from 1; 0 gives `None`), whatever its generation: for
    /// the engine's lists, which link objects by slot number. O(1).
    pub fn at(&self, number: u32) -> Option<&T> {
        self.slot(number)?.value.as_ref()
    }

    /// [`Slab::at`], mutable.
    pub fn at_mut(&mut self, number: u32) -> Option<&mut T> {
        self.slot_mut(number)?.value.as_mut()
    }

    /// The live id of the object in slot `number` (from 1; 0 gives `None`), if any.
    pub fn id_at(&self, number: u32) -> Option<Id> {
        let slot = self.slot(number)?;
        slot.value.as_ref().map(|_| Id { number, generation: slot.generation })
    }

    /// Slot numbers in use or usable, `1..=capacity` (for walks over the whole table). A `Range`,
    /// whose iteration is simpler code than a `RangeInclusive`'s.
    pub fn numbers(&self) -> core::ops::Range<u32> {
        1..self.capacity() as u32 + 1
    }

    /// Removes and returns the object `id` names. O(1).
    pub fn remove(&mut self, id: Id) -> Option<T> {
        let free_head = self.free_head;
        let slot = self.slot_mut(id.number)?;
        if slot.generation != id.generation || slot.value.is_none() {
            return None;
        }
        let value = slot.value.take();
        slot.next_free = free_head;
        self.free_head = id.number;
        self.len -= 1;
        value
    }

    /// Gives back one block of memory (the last chunk, then the directory), or `None` when the
    /// slab holds none: for giving all memory back, one block at a time, in O(1) each. Objects in
    /// a returned chunk are dropped: the caller checks [`Slab::is_empty`] first and reports a leak
    /// otherwise (the length keeps counting them until the last chunk has gone). The free list is
    /// emptied, as it may thread through the returned chunk, so the free slots of the chunks kept
    /// are not reused: an insert afterwards asks for a chunk.
    pub fn take_one(&mut self) -> Option<Returned<T>> {
        if self.chunks > 0 {
            self.chunks -= 1;
            let chunk = self.directory.as_mut()?.get_mut(self.chunks)?.take()?;
            self.free_head = NONE;
            if self.chunks == 0 {
                self.len = 0;
            }
            return Some(Returned::Chunk(chunk));
        }
        let directory = self.directory.take()?;
        *self = Slab::new();
        Some(Returned::Directory(directory))
    }

    /// Gives back every chunk and the directory (the slab is empty and memoryless afterwards).
    /// Objects still inside are dropped: the caller checks [`Slab::is_empty`] first and reports
    /// a leak otherwise.
    pub fn take_memory(&mut self, mut give_back: impl FnMut(Returned<T>)) {
        if let Some(directory) = self.directory.take() {
            for entry in directory.iter_mut() {
                if let Some(chunk) = entry.take() {
                    give_back(Returned::Chunk(chunk));
                }
            }
            if !directory.is_empty() {
                give_back(Returned::Directory(directory));
            }
        }
        *self = Slab::new();
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}
