//! Scenarios: a TOML file that describes adapters, remote parties and their behaviour, the fault
//! policy and seed, and the steps to play (requests through the control device, network events,
//! expectations); and the runner that plays one on the simulator with the real `partyline.sys`.
//!
//! Read: the shipped `scenarios/*.toml` (each key is described in `scenarios/default.toml`).
//!
//! Flow: [`Scenario::parse`] (in [`portable`], shared with `partyline` on Windows) checks the file;
//! [`run`] maps it onto a [`SimConfig`], loads the image, binds every adapter, plays the steps
//! with [`run_steps`] against a [`SimTarget`] (requests go through `\\.\Partyline` as an
//! administrator, exactly as `DeviceIoControl` would send them), opens a name below the control
//! device as a user would (the create path's IRP rules), then unloads the driver and collects the
//! verifier's verdict, the timeline, the counters and the pool left behind. A run whose returned
//! bytes held the I/O manager's poison is replayed once to prove which were never written.

pub mod portable;

use std::collections::{BTreeMap, BTreeSet};

pub use portable::*;

use partyline_core::model::AtmAddress;

use crate::io::{Caller, IoManager, Poison, Suspects};
use crate::kernel::LogEntry;
use crate::loader::LoadError;
use crate::ndis::PartyState;
use crate::ndis::{self, AdapterConfig, AtmAddr, CallManagerConfig, Counters, FaultPolicy};
use crate::sim::{SimConfig, Simulation};
use crate::verifier::Violation;

fn atm_addr(address: &AtmAddress) -> AtmAddr {
    AtmAddr { address_type: address.kind() as u32, digits: address.as_bytes().to_vec() }
}

fn behaviour(b: Behaviour) -> ndis::Behaviour {
    match b {
        Behaviour::Accept => ndis::Behaviour::Accept,
        Behaviour::Reject(cause) => ndis::Behaviour::Reject { cause },
        Behaviour::AnswerAfter(ticks) => ndis::Behaviour::AnswerAfter { ticks },
        Behaviour::LeaveAfter(ticks) => ndis::Behaviour::LeaveAfter { ticks },
        Behaviour::VanishAfter(ticks) => ndis::Behaviour::VanishAfter { ticks },
        Behaviour::RejectAfter(cause, ticks) => ndis::Behaviour::RejectAfter { cause, ticks },
        Behaviour::AcceptChanged => ndis::Behaviour::AcceptChanged,
    }
}

/// The fault policy of `[faults]`: the preset, then every field given.
pub fn fault_policy(faults: &Faults) -> FaultPolicy {
    let mut p = match faults.preset {
        Preset::Mixed => FaultPolicy::default(),
        Preset::Synchronous => FaultPolicy::synchronous(),
        Preset::AlwaysPending => FaultPolicy::always_pending(),
    };
    let set = |field: &mut u32, value: Option<u32>| {
        if let Some(v) = value {
            *field = v;
        }
    };
    set(&mut p.sync_weight, faults.sync_weight);
    set(&mut p.pending_weight, faults.pending_weight);
    set(&mut p.cross_processor_weight, faults.cross_processor_weight);
    set(&mut p.request_failure_per_10000, faults.request_failure_per_10000);
    set(&mut p.allocation_failure_per_10000, faults.allocation_failure_per_10000);
    p.request_failure_exports = faults.request_failure_exports.clone();
    set(&mut p.dispatch_delivery_per_10000, faults.dispatch_delivery_per_10000);
    if let Some(special) = faults.special_pool {
        p.special_pool = special;
    }
    if let Some(ticks) = faults.max_delay_ticks {
        p.max_delay_ticks = ticks;
    }
    p.allocation_failure_tags = faults
        .allocation_failure_tags
        .iter()
        .map(|t| {
            let mut tag = [0u8; 4];
            tag.copy_from_slice(&t.as_bytes()[..4]);
            u32::from_le_bytes(tag)
        })
        .collect();
    p
}

/// The simulator configuration of `scenario`, with `seed` instead of the scenario's when given.
pub fn sim_config(scenario: &Scenario, seed: Option<u64>) -> SimConfig {
    let defaults = CallManagerConfig::default();
    let cm = &scenario.call_manager;
    SimConfig {
        seed: seed.unwrap_or(scenario.seed),
        processors: scenario.processors,
        faults: fault_policy(&scenario.faults),
        adapters: scenario
            .adapters
            .iter()
            .enumerate()
            .map(|(index, a)| AdapterConfig {
                name: adapter_name(a, index),
                local_address: atm_addr(&a.local_address.0),
                remotes: a
                    .remotes
                    .iter()
                    .map(|r| ndis::callmgr::RemoteParty {
                        address: atm_addr(&r.address.0),
                        behaviour: behaviour(r.behaviour),
                    })
                    .collect(),
                default_behaviour: behaviour(a.default_behaviour),
            })
            .collect(),
        call_manager: CallManagerConfig {
            max_leaves: cm.max_leaves.unwrap_or(defaults.max_leaves),
            max_pending_adds: cm.max_pending_adds.unwrap_or(defaults.max_pending_adds),
            rfc1755_strict: cm.rfc1755_strict.unwrap_or(defaults.rfc1755_strict),
            report_invalid_parameters: cm
                .report_invalid_parameters
                .unwrap_or(defaults.report_invalid_parameters),
            families: defaults.families,
        },
        schedule: crate::machine::Schedule::default(),
    }
}

/// The simulator as a [`Target`]: requests through the simulated I/O manager as an
/// administrator, network events through the simulated call manager.
pub struct SimTarget<'a> {
    sim: &'a mut Simulation,
    /// VCs that existed before the last MAKE_CALL was sent.
    before_make_call: BTreeSet<u64>,
    /// Driver call id -> the VCs that existed before its MAKE_CALL (resolved lazily).
    unresolved: Vec<(u64, BTreeSet<u64>)>,
    /// Driver call id -> simulator VC id.
    vcs: BTreeMap<u64, u64>,
}

impl<'a> SimTarget<'a> {
    pub fn new(sim: &'a mut Simulation) -> SimTarget<'a> {
        SimTarget { sim, before_make_call: BTreeSet::new(), unresolved: Vec::new(), vcs: BTreeMap::new() }
    }

    fn vc_ids(&self) -> BTreeSet<u64> {
        self.sim.ndis().state().vcs.keys().copied().collect()
    }

    /// The simulator's VC of the driver's call `call`: the first VC created after its MAKE_CALL
    /// was sent that no earlier call claimed.
    fn vc_of(&mut self, call: u64) -> Option<u64> {
        if let Some(vc) = self.vcs.get(&call) {
            return Some(*vc);
        }
        let all = self.vc_ids();
        let unresolved = std::mem::take(&mut self.unresolved);
        for (id, before) in unresolved {
            let claimed: BTreeSet<u64> = self.vcs.values().copied().collect();
            match all.iter().find(|vc| !before.contains(vc) && !claimed.contains(vc)) {
                Some(vc) => {
                    self.vcs.insert(id, *vc);
                }
                None => self.unresolved.push((id, before)),
            }
        }
        self.vcs.get(&call).copied()
    }
}

impl SimTarget<'_> {
    /// Audits the driver's tables through its control device ([`crate::driver_state`]): every
    /// object accounted for, and every table empty when no binding is left. What it finds is
    /// reported as violations charged to `call`; the audit, if the driver could be asked.
    fn check_leftovers(&mut self, call: &str) -> Option<audit::Audit> {
        let world = self.sim.world().clone();
        if world.stop().is_some() || self.sim.driver_entry_failed() {
            return None;
        }
        let all_unbound = self.sim.all_unbound();
        match audit::audit(self) {
            Ok(found) => {
                crate::driver_state::check_leftovers(&world, &found, all_unbound, call);
                Some(found)
            }
            Err(why) => {
                let why = format!("the driver's state could not be read: {why}");
                crate::verifier::report(&world, crate::driver_state::OBJECTS_LEFT, call, why);
                None
            }
        }
    }

    /// Opens a name below the control device (`\\.\Partyline\probe`) as an ordinary user, as a
    /// confused or hostile program may, and closes it if the driver lets it open: the I/O manager
    /// checks the create path as it checks every IRP (completed once, before the dispatch routine
    /// returns, with the status it returns; Ddi_DispatchRoutine_*, MultipleIrpComplete). Refusing
    /// the name is what a device without a namespace should do ("Controlling Device Namespace
    /// Access", https://learn.microsoft.com/windows-hardware/drivers/kernel/controlling-device-namespace-access),
    /// and allowing it is not a rule this probe checks: either answer passes.
    fn probe_namespace(&mut self) {
        let world = self.sim.world().clone();
        if world.stop().is_some() || self.sim.driver_entry_failed() {
            return;
        }
        let io = IoManager::of(&world);
        let path = format!("{}\\probe", partyline_ioctl::USER_PATH);
        if let Ok(handle) = io.open(&world, &path, ndis_sys::kernel::GENERIC_READ, Caller::User) {
            let _ = io.close(&world, handle);
        }
    }

    /// The end of a run: every object accounted for, and exactly the refusals `expected`. The
    /// driver's census, if it could be read.
    fn check_end_of_run(&mut self, expected: &audit::RefusalExpectation) -> Option<partyline_core::Census> {
        const CALL: &str = "partyline.sys (end of the run, before DriverUnload)";
        let found = self.check_leftovers(CALL)?;
        crate::driver_state::check_refusals(self.sim.world(), &found.census, expected, CALL);
        Some(found.census)
    }
}

impl Target for SimTarget<'_> {
    fn device_control(
        &mut self,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<(i32, Vec<u8>), String> {
        if code == partyline_ioctl::IOCTL_PARTYLINE_MAKE_CALL {
            self.before_make_call = self.vc_ids();
        }
        let world = self.sim.world().clone();
        IoManager::of(&world)
            .device_control(
                &world,
                partyline_ioctl::USER_PATH,
                code,
                input,
                output_len,
                Caller::Administrator,
            )
            .map_err(|e| e.to_string())
    }

    fn call_made(&mut self, call: u64) {
        let before = std::mem::take(&mut self.before_make_call);
        self.unresolved.push((call, before));
    }

    fn network(&mut self, event: NetworkEvent<'_>) -> EventOutcome {
        match event {
            NetworkEvent::RemoteDrop { call, address } => {
                let Some(vc) = self.vc_of(call) else {
                    return EventOutcome::Failed(format!("call {call:#x} has no VC in the simulator"));
                };
                // The party at that address in whatever state it is (a live one first, else the
                // last one there was): the call manager decides what a DROP PARTY for it becomes
                // (ndis::crossing), and logs it.
                let wanted = atm_addr(address);
                let party = {
                    let state = self.sim.ndis().state();
                    let mut of_call = state.parties.iter().filter(|(_, p)| p.vc == vc && p.is_at(&wanted));
                    let live = of_call.clone().find(|(_, p)| p.state() != PartyState::Gone).map(|(id, _)| id);
                    match live.or_else(|| of_call.next_back().map(|(id, _)| id)) {
                        Some(id) => Ok(id),
                        None => Err(format!("no party at {wanted} on Vc#{vc}")),
                    }
                };
                match party {
                    Ok(id) => {
                        self.sim.remote_drop(id);
                        EventOutcome::Done
                    }
                    Err(why) => EventOutcome::Failed(why),
                }
            }
            NetworkEvent::RemoteRelease { call } => {
                let Some(vc) = self.vc_of(call) else {
                    return EventOutcome::Failed(format!("call {call:#x} has no VC in the simulator"));
                };
                // In whatever state the call is: the call manager decides (ndis::crossing).
                self.sim.remote_release(vc, ndis_sys::NDIS_STATUS_SUCCESS);
                EventOutcome::Done
            }
            NetworkEvent::AfRegister { adapter } => {
                self.sim.register_afs_again(adapter);
                EventOutcome::Done
            }
            NetworkEvent::CloseAf { adapter } => {
                self.sim.notify_close_af(adapter);
                EventOutcome::Done
            }
            NetworkEvent::AddressChange { adapter, address } => {
                self.sim.change_address(adapter, atm_addr(address));
                EventOutcome::Done
            }
            NetworkEvent::Uninstall => {
                self.sim.uninstall();
                // Every binding is gone: every table must be empty.
                self.check_leftovers("partyline.sys!ProtocolUninstall");
                EventOutcome::Done
            }
            NetworkEvent::Unbind { adapter } => {
                self.sim.unbind(adapter);
                // The unbind ran until idle: the driver holds nothing of that binding any more,
                // and nothing at all once no binding is left.
                self.check_leftovers("partyline.sys!ProtocolUnbindAdapterEx");
                EventOutcome::Done
            }
            NetworkEvent::Pnp { adapter, step } => match self.sim.pnp(adapter, step) {
                Ok(()) => EventOutcome::Done,
                Err(why) => EventOutcome::Failed(why),
            },
            NetworkEvent::Advance { ticks } => {
                self.sim.advance(ticks);
                EventOutcome::Done
            }
            NetworkEvent::RunUntilIdle => {
                self.sim.run_until_idle();
                EventOutcome::Done
            }
            NetworkEvent::FailNext { export, count, pended } => {
                self.sim.ndis().arm_failure(export, count, pended);
                EventOutcome::Done
            }
            NetworkEvent::Receive { call, adapter, count, resources, dispatch } => {
                let irql =
                    if dispatch { crate::kernel::DISPATCH_LEVEL } else { crate::kernel::PASSIVE_LEVEL };
                let indication = ndis::receive::Indication { count, resources, irql };
                let indicated = match call {
                    Some(call) => match self.vc_of(call) {
                        Some(vc) => self.sim.indicate_receive_on_vc(vc, indication),
                        None => {
                            return EventOutcome::Failed(format!("call {call:#x} has no VC in the simulator"))
                        }
                    },
                    None => self.sim.indicate_receive_on_binding(adapter, indication),
                };
                match indicated {
                    Ok(()) => EventOutcome::Done,
                    Err(why) => EventOutcome::Failed(why.to_string()),
                }
            }
        }
    }
}

/// Everything a simulated run of a scenario produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The seed the run used.
    pub seed: u64,
    /// DriverEntry's NTSTATUS.
    pub driver_entry_status: Option<i32>,
    /// Each step and how it went.
    pub steps: Vec<StepRecord>,
    /// Every documented rule the driver broke.
    pub violations: Vec<Violation>,
    /// Every DDI call and callback, in order.
    pub log: Vec<LogEntry>,
    /// What the simulated NDIS counted.
    pub counters: Counters,
    /// Pool bytes still held after unload, by tag.
    pub leaks: Vec<(String, u64)>,
    /// Simulated time at the end (100 ns ticks).
    pub end_time: u64,
    /// The driver's own state at the end of the steps, before DriverUnload (READ_STATE), if it
    /// could be read.
    pub census: Option<partyline_core::Census>,
    /// How the run stopped, if it did (a bug check, a deadlock, a special-pool fault, a cap):
    /// the stop's first line; its full report went to stderr.
    pub stop: Option<String>,
}

impl Report {
    /// No violation, no failed step, no stop, DriverEntry succeeded.
    pub fn is_clean(&self) -> bool {
        self.stop.is_none()
            && self.violations.is_empty()
            && self.failed_steps().next().is_none()
            && self.driver_entry_status == Some(0)
    }

    /// The steps whose expectation or status check failed.
    pub fn failed_steps(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps.iter().filter(|s| s.is_failure())
    }

    /// The timeline, one entry per line.
    pub fn timeline(&self) -> String {
        self.log.iter().map(|e| format!("{e}\n")).collect()
    }

    /// The timeline with host addresses masked ([`mask_host_addresses`]): what a replay of the
    /// same seed reproduces exactly, in this process or another.
    pub fn replay_timeline(&self) -> String {
        mask_host_addresses(&self.timeline())
    }
}

/// `text` with every host address replaced by `0x…`: hex numbers of 11 digits or more, which is
/// where the loader mapped the image or the simulator allocated a buffer (they change with every
/// mapping and with ASLR). Driver ids (`0x100000001`) and NDIS handles (`Vc#3`) are kept.
pub fn mask_host_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        let digits = rest[at + 2..].bytes().take_while(u8::is_ascii_hexdigit).count();
        if digits >= 11 {
            out.push_str("0x…");
        } else {
            out.push_str(&rest[at..at + 2 + digits]);
        }
        rest = &rest[at + 2 + digits..];
    }
    out.push_str(rest);
    out
}

/// Plays `scenario` on the simulator with `image` (with `seed` instead of the scenario's when
/// given): DriverEntry, bind every adapter, the steps, then DriverUnload and the unload checks.
///
/// The system buffers of the run are poisoned ([`crate::io::disclosure`]). When some returned
/// byte still held the poison, the run is played once more, the same seed and steps, with the
/// complementary poison: the suspects that hold the complement then were never written by the
/// driver, and are reported (`Ddi_DeviceControl_UninitializedOutput`) among the first run's
/// violations. A driver that writes every byte it returns is run once.
pub fn run(scenario: &Scenario, image: &[u8], seed: Option<u64>) -> Result<Report, LoadError> {
    let (mut report, suspects) = run_poisoned(scenario, image, seed, None)?;
    if suspects.is_empty() || report.stop.is_some() {
        return Ok(report);
    }
    let confirm = Poison::Confirm { seed: report.seed, suspects };
    let (replay, _) = run_poisoned(scenario, image, Some(report.seed), Some(confirm))?;
    let rule = crate::io::rules::UNINITIALIZED_OUTPUT;
    report.violations.extend(replay.violations.into_iter().filter(|v| v.rule == rule));
    Ok(report)
}

/// One run of [`run`], with the I/O manager's poison replaced by `poison` when given; the
/// report and the returned bytes that held the poison.
fn run_poisoned(
    scenario: &Scenario,
    image: &[u8],
    seed: Option<u64>,
    poison: Option<Poison>,
) -> Result<(Report, Suspects), LoadError> {
    let config = sim_config(scenario, seed);
    let seed = config.seed;
    let mut sim = Simulation::new_with(config, image, |world| {
        if let Some(poison) = poison {
            IoManager::of(world).set_poison(poison);
        }
    })?;
    sim.world().set_replay(format!("cargo run --release -- run {} --seed {seed}", scenario.name));
    sim.bind_all();
    let mut target = SimTarget::new(&mut sim);
    let steps = run_steps(scenario, &mut target);
    target.sim.run_until_idle();
    target.probe_namespace();
    let census = target.check_end_of_run(&scenario.expect_refusals);
    sim.unload();
    let leaks = sim
        .ndis()
        .bytes_held_per_tag()
        .into_iter()
        .filter(|(_, bytes)| *bytes > 0)
        .map(|(tag, bytes)| (ndis::memory::tag_name(tag), bytes))
        .collect();
    let suspects = IoManager::of(sim.world()).disclosure_suspects();
    let report = Report {
        scenario: scenario.name.clone(),
        seed,
        driver_entry_status: sim.driver_entry_status,
        steps,
        violations: sim.violations(),
        log: sim.log(),
        counters: sim.counters(),
        leaks,
        end_time: sim.world().now(),
        census,
        stop: sim.stop().map(|stop| stop.to_string().lines().next().unwrap_or_default().to_owned()),
    };
    Ok((report, suspects))
}
