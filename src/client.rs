//! The CoNDIS client entry points: ProtocolCoAfRegisterNotify and every
//! NDIS_CO_CLIENT_OPTIONAL_HANDLERS slot (all must be non-NULL: ns-ndis-_ndis_co_client_optional_handlers).
//!
//! Each is a trampoline: context → id, one engine call under the lock, then [`drive`] makes
//! whatever requests follow (an incoming drop is answered with NdisClDropParty, or with
//! NdisClCloseCall for the last party: nc-ndis-protocol_cl_incoming_drop_party).

use crate::global::{context, drive, drive_after, id, with_engine, with_memory};
use crate::perform::release_parameters;
use ndis_sys::*;
use partyline_core::{Handle, Status};

/// ProtocolCoAfRegisterNotify (PASSIVE_LEVEL): a call manager registered an address family on a
/// binding. partyline opens Q.2931 UNI 3.1 only (nf-ndis-ndisclopenaddressfamilyex, PASSIVE).
pub unsafe extern "win64" fn af_register_notify(
    binding_context: NDIS_HANDLE,
    family: *mut CO_ADDRESS_FAMILY,
) {
    let Some(binding) = id(binding_context) else { return };
    // SAFETY: NDIS passes a valid CO_ADDRESS_FAMILY for the duration of the call.
    let Some(family) = (unsafe { family.as_mut() }) else { return };
    let af = match with_memory(|e| {
        e.on_af_register_notify(binding, family.AddressFamily, family.MajorVersion, family.MinorVersion)
    }) {
        Ok(af) => af,
        Err(_) => return, // not ours, or no memory: leave the AF unopened
    };
    let Some(binding_handle) = with_engine(|e| e.binding_handle(binding)) else { return };
    let Some(slot) = crate::binding::af_handle_slot(binding) else { return };
    // SAFETY: PASSIVE (this handler); the binding is open; `family` is NDIS's own structure;
    // the out-pointer lives in the binding's I/O block.
    let status =
        unsafe { NdisClOpenAddressFamilyEx(binding_handle.0 as NDIS_HANDLE, family, context(af), slot) };
    if status != NDIS_STATUS_PENDING {
        // SAFETY: the open returned: the handle (or NULL) is in the slot.
        let handle = unsafe { slot.read() };
        let _ = with_engine(|e| e.on_open_af_complete(af, Status(status), Handle(handle as usize)));
    }
    drive();
}

/// ProtocolClOpenAfCompleteEx (PASSIVE_LEVEL). Status is the last parameter here.
pub unsafe extern "win64" fn open_af_complete(
    af_context: NDIS_HANDLE,
    af_handle: NDIS_HANDLE,
    status: NDIS_STATUS,
) {
    let Some(af) = id(af_context) else { return };
    let _ = drive_after(|e| e.on_open_af_complete(af, Status(status), Handle(af_handle as usize)));
}

/// ProtocolClCloseAfComplete (<= DISPATCH_LEVEL).
pub unsafe extern "win64" fn close_af_complete(status: NDIS_STATUS, af_context: NDIS_HANDLE) {
    let Some(af) = id(af_context) else { return };
    let _ = drive_after(|e| e.on_close_af_complete(af, Status(status)));
}

/// ProtocolClNotifyCloseAf (<= DISPATCH_LEVEL): close every call, then the AF, without waiting
/// here (nc-ndis-protocol_cl_notify_close_af: blocking in this context deadlocks). SUCCESS when
/// all of it finished before returning, else PENDING and NdisClNotifyCloseAddressFamilyComplete
/// follows.
pub unsafe extern "win64" fn notify_close_af(af_context: NDIS_HANDLE) -> NDIS_STATUS {
    let Some(af) = id(af_context) else { return NDIS_STATUS_FAILURE };
    if with_engine(|e| e.on_notify_close_af(af)).is_err() {
        return NDIS_STATUS_FAILURE;
    }
    drive();
    let status = with_engine(|e| e.finish_notify_close_af(af));
    drive();
    status.0
}

/// ProtocolClMakeCallComplete (<= DISPATCH_LEVEL).
pub unsafe extern "win64" fn make_call_complete(
    status: NDIS_STATUS,
    vc_context: NDIS_HANDLE,
    party_handle: NDIS_HANDLE,
    parameters: *mut CO_CALL_PARAMETERS,
) {
    // SAFETY: the block is ours (built for this MakeCall) and NDIS is done with it.
    let changed = unsafe { release_parameters(parameters) };
    let Some(call) = id(vc_context) else { return };
    let party = if status == NDIS_STATUS_SUCCESS { Handle(party_handle as usize) } else { Handle::NULL };
    let _ = drive_after(|e| e.on_make_call_complete(call, Status(status), party, changed));
}

/// ProtocolClAddPartyComplete (<= DISPATCH_LEVEL).
pub unsafe extern "win64" fn add_party_complete(
    status: NDIS_STATUS,
    party_context: NDIS_HANDLE,
    party_handle: NDIS_HANDLE,
    parameters: *mut CO_CALL_PARAMETERS,
) {
    // SAFETY: as for MakeCall.
    let changed = unsafe { release_parameters(parameters) };
    let Some(party) = id(party_context) else { return };
    let handle = if status == NDIS_STATUS_SUCCESS { Handle(party_handle as usize) } else { Handle::NULL };
    let _ = drive_after(|e| e.on_add_party_complete(party, Status(status), handle, changed));
}

/// ProtocolClDropPartyComplete (<= DISPATCH_LEVEL): the party context is released here and only
/// here (nc-ndis-protocol_cl_drop_party_complete).
pub unsafe extern "win64" fn drop_party_complete(status: NDIS_STATUS, party_context: NDIS_HANDLE) {
    let Some(party) = id(party_context) else { return };
    let _ = drive_after(|e| e.on_drop_party_complete(party, Status(status)));
}

/// ProtocolClCloseCallComplete (<= DISPATCH_LEVEL): then NdisCoDeleteVc.
pub unsafe extern "win64" fn close_call_complete(
    status: NDIS_STATUS,
    vc_context: NDIS_HANDLE,
    _party: NDIS_HANDLE,
) {
    let Some(call) = id(vc_context) else { return };
    let _ = drive_after(|e| e.on_close_call_complete(call, Status(status)));
}

/// ProtocolClIncomingDropParty (<= DISPATCH_LEVEL): answered with NdisClDropParty.
pub unsafe extern "win64" fn incoming_drop_party(
    status: NDIS_STATUS,
    party_context: NDIS_HANDLE,
    _close_data: *mut core::ffi::c_void,
    _size: u32,
) {
    let Some(party) = id(party_context) else { return };
    let _ = drive_after(|e| e.on_incoming_drop_party(party, Status(status)));
}

/// ProtocolClIncomingCloseCall (<= DISPATCH_LEVEL): drop down to one party, NdisClCloseCall, and
/// delete the VC (mandatory when the status is not SUCCESS).
pub unsafe extern "win64" fn incoming_close_call(
    status: NDIS_STATUS,
    vc_context: NDIS_HANDLE,
    _close_data: *mut core::ffi::c_void,
    _size: u32,
) {
    let Some(call) = id(vc_context) else { return };
    let _ = drive_after(|e| e.on_incoming_close_call(call, Status(status)));
}

/// ProtocolCoCreateVc: runs only for VCs a call manager creates for incoming calls, which
/// partyline does not take (it registers no SAP). Never PENDING (nc-ndis-protocol_co_create_vc).
pub unsafe extern "win64" fn create_vc(_: NDIS_HANDLE, _: NDIS_HANDLE, _: *mut NDIS_HANDLE) -> NDIS_STATUS {
    NDIS_STATUS_NOT_SUPPORTED
}

/// ProtocolCoDeleteVc: likewise only for call-manager VCs, of which partyline has none.
pub unsafe extern "win64" fn delete_vc(_: NDIS_HANDLE) -> NDIS_STATUS {
    NDIS_STATUS_NOT_SUPPORTED
}

/// ProtocolCoOidRequest (<= DISPATCH_LEVEL): the call manager's OID_CO_ADDRESS_CHANGE is taken
/// and answered SUCCESS; the AF then queries its own address ([`crate::addresses`]). Every
/// other OID is NDIS_STATUS_NOT_SUPPORTED (nc-ndis-protocol_co_oid_request).
pub unsafe extern "win64" fn oid_request(
    af_context: NDIS_HANDLE,
    _vc_context: NDIS_HANDLE,
    _party_context: NDIS_HANDLE,
    request: *mut NDIS_OID_REQUEST,
) -> NDIS_STATUS {
    // SAFETY: NDIS's arguments, passed on as they came.
    unsafe { crate::addresses::oid_request(af_context, request) }
}

/// ProtocolCoOidRequestComplete (<= DISPATCH_LEVEL): a pended OID_CO_GET_ADDRESSES query
/// finished (nc-ndis-protocol_co_oid_request_complete). Status is the last parameter.
pub unsafe extern "win64" fn oid_request_complete(
    af_context: NDIS_HANDLE,
    _vc_context: NDIS_HANDLE,
    _party_context: NDIS_HANDLE,
    request: *mut NDIS_OID_REQUEST,
    status: NDIS_STATUS,
) {
    // SAFETY: NDIS's arguments: the request is the one partyline passed to NdisCoOidRequest.
    unsafe { crate::addresses::oid_request_complete(af_context, request, status) }
}

/// ProtocolClRegisterSapComplete: partyline registers no SAP.
pub unsafe extern "win64" fn register_sap_complete(
    _: NDIS_STATUS,
    _: NDIS_HANDLE,
    _: *mut CO_SAP,
    _: NDIS_HANDLE,
) {
}

/// ProtocolClDeregisterSapComplete: partyline registers no SAP.
pub unsafe extern "win64" fn deregister_sap_complete(_: NDIS_STATUS, _: NDIS_HANDLE) {}

/// ProtocolClModifyCallQoSComplete: UNI 3.1 has no call modification; never requested.
pub unsafe extern "win64" fn modify_call_qos_complete(
    _: NDIS_STATUS,
    _: NDIS_HANDLE,
    _: *mut CO_CALL_PARAMETERS,
) {
}

/// ProtocolClIncomingCall: partyline takes no incoming calls (nc-ndis-protocol_cl_incoming_call:
/// clients that do not take calls return NDIS_STATUS_NOT_SUPPORTED).
pub unsafe extern "win64" fn incoming_call(
    _: NDIS_HANDLE,
    _: NDIS_HANDLE,
    _: *mut CO_CALL_PARAMETERS,
) -> NDIS_STATUS {
    NDIS_STATUS_NOT_SUPPORTED
}

/// ProtocolClIncomingCallQoSChange: not on UNI 3.1 calls.
pub unsafe extern "win64" fn incoming_call_qos_change(_: NDIS_HANDLE, _: *mut CO_CALL_PARAMETERS) {}

/// ProtocolClCallConnected: only for accepted incoming calls.
pub unsafe extern "win64" fn call_connected(_: NDIS_HANDLE) {}

/// ProtocolCoStatusEx: VC status indications need no action.
pub unsafe extern "win64" fn co_status_ex(_: NDIS_HANDLE, _: NDIS_HANDLE, _: *mut NDIS_STATUS_INDICATION) {}

/// ProtocolCoReceiveNetBufferLists (<= DISPATCH_LEVEL): partyline's VCs are root-to-leaf
/// (transmit) only, so whatever a miniport indicates on one is given straight back through the
/// binding ([`crate::binding::give_back`]; the VC context is not needed for that).
/// nc-ndis-protocol_co_receive_net_buffer_lists.
pub unsafe extern "win64" fn co_receive_net_buffer_lists(
    binding_context: NDIS_HANDLE,
    _vc_context: NDIS_HANDLE,
    lists: *mut NET_BUFFER_LIST,
    count: u32,
    receive_flags: u32,
) {
    crate::binding::give_back(binding_context, lists, count, receive_flags);
}

/// ProtocolCoSendNetBufferListsComplete: partyline sends no data yet.
pub unsafe extern "win64" fn co_send_net_buffer_lists_complete(
    _: NDIS_HANDLE,
    _: *mut NET_BUFFER_LIST,
    _: u32,
) {
}
