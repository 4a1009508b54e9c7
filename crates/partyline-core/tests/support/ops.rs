//! The operations the engine's property and transition tests drive it with, and the driver
//! that applies them to a [`Fake`]: local requests, the four ways a request ends, remote drops
//! and releases, close-AF and reopen, requests arriving while a VC request is in flight.

use partyline_core::{Id, Status};

use super::{leaf, lend, profile, Fake, Meanwhile, Policy};

#[derive(Clone, Debug)]
pub enum Op {
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
pub struct DuringVcRequest {
    pub pick: u64,
    pub make: bool,
    pub delete: bool,
    pub fail: bool,
}

/// Runs an engine request, lending memory as often as it asks (as `Fake::with_memory`).
pub fn with_memory<T>(
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

pub fn pick<T: Copy>(items: &[T], pick: u64) -> Option<T> {
    (!items.is_empty()).then(|| items[(pick % items.len() as u64) as usize])
}

/// A fake with one open binding and address family, and the operations applied to it so far.
pub struct Driver {
    pub fake: Fake,
    pub binding: Id,
    pub af: Option<Id>,
    next_leaf: u32,
}

impl Driver {
    pub fn new(seed: u64) -> Driver {
        let mut fake = Fake::new(Policy::new(seed));
        let (binding, af) = fake.open_binding();
        Driver { fake, binding, af: Some(af), next_leaf: 1 }
    }

    /// Applies `op`, the `step`-th operation.
    pub fn apply(&mut self, step: usize, op: &Op) {
        let Driver { fake, binding, af, next_leaf } = self;
        let binding = *binding;
        let calls: Vec<Id> = fake.engine.calls().map(|(c, _)| c).collect();
        match op {
            Op::MakeCall { leaves } => {
                if let Some(af) = *af {
                    let addresses: Vec<_> = (0..*leaves).map(|i| leaf(*next_leaf + i as u32)).collect();
                    *next_leaf += *leaves as u32;
                    let _ = fake.with_memory(|e| e.make_call(af, profile(), addresses.iter().copied()));
                    fake.settle();
                }
            }
            Op::AddParty { pick: p } => {
                if let Some(call) = pick(&calls, *p) {
                    *next_leaf += 1;
                    let _ = fake.with_memory(|e| e.add_party(call, leaf(*next_leaf)));
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
                let (p, af, address) = (*p, af.filter(|_| *make), leaf(*next_leaf));
                *next_leaf += 1;
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
                        *af = Some(new_af);
                    }
                }
            }
        }
    }
}
