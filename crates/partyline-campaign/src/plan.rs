//! How a campaign run is cut into units of work and put back together, so that it gives the same
//! figures whether its units run one after the other in this process ([`crate::run`]), spread
//! over worker processes ([`crate::workers`]), or split into shards on other machines and merged
//! ([`crate::shard`]).
//!
//! Flow: [`units`] lists the work of a run (or of one shard of it): the systematic campaign's
//! (scenario, schedule) pairs, each seeded campaign's seeds in blocks of [`SEEDS_PER_UNIT`], the
//! soak. Each seed's run depends on its seed alone, so a unit gives the same [`Outcome`] wherever it
//! runs. [`assemble`] sums the outcomes per campaign and orders the failures by campaign, then
//! seed (or pair); [`minimise_units`] then names the failing random runs to shrink, the first
//! [`modes::MINIMISE_RUNS`] of each campaign in that order, and [`attach_minimised`] puts the
//! shrunk runs back.

use std::ops::Range;

use crate::modes;
use crate::shard::Shard;
use crate::{Campaign, Failure, Figures, Options, Row};

/// Seeds per unit of a seeded campaign: enough to make a unit's overhead (a message to a worker)
/// negligible, few enough that the workers finish together.
pub const SEEDS_PER_UNIT: u64 = 8;

/// One unit of work.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Unit {
    /// The systematic campaign's (scenario, schedule) pairs `pairs`.
    Systematic { pairs: Range<usize> },
    /// The runs of a seeded campaign (schedule, low resources, concurrency, hostile) on `seeds`.
    Seeds { campaign: Campaign, seeds: Range<u64> },
    /// The soak.
    Soak,
    /// Shrink the failing random run `seed` of `campaign`, whose first problem was `problem`.
    Minimise { campaign: Campaign, seed: u64, problem: String },
}

/// What a unit gave.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// The figures of the runs of a [`Unit::Systematic`], [`Unit::Seeds`] or [`Unit::Soak`].
    Figures(Figures),
    /// The operations of a [`Unit::Minimise`] that still fail, and how many the run had.
    Minimised(Option<(String, usize)>),
}

/// The seeds of a seeded `campaign`: `seeds` of them from `first_seed`, a quarter for hostile.
pub fn seeds_of(options: &Options, campaign: Campaign) -> Range<u64> {
    let count = match campaign {
        Campaign::Hostile => options.seeds.div_ceil(4).max(1),
        _ => options.seeds,
    };
    options.first_seed..options.first_seed.saturating_add(count)
}

/// The part of `range` that `shard` runs: the `index`-th of `count` contiguous, disjoint parts.
fn part(range: Range<u64>, shard: Option<Shard>) -> Range<u64> {
    let Some(shard) = shard else { return range };
    let len = u128::from(range.end - range.start);
    let at = |i: u64| range.start + (len * u128::from(i) / u128::from(shard.count)) as u64;
    at(shard.index - 1)..at(shard.index)
}

/// The units of a run of `options`, or of its shard `shard`, in report order.
pub fn units(options: &Options, shard: Option<Shard>) -> Vec<Unit> {
    let mut units = Vec::new();
    for campaign in Campaign::ALL.into_iter().filter(|c| options.runs(*c)) {
        match campaign {
            Campaign::Systematic => {
                let pairs = part(0..modes::SYSTEMATIC_PAIRS as u64, shard);
                units.extend(pairs.map(|p| Unit::Systematic { pairs: p as usize..p as usize + 1 }));
            }
            Campaign::Soak => {
                if shard.is_none_or(|s| s.index == 1) {
                    units.push(Unit::Soak);
                }
            }
            _ => {
                let seeds = part(seeds_of(options, campaign), shard);
                let mut start = seeds.start;
                while start < seeds.end {
                    let end = seeds.end.min(start.saturating_add(SEEDS_PER_UNIT));
                    units.push(Unit::Seeds { campaign, seeds: start..end });
                    start = end;
                }
            }
        }
    }
    units
}

/// Runs `unit` in this process.
pub fn run_unit(options: &Options, unit: &Unit) -> Outcome {
    let mut figures = Figures::default();
    let (campaign, row) = match unit {
        Unit::Systematic { pairs } => {
            let pairs = pairs.start.min(modes::SYSTEMATIC_PAIRS)..pairs.end.min(modes::SYSTEMATIC_PAIRS);
            (Campaign::Systematic, modes::systematic(options, &mut figures, pairs))
        }
        Unit::Seeds { campaign: Campaign::Hostile, seeds } => {
            (Campaign::Hostile, modes::hostile(options, &mut figures, seeds.clone()))
        }
        Unit::Seeds {
            campaign: campaign @ (Campaign::Schedule | Campaign::LowResources | Campaign::Concurrency),
            seeds,
        } => (*campaign, modes::fuzz(options, &mut figures, *campaign, seeds.clone())),
        Unit::Seeds { campaign, seeds } => {
            // Not a unit `units` makes: say so in the report rather than run something else.
            figures.failures.push(Failure {
                campaign: *campaign,
                scenario: "unit".into(),
                seed: seeds.start,
                order: seeds.start,
                problem: format!(
                    "a unit of seeds {seeds:?} for the {} campaign, which has no seeds",
                    campaign.name()
                ),
                minimised: None,
            });
            (*campaign, Row::default())
        }
        Unit::Soak => (Campaign::Soak, modes::soak(options, &mut figures)),
        Unit::Minimise { campaign, seed, problem } => {
            return Outcome::Minimised(modes::minimise(options, *campaign, *seed, problem))
        }
    };
    figures.rows.push((campaign, row));
    Outcome::Figures(figures)
}

/// The figures of the outcomes of a run's units (in any order, any grouping): one row per
/// campaign `options` selects, in campaign order, each the sum of its units' rows; the failures
/// in campaign order, then seed (systematic: pair) order.
pub fn assemble(options: &Options, outcomes: impl IntoIterator<Item = Outcome>) -> Figures {
    let mut figures = Figures {
        rows: Campaign::ALL.into_iter().filter(|c| options.runs(*c)).map(|c| (c, Row::default())).collect(),
        ..Figures::default()
    };
    for outcome in outcomes {
        let Outcome::Figures(part) = outcome else { continue };
        for (campaign, row) in &part.rows {
            match figures.rows.iter_mut().find(|(c, _)| c == campaign) {
                Some((_, total)) => total.add(row),
                None => figures.rows.push((*campaign, row.clone())),
            }
        }
        figures.distinct_sites.extend(part.distinct_sites);
        figures.failures.extend(part.failures);
        if part.soak.is_some() {
            figures.soak = part.soak;
        }
    }
    figures.rows.sort_by_key(|(c, _)| *c);
    // What is per campaign, not per unit: the seeded campaigns run one scenario (random
    // operations), the systematic one seed.
    for (campaign, row) in &mut figures.rows {
        match campaign {
            Campaign::Systematic => row.seeds = 1,
            _ => row.scenarios = 1,
        }
    }
    figures.failures.sort_by_key(|f| (f.campaign, f.order));
    figures
}

/// The failing random runs to shrink, unless `options` says not to (or is a replay): the first
/// [`modes::MINIMISE_RUNS`] of each random campaign, in report order.
pub fn minimise_units(options: &Options, figures: &Figures) -> Vec<Unit> {
    if !options.minimise || options.replay.is_some() {
        return Vec::new();
    }
    let mut units = Vec::new();
    for campaign in [Campaign::LowResources, Campaign::Schedule, Campaign::Concurrency] {
        units.extend(
            figures
                .failures
                .iter()
                .filter(|f| {
                    f.campaign == campaign && f.scenario == modes::RANDOM_OPERATIONS && f.minimised.is_none()
                })
                .take(modes::MINIMISE_RUNS)
                .map(|f| Unit::Minimise { campaign, seed: f.seed, problem: f.problem.clone() }),
        );
    }
    units
}

/// Puts the outcomes of [`minimise_units`]' units back into the failures they shrink.
pub fn attach_minimised(figures: &mut Figures, asked: &[Unit], outcomes: Vec<Outcome>) {
    for (unit, outcome) in asked.iter().zip(outcomes) {
        let (Unit::Minimise { campaign, seed, .. }, Outcome::Minimised(Some(shrunk))) = (unit, outcome)
        else {
            continue;
        };
        if let Some(failure) = figures
            .failures
            .iter_mut()
            .find(|f| f.campaign == *campaign && f.seed == *seed && f.scenario == modes::RANDOM_OPERATIONS)
        {
            failure.minimised = Some(shrunk);
        }
    }
}

/// The outcome of `unit` when the process running it stopped (the simulator's bug check, or a
/// crash of the simulator itself): one run, stopped, reported with what the process said last.
pub fn stopped(options: &Options, unit: &Unit, said: &str) -> Outcome {
    let (campaign, seed, order, scenario) = match unit {
        Unit::Systematic { pairs } => (Campaign::Systematic, 1, pairs.start as u64, "systematic"),
        Unit::Seeds { campaign, seeds } => (*campaign, seeds.start, seeds.start, "process"),
        Unit::Soak => (Campaign::Soak, options.first_seed, 0, modes::SOAK_RUN),
        Unit::Minimise { .. } => return Outcome::Minimised(None),
    };
    let row = Row {
        scenarios: u64::from(campaign == Campaign::Systematic),
        seeds: u64::from(campaign != Campaign::Systematic),
        runs: 1,
        stops: 1,
        ..Row::default()
    };
    let failure = Failure {
        campaign,
        scenario: scenario.into(),
        seed,
        order,
        problem: format!(
            "STOP the worker process running it ended: {}; replay in one process: {} --jobs 1",
            said.trim(),
            modes::replay_command(options, campaign, seed)
        ),
        minimised: None,
    };
    Outcome::Figures(Figures { rows: vec![(campaign, row)], failures: vec![failure], ..Figures::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(campaign: Campaign, seed: u64) -> Outcome {
        let failure = Failure {
            campaign,
            scenario: modes::RANDOM_OPERATIONS.into(),
            seed,
            order: seed,
            problem: format!("VIOLATION Rule_{seed} at t=1"),
            minimised: None,
        };
        let row = Row { seeds: 1, runs: 1, violations: 1, ..Row::default() };
        Outcome::Figures(Figures {
            rows: vec![(campaign, row)],
            failures: vec![failure],
            ..Figures::default()
        })
    }

    #[test]
    fn outcomes_in_any_order_assemble_in_report_order() {
        let options =
            Options { only: vec![Campaign::Schedule, Campaign::LowResources], ..Options::default() };
        let outcomes = [(Campaign::Schedule, 9), (Campaign::LowResources, 4), (Campaign::Schedule, 2)]
            .map(|(c, s)| failing(c, s));
        let figures = assemble(&options, outcomes);
        let order: Vec<(Campaign, u64)> = figures.failures.iter().map(|f| (f.campaign, f.seed)).collect();
        assert_eq!(order, [(Campaign::LowResources, 4), (Campaign::Schedule, 2), (Campaign::Schedule, 9)]);
        assert_eq!(
            figures.rows.iter().map(|(c, r)| (*c, r.runs, r.scenarios)).collect::<Vec<_>>(),
            [(Campaign::LowResources, 1, 1), (Campaign::Schedule, 2, 1)]
        );
    }

    #[test]
    fn the_first_failures_of_each_random_campaign_are_shrunk() {
        let options = Options { only: vec![Campaign::Schedule], ..Options::default() };
        let figures = assemble(&options, (1..=20).rev().map(|seed| failing(Campaign::Schedule, seed)));
        let asked = minimise_units(&options, &figures);
        let seeds: Vec<u64> =
            asked.iter().map(|u| if let Unit::Minimise { seed, .. } = u { *seed } else { 0 }).collect();
        assert_eq!(seeds, (1..=modes::MINIMISE_RUNS as u64).collect::<Vec<_>>());
        assert!(minimise_units(&Options { minimise: false, ..options.clone() }, &figures).is_empty());
        let mut figures = figures;
        attach_minimised(&mut figures, &asked[..1], vec![Outcome::Minimised(Some(("drain".into(), 7)))]);
        assert_eq!(figures.failures[0].minimised, Some(("drain".into(), 7)));
        assert_eq!(figures.failures[1].minimised, None);
    }

    #[test]
    fn shards_split_every_seed_range_without_gaps_or_overlap() {
        let options = Options { seeds: 1_001, first_seed: 5, ..Options::default() };
        for count in [1, 2, 3, 16] {
            let mut seen = std::collections::BTreeMap::<Campaign, Vec<u64>>::new();
            let mut pairs = Vec::new();
            let mut soaks = 0;
            for index in 1..=count {
                for unit in units(&options, Some(Shard { index, count })) {
                    match unit {
                        Unit::Seeds { campaign, seeds } => seen.entry(campaign).or_default().extend(seeds),
                        Unit::Systematic { pairs: p } => pairs.extend(p),
                        Unit::Soak => soaks += 1,
                        Unit::Minimise { .. } => unreachable!("runs have no minimise units"),
                    }
                }
            }
            for (campaign, seeds) in seen {
                assert_eq!(
                    seeds,
                    seeds_of(&options, campaign).collect::<Vec<_>>(),
                    "{campaign:?}, {count} shards"
                );
            }
            assert_eq!(pairs, (0..modes::SYSTEMATIC_PAIRS).collect::<Vec<_>>());
            assert_eq!(soaks, 1);
        }
    }
}
