//! A fast, non-cryptographic hasher for maps keyed by customer ids: planning looks up a
//! million ids several times each, and SipHash (std's default, built against hostile
//! keys) was most of its time. Ids come from the business's own data, not from attackers.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The FxHash mixing step (as in rustc): rotate, xor a word, multiply.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A final avalanche so the low bits (bucket index) depend on every input bit.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

/// Builds [`IdHasher`]s.
pub type IdBuildHasher = BuildHasherDefault<IdHasher>;
/// A map keyed by customer id (or anything small): `IdMap::default()`.
pub type IdMap<K, V> = HashMap<K, V, IdBuildHasher>;
/// A set of customer ids.
pub type IdSet<K> = HashSet<K, IdBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_similar_ids() {
        use std::hash::BuildHasher;
        let b = IdBuildHasher::default();
        let buckets: IdSet<u64> = (0..10_000)
            .map(|i| b.hash_one(format!("C{i:08}")) & 0xfff)
            .collect();
        // 10k random keys into 4096 buckets hit 4096 * (1 - e^(-10000/4096)) ~ 3740 of
        // them (sd ~ 17); a weak hash of similar ids would hit far fewer.
        assert!(buckets.len() > 3_650, "{}", buckets.len());
        assert_ne!(b.hash_one("ab"), b.hash_one("ab\0"));
    }
}
