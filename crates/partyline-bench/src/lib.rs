//! partyline-bench: the numbers issue #6 asks for, measured in one run.
//!
//! - **Scaling**: one call, N leaves added and then dropped in random order, N = 10 … 65,535; the
//!   cost of one add+drop counted in executed x86-64 instructions inside partyline.sys's mapped
//!   range (and, for context, in the whole process), by valgrind's callgrind over a fixed,
//!   seeded scenario. Deterministic; needs `valgrind` on PATH, otherwise reported as not measured.
//! - **Memory**: nonpaged pool held per party and per VC, read from the simulator's pool tracking.
//! - **Image**: the size of the release partyline.sys.
//! - **Throughput**: party operations per second through the loaded image, every request
//!   completing synchronously, with the verifier on and off.
//! - **Scenario rate**: runs per minute of the shipped default scenario (`scenarios/default.toml`),
//!   each with a fresh image instance, a new seed each run.
//! - **Campaigns on every core**: the seeded campaigns on one worker process and on two
//!   ([`campaigns`]); the speed-up, and that both give the same figures.
//!
//! The scaling figure runs in a child process under callgrind: the child is this same executable
//! with `PARTYLINE_BENCH_CHILD` set, so any binary that calls [`run`] must call
//! [`dispatch_child`] first thing in `main`, and `partyline_campaign::workers::dispatch` for the
//! campaign workers.

pub mod callgrind;
pub mod campaigns;
pub mod cli;
pub mod harness;
mod report;

use std::time::{Duration, Instant};

use ndis_sim::ndis::FaultPolicy;
pub use report::{Machine, Report, ScalingRow, Target, Throughput};

use harness::{leaf, Harness, Shuffle};

/// What to measure and how hard.
#[derive(Clone, Debug)]
pub struct Options {
    /// Party counts of the scaling benchmark.
    pub sizes: Vec<u32>,
    /// Whether to run the callgrind scaling benchmark at all.
    pub callgrind: bool,
    /// Parties in the memory benchmark (a multiple of the slab chunk, 256, for an exact figure).
    pub memory_parties: u32,
    /// Calls in the per-VC memory benchmark.
    pub memory_calls: u32,
    /// Parties per round of the throughput benchmark.
    pub throughput_parties: u32,
    /// Rounds (each adds and drops `throughput_parties`) per timed batch of the throughput
    /// measurement.
    pub throughput_rounds: u32,
    /// Timed batches per verifier setting, alternating on and off; the best batch of each is the
    /// figure (the machine is shared, so a slow batch measures the neighbours), the median is
    /// printed beside it.
    pub throughput_batches: u32,
    /// Wall time spent on the scenario-rate measurement.
    pub scenario_time: Duration,
    /// The executable to run under valgrind as the scaling child, and as the campaign workers
    /// (default: this one).
    pub child_exe: Option<std::path::PathBuf>,
    /// Seeds per seeded campaign in the campaign speed-up measurement (0: not measured).
    pub campaign_seeds: u64,
    /// Times each worker count is measured (the best time counts).
    pub campaign_rounds: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sizes: vec![10, 100, 1_000, 10_000, 65_535],
            callgrind: true,
            memory_parties: 4_096,
            memory_calls: 256,
            throughput_parties: 1_000,
            throughput_rounds: 10,
            throughput_batches: 5,
            scenario_time: Duration::from_secs(5),
            child_exe: None,
            campaign_seeds: 600,
            campaign_rounds: 2,
        }
    }
}

impl Options {
    /// A fast smoke run (seconds, not minutes): small sizes, short timings.
    pub fn quick() -> Options {
        Options {
            sizes: vec![10, 100, 1_000],
            memory_parties: 512,
            memory_calls: 256,
            throughput_parties: 100,
            throughput_rounds: 10,
            throughput_batches: 3,
            scenario_time: Duration::from_millis(500),
            campaign_seeds: 32,
            campaign_rounds: 1,
            ..Options::default()
        }
    }
}

/// Seed of every simulated run of the benchmarks (scenario runs use 1, 2, 3, …).
pub const SEED: u64 = 6;

/// Runs every benchmark and returns the figures.
pub fn run(options: &Options) -> Report {
    let image_bytes = partyline_image::image().len() as u64;
    let scaling = if options.callgrind {
        callgrind::scaling(options)
    } else {
        Err("not measured: disabled with --no-callgrind".into())
    };
    let memory = memory(options);
    let (throughput_on, throughput_off, throughput_special) = throughput(options);
    let (scenario_runs, scenario_elapsed) = scenario_rate(options, false);
    let (special_scenario_runs, special_scenario_elapsed) = scenario_rate(options, true);
    let campaign_scaling = if options.campaign_seeds == 0 {
        Err("not measured: disabled".into())
    } else {
        campaigns::measure(options.campaign_seeds, options.campaign_rounds, options.child_exe.as_deref())
    };
    Report {
        machine: Machine::this(),
        image_bytes,
        scaling,
        party_bytes: memory.0,
        vc_bytes: memory.1,
        party_pool_detail: memory.2,
        throughput_on,
        throughput_off,
        throughput_special,
        scenario_runs,
        scenario_elapsed,
        special_scenario_runs,
        special_scenario_elapsed,
        campaign_scaling,
    }
}

/// If this process is a scaling child (`PARTYLINE_BENCH_CHILD` set), runs it and exits.
pub fn dispatch_child() {
    if let Ok(value) = std::env::var(callgrind::CHILD_ENV) {
        let n: u32 = value.parse().expect("PARTYLINE_BENCH_CHILD is a party count");
        callgrind::child(n);
        std::process::exit(0);
    }
}

/// The scaling scenario's measured part: `leaves` added to `call`, then dropped in a seeded random
/// order. Not inlined, under a fixed symbol name, so callgrind can collect exactly this.
#[inline(never)]
#[no_mangle]
pub fn partyline_bench_measured_phase(
    h: &Harness,
    call: u64,
    leaves: &[partyline_core::AtmAddress],
    seed: u64,
) {
    let mut parties: Vec<u64> = leaves.iter().map(|l| h.add_party(call, l)).collect();
    Shuffle::new(seed).shuffle(&mut parties);
    for party in parties {
        h.drop_party(party);
    }
}

/// Bytes of nonpaged pool per party (all tags), per VC (every tag but the party's), and the per-tag detail of the party figure.
fn memory(options: &Options) -> (f64, f64, Vec<(String, f64)>) {
    let h = Harness::new(harness::config(SEED, FaultPolicy::synchronous()), true);
    let af = h.af();
    let call = h.make_call(af, &[leaf(0)]);
    let before = h.sim.ndis().bytes_held_per_tag();
    let n = options.memory_parties;
    let parties: Vec<u64> = (1..=n).map(|i| h.add_party(call, &leaf(i))).collect();
    let after = h.sim.ndis().bytes_held_per_tag();
    let delta = |a: &std::collections::BTreeMap<u32, u64>, b: &std::collections::BTreeMap<u32, u64>| {
        let mut per_tag = Vec::new();
        let mut total = 0i64;
        for (tag, bytes) in a {
            let d = *bytes as i64 - *b.get(tag).unwrap_or(&0) as i64;
            if d != 0 {
                per_tag.push((ndis_sim::ndis::memory::tag_name(*tag), d));
                total += d;
            }
        }
        (total, per_tag)
    };
    let (party_total, party_tags) = delta(&after, &before);
    let per_party = party_total as f64 / f64::from(n);
    for party in parties {
        h.drop_party(party);
    }
    let before_calls = h.sim.ndis().bytes_held_per_tag();
    let calls: Vec<u64> =
        (0..options.memory_calls).map(|i| h.make_call(af, &[leaf(1_000_000 + i)])).collect();
    let after_calls = h.sim.ndis().bytes_held_per_tag();
    let (_, call_tags) = delta(&after_calls, &before_calls);
    // Each call's one party lands in a slot the dropped parties left free: count only the
    // call's own tags.
    let calls_total: i64 = call_tags.iter().filter(|(tag, _)| tag != "PlPt").map(|(_, d)| d).sum();
    let per_vc = calls_total as f64 / f64::from(options.memory_calls);
    for c in calls.into_iter().chain([call]) {
        h.close_call(c);
    }
    h.finish();
    let detail = party_tags.into_iter().map(|(t, d)| (t, d as f64 / f64::from(n))).collect();
    (per_party, per_vc, detail)
}

/// Party operations (adds + drops) per second, all synchronous, with the verifier on, off, and on
/// with special pool (`FaultPolicy::special_pool`): batches of `throughput_rounds` rounds,
/// alternating between the three simulations.
fn throughput(options: &Options) -> (Throughput, Throughput, Throughput) {
    let leaves: Vec<_> = (1..=options.throughput_parties).map(leaf).collect();
    let setup = |verifier, special_pool| {
        let faults = FaultPolicy { special_pool, ..FaultPolicy::synchronous() };
        let h = Harness::new(harness::config(SEED, faults), verifier);
        let call = h.make_call(h.af(), &[leaf(0)]);
        // Warm up once (slab chunks, maps) so the timed rounds measure steady state.
        partyline_bench_measured_phase(&h, call, &leaves, SEED);
        (h, call)
    };
    let (on, off, special) = (setup(true, false), setup(false, false), setup(true, true));
    let mut round = 0;
    let mut batch = |(h, call): &(Harness, u64)| {
        let start = Instant::now();
        for _ in 0..options.throughput_rounds {
            round += 1;
            partyline_bench_measured_phase(h, *call, &leaves, SEED + round);
        }
        2.0 * f64::from(options.throughput_parties) * f64::from(options.throughput_rounds)
            / start.elapsed().as_secs_f64()
    };
    let (mut rates_on, mut rates_off, mut rates_special) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..options.throughput_batches.max(1) {
        rates_on.push(batch(&on));
        rates_off.push(batch(&off));
        rates_special.push(batch(&special));
    }
    for (h, call) in [on, off, special] {
        h.close_call(call);
        h.finish();
    }
    (Throughput::of(rates_on), Throughput::of(rates_off), Throughput::of(rates_special))
}

/// The shipped default scenario (`scenarios/default.toml`, what `partyline run` plays).
pub const DEFAULT_SCENARIO: &str = include_str!("../../../scenarios/default.toml");

/// One run of the default scenario with `seed`, through ndis-sim's scenario runner: a fresh image
/// instance is loaded, bound, driven through the control device, unloaded and judged.
pub fn default_scenario(scenario: &ndis_sim::scenario::Scenario, seed: u64) {
    let report =
        ndis_sim::scenario::run(scenario, partyline_image::image(), Some(seed)).expect("partyline.sys loads");
    assert!(report.is_clean(), "the default scenario failed with seed {seed}:\n{}", report.timeline());
}

/// Runs of the default scenario, each with a fresh image instance, within the time budget; with
/// special pool if `special_pool`.
fn scenario_rate(options: &Options, special_pool: bool) -> (u64, Duration) {
    let mut scenario = ndis_sim::scenario::Scenario::parse(DEFAULT_SCENARIO, "scenarios/default.toml")
        .expect("the shipped default scenario parses");
    if special_pool {
        scenario.faults.special_pool = Some(true);
    }
    let start = Instant::now();
    let mut runs = 0;
    while start.elapsed() < options.scenario_time {
        runs += 1;
        default_scenario(&scenario, runs);
    }
    (runs, start.elapsed())
}
