//! The five campaigns. Each returns its [`Row`] and appends what failed to [`Figures`].

use std::sync::Mutex;

use ndis_sim::machine::Schedule;

use ndis_sim::ndis::faults::Systematic;
use ndis_sim::ndis::{Behaviour, FaultPolicy, Rng};
use partyline_ioctl as ioctl;

use crate::bench::{leaf, Bench, Verdict, STATUS_SUCCESS};
use crate::ops::{self, Op};
use crate::{Campaign, Failure, Figures, Options, Row};

// ---------------------------------------------------------------------------------------------
// Crash reporting: the simulator exits the process on a bug check; name the run that did it.

static CURRENT_RUN: Mutex<String> = Mutex::new(String::new());

extern "C" fn report_crash() {
    let current = CURRENT_RUN.lock().map(|c| c.clone()).unwrap_or_default();
    if !current.is_empty() {
        eprintln!(
            "partyline-campaign: the simulator stopped during run `{current}` (replay it with that seed)"
        );
    }
}

pub(crate) fn install_crash_reporter() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `report_crash` is an `extern "C" fn()` that lives for the whole process.
        unsafe { libc::atexit(report_crash) };
    });
}

fn set_current(run: String) {
    if let Ok(mut current) = CURRENT_RUN.lock() {
        *current = run;
    }
}

fn record(
    figures: &mut Figures,
    row: &mut Row,
    options: &Options,
    failure: (Campaign, &str, u64),
    verdict: &Verdict,
) {
    let order = failure.2;
    record_at(figures, row, options, failure, order, verdict);
}

/// [`record`], with the failure's place in its campaign's order given apart from its seed (the
/// systematic campaign's runs all have seed 1).
fn record_at(
    figures: &mut Figures,
    row: &mut Row,
    options: &Options,
    failure: (Campaign, &str, u64),
    order: u64,
    verdict: &Verdict,
) {
    row.runs += 1;
    row.faults += verdict.faults;
    row.violations += verdict.violations.len() as u64;
    row.leaks += verdict.leaks.len() as u64;
    row.hangs += verdict.hangs.len() as u64;
    row.stops += verdict.stops.len() as u64;
    if let Some(problem) = verdict.first_problem() {
        let (campaign, scenario, seed) = failure;
        let failure = Failure {
            campaign,
            scenario: scenario.to_owned(),
            seed,
            order,
            problem: problem.to_owned(),
            minimised: None,
        };
        if options.verbose {
            eprintln!("FAILED {} {} seed {}: {}", campaign.name(), scenario, seed, failure.problem);
        }
        figures.failures.push(failure);
    }
    set_current(String::new());
}

// ---------------------------------------------------------------------------------------------
// Systematic low-resources simulation over the default scenarios.

type Scenario = fn(&mut Bench);

fn grow_drop_close(bench: &mut Bench) {
    let Some(af) = bench.af() else { return };
    let Some(call) = bench.make_call(af, &[leaf(1), leaf(2), leaf(3)]) else { return };
    bench.drain();
    bench.add_party(call, &leaf(4));
    bench.drain();
    if let Some((_, parties)) = bench.query(call) {
        if let Some(party) = parties.get(1) {
            bench.drop_party(*party);
        }
    }
    if let Some(victim) = bench.sim.live_parties().first() {
        bench.sim.remote_drop(*victim);
    }
    bench.drain();
    bench.close_call(call);
    bench.drain();
}

fn unload_with_calls(bench: &mut Bench) {
    bench.unload_with_bindings = true;
    let Some(af) = bench.af() else { return };
    bench.make_call(af, &[leaf(1), leaf(2)]);
    bench.make_call(af, &[leaf(3)]);
    bench.drain();
}

fn close_af_mid_call(bench: &mut Bench) {
    let Some(af) = bench.af() else { return };
    let call = bench.make_call(af, &[leaf(1), leaf(2)]);
    bench.advance(1);
    bench.sim.notify_close_af(0);
    if let Some(call) = call {
        bench.add_party(call, &leaf(3));
    }
    bench.drain();
}

fn unbind_mid_call(bench: &mut Bench) {
    let Some(af) = bench.af() else { return };
    if let Some(call) = bench.make_call(af, &[leaf(1), leaf(2)]) {
        bench.add_party(call, &leaf(3));
    }
    bench.sim.unbind(0);
    bench.drain();
}

fn remote_release_mid_add(bench: &mut Bench) {
    let Some(af) = bench.af() else { return };
    let Some(call) = bench.make_call(af, &[leaf(1)]) else { return };
    bench.drain();
    bench.add_party(call, &leaf(2));
    for vc in bench.sim.active_calls() {
        bench.sim.remote_release(vc, ndis_sys::NDIS_STATUS_SUCCESS);
    }
    bench.close_call(call);
    bench.drain();
}

/// The default scenarios of the systematic campaign.
pub(crate) const SCENARIOS: [(&str, Scenario); 5] = [
    ("grow-drop-close", grow_drop_close),
    ("unload-with-calls", unload_with_calls),
    ("close-af-mid-call", close_af_mid_call),
    ("unbind-mid-call", unbind_mid_call),
    ("remote-release-mid-add", remote_release_mid_add),
];

/// The (scenario, schedule) pairs of the systematic campaign, in order: each is a unit of work of
/// its own (its registry starts empty).
pub(crate) const SYSTEMATIC_PAIRS: usize = SCENARIOS.len() * 2;

/// Systematic low resources over the pairs `pairs` (indices below [`SYSTEMATIC_PAIRS`]).
pub(crate) fn systematic(options: &Options, figures: &mut Figures, pairs: std::ops::Range<usize>) -> Row {
    let mut row = Row::default();
    let policies = [("sync", FaultPolicy::synchronous()), ("pending", FaultPolicy::always_pending())];
    for pair in pairs {
        let ((name, scenario), (policy_name, policy)) = (SCENARIOS[pair / 2], &policies[pair % 2]);
        row.scenarios += 1;
        let label = format!("{name}/{policy_name}");
        let registry = Systematic::one_per_run();
        // Each run fails at most one new site; stop when a run meets none (or at a bound).
        for _ in 0..2_000 {
            registry.begin_run();
            set_current(format!("systematic {label} seed 1 (site #{})", registry.injected().len() + 1));
            let faults = FaultPolicy {
                systematic: Some(registry.clone()),
                special_pool: options.special_pool,
                ..policy.clone()
            };
            let mut bench = Bench::new(1, 2, faults, &[]);
            if bench.loaded() {
                scenario(&mut bench);
            }
            row.ioctls += bench.ioctls;
            let verdict = bench.finish();
            let site = registry.injected_this_run().first().map(|s| s.to_string()).unwrap_or_default();
            record_at(
                figures,
                &mut row,
                options,
                (Campaign::Systematic, &format!("{label} [{site}]"), 1),
                pair as u64,
                &verdict,
            );
            if registry.injected_this_run().is_empty() {
                break;
            }
        }
        let seen = registry.seen();
        row.sites += seen.len() as u64;
        figures.distinct_sites.extend(seen.iter().map(|s| s.to_string()));
    }
    row
}

// ---------------------------------------------------------------------------------------------
// Schedule fuzzing and randomised low resources.

fn random_behaviours(rng: &mut Rng) -> Vec<Behaviour> {
    (0..8)
        .map(|_| match rng.below(8) {
            0 => Behaviour::Reject { cause: [17, 21, 3][rng.below(3) as usize] },
            1 => Behaviour::AnswerAfter { ticks: 1 + rng.below(5_000) },
            2 => Behaviour::LeaveAfter { ticks: 1 + rng.below(5_000) },
            3 => Behaviour::VanishAfter { ticks: 1 + rng.below(5_000) },
            // A late ADD PARTY REJECT, which the run's drops and releases may cross.
            4 => Behaviour::RejectAfter {
                cause: [17, 21, 3][rng.below(3) as usize],
                ticks: 1 + rng.below(5_000),
            },
            5 => Behaviour::AcceptChanged,
            _ => Behaviour::Accept,
        })
        .collect()
}

fn random_schedule(rng: &mut Rng) -> FaultPolicy {
    let mut policy = FaultPolicy {
        sync_weight: rng.below(4) as u32,
        pending_weight: rng.below(4) as u32,
        cross_processor_weight: rng.below(4) as u32,
        dispatch_delivery_per_10000: rng.below(10_001) as u32,
        max_delay_ticks: 1 + rng.below(5_000),
        ..FaultPolicy::default()
    };
    if policy.sync_weight + policy.pending_weight + policy.cross_processor_weight == 0 {
        policy.pending_weight = 1;
    }
    policy
}

/// The machine of one schedule or low-resources run: its fault policy and remote behaviours,
/// drawn from the seed, and the generator that then draws the operations.
fn fuzz_bench(options: &Options, campaign: Campaign, seed: u64) -> (Bench, Rng) {
    let mut rng = Rng::new(seed ^ 0x5EED_CA3B);
    let mut policy = random_schedule(&mut rng);
    if campaign == Campaign::LowResources {
        policy.allocation_failure_per_10000 = options.probability;
        policy.request_failure_per_10000 = options.probability;
        policy.allocation_failure_tags = options.tags.clone();
        policy.warmup_ticks = options.warmup_ticks;
    } else if rng.below(3) == 0 {
        policy.request_failure_per_10000 = 500;
    }
    policy.special_pool = options.special_pool;
    let behaviours = random_behaviours(&mut rng);
    if campaign == Campaign::Concurrency {
        // More processors, completions racing the requests that cause them on other processors,
        // and PCT aiming at bugs of depth 1 to 3 (see ndis_sim::machine::policy).
        policy.cross_processor_weight += 2;
        policy.max_delay_ticks = policy.max_delay_ticks.min(50);
        let depth = 1 + rng.below(3) as u32;
        let schedule = Schedule::pct(depth, 40 * options.steps.max(1));
        let processors = options.threads.max(1) + 1;
        let bench = Bench::with_schedule(seed, processors, policy, &behaviours, schedule);
        bench.sim.world().set_replay(replay_command(options, campaign, seed));
        return (bench, rng);
    }
    let bench = Bench::new(seed, 2, policy, &behaviours);
    bench.sim.world().set_replay(replay_command(options, campaign, seed));
    (bench, rng)
}

/// The command that runs `campaign` on `seed` alone again (a stop prints it).
pub(crate) fn replay_command(options: &Options, campaign: Campaign, seed: u64) -> String {
    format!(
        "cargo run --release -- campaign --only {} --first-seed {seed} --seeds 1 --steps {} --threads {}{}",
        campaign.name(),
        options.steps,
        options.threads,
        if options.special_pool { "" } else { " --no-special-pool" }
    ) + &partyline_image::file().map(|f| format!(" --image {}", f.display())).unwrap_or_default()
}

/// One random run of `campaign` (schedule or low-resources) on `seed`, `options.steps` steps:
/// the operations drawn and the machine after them, not yet finished.
pub fn random_run(options: &Options, campaign: Campaign, seed: u64) -> (Vec<Op>, Bench) {
    let (mut bench, mut rng) = fuzz_bench(options, campaign, seed);
    // PnP steps come from a generator of their own: the other draws of a seed stay as they were.
    let mut pnp_rng = Rng::new(seed ^ 0x9E7E_7E17);
    let mut ops = Vec::new();
    for _ in 0..options.steps {
        if !bench.loaded() {
            break;
        }
        ops.extend(ops::step(&mut bench, &mut rng, false));
        ops.extend(ops::pnp_step(&mut bench, &mut pnp_rng));
    }
    (ops, bench)
}

/// The machine of `seed` for `campaign` with exactly `ops` applied (fewer if the driver is
/// gone), not yet finished.
pub fn replayed_run(options: &Options, campaign: Campaign, seed: u64, ops: &[Op]) -> Bench {
    let (mut bench, _) = fuzz_bench(options, campaign, seed);
    for op in ops {
        if !bench.loaded() {
            break;
        }
        op.apply(&mut bench);
    }
    bench
}

/// What identifies a problem across replays: its kind and rule (`VIOLATION Ddi_…`, `LEAK …`),
/// not the time or the objects, which move when operations are removed.
fn signature(problem: &str) -> String {
    problem.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Replays a run at most this many times while minimising it.
const MINIMISE_BUDGET: usize = 400;
/// Failing runs minimised per campaign, the first ones in seed order (each costs up to the budget
/// in replays).
pub(crate) const MINIMISE_RUNS: usize = 8;

/// The random runs of `campaign` (schedule, low resources or concurrency) on `seeds`. Failures
/// are recorded as they are; [`minimise`] shrinks some of them afterwards, whatever worker ran
/// them.
pub(crate) fn fuzz(
    options: &Options,
    figures: &mut Figures,
    campaign: Campaign,
    seeds: std::ops::Range<u64>,
) -> Row {
    let mut row = Row::default();
    for seed in seeds {
        row.seeds += 1;
        set_current(format!("{} seed {seed}", campaign.name()));
        let bench = match &options.replay {
            Some(replay) => replayed_run(options, campaign, seed, replay),
            None => random_run(options, campaign, seed).1,
        };
        // Operations run only once DriverEntry succeeded (a low-resources fault can fail it).
        if bench.loaded() {
            row.steps += options.replay.as_ref().map_or(options.steps, |r| r.len() as u64);
        }
        row.ioctls += bench.ioctls;
        let verdict = bench.finish();
        record(figures, &mut row, options, (campaign, RANDOM_OPERATIONS, seed), &verdict);
    }
    row
}

/// The scenario names of failures: random runs (the ones [`minimise`] can shrink), hostile runs,
/// the soak.
pub(crate) const RANDOM_OPERATIONS: &str = "random-operations";
pub(crate) const HOSTILE_RUN: &str = "ioctl-fuzz";
pub(crate) const SOAK_RUN: &str = "add-drop-cycles";

/// Shrinks the failing random run `seed` of `campaign` to the operations that still fail the same
/// way as `problem` (its kind and rule): the operations, and how many the run had. `None` when
/// the run has no operations (the driver never loaded) or is a replay.
pub(crate) fn minimise(
    options: &Options,
    campaign: Campaign,
    seed: u64,
    problem: &str,
) -> Option<(String, usize)> {
    if options.replay.is_some() {
        return None;
    }
    set_current(format!("{} seed {seed} (minimising)", campaign.name()));
    let (ops, bench) = random_run(options, campaign, seed);
    drop(bench.finish());
    if ops.is_empty() {
        return None;
    }
    let wanted = signature(problem);
    let core = ops::minimise(&ops, MINIMISE_BUDGET, |candidate| {
        replayed_run(options, campaign, seed, candidate)
            .finish()
            .first_problem()
            .is_some_and(|p| signature(p) == wanted)
    });
    set_current(String::new());
    Some((ops::render(&core), ops.len()))
}

// ---------------------------------------------------------------------------------------------
// Hostile control input.

fn pick(rng: &mut Rng, items: &[u64]) -> Option<u64> {
    (!items.is_empty()).then(|| items[rng.below(items.len() as u64) as usize])
}

fn random_leaves(rng: &mut Rng) -> Vec<partyline_core::AtmAddress> {
    (0..1 + rng.below(4)).map(|_| leaf(1 + rng.below(10) as u8)).collect()
}

fn nt_error(status: i32) -> bool {
    (status as u32) >> 30 == 3
}

fn hostile_input(rng: &mut Rng, ids: &[u64], af: u64) -> (u32, Vec<u8>, usize) {
    let id = |rng: &mut Rng| match rng.below(4) {
        0 => rng.next_u64(),
        1 => 0,
        _ => pick(rng, ids).unwrap_or(1),
    };
    let ioctl = ioctl::Ioctl::ALL[rng.below(ioctl::Ioctl::ALL.len() as u64) as usize];
    let mut code = ioctl.code();
    let mut input: Vec<u8> = match ioctl {
        ioctl::Ioctl::ListBindings => ioctl::request::encode_list_bindings(rng.below(4)).to_vec(),
        ioctl::Ioctl::ListCalls => ioctl::request::encode_list_calls(rng.below(4)).to_vec(),
        ioctl::Ioctl::MakeCall => {
            let leaves = random_leaves(rng);
            let mut input = vec![0u8; ioctl::request::make_call_len(leaves.len())];
            let af = if rng.below(2) == 0 { af } else { id(rng) };
            let _ = ioctl::request::encode_make_call(
                &mut input,
                af,
                &partyline_core::TrafficProfile::DEFAULT,
                &leaves,
            );
            input
        }
        ioctl::Ioctl::AddParty => {
            ioctl::request::encode_add_party(id(rng), &leaf(1 + rng.below(10) as u8)).to_vec()
        }
        ioctl::Ioctl::DropParty => ioctl::request::encode_drop_party(id(rng)).to_vec(),
        ioctl::Ioctl::CloseCall => ioctl::request::encode_close_call(id(rng)).to_vec(),
        ioctl::Ioctl::QueryCall => ioctl::request::encode_query_call(id(rng), rng.below(3)).to_vec(),
        ioctl::Ioctl::ReadCounters => ioctl::request::encode_read_counters().to_vec(),
        ioctl::Ioctl::ReadTrace => ioctl::request::encode_read_trace(rng.below(50)).to_vec(),
        ioctl::Ioctl::ReadState => ioctl::request::encode_read_state().to_vec(),
    };
    match rng.below(10) {
        0 => input.truncate(rng.below(input.len() as u64 + 1) as usize),
        1 => input.extend((0..1 + rng.below(64)).map(|_| rng.next_u64() as u8)),
        2 => {
            let at = rng.below(input.len().max(1) as u64) as usize;
            if let Some(byte) = input.get_mut(at) {
                *byte ^= 1 << rng.below(8);
            }
        }
        3 => input = (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect(),
        4 => code = (code & !(0xFFF << 2)) | ((0x800 + rng.below(16) as u32) << 2),
        5 => code ^= 1 << rng.below(32),
        6 if input.len() >= 8 => input[4..8].copy_from_slice(&(rng.next_u64() as u32).to_le_bytes()),
        7 if input.len() >= 2 => input[0..2].copy_from_slice(&(rng.below(4) as u16).to_le_bytes()),
        _ => {}
    }
    let output_len = [0, 1, 3, 16, 63, 4096, 1 << 16][rng.below(7) as usize];
    (code, input, output_len)
}

/// Sends one (possibly hostile) IOCTL: a refused input must carry exactly the status
/// `partyline_ioctl::decode_request` gives it, an accepted one success or an error status (a
/// call it makes is remembered). `Err`: what was wrong.
pub fn send_hostile(bench: &mut Bench, code: u32, input: &[u8], output_len: usize) -> Result<(), String> {
    let expected = ioctl::decode_request(code, input);
    let Some((status, output)) = bench.send(code, input, output_len) else { return Ok(()) };
    match expected {
        Err(error) if status != error.status() => Err(format!(
            "IOCTL {code:#x} with {} input bytes: refused with {status:#x}, expected {:#x} ({error:?})",
            input.len(),
            error.status()
        )),
        Ok(_) if status != STATUS_SUCCESS && !nt_error(status) => {
            Err(format!("IOCTL {code:#x}: answered with {status:#x}, neither success nor an error"))
        }
        Ok(_)
            if status == STATUS_SUCCESS && ioctl::Ioctl::from_code(code) == Some(ioctl::Ioctl::MakeCall) =>
        {
            if let Ok(call) = ioctl::decode_make_call_response(&output) {
                bench.calls.push(call);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// After hostile input: every listed call can be queried, and a valid MAKE_CALL still connects.
/// The problems found.
pub fn still_consistent(bench: &mut Bench) -> Vec<String> {
    let mut problems = Vec::new();
    let listed =
        bench.send(ioctl::IOCTL_PARTYLINE_LIST_CALLS, &ioctl::request::encode_list_calls(0), 1 << 16);
    if let Some((STATUS_SUCCESS, out)) = listed {
        match ioctl::decode_list_calls_response(&out) {
            Ok(page) => {
                for call in page.iter().map(|c| c.id).collect::<Vec<_>>() {
                    if bench.query(call).is_none() {
                        problems.push(format!("listed call {call} cannot be queried"));
                    }
                }
            }
            Err(e) => problems.push(format!("LIST_CALLS answer does not decode: {e:?}")),
        }
    } else {
        problems.push("LIST_CALLS refused after the fuzzing".into());
    }
    if bench.loaded() && bench.af().is_some_and(|af| bench.make_call(af, &[leaf(9)]).is_none()) {
        problems.push("a valid MAKE_CALL is refused after the fuzzing".into());
    }
    problems
}

/// The hostile runs on `seeds`.
pub(crate) fn hostile(options: &Options, figures: &mut Figures, seeds: std::ops::Range<u64>) -> Row {
    let mut row = Row::default();
    for seed in seeds {
        row.seeds += 1;
        let mut rng = Rng::new(seed ^ 0x4057_11E0);
        set_current(format!("hostile seed {seed}"));
        let faults = FaultPolicy { special_pool: options.special_pool, ..FaultPolicy::default() };
        let mut bench = Bench::new(seed, 2, faults, &[]);
        let mut problems = Vec::new();
        let af = bench.af().unwrap_or(0);
        // Live, dropped and closed objects whose ids the fuzzer reuses.
        let live = bench.make_call(af, &[leaf(1), leaf(2), leaf(3)]);
        bench.drain();
        if let Some(call) = live {
            if let Some((_, parties)) = bench.query(call) {
                bench.drop_party(parties[parties.len() - 1]);
            }
        }
        if let Some(closed) = bench.make_call(af, &[leaf(4)]) {
            bench.drain();
            bench.close_call(closed);
        }
        bench.drain();
        for _ in 0..options.ioctl_inputs {
            let mut ids: Vec<u64> = bench.calls.iter().chain(&bench.parties).copied().collect();
            ids.push(af);
            let (code, input, output_len) = hostile_input(&mut rng, &ids, af);
            if let Err(problem) = send_hostile(&mut bench, code, &input, output_len) {
                problems.push(problem);
            }
            if rng.below(8) == 0 {
                bench.drain();
            }
        }
        bench.drain();
        problems.extend(still_consistent(&mut bench));
        row.ioctls += bench.ioctls;
        let mut verdict = bench.finish();
        verdict.violations.extend(problems);
        record(figures, &mut row, options, (Campaign::Hostile, HOSTILE_RUN, seed), &verdict);
    }
    row
}

// ---------------------------------------------------------------------------------------------
// Soak: a million add/drop cycles on long-lived calls (see `crate::soak`).

pub(crate) fn soak(options: &Options, figures: &mut Figures) -> Row {
    let mut row = Row { seeds: 1, ..Row::default() };
    let seed = options.first_seed;
    set_current(format!("soak seed {seed}"));
    let warmup = (options.cycles / 10).clamp(crate::soak::CHECKPOINT.min(options.cycles), 10_000);
    let (soak, verdict) = crate::soak::soak(seed, options.cycles, warmup, options.special_pool);
    row.steps += soak.cycles;
    row.ioctls += soak.ioctls;
    row.faults += soak.failed_requests;
    record(figures, &mut row, options, (Campaign::Soak, SOAK_RUN, seed), &verdict);
    figures.soak = Some(soak);
    row
}
