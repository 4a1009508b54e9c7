//! NDIS 6 protocol-driver registration, binding and PnP: characteristics, bind/open parameters, handlers.
//!
//! DDI pages: <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_protocol_driver_characteristics>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisregisterprotocoldriver>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndissetoptionalhandlers>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_bind_parameters>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_open_parameters>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/netpnp/ns-netpnp-_net_pnp_event_notification>.
//! Reference: `shared/ndis/condis-reference.md` §2, §3, §7.2.
//!
//! Flow: `DriverEntry` → `NdisRegisterProtocolDriver(characteristics)` → NDIS calls
//! `ProtocolSetOptions`, where the CoNDIS tables of [`crate::co`] are registered with
//! `NdisSetOptionalHandlers` → `ProtocolBindAdapterEx` → `NdisOpenAdapterEx(open parameters)`.

use core::ffi::c_void;

use crate::base::*;
use crate::kernel::{DEVICE_OBJECT, DRIVER_DISPATCH};

/// `NET_BUFFER_LIST`: opaque here. partyline never looks inside one: it hands every list it is
/// indicated straight back with `NdisReturnNetBufferLists`. (On x64 the lists of one indication
/// are linked through `Next`, the first field, at offset 0; the whole structure is 0x160-0x180
/// bytes depending on the NDIS version, per Microsoft's public symbols.)
#[repr(C)]
pub struct NET_BUFFER_LIST {
    _opaque: [u8; 0],
}

// ---- Receive and return flags (WDK ndis.h headers; Microsoft Learn pages below) ------------------
/// `ReceiveFlags` of ProtocolReceiveNetBufferLists / ProtocolCoReceiveNetBufferLists: the handler
/// runs at DISPATCH_LEVEL. <https://learn.microsoft.com/windows-hardware/drivers/network/dispatch-irql-tracking>
pub const NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
/// `ReceiveFlags`: the miniport is low on receive resources; the lists are only lent for the
/// duration of the handler, which must not keep (or return) them. Clear: the protocol owns them
/// until it calls `NdisReturnNetBufferLists`.
/// <https://learn.microsoft.com/windows-hardware/drivers/network/receiving-data-in-protocol-drivers>
pub const NDIS_RECEIVE_FLAGS_RESOURCES: u32 = 0x0000_0002;
/// `ReturnFlags` of `NdisReturnNetBufferLists`: the caller knows it runs at DISPATCH_LEVEL (the one
/// flag its page documents). <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisreturnnetbufferlists>
pub const NDIS_RETURN_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
const _: () = assert!(NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL & NDIS_RECEIVE_FLAGS_RESOURCES == 0);

/// `NDIS_OID_REQUEST`: opaque here.
#[repr(C)]
pub struct NDIS_OID_REQUEST {
    _opaque: [u8; 0],
}
/// `NDIS_STATUS_INDICATION`: opaque here.
#[repr(C)]
pub struct NDIS_STATUS_INDICATION {
    _opaque: [u8; 0],
}

// ---- Handler function types (§2.2; WDK ndis.h role typedefs) -------------------------------------
/// `SET_OPTIONS` (ProtocolSetOptions). Called at PASSIVE inside `NdisRegisterProtocolDriver`.
pub type SET_OPTIONS =
    unsafe extern "win64" fn(NdisDriverHandle: NDIS_HANDLE, DriverContext: NDIS_HANDLE) -> NDIS_STATUS;
/// ProtocolBindAdapterEx. Called at PASSIVE.
pub type PROTOCOL_BIND_ADAPTER_EX = unsafe extern "win64" fn(
    ProtocolDriverContext: NDIS_HANDLE,
    BindContext: NDIS_HANDLE,
    BindParameters: *mut NDIS_BIND_PARAMETERS,
) -> NDIS_STATUS;
/// ProtocolUnbindAdapterEx. Called at PASSIVE; returns SUCCESS or PENDING only.
pub type PROTOCOL_UNBIND_ADAPTER_EX =
    unsafe extern "win64" fn(UnbindContext: NDIS_HANDLE, ProtocolBindingContext: NDIS_HANDLE) -> NDIS_STATUS;
/// ProtocolOpenAdapterCompleteEx. Called at PASSIVE.
pub type PROTOCOL_OPEN_ADAPTER_COMPLETE_EX =
    unsafe extern "win64" fn(ProtocolBindingContext: NDIS_HANDLE, Status: NDIS_STATUS);
/// ProtocolCloseAdapterCompleteEx. Called at PASSIVE.
pub type PROTOCOL_CLOSE_ADAPTER_COMPLETE_EX = unsafe extern "win64" fn(ProtocolBindingContext: NDIS_HANDLE);
/// ProtocolNetPnPEvent. Called at PASSIVE; a NULL binding context means "all bindings".
pub type PROTOCOL_NET_PNP_EVENT = unsafe extern "win64" fn(
    ProtocolBindingContext: NDIS_HANDLE,
    NetPnPEventNotification: *mut NET_PNP_EVENT_NOTIFICATION,
) -> NDIS_STATUS;
/// ProtocolUninstall. Called at PASSIVE.
pub type PROTOCOL_UNINSTALL = unsafe extern "win64" fn();
/// ProtocolOidRequestComplete. Called at <= DISPATCH.
pub type PROTOCOL_OID_REQUEST_COMPLETE = unsafe extern "win64" fn(
    ProtocolBindingContext: NDIS_HANDLE,
    OidRequest: *mut NDIS_OID_REQUEST,
    Status: NDIS_STATUS,
);
/// ProtocolStatusEx. Called at <= DISPATCH.
pub type PROTOCOL_STATUS_EX = unsafe extern "win64" fn(
    ProtocolBindingContext: NDIS_HANDLE,
    StatusIndication: *mut NDIS_STATUS_INDICATION,
);
/// ProtocolReceiveNetBufferLists. Called at <= DISPATCH.
pub type PROTOCOL_RECEIVE_NET_BUFFER_LISTS = unsafe extern "win64" fn(
    ProtocolBindingContext: NDIS_HANDLE,
    NetBufferLists: *mut NET_BUFFER_LIST,
    PortNumber: NDIS_PORT_NUMBER,
    NumberOfNetBufferLists: u32,
    ReceiveFlags: u32,
);
/// ProtocolSendNetBufferListsComplete. Called at <= DISPATCH.
pub type PROTOCOL_SEND_NET_BUFFER_LISTS_COMPLETE = unsafe extern "win64" fn(
    ProtocolBindingContext: NDIS_HANDLE,
    NetBufferList: *mut NET_BUFFER_LIST,
    SendCompleteFlags: u32,
);
/// ProtocolDirectOidRequestComplete. Called at <= DISPATCH.
pub type PROTOCOL_DIRECT_OID_REQUEST_COMPLETE = unsafe extern "win64" fn(
    ProtocolBindingContext: NDIS_HANDLE,
    OidRequest: *mut NDIS_OID_REQUEST,
    Status: NDIS_STATUS,
);

// Slot types, named as the WDK names the pointer typedefs (`typedef SET_OPTIONS (*SET_OPTIONS_HANDLER)`).
pub type SET_OPTIONS_HANDLER = Option<SET_OPTIONS>;
pub type BIND_HANDLER_EX = Option<PROTOCOL_BIND_ADAPTER_EX>;
pub type UNBIND_HANDLER_EX = Option<PROTOCOL_UNBIND_ADAPTER_EX>;
pub type OPEN_ADAPTER_COMPLETE_HANDLER_EX = Option<PROTOCOL_OPEN_ADAPTER_COMPLETE_EX>;
pub type CLOSE_ADAPTER_COMPLETE_HANDLER_EX = Option<PROTOCOL_CLOSE_ADAPTER_COMPLETE_EX>;
pub type NET_PNP_EVENT_HANDLER = Option<PROTOCOL_NET_PNP_EVENT>;
pub type UNINSTALL_PROTOCOL_HANDLER = Option<PROTOCOL_UNINSTALL>;
pub type OID_REQUEST_COMPLETE_HANDLER = Option<PROTOCOL_OID_REQUEST_COMPLETE>;
pub type STATUS_HANDLER_EX = Option<PROTOCOL_STATUS_EX>;
pub type RECEIVE_NET_BUFFER_LISTS_HANDLER = Option<PROTOCOL_RECEIVE_NET_BUFFER_LISTS>;
pub type SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER = Option<PROTOCOL_SEND_NET_BUFFER_LISTS_COMPLETE>;
pub type DIRECT_OID_REQUEST_COMPLETE_HANDLER = Option<PROTOCOL_DIRECT_OID_REQUEST_COMPLETE>;

/// `NDIS_PROTOCOL_DRIVER_CHARACTERISTICS` (WDK ndis.h; x64 offsets from public PDBs, §2.2).
///
/// NDIS requires Bind, Unbind, OpenAdapterComplete and CloseAdapterComplete to be non-NULL, and the
/// docs call ReceiveNetBufferLists / SendNetBufferListsComplete required for protocol drivers;
/// SetOptions, Uninstall, StatusEx and DirectOidRequestComplete may be NULL (a CoNDIS client still
/// needs SetOptions to register its CoNDIS tables). NDIS copies this struct during registration.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_PROTOCOL_DRIVER_CHARACTERISTICS {
    pub Header: NDIS_OBJECT_HEADER,
    pub MajorNdisVersion: u8,
    pub MinorNdisVersion: u8,
    pub MajorDriverVersion: u8,
    pub MinorDriverVersion: u8,
    /// Reserved; set 0.
    pub Flags: u32,
    /// The protocol's service name.
    pub Name: NDIS_STRING,
    pub SetOptionsHandler: SET_OPTIONS_HANDLER,
    pub BindAdapterHandlerEx: BIND_HANDLER_EX,
    pub UnbindAdapterHandlerEx: UNBIND_HANDLER_EX,
    pub OpenAdapterCompleteHandlerEx: OPEN_ADAPTER_COMPLETE_HANDLER_EX,
    pub CloseAdapterCompleteHandlerEx: CLOSE_ADAPTER_COMPLETE_HANDLER_EX,
    pub NetPnPEventHandler: NET_PNP_EVENT_HANDLER,
    pub UninstallHandler: UNINSTALL_PROTOCOL_HANDLER,
    pub OidRequestCompleteHandler: OID_REQUEST_COMPLETE_HANDLER,
    pub StatusHandlerEx: STATUS_HANDLER_EX,
    pub ReceiveNetBufferListsHandler: RECEIVE_NET_BUFFER_LISTS_HANDLER,
    pub SendNetBufferListsCompleteHandler: SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER,
    /// Only in revision 2 (NDIS 6.1+).
    pub DirectOidRequestCompleteHandler: DIRECT_OID_REQUEST_COMPLETE_HANDLER,
}
crate::layout!(NDIS_PROTOCOL_DRIVER_CHARACTERISTICS, size 0x80;
    Header == 0x00, MajorNdisVersion == 0x04, MinorNdisVersion == 0x05,
    MajorDriverVersion == 0x06, MinorDriverVersion == 0x07, Flags == 0x08, Name == 0x10,
    SetOptionsHandler == 0x20, BindAdapterHandlerEx == 0x28, UnbindAdapterHandlerEx == 0x30,
    OpenAdapterCompleteHandlerEx == 0x38, CloseAdapterCompleteHandlerEx == 0x40,
    NetPnPEventHandler == 0x48, UninstallHandler == 0x50, OidRequestCompleteHandler == 0x58,
    StatusHandlerEx == 0x60, ReceiveNetBufferListsHandler == 0x68,
    SendNetBufferListsCompleteHandler == 0x70, DirectOidRequestCompleteHandler == 0x78,
);
/// Through `SendNetBufferListsCompleteHandler`: x64 0x78.
pub const NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_1: u16 =
    crate::sizeof_through_field!(NDIS_PROTOCOL_DRIVER_CHARACTERISTICS, SendNetBufferListsCompleteHandler)
        as u16;
/// Through `DirectOidRequestCompleteHandler`: x64 0x80.
pub const NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2: u16 =
    crate::sizeof_through_field!(NDIS_PROTOCOL_DRIVER_CHARACTERISTICS, DirectOidRequestCompleteHandler)
        as u16;

/// `NDIS_DRIVER_OPTIONAL_HANDLERS` = `{ NDIS_OBJECT_HEADER Header; }`: the common head of every
/// table passed to `NdisSetOptionalHandlers`, which dispatches on `Header.Type`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NDIS_DRIVER_OPTIONAL_HANDLERS {
    pub Header: NDIS_OBJECT_HEADER,
}
crate::layout!(NDIS_DRIVER_OPTIONAL_HANDLERS, size 4; Header == 0);

/// `NDIS_BIND_PARAMETERS`, **prefix only**: the head fields up to `MtuSize` (§3.1). The real
/// structure is much longer (revisions 1-4) and owned by NDIS; only read it through a pointer
/// NDIS gave you, never allocate or copy one from this definition.
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_BIND_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub ProtocolSection: *mut NDIS_STRING,
    pub AdapterName: *mut NDIS_STRING,
    pub PhysicalDeviceObject: *mut DEVICE_OBJECT,
    pub MediaType: NDIS_MEDIUM,
    pub MtuSize: u32,
    // … many more fields follow in the real structure.
}
crate::layout!(NDIS_BIND_PARAMETERS, size 0x28;
    Header == 0x00, ProtocolSection == 0x08, AdapterName == 0x10, PhysicalDeviceObject == 0x18,
    MediaType == 0x20, MtuSize == 0x24,
);

/// `NDIS_OPEN_PARAMETERS` (§3.2). `Header.Size` must be
/// [`NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1`] = 0x34, not `sizeof` = 0x38.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OPEN_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub AdapterName: *mut NDIS_STRING,
    pub MediumArray: *mut NDIS_MEDIUM,
    pub MediumArraySize: u32,
    /// Written by NDIS, possibly after `NdisOpenAdapterEx` returned PENDING: must stay valid.
    pub SelectedMediumIndex: *mut u32,
    pub FrameTypeArray: *mut NET_FRAME_TYPE,
    pub FrameTypeArraySize: u32,
}
crate::layout!(NDIS_OPEN_PARAMETERS, size 0x38;
    Header == 0x00, AdapterName == 0x08, MediumArray == 0x10, MediumArraySize == 0x18,
    SelectedMediumIndex == 0x20, FrameTypeArray == 0x28, FrameTypeArraySize == 0x30,
);
/// Through `FrameTypeArraySize`: x64 **0x34** (tail padding excluded).
pub const NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1: u16 =
    crate::sizeof_through_field!(NDIS_OPEN_PARAMETERS, FrameTypeArraySize) as u16;
/// The header's legacy misspelled alias of [`NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1`].
pub const NDIS_SIZEOF_OPEN_PARAMETERS_REVSION_1: u16 = NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1;

/// `NET_PNP_EVENT_CODE` (netpnp.h, 0-based enum).
pub type NET_PNP_EVENT_CODE = u32;
pub const NetEventSetPower: NET_PNP_EVENT_CODE = 0;
pub const NetEventQueryPower: NET_PNP_EVENT_CODE = 1;
pub const NetEventQueryRemoveDevice: NET_PNP_EVENT_CODE = 2;
pub const NetEventCancelRemoveDevice: NET_PNP_EVENT_CODE = 3;
pub const NetEventReconfigure: NET_PNP_EVENT_CODE = 4;
pub const NetEventBindList: NET_PNP_EVENT_CODE = 5;
pub const NetEventBindsComplete: NET_PNP_EVENT_CODE = 6;
pub const NetEventPnPCapabilities: NET_PNP_EVENT_CODE = 7;
pub const NetEventPause: NET_PNP_EVENT_CODE = 8;
pub const NetEventRestart: NET_PNP_EVENT_CODE = 9;
pub const NetEventPortActivation: NET_PNP_EVENT_CODE = 10;
pub const NetEventPortDeactivation: NET_PNP_EVENT_CODE = 11;
pub const NetEventIMReEnableDevice: NET_PNP_EVENT_CODE = 12;
pub const NetEventNDKEnable: NET_PNP_EVENT_CODE = 13;
pub const NetEventNDKDisable: NET_PNP_EVENT_CODE = 14;
pub const NetEventFilterPreDetach: NET_PNP_EVENT_CODE = 15;
pub const NetEventBindFailed: NET_PNP_EVENT_CODE = 16;
pub const NetEventSwitchActivate: NET_PNP_EVENT_CODE = 17;
pub const NetEventAllowBindsAbove: NET_PNP_EVENT_CODE = 18;
pub const NetEventInhibitBindsAbove: NET_PNP_EVENT_CODE = 19;
pub const NetEventAllowStart: NET_PNP_EVENT_CODE = 20;
pub const NetEventRequirePause: NET_PNP_EVENT_CODE = 21;
pub const NetEventUploadGftFlowEntries: NET_PNP_EVENT_CODE = 22;
pub const NetEventMaximum: NET_PNP_EVENT_CODE = 23;

/// `NET_PNP_EVENT` (netpnp.h): the event code, its buffer, and four reserved `ULONG_PTR[4]` arrays.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_PNP_EVENT {
    pub NetEvent: NET_PNP_EVENT_CODE,
    pub Buffer: *mut c_void,
    pub BufferLength: u32,
    pub NdisReserved: [usize; 4],
    pub TransportReserved: [usize; 4],
    pub TdiReserved: [usize; 4],
    pub TdiClientReserved: [usize; 4],
}
crate::layout!(NET_PNP_EVENT, size 0x98;
    NetEvent == 0x00, Buffer == 0x08, BufferLength == 0x10, NdisReserved == 0x18,
    TransportReserved == 0x38, TdiReserved == 0x58, TdiClientReserved == 0x78,
);

/// `NET_PNP_EVENT_NOTIFICATION` (ndis.h; Header Type [`NDIS_OBJECT_TYPE_DEFAULT`], revision 1).
/// `SwitchId` and `VPortId` exist only when the header is built for NDIS 6.50+; NDIS owns the
/// structure, so read them only when `Header.Size` covers them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_PNP_EVENT_NOTIFICATION {
    pub Header: NDIS_OBJECT_HEADER,
    pub PortNumber: NDIS_PORT_NUMBER,
    pub NetPnPEvent: NET_PNP_EVENT,
    pub Flags: u32,
    pub SwitchId: u32,
    pub VPortId: u32,
}
crate::layout!(NET_PNP_EVENT_NOTIFICATION, size 0xB0;
    Header == 0x00, PortNumber == 0x04, NetPnPEvent == 0x08, Flags == 0xA0, SwitchId == 0xA4,
    VPortId == 0xA8,
);

/// `NDIS_DEVICE_POWER_STATE` (ntddndis.h, C enum, 32-bit): the `Buffer` of NetEventSetPower and
/// NetEventQueryPower (ns-ndis-_net_pnp_event: "the device power state to which the device is
/// transitioning"). For a protocol, only D0 means the adapter can send and receive.
pub type NDIS_DEVICE_POWER_STATE = u32;
pub const NdisDeviceStateUnspecified: NDIS_DEVICE_POWER_STATE = 0;
pub const NdisDeviceStateD0: NDIS_DEVICE_POWER_STATE = 1;
pub const NdisDeviceStateD1: NDIS_DEVICE_POWER_STATE = 2;
pub const NdisDeviceStateD2: NDIS_DEVICE_POWER_STATE = 3;
pub const NdisDeviceStateD3: NDIS_DEVICE_POWER_STATE = 4;
pub const NdisDeviceStateMaximum: NDIS_DEVICE_POWER_STATE = 5;

/// The `Buffer` of NetEventPnPCapabilities is a ULONG bitmask; this bit set means the adapter's
/// wake-up capabilities are enabled (ns-ndis-_net_pnp_event; ntddndis.h).
pub const NDIS_DEVICE_WAKE_UP_ENABLE: u32 = 0x0000_0001;

/// `PauseReason` of [`NDIS_PROTOCOL_PAUSE_PARAMETERS`] (ns-ndis-_ndis_protocol_pause_parameters;
/// deprecated from NDIS 6.40, where it is always `NDIS_PAUSE_NDIS_INTERNAL`).
pub const NDIS_PAUSE_NDIS_INTERNAL: u32 = 0x0000_0001;
pub const NDIS_PAUSE_LOW_POWER: u32 = 0x0000_0002;
pub const NDIS_PAUSE_BIND_PROTOCOL: u32 = 0x0000_0004;
pub const NDIS_PAUSE_UNBIND_PROTOCOL: u32 = 0x0000_0008;

/// `NDIS_PROTOCOL_PAUSE_PARAMETERS`: the `Buffer` of NetEventPause (Header Type
/// [`NDIS_OBJECT_TYPE_DEFAULT`], revision 1). ns-ndis-_ndis_protocol_pause_parameters.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_PROTOCOL_PAUSE_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    /// Reserved.
    pub Flags: u32,
    pub PauseReason: u32,
}
crate::layout!(NDIS_PROTOCOL_PAUSE_PARAMETERS, size 0x0C; Header == 0x00, Flags == 0x04, PauseReason == 0x08);
/// Through `PauseReason`: 0x0C.
pub const NDIS_SIZEOF_PROTOCOL_PAUSE_PARAMETERS_REVISION_1: u16 =
    crate::sizeof_through_field!(NDIS_PROTOCOL_PAUSE_PARAMETERS, PauseReason) as u16;

/// `NET_IFINDEX` (ifdef.h): a network interface index.
pub type NET_IFINDEX = u32;
/// `NET_LUID` (ifdef.h): a union whose `Value` is a ULONG64 (so 8-byte aligned).
pub type NET_LUID = u64;

/// `NDIS_RESTART_ATTRIBUTES`: opaque here; partyline reads nothing in the restart attributes
/// (the list's entries describe offloads and media of connectionless adapters).
#[repr(C)]
pub struct NDIS_RESTART_ATTRIBUTES {
    _opaque: [u8; 0],
}

/// `NDIS_PROTOCOL_RESTART_PARAMETERS`: the `Buffer` of NetEventRestart, or NULL when "the restart
/// attributes have not changed since the previous restart" (ns-ndis-_net_pnp_event). Header
/// Type [`NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS`], revision 1.
/// ns-ndis-_ndis_protocol_restart_parameters.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_PROTOCOL_RESTART_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    /// USHORT length + WCHARs per underlying filter module name, `FilterModuleNameBufferLength`
    /// bytes in all (names not NUL-terminated).
    pub FilterModuleNameBuffer: *mut u8,
    pub FilterModuleNameBufferLength: u32,
    pub RestartAttributes: *mut NDIS_RESTART_ATTRIBUTES,
    pub BoundIfIndex: NET_IFINDEX,
    pub BoundIfNetluid: NET_LUID,
    /// Reserved.
    pub Flags: u32,
}
crate::layout!(NDIS_PROTOCOL_RESTART_PARAMETERS, size 0x38;
    Header == 0x00, FilterModuleNameBuffer == 0x08, FilterModuleNameBufferLength == 0x10,
    RestartAttributes == 0x18, BoundIfIndex == 0x20, BoundIfNetluid == 0x28, Flags == 0x30,
);
/// Through `Flags`: x64 0x34 (tail padding excluded).
pub const NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1: u16 =
    crate::sizeof_through_field!(NDIS_PROTOCOL_RESTART_PARAMETERS, Flags) as u16;

/// `NDIS_DEVICE_OBJECT_ATTRIBUTES` (§7.2), for `NdisRegisterDeviceEx` (documented for miniport and
/// filter handles only; partyline uses `IoCreateDevice` instead).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_DEVICE_OBJECT_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub DeviceName: *mut NDIS_STRING,
    pub SymbolicName: *mut NDIS_STRING,
    pub MajorFunctions: *mut Option<DRIVER_DISPATCH>,
    pub ExtensionSize: u32,
    pub DefaultSDDLString: *const UNICODE_STRING,
    /// Reserved; NULL.
    pub DeviceClassGuid: *const GUID,
}
crate::layout!(NDIS_DEVICE_OBJECT_ATTRIBUTES, size 0x38;
    Header == 0x00, DeviceName == 0x08, SymbolicName == 0x10, MajorFunctions == 0x18,
    ExtensionSize == 0x20, DefaultSDDLString == 0x28, DeviceClassGuid == 0x30,
);
/// Through `DeviceClassGuid`: x64 0x38.
pub const NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1: u16 =
    crate::sizeof_through_field!(NDIS_DEVICE_OBJECT_ATTRIBUTES, DeviceClassGuid) as u16;
