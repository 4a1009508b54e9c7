//! The parties of every point-to-multipoint call, kept with per-call indexes so that no request
//! looks at parties it does not concern.
//!
//! Read: nf-ndis-ndiscladdparty, nf-ndis-ndiscldropparty, nf-ndis-ndisclclosecall (what the call
//! manager counts), verifier-rules.md §7.8 item 66 (the unanswered incoming drop).
//!
//! Flow: a party is [`Parties::insert`]ed when NdisClMakeCall or NdisClAddParty creates it and
//! stays for the whole run, `Gone` once dropped, closed or failed, so a stale handle is still
//! recognised. Its state changes only through [`Parties::set_state`], which keeps, per call, the
//! set of live parties, the pending adds, how many are leaving (DropPending, IncomingDropped), and
//! how many live parties each called address has; and, for the whole simulation, the parties
//! whose IncomingDropParty the client still owes an answer. Every question the call manager and
//! the verifier ask (is this leaf already on the call? how many parties stay? which incoming drop
//! is unanswered?) is then answered from these in O(1) or O(log n), with the same answer a scan
//! of every party ever created would give.

use std::cell::Cell;
use std::collections::BTreeSet;

use super::callmgr::AtmAddr;
use super::params::{Leaf, Snapshot};
use crate::fast_hash::FastMap;

/// Where a party is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartyState {
    AddPending,
    Connected,
    /// ProtocolClIncomingDropParty was indicated; the client owes NdisClDropParty.
    IncomingDropped {
        status: i32,
    },
    DropPending,
    /// Dropped, closed or failed: the handle is dead.
    Gone,
}

/// A party of a multipoint call (kept, `Gone`, for the whole run: small).
pub(crate) struct Party {
    pub vc: u64,
    pub context: usize,
    state: PartyState,
    address: AddressKey,
    /// The AddParty's parameters, until its completion has checked them ([`Parties::take_params`]).
    params: Option<Box<Snapshot>>,
    pub leave: Option<(u64, i32, u8)>,
    /// The driver's NdisPartyHandle variable of the NdisClAddParty that added it (0: none), written
    /// when the add completes ([`super::out_param`]).
    pub handle_out: usize,
    /// The leaf accepts with changed parameters (CALL_PARAMETERS_CHANGED at the completion).
    pub changed: bool,
}

impl Party {
    /// A party in `state` (normally `AddPending`), to [`Parties::insert`].
    pub fn new(
        vc: u64,
        context: usize,
        state: PartyState,
        address: AddressKey,
        params: Option<Snapshot>,
        leave: Option<(u64, i32, u8)>,
    ) -> Party {
        Party {
            vc,
            context,
            state,
            address,
            params: params.map(Box::new),
            leave,
            handle_out: 0,
            changed: false,
        }
    }

    /// Where the party is.
    pub fn state(&self) -> PartyState {
        self.state
    }

    /// Whether the party's called address is `address`.
    pub fn is_at(&self, address: &AtmAddr) -> bool {
        self.address == AddressKey::of(address)
    }
}

/// An address as a hash key without a heap copy (party addresses have at most 20 digits; a
/// longer one, which the call manager's parser never produces, is kept whole).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    Short { address_type: u32, len: u8, digits: [u8; 20] },
    Long(AtmAddr),
}

impl AddressKey {
    pub fn of(address: &AtmAddr) -> AddressKey {
        AddressKey::of_leaf(Leaf { address_type: address.address_type, digits: &address.digits })
    }

    pub fn of_leaf(leaf: Leaf<'_>) -> AddressKey {
        match u8::try_from(leaf.digits.len()) {
            Ok(len) if len <= 20 => {
                let mut digits = [0; 20];
                digits[..leaf.digits.len()].copy_from_slice(leaf.digits);
                AddressKey::Short { address_type: leaf.address_type, len, digits }
            }
            _ => AddressKey::Long(leaf.to_addr()),
        }
    }
}

/// What one call's parties are: every party it ever had (by id), and its live ones counted by
/// state and by called address.
#[derive(Default)]
pub(crate) struct CallParties {
    /// Every party ever created on the call, by id (ids only grow).
    ids: Vec<u64>,
    /// No live party lies before this position of `ids` (see [`Parties::first_alive`]).
    first_live: Cell<usize>,
    /// Live parties (not `Gone`).
    alive: usize,
    /// Live parties in `AddPending`, `DropPending`, `IncomingDropped`.
    add_pending: usize,
    drop_pending: usize,
    incoming_dropped: usize,
    /// Live parties per called address.
    addresses: FastMap<AddressKey, u32>,
}

impl CallParties {
    /// Live parties (not `Gone`).
    pub fn alive(&self) -> usize {
        self.alive
    }

    /// Live parties that are not leaving: neither `DropPending` nor `IncomingDropped`.
    pub fn staying(&self) -> usize {
        self.alive - self.drop_pending - self.incoming_dropped
    }

    /// Live parties not being dropped by the client (not `DropPending`).
    pub fn not_drop_pending(&self) -> usize {
        self.alive - self.drop_pending
    }

    /// Parties whose add has not completed.
    pub fn add_pending(&self) -> usize {
        self.add_pending
    }

    /// Whether a live party has `address`.
    pub fn has_address(&self, address: &AddressKey) -> bool {
        self.addresses.contains_key(address)
    }

    /// Counts (`enter`) or uncounts a live party in `state` among the pending adds and the
    /// leaving parties.
    fn count(&mut self, state: PartyState, enter: bool) {
        let counter = match state {
            PartyState::AddPending => &mut self.add_pending,
            PartyState::DropPending => &mut self.drop_pending,
            PartyState::IncomingDropped { .. } => &mut self.incoming_dropped,
            PartyState::Connected | PartyState::Gone => return,
        };
        if enter {
            *counter += 1;
        } else {
            *counter -= 1;
        }
    }

    fn enter(&mut self, id: u64, party: &Party) {
        if party.state == PartyState::Gone {
            return;
        }
        self.count(party.state, true);
        self.alive += 1;
        *self.addresses.entry(party.address.clone()).or_default() += 1;
        // A party that comes (back) to life before the first live position moves it back.
        if self.ids.get(self.first_live.get()).is_none_or(|first| id < *first) {
            self.first_live.set(self.ids.partition_point(|other| *other < id));
        }
    }

    fn leave(&mut self, party: &Party) {
        if party.state == PartyState::Gone {
            return;
        }
        self.count(party.state, false);
        self.alive -= 1;
        if let Some(count) = self.addresses.get_mut(&party.address) {
            *count -= 1;
            if *count == 0 {
                self.addresses.remove(&party.address);
            }
        }
    }

    /// Records that party `id` was created on this call.
    fn created(&mut self, id: u64) {
        match self.ids.last() {
            Some(last) if *last >= id => {
                // Ids only grow; kept sorted should one ever not.
                let at = self.ids.partition_point(|other| *other < id);
                if self.ids.get(at) != Some(&id) {
                    self.ids.insert(at, id);
                }
            }
            _ => self.ids.push(id),
        }
    }
}

/// Party slots by id, in chunks that never move (a run creates parties by the hundred thousand).
#[derive(Default)]
struct Slots {
    chunks: Vec<Box<[Option<Party>]>>,
}

/// Slots per chunk.
const SLOTS: usize = 1024;

impl Slots {
    /// Slot `index`, made if need be.
    fn slot(&mut self, index: usize) -> &mut Option<Party> {
        while self.chunks.len() <= index / SLOTS {
            self.chunks.push((0..SLOTS).map(|_| None).collect());
        }
        &mut self.chunks[index / SLOTS][index % SLOTS]
    }

    fn get(&self, index: usize) -> Option<&Party> {
        self.chunks.get(index / SLOTS)?[index % SLOTS].as_ref()
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut Party> {
        self.chunks.get_mut(index / SLOTS)?[index % SLOTS].as_mut()
    }
}

/// Every party the simulation created, with the indexes.
#[derive(Default)]
pub(crate) struct Parties {
    /// By id (ids are shared with bindings, AFs and VCs, so some slots are empty).
    all: Slots,
    /// Per call: the call's index in `call_list` by VC id, and the last one looked up.
    calls: FastMap<u64, usize>,
    call_list: Vec<CallParties>,
    last_call: Cell<(u64, usize)>,
    /// Parties in `IncomingDropped`: the client owes NdisClDropParty.
    incoming_dropped: BTreeSet<u64>,
    /// Live parties of every call.
    alive: usize,
    /// The parties of a call that never had one.
    none: CallParties,
}

impl Parties {
    /// Adds party `id` (a fresh id).
    pub fn insert(&mut self, id: u64, party: Party) {
        let index = usize::try_from(id).expect("ids fit in usize");
        self.call_mut(party.vc).created(id);
        self.index(id, &party, true);
        if let Some(previous) = self.all.slot(index).replace(party) {
            // Ids are never reused; keep the indexes right if one ever were.
            self.index(id, &previous, false);
        }
    }

    /// The parameters of party `id`'s AddParty, which its completion checks once; afterwards the
    /// party no longer holds them.
    pub fn take_params(&mut self, id: u64) -> Option<Snapshot> {
        let index = usize::try_from(id).ok()?;
        self.all.get_mut(index)?.params.take().map(|params| *params)
    }

    /// Party `id`, if it was ever created.
    pub fn get(&self, id: u64) -> Option<&Party> {
        usize::try_from(id).ok().and_then(|index| self.all.get(index))
    }

    /// Moves party `id` to `state`; returns its previous state (`None` if there is no such party).
    pub fn set_state(&mut self, id: u64, state: PartyState) -> Option<PartyState> {
        let index = usize::try_from(id).ok()?;
        let party = self.all.get_mut(index)?;
        let (previous, vc) = (party.state, party.vc);
        party.state = state;
        if previous != PartyState::Gone && state != PartyState::Gone {
            // Still live: only the counts by state change.
            let call = self.call_mut(vc);
            call.count(previous, false);
            call.count(state, true);
            if let PartyState::IncomingDropped { .. } = previous {
                self.incoming_dropped.remove(&id);
            }
            if let PartyState::IncomingDropped { .. } = state {
                self.incoming_dropped.insert(id);
            }
            return Some(previous);
        }
        let mut party = self.all.slot(index).take().expect("just seen");
        party.state = previous;
        self.index(id, &party, false);
        party.state = state;
        self.index(id, &party, true);
        *self.all.slot(index) = Some(party);
        Some(previous)
    }

    fn index(&mut self, id: u64, party: &Party, enter: bool) {
        if party.state == PartyState::Gone {
            return;
        }
        let call = self.call_mut(party.vc);
        if enter {
            call.enter(id, party);
            self.alive += 1;
        } else {
            call.leave(party);
            self.alive -= 1;
        }
        if let PartyState::IncomingDropped { .. } = party.state {
            if enter {
                self.incoming_dropped.insert(id);
            } else {
                self.incoming_dropped.remove(&id);
            }
        }
    }

    /// Call `vc`'s parties, made if need be.
    fn call_mut(&mut self, vc: u64) -> &mut CallParties {
        let index = match self.call_index(vc) {
            Some(index) => index,
            None => {
                self.call_list.push(CallParties::default());
                let index = self.call_list.len() - 1;
                self.calls.insert(vc, index);
                self.last_call.set((vc, index));
                index
            }
        };
        &mut self.call_list[index]
    }

    /// Where call `vc`'s parties are in `call_list` (the last call looked up is remembered: the
    /// requests of a run mostly concern one call at a time).
    #[inline]
    fn call_index(&self, vc: u64) -> Option<usize> {
        let (last, index) = self.last_call.get();
        if last == vc && index < self.call_list.len() {
            return Some(index);
        }
        let index = *self.calls.get(&vc)?;
        self.last_call.set((vc, index));
        Some(index)
    }

    /// The live party of call `vc` with the lowest id.
    pub fn first_alive(&self, vc: u64) -> Option<u64> {
        let call = &self.call_list[self.call_index(vc)?];
        let mut at = call.first_live.get();
        while let Some(&id) = call.ids.get(at) {
            if self.get(id).is_some_and(|p| p.state != PartyState::Gone) {
                break;
            }
            at += 1;
        }
        call.first_live.set(at);
        call.ids.get(at).copied()
    }

    /// The pending adds of call `vc`, by id (only a completing MakeCall asks, when the call has
    /// its first party alone).
    pub fn add_pending_ids(&self, vc: u64) -> Vec<u64> {
        let Some(index) = self.call_index(vc) else { return Vec::new() };
        let call = &self.call_list[index];
        if call.add_pending == 0 {
            return Vec::new();
        }
        let pending = |id: &&u64| self.get(**id).is_some_and(|p| p.state == PartyState::AddPending);
        call.ids[call.first_live.get()..].iter().filter(pending).copied().collect()
    }

    /// The parties of call `vc`.
    pub fn of_call(&self, vc: u64) -> &CallParties {
        self.call_index(vc).map_or(&self.none, |index| &self.call_list[index])
    }

    /// Whether no party is in `IncomingDropped`.
    pub fn no_incoming_dropped(&self) -> bool {
        self.incoming_dropped.is_empty()
    }

    /// Parties in `IncomingDropped`, by id.
    pub fn incoming_dropped(&self) -> impl Iterator<Item = u64> + '_ {
        self.incoming_dropped.iter().copied()
    }

    /// Live parties of every call.
    pub fn alive(&self) -> usize {
        self.alive
    }

    /// Every party ever created, by id.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, &Party)> + Clone + '_ {
        self.all.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter_map(move |(i, party)| party.as_ref().map(|p| ((c * SLOTS + i) as u64, p)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ndis::Rng;

    fn random_state(rng: &mut Rng) -> PartyState {
        match rng.below(5) {
            0 => PartyState::AddPending,
            1 => PartyState::Connected,
            2 => PartyState::IncomingDropped { status: rng.below(3) as i32 },
            3 => PartyState::DropPending,
            _ => PartyState::Gone,
        }
    }

    /// Every index answers what a scan of every party ever created answers (the scans the
    /// simulated call manager and verifier made before the indexes existed).
    fn check_against_scan(parties: &Parties, vcs: &[u64]) {
        let all: Vec<(u64, &Party)> = parties.iter().collect();
        for &vc in vcs {
            let on_call: Vec<&(u64, &Party)> =
                all.iter().filter(|(_, p)| p.vc == vc && p.state() != PartyState::Gone).collect();
            let index = parties.of_call(vc);
            assert_eq!(index.alive(), on_call.len(), "alive on Vc#{vc}");
            let add_pending: Vec<u64> = all
                .iter()
                .filter(|(_, p)| p.vc == vc && p.state() == PartyState::AddPending)
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(parties.add_pending_ids(vc), add_pending, "pending adds on Vc#{vc}");
            assert_eq!(index.add_pending(), add_pending.len());
            let staying = on_call
                .iter()
                .filter(|(_, p)| {
                    !matches!(p.state(), PartyState::IncomingDropped { .. } | PartyState::DropPending)
                })
                .count();
            assert_eq!(index.staying(), staying, "staying on Vc#{vc}");
            let not_drop_pending =
                on_call.iter().filter(|(_, p)| p.state() != PartyState::DropPending).count();
            assert_eq!(index.not_drop_pending(), not_drop_pending, "not drop-pending on Vc#{vc}");
            assert_eq!(parties.first_alive(vc), on_call.first().map(|(id, _)| *id), "first alive on Vc#{vc}");
            for digit in 0..4u8 {
                let address = AtmAddr { address_type: 0, digits: vec![digit; 20] };
                let scanned = on_call.iter().any(|(_, p)| p.is_at(&address));
                assert_eq!(
                    index.has_address(&AddressKey::of(&address)),
                    scanned,
                    "address {digit} on Vc#{vc}"
                );
            }
        }
        let incoming: Vec<u64> = all
            .iter()
            .filter(|(_, p)| matches!(p.state(), PartyState::IncomingDropped { .. }))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(parties.incoming_dropped().collect::<Vec<_>>(), incoming);
        assert_eq!(parties.alive(), all.iter().filter(|(_, p)| p.state() != PartyState::Gone).count());
    }

    #[test]
    fn indexes_agree_with_a_scan_of_every_party() {
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            let mut parties = Parties::default();
            let vcs = [3, 4, 9];
            let mut next_id = 10;
            for _ in 0..400 {
                if next_id == 10 || rng.chance(3_000) {
                    next_id += 1 + rng.below(2);
                    let vc = vcs[rng.below(3) as usize];
                    let address = AtmAddr { address_type: 0, digits: vec![rng.below(4) as u8; 20] };
                    let state = random_state(&mut rng);
                    parties.insert(next_id, Party::new(vc, 0, state, AddressKey::of(&address), None, None));
                } else {
                    let id = 10 + rng.below(next_id - 9);
                    let state = random_state(&mut rng);
                    let known = parties.get(id).map(Party::state);
                    assert_eq!(parties.set_state(id, state), known);
                }
                check_against_scan(&parties, &vcs);
            }
        }
    }

    #[test]
    fn a_long_address_is_indexed_whole() {
        let mut parties = Parties::default();
        let long = AtmAddr::e164("123456789012345678901234");
        parties.insert(1, Party::new(7, 0, PartyState::Connected, AddressKey::of(&long), None, None));
        assert!(parties.of_call(7).has_address(&AddressKey::of(&long)));
        let shorter = AtmAddr::e164("12345678901234567890123");
        assert!(!parties.of_call(7).has_address(&AddressKey::of(&shorter)));
        parties.set_state(1, PartyState::Gone);
        assert!(!parties.of_call(7).has_address(&AddressKey::of(&long)));
        assert_eq!(parties.of_call(7).alive(), 0);
    }
}
