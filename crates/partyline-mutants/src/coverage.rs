//! Which rules of the catalogue have a planted bug, which are exempt (with a reason) and which
//! are uncovered (neither, or exempt only by a `TODO` placeholder).

use crate::exempt::Exemption;
use crate::Patch;

/// One catalogue rule's coverage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// These patches plant a bug this rule must catch.
    Planted(Vec<String>),
    /// EXEMPT.md says why no bug can be planted.
    Exempt(String),
    /// EXEMPT.md holds a `TODO` placeholder: uncovered, but known.
    Todo(String),
    /// No patch and no exemption.
    Uncovered,
}

impl Coverage {
    pub fn is_uncovered(&self) -> bool {
        matches!(self, Coverage::Todo(_) | Coverage::Uncovered)
    }
}

/// The coverage of each rule of `catalogue`, in catalogue order. A planted bug wins over an
/// exemption (the lead removes the stale exemption; [`contradictions`] lists them).
pub fn of<'a>(
    catalogue: &[&'a str],
    patches: &[Patch],
    exemptions: &[Exemption],
) -> Vec<(&'a str, Coverage)> {
    catalogue
        .iter()
        .map(|&rule| {
            let planted: Vec<String> =
                patches.iter().filter(|p| p.header.rule == rule).map(|p| p.name.clone()).collect();
            let coverage = if !planted.is_empty() {
                Coverage::Planted(planted)
            } else {
                match exemptions.iter().find(|e| e.rule == rule) {
                    Some(e) if e.is_todo() => Coverage::Todo(e.reason.clone()),
                    Some(e) => Coverage::Exempt(e.reason.clone()),
                    None => Coverage::Uncovered,
                }
            };
            (rule, coverage)
        })
        .collect()
}

/// Rules that have both a planted bug and an exemption that is not a `TODO`.
pub fn contradictions(patches: &[Patch], exemptions: &[Exemption]) -> Vec<String> {
    exemptions
        .iter()
        .filter(|e| !e.is_todo() && patches.iter().any(|p| p.header.rule == e.rule))
        .map(|e| format!("{} (EXEMPT.md line {})", e.rule, e.line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Header;

    fn patch(name: &str, rule: &str) -> Patch {
        Patch {
            name: name.into(),
            path: format!("mutants/{name}.patch").into(),
            text: String::new(),
            header: Header { rule: rule.into(), description: "x".into() },
        }
    }

    fn exemption(rule: &str, reason: &str) -> Exemption {
        Exemption { rule: rule.into(), reason: reason.into(), line: 1 }
    }

    #[test]
    fn each_rule_is_planted_exempt_todo_or_uncovered() {
        let catalogue = ["A_Rule", "B_Rule", "C_Rule", "D_Rule"];
        let patches = [patch("a1", "A_Rule"), patch("a2", "A_Rule")];
        let exemptions =
            [exemption("B_Rule", "no such path in the driver"), exemption("C_Rule", "TODO: later")];
        let coverage = of(&catalogue, &patches, &exemptions);
        assert_eq!(coverage[0], ("A_Rule", Coverage::Planted(vec!["a1".into(), "a2".into()])));
        assert_eq!(coverage[1], ("B_Rule", Coverage::Exempt("no such path in the driver".into())));
        assert_eq!(coverage[2], ("C_Rule", Coverage::Todo("TODO: later".into())));
        assert_eq!(coverage[3], ("D_Rule", Coverage::Uncovered));
        let uncovered: Vec<&str> =
            coverage.iter().filter(|(_, c)| c.is_uncovered()).map(|(r, _)| *r).collect();
        assert_eq!(uncovered, ["C_Rule", "D_Rule"]);
    }

    #[test]
    fn a_planted_rule_that_is_also_exempt_is_a_contradiction_unless_todo() {
        let patches = [patch("a1", "A_Rule"), patch("b1", "B_Rule")];
        let exemptions =
            [exemption("A_Rule", "cannot happen"), exemption("B_Rule", "TODO: no planted bug yet")];
        assert_eq!(contradictions(&patches, &exemptions), ["A_Rule (EXEMPT.md line 1)"]);
    }
}
