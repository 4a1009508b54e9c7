//! `partyline-campaign`: runs the robustness campaigns on the simulator and prints the figures.
//! Exit status 0 only if no violation, leak or hang was found.

use partyline_campaign::{run, Campaign, Options};

const USAGE: &str = "usage: partyline-campaign [--seeds N] [--first-seed N] [--steps N] [--threads N]
       [--ioctl-inputs N] [--probability P/10000] [--tag TAG]... [--warmup TICKS]
       [--only systematic|low-resources|schedule|concurrency|hostile]... [--short] [--verbose]
       [--replay \"OPS\" (with --only schedule or low-resources)] [--no-minimise]";

fn main() {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> String {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        let number = |text: String| -> u64 {
            text.parse().unwrap_or_else(|_| {
                eprintln!("not a number: {text}\n{USAGE}");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--seeds" => options.seeds = number(value("--seeds")),
            "--first-seed" => options.first_seed = number(value("--first-seed")),
            "--steps" => options.steps = number(value("--steps")),
            "--threads" => options.threads = number(value("--threads")) as usize,
            "--ioctl-inputs" => options.ioctl_inputs = number(value("--ioctl-inputs")),
            "--probability" => options.probability = number(value("--probability")) as u32,
            "--warmup" => options.warmup_ticks = number(value("--warmup")),
            "--tag" => {
                let tag = value("--tag");
                let mut bytes = [b' '; 4];
                for (b, t) in bytes.iter_mut().zip(tag.bytes()) {
                    *b = t;
                }
                options.tags.push(u32::from_le_bytes(bytes));
            }
            "--only" => {
                let name = value("--only");
                options.only.push(Campaign::parse(&name).unwrap_or_else(|| {
                    eprintln!("unknown campaign {name}\n{USAGE}");
                    std::process::exit(2)
                }));
            }
            "--short" => {
                let only = std::mem::take(&mut options.only);
                options = Options { only, ..Options::short() };
            }
            "--verbose" => options.verbose = true,
            "--no-minimise" => options.minimise = false,
            "--replay" => {
                let text = value("--replay");
                options.replay = Some(partyline_campaign::ops::parse(&text).unwrap_or_else(|e| {
                    eprintln!("--replay: {e}\n{USAGE}");
                    std::process::exit(2)
                }));
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = options.check() {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2);
    }
    let started = std::time::Instant::now();
    let figures = run(&options);
    print!("{figures}");
    println!("({:.1} s)", started.elapsed().as_secs_f64());
    std::process::exit(if figures.is_clean() { 0 } else { 1 });
}
