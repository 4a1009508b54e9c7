//! The driver's own state, counted: live objects and memory per table, queued work, and refused
//! events split by why they were refused. Read-only; the control device reports it
//! (`IOCTL_PARTYLINE_READ_STATE`) so that a test bench can check that a teardown leaves every
//! table empty and that no event was refused unexpectedly.
//!
//! Flow: [`crate::Engine::census`] fills a [`Census`] under the driver's lock, in O(1) (tables
//! and work queues know their lengths); [`Refusals`] is kept by the engine as it refuses, beside
//! the total in [`crate::trace::Counters::refused`].

use crate::engine::{Error, Table};
use crate::trace::ObjectKind;

/// Why an event was refused: [`Error`] without its data (memory shortages are not refusals).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum RefusalKind {
    /// No live object has the id (never existed, already freed, a stale context).
    UnknownId = 0,
    /// Not legal in the object's state.
    InvalidState = 1,
    /// The object is being torn down.
    Closing = 2,
    /// Not the address family partyline uses.
    UnsupportedAddressFamily = 3,
    /// A call with no leaf.
    NoLeaves = 4,
}

impl RefusalKind {
    /// Every kind, in wire order.
    pub const ALL: [RefusalKind; 5] = [
        RefusalKind::UnknownId,
        RefusalKind::InvalidState,
        RefusalKind::Closing,
        RefusalKind::UnsupportedAddressFamily,
        RefusalKind::NoLeaves,
    ];

    /// The kind of a refused `error`; `None` for a memory shortage (asked for, not refused).
    pub const fn of(error: Error) -> Option<RefusalKind> {
        match error {
            Error::NeedMemory(..) => None,
            Error::UnknownId(_) => Some(RefusalKind::UnknownId),
            Error::InvalidState(_) => Some(RefusalKind::InvalidState),
            Error::Closing => Some(RefusalKind::Closing),
            Error::UnsupportedAddressFamily => Some(RefusalKind::UnsupportedAddressFamily),
            Error::NoLeaves => Some(RefusalKind::NoLeaves),
        }
    }

    /// The name a scenario's `expect_refusals` and the `partyline state` command use.
    pub const fn name(self) -> &'static str {
        match self {
            RefusalKind::UnknownId => "unknown_id",
            RefusalKind::InvalidState => "invalid_state",
            RefusalKind::Closing => "closing",
            RefusalKind::UnsupportedAddressFamily => "unsupported_address_family",
            RefusalKind::NoLeaves => "no_leaves",
        }
    }
}

/// Object kinds in wire order (the index of [`Refusals::counts`]' inner arrays).
pub const OBJECT_KINDS: [ObjectKind; 4] =
    [ObjectKind::Binding, ObjectKind::Af, ObjectKind::Call, ObjectKind::Party];

/// Refused events by [`RefusalKind`] and [`ObjectKind`]; the cells add up to
/// [`crate::trace::Counters::refused`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Refusals {
    /// `counts[kind as usize][object kind - 1]`.
    pub counts: [[u64; OBJECT_KINDS.len()]; RefusalKind::ALL.len()],
}

impl Refusals {
    pub const ZERO: Refusals = Refusals { counts: [[0; OBJECT_KINDS.len()]; RefusalKind::ALL.len()] };

    /// Counts one refused event (nothing for a memory shortage).
    pub fn count(&mut self, object: ObjectKind, error: Error) {
        let Some(kind) = RefusalKind::of(error) else { return };
        let row = &mut self.counts[kind as usize % RefusalKind::ALL.len()];
        row[(object as usize).wrapping_sub(1) % OBJECT_KINDS.len()] += 1;
    }

    /// Refusals of `kind`, over every object kind.
    pub fn of_kind(&self, kind: RefusalKind) -> u64 {
        self.counts[kind as usize].iter().sum()
    }

    /// Every refusal.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }
}

/// One table: its live objects and the memory it holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TableCensus {
    /// Objects in the table.
    pub live: u32,
    /// Chunks of slots lent to it (each [`crate::slab::CHUNK_LEN`] slots).
    pub chunks: u32,
    /// Entries of its chunk directory.
    pub directory: u32,
    /// Bytes per slot (so a chunk is `CHUNK_LEN * slot_bytes` bytes, a directory entry 8).
    pub slot_bytes: u32,
}

impl TableCensus {
    /// Bytes of pool the table holds: its chunks and its directory.
    pub fn bytes(&self) -> u64 {
        u64::from(self.chunks) * crate::slab::CHUNK_LEN as u64 * u64::from(self.slot_bytes)
            + u64::from(self.directory) * 8
    }
}

/// Work the engine has queued and not yet done.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct WorkCensus {
    /// Calls in the call work queue.
    pub calls: u32,
    /// Address families in the AF work queue.
    pub afs: u32,
    /// Parties waiting for their `NdisClDropParty`.
    pub parties: u32,
    /// Requests in the deferred ring (notify-close-AF completions, unbind wake-ups, unbinds).
    pub deferred: u32,
}

impl WorkCensus {
    pub fn total(&self) -> u64 {
        u64::from(self.calls) + u64::from(self.afs) + u64::from(self.parties) + u64::from(self.deferred)
    }
}

/// Tables in [`Census::tables`] order.
pub const TABLES: [Table; 4] = [Table::Bindings, Table::AddressFamilies, Table::Calls, Table::Parties];

/// The name of a table, as reports print it.
pub const fn table_name(table: Table) -> &'static str {
    match table {
        Table::Bindings => "bindings",
        Table::AddressFamilies => "address families",
        Table::Calls => "calls",
        Table::Parties => "parties",
    }
}

/// The driver's own state at one moment.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Census {
    /// Bindings, address families, calls, parties ([`TABLES`] order).
    pub tables: [TableCensus; 4],
    pub work: WorkCensus,
    /// [`crate::trace::Counters`]' refusal and failure counters.
    pub refused: u64,
    pub lost_actions: u64,
    pub drop_failures: u64,
    pub close_failures: u64,
    pub delete_failures: u64,
    /// `refused`, split.
    pub refusals: Refusals,
}

impl Census {
    /// The census of `table`.
    pub fn table(&self, table: Table) -> TableCensus {
        self.tables[table as usize]
    }

    /// No object in any table and no work queued.
    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|t| t.live == 0) && self.work.total() == 0
    }

    /// Bytes of pool every table holds.
    pub fn bytes(&self) -> u64 {
        self.tables.iter().map(TableCensus::bytes).sum()
    }
}
