//! The scenarios that ship with partyline, embedded so `partyline run` works from any directory.

/// `(name, file under scenarios/, text)`, the default first.
pub const SHIPPED: &[(&str, &str, &str)] = &[
    ("default", "scenarios/default.toml", include_str!("../../../scenarios/default.toml")),
    ("rejections", "scenarios/rejections.toml", include_str!("../../../scenarios/rejections.toml")),
    (
        "teardown-under-load",
        "scenarios/teardown-under-load.toml",
        include_str!("../../../scenarios/teardown-under-load.toml"),
    ),
    ("faults", "scenarios/faults.toml", include_str!("../../../scenarios/faults.toml")),
    (
        "address-change",
        "scenarios/address-change.toml",
        include_str!("../../../scenarios/address-change.toml"),
    ),
    (
        "address-query-low-memory",
        "scenarios/address-query-low-memory.toml",
        include_str!("../../../scenarios/address-query-low-memory.toml"),
    ),
    ("crossings", "scenarios/crossings.toml", include_str!("../../../scenarios/crossings.toml")),
    ("pnp", "scenarios/pnp.toml", include_str!("../../../scenarios/pnp.toml")),
    (
        "teardown-failures",
        "scenarios/teardown-failures.toml",
        include_str!("../../../scenarios/teardown-failures.toml"),
    ),
];

/// The shipped scenario called `name` (with or without `.toml`).
pub fn find(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    let name = name.strip_suffix(".toml").unwrap_or(name);
    let name = name.strip_prefix("scenarios/").unwrap_or(name);
    SHIPPED.iter().copied().find(|(n, _, _)| *n == name)
}
