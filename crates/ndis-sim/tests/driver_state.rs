//! The driver's own state, checked (rule family "driver state", `ndis_sim::driver_state`): the
//! census read through IOCTL_PARTYLINE_READ_STATE from the real `partyline.sys`, the audit after
//! unbinds and before unload, and the refusals a scenario expects.

use ndis_sim::driver_state::{self, OBJECTS_LEFT, UNEXPECTED_REFUSAL};
use ndis_sim::scenario::audit::{Audit, ListedCall, RefusalExpectation};
use ndis_sim::scenario::{self, Scenario};
use ndis_sim::sim::{SimConfig, Simulation};
use partyline_core::census::{Census, RefusalKind, TableCensus};
use partyline_core::trace::ObjectKind;
use partyline_core::Table;

const ADAPTER: &str = "[[adapter]]\nlocal_address = \"47.0005.80FFE1000000F21A2B3C.0020481A2B3C.00\"\n\
     [[adapter.remote]]\nname = \"alice\"\naddress = \"+14155550100\"\n\
     [[adapter.remote]]\nname = \"bob\"\naddress = \"+14155550101\"\n\
     [[adapter.remote]]\nname = \"carol\"\naddress = \"+14155550102\"\n";

fn run(text: &str, seed: u64) -> scenario::Report {
    let scenario = Scenario::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    scenario::run(&scenario, partyline_image::image(), Some(seed)).expect("image loads")
}

fn rules_broken(report: &scenario::Report) -> Vec<&'static str> {
    report.violations.iter().map(|v| v.rule.name).collect()
}

/// One binding, one AF, one call counting `counted` parties, and `live` party slots.
fn audit_with_parties(live: u32, counted: u32) -> Audit {
    let mut census = Census::default();
    census.tables[Table::Bindings as usize] =
        TableCensus { live: 1, chunks: 1, directory: 4, slot_bytes: 32 };
    census.tables[Table::AddressFamilies as usize] =
        TableCensus { live: 1, chunks: 1, directory: 4, slot_bytes: 64 };
    census.tables[Table::Calls as usize] = TableCensus { live: 1, chunks: 1, directory: 4, slot_bytes: 96 };
    census.tables[Table::Parties as usize] = TableCensus { live, chunks: 1, directory: 4, slot_bytes: 56 };
    let summary = partyline_ioctl::CallSummary {
        id: 3,
        af: 2,
        state: partyline_core::engine::CallState::Active,
        closing: None,
        profile: partyline_core::TrafficProfile::DEFAULT,
        queued: 0,
        adding: 0,
        connected: counted,
        dropping: 0,
        parameters_changed: false,
    };
    Audit {
        census,
        bindings: vec![1],
        afs: vec![(2, 1)],
        calls: vec![ListedCall { id: 3, af: 2, summary: Some(summary) }],
    }
}

/// DriverState_ObjectsLeft fires for a party slot no live call accounts for (the driver frees
/// its chunks wholesale at unload, so pool tracking never sees it), naming the table and the
/// count; for anything left in any table once every binding is gone; and for queued work.
#[test]
fn proves_driverstate_objectsleft() {
    let sim = Simulation::without_image(SimConfig::default());
    let world = sim.world();
    let leaked = audit_with_parties(3, 2);
    let found = driver_state::check_leftovers(world, &leaked, false, "test");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].table, found[0].count), ("parties", 1));
    let after_teardown = driver_state::check_leftovers(world, &leaked, true, "test");
    let tables: Vec<&str> = after_teardown.iter().map(|l| l.table).collect();
    assert_eq!(tables, ["bindings", "address families", "calls", "parties"]);
    let mut queued = audit_with_parties(2, 2);
    queued.census.work.deferred = 1;
    assert_eq!(driver_state::check_leftovers(world, &queued, false, "test")[0].table, "work queues");
    let violations = sim.violations();
    assert_eq!(violations.len(), 6);
    assert!(violations.iter().all(|v| v.rule == OBJECTS_LEFT));
    assert!(
        violations[0].detail.contains("parties: 1 — party slot(s) no call accounts for"),
        "{}",
        violations[0]
    );
    // The clean path: every slot accounted for, nothing queued.
    assert!(audit_with_parties(2, 2).unaccounted().is_empty());
    // An address family of no live binding, and a call of no live address family.
    let mut orphans = audit_with_parties(2, 2);
    orphans.bindings.clear();
    orphans.census.tables[Table::Bindings as usize].live = 0;
    let tables: Vec<&str> = orphans.unaccounted().iter().map(|l| l.table).collect();
    assert_eq!(tables, ["address families"]);
    orphans.afs.clear();
    orphans.census.tables[Table::AddressFamilies as usize].live = 0;
    let tables: Vec<&str> = orphans.unaccounted().iter().map(|l| l.table).collect();
    assert_eq!(tables, ["calls"]);
}

/// DriverState_UnexpectedRefusal fires on the real driver when a scenario makes it refuse a
/// request (a party dropped twice: unknown id) without declaring it, and not when the scenario
/// declares it with `expect_refusals`; a declared refusal that does not happen fires too.
#[test]
fn proves_driverstate_unexpectedrefusal() {
    let steps = "[[step]]\nmake_call = \"c\"\nleaves = [\"alice\", \"bob\", \"carol\"]\n\
         [[step]]\ndrop = \"bob\"\n\
         [[step]]\ndrop = \"bob\"\nstatus = \"STATUS_NOT_FOUND\"\n\
         [[step]]\nclose = \"c\"\n";
    let undeclared = run(&format!("{ADAPTER}{steps}"), 1);
    assert_eq!(rules_broken(&undeclared), [UNEXPECTED_REFUSAL.name], "{:#?}", undeclared.violations);
    assert!(
        undeclared.violations[0].detail.contains("1 unknown_id refusal(s) (1 about a party), 0 expected"),
        "{}",
        undeclared.violations[0]
    );
    let declared = run(&format!("expect_refusals = {{ unknown_id = 1 }}\n{ADAPTER}{steps}"), 1);
    assert!(declared.is_clean(), "{:#?}", declared.violations);
    let too_many =
        run(&format!("expect_refusals = {{ unknown_id = 1, closing = [1, 2] }}\n{ADAPTER}{steps}"), 1);
    assert_eq!(rules_broken(&too_many), [UNEXPECTED_REFUSAL.name]);
    assert!(too_many.violations[0].detail.contains("0 closing refusal(s), 1 to 2 expected"));
    // Lost deferred requests are never expected; a split that does not add up is reported.
    let census = Census { lost_actions: 1, refused: 1, ..Census::default() };
    let problems = RefusalExpectation::default().unexpected(&census);
    assert_eq!(problems.len(), 2, "{problems:?}");
    let mut census = Census::default();
    census.refusals.count(ObjectKind::Call, partyline_core::Error::Closing);
    census.refused = 1;
    assert!(RefusalExpectation::default().exactly(RefusalKind::Closing, 1).unexpected(&census).is_empty());
}

/// The real driver, unbound in the middle of its calls: after the unbind every table is empty
/// and no work is queued (the audit runs after every `unbind` step), and at the end of a run that
/// keeps its calls every object is accounted for.
#[test]
fn the_real_driver_leaves_nothing_after_an_unbind() {
    let text = format!(
        "{ADAPTER}[[step]]\nmake_call = \"c\"\nleaves = [\"alice\", \"bob\"]\nsettle = \"none\"\n\
         [[step]]\nadd = \"carol\"\ncall = \"c\"\nsettle = \"none\"\n\
         [[step]]\nunbind = 0\n"
    );
    for seed in 1..=8 {
        let report = run(&text, seed);
        assert!(report.is_clean(), "seed {seed}: {:#?}", report.violations);
        let audits = report
            .log
            .iter()
            .filter(|e| e.name == "IRP_MJ_DEVICE_CONTROL" && e.detail.contains("code=0x8A7C6024"))
            .count();
        assert_eq!(audits, 2, "one census after the unbind, one before unload (seed {seed})");
    }
    let kept = run(&format!("{ADAPTER}[[step]]\nmake_call = \"c\"\nleaves = [\"alice\", \"bob\"]\n"), 2);
    assert!(kept.is_clean(), "{:#?}", kept.violations);
}

/// `expect_refusals` names kinds of refusal and counts or ranges of them; anything else is
/// refused with the reason.
#[test]
fn expect_refusals_is_checked_when_parsed() {
    for (line, message) in [
        (
            "expect_refusals = { stale = 1 }",
            "`stale` is not a kind of refusal (one of: unknown_id, invalid_state",
        ),
        ("expect_refusals = { closing = [3, 1] }", "closing = [3, 1] is an empty range"),
        ("expect_refusals = { closing = \"2\" }", "did not match any variant"),
        ("expect_refusals = 4", "invalid type"),
    ] {
        let error = Scenario::parse(&format!("{line}\n{ADAPTER}"), "t.toml").expect_err(line);
        assert!(error.message.contains(message), "{line}: {error}");
    }
    let scenario = Scenario::parse(
        &format!("expect_refusals = {{ no_leaves = 2, closing = [0, 3] }}\n{ADAPTER}"),
        "t.toml",
    )
    .expect("parses");
    assert_eq!(scenario.expect_refusals.bounds[RefusalKind::NoLeaves as usize], (2, 2));
    assert_eq!(scenario.expect_refusals.bounds[RefusalKind::Closing as usize], (0, 3));
    assert_eq!(scenario.expect_refusals.bounds[RefusalKind::UnknownId as usize], (0, 0));
}
