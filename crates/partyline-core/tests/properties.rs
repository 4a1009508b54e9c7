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

use partyline_core::{Id, Status};
use proptest::prelude::*;
use support::{leaf, lend, profile, Fake, Meanwhile, Policy};

#[derive(Clone, Debug)]
enum Op {
    MakeCall { leaves: u8 },
    AddParty { pick: u64 },
    DropParty { pick: u64 },
    CloseCall { pick: u64 },
    Deliver { pick: u64 },
    DeliverRacingRemoteEvent { pick: u64, remote: u64 },
    RemoteDrop { pick: u64 },
    RemoteClose { pick: u64, failure: bool },
    NotifyCloseAf,
    ReopenAf,
    DuringVcRequest(DuringVcRequest),
}

/// A CLOSE_CALL (even `pick`: of the call whose VC request is in flight; odd: of a call picked
/// then) and, with `make`, a MAKE_CALL arrive while the next NdisCoDeleteVc (with `delete`) or
/// the next NdisCoCreateVc or NdisCoDeleteVc is in flight; a NdisCoCreateVc they interrupt fails
/// with `fail`.
#[derive(Clone, Debug)]
struct DuringVcRequest {
    pick: u64,
    make: bool,
    delete: bool,
    fail: bool,
}

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
        2 => (any::<u64>(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(pick, make, delete, fail)| Op::DuringVcRequest(DuringVcRequest { pick, make, delete, fail })),
    ]
}

/// Runs an engine request, lending memory as often as it asks (as `Fake::with_memory`).
fn with_memory<T>(
    engine: &mut partyline_core::Engine,
    mut request: impl FnMut(&mut partyline_core::Engine) -> Result<T, partyline_core::Error>,
) -> Result<T, partyline_core::Error> {
    loop {
        match request(engine) {
            Err(partyline_core::Error::NeedMemory(table, need)) => lend(engine, table, need),
            other => return other,
        }
    }
}

fn pick<T: Copy>(items: &[T], pick: u64) -> Option<T> {
    (!items.is_empty()).then(|| items[(pick % items.len() as u64) as usize])
}

fn run(seed: u64, ops: &[Op], end_with_unbind: bool) -> Result<(), TestCaseError> {
    let mut fake = Fake::new(Policy::new(seed));
    let (binding, first_af) = fake.open_binding();
    let mut af: Option<Id> = Some(first_af);
    let mut next_leaf = 1u32;
    for (step, op) in ops.iter().enumerate() {
        let calls: Vec<Id> = fake.engine.calls().map(|(c, _)| c).collect();
        match op {
            Op::MakeCall { leaves } => {
                if let Some(af) = af {
                    let addresses: Vec<_> = (0..*leaves).map(|i| leaf(next_leaf + i as u32)).collect();
                    next_leaf += *leaves as u32;
                    let _ = fake.with_memory(|e| e.make_call(af, profile(), addresses.iter().copied()));
                    fake.settle();
                }
            }
            Op::AddParty { pick: p } => {
                if let Some(call) = pick(&calls, *p) {
                    next_leaf += 1;
                    let _ = fake.with_memory(|e| e.add_party(call, leaf(next_leaf)));
                    fake.settle();
                }
            }
            Op::DropParty { pick: p } => {
                // Listed parties plus those with a request in flight (known to the call manager).
                let mut parties: Vec<Id> = calls.iter().flat_map(|&c| fake.engine.parties_of(c)).collect();
                parties.extend(fake.vcs.values().flat_map(|v| v.parties.values().map(|(_, id)| *id)));
                if let Some(party) = pick(&parties, *p) {
                    let _ = fake.engine.drop_party(party);
                    fake.settle();
                }
            }
            Op::CloseCall { pick: p } => {
                if let Some(call) = pick(&calls, *p) {
                    let _ = fake.engine.close_call(call);
                    fake.settle();
                }
            }
            Op::Deliver { pick: p } => fake.deliver_one(*p as usize),
            Op::DeliverRacingRemoteEvent { pick: p, remote } => {
                fake.deliver_racing_remote_event(*p as usize, *remote)
            }
            Op::RemoteDrop { pick: p } => fake.remote_drop(*p),
            Op::RemoteClose { pick: p, failure } => {
                let status =
                    if *failure { Status(ndis_sys::NDIS_STATUS_DEST_OUT_OF_ORDER) } else { Status::SUCCESS };
                fake.remote_close(*p, status);
            }
            Op::NotifyCloseAf => {
                if let Some(current) = af.take() {
                    fake.notify_close_af(current);
                }
            }
            Op::DuringVcRequest(DuringVcRequest { pick: p, make, delete, fail }) => {
                let (p, af, address) = (*p, af.filter(|_| *make), leaf(next_leaf));
                next_leaf += 1;
                let requests = move |engine: &mut partyline_core::Engine, in_flight: Id| {
                    let calls: Vec<Id> = engine.calls().map(|(c, _)| c).collect();
                    let close = if p % 2 == 0 { Some(in_flight) } else { pick(&calls, p / 2) };
                    if let Some(call) = close {
                        let _ = engine.close_call(call);
                    }
                    if let Some(af) = af {
                        let _ = with_memory(engine, |e| e.make_call(af, profile(), [address]));
                    }
                };
                fake.meanwhile = Some(Meanwhile {
                    delete_only: *delete,
                    fail_create: *fail,
                    requests: Box::new(requests),
                });
            }
            Op::ReopenAf => {
                if af.is_none() {
                    let opened = fake.with_memory(|e| e.on_af_register_notify(binding, 1, 3, 1));
                    if let Ok(new_af) = opened {
                        let handle = 0x7000_0000 + step;
                        fake.afs.insert(handle, (new_af, false, false));
                        fake.engine
                            .on_open_af_complete(new_af, Status::SUCCESS, partyline_core::Handle(handle))
                            .expect("open");
                        af = Some(new_af);
                    }
                }
            }
        }
        fake.check_consistency();
        prop_assert!(fake.violations.is_empty(), "step {step} {op:?}: {:#?}", fake.violations);
    }
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
