//! A binding's own life, as the glue in `src/binding.rs` drives it: ProtocolBindAdapterEx and
//! NdisOpenAdapterEx (nf-ndis-ndisopenadapterex: on failure the binding handle is not valid),
//! ProtocolUnbindAdapterEx (nc-ndis-protocol_unbind_adapter_ex: release every CoNDIS object, then
//! NdisCloseAdapterEx), and the cookie through which the glue finds its per-binding I/O block.

mod support;

use partyline_core::engine::BindingState;
use partyline_core::{Error, Handle, Id, Status};
use support::{Fake, Policy};

fn synchronous() -> Fake {
    Fake::new(Policy::synchronous())
}

/// A binding opened and restarted, with no address family.
fn open_bare(fake: &mut Fake, cookie: usize, handle: usize) -> Id {
    let binding = fake.with_memory(|e| e.bind(cookie)).expect("bind");
    fake.engine.on_open_adapter_complete(binding, Status::SUCCESS, Handle(handle)).expect("open");
    fake.engine.on_restart(binding).expect("restart");
    binding
}

/// nf-ndis-ndisopenadapterex: only a successful open gives a binding handle. A failed open is
/// the end of the binding whatever the out-parameter holds, and a "successful" one that gave
/// no handle cannot be used either: in both cases the binding is gone.
#[test]
fn a_failed_open_or_one_without_a_handle_leaves_no_binding() {
    let mut fake = synchronous();
    let failed = fake.with_memory(|e| e.bind(1)).expect("bind");
    fake.engine.on_open_adapter_complete(failed, Status::FAILURE, Handle(0x4000)).expect("completion");
    let no_handle = fake.with_memory(|e| e.bind(2)).expect("bind");
    fake.engine.on_open_adapter_complete(no_handle, Status::SUCCESS, Handle::NULL).expect("completion");
    assert_eq!(fake.engine.population()[0], 0, "{:?}", fake.engine.bindings().collect::<Vec<_>>());
    assert_eq!(fake.engine.binding_handle(failed), None);
    assert_eq!(fake.engine.binding_handle(no_handle), None);
    let opened = open_bare(&mut fake, 3, 0x4010);
    assert_eq!(fake.engine.binding_handle(opened), Some(Handle(0x4010)));
}

/// The glue finds a binding's I/O block (open and close events, the AF handle slot) by the
/// cookie it gave at bind: each binding returns its own until it is gone.
#[test]
fn each_binding_returns_the_cookie_it_was_bound_with_until_it_is_gone() {
    let mut fake = synchronous();
    let first = open_bare(&mut fake, 0x7000, 0x10);
    let second = open_bare(&mut fake, 0x8000, 0x20);
    assert_eq!(fake.engine.binding_cookie(first), Some(0x7000));
    assert_eq!(fake.engine.binding_cookie(second), Some(0x8000));
    fake.unbind(first);
    assert_eq!(fake.engine.binding_cookie(first), None, "closed: its I/O block is freed");
    assert_eq!(fake.engine.binding_cookie(second), Some(0x8000));
}

/// ProtocolUnbindAdapterEx: a binding with no address family is quiet at once (the adapter may
/// be closed straight away); one with an address family is not, and NdisCloseAdapterEx is
/// refused until its address families are closed (nf-ndis-ndiscloseadapterex: every CoNDIS
/// object on the binding released first).
#[test]
fn the_adapter_closes_only_once_its_address_families_are_closed() {
    let mut fake = synchronous();
    let bare = open_bare(&mut fake, 1, 0x10);
    assert_eq!(fake.engine.unbind(bare), Ok(true), "no AF: quiet at once");
    assert_eq!(fake.engine.begin_close_adapter(bare), Ok(Handle(0x10)));
    fake.engine.on_close_adapter_complete(bare).expect("closed");

    let mut policy = Policy::synchronous();
    policy.pending = 1000;
    let mut fake = Fake::new(policy);
    let (binding, _af) = fake.open_binding();
    fake.settle();
    assert_eq!(fake.engine.unbind(binding), Ok(false), "its AF must close first");
    fake.settle();
    assert!(!fake.engine.binding_quiet(binding), "NdisClCloseAddressFamily pends");
    assert_eq!(
        fake.engine.begin_close_adapter(binding),
        Err(Error::InvalidState(partyline_core::trace::ObjectKind::Binding))
    );
    assert!(matches!(
        fake.engine.bindings().find(|b| b.0 == binding).map(|b| b.1),
        Some(BindingState::Unbinding { .. })
    ));
    fake.deliver_all();
    assert!(fake.engine.binding_quiet(binding));
    assert!(fake.engine.begin_close_adapter(binding).is_ok());
}

/// The glue finds the reserve block for an address family's OID_CO_GET_ADDRESSES query through
/// the cookie of the binding the AF is on: each AF gives its own binding's, and a freed AF none.
#[test]
fn an_address_family_gives_the_cookie_of_its_binding() {
    let mut fake = synchronous();
    let (first, first_af) = fake.open_binding();
    let second = open_bare(&mut fake, 0x9000, 0x30);
    let second_af = fake.with_memory(|e| e.on_af_register_notify(second, 1, 3, 1)).expect("af");
    assert_eq!(fake.engine.af_cookie(first_af), fake.engine.binding_cookie(first));
    assert_eq!(fake.engine.af_cookie(second_af), Some(0x9000));
    fake.engine.on_open_af_complete(second_af, Status::FAILURE, Handle::NULL).expect("failed open");
    assert_eq!(fake.engine.af_cookie(second_af), None, "the AF is gone");
}
