//! `partyline-mutants`: plants each bug of `mutants/*.patch` in a copy of the driver, builds that
//! `partyline.sys`, runs the unmodified `partyline` command on it (default scenario, every shipped
//! scenario, `campaign --short`) and reports whether the rule the patch names caught it, then the
//! score and which catalogue rules no planted bug covers. First, as a baseline, the same runs on
//! the unmodified driver (the image embedded in `partyline`) must be clean.
//!
//! Exit status: 0 when every mutant run was caught by its rule and (when all ran) no rule is
//! uncovered; 1 otherwise; 2 for a bad patch header, EXEMPT.md entry or command line.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::Parser;
use partyline_mutants::coverage::{self, Coverage};
use partyline_mutants::outcome::Outcome;
use partyline_mutants::{
    catalogue, load_exemptions, load_patches, run_mutant, runs, select, tree, RunOptions, Workspace,
};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "partyline-mutants",
    about = "Plant each bug of mutants/*.patch in a copy of partyline.sys and report whether its rule catches it"
)]
struct Cli {
    /// Only these planted bugs (names of mutants/<name>.patch; default: all).
    names: Vec<String>,
    /// List the planted bugs (rule, description, whether each applies) and the rule coverage;
    /// build nothing (exit 1 if a patch is stale).
    #[arg(long)]
    list: bool,
    /// JSON lines on stdout: one per mutant, one per catalogue rule, then a summary.
    #[arg(long)]
    json: bool,
    /// Make every run, also after the named rule fired (default: stop at the first that catches it).
    #[arg(long)]
    all_runs: bool,
    /// The host `partyline` command to run (default: build it with `cargo build --release -p
    /// partyline-cli` in the same target dir as this program, and use <target>/release/partyline).
    #[arg(long, value_name = "FILE")]
    partyline: Option<PathBuf>,
    /// The checkout whose mutants/ and sources to use (default: the one this program was built from).
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("partyline-mutants: {e}");
            ExitCode::from(2)
        }
    }
}

/// The target dir this program runs from (`<target>/<profile>/partyline-mutants`), else
/// CARGO_TARGET_DIR, else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    let from_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf))
        .filter(|dir| dir.join("CACHEDIR.TAG").is_file());
    from_exe
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(|dir| root.join(dir)))
        .unwrap_or_else(|| root.join("target"))
}

/// The host `partyline` command: `--partyline`, or built (a no-op when up to date).
fn host_partyline(cli: &Cli, root: &Path, target: &Path) -> Result<(PathBuf, String), String> {
    if let Some(path) = &cli.partyline {
        return Ok((path.clone(), "given with --partyline".into()));
    }
    eprintln!(
        "partyline-mutants: building the host command: cargo build --release --locked -p partyline-cli"
    );
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(root)
        .args(["build", "--release", "--locked", "-p", "partyline-cli"])
        .env("CARGO_TARGET_DIR", target)
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !status.success() {
        return Err("building the host `partyline` command failed (see the cargo output above)".into());
    }
    Ok((
        target.join("release").join("partyline"),
        "built from this checkout by `cargo build --release -p partyline-cli`".into(),
    ))
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    let root = match &cli.repo {
        Some(dir) => dir.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    };
    let root = root.canonicalize().map_err(|e| format!("{}: {e}", root.display()))?;
    let patches = load_patches(&root)?;
    let exemptions = load_exemptions(&root)?;
    let contradictions = coverage::contradictions(&patches, &exemptions);
    if !contradictions.is_empty() {
        return Err(format!(
            "mutants/EXEMPT.md exempts rules that have a planted bug (remove the exemption): {}",
            contradictions.join(", ")
        ));
    }
    let selected = select(&patches, &cli.names)?;
    let catalogue = catalogue();
    let coverage = coverage::of(&catalogue, &patches, &exemptions);

    if cli.list {
        let mut stale = 0;
        for patch in &selected {
            let applies = match tree::check_applies(&root, &patch.path) {
                Ok(()) => "applies".to_string(),
                Err(e) => {
                    stale += 1;
                    format!("STALE: {e}")
                }
            };
            if cli.json {
                println!(
                    "{}",
                    json!({"type": "mutant", "name": patch.name, "rule": patch.header.rule, "description": patch.header.description, "applies": applies == "applies"})
                );
            } else {
                println!(
                    "{:<34} {:<48} {applies}\n    {}",
                    patch.name, patch.header.rule, patch.header.description
                );
            }
        }
        print_coverage(&coverage, cli.json);
        return Ok(if stale == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }

    let target = target_dir(&root);
    let workspace = Workspace { root: root.clone(), dir: target.join("mutants") };
    let (partyline, how) = host_partyline(cli, &root, &target)?;
    let plans = runs::plans(&partyline)?;
    let options = RunOptions { partyline: partyline.clone(), plans, all_runs: cli.all_runs };
    eprintln!(
        "partyline-mutants: {} planted bug(s) from {}; host command {} ({how}); runs: {}; mutated images built in {}",
        selected.len(),
        root.join("mutants").display(),
        partyline.display(),
        options.plans.iter().map(|p| p.label.as_str()).collect::<Vec<_>>().join(", "),
        workspace.build_dir().display()
    );

    // A verdict means something only if the unmodified driver passes the same runs.
    eprint!(
        "partyline-mutants: baseline, the image embedded in {} (the unmodified driver):",
        partyline.display()
    );
    let logs = workspace.dir.join("baseline");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    for plan in &options.plans {
        eprint!(" {}…", plan.label);
        let run = runs::run(&partyline, None, plan, &logs);
        if run.failed() {
            return Err(format!(
                "the unmodified driver already fails `{}` ({}; rules: {:?}; log {}): fix that first, a planted bug's verdict would mean nothing",
                plan.label,
                run.exit,
                run.fired,
                logs.display()
            ));
        }
    }
    eprintln!(" clean");

    let mut tree = tree::Tree::new(&root, &workspace.tree());
    let mut results = Vec::new();
    for (index, patch) in selected.iter().enumerate() {
        let started = Instant::now();
        eprint!("[{:>2}/{}] {} ({}):", index + 1, selected.len(), patch.name, patch.header.rule);
        let (outcome, runs) =
            run_mutant(&workspace, &mut tree, patch, &options, &mut |stage| eprint!(" {stage}…"));
        eprintln!(" {} {} ({:.0} s)", outcome.label(), outcome.detail(), started.elapsed().as_secs_f64());
        if cli.json {
            println!(
                "{}",
                json!({
                    "type": "mutant", "name": patch.name, "rule": patch.header.rule,
                    "description": patch.header.description, "outcome": outcome.label(),
                    "detail": outcome.detail(),
                    "image": workspace.image(&patch.name), "logs": workspace.logs(&patch.name),
                    "runs": runs.iter().map(|r| json!({"run": r.label, "exit": r.exit.to_string(), "fired": r.fired})).collect::<Vec<_>>(),
                })
            );
        }
        results.push((*patch, outcome));
    }
    // Put the copy back to the repository's state for whoever builds it next.
    tree.sync()?;

    let caught = results.iter().filter(|(_, o)| o.is_caught()).count();
    if !cli.json {
        println!("\n== planted bugs (mutants/*.patch)\n");
        println!("| mutant | rule | outcome | detail |\n|---|---|---|---|");
        for (patch, outcome) in &results {
            println!(
                "| {} | {} | {} | {} |",
                patch.name,
                patch.header.rule,
                outcome.label(),
                outcome.detail()
            );
        }
        for (patch, outcome) in &results {
            if matches!(outcome, Outcome::Caught { .. }) {
                continue;
            }
            println!(
                "\n{}: {}; logs in {}, image {} (replay: partyline --image {} run <scenario>)",
                patch.name,
                outcome.label(),
                workspace.logs(&patch.name).display(),
                workspace.image(&patch.name).display(),
                workspace.image(&patch.name).display()
            );
        }
        println!("\ncaught {caught} of {} planted bugs", results.len());
    }
    print_coverage(&coverage, cli.json);
    let uncovered = coverage.iter().filter(|(_, c)| c.is_uncovered()).count();
    if cli.json {
        println!(
            "{}",
            json!({"type": "summary", "caught": caught, "planted": results.len(), "uncovered": uncovered, "rules": catalogue.len()})
        );
    }
    // The coverage is the folder's; it decides the status only when the whole folder ran.
    let whole = cli.names.is_empty();
    Ok(if caught == results.len() && (!whole || uncovered == 0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_coverage(coverage: &[(&str, Coverage)], json: bool) {
    let planted = coverage.iter().filter(|(_, c)| matches!(c, Coverage::Planted(_))).count();
    let exempt = coverage.iter().filter(|(_, c)| matches!(c, Coverage::Exempt(_))).count();
    let uncovered: Vec<&(&str, Coverage)> = coverage.iter().filter(|(_, c)| c.is_uncovered()).collect();
    if json {
        for (rule, c) in coverage {
            let (status, detail) = match c {
                Coverage::Planted(names) => ("planted", names.join(", ")),
                Coverage::Exempt(reason) => ("exempt", reason.clone()),
                Coverage::Todo(reason) => ("uncovered", reason.clone()),
                Coverage::Uncovered => ("uncovered", String::new()),
            };
            println!("{}", json!({"type": "rule", "rule": rule, "coverage": status, "detail": detail}));
        }
        return;
    }
    println!(
        "\n== rule coverage: {} rules in the catalogue; {planted} with a planted bug, {exempt} exempt (mutants/EXEMPT.md), {} uncovered",
        coverage.len(),
        uncovered.len()
    );
    for (rule, c) in uncovered {
        match c {
            Coverage::Todo(reason) => println!("UNCOVERED {rule} ({reason})"),
            _ => println!("UNCOVERED {rule} (no patch, no exemption)"),
        }
    }
}
