//! The control device: `\Device\Partyline`, reachable from user mode as `\\.\Partyline`.
//!
//! Pages: kernel/controlling-device-access (a device object's default descriptor lets everyone
//! read, write and execute), wdm/nf-wdm-iocreatedevice (FILE_DEVICE_SECURE_OPEN applies the
//! device's descriptor to every open below its name), ntifs/nf-ntifs-zwsetsecurityobject,
//! wdm/nf-wdm-iocreatesymboliclink, and the NDISPROT sample's way for a protocol driver
//! (IoCreateDevice + IoCreateSymbolicLink from DriverEntry, deleted in unload).
//!
//! `IoCreateDeviceSecure` lives in a WDK static library partyline does not link, so the
//! equivalent of SDDL `D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GR;;;WD)` — full access for SYSTEM and
//! Administrators, read for everyone else — is applied with exported routines *before* the
//! symbolic link makes the name reachable. State-changing IOCTLs require FILE_WRITE_ACCESS,
//! queries FILE_READ_ACCESS (partyline-ioctl), so a non-administrator can look but not act.
//!
//! Every request is answered before the dispatch routine returns (no IRP is left pending):
//! progress of calls and parties is observed by query.

use crate::global::{drive_after, with_engine, with_memory_then_drive};
use crate::pool::{self, tag};
use core::mem::size_of;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use ndis_sys::*;
use partyline_ioctl::{self as ioctl, Request};

static DEVICE_NAME: [u16; ioctl::DEVICE_NAME_UTF16.len()] = ioctl::DEVICE_NAME_UTF16;
static LINK_NAME: [u16; ioctl::LINK_NAME_UTF16.len()] = ioctl::LINK_NAME_UTF16;

static DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(ptr::null_mut());

fn unicode(text: &'static [u16]) -> UNICODE_STRING {
    let bytes = (text.len() * 2) as u16;
    UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: text.as_ptr().cast_mut() }
}

/// SIDs as their binary form: revision 1, sub-authority count, 6-byte authority (big-endian),
/// sub-authorities (little-endian).
const SYSTEM_SID: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]; // S-1-5-18
const ADMINISTRATORS_SID: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0]; // S-1-5-32-544
const EVERYONE_SID: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]; // S-1-1-0

const ACE_FIXED: usize = size_of::<ACCESS_ALLOWED_ACE>() - size_of::<u32>();
const ACL_LEN: usize =
    size_of::<ACL>() + 3 * ACE_FIXED + SYSTEM_SID.len() + ADMINISTRATORS_SID.len() + EVERYONE_SID.len();
/// One pool block: descriptor, ACL, then the three SIDs (RtlAddAccessAllowedAce copies them).
const SECURITY_BLOCK: usize = size_of::<SECURITY_DESCRIPTOR>()
    + ACL_LEN
    + SYSTEM_SID.len()
    + ADMINISTRATORS_SID.len()
    + EVERYONE_SID.len();

fn check(status: NTSTATUS) -> Result<(), NTSTATUS> {
    if status >= 0 {
        Ok(())
    } else {
        Err(status)
    }
}

/// Creates the device, secures it, then makes its name reachable. PASSIVE_LEVEL (DriverEntry).
///
/// No open can reach the device before its restrictive DACL is in force: IoCreateDevice sets
/// DO_DEVICE_INITIALIZING, the I/O manager refuses every open by name while it is set, and it
/// clears the flag itself only when DriverEntry returns ("What does DO_DEVICE_INITIALIZING really
/// do?", https://learn.microsoft.com/previous-versions/windows/hardware/design/dn614010(v=vs.85);
/// ifs/clearing-the-do-device-initializing-flag). So this driver must never clear the flag itself,
/// and the symbolic link comes only after the DACL as well.
pub fn create(driver: &mut DRIVER_OBJECT) -> Result<(), NTSTATUS> {
    driver.MajorFunction[IRP_MJ_CREATE as usize] = Some(dispatch_create);
    driver.MajorFunction[IRP_MJ_CLOSE as usize] = Some(dispatch_close);
    driver.MajorFunction[IRP_MJ_DEVICE_CONTROL as usize] = Some(dispatch_device_control);

    let mut name = unicode(&DEVICE_NAME);
    let mut device: *mut DEVICE_OBJECT = ptr::null_mut();
    // SAFETY: PASSIVE; the name is static; `device` is a valid out-pointer.
    check(unsafe {
        IoCreateDevice(
            driver,
            0,
            &mut name,
            ioctl::FILE_DEVICE_PARTYLINE,
            FILE_DEVICE_SECURE_OPEN,
            FALSE,
            &mut device,
        )
    })?;
    if let Err(status) = secure(device) {
        // SAFETY: created above, never named by a link, no open handles.
        unsafe { IoDeleteDevice(device) };
        return Err(status);
    }
    let mut link = unicode(&LINK_NAME);
    // SAFETY: PASSIVE; both names static. From here user mode can open the device, which is
    // already restricted.
    if let Err(status) = check(unsafe { IoCreateSymbolicLink(&mut link, &mut name) }) {
        // SAFETY: as above.
        unsafe { IoDeleteDevice(device) };
        return Err(status);
    }
    DEVICE.store(device, Ordering::Release);
    Ok(())
}

/// Replaces the default DACL: SYSTEM and Administrators all access, Everyone read.
fn secure(device: *mut DEVICE_OBJECT) -> Result<(), NTSTATUS> {
    let block = pool::allocate(SECURITY_BLOCK, tag::DEVICE).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    let result = build_and_apply(device, block);
    // SAFETY: ZwSetSecurityObject copied what it needed; the block is ours.
    unsafe { pool::free(block) };
    result
}

fn build_and_apply(device: *mut DEVICE_OBJECT, block: NonNull<u8>) -> Result<(), NTSTATUS> {
    let base = block.as_ptr();
    let descriptor = base.cast::<SECURITY_DESCRIPTOR>();
    // SAFETY: all offsets lie inside the SECURITY_BLOCK bytes just allocated; pool memory is
    // 16-aligned, the descriptor is 8-aligned at 0 and the ACL 4-aligned after it (0x28).
    let (acl, sids) = unsafe {
        let acl = base.add(size_of::<SECURITY_DESCRIPTOR>()).cast::<ACL>();
        (acl, base.add(size_of::<SECURITY_DESCRIPTOR>() + ACL_LEN))
    };
    let mut offset = 0;
    let mut sid_at = |bytes: &[u8]| {
        // SAFETY: inside the block (see SECURITY_BLOCK); SIDs are byte arrays.
        let sid = unsafe { sids.add(offset) };
        // SAFETY: `bytes.len()` bytes fit at `sid` by construction of SECURITY_BLOCK.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), sid, bytes.len()) };
        offset += bytes.len();
        sid.cast::<SID>()
    };
    let system = sid_at(&SYSTEM_SID);
    let administrators = sid_at(&ADMINISTRATORS_SID);
    let everyone = sid_at(&EVERYONE_SID);
    // SAFETY: PASSIVE; every pointer refers into the block; lengths computed above.
    unsafe {
        check(RtlCreateSecurityDescriptor(descriptor, SECURITY_DESCRIPTOR_REVISION))?;
        check(RtlCreateAcl(acl, ACL_LEN as u32, ACL_REVISION))?;
        check(RtlAddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, system))?;
        check(RtlAddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, administrators))?;
        check(RtlAddAccessAllowedAce(acl, ACL_REVISION, GENERIC_READ, everyone))?;
        check(RtlSetDaclSecurityDescriptor(descriptor, TRUE, acl, FALSE))?;
    }
    let mut handle: HANDLE = ptr::null_mut();
    // SAFETY: PASSIVE; a kernel handle to our own device object with WRITE_DAC.
    check(unsafe {
        ObOpenObjectByPointer(
            device.cast(),
            OBJ_KERNEL_HANDLE,
            ptr::null_mut(),
            WRITE_DAC,
            ptr::null_mut(),
            KernelMode,
            &mut handle,
        )
    })?;
    // SAFETY: PASSIVE; a handle opened with WRITE_DAC; a well-formed absolute descriptor.
    let applied = check(unsafe { ZwSetSecurityObject(handle, DACL_SECURITY_INFORMATION, descriptor) });
    // SAFETY: our kernel handle, closed once.
    unsafe { ZwClose(handle) };
    applied
}

/// Removes the link, then the device. PASSIVE_LEVEL (DriverUnload).
pub fn delete() {
    let device = DEVICE.swap(ptr::null_mut(), Ordering::AcqRel);
    if device.is_null() {
        return;
    }
    let mut link = unicode(&LINK_NAME);
    // SAFETY: PASSIVE; the link and device were created by `create`.
    unsafe {
        IoDeleteSymbolicLink(&mut link);
        IoDeleteDevice(device);
    }
}

fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) -> NTSTATUS {
    // SAFETY: the I/O manager's IRP, owned by this dispatch routine until completed, once.
    unsafe {
        (*irp).IoStatus.Status = status;
        (*irp).IoStatus.Information = information;
        IofCompleteRequest(irp, IO_NO_INCREMENT);
    }
    status
}

/// IRP_MJ_CREATE (PASSIVE_LEVEL): the I/O manager has already checked the caller against the
/// device's descriptor. The device has no namespace, so an open of a name below it
/// (`\\.\Partyline\anything`) is refused: "Controlling Device Namespace Access"
/// (https://learn.microsoft.com/windows-hardware/drivers/kernel/controlling-device-namespace-access)
/// lets a driver without a namespace fail every IRP_MJ_CREATE whose FileObject->FileName is not
/// empty, besides FILE_DEVICE_SECURE_OPEN (which this device also has).
unsafe extern "win64" fn dispatch_create(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: an IRP_MJ_CREATE IRP: its current stack location names the new FILE_OBJECT, whose
    // FileName (a UNICODE_STRING at FILE_OBJECT_FILE_NAME) the I/O manager has filled in.
    let name_length = unsafe {
        let file_object = (*(*irp).Tail.Overlay.CurrentStackLocation).FileObject;
        if file_object.is_null() {
            0
        } else {
            (*file_object.cast::<u8>().add(FILE_OBJECT_FILE_NAME).cast::<UNICODE_STRING>()).Length
        }
    };
    if name_length != 0 {
        return complete(irp, STATUS_ACCESS_DENIED, 0);
    }
    complete(irp, STATUS_SUCCESS, 0)
}

/// IRP_MJ_CLOSE (PASSIVE_LEVEL): nothing is kept per open.
unsafe extern "win64" fn dispatch_close(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    complete(irp, STATUS_SUCCESS, 0)
}

/// IRP_MJ_DEVICE_CONTROL (PASSIVE_LEVEL), METHOD_BUFFERED: input and output share the system
/// buffer, so the request is decoded and carried out before any output is written.
unsafe extern "win64" fn dispatch_device_control(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: a device-control IRP: the current stack location holds its parameters and the
    // system buffer is max(input, output) bytes of nonpaged pool (or NULL when both are 0).
    let (code, input_len, output_len, buffer) = unsafe {
        let stack = (*irp).Tail.Overlay.CurrentStackLocation;
        let p = (*stack).Parameters.DeviceIoControl;
        (
            p.IoControlCode,
            p.InputBufferLength as usize,
            p.OutputBufferLength as usize,
            (*irp).AssociatedIrp.SystemBuffer,
        )
    };
    let buffer = buffer.cast::<u8>();
    if buffer.is_null() && (input_len != 0 || output_len != 0) {
        return complete(irp, STATUS_INVALID_PARAMETER, 0);
    }
    let (status, written) = match handle(code, buffer, input_len, output_len) {
        Ok(written) => (STATUS_SUCCESS, written),
        Err(status) => (status, 0),
    };
    complete(irp, status, written)
}

/// What a write request produced, kept while the shared buffer changes from input to output.
enum Done {
    Nothing,
    NewCall(partyline_core::Id),
    NewParty(partyline_core::Id),
}

fn handle(code: u32, buffer: *mut u8, input_len: usize, output_len: usize) -> Result<usize, NTSTATUS> {
    let done = {
        let input: &[u8] = if input_len == 0 {
            &[]
        } else {
            // SAFETY: the system buffer holds `input_len` bytes of input; no mutable view of it
            // exists while this one lives.
            unsafe { core::slice::from_raw_parts(buffer, input_len) }
        };
        let request = ioctl::decode_request(code, input).map_err(|e| e.status())?;
        match request {
            // Each request queues work for NDIS; the engine call, claiming the drive loop and
            // taking its first request share one critical section, and the requests are made
            // right after (no lock held).
            Request::MakeCall { af, profile, leaves } => {
                let call = with_memory_then_drive(|e| e.make_call(af, profile, leaves.iter()))
                    .map_err(ioctl::core_status)?;
                Done::NewCall(call)
            }
            Request::AddParty { call, leaf } => Done::NewParty(
                with_memory_then_drive(|e| e.add_party(call, leaf)).map_err(ioctl::core_status)?,
            ),
            Request::DropParty { party } => {
                drive_after(|e| e.drop_party(party)).map_err(ioctl::core_status)?;
                Done::Nothing
            }
            Request::CloseCall { call } => {
                drive_after(|e| e.close_call(call)).map_err(ioctl::core_status)?;
                Done::Nothing
            }
            // Queries answer from the engine, under the lock, straight into the buffer.
            query => return answer(query, buffer, output_len),
        }
    };
    let output = output_slice(buffer, output_len);
    match done {
        Done::Nothing => Ok(0),
        Done::NewCall(id) => ioctl::encode_make_call_response(output, id).map_err(|e| e.status()),
        Done::NewParty(id) => ioctl::encode_add_party_response(output, id).map_err(|e| e.status()),
    }
}

fn output_slice<'a>(buffer: *mut u8, output_len: usize) -> &'a mut [u8] {
    if output_len == 0 {
        &mut []
    } else {
        // SAFETY: the system buffer holds at least `output_len` bytes; the input view is gone.
        unsafe { core::slice::from_raw_parts_mut(buffer, output_len) }
    }
}

fn answer(query: Request<'_>, buffer: *mut u8, output_len: usize) -> Result<usize, NTSTATUS> {
    // Copy what the query needs out of the input before the output overwrites it.
    let query = match query {
        Request::ListBindings { cursor } => Query::Bindings(cursor),
        Request::ListCalls { cursor } => Query::Calls(cursor),
        Request::QueryCall { call, cursor } => Query::Call(call, cursor),
        Request::ReadCounters => Query::Counters,
        Request::ReadTrace { from } => Query::Trace(from),
        Request::ReadState => Query::State,
        _ => return Err(STATUS_INVALID_DEVICE_REQUEST),
    };
    let output = output_slice(buffer, output_len);
    let result = with_engine(|e| match query {
        Query::Bindings(cursor) => ioctl::encode_list_bindings_response(
            output,
            cursor,
            e.bindings()
                .map(ioctl::ListEntry::binding)
                .chain(e.address_families().map(ioctl::ListEntry::address_family)),
        ),
        Query::Calls(cursor) => {
            ioctl::encode_list_calls_response(output, cursor, e.calls().map(ioctl::CallEntry::new))
        }
        Query::Call(call, cursor) => match e.call_info(call) {
            Some(info) => ioctl::encode_query_call_response(
                output,
                &ioctl::CallSummary::new(call, &info),
                cursor,
                e.parties_of(call).filter_map(|p| Some(ioctl::PartyEntry::new(p, &e.party_info(p)?))),
            ),
            None => Err(ioctl::IoctlError::Id { field: ioctl::IdField::Call, value: call.to_u64() }),
        },
        Query::Counters => ioctl::encode_counters_response(output, &e.counters),
        // The driver's own tables, work queues and refusals (O(queued work), control path).
        Query::State => ioctl::encode_state_response(output, &e.census()),
        Query::Trace(from) => {
            ioctl::encode_trace_response(output, e.trace.next_sequence(), e.trace.since(from))
        }
    });
    result.map_err(|error| match error {
        ioctl::IoctlError::Id { .. } => ioctl::STATUS_NOT_FOUND,
        other => other.status(),
    })
}

#[derive(Clone, Copy)]
enum Query {
    Bindings(u64),
    Calls(u64),
    Call(partyline_core::Id, u64),
    Counters,
    Trace(u64),
    State,
}
