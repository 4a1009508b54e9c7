//! The rule catalogue ([`ndis_sim::rules::ALL`]) against the tests: every rule of every family
//! (NDIS, I/O manager, security, driver state) has a test `proves_<rule name in lower case>` that makes it fire
//! with a deliberately misbehaving driver action, every rule cites a Microsoft Learn page, and no
//! two rules share a name.

use ndis_sim::rules::{family_of, ALL, FAMILIES};

/// The sources that hold proving tests.
const SOURCES: &[(&str, &str)] = &[
    ("tests/ndis_rules.rs", include_str!("ndis_rules.rs")),
    ("tests/driver_entry.rs", include_str!("driver_entry.rs")),
    ("tests/special_pool.rs", include_str!("special_pool.rs")),
    ("tests/driver_state.rs", include_str!("driver_state.rs")),
    ("src/io/tests.rs", include_str!("../src/io/tests.rs")),
];

#[test]
fn every_rule_has_a_proving_test() {
    let missing: Vec<String> = ALL
        .iter()
        .filter(|rule| {
            let test = format!("fn proves_{}()", rule.name.to_lowercase());
            !SOURCES.iter().any(|(_, source)| source.contains(&test))
        })
        .map(|rule| format!("{} ({})", rule.name, family_of(rule).unwrap_or("?")))
        .collect();
    assert!(missing.is_empty(), "rules without a proving test: {missing:?}");
}

#[test]
fn every_rule_cites_a_learn_page_and_has_a_unique_name() {
    for rule in ALL {
        assert!(rule.page.starts_with("https://learn.microsoft.com/"), "{}: {}", rule.name, rule.page);
    }
    let mut names: Vec<&str> = ALL.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ALL.len(), "duplicate rule names");
}

#[test]
fn the_catalogue_is_every_family_in_order() {
    let joined: Vec<_> = FAMILIES.iter().flat_map(|f| f.rules.iter().copied()).collect();
    assert_eq!(joined, ALL);
    for family in ["NDIS", "I/O manager", "security"] {
        assert!(FAMILIES.iter().any(|f| f.name == family && !f.rules.is_empty()), "{family}");
    }
    assert_eq!(family_of(&ndis_sim::io::rules::UNINITIALIZED_OUTPUT), Some("I/O manager"));
}
