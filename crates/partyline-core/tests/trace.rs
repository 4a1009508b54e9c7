//! The trace ring and the counters the control device reads (IOCTL_PARTYLINE_READ_TRACE):
//! events go to user mode as bytes, a cause as its `#[repr(u8)]` number (crates/partyline-ioctl
//! decodes it with `Cause::from_u8`).

use partyline_core::trace::Cause;

/// Every cause comes back from its wire byte, and a byte that names no cause (0, or past the
/// last) decodes to none.
#[test]
fn every_cause_round_trips_through_its_wire_byte() {
    for cause in Cause::ALL {
        assert_eq!(Cause::from_u8(cause as u8), Some(cause));
    }
    assert_eq!(Cause::from_u8(0), None);
    assert_eq!(Cause::from_u8(Cause::ALL.len() as u8 + 1), None);
}
