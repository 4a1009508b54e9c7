//! The simulated I/O manager: device and file objects, opens, and the IRPs of `IRP_MJ_CREATE`,
//! `IRP_MJ_CLOSE` and `IRP_MJ_DEVICE_CONTROL`, completed with `IofCompleteRequest`.
//!
//! Read: "Completing IRPs" (https://learn.microsoft.com/windows-hardware/drivers/kernel/completing-irps),
//! https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocompleterequest,
//! "Buffer Descriptions for I/O Control Codes".
//!
//! Flow: host code uses [`IoManager::open`] / [`IoManager::device_control`] /
//! [`IoManager::close`] as a given [`Caller`]: the manager resolves the path, checks the device's
//! DACL against the caller's groups and the access the IOCTL code requires (as `NtCreateFile` and
//! `NtDeviceIoControlFile` do), builds an IRP with the real x64 layout (`IRP` + one
//! `IO_STACK_LOCATION`; for METHOD_BUFFERED a `SystemBuffer` holding the input, then poison: see
//! [`super::disclosure`]), calls `MajorFunction[...]` from the driver object at PASSIVE_LEVEL on
//! the caller's thread, checks that the IRP was completed exactly once, with the status the
//! dispatch routine returned, before it returned, and copies `Information` bytes back.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use ndis_sys::base::{ACCESS_MASK, NTSTATUS, UNICODE_STRING};
use ndis_sys::kernel::*;
use ndis_sys::status::{
    STATUS_ACCESS_DENIED, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_HANDLE, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_PENDING,
};

use super::device::DEVICE_FLAGS;
use super::disclosure::{Disclosure, Poison, Suspects};
use super::entry::enter_logged;
use super::memory::{Arena, Block, Irps, IRP_LEN};
use super::rules;
use super::security::{map_generic, Caller, Security};
use crate::ddi::{Ddi, IrqlRequirement::AtMost};
use crate::fast_hash::FastMap;
use crate::kernel::{self, Call, World, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::spin::{SpinGuard, SpinLock};
use crate::verifier::{self, Cleanup};

/// `STATUS_NO_SUCH_DEVICE`: what an open of a device still marked `DO_DEVICE_INITIALIZING` gets.
/// The Learn page below says only that the I/O manager refuses such an open; this status is the
/// one Windows is seen to return for it (CreateFile: ERROR_FILE_NOT_FOUND).
pub const STATUS_NO_SUCH_DEVICE: NTSTATUS = 0xC000_000E_u32 as i32;

/// A device object the driver created, as the I/O manager records it.
pub(super) struct Device {
    pub(super) memory: Block,
    pub(super) name: Option<String>,
    pub(super) driver: usize,
    pub(super) characteristics: u32,
    pub(super) security: Security,
    pub(super) deleted: bool,
    /// Created while DriverEntry ran: the I/O manager clears its `DO_DEVICE_INITIALIZING` when
    /// DriverEntry returns.
    pub(super) in_driver_entry: bool,
}

struct Open {
    device: usize,
    granted: ACCESS_MASK,
    file_object: Block,
    caller: Caller,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) devices: BTreeMap<usize, Device>,
    /// Lower-case link name (`\??\partyline`) -> (name as created, device name).
    pub(super) links: BTreeMap<String, (String, String)>,
    opens: FastMap<u64, Open>,
    next_open: u64,
    irps: Irps,
    retired: Vec<Block>,
    arena: Arena,
    pub(super) driver_object: Option<usize>,
    /// DriverEntry is running (devices created now are made ready when it returns).
    pub(super) driver_entry_running: bool,
    /// The open tried at the entry of every I/O-manager, security and object export, and what
    /// the I/O manager answered each time (see [`IoManager::probe_opens`]).
    probe: Option<Probe>,
    /// The poison of system buffers and the suspects it found.
    disclosure: Disclosure,
}

/// The simulated I/O manager of one world (a [`World`] extension).
#[derive(Default)]
pub struct IoManager {
    state: SpinLock<State>,
}

/// An open tried at the entry of every export (a test's view of a window such as the one
/// between `IoCreateDevice` and `ZwSetSecurityObject`).
struct Probe {
    path: String,
    desired: ACCESS_MASK,
    caller: Caller,
    answers: Vec<(&'static str, Result<(), IoError>)>,
}

/// Why a host request did not reach the driver, or did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoError {
    /// No device or link by that name (`STATUS_OBJECT_NAME_NOT_FOUND`).
    NotFound(String),
    /// The device is still marked `DO_DEVICE_INITIALIZING` ([`STATUS_NO_SUCH_DEVICE`]).
    Initializing(String),
    /// The device's DACL does not grant the caller the access asked for (`STATUS_ACCESS_DENIED`).
    AccessDenied { caller: Caller, desired: ACCESS_MASK, granted: ACCESS_MASK },
    /// The handle is not open (`STATUS_INVALID_HANDLE`).
    InvalidHandle,
    /// The dispatch routine returned without completing the IRP (it is reported too).
    Pending { status: NTSTATUS },
    /// The driver failed the open (`IRP_MJ_CREATE` completed with an error).
    CreateFailed(NTSTATUS),
    /// The run stopped (a bug check, a deadlock...) before the request finished.
    Stopped,
}

impl IoError {
    /// The status user mode would see.
    pub fn status(&self) -> NTSTATUS {
        match self {
            IoError::NotFound(_) => STATUS_OBJECT_NAME_NOT_FOUND,
            IoError::Initializing(_) => STATUS_NO_SUCH_DEVICE,
            IoError::AccessDenied { .. } => STATUS_ACCESS_DENIED,
            IoError::InvalidHandle => STATUS_INVALID_HANDLE,
            IoError::Pending { .. } => STATUS_PENDING,
            IoError::CreateFailed(s) => *s,
            IoError::Stopped => STATUS_PENDING,
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::NotFound(path) => write!(f, "{path}: no such device"),
            IoError::Initializing(path) => {
                write!(f, "{path}: the device is still initializing (DO_DEVICE_INITIALIZING)")
            }
            IoError::AccessDenied { caller, desired, granted } => write!(
                f,
                "access denied: {caller:?} asked for 0x{desired:08X}, the device's DACL grants 0x{granted:08X}"
            ),
            IoError::InvalidHandle => f.write_str("invalid handle"),
            IoError::Pending { status } => {
                write!(f, "the driver returned 0x{:08X} without completing the IRP", *status as u32)
            }
            IoError::CreateFailed(s) => write!(f, "the driver failed the open with 0x{:08X}", *s as u32),
            IoError::Stopped => f.write_str("the run stopped before the request finished"),
        }
    }
}

impl std::error::Error for IoError {}

/// An open handle to a device, from [`IoManager::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileHandle(u64);

/// Canonical key of an object-manager name: links live in `\??`, whatever alias created them.
pub(super) fn canonical(name: &str) -> String {
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

    pub(super) fn state(&self) -> SpinGuard<'_, State> {
        self.state.lock()
    }

    /// Tells the I/O manager which `DRIVER_OBJECT` the harness passed to DriverEntry; device
    /// creations naming another one are then refused and reported.
    pub fn set_driver_object(&self, driver_object: *mut DRIVER_OBJECT) {
        self.state().driver_object = Some(driver_object as usize);
    }

    /// Whether `address` is a device object the driver created and has not deleted.
    pub(super) fn is_live_device(&self, address: usize) -> bool {
        self.state().devices.get(&address).is_some_and(|d| !d.deleted)
    }

    /// Gives the device at `address` the DACL `security` (ZwSetSecurityObject).
    pub(super) fn set_security(&self, address: usize, security: Security) {
        if let Some(device) = self.state().devices.get_mut(&address) {
            device.security = security;
        }
    }

    /// How system buffers are poisoned from now on (see [`super::disclosure`]): set it before the
    /// first device control of a run. The default is [`Poison::Suspect`] with seed 0.
    pub fn set_poison(&self, poison: Poison) {
        self.state().disclosure.set_poison(poison);
    }

    /// The returned bytes that held [`Poison::Suspect`]'s pattern so far: empty proves that every
    /// returned byte was written; otherwise replay with [`Poison::Confirm`] to find out which.
    pub fn disclosure_suspects(&self) -> Suspects {
        self.state().disclosure.suspects()
    }

    /// Under [`Poison::Confirm`], suspect bytes whose request carried another IOCTL code than in
    /// the suspecting run (the runs diverged), which could therefore not be confirmed.
    pub fn disclosure_diverged(&self) -> u64 {
        self.state().disclosure.diverged()
    }

    /// Returned bytes beyond the input inspected for poison so far: how many bytes a run's clean
    /// verdict covers.
    pub fn disclosure_inspected(&self) -> u64 {
        self.state().disclosure.inspected()
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
    /// directly. Returns the device address and the rest of the path *below* the device (`\more`
    /// for `\Device\X\more`, as the I/O manager leaves it in `FileObject->FileName`; empty for
    /// the device itself).
    fn resolve(state: &State, path: &str) -> Option<(usize, String)> {
        let canonical_path = canonical(path);
        let target = state
            .links
            .iter()
            .find(|(link, _)| canonical_path == **link || canonical_path.starts_with(&format!("{link}\\")))
            .map(|(link, (_, device))| {
                format!("{}{}", device.to_ascii_lowercase(), &canonical_path[link.len()..])
            })
            .unwrap_or(canonical_path);
        state.devices.iter().filter(|(_, d)| !d.deleted).find_map(|(&addr, d)| {
            let name = d.name.as_ref()?.to_ascii_lowercase();
            let rest = target.strip_prefix(&name)?;
            // The rest is a suffix of `path` too (lower-casing keeps lengths): keep its case.
            (rest.is_empty() || rest.starts_with('\\'))
                .then(|| (addr, path[path.len() - rest.len()..].to_string()))
        })
    }

    /// What the I/O manager checks before an open reaches the driver: the path names a device,
    /// the device is no longer initializing, and its DACL grants `desired` to `caller` (the check
    /// `FILE_DEVICE_SECURE_OPEN` extends to names below the device). Returns the device and the
    /// file name below it.
    ///
    /// "What does DO_DEVICE_INITIALIZING really do?": the I/O manager refuses to open a device by
    /// name while DO_DEVICE_INITIALIZING is set, and clears it for the devices a driver creates in
    /// DriverEntry when DriverEntry returns
    /// (https://learn.microsoft.com/previous-versions/windows/hardware/design/dn614010(v=vs.85)).
    fn admit(
        &self,
        world: &World,
        path: &str,
        desired: ACCESS_MASK,
        caller: Caller,
    ) -> Result<(usize, String), IoError> {
        let state = self.state();
        let (device, file_name) =
            Self::resolve(&state, path).ok_or_else(|| IoError::NotFound(path.into()))?;
        let d = &state.devices[&device];
        // The flag as the device object holds it now: the driver may have cleared it itself.
        // SAFETY: a live device object this module allocated; Flags is a u32 at DEVICE_FLAGS.
        let flags = unsafe { d.memory.ptr::<u8>().add(DEVICE_FLAGS).cast::<u32>().read() };
        if flags & DO_DEVICE_INITIALIZING != 0 {
            return Err(IoError::Initializing(path.into()));
        }
        let granted = if !file_name.is_empty() && d.characteristics & FILE_DEVICE_SECURE_OPEN == 0 {
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
        Ok((device, file_name))
    }

    /// From now on, tries an open of `path` as `caller` at the entry of every I/O-manager,
    /// security and object-manager export (before the export does anything) and records what
    /// the I/O manager answered: the checks of [`IoManager::open`], without sending the IRP.
    pub fn probe_opens(&self, path: &str, desired: ACCESS_MASK, caller: Caller) {
        let probe = Probe { path: path.into(), desired: map_generic(desired), caller, answers: Vec::new() };
        self.state().probe = Some(probe);
    }

    /// The answers of [`IoManager::probe_opens`] so far, as (export, answer).
    pub fn probe_answers(&self) -> Vec<(&'static str, Result<(), IoError>)> {
        self.state().probe.as_ref().map(|p| p.answers.clone()).unwrap_or_default()
    }

    /// Tries the probe's open, if there is one, at the entry of `export`.
    pub(super) fn probe(&self, world: &World, export: &'static str) {
        let Some((path, desired, caller)) =
            self.state().probe.as_ref().map(|p| (p.path.clone(), p.desired, p.caller))
        else {
            return;
        };
        let answer = self.admit(world, &path, desired, caller).map(|_| ());
        if let Some(probe) = self.state().probe.as_mut() {
            probe.answers.push((export, answer));
        }
    }

    /// DriverEntry begins: devices created from now until [`IoManager::driver_entry_returned`]
    /// are made ready when it returns.
    pub fn driver_entry_begins(&self) {
        self.state().driver_entry_running = true;
    }

    /// DriverEntry returned: clears DO_DEVICE_INITIALIZING on the live devices it created, as the
    /// I/O manager does (see [`IoManager::open`]).
    pub fn driver_entry_returned(&self) {
        let mut state = self.state();
        state.driver_entry_running = false;
        for device in state.devices.values().filter(|d| !d.deleted && d.in_driver_entry) {
            // SAFETY: a live device object this module allocated; Flags is a u32 at DEVICE_FLAGS.
            unsafe {
                let flags = device.memory.ptr::<u8>().add(DEVICE_FLAGS).cast::<u32>();
                flags.write(flags.read() & !DO_DEVICE_INITIALIZING);
            }
        }
    }

    /// `CreateFile(path, desired)` as `caller`: the checks of [`IoManager::admit`], then
    /// `IRP_MJ_CREATE` with the rest of the path below the device in `FileObject->FileName`.
    pub fn open(
        &self,
        world: &Arc<World>,
        path: &str,
        desired: ACCESS_MASK,
        caller: Caller,
    ) -> Result<FileHandle, IoError> {
        let desired = map_generic(desired);
        let (device, file_name) = self.admit(world, path, desired, caller)?;
        // FileObject->FileName: the rest of the path below the device, its UTF-16 right after the
        // FILE_OBJECT in the same block (alive as long as the file object).
        let units: Vec<u16> = file_name.encode_utf16().collect();
        let bytes = u16::try_from(units.len() * 2).map_err(|_| IoError::NotFound(path.into()))?;
        let file_object = Block::new(FILE_OBJECT_SIZE + units.len() * 2);
        let file_pointer = file_object.addr();
        // SAFETY: `file_object` is zeroed simulator memory of FILE_OBJECT_SIZE + the name's bytes,
        // 16-byte aligned; FileName (8-aligned, inside FILE_OBJECT_SIZE) and the name after it.
        unsafe {
            let base = file_object.ptr::<u8>();
            let buffer = base.add(FILE_OBJECT_SIZE).cast::<u16>();
            std::ptr::copy_nonoverlapping(units.as_ptr(), buffer, units.len());
            let buffer = if units.is_empty() { std::ptr::null_mut() } else { buffer };
            base.add(FILE_OBJECT_FILE_NAME).cast::<UNICODE_STRING>().write(UNICODE_STRING {
                Length: bytes,
                MaximumLength: bytes,
                Buffer: buffer,
            });
        }
        let status = self.send(world, device, IRP_MJ_CREATE, file_pointer, None)?.0;
        if nt_error(status) {
            self.state().retired.push(file_object);
            return Err(IoError::CreateFailed(status));
        }
        let mut state = self.state();
        state.next_open += 1;
        let handle = state.next_open;
        state.opens.insert(handle, Open { device, granted: desired, file_object, caller });
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
        // As on Windows, a top-level driver's dispatch routine runs in the context of the thread
        // that made the request: a caller in this world already (a test acting as a driver, or
        // driver work) runs it itself; a caller from outside (user mode) gets a thread of
        // processor 0 (see crate::machine).
        let processor = kernel::current_processor_in(world).unwrap_or(0);
        let (code, input, output) = ioctl.unwrap_or((0, &[], &mut []));
        let request = Request { major, code, input_len: input.len(), output_len: output.len() };
        let sent = self.build(device, file_object, &request, input)?;
        let returned = if crate::machine::is_context(world) {
            dispatch(world, processor, device, &request, &sent)
        } else {
            let on = OnProcessor((Arc::clone(world), request.clone(), sent.clone()));
            let work = move || {
                let on = on;
                let (world, request, sent) = &on.0;
                dispatch(world, processor, device, request, sent)
            };
            match world.machine().run_task(world, request.call().name, Some(processor), work) {
                Some(returned) => returned,
                None => return Err(IoError::Stopped),
            }
        };
        self.finish(world, &request, &sent, returned, output)
    }

    /// Builds the IRP of `request` (and, for a device control, its system buffer: the input, then
    /// poison up to the output length) and finds the dispatch routine.
    fn build(
        &self,
        device: usize,
        file_object: usize,
        request: &Request,
        input: &[u8],
    ) -> Result<Sent, IoError> {
        let Request { major, code, input_len, output_len } = *request;
        let mut state = self.state();
        let state = &mut *state;
        let driver = state.devices.get(&device).ok_or(IoError::InvalidHandle)?.driver;
        // Kept until the manager drops: a driver that completes again later must hit
        // simulator memory, and be reported, rather than freed memory.
        let irp = state.irps.allocate();
        let system_buffer = state.arena.allocate(input_len.max(output_len), &mut state.retired) as *mut u8;
        let mut number = 0;
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
                    std::ptr::copy_nonoverlapping(input.as_ptr(), system_buffer, input_len);
                    // Buffer Descriptions for I/O Control Codes: the I/O manager copies the input
                    // and leaves the rest of the buffer as the pool had it; here, poison.
                    let returnable = std::slice::from_raw_parts_mut(
                        system_buffer.add(input_len),
                        output_len.saturating_sub(input_len),
                    );
                    number = state.disclosure.poison(returnable, input_len);
                    (*stack).Parameters.DeviceIoControl = IO_STACK_LOCATION_DEVICE_IO_CONTROL {
                        OutputBufferLength: output_len as u32,
                        Padding0: 0,
                        InputBufferLength: input_len as u32,
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
        // harness allocated and keeps alive while the driver is loaded; MajorFunction is read by
        // value.
        let dispatch = unsafe { (*driver).MajorFunction[usize::from(major)] };
        Ok(Sent { dispatch, irp, system_buffer, number })
    }

    /// After the dispatch routine returned `returned`: checks the IRP was completed once with
    /// that status, copies `Information` bytes of the system buffer to `output`, and inspects
    /// them for poison.
    fn finish(
        &self,
        world: &World,
        request: &Request,
        sent: &Sent,
        returned: NTSTATUS,
        output: &mut [u8],
    ) -> Result<(NTSTATUS, usize), IoError> {
        let (irp, name) = (sent.irp, request.call().name);
        let mut state = self.state();
        let first_completion = state.irps.record_mut(irp as usize).and_then(|r| {
            r.returned = true;
            r.first_completion
        });
        let Some((status, information)) = first_completion else {
            verifier::report(
                world,
                rules::IRP_NOT_PENDING,
                format!("driver!{name}"),
                format!(
                    "the dispatch routine returned 0x{:08X} without completing IRP 0x{:x}; no IRP may be left pending",
                    returned as u32, irp as usize
                ),
            );
            return Err(IoError::Pending { status: returned });
        };
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
        if request.major != IRP_MJ_DEVICE_CONTROL || nt_error(status) {
            return Ok((status, 0));
        }
        let output_len = request.output_len;
        if information > output_len {
            verifier::report(
                world,
                rules::COMPLETE_REQUEST,
                format!("driver!{name}"),
                format!("IoStatus.Information {information} exceeds the output buffer length {output_len}"),
            );
        }
        let n = information.min(output_len);
        // SAFETY: the system buffer holds max(input, output_len) >= n bytes.
        output[..n].copy_from_slice(unsafe { std::slice::from_raw_parts(sent.system_buffer, n) });
        state.disclosure.inspect(world, sent.number, request.code, &output[..n], request.input_len);
        Ok((status, n))
    }
}

/// What the host asked for: the major function and, for a device control, the IOCTL code and
/// the buffer lengths.
#[derive(Clone)]
struct Request {
    major: u8,
    code: u32,
    input_len: usize,
    output_len: usize,
}

impl Request {
    /// The log entry of the request's dispatch.
    fn call(&self) -> &'static Call {
        const CREATE: Call = Call::new("sim", "IRP_MJ_CREATE");
        const CLOSE: Call = Call::new("sim", "IRP_MJ_CLOSE");
        const DEVICE_CONTROL: Call = Call::new("sim", "IRP_MJ_DEVICE_CONTROL");
        match self.major {
            IRP_MJ_CREATE => &CREATE,
            IRP_MJ_CLOSE => &CLOSE,
            _ => &DEVICE_CONTROL,
        }
    }
}

/// An IRP built for a [`Request`]: the routine to call, the IRP, its system buffer and the
/// request's number for the disclosure proof (0 unless a device control).
/// What a dispatch needs, carried to the processor's thread that runs it.
struct OnProcessor((Arc<World>, Request, Sent));

// SAFETY: the IRP and system buffer `Sent` points to are simulator memory the I/O manager keeps
// until it drops; the harness thread that built them waits (Machine::run_task) while the
// processor's thread uses them, so they are never used by two threads at once.
unsafe impl Send for OnProcessor {}

#[derive(Clone)]
struct Sent {
    dispatch: Option<DRIVER_DISPATCH>,
    irp: *mut IRP,
    system_buffer: *mut u8,
    number: u64,
}

/// Calls the dispatch routine of `sent` at PASSIVE_LEVEL on `processor` (or completes the IRP
/// with STATUS_INVALID_DEVICE_REQUEST for an empty slot, as the I/O manager does) and checks it
/// returned at PASSIVE_LEVEL.
fn dispatch(world: &World, processor: usize, device: usize, request: &Request, sent: &Sent) -> NTSTATUS {
    let (call, irp) = (request.call(), sent.irp);
    // Entry to the dispatch routine is a scheduling point, as for every callback (before its log
    // entry, so the log shows it where it really starts).
    crate::machine::point();
    let previous = world.set_irql(processor, PASSIVE_LEVEL);
    let words = [irp as u64, u64::from(request.code), request.input_len as u64, request.output_len as u64];
    world.log_lazy(processor, call, &words, |a, f| {
        write!(f, "irp=0x{:x} code=0x{:08X} in={} out={}", a.word(0), a.word(1), a.word(2), a.word(3))
    });
    crate::machine::push_callback(call.name);
    let returned = match sent.dispatch {
        // SAFETY: the driver's dispatch routine, called as the I/O manager does: at PASSIVE on a
        // thread with the world entered, with a live device object and an IRP whose layout is
        // ndis-sys's x64 one.
        Some(dispatch) => unsafe { dispatch(device as *mut DEVICE_OBJECT, irp) },
        None => {
            // The I/O manager's default for an empty slot (IopInvalidDeviceRequest).
            // SAFETY: `irp` is the IRP built by `build`.
            unsafe {
                (*irp).IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
                (*irp).IoStatus.Information = 0;
                iof_complete_request(irp, IO_NO_INCREMENT);
            }
            STATUS_INVALID_DEVICE_REQUEST
        }
    };
    crate::machine::pop_call();
    let irql_after = world.set_irql(processor, previous);
    if irql_after != PASSIVE_LEVEL {
        verifier::report(
            world,
            rules::IRQL_IO,
            format!("driver!{}", call.name),
            format!("the dispatch routine returned at {irql_after}, not PASSIVE_LEVEL"),
        );
    }
    returned
}

/// The handle access an IOCTL code requires (its access bits, as `NtDeviceIoControlFile` checks).
pub fn required_access(code: u32) -> ACCESS_MASK {
    let bits = ACCESS_FROM_CTL_CODE(code);
    let mut access = 0;
    if bits & FILE_READ_ACCESS != 0 {
        access |= FILE_READ_DATA;
    }
    if bits & FILE_WRITE_ACCESS != 0 {
        access |= FILE_WRITE_DATA;
    }
    access
}

/// Reports the devices and links left after `routine` (DriverUnload, or a DriverEntry that failed,
/// which must have deleted what it created before returning since DriverUnload is not called
/// then). Returns how many were found.
/// Unload Routine Functionality: the Unload routine deletes the device objects and symbolic links
/// the driver created (https://learn.microsoft.com/windows-hardware/drivers/kernel/unload-routine-functionality).
pub(super) fn check_cleanup(world: &World, routine: Cleanup) -> usize {
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
    found
}

/// `IofCompleteRequest` (`IoCompleteRequest`). IRQL <= DISPATCH_LEVEL. An IRP is completed once;
/// it is never completed with STATUS_PENDING.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocompleterequest
pub(super) unsafe extern "win64" fn iof_complete_request(irp: *mut IRP, boost: i8) {
    const DDI: Ddi = Ddi::ntoskrnl("IofCompleteRequest", AtMost(DISPATCH_LEVEL), rules::COMPLETE_REQUEST);
    const CALL: Call = DDI.call();
    enter_logged(
        &DDI,
        |world, processor| {
            world.log_lazy(processor, &CALL, &[irp as u64, boost as u64], |a, f| {
                write!(f, "irp=0x{:x} boost={}", a.word(0), a.word(1) as i8)
            })
        },
        |world, _| {
            let io = IoManager::of_ref(world);
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
