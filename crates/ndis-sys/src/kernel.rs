//! Kernel (wdm.h/ntifs.h) pieces a protocol driver needs: DriverEntry/unload, a control device, IOCTLs, a DACL.
//!
//! DDI pages: <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_driver_object>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_irp>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_io_stack_location>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocreatedevice>,
//! <https://learn.microsoft.com/windows-hardware/drivers/kernel/defining-i-o-control-codes>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtlcreateacl>.
//!
//! **Layouts here are x64 only** (the project builds the image for x86_64 and the simulator runs on
//! x86-64). Member order comes from the Learn structure pages / wdm.h; the x64 offsets come from
//! Microsoft public symbols as dumped in the `ntdiff/headers` repository (Windows 10 x64
//! `ntoskrnl.exe` type dumps: `_DRIVER_OBJECT` size 0x150, `_IRP` size 0xD0,
//! `_IO_STACK_LOCATION` size 0x48), and agree with condis-reference §2.6 (DriverUnload 0x68,
//! MajorFunction 0x70). Only the members a buffered `DeviceIoControl` handler needs are named in
//! `IRP`/`IO_STACK_LOCATION`; the rest are reserved blobs of the right size.
//!
//! Flow: `DriverEntry(DRIVER_OBJECT*, RegistryPath)` sets `MajorFunction[IRP_MJ_*]` and
//! `DriverUnload`, `IoCreateDevice(FILE_DEVICE_SECURE_OPEN)` + `IoCreateSymbolicLink`, optionally
//! tightens the device DACL (`RtlCreateSecurityDescriptor` / `RtlCreateAcl` /
//! `RtlAddAccessAllowedAce` / `RtlSetDaclSecurityDescriptor`, then `ObOpenObjectByPointer` +
//! `ZwSetSecurityObject` + `ZwClose`); IOCTLs arrive as `IRP_MJ_DEVICE_CONTROL` and are finished
//! with `IofCompleteRequest`.

use core::ffi::c_void;

use crate::base::*;

/// `DEVICE_OBJECT`: opaque (only the I/O manager allocates and reads it).
#[repr(C)]
pub struct DEVICE_OBJECT {
    _opaque: [u8; 0],
}
/// `FILE_OBJECT`: opaque but for `FileName`, which a dispatch routine for IRP_MJ_CREATE reads.
#[repr(C)]
pub struct FILE_OBJECT {
    _opaque: [u8; 0],
}
/// x64 `FILE_OBJECT` size.
pub const FILE_OBJECT_SIZE: usize = 0xD8;
/// x64 offset of `FILE_OBJECT.FileName` (a `UNICODE_STRING`): after Type/Size (+0x00),
/// DeviceObject (+0x08), Vpb, FsContext, FsContext2, SectionObjectPointer, PrivateCacheMap (+0x30),
/// FinalStatus (+0x38), RelatedFileObject (+0x40), the eight BOOLEANs (+0x48) and Flags (+0x50).
pub const FILE_OBJECT_FILE_NAME: usize = 0x58;
const _: () = assert!(FILE_OBJECT_FILE_NAME.is_multiple_of(8));
const _: () = assert!(FILE_OBJECT_FILE_NAME + core::mem::size_of::<UNICODE_STRING>() <= FILE_OBJECT_SIZE);
/// `IO_WORKITEM`: opaque (`IoAllocateWorkItem` returns a pointer to one).
#[repr(C)]
pub struct IO_WORKITEM {
    _opaque: [u8; 0],
}
/// `OBJECT_TYPE`: opaque.
#[repr(C)]
pub struct OBJECT_TYPE {
    _opaque: [u8; 0],
}
/// `ACCESS_STATE`: opaque (always NULL here).
#[repr(C)]
pub struct ACCESS_STATE {
    _opaque: [u8; 0],
}

/// `DRIVER_INITIALIZE` (DriverEntry). Called at PASSIVE.
pub type DRIVER_INITIALIZE =
    unsafe extern "win64" fn(DriverObject: *mut DRIVER_OBJECT, RegistryPath: *mut UNICODE_STRING) -> NTSTATUS;
/// `DRIVER_UNLOAD`. Called at PASSIVE.
pub type DRIVER_UNLOAD = unsafe extern "win64" fn(DriverObject: *mut DRIVER_OBJECT);
/// `DRIVER_DISPATCH`. `IRP_MJ_CREATE`/`CLOSE`/`DEVICE_CONTROL` arrive at PASSIVE.
pub type DRIVER_DISPATCH =
    unsafe extern "win64" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP) -> NTSTATUS;
/// `IO_WORKITEM_ROUTINE`. Runs at PASSIVE on a system worker thread.
pub type IO_WORKITEM_ROUTINE =
    unsafe extern "win64" fn(DeviceObject: *mut DEVICE_OBJECT, Context: *mut c_void);
/// `NDIS_IO_WORKITEM_ROUTINE` (ndis.h). Runs at PASSIVE.
pub type NDIS_IO_WORKITEM_ROUTINE =
    unsafe extern "win64" fn(WorkItemContext: *mut c_void, NdisIoWorkItemHandle: NDIS_HANDLE);

/// `LIST_ENTRY`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LIST_ENTRY {
    pub Flink: *mut LIST_ENTRY,
    pub Blink: *mut LIST_ENTRY,
}
crate::layout!(LIST_ENTRY, size 0x10; Flink == 0, Blink == 8);

/// `IRP_MJ_MAXIMUM_FUNCTION + 1`.
pub const IRP_MJ_COUNT: usize = 28;

/// `DRIVER_OBJECT` (x64; ntdiff/headers `_DRIVER_OBJECT`, size 0x150).
#[repr(C)]
pub struct DRIVER_OBJECT {
    pub Type: i16,
    pub Size: i16,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub Flags: u32,
    pub DriverStart: *mut c_void,
    pub DriverSize: u32,
    pub DriverSection: *mut c_void,
    pub DriverExtension: *mut c_void,
    pub DriverName: UNICODE_STRING,
    pub HardwareDatabase: *mut UNICODE_STRING,
    pub FastIoDispatch: *mut c_void,
    pub DriverInit: Option<DRIVER_INITIALIZE>,
    pub DriverStartIo: *mut c_void,
    pub DriverUnload: Option<DRIVER_UNLOAD>,
    pub MajorFunction: [Option<DRIVER_DISPATCH>; IRP_MJ_COUNT],
}
crate::layout!(DRIVER_OBJECT, size 0x150;
    Type == 0x00, Size == 0x02, DeviceObject == 0x08, Flags == 0x10, DriverStart == 0x18,
    DriverSize == 0x20, DriverSection == 0x28, DriverExtension == 0x30, DriverName == 0x38,
    HardwareDatabase == 0x48, FastIoDispatch == 0x50, DriverInit == 0x58, DriverStartIo == 0x60,
    DriverUnload == 0x68, MajorFunction == 0x70,
);

/// `IO_STATUS_BLOCK`. In C the first member is `union { NTSTATUS Status; PVOID Pointer; }`;
/// `Pointer` is documented as reserved for internal use, so it is modelled as `Status` plus the
/// reserved upper half.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IO_STATUS_BLOCK {
    pub Status: NTSTATUS,
    pub PointerHighPart: u32,
    pub Information: usize,
}
crate::layout!(IO_STATUS_BLOCK, size 0x10; Status == 0, Information == 8);

/// `IRP.AssociatedIrp`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_ASSOCIATED_IRP {
    pub MasterIrp: *mut IRP,
    pub IrpCount: i32,
    /// METHOD_BUFFERED: the one system buffer that holds the input and receives the output.
    pub SystemBuffer: *mut c_void,
}

/// `IRP.Tail.Overlay`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IRP_TAIL_OVERLAY {
    /// Union of `KDEVICE_QUEUE_ENTRY DeviceQueueEntry` and `PVOID DriverContext[4]`.
    pub DriverContext: [*mut c_void; 4],
    pub Thread: *mut c_void,
    pub AuxiliaryBuffer: *mut i8,
    pub ListEntry: LIST_ENTRY,
    /// Union with `ULONG PacketType`. Read it as `IoGetCurrentIrpStackLocation` does.
    pub CurrentStackLocation: *mut IO_STACK_LOCATION,
    pub OriginalFileObject: *mut FILE_OBJECT,
}

/// `IRP.Tail` (its largest member is a `KAPC`, 0x58 bytes on x64).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_TAIL {
    pub Overlay: IRP_TAIL_OVERLAY,
    pub Apc: [usize; 11],
    pub CompletionKey: *mut c_void,
}

/// `IRP` (x64; ntdiff/headers `_IRP`, size 0xD0). Named members are those a buffered
/// `DeviceIoControl` handler uses; `Overlay` (asynchronous parameters) is kept as a blob.
#[repr(C)]
pub struct IRP {
    pub Type: i16,
    pub Size: u16,
    /// `AllocationProcessorNumber` + `Reserved` in newer headers; padding in older ones.
    pub Reserved04: u32,
    pub MdlAddress: *mut c_void,
    pub Flags: u32,
    pub AssociatedIrp: IRP_ASSOCIATED_IRP,
    pub ThreadListEntry: LIST_ENTRY,
    pub IoStatus: IO_STATUS_BLOCK,
    pub RequestorMode: KPROCESSOR_MODE,
    pub PendingReturned: BOOLEAN,
    pub StackCount: i8,
    pub CurrentLocation: i8,
    pub Cancel: BOOLEAN,
    pub CancelIrql: KIRQL,
    pub ApcEnvironment: i8,
    pub AllocationFlags: u8,
    pub UserIosb: *mut IO_STATUS_BLOCK,
    pub UserEvent: *mut KEVENT,
    pub Overlay: [usize; 2],
    pub CancelRoutine: *mut c_void,
    pub UserBuffer: *mut c_void,
    pub Tail: IRP_TAIL,
}
crate::layout!(IRP, size 0xD0;
    Type == 0x00, Size == 0x02, MdlAddress == 0x08, Flags == 0x10, AssociatedIrp == 0x18,
    AssociatedIrp.SystemBuffer == 0x18, ThreadListEntry == 0x20, IoStatus == 0x30,
    IoStatus.Status == 0x30, IoStatus.Information == 0x38, RequestorMode == 0x40,
    PendingReturned == 0x41, StackCount == 0x42, CurrentLocation == 0x43, Cancel == 0x44,
    CancelIrql == 0x45, UserIosb == 0x48, UserEvent == 0x50, Overlay == 0x58,
    CancelRoutine == 0x68, UserBuffer == 0x70, Tail == 0x78,
    Tail.Overlay.Thread == 0x98, Tail.Overlay.ListEntry == 0xA8,
    Tail.Overlay.CurrentStackLocation == 0xB8, Tail.Overlay.OriginalFileObject == 0xC0,
);

/// `IO_STACK_LOCATION.Parameters.DeviceIoControl`. Each `ULONG` is declared `POINTER_ALIGNMENT`
/// in wdm.h, hence the explicit padding on x64.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_DEVICE_IO_CONTROL {
    pub OutputBufferLength: u32,
    pub Padding0: u32,
    pub InputBufferLength: u32,
    pub Padding1: u32,
    pub IoControlCode: u32,
    pub Padding2: u32,
    pub Type3InputBuffer: *mut c_void,
}

/// `IO_STACK_LOCATION.Parameters` (0x20 bytes on x64).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_LOCATION_PARAMETERS {
    pub DeviceIoControl: IO_STACK_LOCATION_DEVICE_IO_CONTROL,
    pub Others: [usize; 4],
}

/// `IO_STACK_LOCATION` (x64; ntdiff/headers `_IO_STACK_LOCATION`, size 0x48).
#[repr(C)]
pub struct IO_STACK_LOCATION {
    pub MajorFunction: u8,
    pub MinorFunction: u8,
    pub Flags: u8,
    pub Control: u8,
    pub Parameters: IO_STACK_LOCATION_PARAMETERS,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub FileObject: *mut FILE_OBJECT,
    pub CompletionRoutine: *mut c_void,
    pub Context: *mut c_void,
}
crate::layout!(IO_STACK_LOCATION, size 0x48;
    MajorFunction == 0x00, MinorFunction == 0x01, Flags == 0x02, Control == 0x03,
    Parameters == 0x08, Parameters.DeviceIoControl.OutputBufferLength == 0x08,
    Parameters.DeviceIoControl.InputBufferLength == 0x10,
    Parameters.DeviceIoControl.IoControlCode == 0x18,
    Parameters.DeviceIoControl.Type3InputBuffer == 0x20,
    DeviceObject == 0x28, FileObject == 0x30, CompletionRoutine == 0x38, Context == 0x40,
);

// ---- IRP major function codes (wdm.h) ------------------------------------------------------------
pub const IRP_MJ_CREATE: u8 = 0x00;
pub const IRP_MJ_CREATE_NAMED_PIPE: u8 = 0x01;
pub const IRP_MJ_CLOSE: u8 = 0x02;
pub const IRP_MJ_READ: u8 = 0x03;
pub const IRP_MJ_WRITE: u8 = 0x04;
pub const IRP_MJ_QUERY_INFORMATION: u8 = 0x05;
pub const IRP_MJ_SET_INFORMATION: u8 = 0x06;
pub const IRP_MJ_QUERY_EA: u8 = 0x07;
pub const IRP_MJ_SET_EA: u8 = 0x08;
pub const IRP_MJ_FLUSH_BUFFERS: u8 = 0x09;
pub const IRP_MJ_QUERY_VOLUME_INFORMATION: u8 = 0x0a;
pub const IRP_MJ_SET_VOLUME_INFORMATION: u8 = 0x0b;
pub const IRP_MJ_DIRECTORY_CONTROL: u8 = 0x0c;
pub const IRP_MJ_FILE_SYSTEM_CONTROL: u8 = 0x0d;
pub const IRP_MJ_DEVICE_CONTROL: u8 = 0x0e;
pub const IRP_MJ_INTERNAL_DEVICE_CONTROL: u8 = 0x0f;
pub const IRP_MJ_SHUTDOWN: u8 = 0x10;
pub const IRP_MJ_LOCK_CONTROL: u8 = 0x11;
pub const IRP_MJ_CLEANUP: u8 = 0x12;
pub const IRP_MJ_CREATE_MAILSLOT: u8 = 0x13;
pub const IRP_MJ_QUERY_SECURITY: u8 = 0x14;
pub const IRP_MJ_SET_SECURITY: u8 = 0x15;
pub const IRP_MJ_POWER: u8 = 0x16;
pub const IRP_MJ_SYSTEM_CONTROL: u8 = 0x17;
pub const IRP_MJ_DEVICE_CHANGE: u8 = 0x18;
pub const IRP_MJ_QUERY_QUOTA: u8 = 0x19;
pub const IRP_MJ_SET_QUOTA: u8 = 0x1a;
pub const IRP_MJ_PNP: u8 = 0x1b;
pub const IRP_MJ_MAXIMUM_FUNCTION: u8 = 0x1b;

/// `IRP.Flags` the I/O manager sets (wdm.h): a buffered transfer whose system buffer it frees,
/// with output to copy back (`IRP_INPUT_OPERATION`), and the create and close operations.
pub const IRP_BUFFERED_IO: u32 = 0x0000_0010;
pub const IRP_DEALLOCATE_BUFFER: u32 = 0x0000_0020;
pub const IRP_INPUT_OPERATION: u32 = 0x0000_0040;
pub const IRP_CREATE_OPERATION: u32 = 0x0000_0080;
pub const IRP_CLOSE_OPERATION: u32 = 0x0000_0400;
/// The `Type` of the objects the I/O manager allocates (`IO_TYPE_DEVICE`, `IO_TYPE_IRP`).
pub const IO_TYPE_DEVICE: i16 = 3;
pub const IO_TYPE_IRP: i16 = 6;
/// `DEVICE_OBJECT.Flags`: set by IoCreateDevice, cleared by the I/O manager after DriverEntry.
pub const DO_DEVICE_INITIALIZING: u32 = 0x0000_0080;

/// `IofCompleteRequest` priority boosts.
pub const IO_NO_INCREMENT: i8 = 0;
pub const IO_NETWORK_INCREMENT: i8 = 2;

// ---- Device types and IOCTL codes (devioctl.h) ---------------------------------------------------
/// `DEVICE_TYPE` (`ULONG`).
pub type DEVICE_TYPE = u32;
pub const FILE_DEVICE_NETWORK: DEVICE_TYPE = 0x0000_0012;
pub const FILE_DEVICE_TRANSPORT: DEVICE_TYPE = 0x0000_0021;
pub const FILE_DEVICE_UNKNOWN: DEVICE_TYPE = 0x0000_0022;
/// Device characteristic for `IoCreateDevice`: apply the device's security to opens of names
/// below it.
pub const FILE_DEVICE_SECURE_OPEN: u32 = 0x0000_0100;

pub const METHOD_BUFFERED: u32 = 0;
pub const METHOD_IN_DIRECT: u32 = 1;
pub const METHOD_OUT_DIRECT: u32 = 2;
pub const METHOD_NEITHER: u32 = 3;
pub const FILE_ANY_ACCESS: u32 = 0;
pub const FILE_READ_ACCESS: u32 = 0x0001;
pub const FILE_WRITE_ACCESS: u32 = 0x0002;

/// `CTL_CODE(DeviceType, Function, Method, Access)` =
/// `(DeviceType << 16) | (Access << 14) | (Function << 2) | Method`.
pub const fn CTL_CODE(DeviceType: DEVICE_TYPE, Function: u32, Method: u32, Access: u32) -> u32 {
    (DeviceType << 16) | (Access << 14) | (Function << 2) | Method
}
/// `DEVICE_TYPE_FROM_CTL_CODE(ControlCode)`.
pub const fn DEVICE_TYPE_FROM_CTL_CODE(ControlCode: u32) -> DEVICE_TYPE {
    (ControlCode & 0xFFFF_0000) >> 16
}
/// `METHOD_FROM_CTL_CODE(ControlCode)`.
pub const fn METHOD_FROM_CTL_CODE(ControlCode: u32) -> u32 {
    ControlCode & 3
}
/// The access bits of an IOCTL code (bits 14..16: `FILE_READ_ACCESS`, `FILE_WRITE_ACCESS`).
pub const fn ACCESS_FROM_CTL_CODE(ControlCode: u32) -> u32 {
    (ControlCode >> 14) & 3
}

// ---- Work items (wdm.h) --------------------------------------------------------------------------
/// `WORK_QUEUE_TYPE` (C enum).
pub type WORK_QUEUE_TYPE = u32;
pub const CriticalWorkQueue: WORK_QUEUE_TYPE = 0;
pub const DelayedWorkQueue: WORK_QUEUE_TYPE = 1;
pub const HyperCriticalWorkQueue: WORK_QUEUE_TYPE = 2;
pub const NormalWorkQueue: WORK_QUEUE_TYPE = 3;

// ---- Processor mode, object attributes, access masks ---------------------------------------------
/// `KPROCESSOR_MODE` (`CCHAR`).
pub type KPROCESSOR_MODE = i8;
pub const KernelMode: KPROCESSOR_MODE = 0;
pub const UserMode: KPROCESSOR_MODE = 1;

pub const OBJ_INHERIT: u32 = 0x0000_0002;
pub const OBJ_CASE_INSENSITIVE: u32 = 0x0000_0040;
/// The handle is only valid in kernel mode (always use it for handles a driver opens).
pub const OBJ_KERNEL_HANDLE: u32 = 0x0000_0200;

pub const DELETE: ACCESS_MASK = 0x0001_0000;
pub const READ_CONTROL: ACCESS_MASK = 0x0002_0000;
pub const WRITE_DAC: ACCESS_MASK = 0x0004_0000;
pub const WRITE_OWNER: ACCESS_MASK = 0x0008_0000;
pub const SYNCHRONIZE: ACCESS_MASK = 0x0010_0000;
pub const STANDARD_RIGHTS_REQUIRED: ACCESS_MASK = 0x000F_0000;
pub const STANDARD_RIGHTS_ALL: ACCESS_MASK = 0x001F_0000;
pub const GENERIC_READ: ACCESS_MASK = 0x8000_0000;
pub const GENERIC_WRITE: ACCESS_MASK = 0x4000_0000;
pub const GENERIC_EXECUTE: ACCESS_MASK = 0x2000_0000;
pub const GENERIC_ALL: ACCESS_MASK = 0x1000_0000;
pub const FILE_ALL_ACCESS: ACCESS_MASK = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x1FF;
/// File and device access rights (winnt.h) and the generic mapping of files and devices:
/// `FILE_GENERIC_READ` = STANDARD_RIGHTS_READ | FILE_READ_DATA | FILE_READ_ATTRIBUTES |
/// FILE_READ_EA | SYNCHRONIZE, and likewise for write and execute.
pub const FILE_READ_DATA: ACCESS_MASK = 0x0001;
pub const FILE_WRITE_DATA: ACCESS_MASK = 0x0002;
pub const FILE_GENERIC_READ: ACCESS_MASK = 0x0012_0089;
pub const FILE_GENERIC_WRITE: ACCESS_MASK = 0x0012_0116;
pub const FILE_GENERIC_EXECUTE: ACCESS_MASK = 0x0012_00A0;

// ---- Security (ntifs.h / winnt.h) ----------------------------------------------------------------
/// `SECURITY_INFORMATION` (`ULONG`).
pub type SECURITY_INFORMATION = u32;
pub const OWNER_SECURITY_INFORMATION: SECURITY_INFORMATION = 0x0000_0001;
pub const GROUP_SECURITY_INFORMATION: SECURITY_INFORMATION = 0x0000_0002;
pub const DACL_SECURITY_INFORMATION: SECURITY_INFORMATION = 0x0000_0004;
pub const SACL_SECURITY_INFORMATION: SECURITY_INFORMATION = 0x0000_0008;
pub const LABEL_SECURITY_INFORMATION: SECURITY_INFORMATION = 0x0000_0010;
pub const PROTECTED_DACL_SECURITY_INFORMATION: SECURITY_INFORMATION = 0x8000_0000;

/// `SID_IDENTIFIER_AUTHORITY`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SID_IDENTIFIER_AUTHORITY {
    pub Value: [u8; 6],
}
pub const SECURITY_NT_AUTHORITY: SID_IDENTIFIER_AUTHORITY =
    SID_IDENTIFIER_AUTHORITY { Value: [0, 0, 0, 0, 0, 5] };
pub const SECURITY_LOCAL_SYSTEM_RID: u32 = 0x0000_0012;
pub const SECURITY_BUILTIN_DOMAIN_RID: u32 = 0x0000_0020;
pub const SECURITY_WORLD_RID: u32 = 0x0000_0000;
pub const SECURITY_AUTHENTICATED_USER_RID: u32 = 0x0000_000B;
pub const DOMAIN_ALIAS_RID_ADMINS: u32 = 0x0000_0220;
pub const DOMAIN_ALIAS_RID_USERS: u32 = 0x0000_0221;
pub const SID_MAX_SUB_AUTHORITIES: u8 = 15;
pub const SID_REVISION: u8 = 1;

/// `SID` (variable length: `SubAuthorityCount` entries of `SubAuthority`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SID {
    pub Revision: u8,
    pub SubAuthorityCount: u8,
    pub IdentifierAuthority: SID_IDENTIFIER_AUTHORITY,
    pub SubAuthority: [u32; 1],
}
crate::layout!(SID, size 12; Revision == 0, SubAuthorityCount == 1, IdentifierAuthority == 2, SubAuthority == 8);

/// `ACL` header (ACEs follow it, `AclSize` bytes in all).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ACL {
    pub AclRevision: u8,
    pub Sbz1: u8,
    pub AclSize: u16,
    pub AceCount: u16,
    pub Sbz2: u16,
}
crate::layout!(ACL, size 8; AclRevision == 0, Sbz1 == 1, AclSize == 2, AceCount == 4, Sbz2 == 6);
pub const ACL_REVISION: u32 = 2;
pub const ACL_REVISION_DS: u32 = 4;

/// `ACE_HEADER`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ACE_HEADER {
    pub AceType: u8,
    pub AceFlags: u8,
    pub AceSize: u16,
}
crate::layout!(ACE_HEADER, size 4; AceType == 0, AceFlags == 1, AceSize == 2);
pub const ACCESS_ALLOWED_ACE_TYPE: u8 = 0x0;

/// `ACCESS_ALLOWED_ACE`: the SID starts at `SidStart`, so an ACE for a SID of `n` bytes is
/// `size_of::<ACCESS_ALLOWED_ACE>() - 4 + n` bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ACCESS_ALLOWED_ACE {
    pub Header: ACE_HEADER,
    pub Mask: ACCESS_MASK,
    pub SidStart: u32,
}
crate::layout!(ACCESS_ALLOWED_ACE, size 12; Header == 0, Mask == 4, SidStart == 8);

/// `SECURITY_DESCRIPTOR_CONTROL` (`USHORT`).
pub type SECURITY_DESCRIPTOR_CONTROL = u16;
pub const SE_DACL_PRESENT: SECURITY_DESCRIPTOR_CONTROL = 0x0004;
pub const SE_DACL_DEFAULTED: SECURITY_DESCRIPTOR_CONTROL = 0x0008;
pub const SE_SELF_RELATIVE: SECURITY_DESCRIPTOR_CONTROL = 0x8000;
pub const SECURITY_DESCRIPTOR_REVISION: u32 = 1;

/// Absolute-format `SECURITY_DESCRIPTOR` (x64: 0x28 bytes = `SECURITY_DESCRIPTOR_MIN_LENGTH`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SECURITY_DESCRIPTOR {
    pub Revision: u8,
    pub Sbz1: u8,
    pub Control: SECURITY_DESCRIPTOR_CONTROL,
    pub Owner: *mut SID,
    pub Group: *mut SID,
    pub Sacl: *mut ACL,
    pub Dacl: *mut ACL,
}
crate::layout!(SECURITY_DESCRIPTOR, size 0x28;
    Revision == 0, Sbz1 == 1, Control == 2, Owner == 0x08, Group == 0x10, Sacl == 0x18, Dacl == 0x20,
);
pub const SECURITY_DESCRIPTOR_MIN_LENGTH: usize = core::mem::size_of::<SECURITY_DESCRIPTOR>();
