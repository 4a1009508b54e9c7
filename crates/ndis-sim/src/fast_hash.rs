//! A small, fast, deterministic hasher for the simulator's internal tables (handles, addresses,
//! lock addresses): the rotate-xor-multiply of rustc's `FxHasher`, finished by splitmix64's
//! mixer, so that every input bit reaches the low bits hashbrown picks buckets with (without it,
//! keys that differ only in the high bytes of a word, like leaf addresses whose varying digits
//! are in the middle, share buckets and every lookup walks a long probe sequence). Keys come from the simulator and the driver
//! under test, not from an adversary, so SipHash's flood resistance buys nothing and costs most
//! of a lookup. Deterministic: no per-process seed, so replays stay exact.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// See the module documentation.
#[derive(Clone, Copy, Default)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u16(&mut self, value: u16) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.hash;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn equal_keys_hash_equal_and_nearby_keys_spread() {
        let build = BuildHasherDefault::<FxHasher>::default();
        assert_eq!(build.hash_one(0x7f00_1234_5678_u64), build.hash_one(0x7f00_1234_5678_u64));
        assert_eq!(build.hash_one(b"partyline".as_slice()), build.hash_one(b"partyline".as_slice()));
        // hashbrown picks buckets from the low bits and tags from the top 7: consecutive ids
        // must differ in both.
        let hashes: Vec<u64> = (0..64u64).map(|id| build.hash_one(id)).collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 63).collect();
        let top: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 32, "low bits collide: {}", low.len());
        assert!(top.len() > 32, "top bits collide: {}", top.len());
    }

    #[test]
    fn keys_that_differ_only_in_high_bytes_spread_over_the_low_bits() {
        let build = BuildHasherDefault::<FxHasher>::default();
        // The varying bytes of a 20-digit address in the middle of its second word (as the
        // benchmark's leaves are), then a constant third word.
        let low: HashSet<u64> = (0..4096u32)
            .map(|n| {
                let mut digits = [0x47u8; 20];
                digits[8..12].copy_from_slice(&n.to_be_bytes());
                build.hash_one(digits) & 4095
            })
            .collect();
        assert!(low.len() > 2048, "only {} distinct buckets of 4096", low.len());
    }

    #[test]
    fn a_map_finds_what_it_holds() {
        let mut map: FastMap<u64, u64> = FastMap::default();
        for id in 0..10_000u64 {
            map.insert(id * 8, id);
        }
        assert!((0..10_000u64).all(|id| map.get(&(id * 8)) == Some(&id)));
        assert_eq!(map.get(&1), None);
    }
}
