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
