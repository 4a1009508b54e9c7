//! Robustness campaigns for the real `partyline.sys` on ndis-sim (issue #5): nothing a
//! low-resources kernel, a misbehaving call manager and network, concurrent processors or a
//! hostile user can do may crash it, leak, hang it or make it break an NDIS rule.
//!
//! Read: `shared/ndis/verifier-rules.md` §5 (Driver Verifier's low-resources and systematic
//! low-resources simulation) and §7.9 (the stress modes), `docs/ROBUSTNESS.md` (figures).
//!
//! Campaigns, each over the seeds `1..=seeds`:
//! - **systematic**: every default scenario under a synchronous and an always-pending schedule is
//!   replayed with one [`Systematic::one_per_run`] registry until a run meets no new fault site,
//!   so every allocation and failable request is failed once, alone, at each call site and
//!   callback context (`ndis_sim::ndis::faults`).
//! - **low-resources**: Driver Verifier's randomised mode with its knobs (probability per 10 000,
//!   pool-tag filter, warm-up) during a schedule fuzz.
//! - **schedule**: random outcome per request (synchronous, pending, cross-processor, failed),
//!   random delays and remote behaviours, remote drops and releases racing local adds, drops and
//!   closes, close-AF and unbind at any point, `steps` operations per seed.
//! - **concurrency**: completions and network events delivered by `threads` host threads at once,
//!   each on a simulated processor of its own, while IOCTLs run on another.
//! - **hostile**: malformed, truncated, oversized, unknown-code and stale-id IOCTLs; each refusal
//!   must carry the status `partyline_ioctl::decode_request` gives for it.
//! - **soak**: `cycles` add/drop cycles on long-lived calls, remote drops and failed requests
//!   mixed in; the pool's high-water mark stays flat after warm-up and every table of the driver
//!   returns to its baseline ([`soak`]).
//!
//! Every run ends with the driver's own state audited through its control device
//! ([`ndis_sim::driver_state`]): every object accounted for, exactly the refusals the run's
//! requests met, and, once NDIS has unbound the adapter, every table empty.
//!
//! A crash stops the process (the simulator's bug check); an `atexit` hook then names the run.

pub mod bench;
pub mod cli;
mod modes;
pub mod ops;
pub mod plan;
pub mod shard;
pub mod soak;
pub mod workers;

pub use modes::{random_run, replayed_run, send_hostile, still_consistent};

use std::collections::BTreeSet;
use std::fmt;

pub use ndis_sim::ndis::Rng;

/// What to run. Serialized for worker processes and result files (`replay` in its text form).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Options {
    /// Seeds `first_seed..first_seed + seeds` for the seeded campaigns.
    pub seeds: u64,
    /// The first seed.
    pub first_seed: u64,
    /// Operations per schedule-fuzz / low-resources / concurrency run.
    pub steps: u64,
    /// Host threads delivering callbacks in the concurrency campaign.
    pub threads: usize,
    /// IOCTL inputs per hostile run.
    pub ioctl_inputs: u64,
    /// Low-resources failure probability per 10 000 (Driver Verifier's default is 600).
    pub probability: u32,
    /// Low-resources pool-tag filter (empty: every tag).
    pub tags: Vec<u32>,
    /// Low-resources warm-up in 100 ns ticks of virtual time.
    pub warmup_ticks: u64,
    /// Which campaigns (empty: all).
    pub only: Vec<Campaign>,
    /// Print each failing run as it is found.
    pub verbose: bool,
    /// Schedule and low-resources: run exactly these operations on each seed instead of random
    /// ones (a minimised failure's replay, [`ops::parse`]).
    #[serde(with = "ops::text")]
    pub replay: Option<Vec<ops::Op>>,
    /// Minimise failing schedule and low-resources runs to the operations that still fail.
    pub minimise: bool,
    /// Driver Verifier's special pool for every driver allocation (guard page after each block,
    /// freed blocks inaccessible): a stray access stops the run, reported, and the campaign goes
    /// on. On by default.
    pub special_pool: bool,
    /// Add/drop cycles of the soak.
    pub cycles: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seeds: 200,
            first_seed: 1,
            steps: 60,
            threads: 3,
            ioctl_inputs: 400,
            probability: 600,
            tags: Vec::new(),
            warmup_ticks: 0,
            only: Vec::new(),
            verbose: false,
            replay: None,
            minimise: true,
            special_pool: true,
            cycles: 20_000,
        }
    }
}

impl Options {
    /// A short version of every campaign, for the test suite.
    pub fn short() -> Options {
        Options { seeds: 6, steps: 30, ioctl_inputs: 150, cycles: 2_000, ..Options::default() }
    }

    /// Refuses option combinations that mean nothing: a replay names one random campaign.
    pub fn check(&self) -> Result<(), String> {
        if self.replay.is_some()
            && (self.only.is_empty()
                || self.only.iter().any(|c| {
                    !matches!(c, Campaign::Schedule | Campaign::LowResources | Campaign::Concurrency)
                }))
        {
            return Err("--replay replays schedule, low-resources or concurrency runs: add --only schedule, --only low-resources or --only concurrency".into());
        }
        Ok(())
    }

    fn runs(&self, campaign: Campaign) -> bool {
        self.only.is_empty() || self.only.contains(&campaign)
    }
}

/// The campaigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Campaign {
    Systematic,
    LowResources,
    Schedule,
    Concurrency,
    Hostile,
    Soak,
}

impl Campaign {
    /// Every campaign.
    pub const ALL: [Campaign; 6] = [
        Campaign::Systematic,
        Campaign::LowResources,
        Campaign::Schedule,
        Campaign::Concurrency,
        Campaign::Hostile,
        Campaign::Soak,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Campaign::Systematic => "systematic",
            Campaign::LowResources => "low-resources",
            Campaign::Schedule => "schedule",
            Campaign::Concurrency => "concurrency",
            Campaign::Hostile => "hostile",
            Campaign::Soak => "soak",
        }
    }

    /// By command-line name.
    pub fn parse(name: &str) -> Option<Campaign> {
        Campaign::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The figures of one campaign.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub scenarios: u64,
    pub seeds: u64,
    pub runs: u64,
    pub steps: u64,
    pub faults: u64,
    pub sites: u64,
    pub ioctls: u64,
    pub violations: u64,
    pub leaks: u64,
    pub hangs: u64,
    /// Runs that stopped (bug check, deadlock, special-pool fault, cap), each reported with its
    /// replay command; the campaign goes on with the next run.
    pub stops: u64,
}

/// A run that found something: enough to replay it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub campaign: Campaign,
    pub scenario: String,
    pub seed: u64,
    /// Its place in its campaign's report: the seed, or the systematic campaign's (scenario,
    /// schedule) pair. Failures are reported in campaign order, then this order, whichever
    /// worker or shard found them.
    pub order: u64,
    pub problem: String,
    /// Random runs: the minimised operations that still fail the same way (text form), and how
    /// many operations the run had.
    pub minimised: Option<(String, usize)>,
}

/// Everything a campaign run measured. `Display` prints the table.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    pub rows: Vec<(Campaign, Row)>,
    /// Distinct fault sites over every systematic scenario.
    pub distinct_sites: BTreeSet<String>,
    pub failures: Vec<Failure>,
    /// What the soak measured, if it ran.
    pub soak: Option<soak::SoakFigures>,
}

impl Figures {
    /// Violations + leaks + hangs over every campaign.
    pub fn problems(&self) -> u64 {
        self.rows.iter().map(|(_, r)| r.violations + r.leaks + r.hangs).sum()
    }

    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.problems() == 0 && self.failures.is_empty()
    }

    fn total(&self) -> Row {
        let mut t = Row::default();
        for (_, r) in &self.rows {
            t.add(r);
        }
        t.sites = self.distinct_sites.len() as u64;
        t
    }
}

impl Row {
    /// Adds `other`'s figures to these.
    pub fn add(&mut self, other: &Row) {
        self.scenarios += other.scenarios;
        self.seeds += other.seeds;
        self.runs += other.runs;
        self.steps += other.steps;
        self.faults += other.faults;
        self.sites += other.sites;
        self.ioctls += other.ioctls;
        self.violations += other.violations;
        self.leaks += other.leaks;
        self.hangs += other.hangs;
        self.stops += other.stops;
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| campaign | scenarios | seeds | runs | steps | faults injected | fault sites | IOCTL inputs | violations | leaks | hangs | stops |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        let total = self.total();
        for (name, r) in self.rows.iter().map(|(c, r)| (c.name(), r)).chain([("total", &total)]) {
            writeln!(
                f,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.scenarios,
                r.seeds,
                r.runs,
                r.steps,
                r.faults,
                r.sites,
                r.ioctls,
                r.violations,
                r.leaks,
                r.hangs,
                r.stops
            )?;
        }
        if let Some(soak) = &self.soak {
            writeln!(
                f,
                "soak: {} add/drop cycles ({} local drops, {} remote, {} crossed; {} requests failed; {} PnP events), {} long-lived calls made again; pool \
                 high-water mark {} bytes after warm-up, {} at the end (growth allowed: one chunk, {} bytes); \
                 baseline tables (bindings, address families, calls, parties) {:?}",
                soak.cycles,
                soak.local_drops,
                soak.remote_drops,
                soak.crossings,
                soak.failed_requests,
                soak.pnp_events,
                soak.calls_remade,
                soak.high_water_after_warmup,
                soak.high_water_at_end,
                soak.allowed_growth,
                soak.baseline_live
            )?;
        }
        if std::env::var_os("PARTYLINE_CAMPAIGN_SITES").is_some() {
            for site in &self.distinct_sites {
                writeln!(f, "site: {site}")?;
            }
        }
        for failure in &self.failures {
            writeln!(
                f,
                "FAILED {} {} seed {}: {}",
                failure.campaign.name(),
                failure.scenario,
                failure.seed,
                failure.problem
            )?;
            if let Some((ops, of)) = &failure.minimised {
                let count = ops.split(';').filter(|o| !o.trim().is_empty()).count();
                writeln!(
                    f,
                    "  minimised to {count} of {of} operations; replay: partyline campaign --only {} --first-seed {} --seeds 1 --replay \"{ops}\"{}",
                    failure.campaign.name(),
                    failure.seed,
                    if failure.campaign == Campaign::LowResources { " (with the same --probability, --tag, --warmup)" } else { "" }
                )?;
            }
        }
        Ok(())
    }
}

/// Where the units of a run ([`plan`]) run.
#[derive(Clone, Copy, Debug)]
pub enum Executor<'a> {
    /// One after the other, in this process.
    InProcess,
    /// On `jobs` worker processes started from `program` ([`workers`]).
    Workers { jobs: usize, program: &'a std::path::Path },
}

impl Executor<'_> {
    fn execute(&self, options: &Options, units: Vec<plan::Unit>) -> Result<Vec<plan::Outcome>, String> {
        match self {
            Executor::InProcess => Ok(units.iter().map(|unit| plan::run_unit(options, unit)).collect()),
            Executor::Workers { jobs, program } => workers::execute(options, units, *jobs, program),
        }
    }
}

/// Runs the campaigns `options` selects in this process, one unit of work after the other, and
/// returns their figures.
pub fn run(options: &Options) -> Figures {
    modes::install_crash_reporter();
    let mut figures =
        plan::assemble(options, plan::units(options, None).iter().map(|u| plan::run_unit(options, u)));
    let asked = plan::minimise_units(options, &figures);
    let shrunk = asked.iter().map(|unit| plan::run_unit(options, unit)).collect();
    plan::attach_minimised(&mut figures, &asked, shrunk);
    figures
}

/// Runs the campaigns `options` selects, or the shard `shard` of them, on `executor`: the same
/// figures as [`run`] (for a shard, its part of them, not yet shrunk: see [`shard::merge`]).
/// `Err` when the workers cannot start.
pub fn run_with(
    options: &Options,
    shard: Option<shard::Shard>,
    executor: Executor<'_>,
) -> Result<Figures, String> {
    if matches!(executor, Executor::InProcess) {
        modes::install_crash_reporter();
    }
    let mut figures = plan::assemble(options, executor.execute(options, plan::units(options, shard))?);
    if shard.is_none() {
        minimise(options, &mut figures, executor)?;
    }
    Ok(figures)
}

/// Shrinks the failing random runs of `figures` that [`plan::minimise_units`] names, on
/// `executor`.
pub fn minimise(options: &Options, figures: &mut Figures, executor: Executor<'_>) -> Result<(), String> {
    let asked = plan::minimise_units(options, figures);
    let shrunk = executor.execute(options, asked.clone())?;
    plan::attach_minimised(figures, &asked, shrunk);
    Ok(())
}
