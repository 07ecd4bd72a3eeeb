//! A risk tracker's state kept across restarts: the budget's ledger, the margin and the short
//! steps of the reporting window are what `max_short` is accounted by, and a restart that
//! forgot them would start a spent budget afresh (and report a 7-day short share of a few
//! minutes). Saved with the online calibration's offsets (`run.calibration_state`, the
//! file's `risk` list), restored with the same rule: only a state saved at or before the
//! run's first cycle.
//!
//! Unlike the offsets, the ledger is not the model's: it counts the steps that were short, so
//! it is kept whatever model the run loads. A workload whose budget or window changed since
//! starts afresh, as it does live ([`RiskTracker::observe`]).
//!
//! The demand window's histogram is saved per bucket only; its total and count are summed
//! again on load, so no file can make them disagree.

use super::floor::DemandWindow;
use super::{Calibrator, RiskTracker, ShortWindow, MAX_CREDIT, THETA_MAX, THETA_MIN};
use std::collections::{HashSet, VecDeque};

/// One workload's calibrator as saved.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedRisk {
    workload: String,
    budget: f64,
    gamma: f64,
    theta: f64,
    theta_start: f64,
    debt: f64,
    steps: u64,
    shorts: u64,
    last_ts: Option<i64>,
    /// The reporting window, seconds.
    window: i64,
    /// `(bucket start, steps, short steps)`, oldest first.
    short_buckets: Vec<(i64, u64, u64)>,
    /// `(bucket start, [(bin, count)])`, oldest first.
    demand_buckets: Vec<(i64, Vec<(i32, u32)>)>,
}

impl RiskTracker {
    /// Every workload's calibrator, in name order.
    pub fn to_saved(&self) -> Vec<SavedRisk> {
        let mut out: Vec<SavedRisk> = self
            .workloads
            .iter()
            .map(|(name, c)| SavedRisk {
                workload: name.clone(),
                budget: c.budget,
                gamma: c.gamma,
                theta: c.theta,
                theta_start: c.theta_start,
                debt: c.debt,
                steps: c.steps,
                shorts: c.shorts,
                last_ts: c.last_ts,
                window: c.window.window,
                short_buckets: c.window.buckets.iter().copied().collect(),
                demand_buckets: c.demand.saved_buckets(),
            })
            .collect();
        out.sort_by(|a, b| a.workload.cmp(&b.workload));
        out
    }

    /// Starts each workload in `checked` from its saved calibrator (replacing what it had).
    /// Returns how many were restored.
    pub fn restore(&mut self, checked: CheckedRisk) -> usize {
        let n = checked.0.len();
        self.workloads.extend(checked.0);
        n
    }
}

/// Saved calibrators converted back and checked, ready for [`RiskTracker::restore`]. A file's
/// ledgers are converted once, when it is read: what was checked is what is restored, and a
/// file with one impossible ledger is refused whole rather than restored in part.
#[derive(Debug, Default)]
pub struct CheckedRisk(Vec<(String, Calibrator)>);

impl CheckedRisk {
    /// Converts every saved calibrator. The error names the first workload no calibrator can
    /// be in, and what is wrong, or the first that appears twice.
    pub fn new(saved: Vec<SavedRisk>) -> Result<Self, String> {
        let mut out: Vec<(String, Calibrator)> = Vec::with_capacity(saved.len());
        let mut seen = HashSet::with_capacity(saved.len());
        for s in saved {
            let name = s.workload.clone();
            let c = s
                .into_calibrator()
                .map_err(|e| format!("risk of workload '{name}': {e}"))?;
            if !seen.insert(name.clone()) {
                return Err(format!("risk of workload '{name}' appears twice"));
            }
            out.push((name, c));
        }
        Ok(CheckedRisk(out))
    }

    /// How many workloads' ledgers it holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when it holds no ledger.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl SavedRisk {
    fn into_calibrator(self) -> Result<Calibrator, String> {
        let finite = |v: f64, what: &str| {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(format!("{what} is {v}"))
            }
        };
        let budget = finite(self.budget, "budget")?;
        if !(1e-6..=0.5).contains(&budget) {
            return Err(format!("budget {budget} is outside [1e-6, 0.5]"));
        }
        if finite(self.gamma, "gamma")? <= 0.0 {
            return Err(format!("gamma {} is not positive", self.gamma));
        }
        for (v, what) in [(self.theta, "theta"), (self.theta_start, "theta_start")] {
            if !(THETA_MIN..=THETA_MAX).contains(&finite(v, what)?) {
                return Err(format!("{what} {v} is outside [{THETA_MIN}, {THETA_MAX}]"));
            }
        }
        if finite(self.debt, "debt")? < -MAX_CREDIT {
            return Err(format!("debt {} is below -{MAX_CREDIT}", self.debt));
        }
        if self.shorts > self.steps {
            return Err(format!(
                "{} short steps of {} steps",
                self.shorts, self.steps
            ));
        }
        if self.window < 1 {
            return Err(format!("window {} s is not positive", self.window));
        }
        let mut window = ShortWindow::new(self.window);
        check_starts(
            self.short_buckets.iter().map(|b| b.0),
            self.window,
            window.bucket,
            "short_buckets",
        )?;
        if let Some(b) = self.short_buckets.iter().find(|b| b.2 > b.1) {
            return Err(format!(
                "short_buckets: bucket at {} has {} short steps of {}",
                b.0, b.2, b.1
            ));
        }
        window.buckets = VecDeque::from(self.short_buckets);
        check_starts(
            self.demand_buckets.iter().map(|b| b.0),
            self.window,
            DemandWindow::bucket_of(self.window),
            "demand_buckets",
        )?;
        let demand = DemandWindow::from_saved(self.window, self.demand_buckets)?;
        Ok(Calibrator {
            budget,
            gamma: self.gamma,
            theta: self.theta,
            theta_start: self.theta_start,
            debt: self.debt,
            steps: self.steps,
            shorts: self.shorts,
            window,
            demand,
            last_ts: self.last_ts,
        })
    }
}

/// Bucket starts must be whole buckets, ascending, and no more than a `window` holds: a file
/// cannot make a window hold more memory than a live one does.
fn check_starts(
    starts: impl ExactSizeIterator<Item = i64>,
    window: i64,
    bucket: i64,
    what: &str,
) -> Result<(), String> {
    // Buckets overlapping a window `(ts − window, ts]`.
    let most = (window + bucket - 1) / bucket + 1;
    if starts.len() as i64 > most {
        return Err(format!(
            "{what}: {} buckets, a window holds at most {most}",
            starts.len()
        ));
    }
    let mut previous = None;
    for s in starts {
        if s.rem_euclid(bucket) != 0 {
            return Err(format!(
                "{what}: {s} is not the start of a {bucket} s bucket"
            ));
        }
        if previous.is_some_and(|p| s <= p) {
            return Err(format!("{what}: bucket starts are not ascending at {s}"));
        }
        previous = Some(s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::WorkloadSpec;

    fn spec(name: &str) -> WorkloadSpec {
        let mut s = WorkloadSpec::new(name, "d", 10.0, 100);
        s.max_short = Some(0.01);
        s.short_window = 3_600;
        s
    }

    #[test]
    fn a_restored_tracker_goes_on_as_the_saved_one_would() {
        let (a, b) = (spec("a"), spec("b"));
        let mut live = RiskTracker::new();
        for t in 0..500i64 {
            // Bursts every so often that 3 replicas cannot serve.
            let d = if t % 37 < 3 {
                45.0
            } else {
                12.0 + (t % 5) as f64
            };
            live.observe(&a, t * 60, Some(d), 3);
            live.observe(&b, t * 60, Some(d / 2.0), 2);
        }
        let saved = live.to_saved();
        assert_eq!(saved.len(), 2);
        let text = serde_json::to_string(&saved).unwrap();
        let back: Vec<SavedRisk> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, saved);
        let mut restored = RiskTracker::new();
        assert_eq!(restored.restore(CheckedRisk::new(back).unwrap()), 2);
        // A step already counted is not counted twice; the next ones move both alike.
        for t in 499..700i64 {
            let d = if t % 41 < 2 { 60.0 } else { 14.0 };
            for tr in [&mut live, &mut restored] {
                tr.observe(&a, t * 60, Some(d), 3);
                tr.observe(&b, t * 60, Some(d), 2);
            }
        }
        for s in [&a, &b] {
            assert_eq!(restored.level(s), live.level(s), "{}", s.name);
            assert_eq!(restored.stats(s), live.stats(s), "{}", s.name);
        }
        assert!(live.level(&a).unwrap().realised.unwrap() > 0.0);
    }

    #[test]
    fn an_impossible_state_names_the_workload_and_what() {
        let mut live = RiskTracker::new();
        for t in 0..200i64 {
            live.observe(
                &spec("web"),
                t * 60,
                Some(if t % 9 == 0 { 50.0 } else { 5.0 }),
                2,
            );
        }
        let good = live.to_saved();
        type Edit = fn(&mut SavedRisk);
        let cases: Vec<(Edit, &str)> = vec![
            (|s| s.theta = 9.0, "theta 9 is outside"),
            (|s| s.shorts = s.steps + 1, "short steps of"),
            (|s| s.budget = f64::NAN, "budget is NaN"),
            (
                |s| s.short_buckets[0].2 = s.short_buckets[0].1 + 1,
                "short_buckets: bucket at",
            ),
            (
                |s| s.short_buckets.push(s.short_buckets[0]),
                "not ascending",
            ),
            (|s| s.demand_buckets[0].0 += 1, "is not the start of a"),
            (|s| s.demand_buckets[0].1[0].1 = 0, "empty or twice"),
            (
                |s| s.short_buckets = (0..1000).map(|i| (i * 21, 1, 0)).collect(),
                "a window holds at most",
            ),
        ];
        for (edit, expect) in cases {
            let mut bad = good.clone();
            edit(&mut bad[0]);
            let e = CheckedRisk::new(bad).unwrap_err();
            assert!(e.contains("workload 'web'") && e.contains(expect), "{e}");
        }
        let twice = [good.clone(), good.clone()].concat();
        let e = CheckedRisk::new(twice).unwrap_err();
        assert_eq!(e, "risk of workload 'web' appears twice");
        assert_eq!(CheckedRisk::new(good).unwrap().len(), 1);
    }
}
