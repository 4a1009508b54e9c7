//! A fake NDIS and ATM call manager for the engine's tests: it performs the engine's actions,
//! completes them in one of the four ways a real request can end, and checks every rule of the
//! NDIS client documentation the way the simulator's verifier does (as violations, not panics).

#![allow(dead_code)]

pub mod ops;

use partyline_core::engine::{AddressFamily, Binding, Call, Party};
use partyline_core::slab::{Slot, CHUNK_LEN};
use partyline_core::{
    Action, AtmAddress, Engine, Error, Handle, Id, LentMemory, Status, Table, TrafficProfile,
};
use std::collections::BTreeMap;

/// How a request ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Returns SUCCESS: the caller runs its own completion.
    SyncSuccess,
    /// Returns a failure: the caller runs its own completion.
    SyncFailure,
    /// Returns PENDING; the completion comes later.
    Pending,
    /// The completion runs (on another processor) before the request returns PENDING.
    CompleteBeforeReturn,
}

/// Chooses outcomes from a seed, so a failing case replays.
pub struct Policy {
    state: u64,
    /// Per mille of requests that fail (MakeCall, AddParty).
    pub failure: u32,
    /// Per mille of requests that pend.
    pub pending: u32,
    /// Per mille of requests whose completion runs before they return.
    pub early: u32,
    /// Per mille of teardown requests that fail (NdisClDropParty, NdisClCloseCall, NdisCoDeleteVc,
    /// NdisClCloseAddressFamily), each with a status its page lists.
    pub teardown_failure: u32,
}

impl Policy {
    pub fn new(seed: u64) -> Self {
        Policy {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
            failure: 100,
            pending: 300,
            early: 200,
            teardown_failure: 80,
        }
    }

    pub fn synchronous() -> Self {
        Policy { state: 1, failure: 0, pending: 0, early: 0, teardown_failure: 0 }
    }

    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn per_mille(&mut self) -> u32 {
        (self.next() % 1000) as u32
    }

    /// Whether a teardown request fails (draws nothing when none may).
    pub fn teardown_fails(&mut self) -> bool {
        self.teardown_failure > 0 && self.per_mille() < self.teardown_failure
    }

    pub fn outcome(&mut self, can_fail: bool) -> Outcome {
        if can_fail && self.per_mille() < self.failure {
            return Outcome::SyncFailure;
        }
        let roll = self.per_mille();
        if roll < self.pending {
            Outcome::Pending
        } else if roll < self.pending + self.early {
            Outcome::CompleteBeforeReturn
        } else {
            Outcome::SyncSuccess
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmCall {
    None,
    Making,
    Active,
    Closing,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmParty {
    Adding,
    Active,
    /// The call manager dispatched IncomingDropParty; only the client's NdisClDropParty may
    /// name this handle now.
    RemoteDropped,
    /// NdisClDropParty was called: the handle is dead.
    Dropping,
    /// Its NdisClDropParty completed with FAILURE: the call manager keeps it as the call's last
    /// party (nc-ndis-protocol_cl_drop_party_complete), to go with NdisClCloseCall; it is never
    /// dropped again.
    Refused,
}

pub struct CmVc {
    pub af: Handle,
    pub context: Id,
    pub call: CmCall,
    pub parties: BTreeMap<usize, (CmParty, Id)>,
    pub leaves: Vec<AtmAddress>,
}

/// A completion the fake owes the engine.
#[derive(Clone, Copy, Debug)]
pub enum Owed {
    MakeCall {
        call: Id,
        vc: usize,
        party: usize,
        status: Status,
    },
    AddParty {
        party: Id,
        vc: usize,
        handle: usize,
        status: Status,
    },
    DropParty {
        party: Id,
        vc: usize,
        handle: usize,
        status: Status,
    },
    CloseCall {
        call: Id,
        vc: usize,
        status: Status,
    },
    CloseAf {
        af: Id,
        handle: usize,
        status: Status,
    },
    /// OID_CO_GET_ADDRESSES, asked after change number `epoch`: the list holds `address`, or
    /// the query fails with `status`.
    Addresses {
        af: Id,
        status: Status,
        address: Option<AtmAddress>,
        epoch: u64,
    },
}

/// Control requests, given the call whose VC request is in flight.
pub type Requests = Box<dyn FnOnce(&mut Engine, Id)>;

/// Requests made while the next VC request is in flight, before it returns to the engine.
pub struct Meanwhile {
    /// Waits for an `NdisCoDeleteVc` (else the next `NdisCoCreateVc` or `NdisCoDeleteVc`).
    pub delete_only: bool,
    /// The `NdisCoCreateVc` they interrupt fails (NDIS_STATUS_RESOURCES).
    pub fail_create: bool,
    pub requests: Requests,
}

pub struct Fake {
    pub engine: Engine,
    pub policy: Policy,
    pub vcs: BTreeMap<usize, CmVc>,
    pub afs: BTreeMap<usize, (Id, bool /* notify pending */, bool /* closed */)>,
    pub owed: Vec<Owed>,
    pub violations: Vec<String>,
    pub requests: Vec<Action>,
    pub quiet_bindings: Vec<Id>,
    /// Bindings the engine asked NDIS to unbind (NdisUnbindAdapter).
    pub unbind_requests: Vec<Id>,
    /// Control requests that reach the engine on another processor while an `NdisCoCreateVc`
    /// or `NdisCoDeleteVc` is in flight (the glue makes both with the lock released).
    pub meanwhile: Option<Meanwhile>,
    /// The adapter's registered ATM address, as the call manager hands it out
    /// (OID_CO_GET_ADDRESSES) and expects as the calling party of every SETUP and ADD PARTY.
    pub local_address: AtmAddress,
    /// Queries the call manager still fails (NDIS_STATUS_RESOURCES) before it answers.
    pub failing_queries: u32,
    /// The address the last query asked after a change was answered with, accepted as the
    /// calling party while a later change is not yet answered (as the simulator does).
    pub known_address: Option<AtmAddress>,
    pub change_unanswered: bool,
    /// Changes announced so far.
    pub changes: u64,
    /// The next this-many requests of each named export fail (a teardown request: with the
    /// status its page lists), whatever the policy draws.
    pub fail_next: BTreeMap<&'static str, u32>,
    next_handle: usize,
}

impl Fake {
    pub fn new(policy: Policy) -> Self {
        Fake {
            engine: Engine::new(),
            policy,
            vcs: BTreeMap::new(),
            afs: BTreeMap::new(),
            owed: Vec::new(),
            violations: Vec::new(),
            requests: Vec::new(),
            quiet_bindings: Vec::new(),
            unbind_requests: Vec::new(),
            meanwhile: None,
            local_address: own_address(1),
            failing_queries: 0,
            known_address: None,
            change_unanswered: false,
            changes: 0,
            fail_next: BTreeMap::new(),
            next_handle: 0x1000,
        }
    }

    /// Whether this request of `export` fails: scripted by [`Fake::fail_next`], else drawn.
    fn teardown_fails(&mut self, export: &'static str) -> bool {
        match self.fail_next.get_mut(export) {
            Some(count) if *count > 0 => {
                *count -= 1;
                true
            }
            _ => self.policy.teardown_fails(),
        }
    }

    /// Whether [`Fake::teardown_fails`] can answer true for `export` (it draws nothing then).
    fn teardown_may_fail(&self, export: &'static str) -> bool {
        self.fail_next.get(export).is_some_and(|count| *count > 0) || self.policy.teardown_failure > 0
    }

    fn handle(&mut self) -> usize {
        self.next_handle += 0x10;
        self.next_handle
    }

    fn violation(&mut self, rule: &str, detail: String) {
        self.violations.push(format!("{rule}: {detail}"));
    }

    /// Runs an engine request, lending memory as often as it asks.
    pub fn with_memory<T>(
        &mut self,
        mut request: impl FnMut(&mut Engine) -> Result<T, Error>,
    ) -> Result<T, Error> {
        loop {
            match request(&mut self.engine) {
                Err(Error::NeedMemory(table, need)) => lend(&mut self.engine, table, need),
                other => return other,
            }
        }
    }

    /// A binding with an open Q.2931 address family, both opened synchronously, that knows its
    /// own address.
    pub fn open_binding(&mut self) -> (Id, Id) {
        let (binding, af) = self.open_binding_without_address();
        self.learn_address(af);
        (binding, af)
    }

    /// [`Fake::open_binding`] before the call manager's OID_CO_ADDRESS_CHANGE.
    pub fn open_binding_without_address(&mut self) -> (Id, Id) {
        let binding = self.with_memory(|e| e.bind(7)).expect("bind");
        let handle = Handle(self.handle());
        self.engine.on_open_adapter_complete(binding, Status::SUCCESS, handle).expect("open");
        // NDIS restarts a binding it has just bound (network/binding-states-of-a-protocol-driver).
        self.engine.on_restart(binding).expect("restart");
        let af = self.with_memory(|e| e.on_af_register_notify(binding, 1, 3, 1)).expect("af");
        let af_handle = self.handle();
        self.afs.insert(af_handle, (af, false, false));
        self.engine.on_open_af_complete(af, Status::SUCCESS, Handle(af_handle)).expect("open af");
        (binding, af)
    }

    /// The call manager's OID_CO_ADDRESS_CHANGE right after the open (oid-co-address-change),
    /// and the client's query answered at once: the AF knows its own address.
    pub fn learn_address(&mut self, af: Id) {
        self.engine.on_address_change(af).expect("address change");
        let action = self.engine.poll();
        let Some(action @ Action::QueryAddresses { .. }) = action else {
            panic!("expected the address query first, got {action:?}");
        };
        let (pending, early) = (self.policy.pending, self.policy.early);
        (self.policy.pending, self.policy.early) = (0, 0);
        self.perform(action);
        (self.policy.pending, self.policy.early) = (pending, early);
        assert_eq!(self.engine.local_address(af), Some(self.local_address), "address learned");
    }

    /// Polls the engine and performs every action until it has nothing more to ask.
    pub fn settle(&mut self) {
        let mut guard = 0u64;
        while let Some(action) = self.engine.poll() {
            self.requests.push(action);
            self.perform(action);
            guard += 1;
            assert!(guard < 10_000_000, "the engine never settles");
        }
    }

    fn complete_now_or_later(&mut self, owed: Owed, outcome: Outcome) {
        match outcome {
            Outcome::Pending => self.owed.push(owed),
            _ => self.deliver(owed),
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::CreateVc { call, binding, af } => {
                if binding.is_null() || af.is_null() || self.afs.get(&af.0).is_none_or(|a| a.2) {
                    self.violation("NdisCoCreateVc", format!("bad binding/af handle {binding:?}/{af:?}"));
                }
                let meanwhile = self.meanwhile.take_if(|m| !m.delete_only);
                let created = !meanwhile.as_ref().is_some_and(|m| m.fail_create);
                let vc = if created { self.handle() } else { 0 };
                if created {
                    self.vcs.insert(
                        vc,
                        CmVc {
                            af,
                            context: call,
                            call: CmCall::None,
                            parties: BTreeMap::new(),
                            leaves: vec![],
                        },
                    );
                }
                if let Some(meanwhile) = meanwhile {
                    (meanwhile.requests)(&mut self.engine, call);
                }
                let status = if created { Status::SUCCESS } else { Status::RESOURCES };
                self.engine.on_vc_created(call, status, Handle(vc)).expect("vc created");
            }
            Action::MakeCall { call, party, vc, leaf, calling, profile } => {
                let _ = profile.validate();
                self.check_calling("NdisClMakeCall", calling);
                let Some(v) = self.vcs.get_mut(&vc.0) else {
                    self.violation("NdisClMakeCall", format!("unknown VC {vc:?}"));
                    return;
                };
                if v.call != CmCall::None {
                    let state = v.call;
                    self.violation("NdisClMakeCall", format!("VC {vc:?} already has a call ({state:?})"));
                    return;
                }
                v.call = CmCall::Making;
                v.leaves.push(leaf);
                let handle = self.handle();
                if let Some(v) = self.vcs.get_mut(&vc.0) {
                    v.parties.insert(handle, (CmParty::Adding, party));
                }
                let outcome = self.policy.outcome(true);
                let status = if outcome == Outcome::SyncFailure { Status::FAILURE } else { Status::SUCCESS };
                self.complete_now_or_later(Owed::MakeCall { call, vc: vc.0, party: handle, status }, outcome);
            }
            Action::AddParty { call: _, party, vc, leaf, calling, .. } => {
                self.check_calling("NdisClAddParty", calling);
                let Some(v) = self.vcs.get_mut(&vc.0) else {
                    self.violation("NdisClAddParty", format!("unknown VC {vc:?}"));
                    return;
                };
                if v.call != CmCall::Active {
                    let state = v.call;
                    self.violation(
                        "NdisClAddParty",
                        format!("VC {vc:?} has no active multipoint call ({state:?})"),
                    );
                    return;
                }
                // A leaf asked for twice on one call is accepted here (a network may refuse it; the
                // engine must cope either way): no scan of `leaves`, which would make a call of
                // 65,535 parties quadratic.
                v.leaves.push(leaf);
                let handle = self.handle();
                if let Some(v) = self.vcs.get_mut(&vc.0) {
                    v.parties.insert(handle, (CmParty::Adding, party));
                }
                let outcome = self.policy.outcome(true);
                let status =
                    if outcome == Outcome::SyncFailure { Status::RESOURCES } else { Status::SUCCESS };
                self.complete_now_or_later(Owed::AddParty { party, vc: vc.0, handle, status }, outcome);
            }
            Action::DropParty { party, handle } => {
                let Some(vc) =
                    self.vcs.iter().find(|(_, v)| v.parties.contains_key(&handle.0)).map(|(k, _)| *k)
                else {
                    self.violation(
                        "NdisClDropParty",
                        format!("handle {handle:?} of {party:?} is not a live party"),
                    );
                    return;
                };
                let v = &self.vcs[&vc];
                let (state, context) = v.parties[&handle.0];
                // Two live parties are enough to tell (a full count is quadratic over a big call).
                let live = v.parties.values().filter(|(s, _)| *s != CmParty::Dropping).take(2).count();
                let call_state = v.call;
                if context != party {
                    self.violation(
                        "NdisClDropParty",
                        format!("handle {handle:?} belongs to {context:?}, not {party:?}"),
                    );
                }
                match state {
                    CmParty::Dropping => {
                        self.violation("NdisClDropParty", format!("{handle:?} used after it was dropped"));
                        return;
                    }
                    CmParty::Adding => {
                        self.violation(
                            "NdisClDropParty",
                            format!("{handle:?} dropped before its AddParty completed"),
                        );
                        return;
                    }
                    CmParty::Refused => {
                        self.violation(
                            "NdisClDropParty",
                            format!(
                                "{handle:?} dropped again after its drop was refused: use NdisClCloseCall"
                            ),
                        );
                        return;
                    }
                    _ => {}
                }
                if live < 2 {
                    self.violation(
                        "NdisClDropParty",
                        format!("{handle:?} is the last party: use NdisClCloseCall"),
                    );
                }
                if call_state != CmCall::Active {
                    self.violation("NdisClDropParty", format!("call on {vc:x} is {call_state:?}"));
                }
                // A call manager refuses a client's drop (FAILURE: "the last remaining" party), of
                // one party per call at most.
                // (The scans run only when a refusal can be drawn at all: they are linear in the
                // call's parties.)
                let refusable = state == CmParty::Active
                    && self.teardown_may_fail("NdisClDropParty")
                    && !self.vcs[&vc].parties.values().any(|(s, _)| *s == CmParty::Refused)
                    && !self.owed.iter().any(|o| {
                        matches!(o, Owed::DropParty { vc: v, status, .. } if *v == vc && !status.is_success())
                    });
                let status = if refusable && self.teardown_fails("NdisClDropParty") {
                    Status::FAILURE
                } else {
                    Status::SUCCESS
                };
                let v = self.vcs.get_mut(&vc).expect("found above");
                v.parties.insert(handle.0, (CmParty::Dropping, party));
                let outcome = self.policy.outcome(false);
                self.complete_now_or_later(Owed::DropParty { party, vc, handle: handle.0, status }, outcome);
            }
            Action::CloseCall { call, vc, party } => {
                let Some(v) = self.vcs.get_mut(&vc.0) else {
                    self.violation("NdisClCloseCall", format!("unknown VC {vc:?}"));
                    return;
                };
                if v.call != CmCall::Active {
                    let state = v.call;
                    self.violation("NdisClCloseCall", format!("VC {vc:?} call is {state:?}"));
                    return;
                }
                let parties: Vec<_> = v.parties.iter().map(|(h, s)| (*h, *s)).collect();
                match party {
                    Some((_, handle)) => {
                        if parties.len() != 1 || parties[0].0 != handle.0 {
                            self.violation(
                                "NdisClCloseCall",
                                format!("multipoint close with {handle:?} while the call has {parties:?}"),
                            );
                        } else if !matches!(parties[0].1 .0, CmParty::Active | CmParty::Refused) {
                            self.violation(
                                "NdisClCloseCall",
                                format!("close with party in state {:?}", parties[0]),
                            );
                        }
                    }
                    None => {
                        if !parties.is_empty() {
                            self.violation(
                                "NdisClCloseCall",
                                format!("NULL party while the call has {parties:?}"),
                            );
                        }
                    }
                }
                if let Some(v) = self.vcs.get_mut(&vc.0) {
                    v.call = CmCall::Closing;
                }
                let status =
                    if self.teardown_fails("NdisClCloseCall") { Status::RESOURCES } else { Status::SUCCESS };
                let outcome = self.policy.outcome(false);
                self.complete_now_or_later(Owed::CloseCall { call, vc: vc.0, status }, outcome);
            }
            Action::DeleteVc { call, vc } => {
                // nf-ndis-ndiscodeletevc: NOT_ACCEPTED leaves the VC alive.
                let status = if self.teardown_fails("NdisCoDeleteVc") {
                    Status(ndis_sys::NDIS_STATUS_NOT_ACCEPTED)
                } else {
                    Status::SUCCESS
                };
                match self.vcs.get(&vc.0).map(|v| v.call) {
                    Some(CmCall::None | CmCall::Closed) => {
                        if status.is_success() {
                            self.vcs.remove(&vc.0);
                        }
                    }
                    Some(state) => self.violation("NdisCoDeleteVc", format!("VC {vc:?} call is {state:?}")),
                    None => self.violation("NdisCoDeleteVc", format!("unknown VC {vc:?}")),
                }
                if let Some(meanwhile) = self.meanwhile.take() {
                    (meanwhile.requests)(&mut self.engine, call);
                }
                self.engine.on_vc_deleted(call, status).expect("vc deleted");
            }
            Action::CloseAf { af, handle } => {
                if self.vcs.values().any(|v| v.af == handle) {
                    self.violation("NdisClCloseAddressFamily", format!("{handle:?} still has VCs"));
                }
                match self.afs.get_mut(&handle.0) {
                    Some(entry) if !entry.2 => entry.2 = true,
                    _ => self.violation("NdisClCloseAddressFamily", format!("{handle:?} is not open")),
                }
                let status = if self.teardown_fails("NdisClCloseAddressFamily") {
                    Status::FAILURE
                } else {
                    Status::SUCCESS
                };
                let outcome = self.policy.outcome(false);
                self.complete_now_or_later(Owed::CloseAf { af, handle: handle.0, status }, outcome);
            }
            Action::NotifyCloseAfComplete { handle } => match self.afs.get_mut(&handle.0) {
                Some(entry) if entry.1 && entry.2 => entry.1 = false,
                _ => self
                    .violation("NdisClNotifyCloseAddressFamilyComplete", format!("{handle:?} not pending")),
            },
            Action::QueryAddresses { af, handle, length, .. } => {
                if self.afs.get(&handle.0).is_none_or(|a| a.2 || a.0 != af) {
                    self.violation("NdisCoOidRequest", format!("{handle:?} is not the open AF of {af:?}"));
                }
                if (length as usize) < 8 + 32 {
                    self.violation(
                        "NdisCoOidRequest",
                        format!("{length}-byte buffer cannot hold one address"),
                    );
                }
                let (status, address) = if self.failing_queries > 0 {
                    self.failing_queries -= 1;
                    (Status::RESOURCES, None)
                } else {
                    (Status::SUCCESS, Some(self.local_address))
                };
                let outcome = self.policy.outcome(false);
                let epoch = self.changes;
                self.complete_now_or_later(Owed::Addresses { af, status, address, epoch }, outcome);
            }
            Action::BindingQuiet { binding, .. } => self.quiet_bindings.push(binding),
            Action::UnbindAdapter { binding, .. } => self.unbind_requests.push(binding),
        }
    }

    /// Delivers one owed completion (as NDIS would, through the client's handler).
    pub fn deliver(&mut self, owed: Owed) {
        self.complete_in_cm(owed);
        self.complete_in_engine(owed);
    }

    /// The call manager's side of a completion: its state as of the moment it completes.
    fn complete_in_cm(&mut self, owed: Owed) {
        match owed {
            Owed::MakeCall { vc, party, status, .. } => {
                if let Some(v) = self.vcs.get_mut(&vc) {
                    if status.is_success() {
                        v.call = CmCall::Active;
                        if let Some(p) = v.parties.get_mut(&party) {
                            p.0 = CmParty::Active;
                        }
                    } else {
                        v.call = CmCall::None;
                        v.parties.clear();
                    }
                }
            }
            Owed::AddParty { vc, handle, status, .. } => {
                if let Some(v) = self.vcs.get_mut(&vc) {
                    if status.is_success() {
                        if let Some(p) = v.parties.get_mut(&handle) {
                            p.0 = CmParty::Active;
                        }
                    } else {
                        v.parties.remove(&handle);
                    }
                }
            }
            Owed::DropParty { vc, handle, status, .. } => {
                if let Some(v) = self.vcs.get_mut(&vc) {
                    if status.is_success() {
                        v.parties.remove(&handle);
                    } else if let Some(p) = v.parties.get_mut(&handle) {
                        p.0 = CmParty::Refused;
                    }
                }
            }
            Owed::CloseCall { vc, status, .. } => {
                if let Some(v) = self.vcs.get_mut(&vc) {
                    if status.is_success() {
                        v.call = CmCall::Closed;
                        v.parties.clear();
                    } else {
                        // The call manager failed the close: the call is still up.
                        v.call = CmCall::Active;
                    }
                }
            }
            // Kept while a notification is (or may still be) pending on it; open again if the
            // close failed.
            Owed::CloseAf { handle, status, .. } => {
                if !status.is_success() {
                    if let Some(entry) = self.afs.get_mut(&handle) {
                        entry.2 = false;
                    }
                }
            }
            Owed::Addresses { .. } => {}
        }
    }

    /// The client's side: its completion handler runs.
    fn complete_in_engine(&mut self, owed: Owed) {
        let result = match owed {
            Owed::MakeCall { call, party, status, .. } => {
                let handle = if status.is_success() { Handle(party) } else { Handle::NULL };
                self.engine.on_make_call_complete(call, status, handle, false)
            }
            Owed::AddParty { party, handle, status, .. } => {
                let h = if status.is_success() { Handle(handle) } else { Handle::NULL };
                self.engine.on_add_party_complete(party, status, h, false)
            }
            Owed::DropParty { party, status, .. } => self.engine.on_drop_party_complete(party, status),
            Owed::CloseCall { call, status, .. } => self.engine.on_close_call_complete(call, status),
            Owed::CloseAf { af, status, .. } => self.engine.on_close_af_complete(af, status),
            Owed::Addresses { af, status, address, epoch } => {
                // The call manager answers with the address registered when it answers; only a
                // query asked after the last change answers it (an earlier one may be stale).
                let address = address.map(|_| self.local_address);
                if status.is_success() && epoch == self.changes {
                    self.change_unanswered = false;
                    self.known_address = address;
                }
                self.engine.on_addresses_queried(af, status, address, 0)
            }
        };
        if let Err(error) = result {
            self.violation("completion", format!("{owed:?} refused by the engine: {error:?}"));
        }
    }

    /// The call manager completes the owed request at `index` (modulo the count), and before the
    /// client's completion handler gets to it (another processor), the network drops one of the
    /// active parties (`pick`) or releases its call: the race the client must survive.
    pub fn deliver_racing_remote_event(&mut self, index: usize, pick: u64) {
        if self.owed.is_empty() {
            return;
        }
        let owed = self.owed.remove(index % self.owed.len());
        self.complete_in_cm(owed);
        match owed {
            // The very party this completion gives the client.
            Owed::MakeCall { vc, party, status, .. } | Owed::AddParty { vc, handle: party, status, .. }
                if status.is_success() =>
            {
                let context = self.vcs.get(&vc).and_then(|v| v.parties.get(&party)).map(|p| p.1);
                if let Some(context) = context {
                    self.remote_drop_at(vc, party, context);
                }
            }
            _ => self.remote_drop(pick),
        }
        self.complete_in_engine(owed);
        self.settle();
    }

    /// Delivers the owed completion at `index` (modulo the count) and settles.
    pub fn deliver_one(&mut self, index: usize) {
        if self.owed.is_empty() {
            return;
        }
        let owed = self.owed.remove(index % self.owed.len());
        self.deliver(owed);
        self.settle();
    }

    /// Delivers every owed completion except pending AddParty ones.
    pub fn deliver_all_but_adds(&mut self) {
        while let Some(index) = self.owed.iter().position(|o| !matches!(o, Owed::AddParty { .. })) {
            self.deliver_one(index);
        }
    }

    pub fn deliver_all(&mut self) {
        while !self.owed.is_empty() {
            self.deliver_one(0);
        }
    }

    /// The call manager drops an active party remotely: IncomingDropParty if it is not the last,
    /// IncomingCloseCall if it is.
    pub fn remote_drop(&mut self, pick: u64) {
        let candidates: Vec<(usize, usize, Id)> = self
            .vcs
            .iter()
            .filter(|(_, v)| v.call == CmCall::Active)
            .flat_map(|(vc, v)| {
                v.parties
                    .iter()
                    .filter(|(_, s)| matches!(s.0, CmParty::Active | CmParty::Refused))
                    .map(move |(h, s)| (*vc, *h, s.1))
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let (vc, handle, party) = candidates[(pick % candidates.len() as u64) as usize];
        self.remote_drop_at(vc, handle, party);
    }

    /// The network drops the client's party `party`: IncomingDropParty, or IncomingCloseCall if
    /// it is the last.
    pub fn remote_drop_party(&mut self, party: Id) {
        let found = self.vcs.iter().find_map(|(vc, v)| {
            v.parties.iter().find(|(_, state)| state.1 == party).map(|(handle, _)| (*vc, *handle))
        });
        let (vc, handle) = found.expect("a party the call manager knows");
        self.remote_drop_at(vc, handle, party);
    }

    /// The network drops the party `handle` of `vc` (`party` is the client's context).
    fn remote_drop_at(&mut self, vc: usize, handle: usize, party: Id) {
        let others =
            self.vcs[&vc].parties.iter().filter(|(h, s)| **h != handle && s.0 != CmParty::Dropping).count();
        // A party whose drop the call manager refused is, for it, the call's last one.
        let refused = self.vcs[&vc].parties.get(&handle).is_some_and(|s| s.0 == CmParty::Refused);
        if others == 0 || refused {
            self.remote_close_vc(vc, Status::SUCCESS);
            return;
        }
        if let Some(v) = self.vcs.get_mut(&vc) {
            v.parties.insert(handle, (CmParty::RemoteDropped, party));
        }
        if let Err(e) = self.engine.on_incoming_drop_party(party, Status::SUCCESS) {
            self.violation("ProtocolClIncomingDropParty", format!("{party:?} refused: {e:?}"));
        }
        self.settle();
    }

    /// The network releases a whole call.
    pub fn remote_close(&mut self, pick: u64, status: Status) {
        let active: Vec<usize> =
            self.vcs.iter().filter(|(_, v)| v.call == CmCall::Active).map(|(vc, _)| *vc).collect();
        if active.is_empty() {
            return;
        }
        self.remote_close_vc(active[(pick % active.len() as u64) as usize], status);
    }

    fn remote_close_vc(&mut self, vc: usize, status: Status) {
        let context = self.vcs[&vc].context;
        if let Err(e) = self.engine.on_incoming_close_call(context, status) {
            self.violation("ProtocolClIncomingCloseCall", format!("{context:?} refused: {e:?}"));
        }
        self.settle();
    }

    /// The call manager closes an address family (ProtocolClNotifyCloseAf).
    pub fn notify_close_af(&mut self, af: Id) {
        let handle = self.afs.iter().find(|(_, a)| a.0 == af && !a.2).map(|(h, _)| *h);
        let Some(handle) = handle else { return };
        if let Err(e) = self.engine.on_notify_close_af(af) {
            self.violation("ProtocolClNotifyCloseAf", format!("{af:?} refused: {e:?}"));
            return;
        }
        // The handler drives the teardown before it returns, as the glue does.
        self.settle();
        match self.engine.finish_notify_close_af(af) {
            Status::PENDING => {
                if let Some(a) = self.afs.get_mut(&handle) {
                    a.1 = true;
                }
            }
            _ => {
                // Closed inside the handler: no completion is owed.
                self.afs.remove(&handle);
            }
        }
        self.settle();
    }

    /// ProtocolUnbindAdapterEx as the glue runs it: tear down, wait (delivering completions as
    /// NDIS would while the unbind thread waits), then close the adapter.
    pub fn unbind(&mut self, binding: Id) {
        let Ok(_) = self.engine.unbind(binding) else { return };
        self.settle();
        while !self.engine.binding_quiet(binding) {
            assert!(
                !self.owed.is_empty(),
                "unbind waits for a completion nobody owes: {:?}",
                self.engine.population()
            );
            self.deliver_one(0);
        }
        let _handle = self.engine.begin_close_adapter(binding).expect("close adapter");
        self.engine.on_close_adapter_complete(binding).expect("adapter closed");
    }

    /// The switch address changes to `address` (or is announced again, unchanged), and the next
    /// `failing` queries fail: OID_CO_ADDRESS_CHANGE on the AF (oid-co-address-change).
    pub fn address_change(&mut self, af: Id, address: AtmAddress, failing: u32) {
        self.local_address = address;
        self.change_unanswered = true;
        self.changes += 1;
        self.failing_queries = failing;
        if let Err(e) = self.engine.on_address_change(af) {
            self.violation("ProtocolCoOidRequest", format!("OID_CO_ADDRESS_CHANGE on {af:?} refused: {e:?}"));
        }
        self.settle();
    }

    /// The calling party of a SETUP or ADD PARTY must be the adapter's registered address
    /// (atm-call-params.md §3).
    fn check_calling(&mut self, request: &str, calling: AtmAddress) {
        let previous = self.change_unanswered && self.known_address == Some(calling);
        if calling != self.local_address && !previous {
            let expected = self.local_address;
            self.violation(request, format!("calling party {calling:?} is not the registered {expected:?}"));
        }
    }

    /// Checks the engine's view of every call against the call manager's.
    pub fn check_consistency(&mut self) {
        for (vc, v) in &self.vcs {
            let Some(info) = self.engine.call_info(v.context) else {
                if v.call != CmCall::Closed && v.call != CmCall::None {
                    self.violations
                        .push(format!("leak: VC {vc:x} has a {:?} call but the engine forgot it", v.call));
                }
                continue;
            };
            let count = |s: CmParty| v.parties.values().filter(|p| p.0 == s).count() as u32;
            if v.call == CmCall::Active {
                let connected = count(CmParty::Active) + count(CmParty::Refused);
                if info.connected != connected {
                    self.violations.push(format!(
                        "count: engine has {} connected on {vc:x}, the call manager {}",
                        info.connected, connected
                    ));
                }
                if info.dropping != count(CmParty::Dropping) {
                    self.violations.push(format!(
                        "count: engine has {} dropping on {vc:x}, the call manager {}",
                        info.dropping,
                        count(CmParty::Dropping)
                    ));
                }
                if count(CmParty::RemoteDropped) != 0 {
                    self.violations
                        .push(format!("a remote drop on {vc:x} was not answered with NdisClDropParty"));
                }
            }
            if info.adding != count(CmParty::Adding) {
                self.violations.push(format!(
                    "count: engine has {} adding on {vc:x}, the call manager {}",
                    info.adding,
                    count(CmParty::Adding)
                ));
            }
        }
        if self.engine.counters.lost_actions != 0 {
            self.violations.push(format!("engine lost actions: {:?}", self.engine.counters));
        }
    }
}

/// Lends host memory to an engine table (the driver lends nonpaged pool).
pub fn lend(engine: &mut Engine, table: Table, need: partyline_core::slab::Exhausted) {
    use partyline_core::slab::{Chunk, Directory, Exhausted, Returned};
    fn chunk<T>() -> Chunk<T> {
        let slots = (0..CHUNK_LEN).map(|_| Slot::VACANT).collect::<Vec<_>>().into_boxed_slice();
        Box::leak(Box::<[Slot<T>; CHUNK_LEN]>::try_from(slots).ok().expect("CHUNK_LEN slots"))
    }
    fn directory<T>(len: usize) -> Directory<T> {
        Box::leak((0..len).map(|_| None).collect::<Vec<_>>().into_boxed_slice())
    }
    let memory = match (table, need) {
        (Table::Bindings, Exhausted::Chunk) => LentMemory::Bindings(Returned::Chunk(chunk::<Binding>())),
        (Table::Bindings, Exhausted::Directory { len }) => {
            LentMemory::Bindings(Returned::Directory(directory::<Binding>(len)))
        }
        (Table::AddressFamilies, Exhausted::Chunk) => {
            LentMemory::AddressFamilies(Returned::Chunk(chunk::<AddressFamily>()))
        }
        (Table::AddressFamilies, Exhausted::Directory { len }) => {
            LentMemory::AddressFamilies(Returned::Directory(directory::<AddressFamily>(len)))
        }
        (Table::Calls, Exhausted::Chunk) => LentMemory::Calls(Returned::Chunk(chunk::<Call>())),
        (Table::Calls, Exhausted::Directory { len }) => {
            LentMemory::Calls(Returned::Directory(directory::<Call>(len)))
        }
        (Table::Parties, Exhausted::Chunk) => LentMemory::Parties(Returned::Chunk(chunk::<Party>())),
        (Table::Parties, Exhausted::Directory { len }) => {
            LentMemory::Parties(Returned::Directory(directory::<Party>(len)))
        }
    };
    // Memory the engine gives back here (an old directory) is simply leaked in tests.
    let _ = engine.lend(table, memory);
}

/// A valid NSAP leaf address numbered `n`.
pub fn leaf(n: u32) -> AtmAddress {
    let mut octets = [0u8; 20];
    octets[0] = 0x47;
    octets[1] = 0x00;
    octets[2] = 0x05;
    octets[15..19].copy_from_slice(&n.to_be_bytes());
    AtmAddress::nsap(&octets).expect("valid NSAP")
}

/// The adapter's own NSAP address numbered `n` (a private ICD address, AFI 0x47).
pub fn own_address(n: u32) -> AtmAddress {
    let mut octets = [0u8; 20];
    octets[0] = 0x47;
    octets[1] = 0x00;
    octets[2] = 0x91;
    octets[13..17].copy_from_slice(&n.to_be_bytes());
    AtmAddress::nsap(&octets).expect("valid NSAP")
}

pub fn profile() -> TrafficProfile {
    TrafficProfile::DEFAULT
}
