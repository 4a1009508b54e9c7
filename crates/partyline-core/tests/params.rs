//! The contents of the `CO_CALL_PARAMETERS` block partyline passes to NdisClMakeCall and
//! NdisClAddParty, read back at the offsets of `shared/ndis/atm-call-params.md` §4 (the worked
//! x64 layout) and §2.2 / §3.2 (the field values the Microsoft sample and RFC 1755 give): the
//! traffic profile must reach every IE that carries it, for UBR and for CBR.

use partyline_core::model::{AtmAddress, ServiceCategory, TrafficProfile};
use partyline_core::params::{block_len, write, Message};

fn u32_at(block: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(block[at..at + 4].try_into().expect("4 bytes"))
}

fn leaf() -> AtmAddress {
    AtmAddress::parse("47.0005.80ffe1000000f21a3fe5.0020481a3fe5.00").expect("address")
}

fn own() -> AtmAddress {
    AtmAddress::parse("39.8400.0f000000000000000001.0020481a0001.00").expect("address")
}

fn setup(profile: &TrafficProfile) -> Vec<u8> {
    let mut block = vec![0xAAu8; block_len(Message::Setup)];
    write(&mut block, 0x1000, Message::Setup, &leaf(), &own(), profile).expect("fits");
    block
}

const CBR: TrafficProfile =
    TrafficProfile { service: ServiceCategory::Cbr, peak_cell_rate: 100_000, max_sdu: 1500 };

/// §2.2: Transmit carries the forward rate in bytes/s (cells/s × 48) and the SDU size, with the
/// service type; Receive is empty but for the service type (point-to-multipoint is root to
/// leaves). §4: the called party is the leaf at 96, the calling party the AF's own address at 124.
#[test]
fn the_setup_flowspecs_and_parties_carry_the_profile_and_addresses() {
    for (profile, service_type) in [(TrafficProfile::DEFAULT, 1), (CBR, 3)] {
        let block = setup(&profile);
        let rate = profile.peak_cell_rate * 48;
        let transmit = [u32_at(&block, 24), u32_at(&block, 28), u32_at(&block, 32), u32_at(&block, 44)];
        assert_eq!(transmit, [rate, profile.max_sdu, rate, service_type], "{profile:?}");
        assert_eq!(u32_at(&block, 48), profile.max_sdu, "Transmit.MaxSduSize");
        assert!(block[56..76].iter().all(|&b| b == 0), "Receive rates are zero");
        assert_eq!(u32_at(&block, 76), service_type, "Receive.ServiceType");
        assert_eq!(&block[96 + 8..96 + 28], leaf().raw(), "CalledParty.Address");
        assert_eq!(u32_at(&block, 96 + 4), 20, "CalledParty.NumberOfDigits");
        assert_eq!(&block[124 + 8..124 + 28], own().raw(), "CallingParty.Address");
    }
}

/// §3.2 and §4: the AAL IE (156) is AAL5 with the forward max SDU and a null SSCS; the traffic
/// descriptor (180) carries the forward peak cell rate (CLP 0+1), no backward traffic, and
/// BestEffort for UBR only; the bearer capability (248) is BCOB-X, point-to-multipoint, with the
/// CBR traffic type, timing and clipping for CBR; the B-LLI (264) is LLC with no layer 3; the QoS
/// class (308) is 0/0 for UBR and 1/1 for CBR.
#[test]
fn the_setup_ies_carry_the_profile() {
    for profile in [TrafficProfile::DEFAULT, CBR] {
        let ubr = profile.service == ServiceCategory::Ubr;
        let block = setup(&profile);
        // AAL: payload at 164, AAL5_PARAMETERS at 168.
        assert_eq!(u32_at(&block, 164), 8, "AAL_TYPE_AAL5");
        assert_eq!(u32_at(&block, 168), profile.max_sdu, "ForwardMaxCPCSSDUSize");
        assert_eq!(block[177], 0, "SSCSType: AAL5_SSCS_NULL");
        // Traffic descriptor: ForwardTD at 188, BackwardTD at 216, BestEffort at 244.
        assert_eq!(u32_at(&block, 188), 0, "ForwardTD.PeakCellRateCLP0");
        assert_eq!(u32_at(&block, 192), profile.peak_cell_rate, "ForwardTD.PeakCellRateCLP01");
        assert!(block[216..244].iter().all(|&b| b == 0), "no backward traffic");
        assert_eq!(block[244], u8::from(ubr), "BestEffort for UBR only");
        // Broadband bearer capability at 256.
        let bbc = if ubr { [0x02, 0x00, 0x00, 0x00, 0x01] } else { [0x02, 0x04, 0x01, 0x20, 0x01] };
        assert_eq!(block[256..261], bbc, "BCOB_X, traffic type, timing, clipping, UP_P2MP");
        // B-LLI at 272.
        assert_eq!(u32_at(&block, 272), 0x0C, "BLLI_L2_LLC");
        assert_eq!(u32_at(&block, 284), 0xFFFF_FFFE, "Layer3Protocol: SAP_FIELD_ABSENT");
        // QoS class at 316.
        let class = if ubr { 0 } else { 1 };
        assert_eq!(block[316..318], [class, class], "QoS class forward/backward");
        // Padding of the rounded IEs and the handle slot are zero, not left as they were.
        assert!(block[320..].iter().all(|&b| b == 0), "handle slot zeroed");
    }
}

/// §6: ADD PARTY carries AAL and B-LLI only, with the same AAL5 forward SDU as the SETUP, and no
/// MULTIPOINT_VC flag (the VC is already multipoint).
#[test]
fn the_add_party_carries_the_aal5_sdu_and_the_leaf() {
    let mut block = vec![0xAAu8; block_len(Message::AddParty)];
    write(&mut block, 0, Message::AddParty, &leaf(), &own(), &CBR).expect("fits");
    assert_eq!(u32_at(&block, 0), 0, "no flags");
    assert_eq!(u32_at(&block, 164), 8, "AAL_TYPE_AAL5");
    assert_eq!(u32_at(&block, 168), CBR.max_sdu, "ForwardMaxCPCSSDUSize");
    assert_eq!(u32_at(&block, 180), 4, "then the B-LLI");
    assert_eq!(u32_at(&block, 188), 0x0C, "BLLI_L2_LLC");
    assert_eq!(&block[96 + 8..96 + 28], leaf().raw());
}

/// §4: the block the driver allocates per request is the parameters, rounded up to 8, plus one
/// NDIS_HANDLE for the party handle: 328 bytes for a SETUP, 232 for an ADD PARTY (156 + AAL 24 + B-LLI 44).
#[test]
fn a_block_is_the_parameters_and_one_handle_slot() {
    assert_eq!(block_len(Message::Setup), 320 + 8);
    assert_eq!(block_len(Message::AddParty), 224 + 8);
}
