//! READ_STATE's answer: the driver's own state ([`Census`]) on the wire, the driver's writer and
//! the host tools' reader.
//!
//! Layout (little-endian, [`STATE_RESPONSE_LEN`] bytes):
//!
//! | offset | field |
//! |---|---|
//! | 0 | `version` u16, `flags` u16 (0) |
//! | 4 | shape: `tables` u8 (4), `refusal_kinds` u8 (5), `object_kinds` u8 (4), reserved u8 (0) |
//! | 8 | 4 tables (bindings, address families, calls, parties) of 16: `live` u32, `chunks` u32, `directory` u32 (entries), `slot_bytes` u32 |
//! | 72 | queued work: `calls` u32, `afs` u32, `parties` u32, `deferred` u32 |
//! | 88 | `refused`, `lost_actions`, `drop_failures`, `close_failures`, `delete_failures`: u64 each |
//! | 128 | refusals: 5 kinds (unknown id, invalid state, closing, unsupported address family, no leaves) × 4 object kinds (binding, address family, call, party), u64 each |
//!
//! The shape bytes let a reader refuse an answer laid out for other tables or kinds (the version
//! changes too when they change).

use partyline_core::census::{Census, RefusalKind, Refusals, TableCensus, WorkCensus, OBJECT_KINDS, TABLES};

use crate::error::{IoctlError, Malformed};
use crate::wire::{Reader, Writer};
use crate::VERSION;

const TABLES_AT: usize = 8;
const TABLE_LEN: usize = 16;
const WORK_AT: usize = TABLES_AT + TABLES.len() * TABLE_LEN;
const COUNTERS_AT: usize = WORK_AT + 16;
const REFUSALS_AT: usize = COUNTERS_AT + 5 * 8;
/// READ_STATE output.
pub const STATE_RESPONSE_LEN: usize = REFUSALS_AT + RefusalKind::ALL.len() * OBJECT_KINDS.len() * 8;

const SHAPE: [u8; 4] = [TABLES.len() as u8, RefusalKind::ALL.len() as u8, OBJECT_KINDS.len() as u8, 0];

/// READ_STATE: e.g. `encode_state_response(out, &engine.census())`.
pub fn encode_state_response(out: &mut [u8], census: &Census) -> Result<usize, IoctlError> {
    let out =
        out.get_mut(..STATE_RESPONSE_LEN).ok_or(IoctlError::BufferTooSmall { needed: STATE_RESPONSE_LEN })?;
    let mut w = Writer::new(out);
    w.u16(0, VERSION)?;
    w.u16(2, 0)?;
    w.put(4, &SHAPE)?;
    for (i, t) in census.tables.iter().enumerate() {
        let at = TABLES_AT + i * TABLE_LEN;
        w.u32(at, t.live)?;
        w.u32(at + 4, t.chunks)?;
        w.u32(at + 8, t.directory)?;
        w.u32(at + 12, t.slot_bytes)?;
    }
    let work = &census.work;
    for (i, v) in [work.calls, work.afs, work.parties, work.deferred].into_iter().enumerate() {
        w.u32(WORK_AT + 4 * i, v)?;
    }
    let counters = [
        census.refused,
        census.lost_actions,
        census.drop_failures,
        census.close_failures,
        census.delete_failures,
    ];
    for (i, v) in counters.into_iter().enumerate() {
        w.u64(COUNTERS_AT + 8 * i, v)?;
    }
    for (i, v) in census.refusals.counts.iter().flatten().enumerate() {
        w.u64(REFUSALS_AT + 8 * i, *v)?;
    }
    Ok(STATE_RESPONSE_LEN)
}

/// READ_STATE output: exactly [`STATE_RESPONSE_LEN`] bytes of this version and shape.
pub fn decode_state_response(bytes: &[u8]) -> Result<Census, IoctlError> {
    let r = Reader::new(bytes, IoctlError::Response(Malformed::Truncated));
    if bytes.len() < 4 {
        return Err(IoctlError::Response(Malformed::Truncated));
    }
    let version = r.u16(0)?;
    if version != VERSION {
        return Err(IoctlError::Version { found: version });
    }
    if bytes.len() < STATE_RESPONSE_LEN {
        return Err(IoctlError::Response(Malformed::Truncated));
    }
    if bytes.len() > STATE_RESPONSE_LEN {
        return Err(IoctlError::Response(Malformed::TrailingBytes));
    }
    if r.u16(2)? != 0 || r.array::<4>(4)? != SHAPE {
        return Err(IoctlError::Response(Malformed::UnknownValue));
    }
    let mut census = Census::default();
    for (i, t) in census.tables.iter_mut().enumerate() {
        let at = TABLES_AT + i * TABLE_LEN;
        *t = TableCensus {
            live: r.u32(at)?,
            chunks: r.u32(at + 4)?,
            directory: r.u32(at + 8)?,
            slot_bytes: r.u32(at + 12)?,
        };
    }
    census.work = WorkCensus {
        calls: r.u32(WORK_AT)?,
        afs: r.u32(WORK_AT + 4)?,
        parties: r.u32(WORK_AT + 8)?,
        deferred: r.u32(WORK_AT + 12)?,
    };
    let c = |i: usize| r.u64(COUNTERS_AT + 8 * i);
    (
        census.refused,
        census.lost_actions,
        census.drop_failures,
        census.close_failures,
        census.delete_failures,
    ) = (c(0)?, c(1)?, c(2)?, c(3)?, c(4)?);
    let mut refusals = Refusals::ZERO;
    for (i, cell) in refusals.counts.iter_mut().flatten().enumerate() {
        *cell = r.u64(REFUSALS_AT + 8 * i)?;
    }
    census.refusals = refusals;
    Ok(census)
}
