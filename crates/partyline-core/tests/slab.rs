//! The object tables' ids, as NDIS and user mode see them: an [`Id`] goes out as a 64-bit
//! context (ProtocolXxxContext, the control device's object ids) and comes back as an allegation
//! that the slab checks (crates/partyline-core/src/slab.rs).

mod support;

use partyline_core::slab::{Chunk, Directory, Exhausted, Slab, Slot, CHUNK_LEN};
use partyline_core::{Error, Id};
use support::{leaf, profile, Fake, Policy};

/// An id survives the trip through its 64-bit form, generation and slot alike, and a slot
/// reused by a new object gives a different context, so the old one is refused.
#[test]
fn an_id_survives_its_64_bit_form_and_a_reused_slot_gets_a_new_one() {
    let mut fake = Fake::new(Policy::synchronous());
    let (_, af) = fake.open_binding();
    let call = fake.with_memory(|e| e.make_call(af, profile(), [leaf(1), leaf(2)])).expect("make call");
    fake.settle();
    let party = fake.engine.parties_of(call).next().expect("a party");
    for id in [af, call, party] {
        let wire = id.to_u64();
        assert_eq!(Id::from_u64(wire), Some(id), "{wire:#x}");
        assert_eq!(wire >> 32, 1, "first generation of the slot, in the high word: {wire:#x}");
        assert_eq!(wire & 0xFFFF_FFFF, u64::from(id.index()), "slot number in the low word");
    }
    fake.engine.close_call(call).expect("close");
    fake.settle();
    let again = fake.with_memory(|e| e.make_call(af, profile(), [leaf(3)])).expect("make call again");
    assert_eq!(again.index(), call.index(), "the freed slot is reused");
    assert_ne!(again.to_u64(), call.to_u64(), "with a new generation");
    let stale = Id::from_u64(call.to_u64()).expect("well-formed");
    assert!(matches!(fake.engine.close_call(stale), Err(Error::UnknownId(_))), "the old context is refused");
}

/// No slab hands out slot 0 or generation 0, so a context with either half zero (NULL, or a
/// forged or corrupted value) decodes to no id at all.
#[test]
fn a_context_with_a_zero_slot_or_generation_is_no_id() {
    assert_eq!(Id::from_u64(0), None);
    assert_eq!(Id::from_u64(1 << 32), None, "slot 0");
    assert_eq!(Id::from_u64(1), None, "generation 0");
    assert!(Id::from_u64((1 << 32) | 1).is_some());
}

fn chunk() -> Chunk<u32> {
    let slots = (0..CHUNK_LEN).map(|_| Slot::VACANT).collect::<Vec<_>>().into_boxed_slice();
    Box::leak(Box::<[Slot<u32>; CHUNK_LEN]>::try_from(slots).ok().expect("CHUNK_LEN slots"))
}

fn directory(len: usize) -> Directory<u32> {
    Box::leak((0..len).map(|_| None).collect::<Vec<_>>().into_boxed_slice())
}

/// A slab asks for its memory as it fills: a directory of four entries first, then chunks until
/// the directory is full, then a directory twice as big (so a table of n chunks has copied its
/// directory O(log n) times); it is empty exactly when every object it held was removed.
#[test]
fn a_slab_grows_by_chunks_and_doubling_directories_and_empties_again() {
    let mut slab: Slab<u32> = Slab::new();
    assert!(slab.is_empty());
    let mut directories = Vec::new();
    let mut ids = Vec::new();
    for n in 0..(9 * CHUNK_LEN) as u32 {
        loop {
            match slab.insert(n) {
                Ok(id) => break ids.push(id),
                Err((Exhausted::Chunk, _)) => {
                    assert!(slab.add_chunk(chunk()).is_ok(), "room in the directory")
                }
                Err((Exhausted::Directory { len }, _)) => {
                    directories.push(len);
                    slab.replace_directory(directory(len));
                }
            }
        }
        assert!(!slab.is_empty());
    }
    assert_eq!(directories, [4, 8, 16]);
    assert_eq!((slab.len(), slab.chunks(), slab.directory_len()), (9 * CHUNK_LEN, 9, 16));
    for (n, id) in ids.iter().enumerate() {
        assert!(!slab.is_empty());
        assert_eq!(slab.remove(*id), Some(n as u32));
    }
    assert!(slab.is_empty());
    assert_eq!(slab.len(), 0);
}

/// The glue may lend a directory that turns out not to be bigger (another thread grew the table
/// first): it is given back untouched, and no chunk is lost, rather than copying four chunks
/// into two entries. A directory that already names chunks is refused the same way.
#[test]
fn a_directory_no_bigger_than_the_one_in_use_is_given_back_untouched() {
    let mut slab: Slab<u32> = Slab::new();
    slab.replace_directory(directory(4));
    for _ in 0..4 {
        assert!(slab.add_chunk(chunk()).is_ok());
    }
    let ids: Vec<Id> = (0..(4 * CHUNK_LEN) as u32).map(|n| slab.insert(n).expect("room")).collect();
    for len in [2, 4] {
        let smaller = directory(len);
        let lent = smaller.as_ptr();
        let back = slab.replace_directory(smaller);
        assert_eq!((back.as_ptr(), back.len()), (lent, len), "the lent directory comes back");
    }
    let named = directory(8);
    named[0] = Some(chunk());
    let lent = named.as_ptr();
    assert_eq!(slab.replace_directory(named).as_ptr(), lent, "a directory naming a chunk is refused");
    assert_eq!(slab.directory_len(), 4);
    assert!(ids.iter().all(|id| slab.get(*id).is_some()), "every object is still found");
}
