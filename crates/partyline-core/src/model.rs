//! The values the state machines carry: NDIS status, opaque NDIS handles, ATM addresses and
//! traffic profiles.

use core::fmt;

/// An `NDIS_STATUS`. The state machines only compare and pass these along.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub i32);

impl Status {
    pub const SUCCESS: Status = Status(ndis_sys::NDIS_STATUS_SUCCESS);
    pub const PENDING: Status = Status(ndis_sys::NDIS_STATUS_PENDING);
    pub const NOT_ACCEPTED: Status = Status(ndis_sys::NDIS_STATUS_NOT_ACCEPTED);
    pub const FAILURE: Status = Status(ndis_sys::NDIS_STATUS_FAILURE);
    pub const RESOURCES: Status = Status(ndis_sys::NDIS_STATUS_RESOURCES);
    pub const NOT_SUPPORTED: Status = Status(ndis_sys::NDIS_STATUS_NOT_SUPPORTED);
    pub const INVALID_STATE: Status = Status(ndis_sys::NDIS_STATUS_INVALID_STATE);
    pub const CLOSING: Status = Status(ndis_sys::NDIS_STATUS_CLOSING);
    pub const INVALID_ADDRESS: Status = Status(ndis_sys::NDIS_STATUS_INVALID_ADDRESS);

    pub const fn is_success(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.0 as u32)
    }
}

/// An NDIS handle (`NdisVcHandle`, `NdisPartyHandle`, `NdisAfHandle`, `NdisBindingHandle`),
/// kept as a number. The state machines never dereference it; NULL is `Handle(0)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(pub usize);

impl Handle {
    pub const NULL: Handle = Handle(0);

    pub const fn is_null(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{:x}", self.0)
    }
}

/// `ATM_ADDRESS.AddressType`: ATM End System Address (NSAP, 20 octets) or native E.164.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum AddressKind {
    /// `ATM_NSAP` (0): 20 octets, first octet the AFI.
    Nsap = 0,
    /// `ATM_E164` (1): 1 to 15 IA5 digits.
    E164 = 1,
}

/// An ATM party address in 22 bytes (the driver keeps one per party).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AtmAddress {
    kind: AddressKind,
    len: u8,
    digits: [u8; 20],
}

/// Why an address was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AddressError {
    /// NSAP addresses are exactly 20 octets.
    NsapLength,
    /// The first octet of an NSAP address is not a known AFI (0x39, 0x47, 0x45, 0x49 or a group AFI).
    NsapAfi,
    /// E.164 numbers have 1 to 15 digits.
    E164Length,
    /// E.164 digits are ASCII `0`..=`9`.
    E164Digit,
    /// Text that is neither `+digits` nor 40 hex digits (dots allowed).
    Syntax,
}

/// AFIs of ATM End System Addresses (atm-call-params.md §11): DCC, ICD, E.164, local, and the
/// group variants.
const NSAP_AFIS: [u8; 8] = [0x39, 0x47, 0x45, 0x49, 0xBD, 0xC5, 0xC3, 0xC7];

impl AtmAddress {
    /// A 20-octet NSAP (ATM End System Address), checked.
    pub fn nsap(octets: &[u8]) -> Result<Self, AddressError> {
        let octets: [u8; 20] = octets.try_into().map_err(|_| AddressError::NsapLength)?;
        if !NSAP_AFIS.contains(&octets[0]) {
            return Err(AddressError::NsapAfi);
        }
        Ok(AtmAddress { kind: AddressKind::Nsap, len: 20, digits: octets })
    }

    /// A native E.164 number of ASCII digits, checked.
    pub fn e164(digits: &[u8]) -> Result<Self, AddressError> {
        if digits.is_empty() || digits.len() > 15 {
            return Err(AddressError::E164Length);
        }
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(AddressError::E164Digit);
        }
        let mut buffer = [0u8; 20];
        buffer[..digits.len()].copy_from_slice(digits);
        Ok(AtmAddress { kind: AddressKind::E164, len: digits.len() as u8, digits: buffer })
    }

    /// From the `ATM_ADDRESS` fields (`AddressType`, `NumberOfDigits`, `Address`), checked.
    pub fn from_raw(kind: u32, count: u32, address: &[u8; 20]) -> Result<Self, AddressError> {
        match kind {
            0 if count == 20 => Self::nsap(address),
            0 => Err(AddressError::NsapLength),
            1 if count as usize <= 20 => Self::e164(&address[..count as usize]),
            1 => Err(AddressError::E164Length),
            _ => Err(AddressError::Syntax),
        }
    }

    /// Parses `+15551234` (E.164) or 40 hex digits with optional dots (NSAP,
    /// e.g. `47.0005.80ffe1000000f21a3fe5.0020481a3fe5.00`).
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        if let Some(digits) = text.strip_prefix('+') {
            return Self::e164(digits.as_bytes());
        }
        let mut octets = [0u8; 20];
        let mut nibbles = 0usize;
        for c in text.bytes() {
            if c == b'.' {
                continue;
            }
            let value = (c as char).to_digit(16).ok_or(AddressError::Syntax)? as u8;
            if nibbles >= 40 {
                return Err(AddressError::NsapLength);
            }
            octets[nibbles / 2] |= if nibbles.is_multiple_of(2) { value << 4 } else { value };
            nibbles += 1;
        }
        if nibbles != 40 {
            return Err(AddressError::NsapLength);
        }
        Self::nsap(&octets)
    }

    pub fn kind(&self) -> AddressKind {
        self.kind
    }

    /// The `NumberOfDigits` of the `ATM_ADDRESS`.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Never true for a checked address.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `Address` octets of the `ATM_ADDRESS` (20, zero-padded).
    pub fn raw(&self) -> &[u8; 20] {
        &self.digits
    }

    /// The significant octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[..self.len as usize]
    }
}

impl fmt::Display for AtmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AddressKind::E164 => {
                f.write_str("+")?;
                for &d in self.as_bytes() {
                    write!(f, "{}", d as char)?;
                }
                Ok(())
            }
            AddressKind::Nsap => {
                // AFI . IDI/HO-DSP . ESI . SEL, the usual dotted form.
                let o = &self.digits;
                write!(f, "{:02x}.", o[0])?;
                for b in &o[1..13] {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(".")?;
                for b in &o[13..19] {
                    write!(f, "{b:02x}")?;
                }
                write!(f, ".{:02x}", o[19])
            }
        }
    }
}

impl fmt::Debug for AtmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// ATM service category of a call.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum ServiceCategory {
    /// Unspecified bit rate, best effort.
    Ubr = 0,
    /// Constant bit rate.
    Cbr = 1,
}

/// What a point-to-multipoint call asks of the network, root to leaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct TrafficProfile {
    pub service: ServiceCategory,
    /// Forward peak cell rate, cells per second.
    pub peak_cell_rate: u32,
    /// Forward maximum CPCS-SDU size, bytes (AAL5).
    pub max_sdu: u32,
}

/// Why a traffic profile was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProfileError {
    /// Peak cell rate 0 or above an OC-12 line (1,412,830 cells/s).
    PeakCellRate,
    /// Max SDU 0 or above the AAL5 limit of 65,535 bytes.
    MaxSdu,
}

impl TrafficProfile {
    /// OC-3 UBR with a 9,180-byte SDU: the classical IP over ATM default.
    pub const DEFAULT: TrafficProfile =
        TrafficProfile { service: ServiceCategory::Ubr, peak_cell_rate: 353_207, max_sdu: 9180 };

    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.peak_cell_rate == 0 || self.peak_cell_rate > 1_412_830 {
            return Err(ProfileError::PeakCellRate);
        }
        if self.max_sdu == 0 || self.max_sdu > 65_535 {
            return Err(ProfileError::MaxSdu);
        }
        Ok(())
    }
}
