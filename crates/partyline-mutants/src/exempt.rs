//! `mutants/EXEMPT.md`: the rules no planted bug covers, each with the reason. An entry is a line
//! `RuleName — reason` (a leading `- ` and backquotes around the name are allowed); other lines
//! (headings, prose) are ignored. A reason that starts with `TODO` marks a rule still waiting for
//! its planted bug: it counts as uncovered.

use crate::header::{split_dash, unknown_rule};

/// One exemption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exemption {
    pub rule: String,
    pub reason: String,
    /// The line in EXEMPT.md (from 1).
    pub line: usize,
}

impl Exemption {
    /// A placeholder (`TODO …`), not a reason.
    pub fn is_todo(&self) -> bool {
        self.reason.starts_with("TODO")
    }
}

/// The entries of `text`; an entry that names no catalogue rule, has no reason or repeats a
/// rule is an error.
pub fn parse(text: &str, catalogue: &[&str]) -> Result<Vec<Exemption>, String> {
    let mut entries: Vec<Exemption> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let line = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")).unwrap_or(line);
        let Some((name, reason)) = split_dash(line) else { continue };
        let name = name.trim_matches('`');
        // Only `Identifier — …` lines are entries: prose with a dash in it is not.
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let at = format!("mutants/EXEMPT.md line {}", index + 1);
        if !catalogue.contains(&name) {
            return Err(format!("{at}: {}", unknown_rule(name, catalogue)));
        }
        if reason.is_empty() {
            return Err(format!("{at}: `{name}` has no reason (`RuleName — reason`)"));
        }
        if let Some(first) = entries.iter().find(|e| e.rule == name) {
            return Err(format!("{at}: `{name}` is already exempted on line {}", first.line));
        }
        entries.push(Exemption { rule: name.to_string(), reason: reason.to_string(), line: index + 1 });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOGUE: &[&str] = &["Irql_Return", "SpinLockRelease", "DriverState_ObjectsLeft"];

    #[test]
    fn entries_are_read_and_prose_is_skipped() {
        let text = "# Exempt rules\n\nRules no bug can break — the list.\n\n\
                    - `Irql_Return` — the driver never raises the IRQL itself\n\
                    SpinLockRelease — TODO: no planted bug yet\n";
        let entries = parse(text, CATALOGUE).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].rule, "Irql_Return");
        assert_eq!(entries[0].reason, "the driver never raises the IRQL itself");
        assert_eq!(entries[0].line, 5);
        assert!(!entries[0].is_todo());
        assert!(entries[1].is_todo());
    }

    #[test]
    fn an_unknown_rule_a_missing_reason_or_a_repeat_is_an_error() {
        let e = parse("Irql_Retrun — typo\n", CATALOGUE).unwrap_err();
        assert!(e.contains("line 1") && e.contains("not in the catalogue"), "{e}");
        let e = parse("Irql_Return — \n", CATALOGUE).unwrap_err();
        assert!(e.contains("no reason"), "{e}");
        let e = parse("Irql_Return — a\n\nIrql_Return — b\n", CATALOGUE).unwrap_err();
        assert!(e.contains("line 3") && e.contains("already exempted on line 1"), "{e}");
    }
}
