//! The demand floor: upper quantiles of a workload's own demand over the reporting window,
//! kept in fixed memory, for when no margin on the forecast can meet the budget.
//!
//! Why it exists: a series idle at 0.1 % that jumps to 100 % within one boot time gives the
//! forecast nothing to scale: any margin times a near-zero forecast is still near zero, so the
//! margin runs to its cap and the budget is missed (assumption A of the module doc fails). What
//! *does* meet the budget on such a series is what a static policy does: provision at a high
//! percentile of the demand seen. The calibrator reaches for this floor only once the margin is
//! at its cap and steps are still short, and lets go of it first when they stop (see
//! [`Calibrator::update`](super::Calibrator::update)).
//!
//! Memory is fixed per workload whatever the step: values go into logarithmic bins 2 % wide
//! (a value is counted at its bin's *upper* edge, so the floor errs on the side of capacity),
//! one sparse histogram per time bucket of the window plus their running total.

use std::collections::{BTreeMap, VecDeque};

/// Ratio between a bin's upper and lower edge: the floor is at most 2 % above the true
/// quantile of the window's values.
const BIN_RATIO: f64 = 1.02;
/// Time buckets per window: older values leave the window a bucket at a time.
const BUCKETS: i64 = 168;
/// The bin of zero and negative values (idle), below every positive bin.
const ZERO_BIN: i32 = i32::MIN;

/// Sliding-window histogram of demand values.
#[derive(Debug, Clone)]
pub(super) struct DemandWindow {
    window: i64,
    bucket: i64,
    /// (bucket start, value bins → count), oldest first.
    buckets: VecDeque<(i64, BTreeMap<i32, u32>)>,
    /// The sum of the buckets' bins.
    total: BTreeMap<i32, u64>,
    count: u64,
}

fn bin(v: f64) -> i32 {
    if v <= 0.0 {
        return ZERO_BIN;
    }
    let k = (v.ln() / BIN_RATIO.ln()).ceil();
    k.clamp(f64::from(i32::MIN + 1), f64::from(i32::MAX)) as i32
}

fn value(bin: i32) -> f64 {
    if bin == ZERO_BIN {
        0.0
    } else {
        BIN_RATIO.powi(bin)
    }
}

impl DemandWindow {
    /// A window of `window` seconds (at least 1).
    pub(super) fn new(window: i64) -> Self {
        let window = window.max(1);
        DemandWindow {
            window,
            bucket: (window / BUCKETS).max(1),
            buckets: VecDeque::new(),
            total: BTreeMap::new(),
            count: 0,
        }
    }

    /// Adds the demand `v` of the step at `ts` (finite values only; others are ignored) and
    /// drops the buckets that have left the window.
    pub(super) fn push(&mut self, ts: i64, v: f64) {
        if !v.is_finite() {
            return;
        }
        let b = bin(v);
        let start = ts.div_euclid(self.bucket) * self.bucket;
        match self.buckets.back_mut() {
            Some((s, bins)) if *s == start => *bins.entry(b).or_insert(0) += 1,
            _ => self.buckets.push_back((start, BTreeMap::from([(b, 1)]))),
        }
        *self.total.entry(b).or_insert(0) += 1;
        self.count += 1;
        let oldest = ts.saturating_sub(self.window);
        while self
            .buckets
            .front()
            .is_some_and(|b| b.0.saturating_add(self.bucket) <= oldest)
        {
            let Some((_, bins)) = self.buckets.pop_front() else {
                break;
            };
            for (k, n) in bins {
                let n = u64::from(n);
                self.count -= n;
                if let Some(t) = self.total.get_mut(&k) {
                    *t -= n;
                    if *t == 0 {
                        self.total.remove(&k);
                    }
                }
            }
        }
    }

    /// The `p` quantile (0..=1) of the window's values, rounded up to its bin's edge: the
    /// smallest bin edge with at most `(1 − p) × n` values above it. `None` while empty.
    pub(super) fn quantile(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        // The slack keeps `(1 − 0.8) × 5` (0.9999999999999998 in floating point) at 1.
        let allowed_above = ((1.0 - p.clamp(0.0, 1.0)) * self.count as f64 + 1e-9).floor() as u64;
        let mut above = 0u64;
        for (&k, &n) in self.total.iter().rev() {
            above += n;
            if above > allowed_above {
                return Some(value(k));
            }
        }
        self.total.keys().next().map(|&k| value(k))
    }
}

/// Kept across restarts (`saved`).
impl DemandWindow {
    /// The buckets as saved: `(start, [(bin, count)])`.
    pub(super) fn saved_buckets(&self) -> Vec<(i64, Vec<(i32, u32)>)> {
        self.buckets
            .iter()
            .map(|(s, bins)| (*s, bins.iter().map(|(&k, &n)| (k, n)).collect()))
            .collect()
    }

    /// Seconds per bucket of a window of `window` seconds.
    pub(super) fn bucket_of(window: i64) -> i64 {
        DemandWindow::new(window).bucket
    }

    /// A window of `window` seconds holding the saved buckets (their starts checked by the
    /// caller), its total summed from them.
    pub(super) fn from_saved(
        window: i64,
        saved: Vec<(i64, Vec<(i32, u32)>)>,
    ) -> Result<Self, String> {
        let mut w = DemandWindow::new(window);
        for (start, bins) in saved {
            let mut map = BTreeMap::new();
            for (k, n) in bins {
                if n == 0 || map.insert(k, n).is_some() {
                    return Err(format!(
                        "demand_buckets: bucket at {start} has bin {k} empty or twice"
                    ));
                }
                *w.total.entry(k).or_insert(0) += u64::from(n);
                w.count += u64::from(n);
            }
            w.buckets.push_back((start, map));
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_top_quantile_is_the_window_maximum_rounded_up() {
        let mut w = DemandWindow::new(3_600);
        for (i, v) in [0.0, 1.0, 5.0, 100.0, 3.0].into_iter().enumerate() {
            w.push(i as i64 * 60, v);
        }
        let max = w.quantile(1.0).unwrap();
        assert!((100.0..=102.0).contains(&max), "{max}");
        assert_eq!(w.quantile(0.0), Some(0.0));
        // 80 %: one value of five may be above.
        let q = w.quantile(0.8).unwrap();
        assert!((5.0..=5.1).contains(&q), "{q}");
    }

    #[test]
    fn values_leave_with_their_bucket() {
        let mut w = DemandWindow::new(3_600);
        w.push(0, 1_000.0);
        for k in 1..=120 {
            w.push(k * 60, 1.0);
        }
        let top = w.quantile(1.0).unwrap();
        assert!(
            top < 1.05,
            "the spike two hours ago is out of a 1 h window: {top}"
        );
        assert!(w.count <= 62, "{}", w.count);
    }

    proptest! {
        /// Against the exact order statistic: never below it, at most one bin above it.
        #[test]
        fn quantile_bounds_the_exact_one(
            vals in proptest::collection::vec(0.0f64..1e6, 1..300),
            p in 0.5f64..=1.0,
        ) {
            let mut w = DemandWindow::new(1_000_000);
            for (i, v) in vals.iter().enumerate() {
                w.push(i as i64, *v);
            }
            let mut sorted = vals.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len();
            let allowed = ((1.0 - p) * n as f64 + 1e-9).floor() as usize;
            let exact = sorted[n - 1 - allowed.min(n - 1)];
            let q = w.quantile(p).unwrap();
            prop_assert!(q >= exact * (1.0 - 1e-12), "{q} < {exact}");
            prop_assert!(q <= exact * BIN_RATIO * (1.0 + 1e-9) + 1e-300, "{q} ≫ {exact}");
        }
    }
}
