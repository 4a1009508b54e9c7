//! The engine's one intrusive list ([`partyline_core::list`]) against a `VecDeque` model: random
//! pushes, removals (present or not, live or freed slots) and pops keep the list's order, length
//! and membership equal to the model's, and a freed slot never breaks the list around it.

use std::collections::VecDeque;

use partyline_core::list::{Link, List, Thread, NIL};
use partyline_core::slab::{Exhausted, Slab, Slot, CHUNK_LEN};
use proptest::prelude::*;

struct Item {
    link: Link,
}

enum ItemLink {}

impl Thread<Item> for ItemLink {
    fn link(item: &Item) -> &Link {
        &item.link
    }
    fn link_mut(item: &mut Item) -> &mut Link {
        &mut item.link
    }
}

/// A slab with room for `CHUNK_LEN` items (memory leaked: a test process).
fn slab() -> Slab<Item> {
    let mut slab = Slab::new();
    let Some(Exhausted::Directory { len }) = slab.needs() else { panic!("a new slab needs a directory") };
    let directory: Vec<Option<&'static mut [Slot<Item>; CHUNK_LEN]>> = (0..len).map(|_| None).collect();
    slab.replace_directory(Box::leak(directory.into_boxed_slice()));
    let chunk: Box<[Slot<Item>; CHUNK_LEN]> = Box::new(std::array::from_fn(|_| Slot::default()));
    assert!(slab.add_chunk(Box::leak(chunk)).is_ok());
    slab
}

#[derive(Clone, Debug)]
enum Op {
    Push(u32),
    Remove(u32),
    Pop,
    /// Frees the object in this slot after taking it out of the list, as the engine does.
    Free(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u32..12).prop_map(Op::Push),
        2 => (0u32..13).prop_map(Op::Remove),
        2 => Just(Op::Pop),
        1 => (1u32..12).prop_map(Op::Free),
    ]
}

proptest! {
    #[test]
    fn the_list_behaves_like_a_deque(ops in proptest::collection::vec(op(), 0..200)) {
        let mut slab = slab();
        // Slot numbers 1..=11, all live at first.
        let ids: Vec<_> = (0..11).map(|_| slab.insert(Item { link: Link::NONE }).ok().unwrap()).collect();
        let mut list: List<ItemLink> = List::EMPTY;
        let mut model: VecDeque<u32> = VecDeque::new();
        for op in ops {
            match op {
                Op::Push(n) => {
                    let live = slab.at(n).is_some();
                    let pushed = list.push_back(&mut slab, n);
                    prop_assert_eq!(pushed, live && !model.contains(&n));
                    if pushed {
                        model.push_back(n);
                    }
                }
                Op::Remove(n) => {
                    let removed = list.remove(&mut slab, n);
                    prop_assert_eq!(removed, model.contains(&n));
                    model.retain(|&m| m != n);
                }
                Op::Pop => prop_assert_eq!(list.pop_front(&mut slab), model.pop_front()),
                Op::Free(n) => {
                    list.remove(&mut slab, n);
                    model.retain(|&m| m != n);
                    let id = ids[n as usize - 1];
                    if slab.remove(id).is_none() {
                        // Already freed: nothing more to do.
                    }
                }
            }
            prop_assert_eq!(list.len() as usize, model.len());
            prop_assert_eq!(list.is_empty(), model.is_empty());
            prop_assert_eq!(list.head(), model.front().copied().unwrap_or(NIL));
            prop_assert_eq!(list.iter(&slab).collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            for n in 1..12 {
                prop_assert_eq!(list.contains(&slab, n), model.contains(&n), "slot {}", n);
            }
        }
    }
}
