//! The driver's own state, checked through its control device (the part that is the same on every
//! host): after a teardown no table holds an object, at any quiet moment every object is
//! accounted for by a live parent, and the driver refused exactly what the run expected.
//!
//! Read: `partyline_core::census` (what the driver counts), `partyline_ioctl::state` (the wire
//! format of IOCTL_PARTYLINE_READ_STATE).
//!
//! Flow: [`audit`] reads the census (READ_STATE) and what the driver lists (LIST_BINDINGS,
//! LIST_CALLS, the first page of QUERY_CALL per call) at a moment when nothing is in flight.
//! [`Audit::unaccounted`] then finds objects that no live parent accounts for: address families
//! of no listed binding, calls of no listed address family, and party slots beyond the parties
//! the live calls count (queued, adding, connected, dropping) — so a driver that forgets to free
//! one party slot per remote drop shows as "parties: 1 slot no call accounts for", although its
//! chunks are freed wholesale at unload and the pool shows no leak. [`Audit::left_after_teardown`]
//! is stricter, for when every binding is gone: every table empty and no work queued.
//! [`RefusalExpectation::unexpected`] compares the refusals, split by kind, with what the run
//! declared (a scenario's `expect_refusals`, or what a campaign's requests were answered with).

use super::*;
use partyline_core::census::{table_name, Census, RefusalKind, OBJECT_KINDS, TABLES};
use partyline_core::Table;

/// Objects of one table that should not be there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// `parties`, `calls`, `address families`, `bindings`, or `work queues`.
    pub table: &'static str,
    pub count: u64,
    /// What was wrong, in a sentence.
    pub detail: String,
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} — {}", self.table, self.count, self.detail)
    }
}

/// One call as the driver lists and counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedCall {
    pub id: u64,
    pub af: u64,
    /// `None` if QUERY_CALL no longer knew it (it went between the list and the query).
    pub summary: Option<CallSummary>,
}

/// The driver's state and its listings at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    pub census: Census,
    pub bindings: Vec<u64>,
    /// (address family, its binding).
    pub afs: Vec<(u64, u64)>,
    pub calls: Vec<ListedCall>,
}

/// READ_STATE.
pub fn read_state(target: &mut dyn Target) -> Result<Census, String> {
    let (status, out) =
        request(target, ioctl::IOCTL_PARTYLINE_READ_STATE, &ioctl::request::encode_read_state())?;
    if status != ioctl::error::STATUS_SUCCESS {
        return Err(format!("READ_STATE ended with {}", status_name(status)));
    }
    ioctl::decode_state_response(&out).map_err(|e| format!("READ_STATE answer: {e}"))
}

/// Reads the census and the listings. Call it when nothing is in flight (after running until
/// idle), or the listings and the census may disagree by what moved in between.
pub fn audit(target: &mut dyn Target) -> Result<Audit, String> {
    let census = read_state(target)?;
    let (mut bindings, mut afs) = (Vec::new(), Vec::new());
    let mut cursor = 0;
    loop {
        let (status, out) = request(
            target,
            ioctl::IOCTL_PARTYLINE_LIST_BINDINGS,
            &ioctl::request::encode_list_bindings(cursor),
        )?;
        if status != ioctl::error::STATUS_SUCCESS {
            return Err(format!("LIST_BINDINGS ended with {}", status_name(status)));
        }
        let page =
            ioctl::decode_list_bindings_response(&out).map_err(|e| format!("LIST_BINDINGS answer: {e:?}"))?;
        for entry in page.iter() {
            match entry {
                ListEntry::Binding { id, .. } => bindings.push(id),
                ListEntry::AddressFamily { id, binding, .. } => afs.push((id, binding)),
            }
        }
        if !page.more || page.next == cursor {
            break;
        }
        cursor = page.next;
    }
    let mut calls = Vec::new();
    for entry in list_calls(target)? {
        let (status, out) = request(
            target,
            ioctl::IOCTL_PARTYLINE_QUERY_CALL,
            &ioctl::request::encode_query_call(entry.id, 0),
        )?;
        let summary = match status {
            ioctl::error::STATUS_SUCCESS => Some(
                ioctl::decode_query_call_response(&out).map_err(|e| format!("QUERY_CALL answer: {e:?}"))?.0,
            ),
            ioctl::error::STATUS_NOT_FOUND => None,
            other => return Err(format!("QUERY_CALL ended with {}", status_name(other))),
        };
        calls.push(ListedCall { id: entry.id, af: entry.af, summary });
    }
    Ok(Audit { census, bindings, afs, calls })
}

impl Audit {
    fn live(&self, table: Table) -> u64 {
        u64::from(self.census.table(table).live)
    }

    /// Objects no live parent accounts for, and work left queued although nothing is in flight.
    /// Empty for a driver that frees what it should.
    pub fn unaccounted(&self) -> Vec<Leftover> {
        let mut found = Vec::new();
        let mut leftover = |table: Table, count: u64, detail: String| {
            if count > 0 {
                found.push(Leftover { table: table_name(table), count, detail });
            }
        };
        // The listings walk the tables themselves: a difference is a slot the walk cannot reach.
        for (table, listed) in [
            (Table::Bindings, self.bindings.len()),
            (Table::AddressFamilies, self.afs.len()),
            (Table::Calls, self.calls.len()),
        ] {
            let live = self.live(table);
            leftover(
                table,
                live.abs_diff(listed as u64),
                format!("the table holds {live} but the driver lists {listed}"),
            );
        }
        let orphans = self.afs.iter().filter(|(_, b)| !self.bindings.contains(b)).count() as u64;
        leftover(Table::AddressFamilies, orphans, "address family slot(s) of no live binding".into());
        let afs: Vec<u64> = self.afs.iter().map(|(af, _)| *af).collect();
        let orphans = self.calls.iter().filter(|c| !afs.contains(&c.af)).count() as u64;
        leftover(Table::Calls, orphans, "call slot(s) of no live address family".into());
        let counted: u64 = self
            .calls
            .iter()
            .filter_map(|c| c.summary)
            .map(|s| {
                u64::from(s.queued) + u64::from(s.adding) + u64::from(s.connected) + u64::from(s.dropping)
            })
            .sum();
        let live = self.live(Table::Parties);
        leftover(
            Table::Parties,
            live.saturating_sub(counted),
            format!(
                "party slot(s) no call accounts for: the table holds {live}, the live calls count {counted} \
                 (queued + adding + connected + dropping)"
            ),
        );
        leftover(
            Table::Parties,
            counted.saturating_sub(live),
            format!("the live calls count {counted} parties but the table holds only {live}"),
        );
        found.extend(self.queued_work("although nothing is in flight"));
        found
    }

    /// After a teardown (no binding left): every object and every queued piece of work.
    pub fn left_after_teardown(&self) -> Vec<Leftover> {
        let mut found: Vec<Leftover> = TABLES
            .iter()
            .filter(|t| self.live(**t) > 0)
            .map(|t| Leftover {
                table: table_name(*t),
                count: self.live(*t),
                detail: "still in the table after every binding was unbound".into(),
            })
            .collect();
        found.extend(self.queued_work("after every binding was unbound"));
        found
    }

    fn queued_work(&self, when: &str) -> Option<Leftover> {
        let w = self.census.work;
        (w.total() > 0).then(|| Leftover {
            table: "work queues",
            count: w.total(),
            detail: format!(
                "queued {when}: {} call(s), {} address family(ies), {} party drop(s), {} deferred request(s)",
                w.calls, w.afs, w.parties, w.deferred
            ),
        })
    }
}

/// How many refusals of each kind a run expects: `(least, most)` per [`RefusalKind`], in
/// [`RefusalKind::ALL`] order. The default expects none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RefusalExpectation {
    pub bounds: [(u64, u64); RefusalKind::ALL.len()],
}

impl RefusalExpectation {
    /// Exactly `count` refusals of `kind` (the others unchanged).
    pub fn exactly(mut self, kind: RefusalKind, count: u64) -> Self {
        self.bounds[kind as usize] = (count, count);
        self
    }

    /// What is wrong with `census`'s refusals: counts outside the bounds (with the object kinds
    /// they concerned), a split that does not add up to the total, and lost deferred requests
    /// (never expected). Empty when the driver refused exactly what was expected.
    pub fn unexpected(&self, census: &Census) -> Vec<String> {
        let mut problems = Vec::new();
        for kind in RefusalKind::ALL {
            let count = census.refusals.of_kind(kind);
            let (least, most) = self.bounds[kind as usize];
            if count < least || count > most {
                let by_object: Vec<String> = OBJECT_KINDS
                    .iter()
                    .zip(census.refusals.counts[kind as usize])
                    .filter(|(_, n)| *n > 0)
                    .map(|(object, n)| format!("{n} about a {}", object_name(*object)))
                    .collect();
                let wanted = if least == most { least.to_string() } else { format!("{least} to {most}") };
                problems.push(format!(
                    "{count} {} refusal(s){}, {wanted} expected",
                    kind.name(),
                    if by_object.is_empty() { String::new() } else { format!(" ({})", by_object.join(", ")) }
                ));
            }
        }
        if census.refusals.total() != census.refused {
            problems.push(format!(
                "the refusals by kind add up to {}, the refused counter says {}",
                census.refusals.total(),
                census.refused
            ));
        }
        if census.lost_actions > 0 {
            problems.push(format!("{} deferred request(s) found no room and were lost", census.lost_actions));
        }
        problems
    }
}

fn object_name(kind: partyline_core::trace::ObjectKind) -> &'static str {
    use partyline_core::trace::ObjectKind;
    match kind {
        ObjectKind::Binding => "binding",
        ObjectKind::Af => "address family",
        ObjectKind::Call => "call",
        ObjectKind::Party => "party",
    }
}

/// The census in a few lines, for `partyline state` and reports.
pub fn describe_state(census: &Census) -> String {
    let mut out = String::new();
    for table in TABLES {
        let t = census.table(table);
        out.push_str(&format!(
            "{:<17} {:>7} live   {:>4} chunk(s) of {} slots x {} B, directory {:>4}: {} bytes\n",
            table_name(table),
            t.live,
            t.chunks,
            partyline_core::slab::CHUNK_LEN,
            t.slot_bytes,
            t.directory,
            t.bytes()
        ));
    }
    let w = census.work;
    out.push_str(&format!(
        "queued work       {} call(s), {} address family(ies), {} party drop(s), {} deferred\n",
        w.calls, w.afs, w.parties, w.deferred
    ));
    out.push_str(&format!(
        "refused           {}{}\n",
        census.refused,
        RefusalKind::ALL
            .iter()
            .filter(|k| census.refusals.of_kind(**k) > 0)
            .map(|k| format!(", {} {}", census.refusals.of_kind(*k), k.name()))
            .collect::<String>()
    ));
    out.push_str(&format!(
        "failures          {} drop, {} close, {} VC delete; {} lost deferred request(s)\n",
        census.drop_failures, census.close_failures, census.delete_failures, census.lost_actions
    ));
    out
}
