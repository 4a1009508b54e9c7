//! The soak campaign: a million add/drop cycles on long-lived calls, with remote drops and
//! failed requests mixed in, checking that the driver's memory and tables stay flat.
//!
//! Read: `docs/ROBUSTNESS.md` ("Soak"), `partyline_core::census` (what the driver counts),
//! `ndis_sim::ndis::memory` (the pool's high-water mark).
//!
//! Flow: one machine, one adapter, [`CALLS`] long-lived calls of [`BASE_LEAVES`] leaves each.
//! A round adds one leaf to every call (IOCTL_PARTYLINE_ADD_PARTY), runs until idle, then drops
//! each added party, locally (IOCTL_PARTYLINE_DROP_PARTY) or by the network (a remote DROP
//! PARTY, answered by the driver with NdisClDropParty), or both at once (the network's DROP PARTY
//! crossing the driver's, [`CROSSING_ONE_IN`]), picked by the seed; now and then a PnP pair
//! (pause and restart, or power down and up) arrives while the adds are in flight
//! ([`PNP_ONE_IN_ROUNDS`]); every request may
//! be failed by the fault policy ([`REQUEST_FAILURES_PER_10000`]), synchronously or at
//! completion. One add and its drop is a cycle. Every [`CHECKPOINT`] cycles the bench runs until
//! idle, makes again any long-lived call a failure closed, and checks the driver's census (READ_STATE)
//! against the baseline taken after warm-up: the same objects in every table, nothing queued, no
//! object unaccounted for. At the end the pool's high-water mark may have grown by at most one
//! chunk (the largest of the driver's tables) since the end of warm-up, and every table is back
//! to its baseline; then the usual end of a run (NDIS unbinds, every table empty, unload, pool
//! leaks).

use ndis_sim::ndis::{FaultPolicy, PartyState, Rng};
use partyline_core::census::{Census, TABLES};
use partyline_core::slab::CHUNK_LEN;
use partyline_core::Table;

use crate::bench::{atm_addr, leaf, Bench, Verdict};

/// Long-lived calls.
pub const CALLS: usize = 16;
/// Leaves each long-lived call keeps for its whole life.
pub const BASE_LEAVES: usize = 2;
/// Cycles between two checks of the driver's census.
pub const CHECKPOINT: u64 = 1_000;
/// Failed requests per 10,000 (the fault policy fails the DDIs it can fail, at once or at
/// completion).
pub const REQUEST_FAILURES_PER_10000: u32 = 50;
/// One remote drop in this many cycles (the rest are local drops).
pub const REMOTE_DROP_ONE_IN: u64 = 3;
/// One round (a cycle on every call) in this many is interrupted, with its adds in flight, by a
/// PnP pair: NetEventPause then NetEventRestart, or a power-down (D3) then up (D0).
pub const PNP_ONE_IN_ROUNDS: u64 = 16;
/// Of the local drops, one in about this many is crossed by a DROP PARTY from the network for the
/// same party (`ndis_sim::ndis::crossing`: the call manager settles it).
pub const CROSSING_ONE_IN: u64 = 8;

/// What a soak run measured.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SoakFigures {
    pub cycles: u64,
    pub remote_drops: u64,
    pub local_drops: u64,
    /// Local drops crossed by a DROP PARTY from the network.
    pub crossings: u64,
    /// PnP events delivered (each pause, restart, power-down and power-up counted once).
    pub pnp_events: u64,
    /// Long-lived calls made again after a failure closed them.
    pub calls_remade: u64,
    /// The pool's high-water mark at the end of warm-up and at the end (bytes).
    pub high_water_after_warmup: u64,
    pub high_water_at_end: u64,
    /// The growth allowed: one chunk of the driver's largest table (bytes).
    pub allowed_growth: u64,
    /// The live objects of each table (bindings, address families, calls, parties) at the end of
    /// warm-up: the baseline every checkpoint returns to.
    pub baseline_live: [u64; 4],
    /// IOCTLs sent.
    pub ioctls: u64,
    /// Entries the call log held over the run (it is cleared at each checkpoint).
    pub log_entries: u64,
    /// Requests that failed, as the driver counted them (READ_COUNTERS): calls and parties that
    /// failed to connect, and failed drops, closes and VC deletes.
    pub failed_requests: u64,
}

impl SoakFigures {
    /// What is wrong with the pool's high-water mark: grown after warm-up by more than
    /// [`SoakFigures::allowed_growth`].
    pub fn growth_problem(&self) -> Option<String> {
        let growth = self.high_water_at_end.saturating_sub(self.high_water_after_warmup);
        (growth > self.allowed_growth).then(|| {
            format!(
                "the pool's high-water mark grew by {growth} bytes after warm-up ({} -> {}), more than one \
                 chunk ({} bytes): the driver's memory is not flat",
                self.high_water_after_warmup, self.high_water_at_end, self.allowed_growth
            )
        })
    }
}

/// The leaf of call `call`'s `n`-th base leaf (`n < BASE_LEAVES`) or, `n == BASE_LEAVES`, the
/// leaf its cycles add and drop. Each call has leaves of its own, so an address names one party.
fn leaf_of(call: usize, n: usize) -> partyline_core::AtmAddress {
    leaf((call * (BASE_LEAVES + 1) + n + 1) as u8)
}

/// The fault policy of a soak: mixed outcomes (synchronous, pending, early on another
/// processor), completions at DISPATCH now and then, and failed requests.
pub fn policy(special_pool: bool) -> FaultPolicy {
    FaultPolicy {
        request_failure_per_10000: REQUEST_FAILURES_PER_10000,
        dispatch_delivery_per_10000: 2_000,
        special_pool,
        ..FaultPolicy::default()
    }
}

/// The simulator's id of the party at `address` (not gone), if any, and whether it is connected.
fn network_party(bench: &Bench, address: &partyline_core::AtmAddress) -> Option<(u64, bool)> {
    bench.sim.party_at(&atm_addr(address)).map(|(id, state)| (id, state == PartyState::Connected))
}

/// Makes long-lived call `index` (its base leaves), runs until idle; its id if it is up.
fn make_long_lived(bench: &mut Bench, index: usize) -> Option<u64> {
    let af = bench.af()?;
    let leaves: Vec<_> = (0..BASE_LEAVES).map(|n| leaf_of(index, n)).collect();
    let call = bench.make_call(af, &leaves)?;
    bench.drain();
    let (connected, _) = bench.query(call)?;
    if connected as usize == BASE_LEAVES {
        return Some(call);
    }
    // Up with fewer leaves (a failed AddParty): closed before the next attempt, else the soak
    // itself would leave an extra call behind (found at cycle 107,008 once teardown requests
    // could fail too).
    bench.close_call(call);
    bench.drain();
    None
}

/// Keeps every long-lived call up with all its base leaves: a call a failure closed (or that
/// lost a base leaf to a failed request) is closed and made again. `None` if the driver will
/// not make them (the run then ends).
fn restore_calls(bench: &mut Bench, calls: &mut [Option<u64>], remade: &mut u64) -> Option<()> {
    for (index, slot) in calls.iter_mut().enumerate() {
        let healthy = slot.and_then(|call| bench.query(call)).is_some_and(|(c, _)| c as usize == BASE_LEAVES);
        if healthy {
            continue;
        }
        if let Some(call) = slot.take() {
            bench.close_call(call);
            bench.drain();
        }
        // A failure may fail the make-call itself: try a few times.
        for _ in 0..8 {
            if let Some(call) = make_long_lived(bench, index) {
                *slot = Some(call);
                *remade += 1;
                break;
            }
        }
        slot.as_ref()?;
    }
    Some(())
}

/// The driver's failed requests (READ_COUNTERS).
fn failed_requests(bench: &mut Bench) -> Option<u64> {
    let input = partyline_ioctl::request::encode_read_counters();
    let (status, out) = bench.send(partyline_ioctl::IOCTL_PARTYLINE_READ_COUNTERS, &input, 4096)?;
    let c = (status == 0).then(|| partyline_ioctl::decode_counters_response(&out).ok()).flatten()?;
    Some(c.calls_failed + c.parties_failed + c.drop_failures + c.close_failures + c.delete_failures)
}

fn read_census(bench: &mut Bench) -> Option<Census> {
    ndis_sim::scenario::audit::read_state(bench).ok()
}

/// The tables' live counts and the queued work, which must return to the baseline.
fn shape(census: &Census) -> ([u32; 4], u64) {
    (census.tables.map(|t| t.live), census.work.total())
}

/// Runs a soak of `cycles` cycles (rounded up to whole rounds) on `seed`; `warmup` cycles first,
/// after which the baseline is taken. The problems go into the verdict of the run.
pub fn soak(seed: u64, cycles: u64, warmup: u64, special_pool: bool) -> (SoakFigures, Verdict) {
    let mut rng = Rng::new(seed ^ 0x50A4_C7C1);
    let mut bench = Bench::new(seed, 2, policy(special_pool), &[]);
    // A long run: more host time and work than a campaign run may take; the log is cleared at
    // each checkpoint (it would outgrow the memory cap), so a stop reports the last stretch.
    let world = bench.sim.world().clone();
    world.set_caps(ndis_sim::kernel::Caps {
        host_time: std::time::Duration::from_secs(6 * 3600),
        work_items: u64::MAX,
        ..world.caps()
    });
    bench.sim.world().set_replay(format!(
        "cargo run --release -- campaign --only soak --first-seed {seed} --cycles {cycles}"
    ));
    let mut figures = SoakFigures::default();
    let mut problems = Vec::new();
    let mut calls: Vec<Option<u64>> = vec![None; CALLS];
    let mut baseline: Option<Census> = None;
    if !bench.loaded() || restore_calls(&mut bench, &mut calls, &mut figures.calls_remade).is_none() {
        problems.push("the long-lived calls could not be made".to_string());
    }
    figures.calls_remade = 0;
    let mut cycle = 0;
    while problems.is_empty() && cycle < cycles && bench.sim.stop().is_none() {
        // A round: one leaf added to each call, then each dropped.
        let added: Vec<(usize, u64)> = calls
            .iter()
            .enumerate()
            .filter_map(|(i, call)| Some((i, bench.add_party((*call)?, &leaf_of(i, BASE_LEAVES))?)))
            .collect();
        if rng.below(PNP_ONE_IN_ROUNDS) == 0 {
            // The adds are in flight: the pause waits for them, the restart resumes what it held.
            use ndis_sim::ndis::pnp::PnpStep;
            let pair = if rng.below(2) == 0 {
                [PnpStep::Pause, PnpStep::Restart]
            } else {
                [PnpStep::PowerDown, PnpStep::PowerUp]
            };
            for step in pair {
                match bench.sim.pnp(0, step) {
                    Ok(()) => figures.pnp_events += 1,
                    Err(why) => problems.push(format!("cycle {cycle}: PnP {step:?} not delivered: {why}")),
                }
            }
        }
        bench.drain();
        for (index, party) in added {
            let address = leaf_of(index, BASE_LEAVES);
            match rng.below(REMOTE_DROP_ONE_IN * CROSSING_ONE_IN) {
                // The network drops it.
                n if n < CROSSING_ONE_IN => match network_party(&bench, &address) {
                    Some((network, true)) => {
                        bench.sim.remote_drop(network);
                        figures.remote_drops += 1;
                    }
                    _ => {
                        bench.drop_party(party);
                        figures.local_drops += 1;
                    }
                },
                // The driver drops it and the network's DROP PARTY crosses that drop.
                n if n == CROSSING_ONE_IN => {
                    bench.drop_party(party);
                    figures.local_drops += 1;
                    if let Some((network, _)) = network_party(&bench, &address) {
                        bench.sim.remote_drop(network);
                        figures.crossings += 1;
                    }
                }
                _ => {
                    bench.drop_party(party);
                    figures.local_drops += 1;
                }
            }
        }
        bench.drain();
        cycle += CALLS as u64;
        // Forget the ids of parties long gone (the bench remembers every id it was given).
        bench.parties.clear();
        if cycle % CHECKPOINT < CALLS as u64 || cycle >= cycles {
            if restore_calls(&mut bench, &mut calls, &mut figures.calls_remade).is_none() {
                problems.push(format!("cycle {cycle}: a long-lived call could not be made again"));
                break;
            }
            bench.calls.retain(|c| calls.contains(&Some(*c)));
            figures.log_entries += bench.sim.world().clear_log() as u64;
            let Some(census) = read_census(&mut bench) else {
                problems.push(format!("cycle {cycle}: READ_STATE failed"));
                break;
            };
            match &baseline {
                None if cycle >= warmup => {
                    figures.high_water_after_warmup = bench.sim.ndis().pool_high_water();
                    baseline = Some(census);
                }
                Some(base) if shape(&census) != shape(base) => problems.push(format!(
                    "cycle {cycle}: the driver's tables did not return to their baseline: (bindings, address \
                     families, calls, parties) live {:?} with {} queued, baseline {:?} with {} queued",
                    shape(&census).0,
                    shape(&census).1,
                    shape(base).0,
                    shape(base).1
                )),
                _ => {}
            }
        }
    }
    figures.cycles = cycle;
    figures.high_water_at_end = bench.sim.ndis().pool_high_water();
    let base = baseline.unwrap_or_default();
    figures.baseline_live = base.tables.map(|t| u64::from(t.live));
    // One chunk of the driver's largest table.
    figures.allowed_growth =
        TABLES.iter().map(|t| CHUNK_LEN as u64 * u64::from(base.table(*t).slot_bytes)).max().unwrap_or(0);
    if baseline.is_some() {
        problems.extend(figures.growth_problem());
        let parties = base.table(Table::Parties);
        let expected = (CALLS * BASE_LEAVES) as u32;
        if parties.live != expected {
            problems.push(format!("baseline: {} parties live, {expected} expected", parties.live));
        }
    } else if problems.is_empty() {
        problems.push(format!("{cycle} cycles never reached the end of warm-up ({warmup} cycles)"));
    }
    figures.ioctls = bench.ioctls;
    figures.failed_requests = failed_requests(&mut bench).unwrap_or(0);
    let mut verdict = bench.finish();
    verdict.violations.extend(problems.into_iter().map(|p| format!("SOAK {p}")));
    (figures, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One chunk of growth after warm-up is allowed (a table may need one more chunk at any time);
    /// more is a driver whose memory is not flat.
    #[test]
    fn the_high_water_mark_may_grow_by_one_chunk_after_warm_up() {
        let figures = |at_end| SoakFigures {
            high_water_after_warmup: 70_000,
            high_water_at_end: at_end,
            allowed_growth: 14_336,
            ..SoakFigures::default()
        };
        assert_eq!(figures(70_000).growth_problem(), None);
        assert_eq!(figures(84_336).growth_problem(), None);
        let problem = figures(84_337).growth_problem().expect("grew by more than a chunk");
        assert!(problem.contains("grew by 14337 bytes after warm-up (70000 -> 84337)"), "{problem}");
    }

    #[test]
    fn every_call_has_leaves_of_its_own() {
        let mut all: Vec<_> =
            (0..CALLS).flat_map(|c| (0..=BASE_LEAVES).map(move |n| leaf_of(c, n))).collect();
        all.sort_by_key(|l| l.as_bytes().to_vec());
        all.dedup();
        assert_eq!(all.len(), CALLS * (BASE_LEAVES + 1));
    }
}
