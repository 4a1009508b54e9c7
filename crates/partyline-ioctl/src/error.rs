//! Why a request or response was refused, and the NTSTATUS each failure is answered with.
//!
//! Status values: "NTSTATUS Values" (https://learn.microsoft.com/openspecs/windows_protocols/
//! ms-erref/596a1078-e883-4972-9bbc-49e60bebca55).

use core::fmt;

use partyline_core::engine::{Error as CoreError, Table};
use partyline_core::model::{AddressError, ProfileError};
use partyline_core::slab::Exhausted;
use partyline_core::trace::ObjectKind;

/// The NTSTATUS values requests are answered with, as ndis-sys declares them (ntstatus.h).
pub use ndis_sys::status::{
    STATUS_ACCESS_DENIED, STATUS_BUFFER_TOO_SMALL, STATUS_DELETE_PENDING, STATUS_INFO_LENGTH_MISMATCH,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_DEVICE_STATE,
    STATUS_INVALID_PARAMETER, STATUS_NOT_FOUND, STATUS_NOT_SUPPORTED, STATUS_REVISION_MISMATCH,
    STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
};

/// Which id field of a request was zero or undecodable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IdField {
    AddressFamily,
    Call,
    Party,
}

/// What was wrong with a response (host side only: the driver never decodes responses).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Malformed {
    /// Shorter than its header or than its count says.
    Truncated,
    /// Longer than its count says.
    TrailingBytes,
    /// A state, kind or tag byte with no meaning.
    UnknownValue,
    /// An address that does not decode.
    Address,
}

/// A refused request (driver side) or an unreadable response (host side).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IoctlError {
    /// Not one of the control device's IOCTL codes (wrong function, method or access bits).
    UnknownCode { code: u32 },
    /// The input buffer of a fixed-size request is not exactly `expected` bytes.
    InputLength { expected: usize, actual: usize },
    /// The input buffer is shorter than the fixed part of a variable-size request.
    InputTooShort { minimum: usize, actual: usize },
    /// The leaf count and the input length disagree.
    CountMismatch { count: u32, actual: usize },
    /// The buffer's version is not [`crate::VERSION`].
    Version { found: u16 },
    /// A reserved field (at this byte offset) is not zero.
    Reserved { offset: usize },
    /// A make-call with no leaves, or more than [`crate::request::MAX_LEAVES`].
    LeafCount { count: u32 },
    /// Leaf number `index` (0-based; always 0 for add-party) is not a valid ATM address.
    Address { index: u32, error: AddressError },
    /// A service category byte that is neither UBR (0) nor CBR (1).
    ServiceCategory { value: u8 },
    /// The traffic profile is out of range.
    Profile(ProfileError),
    /// An id that is zero or no table ever hands out.
    Id { field: IdField, value: u64 },
    /// The output buffer cannot hold the fixed part of the answer plus one entry.
    BufferTooSmall { needed: usize },
    /// A response that does not decode (host side).
    Response(Malformed),
    /// The engine refused the request.
    Engine(CoreError),
}

impl IoctlError {
    /// The NTSTATUS the IRP is completed with.
    pub fn status(self) -> i32 {
        match self {
            IoctlError::UnknownCode { .. } => STATUS_INVALID_DEVICE_REQUEST,
            IoctlError::InputLength { .. }
            | IoctlError::InputTooShort { .. }
            | IoctlError::CountMismatch { .. } => STATUS_INFO_LENGTH_MISMATCH,
            IoctlError::Version { .. } => STATUS_REVISION_MISMATCH,
            IoctlError::Reserved { .. }
            | IoctlError::LeafCount { .. }
            | IoctlError::Address { .. }
            | IoctlError::ServiceCategory { .. }
            | IoctlError::Profile(_)
            | IoctlError::Id { .. } => STATUS_INVALID_PARAMETER,
            IoctlError::BufferTooSmall { .. } => STATUS_BUFFER_TOO_SMALL,
            IoctlError::Response(_) => STATUS_UNSUCCESSFUL,
            IoctlError::Engine(e) => core_status(e),
        }
    }
}

impl From<CoreError> for IoctlError {
    fn from(e: CoreError) -> Self {
        IoctlError::Engine(e)
    }
}

/// The NTSTATUS a control request refused by the engine is completed with.
pub fn core_status(error: CoreError) -> i32 {
    match error {
        CoreError::NeedMemory(..) => STATUS_INSUFFICIENT_RESOURCES,
        CoreError::UnknownId(_) => STATUS_NOT_FOUND,
        CoreError::InvalidState(_) => STATUS_INVALID_DEVICE_STATE,
        CoreError::Closing => STATUS_DELETE_PENDING,
        CoreError::UnsupportedAddressFamily => STATUS_NOT_SUPPORTED,
        CoreError::NoLeaves => STATUS_INVALID_PARAMETER,
    }
}

/// A short human description of an NTSTATUS a control request can end with (for the CLI).
pub fn status_message(status: i32) -> &'static str {
    match status {
        STATUS_SUCCESS => "success",
        STATUS_UNSUCCESSFUL => "unsuccessful",
        STATUS_INFO_LENGTH_MISMATCH => "input buffer has the wrong length",
        STATUS_INVALID_PARAMETER => "invalid parameter",
        STATUS_INVALID_DEVICE_REQUEST => "not a partyline IOCTL",
        STATUS_BUFFER_TOO_SMALL => "output buffer too small",
        STATUS_ACCESS_DENIED => "access denied (changing state needs an administrator)",
        STATUS_DELETE_PENDING => "the object is being torn down",
        STATUS_REVISION_MISMATCH => "wire format version mismatch",
        STATUS_INSUFFICIENT_RESOURCES => "insufficient resources",
        STATUS_NOT_SUPPORTED => "not supported",
        STATUS_INVALID_DEVICE_STATE => "not allowed in the object's current state",
        STATUS_NOT_FOUND => "no such object",
        _ => "unexpected status",
    }
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Binding => "binding",
        ObjectKind::Af => "address family",
        ObjectKind::Call => "call",
        ObjectKind::Party => "party",
    }
}

impl fmt::Display for IoctlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IoctlError::UnknownCode { code } => write!(f, "0x{code:08X} is not a partyline IOCTL code"),
            IoctlError::InputLength { expected, actual } => {
                write!(f, "input buffer is {actual} bytes; this request takes exactly {expected}")
            }
            IoctlError::InputTooShort { minimum, actual } => {
                write!(f, "input buffer is {actual} bytes; this request takes at least {minimum}")
            }
            IoctlError::CountMismatch { count, actual } => {
                write!(f, "input buffer of {actual} bytes does not hold exactly {count} leaves")
            }
            IoctlError::Version { found } => {
                write!(f, "wire format version {found}; this side speaks version {}", crate::VERSION)
            }
            IoctlError::Reserved { offset } => write!(f, "reserved field at byte {offset} is not zero"),
            IoctlError::LeafCount { count } => {
                write!(f, "{count} leaves; a call takes 1 to {} leaves", crate::request::MAX_LEAVES)
            }
            IoctlError::Address { index, error } => {
                let why = match error {
                    AddressError::NsapLength => "an NSAP address is exactly 20 octets",
                    AddressError::NsapAfi => "the NSAP AFI (first octet) is not a known one",
                    AddressError::E164Length => "an E.164 number has 1 to 15 digits",
                    AddressError::E164Digit => "E.164 digits are 0-9",
                    AddressError::Syntax => "the address type is neither NSAP (0) nor E.164 (1)",
                };
                write!(f, "address {index}: {why}")
            }
            IoctlError::ServiceCategory { value } => {
                write!(f, "service category {value} is neither UBR (0) nor CBR (1)")
            }
            IoctlError::Profile(ProfileError::PeakCellRate) => {
                f.write_str("peak cell rate must be 1 to 1412830 cells/s")
            }
            IoctlError::Profile(ProfileError::MaxSdu) => f.write_str("max SDU must be 1 to 65535 bytes"),
            IoctlError::Id { field, value } => {
                let name = match field {
                    IdField::AddressFamily => "address family",
                    IdField::Call => "call",
                    IdField::Party => "party",
                };
                write!(f, "{name} id 0x{value:X} is not a valid id")
            }
            IoctlError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: at least {needed} bytes needed")
            }
            IoctlError::Response(m) => write!(f, "malformed response from the driver: {m:?}"),
            IoctlError::Engine(e) => match e {
                CoreError::NeedMemory(table, exhausted) => {
                    let t = match table {
                        Table::Bindings => "bindings",
                        Table::AddressFamilies => "address families",
                        Table::Calls => "calls",
                        Table::Parties => "parties",
                    };
                    match exhausted {
                        Exhausted::Chunk => write!(f, "out of memory for {t}"),
                        Exhausted::Directory { len } => write!(f, "out of memory for {t} ({len} chunks)"),
                    }
                }
                CoreError::UnknownId(kind) => write!(f, "no such {}", kind_name(kind)),
                CoreError::InvalidState(kind) => {
                    write!(f, "not allowed in the {}'s current state", kind_name(kind))
                }
                CoreError::Closing => f.write_str("the object is being torn down"),
                CoreError::UnsupportedAddressFamily => {
                    f.write_str("the address family is not Q.2931 UNI 3.1")
                }
                CoreError::NoLeaves => f.write_str("a call needs at least one leaf"),
            },
        }
    }
}
