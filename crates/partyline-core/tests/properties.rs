//! Property tests: random sequences of local requests, request outcomes (the four ways a request
//! ends), remote drops and releases, close-AF and unbind, with invariants checked after every
//! step against the rule-checking fake call manager:
//! - parties are dropped before the close, and the close carries the last party
//!   (nf-ndis-ndisclclosecall);
//! - no party handle is used after its drop (nf-ndis-ndiscldropparty);
//! - every pending request gets exactly one completion (the fake delivers each once and the
//!   engine refuses a second);
//! - counts never go negative and match the call manager's;
//! - nothing leaks at teardown;
//! - requests that arrive while a synchronous request (`NdisCoCreateVc`, `NdisCoDeleteVc`) is in
//!   flight, as they do on other processors, are worked on like any other.

mod support;

use partyline_core::Id;
use proptest::prelude::*;
use support::ops::{Driver, DuringVcRequest, Op};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..6).prop_map(|leaves| Op::MakeCall { leaves }),
        4 => any::<u64>().prop_map(|pick| Op::AddParty { pick }),
        4 => any::<u64>().prop_map(|pick| Op::DropParty { pick }),
        1 => any::<u64>().prop_map(|pick| Op::CloseCall { pick }),
        6 => any::<u64>().prop_map(|pick| Op::Deliver { pick }),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(pick, remote)| Op::DeliverRacingRemoteEvent { pick, remote }),
        2 => any::<u64>().prop_map(|pick| Op::RemoteDrop { pick }),
        1 => (any::<u64>(), any::<bool>()).prop_map(|(pick, failure)| Op::RemoteClose { pick, failure }),
        1 => Just(Op::NotifyCloseAf),
        1 => Just(Op::ReopenAf),
        1 => (any::<bool>(), 0u8..4).prop_map(|(new, failing)| Op::AddressChange { new, failing }),
        2 => (any::<u64>(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(pick, make, delete, fail)| Op::DuringVcRequest(DuringVcRequest { pick, make, delete, fail })),
    ]
}

fn run(seed: u64, ops: &[Op], end_with_unbind: bool) -> Result<(), TestCaseError> {
    let mut driver = Driver::new(seed);
    for (step, op) in ops.iter().enumerate() {
        driver.apply(step, op);
        let fake = &mut driver.fake;
        fake.check_consistency();
        prop_assert!(fake.violations.is_empty(), "step {step} {op:?}: {:#?}", fake.violations);
    }
    let binding = driver.binding;
    let fake = &mut driver.fake;
    // Requests still waiting for a VC request to interject in are not made (the teardown below
    // closes the calls it knows).
    fake.meanwhile = None;
    // Everything owed is delivered exactly once; then the binding goes (or every call closes).
    fake.deliver_all();
    if end_with_unbind {
        fake.unbind(binding);
        prop_assert_eq!(fake.engine.population(), [0, 0, 0, 0], "leak at unbind");
        prop_assert!(fake.engine.census().is_empty(), "work left at unbind: {:?}", fake.engine.census());
        prop_assert!(fake.vcs.is_empty(), "VCs left in the call manager: {}", fake.vcs.len());
    } else {
        let calls: Vec<Id> = fake.engine.calls().map(|(c, _)| c).collect();
        for call in calls {
            let _ = fake.engine.close_call(call);
            fake.settle();
            fake.deliver_all();
        }
        prop_assert_eq!(&fake.engine.population()[2..], &[0, 0], "leak after closing every call");
    }
    prop_assert!(fake.owed.is_empty());
    fake.check_consistency();
    prop_assert!(fake.violations.is_empty(), "{:#?}", fake.violations);
    prop_assert_eq!(fake.engine.counters.lost_actions, 0);
    prop_assert_eq!(fake.engine.refusals.total(), fake.engine.counters.refused, "the split adds up");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_rule_and_leak_nothing(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..120),
        end_with_unbind in any::<bool>(),
    ) {
        run(seed, &ops, end_with_unbind)?;
    }
}
