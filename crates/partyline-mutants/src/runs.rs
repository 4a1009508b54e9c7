//! The runs of a mutated image: the unmodified host `partyline` command as a child process (a
//! bug check or a crash in the mutant ends only the child), with `--image <mutant.sys>`: the
//! default scenario, every other shipped scenario (`partyline scenarios`), then `campaign
//! --short`. Each run's output goes to a log file (no pipe to fill), and a run that outlives its
//! time limit is killed with its process group.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::outcome::{fired_rules, Exit, Run};

/// One run to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `default`, `scenario <name>`, `short campaign`.
    pub label: String,
    /// The arguments after `partyline --image <image>`.
    pub args: Vec<String>,
    /// Killed after this long.
    pub limit: Duration,
}

/// A scenario takes well under a second; a mutant that hangs one is killed after this.
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);
/// The short campaign takes about a second clean; failing runs are minimised, which replays them.
const CAMPAIGN_LIMIT: Duration = Duration::from_secs(900);

/// The runs, in order: the default scenario, the other shipped scenarios as `partyline
/// scenarios` lists them, the short campaign.
pub fn plans(partyline: &Path) -> Result<Vec<Plan>, String> {
    let mut plans = vec![scenario_plan("default", "default")];
    for name in shipped_scenarios(partyline)? {
        if name != "default" {
            plans.push(scenario_plan(&format!("scenario {name}"), &name));
        }
    }
    plans.push(Plan {
        label: "short campaign".into(),
        args: vec!["campaign".into(), "--short".into()],
        limit: CAMPAIGN_LIMIT,
    });
    Ok(plans)
}

fn scenario_plan(label: &str, name: &str) -> Plan {
    Plan {
        label: label.into(),
        args: vec!["run".into(), name.into(), "--quiet".into()],
        limit: SCENARIO_LIMIT,
    }
}

/// The names `partyline scenarios` prints (the first word of each line).
pub fn shipped_scenarios(partyline: &Path) -> Result<Vec<String>, String> {
    let output = Command::new(partyline)
        .arg("scenarios")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run {}: {e}", partyline.display()))?;
    if !output.status.success() {
        return Err(format!(
            "`{} scenarios` failed ({}): {}",
            partyline.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(String::from))
        .collect();
    if names.is_empty() {
        return Err(format!("`{} scenarios` listed no scenario", partyline.display()));
    }
    Ok(names)
}

/// Runs `plan` on `image` (None: the image embedded in `partyline`); the output lands in
/// `<logs>/<label>.txt`.
pub fn run(partyline: &Path, image: Option<&Path>, plan: &Plan, logs: &Path) -> Run {
    let log = logs.join(format!("{}.txt", plan.label.replace(' ', "-")));
    let exit = execute(partyline, image, plan, &log).unwrap_or_else(|e| {
        let _ = std::fs::write(&log, format!("partyline-mutants: {e}\n"));
        Exit::Failed(-1)
    });
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    Run { label: plan.label.clone(), fired: fired_rules(&output), exit }
}

fn execute(partyline: &Path, image: Option<&Path>, plan: &Plan, log: &PathBuf) -> Result<Exit, String> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(partyline);
    if let Some(image) = image {
        command.arg("--image").arg(image);
    }
    let mut child = command
        .args(&plan.args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        // Its own process group, so a hung run is killed with any workers it started.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not run {}: {e}", partyline.display()))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(match (status.code(), status.signal()) {
                (Some(0), _) => Exit::Clean,
                (Some(code), _) => Exit::Failed(code),
                (None, Some(signal)) => Exit::Signal(signal),
                (None, None) => Exit::Failed(-1),
            });
        }
        if started.elapsed() > plan.limit {
            // The group's id is the child's pid (process_group(0) above).
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Exit::TimedOut(plan.limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
