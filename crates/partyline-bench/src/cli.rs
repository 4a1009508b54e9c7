//! The benchmarks' command line, shared by `partyline bench` and the `partyline-bench` binary.

use std::process::ExitCode;

use crate::Options;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A smoke run: small sizes and short measurements (seconds).
    #[arg(long)]
    pub quick: bool,
    /// Skip the callgrind scaling run (instruction counts).
    #[arg(long)]
    pub no_callgrind: bool,
    /// Party counts of the scaling run (default: 10,100,1000,10000,65535).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub sizes: Vec<u32>,
}

/// Runs every benchmark and prints the table. A binary calling this must call
/// [`crate::dispatch_child`] first in `main`.
pub fn run(args: BenchArgs) -> ExitCode {
    let mut options = if args.quick { Options::quick() } else { Options::default() };
    if args.no_callgrind {
        options.callgrind = false;
    }
    if !args.sizes.is_empty() {
        options.sizes = args.sizes;
    }
    let report = crate::run(&options);
    print!("{report}");
    ExitCode::SUCCESS
}
