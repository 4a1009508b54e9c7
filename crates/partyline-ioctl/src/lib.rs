//! The control device's IOCTLs: codes, names and little-endian wire formats, shared by
//! `partyline.sys` (which decodes requests and encodes responses) and the host tools (which do the
//! mirror image). No `unsafe`, no transmutes: every field is read and written by offset.
//!
//! DDI pages: "Defining I/O Control Codes" (CTL_CODE; vendor device types from 0x8000, vendor
//! function codes from 0x800), "Buffer Descriptions for I/O Control Codes" (METHOD_BUFFERED: one SystemBuffer
//! holds the input, then the output), IRP_MJ_DEVICE_CONTROL
//! (https://learn.microsoft.com/windows-hardware/drivers/kernel/defining-i-o-control-codes).
//!
//! Flow. The driver's IRP_MJ_DEVICE_CONTROL dispatch calls [`decode_request`] with the IOCTL code
//! and the input bytes; a refused request is completed at once with [`IoctlError::status`]. An
//! accepted one is applied to the engine and answered with one of the `encode_*_response`
//! writers in [`response`], which either fill the output buffer or say how much is needed. No
//! request is left pending; progress is observed with [`Ioctl::QueryCall`] and
//! [`Ioctl::ReadTrace`], the driver's own tables with [`Ioctl::ReadState`]. The host tools build requests with [`request`]'s encoders and read the
//! answers with [`response`]'s decoders.
//!
//! Every buffer starts with a 16-bit version ([`VERSION`]); requests then carry a 16-bit reserved
//! field that must be zero. Ids are [`partyline_core::Id::to_u64`] values, never kernel pointers.
#![no_std]
#![forbid(unsafe_code)]

pub mod error;
pub mod request;
pub mod response;
pub mod state;
mod wire;

pub use error::{core_status, status_message, IdField, IoctlError, Malformed, STATUS_NOT_FOUND};
pub use request::{decode_request, LeafIter, Leaves, Request};
pub use response::*;
pub use state::{decode_state_response, encode_state_response, STATE_RESPONSE_LEN};

/// The wire format version every request and response carries first.
pub const VERSION: u16 = 1;

/// The NT name of the control device (`IoCreateDevice`).
pub const DEVICE_NAME: &str = "\\Device\\Partyline";
/// The symbolic link that makes it reachable from user mode (`IoCreateSymbolicLink`), as in
/// NDISPROT.
pub const LINK_NAME: &str = "\\DosDevices\\Partyline";
/// The path user mode opens (`CreateFileW`).
pub const USER_PATH: &str = "\\\\.\\Partyline";
/// [`DEVICE_NAME`] in UTF-16, for a `UNICODE_STRING` (no terminator).
pub const DEVICE_NAME_UTF16: [u16; DEVICE_NAME.len()] = utf16(DEVICE_NAME);
/// [`LINK_NAME`] in UTF-16, for a `UNICODE_STRING` (no terminator).
pub const LINK_NAME_UTF16: [u16; LINK_NAME.len()] = utf16(LINK_NAME);

/// An ASCII string as UTF-16 code units, at compile time.
pub const fn utf16<const N: usize>(text: &str) -> [u16; N] {
    let bytes = text.as_bytes();
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N && i < bytes.len() {
        out[i] = bytes[i] as u16;
        i += 1;
    }
    out
}

/// partyline's device type: a custom one, in the range >= 0x8000 left to vendors.
pub const FILE_DEVICE_PARTYLINE: u32 = 0x8A7C;
/// `METHOD_BUFFERED` (the I/O manager copies input into and output out of one SystemBuffer),
/// the access bits and `CTL_CODE`, as ndis-sys declares them (devioctl.h).
pub use ndis_sys::kernel::{FILE_ANY_ACCESS, FILE_READ_ACCESS, FILE_WRITE_ACCESS, METHOD_BUFFERED};

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    ndis_sys::kernel::CTL_CODE(device_type, function, method, access)
}

/// The device type of an IOCTL code (`DEVICE_TYPE_FROM_CTL_CODE`).
pub const fn device_type_of(code: u32) -> u32 {
    ndis_sys::kernel::DEVICE_TYPE_FROM_CTL_CODE(code)
}

/// The required access of an IOCTL code (bits 14..16).
pub const fn access_of(code: u32) -> u32 {
    ndis_sys::kernel::ACCESS_FROM_CTL_CODE(code)
}

/// The transfer method of an IOCTL code (`METHOD_FROM_CTL_CODE`).
pub const fn method_of(code: u32) -> u32 {
    ndis_sys::kernel::METHOD_FROM_CTL_CODE(code)
}

/// The control device's IOCTLs.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Ioctl {
    /// Bindings and their address families (read).
    ListBindings,
    /// Live calls and their address families (read).
    ListCalls,
    /// Make a point-to-multipoint call to a list of leaves (write).
    MakeCall,
    /// Add a party to a call (write).
    AddParty,
    /// Drop a party (write).
    DropParty,
    /// Close a call (write).
    CloseCall,
    /// A call's state, counts and parties (read).
    QueryCall,
    /// The driver's counters (read).
    ReadCounters,
    /// Recent trace events (read).
    ReadTrace,
    /// The driver's own state: live objects, memory and queued work per table, refusals (read).
    ReadState,
}

/// `IOCTL_PARTYLINE_LIST_BINDINGS`.
pub const IOCTL_PARTYLINE_LIST_BINDINGS: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS);
/// `IOCTL_PARTYLINE_MAKE_CALL`.
pub const IOCTL_PARTYLINE_MAKE_CALL: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x801, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// `IOCTL_PARTYLINE_ADD_PARTY`.
pub const IOCTL_PARTYLINE_ADD_PARTY: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x802, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// `IOCTL_PARTYLINE_DROP_PARTY`.
pub const IOCTL_PARTYLINE_DROP_PARTY: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x803, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// `IOCTL_PARTYLINE_CLOSE_CALL`.
pub const IOCTL_PARTYLINE_CLOSE_CALL: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x804, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// `IOCTL_PARTYLINE_QUERY_CALL`.
pub const IOCTL_PARTYLINE_QUERY_CALL: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x805, METHOD_BUFFERED, FILE_READ_ACCESS);
/// `IOCTL_PARTYLINE_READ_COUNTERS`.
pub const IOCTL_PARTYLINE_READ_COUNTERS: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x806, METHOD_BUFFERED, FILE_READ_ACCESS);
/// `IOCTL_PARTYLINE_READ_TRACE`.
pub const IOCTL_PARTYLINE_READ_TRACE: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x807, METHOD_BUFFERED, FILE_READ_ACCESS);
/// `IOCTL_PARTYLINE_LIST_CALLS`.
pub const IOCTL_PARTYLINE_LIST_CALLS: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x808, METHOD_BUFFERED, FILE_READ_ACCESS);
/// `IOCTL_PARTYLINE_READ_STATE`.
pub const IOCTL_PARTYLINE_READ_STATE: u32 =
    ctl_code(FILE_DEVICE_PARTYLINE, 0x809, METHOD_BUFFERED, FILE_READ_ACCESS);

impl Ioctl {
    /// Every IOCTL, in function-code order.
    pub const ALL: [Ioctl; 10] = [
        Ioctl::ListBindings,
        Ioctl::MakeCall,
        Ioctl::AddParty,
        Ioctl::DropParty,
        Ioctl::CloseCall,
        Ioctl::QueryCall,
        Ioctl::ReadCounters,
        Ioctl::ReadTrace,
        Ioctl::ListCalls,
        Ioctl::ReadState,
    ];

    pub const fn code(self) -> u32 {
        match self {
            Ioctl::ListBindings => IOCTL_PARTYLINE_LIST_BINDINGS,
            Ioctl::ListCalls => IOCTL_PARTYLINE_LIST_CALLS,
            Ioctl::MakeCall => IOCTL_PARTYLINE_MAKE_CALL,
            Ioctl::AddParty => IOCTL_PARTYLINE_ADD_PARTY,
            Ioctl::DropParty => IOCTL_PARTYLINE_DROP_PARTY,
            Ioctl::CloseCall => IOCTL_PARTYLINE_CLOSE_CALL,
            Ioctl::QueryCall => IOCTL_PARTYLINE_QUERY_CALL,
            Ioctl::ReadCounters => IOCTL_PARTYLINE_READ_COUNTERS,
            Ioctl::ReadTrace => IOCTL_PARTYLINE_READ_TRACE,
            Ioctl::ReadState => IOCTL_PARTYLINE_READ_STATE,
        }
    }

    /// The IOCTL with exactly this code (device type, function, method and access all match).
    pub fn from_code(code: u32) -> Option<Ioctl> {
        Ioctl::ALL.into_iter().find(|i| i.code() == code)
    }

    /// `FILE_READ_ACCESS` for queries, `FILE_WRITE_ACCESS` for requests that change state.
    pub const fn required_access(self) -> u32 {
        access_of(self.code())
    }

    /// True for the IOCTLs that change state (and need an administrator's handle).
    pub const fn changes_state(self) -> bool {
        self.required_access() == FILE_WRITE_ACCESS
    }

    /// The `IOCTL_PARTYLINE_*` name.
    pub const fn name(self) -> &'static str {
        match self {
            Ioctl::ListBindings => "IOCTL_PARTYLINE_LIST_BINDINGS",
            Ioctl::ListCalls => "IOCTL_PARTYLINE_LIST_CALLS",
            Ioctl::MakeCall => "IOCTL_PARTYLINE_MAKE_CALL",
            Ioctl::AddParty => "IOCTL_PARTYLINE_ADD_PARTY",
            Ioctl::DropParty => "IOCTL_PARTYLINE_DROP_PARTY",
            Ioctl::CloseCall => "IOCTL_PARTYLINE_CLOSE_CALL",
            Ioctl::QueryCall => "IOCTL_PARTYLINE_QUERY_CALL",
            Ioctl::ReadCounters => "IOCTL_PARTYLINE_READ_COUNTERS",
            Ioctl::ReadTrace => "IOCTL_PARTYLINE_READ_TRACE",
            Ioctl::ReadState => "IOCTL_PARTYLINE_READ_STATE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Defining I/O Control Codes": vendor device types are >= 0x8000 and vendor function codes
    /// >= 0x800; state-changing IOCTLs need write access, queries read access.
    #[test]
    fn codes_are_vendor_buffered_and_access_checked() {
        for ioctl in Ioctl::ALL {
            let code = ioctl.code();
            assert!(device_type_of(code) >= 0x8000);
            assert!((code >> 2) & 0xFFF >= 0x800);
            assert_eq!(method_of(code), METHOD_BUFFERED);
            assert_eq!(Ioctl::from_code(code), Some(ioctl));
            let write =
                matches!(ioctl, Ioctl::MakeCall | Ioctl::AddParty | Ioctl::DropParty | Ioctl::CloseCall);
            assert_eq!(ioctl.required_access(), if write { FILE_WRITE_ACCESS } else { FILE_READ_ACCESS });
        }
        assert_eq!(IOCTL_PARTYLINE_LIST_BINDINGS, 0x8A7C_6000);
        assert_eq!(IOCTL_PARTYLINE_MAKE_CALL, 0x8A7C_A004);
        assert_eq!(DEVICE_NAME_UTF16[0], u16::from(b'\\'));
        assert_eq!(LINK_NAME_UTF16.len(), LINK_NAME.len());
    }
}
