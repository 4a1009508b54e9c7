//! `partyline-bench`: runs every benchmark of issue #6 and prints the table.
//!
//! Usage: `partyline-bench [--quick] [--no-callgrind] [--sizes 10,100,...]`

use std::process::ExitCode;

fn main() -> ExitCode {
    partyline_bench::dispatch_child();
    let mut options = partyline_bench::Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                let callgrind = options.callgrind;
                options = partyline_bench::Options { callgrind, ..partyline_bench::Options::quick() };
            }
            "--no-callgrind" => options.callgrind = false,
            "--sizes" => {
                let list = args.next().unwrap_or_default();
                match list.split(',').map(|s| s.trim().replace('_', "").parse()).collect() {
                    Ok(sizes) => options.sizes = sizes,
                    Err(_) => {
                        eprintln!("--sizes takes a comma-separated list of party counts");
                        return ExitCode::from(2);
                    }
                }
            }
            "-h" | "--help" => {
                println!("usage: partyline-bench [--quick] [--no-callgrind] [--sizes 10,100,1000]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let report = partyline_bench::run(&options);
    print!("{report}");
    ExitCode::SUCCESS
}
