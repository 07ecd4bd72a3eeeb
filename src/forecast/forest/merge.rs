//! One row's quantiles from its leaves: the atoms of the row's leaf records, one per tree,
//! merged into one weighted distribution and read at the levels asked for.
//!
//! The distribution is defined by a full sort (`merge_sorted`): every atom re-quantised onto
//! one 16-bit grid over the row's range, sorted by grid position (ties in tree, then atom
//! order), cumulative weights summed in that order, quantiles interpolated between atom
//! centres. Only the few atoms next to each level asked for matter, so the path taken
//! (`merge_select`) sorts by the grid's high byte alone (one counting pass) and fully sorts just
//! the buckets the levels fall in. Its answers are the full sort's to the bit, because
//! * the atoms of a bucket keep their full-sort order (a stable scatter, then a stable sort
//!   inside the bucket), and
//! * every cumulative weight is exact in f64, so summing per bucket first changes no sum: an
//!   atom's weight `1/(T k)` is an f32, all of them multiples of the smallest one's unit in the
//!   last place, and their total (about 1) spans fewer than 53 bits of those units while
//!   `T × k < 2^26` ([`EXACT_LIMIT`]); beyond that, the full sort runs. Being exact, the
//!   bucket sums are kept as integers (units of 2^-49, of which every weight is a whole
//!   number), converted to f64 only for the cumulative weights, with no rounding.

use super::storage::{leaf_header, Tree, LEAF_HEADER};

const INV_255: f32 = 1.0 / 255.0;

/// Largest `trees × atoms per leaf` for which weight sums are exact (see the module doc; the
/// true bound is near 2^28, this keeps a margin).
const EXACT_LIMIT: u64 = 1 << 26;

/// Reused buffers, so the live path does not allocate after warm-up.
#[derive(Default)]
pub(super) struct MergeScratch {
    keys: Vec<u64>,
    tmp: Vec<u64>,
    centers: Vec<f64>,
    values: Vec<f64>,
}

/// A row's atoms on its grid: each key is `grid position << 32 | weight as f32 bits`.
struct Grid {
    /// Value of grid position 0 (training offset included).
    base: f64,
    /// Value of one grid step.
    step: f64,
}

impl Grid {
    #[inline]
    fn value(&self, key: u64) -> f64 {
        self.base + (key >> 32) as f64 * self.step
    }
}

#[inline]
fn weight(key: u64) -> f64 {
    f64::from(f32::from_bits(key as u32))
}

/// Weights in units of 2^-49: below [`EXACT_LIMIT`] every atom's weight `1/(T k)`, an f32 of
/// at least 2^-26, is a whole number of them, so integer sums of units are the exact f64 sums.
const UNITS_PER_ONE: f64 = (1u64 << 49) as f64;

/// Fills `keys` with the row's atoms in tree, then atom order; calls `each(key, units)` on
/// every one, with the atom's weight in [`UNITS_PER_ONE`] units (meaningful below
/// [`EXACT_LIMIT`] only).
fn atoms(
    trees: &[Tree],
    y_offset: f64,
    leaves: &[u32],
    keys: &mut Vec<u64>,
    mut each: impl FnMut(u64, u64),
) -> Grid {
    // A short loop over independent records, so the leaf cache misses overlap; the code pass
    // below then hits cache.
    let (mut gmin, mut gmax) = (f32::INFINITY, f32::NEG_INFINITY);
    for (t, &o) in trees.iter().zip(leaves) {
        let (lo, span, _) = leaf_header(&t.leaves, o as usize);
        gmin = gmin.min(lo);
        gmax = gmax.max(lo + span);
    }
    // Re-quantise all atoms onto one 16-bit grid over this row's range: the error
    // (range / 131070) is far below the per-leaf u8 code step. Values are then read back from
    // the grid, so they stay sorted.
    let range = (gmax - gmin).max(0.0);
    let scale = if range > 0.0 { 65535.0 / range } else { 0.0 };
    let n_trees = trees.len() as f32;
    keys.clear();
    for (t, &o) in trees.iter().zip(leaves) {
        let blob = &t.leaves;
        let o = o as usize;
        let (lo, span, k) = leaf_header(blob, o);
        // Low half of the key: the atom's weight 1/(T k) as f32 bits (no divide later).
        let wf = 1.0 / (n_trees * k as f32);
        let w = u64::from(wf.to_bits());
        let units = (f64::from(wf) * UNITS_PER_ONE) as u64;
        let span = span * INV_255;
        let codes = &blob[o + LEAF_HEADER..o + LEAF_HEADER + k];
        keys.extend(codes.iter().map(|&c| {
            // `+ 0.5` then truncation rounds (operand ≥ 0) without a libm call.
            let g = ((lo + span * f32::from(c) - gmin) * scale + 0.5).clamp(0.0, 65535.0);
            let key = ((g as u64) << 32) | w;
            each(key, units);
            key
        }));
    }
    Grid {
        base: f64::from(gmin) + y_offset,
        step: f64::from(range) / 65535.0,
    }
}

/// Quantiles of the row whose leaf record in tree `t` is at byte `leaves[t]`, into `out`.
pub(super) fn quantiles(
    trees: &[Tree],
    y_offset: f64,
    leaves: &[u32],
    qs: &[f64],
    out: &mut [f64],
    s: &mut MergeScratch,
) {
    let kmax = trees
        .iter()
        .zip(leaves)
        .map(|(t, &o)| leaf_header(&t.leaves, o as usize).2)
        .max()
        .unwrap_or(0);
    if (trees.len() as u64).saturating_mul(kmax as u64) < EXACT_LIMIT {
        merge_select(trees, y_offset, leaves, qs, out, s);
    } else {
        merge_sorted(trees, y_offset, leaves, qs, out, s);
    }
}

/// The definition: all atoms sorted, centres and values of every one, then each level read
/// off by binary search.
pub(super) fn merge_sorted(
    trees: &[Tree],
    y_offset: f64,
    leaves: &[u32],
    qs: &[f64],
    out: &mut [f64],
    s: &mut MergeScratch,
) {
    let grid = atoms(trees, y_offset, leaves, &mut s.keys, |_, _| {});
    radix_sort_grid(&mut s.keys, &mut s.tmp);
    // Each tree carries weight 1/T, split evenly over its leaf's k atoms; an atom's "center" is
    // the midpoint of its cumulative-probability step (Hazen positions), and quantiles
    // interpolate linearly between centers.
    s.centers.clear();
    s.values.clear();
    let mut cum = 0.0f64;
    for &key in &s.keys {
        let w = weight(key);
        s.centers.push(cum + 0.5 * w);
        s.values.push(grid.value(key));
        cum += w;
    }
    for (o, &q) in out.iter_mut().zip(qs) {
        *o = interpolate(&s.centers, &s.values, q);
    }
}

/// Buckets of the grid's high byte.
const BUCKETS: usize = 256;

/// The same answers as [`merge_sorted`], sorting only the buckets the levels fall in.
fn merge_select(
    trees: &[Tree],
    y_offset: f64,
    leaves: &[u32],
    qs: &[f64],
    out: &mut [f64],
    s: &mut MergeScratch,
) {
    let mut count = [0u32; BUCKETS];
    // Integer units, not f64 sums: one integer add per atom instead of a conversion and a
    // float add chained through memory, and the same cumulative weights to the bit.
    let mut wsum = [0u64; BUCKETS];
    let grid = atoms(trees, y_offset, leaves, &mut s.keys, |key, units| {
        let b = (key >> 40) as usize;
        count[b] += 1;
        wsum[b] += units;
    });
    // Bucket b's atoms go to tmp[start[b]..start[b + 1]], in tree and atom order; cum[b] is
    // the weight of all atoms in buckets before b (exact, see the module doc).
    let mut start = [0usize; BUCKETS + 1];
    let mut cum = [0.0f64; BUCKETS + 1];
    let mut units = 0u64;
    for b in 0..BUCKETS {
        start[b + 1] = start[b] + count[b] as usize;
        units += wsum[b];
        cum[b + 1] = units as f64 / UNITS_PER_ONE;
    }
    s.tmp.clear();
    s.tmp.resize(s.keys.len(), 0);
    let mut next = start;
    for &key in &s.keys {
        let b = (key >> 40) as usize;
        s.tmp[next[b]] = key;
        next[b] += 1;
    }
    let mut buckets = Buckets {
        atoms: &mut s.tmp,
        start: &start,
        sorted: [false; BUCKETS],
    };
    let nonempty = |b: usize| count[b] > 0;
    for (o, &q) in out.iter_mut().zip(qs) {
        if q.is_nan() {
            *o = f64::NAN;
            continue;
        }
        // The first atom whose centre is above q is in the first non-empty bucket whose
        // cumulative weight ends above q (every centre lies strictly inside its bucket's
        // cumulative span), or, if all of that bucket's centres are at most q, first in the
        // next non-empty bucket.
        let Some(b) = (0..BUCKETS).find(|&b| nonempty(b) && cum[b + 1] > q) else {
            // Every centre is at most q: the last atom's value.
            let last = (0..BUCKETS).rev().find(|&b| nonempty(b));
            *o = last.map_or(f64::NAN, |b| grid.value(buckets.last(b)));
            continue;
        };
        // (centre, value) of the first atom above q and of the one before it, if any.
        let mut hi: Option<(f64, f64)> = None;
        let mut lo: Option<(f64, f64)> = None;
        let mut c = cum[b];
        for &key in buckets.get(b) {
            let w = weight(key);
            let centre = c + 0.5 * w;
            if centre > q {
                hi = Some((centre, grid.value(key)));
                break;
            }
            lo = Some((centre, grid.value(key)));
            c += w;
        }
        if hi.is_none() {
            match (b + 1..BUCKETS).find(|&n| nonempty(n)) {
                Some(n) => {
                    let key = buckets.get(n)[0];
                    hi = Some((cum[n] + 0.5 * weight(key), grid.value(key)));
                }
                None => {
                    // Every centre is at most q after all: the last atom, bucket b's last.
                    *o = lo.map_or(f64::NAN, |l| l.1);
                    continue;
                }
            }
        }
        if lo.is_none() {
            // The atom found opens bucket b: the one before closes the previous non-empty
            // bucket, its cumulative weight ending where bucket b's starts.
            lo = (0..b).rev().find(|&p| nonempty(p)).map(|p| {
                let key = buckets.last(p);
                let w = weight(key);
                ((cum[b] - w) + 0.5 * w, grid.value(key))
            });
        }
        let hi = hi.expect("set above");
        *o = match lo {
            None => hi.1,
            Some(lo) => between(lo, hi, q),
        };
    }
}

/// A row's atoms scattered by bucket, each bucket sorted on first use.
struct Buckets<'a> {
    atoms: &'a mut [u64],
    start: &'a [usize; BUCKETS + 1],
    sorted: [bool; BUCKETS],
}

impl Buckets<'_> {
    /// Bucket `b`'s atoms in full-sort order.
    fn get(&mut self, b: usize) -> &[u64] {
        let atoms = &mut self.atoms[self.start[b]..self.start[b + 1]];
        if !self.sorted[b] {
            // Stable: ties keep tree, then atom order, as in the full sort.
            atoms.sort_by_key(|k| k >> 32);
            self.sorted[b] = true;
        }
        atoms
    }

    /// The last atom of non-empty bucket `b`.
    fn last(&mut self, b: usize) -> u64 {
        *self.get(b).last().expect("a non-empty bucket")
    }
}

/// LSD radix sort of `keys` by bits 32..48 (the 16-bit grid position); the low 32 bits are
/// payload.
fn radix_sort_grid(keys: &mut Vec<u64>, tmp: &mut Vec<u64>) {
    if keys.len() < 64 {
        keys.sort_unstable_by_key(|k| k >> 32);
        return;
    }
    tmp.clear();
    tmp.resize(keys.len(), 0);
    for shift in [32u32, 40] {
        let mut counts = [0u32; 256];
        for &k in keys.iter() {
            counts[((k >> shift) & 0xff) as usize] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let v = *c;
            *c = sum;
            sum += v;
        }
        let dst = &mut tmp[..];
        for &k in keys.iter() {
            let d = ((k >> shift) & 0xff) as usize;
            dst[counts[d] as usize] = k;
            counts[d] += 1;
        }
        std::mem::swap(keys, tmp);
    }
}

/// Piecewise-linear interpolation of the weighted empirical quantile function through the atom
/// centers; clamps outside the first/last center, which makes out-of-range `q` clamp too.
#[inline]
fn interpolate(centers: &[f64], values: &[f64], q: f64) -> f64 {
    if q.is_nan() || values.is_empty() {
        return f64::NAN;
    }
    let i = centers.partition_point(|&c| c <= q);
    if i == 0 {
        return values[0];
    }
    if i == centers.len() {
        return values[i - 1];
    }
    between((centers[i - 1], values[i - 1]), (centers[i], values[i]), q)
}

/// The line through two (centre, value) points at `q`, kept between the two values.
#[inline]
fn between((c0, v0): (f64, f64), (c1, v1): (f64, f64), q: f64) -> f64 {
    let t = if c1 > c0 { (q - c0) / (c1 - c0) } else { 0.0 };
    // Clamp so rounding can never break monotonicity across segment boundaries.
    (v0 + (v1 - v0) * t).clamp(v0, v1)
}
