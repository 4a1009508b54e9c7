//! The figures of one run and the table they print as.

use std::fmt;
use std::time::Duration;

/// Where the figures came from.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub valgrind: Option<String>,
}

impl Machine {
    /// This machine: CPU model from /proc/cpuinfo, online processors, valgrind version.
    pub fn this() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Machine { cpu, cores, valgrind: crate::callgrind::valgrind_version() }
    }
}

/// Instructions of one scaling run (N adds + N drops).
#[derive(Clone, Copy, Debug)]
pub struct ScalingRow {
    pub parties: u32,
    /// Executed inside partyline.sys.
    pub image_instructions: u64,
    /// Executed by the whole process (driver, simulator, verifier, harness).
    pub total_instructions: u64,
}

impl ScalingRow {
    /// Driver instructions per add+drop.
    pub fn image_per_op(&self) -> f64 {
        self.image_instructions as f64 / f64::from(self.parties.max(1))
    }

    /// Whole-process instructions per add+drop.
    pub fn total_per_op(&self) -> f64 {
        self.total_instructions as f64 / f64::from(self.parties.max(1))
    }
}

/// Party operations per second over several timed batches.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// Each batch's rate, in the order measured.
    pub batches: Vec<f64>,
}

impl Throughput {
    pub fn of(batches: Vec<f64>) -> Throughput {
        Throughput { batches }
    }

    /// The fastest batch: what the simulator does when the shared machine lets it.
    pub fn best(&self) -> f64 {
        self.batches.iter().copied().fold(0.0, f64::max)
    }

    /// The median batch.
    pub fn median(&self) -> f64 {
        let mut sorted = self.batches.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }
}

/// Every figure of issue #6.
#[derive(Clone, Debug)]
pub struct Report {
    pub machine: Machine,
    pub image_bytes: u64,
    pub scaling: Result<Vec<ScalingRow>, String>,
    pub party_bytes: f64,
    pub vc_bytes: f64,
    pub party_pool_detail: Vec<(String, f64)>,
    /// Party operations per second, verifier on.
    pub throughput_on: Throughput,
    /// Party operations per second, verifier off.
    pub throughput_off: Throughput,
    /// Party operations per second, verifier on, special pool on.
    pub throughput_special: Throughput,
    pub scenario_runs: u64,
    pub scenario_elapsed: Duration,
    /// Default-scenario runs with special pool on, and the time they took.
    pub special_scenario_runs: u64,
    pub special_scenario_elapsed: Duration,
    /// The seeded campaigns on one worker process and on two.
    pub campaign_scaling: Result<crate::campaigns::CampaignScaling, String>,
}

/// A target and whether it was met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Met,
    Missed,
    NotMeasured,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Met => "met",
            Target::Missed => "MISSED",
            Target::NotMeasured => "not measured",
        })
    }
}

fn met(ok: bool) -> Target {
    if ok {
        Target::Met
    } else {
        Target::Missed
    }
}

impl Report {
    /// Largest-N over smallest-N driver instructions per add+drop.
    pub fn scaling_ratio(&self) -> Option<f64> {
        let rows = self.scaling.as_ref().ok()?;
        let first = rows.iter().min_by_key(|r| r.parties)?;
        let last = rows.iter().max_by_key(|r| r.parties)?;
        Some(last.image_per_op() / first.image_per_op())
    }

    /// Scenario runs per minute.
    pub fn scenarios_per_minute(&self) -> f64 {
        self.scenario_runs as f64 * 60.0 / self.scenario_elapsed.as_secs_f64()
    }

    /// Verifier-on time over verifier-off time for the same work (best batches).
    pub fn verifier_cost(&self) -> f64 {
        self.throughput_off.best() / self.throughput_on.best()
    }

    /// Special-pool time over ordinary-pool time for the same work, verifier on (best batches).
    pub fn special_pool_cost(&self) -> f64 {
        self.throughput_on.best() / self.throughput_special.best()
    }

    /// Scenario runs per minute with special pool over those without.
    pub fn special_pool_scenario_cost(&self) -> f64 {
        let special = self.special_scenario_runs as f64 * 60.0 / self.special_scenario_elapsed.as_secs_f64();
        self.scenarios_per_minute() / special
    }

    /// The verdict on each target, in table order.
    pub fn targets(&self) -> Vec<(&'static str, Target)> {
        vec![
            (
                "scaling flat within ±10 %",
                self.scaling_ratio().map_or(Target::NotMeasured, |r| met((0.9..=1.1).contains(&r))),
            ),
            ("pool per party <= 64 B", met(self.party_bytes <= 64.0)),
            ("image <= 64 KiB", met(self.image_bytes <= 64 * 1024)),
            ("throughput >= 1,000,000 ops/s (verifier on)", met(self.throughput_on.best() >= 1_000_000.0)),
            ("verifier cost <= 2x", met(self.verifier_cost() <= 2.0)),
            ("scenarios >= 5,000/min", met(self.scenarios_per_minute() >= 5_000.0)),
            (
                "special pool cost <= 3x",
                met(self.special_pool_cost().max(self.special_pool_scenario_cost()) <= 3.0),
            ),
            (
                "campaigns on 2 workers >= 1.8x as fast as on 1, same figures",
                match &self.campaign_scaling {
                    Ok(c) if self.machine.cores >= 2 => met(c.speedup() >= 1.8 && c.same_figures),
                    _ => Target::NotMeasured,
                },
            ),
        ]
    }
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        writeln!(
            f,
            "machine: {} ({} cores), valgrind: {}",
            m.cpu,
            m.cores,
            m.valgrind.as_deref().unwrap_or("missing")
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "Scaling: one call, N leaves added then dropped in random order (synchronous, verifier on)"
        )?;
        match &self.scaling {
            Ok(rows) => {
                writeln!(
                    f,
                    "| N | driver instructions per add+drop | whole-process instructions per add+drop |"
                )?;
                writeln!(f, "|---:|---:|---:|")?;
                for row in rows {
                    writeln!(
                        f,
                        "| {} | {} | {} |",
                        thousands(f64::from(row.parties)),
                        thousands(row.image_per_op()),
                        thousands(row.total_per_op())
                    )?;
                }
            }
            Err(why) => writeln!(f, "{why}")?,
        }
        writeln!(f)?;
        writeln!(f, "| figure | measured | target | |")?;
        writeln!(f, "|---|---:|---|---|")?;
        let t = self.targets();
        let ratio = self.scaling_ratio().map_or("not measured".to_string(), |r| format!("{r:.3}"));
        writeln!(
            f,
            "| driver instructions per add+drop, largest N / smallest N | {ratio} | 0.90–1.10 | {} |",
            t[0].1
        )?;
        let detail: Vec<String> =
            self.party_pool_detail.iter().map(|(tag, b)| format!("{tag} {b:.2}")).collect();
        writeln!(
            f,
            "| nonpaged pool per party, amortised ({}) | {:.2} B | <= 64 B | {} |",
            detail.join(", "),
            self.party_bytes,
            t[1].1
        )?;
        writeln!(f, "| nonpaged pool per VC (besides its parties) | {:.1} B | — | |", self.vc_bytes)?;
        writeln!(
            f,
            "| partyline.sys (release) | {} B ({:.1} KiB) | <= 64 KiB | {} |",
            thousands(self.image_bytes as f64),
            self.image_bytes as f64 / 1024.0,
            t[2].1
        )?;
        let batches = self.throughput_on.batches.len();
        writeln!(
            f,
            "| party operations/s, synchronous, verifier on, 1 core (best of {batches} batches; median {}) | {} | >= 1,000,000 | {} |",
            thousands(self.throughput_on.median()),
            thousands(self.throughput_on.best()),
            t[3].1
        )?;
        writeln!(
            f,
            "| party operations/s, synchronous, verifier off (best of {batches}; median {}) | {} | — | |",
            thousands(self.throughput_off.median()),
            thousands(self.throughput_off.best())
        )?;
        writeln!(
            f,
            "| verifier cost (off rate / on rate) | {:.2}x | <= 2x | {} |",
            self.verifier_cost(),
            t[4].1
        )?;
        writeln!(
            f,
            "| default scenario runs/min, fresh image each run, 1 core | {} | >= 5,000 | {} |",
            thousands(self.scenarios_per_minute()),
            t[5].1
        )?;
        writeln!(
            f,
            "| party operations/s, synchronous, verifier on, special pool (best of {batches}; median {}) | {} | — | |",
            thousands(self.throughput_special.median()),
            thousands(self.throughput_special.best())
        )?;
        writeln!(
            f,
            "| special pool cost: party operations (on rate / special rate), default scenario runs (runs/min without / with) | {:.2}x, {:.2}x | <= 3x | {} |",
            self.special_pool_cost(),
            self.special_pool_scenario_cost(),
            t[6].1
        )?;
        match &self.campaign_scaling {
            Ok(c) => writeln!(
                f,
                "| campaigns on every core: {} seeded runs ({} seeds each of schedule, low resources, concurrency; hostile a quarter), 1 worker {:.2} s, {} workers {:.2} s (best of each); figures {} | {:.2}x | >= 1.8x | {} |",
                thousands(c.runs as f64),
                thousands(c.seeds as f64),
                c.one.as_secs_f64(),
                c.workers,
                c.many.as_secs_f64(),
                if c.same_figures { "identical" } else { "DIFFERENT" },
                c.speedup(),
                t[7].1
            )?,
            Err(why) => writeln!(f, "| campaigns on every core | {why} | >= 1.8x | {} |", t[7].1)?,
        }
        Ok(())
    }
}
