//! ATM UNI 3.1 call parameters (atm.h): addresses, Q.2931 information elements, media parameters, causes.
//!
//! DDI pages (NDIS 5.1 "previous versions", still the only Microsoft pages for atm.h):
//! Q2931_CALLMGR_PARAMETERS <https://learn.microsoft.com/previous-versions/windows/hardware/network/ff563269(v=vs.85)>,
//! ATM_ADDRESS <https://learn.microsoft.com/previous-versions/windows/hardware/network/ff544051(v=vs.85)>,
//! ATM_BROADBAND_BEARER_CAPABILITY_IE <https://learn.microsoft.com/previous-versions/windows/hardware/network/ff544063(v=vs.85)>,
//! CO_MEDIA_PARAMETERS <https://learn.microsoft.com/previous-versions/windows/hardware/network/ff545388(v=vs.85)>.
//! Reference: `shared/ndis/atm-call-params.md` §2, §3, §7, §9, §11 (member order and offsets from
//! atm.h; checked against MinGW-w64 `ddk/atm.h` by `tests/mingw_crosscheck.rs`).
//!
//! Flow: `CO_CALL_MANAGER_PARAMETERS.CallMgrSpecific` (ParamType [`CALLMGR_SPECIFIC_Q2931`]) holds
//! a [`Q2931_CALLMGR_PARAMETERS`] followed by `InfoElementCount` [`Q2931_IE`]s packed back to back;
//! each `IELength` counts the 8-byte IE header plus the payload (plus optional padding), and the
//! payload at `IE` is one of the `*_IE` structs below. IEs need not be 4-byte aligned: read them
//! unaligned.
//!
//! Note: atm.h uses **UNI 3.0** numbers for three causes ([`ATM_CAUSE_VPI_VCI_UNACCEPTABLE`],
//! [`ATM_CAUSE_USER_CELL_RATE_UNAVAILABLE`], [`ATM_CAUSE_AAL_PARAMETERS_UNSUPPORTED`]); on the
//! UNI 3.1 wire they are 36, 37 and 78 (atm-call-params §9).

// ---- Basic types and constants (§3, §11) ---------------------------------------------------------
/// `ATM_ADDRESSTYPE` (`ULONG`).
pub type ATM_ADDRESSTYPE = u32;
/// ATM End System Address (NSAP format, 20 octets).
pub const ATM_NSAP: ATM_ADDRESSTYPE = 0;
/// Native E.164 number, one IA5 digit per octet.
pub const ATM_E164: ATM_ADDRESSTYPE = 1;
/// `CO_SAP.SapType` values (numbered differently from `ATM_NSAP`/`ATM_E164`).
pub const SAP_TYPE_NSAP: u32 = 1;
pub const SAP_TYPE_E164: u32 = 2;
/// `CO_MEDIA_PARAMETERS.MediaSpecific.ParamType` for an [`ATM_MEDIA_PARAMETERS`] payload.
pub const ATM_MEDIA_SPECIFIC: u32 = 1;
/// `CO_CALL_MANAGER_PARAMETERS.CallMgrSpecific.ParamType` for a [`Q2931_CALLMGR_PARAMETERS`] payload.
pub const CALLMGR_SPECIFIC_Q2931: u32 = 1;
pub const ATM_MAC_ADDRESS_LENGTH: usize = 6;
pub const ATM_ADDRESS_LENGTH: usize = 20;
/// `L' '`, `L'+'`, `L'.'` (UTF-16 code units).
pub const ATM_ADDR_BLANK_CHAR: u16 = b' ' as u16;
pub const ATM_ADDR_E164_START_CHAR: u16 = b'+' as u16;
pub const ATM_ADDR_PUNCTUATION_CHAR: u16 = b'.' as u16;

/// `ATM_AAL_TYPE` (`ULONG`): bit flags, not the wire AAL numbers.
pub type ATM_AAL_TYPE = u32;
pub const AAL_TYPE_AAL0: ATM_AAL_TYPE = 1;
pub const AAL_TYPE_AAL1: ATM_AAL_TYPE = 2;
pub const AAL_TYPE_AAL34: ATM_AAL_TYPE = 4;
pub const AAL_TYPE_AAL5: ATM_AAL_TYPE = 8;

// Line rates (bits/s) and user data rates (units of 100 bits/s).
pub const ATM_PHYS_RATE_SONET_STS3C: u32 = 155_520_000;
pub const ATM_PHYS_RATE_IBM_25: u32 = 25_600_000;
pub const ATM_CELL_TRANSFER_CAPACITY_SONET_STS3C: u32 = 149_760_000;
pub const ATM_CELL_TRANSFER_CAPACITY_IBM_25: u32 = 25_125_926;
pub const ATM_USER_DATA_RATE_SONET_155: u32 = 1_356_317;
pub const ATM_USER_DATA_RATE_IBM_25: u32 = 227_556;

/// SAP/IE field wildcards.
pub const SAP_FIELD_ABSENT: u32 = 0xFFFF_FFFE;
pub const SAP_FIELD_ANY: u32 = 0xFFFF_FFFF;
/// Only the selector byte of an AESA is wild.
pub const SAP_FIELD_ANY_AESA_SEL: u32 = 0xFFFF_FFFA;
/// Everything but the selector byte of an AESA is wild.
pub const SAP_FIELD_ANY_AESA_REST: u32 = 0xFFFF_FFFB;

/// `ATM_ADDRESS` (28 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_ADDRESS {
    pub AddressType: ATM_ADDRESSTYPE,
    /// Digits (E.164) or octets (NSAP: 20) in `Address`.
    pub NumberOfDigits: u32,
    pub Address: [u8; ATM_ADDRESS_LENGTH],
}
crate::layout!(ATM_ADDRESS, size 28; AddressType == 0, NumberOfDigits == 4, Address == 8);
pub type ATM_CALLED_PARTY_NUMBER_IE = ATM_ADDRESS;
pub type ATM_CALLED_PARTY_SUBADDRESS_IE = ATM_ADDRESS;
pub type ATM_CALLING_PARTY_SUBADDRESS_IE = ATM_ADDRESS;

// ---- Q.2931 call-manager parameters and IEs (§2.1, §3) -------------------------------------------
/// `Q2931_IE_TYPE` (C enum, 4 bytes, 0-based).
pub type Q2931_IE_TYPE = u32;
pub const IE_AALParameters: Q2931_IE_TYPE = 0;
pub const IE_TrafficDescriptor: Q2931_IE_TYPE = 1;
pub const IE_BroadbandBearerCapability: Q2931_IE_TYPE = 2;
pub const IE_BHLI: Q2931_IE_TYPE = 3;
pub const IE_BLLI: Q2931_IE_TYPE = 4;
pub const IE_CalledPartyNumber: Q2931_IE_TYPE = 5;
pub const IE_CalledPartySubaddress: Q2931_IE_TYPE = 6;
pub const IE_CallingPartyNumber: Q2931_IE_TYPE = 7;
pub const IE_CallingPartySubaddress: Q2931_IE_TYPE = 8;
pub const IE_Cause: Q2931_IE_TYPE = 9;
pub const IE_QOSClass: Q2931_IE_TYPE = 10;
pub const IE_TransitNetworkSelection: Q2931_IE_TYPE = 11;
pub const IE_BroadbandSendingComplete: Q2931_IE_TYPE = 12;
pub const IE_LIJCallId: Q2931_IE_TYPE = 13;
pub const IE_Raw: Q2931_IE_TYPE = 14;

/// `Q2931_IE`: `IELength` counts the whole IE **including** `IEType` and `IELength` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Q2931_IE {
    pub IEType: Q2931_IE_TYPE,
    pub IELength: u32,
    pub IE: [u8; 1],
}
crate::layout!(Q2931_IE, size 12; IEType == 0, IELength == 4, IE == 8);
/// Size of the IE header that precedes the payload (`offsetof(Q2931_IE, IE)`).
pub const Q2931_IE_HEADER_SIZE: usize = core::mem::offset_of!(Q2931_IE, IE);

/// `Q2931_CALLMGR_PARAMETERS` (64 bytes; the IEs start at `InfoElements`, offset 60).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Q2931_CALLMGR_PARAMETERS {
    /// The party being called (MakeCall: first leaf; AddParty: the leaf being added).
    pub CalledParty: ATM_ADDRESS,
    pub CallingParty: ATM_ADDRESS,
    pub InfoElementCount: u32,
    pub InfoElements: [u8; 1],
}
crate::layout!(Q2931_CALLMGR_PARAMETERS, size 64;
    CalledParty == 0, CallingParty == 28, InfoElementCount == 56, InfoElements == 60,
);

/// `AAL1_PARAMETERS` (10 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AAL1_PARAMETERS {
    pub Subtype: u8,
    pub CBRRate: u8,
    pub Multiplier: u16,
    pub SourceClockRecoveryMethod: u8,
    pub ErrorCorrectionMethod: u8,
    pub StructuredDataTransferBlocksize: u16,
    pub PartiallyFilledCellsMethod: u8,
}
crate::layout!(AAL1_PARAMETERS, size 10;
    Subtype == 0, CBRRate == 1, Multiplier == 2, SourceClockRecoveryMethod == 4,
    ErrorCorrectionMethod == 5, StructuredDataTransferBlocksize == 6, PartiallyFilledCellsMethod == 8,
);

/// `AAL34_PARAMETERS` (10 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AAL34_PARAMETERS {
    pub ForwardMaxCPCSSDUSize: u16,
    pub BackwardMaxCPCSSDUSize: u16,
    pub LowestMID: u16,
    pub HighestMID: u16,
    pub SSCSType: u8,
}
crate::layout!(AAL34_PARAMETERS, size 10;
    ForwardMaxCPCSSDUSize == 0, BackwardMaxCPCSSDUSize == 2, LowestMID == 4, HighestMID == 6, SSCSType == 8,
);

// AAL5_PARAMETERS.Mode (UNI 3.0 only on the wire) and .SSCSType.
pub const AAL5_MODE_MESSAGE: u8 = 0x01;
pub const AAL5_MODE_STREAMING: u8 = 0x02;
pub const AAL5_SSCS_NULL: u8 = 0x00;
pub const AAL5_SSCS_SSCOP_ASSURED: u8 = 0x01;
pub const AAL5_SSCS_SSCOP_NON_ASSURED: u8 = 0x02;
pub const AAL5_SSCS_FRAME_RELAY: u8 = 0x04;

/// `AAL5_PARAMETERS` (12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AAL5_PARAMETERS {
    pub ForwardMaxCPCSSDUSize: u32,
    pub BackwardMaxCPCSSDUSize: u32,
    pub Mode: u8,
    pub SSCSType: u8,
}
crate::layout!(AAL5_PARAMETERS, size 12;
    ForwardMaxCPCSSDUSize == 0, BackwardMaxCPCSSDUSize == 4, Mode == 8, SSCSType == 9,
);

/// `AALUSER_PARAMETERS` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AALUSER_PARAMETERS {
    pub UserDefined: u32,
}
crate::layout!(AALUSER_PARAMETERS, size 4; UserDefined == 0);

/// `AAL_PARAMETERS_IE.AALSpecificParameters`, selected by `AALType`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union AAL_SPECIFIC_PARAMETERS {
    pub AAL1Parameters: AAL1_PARAMETERS,
    pub AAL34Parameters: AAL34_PARAMETERS,
    pub AAL5Parameters: AAL5_PARAMETERS,
    pub AALUserParameters: AALUSER_PARAMETERS,
}
crate::layout!(AAL_SPECIFIC_PARAMETERS, size 12; AAL1Parameters == 0, AAL5Parameters == 0);

/// `AAL_PARAMETERS_IE` (16 bytes; payload of [`IE_AALParameters`]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct AAL_PARAMETERS_IE {
    pub AALType: ATM_AAL_TYPE,
    pub AALSpecificParameters: AAL_SPECIFIC_PARAMETERS,
}
crate::layout!(AAL_PARAMETERS_IE, size 16; AALType == 0, AALSpecificParameters == 4);

/// `ATM_TRAFFIC_DESCRIPTOR` (28 bytes; one direction, cells/s).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_TRAFFIC_DESCRIPTOR {
    pub PeakCellRateCLP0: u32,
    pub PeakCellRateCLP01: u32,
    pub SustainableCellRateCLP0: u32,
    pub SustainableCellRateCLP01: u32,
    pub MaximumBurstSizeCLP0: u32,
    pub MaximumBurstSizeCLP01: u32,
    pub Tagging: u8,
}
crate::layout!(ATM_TRAFFIC_DESCRIPTOR, size 28;
    PeakCellRateCLP0 == 0, PeakCellRateCLP01 == 4, SustainableCellRateCLP0 == 8,
    SustainableCellRateCLP01 == 12, MaximumBurstSizeCLP0 == 16, MaximumBurstSizeCLP01 == 20,
    Tagging == 24,
);

/// `ATM_TRAFFIC_DESCRIPTOR_IE` (60 bytes; payload of [`IE_TrafficDescriptor`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_TRAFFIC_DESCRIPTOR_IE {
    pub ForwardTD: ATM_TRAFFIC_DESCRIPTOR,
    pub BackwardTD: ATM_TRAFFIC_DESCRIPTOR,
    pub BestEffort: u8,
}
crate::layout!(ATM_TRAFFIC_DESCRIPTOR_IE, size 60; ForwardTD == 0, BackwardTD == 28, BestEffort == 56);

// ATM_BROADBAND_BEARER_CAPABILITY_IE field values (abstract codes; BearerClass wire codes are 1/3/16).
pub const BCOB_A: u8 = 0x00;
pub const BCOB_C: u8 = 0x01;
pub const BCOB_X: u8 = 0x02;
pub const TT_NOIND: u8 = 0x00;
pub const TT_CBR: u8 = 0x04;
pub const TT_VBR: u8 = 0x08;
pub const TR_NOIND: u8 = 0x00;
pub const TR_END_TO_END: u8 = 0x01;
pub const TR_NO_END_TO_END: u8 = 0x02;
pub const CLIP_NOT: u8 = 0x00;
pub const CLIP_SUS: u8 = 0x20;
pub const UP_P2P: u8 = 0x00;
/// User-plane connection configuration of a point-to-multipoint call.
pub const UP_P2MP: u8 = 0x01;

/// `ATM_BROADBAND_BEARER_CAPABILITY_IE` (5 bytes; payload of [`IE_BroadbandBearerCapability`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_BROADBAND_BEARER_CAPABILITY_IE {
    pub BearerClass: u8,
    pub TrafficType: u8,
    pub TimingRequirements: u8,
    /// Spelled as in atm.h.
    pub ClippingSusceptability: u8,
    pub UserPlaneConnectionConfig: u8,
}
crate::layout!(ATM_BROADBAND_BEARER_CAPABILITY_IE, size 5;
    BearerClass == 0, TrafficType == 1, TimingRequirements == 2, ClippingSusceptability == 3,
    UserPlaneConnectionConfig == 4,
);

// ATM_BHLI_IE.HighLayerInfoType.
pub const BHLI_ISO: u32 = 0x00;
pub const BHLI_UserSpecific: u32 = 0x01;
/// UNI 3.0 only.
pub const BHLI_HighLayerProfile: u32 = 0x02;
pub const BHLI_VendorSpecificAppId: u32 = 0x03;

/// `ATM_BHLI_IE` (16 bytes; payload of [`IE_BHLI`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_BHLI_IE {
    pub HighLayerInfoType: u32,
    pub HighLayerInfoLength: u32,
    pub HighLayerInfo: [u8; 8],
}
crate::layout!(ATM_BHLI_IE, size 16; HighLayerInfoType == 0, HighLayerInfoLength == 4, HighLayerInfo == 8);

// ATM_BLLI_IE.Layer2Protocol.
pub const BLLI_L2_ISO_1745: u32 = 0x01;
pub const BLLI_L2_Q921: u32 = 0x02;
pub const BLLI_L2_X25L: u32 = 0x06;
pub const BLLI_L2_X25M: u32 = 0x07;
pub const BLLI_L2_ELAPB: u32 = 0x08;
pub const BLLI_L2_HDLC_ARM: u32 = 0x09;
pub const BLLI_L2_HDLC_NRM: u32 = 0x0A;
pub const BLLI_L2_HDLC_ABM: u32 = 0x0B;
pub const BLLI_L2_LLC: u32 = 0x0C;
pub const BLLI_L2_X75: u32 = 0x0D;
pub const BLLI_L2_Q922: u32 = 0x0E;
pub const BLLI_L2_USER_SPECIFIED: u32 = 0x10;
pub const BLLI_L2_ISO_7776: u32 = 0x11;
// ATM_BLLI_IE.Layer3Protocol.
pub const BLLI_L3_X25: u32 = 0x06;
pub const BLLI_L3_ISO_8208: u32 = 0x07;
pub const BLLI_L3_X223: u32 = 0x08;
pub const BLLI_L3_SIO_8473: u32 = 0x09;
pub const BLLI_L3_T70: u32 = 0x0A;
pub const BLLI_L3_ISO_TR9577: u32 = 0x0B;
pub const BLLI_L3_USER_SPECIFIED: u32 = 0x10;
// ATM_BLLI_IE.Layer3IPI.
pub const BLLI_L3_IPI_SNAP: u32 = 0x80;
pub const BLLI_L3_IPI_IP: u32 = 0xCC;

/// `ATM_BLLI_IE` (36 bytes; payload of [`IE_BLLI`]). Unused fields are [`SAP_FIELD_ABSENT`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_BLLI_IE {
    pub Layer2Protocol: u32,
    pub Layer2Mode: u8,
    pub Layer2WindowSize: u8,
    pub Layer2UserSpecifiedProtocol: u32,
    pub Layer3Protocol: u32,
    pub Layer3Mode: u8,
    pub Layer3DefaultPacketSize: u8,
    pub Layer3PacketWindowSize: u8,
    pub Layer3UserSpecifiedProtocol: u32,
    pub Layer3IPI: u32,
    pub SnapId: [u8; 5],
}
crate::layout!(ATM_BLLI_IE, size 36;
    Layer2Protocol == 0, Layer2Mode == 4, Layer2WindowSize == 5, Layer2UserSpecifiedProtocol == 8,
    Layer3Protocol == 12, Layer3Mode == 16, Layer3DefaultPacketSize == 17,
    Layer3PacketWindowSize == 18, Layer3UserSpecifiedProtocol == 20, Layer3IPI == 24, SnapId == 28,
);

/// `ATM_CALLING_PARTY_NUMBER_IE` (32 bytes; payload of [`IE_CallingPartyNumber`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_CALLING_PARTY_NUMBER_IE {
    pub Number: ATM_ADDRESS,
    pub PresentationIndication: u8,
    pub ScreeningIndicator: u8,
}
crate::layout!(ATM_CALLING_PARTY_NUMBER_IE, size 32; Number == 0, PresentationIndication == 28, ScreeningIndicator == 29);

// ATM_CAUSE_IE.Location.
pub const ATM_CAUSE_LOC_USER: u8 = 0x00;
pub const ATM_CAUSE_LOC_PRIVATE_LOCAL: u8 = 0x01;
pub const ATM_CAUSE_LOC_PUBLIC_LOCAL: u8 = 0x02;
pub const ATM_CAUSE_LOC_TRANSIT_NETWORK: u8 = 0x03;
pub const ATM_CAUSE_LOC_PUBLIC_REMOTE: u8 = 0x04;
pub const ATM_CAUSE_LOC_PRIVATE_REMOTE: u8 = 0x05;
pub const ATM_CAUSE_LOC_INTERNATIONAL_NETWORK: u8 = 0x07;
pub const ATM_CAUSE_LOC_BEYOND_INTERWORKING: u8 = 0x0A;

// ATM_CAUSE_IE.Cause (atm.h values; see the module note on UNI 3.0 numbering).
pub const ATM_CAUSE_UNALLOCATED_NUMBER: u8 = 0x01;
pub const ATM_CAUSE_NO_ROUTE_TO_TRANSIT_NETWORK: u8 = 0x02;
pub const ATM_CAUSE_NO_ROUTE_TO_DESTINATION: u8 = 0x03;
/// UNI 3.0 only (UNI 3.1 uses 36, "VPCI/VCI assignment failure").
pub const ATM_CAUSE_VPI_VCI_UNACCEPTABLE: u8 = 0x0A;
pub const ATM_CAUSE_NORMAL_CALL_CLEARING: u8 = 0x10;
pub const ATM_CAUSE_USER_BUSY: u8 = 0x11;
pub const ATM_CAUSE_NO_USER_RESPONDING: u8 = 0x12;
pub const ATM_CAUSE_CALL_REJECTED: u8 = 0x15;
pub const ATM_CAUSE_NUMBER_CHANGED: u8 = 0x16;
pub const ATM_CAUSE_USER_REJECTS_CLIR: u8 = 0x17;
pub const ATM_CAUSE_DESTINATION_OUT_OF_ORDER: u8 = 0x1B;
pub const ATM_CAUSE_INVALID_NUMBER_FORMAT: u8 = 0x1C;
pub const ATM_CAUSE_STATUS_ENQUIRY_RESPONSE: u8 = 0x1E;
pub const ATM_CAUSE_NORMAL_UNSPECIFIED: u8 = 0x1F;
pub const ATM_CAUSE_VPI_VCI_UNAVAILABLE: u8 = 0x23;
pub const ATM_CAUSE_NETWORK_OUT_OF_ORDER: u8 = 0x26;
pub const ATM_CAUSE_TEMPORARY_FAILURE: u8 = 0x29;
/// Spelled as in atm.h.
pub const ATM_CAUSE_ACCESS_INFORMAION_DISCARDED: u8 = 0x2B;
pub const ATM_CAUSE_NO_VPI_VCI_AVAILABLE: u8 = 0x2D;
pub const ATM_CAUSE_RESOURCE_UNAVAILABLE: u8 = 0x2F;
pub const ATM_CAUSE_QOS_UNAVAILABLE: u8 = 0x31;
/// UNI 3.0 value; UNI 3.1 uses 37 (0x25).
pub const ATM_CAUSE_USER_CELL_RATE_UNAVAILABLE: u8 = 0x33;
pub const ATM_CAUSE_BEARER_CAPABILITY_UNAUTHORIZED: u8 = 0x39;
pub const ATM_CAUSE_BEARER_CAPABILITY_UNAVAILABLE: u8 = 0x3A;
pub const ATM_CAUSE_OPTION_UNAVAILABLE: u8 = 0x3F;
pub const ATM_CAUSE_BEARER_CAPABILITY_UNIMPLEMENTED: u8 = 0x41;
pub const ATM_CAUSE_UNSUPPORTED_TRAFFIC_PARAMETERS: u8 = 0x49;
pub const ATM_CAUSE_INVALID_CALL_REFERENCE: u8 = 0x51;
pub const ATM_CAUSE_CHANNEL_NONEXISTENT: u8 = 0x52;
pub const ATM_CAUSE_INCOMPATIBLE_DESTINATION: u8 = 0x58;
pub const ATM_CAUSE_INVALID_ENDPOINT_REFERENCE: u8 = 0x59;
pub const ATM_CAUSE_INVALID_TRANSIT_NETWORK_SELECTION: u8 = 0x5B;
pub const ATM_CAUSE_TOO_MANY_PENDING_ADD_PARTY: u8 = 0x5C;
/// UNI 3.0 value; UNI 3.1 uses 78 (0x4E).
pub const ATM_CAUSE_AAL_PARAMETERS_UNSUPPORTED: u8 = 0x5D;
pub const ATM_CAUSE_MANDATORY_IE_MISSING: u8 = 0x60;
pub const ATM_CAUSE_UNIMPLEMENTED_MESSAGE_TYPE: u8 = 0x61;
pub const ATM_CAUSE_UNIMPLEMENTED_IE: u8 = 0x63;
pub const ATM_CAUSE_INVALID_IE_CONTENTS: u8 = 0x64;
pub const ATM_CAUSE_INVALID_STATE_FOR_MESSAGE: u8 = 0x65;
pub const ATM_CAUSE_RECOVERY_ON_TIMEOUT: u8 = 0x66;
pub const ATM_CAUSE_INCORRECT_MESSAGE_LENGTH: u8 = 0x68;
pub const ATM_CAUSE_PROTOCOL_ERROR: u8 = 0x6F;

// ATM_CAUSE_IE.Diagnostics helpers.
pub const ATM_CAUSE_COND_UNKNOWN: u8 = 0x00;
pub const ATM_CAUSE_COND_PERMANENT: u8 = 0x01;
pub const ATM_CAUSE_COND_TRANSIENT: u8 = 0x02;
pub const ATM_CAUSE_REASON_USER: u8 = 0x00;
pub const ATM_CAUSE_REASON_IE_MISSING: u8 = 0x04;
pub const ATM_CAUSE_REASON_IE_INSUFFICIENT: u8 = 0x08;
pub const ATM_CAUSE_PU_PROVIDER: u8 = 0x00;
pub const ATM_CAUSE_PU_USER: u8 = 0x08;
pub const ATM_CAUSE_NA_NORMAL: u8 = 0x00;
pub const ATM_CAUSE_NA_ABNORMAL: u8 = 0x04;

/// `ATM_CAUSE_IE` (7 bytes; payload of [`IE_Cause`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_CAUSE_IE {
    pub Location: u8,
    pub Cause: u8,
    pub DiagnosticsLength: u8,
    pub Diagnostics: [u8; 4],
}
crate::layout!(ATM_CAUSE_IE, size 7; Location == 0, Cause == 1, DiagnosticsLength == 2, Diagnostics == 3);

// ATM_QOS_CLASS_IE values.
pub const QOS_CLASS0: u8 = 0x00;
pub const QOS_CLASS1: u8 = 0x01;
pub const QOS_CLASS2: u8 = 0x02;
pub const QOS_CLASS3: u8 = 0x03;
pub const QOS_CLASS4: u8 = 0x04;

/// `ATM_QOS_CLASS_IE` (2 bytes; payload of [`IE_QOSClass`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_QOS_CLASS_IE {
    pub QOSClassForward: u8,
    pub QOSClassBackward: u8,
}
crate::layout!(ATM_QOS_CLASS_IE, size 2; QOSClassForward == 0, QOSClassBackward == 1);

pub const TNS_TYPE_NATIONAL: u8 = 0x40;
pub const TNS_PLAN_CARRIER_ID_CODE: u8 = 0x01;

/// `ATM_TRANSIT_NETWORK_SELECTION_IE` (4 bytes + `NetworkIdLength - 1`; payload of
/// [`IE_TransitNetworkSelection`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_TRANSIT_NETWORK_SELECTION_IE {
    pub TypeOfNetworkId: u8,
    pub NetworkIdPlan: u8,
    pub NetworkIdLength: u8,
    pub NetworkId: [u8; 1],
}
crate::layout!(ATM_TRANSIT_NETWORK_SELECTION_IE, size 4;
    TypeOfNetworkId == 0, NetworkIdPlan == 1, NetworkIdLength == 2, NetworkId == 3,
);

/// `ATM_BROADBAND_SENDING_COMPLETE_IE` (1 byte; payload of [`IE_BroadbandSendingComplete`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_BROADBAND_SENDING_COMPLETE_IE {
    pub SendingComplete: u8,
}
crate::layout!(ATM_BROADBAND_SENDING_COMPLETE_IE, size 1; SendingComplete == 0);

/// `ATM_LIJ_CALLID_IE` (4 bytes; payload of [`IE_LIJCallId`]). Leaf-initiated join is UNI 4.0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_LIJ_CALLID_IE {
    pub Identifier: u32,
}
crate::layout!(ATM_LIJ_CALLID_IE, size 4; Identifier == 0);

/// `ATM_RAW_IE` (12 bytes + `RawIELength - 1`; payload of [`IE_Raw`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_RAW_IE {
    pub RawIELength: u32,
    pub RawIEType: u32,
    pub RawIEValue: [u8; 1],
}
crate::layout!(ATM_RAW_IE, size 12; RawIELength == 0, RawIEType == 4, RawIEValue == 8);

// ---- Media parameters (§7) -----------------------------------------------------------------------
/// `ATM_SERVICE_CATEGORY` (`ULONG`).
pub type ATM_SERVICE_CATEGORY = u32;
pub const ATM_SERVICE_CATEGORY_CBR: ATM_SERVICE_CATEGORY = 1;
pub const ATM_SERVICE_CATEGORY_VBR: ATM_SERVICE_CATEGORY = 2;
pub const ATM_SERVICE_CATEGORY_UBR: ATM_SERVICE_CATEGORY = 4;
pub const ATM_SERVICE_CATEGORY_ABR: ATM_SERVICE_CATEGORY = 8;
/// `ATM_FLOW_PARAMETERS.Reserved1` flag.
pub const ATM_FLOW_PARAMS_RSVD1_MPP: u8 = 0x01;

/// `ATM_FLOW_PARAMETERS` (56 bytes; rates in cells/s, SDU in bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_FLOW_PARAMETERS {
    pub ServiceCategory: ATM_SERVICE_CATEGORY,
    pub AverageCellRate: u32,
    pub PeakCellRate: u32,
    pub MinimumCellRate: u32,
    pub InitialCellRate: u32,
    pub BurstLengthCells: u32,
    pub MaxSduSize: u32,
    pub TransientBufferExposure: u32,
    pub CumulativeRMFixedRTT: u32,
    pub RateIncreaseFactor: u8,
    pub RateDecreaseFactor: u8,
    pub ACRDecreaseTimeFactor: u16,
    pub MaximumCellsPerForwardRMCell: u8,
    pub MaximumForwardRMCellInterval: u8,
    pub CutoffDecreaseFactor: u8,
    pub Reserved1: u8,
    pub MissingRMCellCount: u32,
    pub Reserved2: u32,
    pub Reserved3: u32,
}
crate::layout!(ATM_FLOW_PARAMETERS, size 56;
    ServiceCategory == 0, AverageCellRate == 4, PeakCellRate == 8, MinimumCellRate == 12,
    InitialCellRate == 16, BurstLengthCells == 20, MaxSduSize == 24, TransientBufferExposure == 28,
    CumulativeRMFixedRTT == 32, RateIncreaseFactor == 36, RateDecreaseFactor == 37,
    ACRDecreaseTimeFactor == 38, MaximumCellsPerForwardRMCell == 40,
    MaximumForwardRMCellInterval == 41, CutoffDecreaseFactor == 42, Reserved1 == 43,
    MissingRMCellCount == 44, Reserved2 == 48, Reserved3 == 52,
);

/// `ATM_VPIVCI` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ATM_VPIVCI {
    pub Vpi: u32,
    pub Vci: u32,
}
crate::layout!(ATM_VPIVCI, size 8; Vpi == 0, Vci == 4);

/// `ATM_MEDIA_PARAMETERS` (152 bytes; `CO_MEDIA_PARAMETERS.MediaSpecific` payload with
/// ParamType [`ATM_MEDIA_SPECIFIC`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_MEDIA_PARAMETERS {
    pub ConnectionId: ATM_VPIVCI,
    pub AALType: ATM_AAL_TYPE,
    pub CellDelayVariationCLP0: u32,
    pub CellDelayVariationCLP1: u32,
    pub CellLossRatioCLP0: u32,
    pub CellLossRatioCLP1: u32,
    pub CellTransferDelayCLP0: u32,
    pub CellTransferDelayCLP1: u32,
    pub DefaultCLP: u32,
    pub Transmit: ATM_FLOW_PARAMETERS,
    pub Receive: ATM_FLOW_PARAMETERS,
}
crate::layout!(ATM_MEDIA_PARAMETERS, size 152;
    ConnectionId == 0, ConnectionId.Vci == 4, AALType == 8, CellDelayVariationCLP0 == 12,
    CellDelayVariationCLP1 == 16, CellLossRatioCLP0 == 20, CellLossRatioCLP1 == 24,
    CellTransferDelayCLP0 == 28, CellTransferDelayCLP1 == 32, DefaultCLP == 36, Transmit == 40,
    Receive == 96,
);

// ---- Other atm.h items (§3 "Other atm.h items", §11) ----------------------------------------------
/// `ATM_VC_RATES_SUPPORTED` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_VC_RATES_SUPPORTED {
    pub MinCellRate: u32,
    pub MaxCellRate: u32,
}
crate::layout!(ATM_VC_RATES_SUPPORTED, size 8; MinCellRate == 0, MaxCellRate == 4);

/// `struct _ATM_AAL5_INFO` (3 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_AAL5_INFO {
    pub CellLossPriority: u8,
    pub UserToUserIndication: u8,
    pub CommonPartIndicator: u8,
}
/// `struct _ATM_AAL0_INFO` (2 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_AAL0_INFO {
    pub CellLossPriority: u8,
    pub PayLoadTypeIdentifier: u8,
}
/// The anonymous union of `ATM_AAL_OOB_INFO`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union ATM_AAL_OOB_INFO_u {
    pub ATM_AAL5_INFO: ATM_AAL5_INFO,
    pub ATM_AAL0_INFO: ATM_AAL0_INFO,
}
/// `ATM_AAL_OOB_INFO` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ATM_AAL_OOB_INFO {
    pub AalType: ATM_AAL_TYPE,
    pub u: ATM_AAL_OOB_INFO_u,
}
crate::layout!(ATM_AAL_OOB_INFO, size 8; AalType == 0, u == 4);

/// `ATM_PVC_SAP` (52 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_PVC_SAP {
    pub Blli: ATM_BLLI_IE,
    pub Bhli: ATM_BHLI_IE,
}
crate::layout!(ATM_PVC_SAP, size 52; Blli == 0, Bhli == 36);

/// `ATM_SAP` (60 bytes + extra `ATM_ADDRESS`es): the `CO_SAP.Sap` payload for ATM.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_SAP {
    pub Blli: ATM_BLLI_IE,
    pub Bhli: ATM_BHLI_IE,
    pub NumberOfAddresses: u32,
    pub Addresses: [u8; 1],
}
crate::layout!(ATM_SAP, size 60; Blli == 0, Bhli == 36, NumberOfAddresses == 52, Addresses == 56);

// Q2931_ADD_PVC.Flags.
pub const CO_FLAG_SIGNALING_VC: u32 = 0x0000_0001;
pub const CO_FLAG_NO_DEST_SAP: u32 = 0x0000_0002;
pub const CO_FLAG_NO_LOCAL_SAP: u32 = 0x0000_0004;

/// `Q2931_ADD_PVC` (296 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Q2931_ADD_PVC {
    pub CalledParty: ATM_ADDRESS,
    pub CallingParty: ATM_ADDRESS,
    pub ConnectionId: ATM_VPIVCI,
    pub AALType: ATM_AAL_TYPE,
    pub ForwardFP: ATM_FLOW_PARAMETERS,
    pub BackwardFP: ATM_FLOW_PARAMETERS,
    pub Flags: u32,
    pub LocalSap: ATM_PVC_SAP,
    pub DestinationSap: ATM_PVC_SAP,
    pub LIJIdPresent: u8,
    pub LIJId: ATM_LIJ_CALLID_IE,
}
crate::layout!(Q2931_ADD_PVC, size 296;
    CalledParty == 0, CallingParty == 28, ConnectionId == 56, AALType == 64, ForwardFP == 68,
    BackwardFP == 124, Flags == 180, LocalSap == 184, DestinationSap == 236, LIJIdPresent == 288,
    LIJId == 292,
);

/// `Q2931_DELETE_PVC` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Q2931_DELETE_PVC {
    pub ConnectionId: ATM_VPIVCI,
}
crate::layout!(Q2931_DELETE_PVC, size 8; ConnectionId == 0);

/// `CO_GET_CALL_INFORMATION` (16 bytes on x64).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CO_GET_CALL_INFORMATION {
    pub CallInfoType: u32,
    pub CallInfoLength: u32,
    pub CallInfoBuffer: *mut core::ffi::c_void,
}
crate::layout!(CO_GET_CALL_INFORMATION, size 16; CallInfoType == 0, CallInfoLength == 4, CallInfoBuffer == 8);

/// `ATM_SERVICE_REGISTRY_TYPE` (`ULONG`).
pub type ATM_SERVICE_REGISTRY_TYPE = u32;
pub const ATM_SERVICE_REGISTRY_LECS: ATM_SERVICE_REGISTRY_TYPE = 1;
pub const ATM_SERVICE_REGISTRY_ANS: ATM_SERVICE_REGISTRY_TYPE = 2;

/// `ATM_SERVICE_ADDRESS_LIST` (variable length; `Address[]` at 12).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ATM_SERVICE_ADDRESS_LIST {
    pub ServiceRegistryType: ATM_SERVICE_REGISTRY_TYPE,
    pub NumberOfAddressesAvailable: u32,
    pub NumberOfAddressesReturned: u32,
    pub Address: [ATM_ADDRESS; 1],
}
crate::layout!(ATM_SERVICE_ADDRESS_LIST, size 40;
    ServiceRegistryType == 0, NumberOfAddressesAvailable == 4, NumberOfAddressesReturned == 8,
    Address == 12,
);
