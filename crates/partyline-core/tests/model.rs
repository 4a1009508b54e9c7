//! The values a control-device request carries, checked before the engine sees them
//! (crates/partyline-core/src/model.rs): a MAKE_CALL's traffic profile.

use partyline_core::model::{ProfileError, ServiceCategory, TrafficProfile};

fn profile(peak_cell_rate: u32, max_sdu: u32) -> TrafficProfile {
    TrafficProfile { service: ServiceCategory::Cbr, peak_cell_rate, max_sdu }
}

/// A profile is accepted from 1 cell/s up to an OC-12 line (1,412,830 cells/s) and from a 1-byte
/// SDU up to AAL5's 65,535 bytes, and refused just outside either range, with the field named.
#[test]
fn a_traffic_profile_is_refused_outside_the_oc12_and_aal5_limits() {
    for ok in [profile(1, 1), profile(1_412_830, 65_535), TrafficProfile::DEFAULT] {
        assert_eq!(ok.validate(), Ok(()), "{ok:?}");
    }
    assert_eq!(profile(0, 9180).validate(), Err(ProfileError::PeakCellRate));
    assert_eq!(profile(1_412_831, 9180).validate(), Err(ProfileError::PeakCellRate));
    assert_eq!(profile(353_207, 0).validate(), Err(ProfileError::MaxSdu));
    assert_eq!(profile(353_207, 65_536).validate(), Err(ProfileError::MaxSdu));
}

/// atm-call-params.md §3: a native E.164 number has 1 to 15 digits; an empty one and a
/// sixteen-digit one are refused, whichever way they arrive (text or raw `ATM_ADDRESS`).
#[test]
fn an_e164_number_has_one_to_fifteen_digits() {
    use partyline_core::model::{AddressError, AtmAddress};
    assert_eq!(AtmAddress::e164(b""), Err(AddressError::E164Length));
    assert_eq!(AtmAddress::e164(b"1234567890123456"), Err(AddressError::E164Length));
    assert_eq!(AtmAddress::parse("+"), Err(AddressError::E164Length));
    let mut raw = [b'5'; 20];
    raw[16..].fill(0);
    assert_eq!(AtmAddress::from_raw(1, 16, &raw), Err(AddressError::E164Length));
    assert_eq!(AtmAddress::e164(b"1").map(|a| a.len()), Ok(1));
    assert_eq!(AtmAddress::e164(b"123456789012345").map(|a| a.len()), Ok(15));
}

/// From the raw `ATM_ADDRESS` fields: an NSAP address is exactly 20 octets, an E.164 number's
/// digit count cannot exceed the 20-octet field, and any other address type is not ATM's.
#[test]
fn a_raw_atm_address_is_checked_field_by_field() {
    use partyline_core::model::{AddressError, AtmAddress};
    let mut nsap = [0u8; 20];
    nsap[0] = 0x47;
    assert!(AtmAddress::from_raw(0, 20, &nsap).is_ok());
    assert_eq!(AtmAddress::from_raw(0, 19, &nsap), Err(AddressError::NsapLength));
    assert_eq!(AtmAddress::from_raw(1, 21, &[b'1'; 20]), Err(AddressError::E164Length));
    assert_eq!(AtmAddress::from_raw(2, 20, &nsap), Err(AddressError::Syntax));
}
