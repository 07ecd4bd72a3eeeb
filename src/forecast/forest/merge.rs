//! One row's quantiles from its leaves: the atoms of the row's leaf records, one per tree,
//! merged into one weighted distribution and read at the levels asked for.
//!
//! The distribution is defined by a full sort (`merge_sorted`): every atom re-quantised onto
//! one 16-bit grid over the row's range, sorted by grid position (ties in tree, then atom
//! order), cumulative weights summed in that order, quantiles interpolated between atom
//! centres. Only the few atoms next to each level asked for matter, so the path taken
//! (`merge_select`) weighs the grid's high-byte buckets (one pass, [`Lanes`]) and gathers and
//! sorts just the buckets the levels fall in. Its answers are the full sort's to the bit,
//! because
//! * the atoms of a bucket keep their full-sort order (gathered in tree, then atom order, then
//!   a stable sort inside the bucket), and
//! * every cumulative weight is exact in f64, so summing per bucket first changes no sum: an
//!   atom's weight `1/(T k)` is an f32, all of them multiples of the smallest one's unit in the
//!   last place, and their total (about 1) spans fewer than 53 bits of those units while
//!   `T × k < 2^26` ([`EXACT_LIMIT`]); beyond that, the full sort runs. Being exact, the
//!   bucket sums are kept as integers (units of 2^-49, of which every weight is a whole
//!   number), converted to f64 only for the cumulative weights, with no rounding.

use super::lanes::{self, atom_weight, weight, Grid, Lanes, Quantiser, BUCKETS};
use super::storage::{leaf_header, Tree, LEAF_HEADER};

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
    lanes: Lanes,
}

/// Fills `keys` with the row's atoms in tree, then atom order, each key
/// `grid position << 32 | weight as f32 bits`.
fn atoms(trees: &[Tree], y_offset: f64, leaves: &[u32], keys: &mut Vec<u64>) -> Grid {
    let (gmin, gmax, _) = lanes::range(trees, leaves);
    let (qz, grid) = Quantiser::new(gmin, gmax, y_offset);
    keys.clear();
    for (t, &o) in trees.iter().zip(leaves) {
        let blob = &t.leaves;
        let o = o as usize;
        let (lo, span, k) = leaf_header(blob, o);
        // Low half of the key: the atom's weight 1/(T k) as f32 bits (no divide later).
        let w = u64::from(atom_weight(trees.len(), k).0);
        let step = Quantiser::step(span);
        let codes = &blob[o + LEAF_HEADER..o + LEAF_HEADER + k];
        keys.extend(
            codes
                .iter()
                .map(|&c| (u64::from(qz.position(lo, step, c)) << 32) | w),
        );
    }
    grid
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
    let (gmin, gmax, kmax) = lanes::range(trees, leaves);
    if (trees.len() as u64).saturating_mul(kmax as u64) < EXACT_LIMIT {
        merge_select(trees, y_offset, leaves, (gmin, gmax), qs, out, s);
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
    let grid = atoms(trees, y_offset, leaves, &mut s.keys);
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

/// The same answers as [`merge_sorted`], sorting only the buckets the levels fall in; the
/// row's atoms span `gmin..=gmax`.
fn merge_select(
    trees: &[Tree],
    y_offset: f64,
    leaves: &[u32],
    (gmin, gmax): (f32, f32),
    qs: &[f64],
    out: &mut [f64],
    s: &mut MergeScratch,
) {
    let (qz, grid) = Quantiser::new(gmin, gmax, y_offset);
    let l = &mut s.lanes;
    l.fill(trees, leaves, qz);
    l.gather(qs);
    for (o, &q) in out.iter_mut().zip(qs) {
        *o = level(l, &grid, q);
    }
}

/// The quantile at `q` of the row laid out in `l`: the line between the centres of the last
/// atom whose centre is at most `q` and the first above it.
fn level(l: &mut Lanes, grid: &Grid, q: f64) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    // The first atom whose centre is above q is in the first non-empty bucket whose cumulative
    // weight ends above q (every centre lies strictly inside its bucket's cumulative span), or,
    // if all of that bucket's centres are at most q, first in the next non-empty bucket.
    let Some(b) = l.bucket_above(q) else {
        // Every centre is at most q: the last atom's value.
        let last = (0..BUCKETS).rev().find(|&b| l.nonempty(b));
        return last.map_or(f64::NAN, |b| grid.value(last_of(l, b)));
    };
    // (centre, value) of the first atom above q and of the one before it, if any.
    let mut hi: Option<(f64, f64)> = None;
    let mut lo: Option<(f64, f64)> = None;
    let mut c = l.cum(b);
    for &key in l.bucket(b) {
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
        match (b + 1..BUCKETS).find(|&n| l.nonempty(n)) {
            Some(n) => {
                let key = l.bucket(n)[0];
                hi = Some((l.cum(n) + 0.5 * weight(key), grid.value(key)));
            }
            // Every centre is at most q after all: the last atom, bucket b's last.
            None => return lo.map_or(f64::NAN, |l| l.1),
        }
    }
    if lo.is_none() {
        // The atom found opens bucket b: the one before closes the previous non-empty bucket,
        // its cumulative weight ending where bucket b's starts.
        lo = (0..b).rev().find(|&p| l.nonempty(p)).map(|p| {
            let key = last_of(l, p);
            let w = weight(key);
            ((l.cum(b) - w) + 0.5 * w, grid.value(key))
        });
    }
    let hi = hi.expect("set above");
    match lo {
        None => hi.1,
        Some(lo) => between(lo, hi, q),
    }
}

/// The last atom of non-empty bucket `b`.
fn last_of(l: &mut Lanes, b: usize) -> u64 {
    *l.bucket(b).last().expect("a non-empty bucket")
}

/// LSD radix sort of `keys` by bits 32..48 (the 16-bit grid position); the low 32 bits are
/// payload.
fn radix_sort_grid(keys: &mut Vec<u64>, tmp: &mut Vec<u64>) {
    if keys.len() < 64 {
        // Stable, as the passes below are: ties keep tree, then atom order (an unstable sort
        // reorders atoms of equal position but different weights, and moves the centres).
        keys.sort_by_key(|k| k >> 32);
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
