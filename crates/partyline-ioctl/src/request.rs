//! Requests: the driver's [`decode_request`] and the host tools' `encode_*` mirrors.
//!
//! Layouts (little-endian, offsets in bytes). Every request starts with the 4-byte header
//! `version: u16` ([`crate::VERSION`]) `reserved: u16` (0). "reserved" fields must be zero.
//!
//! | IOCTL | input |
//! |---|---|
//! | LIST_BINDINGS, LIST_CALLS | 16: header, reserved u32, `cursor` u64 (0 = from the start) |
//! | MAKE_CALL | 32 + 24·n: header, `n` u32 (1..=[`MAX_LEAVES`]), `af` id u64, profile (12), reserved u32, then n leaves |
//! | ADD_PARTY | 40: header, reserved u32, `call` id u64, leaf (24) |
//! | DROP_PARTY | 16: header, reserved u32, `party` id u64 |
//! | CLOSE_CALL | 16: header, reserved u32, `call` id u64 |
//! | QUERY_CALL | 24: header, reserved u32, `call` id u64, party `cursor` u64 |
//! | READ_COUNTERS | 4: header |
//! | READ_TRACE | 16: header, reserved u32, `from` sequence u64 |
//! | READ_STATE | 4: header |
//!
//! Profile (12 bytes): `service` u8 (0 UBR, 1 CBR), reserved [u8; 3], `peak_cell_rate` u32
//! (cells/s), `max_sdu` u32 (bytes). Leaf (24 bytes, an `ATM_ADDRESS`): `AddressType` u8
//! (0 NSAP, 1 E.164), `NumberOfDigits` u8, reserved u16, `Address` [u8; 20] (zero-padded).

use partyline_core::model::{AtmAddress, ServiceCategory, TrafficProfile};
use partyline_core::slab::Id;

use crate::error::{IdField, IoctlError};
use crate::wire::{Reader, Writer};
use crate::{Ioctl, VERSION};

/// The most leaves one make-call may carry. A 1024-leaf request is 24,608 bytes.
pub const MAX_LEAVES: u32 = 1024;
/// Request header: version and reserved.
pub const HEADER_LEN: usize = 4;
/// A leaf (`ATM_ADDRESS`) on the wire.
pub const LEAF_LEN: usize = 24;
/// A traffic profile on the wire.
pub const PROFILE_LEN: usize = 12;
/// LIST_BINDINGS and LIST_CALLS input.
pub const LIST_REQUEST_LEN: usize = 16;
/// The fixed part of a MAKE_CALL input, before the leaves.
pub const MAKE_CALL_FIXED_LEN: usize = 32;
/// ADD_PARTY input.
pub const ADD_PARTY_REQUEST_LEN: usize = 40;
/// DROP_PARTY and CLOSE_CALL input.
pub const ID_REQUEST_LEN: usize = 16;
/// QUERY_CALL input.
pub const QUERY_CALL_REQUEST_LEN: usize = 24;
/// READ_COUNTERS input.
pub const READ_COUNTERS_REQUEST_LEN: usize = 4;
/// READ_TRACE input.
pub const READ_TRACE_REQUEST_LEN: usize = 16;
/// READ_STATE input.
pub const READ_STATE_REQUEST_LEN: usize = 4;

/// A validated request. Ids decode; addresses and the profile are checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Request<'a> {
    ListBindings { cursor: u64 },
    ListCalls { cursor: u64 },
    MakeCall { af: Id, profile: TrafficProfile, leaves: Leaves<'a> },
    AddParty { call: Id, leaf: AtmAddress },
    DropParty { party: Id },
    CloseCall { call: Id },
    QueryCall { call: Id, cursor: u64 },
    ReadCounters,
    ReadTrace { from: u64 },
    ReadState,
}

/// The leaves of a make-call, every one already checked by [`decode_request`]. A view over the
/// input buffer: 1 to [`MAX_LEAVES`] addresses, decoded on demand (so no 22 KiB array is built on
/// a kernel stack).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Leaves<'a> {
    bytes: &'a [u8],
}

impl<'a> Leaves<'a> {
    /// Number of leaves (1..=[`MAX_LEAVES`]).
    pub fn len(&self) -> usize {
        self.bytes.len() / LEAF_LEN
    }

    /// Never true for a decoded request.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Leaf `index`, if in range.
    pub fn get(&self, index: usize) -> Option<AtmAddress> {
        let start = index.checked_mul(LEAF_LEN)?;
        let bytes = self.bytes.get(start..)?.get(..LEAF_LEN)?;
        decode_leaf(bytes, 0).ok()
    }

    /// The leaves in order (an exact-size iterator: the engine sizes its tables from it).
    pub fn iter(&self) -> LeafIter<'a> {
        LeafIter { bytes: self.bytes }
    }

    /// Copies the leaves into `out` (which must hold [`Leaves::len`] entries); returns how many.
    pub fn copy_to(&self, out: &mut [AtmAddress]) -> usize {
        let mut n = 0;
        for (slot, leaf) in out.iter_mut().zip(self.iter()) {
            *slot = leaf;
            n += 1;
        }
        n
    }
}

/// Iterator over [`Leaves`]. Every leaf was checked by [`decode_request`], so decoding again
/// cannot fail; if it somehow did, the iteration ends early rather than yield a bad address.
/// (Walks the bytes itself rather than through `ChunksExact`, whose length divides by a
/// run-time chunk size: a division-by-zero panic path, and `core::fmt` with it, in the driver.)
#[derive(Clone, Debug)]
pub struct LeafIter<'a> {
    bytes: &'a [u8],
}

impl Iterator for LeafIter<'_> {
    type Item = AtmAddress;

    fn next(&mut self) -> Option<AtmAddress> {
        let (chunk, rest) = self.bytes.split_first_chunk::<LEAF_LEN>()?;
        self.bytes = rest;
        match decode_leaf(chunk, 0) {
            Ok(leaf) => Some(leaf),
            Err(_) => {
                self.bytes = &[];
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.bytes.len() / LEAF_LEN;
        (len, Some(len))
    }
}

impl ExactSizeIterator for LeafIter<'_> {}

fn short(minimum: usize, actual: usize) -> IoctlError {
    IoctlError::InputTooShort { minimum, actual }
}

/// Checks the header: long enough to hold it, right version, reserved zero.
fn header(input: &[u8], minimum: usize) -> Result<Reader<'_>, IoctlError> {
    let reader = Reader::new(input, short(minimum, input.len()));
    if input.len() < HEADER_LEN {
        return Err(short(minimum, input.len()));
    }
    let version = reader.u16(0)?;
    if version != VERSION {
        return Err(IoctlError::Version { found: version });
    }
    if reader.u16(2)? != 0 {
        return Err(IoctlError::Reserved { offset: 2 });
    }
    Ok(reader)
}

/// A fixed-size request: header checked, then the exact length.
fn fixed(input: &[u8], len: usize) -> Result<Reader<'_>, IoctlError> {
    let reader = header(input, len).map_err(|e| match e {
        IoctlError::InputTooShort { actual, .. } => IoctlError::InputLength { expected: len, actual },
        e => e,
    })?;
    if input.len() != len {
        return Err(IoctlError::InputLength { expected: len, actual: input.len() });
    }
    Ok(reader)
}

fn reserved32(reader: &Reader<'_>, offset: usize) -> Result<(), IoctlError> {
    if reader.u32(offset)? != 0 {
        return Err(IoctlError::Reserved { offset });
    }
    Ok(())
}

fn id(field: IdField, value: u64) -> Result<Id, IoctlError> {
    Id::from_u64(value).ok_or(IoctlError::Id { field, value })
}

/// Decodes one 24-byte leaf; `index` names it in the error.
fn decode_leaf(bytes: &[u8], index: u32) -> Result<AtmAddress, IoctlError> {
    let reader = Reader::new(bytes, short(LEAF_LEN, bytes.len()));
    let kind = reader.u8(0)?;
    let digits = reader.u8(1)?;
    if reader.u16(2)? != 0 {
        return Err(IoctlError::Reserved { offset: 2 });
    }
    let address: [u8; 20] = reader.array(4)?;
    let leaf = AtmAddress::from_raw(u32::from(kind), u32::from(digits), &address)
        .map_err(|error| IoctlError::Address { index, error })?;
    // Padding after the significant digits must be zero, so one address has one encoding.
    if address.iter().skip(leaf.len()).any(|&b| b != 0) {
        return Err(IoctlError::Reserved { offset: 4 + leaf.len() });
    }
    Ok(leaf)
}

fn decode_profile(reader: &Reader<'_>, offset: usize) -> Result<TrafficProfile, IoctlError> {
    let service = match reader.u8(offset)? {
        0 => ServiceCategory::Ubr,
        1 => ServiceCategory::Cbr,
        value => return Err(IoctlError::ServiceCategory { value }),
    };
    for i in 1..4 {
        if reader.u8(offset + i)? != 0 {
            return Err(IoctlError::Reserved { offset: offset + i });
        }
    }
    let profile =
        TrafficProfile { service, peak_cell_rate: reader.u32(offset + 4)?, max_sdu: reader.u32(offset + 8)? };
    profile.validate().map_err(IoctlError::Profile)?;
    Ok(profile)
}

/// Decodes and fully validates the input of IOCTL `code`. Order of checks: code, header length,
/// version, reserved fields, counts, exact length, ids, profile, addresses (first bad one named).
pub fn decode_request(code: u32, input: &[u8]) -> Result<Request<'_>, IoctlError> {
    let ioctl = Ioctl::from_code(code).ok_or(IoctlError::UnknownCode { code })?;
    match ioctl {
        Ioctl::ListBindings | Ioctl::ListCalls => {
            let r = fixed(input, LIST_REQUEST_LEN)?;
            reserved32(&r, 4)?;
            let cursor = r.u64(8)?;
            Ok(if ioctl == Ioctl::ListBindings {
                Request::ListBindings { cursor }
            } else {
                Request::ListCalls { cursor }
            })
        }
        Ioctl::MakeCall => {
            let r = header(input, MAKE_CALL_FIXED_LEN)?;
            if input.len() < MAKE_CALL_FIXED_LEN {
                return Err(short(MAKE_CALL_FIXED_LEN, input.len()));
            }
            let count = r.u32(4)?;
            if count == 0 || count > MAX_LEAVES {
                return Err(IoctlError::LeafCount { count });
            }
            let expected = MAKE_CALL_FIXED_LEN + count as usize * LEAF_LEN;
            if input.len() != expected {
                return Err(IoctlError::CountMismatch { count, actual: input.len() });
            }
            reserved32(&r, 28)?;
            let af = id(IdField::AddressFamily, r.u64(8)?)?;
            let profile = decode_profile(&r, 16)?;
            let leaves = r.slice(MAKE_CALL_FIXED_LEN, count as usize * LEAF_LEN)?;
            for (index, leaf) in leaves.chunks_exact(LEAF_LEN).enumerate() {
                decode_leaf(leaf, index as u32).map_err(|e| match e {
                    IoctlError::Reserved { offset } => {
                        IoctlError::Reserved { offset: MAKE_CALL_FIXED_LEN + index * LEAF_LEN + offset }
                    }
                    e => e,
                })?;
            }
            Ok(Request::MakeCall { af, profile, leaves: Leaves { bytes: leaves } })
        }
        Ioctl::AddParty => {
            let r = fixed(input, ADD_PARTY_REQUEST_LEN)?;
            reserved32(&r, 4)?;
            let call = id(IdField::Call, r.u64(8)?)?;
            let leaf = decode_leaf(r.slice(16, LEAF_LEN)?, 0).map_err(|e| match e {
                IoctlError::Reserved { offset } => IoctlError::Reserved { offset: 16 + offset },
                e => e,
            })?;
            Ok(Request::AddParty { call, leaf })
        }
        Ioctl::DropParty => {
            let r = fixed(input, ID_REQUEST_LEN)?;
            reserved32(&r, 4)?;
            Ok(Request::DropParty { party: id(IdField::Party, r.u64(8)?)? })
        }
        Ioctl::CloseCall => {
            let r = fixed(input, ID_REQUEST_LEN)?;
            reserved32(&r, 4)?;
            Ok(Request::CloseCall { call: id(IdField::Call, r.u64(8)?)? })
        }
        Ioctl::QueryCall => {
            let r = fixed(input, QUERY_CALL_REQUEST_LEN)?;
            reserved32(&r, 4)?;
            let call = id(IdField::Call, r.u64(8)?)?;
            Ok(Request::QueryCall { call, cursor: r.u64(16)? })
        }
        Ioctl::ReadCounters => {
            fixed(input, READ_COUNTERS_REQUEST_LEN)?;
            Ok(Request::ReadCounters)
        }
        Ioctl::ReadTrace => {
            let r = fixed(input, READ_TRACE_REQUEST_LEN)?;
            reserved32(&r, 4)?;
            Ok(Request::ReadTrace { from: r.u64(8)? })
        }
        Ioctl::ReadState => {
            fixed(input, READ_STATE_REQUEST_LEN)?;
            Ok(Request::ReadState)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Host side: encoders. Ids are raw u64 so tools (and tests) can send any value.

fn put_header(w: &mut Writer<'_>) -> Result<(), IoctlError> {
    w.u16(0, VERSION)?;
    w.u16(2, 0)
}

fn id_request<const N: usize>(value: u64, tail: Option<u64>) -> [u8; N] {
    let mut out = [0u8; N];
    out[..2].copy_from_slice(&VERSION.to_le_bytes());
    out[8..16].copy_from_slice(&value.to_le_bytes());
    if let Some(tail) = tail {
        out[16..24].copy_from_slice(&tail.to_le_bytes());
    }
    out
}

/// Writes a 24-byte leaf.
pub fn encode_leaf(leaf: &AtmAddress) -> [u8; LEAF_LEN] {
    let mut out = [0u8; LEAF_LEN];
    out[0] = leaf.kind() as u8;
    out[1] = leaf.len() as u8;
    out[4..].copy_from_slice(leaf.raw());
    out
}

/// Writes a 12-byte traffic profile.
pub fn encode_profile(profile: &TrafficProfile) -> [u8; PROFILE_LEN] {
    let mut out = [0u8; PROFILE_LEN];
    out[0] = profile.service as u8;
    out[4..8].copy_from_slice(&profile.peak_cell_rate.to_le_bytes());
    out[8..12].copy_from_slice(&profile.max_sdu.to_le_bytes());
    out
}

/// LIST_BINDINGS input.
pub fn encode_list_bindings(cursor: u64) -> [u8; LIST_REQUEST_LEN] {
    id_request(cursor, None)
}

/// LIST_CALLS input.
pub fn encode_list_calls(cursor: u64) -> [u8; LIST_REQUEST_LEN] {
    id_request(cursor, None)
}

/// The input length of a make-call with `leaves` leaves.
pub const fn make_call_len(leaves: usize) -> usize {
    MAKE_CALL_FIXED_LEN + leaves * LEAF_LEN
}

/// MAKE_CALL input into `out`; returns its length ([`make_call_len`]).
pub fn encode_make_call(
    out: &mut [u8],
    af: u64,
    profile: &TrafficProfile,
    leaves: &[AtmAddress],
) -> Result<usize, IoctlError> {
    let len = make_call_len(leaves.len());
    let out = out.get_mut(..len).ok_or(IoctlError::BufferTooSmall { needed: len })?;
    let mut w = Writer::new(out);
    put_header(&mut w)?;
    w.u32(4, leaves.len() as u32)?;
    w.u64(8, af)?;
    w.put(16, &encode_profile(profile))?;
    w.u32(28, 0)?;
    for (i, leaf) in leaves.iter().enumerate() {
        w.put(MAKE_CALL_FIXED_LEN + i * LEAF_LEN, &encode_leaf(leaf))?;
    }
    Ok(len)
}

/// ADD_PARTY input.
pub fn encode_add_party(call: u64, leaf: &AtmAddress) -> [u8; ADD_PARTY_REQUEST_LEN] {
    let mut out: [u8; ADD_PARTY_REQUEST_LEN] = id_request(call, None);
    out[16..].copy_from_slice(&encode_leaf(leaf));
    out
}

/// DROP_PARTY input.
pub fn encode_drop_party(party: u64) -> [u8; ID_REQUEST_LEN] {
    id_request(party, None)
}

/// CLOSE_CALL input.
pub fn encode_close_call(call: u64) -> [u8; ID_REQUEST_LEN] {
    id_request(call, None)
}

/// QUERY_CALL input.
pub fn encode_query_call(call: u64, cursor: u64) -> [u8; QUERY_CALL_REQUEST_LEN] {
    id_request(call, Some(cursor))
}

/// READ_COUNTERS input.
pub fn encode_read_counters() -> [u8; READ_COUNTERS_REQUEST_LEN] {
    let mut out = [0u8; READ_COUNTERS_REQUEST_LEN];
    out[..2].copy_from_slice(&VERSION.to_le_bytes());
    out
}

/// READ_STATE input.
pub fn encode_read_state() -> [u8; READ_STATE_REQUEST_LEN] {
    let mut out = [0u8; READ_STATE_REQUEST_LEN];
    out[..2].copy_from_slice(&VERSION.to_le_bytes());
    out
}

/// READ_TRACE input.
pub fn encode_read_trace(from: u64) -> [u8; READ_TRACE_REQUEST_LEN] {
    id_request(from, None)
}
