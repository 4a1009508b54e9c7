//! NDIS base types: status, handles, the object header, strings, spin lock, event, medium, pool.
//!
//! DDI pages: <https://learn.microsoft.com/windows-hardware/drivers/ddi/objectheader/ns-objectheader-ndis_object_header>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatespinlock>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisinitializeevent>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatememorywithtagpriority>.
//! Reference: `shared/ndis/condis-reference.md` §1, §7.2.

use core::ffi::c_void;

/// `NDIS_STATUS`: a signed 32-bit code with NTSTATUS severity bits (SDK `ndis/types.h`).
pub type NDIS_STATUS = i32;
/// `NDIS_HANDLE`: an opaque pointer-sized handle (`PVOID`).
pub type NDIS_HANDLE = *mut c_void;
/// `NTSTATUS`.
pub type NTSTATUS = i32;
/// `NDIS_AF`: an address-family number (`ULONG`).
pub type NDIS_AF = u32;
/// `NDIS_PORT_NUMBER` (`ULONG`).
pub type NDIS_PORT_NUMBER = u32;
/// `NET_FRAME_TYPE` (`USHORT`).
pub type NET_FRAME_TYPE = u16;
/// `KIRQL` (`UCHAR`).
pub type KIRQL = u8;
/// `KSPIN_LOCK` (`ULONG_PTR`).
pub type KSPIN_LOCK = usize;
/// `BOOLEAN` (`UCHAR`): 0 is FALSE, anything else TRUE.
pub type BOOLEAN = u8;
/// `HANDLE`.
pub type HANDLE = *mut c_void;
/// `ACCESS_MASK` (`ULONG`).
pub type ACCESS_MASK = u32;

pub const TRUE: BOOLEAN = 1;
pub const FALSE: BOOLEAN = 0;

// IRQLs on x64 (wdm.h).
pub const PASSIVE_LEVEL: KIRQL = 0;
pub const APC_LEVEL: KIRQL = 1;
pub const DISPATCH_LEVEL: KIRQL = 2;
pub const HIGH_LEVEL: KIRQL = 15;

/// `NDIS_OBJECT_HEADER`: begins every NDIS 6 object; the SDK asserts `sizeof == 4`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NDIS_OBJECT_HEADER {
    pub Type: u8,
    pub Revision: u8,
    pub Size: u16,
}
crate::layout!(NDIS_OBJECT_HEADER, size 4; Type == 0, Revision == 1, Size == 2);

/// `UNICODE_STRING`: counted UTF-16; `Length` and `MaximumLength` are in **bytes**.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UNICODE_STRING {
    pub Length: u16,
    pub MaximumLength: u16,
    pub Buffer: *mut u16,
}
// condis-reference §1: 16 bytes, Buffer at +8.
crate::layout!(UNICODE_STRING, size 0x10; Length == 0, MaximumLength == 2, Buffer == 8);
/// `NDIS_STRING` is `UNICODE_STRING` on NT.
pub type NDIS_STRING = UNICODE_STRING;

// ---- Object types (SDK ntddndis.h; condis-reference §2, §3, §7.2) --------------------------------
pub const NDIS_OBJECT_TYPE_DEFAULT: u8 = 0x80;
pub const NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES: u8 = 0x85;
pub const NDIS_OBJECT_TYPE_BIND_PARAMETERS: u8 = 0x86;
pub const NDIS_OBJECT_TYPE_OPEN_PARAMETERS: u8 = 0x87;
/// The CoNDIS protocol characteristics type. A header comment calls it
/// `NDIS_OBJECT_TYPE_PROTOCOL_CO_CHARACTERISTICS`; no constant by that name exists.
pub const NDIS_OBJECT_TYPE_CO_PROTOCOL_CHARACTERISTICS: u8 = 0x90;
pub const NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS: u8 = 0x95;
pub const NDIS_OBJECT_TYPE_CO_CALL_MANAGER_OPTIONAL_HANDLERS: u8 = 0xA5;
pub const NDIS_OBJECT_TYPE_CO_CLIENT_OPTIONAL_HANDLERS: u8 = 0xA6;
/// The header type of `NDIS_PROTOCOL_RESTART_PARAMETERS` (ns-ndis-_ndis_protocol_restart_parameters;
/// value from the SDK's ntddndis.h, as MinGW-w64 ships it).
pub const NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS: u8 = 0xA3;

// ---- Revisions ----------------------------------------------------------------------------------
pub const NDIS_OBJECT_REVISION_1: u8 = 1;
pub const NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_1: u8 = 1;
/// NDIS 6.1+; adds `DirectOidRequestCompleteHandler`.
pub const NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2: u8 = 2;
pub const NDIS_PROTOCOL_CO_CHARACTERISTICS_REVISION_1: u8 = 1;
pub const NDIS_CO_CLIENT_OPTIONAL_HANDLERS_REVISION_1: u8 = 1;
pub const NDIS_CO_CALL_MANAGER_OPTIONAL_HANDLERS_REVISION_1: u8 = 1;
pub const NDIS_OPEN_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_BIND_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_BIND_PARAMETERS_REVISION_2: u8 = 2;
pub const NDIS_BIND_PARAMETERS_REVISION_3: u8 = 3;
pub const NDIS_BIND_PARAMETERS_REVISION_4: u8 = 4;
pub const NET_PNP_EVENT_NOTIFICATION_REVISION_1: u8 = 1;
pub const NDIS_PROTOCOL_PAUSE_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_PROTOCOL_RESTART_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1: u8 = 1;

// ---- NDIS versions (condis-reference §10) -------------------------------------------------------
/// `NdisGetVersion()` returns `(major << 16) | minor`; this is NDIS 6.30.
pub const NDIS_RUNTIME_VERSION_630: u32 = 0x0006_001E;
/// `(6 << 16) | 0`: NDIS 6.0 (Vista RTM).
pub const NDIS_RUNTIME_VERSION_60: u32 = 0x0006_0000;

/// `NDIS_MEDIUM` (C enum, 32-bit; SDK ntddndis.h). Values 0, 8, 12, 13, 14 are confirmed by the
/// reference; the rest follow the enum's declaration order.
pub type NDIS_MEDIUM = u32;
pub const NdisMedium802_3: NDIS_MEDIUM = 0;
pub const NdisMedium802_5: NDIS_MEDIUM = 1;
pub const NdisMediumFddi: NDIS_MEDIUM = 2;
pub const NdisMediumWan: NDIS_MEDIUM = 3;
pub const NdisMediumLocalTalk: NDIS_MEDIUM = 4;
pub const NdisMediumDix: NDIS_MEDIUM = 5;
pub const NdisMediumArcnetRaw: NDIS_MEDIUM = 6;
pub const NdisMediumArcnet878_2: NDIS_MEDIUM = 7;
pub const NdisMediumAtm: NDIS_MEDIUM = 8;
pub const NdisMediumWirelessWan: NDIS_MEDIUM = 9;
pub const NdisMediumIrda: NDIS_MEDIUM = 10;
pub const NdisMediumBpc: NDIS_MEDIUM = 11;
pub const NdisMediumCoWan: NDIS_MEDIUM = 12;
pub const NdisMedium1394: NDIS_MEDIUM = 13;
pub const NdisMediumInfiniBand: NDIS_MEDIUM = 14;

/// `EX_POOL_PRIORITY` (C enum; wdm.h).
pub type EX_POOL_PRIORITY = u32;
pub const LowPoolPriority: EX_POOL_PRIORITY = 0;
pub const LowPoolPrioritySpecialPoolOverrun: EX_POOL_PRIORITY = 8;
pub const LowPoolPrioritySpecialPoolUnderrun: EX_POOL_PRIORITY = 9;
pub const NormalPoolPriority: EX_POOL_PRIORITY = 16;
pub const NormalPoolPrioritySpecialPoolOverrun: EX_POOL_PRIORITY = 24;
pub const NormalPoolPrioritySpecialPoolUnderrun: EX_POOL_PRIORITY = 25;
pub const HighPoolPriority: EX_POOL_PRIORITY = 32;
pub const HighPoolPrioritySpecialPoolOverrun: EX_POOL_PRIORITY = 40;
pub const HighPoolPrioritySpecialPoolUnderrun: EX_POOL_PRIORITY = 41;

/// `NdisFreeMemory` `MemoryFlags` (ndis.h). Memory from `NdisAllocateMemoryWithTagPriority` is
/// freed with flags 0.
pub const NDIS_MEMORY_CONTIGUOUS: u32 = 0x1;
pub const NDIS_MEMORY_NONCACHED: u32 = 0x2;

/// `NDIS_SPIN_LOCK` = `{ KSPIN_LOCK SpinLock; KIRQL OldIrql; }`. Must be in non-paged memory.
#[repr(C)]
#[derive(Debug, Default)]
pub struct NDIS_SPIN_LOCK {
    pub SpinLock: KSPIN_LOCK,
    pub OldIrql: KIRQL,
}
// condis-reference §7.2: SpinLock +0, OldIrql +8, sizeof 0x10.
crate::layout!(NDIS_SPIN_LOCK, size 0x10; SpinLock == 0, OldIrql == 8);

/// `KEVENT`: one `DISPATCHER_HEADER`, treated as an opaque, 8-aligned 0x18-byte blob. Only the
/// kernel (or the simulator) interprets it.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct KEVENT {
    pub Opaque: [u8; 0x18],
}
crate::layout!(KEVENT, size 0x18; Opaque == 0);

/// `NDIS_EVENT` = `{ KEVENT Event; }`, 0x18 bytes on x64 (condis-reference §7.2).
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_EVENT {
    pub Event: KEVENT,
}
crate::layout!(NDIS_EVENT, size 0x18; Event == 0);

/// `LARGE_INTEGER` as returned by value from `KeQueryPerformanceCounter` (`QuadPart`).
pub type LARGE_INTEGER = i64;

/// `GUID`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GUID {
    pub Data1: u32,
    pub Data2: u16,
    pub Data3: u16,
    pub Data4: [u8; 8],
}
crate::layout!(GUID, size 0x10; Data1 == 0, Data2 == 4, Data3 == 6, Data4 == 8);
