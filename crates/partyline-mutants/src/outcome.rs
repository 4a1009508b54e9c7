//! What the runs of one planted bug say: caught by the named rule, failed only by other rules,
//! missed, or never run (the patch is stale, the image does not build).

use std::collections::BTreeSet;
use std::fmt;

/// How a child `partyline` process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Exit status 0.
    Clean,
    /// Another exit status (1: a rule broken or a step failed; 2: a bad command line).
    Failed(i32),
    /// Killed by a signal (a crash of the simulator process).
    Signal(i32),
    /// Still running after the time limit: killed.
    TimedOut(u64),
}

/// One run of the mutated image: which (`default`, `scenario X`, `short campaign`), the rules
/// its output reported (`VIOLATION <Rule>`), and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub label: String,
    pub fired: BTreeSet<String>,
    pub exit: Exit,
}

impl Run {
    /// Whether the run found anything wrong.
    pub fn failed(&self) -> bool {
        !self.fired.is_empty() || self.exit != Exit::Clean
    }
}

/// The verdict on one planted bug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The named rule fired, in these runs.
    Caught { by: Vec<String> },
    /// Runs failed, but not by the named rule: the rules that did fire, and the failing runs that
    /// reported no rule (a crash, a failed step, a hang). Counts as missed.
    CaughtOther { rules: Vec<String>, unexplained: Vec<String> },
    /// Every run was clean.
    Missed,
    /// The patch does not apply to the current tree.
    Stale(String),
    /// The mutated image does not build.
    BuildFailed(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Caught { .. } => "CAUGHT",
            Outcome::CaughtOther { .. } => "CAUGHT-OTHER",
            Outcome::Missed => "MISSED",
            Outcome::Stale(_) => "STALE",
            Outcome::BuildFailed(_) => "BUILD-FAILED",
        }
    }

    pub fn is_caught(&self) -> bool {
        matches!(self, Outcome::Caught { .. })
    }

    /// One line of detail for the report.
    pub fn detail(&self) -> String {
        match self {
            Outcome::Caught { by } => format!("by {}", by.join(", ")),
            Outcome::CaughtOther { rules, unexplained } => {
                let mut parts = Vec::new();
                if !rules.is_empty() {
                    parts.push(format!("only other rules fired: {}", rules.join(", ")));
                }
                if !unexplained.is_empty() {
                    parts.push(format!("failed with no rule: {}", unexplained.join(", ")));
                }
                parts.join("; ")
            }
            Outcome::Missed => "every run was clean".into(),
            Outcome::Stale(why) => format!("does not apply: {why}"),
            Outcome::BuildFailed(why) => format!("the image does not build: {why}"),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Clean => write!(f, "exit 0"),
            Exit::Failed(code) => write!(f, "exit {code}"),
            Exit::Signal(signal) => write!(f, "killed by signal {signal}"),
            Exit::TimedOut(seconds) => write!(f, "still running after {seconds} s"),
        }
    }
}

/// The verdict of `runs` on a bug that `rule` must catch.
pub fn classify(rule: &str, runs: &[Run]) -> Outcome {
    let by: Vec<String> = runs.iter().filter(|r| r.fired.contains(rule)).map(|r| r.label.clone()).collect();
    if !by.is_empty() {
        return Outcome::Caught { by };
    }
    if !runs.iter().any(Run::failed) {
        return Outcome::Missed;
    }
    let rules: BTreeSet<String> = runs.iter().flat_map(|r| r.fired.iter().cloned()).collect();
    let unexplained = runs
        .iter()
        .filter(|r| r.fired.is_empty() && r.exit != Exit::Clean)
        .map(|r| format!("{} ({})", r.label, r.exit))
        .collect();
    Outcome::CaughtOther { rules: rules.into_iter().collect(), unexplained }
}

/// The rules a run's output reports: the word after each `VIOLATION` (the verifier's lines, and
/// the campaigns' `FAILED … : VIOLATION <Rule> at …`).
pub fn fired_rules(output: &str) -> BTreeSet<String> {
    let mut fired = BTreeSet::new();
    for line in output.lines() {
        let mut words = line.split_whitespace().map(|w| w.trim_matches(|c: char| c == '"' || c == ','));
        while let Some(word) = words.next() {
            if word == "VIOLATION" {
                if let Some(rule) = words.next() {
                    let rule: String =
                        rule.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !rule.is_empty() {
                        fired.insert(rule);
                    }
                }
            }
        }
    }
    fired
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(label: &str, fired: &[&str], exit: Exit) -> Run {
        Run { label: label.into(), fired: fired.iter().map(|s| s.to_string()).collect(), exit }
    }

    #[test]
    fn the_named_rule_in_any_run_is_caught_and_names_the_runs() {
        let runs = [
            run("default", &[], Exit::Clean),
            run("scenario crossings", &["Other_Rule", "Ddi_X"], Exit::Failed(1)),
            run("short campaign", &["Ddi_X"], Exit::Failed(1)),
        ];
        assert_eq!(
            classify("Ddi_X", &runs),
            Outcome::Caught { by: vec!["scenario crossings".into(), "short campaign".into()] }
        );
    }

    #[test]
    fn failures_by_other_rules_only_are_caught_other() {
        let runs = [
            run("default", &["B_Rule", "A_Rule"], Exit::Failed(1)),
            run("scenario pnp", &[], Exit::Signal(11)),
            run("short campaign", &["A_Rule"], Exit::Failed(1)),
        ];
        let outcome = classify("Ddi_X", &runs);
        assert_eq!(
            outcome,
            Outcome::CaughtOther {
                rules: vec!["A_Rule".into(), "B_Rule".into()],
                unexplained: vec!["scenario pnp (killed by signal 11)".into()],
            }
        );
        assert!(!outcome.is_caught());
        assert_eq!(outcome.label(), "CAUGHT-OTHER");
        assert!(outcome.detail().contains("A_Rule, B_Rule"));
    }

    #[test]
    fn a_hang_or_a_failed_step_without_a_rule_is_not_missed() {
        let runs = [run("default", &[], Exit::TimedOut(60))];
        assert!(
            matches!(classify("Ddi_X", &runs), Outcome::CaughtOther { ref rules, .. } if rules.is_empty())
        );
    }

    #[test]
    fn clean_runs_are_missed() {
        let runs = [run("default", &[], Exit::Clean), run("short campaign", &[], Exit::Clean)];
        assert_eq!(classify("Ddi_X", &runs), Outcome::Missed);
        assert_eq!(classify("Ddi_X", &[]), Outcome::Missed);
    }

    #[test]
    fn violation_lines_of_runs_and_campaigns_are_read() {
        let output = "== verifier\nVIOLATION Ddi_CloseAfWithVcs at t=12 in ndis.sys!NdisClCloseAddressFamily: 1 VC\n    see https://x\n\
                      FAILED schedule random-operations seed 3: VIOLATION DriverState_ObjectsLeft at t=5 in audit: x\n\
                      {\"type\":\"violation\",\"rule\":\"Ddi_NotThis\"}\n\
                      a VIOLATION\n";
        let fired: Vec<String> = fired_rules(output).into_iter().collect();
        assert_eq!(fired, ["Ddi_CloseAfWithVcs", "DriverState_ObjectsLeft"]);
    }
}
