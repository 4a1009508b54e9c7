//! Instruction counts of the scaling benchmark, by valgrind's callgrind.
//!
//! The parent runs this executable again as a child under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=partyline_bench_measured_phase
//! --dump-instr=yes`, so only the measured phase (N adds, N drops) is counted, instruction by
//! instruction address. The child prints where partyline.sys is mapped; the parent sums the
//! self cost of every instruction address inside that range (the driver's own work) and of every
//! address (driver plus simulator). Both are deterministic for a fixed seed: the image's count is
//! exact, the whole-process count may move by a few instructions with hash-map seeds.

use std::path::PathBuf;
use std::process::Command;

use ndis_sim::ndis::FaultPolicy;

use crate::harness::{self, leaf, Harness};
use crate::{Options, ScalingRow, SEED};

/// The environment variable that turns this executable into a scaling child of `N` parties.
pub const CHILD_ENV: &str = "PARTYLINE_BENCH_CHILD";

/// The child: set up (not counted), run the measured phase (counted), print the image range.
pub fn child(n: u32) {
    let h = Harness::new(harness::config(SEED, FaultPolicy::synchronous()), true);
    let af = h.af();
    let call = h.make_call(af, &[leaf(0)]);
    let leaves: Vec<_> = (1..=n).map(leaf).collect();
    crate::partyline_bench_measured_phase(&h, call, &leaves, SEED);
    let image = h.sim.image().expect("image loaded");
    println!("image {:#x} {:#x}", image.base(), image.size());
    h.close_call(call);
    h.finish();
}

/// `valgrind --version`, if valgrind runs.
pub fn valgrind_version() -> Option<String> {
    let out = Command::new("valgrind").arg("--version").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One row per size, or why the figure was not measured.
pub fn scaling(options: &Options) -> Result<Vec<ScalingRow>, String> {
    if valgrind_version().is_none() {
        return Err("not measured: valgrind missing (install it, e.g. `apt-get install valgrind`)".into());
    }
    let exe = match &options.child_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(|e| format!("not measured: no current executable: {e}"))?,
    };
    options.sizes.iter().map(|&n| measure(&exe, n)).collect()
}

fn measure(exe: &PathBuf, n: u32) -> Result<ScalingRow, String> {
    eprintln!("callgrind: N = {n} …");
    let out_file = std::env::temp_dir().join(format!("partyline-bench-{}-{n}.callgrind", std::process::id()));
    let output = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=partyline_bench_measured_phase",
            "--dump-instr=yes",
            "--dump-line=no",
            "--compress-strings=no",
            "--compress-pos=no",
            // The simulator hands the one running thread between a processor's threads (see
            // ndis_sim::machine); a fair lock makes each hand-over immediate under valgrind.
            "--fair-sched=yes",
        ])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(exe)
        .env(CHILD_ENV, n.to_string())
        .output()
        .map_err(|e| format!("not measured: could not run valgrind: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "not measured: the callgrind child for N={n} failed: {}",
            String::from_utf8_lossy(&output.stderr).lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        ));
    }
    let range = stdout
        .lines()
        .find_map(|line| {
            let mut words = line.strip_prefix("image ")?.split_whitespace();
            let base = usize::from_str_radix(words.next()?.trim_start_matches("0x"), 16).ok()?;
            let size = usize::from_str_radix(words.next()?.trim_start_matches("0x"), 16).ok()?;
            Some(base..base + size)
        })
        .ok_or("not measured: the callgrind child did not report the image range")?;
    let text = std::fs::read_to_string(&out_file).map_err(|e| format!("not measured: {e}"))?;
    let _ = std::fs::remove_file(&out_file);
    let (image, total) = sum_costs(&text, &range);
    Ok(ScalingRow { parties: n, image_instructions: image, total_instructions: total })
}

/// Sums the first event (Ir) of every self-cost line: (inside `range`, everywhere). The line that
/// follows a `calls=` line is the inclusive cost of that call and is skipped.
pub fn sum_costs(text: &str, range: &std::ops::Range<usize>) -> (u64, u64) {
    let mut image = 0u64;
    let mut total = 0u64;
    let mut skip_next = false;
    let mut last_address = 0usize;
    for line in text.lines() {
        let first = line.as_bytes().first().copied().unwrap_or(b' ');
        let is_cost = first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'*';
        if !is_cost {
            skip_next = line.starts_with("calls=");
            continue;
        }
        let mut words = line.split_whitespace();
        let position = words.next().unwrap_or("");
        let address = if let Some(hex) = position.strip_prefix("0x") {
            usize::from_str_radix(hex, 16).unwrap_or(0)
        } else if let Some(delta) = position.strip_prefix('+') {
            last_address + delta.parse::<usize>().unwrap_or(0)
        } else if let Some(delta) = position.strip_prefix('-') {
            last_address - delta.parse::<usize>().unwrap_or(0)
        } else if position == "*" {
            last_address
        } else {
            position.parse().unwrap_or(0)
        };
        last_address = address;
        if std::mem::take(&mut skip_next) {
            continue;
        }
        let cost: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        total += cost;
        if range.contains(&address) {
            image += cost;
        }
    }
    (image, total)
}
