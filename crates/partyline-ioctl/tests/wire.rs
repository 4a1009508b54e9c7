//! Round trips of every request and response, and malformed buffers of every kind: each refused
//! with its precise error and status, never a panic.

use partyline_core::engine::{
    AfState, BindingState, CallInfo, CallState, CloseReason, Error as CoreError, Operational, PartyInfo,
    PartyState, Table,
};
use partyline_core::model::{
    AddressError, AtmAddress, Handle, ProfileError, ServiceCategory, Status, TrafficProfile,
};
use partyline_core::slab::{Exhausted, Id};
use partyline_core::trace::{Cause, Counters, ObjectKind, TraceEvent};
use partyline_ioctl::error::*;
use partyline_ioctl::request::*;
use partyline_ioctl::*;
use proptest::prelude::*;

fn nsap(afi: u8, fill: u8) -> AtmAddress {
    let mut o = [fill; 20];
    o[0] = afi;
    AtmAddress::nsap(&o).unwrap()
}

fn id(v: u64) -> Id {
    Id::from_u64(v).unwrap()
}

const CALL: u64 = 0x0000_0002_0000_0005;
const PROFILE: TrafficProfile = TrafficProfile::DEFAULT;

fn make_call_bytes(af: u64, profile: &TrafficProfile, leaves: &[AtmAddress]) -> Vec<u8> {
    let mut out = vec![0u8; make_call_len(leaves.len())];
    assert_eq!(encode_make_call(&mut out, af, profile, leaves), Ok(out.len()));
    out
}

/// A valid input for every IOCTL.
fn valid_inputs() -> Vec<(Ioctl, Vec<u8>)> {
    let leaf = AtmAddress::e164(b"15551234").unwrap();
    vec![
        (Ioctl::ListBindings, encode_list_bindings(3).to_vec()),
        (Ioctl::ListCalls, encode_list_calls(0).to_vec()),
        (Ioctl::MakeCall, make_call_bytes(CALL, &PROFILE, &[nsap(0x47, 1), leaf])),
        (Ioctl::AddParty, encode_add_party(CALL, &leaf).to_vec()),
        (Ioctl::DropParty, encode_drop_party(CALL).to_vec()),
        (Ioctl::CloseCall, encode_close_call(CALL).to_vec()),
        (Ioctl::QueryCall, encode_query_call(CALL, 7).to_vec()),
        (Ioctl::ReadCounters, encode_read_counters().to_vec()),
        (Ioctl::ReadTrace, encode_read_trace(99).to_vec()),
        (Ioctl::ReadState, encode_read_state().to_vec()),
    ]
}

#[test]
fn every_valid_request_decodes() {
    for (ioctl, input) in valid_inputs() {
        let request = decode_request(ioctl.code(), &input).unwrap_or_else(|e| panic!("{ioctl:?}: {e}"));
        let expected_kind = match request {
            Request::ListBindings { cursor } => (Ioctl::ListBindings, cursor == 3),
            Request::ListCalls { cursor } => (Ioctl::ListCalls, cursor == 0),
            Request::MakeCall { af, profile, leaves } => {
                (Ioctl::MakeCall, af == id(CALL) && profile == PROFILE && leaves.len() == 2)
            }
            Request::AddParty { call, .. } => (Ioctl::AddParty, call == id(CALL)),
            Request::DropParty { party } => (Ioctl::DropParty, party == id(CALL)),
            Request::CloseCall { call } => (Ioctl::CloseCall, call == id(CALL)),
            Request::QueryCall { call, cursor } => (Ioctl::QueryCall, call == id(CALL) && cursor == 7),
            Request::ReadCounters => (Ioctl::ReadCounters, true),
            Request::ReadTrace { from } => (Ioctl::ReadTrace, from == 99),
            Request::ReadState => (Ioctl::ReadState, true),
        };
        assert_eq!(expected_kind, (ioctl, true));
    }
}

#[test]
fn empty_and_truncated_inputs_are_length_errors_for_every_code() {
    for (ioctl, input) in valid_inputs() {
        for len in 0..input.len() {
            let err = decode_request(ioctl.code(), &input[..len]).unwrap_err();
            assert_eq!(err.status(), STATUS_INFO_LENGTH_MISMATCH, "{ioctl:?} truncated to {len}: {err:?}");
        }
        // Oversized by one byte.
        let mut long = input.clone();
        long.push(0);
        let err = decode_request(ioctl.code(), &long).unwrap_err();
        assert_eq!(err.status(), STATUS_INFO_LENGTH_MISMATCH, "{ioctl:?} oversized: {err:?}");
    }
    assert_eq!(
        decode_request(IOCTL_PARTYLINE_DROP_PARTY, &[]),
        Err(IoctlError::InputLength { expected: 16, actual: 0 })
    );
    assert_eq!(
        decode_request(IOCTL_PARTYLINE_MAKE_CALL, &[1, 0, 0]),
        Err(IoctlError::InputTooShort { minimum: 32, actual: 3 })
    );
}

#[test]
fn wrong_version_is_a_revision_mismatch() {
    for (ioctl, mut input) in valid_inputs() {
        input[0] = 2;
        assert_eq!(decode_request(ioctl.code(), &input), Err(IoctlError::Version { found: 2 }));
        assert_eq!(IoctlError::Version { found: 2 }.status(), STATUS_REVISION_MISMATCH);
    }
}

#[test]
fn nonzero_reserved_fields_are_refused() {
    for (ioctl, mut input) in valid_inputs() {
        input[2] = 1;
        assert_eq!(
            decode_request(ioctl.code(), &input),
            Err(IoctlError::Reserved { offset: 2 }),
            "{ioctl:?}"
        );
    }
    let mut q = encode_query_call(CALL, 0);
    q[5] = 1;
    assert_eq!(decode_request(IOCTL_PARTYLINE_QUERY_CALL, &q), Err(IoctlError::Reserved { offset: 4 }));
    // E.164 padding after the digits.
    let mut add = encode_add_party(CALL, &AtmAddress::e164(b"123").unwrap());
    add[16 + 4 + 3] = b'4';
    assert_eq!(decode_request(IOCTL_PARTYLINE_ADD_PARTY, &add), Err(IoctlError::Reserved { offset: 23 }));
}

#[test]
fn unknown_codes_are_invalid_device_requests() {
    let input = encode_drop_party(CALL);
    for code in [
        0,
        0x0022_0000,
        ctl_code(FILE_DEVICE_PARTYLINE, 0x7FF, METHOD_BUFFERED, FILE_READ_ACCESS),
        ctl_code(FILE_DEVICE_PARTYLINE, 0x80A, METHOD_BUFFERED, FILE_READ_ACCESS),
        // Right function, wrong method or access.
        IOCTL_PARTYLINE_DROP_PARTY | 3,
        ctl_code(FILE_DEVICE_PARTYLINE, 0x803, METHOD_BUFFERED, FILE_READ_ACCESS),
        ctl_code(FILE_DEVICE_PARTYLINE, 0x803, METHOD_BUFFERED, FILE_ANY_ACCESS),
    ] {
        let err = decode_request(code, &input).unwrap_err();
        assert_eq!(err, IoctlError::UnknownCode { code });
        assert_eq!(err.status(), STATUS_INVALID_DEVICE_REQUEST);
    }
}

#[test]
fn leaf_counts_out_of_range_or_not_matching_the_length_are_refused() {
    let leaf = nsap(0x39, 0);
    let mut input = make_call_bytes(CALL, &PROFILE, &[leaf, leaf]);
    for count in [0u32, MAX_LEAVES + 1, u32::MAX] {
        input[4..8].copy_from_slice(&count.to_le_bytes());
        let err = decode_request(IOCTL_PARTYLINE_MAKE_CALL, &input).unwrap_err();
        assert_eq!(err, IoctlError::LeafCount { count });
        assert_eq!(err.status(), STATUS_INVALID_PARAMETER);
    }
    for count in [1u32, 3, MAX_LEAVES] {
        input[4..8].copy_from_slice(&count.to_le_bytes());
        let err = decode_request(IOCTL_PARTYLINE_MAKE_CALL, &input).unwrap_err();
        assert_eq!(err, IoctlError::CountMismatch { count, actual: input.len() });
        assert_eq!(err.status(), STATUS_INFO_LENGTH_MISMATCH);
    }
    // The maximum is accepted.
    let many = vec![leaf; MAX_LEAVES as usize];
    let input = make_call_bytes(CALL, &PROFILE, &many);
    let Ok(Request::MakeCall { leaves, .. }) = decode_request(IOCTL_PARTYLINE_MAKE_CALL, &input) else {
        panic!("1024 leaves refused")
    };
    assert_eq!(leaves.len(), 1024);
    assert!(leaves.iter().all(|l| l == leaf));
}

fn leaf_error(index: usize, patch: impl Fn(&mut [u8])) -> IoctlError {
    let leaves = [nsap(0x47, 2), nsap(0x39, 3), AtmAddress::e164(b"12").unwrap()];
    let mut input = make_call_bytes(CALL, &PROFILE, &leaves);
    let at = MAKE_CALL_FIXED_LEN + index * LEAF_LEN;
    patch(&mut input[at..at + LEAF_LEN]);
    decode_request(IOCTL_PARTYLINE_MAKE_CALL, &input).unwrap_err()
}

#[test]
fn bad_addresses_are_refused_with_the_index_of_the_first_bad_one() {
    let e = |index: u32, error| IoctlError::Address { index, error };
    // Bad address type.
    assert_eq!(leaf_error(1, |l| l[0] = 2), e(1, AddressError::Syntax));
    // NSAP with the wrong digit count, and a bad AFI.
    assert_eq!(leaf_error(0, |l| l[1] = 19), e(0, AddressError::NsapLength));
    assert_eq!(leaf_error(1, |l| l[4] = 0x12), e(1, AddressError::NsapAfi));
    // E.164: non-digit, too long, empty, longer than the field.
    assert_eq!(leaf_error(2, |l| l[5] = b'x'), e(2, AddressError::E164Digit));
    assert_eq!(
        leaf_error(2, |l| {
            l[1] = 16;
            l[4..20].fill(b'1')
        }),
        e(2, AddressError::E164Length)
    );
    assert_eq!(leaf_error(2, |l| l[1] = 0), e(2, AddressError::E164Length));
    assert_eq!(leaf_error(2, |l| l[1] = 200), e(2, AddressError::E164Length));
    // Reserved bytes inside a leaf, reported at their offset in the whole input.
    assert_eq!(
        leaf_error(1, |l| l[3] = 1),
        IoctlError::Reserved { offset: MAKE_CALL_FIXED_LEN + LEAF_LEN + 2 }
    );
    // Add-party reports index 0.
    let mut add = encode_add_party(CALL, &nsap(0x47, 0));
    add[20] = 0x11;
    assert_eq!(decode_request(IOCTL_PARTYLINE_ADD_PARTY, &add), Err(e(0, AddressError::NsapAfi)));
    assert_eq!(e(0, AddressError::NsapAfi).status(), STATUS_INVALID_PARAMETER);
}

#[test]
fn bad_profiles_are_refused() {
    let leaves = [nsap(0x47, 2)];
    let cases = [
        (TrafficProfile { peak_cell_rate: 0, ..PROFILE }, IoctlError::Profile(ProfileError::PeakCellRate)),
        (
            TrafficProfile { peak_cell_rate: 1_412_831, ..PROFILE },
            IoctlError::Profile(ProfileError::PeakCellRate),
        ),
        (TrafficProfile { max_sdu: 0, ..PROFILE }, IoctlError::Profile(ProfileError::MaxSdu)),
        (TrafficProfile { max_sdu: 65_536, ..PROFILE }, IoctlError::Profile(ProfileError::MaxSdu)),
    ];
    for (profile, err) in cases {
        let input = make_call_bytes(CALL, &profile, &leaves);
        assert_eq!(decode_request(IOCTL_PARTYLINE_MAKE_CALL, &input), Err(err));
    }
    let mut input = make_call_bytes(CALL, &PROFILE, &leaves);
    input[16] = 7;
    assert_eq!(
        decode_request(IOCTL_PARTYLINE_MAKE_CALL, &input),
        Err(IoctlError::ServiceCategory { value: 7 })
    );
    input[16] = 1;
    input[17] = 1;
    assert_eq!(decode_request(IOCTL_PARTYLINE_MAKE_CALL, &input), Err(IoctlError::Reserved { offset: 17 }));
}

#[test]
fn zero_and_undecodable_ids_are_refused() {
    let leaf = nsap(0x47, 0);
    for bad in [0u64, 0x0000_0001_0000_0000, 0x0000_0000_0000_0001] {
        let cases: [(u32, Vec<u8>, IdField); 5] = [
            (IOCTL_PARTYLINE_MAKE_CALL, make_call_bytes(bad, &PROFILE, &[leaf]), IdField::AddressFamily),
            (IOCTL_PARTYLINE_ADD_PARTY, encode_add_party(bad, &leaf).to_vec(), IdField::Call),
            (IOCTL_PARTYLINE_DROP_PARTY, encode_drop_party(bad).to_vec(), IdField::Party),
            (IOCTL_PARTYLINE_CLOSE_CALL, encode_close_call(bad).to_vec(), IdField::Call),
            (IOCTL_PARTYLINE_QUERY_CALL, encode_query_call(bad, 0).to_vec(), IdField::Call),
        ];
        for (code, input, field) in cases {
            let err = decode_request(code, &input).unwrap_err();
            assert_eq!(err, IoctlError::Id { field, value: bad });
            assert_eq!(err.status(), STATUS_INVALID_PARAMETER);
        }
    }
}

#[test]
fn engine_errors_map_to_precise_statuses() {
    let cases = [
        (CoreError::NeedMemory(Table::Calls, Exhausted::Chunk), STATUS_INSUFFICIENT_RESOURCES),
        (CoreError::UnknownId(ObjectKind::Call), STATUS_NOT_FOUND),
        (CoreError::InvalidState(ObjectKind::Party), STATUS_INVALID_DEVICE_STATE),
        (CoreError::Closing, STATUS_DELETE_PENDING),
        (CoreError::UnsupportedAddressFamily, STATUS_NOT_SUPPORTED),
        (CoreError::NoLeaves, STATUS_INVALID_PARAMETER),
    ];
    for (e, status) in cases {
        assert_eq!(core_status(e), status);
        assert_eq!(IoctlError::from(e).status(), status);
        assert_ne!(status_message(status), "unexpected status");
        assert!(!IoctlError::from(e).to_string().is_empty());
    }
    assert_eq!(STATUS_NOT_FOUND as u32, 0xC000_0225);
    assert_eq!(STATUS_BUFFER_TOO_SMALL as u32, 0xC000_0023);
    assert_eq!(IoctlError::BufferTooSmall { needed: 1 }.status(), STATUS_BUFFER_TOO_SMALL);
}

// ----- responses -----

fn call_info() -> CallInfo {
    CallInfo {
        state: CallState::Active,
        af: id(0x1_0000_0001),
        profile: PROFILE,
        closing: Some(CloseReason::Remote(Status(0x1234))),
        queued: 1,
        adding: 2,
        connected: 3,
        dropping: 4,
        parameters_changed: true,
    }
}

fn parties(n: u64) -> Vec<PartyEntry> {
    (1..=n)
        .map(|i| {
            let info = PartyInfo {
                call: id(CALL),
                state: PartyState::Connected { handle: Handle(0xFFFF_8000_1234_0000) },
                address: nsap(0x47, i as u8),
            };
            PartyEntry::new(id((1 << 32) | i), &info)
        })
        .collect()
}

#[test]
fn query_call_pages_through_a_small_buffer_and_never_shows_handles() {
    let summary = CallSummary::new(id(CALL), &call_info());
    let all = parties(5);
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut out = vec![0u8; PAGED_HEADER_LEN + CALL_BLOCK_LEN + 2 * PARTY_ENTRY_LEN + 5];
    loop {
        let len = encode_query_call_response(&mut out, &summary, cursor, all.iter().copied()).unwrap();
        let (call, page) = decode_query_call_response(&out[..len]).unwrap();
        assert_eq!(call, summary);
        seen.extend(page.iter());
        cursor = page.next;
        if !page.more {
            break;
        }
        assert_eq!(page.len(), 2);
    }
    assert_eq!(seen, all);
    assert!(seen.iter().all(|p| p.state == PartyStatus::Connected));
    // Too small for the call and one party.
    let mut tiny = [0u8; 70];
    assert_eq!(
        encode_query_call_response(&mut tiny, &summary, 0, all.iter().copied()),
        Err(IoctlError::BufferTooSmall { needed: 96 })
    );
    // A call with no parties fits in the fixed part.
    let mut fixed = [0u8; 64];
    assert_eq!(encode_query_call_response(&mut fixed, &summary, 0, std::iter::empty()), Ok(64));
}

#[test]
fn list_bindings_round_trip_and_paging() {
    let h = Handle(0xFFFF_8000_0000_1000);
    let entries = vec![
        ListEntry::binding((id(0x1_0000_0001), BindingState::Open { handle: h }, 1)),
        ListEntry::binding((id(0x1_0000_0002), BindingState::Opening, 0)),
        ListEntry::address_family((id(0x1_0000_0001), id(0x1_0000_0001), AfState::Open { handle: h }, 3)),
        ListEntry::address_family((id(0x1_0000_0002), id(0x1_0000_0001), AfState::Closed, 0)),
    ];
    let mut out = [0u8; PAGED_HEADER_LEN + LIST_ENTRY_LEN * 3];
    let len = encode_list_bindings_response(&mut out, 0, entries.iter().copied()).unwrap();
    let page = decode_list_bindings_response(&out[..len]).unwrap();
    assert!(page.more);
    assert_eq!(page.next, 3);
    let mut got: Vec<_> = page.iter().collect();
    let next = page.next;
    let len = encode_list_bindings_response(&mut out, next, entries.iter().copied()).unwrap();
    let page = decode_list_bindings_response(&out[..len]).unwrap();
    assert!(!page.more);
    got.extend(page.iter());
    assert_eq!(got, entries);

    let calls = [CallEntry::new((id(CALL), id(0x1_0000_0001)))];
    let len = encode_list_calls_response(&mut out, 0, calls.iter().copied()).unwrap();
    assert_eq!(decode_list_calls_response(&out[..len]).unwrap().iter().collect::<Vec<_>>(), calls);
    // Empty list: header only, cursor unchanged.
    let len = encode_list_calls_response(&mut out, 9, std::iter::empty()).unwrap();
    let page = decode_list_calls_response(&out[..len]).unwrap();
    assert_eq!((page.len(), page.more, page.next), (0, false, 9));
}

#[test]
fn id_and_counter_responses_round_trip() {
    let mut out = [0u8; 200];
    let len = encode_make_call_response(&mut out, id(CALL)).unwrap();
    assert_eq!(decode_make_call_response(&out[..len]), Ok(CALL));
    let len = encode_add_party_response(&mut out, id(7 << 32 | 9)).unwrap();
    assert_eq!(decode_add_party_response(&out[..len]), Ok(7 << 32 | 9));
    assert_eq!(
        encode_make_call_response(&mut out[..15], id(CALL)),
        Err(IoctlError::BufferTooSmall { needed: 16 })
    );

    let counters = Counters {
        calls_requested: 1,
        lost_actions: 13,
        refused: u64::MAX,
        lists_received: 14,
        lists_returned: 15,
        address_queries: 16,
        address_query_failures: 17,
        ..Counters::default()
    };
    let len = encode_counters_response(&mut out, &counters).unwrap();
    assert_eq!(len, COUNTERS_RESPONSE_LEN);
    assert_eq!(len, 8 + 8 * 17);
    assert_eq!(decode_counters_response(&out[..len]), Ok(counters));
    assert_eq!(
        encode_counters_response(&mut out[..len - 1], &counters),
        Err(IoctlError::BufferTooSmall { needed: len })
    );
    assert_eq!(decode_counters_response(&out[..len - 1]), Err(IoctlError::Response(Malformed::Truncated)));
}

fn all_events() -> Vec<TraceEvent> {
    use partyline_core::engine::Action;
    let (a, b) = (id(0x3_0000_0001), id(0x4_0000_0002));
    let h = Handle(0xFFFF_8000_0000_2000);
    vec![
        TraceEvent::Binding {
            id: a,
            from: Some(BindingState::Open { handle: h }),
            to: BindingState::Unbinding { handle: h },
            cause: Cause::UnbindAdapter,
        },
        TraceEvent::Binding { id: b, from: None, to: BindingState::Opening, cause: Cause::BindAdapter },
        TraceEvent::BindingGone { id: a, status: Status::FAILURE },
        TraceEvent::Operational {
            id: a,
            from: (Operational::Running, false),
            to: (Operational::Pausing, true),
            cause: Cause::SetPower,
        },
        TraceEvent::Af {
            id: a,
            from: Some(AfState::Closing { handle: h }),
            to: AfState::CloseAfPending { handle: h },
            cause: Cause::CloseAf,
        },
        TraceEvent::Af { id: b, from: None, to: AfState::Opening, cause: Cause::AfRegisterNotify },
        TraceEvent::AfGone { id: a, status: Status::SUCCESS },
        TraceEvent::AfIgnored { binding: a, family: 5, major: 4, minor: 0 },
        TraceEvent::Call {
            id: a,
            from: Some(CallState::NeedDelete),
            to: CallState::Deleting,
            cause: Cause::DeleteVc,
        },
        TraceEvent::Call { id: b, from: None, to: CallState::NeedVc, cause: Cause::MakeCallRequest },
        TraceEvent::CallGone { id: a, status: Status::CLOSING },
        TraceEvent::CloseRequested { call: a, reason: CloseReason::Remote(Status::INVALID_STATE) },
        TraceEvent::CloseRequested { call: a, reason: CloseReason::Teardown },
        TraceEvent::IncomingClose { call: a, status: Status::SUCCESS },
        TraceEvent::Party {
            id: b,
            from: Some(PartyState::AddPending { drop_requested: false }),
            to: PartyState::AddPending { drop_requested: true },
            cause: Cause::IncomingDropParty,
        },
        TraceEvent::Party {
            id: b,
            from: Some(PartyState::Connected { handle: h }),
            to: PartyState::DropQueued { handle: h },
            cause: Cause::DropPartyRequest,
        },
        TraceEvent::Party { id: a, from: None, to: PartyState::Queued, cause: Cause::AddPartyRequest },
        TraceEvent::PartyGone { id: b, status: Status::SUCCESS },
        TraceEvent::IncomingDrop { party: b, status: Status::FAILURE },
        TraceEvent::DropDeferred { party: b },
        TraceEvent::Refused {
            kind: ObjectKind::Party,
            id: Some(b),
            error: CoreError::InvalidState(ObjectKind::Party),
        },
        TraceEvent::Refused {
            kind: ObjectKind::Call,
            id: None,
            error: CoreError::NeedMemory(Table::Parties, Exhausted::Directory { len: 12 }),
        },
        TraceEvent::Lost { action: Action::DropParty { party: b, handle: h } },
        TraceEvent::Lost { action: Action::NotifyCloseAfComplete { handle: h } },
    ]
}

#[test]
fn trace_pages_by_sequence_and_never_shows_handles() {
    let events: Vec<(u64, TraceEvent)> =
        all_events().into_iter().enumerate().map(|(i, e)| (100 + i as u64, e)).collect();
    let next_sequence = 100 + events.len() as u64;
    let mut out = [0u8; PAGED_HEADER_LEN + 4 * TRACE_ENTRY_LEN];
    let mut from = 0;
    let mut got = Vec::new();
    loop {
        let pending = events.iter().copied().filter(|(s, _)| *s >= from);
        let len = encode_trace_response(&mut out, next_sequence, pending).unwrap();
        let page = decode_trace_response(&out[..len]).unwrap();
        got.extend(page.iter());
        from = page.next;
        if !page.more {
            break;
        }
    }
    assert_eq!(from, next_sequence);
    let expected: Vec<TraceRecord> =
        events.iter().map(|&(sequence, e)| TraceRecord { sequence, event: e.into() }).collect();
    assert_eq!(got, expected);
    // No handle value appears anywhere in the encoded bytes.
    let len = encode_trace_response(&mut [0u8; 4096], next_sequence, events.iter().copied()).unwrap();
    let mut big = [0u8; 4096];
    encode_trace_response(&mut big, next_sequence, events.iter().copied()).unwrap();
    let needle = 0xFFFF_8000_0000_2000u64.to_le_bytes();
    assert!(!big[..len].windows(8).any(|w| w == needle));
    // Nothing new: the cursor is the driver's next sequence.
    let len = encode_trace_response(&mut out, 555, std::iter::empty()).unwrap();
    assert_eq!(decode_trace_response(&out[..len]).unwrap().next, 555);
}

#[test]
fn malformed_responses_are_refused() {
    let mut out = [0u8; 256];
    let len = encode_list_calls_response(&mut out, 0, [CallEntry { id: 1, af: 2 }].into_iter()).unwrap();
    let good = out[..len].to_vec();
    for cut in 0..len {
        assert!(decode_list_calls_response(&good[..cut]).is_err());
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        decode_list_calls_response(&long).unwrap_err(),
        IoctlError::Response(Malformed::TrailingBytes)
    );
    let mut v = good.clone();
    v[0] = 9;
    assert_eq!(decode_list_calls_response(&v).unwrap_err(), IoctlError::Version { found: 9 });
    let mut flags = good.clone();
    flags[2] = 2;
    assert_eq!(
        decode_list_calls_response(&flags).unwrap_err(),
        IoctlError::Response(Malformed::UnknownValue)
    );
    let mut count = good;
    count[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode_list_calls_response(&count).is_err());
}

// ----- properties -----

fn address() -> impl Strategy<Value = AtmAddress> {
    prop_oneof![
        (prop::sample::select(vec![0x39u8, 0x47, 0x45, 0x49, 0xBD, 0xC5, 0xC3, 0xC7]), any::<[u8; 19]>())
            .prop_map(|(afi, rest)| {
                let mut o = [afi; 20];
                o[1..].copy_from_slice(&rest);
                AtmAddress::nsap(&o).unwrap()
            }),
        prop::collection::vec(b'0'..=b'9', 1..=15).prop_map(|d| AtmAddress::e164(&d).unwrap()),
    ]
}

fn profile() -> impl Strategy<Value = TrafficProfile> {
    (any::<bool>(), 1u32..=1_412_830, 1u32..=65_535).prop_map(|(cbr, peak_cell_rate, max_sdu)| {
        TrafficProfile {
            service: if cbr { ServiceCategory::Cbr } else { ServiceCategory::Ubr },
            peak_cell_rate,
            max_sdu,
        }
    })
}

fn valid_id() -> impl Strategy<Value = u64> {
    (0u32..u32::MAX, 1u32..=u32::MAX)
        .prop_map(|(index, generation)| ((generation as u64) << 32) | (index as u64 + 1))
}

proptest! {
    #[test]
    fn make_call_round_trips(af in valid_id(), profile in profile(), leaves in prop::collection::vec(address(), 1..40)) {
        let input = make_call_bytes(af, &profile, &leaves);
        let request = decode_request(IOCTL_PARTYLINE_MAKE_CALL, &input).unwrap();
        let Request::MakeCall { af: got_af, profile: got_profile, leaves: got } = request else { panic!() };
        prop_assert_eq!(got_af.to_u64(), af);
        prop_assert_eq!(got_profile, profile);
        prop_assert_eq!(got.iter().collect::<Vec<_>>(), leaves.clone());
        prop_assert_eq!(got.get(leaves.len() - 1), leaves.last().copied());
        let mut copy = vec![AtmAddress::e164(b"0").unwrap(); leaves.len()];
        prop_assert_eq!(got.copy_to(&mut copy), leaves.len());
        prop_assert_eq!(copy, leaves);
    }

    #[test]
    fn id_requests_round_trip(value in valid_id(), cursor in any::<u64>(), leaf in address()) {
        let (drop, close) = (encode_drop_party(value), encode_close_call(value));
        let (query, add) = (encode_query_call(value, cursor), encode_add_party(value, &leaf));
        let (list, trace) = (encode_list_bindings(cursor), encode_read_trace(cursor));
        prop_assert_eq!(decode_request(IOCTL_PARTYLINE_DROP_PARTY, &drop), Ok(Request::DropParty { party: id(value) }));
        prop_assert_eq!(decode_request(IOCTL_PARTYLINE_CLOSE_CALL, &close), Ok(Request::CloseCall { call: id(value) }));
        prop_assert_eq!(decode_request(IOCTL_PARTYLINE_QUERY_CALL, &query), Ok(Request::QueryCall { call: id(value), cursor }));
        prop_assert_eq!(decode_request(IOCTL_PARTYLINE_ADD_PARTY, &add), Ok(Request::AddParty { call: id(value), leaf }));
        prop_assert_eq!(decode_request(IOCTL_PARTYLINE_LIST_BINDINGS, &list), Ok(Request::ListBindings { cursor }));
        prop_assert_eq!(decode_request(IOCTL_PARTYLINE_READ_TRACE, &trace), Ok(Request::ReadTrace { from: cursor }));
    }

    #[test]
    fn query_responses_round_trip(
        parties in prop::collection::vec((valid_id(), address(), 0u8..6, any::<bool>()), 0..20),
        room in 0usize..20,
    ) {
        let entries: Vec<PartyEntry> = parties.iter().map(|&(id, address, s, d)| PartyEntry {
            id,
            address,
            state: match s {
                0 => PartyStatus::Queued,
                1 => PartyStatus::AddPending { drop_requested: d },
                2 => PartyStatus::Connected,
                3 => PartyStatus::DropQueued,
                4 => PartyStatus::DropPending,
                _ => PartyStatus::Closing,
            },
        }).collect();
        let summary = CallSummary::new(id(CALL), &call_info());
        let mut out = vec![0u8; PAGED_HEADER_LEN + CALL_BLOCK_LEN + (room + 1) * PARTY_ENTRY_LEN];
        let mut cursor = 0;
        let mut seen = Vec::new();
        loop {
            let len = encode_query_call_response(&mut out, &summary, cursor, entries.iter().copied()).unwrap();
            let (call, page) = decode_query_call_response(&out[..len]).unwrap();
            prop_assert_eq!(call, summary);
            seen.extend(page.iter());
            cursor = page.next;
            if !page.more { break; }
        }
        prop_assert_eq!(seen, entries);
    }

    /// No input, for any code, makes the decoder panic; every refusal has an error status.
    #[test]
    fn decoding_random_bytes_never_panics(
        code_index in 0usize..11,
        raw_code in any::<u32>(),
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        versioned in any::<bool>(),
    ) {
        let code = Ioctl::ALL.get(code_index).map_or(raw_code, |i| i.code());
        let mut bytes = bytes;
        if versioned && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&[1, 0, 0, 0]);
        }
        if let Err(e) = decode_request(code, &bytes) {
            prop_assert!(e.status() < 0);
            prop_assert!(!e.to_string().is_empty());
        }
        let _ = decode_list_bindings_response(&bytes);
        let _ = decode_list_calls_response(&bytes);
        let _ = decode_query_call_response(&bytes);
        let _ = decode_trace_response(&bytes);
        let _ = decode_counters_response(&bytes);
        let _ = decode_make_call_response(&bytes);
        let _ = decode_state_response(&bytes);
    }

    /// Mutating one byte of a valid request either still decodes or is refused; never a panic.
    #[test]
    fn mutated_valid_requests_never_panic(which in 0usize..10, at in any::<prop::sample::Index>(), value in any::<u8>()) {
        let (ioctl, mut input) = valid_inputs().swap_remove(which);
        let i = at.index(input.len());
        input[i] = value;
        let _ = decode_request(ioctl.code(), &input);
    }

    /// Writers never panic on any output size, and what they write decodes.
    #[test]
    fn writers_fit_any_buffer(size in 0usize..300, n in 0u64..10) {
        let mut out = vec![0u8; size];
        let summary = CallSummary::new(id(CALL), &call_info());
        if let Ok(len) = encode_query_call_response(&mut out, &summary, 0, parties(n).into_iter()) {
            prop_assert!(decode_query_call_response(&out[..len]).is_ok());
        }
        let events: Vec<_> = all_events().into_iter().enumerate().map(|(i, e)| (i as u64, e)).collect();
        match encode_trace_response(&mut out, 50, events.into_iter()) {
            Ok(len) => prop_assert!(decode_trace_response(&out[..len]).is_ok()),
            Err(IoctlError::BufferTooSmall { needed }) => prop_assert!(needed > size),
            Err(e) => prop_assert!(false, "{e:?}"),
        }
        let _ = encode_counters_response(&mut out, &Counters::default());
    }
}

fn census() -> partyline_core::Census {
    use partyline_core::census::{Census, TableCensus, WorkCensus};
    let mut census = Census {
        work: WorkCensus { calls: 1, afs: 2, parties: 3, deferred: 4 },
        refused: 0,
        lost_actions: 5,
        drop_failures: 6,
        close_failures: 7,
        delete_failures: 8,
        ..Census::default()
    };
    for (i, t) in census.tables.iter_mut().enumerate() {
        let i = i as u32;
        *t = TableCensus { live: 100 + i, chunks: 10 + i, directory: 4 << i, slot_bytes: 48 + i };
    }
    let mut n = 0;
    for cell in census.refusals.counts.iter_mut().flatten() {
        n += 1;
        *cell = n * 1000 + n;
    }
    census.refused = census.refusals.total();
    census
}

/// READ_STATE: the census goes over the wire and comes back the same; its input is the bare
/// header, and every malformed answer (short, long, another version, another shape, flags) is
/// refused with its reason.
#[test]
fn state_round_trips_and_malformed_answers_are_refused() {
    assert_eq!(decode_request(IOCTL_PARTYLINE_READ_STATE, &encode_read_state()), Ok(Request::ReadState));
    assert_eq!(
        decode_request(IOCTL_PARTYLINE_READ_STATE, &[1, 0, 0, 0, 0]),
        Err(IoctlError::InputLength { expected: 4, actual: 5 })
    );
    assert_eq!(
        decode_request(IOCTL_PARTYLINE_READ_STATE, &[2, 0, 0, 0]).map_err(|e| e.status()),
        Err(STATUS_REVISION_MISMATCH)
    );
    assert_eq!(Ioctl::ReadState.required_access(), FILE_READ_ACCESS, "anyone may look");
    let census = census();
    let mut out = vec![0u8; STATE_RESPONSE_LEN + 10];
    assert_eq!(encode_state_response(&mut out, &census), Ok(STATE_RESPONSE_LEN));
    out.truncate(STATE_RESPONSE_LEN);
    assert_eq!(STATE_RESPONSE_LEN, 288);
    assert_eq!(decode_state_response(&out), Ok(census));
    assert_eq!(
        encode_state_response(&mut [0u8; 100], &census),
        Err(IoctlError::BufferTooSmall { needed: STATE_RESPONSE_LEN })
    );
    let malformed = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = out.clone();
        patch(&mut bytes);
        decode_state_response(&bytes)
    };
    assert_eq!(
        malformed(&|b| b.truncate(STATE_RESPONSE_LEN - 1)),
        Err(IoctlError::Response(Malformed::Truncated))
    );
    assert_eq!(malformed(&|b| b.truncate(2)), Err(IoctlError::Response(Malformed::Truncated)));
    assert_eq!(malformed(&|b| b.push(0)), Err(IoctlError::Response(Malformed::TrailingBytes)));
    assert_eq!(malformed(&|b| b[0] = 9), Err(IoctlError::Version { found: 9 }));
    assert_eq!(malformed(&|b| b[2] = 1), Err(IoctlError::Response(Malformed::UnknownValue)));
    for shape in 4..8 {
        assert_eq!(
            malformed(&|b| b[shape] ^= 1),
            Err(IoctlError::Response(Malformed::UnknownValue)),
            "{shape}"
        );
    }
}
