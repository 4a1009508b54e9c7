//! Call-parameter snapshots and the Q.2931 call manager's validation of them.
//!
//! Read: atm-call-params.md §2-§6 and the checklist of §12; condis-reference.md §5.3.
//!
//! Flow: an export takes a [`Snapshot`] of the driver's `CO_CALL_PARAMETERS` (with the call
//! manager and media parameters it points to) as soon as the request arrives; validation works on
//! the copy, with bounds checks, never on driver memory. At the completion of a pended request
//! the snapshot is compared with the memory again: freed or modified parameters are a violation.

#![allow(non_upper_case_globals)] // the IE type constants keep atm.h's spelling

use ndis_sys::*;

use super::callmgr::AtmAddr;
use super::memory::Pool;

/// Bytes of `CO_CALL_MANAGER_PARAMETERS` before `CallMgrSpecific.Parameters`.
const CM_HEADER: usize = 72;
/// Bytes of `CO_MEDIA_PARAMETERS` before `MediaSpecific.Parameters` (x64).
const MEDIA_HEADER: usize = 24;
/// Largest variable part read from driver memory.
const MAX_SPECIFIC: usize = 16 * 1024;

/// A copy of a request's call parameters: the three structures back to back in one buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Address of the CO_CALL_PARAMETERS.
    pub address: usize,
    /// Its Flags.
    pub flags: u32,
    /// CO_CALL_PARAMETERS (24 bytes), then CO_CALL_MANAGER_PARAMETERS with its variable tail,
    /// then CO_MEDIA_PARAMETERS with its variable tail.
    bytes: Vec<u8>,
    /// Where the media parameters start in `bytes` (the call-manager ones start at 24).
    media_at: usize,
}

impl Snapshot {
    /// The 24 bytes of CO_CALL_PARAMETERS.
    pub fn call(&self) -> &[u8] {
        &self.bytes[..CALL_LEN]
    }

    /// CO_CALL_MANAGER_PARAMETERS with its variable tail (empty if the pointer is NULL).
    pub fn call_manager(&self) -> &[u8] {
        &self.bytes[CALL_LEN..self.media_at]
    }

    /// CO_MEDIA_PARAMETERS with its variable tail (empty if NULL).
    pub fn media(&self) -> &[u8] {
        &self.bytes[self.media_at..]
    }

    /// The buffer, for another snapshot ([`snapshot_into`]).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Bytes of CO_CALL_PARAMETERS.
const CALL_LEN: usize = 24;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).unwrap_or(0)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).unwrap_or(0)
}

/// Reads `header` bytes at `address`, then the variable part whose length is the u32 at
/// `length_at`, refusing to read past a pool block the address lies in; appends them to `bytes`.
///
/// # Safety
/// `address` must be readable for what is read (the driver's obligation); pool blocks are bounded.
unsafe fn read_variable(
    pool: &Pool,
    address: usize,
    header: usize,
    length_at: usize,
    bytes: &mut Vec<u8>,
) -> Result<(), String> {
    // A live block and a freed (quarantined) one never overlap: only an address outside every
    // live block can point into freed pool.
    let live = pool.live_block(address);
    if live.is_none() && pool.is_freed(address) {
        return Err(format!("{address:#x} points into freed pool"));
    }
    let limit = live.map(|(start, length)| start + length - address);
    if limit.is_some_and(|l| l < header) {
        return Err(format!("{address:#x}: block too small for the {header}-byte header"));
    }
    let at = bytes.len();
    // SAFETY: the caller guarantees `address` is readable for the header (bounded above for pool).
    bytes.extend_from_slice(unsafe { std::slice::from_raw_parts(address as *const u8, header) });
    let length = u32_at(&bytes[at..], length_at) as usize;
    if length > MAX_SPECIFIC {
        return Err(format!("specific-parameters Length {length} is implausible"));
    }
    if limit.is_some_and(|l| l < header + length) {
        return Err(format!("specific-parameters Length {length} runs past the end of its pool block"));
    }
    // SAFETY: as above; the variable part is within the block for pool memory.
    bytes.extend_from_slice(unsafe { std::slice::from_raw_parts((address + header) as *const u8, length) });
    Ok(())
}

/// Bytes [`read_variable`] will read at `address`, for sizing the buffer (0 if unknown).
///
/// # Safety
/// As [`read_variable`], for the header.
unsafe fn variable_len(pool: &Pool, address: usize, header: usize, length_at: usize) -> usize {
    match pool.live_block(address) {
        Some((start, length)) if start + length - address >= header => {
            // SAFETY: within a live pool block.
            let length = unsafe { ((address + length_at) as *const u32).read_unaligned() } as usize;
            header + length.min(MAX_SPECIFIC)
        }
        _ => 0,
    }
}

/// Takes a snapshot of the parameters at `address`.
///
/// # Safety
/// `address` (non-NULL) and the pointers in it must be readable, as NDIS requires of the caller.
pub unsafe fn snapshot(pool: &Pool, address: usize) -> Result<Snapshot, String> {
    // SAFETY: the caller's guarantee.
    unsafe { snapshot_into(pool, address, Vec::new()) }
}

/// [`snapshot`] into `bytes` (emptied first; a buffer to reuse, see [`Snapshot::into_bytes`]).
///
/// # Safety
/// As [`snapshot`].
pub unsafe fn snapshot_into(pool: &Pool, address: usize, mut bytes: Vec<u8>) -> Result<Snapshot, String> {
    let live = pool.live_block(address);
    // A live block and a freed (quarantined) one never overlap.
    if live.is_none() && pool.is_freed(address) {
        return Err("CO_CALL_PARAMETERS points into freed pool".into());
    }
    if live.is_some_and(|(start, length)| start + length - address < CALL_LEN) {
        return Err("CO_CALL_PARAMETERS runs past the end of its pool block".into());
    }
    // SAFETY: the caller guarantees the 24-byte CO_CALL_PARAMETERS is readable.
    let call = unsafe { (address as *const [u8; CALL_LEN]).read_unaligned() };
    let cm = u64_at(&call, 8) as usize;
    let media = u64_at(&call, 16) as usize;
    // SAFETY: the caller's guarantee extends to CallMgrParameters and MediaParameters.
    let cm_len = if cm == 0 { 0 } else { unsafe { variable_len(pool, cm, CM_HEADER, 68) } };
    // SAFETY: as above.
    let media_len = if media == 0 { 0 } else { unsafe { variable_len(pool, media, MEDIA_HEADER, 20) } };
    bytes.clear();
    bytes.reserve(CALL_LEN + cm_len + media_len);
    bytes.extend_from_slice(&call);
    if cm != 0 {
        // SAFETY: the caller's guarantee extends to CallMgrParameters.
        unsafe { read_variable(pool, cm, CM_HEADER, 68, &mut bytes)? }
    }
    let media_at = bytes.len();
    if media != 0 {
        // SAFETY: the caller's guarantee extends to MediaParameters.
        unsafe { read_variable(pool, media, MEDIA_HEADER, 20, &mut bytes)? }
    }
    Ok(Snapshot { address, flags: u32_at(&call, 0), bytes, media_at })
}

/// A rejection: the UNI cause and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub cause: u8,
    pub reason: String,
}

fn reject(cause: u8, reason: impl Into<String>) -> Reject {
    Reject { cause, reason: reason.into() }
}

/// Parsed Q.2931 call-manager parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The called party (an IE_CalledPartyNumber overrides CalledParty).
    pub called: AtmAddr,
    /// The calling party (an IE_CallingPartyNumber overrides CallingParty).
    pub calling: AtmAddr,
    /// The IEs in order: (IEType, where its payload lies in `payloads`).
    ies: Vec<(u32, std::ops::Range<usize>)>,
    /// The IEs' payloads (as given, IELength - 8 bytes each), back to back.
    payloads: Vec<u8>,
    /// Warnings that are not rejections (logged).
    pub warnings: Vec<String>,
}

impl Parsed {
    /// The first IE of `ie_type`.
    pub fn ie(&self, ie_type: u32) -> Option<&[u8]> {
        self.ies().find(|(t, _)| *t == ie_type).map(|(_, p)| p)
    }

    /// The IEs in order: (IEType, payload bytes as given, IELength - 8).
    pub fn ies(&self) -> impl Iterator<Item = (u32, &[u8])> + '_ {
        self.ies.iter().map(|(t, range)| (*t, &self.payloads[range.clone()]))
    }
}

/// Minimum payload of each IE type (atm-call-params.md §3.1).
fn payload_size(ie_type: u32) -> Option<usize> {
    Some(match ie_type {
        IE_AALParameters => 16,
        IE_TrafficDescriptor => 60,
        IE_BroadbandBearerCapability => 5,
        IE_BHLI => 16,
        IE_BLLI => 36,
        IE_CalledPartyNumber | IE_CalledPartySubaddress | IE_CallingPartySubaddress => 28,
        IE_CallingPartyNumber => 32,
        IE_Cause => 7,
        IE_QOSClass => 2,
        IE_TransitNetworkSelection => 4,
        IE_BroadbandSendingComplete => 1,
        IE_LIJCallId => 4,
        IE_Raw => 12,
        _ => return None,
    })
}

/// Parses the CallMgrSpecific part: ParamType, Q2931_CALLMGR_PARAMETERS, the IE walk with bounds
/// checks (§12 item 1). IEs may be unaligned and longer than their payload.
pub fn parse(snapshot: &Snapshot) -> Result<Parsed, Reject> {
    let mut ies = Vec::new();
    let mut payloads = Vec::new();
    let walked = walk(snapshot, |ie_type, bytes| {
        let at = payloads.len();
        payloads.extend_from_slice(bytes);
        ies.push((ie_type, at..payloads.len()));
    })?;
    Ok(Parsed {
        called: walked.called.to_addr(),
        calling: walked.calling.to_addr(),
        ies,
        payloads,
        warnings: walked.warnings,
    })
}

/// A called party as the parameters hold it (no copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf<'a> {
    /// `ATM_NSAP` or `ATM_E164`.
    pub address_type: u32,
    /// The `NumberOfDigits` (at most 20) digits.
    pub digits: &'a [u8],
}

impl Leaf<'_> {
    /// The address, copied.
    pub fn to_addr(self) -> AtmAddr {
        AtmAddr { address_type: self.address_type, digits: self.digits.to_vec() }
    }

    /// Whether it is `address`.
    pub fn is(self, address: &AtmAddr) -> bool {
        self.address_type == address.address_type && self.digits == address.digits.as_slice()
    }
}

/// What [`walk`] found besides the IEs.
struct Walked<'a> {
    called: Leaf<'a>,
    calling: Leaf<'a>,
    warnings: Vec<String>,
}

/// Walks the CallMgrSpecific part (§12 item 1): ParamType, Q2931_CALLMGR_PARAMETERS, then every
/// IE with bounds checks, handing each (IEType, payload as given) to `each` in order; fails with
/// the first problem before any later IE is looked at. IEs may be unaligned and longer than their
/// payload.
fn walk<'a>(snapshot: &'a Snapshot, mut each: impl FnMut(u32, &'a [u8])) -> Result<Walked<'a>, Reject> {
    let cm = snapshot.call_manager();
    if cm.is_empty() {
        return Err(reject(96, "CallMgrParameters is NULL"));
    }
    let mut warnings = Vec::new();
    let param_type = u32_at(cm, 64);
    if param_type != 0 && param_type != CALLMGR_SPECIFIC_Q2931 {
        return Err(reject(
            100,
            format!("CallMgrSpecific.ParamType {param_type} is not CALLMGR_SPECIFIC_Q2931"),
        ));
    }
    if param_type == 0 {
        warnings.push("CallMgrSpecific.ParamType 0 (tolerated; CALLMGR_SPECIFIC_Q2931 is 1)".into());
    }
    let length = u32_at(cm, 68) as usize;
    let q = &cm[CM_HEADER..];
    if length < 60 || q.len() < length {
        return Err(reject(
            104,
            format!("CallMgrSpecific.Length {length} is shorter than Q2931_CALLMGR_PARAMETERS (60)"),
        ));
    }
    let q = &q[..length];
    if u32_at(q, 4) > 20 {
        return Err(reject(28, format!("CalledParty.NumberOfDigits {} > 20", u32_at(q, 4))));
    }
    // The called party: CalledParty, unless an IE_CalledPartyNumber overrides it (an ATM_ADDRESS:
    // type, digit count, 20 digits).
    let mut called: &[u8] = &q[..28];
    // The calling party likewise: CallingParty, unless an IE_CallingPartyNumber (an ATM_ADDRESS
    // and two octets) overrides it.
    let mut calling: &[u8] = &q[28..56];
    let count = u32_at(q, 56) as usize;
    let mut offset = 60;
    for index in 0..count {
        if offset + 8 > length {
            return Err(reject(
                104,
                format!("IE {index} of {count} starts at {offset}, past Length {length}"),
            ));
        }
        let ie_type = u32_at(q, offset);
        let ie_length = u32_at(q, offset + 4) as usize;
        let Some(payload) = payload_size(ie_type) else {
            return Err(reject(99, format!("IE {index}: unknown IEType {ie_type}")));
        };
        if ie_length < 8 + payload {
            return Err(reject(
                104,
                format!("IE {index} (type {ie_type}): IELength {ie_length} < 8 + payload {payload}"),
            ));
        }
        if offset + ie_length > length {
            return Err(reject(104, format!("IE {index} (type {ie_type}) runs past CallMgrSpecific.Length")));
        }
        let bytes = &q[offset + 8..offset + ie_length];
        if ie_type == IE_LIJCallId {
            return Err(reject(63, "IE_LIJCallId: leaf-initiated join is not UNI 3.1"));
        }
        if ie_type == IE_CalledPartyNumber {
            called = bytes;
        }
        if ie_type == IE_CallingPartyNumber {
            calling = bytes;
        }
        each(ie_type, bytes);
        offset += ie_length;
    }
    let digits = (u32_at(called, 4) as usize).min(20);
    let called = Leaf { address_type: u32_at(called, 0), digits: &called[8..8 + digits] };
    let digits = (u32_at(calling, 4) as usize).min(20);
    let calling = Leaf { address_type: u32_at(calling, 0), digits: &calling[8..8 + digits] };
    Ok(Walked { called, calling, warnings })
}

/// Validates a SETUP (NdisClMakeCall), §12 item 2.
pub fn validate_setup(snapshot: &Snapshot, multipoint: bool, rfc1755_strict: bool) -> Result<Parsed, Reject> {
    let mut parsed = parse(snapshot)?;
    for (ie, name) in [
        (IE_TrafficDescriptor, "traffic descriptor"),
        (IE_BroadbandBearerCapability, "broadband bearer capability"),
        (IE_QOSClass, "QoS class"),
    ] {
        if parsed.ie(ie).is_none() {
            return Err(reject(96, format!("mandatory IE missing: {name}")));
        }
    }
    if parsed.called.is_empty() {
        return Err(reject(96, "mandatory IE missing: called party number (CalledParty is empty)"));
    }
    if rfc1755_strict {
        for (ie, name) in [(IE_AALParameters, "AAL parameters"), (IE_BLLI, "B-LLI")] {
            if parsed.ie(ie).is_none() {
                return Err(reject(96, format!("IE missing (RFC 1755): {name}")));
            }
        }
    }
    if multipoint {
        let td = parsed.ie(IE_TrafficDescriptor).unwrap_or_default();
        if u32_at(td, 28) != 0 || u32_at(td, 32) != 0 {
            return Err(reject(73, "point-to-multipoint: backward peak cell rate must be 0"));
        }
        let receive_rate = u32_at(snapshot.call_manager(), 32);
        let receive_peak = u32_at(snapshot.call_manager(), 40);
        let zero_or_unspecified = |v: u32| v == 0 || v == QOS_NOT_SPECIFIED;
        if !zero_or_unspecified(receive_rate) || !zero_or_unspecified(receive_peak) {
            return Err(reject(73, "point-to-multipoint: FLOWSPEC Receive bandwidth must be 0"));
        }
        let bbc = parsed.ie(IE_BroadbandBearerCapability).unwrap_or_default();
        if bbc.get(4).copied() != Some(UP_P2MP) {
            parsed.warnings.push("multipoint call with a bearer capability that is not UP_P2MP".into());
        }
    }
    Ok(parsed)
}

/// Validates an ADD PARTY (NdisClAddParty) against the call's SETUP, §12 item 3. Returns the
/// called and the calling party.
pub fn validate_add_party<'a>(
    snapshot: &'a Snapshot,
    setup: &Parsed,
) -> Result<(Leaf<'a>, Leaf<'a>), Reject> {
    // One pass over the IEs, remembering what the checks below need (in the order they ask),
    // so an ADD PARTY is validated without copying its IEs.
    let mut disallowed = None;
    let (mut aal, mut blli) = (None, None);
    let walked = walk(snapshot, |ie_type, bytes| {
        let allowed = matches!(
            ie_type,
            IE_AALParameters
                | IE_BLLI
                | IE_BHLI
                | IE_CalledPartyNumber
                | IE_CalledPartySubaddress
                | IE_CallingPartyNumber
                | IE_CallingPartySubaddress
                | IE_BroadbandSendingComplete
                | IE_TransitNetworkSelection
        );
        if !allowed && disallowed.is_none() {
            disallowed = Some(ie_type);
        }
        if ie_type == IE_AALParameters && aal.is_none() {
            aal = Some(bytes);
        }
        if ie_type == IE_BLLI && blli.is_none() {
            blli = Some(bytes);
        }
    })?;
    if let Some(ie_type) = disallowed {
        return Err(reject(100, format!("IE type {ie_type} is not allowed in ADD PARTY")));
    }
    if walked.called.digits.is_empty() {
        return Err(reject(96, "mandatory IE missing: called party number"));
    }
    // Compare the payload proper (the first `payload_size` bytes): IEs may carry padding.
    let same = |ie: u32, added: Option<&[u8]>| {
        let size = payload_size(ie).unwrap_or(0);
        match (added, setup.ie(ie)) {
            (Some(a), Some(b)) => a.get(..size) == b.get(..size),
            (None, _) => true,
            (Some(_), None) => false,
        }
    };
    if !same(IE_AALParameters, aal) {
        return Err(reject(78, "AAL parameters differ from the call's"));
    }
    if !same(IE_BLLI, blli) {
        return Err(reject(88, "B-LLI differs from the call's"));
    }
    Ok((walked.called, walked.calling))
}
