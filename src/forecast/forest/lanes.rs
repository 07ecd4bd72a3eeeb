//! One row's atoms laid out for the selective merge ([`super::merge`]): every leaf's atoms
//! re-quantised onto the row's 16-bit grid in chunks of [`LANES`] lanes, each chunk with the
//! high bytes of its positions beside it, and the weight of every high-byte bucket.
//!
//! Why this shape:
//! * a chunk's positions are computed lane by lane with no data-dependent branch, so the
//!   compiler turns the re-quantisation into vector arithmetic;
//! * the bucket weights are added atom by atom, with no branch: a leaf's atoms spread over
//!   dozens of buckets (55 of the ~107 a row fills, on the shipped model), so runs of lanes
//!   sharing a bucket are short and a branch on a run's end mispredicts on most atoms;
//! * the levels only need the atoms of a few buckets: [`Lanes::gather`] finds those of all
//!   the levels in one pass with no branch on the data (a table look-up and a store per atom),
//!   and one sort of distinct keys puts each bucket in full-sort order (position, then tree,
//!   then atom). A bucket asked for later (a level's neighbour, rarely) is gathered alone: a
//!   chunk's high bytes are two 8-byte words, so which of its atoms are in bucket `b` is a few
//!   word-wide operations.
//!
//! Every position is computed by the same expression as [`super::merge`]'s full sort, so the
//! two agree to the bit.

use super::storage::{leaf_header, Tree, LEAF_HEADER};

/// Lanes per chunk: one 16-byte word of high bytes.
pub(super) const LANES: usize = 16;

/// Buckets of the grid's high byte.
pub(super) const BUCKETS: usize = 256;

const INV_255: f32 = 1.0 / 255.0;

/// Weights in units of 2^-49: below the merge's exact limit every atom's weight `1/(T k)`, an
/// f32 of at least 2^-26, is a whole number of them, so integer sums of units are the exact
/// f64 sums.
pub(super) const UNITS_PER_ONE: f64 = (1u64 << 49) as f64;

/// The row's grid: value of position 0 (training offset included) and of one step.
#[derive(Clone, Copy)]
pub(super) struct Grid {
    pub(super) base: f64,
    pub(super) step: f64,
}

impl Grid {
    /// The value of an atom key (`grid position << 32 | weight as f32 bits`).
    #[inline]
    pub(super) fn value(&self, key: u64) -> f64 {
        self.base + (key >> 32) as f64 * self.step
    }
}

/// The weight of an atom key.
#[inline]
pub(super) fn weight(key: u64) -> f64 {
    f64::from(f32::from_bits(key as u32))
}

/// Lowest atom, highest atom and largest atom count over the row's leaves.
pub(super) fn range(trees: &[Tree], leaves: &[u32]) -> (f32, f32, usize) {
    // A short loop over independent records, so the leaf cache misses overlap; the passes
    // after it then hit cache.
    let (mut gmin, mut gmax, mut kmax) = (f32::INFINITY, f32::NEG_INFINITY, 0);
    for (t, &o) in trees.iter().zip(leaves) {
        let (lo, span, k) = leaf_header(&t.leaves, o as usize);
        gmin = gmin.min(lo);
        gmax = gmax.max(lo + span);
        kmax = kmax.max(k);
    }
    (gmin, gmax, kmax)
}

/// The row's re-quantisation: position of an atom of code `c` in a leaf starting at `lo` with
/// code step `step` is `((lo + step c − gmin) scale + ½)`, clamped to 16 bits, truncated.
#[derive(Clone, Copy)]
pub(super) struct Quantiser {
    gmin: f32,
    scale: f32,
}

impl Quantiser {
    /// The quantiser for a row whose atoms span `gmin..=gmax`, and the row's grid.
    pub(super) fn new(gmin: f32, gmax: f32, y_offset: f64) -> (Quantiser, Grid) {
        // The error (range / 131070) is far below the per-leaf u8 code step. Values are read
        // back from the grid, so they stay sorted.
        let range = (gmax - gmin).max(0.0);
        let scale = if range > 0.0 { 65535.0 / range } else { 0.0 };
        let grid = Grid {
            base: f64::from(gmin) + y_offset,
            step: f64::from(range) / 65535.0,
        };
        (Quantiser { gmin, scale }, grid)
    }

    /// The leaf's code step: `span / 255`.
    #[inline]
    pub(super) fn step(span: f32) -> f32 {
        span * INV_255
    }

    /// Grid position of code `c` in a leaf at `lo` with code step `step`.
    #[inline(always)]
    // `max(0).min(65535)` on purpose: unlike `clamp` it takes NaN to 0.
    #[allow(clippy::manual_clamp)]
    pub(super) fn position(&self, lo: f32, step: f32, c: u8) -> u32 {
        // `+ 0.5` then truncation rounds (operand ≥ 0) without a libm call. `max` then `min`
        // (NaN to 0, as a saturating cast takes it) and `truncate` instead of `clamp` and `as`:
        // the same integer for every f32, in vector instructions (see `truncate`).
        truncate(
            ((lo + step * f32::from(c) - self.gmin) * self.scale + 0.5)
                .max(0.0)
                .min(65535.0),
        )
    }
}

/// `y as u32` for `y` in `0.0..=65535.0`, by adding 2^23 (which rounds `y` to the nearest
/// integer in the low mantissa bits) and stepping down where that rounded up. Written out
/// because the compiler keeps a saturating `as` cast scalar, 16 conversions per chunk; the
/// same answer for every input in range is checked by a test over all of them.
#[inline(always)]
fn truncate(y: f32) -> u32 {
    const MAGIC: f32 = 8_388_608.0;
    let r = y + MAGIC;
    let n = r.to_bits().wrapping_sub(MAGIC.to_bits());
    n.wrapping_sub(u32::from(r - MAGIC > y))
}

/// The weight `1/(T k)` of an atom of a `k`-atom leaf among `n_trees`, as f32 bits and in
/// [`UNITS_PER_ONE`] units.
#[inline]
pub(super) fn atom_weight(n_trees: usize, k: usize) -> (u32, u64) {
    let wf = 1.0 / (n_trees as f32 * k as f32);
    (wf.to_bits(), (f64::from(wf) * UNITS_PER_ONE) as u64)
}

/// A row's atoms in chunks of [`LANES`], with bucket weights (see the module doc).
#[derive(Default)]
pub(super) struct Lanes {
    /// Grid positions, per chunk.
    pos: Vec<[u16; LANES]>,
    /// High bytes of the positions, per chunk.
    high: Vec<[u8; LANES]>,
    /// Per chunk: lanes in use (the first `n`), and the weight of each as f32 bits.
    meta: Vec<(u8, u32)>,
    /// Atoms laid out.
    atoms: usize,
    /// [`Lanes::gather`]'s pass: every atom's [`hit_key`] written, the count advanced on a hit
    /// only.
    hits: Vec<u64>,
    /// The buckets [`Lanes::gather`] gathers in its pass.
    want: Vec<usize>,
    /// Weight of each bucket's atoms, in units; `cum[b]` is the weight of buckets before `b`.
    cum: Vec<u64>,
    /// Atoms gathered by bucket, each range sorted.
    picked: Vec<u64>,
    /// Buckets gathered so far: (bucket, start, end) in `picked`.
    gathered: Vec<(usize, usize, usize)>,
    /// [`atom_weight`] by atom count, for `weights_for` trees (a division per leaf otherwise).
    weights: Vec<(u32, u64)>,
    weights_for: usize,
}

impl Lanes {
    /// Lays out the row's atoms and weighs the buckets.
    pub(super) fn fill(&mut self, trees: &[Tree], leaves: &[u32], qz: Quantiser) {
        self.pos.clear();
        self.high.clear();
        self.meta.clear();
        self.atoms = 0;
        self.picked.clear();
        self.gathered.clear();
        let mut hist = [0u64; BUCKETS];
        let n_trees = trees.len();
        if self.weights_for != n_trees {
            self.weights.clear();
            self.weights_for = n_trees;
        }
        for (t, &o) in trees.iter().zip(leaves) {
            let blob = &t.leaves[..];
            let o = o as usize;
            let (lo, span, k) = leaf_header(blob, o);
            let step = Quantiser::step(span);
            while self.weights.len() <= k {
                self.weights.push(atom_weight(n_trees, self.weights.len()));
            }
            let (wbits, units) = self.weights[k];
            let first = o + LEAF_HEADER;
            for from in (first..first + k).step_by(LANES) {
                let n = (first + k - from).min(LANES);
                // A whole window of the blob where there is one (the lanes past `n` then hold
                // the next record's bytes, which every reader masks off): a fixed-size copy,
                // where copying `n` bytes was a call to `memcpy` per leaf.
                let c: [u8; LANES] = match blob.get(from..from + LANES) {
                    Some(w) => w.try_into().expect("LANES bytes"),
                    None => {
                        let mut c = [0u8; LANES];
                        c[..n].copy_from_slice(&blob[from..from + n]);
                        c
                    }
                };
                let mut p = [0u16; LANES];
                let mut h = [0u8; LANES];
                for ((p, h), &c) in p.iter_mut().zip(&mut h).zip(&c) {
                    let g = qz.position(lo, step, c);
                    *p = g as u16;
                    *h = (g >> 8) as u8;
                }
                self.atoms += n;
                self.pos.push(p);
                self.high.push(h);
                self.meta.push((n as u8, wbits));
                // One add per atom, no branch: a leaf's atoms spread over dozens of buckets
                // (55 of the ~107 a row fills, on the shipped model), so runs sharing a bucket
                // are short and a branch on the run's end mispredicts on most atoms.
                for &b in &h[..n] {
                    hist[usize::from(b)] += units;
                }
            }
        }
        self.cum.clear();
        self.cum.push(0);
        let mut sum = 0u64;
        for w in hist {
            sum += w;
            self.cum.push(sum);
        }
    }

    /// The weight of buckets before `b` (of all of them for `b = BUCKETS`), exact.
    #[inline]
    pub(super) fn cum(&self, b: usize) -> f64 {
        self.cum[b] as f64 / UNITS_PER_ONE
    }

    /// Whether bucket `b` holds any atom (every atom weighs at least one unit).
    #[inline]
    pub(super) fn nonempty(&self, b: usize) -> bool {
        self.cum[b + 1] > self.cum[b]
    }

    /// The first non-empty bucket whose cumulative weight ends above `q`, if any.
    pub(super) fn bucket_above(&self, q: f64) -> Option<usize> {
        // `cum` is non-decreasing, so the buckets ending above q are a suffix; its first
        // bucket can only be empty when it starts above q too, i.e. at bucket 0.
        let first = self.cum[1..].partition_point(|&u| u as f64 / UNITS_PER_ONE <= q);
        (first..BUCKETS).find(|&b| self.nonempty(b))
    }

    /// Gathers, in one pass over the atoms, the buckets the levels `qs` fall in (those
    /// [`Lanes::bucket_above`] gives), so that [`Lanes::bucket`] finds them ready.
    ///
    /// Why one pass: gathering a bucket by itself visits every chunk (a word compare and a
    /// branch on each), and the shipped model's leaves spread over about half of a row's
    /// buckets, so chunks cannot be skipped; measured, four such gathers a row were a quarter
    /// of the quantile path. Here each atom costs a table look-up and a store, with no branch
    /// on the data: its key is written at the end of `hits` whether it is wanted or not, and
    /// the end advances only when it is.
    pub(super) fn gather(&mut self, qs: &[f64]) {
        self.want.clear();
        for &q in qs.iter().filter(|q| !q.is_nan()) {
            if let Some(b) = self.bucket_above(q) {
                if !self.want.contains(&b) && !self.gathered.iter().any(|g| g.0 == b) {
                    self.want.push(b);
                }
            }
        }
        // One slot per bucket in a byte, `NONE` for the rest; buckets past that many are
        // gathered one by one when asked for.
        const NONE: u8 = u8::MAX;
        self.want.truncate(usize::from(NONE));
        // Hits are numbered in 16 bits; larger rows gather bucket by bucket.
        if self.want.is_empty() || self.atoms > 1 << 16 {
            return;
        }
        let mut slot_of = [NONE; BUCKETS];
        for (i, &b) in self.want.iter().enumerate() {
            slot_of[b] = i as u8;
        }
        // Room for every atom plus a whole chunk, so each chunk writes into one fixed window.
        // Not cleared: every key read back was written in this pass.
        if self.hits.len() < self.atoms + LANES {
            self.hits.resize(self.atoms + LANES, 0);
        }
        let hits = &mut self.hits[..];
        let mut len = 0;
        for ((p, h), &(n, wbits)) in self.pos.iter().zip(&self.high).zip(&self.meta) {
            let dst: &mut [u64; LANES] = (&mut hits[len..len + LANES])
                .try_into()
                .expect("a chunk's window");
            let mut c = 0;
            for (&p, &h) in p.iter().zip(h).take(usize::from(n)) {
                let slot = slot_of[usize::from(h)];
                dst[c % LANES] = hit_key(slot, p, len + c, wbits);
                c += usize::from(slot != NONE);
            }
            len += c;
        }
        // Distinct keys ordered by bucket, position, then order found (tree, then atom): each
        // bucket's atoms in full-sort order, one bucket after another.
        let hits = &mut self.hits[..len];
        hits.sort_unstable();
        let base = self.picked.len();
        let mut from = 0;
        for (i, &b) in self.want.iter().enumerate() {
            let to = from + hits[from..].partition_point(|&k| (k >> 56) as usize == i);
            let high = (b as u64) << 8;
            self.picked.extend(
                hits[from..to]
                    .iter()
                    .map(|&k| (high | (k >> 48 & 0xff)) << 32 | (k & 0xffff_ffff)),
            );
            self.gathered.push((b, base + from, base + to));
            from = to;
        }
    }

    /// Bucket `b`'s atoms in full-sort order (grid position, then tree, then atom).
    pub(super) fn bucket(&mut self, b: usize) -> &[u64] {
        let (s, e) = match self.gathered.iter().find(|g| g.0 == b) {
            Some(&(_, s, e)) => (s, e),
            None => {
                let s = self.picked.len();
                let want = b as u8;
                for ((p, h), &(n, wbits)) in self.pos.iter().zip(&self.high).zip(&self.meta) {
                    // Lanes past `n` hold leftovers: masked off (bit 8j + 7 is lane j).
                    let (lo_half, hi_half) = eq_mask(h, want);
                    let n = u32::from(n);
                    let keep = |m: u64, from: u32| match n.saturating_sub(from) {
                        0 => 0,
                        l if l >= 8 => m,
                        l => m & ((1u64 << (8 * l)) - 1),
                    };
                    for (half, mut m) in [(0, keep(lo_half, 0)), (8, keep(hi_half, 8))] {
                        while m != 0 {
                            let j = half + m.trailing_zeros() as usize / 8;
                            self.picked.push(u64::from(p[j]) << 32 | u64::from(wbits));
                            m &= m - 1;
                        }
                    }
                }
                let e = self.picked.len();
                sort_stably(&mut self.picked[s..e]);
                self.gathered.push((b, s, e));
                (s, e)
            }
        };
        &self.picked[s..e]
    }
}

/// The key of an atom found by [`Lanes::gather`]: the index of its bucket among those gathered
/// (`slot`), the low byte of its position (the high byte is the bucket's), the number of atoms
/// found before it, and its weight as f32 bits. Distinct, and in the order a stable sort by
/// bucket and position would give.
#[inline(always)]
fn hit_key(slot: u8, pos: u16, found: usize, wbits: u32) -> u64 {
    u64::from(slot) << 56
        | u64::from(pos & 0xff) << 48
        | (found as u64 & 0xffff) << 32
        | u64::from(wbits)
}

/// Sorts atom keys (`position << 32 | weight bits`, position of 16 bits) by position, ties
/// kept in the order given (tree, then atom, as in the full sort). Up to 2^16 keys are
/// rewritten as `position << 48 | index << 32 | weight bits`: all distinct, so a plain unstable
/// sort of the integers (much faster on a bucket's few dozen keys than the stable sort by
/// position, measured at a tenth of the forecast's time) gives the stable order; then each key
/// is written back.
fn sort_stably(keys: &mut [u64]) {
    if keys.len() > 1 << 16 {
        keys.sort_by_key(|k| k >> 32);
        return;
    }
    const LOW: u64 = 0xffff_ffff;
    for (i, k) in keys.iter_mut().enumerate() {
        *k = (*k >> 32) << 48 | (i as u64) << 32 | (*k & LOW);
    }
    keys.sort_unstable();
    for k in keys.iter_mut() {
        *k = (*k >> 48) << 32 | (*k & LOW);
    }
}

/// Lanes of `h` equal to `b`: bit `8j + 7` set for lane `j`, lanes 0–7 in the first word,
/// 8–15 in the second. Zero bytes of `h ^ b…b` found word-wide (exactly, no borrow between
/// bytes): a compare per lane compiles to a chain of byte moves and flags instead.
#[inline(always)]
fn eq_mask(h: &[u8; LANES], b: u8) -> (u64, u64) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let bb = u64::from(b) * 0x0101_0101_0101_0101;
    let zero = |w: u64| !(((w & LOW7) + LOW7) | w | LOW7);
    let (a, c) = h.split_at(8);
    let word = |x: &[u8]| u64::from_le_bytes(x.try_into().expect("8 bytes"));
    (zero(word(a) ^ bb), zero(word(c) ^ bb))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `truncate` is the saturating cast on every input `position` can give it. (Run once
    /// over all 2^32 f32 bit patterns, through `max(0).min(65535)`: no difference; here every
    /// integer and half-integer of the range with its neighbours a few ulps either side, and
    /// the values that are not numbers.)
    #[test]
    #[allow(clippy::manual_clamp)] // `position`'s own clamp, NaN to 0
    fn truncate_is_the_cast() {
        let clamp = |x: f32| x.max(0.0).min(65535.0);
        let mut xs = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, -1.0, 1e30];
        for n in 0..=65535u32 {
            for base in [n as f32, n as f32 + 0.5] {
                let mut up = base;
                let mut down = base;
                for _ in 0..4 {
                    xs.extend([up, down]);
                    up = f32::from_bits(up.to_bits() + 1);
                    down = if down > 0.0 {
                        f32::from_bits(down.to_bits() - 1)
                    } else {
                        down
                    };
                }
            }
        }
        for x in xs {
            assert_eq!(truncate(clamp(x)), x.clamp(0.0, 65535.0) as u32, "{x:e}");
        }
    }

    /// `sort_stably` is the stable sort by position, ties (equal positions, different
    /// weights) in the order given, on keys with few distinct positions so ties abound.
    #[test]
    fn sort_stably_is_the_stable_sort_by_position() {
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in [0usize, 1, 2, 7, 20, 36, 100, 700] {
            let keys: Vec<u64> = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % 5 + 0x3f00) << 32 | (s >> 40) & 0xffff_ffff
                })
                .collect();
            let mut want = keys.clone();
            want.sort_by_key(|k| k >> 32);
            let mut got = keys;
            sort_stably(&mut got);
            assert_eq!(got, want, "{n} keys");
        }
    }

    /// The word-wide byte compare finds exactly the equal lanes, wherever they are.
    #[test]
    fn eq_mask_finds_exactly_the_equal_lanes() {
        let mut s: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // Few distinct values, so equal lanes are common, next to unequal ones by 1 and
            // by 0x80 (where a borrow or carry would cross a byte).
            let pick = [0u8, 1, 0x7f, 0x80, 0x81, 0xff];
            let h: [u8; LANES] = std::array::from_fn(|j| pick[((s >> (3 * j)) % 6) as usize]);
            let b = pick[(s >> 60) as usize % 6];
            let (lo, hi) = eq_mask(&h, b);
            for (j, &x) in h.iter().enumerate() {
                let word = if j < 8 { lo } else { hi };
                let bit = word >> (8 * (j % 8) + 7) & 1 == 1;
                assert_eq!(bit, x == b, "lane {j} of {h:?} vs {b}");
            }
            assert_eq!((lo | hi) & !0x8080_8080_8080_8080, 0);
        }
    }
}
