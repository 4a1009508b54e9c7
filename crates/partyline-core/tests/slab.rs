//! The object tables' ids, as NDIS and user mode see them: an [`Id`] goes out as a 64-bit
//! context (ProtocolXxxContext, the control device's object ids) and comes back as an allegation
//! that the slab checks (crates/partyline-core/src/slab.rs).

mod support;

use partyline_core::{Error, Id};
use support::{leaf, profile, Fake, Policy};

/// An id survives the trip through its 64-bit form, generation and slot alike, and a slot
/// reused by a new object gives a different context, so the old one is refused.
#[test]
fn an_id_survives_its_64_bit_form_and_a_reused_slot_gets_a_new_one() {
    let mut fake = Fake::new(Policy::synchronous());
    let (_, af) = fake.open_binding();
    let call =
        fake.with_memory(|e| e.make_call(af, profile(), [leaf(1), leaf(2)].into_iter())).expect("make call");
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
    let again =
        fake.with_memory(|e| e.make_call(af, profile(), [leaf(3)].into_iter())).expect("make call again");
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
