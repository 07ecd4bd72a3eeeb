//! The hash map the live loop keeps per-series state in ([`SeriesMap`]), and its hasher.
//!
//! # Why not std's `HashMap` as it is
//!
//! The online calibration and the accuracy tracker look every series up each cycle: at
//! 100,000 series SipHash-1-3, std's hash, was a measurable share of that bookkeeping
//! (`benches/scale.rs`, README "Scale"). foldhash hashes a series key several times faster.
//!
//! # Why it is still safe with keys from outside
//!
//! Series keys are label values of scraped series (pod names, instances), which whoever may
//! create pods chooses: a hash whose collisions can be computed would let them make every
//! look-up a long probe and slow each cycle down (HashDoS). foldhash's own `RandomState`
//! seeds from address-space layout and the clock, which its authors do not offer as a
//! defence; here both of its seeds come from the operating system's random source (through
//! `rand`'s thread generator), one shared per process and one per map, and no hash is ever
//! shown outside. Colliding keys then cannot be computed offline; what is left, inferring
//! the seeds by timing the loop's look-ups over many cycles, is beyond what setting series
//! labels gives anyone. foldhash is not a cryptographic hash, and nothing else here relies on
//! it being one.

use super::SeriesKey;
use foldhash::fast::{FoldHasher, SeedableRandomState};
use foldhash::SharedSeed;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// A hash map keyed by series, hashed with [`SeriesHasher`]; made with `SeriesMap::default()`.
pub type SeriesMap<V> = HashMap<SeriesKey, V, SeriesHasher>;

/// foldhash seeded from the operating system's random source (see the module docs for why).
#[derive(Debug, Clone, Copy)]
pub struct SeriesHasher(SeedableRandomState);

impl Default for SeriesHasher {
    /// A hasher with a fresh per-map seed and the process's shared one.
    fn default() -> Self {
        static SHARED: OnceLock<SharedSeed> = OnceLock::new();
        let shared = SHARED.get_or_init(|| SharedSeed::from_u64(rand::random()));
        SeriesHasher(SeedableRandomState::with_seed(rand::random(), shared))
    }
}

impl BuildHasher for SeriesHasher {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        self.0.build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two maps hash the same key differently (each has its own seed), and one map always
    /// the same way, which is all a map needs.
    #[test]
    fn each_map_has_its_own_seed() {
        let key = SeriesKey::new("cpu{pod=\"a\"}");
        let (a, b) = (SeriesHasher::default(), SeriesHasher::default());
        assert_eq!(a.hash_one(&key), a.hash_one(&key));
        assert_ne!(a.hash_one(&key), b.hash_one(&key));
        let mut m: SeriesMap<u32> = SeriesMap::default();
        m.insert(key.clone(), 1);
        assert_eq!(m.get(&key), Some(&1));
    }
}
