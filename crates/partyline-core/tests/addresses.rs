//! The AF's own address, the calling party of every SETUP and ADD PARTY, learned the documented
//! way: network/oid-co-address-change (sent right after the open and on every switch address
//! change; the client must then query), network/oid-co-get-addresses, nf-ndis-ndiscooidrequest
//! (recoverable failures are resubmitted), atm-call-params.md §3 (CallingParty: the client's own
//! registered ATM address). The fake call manager flags any SETUP or ADD PARTY whose calling party
//! is not its registered address.

mod support;

use partyline_core::engine::MAX_ATTEMPTS;
use partyline_core::{Action, Id, Status};
use support::{leaf, own_address, profile, Fake, Owed, Policy};

fn synchronous() -> Fake {
    Fake::new(Policy::synchronous())
}

fn pending() -> Fake {
    let mut policy = Policy::synchronous();
    policy.pending = 1000;
    Fake::new(policy)
}

fn make_call(fake: &mut Fake, af: Id, leaves: u32) -> Id {
    let leaves: Vec<_> = (1..=leaves).map(leaf).collect();
    let call = fake.with_memory(|e| e.make_call(af, profile(), leaves.iter().copied())).expect("make call");
    fake.settle();
    call
}

fn count(fake: &Fake, what: fn(&Action) -> bool) -> usize {
    fake.requests.iter().filter(|a| what(a)).count()
}

fn assert_clean(fake: &mut Fake) {
    fake.check_consistency();
    assert!(fake.violations.is_empty(), "violations: {:#?}", fake.violations);
}

/// A call asked for right after the bind, before the call manager told the AF its address, is
/// held (no VC, nothing reaches NDIS) and made, from the right calling party, once the address
/// is known.
#[test]
fn a_call_before_the_address_is_known_waits_for_it_and_then_carries_it() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding_without_address();
    let call = make_call(&mut fake, af, 2);
    assert!(fake.requests.is_empty(), "nothing reaches NDIS before the address: {:?}", fake.requests);
    fake.engine.on_address_change(af).expect("address change");
    fake.settle();
    assert!(matches!(fake.requests[0], Action::QueryAddresses { .. }), "{:?}", fake.requests);
    let Some(Action::MakeCall { calling, .. }) =
        fake.requests.iter().find(|a| matches!(a, Action::MakeCall { .. })).copied()
    else {
        panic!("the held call was made: {:?}", fake.requests);
    };
    assert_eq!(calling, own_address(1));
    assert_eq!(fake.engine.call_info(call).expect("call").connected, 2);
    assert_eq!(fake.engine.counters.address_queries, 1);
    assert_clean(&mut fake);
}

/// oid-co-address-change: a change of switch address is announced again; the client queries and
/// every later SETUP and ADD PARTY carries the new address.
#[test]
fn after_an_address_change_new_requests_carry_the_new_address() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 1);
    fake.local_address = own_address(2);
    fake.engine.on_address_change(af).expect("address change");
    fake.settle();
    assert_eq!(fake.engine.local_address(af), Some(own_address(2)));
    fake.engine.add_party(call, leaf(9)).expect("add party");
    fake.settle();
    let Some(Action::AddParty { calling, .. }) = fake.requests.last().copied() else {
        panic!("AddParty last: {:?}", fake.requests)
    };
    assert_eq!(calling, own_address(2));
    assert_clean(&mut fake);
}

/// A second change while the query is out: its answer may be the old address, so the AF asks
/// again when it completes, and keeps the newest answer.
#[test]
fn a_change_while_the_query_is_out_is_queried_again() {
    let mut fake = pending();
    let (_, af) = fake.open_binding_without_address();
    fake.engine.on_address_change(af).expect("first change");
    fake.settle();
    assert_eq!(fake.owed.len(), 1, "the query pends");
    fake.engine.on_address_change(af).expect("second change while the query is out");
    fake.settle();
    assert_eq!(count(&fake, |a| matches!(a, Action::QueryAddresses { .. })), 1, "one query at a time");
    fake.local_address = own_address(3);
    // The first answer (made before the second change) carries the old address.
    let Owed::Addresses { af: owed_af, epoch, .. } = fake.owed[0] else { panic!("{:?}", fake.owed) };
    fake.owed[0] =
        Owed::Addresses { af: owed_af, status: Status::SUCCESS, address: Some(own_address(1)), epoch };
    fake.deliver_one(0);
    assert_eq!(count(&fake, |a| matches!(a, Action::QueryAddresses { .. })), 2, "asked again");
    assert_eq!(fake.engine.local_address(af), None, "the stale answer was not taken");
    fake.deliver_all();
    assert_eq!(fake.engine.local_address(af), Some(own_address(3)));
    assert_clean(&mut fake);
}

/// nf-ndis-ndiscooidrequest: NDIS_STATUS_RESOURCES is recoverable; the query is resubmitted, and
/// a passing shortage costs nothing but a retry.
#[test]
fn a_failed_query_is_retried() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding_without_address();
    let call = make_call(&mut fake, af, 1);
    fake.failing_queries = u32::from(MAX_ATTEMPTS) - 1;
    fake.engine.on_address_change(af).expect("address change");
    fake.settle();
    assert_eq!(fake.engine.counters.address_queries, u64::from(MAX_ATTEMPTS));
    assert_eq!(fake.engine.counters.address_query_failures, 0);
    assert_eq!(fake.engine.call_info(call).expect("call").connected, 1);
    assert_clean(&mut fake);
}

/// After MAX_ATTEMPTS failures the AF has no address: calls held for it, and calls asked for
/// later, fail with NDIS_STATUS_INVALID_ADDRESS (never a SETUP with a made-up calling party, never
/// a call waiting forever); the next change starts over.
#[test]
fn queries_that_keep_failing_fail_the_held_calls_until_the_next_change() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding_without_address();
    let held = make_call(&mut fake, af, 1);
    fake.failing_queries = u32::from(MAX_ATTEMPTS);
    fake.engine.on_address_change(af).expect("address change");
    fake.settle();
    assert!(fake.engine.call_info(held).is_none(), "the held call failed");
    assert_eq!(fake.engine.counters.address_query_failures, 1);
    assert_eq!(fake.engine.counters.calls_failed, 1);
    let later = make_call(&mut fake, af, 1);
    assert!(fake.engine.call_info(later).is_none(), "a new call fails too");
    assert_eq!(count(&fake, |a| matches!(a, Action::CreateVc { .. })), 0, "no VC was ever created");
    fake.engine.on_address_change(af).expect("the next change");
    fake.settle();
    let call = make_call(&mut fake, af, 1);
    assert_eq!(fake.engine.call_info(call).expect("call").connected, 1, "works again");
    assert_clean(&mut fake);
}

/// nf-ndis-ndiscooidrequest: too small a buffer is answered NDIS_STATUS_INVALID_LENGTH (or
/// BUFFER_TOO_SHORT) with BytesNeeded; the query is resubmitted with that length.
#[test]
fn a_too_short_buffer_is_asked_again_with_the_bytes_needed() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding_without_address();
    fake.engine.on_address_change(af).expect("address change");
    let Some(Action::QueryAddresses { length, .. }) = fake.engine.poll() else { panic!("query") };
    let needed = length + 32;
    let too_short = Status(ndis_sys::NDIS_STATUS_INVALID_LENGTH);
    fake.engine.on_addresses_queried(af, too_short, None, needed).expect("too short");
    let Some(Action::QueryAddresses { length: again, .. }) = fake.engine.poll() else {
        panic!("asked again")
    };
    assert_eq!(again, needed);
    fake.engine.on_addresses_queried(af, Status::SUCCESS, Some(own_address(1)), 0).expect("answered");
    assert_eq!(fake.engine.local_address(af), Some(own_address(1)));
}

/// The AF's close waits for a query that is out: its completion names the AF's context, which
/// must still be valid (nc-ndis-protocol_co_oid_request_complete); then the AF closes.
#[test]
fn the_af_closes_only_after_its_query_completes() {
    let mut fake = pending();
    let (binding, af) = fake.open_binding_without_address();
    fake.engine.on_address_change(af).expect("address change");
    fake.settle();
    assert!(matches!(fake.owed[..], [Owed::Addresses { .. }]));
    fake.engine.unbind(binding).expect("unbind");
    fake.settle();
    assert_eq!(count(&fake, |a| matches!(a, Action::CloseAf { .. })), 0, "the close waits for the query");
    fake.deliver_all();
    assert_eq!(count(&fake, |a| matches!(a, Action::CloseAf { .. })), 1, "then the AF closes");
    assert!(fake.engine.binding_quiet(binding));
    fake.engine.begin_close_adapter(binding).expect("close adapter");
    fake.engine.on_close_adapter_complete(binding).expect("adapter closed");
    assert_eq!(fake.engine.population(), [0, 0, 0, 0]);
    assert_clean(&mut fake);
}

/// A call held for an address that never comes does not hold up the unbind: it never reached
/// NDIS and is released with the AF.
#[test]
fn a_call_held_for_an_address_is_released_at_unbind() {
    let mut fake = synchronous();
    let (binding, af) = fake.open_binding_without_address();
    let call = make_call(&mut fake, af, 3);
    fake.unbind(binding);
    assert!(fake.engine.call_info(call).is_none());
    assert_eq!(fake.engine.population(), [0, 0, 0, 0]);
    assert_eq!(count(&fake, |a| matches!(a, Action::CreateVc { .. })), 0);
    assert_clean(&mut fake);
}

/// A change announced while the open is still completing (the call manager's side finished
/// first) is queried as soon as the AF is open.
#[test]
fn a_change_before_the_open_completes_is_queried_once_open() {
    let mut fake = synchronous();
    let binding = fake.with_memory(|e| e.bind(7)).expect("bind");
    fake.engine
        .on_open_adapter_complete(binding, Status::SUCCESS, partyline_core::Handle(0x10))
        .expect("open");
    let af = fake.with_memory(|e| e.on_af_register_notify(binding, 1, 3, 1)).expect("af");
    fake.engine.on_address_change(af).expect("change while opening");
    assert_eq!(fake.engine.poll(), None, "nothing while the open is pending");
    fake.afs.insert(0x20, (af, false, false));
    fake.engine.on_open_af_complete(af, Status::SUCCESS, partyline_core::Handle(0x20)).expect("opened");
    fake.settle();
    assert_eq!(fake.engine.local_address(af), Some(own_address(1)));
    assert_clean(&mut fake);
}

/// An AF that knew its address keeps calling from it when the queries after a later change all
/// fail (counted): a passing failure to learn the new one does not stop every new call.
#[test]
fn failed_queries_after_a_change_keep_the_last_known_address() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    fake.failing_queries = u32::from(MAX_ATTEMPTS);
    fake.engine.on_address_change(af).expect("address change");
    fake.settle();
    assert_eq!(fake.engine.counters.address_query_failures, 1);
    assert_eq!(fake.engine.local_address(af), Some(own_address(1)));
    let call = make_call(&mut fake, af, 2);
    assert_eq!(fake.engine.call_info(call).expect("call").connected, 2);
    assert_clean(&mut fake);
}

/// Every call held for the address is made once it is known, not only the first of the AF's
/// calls (they are woken by a walk over the AF's open calls).
#[test]
fn every_call_held_for_the_address_goes_on_when_it_arrives() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding_without_address();
    let calls: Vec<Id> = (0..3).map(|_| make_call(&mut fake, af, 2)).collect();
    assert!(fake.requests.is_empty(), "held: {:?}", fake.requests);
    fake.engine.on_address_change(af).expect("address change");
    fake.settle();
    for call in calls {
        assert_eq!(fake.engine.call_info(call).map(|c| c.connected), Some(2), "{call:?}");
    }
    assert_clean(&mut fake);
}

/// oid-co-address-change: the call manager may announce a change whenever the AF is open in
/// NDIS, so one that crosses the AF's close (the unbind closing it) is declined with
/// NDIS_STATUS_CLOSING, nothing is queried, and it is not counted as a refusal of an invalid
/// event (the 10^6-seed run: low-resources seed 6663, schedule seed 72252).
#[test]
fn a_change_that_crosses_the_close_is_declined_not_refused() {
    let mut fake = pending();
    let (binding, af) = fake.open_binding();
    fake.engine.unbind(binding).expect("unbind");
    let refused = fake.engine.counters.refused;
    assert_eq!(fake.engine.on_address_change(af), Err(partyline_core::Error::Closing));
    assert_eq!(fake.engine.counters.refused, refused, "a crossing, not a refusal");
    fake.settle();
    assert_eq!(count(&fake, |a| matches!(a, Action::QueryAddresses { .. })), 0, "nothing to learn");
}
