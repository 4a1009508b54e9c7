//! `CO_CALL_PARAMETERS` for an ATM UNI 3.1 point-to-multipoint SETUP (`NdisClMakeCall`) and
//! ADD PARTY (`NdisClAddParty`), written as bytes into one block.
//!
//! Pages: NdisClMakeCall, NdisClAddParty (ddi/ndis), CO_CALL_PARAMETERS,
//! CO_CALL_MANAGER_PARAMETERS, Q2931_CALLMGR_PARAMETERS (previous-versions NDIS 5.1 pages), and
//! `shared/ndis/atm-call-params.md` §2–§6 (layout, mandatory IEs).
//!
//! One contiguous block, as the call manager expects and as it must stay valid until the
//! completion ("CallParameters must remain valid until ProtocolClMakeCallComplete"):
//!
//! ```text
//! +0    CO_CALL_PARAMETERS { Flags, CallMgrParameters -> +24, MediaParameters = NULL }
//! +24   CO_CALL_MANAGER_PARAMETERS { Transmit, Receive, CallMgrSpecific { ParamType = Q2931, Length } }
//! +96   Q2931_CALLMGR_PARAMETERS { CalledParty, CallingParty, InfoElementCount, InfoElements... }
//! +156  IEs, each Q2931_IE { IEType, IELength (header included), payload }, lengths rounded to 4
//! end   8-aligned NDIS_HANDLE slot for the NdisPartyHandle out-parameter
//! ```
//!
//! The pointer in `CallMgrParameters` is absolute, so the builder takes the block's address; it
//! never dereferences it. Layout numbers come from `ndis-sys`, whose layouts are asserted.

use crate::model::{AtmAddress, ServiceCategory, TrafficProfile};
use core::mem::{offset_of, size_of};
use ndis_sys::{
    AAL_PARAMETERS_IE, ATM_ADDRESS, ATM_BLLI_IE, ATM_BROADBAND_BEARER_CAPABILITY_IE, ATM_QOS_CLASS_IE,
    ATM_TRAFFIC_DESCRIPTOR, ATM_TRAFFIC_DESCRIPTOR_IE, CO_CALL_MANAGER_PARAMETERS, CO_CALL_PARAMETERS,
    CO_SPECIFIC_PARAMETERS, FLOWSPEC, Q2931_CALLMGR_PARAMETERS, Q2931_IE,
};

/// Which message the parameters carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Message {
    /// The SETUP of a point-to-multipoint call: AAL, traffic descriptor, bearer capability
    /// (point-to-multipoint), B-LLI and QoS class (atm-call-params.md §4–§5, RFC 1755 set).
    Setup,
    /// ADD PARTY: AAL and B-LLI only; connection-wide IEs are fixed by the SETUP (§6).
    AddParty,
}

const CALL_PARAMETERS: usize = 0;
const MANAGER: usize = size_of::<CO_CALL_PARAMETERS>();
const Q2931: usize = MANAGER
    + offset_of!(CO_CALL_MANAGER_PARAMETERS, CallMgrSpecific)
    + offset_of!(CO_SPECIFIC_PARAMETERS, Parameters);
const IES: usize = Q2931 + offset_of!(Q2931_CALLMGR_PARAMETERS, InfoElements);
const IE_HEADER: usize = offset_of!(Q2931_IE, IE);

const fn ie_len(payload: usize) -> usize {
    (IE_HEADER + payload + 3) & !3
}

const AAL_IE: usize = ie_len(size_of::<AAL_PARAMETERS_IE>());
const TD_IE: usize = ie_len(size_of::<ATM_TRAFFIC_DESCRIPTOR_IE>());
const BBC_IE: usize = ie_len(size_of::<ATM_BROADBAND_BEARER_CAPABILITY_IE>());
const BLLI_IE: usize = ie_len(size_of::<ATM_BLLI_IE>());
const QOS_IE: usize = ie_len(size_of::<ATM_QOS_CLASS_IE>());

/// Bytes of the parameters proper for `message` (without the handle slot).
pub const fn parameters_len(message: Message) -> usize {
    match message {
        Message::Setup => IES + AAL_IE + TD_IE + BBC_IE + BLLI_IE + QOS_IE,
        Message::AddParty => IES + AAL_IE + BLLI_IE,
    }
}

/// Offset of the `NDIS_HANDLE` slot NDIS writes the party handle to.
pub const fn handle_slot(message: Message) -> usize {
    (parameters_len(message) + 7) & !7
}

/// Bytes to allocate for `message`: parameters plus the handle slot.
pub const fn block_len(message: Message) -> usize {
    handle_slot(message) + size_of::<usize>()
}

/// `MULTIPOINT_VC`, set on the SETUP of a point-to-multipoint call.
pub const MULTIPOINT_VC: u32 = ndis_sys::MULTIPOINT_VC;

struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn bytes(&mut self, at: usize, value: &[u8]) {
        if let Some(slot) = self.0.get_mut(at..at + value.len()) {
            slot.copy_from_slice(value);
        }
    }
    fn u8(&mut self, at: usize, value: u8) {
        self.bytes(at, &[value]);
    }
    fn u32(&mut self, at: usize, value: u32) {
        self.bytes(at, &value.to_le_bytes());
    }
    fn u64(&mut self, at: usize, value: u64) {
        self.bytes(at, &value.to_le_bytes());
    }
    fn address(&mut self, at: usize, address: &AtmAddress) {
        self.u32(at + offset_of!(ATM_ADDRESS, AddressType), address.kind() as u32);
        self.u32(at + offset_of!(ATM_ADDRESS, NumberOfDigits), address.len() as u32);
        self.bytes(at + offset_of!(ATM_ADDRESS, Address), address.raw());
    }
    /// An IE header at `at`; returns where its payload starts and where the next IE starts.
    fn ie(&mut self, at: usize, kind: u32, len: usize) -> (usize, usize) {
        self.u32(at + offset_of!(Q2931_IE, IEType), kind);
        self.u32(at + offset_of!(Q2931_IE, IELength), len as u32);
        (at + IE_HEADER, at + len)
    }
}

/// Why a block could not be written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TooSmall {
    pub needed: usize,
}

/// Writes the parameters for `message` from `calling` (the AF's own address) to `leaf` into
/// `block` (zeroed first), which will live at address `base`. Returns the offset of the
/// party-handle slot.
pub fn write(
    block: &mut [u8],
    base: usize,
    message: Message,
    leaf: &AtmAddress,
    calling: &AtmAddress,
    profile: &TrafficProfile,
) -> Result<usize, TooSmall> {
    let needed = block_len(message);
    if block.len() < needed {
        return Err(TooSmall { needed });
    }
    block[..needed].fill(0);
    let mut w = Writer(block);

    // CO_CALL_PARAMETERS
    let flags = if message == Message::Setup { MULTIPOINT_VC } else { 0 };
    w.u32(CALL_PARAMETERS + offset_of!(CO_CALL_PARAMETERS, Flags), flags);
    w.u64(CALL_PARAMETERS + offset_of!(CO_CALL_PARAMETERS, CallMgrParameters), (base + MANAGER) as u64);
    // MediaParameters stays NULL: for an SVC the call manager derives them (§2).

    // CO_CALL_MANAGER_PARAMETERS: Transmit carries the forward rate in bytes/s; for a
    // point-to-multipoint call the receive direction is empty (§2.2).
    let (service_type, bytes_per_second) = match profile.service {
        ServiceCategory::Ubr => (ndis_sys::SERVICETYPE_BESTEFFORT, profile.peak_cell_rate.saturating_mul(48)),
        ServiceCategory::Cbr => (ndis_sys::SERVICETYPE_GUARANTEED, profile.peak_cell_rate.saturating_mul(48)),
    };
    let transmit = MANAGER + offset_of!(CO_CALL_MANAGER_PARAMETERS, Transmit);
    w.u32(transmit + offset_of!(FLOWSPEC, TokenRate), bytes_per_second);
    w.u32(transmit + offset_of!(FLOWSPEC, TokenBucketSize), profile.max_sdu);
    w.u32(transmit + offset_of!(FLOWSPEC, PeakBandwidth), bytes_per_second);
    w.u32(transmit + offset_of!(FLOWSPEC, ServiceType), service_type);
    w.u32(transmit + offset_of!(FLOWSPEC, MaxSduSize), profile.max_sdu);
    let receive = MANAGER + offset_of!(CO_CALL_MANAGER_PARAMETERS, Receive);
    w.u32(receive + offset_of!(FLOWSPEC, ServiceType), service_type);
    let specific = MANAGER + offset_of!(CO_CALL_MANAGER_PARAMETERS, CallMgrSpecific);
    w.u32(specific + offset_of!(CO_SPECIFIC_PARAMETERS, ParamType), ndis_sys::CALLMGR_SPECIFIC_Q2931);
    w.u32(specific + offset_of!(CO_SPECIFIC_PARAMETERS, Length), (parameters_len(message) - Q2931) as u32);

    // Q2931_CALLMGR_PARAMETERS: the leaf, and the calling party: the client's own registered ATM
    // address (atm-call-params.md §3), which the AF learned from the call manager with
    // OID_CO_GET_ADDRESSES after its OID_CO_ADDRESS_CHANGE (oid-co-address-change). An "empty"
    // ATM_NSAP is not absent: its 20 octets would read as the all-zero number.
    w.address(Q2931 + offset_of!(Q2931_CALLMGR_PARAMETERS, CalledParty), leaf);
    w.address(Q2931 + offset_of!(Q2931_CALLMGR_PARAMETERS, CallingParty), calling);
    let count = if message == Message::Setup { 5 } else { 2 };
    w.u32(Q2931 + offset_of!(Q2931_CALLMGR_PARAMETERS, InfoElementCount), count);

    // AAL5, forward SDU only (point-to-multipoint is root to leaves).
    let (p, next) = w.ie(IES, ndis_sys::IE_AALParameters, AAL_IE);
    w.u32(p + offset_of!(AAL_PARAMETERS_IE, AALType), ndis_sys::AAL_TYPE_AAL5);
    let aal5 = p + offset_of!(AAL_PARAMETERS_IE, AALSpecificParameters);
    w.u32(aal5 + offset_of!(ndis_sys::AAL5_PARAMETERS, ForwardMaxCPCSSDUSize), profile.max_sdu);
    w.u8(aal5 + offset_of!(ndis_sys::AAL5_PARAMETERS, SSCSType), ndis_sys::AAL5_SSCS_NULL);
    let mut at = next;

    if message == Message::Setup {
        let (p, next) = w.ie(at, ndis_sys::IE_TrafficDescriptor, TD_IE);
        let forward = p + offset_of!(ATM_TRAFFIC_DESCRIPTOR_IE, ForwardTD);
        w.u32(forward + offset_of!(ATM_TRAFFIC_DESCRIPTOR, PeakCellRateCLP01), profile.peak_cell_rate);
        let best_effort = profile.service == ServiceCategory::Ubr;
        w.u8(p + offset_of!(ATM_TRAFFIC_DESCRIPTOR_IE, BestEffort), best_effort as u8);
        at = next;

        let (p, next) = w.ie(at, ndis_sys::IE_BroadbandBearerCapability, BBC_IE);
        let (traffic, timing, clipping) = match profile.service {
            ServiceCategory::Ubr => (ndis_sys::TT_NOIND, ndis_sys::TR_NOIND, ndis_sys::CLIP_NOT),
            ServiceCategory::Cbr => (ndis_sys::TT_CBR, ndis_sys::TR_END_TO_END, ndis_sys::CLIP_SUS),
        };
        w.u8(p + offset_of!(ATM_BROADBAND_BEARER_CAPABILITY_IE, BearerClass), ndis_sys::BCOB_X);
        w.u8(p + offset_of!(ATM_BROADBAND_BEARER_CAPABILITY_IE, TrafficType), traffic);
        w.u8(p + offset_of!(ATM_BROADBAND_BEARER_CAPABILITY_IE, TimingRequirements), timing);
        w.u8(p + offset_of!(ATM_BROADBAND_BEARER_CAPABILITY_IE, ClippingSusceptability), clipping);
        w.u8(
            p + offset_of!(ATM_BROADBAND_BEARER_CAPABILITY_IE, UserPlaneConnectionConfig),
            ndis_sys::UP_P2MP,
        );
        at = next;
    }

    // B-LLI: LLC encapsulation, no layer 3 (§3.2, RFC 1755).
    let (p, next) = w.ie(at, ndis_sys::IE_BLLI, BLLI_IE);
    w.u32(p + offset_of!(ATM_BLLI_IE, Layer2Protocol), ndis_sys::BLLI_L2_LLC);
    w.u32(p + offset_of!(ATM_BLLI_IE, Layer3Protocol), ndis_sys::SAP_FIELD_ABSENT);
    at = next;

    if message == Message::Setup {
        let (p, next) = w.ie(at, ndis_sys::IE_QOSClass, QOS_IE);
        let class =
            if profile.service == ServiceCategory::Ubr { ndis_sys::QOS_CLASS0 } else { ndis_sys::QOS_CLASS1 };
        w.u8(p + offset_of!(ATM_QOS_CLASS_IE, QOSClassForward), class);
        w.u8(p + offset_of!(ATM_QOS_CLASS_IE, QOSClassBackward), class);
        at = next;
    }
    debug_assert_eq!(at, parameters_len(message));
    Ok(handle_slot(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> AtmAddress {
        AtmAddress::parse("47.0005.80ffe1000000f21a3fe5.0020481a3fe5.00").expect("address")
    }

    fn own() -> AtmAddress {
        AtmAddress::parse("39.8400.0f000000000000000001.0020481a0001.00").expect("address")
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
    }

    /// atm-call-params.md §4, the worked layout: IEs at 156, 5 IEs, CallMgrSpecific.Length 224.
    #[test]
    fn setup_matches_the_worked_layout() {
        let mut block = [0xAAu8; block_len(Message::Setup)];
        let slot = write(&mut block, 0x1000, Message::Setup, &leaf(), &own(), &TrafficProfile::DEFAULT)
            .expect("fits");
        assert_eq!(parameters_len(Message::Setup), 320);
        assert_eq!(slot, 320);
        assert_eq!(u32_at(&block, 0), MULTIPOINT_VC);
        assert_eq!(u64::from_le_bytes(block[8..16].try_into().unwrap()), 0x1000 + 24);
        assert_eq!(u64::from_le_bytes(block[16..24].try_into().unwrap()), 0, "no media parameters");
        assert_eq!(u32_at(&block, 88), 1, "CALLMGR_SPECIFIC_Q2931");
        assert_eq!(u32_at(&block, 92), 224);
        assert_eq!(u32_at(&block, 96 + 4), 20, "NSAP called party");
        assert_eq!(u32_at(&block, 96 + 28), 0, "calling party: ATM_NSAP");
        assert_eq!(u32_at(&block, 96 + 28 + 4), 20, "calling party: 20 octets");
        assert_eq!(&block[96 + 28 + 8..96 + 56], own().raw(), "calling party: the AF's own address");
        assert_eq!(u32_at(&block, 152), 5);
        let mut at = 156;
        let mut kinds = [0u32; 5];
        for kind in &mut kinds {
            *kind = u32_at(&block, at);
            at += u32_at(&block, at + 4) as usize;
        }
        assert_eq!(kinds, [0, 1, 2, 4, 10]);
        assert_eq!(at, 320);
        assert_eq!(block[248 + 8 + 4], ndis_sys::UP_P2MP, "bearer capability is point-to-multipoint");
    }

    #[test]
    fn add_party_carries_only_aal_and_blli() {
        let mut block = [0u8; block_len(Message::AddParty)];
        write(&mut block, 0, Message::AddParty, &leaf(), &own(), &TrafficProfile::DEFAULT).expect("fits");
        assert_eq!(u32_at(&block, 152), 2);
        assert_eq!(u32_at(&block, 156), 0);
        assert_eq!(u32_at(&block, 156 + 24), 4);
        assert_eq!(u32_at(&block, 92) as usize, parameters_len(Message::AddParty) - 96);
    }

    #[test]
    fn a_short_block_is_refused() {
        let mut block = [0u8; 100];
        assert_eq!(
            write(&mut block, 0, Message::Setup, &leaf(), &own(), &TrafficProfile::DEFAULT),
            Err(TooSmall { needed: block_len(Message::Setup) })
        );
    }
}
