//! The planted bugs of `mutants/` without building any: every patch has a header naming a
//! catalogue rule and applies to the current tree, EXEMPT.md names only catalogue rules with a
//! reason, and every catalogue rule has a planted bug or an exemption. (Whether each bug is
//! caught is `cargo run --release -p partyline-mutants`: it builds one image per patch.)

use std::path::PathBuf;

use partyline_mutants::coverage;
use partyline_mutants::{catalogue, load_exemptions, load_patches, tree};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

#[test]
fn every_patch_names_a_catalogue_rule_and_applies_to_the_current_tree() {
    let root = root();
    let patches = load_patches(&root).unwrap_or_else(|e| panic!("bad planted bug(s):\n{e}"));
    assert!(!patches.is_empty(), "mutants/ holds no patch");
    let stale: Vec<String> = patches
        .iter()
        .filter_map(|p| tree::check_applies(&root, &p.path).err().map(|e| format!("{}: {e}", p.name)))
        .collect();
    assert!(stale.is_empty(), "stale planted bugs (refresh them, do not drop them):\n{}", stale.join("\n"));
    for patch in &patches {
        assert!(!tree::touched_paths(&patch.text).is_empty(), "{} changes no file", patch.name);
    }
}

#[test]
fn every_rule_has_a_planted_bug_or_an_exemption_with_a_reason() {
    let root = root();
    let patches = load_patches(&root).unwrap();
    let exemptions = load_exemptions(&root).unwrap_or_else(|e| panic!("{e}"));
    let contradictions = coverage::contradictions(&patches, &exemptions);
    assert!(contradictions.is_empty(), "exempt although a planted bug covers them: {contradictions:?}");
    let catalogue = catalogue();
    let coverage = coverage::of(&catalogue, &patches, &exemptions);
    // A rule with no planted bug needs a reason, and a `TODO` placeholder is not one: a new rule
    // comes with its planted bug (or the reason the driver cannot break it).
    let missing: Vec<&str> =
        coverage.iter().filter(|(_, c)| c.is_uncovered()).map(|(rule, _)| *rule).collect();
    assert!(
        missing.is_empty(),
        "rules with no planted bug and no reasoned line in mutants/EXEMPT.md: {missing:?}"
    );
}
