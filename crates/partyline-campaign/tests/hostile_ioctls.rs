//! Hostile control input as a property test (issue #5): any sequence of malformed, truncated,
//! oversized, unknown-code and stale-id IOCTLs sent to the real partyline.sys is refused with
//! exactly the status `partyline_ioctl::decode_request` gives (or, when well-formed, answered
//! with success or an error status); afterwards every listed call can still be queried, a valid
//! call still connects, and the unload finds no leak and no broken rule.

use partyline_campaign::bench::{leaf, Bench};
use partyline_campaign::{send_hostile, still_consistent};
use partyline_ioctl::{self as ioctl, Ioctl};
use proptest::prelude::*;

/// How one input is built from a well-formed request.
#[derive(Clone, Debug)]
enum Mangle {
    None,
    Truncate(usize),
    Extend(Vec<u8>),
    FlipBit(usize, u8),
    Replace(Vec<u8>),
    OtherFunction(u16),
    FlipCodeBit(u8),
}

#[derive(Clone, Debug)]
struct Input {
    ioctl: usize,
    /// Which id the request names: an index among the ids known (live, dropped, closed), or a
    /// raw value (0, random).
    id: Result<usize, u64>,
    small: u64,
    mangle: Mangle,
    output_len: usize,
}

fn mangle() -> impl Strategy<Value = Mangle> {
    prop_oneof![
        3 => Just(Mangle::None),
        2 => (0usize..64).prop_map(Mangle::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..80).prop_map(Mangle::Extend),
        2 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mangle::FlipBit(at, bit)),
        1 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Mangle::Replace),
        1 => (0u16..32).prop_map(Mangle::OtherFunction),
        1 => (0u8..32).prop_map(Mangle::FlipCodeBit),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    (
        0usize..Ioctl::ALL.len(),
        prop_oneof![3 => any::<usize>().prop_map(Ok), 1 => prop_oneof![Just(0u64), any::<u64>()].prop_map(Err)],
        0u64..60,
        mangle(),
        prop_oneof![Just(0usize), Just(1), Just(3), Just(16), Just(63), Just(4096), Just(1 << 16)],
    )
        .prop_map(|(ioctl, id, small, mangle, output_len)| Input { ioctl, id, small, mangle, output_len })
}

fn build(input: &Input, ids: &[u64], af: u64) -> (u32, Vec<u8>) {
    let id = match input.id {
        Ok(index) if !ids.is_empty() => ids[index % ids.len()],
        Ok(_) => 1,
        Err(raw) => raw,
    };
    let which = Ioctl::ALL[input.ioctl];
    let mut code = which.code();
    let mut bytes = match which {
        Ioctl::ListBindings => ioctl::request::encode_list_bindings(input.small % 4).to_vec(),
        Ioctl::ListCalls => ioctl::request::encode_list_calls(input.small % 4).to_vec(),
        Ioctl::MakeCall => {
            let leaves: Vec<_> = (0..1 + input.small % 4).map(|n| leaf(1 + n as u8)).collect();
            let mut bytes = vec![0u8; ioctl::request::make_call_len(leaves.len())];
            let af = if input.small.is_multiple_of(2) { af } else { id };
            let _ = ioctl::request::encode_make_call(
                &mut bytes,
                af,
                &partyline_core::TrafficProfile::DEFAULT,
                &leaves,
            );
            bytes
        }
        Ioctl::AddParty => ioctl::request::encode_add_party(id, &leaf(1 + (input.small % 10) as u8)).to_vec(),
        Ioctl::DropParty => ioctl::request::encode_drop_party(id).to_vec(),
        Ioctl::CloseCall => ioctl::request::encode_close_call(id).to_vec(),
        Ioctl::QueryCall => ioctl::request::encode_query_call(id, input.small % 3).to_vec(),
        Ioctl::ReadCounters => ioctl::request::encode_read_counters().to_vec(),
        Ioctl::ReadTrace => ioctl::request::encode_read_trace(input.small).to_vec(),
        Ioctl::ReadState => ioctl::request::encode_read_state().to_vec(),
    };
    match &input.mangle {
        Mangle::None => {}
        Mangle::Truncate(len) => bytes.truncate(*len),
        Mangle::Extend(more) => bytes.extend(more),
        Mangle::FlipBit(at, bit) => {
            let len = bytes.len();
            if len > 0 {
                bytes[at % len] ^= 1 << bit;
            }
        }
        Mangle::Replace(other) => bytes = other.clone(),
        Mangle::OtherFunction(function) => code = (code & !(0xFFF << 2)) | (u32::from(0x800 + function) << 2),
        Mangle::FlipCodeBit(bit) => code ^= 1 << bit,
    }
    (code, bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn hostile_ioctls_are_refused_with_their_status_and_leave_the_driver_consistent(
        seed in 1u64..1_000,
        inputs in proptest::collection::vec(input(), 1..60),
        drains in proptest::collection::vec(any::<bool>(), 60),
    ) {
        let mut bench = Bench::new(seed, 2, ndis_sim::ndis::FaultPolicy::default(), &[]);
        prop_assert!(bench.loaded());
        let af = bench.af().unwrap_or(0);
        // A live call, a dropped party and a closed call, whose ids the inputs reuse.
        let live = bench.make_call(af, &[leaf(1), leaf(2), leaf(3)]);
        bench.drain();
        if let Some((_, parties)) = live.and_then(|call| bench.query(call)) {
            bench.drop_party(parties[parties.len() - 1]);
        }
        if let Some(closed) = bench.make_call(af, &[leaf(4)]) {
            bench.drain();
            bench.close_call(closed);
        }
        bench.drain();
        for (input, drain) in inputs.iter().zip(&drains) {
            let mut ids: Vec<u64> = bench.calls.iter().chain(&bench.parties).copied().collect();
            ids.push(af);
            let (code, bytes) = build(input, &ids, af);
            let sent = send_hostile(&mut bench, code, &bytes, input.output_len);
            prop_assert!(sent.is_ok(), "{}", sent.unwrap_err());
            if *drain {
                bench.drain();
            }
        }
        bench.drain();
        prop_assert!(bench.ioctls > inputs.len() as u64, "every input reached the I/O manager");
        let problems = still_consistent(&mut bench);
        prop_assert!(problems.is_empty(), "{problems:?}");
        let verdict = bench.finish();
        prop_assert!(verdict.is_clean(), "{verdict:?}");
    }
}
