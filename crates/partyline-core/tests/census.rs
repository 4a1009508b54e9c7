//! The driver's own state as the control device reports it (IOCTL_PARTYLINE_READ_STATE): live
//! objects and memory per table, queued work, refusals by kind, and the memory the engine gives
//! back at unload. The simulator's DriverState rules and the `partyline state` command read these
//! figures, so each is checked here against what the engine really holds.

mod support;

use partyline_core::census::{table_name, Census, RefusalKind, WorkCensus, TABLES};
use partyline_core::slab::Returned;
use partyline_core::{Error, Id, LentMemory, Table};
use support::{leaf, profile, Fake, Policy};

fn synchronous() -> Fake {
    Fake::new(Policy::synchronous())
}

fn make_call(fake: &mut Fake, af: Id, leaves: u32) -> Id {
    let leaves: Vec<_> = (1..=leaves).map(leaf).collect();
    let call = fake.with_memory(|e| e.make_call(af, profile(), leaves.iter().copied())).expect("make call");
    fake.settle();
    call
}

/// A census is empty only when no table holds an object and no work is queued: a binding left
/// open is not "empty" even with nothing to do, and queued work is not "empty" even with no
/// object (the DriverState_ObjectsLeft check relies on both halves).
#[test]
fn a_census_is_empty_only_with_no_object_and_no_work() {
    let mut fake = synchronous();
    assert!(fake.engine.census().is_empty(), "a new engine");
    let (binding, _af) = fake.open_binding();
    fake.settle();
    let census = fake.engine.census();
    assert_eq!(census.work.total(), 0, "settled: nothing queued");
    assert!(!census.is_empty(), "an open binding and its AF are live objects: {census:?}");
    let work_only = Census { work: WorkCensus { deferred: 1, ..WorkCensus::default() }, ..Census::default() };
    assert!(!work_only.is_empty(), "a deferred request is work left");
    fake.unbind(binding);
    assert!(fake.engine.census().is_empty(), "{:?}", fake.engine.census());
}

/// The work total is every queue's entries together (calls, address families, parties waiting
/// for their drop, deferred requests).
#[test]
fn the_work_total_adds_up_every_queue() {
    let work = WorkCensus { calls: 1, afs: 2, parties: 4, deferred: 8 };
    assert_eq!(work.total(), 15);
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let call = make_call(&mut fake, af, 3);
    fake.engine.close_call(call).expect("close");
    let census = fake.engine.census();
    assert_eq!(census.work.calls, 1, "the closing call is queued");
    assert_eq!(census.work.total(), 1, "{:?}", census.work);
}

/// The pool a census reports is the sum over the four tables of their chunks and directories,
/// and live objects are counted per table (`Engine::population` gives the same numbers).
#[test]
fn the_census_counts_objects_per_table_and_the_pool_they_hold() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    make_call(&mut fake, af, 3);
    assert_eq!(fake.engine.population(), [1, 1, 1, 3]);
    let census = fake.engine.census();
    let live: Vec<u32> = TABLES.iter().map(|t| census.table(*t).live).collect();
    assert_eq!(live, [1, 1, 1, 3]);
    let per_table: u64 = TABLES.iter().map(|t| census.table(*t).bytes()).sum();
    assert_eq!(census.bytes(), per_table);
    // One chunk of 256 slots and a directory of four entries in each table.
    let slots: u64 = TABLES.iter().map(|t| 256 * u64::from(census.table(*t).slot_bytes)).sum();
    assert_eq!(census.bytes(), slots + 4 * 4 * 8);
}

/// Refusals are counted by kind over every object kind: zero for a kind never refused, and each
/// refusal once (a declined address family is not a refusal).
#[test]
fn refusals_are_counted_by_kind() {
    let mut fake = synchronous();
    let (binding, af) = fake.open_binding();
    for _ in 0..2 {
        assert_eq!(fake.engine.make_call(af, profile(), core::iter::empty()), Err(Error::NoLeaves));
    }
    assert_eq!(fake.engine.on_af_register_notify(binding, 1, 4, 0), Err(Error::UnsupportedAddressFamily));
    let refusals = fake.engine.census().refusals;
    assert_eq!(refusals.of_kind(RefusalKind::NoLeaves), 2);
    assert_eq!(refusals.of_kind(RefusalKind::UnsupportedAddressFamily), 0, "declined, not refused");
    assert_eq!(refusals.of_kind(RefusalKind::UnknownId), 0);
    assert_eq!(refusals.total(), 2);
}

/// The names scenario files use in `expect_refusals` (scenarios/default.toml lists them) and the
/// table names the leftover reports print: one per kind and table, in wire order.
#[test]
fn refusal_kinds_and_tables_have_the_names_scenarios_and_reports_use() {
    let kinds: Vec<&str> = RefusalKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(kinds, ["unknown_id", "invalid_state", "closing", "unsupported_address_family", "no_leaves"]);
    let tables: Vec<&str> = TABLES.iter().map(|t| table_name(*t)).collect();
    assert_eq!(tables, ["bindings", "address families", "calls", "parties"]);
}

/// At unload `take_memory` gives back every chunk and directory of the four tables at once; the
/// census then shows no pool held, and the engine asks for memory again before its next object.
#[test]
fn take_memory_gives_back_every_block_of_every_table() {
    let mut fake = synchronous();
    let (binding, af) = fake.open_binding();
    make_call(&mut fake, af, 300);
    fake.unbind(binding);
    let mut blocks = [0usize; 4];
    fake.engine.take_memory(|memory| {
        let table = match memory {
            LentMemory::Bindings(_) => Table::Bindings,
            LentMemory::AddressFamilies(_) => Table::AddressFamilies,
            LentMemory::Calls(_) => Table::Calls,
            LentMemory::Parties(_) => Table::Parties,
        };
        blocks[table as usize] += 1;
    });
    // A chunk and a directory each; the parties' two chunks.
    assert_eq!(blocks, [2, 2, 2, 3]);
    let census = fake.engine.census();
    assert_eq!(census.bytes(), 0, "{census:?}");
    assert!(fake.engine.take_one_memory().is_none(), "nothing left to give back");
    assert!(matches!(fake.engine.bind(1), Err(Error::NeedMemory(Table::Bindings, _))));
}

/// The running totals the control device reports (IOCTL_PARTYLINE_READ_COUNTERS) count each
/// event once: calls asked for, made, failed (here a VC NDIS would not create) and closed; parties
/// added, dropped locally (a leaf still queued behind its SETUP too) and by the network.
#[test]
fn the_counters_count_each_event_once() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    fake.settle();
    let failing = fake.with_memory(|e| e.make_call(af, profile(), [leaf(9)])).expect("make call");
    let Some(partyline_core::Action::CreateVc { .. }) = fake.engine.poll() else { panic!("CreateVc") };
    fake.engine
        .on_vc_created(failing, partyline_core::Status::RESOURCES, partyline_core::Handle::NULL)
        .expect("no VC");
    let call = make_call(&mut fake, af, 4);
    let other = make_call(&mut fake, af, 2);
    let queued = fake.with_memory(|e| e.make_call(af, profile(), [leaf(7), leaf(8)])).expect("make");
    let waiting = fake.engine.parties_of(queued).nth(1).expect("a leaf queued behind the SETUP");
    fake.engine.drop_party(waiting).expect("drop a queued leaf");
    fake.settle();
    let parties: Vec<Id> = fake.engine.parties_of(call).collect();
    fake.engine.drop_party(parties[1]).expect("drop");
    fake.settle();
    fake.remote_drop_party(parties[2]);
    fake.engine.close_call(other).expect("close");
    fake.settle();
    let c = fake.engine.counters;
    assert_eq!((c.calls_requested, c.calls_made, c.calls_failed, c.calls_closed), (4, 3, 1, 1), "{c:?}");
    // Dropped locally: the queued leaf, one party of `call`, one of `other` before its close.
    assert_eq!((c.parties_added, c.parties_dropped_local, c.parties_dropped_remote), (4, 3, 1), "{c:?}");
}

/// A call asks for party memory only when the free slots cannot hold its leaves: a call that
/// fills a chunk exactly asks for no second chunk, and a call that needs more than the free
/// slots gets every leaf (none is left out for want of a slot).
#[test]
fn a_call_asks_for_party_memory_exactly_when_its_leaves_do_not_fit() {
    let mut fake = synchronous();
    let (_, af) = fake.open_binding();
    let full = make_call(&mut fake, af, 256);
    assert_eq!(fake.engine.census().table(Table::Parties).chunks, 1, "256 leaves fill one chunk");
    assert_eq!(fake.engine.call_info(full).map(|c| c.connected), Some(256));
    fake.engine.close_call(full).expect("close");
    fake.settle();
    let first = make_call(&mut fake, af, 100);
    let second = make_call(&mut fake, af, 200);
    assert_eq!(fake.engine.call_info(first).map(|c| c.connected), Some(100));
    assert_eq!(fake.engine.call_info(second).map(|c| c.connected), Some(200), "every leaf has its party");
    assert_eq!(fake.engine.census().table(Table::Parties).chunks, 2);
}

/// The listings of the control device walk every slot of a table, the last one of a chunk too.
#[test]
fn a_listing_reaches_the_object_in_the_last_slot_of_a_chunk() {
    let mut fake = synchronous();
    let ids: Vec<Id> = (0..256).map(|n| fake.with_memory(|e| e.bind(n)).expect("bind")).collect();
    assert_eq!(fake.engine.census().table(Table::Bindings).chunks, 1);
    let listed: Vec<Id> = fake.engine.bindings().map(|b| b.0).collect();
    assert_eq!(listed, ids);
}

/// At unload the glue frees the engine's memory one block at a time with the lock released
/// (`take_one_memory`): every chunk of every table comes back, each table's chunks before the
/// directory that names them, and then nothing more.
#[test]
fn take_one_memory_gives_back_every_chunk_before_its_directory() {
    let mut fake = synchronous();
    let (binding, af) = fake.open_binding();
    make_call(&mut fake, af, 300);
    fake.unbind(binding);
    let mut blocks = Vec::new();
    while let Some(memory) = fake.engine.take_one_memory() {
        let (table, chunk) = match memory {
            LentMemory::Bindings(m) => (Table::Bindings, matches!(m, Returned::Chunk(_))),
            LentMemory::AddressFamilies(m) => (Table::AddressFamilies, matches!(m, Returned::Chunk(_))),
            LentMemory::Calls(m) => (Table::Calls, matches!(m, Returned::Chunk(_))),
            LentMemory::Parties(m) => (Table::Parties, matches!(m, Returned::Chunk(_))),
        };
        blocks.push((table, if chunk { "chunk" } else { "directory" }));
    }
    assert_eq!(
        blocks,
        [
            (Table::Parties, "chunk"),
            (Table::Parties, "chunk"),
            (Table::Parties, "directory"),
            (Table::Calls, "chunk"),
            (Table::Calls, "directory"),
            (Table::AddressFamilies, "chunk"),
            (Table::AddressFamilies, "directory"),
            (Table::Bindings, "chunk"),
            (Table::Bindings, "directory"),
        ]
    );
    assert_eq!(fake.engine.census().bytes(), 0);
}

/// Memory taken back while objects are still alive (an unload that leaks): each table goes on
/// counting its objects while it holds a chunk, and counts none once its last chunk is gone, so
/// the census never shows objects in a table that has no memory.
#[test]
fn objects_left_at_unload_are_counted_until_their_last_chunk_goes() {
    let mut fake = synchronous();
    let (_binding, af) = fake.open_binding();
    make_call(&mut fake, af, 300);
    assert_eq!(fake.engine.population(), [1, 1, 1, 300]);
    let memory = fake.engine.take_one_memory().expect("the parties' last chunk");
    assert!(matches!(memory, LentMemory::Parties(Returned::Chunk(_))));
    assert_eq!(fake.engine.population()[3], 300, "a chunk is still lent to the parties");
    while fake.engine.take_one_memory().is_some() {}
    assert_eq!(fake.engine.population(), [0, 0, 0, 0]);
    assert!(fake.engine.census().tables.iter().all(|t| t.live == 0 && t.chunks == 0));
}
