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
//! [`IoManager::device_control`] / [`IoManager::close`] as a given [`Caller`] (see [`manager`]),
//! with system buffers poisoned and the returned bytes checked ([`disclosure`]). After the
//! harness has called `DriverUnload` (or DriverEntry failed), [`check_cleanup`] reports every
//! device, link or kernel handle left behind.
//!
//! Modules, one idea each, imported only downwards (`entry` and `rules` by all; `memory`,
//! `disclosure` and `security` by `manager`; `manager` and `security` by `device` and `object`):
//! - [`entry`]: how every export here starts (log, IRQL check against the export's own rule);
//! - [`manager`]: the I/O manager (opens, IRPs, dispatch, `IofCompleteRequest`), over [`memory`];
//! - [`device`]: device objects and symbolic links;
//! - [`security`]: SIDs, ACLs, security descriptors, the access check;
//! - [`object`]: the object manager (kernel handles, `ObOpenObjectByPointer`,
//!   `ZwSetSecurityObject`, `ZwClose`);
//! - [`disclosure`]: poisoned system buffers and the proof that no unwritten byte is returned;
//! - [`rules`]: the rules all of these report, by family.

mod device;
pub mod disclosure;
mod entry;
mod manager;
mod memory;
pub mod object;
pub mod rules;
pub mod security;

use crate::export;
use crate::exports::ExportTable;
use crate::kernel::World;
use crate::verifier::Cleanup;

pub use disclosure::{Poison, Suspects};
pub use manager::{required_access, FileHandle, IoError, IoManager, STATUS_NO_SUCH_DEVICE};
pub use object::ObjectManager;
pub use security::{map_generic, Ace, Caller, Security, Sid};

/// Registers this module's exports.
pub fn register(table: &mut ExportTable) {
    use device::*;
    use manager::iof_complete_request;
    use object::*;
    use security::*;
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

/// Creates the I/O manager and the object manager of `world` (the harness does so before the
/// simulated NDIS, whose extension is looked up on every ndis.sys export and is then found first)
/// and poisons system buffers with `seed`'s pattern.
pub fn install(world: &World, seed: u64) {
    ObjectManager::of(world);
    IoManager::of(world).set_poison(Poison::Suspect { seed });
}

/// Reports leftovers after the harness called `DriverUnload`: devices not deleted, links not
/// deleted, kernel handles not closed. Returns how many were found.
pub fn check_unload(world: &World) -> usize {
    check_cleanup(world, Cleanup::DriverUnload)
}

/// [`check_unload`] after `routine`: DriverUnload, or a DriverEntry that failed (which must have
/// deleted and closed what it created before returning; DriverUnload is not called then).
pub fn check_cleanup(world: &World, routine: Cleanup) -> usize {
    manager::check_cleanup(world, routine) + object::check_cleanup(world, routine)
}

#[cfg(test)]
mod tests;
