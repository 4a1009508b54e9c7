//! The engine's state machines as a reviewable table: every transition of a binding, an address
//! family, a call and a party (old state, cause, new state) and every refusal, as traced by the
//! engine's one transition function per object, collected over fixed seeded sequences of the
//! property test's operations and compared with `tests/snapshots/transitions.txt` (as s2n-quic
//! snapshots its state machines). A change to a state machine shows up as a diff of that file;
//! regenerate it with `PARTYLINE_BLESS_TRANSITIONS=1 cargo test -p partyline-core --test transitions`
//! and review the diff.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use partyline_core::engine::{AfState, BindingState, CallState, Operational, PartyState, PnpEvent};
use partyline_core::trace::{Cause, TraceEvent, TRACE_LEN};
use partyline_core::{Id, Status};
use support::ops::{Driver, DuringVcRequest, Op};

const SEEDS: u64 = 300;
const STEPS: usize = 80;

fn binding_name(s: BindingState) -> &'static str {
    match s {
        BindingState::Opening => "Opening",
        BindingState::Open { .. } => "Open",
        BindingState::Unbinding { .. } => "Unbinding",
        BindingState::Closing => "Closing",
    }
}

fn af_name(s: AfState) -> &'static str {
    match s {
        AfState::Opening => "Opening",
        AfState::Open { .. } => "Open",
        AfState::Closing { .. } => "Closing",
        AfState::CloseAfPending { .. } => "CloseAfPending",
        AfState::Closed => "Closed",
    }
}

fn call_name(s: CallState) -> &'static str {
    match s {
        CallState::NeedVc => "NeedVc",
        CallState::CreatingVc => "CreatingVc",
        CallState::Created => "Created",
        CallState::MakeCallPending => "MakeCallPending",
        CallState::Active => "Active",
        CallState::CloseCallPending => "CloseCallPending",
        CallState::NeedDelete => "NeedDelete",
        CallState::Deleting => "Deleting",
    }
}

fn party_name(s: PartyState) -> &'static str {
    match s {
        PartyState::Queued => "Queued",
        PartyState::AddPending { drop_requested: false } => "AddPending",
        PartyState::AddPending { drop_requested: true } => "AddPending+drop",
        PartyState::Connected { .. } => "Connected",
        PartyState::DropQueued { .. } => "DropQueued",
        PartyState::DropPending => "DropPending",
        PartyState::Closing => "Closing",
    }
}

/// The last state of every live object, to show the state an object was in when it went.
#[derive(Default)]
struct Last(HashMap<(&'static str, u64), &'static str>);

impl Last {
    /// One line of the table, or `None` for events that are neither transitions, ends nor
    /// refusals.
    fn line(&mut self, event: TraceEvent) -> Option<String> {
        fn row(kind: &str, from: Option<&str>, cause: &str, to: &str) -> String {
            format!("{kind:<8} {:<16} --{cause}--> {to}", from.unwrap_or("(new)"))
        }
        let mut moved =
            |kind: &'static str, id: Id, from: Option<&'static str>, cause: Cause, to: &'static str| {
                self.0.insert((kind, id.to_u64()), to);
                row(kind, from, &format!("{cause:?}"), to)
            };
        Some(match event {
            TraceEvent::Binding { id, from, to, cause } => {
                moved("binding", id, from.map(binding_name), cause, binding_name(to))
            }
            TraceEvent::Af { id, from, to, cause } => moved("af", id, from.map(af_name), cause, af_name(to)),
            TraceEvent::Call { id, from, to, cause } => {
                moved("call", id, from.map(call_name), cause, call_name(to))
            }
            TraceEvent::Party { id, from, to, cause } => {
                moved("party", id, from.map(party_name), cause, party_name(to))
            }
            TraceEvent::Operational { from, to, cause, .. } => {
                let name = |(state, low_power): (Operational, bool)| {
                    format!("{state:?}{}", if low_power { "+low-power" } else { "" })
                };
                row("data", Some(&name(from)), &format!("{cause:?}"), &name(to))
            }
            TraceEvent::BindingGone { id, status } => self.gone("binding", id, status),
            TraceEvent::AfGone { id, status } => self.gone("af", id, status),
            TraceEvent::CallGone { id, status } => self.gone("call", id, status),
            TraceEvent::PartyGone { id, status } => self.gone("party", id, status),
            TraceEvent::Refused { kind, error, .. } => format!("refused  {kind:?}: {error:?}"),
            _ => return None,
        })
    }

    fn gone(&mut self, kind: &'static str, id: Id, status: Status) -> String {
        let from = self.0.remove(&(kind, id.to_u64()));
        let outcome = if status.is_success() { "success" } else { "failure" };
        format!("{kind:<8} {:<16} --gone ({outcome})--> (gone)", from.unwrap_or("?"))
    }
}

/// A small deterministic generator (splitmix64): the table must not depend on proptest's.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn op(&mut self) -> Op {
        let pick = self.next();
        match self.next() % 22 {
            0..=2 => Op::MakeCall { leaves: (1 + pick % 4) as u8 },
            3..=5 => Op::AddParty { pick },
            6..=8 => Op::DropParty { pick },
            9 => Op::CloseCall { pick },
            10..=14 => Op::Deliver { pick },
            15 => Op::DeliverRacingRemoteEvent { pick, remote: self.next() },
            16 | 17 => Op::RemoteDrop { pick },
            18 => Op::RemoteClose { pick, failure: self.next() & 1 == 0 },
            19 => Op::NotifyCloseAf,
            20 => Op::ReopenAf,
            _ => {
                let bits = self.next();
                Op::DuringVcRequest(DuringVcRequest {
                    pick,
                    make: bits & 1 != 0,
                    delete: bits & 2 != 0,
                    fail: bits & 4 != 0,
                })
            }
        }
    }
}

/// Every line seen over the seeded runs, each run ending with the binding's unbind.
fn table() -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for seed in 0..SEEDS {
        let mut driver = Driver::new(seed);
        let mut generator = Seeded(seed);
        let mut from = 0;
        let mut last = Last::default();
        let mut collect = |driver: &Driver, seen: &mut BTreeSet<String>| {
            let next = driver.fake.engine.trace.next_sequence();
            assert!(
                next - from <= TRACE_LEN as u64,
                "seed {seed}: an operation traced more than the ring holds"
            );
            seen.extend(driver.fake.engine.trace.since(from).filter_map(|(_, e)| last.line(e)));
            from = next;
        };
        collect(&driver, &mut seen);
        for step in 0..STEPS {
            let op = generator.op();
            driver.apply(step, &op);
            collect(&driver, &mut seen);
        }
        driver.fake.meanwhile = None;
        driver.fake.deliver_all();
        collect(&driver, &mut seen);
        // NDIS's PnP sequences on the binding, quiet now (the property test has no PnP
        // operations; partyline-core/tests/rules.rs covers a pause with set-ups in flight):
        // pause, restart, power down and back up.
        let binding = driver.binding;
        let engine = &mut driver.fake.engine;
        for event in
            [PnpEvent::Pause, PnpEvent::Restart, PnpEvent::SetPower { working: false }, PnpEvent::Pause]
        {
            let _ = engine.on_pnp_event(binding, event);
        }
        let _ = engine.on_pnp_event(binding, PnpEvent::Restart);
        let _ = engine.on_pnp_event(binding, PnpEvent::SetPower { working: true });
        collect(&driver, &mut seen);
        let binding = driver.binding;
        driver.fake.unbind(binding);
        collect(&driver, &mut seen);
        assert_eq!(driver.fake.engine.population(), [0, 0, 0, 0], "seed {seed}: leak at unbind");
    }
    seen
}

#[test]
fn the_state_machines_match_their_snapshot() {
    let seen = table();
    let mut text = String::from(
        "# partyline-core's state machines: old state --cause--> new state, per object, and the\n\
         # refusals, as traced over tests/transitions.rs's seeded runs. Regenerate with\n\
         # PARTYLINE_BLESS_TRANSITIONS=1 cargo test -p partyline-core --test transitions\n",
    );
    for line in &seen {
        let _ = writeln!(text, "{line}");
    }
    // Every state of every object is reached (a shrinking exploration cannot pass unnoticed).
    let reached = |kind: &str, state: &str| {
        seen.iter().any(|l| l.starts_with(kind) && l.ends_with(&format!("--> {state}")))
    };
    for state in ["Opening", "Open", "Unbinding", "Closing"] {
        assert!(reached("binding", state), "binding state {state} never reached");
    }
    for state in ["Opening", "Open", "Closing", "CloseAfPending", "Closed"] {
        assert!(reached("af", state), "AF state {state} never reached");
    }
    for state in [
        "NeedVc",
        "CreatingVc",
        "Created",
        "MakeCallPending",
        "Active",
        "CloseCallPending",
        "NeedDelete",
        "Deleting",
    ] {
        assert!(reached("call", state), "call state {state} never reached");
    }
    for state in
        ["Queued", "AddPending", "AddPending+drop", "Connected", "DropQueued", "DropPending", "Closing"]
    {
        assert!(reached("party", state), "party state {state} never reached");
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/transitions.txt");
    if std::env::var_os("PARTYLINE_BLESS_TRANSITIONS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != text {
        let old: BTreeSet<&str> = expected.lines().collect();
        let new: BTreeSet<&str> = text.lines().collect();
        let gone: Vec<_> = old.difference(&new).collect();
        let added: Vec<_> = new.difference(&old).collect();
        panic!(
            "the state machines changed (review, then bless with PARTYLINE_BLESS_TRANSITIONS=1):\n\
             no longer seen:\n  {}\nnewly seen:\n  {}",
            gone.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n  "),
            added.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n  ")
        );
    }
}
