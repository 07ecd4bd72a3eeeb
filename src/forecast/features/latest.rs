//! The newest origin's row alone: what the live loop and every batched forecast need, one row
//! per series per cycle.
//!
//! [`compute`](super::compute) builds rows for a range of origins in one pass that keeps
//! prefix sums and rolling-maximum deques for every step from `lookback` before the first
//! origin: for one origin that is ~300 steps of pushes into six vectors and six deques to read
//! one value of each. [`latest`] reads the same window directly: the last gap by one backward
//! scan, the rolling maxima (all windows end at the origin) by one backward scan of the longest,
//! the sums by one forward pass.
//!
//! Rule: its row, level and base are `compute`'s for the last origin **to the bit**, proved by
//! a property test on random series with gaps, ties and signed zeros. That holds because
//! * the sums are accumulated from the same first index (`begin`), in the same order, with
//!   gaps as 0, and each window's sum is the same difference of two running totals;
//! * a maximum scanned backwards with a strict `>` keeps the newest of equal values, which
//!   is what the deque keeps (it drops an older value `<=` a newer one), so even `0.0` against
//!   `-0.0` comes out alike;
//! * lags, seasonal and calendar columns are `compute`'s own code.

use super::{calendar_columns, seasonal_columns, FeatureSpec, RATIO_CAP};

/// The newest origin's level and base, as [`Rows::level`](super::Rows::level) and
/// [`Rows::base`](super::Rows::base) give them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    /// The level the row was normalised by.
    pub level: f64,
    /// The peak of the last window: the persistence forecast the target is measured from.
    pub base: f64,
}

/// Appends to `x` the feature row of the newest value of `values` (the first at `start` Unix
/// seconds) and returns its level and base; appends nothing and returns `None` where
/// [`compute`](super::compute) gives no row (a gap at the origin, too little history since the
/// last gap, no values). Equal to `compute(spec, values, start, n - 1..n)` to the bit.
pub fn latest(spec: &FeatureSpec, values: &[f64], start: i64, x: &mut Vec<f64>) -> Option<Latest> {
    let t = values.len().checked_sub(1)?;
    if !values[t].is_finite() {
        return None;
    }
    let begin = t.saturating_sub(spec.lookback());
    let seg_start = values[begin..=t]
        .iter()
        .rposition(|v| !v.is_finite())
        .map_or(begin, |i| begin + i + 1);
    if t + 1 - seg_start < spec.min_history {
        return None;
    }
    let h = spec.horizon();
    let long = spec.rolling.iter().copied().max().unwrap_or(1);
    // First index of a window of `w` values ending at t, clipped at the segment's start.
    let lo_of = |w: usize| (t + 1).saturating_sub(w).max(seg_start);

    let sums = Sums::new(values, begin, t, spec, long, lo_of);
    let los = spec.rolling.iter().chain([&h]).map(|&w| lo_of(w));
    let peaks = Peaks::new(values, t, los, lo_of(long));
    let abs_peak = peaks.abs;
    let recent = peaks.of(lo_of(h));
    let lvl = sums
        .mean(Sum::Abs, lo_of(spec.level_steps))
        .max(0.1 * sums.mean(Sum::Abs, lo_of(long)))
        .max(0.01 * abs_peak)
        .max(1e-9);
    let norm = |v: f64| (v / lvl).clamp(-RATIO_CAP, RATIO_CAP);

    let row0 = x.len();
    for &lag in &spec.lags {
        x.push(norm(values[t.saturating_sub(lag).max(seg_start)]));
    }
    let mut roll_max0 = f64::NAN;
    for (j, &w) in spec.rolling.iter().enumerate() {
        let lo = lo_of(w);
        let m = sums.mean(Sum::Value, lo);
        let var = (sums.mean(Sum::Square, lo) - m * m).max(0.0);
        let mx = peaks.of(lo);
        if j == 0 {
            roll_max0 = mx;
        }
        x.extend([norm(m), norm(mx), norm(var.sqrt())]);
    }
    let nf = spec.n_features();
    x.resize(row0 + nf, 0.0);
    let c = row0 + spec.lags.len() + 3 * spec.rolling.len();
    seasonal_columns(spec, values, t, h, roll_max0, norm, &mut x[c..]);
    let c = c + 2 * spec.season.len();
    calendar_columns(start + t as i64 * spec.step, &mut x[c..]);
    Some(Latest {
        level: lvl,
        base: recent,
    })
}

/// The maxima of the windows `lo..=t` for a few `lo`, and of `|v|` over one more window, in
/// one backward scan from `t`. All the windows end at `t` and lie after the last gap, so
/// each one's maximum is the running maximum when the scan reaches its first index: the same
/// comparisons, in the same order (newest first, a strict `>`, so of equal values the newest
/// is kept, as the deque keeps it) as a scan of that window alone, without rescanning the
/// shorter windows inside the longest.
struct Peaks {
    /// `(lo, maximum of values[lo..=t])`, `lo` descending.
    at: Vec<(usize, f64)>,
    /// Maximum of `|v|` over `abs_lo..=t`.
    abs: f64,
}

impl Peaks {
    fn new(values: &[f64], t: usize, los: impl Iterator<Item = usize>, abs_lo: usize) -> Self {
        let mut at: Vec<(usize, f64)> = los.map(|lo| (lo, f64::NAN)).collect();
        at.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
        at.dedup_by_key(|a| a.0);
        let (mut m, mut a) = (values[t], values[t].abs());
        let mut next = 0;
        // Windows of one value, `lo = t`.
        while next < at.len() && at[next].0 == t {
            at[next].1 = m;
            next += 1;
        }
        let mut abs = a;
        let first = at.last().map_or(t, |l| l.0).min(abs_lo);
        for i in (first..t).rev() {
            let v = values[i];
            if v > m {
                m = v;
            }
            if v.abs() > a {
                a = v.abs();
            }
            if i == abs_lo {
                abs = a;
            }
            while next < at.len() && at[next].0 == i {
                at[next].1 = m;
                next += 1;
            }
        }
        Peaks { at, abs }
    }

    /// The maximum of `values[lo..=t]`, for a `lo` given to [`Peaks::new`].
    fn of(&self, lo: usize) -> f64 {
        self.at.iter().find(|p| p.0 == lo).map_or(f64::NAN, |p| p.1)
    }
}

/// Which running total.
#[derive(Clone, Copy)]
enum Sum {
    Value,
    Square,
    Abs,
}

/// Running totals of value, value² and |value| from `begin` (gaps as 0), at the end (`t + 1`)
/// and at each window's first index: `compute`'s prefix sums at just the indices it reads.
struct Sums {
    t: usize,
    /// `(index, [value, square, abs])` before adding `values[index]`, ascending by index.
    marks: Vec<(usize, [f64; 3])>,
    total: [f64; 3],
}

impl Sums {
    fn new(
        values: &[f64],
        begin: usize,
        t: usize,
        spec: &FeatureSpec,
        long: usize,
        lo_of: impl Fn(usize) -> usize,
    ) -> Self {
        let mut at: Vec<usize> = spec
            .rolling
            .iter()
            .copied()
            .chain([spec.level_steps, long])
            .map(lo_of)
            .collect();
        at.sort_unstable();
        at.dedup();
        let mut marks = Vec::with_capacity(at.len());
        let mut s = [0.0f64; 3];
        let mut next = at.iter().copied().peekable();
        for (i, &v) in values.iter().enumerate().take(t + 1).skip(begin) {
            while next.next_if_eq(&i).is_some() {
                marks.push((i, s));
            }
            let vv = if v.is_finite() { v } else { 0.0 };
            s[0] += vv;
            s[1] += vv * vv;
            s[2] += vv.abs();
        }
        Sums { t, marks, total: s }
    }

    /// Mean of the running total `which` over `lo..=t`, as `compute`'s `mean_of` gives it.
    fn mean(&self, which: Sum, lo: usize) -> f64 {
        let k = which as usize;
        let from = self
            .marks
            .iter()
            .find(|m| m.0 == lo)
            .map_or(0.0, |m| m.1[k]);
        (self.total[k] - from) / (self.t + 1 - lo) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::super::compute;
    use super::*;
    use proptest::prelude::*;

    /// Values from a small set (ties, signed zeros, a huge one for the ratio cap) or a wave,
    /// with gaps.
    fn series() -> impl Strategy<Value = Vec<f64>> {
        let v = prop_oneof![
            4 => 0.0f64..500.0,
            1 => Just(0.0),
            1 => Just(-0.0),
            1 => Just(f64::NAN),
            1 => Just(7.0),
            1 => -50.0f64..50.0,
            1 => Just(1e12),
        ];
        proptest::collection::vec(v, 0..2300)
    }

    fn specs() -> Vec<FeatureSpec> {
        let mut short = FeatureSpec::new(60, 180).unwrap();
        short.lags = vec![0, 1, 2, 3, 6, 12];
        short.season = vec![2, 1440];
        vec![
            FeatureSpec::new(300, 900).unwrap(),
            FeatureSpec::new(60, 180).unwrap(),
            short,
            FeatureSpec::new(1800, 900).unwrap(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// `latest` is `compute`'s last row to the bit (row, level, base), and gives no row
        /// exactly where `compute` gives none.
        #[test]
        fn latest_is_computes_last_row_to_the_bit(
            values in series(),
            gap_tail in 0usize..3,
            start in 1_600_000_000i64..1_800_000_000,
        ) {
            let mut values = values;
            // Now and then a series whose newest values are clean, so most cases give a row.
            if gap_tail == 0 {
                values.iter_mut().rev().take(300).for_each(|v| if v.is_nan() { *v = 3.0 });
            }
            let n = values.len();
            for spec in specs() {
                let rows = compute(&spec, &values, start, n.saturating_sub(1)..n);
                let mut x = vec![-1.0];
                let got = latest(&spec, &values, start, &mut x);
                match got {
                    None => {
                        prop_assert!(rows.is_empty());
                        prop_assert_eq!(x.len(), 1);
                    }
                    Some(l) => {
                        prop_assert_eq!(rows.len(), 1);
                        prop_assert_eq!(l.level.to_bits(), rows.level[0].to_bits());
                        prop_assert_eq!(l.base.to_bits(), rows.base[0].to_bits());
                        let want: Vec<u64> = rows.x.row(0).iter().map(|v| v.to_bits()).collect();
                        let have: Vec<u64> = x[1..].iter().map(|v| v.to_bits()).collect();
                        prop_assert_eq!(have, want);
                    }
                }
            }
        }
    }
}
