//! The `partyline` command end to end: the real `partyline.sys` on the simulator, through the
//! binary a newcomer runs.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::{Command, Output};

const SHIPPED: [&str; 13] = [
    "default",
    "rejections",
    "teardown-under-load",
    "faults",
    "address-change",
    "address-query-low-memory",
    "crossings",
    "pnp",
    "teardown-failures",
    "receives",
    "uninstall",
    "receive",
    "low-memory",
];

fn partyline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_partyline")).args(args).output().expect("run partyline")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `contents` to a scenario file of its own and returns its path.
fn scenario_file(name: &str, contents: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("partyline-cli-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, contents).expect("write scenario");
    path
}

const HEADER: &str = r#"
seed = 5
[faults]
preset = "synchronous"
[[adapter]]
local_address = "47.0005.80FFE1000000F21A2B3C.0020481A2B3C.00"
[[adapter.remote]]
name = "alice"
address = "47.0005.80FFE1000000F21A2B3C.0020481A0001.00"
[[adapter.remote]]
name = "bob"
address = "+15551234"
"#;

#[test]
fn no_arguments_runs_the_default_scenario_clean() {
    let out = partyline(&[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("scenario 'default'"), "{stdout}");
    assert!(stdout.contains("ndis.sys!NdisClMakeCall"), "the timeline shows NDIS calls:\n{stdout}");
    assert!(stdout.contains("ProtocolClAddPartyComplete"), "and callbacks:\n{stdout}");
    assert!(stdout.contains("clean: no documented rule was broken"), "{stdout}");
    assert!(stdout.contains("parties dropped remotely"), "a summary table:\n{stdout}");
    assert!(stdout.contains("PASS"), "{stdout}");
}

#[test]
fn every_shipped_scenario_runs_clean() {
    for name in SHIPPED {
        let out = partyline(&["run", name, "--quiet"]);
        assert!(out.status.success(), "{name}:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    }
}

#[test]
fn shipped_scenarios_stay_clean_over_many_seeds() {
    for name in SHIPPED {
        for seed in 1..=12u64 {
            let out = partyline(&["run", name, "--quiet", "--seed", &seed.to_string()]);
            assert!(
                out.status.success(),
                "{name} with seed {seed}:\n{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn scenario_files_run_by_path_too() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/default.toml");
    let out = partyline(&["run", root.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
}

/// Two processes map the image and their buffers at different addresses (ASLR); everything else
/// in a run must be identical.
fn replayable(out: &Output) -> String {
    ndis_sim::scenario::mask_host_addresses(&text(&out.stdout))
}

#[test]
fn the_same_seed_replays_exactly() {
    for name in SHIPPED {
        let first = partyline(&["run", name, "--json", "--seed", "99"]);
        let second = partyline(&["run", name, "--json", "--seed", "99"]);
        assert!(first.status.success(), "{}", text(&first.stderr));
        assert_eq!(replayable(&first), replayable(&second), "{name}: two runs with seed 99 differ");
    }
    let first = partyline(&["run", "faults", "--json", "--seed", "99"]);
    let other = partyline(&["run", "faults", "--json", "--seed", "100"]);
    assert_ne!(replayable(&first), replayable(&other), "the seed should change the schedule");
}

#[test]
fn json_output_is_one_object_per_line_ending_with_a_summary() {
    let out = partyline(&["run", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert!(lines.iter().any(|l| l["type"] == "event" && l["name"] == "NdisClAddParty"));
    assert!(lines.iter().any(|l| l["type"] == "step"));
    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["clean"], true);
    assert_eq!(summary["seed"], 7);
    assert_eq!(summary["parties_dropped_remotely"], 2);
    assert_eq!(summary["parties_dropped_locally"], 2);
    assert_eq!(summary["violations"], 0);
}

#[test]
fn a_failed_expectation_says_which_step_and_how_to_replay() {
    let path = scenario_file(
        "expectation-fails",
        &format!(
            "{HEADER}
[[step]]
make_call = \"c\"
leaves = [\"alice\", \"bob\"]

[[step]]
expect = {{ call = \"c\", parties = 5 }}

[[step]]
close = \"c\"
"
        ),
    );
    let out = partyline(&["run", path.to_str().unwrap(), "--quiet"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}\n{stderr}", text(&out.stdout));
    assert!(stderr.contains("step 2"), "{stderr}");
    assert!(stderr.contains("line 18"), "{stderr}");
    assert!(stderr.contains("expected 5 connected parties, the driver reports 2"), "{stderr}");
    assert!(stderr.contains(&format!("run {} --seed 5", path.display())), "the replay command:\n{stderr}");
}

#[test]
fn a_request_that_fails_unexpectedly_names_the_status() {
    let path = scenario_file(
        "status-fails",
        &format!(
            "{HEADER}
[[step]]
make_call = \"c\"
leaves = [\"alice\"]

[[step]]
close = \"c\"

[[step]]
close = \"c\"
"
        ),
    );
    let out = partyline(&["run", path.to_str().unwrap(), "--quiet"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CLOSE_CALL ended with STATUS_NOT_FOUND"), "{stderr}");
}

fn refused(name: &str, contents: &str) -> String {
    let path = scenario_file(name, contents);
    let out = partyline(&["run", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: refused with status 2, not a panic:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn malformed_toml_is_refused_with_its_line() {
    let stderr = refused("malformed", "seed = 1\n[[adapter]\nlocal_address = 1\n");
    assert!(stderr.contains("malformed.toml:2"), "{stderr}");
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let stderr = refused(
        "unknown-key",
        &format!("{HEADER}\n[[step]]\nmake_call = \"c\"\nleaves = [\"alice\"]\ncolour = \"blue\"\n"),
    );
    assert!(stderr.contains("unknown-key.toml:17"), "{stderr}");
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
}

#[test]
fn bad_addresses_are_refused_with_their_line() {
    let stderr = refused(
        "bad-address",
        "[[adapter]]\nlocal_address = \"47.0005.80FFE1000000F21A2B3C.0020481A2B3C.00\"\n[[adapter.remote]]\nname = \"x\"\naddress = \"47.0005.ZZ\"\n",
    );
    assert!(stderr.contains("bad-address.toml:5"), "{stderr}");
    assert!(stderr.contains("`47.0005.ZZ` is not an ATM address"), "{stderr}");
    let stderr =
        refused("bad-leaf", &format!("{HEADER}\n[[step]]\nmake_call = \"c\"\nleaves = [\"carol\"]\n"));
    assert!(stderr.contains("bad-leaf.toml:14"), "{stderr}");
    assert!(stderr.contains("`carol` is neither a remote party (alice, bob)"), "{stderr}");
}

#[test]
fn steps_that_make_no_sense_are_refused() {
    let stderr = refused("two-actions", &format!("{HEADER}\n[[step]]\nclose = \"c\"\ndrop = \"alice\"\n"));
    assert!(stderr.contains("one action per step"), "{stderr}");
    let stderr = refused("unknown-call", &format!("{HEADER}\n[[step]]\nclose = \"nope\"\n"));
    assert!(stderr.contains("no earlier make_call names a call 'nope'"), "{stderr}");
    let stderr = refused(
        "bad-status",
        &format!("{HEADER}\n[[step]]\nmake_call = \"c\"\nleaves = [\"alice\"]\nstatus = \"oops\"\n"),
    );
    assert!(stderr.contains("status = \"oops\""), "{stderr}");
}

#[test]
fn an_unknown_scenario_name_lists_the_shipped_ones() {
    let out = partyline(&["run", "no-such-scenario"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr)
        .contains("shipped: default, rejections, teardown-under-load, faults, address-change"));
}

#[test]
fn scenarios_lists_the_shipped_ones() {
    let out = partyline(&["scenarios"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for name in SHIPPED {
        assert!(stdout.contains(name), "{stdout}");
    }
    assert!(!stdout.contains("does not parse"), "{stdout}");
}

/// `partyline state` plays a scenario and prints the driver's own tables, work queues and
/// refusals as READ_STATE reported them before DriverUnload; an unexpected refusal fails it with
/// the rule that says so; a missing scenario or a bad seed is refused with status 2.
#[test]
fn state_shows_the_drivers_tables_and_refusals() {
    let out = partyline(&["state"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for needle in
        ["scenario 'default'", "bindings", "address families", "calls", "parties", "queued work", "refused"]
    {
        assert!(stdout.contains(needle), "{needle}:\n{stdout}");
    }
    assert!(stdout.contains("clean: every object accounted for"), "{stdout}");
    let path = scenario_file(
        "state-refused",
        &format!("{HEADER}\n[[step]]\nmake_call = \"c\"\nleaves = [\"alice\", \"bob\"]\n\n[[step]]\nclose = \"c\"\n\n[[step]]\nclose = \"c\"\nstatus = \"STATUS_NOT_FOUND\"\n"),
    );
    let out = partyline(&["state", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("refused           1, 1 unknown_id"), "{stdout}");
    assert!(stdout.contains("DriverState_UnexpectedRefusal"), "{stdout}");
    for args in [&["state", "no-such-scenario"][..], &["state", "--seed", "x"]] {
        let out = partyline(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).contains("panicked"));
    }
}
