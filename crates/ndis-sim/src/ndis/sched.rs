//! The deterministic scheduler: one seeded generator (splitmix64 → xoshiro256**), the fault
//! policy that picks each request's outcome, and the queue of work due at virtual times.
//!
//! Read: verifier-rules.md §7.9 (fault injection and scheduling fuzz).
//!
//! Flow: an export asks [`Rng::outcome`] how to answer a request — synchronously, with
//! `NDIS_STATUS_PENDING` and a completion queued `delay` ticks later, or with the completion
//! delivered on another simulated processor *before* the request returns. Queued [`Work`] is run
//! in (due time, sequence) order by [`super::run_one`], which moves virtual time to the item's
//! due time. Every random choice comes from the one generator, so a seed replays a run exactly.

use std::fmt;

pub use crate::rng::Rng;

/// How requests are answered and what is injected. Weights are relative; rates are per 10 000.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultPolicy {
    /// Weight of answering a request synchronously.
    pub sync_weight: u32,
    /// Weight of returning PENDING and completing later.
    pub pending_weight: u32,
    /// Weight of completing on another processor before the request returns (then PENDING).
    pub cross_processor_weight: u32,
    /// Rate at which requests with a documented failure (RESOURCES) fail.
    pub request_failure_per_10000: u32,
    /// Rate at which NdisAllocateMemoryWithTagPriority returns NULL.
    pub allocation_failure_per_10000: u32,
    /// If non-empty, only these pool tags are failed.
    pub allocation_failure_tags: Vec<u32>,
    /// Rate at which callbacks allowed at DISPATCH_LEVEL are delivered at DISPATCH (else PASSIVE).
    pub dispatch_delivery_per_10000: u32,
    /// Pending completions arrive 1..=max_delay_ticks after the request.
    pub max_delay_ticks: u64,
    /// No failure is injected before this virtual time (Driver Verifier's start delay).
    pub warmup_ticks: u64,
    /// Systematic low-resources simulation: fail each distinct call site once
    /// ([`super::faults`]). `None`: off.
    pub systematic: Option<super::faults::Systematic>,
    /// Driver Verifier's special pool: every allocation on pages of its own with a guard page
    /// after it, freed blocks inaccessible ([`super::special_pool`]). Off by default.
    pub special_pool: bool,
}

impl Default for FaultPolicy {
    fn default() -> Self {
        FaultPolicy {
            sync_weight: 1,
            pending_weight: 1,
            cross_processor_weight: 1,
            request_failure_per_10000: 0,
            allocation_failure_per_10000: 0,
            allocation_failure_tags: Vec::new(),
            dispatch_delivery_per_10000: 5_000,
            max_delay_ticks: 1_000,
            warmup_ticks: 0,
            systematic: None,
            special_pool: false,
        }
    }
}

impl FaultPolicy {
    /// Everything synchronous, nothing injected: the simplest schedule.
    pub fn synchronous() -> Self {
        FaultPolicy {
            pending_weight: 0,
            cross_processor_weight: 0,
            dispatch_delivery_per_10000: 0,
            ..Self::default()
        }
    }

    /// Everything pends and completes later.
    pub fn always_pending() -> Self {
        FaultPolicy { sync_weight: 0, cross_processor_weight: 0, ..Self::default() }
    }
}

/// How one request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The final status is returned.
    Synchronous,
    /// PENDING now, completion `delay` ticks later.
    Pending { delay: u64 },
    /// Completion on another processor before the request returns PENDING.
    CrossProcessor,
}

impl Rng {
    /// Picks an outcome under `policy`; `min_delay` forces PENDING with at least that delay
    /// (a remote party that answers late).
    pub fn outcome(&mut self, policy: &FaultPolicy, min_delay: u64) -> Outcome {
        if min_delay > 0 {
            return Outcome::Pending { delay: min_delay + self.below(policy.max_delay_ticks.max(1)) };
        }
        let total = policy.sync_weight + policy.pending_weight + policy.cross_processor_weight;
        if total == 0 {
            return Outcome::Synchronous;
        }
        let pick = self.below(u64::from(total)) as u32;
        if pick < policy.sync_weight {
            Outcome::Synchronous
        } else if pick < policy.sync_weight + policy.pending_weight {
            Outcome::Pending { delay: 1 + self.below(policy.max_delay_ticks.max(1)) }
        } else {
            Outcome::CrossProcessor
        }
    }
}

/// Work the simulated NDIS, call manager or network will do at a virtual time.
pub enum Work {
    /// The CM registers its address families on a bound binding: ProtocolCoAfRegisterNotify for
    /// each; `again`: a registration repeated while the binding already has them.
    AfRegisterNotify { binding: u64, again: bool },
    /// ProtocolOpenAdapterCompleteEx for a pended NdisOpenAdapterEx.
    OpenAdapterComplete { binding: u64, status: i32 },
    /// ProtocolCloseAdapterCompleteEx for a pended NdisCloseAdapterEx.
    CloseAdapterComplete { binding: u64 },
    /// ProtocolClOpenAfCompleteEx for a pended NdisClOpenAddressFamilyEx.
    OpenAfComplete { af: u64, status: i32 },
    /// ProtocolClCloseAfComplete for a pended NdisClCloseAddressFamily.
    CloseAfComplete { af: u64, status: i32 },
    /// ProtocolClMakeCallComplete.
    MakeCallComplete { vc: u64, status: i32, cause: u8 },
    /// ProtocolClAddPartyComplete.
    AddPartyComplete { party: u64, status: i32, cause: u8 },
    /// ProtocolClDropPartyComplete.
    DropPartyComplete { party: u64, status: i32 },
    /// ProtocolClCloseCallComplete.
    CloseCallComplete { vc: u64, status: i32 },
    /// A leaf leaves (DROP PARTY from the network), or its link vanishes (non-SUCCESS status).
    RemoteDrop { party: u64, status: i32, cause: u8 },
    /// The whole call is released by the network.
    RemoteRelease { vc: u64, status: i32 },
    /// The CM closes the AF: NdisCmNotifyCloseAddressFamily → ProtocolClNotifyCloseAf.
    NotifyCloseAf { af: u64 },
    /// NDIS unbinds (after NdisUnbindAdapter, or asked by the harness).
    Unbind { binding: u64 },
    /// NDIS sends a PnP step's events to the binding (the restart after a bind).
    Pnp { binding: u64, step: super::pnp::PnpStep },
    /// Host work queued by another DDI module (e.g. an I/O work item), run at PASSIVE.
    Host { name: &'static str, run: Box<dyn FnOnce() + Send> },
}

impl Work {
    /// What the machine calls the work while it runs (a context's outermost call).
    pub fn name(&self) -> &'static str {
        match self {
            Work::AfRegisterNotify { .. } => "sim:AfRegisterNotify",
            Work::OpenAdapterComplete { .. } => "sim:OpenAdapterComplete",
            Work::CloseAdapterComplete { .. } => "sim:CloseAdapterComplete",
            Work::OpenAfComplete { .. } => "sim:OpenAfComplete",
            Work::CloseAfComplete { .. } => "sim:CloseAfComplete",
            Work::MakeCallComplete { .. } => "sim:MakeCallComplete",
            Work::AddPartyComplete { .. } => "sim:AddPartyComplete",
            Work::DropPartyComplete { .. } => "sim:DropPartyComplete",
            Work::CloseCallComplete { .. } => "sim:CloseCallComplete",
            Work::RemoteDrop { .. } => "sim:RemoteDrop",
            Work::RemoteRelease { .. } => "sim:RemoteRelease",
            Work::NotifyCloseAf { .. } => "sim:NotifyCloseAf",
            Work::Unbind { .. } => "sim:Unbind",
            Work::Pnp { .. } => "sim:NetPnPEvent",
            Work::Host { name, .. } => name,
        }
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::AfRegisterNotify { binding, again } => write!(f, "AfRegisterNotify(Bd#{binding}, {again})"),
            Work::OpenAdapterComplete { binding, status } => {
                write!(f, "OpenAdapterComplete(Bd#{binding}, {status:#x})")
            }
            Work::CloseAdapterComplete { binding } => write!(f, "CloseAdapterComplete(Bd#{binding})"),
            Work::OpenAfComplete { af, status } => write!(f, "OpenAfComplete(Af#{af}, {status:#x})"),
            Work::CloseAfComplete { af, status } => write!(f, "CloseAfComplete(Af#{af}, {status:#x})"),
            Work::MakeCallComplete { vc, status, .. } => write!(f, "MakeCallComplete(Vc#{vc}, {status:#x})"),
            Work::AddPartyComplete { party, status, .. } => {
                write!(f, "AddPartyComplete(Pt#{party}, {status:#x})")
            }
            Work::DropPartyComplete { party, status } => {
                write!(f, "DropPartyComplete(Pt#{party}, {status:#x})")
            }
            Work::CloseCallComplete { vc, status } => write!(f, "CloseCallComplete(Vc#{vc}, {status:#x})"),
            Work::RemoteDrop { party, status, .. } => write!(f, "RemoteDrop(Pt#{party}, {status:#x})"),
            Work::RemoteRelease { vc, status } => write!(f, "RemoteRelease(Vc#{vc}, {status:#x})"),
            Work::NotifyCloseAf { af } => write!(f, "NotifyCloseAf(Af#{af})"),
            Work::Unbind { binding } => write!(f, "Unbind(Bd#{binding})"),
            Work::Pnp { binding, step } => write!(f, "Pnp(Bd#{binding}, {})", step.name()),
            Work::Host { name, .. } => write!(f, "Host({name})"),
        }
    }
}
