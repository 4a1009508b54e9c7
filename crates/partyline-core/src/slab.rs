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

use core::fmt;

/// Slots per chunk. Small enough that an idle driver holds little, large enough that the directory
/// stays short (16 bytes of directory per 256 objects).
pub const CHUNK_LEN: usize = 256;

/// The name of one object: slot index and generation. Never zero when encoded.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id {
    index: u32,
    generation: u32,
}

impl Id {
    /// The 64-bit form handed to NDIS as a context and to user mode as an object id.
    /// The low half is `index + 1`, so no valid id encodes to zero (NULL).
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | (self.index as u64 + 1)
    }

    /// Decodes [`Id::to_u64`]; `None` for values no slab ever hands out.
    pub const fn from_u64(value: u64) -> Option<Id> {
        let low = value as u32;
        let generation = (value >> 32) as u32;
        if low == 0 || generation == 0 {
            return None;
        }
        Some(Id { index: low - 1, generation })
    }

    /// The slot index (for traces).
    pub const fn index(self) -> u32 {
        self.index
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// One slot: the generation of its current (or last) occupant, and the occupant.
pub struct Slot<T> {
    generation: u32,
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

const NONE: u32 = u32::MAX;

/// A chunk of slots, lent by the glue.
pub type Chunk<T> = &'static mut [Slot<T>];

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
    Directory(&'static mut [Option<Chunk<T>>]),
}

/// A table of `T` with stable slots.
pub struct Slab<T: 'static> {
    directory: &'static mut [Option<Chunk<T>>],
    chunks: usize,
    free_head: u32,
    len: usize,
}

impl<T> Slab<T> {
    /// An empty slab with no memory; the first insert asks for a directory.
    pub const fn new() -> Self {
        Slab { directory: &mut [], chunks: 0, free_head: NONE, len: 0 }
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
        if self.chunks < self.directory.len() {
            Exhausted::Chunk
        } else {
            Exhausted::Directory { len: (self.directory.len() * 2).max(4) }
        }
    }

    /// Lends a chunk (length [`CHUNK_LEN`]); its slots join the free list. Gives it back when
    /// the slab has no room for it in its directory or it has the wrong length.
    pub fn add_chunk(&mut self, chunk: Chunk<T>) -> Result<(), Chunk<T>> {
        if self.chunks >= self.directory.len() || chunk.len() != CHUNK_LEN {
            return Err(chunk);
        }
        let base = (self.chunks * CHUNK_LEN) as u32;
        let free_head = self.free_head;
        for (offset, slot) in chunk.iter_mut().enumerate() {
            slot.value = None;
            slot.next_free = if offset + 1 < CHUNK_LEN { base + offset as u32 + 1 } else { free_head };
        }
        self.directory[self.chunks] = Some(chunk);
        self.chunks += 1;
        self.free_head = base;
        Ok(())
    }

    /// Lends a bigger directory (every entry `None`). Returns the one it replaces (or the new one,
    /// when it is not bigger) for the glue to free. O(chunks), rare: the directory doubles.
    pub fn replace_directory(
        &mut self,
        directory: &'static mut [Option<Chunk<T>>],
    ) -> &'static mut [Option<Chunk<T>>] {
        if directory.len() <= self.directory.len() || directory.iter().any(Option::is_some) {
            return directory;
        }
        for (new, old) in directory.iter_mut().zip(self.directory.iter_mut()) {
            *new = old.take();
        }
        core::mem::replace(&mut self.directory, directory)
    }

    fn slot(&self, index: u32) -> Option<&Slot<T>> {
        let index = index as usize;
        self.directory.get(index / CHUNK_LEN)?.as_ref()?.get(index % CHUNK_LEN)
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot<T>> {
        let index = index as usize;
        self.directory.get_mut(index / CHUNK_LEN)?.as_mut()?.get_mut(index % CHUNK_LEN)
    }

    /// Inserts `value`, or says what memory is needed first. O(1).
    pub fn insert(&mut self, value: T) -> Result<Id, (Exhausted, T)> {
        if let Some(need) = self.needs() {
            return Err((need, value));
        }
        let index = self.free_head;
        let Some(slot) = self.slot_mut(index) else {
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
        Ok(Id { index, generation })
    }

    /// The object `id` names, if it is still alive. O(1).
    pub fn get(&self, id: Id) -> Option<&T> {
        let slot = self.slot(id.index)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_ref()
    }

    /// The object `id` names, if it is still alive. O(1).
    pub fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        let slot = self.slot_mut(id.index)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// The live id of the object in slot `index`, if any (for teardown walks).
    pub fn id_at(&self, index: u32) -> Option<Id> {
        let slot = self.slot(index)?;
        slot.value.as_ref().map(|_| Id { index, generation: slot.generation })
    }

    /// Removes and returns the object `id` names. O(1).
    pub fn remove(&mut self, id: Id) -> Option<T> {
        let free_head = self.free_head;
        let slot = self.slot_mut(id.index)?;
        if slot.generation != id.generation || slot.value.is_none() {
            return None;
        }
        let value = slot.value.take();
        slot.next_free = free_head;
        self.free_head = id.index;
        self.len -= 1;
        value
    }

    /// Gives back one block of memory (the last chunk, then the directory), or `None` when the
    /// slab holds none. Objects in a returned chunk are dropped: the caller checks
    /// [`Slab::is_empty`] first and reports a leak otherwise.
    pub fn take_one(&mut self) -> Option<Returned<T>> {
        if self.chunks > 0 {
            self.chunks -= 1;
            let chunk = self.directory[self.chunks].take()?;
            let base = self.chunks * CHUNK_LEN;
            self.len = self.len.saturating_sub(chunk.iter().filter(|s| s.value.is_some()).count());
            // The free list may thread through the chunk: rebuild it from the remaining chunks.
            self.free_head = NONE;
            for index in (0..base).rev() {
                let free_head = self.free_head;
                if let Some(slot) = self.slot_mut(index as u32) {
                    if slot.value.is_none() {
                        slot.next_free = free_head;
                        self.free_head = index as u32;
                    }
                }
            }
            return Some(Returned::Chunk(chunk));
        }
        if self.directory.is_empty() {
            return None;
        }
        let directory = core::mem::take(&mut self.directory);
        *self = Slab::new();
        Some(Returned::Directory(directory))
    }

    /// Gives back every chunk and the directory (the slab is empty and memoryless afterwards).
    /// Objects still inside are dropped: the caller checks [`Slab::is_empty`] first and reports
    /// a leak otherwise.
    pub fn take_memory(&mut self, mut give_back: impl FnMut(Returned<T>)) {
        for entry in self.directory.iter_mut() {
            if let Some(chunk) = entry.take() {
                give_back(Returned::Chunk(chunk));
            }
        }
        let directory = core::mem::take(&mut self.directory);
        if !directory.is_empty() {
            give_back(Returned::Directory(directory));
        }
        *self = Slab::new();
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}
