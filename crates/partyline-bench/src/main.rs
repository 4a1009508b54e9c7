//! `partyline-bench`: runs every benchmark of issue #6 and prints the table (the same command
//! line as `partyline bench`).

use clap::Parser;

#[derive(Parser)]
#[command(name = "partyline-bench", about = "Benchmarks of partyline.sys and the simulator")]
struct Main {
    #[command(flatten)]
    args: partyline_bench::cli::BenchArgs,
}

fn main() -> std::process::ExitCode {
    partyline_bench::dispatch_child();
    partyline_campaign::workers::dispatch();
    partyline_bench::cli::run(Main::parse().args)
}
