//! Campaigns at scale (issue 12): the figures of a run do not depend on where its units ran. One
//! process, worker processes, and shards merged from their JSON files all give the same table.

use partyline_campaign::shard::{merge, ResultFile, Shard};
use partyline_campaign::{minimise, run, run_with, Campaign, Executor, Figures, Options};

/// Every campaign, small.
fn options() -> Options {
    Options { seeds: 9, steps: 24, ioctl_inputs: 60, cycles: 600, ..Options::short() }
}

/// The shards `1/count ..= count/count` of `options`, each through its JSON file, merged.
fn merged(options: &Options, count: u64) -> Figures {
    let dir = std::env::temp_dir().join(format!("partyline-shards-{}-{count}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let mut files = Vec::new();
    // Written in reverse: the merge does not depend on the order of its files.
    for index in (1..=count).rev() {
        let shard = Shard { index, count };
        let figures = run_with(options, Some(shard), Executor::InProcess).expect("in process");
        let path = dir.join(format!("shard-{index}.json"));
        ResultFile::new(options, Some(shard), &figures).write(&path).expect("written");
        files.push((path.display().to_string(), ResultFile::read(&path).expect("read back")));
    }
    let (merged_options, mut figures) = merge(&files).expect("the shards merge");
    assert_eq!(&merged_options, options);
    minimise(&merged_options, &mut figures, Executor::InProcess).expect("in process");
    let _ = std::fs::remove_dir_all(&dir);
    figures
}

#[test]
fn shards_merge_into_the_table_of_one_run() {
    let options = options();
    let whole = run(&options);
    assert!(whole.rows.len() == Campaign::ALL.len() && whole.rows.iter().all(|(_, r)| r.runs > 0), "{whole}");
    for count in [2, 3, 7] {
        let merged = merged(&options, count);
        assert_eq!(merged.to_string(), whole.to_string(), "{count} shards");
        assert_eq!(merged, whole, "{count} shards");
    }
}

#[test]
fn worker_processes_give_the_figures_of_one_process() {
    let options =
        Options { only: vec![Campaign::Schedule, Campaign::Hostile, Campaign::Systematic], ..options() };
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_partyline-campaign"));
    let whole = run(&options);
    for jobs in [1, 3] {
        let spread = run_with(&options, None, Executor::Workers { jobs, program }).expect("workers start");
        assert_eq!(spread, whole, "{jobs} workers");
    }
}

#[test]
fn a_program_that_is_not_a_worker_is_refused_clearly() {
    let options = Options { only: vec![Campaign::Schedule], seeds: 2, ..options() };
    let error =
        run_with(&options, None, Executor::Workers { jobs: 2, program: std::path::Path::new("/bin/true") })
            .expect_err("/bin/true serves no units");
    assert!(error.contains("did not start as a campaign worker"), "{error}");
}

fn shard_file(options: &Options, index: u64, count: u64) -> (String, ResultFile) {
    let shard = Shard { index, count };
    (format!("s{index}.json"), ResultFile::new(options, Some(shard), &Figures::default()))
}

#[test]
fn merging_refuses_missing_repeated_and_foreign_shards() {
    let options = options();
    let missing =
        merge(&[shard_file(&options, 1, 3), shard_file(&options, 3, 3)]).expect_err("2/3 is missing");
    assert!(missing.contains("shards missing: 2/3"), "{missing}");
    let twice = merge(&[shard_file(&options, 1, 2), shard_file(&options, 1, 2)]).expect_err("1/2 twice");
    assert!(twice.contains("shard 1/2 is given twice"), "{twice}");
    let other = Options { seeds: 10, ..options.clone() };
    let foreign = merge(&[shard_file(&options, 1, 2), shard_file(&other, 2, 2)]).expect_err("other options");
    assert!(foreign.contains("options differ"), "{foreign}");
    let counts =
        merge(&[shard_file(&options, 1, 2), shard_file(&options, 2, 3)]).expect_err("2 and 3 shards");
    assert!(counts.contains("not shards of one run"), "{counts}");
    assert!(merge(&[]).is_err());
}

#[test]
fn shards_are_parsed_strictly() {
    assert_eq!("3/8".parse::<Shard>(), Ok(Shard { index: 3, count: 8 }));
    for wrong in ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""] {
        assert!(wrong.parse::<Shard>().is_err(), "{wrong}");
    }
}

#[test]
fn result_files_that_are_not_results_are_refused() {
    let dir = std::env::temp_dir().join(format!("partyline-results-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("written");
        path
    };
    let not_json = ResultFile::read(&write("a.json", "soak: 12")).expect_err("not JSON");
    assert!(not_json.contains("not JSON"), "{not_json}");
    let other = ResultFile::read(&write("b.json", "{\"format\": \"x\"}")).expect_err("not ours");
    assert!(other.contains("not a campaign result"), "{other}");
    let mut file = serde_json::to_value(shard_file(&options(), 1, 2).1).expect("serialises");
    file["version"] = 99.into();
    let newer = ResultFile::read(&write("c.json", &file.to_string())).expect_err("version 99");
    assert!(newer.contains("version 99"), "{newer}");
    file["version"] = 1.into();
    file["shard"]["index"] = 5.into();
    let beyond = ResultFile::read(&write("d.json", &file.to_string())).expect_err("shard 5 of 2");
    assert!(beyond.contains("is not one of its 2"), "{beyond}");
    let _ = std::fs::remove_dir_all(&dir);
}
