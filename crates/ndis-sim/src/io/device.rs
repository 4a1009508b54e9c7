//! Device objects and symbolic links: `IoCreateDevice`, `IoDeleteDevice`, `IoCreateSymbolicLink`,
//! `IoDeleteSymbolicLink`.
//!
//! Read: https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocreatedevice (and
//! the IoDeleteDevice, IoCreateSymbolicLink, IoDeleteSymbolicLink pages), "Securing Device
//! Objects" and "Controlling Device Namespace Access".
//!
//! Flow: `IoCreateDevice` allocates a real x64 `DEVICE_OBJECT` with the extension after it, links
//! it to the driver object and records it (with the default DACL) in the [`IoManager`]'s table;
//! the driver tightens the DACL (security routines, object manager) and only then makes the name
//! reachable with `IoCreateSymbolicLink`, which checks that the DACL is restrictive.

use ndis_sys::base::{BOOLEAN, NTSTATUS, UNICODE_STRING};
use ndis_sys::kernel::{
    DEVICE_OBJECT, DEVICE_TYPE, DO_DEVICE_INITIALIZING, DRIVER_OBJECT, FILE_DEVICE_SECURE_OPEN,
    IO_TYPE_DEVICE,
};
use ndis_sys::status::{
    STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_COLLISION, STATUS_OBJECT_NAME_INVALID,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS,
};

use super::entry::enter;
use super::manager::{canonical, Device, IoManager};
use super::memory::Block;
use super::rules;
use super::security::Security;
use crate::ddi::{Ddi, IrqlRequirement::AtMost};
use crate::kernel::PASSIVE_LEVEL;
use crate::verifier;

/// x64 `DEVICE_OBJECT` (opaque in ndis-sys; offsets from the same ntdiff/headers type dumps as the
/// IRP): size 0x150, `DriverObject` +0x08, `NextDevice` +0x10, `Flags` +0x30, `Characteristics`
/// +0x34, `DeviceExtension` +0x40, `DeviceType` +0x48, `StackSize` +0x4C.
pub(super) const DEVICE_OBJECT_SIZE: usize = 0x150;
pub(super) const DEVICE_DRIVER_OBJECT: usize = 0x08;
pub(super) const DEVICE_NEXT_DEVICE: usize = 0x10;
pub(super) const DEVICE_FLAGS: usize = 0x30;
pub(super) const DEVICE_CHARACTERISTICS: usize = 0x34;
pub(super) const DEVICE_EXTENSION: usize = 0x40;
pub(super) const DEVICE_TYPE_OFFSET: usize = 0x48;
pub(super) const DEVICE_STACK_SIZE: usize = 0x4C;

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

/// `IoCreateDevice`. IRQL: PASSIVE_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocreatedevice
pub(super) unsafe extern "win64" fn io_create_device(
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
    enter(&Ddi::ntoskrnl("IoCreateDevice", AtMost(PASSIVE_LEVEL), rules::IRQL_IO), detail, |world, _| {
        let io = IoManager::of_ref(world);
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
        let in_driver_entry = state.driver_entry_running;
        state.devices.insert(
            memory.addr(),
            Device {
                memory,
                name,
                driver: driver_object as usize,
                characteristics,
                security: Security::Default,
                deleted: false,
                in_driver_entry,
            },
        );
        STATUS_SUCCESS
    })
}

/// `IoDeleteDevice`. IRQL: PASSIVE_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iodeletedevice
pub(super) unsafe extern "win64" fn io_delete_device(device_object: *mut DEVICE_OBJECT) {
    let detail = || format!("0x{:x}", device_object as usize);
    enter(&Ddi::ntoskrnl("IoDeleteDevice", AtMost(PASSIVE_LEVEL), rules::IRQL_IO), detail, |world, _| {
        let io = IoManager::of_ref(world);
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
pub(super) unsafe extern "win64" fn io_create_symbolic_link(
    link: *mut UNICODE_STRING,
    device: *mut UNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the driver passes valid UNICODE_STRINGs, as the DDI requires.
    let (link_name, device_name) = unsafe { (read_unicode(link), read_unicode(device)) };
    let detail = || format!("{link_name:?} -> {device_name:?}");
    enter(
        &Ddi::ntoskrnl("IoCreateSymbolicLink", AtMost(PASSIVE_LEVEL), rules::IRQL_IO),
        detail,
        |world, _| {
            let io = IoManager::of_ref(world);
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
                    && d.name.as_deref().map(str::to_ascii_lowercase)
                        == Some(device_name.to_ascii_lowercase())
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
        },
    )
}

/// `IoDeleteSymbolicLink`. IRQL: PASSIVE_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iodeletesymboliclink
pub(super) unsafe extern "win64" fn io_delete_symbolic_link(link: *mut UNICODE_STRING) -> NTSTATUS {
    // SAFETY: the driver passes a valid UNICODE_STRING, as the DDI requires.
    let link_name = unsafe { read_unicode(link) };
    enter(
        &Ddi::ntoskrnl("IoDeleteSymbolicLink", AtMost(PASSIVE_LEVEL), rules::IRQL_IO),
        || format!("{link_name:?}"),
        |world, _| {
            let io = IoManager::of_ref(world);
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
