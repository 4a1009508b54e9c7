//! The address family's own ATM address: the OID_CO_GET_ADDRESSES request's sizes and the
//! reading of the call manager's `CO_ADDRESS_LIST` answer.
//!
//! Pages: oid-co-address-change (the call manager sends it right after the client opens an AF and
//! whenever its switch address changes; the client must then query OID_CO_GET_ADDRESSES),
//! oid-co-get-addresses (the answer is a `CO_ADDRESS_LIST`: `NumberOfAddressesAvailable`,
//! `NumberOfAddresses`, then `CO_ADDRESS { AddressSize, Address[] }` entries of the call
//! manager's fixed address size, the buffer holding room for all available ones),
//! nf-ndis-ndiscooidrequest (too small a buffer: NDIS_STATUS_INVALID_LENGTH or
//! NDIS_STATUS_BUFFER_TOO_SHORT, with `BytesNeeded` the length required), and
//! `shared/ndis/atm-call-params.md` §3 (CallingParty: the client's own registered ATM address).
//!
//! Flow: the glue allocates an `NDIS_OID_REQUEST` and an information buffer of
//! [`INITIAL_LENGTH`] (or, after a too-short answer, the `BytesNeeded` it was told, at most
//! [`MAX_LENGTH`]), queries, and hands the buffer to [`first_address`]. For the ATM call manager
//! an entry's address is an `ATM_ADDRESS`; partyline adds no alias addresses
//! (OID_CO_ADD_ADDRESS), so every address in the list is common to all clients and the first
//! valid one is the adapter's own.

use crate::model::AtmAddress;
use core::mem::{offset_of, size_of};
use ndis_sys::{ATM_ADDRESS, CO_ADDRESS, CO_ADDRESS_ATM_ENTRY_SIZE, CO_ADDRESS_LIST};

/// Bytes before the first entry.
const HEADER: usize = offset_of!(CO_ADDRESS_LIST, AddressList);

/// Information buffer of the first query: room for four addresses.
pub const INITIAL_LENGTH: u32 = (HEADER + 4 * CO_ADDRESS_ATM_ENTRY_SIZE) as u32;

/// The largest information buffer partyline asks for (64 addresses); a call manager that says it
/// needs more is answered with the failure path (the query is not retried with more).
pub const MAX_LENGTH: u32 = (HEADER + 64 * CO_ADDRESS_ATM_ENTRY_SIZE) as u32;

/// Why an answer gave no address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ListError {
    /// Fewer bytes than the list header, or an entry that runs past the bytes written.
    Truncated,
    /// `NumberOfAddresses` is zero: the switch has registered no address yet.
    Empty,
    /// No entry holds a valid `ATM_ADDRESS` (wrong `AddressSize`, or an address that is not a
    /// well-formed NSAP or E.164 number).
    NoValidAddress,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The first valid ATM address of a `CO_ADDRESS_LIST` (the `BytesWritten` bytes the call
/// manager wrote).
pub fn first_address(written: &[u8]) -> Result<AtmAddress, ListError> {
    let count =
        u32_at(written, offset_of!(CO_ADDRESS_LIST, NumberOfAddresses)).ok_or(ListError::Truncated)?;
    if count == 0 {
        return Err(ListError::Empty);
    }
    let mut at = HEADER;
    for _ in 0..count {
        let size =
            u32_at(written, at + offset_of!(CO_ADDRESS, AddressSize)).ok_or(ListError::Truncated)? as usize;
        let address = at + offset_of!(CO_ADDRESS, Address);
        let end = address.checked_add(size).ok_or(ListError::Truncated)?;
        let entry = written.get(address..end).ok_or(ListError::Truncated)?;
        if size == size_of::<ATM_ADDRESS>() {
            let kind = u32_at(entry, offset_of!(ATM_ADDRESS, AddressType)).unwrap_or(u32::MAX);
            let digits = u32_at(entry, offset_of!(ATM_ADDRESS, NumberOfDigits)).unwrap_or(0);
            let start = offset_of!(ATM_ADDRESS, Address);
            if let Some(octets) = entry.get(start..start + 20).and_then(|o| <&[u8; 20]>::try_from(o).ok()) {
                if let Ok(address) = AtmAddress::from_raw(kind, digits, octets) {
                    return Ok(address);
                }
            }
        }
        // Entries are the call manager's fixed size, 4-byte aligned like the structure.
        at = (end + 3) & !3;
    }
    Err(ListError::NoValidAddress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(out: &mut [u8], at: usize, kind: u32, digits: &[u8]) -> usize {
        out[at..at + 4].copy_from_slice(&28u32.to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&kind.to_le_bytes());
        out[at + 8..at + 12].copy_from_slice(&(digits.len() as u32).to_le_bytes());
        out[at + 12..at + 12 + digits.len()].copy_from_slice(digits);
        at + 32
    }

    fn list(available: u32, count: u32) -> [u8; INITIAL_LENGTH as usize] {
        let mut out = [0u8; INITIAL_LENGTH as usize];
        out[0..4].copy_from_slice(&available.to_le_bytes());
        out[4..8].copy_from_slice(&count.to_le_bytes());
        out
    }

    const NSAP: [u8; 20] = [
        0x47, 0x00, 0x05, 0x80, 0xff, 0xe1, 0, 0, 0, 0xf2, 0x1a, 0x3f, 0xe5, 0, 0x20, 0x48, 0x1a, 0x3f, 0xe5,
        0,
    ];

    #[test]
    fn the_first_valid_entry_is_the_address() {
        let mut out = list(2, 2);
        let next = entry(&mut out, 8, 0, &[0x11; 20]); // AFI 0x11: not an ATM End System Address
        entry(&mut out, next, 0, &NSAP);
        assert_eq!(first_address(&out), Ok(AtmAddress::nsap(&NSAP).unwrap()));
    }

    #[test]
    fn an_e164_address_is_read() {
        let mut out = list(1, 1);
        entry(&mut out, 8, 1, b"15551234");
        assert_eq!(first_address(&out), Ok(AtmAddress::e164(b"15551234").unwrap()));
    }

    #[test]
    fn empty_truncated_and_invalid_lists_give_no_address() {
        assert_eq!(first_address(&list(1, 0)), Err(ListError::Empty));
        assert_eq!(first_address(&[0u8; 6]), Err(ListError::Truncated));
        let mut out = list(1, 1);
        entry(&mut out, 8, 0, &NSAP);
        assert_eq!(first_address(&out[..30]), Err(ListError::Truncated), "entry cut short");
        let mut wrong_size = list(1, 1);
        entry(&mut wrong_size, 8, 0, &NSAP);
        wrong_size[8..12].copy_from_slice(&20u32.to_le_bytes());
        assert_eq!(first_address(&wrong_size), Err(ListError::NoValidAddress));
        let mut huge = list(1, 1);
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(first_address(&huge), Err(ListError::Truncated));
    }

    #[test]
    fn sizes() {
        assert_eq!(INITIAL_LENGTH, 8 + 4 * 32);
        assert_eq!(MAX_LENGTH, 8 + 64 * 32);
    }
}
