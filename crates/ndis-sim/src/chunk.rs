//! Fixed-capacity buffers for the simulator's append-only records (the call log, the I/O
//! manager's IRPs): they are never moved or copied as they fill, their memory is zero from the
//! start, and from 2 MiB on they are mapped on their own and marked for transparent huge pages, so
//! a long run that logs gigabytes takes one page fault per 2 MiB instead of 512 (page faults, not
//! instructions, were most of the cost of a long run's memory growth).

use std::alloc::Layout;
use std::ptr::NonNull;

/// A transparent huge page.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// The bytes of a mapping of whole huge pages for a chunk of `bytes`, if it gets one: when it
/// fills such a mapping all but a sliver (so `HUGE_PAGE / size_of::<T>()` elements of any `T`
/// do, and a half-size chunk does not).
fn huge_mapping(bytes: usize) -> Option<usize> {
    let mapped = bytes.next_multiple_of(HUGE_PAGE);
    (bytes >= HUGE_PAGE / 2 && mapped - bytes <= HUGE_PAGE / 64).then_some(mapped)
}

/// A fixed-capacity buffer of `T`s (plain data, for which all-zero bytes are a value): zeroed
/// ([`Chunk::new`]) or, for elements that are always written before they are read, not
/// ([`Chunk::for_writes`]).
pub(crate) struct Chunk<T: Copy> {
    pointer: NonNull<T>,
    len: usize,
    capacity: usize,
    /// Whether the room past `len` is zero (so [`Chunk::reserve_zeroed`] may hand it out).
    zeroed: bool,
}

// SAFETY: a `Chunk` owns its memory exclusively, like a `Vec<T>`.
unsafe impl<T: Copy + Send> Send for Chunk<T> {}
// SAFETY: shared access only reads, like `&Vec<T>`.
unsafe impl<T: Copy + Sync> Sync for Chunk<T> {}

impl<T: Copy> Chunk<T> {
    /// A chunk with no room (and no memory): a placeholder until the first real one.
    pub const fn empty() -> Chunk<T> {
        Chunk { pointer: NonNull::dangling(), len: 0, capacity: 0, zeroed: true }
    }

    /// A chunk of `capacity` (> 0) zeroed `T`s, empty.
    ///
    /// # Panics
    /// If `T` is zero-sized, `capacity` is 0, or the memory cannot be had.
    pub fn new(capacity: usize) -> Chunk<T> {
        assert!(std::mem::size_of::<T>() > 0 && capacity > 0, "a chunk holds something");
        let bytes = capacity.checked_mul(std::mem::size_of::<T>()).expect("chunk size");
        let pointer = match huge_mapping(bytes) {
            Some(mapped) => map_huge(mapped),
            None => allocate(Self::layout(capacity), true),
        };
        Chunk { pointer: pointer.cast(), len: 0, capacity, zeroed: true }
    }

    /// A chunk of room for `capacity` (> 0) `T`s whose contents are unspecified until written
    /// (nothing is read past [`Chunk::len`], so nothing needs zeroing).
    ///
    /// # Panics
    /// As [`Chunk::new`].
    pub fn for_writes(capacity: usize) -> Chunk<T> {
        assert!(std::mem::size_of::<T>() > 0 && capacity > 0, "a chunk holds something");
        let bytes = capacity.checked_mul(std::mem::size_of::<T>()).expect("chunk size");
        if huge_mapping(bytes).is_some() {
            return Chunk::new(capacity);
        }
        let pointer = allocate(Self::layout(capacity), false);
        Chunk { pointer: pointer.cast(), len: 0, capacity, zeroed: false }
    }

    fn layout(capacity: usize) -> Layout {
        Layout::array::<T>(capacity).expect("chunk layout")
    }

    /// Elements pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Elements that still fit.
    pub fn room(&self) -> usize {
        self.capacity - self.len
    }

    /// Appends `values`, which must fit ([`Chunk::room`]).
    ///
    /// # Panics
    /// If they do not fit.
    #[inline]
    pub fn extend(&mut self, values: &[T]) {
        assert!(values.len() <= self.room(), "chunk overflow");
        for (i, value) in values.iter().enumerate() {
            // SAFETY: `len + i < capacity` (asserted above), inside the allocation.
            unsafe { self.pointer.as_ptr().add(self.len + i).write(*value) };
        }
        self.len += values.len();
    }

    /// Appends the `N` `values`, which must fit (a fixed-size copy: a few moves, no call).
    ///
    /// # Panics
    /// If they do not fit.
    #[inline]
    pub fn extend_array<const N: usize>(&mut self, values: &[T; N]) {
        assert!(N <= self.room(), "chunk overflow");
        // SAFETY: `len + N <= capacity` (asserted above), inside the allocation; `[T; N]` has
        // the alignment of `T`.
        unsafe { self.pointer.as_ptr().add(self.len).cast::<[T; N]>().write(*values) };
        self.len += N;
    }

    /// Appends `value`, which must fit.
    #[inline]
    pub fn push(&mut self, value: T) {
        self.extend_array(&[value]);
    }

    /// Reserves `count` zeroed elements at the end and returns a pointer to the first; they stay
    /// where they are until the chunk is dropped.
    ///
    /// # Panics
    /// If they do not fit.
    pub fn reserve_zeroed(&mut self, count: usize) -> *mut T {
        assert!(self.zeroed, "a chunk for writes has no zeroed room");
        assert!(count <= self.room(), "chunk overflow");
        // SAFETY: `len + count <= capacity`; never handed out before, so still zero.
        let first = unsafe { self.pointer.as_ptr().add(self.len) };
        self.len += count;
        first
    }

    /// The elements pushed so far.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` elements were written (or, reserved zeroed, are zero, a valid
        // `T` by the type's contract), and the memory lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.pointer.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for Chunk<T> {
    fn drop(&mut self) {
        let bytes = self.capacity * std::mem::size_of::<T>();
        if bytes == 0 {
            // `empty()`: nothing was allocated.
        } else if let Some(mapped) = huge_mapping(bytes) {
            // SAFETY: mapped by `map_huge` with this size; nothing refers to it any more.
            unsafe { libc::munmap(self.pointer.as_ptr().cast(), mapped) };
        } else {
            // SAFETY: allocated by `allocate` with this layout.
            unsafe { std::alloc::dealloc(self.pointer.as_ptr().cast(), Self::layout(self.capacity)) };
        }
    }
}

fn allocate(layout: Layout, zeroed: bool) -> NonNull<u8> {
    // SAFETY: the layout has a non-zero size (checked by the constructors).
    let pointer = unsafe {
        if zeroed {
            std::alloc::alloc_zeroed(layout)
        } else {
            std::alloc::alloc(layout)
        }
    };
    NonNull::new(pointer).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

/// `bytes` (whole huge pages) of zeroed memory in a mapping of its own, aligned to 2 MiB and
/// advised for transparent huge pages.
fn map_huge(bytes: usize) -> NonNull<u8> {
    let reserved = bytes + HUGE_PAGE;
    // SAFETY: an anonymous private mapping; no existing memory is affected.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            reserved,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        std::alloc::handle_alloc_error(Layout::from_size_align(bytes, HUGE_PAGE).expect("layout"));
    }
    let start = (base as usize).next_multiple_of(HUGE_PAGE);
    let end = start + bytes;
    // SAFETY: both ranges lie inside the mapping just made and outside [start, end), which is
    // what is kept; unmapping the slack only gives back address space.
    unsafe {
        if start > base as usize {
            libc::munmap(base, start - base as usize);
        }
        let mapping_end = base as usize + reserved;
        if mapping_end > end {
            libc::munmap(end as *mut libc::c_void, mapping_end - end);
        }
        // Advice only: without huge pages the memory works the same.
        libc::madvise(start as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE);
    }
    NonNull::new(start as *mut u8).expect("a mapping is not at address 0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_keeps_what_is_pushed_in_place() {
        for capacity in [3, HUGE_PAGE / 8, HUGE_PAGE / 24, HUGE_PAGE / 8 + 1] {
            let mut chunk = Chunk::<u64>::new(capacity);
            let first = chunk.as_slice().as_ptr();
            chunk.push(7);
            chunk.extend(&[8, 9]);
            assert_eq!(&chunk.as_slice()[..3], &[7, 8, 9]);
            assert_eq!(chunk.room(), capacity - 3);
            assert_eq!(chunk.as_slice().as_ptr(), first, "never moves");
            let zeroed = chunk.reserve_zeroed(capacity - 3);
            // SAFETY: the reserved elements lie inside the chunk.
            assert!((0..capacity - 3).all(|i| unsafe { *zeroed.add(i) } == 0));
            assert_eq!(chunk.len(), capacity);
        }
    }

    #[test]
    #[should_panic(expected = "no zeroed room")]
    fn a_chunk_for_writes_hands_out_no_zeroed_room() {
        let mut chunk = Chunk::<u64>::for_writes(4);
        chunk.push(1);
        assert_eq!(chunk.as_slice(), &[1]);
        chunk.reserve_zeroed(1);
    }

    #[test]
    fn an_empty_chunk_has_no_room() {
        let chunk = Chunk::<u64>::empty();
        assert_eq!((chunk.len(), chunk.room()), (0, 0));
        assert!(chunk.as_slice().is_empty());
    }

    #[test]
    #[should_panic(expected = "chunk overflow")]
    fn a_full_chunk_refuses_more() {
        let mut chunk = Chunk::<u64>::new(2);
        chunk.extend(&[1, 2, 3]);
    }

    #[test]
    fn huge_chunks_are_aligned_for_huge_pages() {
        // Whole huge pages, or all but a sliver of one (2 MiB of 24-byte records is not a whole
        // number of them).
        for bytes in [HUGE_PAGE, HUGE_PAGE / 24 * 24, 2 * HUGE_PAGE] {
            assert!(huge_mapping(bytes).is_some(), "{bytes}");
            let chunk = Chunk::<u64>::for_writes(bytes / 8);
            assert_eq!(chunk.as_slice().as_ptr() as usize % HUGE_PAGE, 0, "{bytes}");
        }
        assert_eq!(huge_mapping(HUGE_PAGE / 2 + 8), None, "most of a huge page would be wasted");
        assert_eq!(huge_mapping(64 << 10), None);
    }
}
