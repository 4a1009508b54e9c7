//! The simulated object manager: kernel handles to the I/O manager's device objects,
//! `ObOpenObjectByPointer`, `ZwSetSecurityObject` (a device's DACL) and `ZwClose`.
//!
//! Read: https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-obopenobjectbypointer,
//! .../nf-ntifs-zwsetsecurityobject, .../ddi/wdm/nf-wdm-zwclose.
//!
//! Flow: in DriverEntry the driver opens its device object by pointer (a kernel handle with the
//! access it asked for), sets the DACL it built with the security routines through the handle
//! (WRITE_DAC needed; the descriptor is copied into the [`IoManager`]'s device record), and closes
//! the handle. [`check_cleanup`] reports handles still open at unload.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

use ndis_sys::base::{ACCESS_MASK, HANDLE, NTSTATUS};
use ndis_sys::kernel::{
    ACCESS_STATE, DACL_SECURITY_INFORMATION, FILE_ALL_ACCESS, GENERIC_ALL, KPROCESSOR_MODE, OBJECT_TYPE,
    SECURITY_DESCRIPTOR, SECURITY_DESCRIPTOR_REVISION, SECURITY_INFORMATION, SE_DACL_PRESENT,
    SE_SELF_RELATIVE, WRITE_DAC,
};
use ndis_sys::status::{
    STATUS_ACCESS_DENIED, STATUS_INVALID_ACL, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER,
    STATUS_INVALID_SECURITY_DESCR, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, STATUS_UNKNOWN_REVISION,
};

use super::entry::enter;
use super::manager::IoManager;
use super::rules;
use super::security::{map_generic, read_acl, security_error, Security};
use crate::ddi::{Ddi, IrqlRequirement::AtMost};
use crate::kernel::{World, PASSIVE_LEVEL};
use crate::spin::SpinLock;
use crate::verifier::{self, Cleanup};

/// An open kernel handle: the device object it refers to and the access it was granted.
#[derive(Clone, Copy)]
pub(super) struct KernelHandle {
    device: usize,
    access: ACCESS_MASK,
}

#[derive(Default)]
struct Handles {
    open: HashMap<usize, KernelHandle>,
    opened: usize,
}

/// The object manager of one world (a [`World`] extension): the kernel handles the driver holds.
#[derive(Default)]
pub struct ObjectManager {
    handles: SpinLock<Handles>,
}

impl ObjectManager {
    /// The object manager of `world`, created on first use.
    pub fn of(world: &World) -> Arc<ObjectManager> {
        if let Some(objects) = world.extension::<ObjectManager>() {
            return objects;
        }
        let objects = Arc::new(ObjectManager::default());
        match world.insert_extension(objects.clone()) {
            Some(previous) => {
                world.insert_extension(previous.clone());
                previous
            }
            None => objects,
        }
    }

    /// [`ObjectManager::of`] by reference.
    pub fn of_ref(world: &World) -> &ObjectManager {
        if world.extension_ref::<ObjectManager>().is_none() {
            ObjectManager::of(world);
        }
        world.extension_ref::<ObjectManager>().expect("inserted above")
    }

    /// A new kernel handle (the top bit set, as kernel handles have) for `handle`.
    fn open(&self, handle: KernelHandle) -> usize {
        let mut handles = self.handles.lock();
        handles.opened += 1;
        let value = 0xFFFF_FFFF_8000_0000usize | (handles.opened * 4);
        handles.open.insert(value, handle);
        value
    }

    fn get(&self, value: usize) -> Option<KernelHandle> {
        self.handles.lock().open.get(&value).copied()
    }

    /// Closes `value`; false if it was not open.
    fn close(&self, value: usize) -> bool {
        self.handles.lock().open.remove(&value).is_some()
    }
}

/// Reports every kernel handle still open after `routine` (DriverUnload, or a failed
/// DriverEntry): "Unload Routine Functionality" — the driver releases what it acquired
/// (https://learn.microsoft.com/windows-hardware/drivers/kernel/unload-routine-functionality).
/// Returns how many were found.
pub fn check_cleanup(world: &World, routine: Cleanup) -> usize {
    let objects = ObjectManager::of(world);
    let handles = objects.handles.lock();
    for handle in handles.open.keys() {
        verifier::report(
            world,
            rules::UNLOAD_CLEANUP,
            routine.call(),
            format!("{} leaving kernel handle 0x{handle:x} not closed (ZwClose)", routine.ended()),
        );
    }
    handles.open.len()
}

/// `ObOpenObjectByPointer`. IRQL: PASSIVE_LEVEL. The object must be one the simulator knows (a
/// device object); the handle is a kernel handle granted `DesiredAccess`.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-obopenobjectbypointer
pub(super) unsafe extern "win64" fn ob_open_object_by_pointer(
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
    enter(
        &Ddi::ntoskrnl("ObOpenObjectByPointer", AtMost(PASSIVE_LEVEL), rules::IRQL_IO),
        detail,
        |world, _| {
            if !IoManager::of_ref(world).is_live_device(object as usize) {
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
            let access = if desired & GENERIC_ALL != 0 { FILE_ALL_ACCESS } else { map_generic(desired) };
            let value = ObjectManager::of_ref(world).open(KernelHandle { device: object as usize, access });
            // SAFETY: `handle` is the driver's writable HANDLE (checked non-null).
            unsafe { handle.write(value as HANDLE) };
            STATUS_SUCCESS
        },
    )
}

/// `ZwSetSecurityObject`. IRQL: PASSIVE_LEVEL. Setting the DACL needs WRITE_DAC on the handle;
/// the descriptor is copied, so the driver's buffers may be freed afterwards.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwsetsecurityobject
pub(super) unsafe extern "win64" fn zw_set_security_object(
    handle: HANDLE,
    information: SECURITY_INFORMATION,
    sd: *mut SECURITY_DESCRIPTOR,
) -> NTSTATUS {
    const NAME: &str = "ZwSetSecurityObject";
    let detail = || format!("0x{:x}, info 0x{information:X}, sd 0x{:x}", handle as usize, sd as usize);
    enter(&Ddi::ntoskrnl(NAME, AtMost(PASSIVE_LEVEL), rules::IRQL_IO), detail, |world, _| {
        let Some(kh) = ObjectManager::of_ref(world).get(handle as usize) else {
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
        IoManager::of_ref(world).set_security(device, security);
        STATUS_SUCCESS
    })
}

/// `ZwClose`. IRQL: PASSIVE_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwclose
pub(super) unsafe extern "win64" fn zw_close(handle: HANDLE) -> NTSTATUS {
    enter(
        &Ddi::ntoskrnl("ZwClose", AtMost(PASSIVE_LEVEL), rules::IRQL_IO),
        || format!("0x{:x}", handle as usize),
        |world, _| {
            if ObjectManager::of_ref(world).close(handle as usize) {
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
