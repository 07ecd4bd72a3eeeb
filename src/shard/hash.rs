//! Rendezvous (highest random weight) hashing of workload keys over replica ordinals.
//!
//! Each workload scores every ordinal `0..replicas` and belongs to the highest score. Growing
//! from N to N+1 replicas moves exactly the workloads whose new top ordinal is N (about
//! 1/(N+1) of them) and moves them all to the new replica: no other workload changes hands,
//! which a modulo split (`hash % N`) cannot promise.
//!
//! The hash is written out (FNV-1a of the key's bytes, then a SplitMix64 finaliser mixed with
//! the ordinal) rather than taken from `std`: `DefaultHasher`/`RandomState` may change between
//! Rust releases or be seeded per process, and every replica, of whatever build, must agree on
//! who owns what.

/// FNV-1a, 64 bits, of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// SplitMix64's finaliser: a bijection on `u64` that spreads every input bit over the output,
/// so that FNV's weak low bits do not decide ownership.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The score of `ordinal` for a key whose FNV-1a hash is `key_hash`.
pub fn score(key_hash: u64, ordinal: u32) -> u64 {
    splitmix64(key_hash ^ splitmix64(u64::from(ordinal)))
}

/// The ordinal in `0..replicas` that owns `key`: the highest score, the lower ordinal on a tie.
/// `replicas` of 0 is treated as 1 (everything on ordinal 0).
pub fn owner(key: &str, replicas: u32) -> u32 {
    let h = fnv1a(key.as_bytes());
    (0..replicas.max(1))
        .max_by_key(|&o| (score(h, o), std::cmp::Reverse(o)))
        .unwrap_or(0)
}
