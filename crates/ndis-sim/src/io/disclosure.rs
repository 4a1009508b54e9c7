//! Poisoned system buffers, and the proof that no device-control response returns a byte the
//! driver did not write.
//!
//! Read: "Failure to Initialize Output Buffers"
//! (https://learn.microsoft.com/windows-hardware/drivers/kernel/failure-to-initialize-output-buffers)
//! and "Buffer Descriptions for I/O Control Codes"
//! (https://learn.microsoft.com/windows-hardware/drivers/kernel/buffer-descriptions-for-i-o-control-codes):
//! for METHOD_BUFFERED the I/O manager allocates one system buffer of max(input, output) bytes,
//! copies the input into it, and copies `IoStatus.Information` bytes of it back to the caller; it
//! does not initialise the rest, so any of those bytes the driver did not write carries stale
//! kernel pool to user mode.
//!
//! ## The poison
//! Before dispatch, every byte of the system buffer from the end of the input to the end of the
//! output (the only bytes that can be returned and are not the caller's own input) is set to a
//! poison byte `P(seed, n, i)` for request number `n` (device-control IRPs are numbered from 1 in
//! the order they are sent) and offset `i`, a pseudo-random byte in 1..=254 (never 0x00 or 0xFF,
//! the values drivers write most, so written bytes rarely look like poison). The *complementary*
//! poison is `!P(seed, n, i)`, which differs from `P` in every bit of every byte.
//!
//! ## The proof
//! The simulation is deterministic by seed: with the same seed and the same host actions, the
//! driver sees the same requests, callbacks and faults in the same order, so whatever it writes
//! into a system buffer is the same in every run *unless it depends on the poison*. Hence:
//!
//! 1. Run A, poisoned with `P`. Every returned byte beyond the input that equals `P` at its
//!    offset is a *suspect*. A byte the driver did not write still holds `P`, so every unwritten
//!    returned byte is a suspect: **no suspects proves, with this one run, that every returned
//!    byte was written** (the common case, [`Suspects::is_empty`]).
//! 2. Otherwise run B replays the same seed and host actions poisoned with `!P`
//!    ([`Poison::Confirm`] with run A's suspects). A suspect that the driver wrote holds the same
//!    value as in run A (`P`), not `!P`; a suspect the driver did not write holds `!P`. So
//!    *suspect in A and equal to `!P` in B* is exactly *not written by the driver* (or computed
//!    from the poison, which discloses it as well); those bytes, and only those, are reported
//!    under [`rules::UNINITIALIZED_OUTPUT`]. A driver that writes a value that happens to equal
//!    the poison is therefore never reported, and one that leaves a byte unwritten always is.
//!
//! The request sequence of run B must be that of run A (same seed, same host actions): a
//! suspect whose request number carries another IOCTL code in run B is not confirmed (the runs
//! diverged, which only a driver that branches on the poison can cause), and is counted in
//! [`Disclosure::diverged`]. Running a dispatch routine twice inside one run would not do: it has
//! side effects.

use std::collections::BTreeMap;

use super::rules;
use crate::kernel::World;
use crate::verifier;

/// How the I/O manager poisons system buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poison {
    /// Run A: the pattern `P(seed, n, i)`; suspects are recorded ([`Disclosure::suspects`]).
    Suspect { seed: u64 },
    /// Run B: the complement `!P(seed, n, i)`; run A's suspects still holding the complement are
    /// reported.
    Confirm { seed: u64, suspects: Suspects },
}

impl Default for Poison {
    fn default() -> Self {
        Poison::Suspect { seed: 0 }
    }
}

/// Returned bytes that held run A's poison: per request number, its IOCTL code and the offsets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suspects {
    requests: BTreeMap<u64, (u32, Vec<u32>)>,
}

impl Suspects {
    /// No returned byte held the poison: every returned byte was written (no replay needed).
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// How many suspect bytes, over every request.
    pub fn len(&self) -> usize {
        self.requests.values().map(|(_, offsets)| offsets.len()).sum()
    }
}

/// splitmix64: one well-mixed word from any input.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `P(seed, request, offset)`: the poison byte of run A, in 1..=254.
pub fn pattern(seed: u64, request: u64, offset: usize) -> u8 {
    Pattern::new(seed, request).byte(offset)
}

/// The poison of one request, keeping the last 8-byte word it computed (a buffer is filled and
/// checked in order, so each word's three mixes are paid once, not once per byte).
struct Pattern {
    key: u64,
    word: (usize, u64),
}

impl Pattern {
    fn new(seed: u64, request: u64) -> Pattern {
        let key = seed ^ mix(request);
        Pattern { key, word: (usize::MAX, 0) }
    }

    /// `P(seed, request, offset)`.
    fn byte(&mut self, offset: usize) -> u8 {
        let index = offset / 8;
        if self.word.0 != index {
            self.word = (index, self.word_at(index));
        }
        poison_byte((self.word.1 >> (8 * (offset % 8))) as u8)
    }

    /// The 8-byte word that holds the poison of offsets `8 * index ..`.
    fn word_at(&self, index: usize) -> u64 {
        mix(self.key ^ mix(index as u64 ^ 0x5EED))
    }

    /// Writes `P(offset) ^ flip` for the offsets `first..` into `out`, a word at a time (the
    /// output buffers of IOCTLs are up to 64 KiB, poisoned on every request).
    fn fill(&self, out: &mut [u8], first: usize, flip: u8) {
        let mut offset = first;
        let mut rest = out;
        while !rest.is_empty() {
            let word = self.word_at(offset / 8).to_le_bytes();
            let skip = offset % 8;
            let (head, tail) = rest.split_at_mut((8 - skip).min(rest.len()));
            for (byte, w) in head.iter_mut().zip(&word[skip..]) {
                *byte = poison_byte(*w) ^ flip;
            }
            offset += head.len();
            rest = tail;
        }
    }
}

/// A poison byte from a random one: never 0 or 0xFF, the bytes a driver most often writes.
fn poison_byte(random: u8) -> u8 {
    1 + random % 254
}

/// The poison state of one I/O manager.
#[derive(Default)]
pub(super) struct Disclosure {
    poison: Poison,
    /// Device-control requests sent so far (the last one's number).
    requests: u64,
    suspects: Suspects,
    /// Run B suspects not confirmed because their request carried another IOCTL code.
    diverged: u64,
    /// Returned bytes beyond the input inspected so far (what a clean verdict covers).
    inspected: u64,
}

impl Disclosure {
    pub(super) fn set_poison(&mut self, poison: Poison) {
        self.poison = poison;
    }

    pub(super) fn suspects(&self) -> Suspects {
        self.suspects.clone()
    }

    pub(super) fn diverged(&self) -> u64 {
        self.diverged
    }

    pub(super) fn inspected(&self) -> u64 {
        self.inspected
    }

    /// Numbers a new device-control request and poisons `returnable`, the bytes of its system
    /// buffer from the end of the input to the end of the output (`first` is the offset of
    /// `returnable[0]`). Returns the request number.
    pub(super) fn poison(&mut self, returnable: &mut [u8], first: usize) -> u64 {
        self.requests += 1;
        let request = self.requests;
        let (seed, flip) = match &self.poison {
            Poison::Suspect { seed } => (*seed, 0),
            Poison::Confirm { seed, .. } => (*seed, 0xFF),
        };
        Pattern::new(seed, request).fill(returnable, first, flip);
        request
    }

    /// Inspects what request `request` returns: `returned[first..]` are the bytes beyond the
    /// input. Run A records suspects; run B reports those still holding the complement.
    pub(super) fn inspect(&mut self, world: &World, request: u64, code: u32, returned: &[u8], first: usize) {
        let beyond = returned.get(first..).unwrap_or_default();
        self.inspected += beyond.len() as u64;
        match &self.poison {
            Poison::Suspect { seed } => {
                let mut pattern = Pattern::new(*seed, request);
                let offsets: Vec<u32> = (first..)
                    .zip(beyond)
                    .filter(|&(i, &b)| b == pattern.byte(i))
                    .map(|(i, _)| i as u32)
                    .collect();
                if !offsets.is_empty() {
                    self.suspects.requests.insert(request, (code, offsets));
                }
            }
            Poison::Confirm { seed, suspects } => {
                let Some((suspect_code, offsets)) = suspects.requests.get(&request) else { return };
                if *suspect_code != code {
                    self.diverged += offsets.len() as u64;
                    return;
                }
                let leaked: Vec<u32> = offsets
                    .iter()
                    .copied()
                    .filter(|&i| returned.get(i as usize) == Some(&!pattern(*seed, request, i as usize)))
                    .collect();
                if !leaked.is_empty() {
                    report(world, request, code, returned.len(), &leaked);
                }
            }
        }
    }
}

fn report(world: &World, request: u64, code: u32, information: usize, leaked: &[u32]) {
    let shown: Vec<String> = leaked.iter().take(16).map(u32::to_string).collect();
    let more = if leaked.len() > 16 { ", …" } else { "" };
    verifier::report(
        world,
        rules::UNINITIALIZED_OUTPUT,
        "driver!IRP_MJ_DEVICE_CONTROL",
        format!(
            "request #{request} (IOCTL 0x{code:08X}) returned {information} bytes, {} of which the driver never \
             wrote (offsets {}{more}): stale pool would reach user mode",
            leaked.len(),
            shown.join(", ")
        ),
    );
}
