//! Shipped scenarios on the real `partyline.sys`, through the library: clean runs, exact replay,
//! the requests really going through the control device, and the parser's refusals.

use ndis_sim::scenario::{self, Scenario, StepResult};

fn shipped() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).expect("read scenario")))
        .collect()
}

#[test]
fn every_shipped_scenario_parses_and_runs_clean() {
    let files = shipped();
    assert!(files.len() >= 4, "default plus at least three more");
    for (origin, text) in files {
        let scenario = Scenario::parse(&text, &origin).unwrap_or_else(|e| panic!("{e}"));
        let report = scenario::run(&scenario, partyline_image::image(), None).expect("image loads");
        let steps: Vec<String> = report.steps.iter().map(|s| s.to_string()).collect();
        assert!(
            report.is_clean(),
            "{origin} (seed {}):\n{}\n{:#?}\n{}",
            report.seed,
            steps.join("\n"),
            report.violations,
            report.timeline()
        );
        assert!(report.leaks.is_empty(), "{origin}: {:?}", report.leaks);
    }
}

#[test]
fn requests_go_through_the_control_device() {
    let (origin, text) = shipped().into_iter().find(|(o, _)| o.ends_with("default.toml")).expect("default");
    let scenario = Scenario::parse(&text, &origin).expect("parses");
    let report = scenario::run(&scenario, partyline_image::image(), None).expect("loads");
    let ioctls = report.log.iter().filter(|e| e.name == "IRP_MJ_DEVICE_CONTROL").count();
    assert!(
        ioctls >= scenario.steps.iter().filter(|s| s.action.is_request()).count(),
        "{}",
        report.timeline()
    );
    let make_call = partyline_ioctl::IOCTL_PARTYLINE_MAKE_CALL;
    assert!(report.log.iter().any(|e| e.detail.contains(&format!("code=0x{make_call:08X}"))));
    assert!(report.steps.iter().all(|s| matches!(s.result, StepResult::Ok(_))), "{:#?}", report.steps);
}

/// Every run ends with a user opening a name below the control device: the create path's IRP
/// handling is checked in every scenario (mutants/create-denied-completed-twice.patch is caught
/// there). partyline has no namespace and refuses the name, so that open is the one create with
/// no close.
#[test]
fn every_run_opens_a_name_below_the_device() {
    let (origin, text) = shipped().into_iter().find(|(o, _)| o.ends_with("default.toml")).expect("default");
    let scenario = Scenario::parse(&text, &origin).expect("parses");
    let report = scenario::run(&scenario, partyline_image::image(), None).expect("loads");
    let count = |name: &str| report.log.iter().filter(|e| e.name == name).count();
    assert_eq!(count("IRP_MJ_CREATE"), count("IRP_MJ_CLOSE") + 1, "{}", report.timeline());
    assert!(report.is_clean(), "{:#?}", report.violations);
}

/// `uninstall = true`: NDIS unbinds every adapter, then calls ProtocolUninstall, and DriverUnload
/// still comes last (nc-ndis-protocol_uninstall); the step's own form is checked.
#[test]
fn an_uninstall_step_unbinds_everything_then_calls_protocol_uninstall() {
    let (origin, text) =
        shipped().into_iter().find(|(o, _)| o.ends_with("uninstall.toml")).expect("uninstall");
    let scenario = Scenario::parse(&text, &origin).expect("parses");
    let report = scenario::run(&scenario, partyline_image::image(), None).expect("loads");
    assert!(report.is_clean(), "{:#?}\n{:#?}", report.violations, report.steps);
    let at =
        |name: &str| report.log.iter().filter(|e| e.name == name).map(|e| e.sequence).collect::<Vec<_>>();
    let (unbinds, uninstall, unload) =
        (at("ProtocolUnbindAdapterEx"), at("ProtocolUninstall"), at("DriverUnload"));
    assert_eq!(unbinds.len(), 4, "two adapters, each entry and return logged:\n{}", report.timeline());
    assert_eq!(uninstall.len(), 2, "{}", report.timeline());
    assert!(unbinds.iter().all(|u| *u < uninstall[0]) && uninstall[1] < unload[0], "{}", report.timeline());

    let header = text.split("[[step]]").next().expect("header");
    let refused = Scenario::parse(&format!("{header}[[step]]\nuninstall = false\n"), "inline").unwrap_err();
    assert!(refused.to_string().contains("uninstall = true"), "{refused}");
}

#[test]
fn a_seed_replays_exactly() {
    for (origin, text) in shipped() {
        let scenario = Scenario::parse(&text, &origin).expect("parses");
        for seed in [1, 42] {
            let a = scenario::run(&scenario, partyline_image::image(), Some(seed)).expect("loads");
            let b = scenario::run(&scenario, partyline_image::image(), Some(seed)).expect("loads");
            // Host addresses (where this process mapped the image and its buffers) are the only
            // thing allowed to differ between two runs.
            assert_eq!(
                a.replay_timeline(),
                b.replay_timeline(),
                "{origin} seed {seed}: the timelines differ"
            );
            assert_eq!(a.log.len(), b.log.len());
            assert_eq!(a.steps, b.steps);
            assert_eq!(a.counters, b.counters);
        }
    }
}

const ADAPTER: &str = "[[adapter]]\nlocal_address = \"47.0005.80FFE1000000F21A2B3C.0020481A2B3C.00\"\n";

#[test]
fn parse_errors_name_the_line_and_the_problem() {
    let cases: &[(&str, &str, Option<usize>)] = &[
        ("seed = \"x\"\n", "invalid type", Some(1)),
        ("seed = 1\nbogus = 2\n", "unknown field `bogus`", Some(2)),
        ("[[adapter]]\nlocal_address = \"12\"\n", "not an ATM address", Some(2)),
        ("[[adapter]]\nlocal_address = \"+12ab\"\n", "only the digits 0-9", Some(2)),
        ("seed = 1\n", "at least one [[adapter]]", None),
        ("[faults]\npreset = \"chaos\"\n", "unknown variant `chaos`", Some(2)),
        ("[[adapter]]\nlocal_address = \"+1\"\n[[adapter.remote]]\nname = \"a\"\naddress = \"+2\"\nbehaviour = { reject = 300 }\n", "", Some(6)),
    ];
    for (text, message, line) in cases {
        let error = Scenario::parse(text, "t.toml").expect_err(text);
        assert!(error.message.contains(message), "{text}: {error}");
        assert_eq!(error.line, *line, "{text}: {error}");
    }
    let step_cases: &[(&str, &str, usize)] = &[
        ("[[step]]\n", "this step does nothing", 3),
        ("[[step]]\nadvance = 1\nrun_until_idle = true\n", "one action per step", 3),
        ("[[step]]\nmake_call = \"c\"\n", "needs `leaves", 3),
        ("[[step]]\nmake_call = \"c\"\nleaves = [\"+1\"]\n[[step]]\nmake_call = \"c\"\nleaves = [\"+1\"]\n", "made twice", 6),
        ("[[step]]\nadd = \"+1\"\n", "needs `call", 3),
        ("[[step]]\nexpect = { parties = 1 }\n", "add `call", 3),
        ("[[step]]\nunbind = 3\n", "adapter 3 does not exist", 3),
        ("[[step]]\nadvance = 1\nsettle = 4\n", "does not apply", 3),
        ("[[step]]\nmake_call = \"c\"\nleaves = [\"+1\"]\nprofile = { peak_cell_rate = 0 }\n", "PeakCellRate", 3),        ("[[step]]\npnp = \"hibernate\"\n", "not a PnP step (one of pause, restart", 3),
        ("[[step]]\npnp = \"pause\"\nadapter = 2\n", "adapter 2 does not exist", 3),
        ("[[step]]\npnp = \"pause\"\ncall = \"c\"\n", "does not apply", 3),
    ];
    for (steps, message, line) in step_cases {
        let text = format!("{ADAPTER}{steps}");
        let error = Scenario::parse(&text, "t.toml").expect_err(steps);
        assert!(error.message.contains(message), "{steps}: {error}");
        assert_eq!(error.line, Some(*line), "{steps}: {error}");
    }
}

/// network/receiving-data-in-protocol-drivers: `receive` steps indicate lists on a call's VC and
/// on the binding, with and without NDIS_RECEIVE_FLAGS_RESOURCES, at PASSIVE and DISPATCH; the
/// real driver gives every owned list back and the run is clean.
#[test]
fn receive_steps_indicate_on_the_call_and_the_binding() {
    let text = format!(
        "name = \"receive\"\n[faults]\npreset = \"mixed\"\n{ADAPTER}\
         [[adapter.remote]]\nname = \"alice\"\naddress = \"+14155550100\"\n\
         [[step]]\nmake_call = \"c\"\nleaves = [\"alice\"]\n\
         [[step]]\nreceive = 3\ncall = \"c\"\n\
         [[step]]\nreceive = 2\ncall = \"c\"\nresources = true\ndispatch = true\n\
         [[step]]\nreceive = 1\nadapter = 0\ndispatch = true\n\
         [[step]]\nreceive = 4\nresources = true\n\
         [[step]]\nclose = \"c\"\n"
    );
    let scenario = Scenario::parse(&text, "receive.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        scenario.steps[2].action.to_string(),
        "network: 2 NET_BUFFER_LIST(s) received on call 'c', low on resources at DISPATCH_LEVEL"
    );
    for seed in 1..=5 {
        let report = scenario::run(&scenario, partyline_image::image(), Some(seed)).expect("image loads");
        let steps: Vec<String> = report.steps.iter().map(|s| s.to_string()).collect();
        assert!(report.is_clean(), "seed {seed}:\n{}\n{:#?}", steps.join("\n"), report.violations);
        assert!(report.steps.iter().all(|s| matches!(s.result, StepResult::Ok(_))), "{}", steps.join("\n"));
        let returns = report.log.iter().filter(|e| e.name == "NdisReturnNetBufferLists").count();
        assert_eq!(returns, 2, "one return per owned indication (seed {seed}):\n{}", report.timeline());
    }
    let refusals: &[(&str, &str)] = &[
        ("[[step]]\nreceive = 0\n", "at least one"),
        ("[[step]]\nreceive = 1\ncall = \"nope\"\n", "no earlier make_call"),
        ("[[step]]\nadvance = 1\nresources = true\n", "does not apply"),
        (
            "[[step]]\nmake_call = \"c\"\nleaves = [\"+1\"]\n[[step]]\nreceive = 1\ncall = \"c\"\nadapter = 0\n",
            "not both",
        ),
    ];
    for (steps, message) in refusals {
        let error = Scenario::parse(&format!("{ADAPTER}{steps}"), "t.toml").expect_err(steps);
        assert!(error.message.contains(message), "{steps}: {error}");
    }
}

/// scenarios/teardown-failures.toml: each teardown request fails where its `fail_next` step says
/// (at once or at completion, with the status its Learn page lists), the real driver answers
/// each the documented way (a refused drop closes the call with that party; a failed close,
/// delete or AF close is made again), and the run ends clean with nothing left.
#[test]
fn every_teardown_request_fails_once_in_its_scenario_and_the_driver_cleans_up() {
    let (origin, text) =
        shipped().into_iter().find(|(o, _)| o.ends_with("teardown-failures.toml")).expect("shipped");
    let scenario = Scenario::parse(&text, &origin).expect("parses");
    let report = scenario::run(&scenario, partyline_image::image(), None).expect("loads");
    let timeline = report.timeline();
    let count = |needle: &str| timeline.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("NdisClDropParty(-> NDIS_STATUS_FAILURE (injected))"), 1, "{timeline}");
    assert_eq!(count("ProtocolClDropPartyComplete((NDIS_STATUS_FAILURE"), 1, "{timeline}");
    assert_eq!(count("NdisClCloseCall(-> NDIS_STATUS_FAILURE (injected))"), 1, "{timeline}");
    assert_eq!(count("ProtocolClCloseCallComplete((NDIS_STATUS_FAILURE"), 1, "{timeline}");
    assert_eq!(count("NdisCoDeleteVc(-> NDIS_STATUS_NOT_ACCEPTED (injected))"), 2, "{timeline}");
    assert_eq!(count("NdisClCloseAddressFamily(-> NDIS_STATUS_FAILURE (injected))"), 1, "{timeline}");
    assert_eq!(count("ProtocolClCloseAfComplete((NDIS_STATUS_FAILURE"), 1, "{timeline}");
    // The refused party is the one the close passes: Pt#5 (b) of the first call.
    let refused =
        timeline.lines().position(|l| l.contains("ProtocolClDropPartyComplete((NDIS_STATUS_FAILURE"));
    let closed = timeline.lines().position(|l| l.contains("NdisClCloseCall((Vc#3, Pt#5"));
    assert!(refused.is_some() && closed > refused, "{timeline}");
    assert!(report.is_clean(), "{:#?}\n{timeline}", report.violations);
    assert!(report.leaks.is_empty(), "{:?}", report.leaks);
}

#[test]
fn a_fail_next_step_naming_a_request_that_cannot_fail_is_refused_with_the_list() {
    let text = r#"
[[adapter]]
local_address = "47.0005.80FFE1000000F21A2B3C.0020481AF000.00"

[[step]]
fail_next = "NdisFreeMemory"
"#;
    let error = Scenario::parse(text, "bad.toml").expect_err("refused").to_string();
    assert!(error.contains("NdisFreeMemory") && error.contains("NdisClCloseCall"), "{error}");
    let text = text.replace(
        "[[step]]\nfail_next = \"NdisFreeMemory\"",
        "[faults]\nrequest_failure_exports = [\"NdisFoo\"]",
    );
    let error = Scenario::parse(&text, "bad.toml").expect_err("refused").to_string();
    assert!(error.contains("request_failure_exports") && error.contains("NdisFoo"), "{error}");
}

/// scenarios/crossings.toml on the real image: every crossing the call manager settles is traced
/// with its reason, none is dropped silently, the driver answers each as documented (the run is
/// clean), and a repeated registration of the families opens nothing more.
#[test]
fn the_crossings_scenario_traces_every_crossing() {
    let (origin, text) =
        shipped().into_iter().find(|(o, _)| o.ends_with("crossings.toml")).expect("crossings");
    let scenario = Scenario::parse(&text, &origin).expect("parses");
    for seed in [scenario.seed, 1, 2, 3] {
        let report = scenario::run(&scenario, partyline_image::image(), Some(seed)).expect("loads");
        let steps: Vec<String> = report.steps.iter().map(|s| s.to_string()).collect();
        assert!(
            report.is_clean(),
            "seed {seed}:\n{}\n{:#?}\n{}",
            steps.join("\n"),
            report.violations,
            report.timeline()
        );
        let log = report.timeline();
        // Every network event reached the driver or was absorbed with a reason logged next to it.
        let network = report.log.iter().filter(|e| e.name == "Network").count();
        let reasons =
            report.log.iter().filter(|e| e.name == "CallManager" && e.detail.contains(": ")).count();
        let dispatched = report.log.iter().filter(|e| e.name.starts_with("ProtocolClIncoming")).count();
        assert!(network > 0 && reasons + dispatched >= network, "seed {seed}\n{log}");
        if seed != scenario.seed {
            continue; // the scenario's own seed puts every crossing where its steps say
        }
        for crossing in [
            "ADD PARTY REJECT",
            "DROP PARTY crosses the client's DROP PARTY",
            "DROP PARTY for a party already cleared",
            "RELEASE crosses the client's RELEASE",
            "the network clears the SETUP before CONNECT",
            "DROP PARTY crosses the client's RELEASE of the call",
            "CALL_PARAMETERS_CHANGED set",
        ] {
            assert!(log.contains(crossing), "seed {seed}: no `{crossing}` in\n{log}");
        }
        let opens = report
            .log
            .iter()
            .filter(|e| e.name == "NdisClOpenAddressFamilyEx" && e.detail.starts_with('('))
            .count();
        assert_eq!(opens, 1, "seed {seed}: one AF open\n{log}");
        let notifies = report.log.iter().filter(|e| e.name == "ProtocolCoAfRegisterNotify").count();
        assert_eq!(notifies, 4, "seed {seed}: two families, registered twice\n{log}");
        assert_eq!(report.counters.crossings_absorbed, 5, "seed {seed}");
    }
}
