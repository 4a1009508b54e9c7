//! The first line of a planted bug, `# rule: <RuleName> — <description>`: the rule that must catch
//! it (one of the catalogue's, `ndis_sim::rules::ALL`) and what the bug is.

/// A parsed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub rule: String,
    pub description: String,
}

/// What a header must look like, for error messages.
pub const FORMAT: &str = "# rule: <RuleName> — <one-line description of the bug>";

/// Parses `line` (the patch's first line) and checks that its rule is one of `catalogue`.
pub fn parse(line: &str, catalogue: &[&str]) -> Result<Header, String> {
    let rest = line
        .trim_end()
        .strip_prefix("# rule:")
        .ok_or_else(|| format!("the first line must be `{FORMAT}`, not `{line}`"))?;
    let (rule, description) = split_dash(rest).ok_or_else(|| {
        format!("the header `{line}` has no ` — ` between the rule and the description ({FORMAT})")
    })?;
    if rule.is_empty() || !rule.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("the header `{line}` does not name a rule before ` — ` ({FORMAT})"));
    }
    if description.is_empty() {
        return Err(format!("the header `{line}` has no description after ` — ` ({FORMAT})"));
    }
    if !catalogue.contains(&rule) {
        return Err(unknown_rule(rule, catalogue));
    }
    Ok(Header { rule: rule.to_string(), description: description.to_string() })
}

/// `name` is not a rule: say so, with the catalogue's rules that look like it.
pub fn unknown_rule(name: &str, catalogue: &[&str]) -> String {
    let lower = name.to_lowercase();
    let near: Vec<&str> = catalogue
        .iter()
        .copied()
        .filter(|rule| {
            let rule = rule.to_lowercase();
            rule.contains(&lower) || lower.contains(&rule) || common_prefix(&rule, &lower) >= 12
        })
        .take(5)
        .collect();
    let hint = if near.is_empty() { String::new() } else { format!(" (did you mean {}?)", near.join(", ")) };
    format!(
        "rule `{name}` is not in the catalogue (ndis_sim::rules::ALL, crates/ndis-sim/src/rules.rs){hint}"
    )
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// `name — text` (an em dash, as in the catalogue's documents; an en dash or ` - ` also do):
/// the trimmed name and text.
pub(crate) fn split_dash(text: &str) -> Option<(&str, &str)> {
    ["—", "–", " - "]
        .iter()
        .find_map(|dash| text.split_once(dash).map(|(name, rest)| (name.trim(), rest.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOGUE: &[&str] = &["Ddi_NdisClDropParty_LastParty", "DriverState_ObjectsLeft"];

    #[test]
    fn a_well_formed_header_gives_its_rule_and_description() {
        let h = parse("# rule: DriverState_ObjectsLeft  —  leaks a party slot", CATALOGUE).unwrap();
        assert_eq!(
            h,
            Header { rule: "DriverState_ObjectsLeft".into(), description: "leaks a party slot".into() }
        );
        let h = parse("# rule: Ddi_NdisClDropParty_LastParty — drops the last party\n", CATALOGUE).unwrap();
        assert_eq!(h.rule, "Ddi_NdisClDropParty_LastParty");
    }

    #[test]
    fn a_header_without_the_prefix_is_refused() {
        let e = parse("diff --git a/src/x.rs b/src/x.rs", CATALOGUE).unwrap_err();
        assert!(e.contains("first line must be"), "{e}");
        let e = parse("rule: DriverState_ObjectsLeft — x", CATALOGUE).unwrap_err();
        assert!(e.contains("first line must be"), "{e}");
    }

    #[test]
    fn a_header_without_dash_rule_or_description_is_refused() {
        assert!(parse("# rule: DriverState_ObjectsLeft leaks", CATALOGUE).unwrap_err().contains("no ` — `"));
        assert!(parse("# rule:  —  leaks", CATALOGUE).unwrap_err().contains("does not name a rule"));
        assert!(parse("# rule: Two Words — leaks", CATALOGUE).unwrap_err().contains("does not name a rule"));
        assert!(parse("# rule: DriverState_ObjectsLeft —  ", CATALOGUE)
            .unwrap_err()
            .contains("no description"));
    }

    #[test]
    fn an_unknown_rule_is_refused_with_a_suggestion() {
        let e = parse("# rule: Ddi_NdisClDropParty_Last — x", CATALOGUE).unwrap_err();
        assert!(e.contains("not in the catalogue"), "{e}");
        assert!(e.contains("did you mean Ddi_NdisClDropParty_LastParty"), "{e}");
        let e = parse("# rule: Nothing_Like_It — x", CATALOGUE).unwrap_err();
        assert!(!e.contains("did you mean"), "{e}");
    }
}
