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
}

impl Policy {
    pub fn new(seed: u64) -> Self {
        Policy { state: seed ^ 0x9E37_79B9_7F4A_7C15, failure: 100, pending: 300, early: 200 }
    }

    pub fn synchronous() -> Self {
        Policy { state: 1, failure: 0, pending: 0, early: 0 }
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
    MakeCall { call: Id, vc: usize, party: usize, status: Status },
    AddParty { party: Id, vc: usize, handle: usize, status: Status },
    DropParty { party: Id, vc: usize, handle: usize },
    CloseCall { call: Id, vc: usize },
    CloseAf { af: Id, handle: usize },
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
            next_handle: 0x1000,
        }
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

    /// A binding with an open Q.2931 address family, both opened synchronously.
    pub fn open_binding(&mut self) -> (Id, Id) {
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
            Action::MakeCall { call, party, vc, leaf, profile } => {
                let _ = profile.validate();
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
            Action::AddParty { call: _, party, vc, leaf, .. } => {
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
                if v.leaves.contains(&leaf) {
                    // The network refuses a leaf twice on one call; the engine must cope.
                }
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
                let live = v.parties.values().filter(|(s, _)| *s != CmParty::Dropping).count();
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
                let v = self.vcs.get_mut(&vc).expect("found above");
                v.parties.insert(handle.0, (CmParty::Dropping, party));
                let outcome = self.policy.outcome(false);
                self.complete_now_or_later(Owed::DropParty { party, vc, handle: handle.0 }, outcome);
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
                        } else if parties[0].1 .0 == CmParty::Adding || parties[0].1 .0 == CmParty::Dropping {
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
                let outcome = self.policy.outcome(false);
                self.complete_now_or_later(Owed::CloseCall { call, vc: vc.0 }, outcome);
            }
            Action::DeleteVc { call, vc } => {
                match self.vcs.get(&vc.0).map(|v| v.call) {
                    Some(CmCall::None | CmCall::Closed) => {
                        self.vcs.remove(&vc.0);
                    }
                    Some(state) => self.violation("NdisCoDeleteVc", format!("VC {vc:?} call is {state:?}")),
                    None => self.violation("NdisCoDeleteVc", format!("unknown VC {vc:?}")),
                }
                if let Some(meanwhile) = self.meanwhile.take() {
                    (meanwhile.requests)(&mut self.engine, call);
                }
                self.engine.on_vc_deleted(call, Status::SUCCESS).expect("vc deleted");
            }
            Action::CloseAf { af, handle } => {
                if self.vcs.values().any(|v| v.af == handle) {
                    self.violation("NdisClCloseAddressFamily", format!("{handle:?} still has VCs"));
                }
                match self.afs.get_mut(&handle.0) {
                    Some(entry) if !entry.2 => entry.2 = true,
                    _ => self.violation("NdisClCloseAddressFamily", format!("{handle:?} is not open")),
                }
                let outcome = self.policy.outcome(false);
                self.complete_now_or_later(Owed::CloseAf { af, handle: handle.0 }, outcome);
            }
            Action::NotifyCloseAfComplete { handle } => match self.afs.get_mut(&handle.0) {
                Some(entry) if entry.1 && entry.2 => entry.1 = false,
                _ => self
                    .violation("NdisClNotifyCloseAddressFamilyComplete", format!("{handle:?} not pending")),
            },
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
            Owed::DropParty { vc, handle, .. } => {
                if let Some(v) = self.vcs.get_mut(&vc) {
                    v.parties.remove(&handle);
                }
            }
            Owed::CloseCall { vc, .. } => {
                if let Some(v) = self.vcs.get_mut(&vc) {
                    v.call = CmCall::Closed;
                    v.parties.clear();
                }
            }
            // Kept while a notification is (or may still be) pending on it.
            Owed::CloseAf { .. } => {}
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
            Owed::DropParty { party, .. } => self.engine.on_drop_party_complete(party, Status::SUCCESS),
            Owed::CloseCall { call, .. } => self.engine.on_close_call_complete(call, Status::SUCCESS),
            Owed::CloseAf { af, .. } => self.engine.on_close_af_complete(af, Status::SUCCESS),
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
                v.parties.iter().filter(|(_, s)| s.0 == CmParty::Active).map(move |(h, s)| (*vc, *h, s.1))
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let (vc, handle, party) = candidates[(pick % candidates.len() as u64) as usize];
        self.remote_drop_at(vc, handle, party);
    }

    /// The network drops the party `handle` of `vc` (`party` is the client's context).
    fn remote_drop_at(&mut self, vc: usize, handle: usize, party: Id) {
        let others =
            self.vcs[&vc].parties.iter().filter(|(h, s)| **h != handle && s.0 != CmParty::Dropping).count();
        if others == 0 {
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
                if info.connected != count(CmParty::Active) {
                    self.violations.push(format!(
                        "count: engine has {} connected on {vc:x}, the call manager {}",
                        info.connected,
                        count(CmParty::Active)
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

pub fn profile() -> TrafficProfile {
    TrafficProfile::DEFAULT
}
