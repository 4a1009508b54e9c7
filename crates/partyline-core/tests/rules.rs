//! One test per documented NDIS rule the engine relies on, each citing its Microsoft Learn page
//! (https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/<page> or .../network/<page>).

mod support;

use partyline_core::engine::{CallState, PartyState};
use partyline_core::{Action, Error, Handle, Id, Operational, Status, TrafficProfile};
use support::{leaf, profile, Fake, Outcome, Owed, Policy};

fn synchronous() -> Fake {
    Fake::new(Policy::synchronous())
}

fn all(outcome: Outcome) -> Fake {
    let mut policy = Policy::synchronous();
    match outcome {
        Outcome::Pending => policy.pending = 1000,
        Outcome::CompleteBeforeReturn => policy.early = 1000,
        Outcome::SyncFailure => policy.failure = 1000,
        Outcome::SyncSuccess => {}
    }
    Fake::new(policy)
}

fn make_call(fake: &mut Fake, af: Id, leaves: u32) -> Id {
    let leaves: Vec<_> = (1..=leaves).map(leaf).collect();
    let call = fake.with_memory(|e| e.make_call(af, profile(), leaves.iter().copied())).expect("make call");
    fake.settle();
    call
}

fn parties(fake: &Fake, call: Id) -> Vec<Id> {
    fake.engine.parties_of(call).collect()
}

fn kinds(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .map(|a| match a {
            Action::CreateVc { .. } => "CreateVc",
            Action::MakeCall { .. } => "MakeCall",
            Action::AddParty { .. } => "AddParty",
            Action::DropParty { .. } => "DropParty",
            Action::CloseCall { .. } => "CloseCall",
            Action::DeleteVc { .. } => "DeleteVc",
            Action::CloseAf { .. } => "CloseAf",
            Action::NotifyCloseAfComplete { .. } => "NotifyCloseAfComplete",
            Action::BindingQuiet { .. } => "BindingQuiet",
            Action::UnbindAdapter { .. } => "UnbindAdapter",
            Action::QueryAddresses { .. } => "QueryAddresses",
        })
        .collect()
}

fn assert_clean(fake: &mut Fake) {
    fake.check_consistency();
    assert!(fake.violations.is_empty(), "violations: {:#?}", fake.violations);
}

/// nf-ndis-ndisclmakecall, network/adding-a-party-to-a-multipoint-call: a multipoint call is made
/// with a party context on a VC the client created; further parties are added only once the
/// call is up.
#[test]
fn multipoint_call_creates_vc_makes_call_then_adds_each_further_leaf() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 3);
    assert_eq!(kinds(&fake.requests), ["CreateVc", "MakeCall"], "no AddParty before MakeCall completes");
    fake.deliver_all();
    assert_eq!(kinds(&fake.requests), ["CreateVc", "MakeCall", "AddParty", "AddParty"]);
    let info = fake.engine.call_info(call).expect("call");
    assert_eq!((info.state, info.connected, info.adding), (CallState::Active, 3, 0));
    assert_clean(&mut fake);
}

/// nf-ndis-ndisclclosecall, network/client-initiated-request-to-close-a-call: drop every party
/// but one with NdisClDropParty, then NdisClCloseCall with the last party's handle, then
/// NdisCoDeleteVc (nf-ndis-ndiscodeletevc).
#[test]
fn close_drops_all_but_one_party_then_closes_with_the_last_then_deletes_the_vc() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 4);
    fake.requests.clear();
    fake.engine.close_call(call).expect("close");
    fake.settle();
    assert_eq!(kinds(&fake.requests), ["DropParty", "DropParty", "DropParty", "CloseCall", "DeleteVc"]);
    let Some(Action::CloseCall { party: Some((last, _)), .. }) = fake.requests.get(3).copied() else {
        panic!("the close carries the last party: {:?}", fake.requests);
    };
    assert!(fake.requests[..3]
        .iter()
        .all(|a| !matches!(a, Action::DropParty { party, .. } if *party == last)));
    assert!(fake.engine.call_info(call).is_none(), "the call is gone");
    assert_eq!(fake.engine.population()[3], 0, "every party context released");
    assert_clean(&mut fake);
}

/// nf-ndis-ndiscldropparty: parties may be dropped in any order, and the party handed to
/// NdisClCloseCall can be any remaining one (here the first leaf is dropped first, and a later
/// leaf closes the call).
#[test]
fn parties_drop_in_any_order_and_any_party_can_carry_the_close() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 3);
    let ids = parties(&fake, call);
    fake.engine.drop_party(ids[0]).expect("drop the MakeCall party");
    fake.settle();
    fake.engine.drop_party(ids[2]).expect("drop the last added");
    fake.settle();
    fake.requests.clear();
    fake.engine.close_call(call).expect("close");
    fake.settle();
    assert_eq!(kinds(&fake.requests), ["CloseCall", "DeleteVc"]);
    assert!(matches!(fake.requests[0], Action::CloseCall { party: Some((p, _)), .. } if p == ids[1]));
    assert_clean(&mut fake);
}

/// Issue #3: a close requested while drops are pending waits, and the final close is issued when
/// the last drop completes (NdisClCloseCall fails while a DropParty is pending).
#[test]
fn close_requested_while_drops_pend_waits_for_the_last_drop() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 3);
    fake.deliver_all();
    let ids = parties(&fake, call);
    fake.engine.drop_party(ids[1]).expect("drop");
    fake.settle();
    fake.requests.clear();
    fake.engine.close_call(call).expect("close");
    fake.settle();
    assert_eq!(kinds(&fake.requests), ["DropParty"], "one more drop; no close while drops pend");
    fake.deliver_one(0);
    assert!(!kinds(&fake.requests).contains(&"CloseCall"), "still one drop pending");
    fake.deliver_one(0);
    assert_eq!(kinds(&fake.requests), ["DropParty", "CloseCall"]);
    fake.deliver_all();
    assert!(fake.engine.call_info(call).is_none());
    assert_clean(&mut fake);
}

/// Issue #3 and nf-ndis-ndiscladdparty: a party handle exists only once AddParty completed, so a
/// drop requested while that AddParty pends is carried out when it completes.
#[test]
fn drop_requested_while_add_pends_is_carried_out_at_completion() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 1);
    fake.deliver_all();
    let added = fake.with_memory(|e| e.add_party(call, leaf(9))).expect("add");
    fake.settle();
    fake.engine.drop_party(added).expect("drop while adding");
    fake.settle();
    assert!(matches!(
        fake.engine.party_info(added).map(|p| p.state),
        Some(PartyState::AddPending { drop_requested: true })
    ));
    assert!(!kinds(&fake.requests).contains(&"DropParty"), "no handle to drop yet");
    fake.deliver_one(0); // AddParty completes
    assert_eq!(kinds(&fake.requests).last(), Some(&"DropParty"));
    fake.deliver_all();
    assert!(fake.engine.party_info(added).is_none());
    assert_eq!(fake.engine.call_info(call).map(|c| c.connected), Some(1));
    assert_clean(&mut fake);
}

/// nc-ndis-protocol_cl_drop_party_complete: NdisClDropParty fails for the last party, which must
/// go with NdisClCloseCall instead. Dropping the only party therefore closes the call.
#[test]
fn dropping_the_only_party_closes_the_call() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 1);
    let only = parties(&fake, call)[0];
    fake.requests.clear();
    fake.engine.drop_party(only).expect("drop");
    fake.settle();
    assert_eq!(kinds(&fake.requests), ["CloseCall", "DeleteVc"]);
    assert_clean(&mut fake);
}

/// Dropping the only connected party while another AddParty pends is deferred: if the add
/// succeeds the party is dropped and the call goes on with the added leaf, and if it fails the
/// call is closed with it.
#[test]
fn dropping_the_only_connected_party_while_an_add_pends_waits_for_the_add() {
    for add_succeeds in [true, false] {
        let mut fake = all(Outcome::Pending);
        let (_, af) = fake.open_binding();
        let call = make_call(&mut fake, af, 1);
        fake.deliver_all();
        let first = parties(&fake, call)[0];
        fake.with_memory(|e| e.add_party(call, leaf(2))).expect("add");
        fake.settle();
        fake.requests.clear();
        fake.engine.drop_party(first).expect("drop");
        fake.settle();
        assert!(fake.requests.is_empty(), "deferred: {:?}", fake.requests);
        if !add_succeeds {
            if let Some(support::Owed::AddParty { status, .. }) = fake.owed.first_mut() {
                *status = Status::FAILURE;
            }
        }
        fake.deliver_one(0);
        let expected: &[&str] = if add_succeeds { &["DropParty"] } else { &["CloseCall"] };
        assert_eq!(kinds(&fake.requests), expected);
        fake.deliver_all();
        if add_succeeds {
            let info = fake.engine.call_info(call).map(|c| (c.state, c.connected, c.closing));
            assert_eq!(info, Some((CallState::Active, 1, None)), "the call goes on with the added leaf");
        }
        assert_clean(&mut fake);
    }
}

/// nc-ndis-protocol_cl_incoming_drop_party: the client answers a remote drop with
/// NdisClDropParty on that party.
#[test]
fn remote_drop_is_answered_with_drop_party() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 3);
    fake.requests.clear();
    fake.remote_drop(1);
    assert_eq!(kinds(&fake.requests), ["DropParty"]);
    assert_eq!(fake.engine.counters.parties_dropped_remote, 1);
    assert_eq!(fake.engine.call_info(call).map(|c| c.connected), Some(2));
    assert_clean(&mut fake);
}

/// nf-ndis-ndiscldropparty: the handle is invalid the moment it is passed to NdisClDropParty. A
/// remote drop that crosses a local one must not make the client use the handle again.
#[test]
fn remote_drop_crossing_a_local_drop_does_not_reuse_the_handle() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 3);
    fake.deliver_all();
    let target = parties(&fake, call)[2];
    fake.engine.drop_party(target).expect("drop");
    fake.settle();
    fake.requests.clear();
    fake.engine.on_incoming_drop_party(target, Status::SUCCESS).expect("crossing remote drop");
    fake.settle();
    assert!(fake.requests.is_empty(), "no second use of a dead handle: {:?}", fake.requests);
    fake.deliver_all();
    assert!(fake.engine.party_info(target).is_none());
    assert_clean(&mut fake);
}

/// nc-ndis-protocol_cl_incoming_close_call and network/incoming-request-to-close-a-call: the
/// client drops parties until one remains, calls NdisClCloseCall with it, and deletes its VC
/// (mandatory when CloseStatus is not SUCCESS).
#[test]
fn incoming_close_drops_down_to_one_closes_and_deletes_the_vc() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 3);
    fake.requests.clear();
    fake.remote_close(0, Status(ndis_sys::NDIS_STATUS_DEST_OUT_OF_ORDER));
    assert_eq!(kinds(&fake.requests), ["DropParty", "DropParty", "CloseCall", "DeleteVc"]);
    assert!(fake.engine.call_info(call).is_none());
    assert_clean(&mut fake);
}

/// nc-ndis-protocol_cl_make_call_complete: on failure, release the party context and delete the
/// VC; queued leaves never reach NDIS.
#[test]
fn failed_make_call_releases_the_parties_and_deletes_the_vc() {
    let mut fake = all(Outcome::SyncFailure);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 3);
    assert_eq!(kinds(&fake.requests), ["CreateVc", "MakeCall", "DeleteVc"]);
    assert!(fake.engine.call_info(call).is_none());
    assert_eq!(fake.engine.population()[2..], [0, 0]);
    assert_eq!(fake.engine.counters.calls_failed, 1);
    assert_clean(&mut fake);
}

/// nc-ndis-protocol_cl_notify_close_af, network/closing-an-address-family-in-a-condis-client:
/// answer PENDING, close every call, NdisClCloseAddressFamily, then
/// NdisClNotifyCloseAddressFamilyComplete — never waiting inside the notification.
#[test]
fn notify_close_af_closes_calls_then_the_af_then_completes_the_notification() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    make_call(&mut fake, af, 2);
    fake.deliver_all();
    make_call(&mut fake, af, 1);
    fake.deliver_all();
    fake.requests.clear();
    fake.notify_close_af(af);
    fake.deliver_all();
    let k = kinds(&fake.requests);
    let close_af = k.iter().position(|a| *a == "CloseAf").expect("CloseAf");
    assert!(k[..close_af].iter().filter(|a| **a == "DeleteVc").count() == 2, "calls gone first: {k:?}");
    assert_eq!(k.last(), Some(&"NotifyCloseAfComplete"), "the pended notification is completed last");
    assert_eq!(fake.engine.population()[1..], [0, 0, 0]);
    assert_clean(&mut fake);
}

/// nc-ndis-protocol_unbind_adapter_ex, network/unbinding-from-an-adapter: before
/// NdisCloseAdapterEx, every call is closed and every address family closed.
#[test]
fn unbind_tears_everything_down_before_the_adapter_closes() {
    let mut fake = Fake::new(Policy::new(7));
    let (binding, af) = fake.open_binding();
    for n in 1..=5 {
        make_call(&mut fake, af, n);
    }
    fake.unbind(binding);
    assert_eq!(fake.engine.population(), [0, 0, 0, 0]);
    assert!(fake.vcs.is_empty());
    assert_eq!(fake.quiet_bindings, [binding]);
    assert_clean(&mut fake);
}

/// nc-ndis-protocol_co_af_register_notify: NDIS may notify a family whenever the binding exists,
/// so a registration that crosses the unbind is declined (no AF opened) without being counted as
/// a refused event (the low-resources campaign's seed 323: `af-register; unbind`).
#[test]
fn a_family_registered_while_the_binding_unbinds_is_declined_not_refused() {
    let mut fake = Fake::new(Policy::new(7));
    let (binding, af) = fake.open_binding();
    make_call(&mut fake, af, 2);
    fake.engine.unbind(binding).expect("unbind");
    let refused = fake.engine.counters.refused;
    assert_eq!(fake.engine.on_af_register_notify(binding, 1, 3, 1), Err(Error::Closing));
    assert_eq!(fake.engine.counters.refused, refused, "declined, not refused");
    fake.settle();
    fake.deliver_all();
    assert_eq!(fake.engine.population()[1..], [0, 0, 0], "the unbind closed everything");
}

/// nc-ndis-protocol_co_af_register_notify: the client opens only the address families it uses;
/// partyline uses Q.2931 (CO_ADDRESS_FAMILY_Q2931, 1) UNI 3.1. A registration that differs in the
/// family, the major or the minor version alone is declined (no AF opened, nothing counted), and
/// the right one is then opened.
#[test]
fn only_a_q2931_uni_3_1_family_is_opened() {
    let mut fake = synchronous();
    let binding = fake.with_memory(|e| e.bind(7)).expect("bind");
    fake.engine.on_open_adapter_complete(binding, Status::SUCCESS, Handle(0x10)).expect("open");
    for (family, major, minor) in [(2, 3, 1), (1, 4, 1), (1, 3, 0)] {
        assert_eq!(
            fake.with_memory(|e| e.on_af_register_notify(binding, family, major, minor)),
            Err(Error::UnsupportedAddressFamily),
            "family {family} version {major}.{minor}"
        );
    }
    assert_eq!(fake.engine.address_families().count(), 0);
    assert_eq!(fake.engine.counters.refused, 0, "declined, not refused");
    fake.with_memory(|e| e.on_af_register_notify(binding, 1, 3, 1)).expect("Q.2931 UNI 3.1");
    assert_eq!(fake.engine.address_families().count(), 1);
}

/// nc-ndis-protocol_cl_notify_close_af: when everything closes synchronously inside the handler,
/// the handler returns SUCCESS and no completion is called (none is owed).
#[test]
fn notify_close_af_that_finishes_inside_the_handler_returns_success() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    make_call(&mut fake, af, 3);
    fake.requests.clear();
    fake.engine.on_notify_close_af(af).expect("notify");
    fake.settle();
    assert_eq!(fake.engine.finish_notify_close_af(af), Status::SUCCESS);
    fake.settle();
    let k = kinds(&fake.requests);
    assert_eq!(k.last(), Some(&"CloseAf"));
    assert!(!k.contains(&"NotifyCloseAfComplete"), "{k:?}");
    assert_eq!(fake.engine.population()[1..], [0, 0, 0]);
}

/// network/receiving-data-in-protocol-drivers, nf-ndis-ndisreturnnetbufferlists: lists indicated
/// without NDIS_RECEIVE_FLAGS_RESOURCES are the driver's until it returns them with the binding's
/// handle (partyline returns them at once); lists indicated with it are only lent. A binding
/// context that names no open binding leaves no handle to return them with: refused and counted.
#[test]
fn received_lists_are_returned_with_the_binding_handle_or_refused() {
    let mut fake = synchronous();
    let (binding, _) = fake.open_binding();
    let handle = fake.engine.binding_handle(binding).expect("open binding");
    assert_eq!(fake.engine.on_receive(Some(binding), 3, true), Ok(Some(handle)));
    assert_eq!(fake.engine.on_receive(Some(binding), 2, false), Ok(None));
    assert_eq!(fake.engine.counters.refused, 0);
    assert_eq!(
        fake.engine.on_receive(None, 1, true),
        Err(Error::UnknownId(partyline_core::trace::ObjectKind::Binding))
    );
    fake.unbind(binding);
    assert!(fake.engine.on_receive(Some(binding), 4, true).is_err(), "the binding is gone");
    let c = fake.engine.counters;
    assert_eq!((c.lists_received, c.lists_returned, c.refused), (10, 3, 2));
}

/// A context NDIS (or a user-mode id) names after its object was freed is refused, not followed.
#[test]
fn stale_ids_are_refused() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 2);
    let party = parties(&fake, call)[1];
    fake.engine.drop_party(party).expect("drop");
    fake.settle();
    assert_eq!(
        fake.engine.drop_party(party),
        Err(Error::UnknownId(partyline_core::trace::ObjectKind::Party))
    );
    assert!(fake.engine.on_drop_party_complete(party, Status::SUCCESS).is_err());
    // A new party reuses the slot with a new generation: the old id still fails.
    let again = fake.with_memory(|e| e.add_party(call, leaf(7))).expect("add");
    fake.settle();
    assert_eq!(again.index(), party.index());
    assert_ne!(again, party);
    assert!(fake.engine.party_info(party).is_none());
    assert!(fake.engine.party_info(again).is_some());
}

/// nf-ndis-ndiscldropparty ("the client should make an internal call to its
/// ProtocolClDropPartyComplete"): synchronous results and completions that run before the
/// request returns take the same path as pended ones, so the outcome is the same.
#[test]
fn every_outcome_reaches_the_same_end_state() {
    for outcome in [Outcome::SyncSuccess, Outcome::Pending, Outcome::CompleteBeforeReturn] {
        let mut fake = all(outcome);
        let (binding, af) = fake.open_binding();
        let call = make_call(&mut fake, af, 4);
        fake.deliver_all();
        let ids = parties(&fake, call);
        fake.engine.drop_party(ids[3]).expect("drop");
        fake.settle();
        fake.deliver_all();
        fake.remote_drop(0);
        fake.deliver_all();
        let info = fake.engine.call_info(call).expect("call");
        assert_eq!((info.connected, info.adding, info.dropping), (2, 0, 0), "{outcome:?}");
        fake.unbind(binding);
        assert_eq!(fake.engine.population(), [0, 0, 0, 0], "{outcome:?}");
        assert_clean(&mut fake);
    }
}

/// Issue #3: at least 65,535 parties on one VC, every operation O(1).
#[test]
fn a_call_holds_65535_parties() {
    let mut fake = synchronous();
    let (binding, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 65_535);
    assert_eq!(fake.engine.call_info(call).map(|c| c.connected), Some(65_535));
    fake.unbind(binding);
    assert_eq!(fake.engine.population(), [0, 0, 0, 0]);
    assert_eq!(fake.engine.counters.parties_dropped_local, 65_534);
    assert_clean(&mut fake);
}

/// Control requests are validated: no leaves, closing calls, unknown objects.
#[test]
fn bad_requests_are_refused_with_a_reason() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    assert_eq!(fake.engine.make_call(af, profile(), core::iter::empty()), Err(Error::NoLeaves));
    let call = make_call(&mut fake, af, 2);
    fake.engine.close_call(call).expect("close");
    assert_eq!(fake.engine.close_call(call), Err(Error::Closing));
    fake.settle();
    assert!(matches!(fake.engine.add_party(call, leaf(3)), Err(Error::UnknownId(_))));
    assert_eq!(
        fake.engine.on_af_register_notify(Id::from_u64(1 << 32 | 1).unwrap(), 1, 4, 0),
        Err(Error::UnsupportedAddressFamily)
    );
}

/// nc-ndis-protocol_co_af_register_notify (NDIS may notify a family again, from this or another
/// call manager); verifier-rules.md §7.6 item 45: a Q.2931 UNI 3.1 registration on a binding
/// whose AF is open in NDIS (opening, open, or closing its calls) is declined; once the AF is
/// closed, a new one may be opened. (The schedule campaign found the closing case: seed 128,
/// `make 2; close-af; af-register`.)
#[test]
fn a_family_registered_again_while_open_is_declined() {
    let mut fake = synchronous();
    let (binding, af) = fake.open_binding();
    assert_eq!(fake.engine.on_af_register_notify(binding, 1, 3, 1), Err(Error::UnsupportedAddressFamily));
    assert_eq!(fake.engine.address_families().count(), 1);
    let _ = af;
    // While its open pends, too.
    let opening = fake.with_memory(|e| e.bind(8)).expect("bind");
    let handle = Handle(0x5151);
    fake.engine.on_open_adapter_complete(opening, Status::SUCCESS, handle).expect("open");
    fake.with_memory(|e| e.on_af_register_notify(opening, 1, 3, 1)).expect("first registration");
    assert_eq!(fake.engine.on_af_register_notify(opening, 1, 3, 1), Err(Error::UnsupportedAddressFamily));
    assert_eq!(fake.engine.address_families().count(), 2);
    // Closing its calls: still open in NDIS.
    let call = make_call(&mut fake, af, 2);
    fake.engine.on_notify_close_af(af).expect("notify close");
    assert_eq!(fake.engine.on_af_register_notify(binding, 1, 3, 1), Err(Error::UnsupportedAddressFamily));
    // Closed: the family may be opened anew.
    fake.settle();
    assert!(fake.engine.call_info(call).is_none());
    fake.with_memory(|e| e.on_af_register_notify(binding, 1, 3, 1))
        .expect("a new AF once the old one closed");
}

/// The close of a family is decided under the lock and made after it is released; a
/// registration that comes between (on another processor) must not open the family again
/// before NDIS sees the close. The 10^6-seed concurrency campaign found it (seed 84726: the
/// new NdisClOpenAddressFamilyEx reached NDIS before the old AF's NdisClCloseAddressFamily).
#[test]
fn a_family_registered_while_its_close_is_being_made_is_declined() {
    let mut fake = synchronous();
    let (binding, af) = fake.open_binding();
    fake.engine.on_notify_close_af(af).expect("notify close");
    let close = std::iter::from_fn(|| fake.engine.poll()).find(|a| matches!(a, Action::CloseAf { .. }));
    assert!(close.is_some(), "the engine asks to close the AF");
    // The glue is making the close, with the lock released: the family is still open in NDIS.
    assert_eq!(fake.engine.on_af_register_notify(binding, 1, 3, 1), Err(Error::UnsupportedAddressFamily));
    // The glue polls again only once the close is made: now the family may be opened anew.
    let _ = fake.engine.poll();
    fake.with_memory(|e| e.on_af_register_notify(binding, 1, 3, 1)).expect("a new AF once the close is made");
}

/// At unload every block lent to the engine goes back, one at a time (the glue frees each with
/// the lock released).
#[test]
fn all_memory_is_given_back_after_teardown() {
    let mut fake = synchronous();
    let (binding, af) = fake.open_binding();
    make_call(&mut fake, af, 600);
    fake.unbind(binding);
    let mut blocks = 0;
    while fake.engine.take_one_memory().is_some() {
        blocks += 1;
    }
    assert!(blocks >= 4, "chunks and directories of four tables: {blocks}");
    assert!(fake.engine.take_one_memory().is_none());
    assert_eq!(fake.engine.population(), [0, 0, 0, 0]);
    // The engine works again after giving everything back.
    let (_, af) = fake.open_binding();
    make_call(&mut fake, af, 3);
    assert_clean(&mut fake);
}

/// nf-ndis-ndisclclosecall: a multipoint call is closed with its last party's handle; when the
/// network took every party while an AddParty pended and that AddParty then failed, no party is
/// left, so the driver closes the call itself with no party handle instead of keeping a call
/// that carries nothing.
#[test]
fn a_call_left_with_no_party_is_closed_without_a_party_handle() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 1);
    fake.deliver_all();
    fake.with_memory(|e| e.add_party(call, leaf(2))).expect("add");
    fake.settle(); // AddParty pending
    fake.remote_drop(0); // the only connected party leaves: answered with a drop (an add pends)
    fake.deliver_all_but_adds();
    if let Some(support::Owed::AddParty { status, .. }) = fake.owed.first_mut() {
        *status = Status::FAILURE;
    }
    fake.requests.clear();
    fake.deliver_all();
    assert_eq!(kinds(&fake.requests), ["CloseCall", "DeleteVc"]);
    assert!(matches!(fake.requests[0], Action::CloseCall { party: None, .. }));
    assert!(fake.engine.call_info(call).is_none());
    assert_clean(&mut fake);
}

/// The other way the same race can end: the AddParty pending while the network took every
/// connected party succeeds, and the call goes on with that party (it is not closed for having
/// been empty for a moment).
#[test]
fn a_call_whose_parties_all_left_while_an_add_pends_goes_on_with_the_added_party() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 1);
    fake.deliver_all();
    let added = fake.with_memory(|e| e.add_party(call, leaf(2))).expect("add");
    fake.settle(); // AddParty pending
    fake.remote_drop(0); // the only connected party leaves
    fake.deliver_all_but_adds();
    fake.deliver_all(); // the AddParty succeeds
    let info = fake.engine.call_info(call).map(|c| (c.state, c.connected, c.closing));
    assert_eq!(info, Some((CallState::Active, 1, None)));
    assert_eq!(parties(&fake, call), [added]);
    assert_clean(&mut fake);
}

/// network/adding-a-party-to-a-multipoint-call: once the call is up, the AddParty of every leaf
/// waiting behind the SETUP is made at once (one per poll), without waiting for the previous
/// AddParty to complete.
#[test]
fn every_waiting_leaf_is_added_as_soon_as_the_call_is_up() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    make_call(&mut fake, af, 4);
    assert_eq!(kinds(&fake.requests), ["CreateVc", "MakeCall"]);
    fake.deliver_one(0); // MakeCall completes
    assert_eq!(kinds(&fake.requests), ["CreateVc", "MakeCall", "AddParty", "AddParty", "AddParty"]);
    assert_eq!(fake.owed.len(), 3, "three AddParty requests pending together");
}

/// nc-ndis-protocol_cl_incoming_close_call: once NdisClMakeCall has completed (by returning
/// SUCCESS, or by ProtocolClMakeCallComplete on another processor), the call manager may release
/// the call at any time, so the release can reach the client before the client has processed the
/// completion. The release must not be lost: the call is closed and its VC deleted once the
/// completion arrives.
#[test]
fn incoming_close_racing_the_make_call_completion_is_answered() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 2);
    let owed = fake.owed.pop().expect("MakeCall pends");
    assert!(matches!(owed, Owed::MakeCall { .. }));
    fake.engine
        .on_incoming_close_call(call, Status::FAILURE)
        .expect("a release racing the completion is taken");
    fake.settle();
    fake.requests.clear();
    fake.deliver(owed);
    fake.settle();
    fake.deliver_all();
    assert_eq!(kinds(&fake.requests), ["CloseCall", "DeleteVc"], "no AddParty for the queued leaf");
    assert!(fake.engine.call_info(call).is_none());
    assert_clean(&mut fake);
}

/// nc-ndis-protocol_cl_incoming_drop_party: the client answers a remote drop with NdisClDropParty
/// on that party, also when the drop reaches it before the AddParty completion that gave the
/// party its handle has been processed (the two run on different processors).
#[test]
fn incoming_drop_racing_the_add_party_completion_is_answered_with_drop_party() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 2);
    fake.deliver_all_but_adds();
    let owed = fake.owed.pop().expect("AddParty pends");
    let Owed::AddParty { party, .. } = owed else { panic!("expected the AddParty completion, got {owed:?}") };
    fake.engine
        .on_incoming_drop_party(party, Status::SUCCESS)
        .expect("a drop racing the completion is taken");
    fake.settle();
    assert_eq!(
        kinds(&fake.requests).last(),
        Some(&"AddParty"),
        "nothing to answer with before the handle exists"
    );
    fake.requests.clear();
    fake.deliver(owed);
    fake.settle();
    assert_eq!(kinds(&fake.requests), ["DropParty"]);
    fake.deliver_all();
    assert!(fake.engine.party_info(party).is_none());
    let info = fake.engine.call_info(call).expect("the first party keeps the call up");
    assert_eq!((info.state, info.connected), (CallState::Active, 1));
    assert_eq!(fake.engine.counters.parties_dropped_remote, 1);
    assert_clean(&mut fake);
}

/// nf-ndis-ndiscodeletevc, nf-ndis-ndiscocreatevc: the glue makes these requests with the spin
/// lock released, so control-device requests on other processors reach the engine while one is
/// in flight. A CLOSE_CALL for the call whose VC is being deleted queues that call for work;
/// when the delete returns the call is freed, and every call queued behind it (here a new
/// MAKE_CALL) must still be worked on. (Found by the concurrency campaign: the freed call took
/// the rest of the queue with it, the new call never got its VC, and the address family's
/// close, then the unbind, waited for it forever.)
#[test]
fn a_call_freed_while_queued_for_work_leaves_the_calls_behind_it_queued() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let one = fake.with_memory(|e| e.make_call(af, profile(), [leaf(1)])).expect("call 1");
    let Some(Action::CreateVc { call, .. }) = fake.engine.poll() else { panic!("CreateVc first") };
    assert_eq!(call, one);
    fake.engine.on_vc_created(one, Status::SUCCESS, Handle(0x5000)).expect("VC created");
    let Some(Action::MakeCall { call, .. }) = fake.engine.poll() else { panic!("MakeCall next") };
    assert_eq!(call, one);
    fake.engine.on_make_call_complete(one, Status::FAILURE, Handle::NULL, false).expect("call failed");
    let Some(Action::DeleteVc { call, .. }) = fake.engine.poll() else { panic!("DeleteVc next") };
    assert_eq!(call, one);
    // NdisCoDeleteVc is in flight (lock released): requests arrive on other processors.
    fake.engine.close_call(one).expect("a close while the VC is deleted is taken");
    let two = fake.with_memory(|e| e.make_call(af, profile(), [leaf(2)])).expect("call 2");
    // NdisCoDeleteVc returns: call 1 is gone.
    fake.engine.on_vc_deleted(one, Status::SUCCESS).expect("VC deleted");
    assert!(fake.engine.call_info(one).is_none());
    match fake.engine.poll() {
        Some(Action::CreateVc { call, .. }) => assert_eq!(call, two),
        other => panic!("call 2 was never worked on: poll gave {other:?}"),
    }
}

/// As above with the other request that frees a call when it returns: a NdisCoCreateVc that
/// fails, after a CLOSE_CALL for that call arrived while it was in flight.
#[test]
fn a_call_whose_vc_fails_while_queued_for_work_leaves_the_calls_behind_it_queued() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let one = fake.with_memory(|e| e.make_call(af, profile(), [leaf(1)])).expect("call 1");
    let Some(Action::CreateVc { call, .. }) = fake.engine.poll() else { panic!("CreateVc first") };
    assert_eq!(call, one);
    // NdisCoCreateVc is in flight: a close and a new call arrive.
    fake.engine.close_call(one).expect("a close while the VC is created is taken");
    let two = fake.with_memory(|e| e.make_call(af, profile(), [leaf(2)])).expect("call 2");
    fake.engine.on_vc_created(one, Status::RESOURCES, Handle::NULL).expect("no VC");
    assert!(fake.engine.call_info(one).is_none());
    match fake.engine.poll() {
        Some(Action::CreateVc { call, .. }) => assert_eq!(call, two),
        other => panic!("call 2 was never worked on: poll gave {other:?}"),
    }
}

/// nf-ndis-ndisclopenaddressfamilyex: "If the client's call to NdisClOpenAddressFamilyEx fails,
/// the client should call the NdisUnbindAdapter function to request NDIS to release its binding to
/// the underlying miniport adapter." A binding left with no address family asks NDIS to unbind it,
/// once; one that still has an open address family, or is already unbinding, does not.
#[test]
fn a_failed_address_family_open_asks_ndis_to_unbind() {
    let mut fake = Fake::new(Policy::synchronous());
    let binding = fake.with_memory(|e| e.bind(7)).expect("bind");
    fake.engine.on_open_adapter_complete(binding, Status::SUCCESS, Handle(0x500)).expect("open");
    fake.engine.on_restart(binding).expect("restart");
    let af = fake.with_memory(|e| e.on_af_register_notify(binding, 1, 3, 1)).expect("af");
    fake.engine.on_open_af_complete(af, Status::RESOURCES, Handle::NULL).expect("completion");
    fake.settle();
    assert_eq!(fake.unbind_requests, [binding]);
    assert!(fake.requests.iter().any(|a| matches!(a, Action::UnbindAdapter { handle: Handle(0x500), .. })));
    // (A binding never has a second AF open in NDIS while one is: see
    // `a_family_registered_again_while_open_is_declined`.)
}

/// nc-ndis-protocol_cl_open_af_complete_ex: the AF handle is valid only when the open succeeded.
/// A failed open is the end of the AF whatever the out-parameter holds, and a success that gave
/// no handle cannot be used either: in both cases the AF is gone and NDIS is asked to unbind
/// the binding it leaves without an address family.
#[test]
fn an_address_family_opens_only_with_success_and_a_handle() {
    for (status, handle) in [(Status::FAILURE, Handle(0x600)), (Status::SUCCESS, Handle::NULL)] {
        let mut fake = Fake::new(Policy::synchronous());
        let binding = fake.with_memory(|e| e.bind(7)).expect("bind");
        fake.engine.on_open_adapter_complete(binding, Status::SUCCESS, Handle(0x500)).expect("open");
        let af = fake.with_memory(|e| e.on_af_register_notify(binding, 1, 3, 1)).expect("af");
        fake.engine.on_open_af_complete(af, status, handle).expect("completion");
        fake.settle();
        assert_eq!(fake.engine.address_families().count(), 0, "{status:?} {handle:?}");
        assert_eq!(fake.unbind_requests, [binding], "{status:?} {handle:?}");
    }
}

/// nc-ndis-protocol_cl_notify_close_af: NDIS calls ProtocolClNotifyCloseAf for an AF it opened,
/// once. A notification for an AF whose open has not completed, or a second one while the first
/// is pending, is refused (InvalidState) and changes nothing.
#[test]
fn notify_close_af_is_refused_before_the_open_completes_and_while_one_pends() {
    let mut fake = all(Outcome::Pending);
    let binding = fake.with_memory(|e| e.bind(7)).expect("bind");
    fake.engine.on_open_adapter_complete(binding, Status::SUCCESS, Handle(0x500)).expect("open");
    let opening = fake.with_memory(|e| e.on_af_register_notify(binding, 1, 3, 1)).expect("af");
    let invalid = Err(Error::InvalidState(partyline_core::trace::ObjectKind::Af));
    assert_eq!(fake.engine.on_notify_close_af(opening), invalid, "the open is still pending");
    let (_, af) = fake.open_binding();
    make_call(&mut fake, af, 2);
    fake.deliver_all();
    fake.engine.on_notify_close_af(af).expect("first notification");
    fake.settle();
    assert_eq!(fake.engine.finish_notify_close_af(af), Status::PENDING);
    assert_eq!(fake.engine.on_notify_close_af(af), invalid, "one is pending");
    assert_eq!(fake.engine.counters.refused, 2);
}

/// nf-ndis-ndiscocreatevc: the VC handle is valid only when NdisCoCreateVc succeeds. A failure
/// leaves no VC whatever the out-parameter holds, and a "success" without a handle cannot be
/// used: either way the call never reaches NDIS (no MakeCall, no DeleteVc) and is released,
/// counted as failed.
#[test]
fn a_call_goes_on_only_with_a_created_vc_handle() {
    for (status, vc) in [(Status::RESOURCES, Handle(0x700)), (Status::SUCCESS, Handle::NULL)] {
        let mut fake = synchronous();
        let (_, af) = fake.open_binding();
        fake.settle();
        let call = fake.with_memory(|e| e.make_call(af, profile(), [leaf(1)])).expect("make call");
        let Some(Action::CreateVc { .. }) = fake.engine.poll() else { panic!("CreateVc first") };
        fake.engine.on_vc_created(call, status, vc).expect("answer");
        fake.settle();
        assert!(fake.engine.call_info(call).is_none(), "{status:?} {vc:?}");
        assert!(fake.requests.is_empty(), "{status:?} {vc:?}: {:?}", fake.requests);
        assert_eq!(fake.engine.population()[2..], [0, 0]);
        assert_eq!(fake.engine.counters.calls_failed, 1);
    }
}

/// A call on `af` driven by hand up to its pending NdisClMakeCall: (call, first party).
fn call_with_make_call_pending(fake: &mut Fake, af: Id, leaves: u32) -> (Id, Id) {
    let addresses: Vec<_> = (1..=leaves).map(leaf).collect();
    let call =
        fake.with_memory(|e| e.make_call(af, profile(), addresses.iter().copied())).expect("make call");
    let Some(Action::CreateVc { .. }) = fake.engine.poll() else { panic!("CreateVc first") };
    fake.engine.on_vc_created(call, Status::SUCCESS, Handle(0x900)).expect("vc");
    let Some(Action::MakeCall { party, .. }) = fake.engine.poll() else { panic!("MakeCall next") };
    (call, party)
}

/// nc-ndis-protocol_cl_make_call_complete / nc-ndis-protocol_cl_add_party_complete: the party
/// handle is valid only on success. A failed completion releases the party whatever handle
/// accompanies it, and a "success" without a handle connects nothing: the MakeCall party, or the
/// added party, is gone and counted as failed.
#[test]
fn a_party_connects_only_with_success_and_a_handle() {
    for (status, handle) in [(Status::FAILURE, Handle(0x910)), (Status::SUCCESS, Handle::NULL)] {
        let mut fake = synchronous();
        let (_, af) = fake.open_binding();
        fake.settle();
        let (call, party) = call_with_make_call_pending(&mut fake, af, 1);
        fake.engine.on_make_call_complete(call, status, handle, false).expect("completion");
        assert!(fake.engine.party_info(party).is_none(), "{status:?} {handle:?}");
        assert_ne!(fake.engine.call_info(call).map(|c| c.state), Some(CallState::Active));
        assert_eq!(fake.engine.counters.calls_failed, 1);

        let call = make_call(&mut fake, af, 1);
        let added = fake.engine.add_party(call, leaf(2)).expect("add");
        let Some(Action::AddParty { party, .. }) = fake.engine.poll() else { panic!("AddParty") };
        assert_eq!(party, added);
        fake.engine.on_add_party_complete(added, status, handle, false).expect("completion");
        assert!(fake.engine.party_info(added).is_none(), "{status:?} {handle:?}");
        assert_eq!(fake.engine.call_info(call).map(|c| c.connected), Some(1));
        assert_eq!(fake.engine.counters.parties_failed, 1);
    }
}

/// nc-ndis-protocol_cl_make_call_complete, nc-ndis-protocol_cl_add_party_complete: the call
/// manager may change the call parameters (CALL_PARAMETERS_CHANGED); the change is remembered for
/// the call (CallInfo::parameters_changed, which the control device reports), whichever
/// completion brings it, and a later completion without the flag does not clear it.
#[test]
fn changed_call_parameters_are_remembered_from_either_completion() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    fake.settle();
    let (by_setup, _) = call_with_make_call_pending(&mut fake, af, 2);
    fake.engine.on_make_call_complete(by_setup, Status::SUCCESS, Handle(0x920), true).expect("made");
    let Some(Action::AddParty { party, .. }) = fake.engine.poll() else { panic!("AddParty") };
    fake.engine.on_add_party_complete(party, Status::SUCCESS, Handle(0x921), false).expect("added");
    assert_eq!(fake.engine.call_info(by_setup).map(|c| c.parameters_changed), Some(true));

    let (by_add, _) = call_with_make_call_pending(&mut fake, af, 2);
    fake.engine.on_make_call_complete(by_add, Status::SUCCESS, Handle(0x930), false).expect("made");
    assert_eq!(fake.engine.call_info(by_add).map(|c| c.parameters_changed), Some(false));
    let Some(Action::AddParty { party, .. }) = fake.engine.poll() else { panic!("AddParty") };
    fake.engine.on_add_party_complete(party, Status::SUCCESS, Handle(0x931), true).expect("added");
    assert_eq!(fake.engine.call_info(by_add).map(|c| c.parameters_changed), Some(true));
}

// ---------------------------------------------------------------------------------------------
// Teardown requests that fail (issue 11: every request can fail, as documented).

/// The parties a call manager's `NdisClCloseCall` would take with the call, by handle.
fn close_requests(fake: &Fake) -> Vec<Option<Handle>> {
    fake.requests
        .iter()
        .filter_map(|a| match a {
            Action::CloseCall { party, .. } => Some(party.map(|(_, h)| h)),
            _ => None,
        })
        .collect()
}

/// nc-ndis-protocol_cl_drop_party_complete: FAILURE means "the given party was the last remaining
/// on the client's multipoint VC. Therefore, the client should call NdisClCloseCall to drop this
/// party"; nf-ndis-ndiscmdroppartycomplete: the call manager treats the handle as invalid only
/// after SUCCESS. partyline's reading: the party is still the call manager's, its handle with it,
/// and the call is closed with it — every other party dropped first, the refused one never
/// dropped again (the fake reports a second NdisClDropParty of it). Synchronous and pended.
#[test]
fn a_refused_drop_party_closes_the_call_with_that_party() {
    for outcome in [Outcome::SyncSuccess, Outcome::Pending] {
        let mut fake = all(outcome);
        let (_, af) = fake.open_binding();
        let call = make_call(&mut fake, af, 3);
        fake.deliver_all();
        let listed = parties(&fake, call);
        assert_eq!(listed.len(), 3, "{outcome:?}");
        let refused = listed[1];
        let handle = match fake.engine.party_info(refused).map(|p| p.state) {
            Some(PartyState::Connected { handle }) => handle,
            other => panic!("{outcome:?}: party is {other:?}"),
        };
        fake.fail_next.insert("NdisClDropParty", 1);
        fake.requests.clear();
        fake.engine.drop_party(refused).expect("drop");
        fake.settle();
        fake.deliver_all();
        assert_eq!(fake.engine.counters.drop_failures, 1, "{outcome:?}");
        assert_eq!(
            kinds(&fake.requests),
            ["DropParty", "DropParty", "DropParty", "CloseCall", "DeleteVc"],
            "{outcome:?}: refused, then the two other parties dropped, then the close"
        );
        assert_eq!(close_requests(&fake), [Some(handle)], "{outcome:?}: closed with the refused party");
        assert!(fake.engine.call_info(call).is_none(), "{outcome:?}");
        assert!(fake.vcs.is_empty(), "{outcome:?}: the VC is deleted");
        assert_eq!(fake.engine.population()[2..], [0, 0], "{outcome:?}: nothing left");
        assert_clean(&mut fake);
    }
}

/// nc-ndis-protocol_cl_drop_party_complete as above, for the drop of the next-to-last party: the
/// call manager says the party was the last, so the call closes with it, not with the other one.
#[test]
fn a_refused_drop_of_one_of_two_parties_closes_the_call_with_the_refused_one() {
    let mut fake = all(Outcome::Pending);
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 2);
    fake.deliver_all();
    let [first, second] = parties(&fake, call)[..] else { panic!("two parties") };
    let Some(PartyState::Connected { handle }) = fake.engine.party_info(first).map(|p| p.state) else {
        panic!("connected")
    };
    fake.fail_next.insert("NdisClDropParty", 1);
    fake.requests.clear();
    fake.engine.drop_party(first).expect("drop");
    fake.settle();
    fake.deliver_all();
    assert_eq!(kinds(&fake.requests), ["DropParty", "DropParty", "CloseCall", "DeleteVc"]);
    assert_eq!(close_requests(&fake), [Some(handle)]);
    assert!(fake.engine.party_info(second).is_none());
    assert!(fake.engine.call_info(call).is_none());
    assert_clean(&mut fake);
}

/// nc-ndis-protocol_cl_close_call_complete: on failure the call manager did not close the call
/// (only SUCCESS "closed the call ... and deactivated the VC"), and nf-ndis-ndiscodeletevc
/// deletes a VC only once the close "has completed successfully": partyline makes the close
/// again, with the same party, then deletes the VC. Synchronous and pended.
#[test]
fn a_failed_close_call_is_made_again_before_the_vc_is_deleted() {
    for outcome in [Outcome::SyncSuccess, Outcome::Pending] {
        let mut fake = all(outcome);
        let (_, af) = fake.open_binding();
        let call = make_call(&mut fake, af, 1);
        fake.deliver_all();
        fake.fail_next.insert("NdisClCloseCall", 2);
        fake.requests.clear();
        fake.engine.close_call(call).expect("close");
        fake.settle();
        fake.deliver_all();
        assert_eq!(kinds(&fake.requests), ["CloseCall", "CloseCall", "CloseCall", "DeleteVc"], "{outcome:?}");
        let closes = close_requests(&fake);
        assert!(closes.iter().all(|p| p.is_some() && *p == closes[0]), "{outcome:?}: same party each time");
        assert_eq!(fake.engine.counters.close_failures, 2);
        assert!(fake.engine.call_info(call).is_none());
        assert!(fake.vcs.is_empty(), "{outcome:?}: no VC left in NDIS");
        assert_eq!(fake.engine.population()[2..], [0, 0]);
        assert_clean(&mut fake);
    }
}

/// nf-ndis-ndiscodeletevc: NOT_ACCEPTED ("the VC is still active, so it could not be deleted")
/// leaves the VC alive; its handle dies only with a delete that succeeds. partyline deletes it
/// again.
#[test]
fn a_refused_vc_delete_is_made_again() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 2);
    fake.fail_next.insert("NdisCoDeleteVc", 3);
    fake.requests.clear();
    fake.engine.close_call(call).expect("close");
    fake.settle();
    assert_eq!(
        kinds(&fake.requests),
        ["DropParty", "CloseCall", "DeleteVc", "DeleteVc", "DeleteVc", "DeleteVc"]
    );
    assert_eq!(fake.engine.counters.delete_failures, 3);
    assert!(fake.engine.call_info(call).is_none());
    assert!(fake.vcs.is_empty(), "no VC left in NDIS");
    assert_clean(&mut fake);
}

/// nc-ndis-protocol_cl_close_af_complete: FAILURE leaves the AF open (VCs or SAPs "that the
/// client must release before attempting to close the AF"); partyline has neither and closes it
/// again, and the unbind completes once it is closed. Synchronous and pended.
#[test]
fn a_failed_address_family_close_is_made_again_and_the_unbind_completes() {
    for outcome in [Outcome::SyncSuccess, Outcome::Pending] {
        let mut fake = all(outcome);
        let (binding, af) = fake.open_binding();
        make_call(&mut fake, af, 2);
        fake.deliver_all();
        fake.fail_next.insert("NdisClCloseAddressFamily", 2);
        fake.requests.clear();
        fake.unbind(binding);
        let closes = kinds(&fake.requests).iter().filter(|k| **k == "CloseAf").count();
        assert_eq!(closes, 3, "{outcome:?}: {:?}", kinds(&fake.requests));
        assert_eq!(fake.quiet_bindings, [binding], "{outcome:?}");
        assert_eq!(fake.engine.population(), [0, 0, 0, 0], "{outcome:?}");
        assert!(fake.afs.values().all(|a| a.2), "{outcome:?}: the AF is closed in NDIS");
        assert_clean(&mut fake);
    }
}

/// A call manager that fails every close: partyline makes it REQUEST_ATTEMPTS times, then gives
/// the call up, so the unbind does not wait for it forever (the VC it leaves is the call
/// manager's doing, and counted). The same bound holds for NdisCoDeleteVc and
/// NdisClCloseAddressFamily: each is made exactly REQUEST_ATTEMPTS times.
#[test]
fn a_close_that_always_fails_is_given_up_after_the_attempt_bound_and_the_unbind_completes() {
    let attempts = usize::from(partyline_core::engine::REQUEST_ATTEMPTS);
    for (export, request) in [
        ("NdisClCloseCall", "CloseCall"),
        ("NdisCoDeleteVc", "DeleteVc"),
        ("NdisClCloseAddressFamily", "CloseAf"),
    ] {
        let mut fake = synchronous();
        let (binding, af) = fake.open_binding();
        make_call(&mut fake, af, 1);
        fake.fail_next.insert(export, u32::MAX);
        fake.requests.clear();
        fake.unbind(binding);
        let made = kinds(&fake.requests).iter().filter(|k| **k == request).count();
        assert_eq!(made, attempts, "{export}: {:?}", kinds(&fake.requests));
        let counters = fake.engine.counters;
        // (A failed address-family close has no counter of its own.)
        let failures = match request {
            "CloseCall" => Some(counters.close_failures),
            "DeleteVc" => Some(counters.delete_failures),
            _ => None,
        };
        if let Some(failures) = failures {
            assert_eq!(failures, attempts as u64, "{export}");
        }
        assert_eq!(fake.quiet_bindings, [binding], "{export}");
        assert_eq!(fake.engine.population(), [0, 0, 0, 0], "{export}");
    }
}

// ---- PnP: pause, restart, power (network/binding-states-of-a-protocol-driver) -------------------

fn setups(fake: &Fake) -> usize {
    fake.requests.iter().filter(|a| matches!(a, Action::MakeCall { .. } | Action::AddParty { .. })).count()
}

/// network/pausing-a-binding: no new send on a Paused binding (partyline's reading for a CoNDIS
/// client: no call or party set-up); network/restarting-a-binding: the held set-ups start on the
/// restart. A call requested while paused gets its VC (local to NDIS) but no SETUP.
#[test]
fn a_paused_binding_holds_new_setups_until_it_restarts() {
    let mut fake = Fake::new(Policy::synchronous());
    let (binding, af) = fake.open_binding();
    assert_eq!(fake.engine.on_pause(binding), Ok(true), "nothing in flight: paused at once");
    let call =
        fake.with_memory(|e| e.make_call(af, TrafficProfile::DEFAULT, [leaf(1), leaf(2)])).expect("call");
    fake.settle();
    assert_eq!(setups(&fake), 0, "{:?}", fake.requests);
    assert!(fake.requests.iter().any(|a| matches!(a, Action::CreateVc { .. })));
    fake.engine.on_restart(binding).expect("restart");
    fake.settle();
    assert_eq!(setups(&fake), 2, "{:?}", fake.requests);
    assert_eq!(fake.engine.call_info(call).map(|c| c.state), Some(CallState::Active));
}

/// nf-ndis-ndiscldropparty (the last party goes with NdisClCloseCall): a drop of the only
/// connected party while a leaf waits to be added (here held by a pause) is deferred, not turned
/// into a close that would throw the waiting leaf away; after the restart the leaf is added and
/// then the party is dropped, and the call goes on with the new leaf.
#[test]
fn dropping_the_only_party_while_a_leaf_waits_to_be_added_keeps_the_call_for_it() {
    let mut fake = Fake::new(Policy::synchronous());
    let (binding, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 1);
    let first = parties(&fake, call)[0];
    assert_eq!(fake.engine.on_pause(binding), Ok(true));
    let waiting = fake.with_memory(|e| e.add_party(call, leaf(2))).expect("add while paused");
    fake.settle();
    fake.engine.drop_party(first).expect("drop the only connected party");
    fake.settle();
    assert_eq!(fake.engine.call_info(call).and_then(|c| c.closing), None, "not closed: a leaf waits");
    fake.engine.on_restart(binding).expect("restart");
    fake.settle();
    assert!(fake.engine.party_info(first).is_none(), "the deferred drop was carried out");
    assert_eq!(parties(&fake, call), [waiting]);
    assert_eq!(fake.engine.call_info(call).map(|c| (c.state, c.connected)), Some((CallState::Active, 1)));
    assert_clean(&mut fake);
}

/// network/pausing-a-binding: the pause "is not complete until" the outstanding requests are; a
/// pause that finds a MakeCall in flight waits (the glue's wait is woken by BindingQuiet) and
/// completes when it does.
#[test]
fn a_pause_waits_for_the_setups_in_flight() {
    let mut policy = Policy::synchronous();
    policy.pending = 1000;
    let mut fake = Fake::new(policy);
    let (binding, af) = fake.open_binding();
    fake.with_memory(|e| e.make_call(af, TrafficProfile::DEFAULT, [leaf(1)])).expect("call");
    fake.settle();
    assert_eq!(setups(&fake), 1);
    assert_eq!(fake.engine.on_pause(binding), Ok(false), "a MakeCall is in flight");
    assert!(!fake.engine.pause_settled(binding));
    fake.deliver_all();
    assert!(fake.requests.iter().any(|a| matches!(a, Action::BindingQuiet { .. })), "{:?}", fake.requests);
    assert!(fake.engine.pause_settled(binding));
    assert_eq!(fake.engine.operational(binding), Some((Operational::Paused, false)));
}

/// ns-ndis-_net_pnp_event (NDIS 6.30): on a set-power to a low-power state no new I/O starts;
/// D0 lets the held set-ups go (the binding runs).
#[test]
fn a_powered_down_binding_holds_new_setups_until_d0() {
    let mut fake = Fake::new(Policy::synchronous());
    let (binding, af) = fake.open_binding();
    fake.engine.on_set_power(binding, false).expect("D3");
    fake.with_memory(|e| e.make_call(af, TrafficProfile::DEFAULT, [leaf(1)])).expect("call");
    fake.settle();
    assert_eq!(setups(&fake), 0);
    fake.engine.on_set_power(binding, true).expect("D0");
    fake.settle();
    assert_eq!(setups(&fake), 1);
}

/// Teardown is not held: ProtocolUnbindAdapterEx comes only on a paused binding and must close
/// every call (nc-ndis-protocol_unbind_adapter_ex), so a paused binding still drops and closes.
#[test]
fn a_paused_binding_still_tears_down() {
    let mut fake = Fake::new(Policy::synchronous());
    let (binding, af) = fake.open_binding();
    let call =
        fake.with_memory(|e| e.make_call(af, TrafficProfile::DEFAULT, [leaf(1), leaf(2)])).expect("call");
    fake.settle();
    assert_eq!(fake.engine.on_pause(binding), Ok(true));
    fake.engine.close_call(call).expect("close");
    fake.settle();
    assert!(fake.requests.iter().any(|a| matches!(a, Action::CloseCall { .. })));
    assert!(fake.engine.call_info(call).is_none(), "the call is gone");
}

/// The census the control device reports (IOCTL_PARTYLINE_READ_STATE): live objects and memory per
/// table, work queued, and every refusal split by why and by object kind, the split adding up to
/// the `refused` counter. After an unbind every table is empty and no work is left.
#[test]
fn the_census_counts_live_objects_memory_work_and_refusals_by_kind() {
    use partyline_core::census::{RefusalKind, TableCensus};
    use partyline_core::trace::ObjectKind;
    use partyline_core::Table;
    let mut fake = all(Outcome::Pending);
    let (binding, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 3);
    let census = fake.engine.census();
    let live = |t: Table| census.table(t).live;
    assert_eq!([live(Table::Bindings), live(Table::AddressFamilies), live(Table::Calls)], [1, 1, 1]);
    assert_eq!(live(Table::Parties), 3);
    let table = census.table(Table::Parties);
    assert_eq!((table.chunks, table.directory), (1, 4));
    assert!(table.slot_bytes > 0 && table.slot_bytes <= 56);
    assert_eq!(table.bytes(), 256 * u64::from(table.slot_bytes) + 4 * 8);
    fake.deliver_all();
    let ids = parties(&fake, call);
    // Refusals: a party dropped twice (unknown once freed), a second close of a closing call, a
    // call with no leaves, a drop of the party that goes with the close.
    fake.engine.drop_party(ids[2]).expect("drop");
    fake.settle();
    fake.deliver_all();
    assert!(fake.engine.drop_party(ids[2]).is_err());
    assert_eq!(fake.engine.make_call(af, profile(), core::iter::empty()), Err(Error::NoLeaves));
    fake.engine.close_call(call).expect("close");
    assert_eq!(fake.engine.close_call(call), Err(Error::Closing));
    let census = fake.engine.census();
    assert!(census.work.calls >= 1, "the closing call is queued: {:?}", census.work);
    let r = census.refusals;
    assert_eq!(r.counts[RefusalKind::UnknownId as usize][ObjectKind::Party as usize - 1], 1);
    assert_eq!(r.of_kind(RefusalKind::NoLeaves), 1);
    assert_eq!(r.counts[RefusalKind::Closing as usize][ObjectKind::Call as usize - 1], 1);
    assert_eq!(r.total(), 3);
    assert_eq!(census.refused, r.total());
    fake.settle();
    fake.deliver_all();
    fake.unbind(binding);
    let census = fake.engine.census();
    assert!(census.is_empty(), "{census:?}");
    assert_eq!(census.table(Table::Parties).chunks, 1, "chunks stay lent until unload");
    assert_eq!(census.work, Default::default());
    assert_ne!(census.table(Table::Calls), TableCensus::default());
}
