//! One intrusive doubly linked list of slab slots: every list and work queue of the engine.
//!
//! An object is linked by slot number (from 1; [`NIL`] is "none") through a [`Link`] it carries,
//! one `Link` per list it can be in. Which `Link` a list threads through is part of the list's
//! type ([`Thread`]), so a list of a call's parties cannot be walked through a call's work-queue
//! link by mistake. Every operation is O(1) and never panics: a slot number that names no live
//! object is ignored (and a removal of an object that is not in the list changes nothing), so a
//! stale number can at worst leave an object unlinked, never corrupt the list around it.

use core::marker::PhantomData;

use crate::slab::Slab;

/// No object: slot numbers start at 1 (see [`crate::slab`]), so empty lists and links are zero.
pub const NIL: u32 = 0;

/// An object's place in one list: the slot numbers of its neighbours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    prev: u32,
    next: u32,
}

impl Link {
    /// Not linked (or the only object of its list).
    pub const NONE: Link = Link { prev: NIL, next: NIL };
}

/// Names the [`Link`] of a `T` that one kind of list threads through.
pub trait Thread<T> {
    fn link(value: &T) -> &Link;
    fn link_mut(value: &mut T) -> &mut Link;
}

/// A list of `T`s threaded through the link `L` names; its objects live in a [`Slab<T>`].
pub struct List<L> {
    head: u32,
    tail: u32,
    len: u32,
    thread: PhantomData<fn() -> L>,
}

impl<L> Clone for List<L> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<L> Copy for List<L> {}

impl<L> core::fmt::Debug for List<L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "List {{ head: {}, tail: {}, len: {} }}", self.head, self.tail, self.len)
    }
}

impl<L> List<L> {
    /// No object. All zero bytes, so an engine full of empty lists is zero-fill.
    pub const EMPTY: List<L> = List { head: NIL, tail: NIL, len: 0, thread: PhantomData };

    pub const fn len(&self) -> u32 {
        self.len
    }

    pub const fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// The slot number of the first object, or [`NIL`].
    pub const fn head(&self) -> u32 {
        self.head
    }

    /// Whether slot `number` is linked through `L`: in this list, or in another list of the same
    /// thread. Lists that share a thread (a call's queued and connected parties) are told apart
    /// by the object's state, which says which one it is in.
    pub fn contains<T>(&self, slab: &Slab<T>, number: u32) -> bool
    where
        L: Thread<T>,
    {
        number != NIL && slab.at(number).is_some_and(|v| self.head == number || L::link(v).prev != NIL)
    }

    /// Appends slot `number`. Returns false (and changes nothing) if it names no live object or
    /// is already in the list.
    #[inline(never)]
    pub fn push_back<T>(&mut self, slab: &mut Slab<T>, number: u32) -> bool
    where
        L: Thread<T>,
    {
        if self.contains(slab, number) {
            return false;
        }
        let tail = self.tail;
        let Some(value) = slab.at_mut(number) else { return false };
        *L::link_mut(value) = Link { prev: tail, next: NIL };
        match slab.at_mut(tail) {
            Some(t) if tail != NIL => L::link_mut(t).next = number,
            _ => self.head = number,
        }
        self.tail = number;
        self.len += 1;
        true
    }

    /// Takes slot `number` out of the list, wherever it is. Returns false (and changes nothing)
    /// if it is not in the list.
    #[inline(never)]
    pub fn remove<T>(&mut self, slab: &mut Slab<T>, number: u32) -> bool
    where
        L: Thread<T>,
    {
        if !self.contains(slab, number) {
            return false;
        }
        let Some(value) = slab.at_mut(number) else { return false };
        let Link { prev, next } = core::mem::replace(L::link_mut(value), Link::NONE);
        match slab.at_mut(prev) {
            Some(p) if prev != NIL => L::link_mut(p).next = next,
            _ => self.head = next,
        }
        match slab.at_mut(next) {
            Some(n) if next != NIL => L::link_mut(n).prev = prev,
            _ => self.tail = prev,
        }
        self.len = self.len.saturating_sub(1);
        true
    }

    /// Takes the first object out, returning its slot number.
    pub fn pop_front<T>(&mut self, slab: &mut Slab<T>) -> Option<u32>
    where
        L: Thread<T>,
    {
        let head = self.head;
        if head == NIL {
            return None;
        }
        if !self.remove(slab, head) {
            // The head names no live object (never expected): the rest cannot be reached.
            *self = List::EMPTY;
        }
        Some(head)
    }

    /// The slot numbers in order, first to last.
    pub fn iter<'a, T>(&self, slab: &'a Slab<T>) -> impl Iterator<Item = u32> + 'a
    where
        L: Thread<T>,
    {
        let first = Some(self.head).filter(|&h| h != NIL);
        core::iter::successors(first, move |&n| slab.at(n).map(|v| L::link(v).next).filter(|&n| n != NIL))
    }
}
