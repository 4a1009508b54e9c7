//! Campaigns on every core: the seeded campaigns (schedule, low resources, concurrency,
//! hostile) run once on one worker process and once on two, alternately, and the best time of
//! each gives the speed-up; both runs must give the same figures.
//!
//! The workers are this very executable (`partyline_campaign::workers`), so a binary that calls
//! [`crate::run`] calls `partyline_campaign::workers::dispatch` first in `main`.

use std::time::{Duration, Instant};

use partyline_campaign::{Campaign, Executor, Options as CampaignOptions};

/// What the measurement found.
#[derive(Clone, Debug)]
pub struct CampaignScaling {
    /// Seeds per seeded campaign.
    pub seeds: u64,
    /// Runs each measurement made (every campaign's).
    pub runs: u64,
    /// Best wall time on one worker process.
    pub one: Duration,
    /// Best wall time on [`CampaignScaling::workers`] worker processes.
    pub many: Duration,
    pub workers: usize,
    /// Whether every measurement gave the same figures.
    pub same_figures: bool,
}

impl CampaignScaling {
    /// How many times faster the run on several workers was.
    pub fn speedup(&self) -> f64 {
        self.one.as_secs_f64() / self.many.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Measures the seeded campaigns over `seeds` seeds, `rounds` times on each worker count.
pub fn measure(
    seeds: u64,
    rounds: u32,
    program: Option<&std::path::Path>,
) -> Result<CampaignScaling, String> {
    let program = match program {
        Some(p) => p.to_path_buf(),
        None => {
            std::env::current_exe().map_err(|e| format!("not measured: cannot find this program: {e}"))?
        }
    };
    let options = CampaignOptions {
        seeds,
        only: vec![Campaign::LowResources, Campaign::Schedule, Campaign::Concurrency, Campaign::Hostile],
        ..CampaignOptions::default()
    };
    let workers = 2;
    let (mut one, mut many) = (Duration::MAX, Duration::MAX);
    let mut figures: Vec<partyline_campaign::Figures> = Vec::new();
    for _ in 0..rounds.max(1) {
        for (jobs, best) in [(1, &mut one), (workers, &mut many)] {
            let started = Instant::now();
            let found =
                partyline_campaign::run_with(&options, None, Executor::Workers { jobs, program: &program })
                    .map_err(|e| format!("not measured: {e}"))?;
            *best = (*best).min(started.elapsed());
            figures.push(found);
        }
    }
    let runs = figures.first().map_or(0, |f| f.rows.iter().map(|(_, r)| r.runs).sum());
    let same_figures = figures.windows(2).all(|pair| pair[0] == pair[1]);
    Ok(CampaignScaling { seeds, runs, one, many, workers, same_figures })
}
