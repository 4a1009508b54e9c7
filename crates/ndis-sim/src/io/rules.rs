//! The rules the simulated I/O manager, security routines and object manager check: one
//! [`Rule`] per documented rule with the Microsoft Learn page that states it. [`IO_MANAGER`] and
//! [`SECURITY`] list them by family; the crate's catalogue ([`crate::rules`]) joins them with the
//! other families, and its meta-test asserts each has a test `proves_<name in lower case>`.

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

/// A device-control response returned bytes of the system buffer the driver never wrote: the I/O
/// manager does not initialise the buffer beyond the input, so they would carry stale kernel pool
/// to user mode. Proved exactly by the replay described in [`super::disclosure`].
pub const UNINITIALIZED_OUTPUT: Rule = Rule::new(
    "Ddi_DeviceControl_UninitializedOutput",
    "https://learn.microsoft.com/windows-hardware/drivers/kernel/failure-to-initialize-output-buffers",
);

/// The I/O manager's rules: IRPs, dispatch routines, device objects, handles, unload.
pub const IO_MANAGER: &[Rule] = &[
    MULTIPLE_IRP_COMPLETE,
    IRP_NOT_PENDING,
    COMPLETE_STATUS,
    COMPLETE_REQUEST,
    IRQL_IO,
    KNOWN_OBJECT,
    UNLOAD_CLEANUP,
    UNINITIALIZED_OUTPUT,
];

/// The security rules: the device's DACL and namespace, and the SID/ACL/descriptor routines.
pub const SECURITY: &[Rule] = &[SECURE_DACL_BEFORE_LINK, SECURE_OPEN, SECURITY_OBJECTS];
