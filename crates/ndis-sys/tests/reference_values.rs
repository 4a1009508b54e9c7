//! Checks the `NDIS_SIZEOF_*` header sizes, object types, revisions and other numbers against
//! `shared/ndis/condis-reference.md` (§2.2, §2.4, §2.5, §3.2, §7.2, §9) and the import list.
#![allow(non_snake_case)]

use core::ffi::c_void;
use ndis_sys::*;

/// condis-reference §11 pitfall 1: sizes are through-field, not sizeof.
#[test]
fn ndis_sizeof_constants_match_the_reference() {
    assert_eq!(NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_1, 0x78);
    assert_eq!(NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2, 0x80);
    assert_eq!(NDIS_SIZEOF_PROTOCOL_CO_CHARACTERISTICS_REVISION_1, 0x28);
    assert_eq!(NDIS_SIZEOF_CO_CLIENT_OPTIONAL_HANDLERS_REVISION_1, 0xA0);
    assert_eq!(NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1, 0x34);
    assert_eq!(NDIS_SIZEOF_OPEN_PARAMETERS_REVSION_1, 0x34);
    assert_eq!(NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1, 0x38);
    assert_eq!(NDIS_SIZEOF_PROTOCOL_PAUSE_PARAMETERS_REVISION_1, 0x0C);
    assert_eq!(NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1, 0x34);
}

/// ns-ndis-_net_pnp_event (the buffers of each event) and ntddndis.h (MinGW-w64 ships the
/// NDIS_DEVICE_POWER_STATE enum, NDIS_DEVICE_WAKE_UP_ENABLE and the restart parameters' object
/// type); the pause reasons as the Windows metadata gives them (windows-rs,
/// Wdk::NetworkManagement::Ndis::NDIS_PAUSE_*).
#[test]
fn pnp_event_buffers_match_the_headers() {
    assert_eq!(NetEventSetPower, 0);
    assert_eq!(NetEventPause, 8);
    assert_eq!(NetEventRestart, 9);
    assert_eq!(
        [
            NdisDeviceStateUnspecified,
            NdisDeviceStateD0,
            NdisDeviceStateD1,
            NdisDeviceStateD2,
            NdisDeviceStateD3
        ],
        [0, 1, 2, 3, 4]
    );
    assert_eq!(NDIS_DEVICE_WAKE_UP_ENABLE, 1);
    assert_eq!(NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS, 0xA3);
    assert_eq!(NDIS_PROTOCOL_PAUSE_PARAMETERS_REVISION_1, 1);
    assert_eq!(NDIS_PROTOCOL_RESTART_PARAMETERS_REVISION_1, 1);
    assert_eq!(
        [
            NDIS_PAUSE_NDIS_INTERNAL,
            NDIS_PAUSE_LOW_POWER,
            NDIS_PAUSE_BIND_PROTOCOL,
            NDIS_PAUSE_UNBIND_PROTOCOL
        ],
        [1, 2, 4, 8]
    );
    assert_eq!(core::mem::size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>(), 0x38);
}

#[test]
fn open_parameters_size_excludes_tail_padding() {
    assert_eq!(core::mem::size_of::<NDIS_OPEN_PARAMETERS>(), 0x38);
    assert!(
        usize::from(NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1) < core::mem::size_of::<NDIS_OPEN_PARAMETERS>()
    );
}

#[test]
fn object_types_and_revisions_match_the_reference() {
    assert_eq!(NDIS_OBJECT_TYPE_DEFAULT, 0x80);
    assert_eq!(NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES, 0x85);
    assert_eq!(NDIS_OBJECT_TYPE_BIND_PARAMETERS, 0x86);
    assert_eq!(NDIS_OBJECT_TYPE_OPEN_PARAMETERS, 0x87);
    assert_eq!(NDIS_OBJECT_TYPE_CO_PROTOCOL_CHARACTERISTICS, 0x90);
    assert_eq!(NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS, 0x95);
    assert_eq!(NDIS_OBJECT_TYPE_CO_CALL_MANAGER_OPTIONAL_HANDLERS, 0xA5);
    assert_eq!(NDIS_OBJECT_TYPE_CO_CLIENT_OPTIONAL_HANDLERS, 0xA6);
    assert_eq!(NDIS_OBJECT_REVISION_1, 1);
    assert_eq!(NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_1, 1);
    assert_eq!(NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2, 2);
    assert_eq!(NDIS_PROTOCOL_CO_CHARACTERISTICS_REVISION_1, 1);
    assert_eq!(NDIS_CO_CLIENT_OPTIONAL_HANDLERS_REVISION_1, 1);
    assert_eq!(NDIS_OPEN_PARAMETERS_REVISION_1, 1);
    assert_eq!(NET_PNP_EVENT_NOTIFICATION_REVISION_1, 1);
}

#[test]
fn co_media_parameters_media_specific_is_pointer_aligned_on_x64() {
    assert_eq!(core::mem::offset_of!(CO_MEDIA_PARAMETERS, MediaSpecific), 0x10);
    assert_eq!(core::mem::size_of::<CO_MEDIA_PARAMETERS>(), 0x20);
}

#[test]
fn status_codes_match_the_reference() {
    let expected: &[(NDIS_STATUS, u32)] = &[
        (NDIS_STATUS_SUCCESS, 0x0000_0000),
        (NDIS_STATUS_PENDING, 0x0000_0103),
        (NDIS_STATUS_NOT_ACCEPTED, 0x0001_0003),
        (NDIS_STATUS_CALL_ACTIVE, 0x0001_0007),
        (NDIS_STATUS_FAILURE, 0xC000_0001),
        (NDIS_STATUS_RESOURCES, 0xC000_009A),
        (NDIS_STATUS_NOT_SUPPORTED, 0xC000_00BB),
        (NDIS_STATUS_CLOSING, 0xC001_0002),
        (NDIS_STATUS_BAD_VERSION, 0xC001_0004),
        (NDIS_STATUS_BAD_CHARACTERISTICS, 0xC001_0005),
        (NDIS_STATUS_INCOMPATIBLE_QOS, 0xC001_0027),
        (NDIS_STATUS_NO_ROUTE_TO_DESTINATION, 0xC001_0029),
        (NDIS_STATUS_PAUSED, 0xC023_002A),
        (NDIS_STATUS_UNSUPPORTED_REVISION, 0xC023_002C),
        (NDIS_STATUS_BUFFER_OVERFLOW, 0x8000_0005),
        (NDIS_STATUS_INDICATION_REQUIRED, 0x4023_0001),
        (NDIS_STATUS_NOT_RECOGNIZED, 0x0001_0001),
        (NDIS_STATUS_NOT_COPIED, 0x0001_0002),
        (NDIS_STATUS_INVALID_PARAMETER, 0xC000_000D),
        (NDIS_STATUS_INVALID_STATE, 0xC000_0184),
        (NDIS_STATUS_ADAPTER_NOT_FOUND, 0xC001_0006),
        (NDIS_STATUS_OPEN_FAILED, 0xC001_0007),
        (NDIS_STATUS_REQUEST_ABORTED, 0xC001_000C),
        (NDIS_STATUS_CLOSING_INDICATING, 0xC001_000E),
        (NDIS_STATUS_INVALID_LENGTH, 0xC001_0014),
        (NDIS_STATUS_INVALID_DATA, 0xC001_0015),
        (NDIS_STATUS_BUFFER_TOO_SHORT, 0xC001_0016),
        (NDIS_STATUS_INVALID_OID, 0xC001_0017),
        (NDIS_STATUS_ADAPTER_REMOVED, 0xC001_0018),
        (NDIS_STATUS_UNSUPPORTED_MEDIA, 0xC001_0019),
        (NDIS_STATUS_NO_CABLE, 0xC001_001F),
        (NDIS_STATUS_INVALID_SAP, 0xC001_0020),
        (NDIS_STATUS_SAP_IN_USE, 0xC001_0021),
        (NDIS_STATUS_INVALID_ADDRESS, 0xC001_0022),
        (NDIS_STATUS_VC_NOT_ACTIVATED, 0xC001_0023),
        (NDIS_STATUS_DEST_OUT_OF_ORDER, 0xC001_0024),
        (NDIS_STATUS_VC_NOT_AVAILABLE, 0xC001_0025),
        (NDIS_STATUS_CELLRATE_NOT_AVAILABLE, 0xC001_0026),
        (NDIS_STATUS_AAL_PARAMS_UNSUPPORTED, 0xC001_0028),
    ];
    for &(value, bits) in expected {
        assert_eq!(value as u32, bits);
    }
    // Success-class NDIS codes are positive.
    assert!(NT_SUCCESS(NDIS_STATUS_NOT_ACCEPTED));
    assert!(!NT_SUCCESS(NDIS_STATUS_FAILURE));
}

#[test]
fn call_parameter_flags_match_the_reference() {
    assert_eq!(MULTIPOINT_VC, 0x10);
    assert_eq!(CALL_PARAMETERS_CHANGED, 0x2);
    assert_eq!(CO_ADDRESS_FAMILY_Q2931, 0x1);
    assert_eq!(CALLMGR_SPECIFIC_Q2931, 1);
    assert_eq!(Q2931_IE_HEADER_SIZE, 8);
}

/// WDK ndis.h; nf-ndis-ndisreturnnetbufferlists, network/dispatch-irql-tracking.
#[test]
fn receive_and_return_flags_match_the_wdk() {
    assert_eq!(NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL, 0x1);
    assert_eq!(NDIS_RECEIVE_FLAGS_RESOURCES, 0x2);
    assert_eq!(NDIS_RETURN_FLAGS_DISPATCH_LEVEL, 0x1);
}

#[test]
fn ctl_code_matches_the_devioctl_formula() {
    // CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS) = 0x222000.
    assert_eq!(CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS), 0x0022_2000);
    assert_eq!(
        CTL_CODE(FILE_DEVICE_NETWORK, 0x801, METHOD_BUFFERED, FILE_READ_ACCESS | FILE_WRITE_ACCESS),
        0x0012_E004
    );
}

/// SDK shared/ntstatus.h ("NTSTATUS Values", MS-ERREF 2.3.1:
/// https://learn.microsoft.com/openspecs/windows_protocols/ms-erref/596a1078-e883-4972-9bbc-49e60bebca55).
#[test]
fn ntstatus_codes_match_ntstatus_h() {
    let expected: &[(NTSTATUS, u32)] = &[
        (STATUS_SUCCESS, 0x0000_0000),
        (STATUS_TIMEOUT, 0x0000_0102),
        (STATUS_PENDING, 0x0000_0103),
        (STATUS_BUFFER_OVERFLOW, 0x8000_0005),
        (STATUS_DEVICE_BUSY, 0x8000_0011),
        (STATUS_UNSUCCESSFUL, 0xC000_0001),
        (STATUS_NOT_IMPLEMENTED, 0xC000_0002),
        (STATUS_INFO_LENGTH_MISMATCH, 0xC000_0004),
        (STATUS_INVALID_HANDLE, 0xC000_0008),
        (STATUS_INVALID_PARAMETER, 0xC000_000D),
        (STATUS_INVALID_DEVICE_REQUEST, 0xC000_0010),
        (STATUS_ACCESS_DENIED, 0xC000_0022),
        (STATUS_BUFFER_TOO_SMALL, 0xC000_0023),
        (STATUS_OBJECT_NAME_INVALID, 0xC000_0033),
        (STATUS_OBJECT_NAME_NOT_FOUND, 0xC000_0034),
        (STATUS_OBJECT_NAME_COLLISION, 0xC000_0035),
        (STATUS_DELETE_PENDING, 0xC000_0056),
        (STATUS_UNKNOWN_REVISION, 0xC000_0058),
        (STATUS_REVISION_MISMATCH, 0xC000_0059),
        (STATUS_INVALID_ACL, 0xC000_0077),
        (STATUS_INVALID_SID, 0xC000_0078),
        (STATUS_INVALID_SECURITY_DESCR, 0xC000_0079),
        (STATUS_ALLOTTED_SPACE_EXCEEDED, 0xC000_0099),
        (STATUS_INSUFFICIENT_RESOURCES, 0xC000_009A),
        (STATUS_DEVICE_NOT_READY, 0xC000_00A3),
        (STATUS_NOT_SUPPORTED, 0xC000_00BB),
        (STATUS_DEVICE_DOES_NOT_EXIST, 0xC000_00C0),
        (STATUS_CANCELLED, 0xC000_0120),
        (STATUS_INVALID_DEVICE_STATE, 0xC000_0184),
        (STATUS_NOT_FOUND, 0xC000_0225),
    ];
    for &(value, bits) in expected {
        assert_eq!(value as u32, bits, "0x{bits:08X}");
    }
}

/// SDK winnt.h (access rights, SIDs, ACLs) and wdm.h (IRP flags, object types): "Access Mask",
/// "File Access Rights Constants", "Well-known SIDs".
#[test]
fn access_rights_sids_and_irp_flags_match_the_headers() {
    assert_eq!(FILE_READ_DATA, 0x1);
    assert_eq!(FILE_WRITE_DATA, 0x2);
    assert_eq!(FILE_GENERIC_READ, 0x0012_0089);
    assert_eq!(FILE_GENERIC_WRITE, 0x0012_0116);
    assert_eq!(FILE_GENERIC_EXECUTE, 0x0012_00A0);
    assert_eq!(FILE_ALL_ACCESS, 0x001F_01FF);
    assert_eq!(SECURITY_WORLD_RID, 0);
    assert_eq!(SECURITY_AUTHENTICATED_USER_RID, 11);
    assert_eq!(SECURITY_LOCAL_SYSTEM_RID, 18);
    assert_eq!(SECURITY_BUILTIN_DOMAIN_RID, 32);
    assert_eq!(DOMAIN_ALIAS_RID_ADMINS, 544);
    assert_eq!(DOMAIN_ALIAS_RID_USERS, 545);
    assert_eq!(SID_MAX_SUB_AUTHORITIES, 15);
    assert_eq!((ACL_REVISION, ACL_REVISION_DS), (2, 4));
    assert_eq!((SE_DACL_PRESENT, SE_DACL_DEFAULTED, SE_SELF_RELATIVE), (0x4, 0x8, 0x8000));
    assert_eq!(
        (
            IRP_BUFFERED_IO,
            IRP_DEALLOCATE_BUFFER,
            IRP_INPUT_OPERATION,
            IRP_CREATE_OPERATION,
            IRP_CLOSE_OPERATION
        ),
        (0x10, 0x20, 0x40, 0x80, 0x400)
    );
    assert_eq!((IO_TYPE_DEVICE, IO_TYPE_IRP, DO_DEVICE_INITIALIZING), (3, 6, 0x80));
}

/// devioctl.h, "Defining I/O Control Codes": the methods, access bits and the field macros.
#[test]
fn ioctl_methods_access_and_field_macros_match_devioctl_h() {
    assert_eq!((METHOD_BUFFERED, METHOD_IN_DIRECT, METHOD_OUT_DIRECT, METHOD_NEITHER), (0, 1, 2, 3));
    assert_eq!((FILE_ANY_ACCESS, FILE_READ_ACCESS, FILE_WRITE_ACCESS), (0, 1, 2));
    let code = CTL_CODE(0x8A7C, 0x805, METHOD_BUFFERED, FILE_READ_ACCESS);
    assert_eq!(code, 0x8A7C_6014);
    assert_eq!(DEVICE_TYPE_FROM_CTL_CODE(code), 0x8A7C);
    assert_eq!(METHOD_FROM_CTL_CODE(code), METHOD_BUFFERED);
    assert_eq!(ACCESS_FROM_CTL_CODE(code), FILE_READ_ACCESS);
}

#[test]
fn imports_are_listed_once_each_under_the_right_dll() {
    let find = |name: &str| IMPORTS.iter().filter(|i| i.name == name).map(|i| i.dll).collect::<Vec<_>>();
    assert_eq!(find("NdisClDropParty"), ["ndis.sys"]);
    assert_eq!(find("NdisGetVersion"), ["ndis.sys"]);
    assert_eq!(find("KeGetCurrentIrql"), ["ntoskrnl.exe"]);
    assert_eq!(find("__chkstk"), ["ntoskrnl.exe"]);
    assert_eq!(find("KeQueryPerformanceCounter"), ["hal.dll"]);
    assert!(find("IoDeviceObjectType").is_empty(), "data exports are not imported");
    let mut names: Vec<_> = IMPORTS.iter().map(|i| i.name).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate import");
    assert_eq!(IMPORTS.iter().filter(|i| i.dll == "ndis.sys").count(), 33);
    assert_eq!(IMPORTS.iter().filter(|i| i.dll == "ntoskrnl.exe").count(), 23);
    assert_eq!(IMPORTS.iter().filter(|i| i.dll == "hal.dll").count(), 1);
}

// Host implementations type-check against `signatures` (this is how ndis-sim uses them).
unsafe extern "win64" fn host_drop_party(
    _party: NDIS_HANDLE,
    _buffer: *mut c_void,
    _size: u32,
) -> NDIS_STATUS {
    NDIS_STATUS_PENDING
}
unsafe extern "win64" fn host_open_af(
    _binding: NDIS_HANDLE,
    _af: *mut CO_ADDRESS_FAMILY,
    _context: NDIS_HANDLE,
    _handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    NDIS_STATUS_SUCCESS
}
const HOST_DROP_PARTY: signatures::NdisClDropParty = host_drop_party;
const HOST_OPEN_AF: signatures::NdisClOpenAddressFamilyEx = host_open_af;

#[test]
fn host_implementations_are_callable_through_signatures() {
    // SAFETY: the host functions above ignore their arguments.
    let status = unsafe { HOST_DROP_PARTY(core::ptr::null_mut(), core::ptr::null_mut(), 0) };
    assert_eq!(status, NDIS_STATUS_PENDING);
    // SAFETY: as above.
    let status = unsafe {
        HOST_OPEN_AF(
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    };
    assert_eq!(status, NDIS_STATUS_SUCCESS);
}
