//! Every routine `partyline.sys` imports, declared once: extern blocks, `signatures`, `IMPORTS`.
//!
//! DDI pages: each import's doc line names its IRQL and its Microsoft Learn page.
//! Reference: `shared/ndis/condis-reference.md` §2–§8, `shared/ndis/cross-build-notes.md`.
//!
//! [`imports!`] turns one list grouped by DLL into:
//! - `#[cfg(target_os = "windows")] #[link(name = "<dll>", kind = "raw-dylib", modifiers = "+verbatim")]
//!   extern "system" { … }` blocks. They exist **only** for Windows targets, so host code (the
//!   simulator, host tests) can never call a kernel routine by accident. On x86-64 Windows
//!   `extern "system"` is the Windows x64 convention, the same as `extern "win64"`.
//! - [`signatures`]: one `pub type <Name> = unsafe extern "win64" fn(…) -> …;` per import. The
//!   simulator writes its host implementations against these, so both sides are type-checked
//!   against the same list.
//! - [`IMPORTS`]: `&[Import { dll, name }]`, in declaration order, for image checks and for the
//!   simulator's import binder.
//!
//! Data exports are not imported: `IoDeviceObjectType` (a `POBJECT_TYPE*` data export of
//! ntoskrnl.exe, usually passed to `ObOpenObjectByPointer`) is deliberately absent, because
//! importing data needs `__imp_` indirection that `raw-dylib` function imports do not model and
//! the simulator would have to fake an object-type object. `ObOpenObjectByPointer` accepts a NULL
//! `ObjectType` (no type check), which is what the driver passes.

use core::ffi::c_void;

use crate::base::*;
use crate::co::*;
use crate::kernel::*;
use crate::protocol::*;

/// One imported routine: the DLL that exports it and its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Import {
    pub dll: &'static str,
    pub name: &'static str,
}

/// Declares the imports; see the [module documentation](self).
///
/// ```text
/// imports! {
///     "ndis.sys" {
///         /// IRQL: PASSIVE. <https://learn.microsoft.com/...>
///         fn NdisFoo(Handle: NDIS_HANDLE) -> NDIS_STATUS;
///     }
/// }
/// ```
#[macro_export]
macro_rules! imports {
    ($(
        $dll:literal {
            $(
                $(#[$meta:meta])*
                fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;
            )*
        }
    )*) => {
        $(
            #[cfg(target_os = "windows")]
            #[link(name = $dll, kind = "raw-dylib", modifiers = "+verbatim")]
            extern "system" {
                $(
                    $(#[$meta])*
                    pub fn $name($($arg: $ty),*) $(-> $ret)?;
                )*
            }
        )*

        /// One `unsafe extern "win64" fn` type per import, for host implementations.
        pub mod signatures {
            #[allow(unused_imports)]
            use super::*;
            $($(
                $(#[$meta])*
                pub type $name = unsafe extern "win64" fn($($arg: $ty),*) $(-> $ret)?;
            )*)*
        }

        /// Every import, in declaration order.
        pub const IMPORTS: &[$crate::imports::Import] = &[
            $($( $crate::imports::Import { dll: $dll, name: stringify!($name) }, )*)*
        ];
    };
}

imports! {
    "ndis.sys" {
        /// IRQL: PASSIVE (DriverEntry). <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisregisterprotocoldriver>
        fn NdisRegisterProtocolDriver(
            ProtocolDriverContext: NDIS_HANDLE,
            ProtocolCharacteristics: *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
            NdisProtocolHandle: *mut NDIS_HANDLE,
        ) -> NDIS_STATUS;
        /// IRQL: PASSIVE; never from an NDIS-invoked handler. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisderegisterprotocoldriver>
        fn NdisDeregisterProtocolDriver(NdisProtocolHandle: NDIS_HANDLE);
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndissetoptionalhandlers>
        fn NdisSetOptionalHandlers(
            NdisHandle: NDIS_HANDLE,
            OptionalHandlers: *mut NDIS_DRIVER_OPTIONAL_HANDLERS,
        ) -> NDIS_STATUS;
        /// IRQL: PASSIVE; only inside ProtocolBindAdapterEx. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisopenadapterex>
        fn NdisOpenAdapterEx(
            NdisProtocolHandle: NDIS_HANDLE,
            ProtocolBindingContext: NDIS_HANDLE,
            OpenParameters: *mut NDIS_OPEN_PARAMETERS,
            BindContext: NDIS_HANDLE,
            NdisBindingHandle: *mut NDIS_HANDLE,
        ) -> NDIS_STATUS;
        /// IRQL: PASSIVE; only inside Bind/Unbind. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscloseadapterex>
        fn NdisCloseAdapterEx(NdisBindingHandle: NDIS_HANDLE) -> NDIS_STATUS;
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompletebindadapterex>
        fn NdisCompleteBindAdapterEx(BindAdapterContext: NDIS_HANDLE, Status: NDIS_STATUS);
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompleteunbindadapterex>
        fn NdisCompleteUnbindAdapterEx(UnbindContext: NDIS_HANDLE);
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisunbindadapter>
        fn NdisUnbindAdapter(NdisBindingHandle: NDIS_HANDLE) -> NDIS_STATUS;
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscompletenetpnpevent>
        fn NdisCompleteNetPnPEvent(
            NdisBindingHandle: NDIS_HANDLE,
            NetPnPEventNotification: *mut NET_PNP_EVENT_NOTIFICATION,
            Status: NDIS_STATUS,
        );
        /// IRQL: <= DISPATCH; PENDING means ProtocolCoOidRequestComplete follows, any other
        /// status means the request is complete. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscooidrequest>
        fn NdisCoOidRequest(
            NdisBindingHandle: NDIS_HANDLE,
            NdisAfHandle: NDIS_HANDLE,
            NdisVcHandle: NDIS_HANDLE,
            NdisPartyHandle: NDIS_HANDLE,
            OidRequest: *mut NDIS_OID_REQUEST,
        ) -> NDIS_STATUS;
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclopenaddressfamilyex>
        fn NdisClOpenAddressFamilyEx(
            NdisBindingHandle: NDIS_HANDLE,
            AddressFamily: *mut CO_ADDRESS_FAMILY,
            ClientAfContext: NDIS_HANDLE,
            NdisAfHandle: *mut NDIS_HANDLE,
        ) -> NDIS_STATUS;
        /// IRQL: <= DISPATCH; the AF handle is invalid once called. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclcloseaddressfamily>
        fn NdisClCloseAddressFamily(NdisAfHandle: NDIS_HANDLE) -> NDIS_STATUS;
        /// IRQL: <= DISPATCH; handle first, status second. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclnotifycloseaddressfamilycomplete>
        fn NdisClNotifyCloseAddressFamilyComplete(NdisAfHandle: NDIS_HANDLE, Status: NDIS_STATUS);
        /// IRQL: <= DISPATCH; `*NdisVcHandle` must be NULL on entry. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscocreatevc>
        fn NdisCoCreateVc(
            NdisBindingHandle: NDIS_HANDLE,
            NdisAfHandle: NDIS_HANDLE,
            ProtocolVcContext: NDIS_HANDLE,
            NdisVcHandle: *mut NDIS_HANDLE,
        ) -> NDIS_STATUS;
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscodeletevc>
        fn NdisCoDeleteVc(NdisVcHandle: NDIS_HANDLE) -> NDIS_STATUS;
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclmakecall>
        fn NdisClMakeCall(
            NdisVcHandle: NDIS_HANDLE,
            CallParameters: *mut CO_CALL_PARAMETERS,
            ProtocolPartyContext: NDIS_HANDLE,
            NdisPartyHandle: *mut NDIS_HANDLE,
        ) -> NDIS_STATUS;
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclclosecall>
        fn NdisClCloseCall(
            NdisVcHandle: NDIS_HANDLE,
            NdisPartyHandle: NDIS_HANDLE,
            Buffer: *mut c_void,
            Size: u32,
        ) -> NDIS_STATUS;
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscladdparty>
        fn NdisClAddParty(
            NdisVcHandle: NDIS_HANDLE,
            ProtocolPartyContext: NDIS_HANDLE,
            CallParameters: *mut CO_CALL_PARAMETERS,
            NdisPartyHandle: *mut NDIS_HANDLE,
        ) -> NDIS_STATUS;
        /// IRQL: <= DISPATCH; the party handle is invalid once called. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiscldropparty>
        fn NdisClDropParty(NdisPartyHandle: NDIS_HANDLE, Buffer: *mut c_void, Size: u32) -> NDIS_STATUS;
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisclincomingcallcomplete>
        fn NdisClIncomingCallComplete(
            Status: NDIS_STATUS,
            NdisVcHandle: NDIS_HANDLE,
            CallParameters: *mut CO_CALL_PARAMETERS,
        );
        /// IRQL: <= DISPATCH; returns NULL on failure; non-paged. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatememorywithtagpriority>
        fn NdisAllocateMemoryWithTagPriority(
            NdisHandle: NDIS_HANDLE,
            Length: u32,
            Tag: u32,
            Priority: EX_POOL_PRIORITY,
        ) -> *mut c_void;
        /// IRQL: <= DISPATCH with MemoryFlags 0. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisfreememory>
        fn NdisFreeMemory(VirtualAddress: *mut c_void, Length: u32, MemoryFlags: u32);
        /// IRQL: any. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatespinlock>
        fn NdisAllocateSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        /// IRQL: any. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisfreespinlock>
        fn NdisFreeSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        /// IRQL: <= DISPATCH; raises to DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisacquirespinlock>
        fn NdisAcquireSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        /// IRQL: DISPATCH; restores the saved IRQL. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisreleasespinlock>
        fn NdisReleaseSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        /// IRQL: DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisdpracquirespinlock>
        fn NdisDprAcquireSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        /// IRQL: DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisdprreleasespinlock>
        fn NdisDprReleaseSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        /// IRQL: <= DISPATCH (docs: any). <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisinitializeevent>
        fn NdisInitializeEvent(Event: *mut NDIS_EVENT);
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndissetevent>
        fn NdisSetEvent(Event: *mut NDIS_EVENT);
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisresetevent>
        fn NdisResetEvent(Event: *mut NDIS_EVENT);
        /// IRQL: PASSIVE only; MsToWait 0 waits forever; returns TRUE if signaled. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndiswaitevent>
        fn NdisWaitEvent(Event: *mut NDIS_EVENT, MsToWait: u32) -> BOOLEAN;
        /// IRQL: <= DISPATCH. Gives back lists indicated without NDIS_RECEIVE_FLAGS_RESOURCES;
        /// every list must come from the binding the handle names. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisreturnnetbufferlists>
        fn NdisReturnNetBufferLists(
            NdisBindingHandle: NDIS_HANDLE,
            NetBufferLists: *mut NET_BUFFER_LIST,
            ReturnFlags: u32,
        );
        /// IRQL: <= DISPATCH; `(major << 16) | minor`. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisgetversion>
        fn NdisGetVersion() -> u32;
    }
    "ntoskrnl.exe" {
        /// IRQL: any. Exported by ntoskrnl.exe on x64 (hal.dll on x86). <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kegetcurrentirql>
        fn KeGetCurrentIrql() -> KIRQL;
        /// IRQL: any; does not return. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kebugcheckex>
        fn KeBugCheckEx(
            BugCheckCode: u32,
            BugCheckParameter1: usize,
            BugCheckParameter2: usize,
            BugCheckParameter3: usize,
            BugCheckParameter4: usize,
        ) -> !;
        /// IRQL: any (compiler-generated calls; see cross-build-notes.md). <https://learn.microsoft.com/cpp/c-runtime-library/reference/memcpy-wmemcpy>
        fn memcpy(Destination: *mut c_void, Source: *const c_void, Count: usize) -> *mut c_void;
        /// IRQL: any (compiler-generated calls). <https://learn.microsoft.com/cpp/c-runtime-library/reference/memset-wmemset>
        fn memset(Destination: *mut c_void, Value: i32, Count: usize) -> *mut c_void;
        /// IRQL: any (compiler-generated calls). <https://learn.microsoft.com/cpp/c-runtime-library/reference/memmove-wmemmove>
        fn memmove(Destination: *mut c_void, Source: *const c_void, Count: usize) -> *mut c_void;
        /// IRQL: any (compiler-generated calls). <https://learn.microsoft.com/cpp/c-runtime-library/reference/memcmp-wmemcmp>
        fn memcmp(Buffer1: *const c_void, Buffer2: *const c_void, Count: usize) -> i32;
        /// IRQL: any. Stack probe the compiler calls in prologues of frames over 4 KiB, with the
        /// frame size in RAX; it preserves every register but R10/R11, so this "signature" only
        /// names the symbol: a host implementation must be assembly, not a Rust fn.
        /// <https://learn.microsoft.com/windows/win32/devnotes/-win32-chkstk>
        fn __chkstk();
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocreatedevice>
        fn IoCreateDevice(
            DriverObject: *mut DRIVER_OBJECT,
            DeviceExtensionSize: u32,
            DeviceName: *mut UNICODE_STRING,
            DeviceType: DEVICE_TYPE,
            DeviceCharacteristics: u32,
            Exclusive: BOOLEAN,
            DeviceObject: *mut *mut DEVICE_OBJECT,
        ) -> NTSTATUS;
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iodeletedevice>
        fn IoDeleteDevice(DeviceObject: *mut DEVICE_OBJECT);
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocreatesymboliclink>
        fn IoCreateSymbolicLink(SymbolicLinkName: *mut UNICODE_STRING, DeviceName: *mut UNICODE_STRING) -> NTSTATUS;
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iodeletesymboliclink>
        fn IoDeleteSymbolicLink(SymbolicLinkName: *mut UNICODE_STRING) -> NTSTATUS;
        /// IRQL: <= DISPATCH. The export behind the `IoCompleteRequest` macro (`FASTCALL` on x86;
        /// the one x64 convention here). <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocompleterequest>
        fn IofCompleteRequest(Irp: *mut IRP, PriorityBoost: i8);
        /// IRQL: <= DISPATCH; returns NULL on failure. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateworkitem>
        fn IoAllocateWorkItem(DeviceObject: *mut DEVICE_OBJECT) -> *mut IO_WORKITEM;
        /// IRQL: <= DISPATCH; the routine runs at PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioqueueworkitem>
        fn IoQueueWorkItem(
            IoWorkItem: *mut IO_WORKITEM,
            WorkerRoutine: IO_WORKITEM_ROUTINE,
            QueueType: WORK_QUEUE_TYPE,
            Context: *mut c_void,
        );
        /// IRQL: <= DISPATCH. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreeworkitem>
        fn IoFreeWorkItem(IoWorkItem: *mut IO_WORKITEM);
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcreatesecuritydescriptor>
        fn RtlCreateSecurityDescriptor(SecurityDescriptor: *mut SECURITY_DESCRIPTOR, Revision: u32) -> NTSTATUS;
        /// IRQL: <= APC. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtlcreateacl>
        fn RtlCreateAcl(Acl: *mut ACL, AclLength: u32, AclRevision: u32) -> NTSTATUS;
        /// IRQL: <= APC. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtladdaccessallowedace>
        fn RtlAddAccessAllowedAce(Acl: *mut ACL, AceRevision: u32, AccessMask: ACCESS_MASK, Sid: *mut SID) -> NTSTATUS;
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlsetdaclsecuritydescriptor>
        fn RtlSetDaclSecurityDescriptor(
            SecurityDescriptor: *mut SECURITY_DESCRIPTOR,
            DaclPresent: BOOLEAN,
            Dacl: *mut ACL,
            DaclDefaulted: BOOLEAN,
        ) -> NTSTATUS;
        /// IRQL: <= APC. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtllengthsid>
        fn RtlLengthSid(Sid: *mut SID) -> u32;
        /// IRQL: PASSIVE. `ObjectType` may be NULL (see the module docs on `IoDeviceObjectType`).
        /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-obopenobjectbypointer>
        fn ObOpenObjectByPointer(
            Object: *mut c_void,
            HandleAttributes: u32,
            PassedAccessState: *mut ACCESS_STATE,
            DesiredAccess: ACCESS_MASK,
            ObjectType: *mut OBJECT_TYPE,
            AccessMode: KPROCESSOR_MODE,
            Handle: *mut HANDLE,
        ) -> NTSTATUS;
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwsetsecurityobject>
        fn ZwSetSecurityObject(
            Handle: HANDLE,
            SecurityInformation: SECURITY_INFORMATION,
            SecurityDescriptor: *mut SECURITY_DESCRIPTOR,
        ) -> NTSTATUS;
        /// IRQL: PASSIVE. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwclose>
        fn ZwClose(Handle: HANDLE) -> NTSTATUS;
    }
    "hal.dll" {
        /// IRQL: any. Exported by hal.dll on x64. Returns the count; writes the frequency when
        /// `PerformanceFrequency` is non-NULL. <https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-kequeryperformancecounter>
        fn KeQueryPerformanceCounter(PerformanceFrequency: *mut LARGE_INTEGER) -> LARGE_INTEGER;
    }
}
