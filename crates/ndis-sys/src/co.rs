//! CoNDIS client structures and handlers: address families, VCs, calls, parties, call parameters.
//!
//! DDI pages: <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_protocol_co_characteristics>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_co_client_optional_handlers>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclopenaddressfamilyex>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclmakecall>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscladdparty>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscldropparty>,
//! <https://learn.microsoft.com/previous-versions/windows/hardware/network/ff545384(v=vs.85)> (CO_CALL_PARAMETERS).
//! Reference: `shared/ndis/condis-reference.md` §2.4, §2.5, §4, §5, §6.
//!
//! Flow: in ProtocolSetOptions register [`NDIS_PROTOCOL_CO_CHARACTERISTICS`] and
//! [`NDIS_CO_CLIENT_OPTIONAL_HANDLERS`] with `NdisSetOptionalHandlers`; ProtocolCoAfRegisterNotify
//! → `NdisClOpenAddressFamilyEx`; `NdisCoCreateVc` → `NdisClMakeCall` (with a party context for a
//! multipoint call) → `NdisClAddParty` / `NdisClDropParty` → `NdisClCloseCall` → `NdisCoDeleteVc`.
//!
//! Status position differs: [`PROTOCOL_CL_OPEN_AF_COMPLETE_EX`] takes `(context, handle, status)`
//! and [`PROTOCOL_CO_OID_REQUEST_COMPLETE`] ends with the status, while every other
//! `ProtocolCl*Complete` starts with it.

use core::ffi::c_void;

use crate::base::*;
use crate::protocol::{NDIS_OID_REQUEST, NDIS_STATUS_INDICATION, NET_BUFFER_LIST};

// ---- Address families (§4.1) --------------------------------------------------------------------
pub const CO_ADDRESS_FAMILY_Q2931: NDIS_AF = 0x1;
pub const CO_ADDRESS_FAMILY_PSCHED: NDIS_AF = 0x2;
pub const CO_ADDRESS_FAMILY_L2TP: NDIS_AF = 0x3;
pub const CO_ADDRESS_FAMILY_IRDA: NDIS_AF = 0x4;
pub const CO_ADDRESS_FAMILY_1394: NDIS_AF = 0x5;
pub const CO_ADDRESS_FAMILY_PPP: NDIS_AF = 0x6;
pub const CO_ADDRESS_FAMILY_INFINIBAND: NDIS_AF = 0x7;
pub const CO_ADDRESS_FAMILY_TAPI: NDIS_AF = 0x800;
pub const CO_ADDRESS_FAMILY_TAPI_PROXY: NDIS_AF = 0x801;
/// ORed with the base AF to signal proxy support.
pub const CO_ADDRESS_FAMILY_PROXY: NDIS_AF = 0x8000_0000;

/// `CO_ADDRESS_FAMILY` (12 bytes, align 4). Major/minor are the call manager's version (UNI 3.1
/// call managers register Q2931 3.1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CO_ADDRESS_FAMILY {
    pub AddressFamily: NDIS_AF,
    pub MajorVersion: u32,
    pub MinorVersion: u32,
}
crate::layout!(CO_ADDRESS_FAMILY, size 12; AddressFamily == 0, MajorVersion == 4, MinorVersion == 8);

/// `CO_SAP` = `{ ULONG SapType; ULONG SapLength; UCHAR Sap[1]; }` (variable length).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CO_SAP {
    pub SapType: u32,
    pub SapLength: u32,
    pub Sap: [u8; 1],
}
crate::layout!(CO_SAP, size 12; SapType == 0, SapLength == 4, Sap == 8);

// ---- Addresses of the call manager (CoNDIS OIDs, ntddndis.h) -----------------------------------
// The call manager sends OID_CO_ADDRESS_CHANGE to each client right after the client opens an
// address family and whenever its switch address changes; the client must then query
// OID_CO_GET_ADDRESSES, answered with a CO_ADDRESS_LIST.
// <https://learn.microsoft.com/windows-hardware/drivers/network/oid-co-address-change>,
// <https://learn.microsoft.com/windows-hardware/drivers/network/oid-co-get-addresses>.
pub const OID_CO_ADD_PVC: u32 = 0xFE00_0001;
pub const OID_CO_DELETE_PVC: u32 = 0xFE00_0002;
pub const OID_CO_GET_CALL_INFORMATION: u32 = 0xFE00_0003;
pub const OID_CO_ADD_ADDRESS: u32 = 0xFE00_0004;
pub const OID_CO_DELETE_ADDRESS: u32 = 0xFE00_0005;
pub const OID_CO_GET_ADDRESSES: u32 = 0xFE00_0006;
pub const OID_CO_ADDRESS_CHANGE: u32 = 0xFE00_0007;
pub const OID_CO_SIGNALING_ENABLED: u32 = 0xFE00_0008;
pub const OID_CO_SIGNALING_DISABLED: u32 = 0xFE00_0009;
pub const OID_CO_AF_CLOSE: u32 = 0xFE00_000A;

/// `CO_ADDRESS` = `{ ULONG AddressSize; UCHAR Address[1]; }` (variable length): `AddressSize`
/// bytes of an address in the call manager's format — for the ATM call manager an
/// [`crate::atm::ATM_ADDRESS`] (atm-call-params.md §3: the calling party is the client's own
/// registered address).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CO_ADDRESS {
    pub AddressSize: u32,
    pub Address: [u8; 1],
}
crate::layout!(CO_ADDRESS, size 8; AddressSize == 0, Address == 4);

/// `CO_ADDRESS_LIST` = `{ ULONG NumberOfAddressesAvailable; ULONG NumberOfAddresses; CO_ADDRESS
/// AddressList; }`: the answer to OID_CO_GET_ADDRESSES. The entries follow one another, each
/// `CO_ADDRESS` of the call manager's fixed address size; the buffer holds room for
/// `NumberOfAddressesAvailable` of them, `NumberOfAddresses` are written.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CO_ADDRESS_LIST {
    pub NumberOfAddressesAvailable: u32,
    pub NumberOfAddresses: u32,
    pub AddressList: CO_ADDRESS,
}
crate::layout!(CO_ADDRESS_LIST, size 16; NumberOfAddressesAvailable == 0, NumberOfAddresses == 4, AddressList == 8);

/// Bytes of one ATM call manager `CO_ADDRESS` entry: `AddressSize` then an `ATM_ADDRESS`.
pub const CO_ADDRESS_ATM_ENTRY_SIZE: usize =
    core::mem::offset_of!(CO_ADDRESS, Address) + core::mem::size_of::<crate::atm::ATM_ADDRESS>();
const _: () = assert!(CO_ADDRESS_ATM_ENTRY_SIZE == 32);

// ---- QoS (SDK qos.h) ----------------------------------------------------------------------------
/// `SERVICETYPE` (`ULONG`).
pub type SERVICETYPE = u32;
pub const SERVICETYPE_NOTRAFFIC: SERVICETYPE = 0x0000_0000;
pub const SERVICETYPE_BESTEFFORT: SERVICETYPE = 0x0000_0001;
pub const SERVICETYPE_CONTROLLEDLOAD: SERVICETYPE = 0x0000_0002;
pub const SERVICETYPE_GUARANTEED: SERVICETYPE = 0x0000_0003;
pub const SERVICETYPE_NETWORK_UNAVAILABLE: SERVICETYPE = 0x0000_0004;
pub const SERVICETYPE_GENERAL_INFORMATION: SERVICETYPE = 0x0000_0005;
pub const SERVICETYPE_NOCHANGE: SERVICETYPE = 0x0000_0006;
pub const SERVICETYPE_NONCONFORMING: SERVICETYPE = 0x0000_0009;
pub const SERVICETYPE_NETWORK_CONTROL: SERVICETYPE = 0x0000_000A;
pub const SERVICETYPE_QUALITATIVE: SERVICETYPE = 0x0000_000D;
pub const SERVICE_NO_TRAFFIC_CONTROL: SERVICETYPE = 0x8100_0000;
pub const SERVICE_NO_QOS_SIGNALING: SERVICETYPE = 0x4000_0000;
/// FLOWSPEC field value meaning "not specified".
pub const QOS_NOT_SPECIFIED: u32 = 0xFFFF_FFFF;
pub const POSITIVE_INFINITY_RATE: u32 = 0xFFFF_FFFE;

/// `FLOWSPEC` (qos.h): 8 × `ULONG`, rates in bytes per second.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FLOWSPEC {
    pub TokenRate: u32,
    pub TokenBucketSize: u32,
    pub PeakBandwidth: u32,
    pub Latency: u32,
    pub DelayVariation: u32,
    pub ServiceType: SERVICETYPE,
    pub MaxSduSize: u32,
    pub MinimumPolicedSize: u32,
}
crate::layout!(FLOWSPEC, size 32;
    TokenRate == 0, TokenBucketSize == 4, PeakBandwidth == 8, Latency == 12, DelayVariation == 16,
    ServiceType == 20, MaxSduSize == 24, MinimumPolicedSize == 28,
);

// ---- Call parameters (§5.3) ---------------------------------------------------------------------
/// `CO_SPECIFIC_PARAMETERS` = `{ ULONG ParamType; ULONG Length; UCHAR Parameters[1]; }`;
/// `Length` bytes of medium- or call-manager-specific data start at `Parameters`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CO_SPECIFIC_PARAMETERS {
    pub ParamType: u32,
    pub Length: u32,
    pub Parameters: [u8; 1],
}
crate::layout!(CO_SPECIFIC_PARAMETERS, size 12; ParamType == 0, Length == 4, Parameters == 8);

/// `CO_CALL_MANAGER_PARAMETERS`: FLOWSPECs embedded **by value** (the old Learn page says
/// "pointer"; the header embeds them), then a variable-length `CallMgrSpecific` (no
/// `POINTER_ALIGNMENT` here: offset 0x40 on every architecture).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CO_CALL_MANAGER_PARAMETERS {
    pub Transmit: FLOWSPEC,
    pub Receive: FLOWSPEC,
    pub CallMgrSpecific: CO_SPECIFIC_PARAMETERS,
}
crate::layout!(CO_CALL_MANAGER_PARAMETERS, size 0x4C;
    Transmit == 0x00, Receive == 0x20, CallMgrSpecific == 0x40, CallMgrSpecific.Parameters == 0x48,
);

// CO_MEDIA_PARAMETERS.Flags (ndis.h).
pub const RECEIVE_TIME_INDICATION: u32 = 0x0000_0001;
pub const USE_TIME_STAMPS: u32 = 0x0000_0002;
pub const TRANSMIT_VC: u32 = 0x0000_0004;
pub const RECEIVE_VC: u32 = 0x0000_0008;
pub const INDICATE_ERRED_PACKETS: u32 = 0x0000_0010;
pub const INDICATE_END_OF_TX: u32 = 0x0000_0020;
pub const RESERVE_RESOURCES_VC: u32 = 0x0000_0040;
pub const ROUND_DOWN_FLOW: u32 = 0x0000_0080;
pub const ROUND_UP_FLOW: u32 = 0x0000_0100;

/// `CO_MEDIA_PARAMETERS`.
///
/// **x64 alignment:** the WDK declares `CO_SPECIFIC_PARAMETERS POINTER_ALIGNMENT MediaSpecific;`
/// and `POINTER_ALIGNMENT` is `DECLSPEC_ALIGN(8)` on `_WIN64`, so on x64 `MediaSpecific` sits at
/// **0x10** and `sizeof` is **0x20** (confirmed by the x64 PDB layout, condis-reference §5.3).
/// MinGW-w64's `ddk/ndis.h` omits `POINTER_ALIGNMENT` and gets 0x0C / 0x18, which is wrong for x64
/// NDIS; `tests/mingw_crosscheck.rs` pins that disagreement. Rust cannot align one field, so the
/// 64-bit layout has an explicit 4-byte `PointerAlignmentPadding` and the struct is 8-aligned;
/// 32-bit targets keep the x86 layout (0x0C / 0x18).
#[cfg_attr(target_pointer_width = "64", repr(C, align(8)))]
#[cfg_attr(not(target_pointer_width = "64"), repr(C))]
#[derive(Clone, Copy, Debug, Default)]
pub struct CO_MEDIA_PARAMETERS {
    pub Flags: u32,
    pub ReceivePriority: u32,
    pub ReceiveSizeHint: u32,
    /// Not a header field: the hole `POINTER_ALIGNMENT` leaves before `MediaSpecific` on x64.
    #[cfg(target_pointer_width = "64")]
    pub PointerAlignmentPadding: u32,
    pub MediaSpecific: CO_SPECIFIC_PARAMETERS,
}
crate::layout!(CO_MEDIA_PARAMETERS, size 0x20;
    Flags == 0x00, ReceivePriority == 0x04, ReceiveSizeHint == 0x08, MediaSpecific == 0x10,
    MediaSpecific.Parameters == 0x18,
);

// CO_CALL_PARAMETERS.Flags (ndis.h).
pub const PERMANENT_VC: u32 = 0x0000_0001;
/// Set by the call manager when it changed the caller's parameters; never set by the client.
pub const CALL_PARAMETERS_CHANGED: u32 = 0x0000_0002;
pub const QUERY_CALL_PARAMETERS: u32 = 0x0000_0004;
pub const BROADCAST_VC: u32 = 0x0000_0008;
/// Point-to-multipoint marker. At the NDIS level a call is multipoint because `NdisClMakeCall`
/// got a non-NULL `ProtocolPartyContext`; set this flag as well for PMP calls.
pub const MULTIPOINT_VC: u32 = 0x0000_0010;

/// `CO_CALL_PARAMETERS`. Must stay valid until the matching completion runs; the call manager
/// may modify it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CO_CALL_PARAMETERS {
    pub Flags: u32,
    pub CallMgrParameters: *mut CO_CALL_MANAGER_PARAMETERS,
    pub MediaParameters: *mut CO_MEDIA_PARAMETERS,
}
crate::layout!(CO_CALL_PARAMETERS, size 0x18; Flags == 0x00, CallMgrParameters == 0x08, MediaParameters == 0x10);

/// `CO_PVC` = `{ NDIS_HANDLE NdisAfHandle; CO_SPECIFIC_PARAMETERS PvcParameters; }`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CO_PVC {
    pub NdisAfHandle: NDIS_HANDLE,
    pub PvcParameters: CO_SPECIFIC_PARAMETERS,
}
crate::layout!(CO_PVC, size 0x18; NdisAfHandle == 0, PvcParameters == 8);

// ---- NDIS_PROTOCOL_CO_CHARACTERISTICS handlers (§2.4) -------------------------------------------
/// ProtocolCoStatusEx. Called at <= DISPATCH.
pub type PROTOCOL_CO_STATUS_EX = unsafe extern "win64" fn(
    ProtocolBindingContext: NDIS_HANDLE,
    ProtocolVcContext: NDIS_HANDLE,
    StatusIndication: *mut NDIS_STATUS_INDICATION,
);
/// ProtocolCoAfRegisterNotify. Called at **PASSIVE**.
pub type PROTOCOL_CO_AF_REGISTER_NOTIFY =
    unsafe extern "win64" fn(ProtocolBindingContext: NDIS_HANDLE, AddressFamily: *mut CO_ADDRESS_FAMILY);
/// ProtocolCoReceiveNetBufferLists. Called at <= DISPATCH.
pub type PROTOCOL_CO_RECEIVE_NET_BUFFER_LISTS = unsafe extern "win64" fn(
    ProtocolBindingContext: NDIS_HANDLE,
    ProtocolVcContext: NDIS_HANDLE,
    NetBufferLists: *mut NET_BUFFER_LIST,
    NumberOfNetBufferLists: u32,
    ReceiveFlags: u32,
);
/// ProtocolCoSendNetBufferListsComplete. Called at <= DISPATCH.
pub type PROTOCOL_CO_SEND_NET_BUFFER_LISTS_COMPLETE = unsafe extern "win64" fn(
    ProtocolVcContext: NDIS_HANDLE,
    NetBufferLists: *mut NET_BUFFER_LIST,
    SendCompleteFlags: u32,
);
pub type CO_STATUS_HANDLER_EX = Option<PROTOCOL_CO_STATUS_EX>;
pub type CO_AF_REGISTER_NOTIFY_HANDLER = Option<PROTOCOL_CO_AF_REGISTER_NOTIFY>;
pub type CO_RECEIVE_NET_BUFFER_LISTS_HANDLER = Option<PROTOCOL_CO_RECEIVE_NET_BUFFER_LISTS>;
pub type CO_SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER = Option<PROTOCOL_CO_SEND_NET_BUFFER_LISTS_COMPLETE>;

/// `NDIS_PROTOCOL_CO_CHARACTERISTICS` (Header Type [`NDIS_OBJECT_TYPE_CO_PROTOCOL_CHARACTERISTICS`]).
/// Registered by every CoNDIS protocol from ProtocolSetOptions. Whether NDIS copies it is
/// unconfirmed: keep it in static storage.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_PROTOCOL_CO_CHARACTERISTICS {
    pub Header: NDIS_OBJECT_HEADER,
    /// Reserved; 0.
    pub Flags: u32,
    pub CoStatusHandlerEx: CO_STATUS_HANDLER_EX,
    pub CoAfRegisterNotifyHandler: CO_AF_REGISTER_NOTIFY_HANDLER,
    pub CoReceiveNetBufferListsHandler: CO_RECEIVE_NET_BUFFER_LISTS_HANDLER,
    pub CoSendNetBufferListsCompleteHandler: CO_SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER,
}
crate::layout!(NDIS_PROTOCOL_CO_CHARACTERISTICS, size 0x28;
    Header == 0x00, Flags == 0x04, CoStatusHandlerEx == 0x08, CoAfRegisterNotifyHandler == 0x10,
    CoReceiveNetBufferListsHandler == 0x18, CoSendNetBufferListsCompleteHandler == 0x20,
);
/// Through `CoSendNetBufferListsCompleteHandler`: x64 0x28.
pub const NDIS_SIZEOF_PROTOCOL_CO_CHARACTERISTICS_REVISION_1: u16 =
    crate::sizeof_through_field!(NDIS_PROTOCOL_CO_CHARACTERISTICS, CoSendNetBufferListsCompleteHandler)
        as u16;

// ---- NDIS_CO_CLIENT_OPTIONAL_HANDLERS handlers (§2.5, §4, §5, §6) ---------------------------------
/// ProtocolCoCreateVc (client side runs only for call-manager-created VCs). Called at <= DISPATCH;
/// never returns PENDING.
pub type PROTOCOL_CO_CREATE_VC = unsafe extern "win64" fn(
    ProtocolAfContext: NDIS_HANDLE,
    NdisVcHandle: NDIS_HANDLE,
    ProtocolVcContext: *mut NDIS_HANDLE,
) -> NDIS_STATUS;
/// ProtocolCoDeleteVc. Called at <= DISPATCH; never returns PENDING.
pub type PROTOCOL_CO_DELETE_VC = unsafe extern "win64" fn(ProtocolVcContext: NDIS_HANDLE) -> NDIS_STATUS;
/// ProtocolCoOidRequest. Called at <= DISPATCH.
pub type PROTOCOL_CO_OID_REQUEST = unsafe extern "win64" fn(
    ProtocolAfContext: NDIS_HANDLE,
    ProtocolVcContext: NDIS_HANDLE,
    ProtocolPartyContext: NDIS_HANDLE,
    OidRequest: *mut NDIS_OID_REQUEST,
) -> NDIS_STATUS;
/// ProtocolCoOidRequestComplete. Called at <= DISPATCH. Status is **last**.
pub type PROTOCOL_CO_OID_REQUEST_COMPLETE = unsafe extern "win64" fn(
    ProtocolAfContext: NDIS_HANDLE,
    ProtocolVcContext: NDIS_HANDLE,
    ProtocolPartyContext: NDIS_HANDLE,
    OidRequest: *mut NDIS_OID_REQUEST,
    Status: NDIS_STATUS,
);
/// ProtocolClOpenAfCompleteEx. Called at **PASSIVE**. Status is **last** (unlike NDIS 5's
/// `PROTOCOL_CL_OPEN_AF_COMPLETE`); `NdisAfHandle` is NULL unless Status is SUCCESS.
pub type PROTOCOL_CL_OPEN_AF_COMPLETE_EX =
    unsafe extern "win64" fn(ProtocolAfContext: NDIS_HANDLE, NdisAfHandle: NDIS_HANDLE, Status: NDIS_STATUS);
/// ProtocolClCloseAfComplete. Called at <= DISPATCH.
pub type PROTOCOL_CL_CLOSE_AF_COMPLETE =
    unsafe extern "win64" fn(Status: NDIS_STATUS, ProtocolAfContext: NDIS_HANDLE);
/// ProtocolClRegisterSapComplete. Called at <= DISPATCH.
pub type PROTOCOL_CL_REGISTER_SAP_COMPLETE = unsafe extern "win64" fn(
    Status: NDIS_STATUS,
    ProtocolSapContext: NDIS_HANDLE,
    Sap: *mut CO_SAP,
    NdisSapHandle: NDIS_HANDLE,
);
/// ProtocolClDeregisterSapComplete. Called at <= DISPATCH.
pub type PROTOCOL_CL_DEREGISTER_SAP_COMPLETE =
    unsafe extern "win64" fn(Status: NDIS_STATUS, ProtocolSapContext: NDIS_HANDLE);
/// ProtocolClMakeCallComplete. Called at <= DISPATCH. `NdisPartyHandle` only for multipoint calls.
pub type PROTOCOL_CL_MAKE_CALL_COMPLETE = unsafe extern "win64" fn(
    Status: NDIS_STATUS,
    ProtocolVcContext: NDIS_HANDLE,
    NdisPartyHandle: NDIS_HANDLE,
    CallParameters: *mut CO_CALL_PARAMETERS,
);
/// ProtocolClModifyCallQoSComplete. Called at <= DISPATCH.
pub type PROTOCOL_CL_MODIFY_CALL_QOS_COMPLETE = unsafe extern "win64" fn(
    Status: NDIS_STATUS,
    ProtocolVcContext: NDIS_HANDLE,
    CallParameters: *mut CO_CALL_PARAMETERS,
);
/// ProtocolClCloseCallComplete. Called at <= DISPATCH. `ProtocolPartyContext` is non-NULL only for
/// the last party of a client-created multipoint VC.
pub type PROTOCOL_CL_CLOSE_CALL_COMPLETE = unsafe extern "win64" fn(
    Status: NDIS_STATUS,
    ProtocolVcContext: NDIS_HANDLE,
    ProtocolPartyContext: NDIS_HANDLE,
);
/// ProtocolClAddPartyComplete. Called at <= DISPATCH.
pub type PROTOCOL_CL_ADD_PARTY_COMPLETE = unsafe extern "win64" fn(
    Status: NDIS_STATUS,
    ProtocolPartyContext: NDIS_HANDLE,
    NdisPartyHandle: NDIS_HANDLE,
    CallParameters: *mut CO_CALL_PARAMETERS,
);
/// ProtocolClDropPartyComplete. Called at <= DISPATCH. FAILURE means "last party: use
/// NdisClCloseCall".
pub type PROTOCOL_CL_DROP_PARTY_COMPLETE =
    unsafe extern "win64" fn(Status: NDIS_STATUS, ProtocolPartyContext: NDIS_HANDLE);
/// ProtocolClIncomingCall. Called at <= DISPATCH. Clients that take no calls return
/// `NDIS_STATUS_NOT_SUPPORTED`.
pub type PROTOCOL_CL_INCOMING_CALL = unsafe extern "win64" fn(
    ProtocolSapContext: NDIS_HANDLE,
    ProtocolVcContext: NDIS_HANDLE,
    CallParameters: *mut CO_CALL_PARAMETERS,
) -> NDIS_STATUS;
/// ProtocolClIncomingCallQoSChange. Called at <= DISPATCH.
pub type PROTOCOL_CL_INCOMING_CALL_QOS_CHANGE =
    unsafe extern "win64" fn(ProtocolVcContext: NDIS_HANDLE, CallParameters: *mut CO_CALL_PARAMETERS);
/// ProtocolClIncomingCloseCall. Called at <= DISPATCH; the handler must call `NdisClCloseCall`.
pub type PROTOCOL_CL_INCOMING_CLOSE_CALL = unsafe extern "win64" fn(
    CloseStatus: NDIS_STATUS,
    ProtocolVcContext: NDIS_HANDLE,
    CloseData: *mut c_void,
    Size: u32,
);
/// ProtocolClIncomingDropParty. Called at <= DISPATCH; the handler must call `NdisClDropParty`.
pub type PROTOCOL_CL_INCOMING_DROP_PARTY = unsafe extern "win64" fn(
    DropStatus: NDIS_STATUS,
    ProtocolPartyContext: NDIS_HANDLE,
    CloseData: *mut c_void,
    Size: u32,
);
/// ProtocolClCallConnected. Called at <= DISPATCH.
pub type PROTOCOL_CL_CALL_CONNECTED = unsafe extern "win64" fn(ProtocolVcContext: NDIS_HANDLE);
/// ProtocolClNotifyCloseAf. Called at <= DISPATCH.
pub type PROTOCOL_CL_NOTIFY_CLOSE_AF = unsafe extern "win64" fn(ClientAfContext: NDIS_HANDLE) -> NDIS_STATUS;

pub type CO_CREATE_VC_HANDLER = Option<PROTOCOL_CO_CREATE_VC>;
pub type CO_DELETE_VC_HANDLER = Option<PROTOCOL_CO_DELETE_VC>;
pub type CO_OID_REQUEST_HANDLER = Option<PROTOCOL_CO_OID_REQUEST>;
pub type CO_OID_REQUEST_COMPLETE_HANDLER = Option<PROTOCOL_CO_OID_REQUEST_COMPLETE>;
pub type CL_OPEN_AF_COMPLETE_HANDLER_EX = Option<PROTOCOL_CL_OPEN_AF_COMPLETE_EX>;
pub type CL_CLOSE_AF_COMPLETE_HANDLER = Option<PROTOCOL_CL_CLOSE_AF_COMPLETE>;
pub type CL_REG_SAP_COMPLETE_HANDLER = Option<PROTOCOL_CL_REGISTER_SAP_COMPLETE>;
pub type CL_DEREG_SAP_COMPLETE_HANDLER = Option<PROTOCOL_CL_DEREGISTER_SAP_COMPLETE>;
pub type CL_MAKE_CALL_COMPLETE_HANDLER = Option<PROTOCOL_CL_MAKE_CALL_COMPLETE>;
pub type CL_MODIFY_CALL_QOS_COMPLETE_HANDLER = Option<PROTOCOL_CL_MODIFY_CALL_QOS_COMPLETE>;
pub type CL_CLOSE_CALL_COMPLETE_HANDLER = Option<PROTOCOL_CL_CLOSE_CALL_COMPLETE>;
pub type CL_ADD_PARTY_COMPLETE_HANDLER = Option<PROTOCOL_CL_ADD_PARTY_COMPLETE>;
pub type CL_DROP_PARTY_COMPLETE_HANDLER = Option<PROTOCOL_CL_DROP_PARTY_COMPLETE>;
pub type CL_INCOMING_CALL_HANDLER = Option<PROTOCOL_CL_INCOMING_CALL>;
pub type CL_INCOMING_CALL_QOS_CHANGE_HANDLER = Option<PROTOCOL_CL_INCOMING_CALL_QOS_CHANGE>;
pub type CL_INCOMING_CLOSE_CALL_HANDLER = Option<PROTOCOL_CL_INCOMING_CLOSE_CALL>;
pub type CL_INCOMING_DROP_PARTY_HANDLER = Option<PROTOCOL_CL_INCOMING_DROP_PARTY>;
pub type CL_CALL_CONNECTED_HANDLER = Option<PROTOCOL_CL_CALL_CONNECTED>;
pub type CL_NOTIFY_CLOSE_AF_HANDLER = Option<PROTOCOL_CL_NOTIFY_CLOSE_AF>;

/// `NDIS_CO_CLIENT_OPTIONAL_HANDLERS` (Header Type [`NDIS_OBJECT_TYPE_CO_CLIENT_OPTIONAL_HANDLERS`]).
///
/// **Every slot must be non-NULL**, even for unsupported features (incoming calls, SAPs):
/// stubs return `NDIS_STATUS_NOT_SUPPORTED` or just return
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_co_client_optional_handlers>).
/// The slots are `Option` so that a missing handler is a detectable `None` (the simulator rejects
/// it) rather than undefined behaviour. Keep the table in static storage.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_CO_CLIENT_OPTIONAL_HANDLERS {
    pub Header: NDIS_OBJECT_HEADER,
    /// Set 0.
    pub Reserved: u32,
    pub ClCreateVcHandler: CO_CREATE_VC_HANDLER,
    pub ClDeleteVcHandler: CO_DELETE_VC_HANDLER,
    pub ClOidRequestHandler: CO_OID_REQUEST_HANDLER,
    pub ClOidRequestCompleteHandler: CO_OID_REQUEST_COMPLETE_HANDLER,
    pub ClOpenAfCompleteHandlerEx: CL_OPEN_AF_COMPLETE_HANDLER_EX,
    pub ClCloseAfCompleteHandler: CL_CLOSE_AF_COMPLETE_HANDLER,
    pub ClRegisterSapCompleteHandler: CL_REG_SAP_COMPLETE_HANDLER,
    pub ClDeregisterSapCompleteHandler: CL_DEREG_SAP_COMPLETE_HANDLER,
    pub ClMakeCallCompleteHandler: CL_MAKE_CALL_COMPLETE_HANDLER,
    pub ClModifyCallQoSCompleteHandler: CL_MODIFY_CALL_QOS_COMPLETE_HANDLER,
    pub ClCloseCallCompleteHandler: CL_CLOSE_CALL_COMPLETE_HANDLER,
    pub ClAddPartyCompleteHandler: CL_ADD_PARTY_COMPLETE_HANDLER,
    pub ClDropPartyCompleteHandler: CL_DROP_PARTY_COMPLETE_HANDLER,
    pub ClIncomingCallHandler: CL_INCOMING_CALL_HANDLER,
    pub ClIncomingCallQoSChangeHandler: CL_INCOMING_CALL_QOS_CHANGE_HANDLER,
    pub ClIncomingCloseCallHandler: CL_INCOMING_CLOSE_CALL_HANDLER,
    pub ClIncomingDropPartyHandler: CL_INCOMING_DROP_PARTY_HANDLER,
    pub ClCallConnectedHandler: CL_CALL_CONNECTED_HANDLER,
    pub ClNotifyCloseAfHandler: CL_NOTIFY_CLOSE_AF_HANDLER,
}
crate::layout!(NDIS_CO_CLIENT_OPTIONAL_HANDLERS, size 0xA0;
    Header == 0x00, Reserved == 0x04, ClCreateVcHandler == 0x08, ClDeleteVcHandler == 0x10,
    ClOidRequestHandler == 0x18, ClOidRequestCompleteHandler == 0x20,
    ClOpenAfCompleteHandlerEx == 0x28, ClCloseAfCompleteHandler == 0x30,
    ClRegisterSapCompleteHandler == 0x38, ClDeregisterSapCompleteHandler == 0x40,
    ClMakeCallCompleteHandler == 0x48, ClModifyCallQoSCompleteHandler == 0x50,
    ClCloseCallCompleteHandler == 0x58, ClAddPartyCompleteHandler == 0x60,
    ClDropPartyCompleteHandler == 0x68, ClIncomingCallHandler == 0x70,
    ClIncomingCallQoSChangeHandler == 0x78, ClIncomingCloseCallHandler == 0x80,
    ClIncomingDropPartyHandler == 0x88, ClCallConnectedHandler == 0x90,
    ClNotifyCloseAfHandler == 0x98,
);
/// Through `ClNotifyCloseAfHandler`: x64 0xA0.
pub const NDIS_SIZEOF_CO_CLIENT_OPTIONAL_HANDLERS_REVISION_1: u16 =
    crate::sizeof_through_field!(NDIS_CO_CLIENT_OPTIONAL_HANDLERS, ClNotifyCloseAfHandler) as u16;
