//! The address family's own ATM address: ProtocolCoOidRequest's answer to the call manager's
//! OID_CO_ADDRESS_CHANGE, and the OID_CO_GET_ADDRESSES query it asks for.
//!
//! Pages: oid-co-address-change (sent by the call manager right after the client opens an AF and
//! whenever the switch address changes; the client must then query OID_CO_GET_ADDRESSES),
//! oid-co-get-addresses (the answer, a `CO_ADDRESS_LIST`), nf-ndis-ndiscooidrequest (binding
//! and AF handle, NULL VC and party for an AF-wide request; the request and its buffer from
//! nonpaged pool; PENDING means ProtocolCoOidRequestComplete follows, anything else that the
//! request is complete), nc-ndis-protocol_co_oid_request (NDIS_STATUS_SUCCESS: "carried out the
//! requested operation"; NDIS_STATUS_NOT_SUPPORTED for an OID not recognised),
//! nc-ndis-protocol_co_oid_request_complete, ns-ndis-_ndis_oid_request (header type
//! NDIS_OBJECT_TYPE_OID_REQUEST, revision 1, NDIS_SIZEOF_OID_REQUEST_REVISION_1).
//!
//! Flow: [`oid_request`] tells the engine of the change and answers SUCCESS at once; the engine
//! asks for [`Action::QueryAddresses`](partyline_core::Action::QueryAddresses), which [`query`]
//! makes with one pool block: the `NDIS_OID_REQUEST` then its information buffer. The block is
//! NDIS's until the request completes; [`oid_request_complete`] (or `query` itself, when the
//! request did not pend) reads the list, frees the block and feeds the engine. When pool is
//! short the query uses its binding's [`Reserve`] instead: the client "must" query after every
//! change, and a query that could not even be made would leave the AF without an address until
//! the next change (found by the first 10^6-seed low-resources run, seeds 8707 and 9210).

use crate::global::{context, drive, drive_after, id, with_engine};
use crate::pool::{self, tag};
use core::mem::size_of;
use core::ptr::{self, NonNull};
use ndis_sys::*;
use partyline_core::addresses::first_address;
use partyline_core::{AtmAddress, Handle, Id, Status};

/// Where the information buffer starts in the block (after the request, 8-aligned).
const BUFFER: usize = (size_of::<NDIS_OID_REQUEST>() + 7) & !7;

/// A binding's own query block, in its I/O block (allocated at bind): used when the pool has no
/// block for a query. One is enough: an address family queries one at a time (a change that
/// arrives meanwhile is queried after), a binding opens one address family at a time, and its
/// close waits for the query that is out. Sized for the largest query.
#[repr(C, align(16))]
pub struct Reserve([u8; RESERVE_LEN]);

const RESERVE_LEN: usize = BUFFER + partyline_core::addresses::MAX_LENGTH as usize;

impl Reserve {
    pub const EMPTY: Reserve = Reserve([0; RESERVE_LEN]);
}

/// The reserve block of the binding `af` is on.
fn reserve_of(af: Id) -> Option<NonNull<u8>> {
    with_engine(|e| e.af_cookie(af)).and_then(crate::binding::oid_reserve)
}

/// What a finished query tells the engine.
pub struct Answer {
    pub status: Status,
    pub address: Option<AtmAddress>,
    pub needed: u32,
}

/// ProtocolCoOidRequest: OID_CO_ADDRESS_CHANGE for an AF of ours is taken (the engine queries
/// the new address); every other OID is NDIS_STATUS_NOT_SUPPORTED (partyline has nothing a call
/// manager could ask for).
///
/// # Safety
/// NDIS's arguments: `request` is NULL or a valid NDIS_OID_REQUEST for the duration of the call.
pub unsafe fn oid_request(af_context: NDIS_HANDLE, request: *const NDIS_OID_REQUEST) -> NDIS_STATUS {
    // SAFETY: the caller's guarantee; only the OID (at the same offset in every DATA member) is read.
    let Some(request) = (unsafe { request.as_ref() }) else { return NDIS_STATUS_INVALID_PARAMETER };
    // SAFETY: reading a plain u32 of the union, which every member starts with.
    let oid = unsafe { request.DATA.QUERY_INFORMATION.Oid };
    if oid != OID_CO_ADDRESS_CHANGE {
        return NDIS_STATUS_NOT_SUPPORTED;
    }
    let Some(af) = id(af_context) else { return NDIS_STATUS_INVALID_PARAMETER };
    match with_engine(|e| e.on_address_change(af)) {
        Ok(()) => {
            drive();
            NDIS_STATUS_SUCCESS
        }
        Err(error) => error.status().0,
    }
}

/// Makes the query for `af` ([`Action::QueryAddresses`](partyline_core::Action::QueryAddresses));
/// the answer when the request did not pend.
pub fn query(af: Id, binding: Handle, af_handle: Handle, length: u32) -> Option<Answer> {
    let failed = Some(Answer { status: Status::RESOURCES, address: None, needed: 0 });
    let block = match pool::allocate(BUFFER + length as usize, tag::OID_REQUEST) {
        Some(block) => block,
        None if BUFFER + length as usize <= RESERVE_LEN => match reserve_of(af) {
            Some(reserve) => reserve,
            None => return failed,
        },
        None => return failed,
    };
    let request = block.as_ptr().cast::<NDIS_OID_REQUEST>();
    // SAFETY: `block` is fresh, 16-aligned pool of BUFFER + length bytes, ours until the request;
    // the request is written whole before NDIS sees it.
    unsafe {
        ptr::write_bytes(block.as_ptr(), 0, BUFFER + length as usize);
        let r = &mut *request;
        r.Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_OID_REQUEST,
            Revision: NDIS_OID_REQUEST_REVISION_1,
            Size: NDIS_SIZEOF_OID_REQUEST_REVISION_1,
        };
        r.RequestType = NdisRequestQueryInformation;
        r.RequestId = context(af);
        r.DATA.QUERY_INFORMATION = NDIS_OID_REQUEST_QUERY {
            Oid: OID_CO_GET_ADDRESSES,
            InformationBuffer: block.as_ptr().add(BUFFER).cast(),
            InformationBufferLength: length,
            BytesWritten: 0,
            BytesNeeded: 0,
        };
    }
    // SAFETY: the binding and AF handles are live (the engine asks only for an open AF, whose
    // close waits for this query); NULL VC and party: an AF-wide request; the request and its
    // buffer are nonpaged and stay allocated until the completion; <= DISPATCH.
    let status = unsafe {
        NdisCoOidRequest(
            binding.0 as NDIS_HANDLE,
            af_handle.0 as NDIS_HANDLE,
            ptr::null_mut(),
            ptr::null_mut(),
            request,
        )
    };
    if status == NDIS_STATUS_PENDING {
        return None; // ProtocolCoOidRequestComplete finishes it, perhaps already has
    }
    // SAFETY: the request did not pend: the block is ours again, and freed once, here.
    Some(unsafe { finish(block, status, af) })
}

/// ProtocolCoOidRequestComplete: the query of [`query`] finished.
///
/// # Safety
/// NDIS's arguments: `request` is the request this driver passed to NdisCoOidRequest.
pub unsafe fn oid_request_complete(
    af_context: NDIS_HANDLE,
    request: *mut NDIS_OID_REQUEST,
    status: NDIS_STATUS,
) {
    let Some(block) = NonNull::new(request.cast::<u8>()) else { return };
    // SAFETY: the caller's guarantee: our block, complete, no longer NDIS's.
    let ours = unsafe {
        (*request).Header.Type == NDIS_OBJECT_TYPE_OID_REQUEST
            && (*request).DATA.QUERY_INFORMATION.Oid == OID_CO_GET_ADDRESSES
    };
    if !ours {
        return;
    }
    let Some(af) = id(af_context) else { return };
    // SAFETY: as above; freed once, here.
    let answer = unsafe { finish(block, status, af) };
    let _ = drive_after(|e| e.on_addresses_queried(af, answer.status, answer.address, answer.needed));
}

/// Reads a completed query's answer and frees its block (unless it is `af`'s binding's
/// reserve).
///
/// # Safety
/// `block` is a block of [`query`] for `af` whose request completed with `status`; not used
/// afterwards.
unsafe fn finish(block: NonNull<u8>, status: NDIS_STATUS, af: Id) -> Answer {
    let request = block.as_ptr().cast::<NDIS_OID_REQUEST>();
    // SAFETY: the caller's guarantee: our request, complete.
    let query = unsafe { (*request).DATA.QUERY_INFORMATION };
    let written = query.BytesWritten.min(query.InformationBufferLength) as usize;
    let address = if status == NDIS_STATUS_SUCCESS {
        // SAFETY: the information buffer is ours, `InformationBufferLength` bytes after BUFFER;
        // `written` is bounded by it.
        let bytes = unsafe { core::slice::from_raw_parts(block.as_ptr().add(BUFFER), written) };
        first_address(bytes).ok()
    } else {
        None
    };
    if reserve_of(af) != Some(block) {
        // SAFETY: allocated by `query`, freed exactly once.
        unsafe { pool::free(block) };
    }
    Answer { status: Status(status), address, needed: query.BytesNeeded }
}
