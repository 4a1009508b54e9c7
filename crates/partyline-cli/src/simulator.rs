//! `partyline run` on Linux: the scenario on ndis-sim with the embedded `partyline.sys`, printed
//! as a timeline, the steps, the verifier's verdict and a summary (or JSON lines).

use std::process::ExitCode;

use ndis_sim::scenario::{self, Report, Scenario, StepResult};
use serde_json::json;

use crate::{RunArgs, Source};

/// The rows of the summary table: label and value.
fn summary_rows(report: &Report) -> Vec<(&'static str, String)> {
    let c = &report.counters;
    let leaked: u64 = report.leaks.iter().map(|(_, b)| b).sum();
    vec![
        ("calls made", c.calls_made.to_string()),
        ("calls connected", c.calls_connected.to_string()),
        ("calls rejected", c.calls_rejected.to_string()),
        ("calls closed", c.calls_closed.to_string()),
        ("remote releases", c.remote_releases.to_string()),
        ("parties added", c.parties_added.to_string()),
        ("parties rejected", c.parties_rejected.to_string()),
        ("parties dropped locally", c.parties_dropped_locally.to_string()),
        ("parties dropped remotely", c.parties_dropped_remotely.to_string()),
        ("allocations failed (injected)", c.allocations_failed.to_string()),
        ("steps", format!("{} ({} failed)", report.steps.len(), report.failed_steps().count())),
        ("violations", report.violations.len().to_string()),
        ("pool leaked after unload", format!("{leaked} bytes")),
        ("simulated time", format!("{} ticks ({} us)", report.end_time, report.end_time / 10)),
    ]
}

fn replay_command(source: &Source, seed: u64) -> String {
    format!("cargo run --release -- run {} --seed {seed}", source.argument)
}

/// What broke, where, and how to see it again, for someone new to the project.
fn failure_advice(report: &Report, source: &Source, quiet: bool) -> String {
    let mut out = String::new();
    if report.driver_entry_status != Some(0) {
        out.push_str(&format!(
            "DriverEntry returned {:?}: the driver did not start (see the first entries of the timeline)\n",
            report.driver_entry_status.map(|s| format!("0x{:08X}", s as u32))
        ));
    }
    for v in &report.violations {
        out.push_str(&format!(
            "rule {} was broken by {} at simulated time t={}:\n    {}\n    the rule: {}\n",
            v.rule.name, v.call, v.time, v.detail, v.rule.page
        ));
    }
    for step in report.failed_steps() {
        if let StepResult::Failed(why) = &step.result {
            out.push_str(&format!(
                "step {} ({} line {}: {}) failed:\n    {why}\n",
                step.number, source.origin, step.line, step.text
            ));
        }
    }
    if quiet {
        out.push_str("run without --quiet to see the timeline of every NDIS call and callback.\n");
    } else {
        out.push_str(
            "the timeline above shows every NDIS call and callback in order \
             (`#seq t=time cpuN IRQL dll!name(args)`); find the time of the violation there.\n",
        );
    }
    out.push_str(&format!(
        "replay this exact run (same seed, same schedule): {}\n",
        replay_command(source, report.seed)
    ));
    out
}

fn print_human(report: &Report, scenario: &Scenario, source: &Source, args: &RunArgs) {
    println!(
        "partyline: scenario '{}' ({}), seed {}, on the simulator with partyline.sys ({} bytes)",
        scenario.name,
        source.origin,
        report.seed,
        partyline_image::image().len()
    );
    if !scenario.description.is_empty() {
        for line in scenario.description.lines() {
            println!("  {line}");
        }
    }
    if !args.quiet {
        println!("\n== timeline (every NDIS call and callback)");
        print!("{}", report.timeline());
    }
    println!("\n== steps");
    for step in &report.steps {
        println!("{step}");
    }
    println!("\n== verifier");
    if report.violations.is_empty() {
        println!(
            "clean: no documented rule was broken ({} DDI calls and callbacks checked)",
            report.log.len()
        );
    } else {
        for v in &report.violations {
            println!("{v}");
        }
    }
    println!("\n== summary (seed {})", report.seed);
    let rows = summary_rows(report);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in rows {
        println!("  {key:<width$}  {value}");
    }
    for (tag, bytes) in &report.leaks {
        println!("  pool tag '{tag}' still holds {bytes} bytes");
    }
}

fn print_json(report: &Report, scenario: &Scenario, source: &Source) {
    for e in &report.log {
        println!(
            "{}",
            json!({
                "type": "event", "sequence": e.sequence, "time": e.time, "processor": e.processor,
                "irql": e.irql.to_string(), "dll": e.dll, "name": e.name, "detail": e.detail,
            })
        );
    }
    for s in &report.steps {
        let (result, detail) = match &s.result {
            StepResult::Ok(d) => ("ok", d),
            StepResult::Skipped(d) => ("skipped", d),
            StepResult::Failed(d) => ("failed", d),
        };
        println!(
            "{}",
            json!({ "type": "step", "step": s.number, "line": s.line, "action": s.text, "result": result, "detail": detail })
        );
    }
    for v in &report.violations {
        println!(
            "{}",
            json!({ "type": "violation", "rule": v.rule.name, "page": v.rule.page, "time": v.time, "call": v.call, "detail": v.detail })
        );
    }
    let c = &report.counters;
    println!(
        "{}",
        json!({
            "type": "summary",
            "scenario": scenario.name,
            "file": source.origin,
            "seed": report.seed,
            "clean": report.is_clean(),
            "driver_entry_status": report.driver_entry_status,
            "calls_made": c.calls_made,
            "calls_connected": c.calls_connected,
            "calls_rejected": c.calls_rejected,
            "calls_closed": c.calls_closed,
            "remote_releases": c.remote_releases,
            "parties_added": c.parties_added,
            "parties_rejected": c.parties_rejected,
            "parties_dropped_locally": c.parties_dropped_locally,
            "parties_dropped_remotely": c.parties_dropped_remotely,
            "allocations_failed": c.allocations_failed,
            "steps": report.steps.len(),
            "steps_failed": report.failed_steps().count(),
            "violations": report.violations.len(),
            "leaks": report.leaks.iter().map(|(t, b)| json!({ "tag": t, "bytes": b })).collect::<Vec<_>>(),
            "end_time": report.end_time,
            "replay": replay_command(source, report.seed),
        })
    );
}

/// `partyline state`: plays `scenario` on the simulator and prints the driver's own state as it
/// was at the end of the steps (READ_STATE, before DriverUnload), and what the audit of it found.
/// Exit status 0 when the driver's state is clean, 1 when a driver-state rule was broken (or
/// anything else in the run), 2 when the driver could not be asked.
pub fn state(scenario: &Scenario, source: &Source, seed: Option<u64>) -> ExitCode {
    let report = match scenario::run(scenario, partyline_image::image(), seed) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("partyline: the simulator could not load partyline.sys: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(census) = &report.census else {
        eprintln!(
            "partyline: the driver's state could not be read at the end of '{}' (seed {}): {}",
            scenario.name,
            report.seed,
            report.stop.as_deref().unwrap_or("DriverEntry failed or the run stopped")
        );
        return ExitCode::from(2);
    };
    println!(
        "partyline: the driver's own state at the end of scenario '{}' (seed {}), before DriverUnload",
        scenario.name, report.seed
    );
    print!("{}", scenario::audit::describe_state(census));
    let family = ndis_sim::driver_state::RULES;
    let broken: Vec<_> = report.violations.iter().filter(|v| family.contains(&v.rule)).collect();
    for v in &broken {
        println!("{v}");
    }
    if report.is_clean() {
        println!("clean: every object accounted for, no unexpected refusal");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "FAIL: {} driver-state violation(s), {} in all; `{}` shows the whole run",
            broken.len(),
            report.violations.len(),
            replay_command(source, report.seed)
        );
        ExitCode::from(1)
    }
}

/// Runs `scenario` on the simulator and prints the result; the exit status says whether it was clean.
pub fn run(scenario: &Scenario, source: &Source, args: &RunArgs) -> ExitCode {
    let report = match scenario::run(scenario, partyline_image::image(), args.seed) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("partyline: the simulator could not load partyline.sys: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        print_json(&report, scenario, source);
    } else {
        print_human(&report, scenario, source, args);
    }
    if report.is_clean() {
        if !args.json {
            println!("\nPASS: scenario '{}' ran clean with seed {}", scenario.name, report.seed);
        }
        ExitCode::SUCCESS
    } else {
        let broken = report.violations.len();
        let failed = report.failed_steps().count();
        if let Some(stop) = &report.stop {
            eprintln!("\nthe run stopped: {stop}");
        }
        eprintln!(
            "\nFAIL: scenario '{}' with seed {}: {broken} rule violation(s), {failed} failed step(s)\n{}",
            scenario.name,
            report.seed,
            failure_advice(&report, source, args.quiet || args.json)
        );
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndis_sim::verifier::{Rule, Violation};

    /// A broken rule is reported with its name, its Learn page, the simulated time, the call that
    /// broke it, and the command that replays the run.
    #[test]
    fn a_violation_tells_which_rule_where_and_how_to_replay() {
        let source = Source {
            text: crate::shipped::SHIPPED[0].2.into(),
            origin: "scenarios/default.toml".into(),
            argument: "default".into(),
        };
        let scenario = Scenario::parse(&source.text, &source.origin).expect("parses");
        let mut report = scenario::run(&scenario, partyline_image::image(), Some(3)).expect("loads");
        assert!(report.is_clean());
        report.violations.push(Violation {
            rule: Rule::new(
                "Irql_Protocol_Driver_Function",
                "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-irql-protocol-driver-function",
            ),
            time: 1234,
            call: "ndis.sys!NdisClDropParty".into(),
            detail: "called at DISPATCH_LEVEL".into(),
        });
        assert!(!report.is_clean());
        let advice = failure_advice(&report, &source, false);
        for needle in [
            "rule Irql_Protocol_Driver_Function was broken by ndis.sys!NdisClDropParty at simulated time t=1234",
            "called at DISPATCH_LEVEL",
            "https://learn.microsoft.com/windows-hardware/drivers/devtest/ndis-irql-protocol-driver-function",
            "cargo run --release -- run default --seed 3",
        ] {
            assert!(advice.contains(needle), "{needle} missing from:\n{advice}");
        }
    }
}
