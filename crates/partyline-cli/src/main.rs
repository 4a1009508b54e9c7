//! `partyline`: runs a scenario on the embedded simulator (Linux) or against the real driver's
//! control device (Windows), and on Windows talks to `\\.\Partyline` directly.
//!
//! Flow: `run [SCENARIO]` parses the scenario (a file, or a shipped one by name; the default
//! when none is given) and hands it to a [`portable::Target`]: on Linux ndis-sim with the
//! `partyline.sys` that `partyline-image` built and embedded, on Windows the device. The output is
//! the timeline, each step's result, the verifier's verdict and a summary, or JSON lines with
//! `--json`. The exit status is 0 for a clean run, 1 when a rule was broken or a step failed,
//! 2 when the scenario or the command line is wrong.

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod shipped;

#[cfg(target_os = "linux")]
mod simulator;

#[cfg(windows)]
mod device;

#[cfg(target_os = "linux")]
use ndis_sim::scenario::portable;

// ndis-sim needs an x86-64 Linux host; on Windows the scenario format and runner (which depend
// only on serde, toml and partyline-ioctl) are compiled from the same file. Some of it (what only
// the simulator produces) is unused there.
#[cfg(windows)]
#[allow(dead_code)]
#[path = "../../ndis-sim/src/scenario/portable.rs"]
mod portable;

#[derive(Parser)]
#[command(
    name = "partyline",
    version,
    about = "ATM point-to-multipoint calls with partyline.sys: scenarios on the simulator, requests to the driver"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Load this partyline.sys instead of the embedded one (a driver built elsewhere, or one with
    /// a planted bug; see `partyline-mutants`).
    #[cfg(target_os = "linux")]
    #[arg(long, global = true, value_name = "FILE")]
    image: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (a .toml file or a shipped scenario's name; the default one when omitted).
    Run(RunArgs),
    /// List the scenarios that ship with partyline.
    Scenarios,
    /// Show the driver's own state: live objects, memory and queued work per table, and its
    /// refusals by kind. On Linux, at the end of a scenario on the simulator (before DriverUnload);
    /// on Windows, the running driver.
    State(StateArgs),
    /// Run the robustness campaigns on the simulator and print the figures (docs/ROBUSTNESS.md).
    #[cfg(target_os = "linux")]
    Campaign(Box<partyline_campaign::cli::CampaignArgs>),
    /// Run the benchmarks and print the results table (docs/BENCHMARKS.md).
    #[cfg(target_os = "linux")]
    Bench(partyline_bench::cli::BenchArgs),
    /// Make a point-to-multipoint call on an address family to some leaves (Windows).
    #[cfg(windows)]
    Call {
        /// The address family id (see `partyline list`).
        #[arg(long)]
        af: String,
        /// Leaves: `+15551234` or 40 hex digits (dots allowed).
        #[arg(required = true)]
        leaves: Vec<String>,
    },
    /// Add a party to a call (Windows).
    #[cfg(windows)]
    Add { call: String, leaf: String },
    /// Drop a party (Windows).
    #[cfg(windows)]
    Drop { party: String },
    /// Close a call (Windows).
    #[cfg(windows)]
    Close { call: String },
    /// Show a call and its parties (Windows).
    #[cfg(windows)]
    Query { call: String },
    /// List bindings, address families and calls (Windows).
    #[cfg(windows)]
    List,
    /// Show the driver's counters (Windows).
    #[cfg(windows)]
    Counters,
    /// Show the driver's recent trace events (Windows).
    #[cfg(windows)]
    Trace {
        /// Start at this sequence number.
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
}

#[derive(clap::Args, Default)]
pub struct RunArgs {
    /// A scenario file, or the name of a shipped one (`partyline scenarios`).
    pub scenario: Option<String>,
    /// Use this seed instead of the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// JSON lines: one per timeline event, step and violation, then a summary line.
    #[arg(long)]
    pub json: bool,
    /// Leave out the timeline.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(clap::Args, Default)]
pub struct StateArgs {
    /// Linux: the scenario to play first (a .toml file or a shipped scenario's name; the default
    /// one when omitted). Windows: not allowed (the running driver is read as it is).
    pub scenario: Option<String>,
    /// Linux: use this seed instead of the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// A scenario to run: its text, where it came from, and how to name it on a command line.
pub struct Source {
    pub text: String,
    /// For error messages: the file, or `scenarios/<name>.toml (embedded)`.
    pub origin: String,
    /// What to type after `partyline run` to get it again.
    pub argument: String,
}

fn load(scenario: Option<&str>) -> Result<Source, String> {
    let name = scenario.unwrap_or("default");
    if Path::new(name).is_file() {
        let text = std::fs::read_to_string(name).map_err(|e| format!("{name}: {e}"))?;
        return Ok(Source { text, origin: name.into(), argument: name.into() });
    }
    match shipped::find(name) {
        Some((short, file, text)) => {
            Ok(Source { text: text.into(), origin: file.into(), argument: short.into() })
        }
        None => {
            let names: Vec<&str> = shipped::SHIPPED.iter().map(|(n, _, _)| *n).collect();
            Err(format!(
                "{name}: no such file, and no shipped scenario by that name (shipped: {})",
                names.join(", ")
            ))
        }
    }
}

fn parse(source: &Source) -> Result<portable::Scenario, String> {
    portable::Scenario::parse(&source.text, &source.origin).map_err(|e| e.to_string())
}

fn list_scenarios() -> ExitCode {
    for (name, file, text) in shipped::SHIPPED {
        let description = match portable::Scenario::parse(text, file) {
            Ok(s) => s.description.lines().next().unwrap_or_default().to_string(),
            Err(e) => format!("(does not parse: {e})"),
        };
        println!("{name:<22} {file:<36} {description}");
    }
    ExitCode::SUCCESS
}

fn run(args: &RunArgs) -> ExitCode {
    let source = match load(args.scenario.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("partyline: {e}");
            return ExitCode::from(2);
        }
    };
    let scenario = match parse(&source) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("partyline: the scenario is not valid:\n  {e}");
            return ExitCode::from(2);
        }
    };
    #[cfg(target_os = "linux")]
    {
        simulator::run(&scenario, &source, args)
    }
    #[cfg(windows)]
    {
        device::run_scenario(&scenario, &source, args)
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = scenario;
        eprintln!("partyline: scenarios run on the simulator (x86-64 Linux) or on the real driver (Windows)");
        ExitCode::from(2)
    }
}

fn state(args: &StateArgs) -> ExitCode {
    #[cfg(windows)]
    {
        if args.scenario.is_some() || args.seed.is_some() {
            eprintln!(
                "partyline: on Windows `partyline state` reads the running driver as it is; a scenario \
                 and a seed apply only on the simulator (Linux)"
            );
            return ExitCode::from(2);
        }
        device::state()
    }
    #[cfg(not(windows))]
    {
        let source = match load(args.scenario.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("partyline: {e}");
                return ExitCode::from(2);
            }
        };
        let scenario = match parse(&source) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("partyline: the scenario is not valid:\n  {e}");
                return ExitCode::from(2);
            }
        };
        #[cfg(target_os = "linux")]
        {
            simulator::state(&scenario, &source, args.seed)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = scenario;
            eprintln!("partyline: the simulator needs an x86-64 Linux host");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    // The benchmark's scaling run re-executes this program under callgrind.
    #[cfg(target_os = "linux")]
    partyline_bench::dispatch_child();
    // A campaign on several processes re-executes this program as its workers.
    #[cfg(target_os = "linux")]
    partyline_campaign::workers::dispatch();
    let cli = Cli::parse();
    #[cfg(target_os = "linux")]
    if let Some(file) = &cli.image {
        if let Err(e) = partyline_image::use_file(file) {
            eprintln!("partyline: --image {e}");
            return ExitCode::from(2);
        }
    }
    match cli.command {
        None => run(&RunArgs::default()),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Scenarios) => list_scenarios(),
        Some(Command::State(args)) => state(&args),
        #[cfg(target_os = "linux")]
        Some(Command::Campaign(args)) => partyline_campaign::cli::run(*args),
        #[cfg(target_os = "linux")]
        Some(Command::Bench(args)) => partyline_bench::cli::run(args),
        #[cfg(windows)]
        Some(Command::Call { af, leaves }) => device::call(&af, &leaves),
        #[cfg(windows)]
        Some(Command::Add { call, leaf }) => device::add(&call, &leaf),
        #[cfg(windows)]
        Some(Command::Drop { party }) => device::drop_party(&party),
        #[cfg(windows)]
        Some(Command::Close { call }) => device::close(&call),
        #[cfg(windows)]
        Some(Command::Query { call }) => device::query(&call),
        #[cfg(windows)]
        Some(Command::List) => device::list(),
        #[cfg(windows)]
        Some(Command::Counters) => device::counters(),
        #[cfg(windows)]
        Some(Command::Trace { from }) => device::trace(from),
    }
}
