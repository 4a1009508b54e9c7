//! The I/O manager against a driver made of host functions: a well-behaved control device, and
//! one deliberately misbehaving action per verifier rule, each proving the rule fires.

use std::cell::Cell;

use crate::world_local::WorldLocal;
use std::sync::Arc;

use ndis_sys::base::{ACCESS_MASK, HANDLE, NTSTATUS, UNICODE_STRING};
use ndis_sys::kernel::*;
use ndis_sys::status::*;

use super::device::*;
use super::disclosure::{self, Poison, Suspects};
use super::manager::iof_complete_request;
use super::object::*;
use super::security::*;
use super::*;
use crate::kernel::{Irql, World, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::verifier::Verifier;
use std::ffi::c_void;

const DEVICE: &str = "\\Device\\Partyline";
const LINK: &str = "\\DosDevices\\Partyline";
const USER_PATH: &str = "\\\\.\\Partyline";
/// A read (query) and a write (state-changing) IOCTL, as partyline-ioctl defines them.
const READ_CODE: u32 = CTL_CODE(0x8A7C, 0x805, METHOD_BUFFERED, FILE_READ_ACCESS);
const WRITE_CODE: u32 = CTL_CODE(0x8A7C, 0x801, METHOD_BUFFERED, FILE_WRITE_ACCESS);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Complete,
    CompleteTwice,
    LeavePending,
    CompleteButReturnOther,
    OverlongInformation,
    /// Writes only the first min(input, output) bytes but returns the whole output buffer.
    ReturnUnwritten,
    /// Writes every output byte, beyond the input the very poison byte `P(DISCLOSURE_SEED, n, i)`
    /// the suspecting run put there, and returns the whole output buffer.
    WritePoisonValues,
}

/// The seed of the disclosure tests' poison.
const DISCLOSURE_SEED: u64 = 0x005E_ED0F_D15C;

static MODE: WorldLocal<Cell<Mode>> = WorldLocal::new(|| Cell::new(Mode::Complete));
/// Device controls dispatched in the current world (the I/O manager's request numbers).
static REQUESTS: WorldLocal<Cell<u64>> = WorldLocal::new(|| Cell::new(0));
/// Completes every IRP with success; a device control echoes its input into the output.
unsafe extern "win64" fn dispatch(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let mode = MODE.with(Cell::get);
    // SAFETY: the simulator passes an IRP with a current stack location (the layout under test).
    unsafe {
        let stack = (*irp).Tail.Overlay.CurrentStackLocation;
        let mut information = 0;
        if (*stack).MajorFunction == IRP_MJ_DEVICE_CONTROL {
            let p = (*stack).Parameters.DeviceIoControl;
            let n = p.InputBufferLength.min(p.OutputBufferLength) as usize;
            let buffer = (*irp).AssociatedIrp.SystemBuffer.cast::<u8>();
            for i in 0..n {
                *buffer.add(i) = (*buffer.add(i)).wrapping_add(1);
            }
            information = match mode {
                Mode::OverlongInformation => p.OutputBufferLength as usize + 8,
                Mode::ReturnUnwritten => p.OutputBufferLength as usize,
                Mode::WritePoisonValues => {
                    let request = REQUESTS.with(|r| r.get() + 1);
                    for i in n..p.OutputBufferLength as usize {
                        *buffer.add(i) = disclosure::pattern(DISCLOSURE_SEED, request, i);
                    }
                    p.OutputBufferLength as usize
                }
                _ => n,
            };
            REQUESTS.with(|r| r.set(r.get() + 1));
        }
        if mode == Mode::LeavePending {
            return STATUS_PENDING;
        }
        (*irp).IoStatus.Status = STATUS_SUCCESS;
        (*irp).IoStatus.Information = information;
        iof_complete_request(irp, IO_NO_INCREMENT);
        if mode == Mode::CompleteTwice {
            iof_complete_request(irp, IO_NO_INCREMENT);
        }
        if mode == Mode::CompleteButReturnOther {
            return STATUS_INVALID_PARAMETER;
        }
    }
    STATUS_SUCCESS
}

struct Driver {
    object: Box<DRIVER_OBJECT>,
}

impl Driver {
    fn new() -> Driver {
        // SAFETY: DRIVER_OBJECT is plain data for which all-zero is valid (null pointers, None).
        let mut object: Box<DRIVER_OBJECT> = Box::new(unsafe { std::mem::zeroed() });
        for major in [IRP_MJ_CREATE, IRP_MJ_CLOSE, IRP_MJ_DEVICE_CONTROL] {
            object.MajorFunction[usize::from(major)] = Some(dispatch);
        }
        Driver { object }
    }
    fn ptr(&mut self) -> *mut DRIVER_OBJECT {
        &mut *self.object
    }
}

struct Name {
    _units: Vec<u16>,
    string: UNICODE_STRING,
}

fn name(text: &str) -> Name {
    let mut units: Vec<u16> = text.encode_utf16().collect();
    let bytes = (units.len() * 2) as u16;
    let string = UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: units.as_mut_ptr() };
    Name { _units: units, string }
}

/// A SID in a 4-byte aligned buffer.
fn sid(authority: u8, subs: &[u32]) -> Vec<u32> {
    let mut words =
        vec![u32::from_le_bytes([1, subs.len() as u8, 0, 0]), u32::from_le_bytes([0, 0, 0, authority])];
    words.extend_from_slice(subs);
    words
}

fn system() -> Vec<u32> {
    sid(5, &[18])
}
fn admins() -> Vec<u32> {
    sid(5, &[32, 544])
}
fn everyone() -> Vec<u32> {
    sid(1, &[0])
}

fn world() -> Arc<World> {
    World::new(2)
}

fn violations(world: &World) -> Vec<&'static str> {
    Verifier::of(world).violations().iter().map(|v| v.rule.name).collect()
}

fn create_device(driver: &mut Driver, characteristics: u32) -> *mut DEVICE_OBJECT {
    let mut n = name(DEVICE);
    let mut device = std::ptr::null_mut();
    // SAFETY: the export under test, with valid arguments and the world entered.
    let status =
        unsafe { io_create_device(driver.ptr(), 64, &mut n.string, 0x8A7C, characteristics, 0, &mut device) };
    assert_eq!(status, STATUS_SUCCESS);
    ready(device);
    device
}

/// These host drivers create their devices outside DriverEntry, so they clear
/// DO_DEVICE_INITIALIZING themselves, as such a driver must (ifs/clearing-the-do-device-initializing-flag).
fn ready(device: *mut DEVICE_OBJECT) {
    // SAFETY: a device object IoCreateDevice just returned; Flags is a u32 at DEVICE_FLAGS.
    unsafe {
        let flags = device.cast::<u8>().add(DEVICE_FLAGS).cast::<u32>();
        flags.write(flags.read() & !DO_DEVICE_INITIALIZING);
    }
}

/// What partyline's DriverEntry does after IoCreateDevice: build and apply a DACL.
fn apply_dacl(device: *mut DEVICE_OBJECT, aces: &[(Vec<u32>, ACCESS_MASK)]) -> NTSTATUS {
    // SAFETY: all-zero is a valid (if uninitialised) SECURITY_DESCRIPTOR.
    let mut sd: SECURITY_DESCRIPTOR = unsafe { std::mem::zeroed() };
    let mut acl = vec![0u32; 64];
    let length = 8 + aces.iter().map(|(s, _)| 8 + 4 * s.len()).sum::<usize>();
    let mut handle: HANDLE = std::ptr::null_mut();
    // SAFETY: the exports under test, called as a driver would, with buffers that outlive them.
    unsafe {
        assert_eq!(rtl_create_security_descriptor(&mut sd, SECURITY_DESCRIPTOR_REVISION), STATUS_SUCCESS);
        assert_eq!(rtl_create_acl(acl.as_mut_ptr().cast(), length as u32, ACL_REVISION), STATUS_SUCCESS);
        for (s, mask) in aces {
            let mut s = s.clone();
            let status = rtl_add_access_allowed_ace(
                acl.as_mut_ptr().cast(),
                ACL_REVISION,
                *mask,
                s.as_mut_ptr().cast(),
            );
            assert_eq!(status, STATUS_SUCCESS);
        }
        assert_eq!(rtl_set_dacl_security_descriptor(&mut sd, 1, acl.as_mut_ptr().cast(), 0), STATUS_SUCCESS);
        let status = ob_open_object_by_pointer(
            device.cast(),
            OBJ_KERNEL_HANDLE,
            std::ptr::null_mut(),
            WRITE_DAC,
            std::ptr::null_mut(),
            KernelMode,
            &mut handle,
        );
        assert_eq!(status, STATUS_SUCCESS);
        let status = zw_set_security_object(handle, DACL_SECURITY_INFORMATION, &mut sd);
        assert_eq!(zw_close(handle), STATUS_SUCCESS);
        status
    }
}

fn secure_aces() -> Vec<(Vec<u32>, ACCESS_MASK)> {
    vec![(system(), GENERIC_ALL), (admins(), GENERIC_ALL), (everyone(), GENERIC_READ)]
}

fn link() -> NTSTATUS {
    let (mut l, mut d) = (name(LINK), name(DEVICE));
    // SAFETY: the export under test, with valid UNICODE_STRINGs.
    unsafe { io_create_symbolic_link(&mut l.string, &mut d.string) }
}

fn unload(device: *mut DEVICE_OBJECT) {
    let mut l = name(LINK);
    // SAFETY: the exports under test, as a DriverUnload would call them.
    unsafe {
        assert_eq!(io_delete_symbolic_link(&mut l.string), STATUS_SUCCESS);
        io_delete_device(device);
    }
}

/// A well-built control device: secure open, DACL before the link, every IRP completed once.
fn secure_device(world: &Arc<World>, driver: &mut Driver) -> *mut DEVICE_OBJECT {
    IoManager::of(world).set_driver_object(driver.ptr());
    let device = create_device(driver, FILE_DEVICE_SECURE_OPEN);
    assert_eq!(apply_dacl(device, &secure_aces()), STATUS_SUCCESS);
    assert_eq!(link(), STATUS_SUCCESS);
    device
}

#[test]
fn secure_device_lets_users_read_but_not_act_and_unloads_clean() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    let device = secure_device(&world, &mut driver);
    let io = IoManager::of(&world);
    // The device object has the real layout the driver reads.
    // SAFETY: `device` is the device object IoCreateDevice returned.
    unsafe {
        let base = device.cast::<u8>();
        assert_eq!(base.add(DEVICE_DRIVER_OBJECT).cast::<usize>().read(), driver.ptr() as usize);
        assert_eq!(base.add(DEVICE_EXTENSION).cast::<usize>().read(), base as usize + DEVICE_OBJECT_SIZE);
        assert_eq!(base.add(DEVICE_CHARACTERISTICS).cast::<u32>().read(), FILE_DEVICE_SECURE_OPEN);
        assert_eq!((*driver.ptr()).DeviceObject, device);
    }
    let (status, out) =
        io.device_control(&world, USER_PATH, WRITE_CODE, &[1, 2, 3], 8, Caller::Administrator).unwrap();
    assert_eq!((status, out), (STATUS_SUCCESS, vec![2, 3, 4]));
    let (status, out) = io.device_control(&world, USER_PATH, READ_CODE, &[9], 1, Caller::User).unwrap();
    assert_eq!((status, out), (STATUS_SUCCESS, vec![10]));
    let denied = io.device_control(&world, USER_PATH, WRITE_CODE, &[1], 1, Caller::User).unwrap_err();
    assert!(matches!(denied, IoError::AccessDenied { caller: Caller::User, .. }), "{denied}");
    assert_eq!(denied.status(), STATUS_ACCESS_DENIED);
    // A handle opened for reading cannot send a write IOCTL, even for an administrator.
    let handle = io.open(&world, USER_PATH, GENERIC_READ, Caller::Administrator).unwrap();
    assert!(matches!(
        io.device_control_handle(&world, handle, WRITE_CODE, &[], 0,),
        Err(IoError::AccessDenied { .. })
    ));
    assert_eq!(io.close(&world, handle), Ok(STATUS_SUCCESS));
    // Names below a FILE_DEVICE_SECURE_OPEN device are checked against its DACL too.
    assert!(matches!(
        io.open(&world, "\\Device\\Partyline\\x", GENERIC_WRITE, Caller::User),
        Err(IoError::AccessDenied { .. })
    ));
    assert_eq!(
        io.open(&world, "\\\\.\\Nothing", GENERIC_READ, Caller::User),
        Err(IoError::NotFound("\\\\.\\Nothing".into()))
    );
    unload(device);
    assert_eq!(check_unload(&world), 0);
    assert!(Verifier::of(&world).is_clean(), "{:?}", Verifier::of(&world).violations());
    // SAFETY: reads the driver object the test owns.
    assert!(unsafe { (*driver.ptr()).DeviceObject }.is_null());
    assert_eq!(world.call_count("IRP_MJ_DEVICE_CONTROL"), 2);
}

/// Securing Device Objects: the link is created only after the restrictive DACL; a link made
/// before it is reported.
#[test]
fn proves_ddi_iocreatesymboliclink_securedacl() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    let device = create_device(&mut driver, FILE_DEVICE_SECURE_OPEN);
    assert_eq!(link(), STATUS_SUCCESS);
    assert_eq!(violations(&world), ["Ddi_IoCreateSymbolicLink_SecureDacl"]);
    // With the default descriptor every caller may write: the open is flagged too.
    let io = IoManager::of(&world);
    assert!(io.device_control(&world, USER_PATH, WRITE_CODE, &[], 0, Caller::User).is_ok());
    assert_eq!(violations(&world).len(), 2);
    apply_dacl(device, &secure_aces());
    unload(device);
}

/// Grant analysis: Everyone may have at most read access; SYSTEM and Administrators need all.
#[test]
fn permissive_or_incomplete_dacls_are_reported_at_link_time() {
    for aces in [
        vec![(system(), GENERIC_ALL), (admins(), GENERIC_ALL), (everyone(), GENERIC_READ | GENERIC_WRITE)],
        vec![(system(), GENERIC_ALL), (everyone(), GENERIC_READ)],
        vec![(system(), GENERIC_ALL), (admins(), GENERIC_ALL), (everyone(), FILE_WRITE_DATA)],
    ] {
        let world = world();
        let _entered = world.enter(0);
        let mut driver = Driver::new();
        let device = create_device(&mut driver, FILE_DEVICE_SECURE_OPEN);
        assert_eq!(apply_dacl(device, &aces), STATUS_SUCCESS);
        assert_eq!(link(), STATUS_SUCCESS);
        assert_eq!(violations(&world), ["Ddi_IoCreateSymbolicLink_SecureDacl"]);
        unload(device);
    }
}

/// Controlling Device Namespace Access: without FILE_DEVICE_SECURE_OPEN, opens of names below the
/// device skip its DACL.
#[test]
fn proves_ddi_iocreatedevice_filedevicesecureopen() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    let device = create_device(&mut driver, 0);
    assert_eq!(violations(&world), ["Ddi_IoCreateDevice_FileDeviceSecureOpen"]);
    apply_dacl(device, &secure_aces());
    assert_eq!(link(), STATUS_SUCCESS);
    let io = IoManager::of(&world);
    let handle = io.open(&world, "\\Device\\Partyline\\anything", GENERIC_WRITE, Caller::User).unwrap();
    assert!(io.device_control_handle(&world, handle, WRITE_CODE, &[], 0).is_ok());
    io.close(&world, handle).unwrap();
    unload(device);
    assert_eq!(violations(&world).len(), 1);
}

/// Bug check 0x44 MULTIPLE_IRP_COMPLETE_REQUESTS: an IRP is completed once; completing it twice
/// is reported.
#[test]
fn proves_multipleirpcomplete() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    let device = secure_device(&world, &mut driver);
    let handle = IoManager::of(&world).open(&world, USER_PATH, GENERIC_READ, Caller::User).unwrap();
    MODE.with(|m| m.set(Mode::CompleteTwice));
    let _ = IoManager::of(&world).device_control_handle(&world, handle, READ_CODE, &[], 0);
    MODE.with(|m| m.set(Mode::Complete));
    IoManager::of(&world).close(&world, handle).unwrap();
    assert_eq!(violations(&world), ["MultipleIrpComplete"]);
    unload(device);
}

/// Completing IRPs: partyline completes every IRP before its dispatch routine returns.
#[test]
fn proves_ddi_dispatchroutine_completebeforereturn() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    let device = secure_device(&world, &mut driver);
    MODE.with(|m| m.set(Mode::LeavePending));
    let result = IoManager::of(&world).device_control(&world, USER_PATH, READ_CODE, &[], 0, Caller::User);
    MODE.with(|m| m.set(Mode::Complete));
    assert_eq!(result, Err(IoError::Pending { status: STATUS_PENDING }));
    // The create and the device control were both left pending.
    assert!(violations(&world).iter().all(|r| *r == "Ddi_DispatchRoutine_CompleteBeforeReturn"));
    assert!(!violations(&world).is_empty());
    unload(device);
}

/// Completing IRPs: a dispatch routine returns the status it completed the IRP with (returning
/// another is reported), and IofCompleteRequest's Information stays within the output buffer.
#[test]
fn proves_ddi_dispatchroutine_returncompletedstatus() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    let device = secure_device(&world, &mut driver);
    let io = IoManager::of(&world);
    let handle = io.open(&world, USER_PATH, GENERIC_READ, Caller::User).unwrap();
    MODE.with(|m| m.set(Mode::CompleteButReturnOther));
    let _ = io.device_control_handle(&world, handle, READ_CODE, &[], 0);
    MODE.with(|m| m.set(Mode::OverlongInformation));
    let (_, out) = io.device_control_handle(&world, handle, READ_CODE, &[1], 4).unwrap();
    assert_eq!(out.len(), 4, "never more than the output buffer");
    MODE.with(|m| m.set(Mode::Complete));
    io.close(&world, handle).unwrap();
    assert_eq!(violations(&world), ["Ddi_DispatchRoutine_ReturnCompletedStatus", "Irql_IofCompleteRequest"]);
    unload(device);
}

/// IoCompleteRequest: callers must be running at IRQL <= DISPATCH_LEVEL.
#[test]
fn proves_irql_iofcompleterequest() {
    let world = world();
    let _entered = world.enter(1);
    let mut driver = Driver::new();
    let device = secure_device(&world, &mut driver);
    let io = IoManager::of(&world);
    // A stray completion of an IRP the I/O manager never sent, at DEVICE level (IRQL 3).
    let mut fake = [0u128; 20];
    world.set_irql(1, Irql(3));
    // SAFETY: the export under test; `fake` is readable memory of IRP size.
    unsafe { iof_complete_request(fake.as_mut_ptr().cast(), 0) };
    world.set_irql(1, PASSIVE_LEVEL);
    assert_eq!(violations(&world), ["Irql_IofCompleteRequest", "Ddi_IoManager_KnownObject"]);
    let _ = io;
    unload(device);
}

/// Unload Routine Functionality: devices, links and handles are gone after DriverUnload.
#[test]
fn proves_ddi_driverunload_deletedeviceandlink() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    let device = secure_device(&world, &mut driver);
    let mut handle: HANDLE = std::ptr::null_mut();
    // SAFETY: the export under test with a live device object.
    let status = unsafe {
        ob_open_object_by_pointer(
            device.cast(),
            OBJ_KERNEL_HANDLE,
            std::ptr::null_mut(),
            READ_CONTROL,
            std::ptr::null_mut(),
            KernelMode,
            &mut handle,
        )
    };
    assert_eq!(status, STATUS_SUCCESS);
    assert_eq!(check_unload(&world), 3);
    assert_eq!(violations(&world), ["Ddi_DriverUnload_DeleteDeviceAndLink"; 3]);
    // SAFETY: as above.
    assert_eq!(unsafe { zw_close(handle) }, STATUS_SUCCESS);
    unload(device);
}

/// RtlCreateSecurityDescriptor / RtlCreateAcl / RtlAddAccessAllowedAce: revisions, room, SIDs.
#[test]
fn proves_ddi_rtlsecurity_wellformed() {
    let world = world();
    let _entered = world.enter(0);
    let mut sd: SECURITY_DESCRIPTOR = {
        // SAFETY: all-zero is a valid SECURITY_DESCRIPTOR bit pattern.
        unsafe { std::mem::zeroed() }
    };
    let mut acl = vec![0u32; 16];
    let acl_ptr: *mut ACL = acl.as_mut_ptr().cast();
    let mut good = admins();
    let mut bad_revision = admins();
    bad_revision[0] = u32::from_le_bytes([2, 2, 0, 0]);
    let mut too_many = admins();
    too_many[0] = u32::from_le_bytes([1, 16, 0, 0]);
    // SAFETY: the exports under test with buffers large enough for what they write.
    unsafe {
        assert_eq!(rtl_create_security_descriptor(&mut sd, 2), STATUS_UNKNOWN_REVISION);
        assert_eq!(rtl_set_dacl_security_descriptor(&mut sd, 1, acl_ptr, 0), STATUS_UNKNOWN_REVISION);
        assert_eq!(rtl_create_acl(acl_ptr, 4, ACL_REVISION), STATUS_BUFFER_TOO_SMALL);
        assert_eq!(rtl_create_acl(acl_ptr, 64, 7), STATUS_INVALID_PARAMETER);
        // Room for exactly one 24-byte ACE (Administrators: 8 + 16).
        assert_eq!(rtl_create_acl(acl_ptr, 8 + 24, ACL_REVISION), STATUS_SUCCESS);
        assert_eq!(
            rtl_add_access_allowed_ace(acl_ptr, 9, GENERIC_ALL, good.as_mut_ptr().cast()),
            STATUS_REVISION_MISMATCH
        );
        assert_eq!(
            rtl_add_access_allowed_ace(acl_ptr, 2, GENERIC_ALL, bad_revision.as_mut_ptr().cast()),
            STATUS_INVALID_SID
        );
        assert_eq!(
            rtl_add_access_allowed_ace(acl_ptr, 2, GENERIC_ALL, too_many.as_mut_ptr().cast()),
            STATUS_INVALID_SID
        );
        assert_eq!(
            rtl_add_access_allowed_ace(acl_ptr, 2, GENERIC_ALL, good.as_mut_ptr().cast()),
            STATUS_SUCCESS
        );
        assert_eq!(
            rtl_add_access_allowed_ace(acl_ptr, 2, GENERIC_READ, good.as_mut_ptr().cast()),
            STATUS_ALLOTTED_SPACE_EXCEEDED
        );
        assert_eq!(rtl_length_sid(good.as_mut_ptr().cast()), 16);
        // The ACE the simulator wrote is a real ACCESS_ALLOWED_ACE.
        let (aces, used) = read_acl(acl_ptr).unwrap();
        assert_eq!(used, 32);
        assert_eq!(aces, [Ace { sid: Sid::administrators(), mask: GENERIC_ALL }]);
    }
    let rules = violations(&world);
    assert_eq!(rules.len(), 8, "{rules:?}");
    assert!(rules.iter().all(|r| *r == "Ddi_RtlSecurity_WellFormed"));
    let details: Vec<String> = Verifier::of(&world).violations().into_iter().map(|v| v.detail).collect();
    assert!(details.iter().any(|d| d.contains("ACE overflow")), "{details:?}");
}

/// PASSIVE-only routines called above PASSIVE, and unknown handles and objects, are reported.
#[test]
fn proves_irql_iomanager_function() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    world.set_irql(0, DISPATCH_LEVEL);
    let device = create_device(&mut driver, FILE_DEVICE_SECURE_OPEN);
    world.set_irql(0, PASSIVE_LEVEL);
    // SAFETY: the exports under test; the handle and object are deliberately bogus, which the
    // simulator looks up before use.
    unsafe {
        assert_eq!(zw_close(0x1234 as HANDLE), STATUS_INVALID_HANDLE);
        let mut h: HANDLE = std::ptr::null_mut();
        let status = ob_open_object_by_pointer(
            0x5678 as *mut c_void,
            0,
            std::ptr::null_mut(),
            WRITE_DAC,
            std::ptr::null_mut(),
            KernelMode,
            &mut h,
        );
        assert_eq!(status, STATUS_INVALID_PARAMETER);
        io_delete_device(device);
        io_delete_device(device);
    }
    assert_eq!(
        violations(&world),
        [
            "Irql_IoManager_Function",
            "Ddi_IoManager_KnownObject",
            "Ddi_IoManager_KnownObject",
            "Ddi_IoManager_KnownObject"
        ]
    );
}

/// ObOpenObjectByPointer: the object must be one the I/O manager handed out; ZwClose of a handle
/// nobody opened is reported and refused.
#[test]
fn proves_ddi_iomanager_knownobject() {
    let world = world();
    let _entered = world.enter(0);
    // SAFETY: the export under test; the handle is deliberately bogus, which the simulator looks up
    // before use.
    assert_eq!(unsafe { zw_close(0x4321 as HANDLE) }, STATUS_INVALID_HANDLE);
    assert_eq!(violations(&world), ["Ddi_IoManager_KnownObject"]);
}

#[test]
fn exports_register_against_the_import_signatures() {
    let mut table = ExportTable::new();
    register(&mut table);
    for name in ["IoCreateDevice", "IofCompleteRequest", "ZwSetSecurityObject", "RtlLengthSid"] {
        assert_eq!(table.get("ntoskrnl.exe", name).map(|e| e.kind), Some(crate::ExportKind::Function));
    }
    assert_eq!(
        table.get("ntoskrnl.exe", "IoQueueWorkItem").map(|e| e.kind),
        Some(crate::ExportKind::NotImplemented)
    );
}

/// Access granted by the token as `Caller::groups` lists it, over the ACEs spelled out: what
/// `Security::granted` answers without building either.
fn granted_by_groups(security: &Security, caller: Caller) -> ACCESS_MASK {
    let groups = caller.groups();
    let aces = match security {
        Security::Default => vec![
            Ace { sid: Sid::local_system(), mask: FILE_ALL_ACCESS },
            Ace { sid: Sid::administrators(), mask: FILE_ALL_ACCESS },
            Ace { sid: Sid::everyone(), mask: FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE },
        ],
        Security::NullDacl => vec![Ace { sid: Sid::everyone(), mask: FILE_ALL_ACCESS }],
        Security::Dacl(aces) => aces.clone(),
    };
    aces.iter().filter(|a| groups.contains(&a.sid)).fold(0, |m, a| m | map_generic(a.mask))
}

#[test]
fn access_granted_is_what_the_token_groups_get_from_the_aces() {
    let odd = |authority: [u8; 6], subs: &[u32]| Sid { authority, sub_authorities: subs.to_vec() };
    let sids = [
        Sid::local_system(),
        Sid::administrators(),
        Sid::users(),
        Sid::authenticated_users(),
        Sid::everyone(),
        odd([0, 0, 0, 0, 0, 5], &[32, 546]),
        odd([0, 0, 0, 0, 1, 5], &[18]),
        odd([0, 0, 0, 0, 0, 5], &[18, 1]),
    ];
    let mut securities = vec![Security::Default, Security::NullDacl, Security::Dacl(Vec::new())];
    for (i, sid) in sids.iter().enumerate() {
        let mask = [GENERIC_READ, FILE_ALL_ACCESS, FILE_GENERIC_WRITE, GENERIC_ALL | 0x10][i % 4];
        securities.push(Security::Dacl(vec![Ace { sid: sid.clone(), mask }]));
        securities.push(Security::Dacl(vec![
            Ace { sid: sid.clone(), mask },
            Ace { sid: sids[(i + 3) % sids.len()].clone(), mask: GENERIC_EXECUTE },
        ]));
    }
    for security in &securities {
        for caller in [Caller::System, Caller::Administrator, Caller::User] {
            assert_eq!(
                security.granted(caller),
                granted_by_groups(security, caller),
                "{caller:?} on {security:?}"
            );
        }
    }
}

/// Plays one 4-byte-in, 16-byte-out device control in `mode` on a fresh world poisoned with
/// `poison`, and unloads. Same seed, same requests: run B of the disclosure proof replays run A.
fn play_device_control(poison: Poison, mode: Mode) -> (Arc<World>, Suspects, Vec<u8>) {
    let world = world();
    let _entered = world.enter(0);
    REQUESTS.with(|r| r.set(0));
    let mut driver = Driver::new();
    let device = secure_device(&world, &mut driver);
    let io = IoManager::of(&world);
    io.set_poison(poison);
    MODE.with(|m| m.set(mode));
    let result = io.device_control(&world, USER_PATH, READ_CODE, &[1, 2, 3, 4], 16, Caller::User);
    MODE.with(|m| m.set(Mode::Complete));
    let (status, output) = result.expect("the device control reaches the driver");
    assert_eq!(status, STATUS_SUCCESS);
    unload(device);
    let suspects = io.disclosure_suspects();
    (world, suspects, output)
}

/// Failure to Initialize Output Buffers: a response whose Information covers bytes the driver
/// never wrote is caught. Run A (pattern P) finds the 12 bytes beyond the input holding P; run B
/// (the complement) finds them holding !P, so the driver did not write them: reported.
#[test]
fn proves_ddi_devicecontrol_uninitializedoutput() {
    let (first, suspects, output) =
        play_device_control(Poison::Suspect { seed: DISCLOSURE_SEED }, Mode::ReturnUnwritten);
    assert_eq!(output[..4], [2, 3, 4, 5]);
    assert_eq!(suspects.len(), 12, "every unwritten byte is a suspect");
    assert!(violations(&first).is_empty(), "run A only suspects");
    let (second, _, output) =
        play_device_control(Poison::Confirm { seed: DISCLOSURE_SEED, suspects }, Mode::ReturnUnwritten);
    assert_eq!(violations(&second), ["Ddi_DeviceControl_UninitializedOutput"]);
    let detail = &Verifier::of(&second).violations()[0].detail;
    assert!(detail.contains("16 bytes, 12 of which the driver never wrote"), "{detail}");
    assert_eq!(output[4], !disclosure::pattern(DISCLOSURE_SEED, 1, 4));
}

/// The proof is exact the other way too: a driver that writes every byte it returns is never
/// reported, even when the values it writes are exactly the poison (all 12 bytes are suspects in
/// run A, and hold the same values in run B); and a driver that returns only what it wrote leaves
/// no suspect at all, which proves it with one run.
#[test]
fn written_bytes_are_never_reported_even_when_they_equal_the_poison() {
    let (_, suspects, _) =
        play_device_control(Poison::Suspect { seed: DISCLOSURE_SEED }, Mode::WritePoisonValues);
    assert_eq!(suspects.len(), 12);
    let (second, _, output) =
        play_device_control(Poison::Confirm { seed: DISCLOSURE_SEED, suspects }, Mode::WritePoisonValues);
    assert!(violations(&second).is_empty(), "{:?}", Verifier::of(&second).violations());
    assert_eq!(output[15], disclosure::pattern(DISCLOSURE_SEED, 1, 15));
    let (clean, suspects, _) = play_device_control(Poison::Suspect { seed: DISCLOSURE_SEED }, Mode::Complete);
    assert!(suspects.is_empty() && violations(&clean).is_empty());
}

/// The poison is never 0x00 or 0xFF (the values drivers write most), and its complement differs
/// in every byte.
#[test]
fn poison_bytes_avoid_zero_and_all_ones() {
    for request in 1..50 {
        for offset in 0..300 {
            let p = disclosure::pattern(7, request, offset);
            assert!(p != 0 && p != 0xFF);
            assert_ne!(p, !p);
        }
    }
}

/// "What does DO_DEVICE_INITIALIZING really do?": no open by name while the flag is set; the I/O
/// manager clears it for devices created during DriverEntry when DriverEntry returns
/// (https://learn.microsoft.com/previous-versions/windows/hardware/design/dn614010(v=vs.85)).
#[test]
fn a_device_created_in_driver_entry_opens_only_after_driver_entry_returns() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    let io = IoManager::of(&world);
    io.set_driver_object(driver.ptr());
    io.driver_entry_begins();
    io.probe_opens(DEVICE, GENERIC_READ, Caller::Administrator);
    let mut n = name(DEVICE);
    let mut device = std::ptr::null_mut();
    // SAFETY: the export under test, with valid arguments and the world entered.
    let status = unsafe {
        io_create_device(driver.ptr(), 0, &mut n.string, 0x8A7C, FILE_DEVICE_SECURE_OPEN, 0, &mut device)
    };
    assert_eq!(status, STATUS_SUCCESS);
    let refused = io.open(&world, DEVICE, GENERIC_READ, Caller::Administrator);
    assert_eq!(refused, Err(IoError::Initializing(DEVICE.into())));
    assert_eq!(refused.unwrap_err().status(), STATUS_NO_SUCH_DEVICE);
    assert_eq!(apply_dacl(device, &secure_aces()), STATUS_SUCCESS);
    assert_eq!(link(), STATUS_SUCCESS);
    let answers = io.probe_answers();
    assert!(answers.iter().any(|(export, _)| *export == "ZwSetSecurityObject"), "{answers:?}");
    assert!(
        answers[1..].iter().all(|(_, answer)| matches!(answer, Err(IoError::Initializing(_)))),
        "{answers:?}"
    );
    io.driver_entry_returned();
    let handle =
        io.open(&world, USER_PATH, GENERIC_READ, Caller::User).expect("ready once DriverEntry returned");
    assert_eq!(io.close(&world, handle), Ok(STATUS_SUCCESS));
    unload(device);
    assert_eq!(violations(&world), Vec::<&str>::new());
}

/// The failing case: a driver that clears DO_DEVICE_INITIALIZING before its DACL is in force
/// opens the window, and an open in it gets the default descriptor (and is reported).
#[test]
fn a_driver_that_clears_the_flag_early_is_open_to_everyone_in_the_window() {
    let world = world();
    let _entered = world.enter(0);
    let mut driver = Driver::new();
    let io = IoManager::of(&world);
    io.set_driver_object(driver.ptr());
    io.driver_entry_begins();
    let device = create_device(&mut driver, FILE_DEVICE_SECURE_OPEN); // clears the flag at once
    io.probe_opens(DEVICE, GENERIC_WRITE, Caller::User);
    assert_eq!(apply_dacl(device, &secure_aces()), STATUS_SUCCESS);
    let answers = io.probe_answers();
    let (export, answer) = &answers[0];
    assert_eq!((*export, answer), ("RtlCreateSecurityDescriptor", &Ok(())), "{answers:?}");
    assert!(violations(&world).contains(&rules::SECURE_DACL_BEFORE_LINK.name));
    io.driver_entry_returned();
}
