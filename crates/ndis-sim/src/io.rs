//! The simulated I/O manager and security routines of ntoskrnl.exe: device objects, symbolic
//! links, IRPs for `IRP_MJ_CREATE` / `IRP_MJ_CLOSE` / `IRP_MJ_DEVICE_CONTROL`, and the
//! SID/ACL/security-descriptor routines a driver uses to tighten its device's DACL.
//!
//! Read: IoCreateDevice, IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink,
//! IoCompleteRequest, RtlCreateSecurityDescriptor, RtlCreateAcl, RtlAddAccessAllowedAce,
//! RtlSetDaclSecurityDescriptor, RtlLengthSid, ObOpenObjectByPointer, ZwSetSecurityObject, ZwClose
//! (https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ and .../ddi/ntifs/), and
//! "Securing Device Objects" / "Controlling Device Namespace Access"
//! (https://learn.microsoft.com/windows-hardware/drivers/kernel/controlling-device-namespace-access).
//!
//! Flow: [`register`] puts the exports in an [`ExportTable`]. In `DriverEntry` the driver calls
//! `IoCreateDevice` (the simulator allocates a real x64 `DEVICE_OBJECT` with the extension after
//! it and remembers the `DRIVER_OBJECT` it was given), builds a DACL with the `Rtl*` routines,
//! applies it with `ObOpenObjectByPointer` + `ZwSetSecurityObject` + `ZwClose`, and only then calls
//! `IoCreateSymbolicLink`. Host code (tests, the CLI) then uses [`IoManager::open`] /
//! [`IoManager::device_control`] / [`IoManager::close`] as a given [`Caller`]: the simulator
//! resolves the path, checks the device's DACL against the caller's groups and the access the
//! IOCTL code requires (as `NtCreateFile` and `NtDeviceIoControlFile` do), builds an IRP with the
//! real x64 layout (`IRP` + one `IO_STACK_LOCATION`, `SystemBuffer` for METHOD_BUFFERED), calls
//! `MajorFunction[...]` from the driver object, and checks that the IRP was completed exactly
//! once before the dispatch routine returned. After the harness has called `DriverUnload`,
//! [`check_unload`] reports every device, link or kernel handle left behind.
//!
//! Rules reported here (see [`rules`]): the device name became reachable before a restrictive
//! DACL was applied; a named device without `FILE_DEVICE_SECURE_OPEN`; an IRP completed twice,
//! left pending, or completed with a status other than the one the dispatch routine returned;
//! `IofCompleteRequest` above DISPATCH_LEVEL; PASSIVE-only routines called above PASSIVE; a
//! SID, ACL or security descriptor built wrongly; devices, links or handles left at unload.

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::fmt;
use std::sync::Arc;

use ndis_sys::base::{ACCESS_MASK, BOOLEAN, HANDLE, NTSTATUS, UNICODE_STRING};
use ndis_sys::kernel::*;
use ndis_sys::status::{
    STATUS_ACCESS_DENIED, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_HANDLE,
    STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_OBJECT_NAME_COLLISION, STATUS_PENDING,
    STATUS_SUCCESS,
};

use crate::chunk::Chunk;
use crate::export;
use crate::exports::ExportTable;
use crate::fast_hash::FastMap;
use crate::kernel::{self, Call, Irql, World, APC_LEVEL, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::spin::{SpinGuard, SpinLock};
use crate::verifier::{self, Cleanup};

/// `STATUS_OBJECT_NAME_INVALID`.
pub const STATUS_OBJECT_NAME_INVALID: NTSTATUS = 0xC000_0033_u32 as i32;
/// `STATUS_OBJECT_NAME_NOT_FOUND`.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034_u32 as i32;
/// `STATUS_UNKNOWN_REVISION`.
pub const STATUS_UNKNOWN_REVISION: NTSTATUS = 0xC000_0058_u32 as i32;
/// `STATUS_REVISION_MISMATCH`.
pub const STATUS_REVISION_MISMATCH: NTSTATUS = 0xC000_0059_u32 as i32;
/// `STATUS_INVALID_ACL`.
pub const STATUS_INVALID_ACL: NTSTATUS = 0xC000_0077_u32 as i32;
/// `STATUS_INVALID_SID`.
pub const STATUS_INVALID_SID: NTSTATUS = 0xC000_0078_u32 as i32;
/// `STATUS_INVALID_SECURITY_DESCR`.
pub const STATUS_INVALID_SECURITY_DESCR: NTSTATUS = 0xC000_0079_u32 as i32;
/// `STATUS_ALLOTTED_SPACE_EXCEEDED`.
pub const STATUS_ALLOTTED_SPACE_EXCEEDED: NTSTATUS = 0xC000_0099_u32 as i32;

/// `IO_TYPE_DEVICE` and `IO_TYPE_IRP`, the `Type` of the objects the I/O manager allocates.
const IO_TYPE_DEVICE: i16 = 3;
const IO_TYPE_IRP: i16 = 6;
/// x64 `DEVICE_OBJECT` (opaque in ndis-sys; offsets from the same ntdiff/headers type dumps as the
/// IRP): size 0x150, `DriverObject` +0x08, `NextDevice` +0x10, `Flags` +0x30, `Characteristics`
/// +0x34, `DeviceExtension` +0x40, `DeviceType` +0x48, `StackSize` +0x4C.
const DEVICE_OBJECT_SIZE: usize = 0x150;
const DEVICE_DRIVER_OBJECT: usize = 0x08;
const DEVICE_NEXT_DEVICE: usize = 0x10;
const DEVICE_FLAGS: usize = 0x30;
const DEVICE_CHARACTERISTICS: usize = 0x34;
const DEVICE_EXTENSION: usize = 0x40;
const DEVICE_TYPE_OFFSET: usize = 0x48;
const DEVICE_STACK_SIZE: usize = 0x4C;
/// `DO_DEVICE_INITIALIZING`: set by IoCreateDevice; cleared by the I/O manager after DriverEntry.
const DO_DEVICE_INITIALIZING: u32 = 0x80;
/// x64 `FILE_OBJECT` size (only its address matters to the driver).
const FILE_OBJECT_SIZE: usize = 0xD8;
/// IRP flags for a buffered `DeviceIoControl`.
const IRP_BUFFERED_IO: u32 = 0x10;
const IRP_DEALLOCATE_BUFFER: u32 = 0x20;
const IRP_INPUT_OPERATION: u32 = 0x40;
const IRP_CREATE_OPERATION: u32 = 0x80;
const IRP_CLOSE_OPERATION: u32 = 0x400;

/// File access rights (winnt.h) and the generic mapping of files and devices.
pub const FILE_READ_DATA: ACCESS_MASK = 0x0001;
pub const FILE_WRITE_DATA: ACCESS_MASK = 0x0002;
pub const FILE_GENERIC_READ: ACCESS_MASK = 0x0012_0089;
pub const FILE_GENERIC_WRITE: ACCESS_MASK = 0x0012_0116;
pub const FILE_GENERIC_EXECUTE: ACCESS_MASK = 0x0012_00A0;
const ACL_REVISION_DS: u32 = 4;
const SID_MAX_SUB_AUTHORITIES: u8 = 15;
const SE_DACL_DEFAULTED: u16 = 0x0008;

/// The rules this module checks.
pub mod rules {
    use crate::verifier::Rule;

    /// The device's name must not be reachable (`IoCreateSymbolicLink`) before a restrictive DACL
    /// is on it: full access for SYSTEM and Administrators, at most read for everyone else.
    pub const SECURE_DACL_BEFORE_LINK: Rule = Rule::new(
        "Ddi_IoCreateSymbolicLink_SecureDacl",
        "https://learn.microsoft.com/windows-hardware/drivers/kernel/securing-device-objects",
    );
    /// A named device must be created with `FILE_DEVICE_SECURE_OPEN`, or opens of names below it
    /// bypass its DACL.
    pub const SECURE_OPEN: Rule = Rule::new(
        "Ddi_IoCreateDevice_FileDeviceSecureOpen",
        "https://learn.microsoft.com/windows-hardware/drivers/kernel/controlling-device-namespace-access",
    );
    /// An IRP is completed once (Driver Verifier: bug check 0x44 MULTIPLE_IRP_COMPLETE_REQUESTS).
    pub const MULTIPLE_IRP_COMPLETE: Rule = Rule::new(
        "MultipleIrpComplete",
        "https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x44--multiple-irp-complete-requests",
    );
    /// partyline answers every control request at once: the dispatch routine completes the IRP
    /// before it returns, and never returns STATUS_PENDING.
    pub const IRP_NOT_PENDING: Rule = Rule::new(
        "Ddi_DispatchRoutine_CompleteBeforeReturn",
        "https://learn.microsoft.com/windows-hardware/drivers/kernel/completing-irps",
    );
    /// A dispatch routine that completes an IRP returns the status it completed it with.
    pub const COMPLETE_STATUS: Rule = Rule::new(
        "Ddi_DispatchRoutine_ReturnCompletedStatus",
        "https://learn.microsoft.com/windows-hardware/drivers/kernel/completing-irps",
    );
    /// IofCompleteRequest: IRQL <= DISPATCH_LEVEL; never with STATUS_PENDING; Information within
    /// the output buffer of a buffered IOCTL.
    pub const COMPLETE_REQUEST: Rule = Rule::new(
        "Irql_IofCompleteRequest",
        "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocompleterequest",
    );
    /// I/O-manager and object routines that the DDI pages restrict to PASSIVE_LEVEL (or <= APC).
    pub const IRQL_IO: Rule =
        Rule::new("Irql_IoManager_Function", "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/");
    /// SIDs, ACLs and security descriptors are built with known revisions, ACEs fit their ACL,
    /// and every pointer passed is one the routine can use.
    pub const SECURITY_OBJECTS: Rule = Rule::new(
        "Ddi_RtlSecurity_WellFormed",
        "https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtladdaccessallowedace",
    );
    /// Handles, device objects and IRPs passed in are ones the I/O manager handed out.
    pub const KNOWN_OBJECT: Rule = Rule::new(
        "Ddi_IoManager_KnownObject",
        "https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-obopenobjectbypointer",
    );
    /// DriverUnload deletes every device object and symbolic link the driver created and closes
    /// every kernel handle it opened.
    pub const UNLOAD_CLEANUP: Rule = Rule::new(
        "Ddi_DriverUnload_DeleteDeviceAndLink",
        "https://learn.microsoft.com/windows-hardware/drivers/kernel/unload-routine-functionality",
    );
}

/// Registers this module's exports.
pub fn register(table: &mut ExportTable) {
    export!(table, "ntoskrnl.exe", IoCreateDevice = io_create_device);
    export!(table, "ntoskrnl.exe", IoDeleteDevice = io_delete_device);
    export!(table, "ntoskrnl.exe", IoCreateSymbolicLink = io_create_symbolic_link);
    export!(table, "ntoskrnl.exe", IoDeleteSymbolicLink = io_delete_symbolic_link);
    export!(table, "ntoskrnl.exe", IofCompleteRequest = iof_complete_request);
    export!(table, "ntoskrnl.exe", RtlCreateSecurityDescriptor = rtl_create_security_descriptor);
    export!(table, "ntoskrnl.exe", RtlCreateAcl = rtl_create_acl);
    export!(table, "ntoskrnl.exe", RtlAddAccessAllowedAce = rtl_add_access_allowed_ace);
    export!(table, "ntoskrnl.exe", RtlSetDaclSecurityDescriptor = rtl_set_dacl_security_descriptor);
    export!(table, "ntoskrnl.exe", RtlLengthSid = rtl_length_sid);
    export!(table, "ntoskrnl.exe", ObOpenObjectByPointer = ob_open_object_by_pointer);
    export!(table, "ntoskrnl.exe", ZwSetSecurityObject = zw_set_security_object);
    export!(table, "ntoskrnl.exe", ZwClose = zw_close);
    export!(table, "ntoskrnl.exe", IoAllocateWorkItem: not_implemented);
    export!(table, "ntoskrnl.exe", IoQueueWorkItem: not_implemented);
    export!(table, "ntoskrnl.exe", IoFreeWorkItem: not_implemented);
}

// ---------------------------------------------------------------------------------------------
// Security model

/// A security identifier.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    pub authority: [u8; 6],
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    fn new(authority: u8, sub_authorities: &[u32]) -> Sid {
        Sid { authority: [0, 0, 0, 0, 0, authority], sub_authorities: sub_authorities.to_vec() }
    }
    /// S-1-5-18, LocalSystem.
    pub fn local_system() -> Sid {
        Sid::new(5, &[SECURITY_LOCAL_SYSTEM_RID])
    }
    /// S-1-5-32-544, BUILTIN\Administrators.
    pub fn administrators() -> Sid {
        Sid::new(5, &[SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS])
    }
    /// S-1-5-32-545, BUILTIN\Users.
    pub fn users() -> Sid {
        Sid::new(5, &[SECURITY_BUILTIN_DOMAIN_RID, 0x221])
    }
    /// S-1-5-11, Authenticated Users.
    pub fn authenticated_users() -> Sid {
        Sid::new(5, &[11])
    }
    /// S-1-1-0, Everyone.
    pub fn everyone() -> Sid {
        Sid::new(1, &[0])
    }
    /// `RtlLengthSid`.
    pub fn len(&self) -> usize {
        8 + 4 * self.sub_authorities.len()
    }
    /// Never true for a valid SID.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authority = self.authority.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
        write!(f, "S-1-{authority}")?;
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An access-allowed ACE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ace {
    pub sid: Sid,
    pub mask: ACCESS_MASK,
}

/// The DACL of a device object as the simulator keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Security {
    /// What IoCreateDevice gives a device: SYSTEM and Administrators all access; Everyone read,
    /// write and execute.
    Default,
    /// A NULL DACL: everyone all access.
    NullDacl,
    /// A DACL of access-allowed ACEs (empty: nobody gets anything).
    Dacl(Vec<Ace>),
}

/// Maps generic rights to file rights (the generic mapping of file and device objects).
pub fn map_generic(mask: ACCESS_MASK) -> ACCESS_MASK {
    let mut mapped = mask & !(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL);
    if mask & GENERIC_READ != 0 {
        mapped |= FILE_GENERIC_READ;
    }
    if mask & GENERIC_WRITE != 0 {
        mapped |= FILE_GENERIC_WRITE;
    }
    if mask & GENERIC_EXECUTE != 0 {
        mapped |= FILE_GENERIC_EXECUTE;
    }
    if mask & GENERIC_ALL != 0 {
        mapped |= FILE_ALL_ACCESS;
    }
    mapped
}

impl Security {
    fn aces(&self) -> Vec<Ace> {
        match self {
            Security::Default => vec![
                Ace { sid: Sid::local_system(), mask: FILE_ALL_ACCESS },
                Ace { sid: Sid::administrators(), mask: FILE_ALL_ACCESS },
                Ace {
                    sid: Sid::everyone(),
                    mask: FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE,
                },
            ],
            Security::NullDacl => vec![Ace { sid: Sid::everyone(), mask: FILE_ALL_ACCESS }],
            Security::Dacl(aces) => aces.clone(),
        }
    }

    /// The file rights a caller's token is granted (allow ACEs only, so the order does not matter).
    pub fn granted(&self, caller: Caller) -> ACCESS_MASK {
        // Without building the ACE list or the token: every open checks this.
        let everyone = caller.has(1, &[0]);
        match self {
            Security::Default => {
                let full = caller.has(5, &[SECURITY_LOCAL_SYSTEM_RID])
                    || caller.has(5, &[SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS]);
                let mut mask = 0;
                if full {
                    mask |= map_generic(FILE_ALL_ACCESS);
                }
                if everyone {
                    mask |= map_generic(FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE);
                }
                mask
            }
            Security::NullDacl => {
                if everyone {
                    map_generic(FILE_ALL_ACCESS)
                } else {
                    0
                }
            }
            Security::Dacl(aces) => aces
                .iter()
                .filter(|a| {
                    caller.has(a.sid.authority[5], &a.sid.sub_authorities) && a.sid.authority[..5] == [0; 5]
                })
                .fold(0, |m, a| m | map_generic(a.mask)),
        }
    }

    /// Grant analysis: `None` when SYSTEM and Administrators have full access and every other SID
    /// at most read access; otherwise what is wrong.
    pub fn restrictive_problem(&self) -> Option<String> {
        if *self == Security::Default {
            return Some("the device still has its default DACL (Everyone: read, write, execute)".into());
        }
        if *self == Security::NullDacl {
            return Some("the device has a NULL DACL (Everyone: all access)".into());
        }
        let aces = self.aces();
        let rights =
            |sid: &Sid| aces.iter().filter(|a| a.sid == *sid).fold(0, |m, a| m | map_generic(a.mask));
        for (sid, name) in [(Sid::local_system(), "SYSTEM"), (Sid::administrators(), "Administrators")] {
            let got = rights(&sid);
            if got & FILE_ALL_ACCESS != FILE_ALL_ACCESS {
                return Some(format!("{name} ({sid}) lacks full access (granted 0x{got:08X})"));
            }
        }
        for ace in &aces {
            if ace.sid == Sid::local_system() || ace.sid == Sid::administrators() {
                continue;
            }
            let mapped = map_generic(ace.mask);
            if mapped & !FILE_GENERIC_READ != 0 {
                return Some(format!(
                    "{} is granted 0x{mapped:08X}, more than read access (0x{FILE_GENERIC_READ:08X})",
                    ace.sid
                ));
            }
        }
        None
    }
}

/// Who sends a request from user mode: the groups of their token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A service running as LocalSystem.
    System,
    /// An elevated administrator.
    Administrator,
    /// A standard user.
    User,
}

impl Caller {
    /// Whether the caller's token holds the SID S-1-`authority`-`sub_authorities`… (what
    /// [`Caller::groups`] lists, without building it).
    pub fn has(self, authority: u8, sub_authorities: &[u32]) -> bool {
        let administrators = [SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS];
        let users = [SECURITY_BUILTIN_DOMAIN_RID, 0x221];
        match (authority, sub_authorities) {
            (1, [0]) | (5, [11]) => true,
            (5, [rid]) if *rid == SECURITY_LOCAL_SYSTEM_RID => self == Caller::System,
            (5, subs) if subs == administrators => matches!(self, Caller::System | Caller::Administrator),
            (5, subs) if subs == users => matches!(self, Caller::Administrator | Caller::User),
            _ => false,
        }
    }

    /// The SIDs in the caller's token.
    pub fn groups(self) -> Vec<Sid> {
        let mut groups = vec![Sid::everyone(), Sid::authenticated_users()];
        match self {
            Caller::System => groups.extend([Sid::local_system(), Sid::administrators()]),
            Caller::Administrator => groups.extend([Sid::administrators(), Sid::users()]),
            Caller::User => groups.push(Sid::users()),
        }
        groups
    }
}

// ---------------------------------------------------------------------------------------------
// State

/// Memory the I/O manager owns and the driver reads: 16-byte aligned, never moved, freed only with
/// the manager (a stale pointer from the driver then still points at simulator memory).
struct Block(Box<[u128]>);

impl Block {
    fn new(len: usize) -> Block {
        Block(vec![0u128; len.div_ceil(16).max(1)].into_boxed_slice())
    }
    fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }
    fn ptr<T>(&self) -> *mut T {
        self.0.as_ptr() as *mut T
    }
}

/// Where IRPs and their system buffers are carved from: zeroed [`Chunk`]s (64 KiB, doubling up
/// to 2 MiB), handed out in order and never reused, freed only with the manager (like
/// [`Block`]s), without a heap allocation per request. Requests larger than 16 KiB get a
/// [`Block`] of their own.
#[derive(Default)]
struct Arena {
    chunks: Vec<Chunk<u128>>,
}

impl Arena {
    /// `len` zeroed bytes (at least 1), 16-byte aligned, that stay valid until the manager drops.
    fn allocate(&mut self, len: usize, big: &mut Vec<Block>) -> usize {
        let units = len.max(1).div_ceil(16);
        if units * 16 > 16 << 10 {
            let block = Block::new(len);
            let address = block.addr();
            big.push(block);
            return address;
        }
        let chunk = match self.chunks.last_mut() {
            Some(chunk) if chunk.room() >= units => chunk,
            _ => {
                let capacity =
                    self.chunks.last().map_or(4 << 10, |c| (2 * c.len()).min(crate::chunk::HUGE_PAGE / 16));
                self.chunks.push(Chunk::new(capacity));
                self.chunks.last_mut().expect("just pushed")
            }
        };
        chunk.reserve_zeroed(units) as usize
    }
}

/// Bytes of an IRP with its one stack location, rounded to 16.
const IRP_LEN: usize =
    (std::mem::size_of::<IRP>() + std::mem::size_of::<IO_STACK_LOCATION>()).div_ceil(16) * 16;

/// Every IRP the manager sent, in fixed-size slots of zeroed [`Chunk`]s (never reused, freed
/// only with the manager, so a driver that completes one again later hits simulator memory and is
/// reported), and its record, found from the IRP's address without a hash table: the chunk that
/// holds the address, then the slot.
#[derive(Default)]
struct Irps {
    /// Chunks of slots, each with the records of its IRPs (one per IRP sent, in order).
    chunks: Vec<(Chunk<u128>, Vec<IrpRecord>)>,
}

impl Irps {
    /// A fresh zeroed IRP, with a fresh record.
    fn allocate(&mut self) -> *mut IRP {
        const UNITS: usize = IRP_LEN / 16;
        let chunk = match self.chunks.last_mut() {
            Some(chunk) if chunk.0.room() >= UNITS => chunk,
            _ => {
                // 64 slots, doubling up to 2 MiB exactly (a huge page; its tail, less than a
                // slot, stays unused).
                let units = self.chunks.last().map_or(64 * UNITS, |(c, _)| 2 * c.len());
                let units = units.min(crate::chunk::HUGE_PAGE / 16);
                self.chunks.push((Chunk::new(units), Vec::with_capacity(units / UNITS)));
                self.chunks.last_mut().expect("just pushed")
            }
        };
        chunk.1.push(IrpRecord::default());
        chunk.0.reserve_zeroed(UNITS).cast()
    }

    /// The record of the IRP at `address`, if the manager sent one there.
    fn record_mut(&mut self, address: usize) -> Option<&mut IrpRecord> {
        // Newest first: completions concern recent IRPs.
        self.chunks.iter_mut().rev().find_map(|(chunk, records)| {
            let start = chunk.as_slice().as_ptr() as usize;
            let offset = address.checked_sub(start)?;
            if offset < chunk.len() * 16 && offset % IRP_LEN == 0 {
                records.get_mut(offset / IRP_LEN)
            } else {
                None
            }
        })
    }
}

struct Device {
    memory: Block,
    name: Option<String>,
    driver: usize,
    characteristics: u32,
    security: Security,
    deleted: bool,
}

struct KernelHandle {
    device: usize,
    access: ACCESS_MASK,
}

struct Open {
    device: usize,
    granted: ACCESS_MASK,
    file_object: Block,
    caller: Caller,
}

#[derive(Default)]
struct IrpRecord {
    /// `(status, information)` of the first IofCompleteRequest (any later one is reported).
    first_completion: Option<(NTSTATUS, usize)>,
    /// The dispatch routine has returned.
    returned: bool,
}

#[derive(Default)]
struct State {
    devices: BTreeMap<usize, Device>,
    /// Lower-case link name (`\??\partyline`) -> (name as created, device name).
    links: BTreeMap<String, (String, String)>,
    kernel_handles: HashMap<usize, KernelHandle>,
    next_handle: usize,
    opens: FastMap<u64, Open>,
    next_open: u64,
    irps: Irps,
    retired: Vec<Block>,
    arena: Arena,
    driver_object: Option<usize>,
}

/// The simulated I/O manager of one world (a [`World`] extension).
#[derive(Default)]
pub struct IoManager {
    state: SpinLock<State>,
}

/// Why a host request did not reach the driver, or did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoError {
    /// No device or link by that name (`STATUS_OBJECT_NAME_NOT_FOUND`).
    NotFound(String),
    /// The device's DACL does not grant the caller the access asked for (`STATUS_ACCESS_DENIED`).
    AccessDenied { caller: Caller, desired: ACCESS_MASK, granted: ACCESS_MASK },
    /// The handle is not open (`STATUS_INVALID_HANDLE`).
    InvalidHandle,
    /// The dispatch routine returned without completing the IRP (it is reported too).
    Pending { status: NTSTATUS },
    /// The driver failed the open (`IRP_MJ_CREATE` completed with an error).
    CreateFailed(NTSTATUS),
}

impl IoError {
    /// The status user mode would see.
    pub fn status(&self) -> NTSTATUS {
        match self {
            IoError::NotFound(_) => STATUS_OBJECT_NAME_NOT_FOUND,
            IoError::AccessDenied { .. } => STATUS_ACCESS_DENIED,
            IoError::InvalidHandle => STATUS_INVALID_HANDLE,
            IoError::Pending { .. } => STATUS_PENDING,
            IoError::CreateFailed(s) => *s,
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::NotFound(path) => write!(f, "{path}: no such device"),
            IoError::AccessDenied { caller, desired, granted } => write!(
                f,
                "access denied: {caller:?} asked for 0x{desired:08X}, the device's DACL grants 0x{granted:08X}"
            ),
            IoError::InvalidHandle => f.write_str("invalid handle"),
            IoError::Pending { status } => {
                write!(f, "the driver returned 0x{:08X} without completing the IRP", *status as u32)
            }
            IoError::CreateFailed(s) => write!(f, "the driver failed the open with 0x{:08X}", *s as u32),
        }
    }
}

impl std::error::Error for IoError {}

/// An open handle to a device, from [`IoManager::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileHandle(u64);

/// Canonical key of an object-manager name: links live in `\??`, whatever alias created them.
fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    for prefix in ["\\\\.\\", "\\dosdevices\\", "\\global??\\", "\\??\\"] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return format!("\\??\\{rest}");
        }
    }
    lower
}

fn nt_error(status: NTSTATUS) -> bool {
    (status as u32) >> 30 == 3
}

impl IoManager {
    /// The I/O manager of `world`, created on first use.
    pub fn of(world: &World) -> Arc<IoManager> {
        if let Some(io) = world.extension::<IoManager>() {
            return io;
        }
        let io = Arc::new(IoManager::default());
        match world.insert_extension(io.clone()) {
            Some(previous) => {
                world.insert_extension(previous.clone());
                previous
            }
            None => io,
        }
    }

    /// [`IoManager::of`] by reference (no reference count touched once it exists).
    pub fn of_ref(world: &World) -> &IoManager {
        if world.extension_ref::<IoManager>().is_none() {
            IoManager::of(world);
        }
        world.extension_ref::<IoManager>().expect("inserted above")
    }

    fn state(&self) -> SpinGuard<'_, State> {
        self.state.lock()
    }

    /// Tells the I/O manager which `DRIVER_OBJECT` the harness passed to DriverEntry; device
    /// creations naming another one are then refused and reported.
    pub fn set_driver_object(&self, driver_object: *mut DRIVER_OBJECT) {
        self.state().driver_object = Some(driver_object as usize);
    }

    /// Names of live (not deleted) devices.
    pub fn devices(&self) -> Vec<Option<String>> {
        self.state().devices.values().filter(|d| !d.deleted).map(|d| d.name.clone()).collect()
    }

    /// Live symbolic links as `(link, device name)`.
    pub fn links(&self) -> Vec<(String, String)> {
        self.state().links.values().cloned().collect()
    }

    /// The DACL of the live device called `name`.
    pub fn security_of(&self, name: &str) -> Option<Security> {
        let key = name.to_ascii_lowercase();
        let state = self.state();
        state
            .devices
            .values()
            .find(|d| !d.deleted && d.name.as_deref().map(str::to_ascii_lowercase) == Some(key.clone()))
            .map(|d| d.security.clone())
    }

    /// Resolves a user or NT path to a device: `\\.\X` and `\??\X` through the links, `\Device\X`
    /// directly. Returns the device address and whether the path names something *below* the
    /// device (`\Device\X\more`).
    fn resolve(state: &State, path: &str) -> Option<(usize, bool)> {
        let mut key = canonical(path);
        if let Some((_, target)) = state.links.get(&key) {
            key = target.to_ascii_lowercase();
        }
        state.devices.iter().filter(|(_, d)| !d.deleted).find_map(|(&addr, d)| {
            let name = d.name.as_ref()?.to_ascii_lowercase();
            if key == name {
                Some((addr, false))
            } else if key.starts_with(&format!("{name}\\")) {
                Some((addr, true))
            } else {
                None
            }
        })
    }

    /// `CreateFile(path, desired)` as `caller`: resolves the path, checks the device's DACL (the
    /// check `FILE_DEVICE_SECURE_OPEN` extends to names below the device), and sends
    /// `IRP_MJ_CREATE`.
    pub fn open(
        &self,
        world: &Arc<World>,
        path: &str,
        desired: ACCESS_MASK,
        caller: Caller,
    ) -> Result<FileHandle, IoError> {
        let desired = map_generic(desired);
        let (device, granted) = {
            let state = self.state();
            let (device, below) =
                Self::resolve(&state, path).ok_or_else(|| IoError::NotFound(path.into()))?;
            let d = &state.devices[&device];
            let granted = if below && d.characteristics & FILE_DEVICE_SECURE_OPEN == 0 {
                // Without FILE_DEVICE_SECURE_OPEN the I/O manager leaves the check of a name below
                // the device to the driver: the device's DACL is bypassed.
                FILE_ALL_ACCESS
            } else {
                d.security.granted(caller)
            };
            if d.security == Security::Default {
                verifier::report(
                    world,
                    rules::SECURE_DACL_BEFORE_LINK,
                    "sim!NtCreateFile",
                    format!("{path} opened while the device has its default DACL (Everyone may write)"),
                );
            }
            if desired & !granted != 0 {
                return Err(IoError::AccessDenied { caller, desired, granted });
            }
            (device, desired)
        };
        let file_object = Block::new(FILE_OBJECT_SIZE);
        let file_pointer = file_object.addr();
        let status = self.send(world, device, IRP_MJ_CREATE, file_pointer, None)?.0;
        if nt_error(status) {
            self.state().retired.push(file_object);
            return Err(IoError::CreateFailed(status));
        }
        let mut state = self.state();
        state.next_open += 1;
        let handle = state.next_open;
        state.opens.insert(handle, Open { device, granted, file_object, caller });
        Ok(FileHandle(handle))
    }

    /// `CloseHandle`: sends `IRP_MJ_CLOSE`.
    pub fn close(&self, world: &Arc<World>, handle: FileHandle) -> Result<NTSTATUS, IoError> {
        let open = self.state().opens.remove(&handle.0).ok_or(IoError::InvalidHandle)?;
        let result = self.send(world, open.device, IRP_MJ_CLOSE, open.file_object.addr(), None);
        self.state().retired.push(open.file_object);
        Ok(result?.0)
    }

    /// `DeviceIoControl` on an open handle. Like `NtDeviceIoControlFile`, refuses a code whose
    /// access bits the handle was not granted, without reaching the driver.
    pub fn device_control_handle(
        &self,
        world: &Arc<World>,
        handle: FileHandle,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<(NTSTATUS, Vec<u8>), IoError> {
        let mut output = vec![0; output_len];
        let (status, written) = self.device_control_into(world, handle, code, input, &mut output)?;
        output.truncate(written);
        Ok((status, output))
    }

    /// [`IoManager::device_control_handle`] with the output buffer the caller's (its length is
    /// the output length): returns the status and how many bytes of it were written.
    pub fn device_control_into(
        &self,
        world: &Arc<World>,
        handle: FileHandle,
        code: u32,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(NTSTATUS, usize), IoError> {
        let (device, file_object) = {
            let state = self.state();
            let open = state.opens.get(&handle.0).ok_or(IoError::InvalidHandle)?;
            let needed = required_access(code);
            if needed & !open.granted != 0 {
                return Err(IoError::AccessDenied {
                    caller: open.caller,
                    desired: needed,
                    granted: open.granted,
                });
            }
            (open.device, open.file_object.addr())
        };
        self.send(world, device, IRP_MJ_DEVICE_CONTROL, file_object, Some((code, input, output)))
    }

    /// Opens `path` as `caller` with the access `code` requires, sends one `DeviceIoControl`, and
    /// closes the handle. A [`Caller::User`] can therefore send only `FILE_READ_ACCESS` codes to a
    /// device whose DACL gives everyone at most read access.
    pub fn device_control(
        &self,
        world: &Arc<World>,
        path: &str,
        code: u32,
        input: &[u8],
        output_len: usize,
        caller: Caller,
    ) -> Result<(NTSTATUS, Vec<u8>), IoError> {
        let handle = self.open(world, path, required_access(code) | SYNCHRONIZE, caller)?;
        let result = self.device_control_handle(world, handle, code, input, output_len);
        let closed = self.close(world, handle);
        let result = result?;
        closed?;
        Ok(result)
    }

    /// Builds an IRP, calls the driver's dispatch routine at PASSIVE_LEVEL, and checks that the
    /// IRP was completed exactly once before it returned.
    fn send(
        &self,
        world: &Arc<World>,
        device: usize,
        major: u8,
        file_object: usize,
        ioctl: Option<(u32, &[u8], &mut [u8])>,
    ) -> Result<(NTSTATUS, usize), IoError> {
        // On the caller's processor if it is in this world already, else on processor 0.
        let current = kernel::current_processor_in(world);
        let entered = current.is_none().then(|| world.enter(0));
        let processor = current.unwrap_or(0);
        let (code, input, output) = ioctl.unwrap_or((0, &[], &mut []));
        let output_len = output.len();
        let (dispatch, device_ptr, irp, system_buffer) = {
            let mut state = self.state();
            let state = &mut *state;
            let driver = state.devices.get(&device).ok_or(IoError::InvalidHandle)?.driver;
            // Kept until the manager drops: a driver that completes again later must hit
            // simulator memory, and be reported, rather than freed memory.
            let irp = state.irps.allocate();
            let system_buffer =
                state.arena.allocate(input.len().max(output_len), &mut state.retired) as *mut u8;
            // SAFETY: `irp` is fresh zeroed simulator memory sized for an IRP and one stack
            // location, 16-byte aligned; nothing else references it yet. `system_buffer` holds
            // max(input, output) bytes.
            unsafe {
                (*irp).Type = IO_TYPE_IRP;
                (*irp).Size = IRP_LEN as u16;
                (*irp).StackCount = 1;
                (*irp).CurrentLocation = 1;
                (*irp).RequestorMode = UserMode;
                let stack = irp.cast::<u8>().add(std::mem::size_of::<IRP>()).cast::<IO_STACK_LOCATION>();
                (*irp).Tail.Overlay.CurrentStackLocation = stack;
                (*irp).Tail.Overlay.OriginalFileObject = file_object as *mut FILE_OBJECT;
                (*stack).MajorFunction = major;
                (*stack).DeviceObject = device as *mut DEVICE_OBJECT;
                (*stack).FileObject = file_object as *mut FILE_OBJECT;
                match major {
                    IRP_MJ_DEVICE_CONTROL => {
                        (*irp).Flags = IRP_BUFFERED_IO
                            | IRP_DEALLOCATE_BUFFER
                            | if output_len > 0 { IRP_INPUT_OPERATION } else { 0 };
                        (*irp).AssociatedIrp.SystemBuffer = system_buffer.cast();
                        std::ptr::copy_nonoverlapping(input.as_ptr(), system_buffer, input.len());
                        (*stack).Parameters.DeviceIoControl = IO_STACK_LOCATION_DEVICE_IO_CONTROL {
                            OutputBufferLength: output_len as u32,
                            Padding0: 0,
                            InputBufferLength: input.len() as u32,
                            Padding1: 0,
                            IoControlCode: code,
                            Padding2: 0,
                            Type3InputBuffer: std::ptr::null_mut(),
                        };
                    }
                    IRP_MJ_CREATE => (*irp).Flags = IRP_CREATE_OPERATION,
                    _ => (*irp).Flags = IRP_CLOSE_OPERATION,
                }
            }
            let driver = driver as *const DRIVER_OBJECT;
            // SAFETY: `driver` is the DRIVER_OBJECT the driver passed to IoCreateDevice, which the
            // harness allocated and keeps alive while the driver is loaded; MajorFunction is read
            // by value.
            let dispatch = unsafe { (*driver).MajorFunction[usize::from(major)] };
            (dispatch, device as *mut DEVICE_OBJECT, irp, system_buffer)
        };
        const CREATE: Call = Call::new("sim", "IRP_MJ_CREATE");
        const CLOSE: Call = Call::new("sim", "IRP_MJ_CLOSE");
        const DEVICE_CONTROL: Call = Call::new("sim", "IRP_MJ_DEVICE_CONTROL");
        let call = match major {
            IRP_MJ_CREATE => &CREATE,
            IRP_MJ_CLOSE => &CLOSE,
            _ => &DEVICE_CONTROL,
        };
        let name = call.name;
        let previous = world.set_irql(processor, PASSIVE_LEVEL);
        let words = [irp as u64, u64::from(code), input.len() as u64, output_len as u64];
        world.log_lazy(processor, call, &words, |a, f| {
            write!(f, "irp=0x{:x} code=0x{:08X} in={} out={}", a.word(0), a.word(1), a.word(2), a.word(3))
        });
        let returned = match dispatch {
            // SAFETY: the driver's dispatch routine, called as the I/O manager does: at PASSIVE
            // on a thread with the world entered, with a live device object and an IRP whose
            // layout is ndis-sys's x64 one.
            Some(dispatch) => unsafe { dispatch(device_ptr, irp) },
            None => {
                // The I/O manager's default for an empty slot (IopInvalidDeviceRequest).
                // SAFETY: `irp` is the IRP built above.
                unsafe {
                    (*irp).IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
                    (*irp).IoStatus.Information = 0;
                    iof_complete_request(irp, IO_NO_INCREMENT);
                }
                STATUS_INVALID_DEVICE_REQUEST
            }
        };
        let irql_after = world.set_irql(processor, previous);
        if irql_after != PASSIVE_LEVEL {
            verifier::report(
                world,
                rules::IRQL_IO,
                format!("driver!{name}"),
                format!("the dispatch routine returned at {irql_after}, not PASSIVE_LEVEL"),
            );
        }
        let mut state = self.state();
        let first_completion = state.irps.record_mut(irp as usize).and_then(|r| {
            r.returned = true;
            r.first_completion
        });
        let result = match first_completion {
            None => {
                verifier::report(
                    world,
                    rules::IRP_NOT_PENDING,
                    format!("driver!{name}"),
                    format!(
                        "the dispatch routine returned 0x{:08X} without completing IRP 0x{:x}; no IRP may be left pending",
                        returned as u32, irp as usize
                    ),
                );
                Err(IoError::Pending { status: returned })
            }
            Some((status, information)) => {
                if returned == STATUS_PENDING {
                    verifier::report(
                        world,
                        rules::IRP_NOT_PENDING,
                        format!("driver!{name}"),
                        "the dispatch routine completed the IRP but returned STATUS_PENDING",
                    );
                } else if returned != status {
                    verifier::report(
                        world,
                        rules::COMPLETE_STATUS,
                        format!("driver!{name}"),
                        format!(
                            "the IRP was completed with 0x{:08X} but the dispatch routine returned 0x{:08X}",
                            status as u32, returned as u32
                        ),
                    );
                }
                let mut written = 0;
                if major == IRP_MJ_DEVICE_CONTROL && !nt_error(status) {
                    if information > output_len {
                        verifier::report(
                            world,
                            rules::COMPLETE_REQUEST,
                            format!("driver!{name}"),
                            format!(
                                "IoStatus.Information {information} exceeds the output buffer length {output_len}"
                            ),
                        );
                    }
                    let n = information.min(output_len);
                    // SAFETY: the system buffer holds max(input, output_len) >= n bytes.
                    output[..n].copy_from_slice(unsafe { std::slice::from_raw_parts(system_buffer, n) });
                    written = n;
                }
                Ok((status, written))
            }
        };
        drop(state);
        drop(entered);
        result
    }
}

/// The handle access an IOCTL code requires (its access bits, as `NtDeviceIoControlFile` checks).
pub fn required_access(code: u32) -> ACCESS_MASK {
    let bits = (code >> 14) & 3;
    let mut access = 0;
    if bits & FILE_READ_ACCESS != 0 {
        access |= FILE_READ_DATA;
    }
    if bits & FILE_WRITE_ACCESS != 0 {
        access |= FILE_WRITE_DATA;
    }
    access
}

/// Reports leftovers after the harness called `DriverUnload`: devices not deleted, links not
/// deleted, kernel handles not closed. Returns how many were found.
/// Unload Routine Functionality: the Unload routine deletes the device objects and symbolic links
/// the driver created (https://learn.microsoft.com/windows-hardware/drivers/kernel/unload-routine-functionality).
pub fn check_unload(world: &World) -> usize {
    check_cleanup(world, Cleanup::DriverUnload)
}

/// [`check_unload`] after `routine`: DriverUnload, or a DriverEntry that failed (which must have
/// deleted what it created before returning; DriverUnload is not called then).
pub fn check_cleanup(world: &World, routine: Cleanup) -> usize {
    let io = IoManager::of(world);
    let state = io.state();
    let (call, ended) = (routine.call(), routine.ended());
    let mut found = 0;
    for device in state.devices.values().filter(|d| !d.deleted) {
        found += 1;
        let name = device.name.as_deref().unwrap_or("(unnamed)");
        verifier::report(
            world,
            rules::UNLOAD_CLEANUP,
            call,
            format!("{ended} leaving device {name} not deleted (IoDeleteDevice)"),
        );
    }
    for (link, device) in state.links.values() {
        found += 1;
        verifier::report(
            world,
            rules::UNLOAD_CLEANUP,
            call,
            format!("{ended} leaving symbolic link {link} -> {device} not deleted (IoDeleteSymbolicLink)"),
        );
    }
    for handle in state.kernel_handles.keys() {
        found += 1;
        verifier::report(
            world,
            rules::UNLOAD_CLEANUP,
            call,
            format!("{ended} leaving kernel handle 0x{handle:x} not closed (ZwClose)"),
        );
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Exports

/// Runs `f` with the world, processor and I/O manager, after logging the call and reporting it if
/// the processor's IRQL is above `max`.
fn enter_export<R>(
    name: &'static str,
    max: Irql,
    detail: impl FnOnce() -> String,
    f: impl FnOnce(&World, usize, &IoManager) -> R,
) -> R {
    let log = |world: &World, processor| world.log_call(processor, "ntoskrnl.exe", name, detail());
    enter_export_logged(name, max, log, f)
}

/// [`enter_export`] with the log entry made by `log` (a lazily rendered one on hot paths).
fn enter_export_logged<R>(
    name: &'static str,
    max: Irql,
    log: impl FnOnce(&World, usize),
    f: impl FnOnce(&World, usize, &IoManager) -> R,
) -> R {
    // SAFETY: an export (every caller is one), using the world only until it returns.
    let (world, processor) = unsafe { kernel::current_world(name) };
    let irql = world.irql(processor);
    log(world, processor);
    if irql > max {
        let rule = if name == "IofCompleteRequest" { rules::COMPLETE_REQUEST } else { rules::IRQL_IO };
        verifier::report(
            world,
            rule,
            format!("ntoskrnl.exe!{name}"),
            format!("called at {irql}; the routine may be called at {max} at most"),
        );
    }
    let io = IoManager::of_ref(world);
    f(world, processor, io)
}

/// Reads a driver's `UNICODE_STRING`.
///
/// # Safety
/// `s` is null or points to a readable `UNICODE_STRING` whose Buffer holds Length bytes.
unsafe fn read_unicode(s: *const UNICODE_STRING) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: the caller's contract: `s` points to a readable UNICODE_STRING.
    let us = unsafe { s.read_unaligned() };
    if us.Length % 2 != 0 || us.Length > us.MaximumLength || (us.Length > 0 && us.Buffer.is_null()) {
        return None;
    }
    if us.Length == 0 {
        return Some(String::new());
    }
    // SAFETY: Buffer holds Length bytes (UNICODE_STRING's contract, checked for null above).
    let units = unsafe { std::slice::from_raw_parts(us.Buffer, usize::from(us.Length / 2)) };
    Some(String::from_utf16_lossy(units))
}

/// Reads and checks a SID (RtlValidSid: revision 1, at most 15 sub-authorities).
///
/// # Safety
/// `sid` is null or points to at least `8 + 4 * SubAuthorityCount` readable bytes.
unsafe fn read_sid(sid: *const u8) -> Result<Sid, String> {
    if sid.is_null() {
        return Err("the SID pointer is NULL".into());
    }
    // SAFETY: the caller's contract: the 8-byte SID header is readable.
    let header = unsafe { std::ptr::read_unaligned(sid.cast::<[u8; 8]>()) };
    if header[0] != SID_REVISION {
        return Err(format!("SID revision {} (must be {SID_REVISION})", header[0]));
    }
    if header[1] > SID_MAX_SUB_AUTHORITIES {
        return Err(format!("SID has {} sub-authorities (at most {SID_MAX_SUB_AUTHORITIES})", header[1]));
    }
    let mut authority = [0u8; 6];
    authority.copy_from_slice(&header[2..8]);
    let sub_authorities = (0..usize::from(header[1]))
        // SAFETY: the caller's contract: SubAuthorityCount u32s follow the header.
        .map(|i| unsafe { std::ptr::read_unaligned(sid.add(8 + 4 * i).cast::<u32>()) })
        .collect();
    Ok(Sid { authority, sub_authorities })
}

/// Reads an ACL: header checks, then every ACE within `AclSize`. Returns the ACEs and the bytes
/// they use (header included).
///
/// # Safety
/// `acl` is null or points to `AclSize` readable bytes.
unsafe fn read_acl(acl: *const ACL) -> Result<(Vec<Ace>, usize), String> {
    if acl.is_null() {
        return Err("the ACL pointer is NULL".into());
    }
    // SAFETY: the caller's contract: the ACL header is readable.
    let header = unsafe { acl.read_unaligned() };
    if !(u32::from(header.AclRevision) == ACL_REVISION || u32::from(header.AclRevision) == ACL_REVISION_DS) {
        return Err(format!("ACL revision {} (ACL_REVISION 2 or ACL_REVISION_DS 4)", header.AclRevision));
    }
    let size = usize::from(header.AclSize);
    if size < std::mem::size_of::<ACL>() {
        return Err(format!("AclSize {size} is smaller than the ACL header"));
    }
    let base = acl.cast::<u8>();
    let mut offset = std::mem::size_of::<ACL>();
    let mut aces = Vec::new();
    for index in 0..header.AceCount {
        if offset + 4 > size {
            return Err(format!("ACE {index} starts past AclSize {size}"));
        }
        // SAFETY: offset + 4 <= AclSize, inside the ACL the caller vouched for.
        let ace = unsafe { base.add(offset).cast::<ACE_HEADER>().read_unaligned() };
        let ace_size = usize::from(ace.AceSize);
        if ace_size < 8 || ace_size % 4 != 0 || offset + ace_size > size {
            return Err(format!("ACE {index} has size {ace_size} at offset {offset} of a {size}-byte ACL"));
        }
        if ace.AceType == ACCESS_ALLOWED_ACE_TYPE {
            // SAFETY: the mask lies within the ACE, which lies within the ACL.
            let mask = unsafe { base.add(offset + 4).cast::<u32>().read_unaligned() };
            // SAFETY: the SID starts within the ACE; its length is checked against the ACE below.
            let sid = unsafe { read_sid(base.add(offset + 8)) }?;
            if 8 + sid.len() > ace_size {
                return Err(format!("the SID of ACE {index} overflows the ACE"));
            }
            aces.push(Ace { sid, mask });
        } else {
            return Err(format!(
                "ACE {index} has type {} (only access-allowed ACEs are modelled)",
                ace.AceType
            ));
        }
        offset += ace_size;
    }
    Ok((aces, offset))
}

fn security_error(world: &World, name: &str, detail: String) {
    verifier::report(world, rules::SECURITY_OBJECTS, format!("ntoskrnl.exe!{name}"), detail);
}

/// `IoCreateDevice`. IRQL: PASSIVE_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocreatedevice
unsafe extern "win64" fn io_create_device(
    driver_object: *mut DRIVER_OBJECT,
    extension_size: u32,
    device_name: *mut UNICODE_STRING,
    device_type: DEVICE_TYPE,
    characteristics: u32,
    exclusive: BOOLEAN,
    device_object: *mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    // SAFETY: the driver passes NULL or a valid UNICODE_STRING, as the DDI requires.
    let name = unsafe { read_unicode(device_name) };
    let shown =
        format!("{name:?}, type 0x{device_type:X}, chars 0x{characteristics:X}, ext {extension_size}");
    let detail = move || shown;
    enter_export("IoCreateDevice", PASSIVE_LEVEL, detail, |world, _, io| {
        if driver_object.is_null() || device_object.is_null() || (!device_name.is_null() && name.is_none()) {
            return STATUS_INVALID_PARAMETER;
        }
        let mut state = io.state();
        if let Some(expected) = state.driver_object {
            if expected != driver_object as usize {
                verifier::report(
                    world,
                    rules::KNOWN_OBJECT,
                    "ntoskrnl.exe!IoCreateDevice",
                    format!(
                        "DriverObject 0x{:x} is not the one passed to DriverEntry",
                        driver_object as usize
                    ),
                );
                return STATUS_INVALID_PARAMETER;
            }
        }
        if let Some(n) = &name {
            if !n.starts_with('\\') {
                return STATUS_OBJECT_NAME_INVALID;
            }
            let taken = state.devices.values().any(|d| !d.deleted && d.name.as_deref() == Some(n.as_str()));
            if taken {
                return STATUS_OBJECT_NAME_COLLISION;
            }
            // Controlling Device Namespace Access: a named device is created with
            // FILE_DEVICE_SECURE_OPEN so that opens of names below it are checked against its DACL.
            if characteristics & FILE_DEVICE_SECURE_OPEN == 0 {
                verifier::report(
                    world,
                    rules::SECURE_OPEN,
                    "ntoskrnl.exe!IoCreateDevice",
                    format!("{n} was created without FILE_DEVICE_SECURE_OPEN"),
                );
            }
        }
        let memory = Block::new(DEVICE_OBJECT_SIZE + extension_size as usize);
        let base = memory.ptr::<u8>();
        // SAFETY: `memory` is zeroed simulator memory of DEVICE_OBJECT_SIZE + extension bytes;
        // every offset written is below DEVICE_OBJECT_SIZE and suitably aligned.
        unsafe {
            base.cast::<i16>().write(IO_TYPE_DEVICE);
            base.add(2).cast::<u16>().write(DEVICE_OBJECT_SIZE as u16);
            base.add(DEVICE_DRIVER_OBJECT).cast::<usize>().write(driver_object as usize);
            base.add(DEVICE_FLAGS).cast::<u32>().write(DO_DEVICE_INITIALIZING);
            base.add(DEVICE_CHARACTERISTICS).cast::<u32>().write(characteristics);
            let extension = if extension_size > 0 { base.add(DEVICE_OBJECT_SIZE) as usize } else { 0 };
            base.add(DEVICE_EXTENSION).cast::<usize>().write(extension);
            base.add(DEVICE_TYPE_OFFSET).cast::<u32>().write(device_type);
            base.add(DEVICE_STACK_SIZE).cast::<i8>().write(1);
        }
        // SAFETY: `driver_object` is the driver's DRIVER_OBJECT (checked against the harness's
        // when known); the new device goes to the head of its DeviceObject list, as on Windows.
        unsafe {
            base.add(DEVICE_NEXT_DEVICE).cast::<usize>().write((*driver_object).DeviceObject as usize);
            (*driver_object).DeviceObject = base.cast();
            device_object.write(base.cast());
        }
        let _ = exclusive;
        state.devices.insert(
            memory.addr(),
            Device {
                memory,
                name,
                driver: driver_object as usize,
                characteristics,
                security: Security::Default,
                deleted: false,
            },
        );
        STATUS_SUCCESS
    })
}

/// `IoDeleteDevice`. IRQL: PASSIVE_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iodeletedevice
unsafe extern "win64" fn io_delete_device(device_object: *mut DEVICE_OBJECT) {
    let detail = || format!("0x{:x}", device_object as usize);
    enter_export("IoDeleteDevice", PASSIVE_LEVEL, detail, |world, _, io| {
        let mut state = io.state();
        let Some(device) = state.devices.get_mut(&(device_object as usize)).filter(|d| !d.deleted) else {
            verifier::report(
                world,
                rules::KNOWN_OBJECT,
                "ntoskrnl.exe!IoDeleteDevice",
                format!("0x{:x} is not a live device object", device_object as usize),
            );
            return;
        };
        device.deleted = true;
        let driver = device.driver as *mut DRIVER_OBJECT;
        let me = device.memory.addr();
        // SAFETY: unlinks the device from its driver's DeviceObject list; every element of that
        // list is a device object this module allocated (NextDevice at +0x10), and the driver
        // object is the one the device was created with.
        unsafe {
            let next_of = |d: usize| (d as *mut u8).add(DEVICE_NEXT_DEVICE).cast::<usize>();
            let mut link: *mut usize = std::ptr::addr_of_mut!((*driver).DeviceObject).cast();
            while *link != 0 {
                if *link == me {
                    *link = *next_of(me);
                    break;
                }
                link = next_of(*link);
            }
        }
    })
}

/// `IoCreateSymbolicLink`. IRQL: PASSIVE_LEVEL. Makes the device's name reachable from user mode,
/// so its restrictive DACL must already be in place.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocreatesymboliclink
unsafe extern "win64" fn io_create_symbolic_link(
    link: *mut UNICODE_STRING,
    device: *mut UNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the driver passes valid UNICODE_STRINGs, as the DDI requires.
    let (link_name, device_name) = unsafe { (read_unicode(link), read_unicode(device)) };
    let detail = || format!("{link_name:?} -> {device_name:?}");
    enter_export("IoCreateSymbolicLink", PASSIVE_LEVEL, detail, |world, _, io| {
        let (Some(link_name), Some(device_name)) = (link_name.clone(), device_name.clone()) else {
            return STATUS_INVALID_PARAMETER;
        };
        let mut state = io.state();
        let key = canonical(&link_name);
        if state.links.contains_key(&key) {
            return STATUS_OBJECT_NAME_COLLISION;
        }
        let target = state.devices.values().find(|d| {
            !d.deleted
                && d.name.as_deref().map(str::to_ascii_lowercase) == Some(device_name.to_ascii_lowercase())
        });
        let Some(target) = target else {
            return STATUS_OBJECT_NAME_NOT_FOUND;
        };
        // Securing Device Objects: the DACL must be restrictive before user mode can reach the
        // name (SYSTEM and Administrators full access, everyone else at most read).
        if let Some(problem) = target.security.restrictive_problem() {
            verifier::report(
                world,
                rules::SECURE_DACL_BEFORE_LINK,
                "ntoskrnl.exe!IoCreateSymbolicLink",
                format!("{link_name} made {device_name} reachable before a restrictive DACL was applied: {problem}"),
            );
        }
        state.links.insert(key, (link_name, device_name));
        STATUS_SUCCESS
    })
}

/// `IoDeleteSymbolicLink`. IRQL: PASSIVE_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iodeletesymboliclink
unsafe extern "win64" fn io_delete_symbolic_link(link: *mut UNICODE_STRING) -> NTSTATUS {
    // SAFETY: the driver passes a valid UNICODE_STRING, as the DDI requires.
    let link_name = unsafe { read_unicode(link) };
    enter_export(
        "IoDeleteSymbolicLink",
        PASSIVE_LEVEL,
        || format!("{link_name:?}"),
        |_, _, io| {
            let Some(link_name) = link_name.clone() else {
                return STATUS_INVALID_PARAMETER;
            };
            match io.state().links.remove(&canonical(&link_name)) {
                Some(_) => STATUS_SUCCESS,
                None => STATUS_OBJECT_NAME_NOT_FOUND,
            }
        },
    )
}

/// `IofCompleteRequest` (`IoCompleteRequest`). IRQL <= DISPATCH_LEVEL. An IRP is completed once;
/// it is never completed with STATUS_PENDING.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocompleterequest
unsafe extern "win64" fn iof_complete_request(irp: *mut IRP, boost: i8) {
    const CALL: Call = Call::new("ntoskrnl.exe", "IofCompleteRequest");
    enter_export_logged(
        CALL.name,
        DISPATCH_LEVEL,
        |world, processor| {
            world.log_lazy(processor, &CALL, &[irp as u64, boost as u64], |a, f| {
                write!(f, "irp=0x{:x} boost={}", a.word(0), a.word(1) as i8)
            })
        },
        |world, _, io| {
            let mut state = io.state();
            let Some(record) = state.irps.record_mut(irp as usize) else {
                verifier::report(
                    world,
                    rules::KNOWN_OBJECT,
                    "ntoskrnl.exe!IofCompleteRequest",
                    format!("0x{:x} is not an IRP the I/O manager sent", irp as usize),
                );
                return;
            };
            // SAFETY: `irp` is an IRP this module built; its memory is kept until the manager drops.
            let (status, information) = unsafe { ((*irp).IoStatus.Status, (*irp).IoStatus.Information) };
            if let Some((first, _)) = record.first_completion {
                verifier::report(
                    world,
                    rules::MULTIPLE_IRP_COMPLETE,
                    "ntoskrnl.exe!IofCompleteRequest",
                    format!(
                        "IRP 0x{:x} completed again (first with 0x{:08X}, now with 0x{:08X})",
                        irp as usize, first as u32, status as u32
                    ),
                );
            } else if status == STATUS_PENDING {
                verifier::report(
                    world,
                    rules::COMPLETE_REQUEST,
                    "ntoskrnl.exe!IofCompleteRequest",
                    format!("IRP 0x{:x} completed with STATUS_PENDING", irp as usize),
                );
            }
            if record.returned && record.first_completion.is_none() {
                verifier::report(
                    world,
                    rules::IRP_NOT_PENDING,
                    "ntoskrnl.exe!IofCompleteRequest",
                    format!("IRP 0x{:x} completed after its dispatch routine returned", irp as usize),
                );
            }
            record.first_completion.get_or_insert((status, information));
        },
    )
}

/// `RtlCreateSecurityDescriptor`. IRQL: PASSIVE_LEVEL. Revision must be
/// SECURITY_DESCRIPTOR_REVISION, else STATUS_UNKNOWN_REVISION.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcreatesecuritydescriptor
unsafe extern "win64" fn rtl_create_security_descriptor(
    sd: *mut SECURITY_DESCRIPTOR,
    revision: u32,
) -> NTSTATUS {
    let detail = || format!("0x{:x}, revision {revision}", sd as usize);
    enter_export("RtlCreateSecurityDescriptor", PASSIVE_LEVEL, detail, |world, _, _| {
        if revision != SECURITY_DESCRIPTOR_REVISION {
            security_error(
                world,
                "RtlCreateSecurityDescriptor",
                format!("revision {revision} (must be SECURITY_DESCRIPTOR_REVISION 1)"),
            );
            return STATUS_UNKNOWN_REVISION;
        }
        if sd.is_null() {
            security_error(world, "RtlCreateSecurityDescriptor", "NULL descriptor".into());
            return STATUS_INVALID_PARAMETER;
        }
        let empty = SECURITY_DESCRIPTOR {
            Revision: SECURITY_DESCRIPTOR_REVISION as u8,
            Sbz1: 0,
            Control: 0,
            Owner: std::ptr::null_mut(),
            Group: std::ptr::null_mut(),
            Sacl: std::ptr::null_mut(),
            Dacl: std::ptr::null_mut(),
        };
        // SAFETY: the driver passes a writable SECURITY_DESCRIPTOR_MIN_LENGTH buffer (DDI contract).
        unsafe { sd.write_unaligned(empty) };
        STATUS_SUCCESS
    })
}

/// `RtlCreateAcl`. IRQL <= APC_LEVEL. STATUS_BUFFER_TOO_SMALL when AclLength cannot hold the
/// header; STATUS_INVALID_PARAMETER for an unknown revision or a length above 0xFFFF.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtlcreateacl
unsafe extern "win64" fn rtl_create_acl(acl: *mut ACL, length: u32, revision: u32) -> NTSTATUS {
    let detail = || format!("0x{:x}, {length} bytes, revision {revision}", acl as usize);
    enter_export("RtlCreateAcl", APC_LEVEL, detail, |world, _, _| {
        if (length as usize) < std::mem::size_of::<ACL>() {
            security_error(world, "RtlCreateAcl", format!("AclLength {length} cannot hold the ACL header"));
            return STATUS_BUFFER_TOO_SMALL;
        }
        if !(revision == ACL_REVISION || revision == ACL_REVISION_DS) || length > 0xFFFF {
            security_error(
                world,
                "RtlCreateAcl",
                format!("revision {revision} or AclLength {length} is invalid"),
            );
            return STATUS_INVALID_PARAMETER;
        }
        if acl.is_null() {
            security_error(world, "RtlCreateAcl", "NULL ACL".into());
            return STATUS_INVALID_PARAMETER;
        }
        let header =
            ACL { AclRevision: revision as u8, Sbz1: 0, AclSize: (length & !3) as u16, AceCount: 0, Sbz2: 0 };
        // SAFETY: the driver passes a writable buffer of AclLength >= 8 bytes (DDI contract).
        unsafe { acl.write_unaligned(header) };
        STATUS_SUCCESS
    })
}

/// `RtlAddAccessAllowedAce`. IRQL <= APC_LEVEL. STATUS_ALLOTTED_SPACE_EXCEEDED when the ACE does
/// not fit; STATUS_INVALID_ACL, STATUS_INVALID_SID, STATUS_REVISION_MISMATCH.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtladdaccessallowedace
unsafe extern "win64" fn rtl_add_access_allowed_ace(
    acl: *mut ACL,
    revision: u32,
    mask: ACCESS_MASK,
    sid: *mut SID,
) -> NTSTATUS {
    const NAME: &str = "RtlAddAccessAllowedAce";
    // SAFETY: the driver passes a valid SID (DDI contract); read_sid checks its header first.
    let parsed = unsafe { read_sid(sid.cast::<u8>()) };
    let detail = || match &parsed {
        Ok(s) => format!("0x{:x}, revision {revision}, 0x{mask:08X}, {s}", acl as usize),
        Err(e) => format!("0x{:x}, revision {revision}, 0x{mask:08X}, bad SID: {e}", acl as usize),
    };
    enter_export(NAME, APC_LEVEL, detail, |world, _, _| {
        let sid = match &parsed {
            Ok(sid) => sid.clone(),
            Err(e) => {
                security_error(world, NAME, e.clone());
                return STATUS_INVALID_SID;
            }
        };
        if !(revision == ACL_REVISION || revision == ACL_REVISION_DS) {
            security_error(world, NAME, format!("ACE revision {revision} is unknown"));
            return STATUS_REVISION_MISMATCH;
        }
        // SAFETY: the driver passes an ACL made by RtlCreateAcl (DDI contract); read_acl stays
        // within its AclSize.
        let (_, used) = match unsafe { read_acl(acl) } {
            Ok(v) => v,
            Err(e) => {
                security_error(world, NAME, e);
                return STATUS_INVALID_ACL;
            }
        };
        // SAFETY: as above; the header is readable.
        let mut header = unsafe { acl.read_unaligned() };
        let ace_size = 8 + sid.len();
        if used + ace_size > usize::from(header.AclSize) {
            security_error(
                world,
                NAME,
                format!(
                    "a {ace_size}-byte ACE for {sid} does not fit: {used} of {} bytes used (ACE overflow)",
                    header.AclSize
                ),
            );
            return STATUS_ALLOTTED_SPACE_EXCEEDED;
        }
        let mut bytes = Vec::with_capacity(ace_size);
        bytes.extend_from_slice(&[ACCESS_ALLOWED_ACE_TYPE, 0]);
        bytes.extend_from_slice(&(ace_size as u16).to_le_bytes());
        bytes.extend_from_slice(&mask.to_le_bytes());
        bytes.extend_from_slice(&[SID_REVISION, sid.sub_authorities.len() as u8]);
        bytes.extend_from_slice(&sid.authority);
        for s in &sid.sub_authorities {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        header.AceCount += 1;
        header.AclRevision = header.AclRevision.max(revision as u8);
        // SAFETY: used + ace_size <= AclSize, inside the driver's ACL buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), acl.cast::<u8>().add(used), ace_size);
            acl.write_unaligned(header);
        }
        STATUS_SUCCESS
    })
}

/// `RtlSetDaclSecurityDescriptor`. IRQL: PASSIVE_LEVEL. STATUS_UNKNOWN_REVISION for a descriptor
/// not made by RtlCreateSecurityDescriptor; STATUS_INVALID_SECURITY_DESCR for a self-relative one.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlsetdaclsecuritydescriptor
unsafe extern "win64" fn rtl_set_dacl_security_descriptor(
    sd: *mut SECURITY_DESCRIPTOR,
    present: BOOLEAN,
    dacl: *mut ACL,
    defaulted: BOOLEAN,
) -> NTSTATUS {
    const NAME: &str = "RtlSetDaclSecurityDescriptor";
    let detail = || {
        format!("0x{:x}, present {present}, dacl 0x{:x}, defaulted {defaulted}", sd as usize, dacl as usize)
    };
    enter_export(NAME, PASSIVE_LEVEL, detail, |world, _, _| {
        if sd.is_null() {
            security_error(world, NAME, "NULL descriptor".into());
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the driver passes a descriptor (DDI contract); it is read by value.
        let mut d = unsafe { sd.read_unaligned() };
        if u32::from(d.Revision) != SECURITY_DESCRIPTOR_REVISION {
            security_error(world, NAME, format!("descriptor revision {} (not initialised?)", d.Revision));
            return STATUS_UNKNOWN_REVISION;
        }
        if d.Control & SE_SELF_RELATIVE != 0 {
            security_error(world, NAME, "the descriptor is self-relative".into());
            return STATUS_INVALID_SECURITY_DESCR;
        }
        if present != 0 {
            d.Control |= SE_DACL_PRESENT;
            d.Dacl = dacl;
            if defaulted != 0 {
                d.Control |= SE_DACL_DEFAULTED;
            } else {
                d.Control &= !SE_DACL_DEFAULTED;
            }
        } else {
            d.Control &= !(SE_DACL_PRESENT | SE_DACL_DEFAULTED);
            d.Dacl = std::ptr::null_mut();
        }
        // SAFETY: as above; written back in place.
        unsafe { sd.write_unaligned(d) };
        STATUS_SUCCESS
    })
}

/// `RtlLengthSid`. IRQL <= APC_LEVEL. The SID must be valid.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtllengthsid
unsafe extern "win64" fn rtl_length_sid(sid: *mut SID) -> u32 {
    // SAFETY: the driver passes a valid SID (DDI contract); read_sid checks its header first.
    let parsed = unsafe { read_sid(sid.cast::<u8>()) };
    enter_export(
        "RtlLengthSid",
        APC_LEVEL,
        || format!("{parsed:?}"),
        |world, _, _| match &parsed {
            Ok(sid) => sid.len() as u32,
            Err(e) => {
                security_error(world, "RtlLengthSid", e.clone());
                // What RtlLengthSid computes from the header regardless.
                if sid.is_null() {
                    0
                } else {
                    // SAFETY: non-null; the driver passed a SID whose header is readable.
                    let count = unsafe { (*sid).SubAuthorityCount };
                    8 + 4 * u32::from(count)
                }
            }
        },
    )
}

/// `ObOpenObjectByPointer`. IRQL: PASSIVE_LEVEL. The object must be one the simulator knows (a
/// device object); the handle is a kernel handle granted `DesiredAccess`.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-obopenobjectbypointer
unsafe extern "win64" fn ob_open_object_by_pointer(
    object: *mut c_void,
    attributes: u32,
    _access_state: *mut ACCESS_STATE,
    desired: ACCESS_MASK,
    _object_type: *mut OBJECT_TYPE,
    mode: KPROCESSOR_MODE,
    handle: *mut HANDLE,
) -> NTSTATUS {
    let detail =
        || format!("0x{:x}, attrs 0x{attributes:X}, access 0x{desired:08X}, mode {mode}", object as usize);
    enter_export("ObOpenObjectByPointer", PASSIVE_LEVEL, detail, |world, _, io| {
        let mut state = io.state();
        if state.devices.get(&(object as usize)).is_none_or(|d| d.deleted) {
            verifier::report(
                world,
                rules::KNOWN_OBJECT,
                "ntoskrnl.exe!ObOpenObjectByPointer",
                format!("0x{:x} is not a live device object", object as usize),
            );
            return STATUS_INVALID_PARAMETER;
        }
        if handle.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        state.next_handle += 1;
        // Kernel handles have the top bit set.
        let value = 0xFFFF_FFFF_8000_0000usize | (state.next_handle * 4);
        let access = if desired & GENERIC_ALL != 0 { FILE_ALL_ACCESS } else { map_generic(desired) };
        state.kernel_handles.insert(value, KernelHandle { device: object as usize, access });
        // SAFETY: `handle` is the driver's writable HANDLE (checked non-null).
        unsafe { handle.write(value as HANDLE) };
        STATUS_SUCCESS
    })
}

/// `ZwSetSecurityObject`. IRQL: PASSIVE_LEVEL. Setting the DACL needs WRITE_DAC on the handle;
/// the descriptor is copied, so the driver's buffers may be freed afterwards.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwsetsecurityobject
unsafe extern "win64" fn zw_set_security_object(
    handle: HANDLE,
    information: SECURITY_INFORMATION,
    sd: *mut SECURITY_DESCRIPTOR,
) -> NTSTATUS {
    const NAME: &str = "ZwSetSecurityObject";
    let detail = || format!("0x{:x}, info 0x{information:X}, sd 0x{:x}", handle as usize, sd as usize);
    enter_export(NAME, PASSIVE_LEVEL, detail, |world, _, io| {
        let mut state = io.state();
        let Some(kh) = state.kernel_handles.get(&(handle as usize)) else {
            verifier::report(
                world,
                rules::KNOWN_OBJECT,
                "ntoskrnl.exe!ZwSetSecurityObject",
                format!("0x{:x} is not an open kernel handle", handle as usize),
            );
            return STATUS_INVALID_HANDLE;
        };
        let (device, access) = (kh.device, kh.access);
        if information & DACL_SECURITY_INFORMATION == 0 {
            return STATUS_SUCCESS;
        }
        if access & WRITE_DAC == 0 {
            return STATUS_ACCESS_DENIED;
        }
        if sd.is_null() {
            security_error(world, NAME, "NULL descriptor".into());
            return STATUS_INVALID_SECURITY_DESCR;
        }
        // SAFETY: the driver passes a descriptor (DDI contract); read by value.
        let d = unsafe { sd.read_unaligned() };
        if u32::from(d.Revision) != SECURITY_DESCRIPTOR_REVISION {
            security_error(world, NAME, format!("descriptor revision {}", d.Revision));
            return STATUS_UNKNOWN_REVISION;
        }
        if d.Control & SE_SELF_RELATIVE != 0 {
            // Self-relative descriptors are valid on Windows but not modelled.
            return STATUS_NOT_SUPPORTED;
        }
        let security = if d.Control & SE_DACL_PRESENT == 0 || d.Dacl.is_null() {
            Security::NullDacl
        } else {
            // SAFETY: the DACL pointer of the driver's descriptor; read_acl stays within AclSize.
            match unsafe { read_acl(d.Dacl) } {
                Ok((aces, _)) => Security::Dacl(aces),
                Err(e) => {
                    security_error(world, NAME, e);
                    return STATUS_INVALID_ACL;
                }
            }
        };
        if let Some(device) = state.devices.get_mut(&device) {
            device.security = security;
        }
        STATUS_SUCCESS
    })
}

/// `ZwClose`. IRQL: PASSIVE_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwclose
unsafe extern "win64" fn zw_close(handle: HANDLE) -> NTSTATUS {
    enter_export(
        "ZwClose",
        PASSIVE_LEVEL,
        || format!("0x{:x}", handle as usize),
        |world, _, io| {
            if io.state().kernel_handles.remove(&(handle as usize)).is_some() {
                STATUS_SUCCESS
            } else {
                verifier::report(
                    world,
                    rules::KNOWN_OBJECT,
                    "ntoskrnl.exe!ZwClose",
                    format!("0x{:x} is not an open kernel handle", handle as usize),
                );
                STATUS_INVALID_HANDLE
            }
        },
    )
}

#[cfg(test)]
mod tests;
