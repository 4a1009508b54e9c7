//! One simulated machine with the real `partyline.sys`, driven through `\\.\Partyline` like the
//! `partyline` command would, tolerant of every refusal (faults make requests fail), and the
//! verdict of one run: violations, leaks, hangs.

use ndis_sim::io::{Caller, IoError, IoManager};
use ndis_sim::machine::Schedule;
use ndis_sim::ndis::{self, AdapterConfig, AtmAddr, Behaviour, FaultPolicy};
use ndis_sim::scenario::audit::{self, RefusalExpectation};
use ndis_sim::scenario::{EventOutcome, NetworkEvent, Target};
use ndis_sim::sim::{SimConfig, Simulation};
use partyline_core::census::RefusalKind;
use partyline_core::{AtmAddress, TrafficProfile};
use partyline_ioctl as ioctl;

/// NTSTATUS success.
pub use ndis_sys::status::STATUS_SUCCESS;

/// Leaf `n` of the simulated network.
pub fn leaf(n: u8) -> AtmAddress {
    AtmAddress::parse(&format!("47.0005.80ffe1000000f21a3f{n:02x}.0020481a3f{n:02x}.00"))
        .expect("leaf address")
}

/// The simulator's form of `address`.
pub fn atm_addr(address: &AtmAddress) -> AtmAddr {
    AtmAddr { address_type: address.kind() as u32, digits: address.as_bytes().to_vec() }
}

/// The one adapter every campaign binds, with `behaviours[i]` for leaf `i + 1`.
pub fn adapter(behaviours: &[Behaviour]) -> AdapterConfig {
    let mut adapter =
        AdapterConfig::new(r"\DEVICE\{ATM-0}", AtmAddr::nsap("47.0005.80FFE1000000F21A2B3C.0020481A2B3C.00"));
    for (i, behaviour) in behaviours.iter().enumerate() {
        adapter = adapter.with_remote(atm_addr(&leaf(i as u8 + 1)), behaviour.clone());
    }
    adapter
}

/// What one run found.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Rule violations other than leaks, rendered.
    pub violations: Vec<String>,
    /// Pool leaks and objects left at unload, rendered.
    pub leaks: Vec<String>,
    /// Work that did not settle within the step bound, or an IRP left pending.
    pub hangs: Vec<String>,
    /// Runs that stopped: a bug check, a deadlock, a special-pool fault, a cap (the stop line).
    pub stops: Vec<String>,
    /// Faults injected (log entries marked injected).
    pub faults: u64,
}

impl Verdict {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty() && self.leaks.is_empty() && self.hangs.is_empty() && self.stops.is_empty()
    }

    /// The first problem, for a report.
    pub fn first_problem(&self) -> Option<&str> {
        self.stops
            .first()
            .or(self.violations.first())
            .or(self.leaks.first())
            .or(self.hangs.first())
            .map(String::as_str)
    }
}

/// The machine under test.
pub struct Bench {
    /// The simulation (public for campaigns that schedule network events).
    pub sim: Simulation,
    hangs: Vec<String>,
    /// Call ids the driver handed out (live or not).
    pub calls: Vec<u64>,
    /// Party ids the driver handed out (live or not).
    pub parties: Vec<u64>,
    /// IOCTLs sent.
    pub ioctls: u64,
    /// Requests the driver refused, by the status it answered with (what the run expects the
    /// driver to count as refusals, [`RefusalKind`] order).
    pub refusals_answered: [u64; RefusalKind::ALL.len()],
    /// Keep the binding to the end and let DriverUnload's deregistration unbind it (the
    /// `unload-with-calls` scenario); otherwise the run ends with NDIS unbinding the adapter,
    /// after which every table of the driver must be empty.
    pub unload_with_bindings: bool,
}

/// The refusal a state-changing request answered with `status` was counted as by the engine
/// (`partyline_ioctl::core_status`, the other way round); `None` for success and for memory
/// shortages, which are not refusals.
pub fn refusal_of(status: i32) -> Option<RefusalKind> {
    use partyline_ioctl::error::*;
    match status {
        STATUS_NOT_FOUND => Some(RefusalKind::UnknownId),
        STATUS_INVALID_DEVICE_STATE => Some(RefusalKind::InvalidState),
        STATUS_DELETE_PENDING => Some(RefusalKind::Closing),
        STATUS_NOT_SUPPORTED => Some(RefusalKind::UnsupportedAddressFamily),
        STATUS_INVALID_PARAMETER => Some(RefusalKind::NoLeaves),
        _ => None,
    }
}

/// The bench as the scenario runner's [`Target`], so the audit of the driver's state
/// ([`audit::audit`]) reads it through the control device the same way.
impl Target for Bench {
    fn device_control(
        &mut self,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<(i32, Vec<u8>), String> {
        self.send(code, input, output_len).ok_or_else(|| "the I/O manager refused the request".into())
    }

    fn network(&mut self, _event: NetworkEvent<'_>) -> EventOutcome {
        EventOutcome::Skipped("the bench makes its network events itself".into())
    }
}

impl Bench {
    /// Loads the image with `faults` and runs DriverEntry; binds if it succeeded. The machine
    /// interleaves the processors with the default schedule (see [`Bench::with_schedule`]).
    pub fn new(seed: u64, processors: usize, faults: FaultPolicy, behaviours: &[Behaviour]) -> Bench {
        Bench::with_schedule(seed, processors, faults, behaviours, Schedule::default())
    }

    /// [`Bench::new`] with the machine's `schedule`.
    pub fn with_schedule(
        seed: u64,
        processors: usize,
        faults: FaultPolicy,
        behaviours: &[Behaviour],
        schedule: Schedule,
    ) -> Bench {
        let config = SimConfig {
            seed,
            processors,
            faults,
            adapters: vec![adapter(behaviours)],
            schedule,
            ..SimConfig::default()
        };
        let mut sim = Simulation::new(config, partyline_image::image()).expect("partyline.sys loads");
        if sim.driver_entry_status == Some(0) {
            sim.bind_all();
        }
        Bench {
            sim,
            hangs: Vec::new(),
            calls: Vec::new(),
            parties: Vec::new(),
            ioctls: 0,
            refusals_answered: [0; RefusalKind::ALL.len()],
            unload_with_bindings: false,
        }
    }

    /// Whether DriverEntry succeeded.
    pub fn loaded(&self) -> bool {
        self.sim.driver_entry_status == Some(0)
    }

    /// Runs queued work until idle (the run's caps bound it: a driver that keeps the machine
    /// busy forever stops the run, reported as a stop), then checks owed completions.
    pub fn drain(&mut self) {
        self.sim.run_until_idle();
    }

    /// Runs work due within `ticks`.
    pub fn advance(&self, ticks: u64) {
        self.sim.advance(ticks);
    }

    /// Sends one IOCTL as an administrator without draining; `None` if the I/O manager refused it
    /// before the driver saw it. An IRP left pending is recorded as a hang.
    pub fn send(&mut self, code: u32, input: &[u8], output_len: usize) -> Option<(i32, Vec<u8>)> {
        if !self.loaded() {
            return None;
        }
        self.ioctls += 1;
        let world = self.sim.world().clone();
        match IoManager::of(&world).device_control(
            &world,
            ioctl::USER_PATH,
            code,
            input,
            output_len,
            Caller::Administrator,
        ) {
            Ok(answer) => {
                let changes_state = ioctl::Ioctl::from_code(code).is_some_and(|i| i.changes_state());
                if changes_state && ioctl::decode_request(code, input).is_ok() {
                    if let Some(kind) = refusal_of(answer.0) {
                        self.refusals_answered[kind as usize] += 1;
                    }
                }
                Some(answer)
            }
            Err(IoError::Pending { status }) => {
                self.hangs.push(format!("IOCTL {code:#x} left its IRP pending ({status:#x})"));
                None
            }
            Err(_) => None,
        }
    }

    /// The first open address family, if any.
    pub fn af(&mut self) -> Option<u64> {
        let (status, out) =
            self.send(ioctl::IOCTL_PARTYLINE_LIST_BINDINGS, &ioctl::request::encode_list_bindings(0), 4096)?;
        if status != STATUS_SUCCESS {
            return None;
        }
        let page = ioctl::decode_list_bindings_response(&out).ok()?;
        let af = page.iter().find_map(|e| match e {
            ioctl::ListEntry::AddressFamily { id, .. } => Some(id),
            _ => None,
        });
        af
    }

    /// Makes a call to `leaves`; the call id if the driver accepted it.
    pub fn make_call(&mut self, af: u64, leaves: &[AtmAddress]) -> Option<u64> {
        let mut input = vec![0u8; ioctl::request::make_call_len(leaves.len())];
        ioctl::request::encode_make_call(&mut input, af, &TrafficProfile::DEFAULT, leaves).ok()?;
        let (status, out) = self.send(ioctl::IOCTL_PARTYLINE_MAKE_CALL, &input, 64)?;
        let call =
            (status == STATUS_SUCCESS).then(|| ioctl::decode_make_call_response(&out).ok()).flatten()?;
        self.calls.push(call);
        Some(call)
    }

    /// Adds `leaf` to `call`.
    pub fn add_party(&mut self, call: u64, leaf: &AtmAddress) -> Option<u64> {
        let (status, out) =
            self.send(ioctl::IOCTL_PARTYLINE_ADD_PARTY, &ioctl::request::encode_add_party(call, leaf), 64)?;
        let party =
            (status == STATUS_SUCCESS).then(|| ioctl::decode_add_party_response(&out).ok()).flatten()?;
        self.parties.push(party);
        Some(party)
    }

    /// Drops `party`; the status.
    pub fn drop_party(&mut self, party: u64) -> Option<i32> {
        self.send(ioctl::IOCTL_PARTYLINE_DROP_PARTY, &ioctl::request::encode_drop_party(party), 0)
            .map(|a| a.0)
    }

    /// Closes `call`; the status.
    pub fn close_call(&mut self, call: u64) -> Option<i32> {
        self.send(ioctl::IOCTL_PARTYLINE_CLOSE_CALL, &ioctl::request::encode_close_call(call), 0).map(|a| a.0)
    }

    /// Queries `call`: connected count and party ids (which are remembered).
    pub fn query(&mut self, call: u64) -> Option<(u32, Vec<u64>)> {
        let (status, out) = self.send(
            ioctl::IOCTL_PARTYLINE_QUERY_CALL,
            &ioctl::request::encode_query_call(call, 0),
            1 << 16,
        )?;
        if status != STATUS_SUCCESS {
            return None;
        }
        let (summary, page) = ioctl::decode_query_call_response(&out).ok()?;
        let ids: Vec<u64> = page.iter().map(|p| p.id).collect();
        for id in &ids {
            if !self.parties.contains(id) {
                self.parties.push(*id);
            }
        }
        Some((summary.connected, ids))
    }

    /// The refusals the driver should have counted: exactly those its requests were answered
    /// with, plus, for unknown ids, at most one per network event of the run (a remote drop or
    /// release). Such an event may cross the driver's own release of its object: the call manager
    /// has committed to ProtocolClIncomingDropParty (or ProtocolClIncomingCloseCall) when, on
    /// another processor, the driver's NdisClCloseCall carrying that party (or its NdisCoDeleteVc)
    /// completes first, so the indication names a context the driver has already freed, and
    /// refusing it as an unknown id is the driver's right answer (found by the concurrency
    /// campaign: `--only concurrency --first-seed 74 --seeds 1 --replay "make 9 10 10;
    /// remote-drop 1; release 0 ok"`).
    pub fn expected_refusals(&self) -> RefusalExpectation {
        let mut expected = RefusalKind::ALL.into_iter().fold(RefusalExpectation::default(), |e, kind| {
            e.exactly(kind, self.refusals_answered[kind as usize])
        });
        let counters = self.sim.counters();
        let crossings = counters.parties_dropped_remotely + counters.remote_releases;
        let unknown = &mut expected.bounds[RefusalKind::UnknownId as usize];
        unknown.1 += crossings;
        expected
    }

    /// Audits the driver's own state ([`ndis_sim::driver_state`]): every object accounted for
    /// (`all_unbound`: every table empty, nothing queued), and, at `refusals`, exactly the
    /// refusals the run's requests were answered with. Reported as violations of the run.
    pub fn check_driver_state(&mut self, all_unbound: bool, refusals: bool, call: &str) {
        if !self.loaded() || self.sim.stop().is_some() {
            return;
        }
        let world = self.sim.world().clone();
        match audit::audit(self) {
            Ok(found) => {
                ndis_sim::driver_state::check_leftovers(&world, &found, all_unbound, call);
                if refusals {
                    let expected = self.expected_refusals();
                    ndis_sim::driver_state::check_refusals(&world, &found.census, &expected, call);
                }
            }
            Err(why) => ndis_sim::verifier::report(
                &world,
                ndis_sim::driver_state::OBJECTS_LEFT,
                call,
                format!("the driver's state could not be read: {why}"),
            ),
        }
    }

    /// Unloads the driver (or, if DriverEntry failed, checks it left nothing behind) and returns
    /// the verdict. Before unloading, the driver's own state is audited: every object accounted
    /// for and exactly the refusals the run's requests met; then, unless
    /// [`Bench::unload_with_bindings`], NDIS unbinds the adapter and every table must be empty.
    pub fn finish(mut self) -> Verdict {
        if self.loaded() && self.sim.stop().is_none() {
            self.drain();
            self.check_driver_state(self.sim.all_unbound(), true, "partyline.sys (end of the run)");
            if !self.unload_with_bindings && !self.sim.all_unbound() {
                self.sim.unbind(0);
                self.drain();
                self.check_driver_state(
                    true,
                    false,
                    "partyline.sys!ProtocolUnbindAdapterEx (end of the run)",
                );
            }
        }
        // After a failed DriverEntry this only checks it left nothing behind (no DriverUnload).
        self.sim.unload();
        let mut verdict = Verdict { hangs: std::mem::take(&mut self.hangs), ..Verdict::default() };
        if let Some(stop) = self.sim.stop() {
            verdict.stops.push(stop.to_string().lines().next().unwrap_or_default().to_owned());
        }
        for violation in self.sim.violations() {
            let rule = violation.rule.name;
            if rule == ndis::rules::POOL_LEAK.name
                || rule == ndis::rules::UNLOAD_WITH_OBJECTS.name
                || rule == ndis_sim::driver_state::OBJECTS_LEFT.name
            {
                verdict.leaks.push(violation.to_string());
            } else {
                verdict.violations.push(violation.to_string());
            }
        }
        verdict.faults = self.sim.log().iter().filter(|e| e.detail.contains("(injected")).count() as u64;
        // Debugging aid: with PARTYLINE_CAMPAIGN_TIMELINE=DIR, every failing run leaves its
        // violations and full timeline in DIR/<n>.txt.
        if let Some(dir) = std::env::var_os("PARTYLINE_CAMPAIGN_TIMELINE") {
            if !verdict.is_clean() {
                static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let text = format!(
                    "{}\n{}\n{}\n{}",
                    verdict.stops.join("\n"),
                    verdict.violations.join("\n"),
                    verdict.leaks.join("\n"),
                    self.sim.timeline()
                );
                let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{n}.txt")), text);
            }
        }
        verdict
    }
}
