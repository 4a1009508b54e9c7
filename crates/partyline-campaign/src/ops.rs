//! The operations of a random run, recorded so that a failing run can be replayed without its
//! random generator and minimised (delta debugging) to the few operations that still fail.
//!
//! An operation keeps the index it picked among the objects known at that moment (calls, parties,
//! live network parties, active network calls), not the object itself; applied again it picks
//! `index % count` among the objects known then, so a shorter sequence stays meaningful. Replaying
//! the whole recorded sequence repeats the run exactly (the simulation is seeded).
//!
//! Text form (what a failure report prints and `--replay` takes), operations separated by `;`:
//! `make 1 4 7` (leaves), `list`, `add 2 5` (call index, leaf), `drop 3`, `close 0`, `remote-drop 1`,
//! `release 0 ok|fail`, `cross-drop 1` and `cross-release 0 ok|fail` (the network crossing a request in
//! flight), `af-register`, `query 2`, `receive 1|adapter 3 owned|lent passive|dispatch`, `close-af`, `unbind`,
//! `pnp pause|restart|power-down|power-up|query-remove|cancel-remove|reconfigure|bind-list|capabilities`,
//! `advance 1200`, `drain`.

use std::fmt;

use ndis_sim::ndis::pnp::{Operational, PnpStep};
use ndis_sim::ndis::Rng;

use crate::bench::{leaf, Bench};

/// One operation of a random run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// IOCTL_PARTYLINE_MAKE_CALL on the first address family to these leaves (1..=10).
    MakeCall { leaves: Vec<u8> },
    /// IOCTL_PARTYLINE_LIST_BINDINGS only (a MakeCall that found no address family).
    ListBindings,
    /// IOCTL_PARTYLINE_ADD_PARTY: leaf `leaf` to the call at `call` among those handed out.
    AddParty { call: u64, leaf: u8 },
    /// IOCTL_PARTYLINE_DROP_PARTY of the party at `party` among those known.
    DropParty { party: u64 },
    /// IOCTL_PARTYLINE_CLOSE_CALL.
    CloseCall { call: u64 },
    /// The network drops the live party at `party` (ProtocolClIncomingDropParty or, for the last
    /// one, ProtocolClIncomingCloseCall).
    RemoteDrop { party: u64 },
    /// The network releases the active call at `vc`.
    RemoteRelease { vc: u64, failure: bool },
    /// The network drops the party at `party` among those with a request in flight (being added,
    /// dropped, or closing with its call): a crossing the call manager settles (ndis::crossing).
    RemoteDropInFlight { party: u64 },
    /// The network releases the call at `vc` among those with a request in flight (MakeCall
    /// pending, closing, already released): a crossing.
    ReleaseInFlight { vc: u64, failure: bool },
    /// The call manager registers its address families again.
    AfRegister,
    /// IOCTL_PARTYLINE_QUERY_CALL (learns the call's party ids).
    Query { call: u64 },
    /// The miniport indicates `count` received lists on the active call at `vc` (or, `None`,
    /// on the binding): lent (NDIS_RECEIVE_FLAGS_RESOURCES) or owned until returned, at PASSIVE
    /// or DISPATCH.
    Receive { vc: Option<u64>, count: u32, lent: bool, dispatch: bool },
    /// The call manager closes the address family (ProtocolClNotifyCloseAf).
    NotifyCloseAf,
    /// NDIS unbinds the adapter.
    Unbind,
    /// NDIS sends a PnP step's events to the adapter's binding (nothing when the step does not
    /// apply in the binding's state then).
    Pnp { step: PnpStep },
    /// Virtual time moves on by this many ticks, running the work due.
    Advance { ticks: u64 },
    /// Every queued work item runs.
    Drain,
}

fn pick_index(rng: &mut Rng, count: usize) -> Option<u64> {
    (count > 0).then(|| rng.below(count as u64))
}

fn at(items: &[u64], index: u64) -> Option<u64> {
    (!items.is_empty()).then(|| items[(index % items.len() as u64) as usize])
}

/// Draws the next operations of a random run from `rng`, looking at what `bench` knows (the
/// same draws, in the same order, as the campaigns always made), and carries them out: none when
/// there is nothing to do this step (no call to add to, say), and after a single-threaded step,
/// sometimes time. `threaded`: other host threads deliver the work, so neither time nor the
/// queue is touched from here, and there is no unbind.
pub fn step(bench: &mut Bench, rng: &mut Rng, threaded: bool) -> Vec<Op> {
    let mut ops = Vec::with_capacity(2);
    let op = match rng.below(100) {
        // The address family is asked for first (an IOCTL), as `apply` does.
        0..=19 => Some(match bench.af() {
            Some(af) => {
                let leaves: Vec<u8> = (0..1 + rng.below(4)).map(|_| 1 + rng.below(10) as u8).collect();
                make_call(bench, af, &leaves);
                ops.push(Op::MakeCall { leaves });
                None
            }
            None => Some(Op::ListBindings),
        })
        .flatten(),
        20..=34 => pick_index(rng, bench.calls.len())
            .map(|call| Op::AddParty { call, leaf: 1 + rng.below(10) as u8 }),
        35..=46 => pick_index(rng, bench.parties.len()).map(|party| Op::DropParty { party }),
        47..=55 => pick_index(rng, bench.calls.len()).map(|call| Op::CloseCall { call }),
        56..=65 => pick_index(rng, bench.sim.live_parties().len()).map(|party| Op::RemoteDrop { party }),
        66..=71 => pick_index(rng, bench.sim.active_calls().len())
            .map(|vc| Op::RemoteRelease { vc, failure: rng.below(2) != 0 }),
        72..=77 => pick_index(rng, bench.calls.len()).map(|call| Op::Query { call }),
        78..=79 => {
            let calls = bench.sim.active_calls().len();
            let vc = if rng.below(4) == 0 { None } else { pick_index(rng, calls) };
            Some(Op::Receive {
                vc,
                count: 1 + rng.below(4) as u32,
                lent: rng.below(4) == 0,
                dispatch: rng.below(2) == 0,
            })
        }
        80..=81 => Some(Op::NotifyCloseAf),
        // The network crosses the driver's own requests (pending adds, drops, closes).
        95 | 96 => {
            pick_index(rng, bench.sim.parties_in_flight().len()).map(|party| Op::RemoteDropInFlight { party })
        }
        97 => pick_index(rng, bench.sim.calls_in_flight().len())
            .map(|vc| Op::ReleaseInFlight { vc, failure: rng.below(2) != 0 }),
        98 if rng.below(4) == 0 => Some(Op::AfRegister),
        82 if !threaded => Some(Op::Unbind),
        83..=94 if !threaded => Some(Op::Advance { ticks: rng.below(3_000) }),
        _ if !threaded => Some(Op::Drain),
        _ => None,
    };
    if let Some(op) = op {
        if op != Op::ListBindings {
            op.apply(bench);
        }
        ops.push(op);
    }
    if !threaded && rng.below(2) == 0 {
        let op = Op::Advance { ticks: rng.below(500) };
        op.apply(bench);
        ops.push(op);
    }
    ops
}

/// Sometimes (3 steps in 100) a PnP step for the binding, drawn from `rng` — a generator of its
/// own, so the other operations of a seed are drawn as they always were — and carried out at
/// once, whatever requests are in flight: a powered-down adapter powers up, a queried removal
/// is cancelled, a paused binding restarts; a running one is paused, powered down, queried for
/// removal, reconfigured, sent its bind list or its wake-up capabilities.
pub fn pnp_step(bench: &mut Bench, rng: &mut Rng) -> Option<Op> {
    if rng.below(100) >= 3 {
        return None;
    }
    let (operational, powered, remove_queried) = bench.sim.pnp_state(0)?;
    let step = if !powered {
        PnpStep::PowerUp
    } else if remove_queried {
        PnpStep::CancelRemove
    } else if operational == Operational::Paused {
        PnpStep::Restart
    } else {
        match rng.below(100) {
            0..=34 => PnpStep::Pause,
            35..=54 => PnpStep::PowerDown,
            55..=69 => PnpStep::QueryRemove,
            70..=79 => PnpStep::Reconfigure,
            80..=89 => PnpStep::BindList,
            _ => PnpStep::Capabilities,
        }
    };
    let op = Op::Pnp { step };
    op.apply(bench);
    Some(op)
}

fn make_call(bench: &mut Bench, af: u64, leaves: &[u8]) {
    let leaves: Vec<_> = leaves.iter().map(|&n| leaf(n)).collect();
    bench.make_call(af, &leaves);
}

impl Op {
    /// Carries the operation out on `bench`. An operation whose object does not exist (any more)
    /// does nothing.
    pub fn apply(&self, bench: &mut Bench) {
        match self {
            Op::MakeCall { leaves } => {
                if let Some(af) = bench.af() {
                    make_call(bench, af, leaves);
                }
            }
            Op::ListBindings => {
                bench.af();
            }
            Op::AddParty { call, leaf: n } => {
                if let Some(call) = at(&bench.calls, *call) {
                    bench.add_party(call, &leaf(*n));
                }
            }
            Op::DropParty { party } => {
                if let Some(party) = at(&bench.parties, *party) {
                    bench.drop_party(party);
                }
            }
            Op::CloseCall { call } => {
                if let Some(call) = at(&bench.calls, *call) {
                    bench.close_call(call);
                }
            }
            Op::RemoteDrop { party } => {
                if let Some(party) = at(&bench.sim.live_parties(), *party) {
                    bench.sim.remote_drop(party);
                }
            }
            Op::RemoteRelease { vc, failure } => {
                if let Some(vc) = at(&bench.sim.active_calls(), *vc) {
                    let status =
                        if *failure { ndis_sys::NDIS_STATUS_FAILURE } else { ndis_sys::NDIS_STATUS_SUCCESS };
                    bench.sim.remote_release(vc, status);
                }
            }
            Op::RemoteDropInFlight { party } => {
                if let Some(party) = at(&bench.sim.parties_in_flight(), *party) {
                    bench.sim.remote_drop(party);
                }
            }
            Op::ReleaseInFlight { vc, failure } => {
                if let Some(vc) = at(&bench.sim.calls_in_flight(), *vc) {
                    let status =
                        if *failure { ndis_sys::NDIS_STATUS_FAILURE } else { ndis_sys::NDIS_STATUS_SUCCESS };
                    bench.sim.remote_release(vc, status);
                }
            }
            Op::AfRegister => bench.sim.register_afs_again(0),
            Op::Query { call } => {
                if let Some(call) = at(&bench.calls, *call) {
                    bench.query(call);
                }
            }
            Op::Receive { vc, count, lent, dispatch } => {
                let indication = ndis_sim::ndis::receive::Indication {
                    count: *count,
                    resources: *lent,
                    irql: if *dispatch {
                        ndis_sim::kernel::DISPATCH_LEVEL
                    } else {
                        ndis_sim::kernel::PASSIVE_LEVEL
                    },
                };
                // A VC or binding that is gone refuses the indication (the simulation's check).
                let _ = match vc {
                    Some(vc) => match at(&bench.sim.active_calls(), *vc) {
                        Some(vc) => bench.sim.indicate_receive_on_vc(vc, indication),
                        None => Ok(()),
                    },
                    None => bench.sim.indicate_receive_on_binding(0, indication),
                };
            }
            Op::NotifyCloseAf => bench.sim.notify_close_af(0),
            Op::Unbind => {
                bench.sim.unbind(0);
                // The unbind ran until idle: the driver's tables hold nothing of it.
                let all_unbound = bench.sim.all_unbound();
                bench.check_driver_state(all_unbound, false, "partyline.sys!ProtocolUnbindAdapterEx");
            }
            Op::Pnp { step } => {
                // A step that does not apply in the binding's state is skipped.
                let _ = bench.sim.pnp(0, *step);
            }
            Op::Advance { ticks } => bench.advance(*ticks),
            Op::Drain => bench.drain(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::MakeCall { leaves } => {
                f.write_str("make")?;
                leaves.iter().try_for_each(|n| write!(f, " {n}"))
            }
            Op::ListBindings => f.write_str("list"),
            Op::AddParty { call, leaf } => write!(f, "add {call} {leaf}"),
            Op::DropParty { party } => write!(f, "drop {party}"),
            Op::CloseCall { call } => write!(f, "close {call}"),
            Op::RemoteDrop { party } => write!(f, "remote-drop {party}"),
            Op::RemoteRelease { vc, failure } => {
                write!(f, "release {vc} {}", if *failure { "fail" } else { "ok" })
            }
            Op::RemoteDropInFlight { party } => write!(f, "cross-drop {party}"),
            Op::ReleaseInFlight { vc, failure } => {
                write!(f, "cross-release {vc} {}", if *failure { "fail" } else { "ok" })
            }
            Op::AfRegister => f.write_str("af-register"),
            Op::Query { call } => write!(f, "query {call}"),
            Op::Receive { vc, count, lent, dispatch } => write!(
                f,
                "receive {} {count} {} {}",
                vc.map_or("adapter".to_string(), |vc| vc.to_string()),
                if *lent { "lent" } else { "owned" },
                if *dispatch { "dispatch" } else { "passive" }
            ),
            Op::NotifyCloseAf => f.write_str("close-af"),
            Op::Unbind => f.write_str("unbind"),
            Op::Pnp { step } => write!(f, "pnp {}", step.name()),
            Op::Advance { ticks } => write!(f, "advance {ticks}"),
            Op::Drain => f.write_str("drain"),
        }
    }
}

/// Operations in their text form, separated by `; `.
pub fn render(ops: &[Op]) -> String {
    ops.iter().map(Op::to_string).collect::<Vec<_>>().join("; ")
}

/// Parses the text form; the error names the operation that is wrong and why.
pub fn parse(text: &str) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    for (n, part) in text.split(';').map(str::trim).enumerate() {
        if part.is_empty() {
            continue;
        }
        let at = |what: String| format!("operation {} `{part}`: {what}", n + 1);
        let words: Vec<&str> = part.split_whitespace().collect();
        let number = |i: usize| -> Result<u64, String> {
            let word = words.get(i).ok_or_else(|| at("too few arguments".into()))?;
            word.parse().map_err(|_| at(format!("`{word}` is not a number")))
        };
        let leaf_number = |i: usize| -> Result<u8, String> {
            match number(i)? {
                value @ 1..=10 => Ok(value as u8),
                other => Err(at(format!("leaf {other} is not one of 1..=10"))),
            }
        };
        let arity = |expected: usize| -> Result<(), String> {
            if words.len() == expected + 1 {
                Ok(())
            } else {
                Err(at(format!("`{}` takes {expected} argument(s)", words[0])))
            }
        };
        let op = match words[0] {
            "make" => {
                if !(2..=5).contains(&words.len()) {
                    return Err(at("`make` takes 1 to 4 leaves".into()));
                }
                Op::MakeCall { leaves: (1..words.len()).map(leaf_number).collect::<Result<_, _>>()? }
            }
            "list" => {
                arity(0)?;
                Op::ListBindings
            }
            "add" => {
                arity(2)?;
                Op::AddParty { call: number(1)?, leaf: leaf_number(2)? }
            }
            "drop" => {
                arity(1)?;
                Op::DropParty { party: number(1)? }
            }
            "close" => {
                arity(1)?;
                Op::CloseCall { call: number(1)? }
            }
            "remote-drop" => {
                arity(1)?;
                Op::RemoteDrop { party: number(1)? }
            }
            "release" => {
                arity(2)?;
                let failure = match words[2] {
                    "ok" => false,
                    "fail" => true,
                    other => return Err(at(format!("`{other}` is not ok or fail"))),
                };
                Op::RemoteRelease { vc: number(1)?, failure }
            }
            "cross-drop" => {
                arity(1)?;
                Op::RemoteDropInFlight { party: number(1)? }
            }
            "cross-release" => {
                arity(2)?;
                let failure = match words[2] {
                    "ok" => false,
                    "fail" => true,
                    other => return Err(at(format!("`{other}` is not ok or fail"))),
                };
                Op::ReleaseInFlight { vc: number(1)?, failure }
            }
            "af-register" => {
                arity(0)?;
                Op::AfRegister
            }
            "query" => {
                arity(1)?;
                Op::Query { call: number(1)? }
            }
            "receive" => {
                arity(4)?;
                let vc = if words[1] == "adapter" { None } else { Some(number(1)?) };
                let count = match number(2)? {
                    value @ 1..=64 => value as u32,
                    other => return Err(at(format!("{other} lists: 1 to 64"))),
                };
                let lent = match words[3] {
                    "lent" => true,
                    "owned" => false,
                    other => return Err(at(format!("`{other}` is not lent or owned"))),
                };
                let dispatch = match words[4] {
                    "dispatch" => true,
                    "passive" => false,
                    other => return Err(at(format!("`{other}` is not passive or dispatch"))),
                };
                Op::Receive { vc, count, lent, dispatch }
            }
            "close-af" => {
                arity(0)?;
                Op::NotifyCloseAf
            }
            "unbind" => {
                arity(0)?;
                Op::Unbind
            }
            "pnp" => {
                arity(1)?;
                let step = PnpStep::parse(words[1])
                    .ok_or_else(|| at(format!("`{}` is not a PnP step ({})", words[1], PnpStep::names())))?;
                Op::Pnp { step }
            }
            "advance" => {
                arity(1)?;
                Op::Advance { ticks: number(1)? }
            }
            "drain" => {
                arity(0)?;
                Op::Drain
            }
            other => {
                return Err(at(format!(
                    "unknown operation `{other}` (make, list, add, drop, close, remote-drop, release, \
                     cross-drop, cross-release, af-register, query, receive, close-af, unbind, pnp, advance, drain)"
                )))
            }
        };
        ops.push(op);
    }
    Ok(ops)
}

/// Delta debugging (Zeller's ddmin, complements only): a subsequence of `items` for which
/// `fails` still holds and from which no single element can be removed (when the budget allows),
/// calling `fails` at most `budget` times. `fails(items)` must hold on entry.
pub fn minimise<T: Clone>(items: &[T], budget: usize, mut fails: impl FnMut(&[T]) -> bool) -> Vec<T> {
    let mut current = items.to_vec();
    let mut chunks = 2usize;
    let mut tries = 0usize;
    while current.len() >= 2 && tries < budget {
        let size = current.len().div_ceil(chunks);
        let mut reduced = false;
        let mut start = 0;
        while start < current.len() && tries < budget {
            let end = (start + size).min(current.len());
            let candidate: Vec<T> = current[..start].iter().chain(&current[end..]).cloned().collect();
            tries += 1;
            if fails(&candidate) {
                current = candidate;
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
            start = end;
        }
        if !reduced {
            if size == 1 {
                break;
            }
            chunks = (chunks * 2).min(current.len());
        }
    }
    if current.len() == 1 && tries < budget && fails(&[]) {
        current.clear();
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let ops = vec![
            Op::MakeCall { leaves: vec![1, 4, 10] },
            Op::ListBindings,
            Op::AddParty { call: 2, leaf: 5 },
            Op::DropParty { party: 3 },
            Op::CloseCall { call: 0 },
            Op::RemoteDrop { party: 1 },
            Op::RemoteRelease { vc: 0, failure: true },
            Op::RemoteRelease { vc: 1, failure: false },
            Op::RemoteDropInFlight { party: 4 },
            Op::ReleaseInFlight { vc: 2, failure: true },
            Op::AfRegister,
            Op::Query { call: 2 },
            Op::Receive { vc: Some(1), count: 3, lent: false, dispatch: true },
            Op::Receive { vc: None, count: 1, lent: true, dispatch: false },
            Op::NotifyCloseAf,
            Op::Unbind,
            Op::Pnp { step: PnpStep::PowerDown },
            Op::Advance { ticks: 1200 },
            Op::Drain,
        ];
        let text = render(&ops);
        assert_eq!(
            text,
            "make 1 4 10; list; add 2 5; drop 3; close 0; remote-drop 1; release 0 fail; release 1 ok; cross-drop 4; \
             cross-release 2 fail; af-register; query 2; \
             receive 1 3 owned dispatch; receive adapter 1 lent passive; close-af; unbind; pnp power-down; advance 1200; drain"
        );
        assert_eq!(parse(&text), Ok(ops));
        assert_eq!(parse(" ; drain ;"), Ok(vec![Op::Drain]));
    }

    #[test]
    fn bad_text_is_refused_with_the_reason() {
        for (text, reason) in [
            ("make", "1 to 4 leaves"),
            ("make 1 2 3 4 5", "1 to 4 leaves"),
            ("make 11", "leaf 11"),
            ("add 1", "takes 2"),
            ("drop x", "`x` is not a number"),
            ("release 0 maybe", "not ok or fail"),
            ("cross-release 0 maybe", "not ok or fail"),
            ("af-register 1", "takes 0"),
            ("drain 3", "takes 0"),
            ("advance -1", "not a number"),
            ("drain; explode", "operation 2 `explode`: unknown operation"),
            ("receive 0 0 owned passive", "1 to 64"),
            ("receive 0 1 kept passive", "not lent or owned"),
            ("receive x 1 owned passive", "`x` is not a number"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn minimise_finds_the_minimal_core() {
        let items: Vec<u32> = (0..100).collect();
        let mut calls = 0;
        let core = minimise(&items, 10_000, |s| {
            calls += 1;
            s.contains(&17) && s.contains(&62) && s.contains(&63)
        });
        assert_eq!(core, [17, 62, 63]);
        assert!(calls < 200, "{calls} tries");
        // Order is kept: a failure that needs 5 before 3.
        let core = minimise(&[9, 5, 1, 3, 7], 1_000, |s| {
            let five = s.iter().position(|&x| x == 5);
            let three = s.iter().position(|&x| x == 3);
            matches!((five, three), (Some(a), Some(b)) if a < b)
        });
        assert_eq!(core, [5, 3]);
    }

    #[test]
    fn minimise_stops_at_its_budget() {
        let items: Vec<u32> = (0..64).collect();
        let mut calls = 0;
        let _ = minimise(&items, 5, |s| {
            calls += 1;
            s.contains(&0)
        });
        assert_eq!(calls, 5);
    }
}

/// Serde for a replay (`Option<Vec<Op>>`) in the text form of [`render`] and [`parse`].
pub mod text {
    use super::{parse, render, Op};

    pub fn serialize<S: serde::Serializer>(ops: &Option<Vec<Op>>, serializer: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&ops.as_deref().map(render), serializer)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<Op>>, D::Error> {
        let text: Option<String> = serde::Deserialize::deserialize(deserializer)?;
        text.map(|t| parse(&t).map_err(serde::de::Error::custom)).transpose()
    }
}
