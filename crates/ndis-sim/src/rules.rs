//! The catalogue of every rule the simulator checks, whatever family reports it: one [`Rule`] per
//! documented rule, with the Microsoft Learn page that states it. [`ALL`] lists them; the
//! `rule_catalogue` test asserts that each has a test `proves_<rule name in lower case>` that
//! makes it fire, and that no two rules share a name.
//!
//! Each family keeps its rules next to the code that reports them ([`crate::ndis::rules::ALL`],
//! [`crate::io::rules::IO_MANAGER`], [`crate::io::rules::SECURITY`]); a new rule is added to its
//! family's list, and only a new family is added here. This module imports the families, none of
//! them imports it.

use crate::verifier::Rule;

/// A family of rules: the part of the simulator that reports them.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    pub name: &'static str,
    pub rules: &'static [Rule],
}

/// Every family, in report order.
pub const FAMILIES: &[Family] = &[
    Family { name: "NDIS", rules: crate::ndis::rules::ALL },
    Family { name: "I/O manager", rules: crate::io::rules::IO_MANAGER },
    Family { name: "security", rules: crate::io::rules::SECURITY },
    crate::driver_state::FAMILY,
];

const COUNT: usize = {
    let mut count = 0;
    let mut family = 0;
    while family < FAMILIES.len() {
        count += FAMILIES[family].rules.len();
        family += 1;
    }
    count
};

const fn concatenate() -> [Rule; COUNT] {
    let mut all = [Rule::new("", ""); COUNT];
    let (mut at, mut family) = (0, 0);
    while family < FAMILIES.len() {
        let rules = FAMILIES[family].rules;
        let mut i = 0;
        while i < rules.len() {
            all[at] = rules[i];
            at += 1;
            i += 1;
        }
        family += 1;
    }
    all
}

/// Every rule of every family, family by family.
pub const ALL: &[Rule] = &concatenate();

/// The family that reports `rule`.
pub fn family_of(rule: &Rule) -> Option<&'static str> {
    FAMILIES.iter().find(|family| family.rules.contains(rule)).map(|family| family.name)
}
