//! DriverEntry, ProtocolSetOptions and DriverUnload: registration as an NDIS 6.30 CoNDIS client.
//!
//! Pages: nf-ndis-ndisregisterprotocoldriver (PASSIVE; NDIS copies the characteristics; handlers
//! may run before it returns), nc-ndis-set_options and network/condis-client-registration
//! (a CoNDIS client calls NdisSetOptionalHandlers twice from ProtocolSetOptions: with
//! NDIS_PROTOCOL_CO_CHARACTERISTICS and with NDIS_CO_CLIENT_OPTIONAL_HANDLERS, every slot set),
//! network/initializing-a-protocol-driver (DriverEntry deregisters if it fails after registering;
//! the unload routine calls NdisDeregisterProtocolDriver, which unbinds every binding).
//!
//! Version: NDIS 6.30 (Windows 8 / Server 2012 and later), the oldest release that still loads
//! NDIS 6 protocols without the NDIS 5 translation layer's era behind it, and the version the
//! NDISPROT sample declares with revision 2 characteristics. CoNDIS exists in every NDIS 6.x.

use crate::{binding, client, global};
use core::cell::UnsafeCell;
use core::ptr;
use ndis_sys::*;

/// The service name NDIS knows the protocol by (the INF's service `partyline`).
static NAME: [u16; 9] = utf16(b"partyline");

const fn utf16<const N: usize>(ascii: &[u8; N]) -> [u16; N] {
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        out[i] = ascii[i] as u16;
        i += 1;
    }
    out
}

const NDIS_MAJOR: u8 = 6;
const NDIS_MINOR: u8 = 30;

/// The optional-handler tables, in writable static storage: whether NDIS copies them is not
/// documented (condis-reference §12), so they live as long as the driver.
struct Tables {
    co: UnsafeCell<NDIS_PROTOCOL_CO_CHARACTERISTICS>,
    client: UnsafeCell<NDIS_CO_CLIENT_OPTIONAL_HANDLERS>,
}

// SAFETY: written only by the compiler's initialiser; NDIS reads them.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables {
    co: UnsafeCell::new(NDIS_PROTOCOL_CO_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_CO_PROTOCOL_CHARACTERISTICS,
            Revision: NDIS_PROTOCOL_CO_CHARACTERISTICS_REVISION_1,
            Size: NDIS_SIZEOF_PROTOCOL_CO_CHARACTERISTICS_REVISION_1,
        },
        Flags: 0,
        CoStatusHandlerEx: Some(client::co_status_ex),
        CoAfRegisterNotifyHandler: Some(client::af_register_notify),
        CoReceiveNetBufferListsHandler: Some(client::co_receive_net_buffer_lists),
        CoSendNetBufferListsCompleteHandler: Some(client::co_send_net_buffer_lists_complete),
    }),
    client: UnsafeCell::new(NDIS_CO_CLIENT_OPTIONAL_HANDLERS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_CO_CLIENT_OPTIONAL_HANDLERS,
            Revision: NDIS_CO_CLIENT_OPTIONAL_HANDLERS_REVISION_1,
            Size: NDIS_SIZEOF_CO_CLIENT_OPTIONAL_HANDLERS_REVISION_1,
        },
        Reserved: 0,
        ClCreateVcHandler: Some(client::create_vc),
        ClDeleteVcHandler: Some(client::delete_vc),
        ClOidRequestHandler: Some(client::oid_request),
        ClOidRequestCompleteHandler: Some(client::oid_request_complete),
        ClOpenAfCompleteHandlerEx: Some(client::open_af_complete),
        ClCloseAfCompleteHandler: Some(client::close_af_complete),
        ClRegisterSapCompleteHandler: Some(client::register_sap_complete),
        ClDeregisterSapCompleteHandler: Some(client::deregister_sap_complete),
        ClMakeCallCompleteHandler: Some(client::make_call_complete),
        ClModifyCallQoSCompleteHandler: Some(client::modify_call_qos_complete),
        ClCloseCallCompleteHandler: Some(client::close_call_complete),
        ClAddPartyCompleteHandler: Some(client::add_party_complete),
        ClDropPartyCompleteHandler: Some(client::drop_party_complete),
        ClIncomingCallHandler: Some(client::incoming_call),
        ClIncomingCallQoSChangeHandler: Some(client::incoming_call_qos_change),
        ClIncomingCloseCallHandler: Some(client::incoming_close_call),
        ClIncomingDropPartyHandler: Some(client::incoming_drop_party),
        ClCallConnectedHandler: Some(client::call_connected),
        ClNotifyCloseAfHandler: Some(client::notify_close_af),
    }),
};

/// DriverEntry (PASSIVE_LEVEL).
#[no_mangle]
pub unsafe extern "win64" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    _registry_path: *mut UNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the I/O manager passes our driver object; PASSIVE_LEVEL.
    let Some(driver) = (unsafe { driver.as_mut() }) else { return STATUS_INVALID_PARAMETER };
    driver.DriverUnload = Some(driver_unload);
    // SAFETY: the lock is in static nonpaged storage and initialised before any handler runs.
    unsafe { NdisAllocateSpinLock(global::lock_pointer()) };

    let mut characteristics = NDIS_PROTOCOL_DRIVER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS,
            Revision: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
            Size: NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
        },
        MajorNdisVersion: NDIS_MAJOR,
        MinorNdisVersion: NDIS_MINOR,
        MajorDriverVersion: 1,
        MinorDriverVersion: 0,
        Flags: 0,
        Name: NDIS_STRING {
            Length: (NAME.len() * 2) as u16,
            MaximumLength: (NAME.len() * 2) as u16,
            Buffer: NAME.as_ptr().cast_mut(),
        },
        SetOptionsHandler: Some(set_options),
        BindAdapterHandlerEx: Some(binding::bind_adapter),
        UnbindAdapterHandlerEx: Some(binding::unbind_adapter),
        OpenAdapterCompleteHandlerEx: Some(binding::open_adapter_complete),
        CloseAdapterCompleteHandlerEx: Some(binding::close_adapter_complete),
        NetPnPEventHandler: Some(binding::net_pnp_event),
        UninstallHandler: Some(binding::uninstall),
        OidRequestCompleteHandler: Some(binding::oid_request_complete),
        StatusHandlerEx: Some(binding::status_ex),
        ReceiveNetBufferListsHandler: Some(binding::receive_net_buffer_lists),
        SendNetBufferListsCompleteHandler: Some(binding::send_net_buffer_lists_complete),
        DirectOidRequestCompleteHandler: Some(binding::direct_oid_request_complete),
    };
    let mut handle: NDIS_HANDLE = ptr::null_mut();
    // SAFETY: PASSIVE (DriverEntry); NDIS copies the characteristics (they may live on the
    // stack); the name is static.
    let status = unsafe { NdisRegisterProtocolDriver(ptr::null_mut(), &mut characteristics, &mut handle) };
    if status != NDIS_STATUS_SUCCESS {
        // SAFETY: allocated above; nothing else uses it.
        unsafe { NdisFreeSpinLock(global::lock_pointer()) };
        return status;
    }
    global::set_protocol_handle(handle);
    // The control device needs pool (hence the protocol handle) for its security descriptor.
    if let Err(status) = crate::device::create(driver) {
        // network/initializing-a-protocol-driver: a DriverEntry that fails after registering
        // deregisters first.
        // SAFETY: PASSIVE, DriverEntry's error path (not an NDIS handler).
        unsafe { NdisDeregisterProtocolDriver(handle) };
        global::set_protocol_handle(ptr::null_mut());
        // SAFETY: no handler can run after deregistration.
        unsafe { NdisFreeSpinLock(global::lock_pointer()) };
        return status;
    }
    STATUS_SUCCESS
}

/// ProtocolSetOptions (PASSIVE_LEVEL, inside NdisRegisterProtocolDriver): register the CoNDIS
/// tables with the driver handle NDIS passes here.
unsafe extern "win64" fn set_options(driver_handle: NDIS_HANDLE, _context: NDIS_HANDLE) -> NDIS_STATUS {
    global::set_protocol_handle(driver_handle);
    for table in [TABLES.co.get().cast::<NDIS_DRIVER_OPTIONAL_HANDLERS>(), TABLES.client.get().cast()] {
        // SAFETY: PASSIVE, inside ProtocolSetOptions with the handle NDIS gave it; the tables
        // are static and start with their NDIS_OBJECT_HEADER, on which NDIS dispatches.
        let status = unsafe { NdisSetOptionalHandlers(driver_handle, table) };
        if status != NDIS_STATUS_SUCCESS {
            return status;
        }
    }
    NDIS_STATUS_SUCCESS
}

/// DriverUnload (PASSIVE_LEVEL): NdisDeregisterProtocolDriver unbinds every binding (each
/// unbind closes its calls and address families), then the engine's memory goes back to pool.
unsafe extern "win64" fn driver_unload(_driver: *mut DRIVER_OBJECT) {
    // No more requests from user mode (as NDISPROT: the device goes before the protocol).
    crate::device::delete();
    let handle = global::protocol_handle();
    if !handle.is_null() {
        // SAFETY: PASSIVE, from the unload routine (never from an NDIS handler: deadlock).
        unsafe { NdisDeregisterProtocolDriver(handle) };
    }
    // The tables' memory goes back to pool one block at a time: freeing calls into NDIS, so it
    // happens with the lock released.
    while let Some(memory) = global::with_engine(|e| e.take_one_memory()) {
        crate::pool::give_back(memory);
    }
    global::set_protocol_handle(ptr::null_mut());
    // SAFETY: no handler can run any more (deregistration returned).
    unsafe { NdisFreeSpinLock(global::lock_pointer()) };
}
