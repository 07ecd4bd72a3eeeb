//! Accuracy tracking: every forecast is scored against the peak that actually arrived, per
//! series, and a model that has been wrong lately counts for less in the scale planner.
//!
//! A forecast of the peak over `(at, at + window]` is held until a sample at or after
//! `at + window` arrives (samples are expected in time order, as the collector delivers them),
//! then scored on two things:
//!
//! - the absolute error of its median against the actual peak, aggregated as a WAPE
//!   (`Σ|actual − p50| / Σ actual`, both as exponentially weighted sums so "lately" matters most
//!   and a near-zero actual cannot blow the ratio up);
//! - whether the actual peak was at or below its p90 (coverage, nominally 0.9).
//!
//! The weight is linear in WAPE between `good_wape` (weight 1) and `bad_wape` (weight 0), times
//! a coverage factor that is 1 down to `coverage_ok` and falls linearly to 0 at `coverage_bad`:
//! an under-forecasting model is the one that causes overload, so under-coverage is punished on
//! top of error. Until `min_scored` forecasts are scored the weight is the prior, `prior_weight`.

use crate::forecast::Forecast;
use crate::series::SeriesKey;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Tuning of the accuracy tracker: `[accuracy]` in `prescale.toml`; every key optional.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccuracyConfig {
    /// Smoothing per scored forecast (0..1]: 0.1 ≈ the last 20 forecasts matter. Default 0.1.
    pub alpha: f64,
    /// WAPE at or below which the forecast is fully trusted. Default 0.15.
    pub good_wape: f64,
    /// WAPE at or above which the forecast is not trusted at all (pure reactive). Default 0.5.
    pub bad_wape: f64,
    /// p90 coverage down to which no penalty applies. Default 0.8 (nominal 0.9 minus slack).
    pub coverage_ok: f64,
    /// p90 coverage at or below which the forecast is not trusted at all. Default 0.5.
    pub coverage_bad: f64,
    /// Scored forecasts needed before the measured weight replaces the prior. Default 5.
    pub min_scored: u32,
    /// Weight of a series with too few scored forecasts. Default 0.5: half-trust a new model,
    /// and the reactive floor still catches what it misses.
    pub prior_weight: f64,
    /// Most unscored forecasts kept per series (oldest dropped). Default 512.
    pub max_pending: usize,
}

impl Default for AccuracyConfig {
    fn default() -> Self {
        AccuracyConfig {
            alpha: 0.1,
            good_wape: 0.15,
            bad_wape: 0.5,
            coverage_ok: 0.8,
            coverage_bad: 0.5,
            min_scored: 5,
            prior_weight: 0.5,
            max_pending: 512,
        }
    }
}

impl AccuracyConfig {
    /// Checks every field; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let in01 = |v: f64| (0.0..=1.0).contains(&v);
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(format!(
                "accuracy.alpha must be in (0, 1], got {}",
                self.alpha
            ));
        }
        if !(self.good_wape.is_finite() && self.good_wape >= 0.0) {
            return Err(format!(
                "accuracy.good_wape must be ≥ 0, got {}",
                self.good_wape
            ));
        }
        if !(self.bad_wape.is_finite() && self.bad_wape > self.good_wape) {
            return Err(format!(
                "accuracy.bad_wape must be greater than good_wape ({}), got {}",
                self.good_wape, self.bad_wape
            ));
        }
        if !in01(self.coverage_ok) {
            return Err(format!(
                "accuracy.coverage_ok must be in [0, 1], got {}",
                self.coverage_ok
            ));
        }
        if !(in01(self.coverage_bad) && self.coverage_bad < self.coverage_ok) {
            return Err(format!(
                "accuracy.coverage_bad must be in [0, coverage_ok), got {}",
                self.coverage_bad
            ));
        }
        if !in01(self.prior_weight) {
            return Err(format!(
                "accuracy.prior_weight must be in [0, 1], got {}",
                self.prior_weight
            ));
        }
        if self.max_pending == 0 {
            return Err("accuracy.max_pending must be at least 1".to_string());
        }
        Ok(())
    }
}

/// What the exporter shows per series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AccuracyStats {
    /// Forecasts scored so far.
    pub scored: u64,
    /// Recent weighted absolute percentage error of the median; `None` before any score.
    pub wape: Option<f64>,
    /// Recent fraction of peaks at or below the p90; `None` before any score.
    pub coverage_p90: Option<f64>,
    /// Forecasts waiting for their window to arrive.
    pub pending: usize,
    /// The weight the planner gets, 0..=1.
    pub weight: f64,
}

#[derive(Debug, Clone)]
struct Pending {
    at: i64,
    end: i64,
    p50: f64,
    p90: f64,
    /// Highest value seen in the window so far; `NaN` until one arrives.
    peak: f64,
}

#[derive(Debug, Clone, Default)]
struct SeriesAccuracy {
    pending: VecDeque<Pending>,
    scored: u64,
    abs_err: f64,
    actual: f64,
    covered: f64,
}

impl SeriesAccuracy {
    fn score(&mut self, p: &Pending, alpha: f64) {
        self.scored += 1;
        // Early on a plain running mean, later the EWMA: no start-up bias towards zero.
        let a = alpha.max(1.0 / self.scored as f64);
        let blend = |old: f64, new: f64| old + a * (new - old);
        self.abs_err = blend(self.abs_err, (p.peak - p.p50).abs());
        self.actual = blend(self.actual, p.peak.abs());
        self.covered = blend(self.covered, if p.peak <= p.p90 { 1.0 } else { 0.0 });
    }

    fn wape(&self) -> Option<f64> {
        if self.scored == 0 {
            None
        } else if self.actual > 1e-12 {
            Some(self.abs_err / self.actual)
        } else if self.abs_err > 1e-12 {
            Some(f64::INFINITY)
        } else {
            Some(0.0)
        }
    }
}

/// Scores forecasts against what arrived, per series, and turns recent accuracy into the
/// forecast weight the scale planner uses.
#[derive(Debug, Clone, Default)]
pub struct AccuracyTracker {
    cfg: AccuracyConfig,
    series: HashMap<SeriesKey, SeriesAccuracy>,
}

impl AccuracyTracker {
    /// A tracker with this tuning (validate it first; out-of-range values are clamped on use).
    pub fn new(cfg: AccuracyConfig) -> Self {
        AccuracyTracker {
            cfg,
            series: HashMap::new(),
        }
    }

    /// Holds a forecast until its window has arrived. Returns false when it cannot be scored
    /// (no finite median or p90, or an empty window) and is ignored. A forecast older than the
    /// newest one held means the clock went back (a replay restarting): the held ones are
    /// dropped; one with the same origin replaces the held one.
    pub fn record(&mut self, f: &Forecast) -> bool {
        let (Some(p50), Some(p90)) = (f.quantile(0.5), f.quantile(0.9)) else {
            return false;
        };
        if !(p50.is_finite() && p90.is_finite()) || f.window <= 0 {
            return false;
        }
        let s = self.series.entry(f.key.clone()).or_default();
        match s.pending.back() {
            Some(last) if last.at == f.at => {
                s.pending.pop_back();
            }
            Some(last) if last.at > f.at => s.pending.clear(),
            _ => {}
        }
        if s.pending.len() >= self.cfg.max_pending.max(1) {
            s.pending.pop_front();
        }
        s.pending.push_back(Pending {
            at: f.at,
            end: f.at.saturating_add(f.window),
            p50,
            p90,
            peak: f64::NAN,
        });
        true
    }

    /// One actual sample of a series. Updates the peaks of the windows it falls in and scores
    /// every forecast whose window has now fully arrived. Non-finite values are gaps and ignored;
    /// a window that saw no value at all is dropped unscored.
    pub fn observe(&mut self, key: &SeriesKey, ts: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let Some(s) = self.series.get_mut(key) else {
            return;
        };
        let alpha = if self.cfg.alpha > 0.0 && self.cfg.alpha <= 1.0 {
            self.cfg.alpha
        } else {
            0.1
        };
        for p in s.pending.iter_mut() {
            if p.at >= ts {
                break;
            }
            if ts <= p.end {
                // `max` keeps the value when the peak is still NaN.
                p.peak = p.peak.max(value);
            }
        }
        let mut i = 0;
        while i < s.pending.len() {
            if s.pending[i].end <= ts {
                let p = s.pending.remove(i).expect("index checked");
                if p.peak.is_finite() {
                    s.score(&p, alpha);
                }
            } else {
                i += 1;
            }
        }
    }

    /// How much the planner should trust this series' forecast: 1 = fully, 0 = pure reactive.
    pub fn weight(&self, key: &SeriesKey) -> f64 {
        let c = &self.cfg;
        let prior = if c.prior_weight.is_finite() {
            c.prior_weight.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let Some(s) = self.series.get(key) else {
            return prior;
        };
        if s.scored < u64::from(c.min_scored.max(1)) {
            return prior;
        }
        let Some(wape) = s.wape() else {
            return prior;
        };
        let w_err = ramp(wape, c.good_wape, c.bad_wape);
        let w_cov = 1.0 - ramp(s.covered, c.coverage_bad, c.coverage_ok);
        let w = w_err * w_cov;
        if w.is_finite() {
            w.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Scores so far, for the exporter.
    pub fn stats(&self, key: &SeriesKey) -> AccuracyStats {
        let s = self.series.get(key);
        AccuracyStats {
            scored: s.map_or(0, |s| s.scored),
            wape: s.and_then(|s| s.wape()),
            coverage_p90: s.filter(|s| s.scored > 0).map(|s| s.covered),
            pending: s.map_or(0, |s| s.pending.len()),
            weight: self.weight(key),
        }
    }

    /// Series being tracked, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &SeriesKey> {
        self.series.keys()
    }
}

/// 1 at or below `good`, 0 at or above `bad`, linear between (a NaN input counts as bad).
fn ramp(v: f64, good: f64, bad: f64) -> f64 {
    if v.is_nan() {
        return 0.0;
    }
    if bad <= good {
        return if v <= good { 1.0 } else { 0.0 };
    }
    ((bad - v) / (bad - good)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fc(at: i64, p50: f64, p90: f64) -> Forecast {
        Forecast {
            key: SeriesKey::new("rps"),
            at,
            window: 60,
            quantiles: vec![(0.5, p50), (0.9, p90), (0.95, p90 * 1.1), (0.99, p90 * 1.3)],
        }
    }

    /// Feeds forecasts every 15 s and an actual series `actual(ts)`, one sample per 15 s.
    fn run(
        t: &mut AccuracyTracker,
        from: i64,
        to: i64,
        f: impl Fn(i64) -> (f64, f64),
        actual: impl Fn(i64) -> f64,
    ) {
        let key = SeriesKey::new("rps");
        let mut ts = from;
        while ts < to {
            t.observe(&key, ts, actual(ts));
            let (p50, p90) = f(ts);
            t.record(&fc(ts, p50, p90));
            ts += 15;
        }
    }

    #[test]
    fn prior_until_enough_scores() {
        let mut t = AccuracyTracker::new(AccuracyConfig::default());
        let key = SeriesKey::new("rps");
        assert_eq!(t.weight(&key), 0.5);
        run(&mut t, 0, 120, |_| (100.0, 110.0), |_| 100.0);
        let s = t.stats(&key);
        assert!(s.scored > 0 && s.scored < 5, "{s:?}");
        assert_eq!(t.weight(&key), 0.5);
    }

    #[test]
    fn accurate_model_is_trusted() {
        let mut t = AccuracyTracker::new(AccuracyConfig::default());
        run(&mut t, 0, 3600, |_| (100.0, 110.0), |_| 100.0);
        let key = SeriesKey::new("rps");
        let s = t.stats(&key);
        assert!(s.scored > 200, "{s:?}");
        assert!(
            s.wape.unwrap() < 1e-9 && s.coverage_p90 == Some(1.0),
            "{s:?}"
        );
        assert_eq!(t.weight(&key), 1.0);
    }

    #[test]
    fn wrong_model_fades_to_reactive() {
        let mut t = AccuracyTracker::new(AccuracyConfig::default());
        run(&mut t, 0, 3600, |_| (100.0, 110.0), |_| 100.0);
        // Demand doubles and the model keeps forecasting the old level.
        run(&mut t, 3600, 7200, |_| (100.0, 110.0), |_| 200.0);
        let key = SeriesKey::new("rps");
        let s = t.stats(&key);
        assert!(s.wape.unwrap() > 0.45, "{s:?}");
        assert!(s.coverage_p90.unwrap() < 0.1, "{s:?}");
        assert_eq!(t.weight(&key), 0.0);
    }

    #[test]
    fn under_coverage_alone_reduces_weight() {
        let mut t = AccuracyTracker::new(AccuracyConfig::default());
        // Median spot on, but p90 below the actual peak every time: WAPE 0, coverage 0.
        run(
            &mut t,
            0,
            3600,
            |_| (100.0, 100.0),
            |ts| if ts % 60 == 0 { 101.0 } else { 100.0 },
        );
        let key = SeriesKey::new("rps");
        let s = t.stats(&key);
        assert!(s.wape.unwrap() < 0.02, "{s:?}");
        assert!(s.coverage_p90.unwrap() < 0.1, "{s:?}");
        assert_eq!(t.weight(&key), 0.0);
    }

    #[test]
    fn peak_is_the_max_over_the_window_and_gaps_are_skipped() {
        let mut t = AccuracyTracker::new(AccuracyConfig {
            min_scored: 1,
            ..Default::default()
        });
        let key = SeriesKey::new("rps");
        t.record(&fc(0, 100.0, 120.0));
        t.observe(&key, 0, 999.0); // at the origin: not in (0, 60]
        t.observe(&key, 15, 80.0);
        t.observe(&key, 30, f64::NAN);
        t.observe(&key, 45, 100.0);
        assert_eq!(t.stats(&key).scored, 0);
        t.observe(&key, 60, 90.0);
        let s = t.stats(&key);
        assert_eq!(s.scored, 1);
        assert_eq!(s.wape, Some(0.0));
        assert_eq!(s.pending, 0);
        // A window with no values at all is dropped, not scored as zero.
        t.record(&fc(60, 100.0, 120.0));
        t.observe(&key, 200, 100.0);
        assert_eq!(t.stats(&key).scored, 1);
    }

    #[test]
    fn unusable_forecasts_are_ignored_and_clock_going_back_resets() {
        let mut t = AccuracyTracker::new(AccuracyConfig::default());
        assert!(!t.record(&fc(0, f64::NAN, 1.0)));
        let mut empty = fc(0, 1.0, 1.0);
        empty.quantiles.clear();
        assert!(!t.record(&empty));
        assert!(t.record(&fc(100, 1.0, 1.0)));
        assert!(t.record(&fc(100, 2.0, 2.0)));
        assert_eq!(t.stats(&SeriesKey::new("rps")).pending, 1);
        assert!(t.record(&fc(50, 1.0, 1.0)));
        assert_eq!(t.stats(&SeriesKey::new("rps")).pending, 1);
    }

    #[test]
    fn pending_is_bounded() {
        let mut t = AccuracyTracker::new(AccuracyConfig {
            max_pending: 3,
            ..Default::default()
        });
        for at in 0..10 {
            t.record(&fc(at, 1.0, 1.0));
        }
        assert_eq!(t.stats(&SeriesKey::new("rps")).pending, 3);
    }

    #[test]
    fn config_validation_names_the_key() {
        AccuracyConfig::default().validate().unwrap();
        let bad = AccuracyConfig {
            bad_wape: 0.1,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("bad_wape"));
        let bad = AccuracyConfig {
            alpha: 0.0,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("alpha"));
        let c: AccuracyConfig = toml::from_str("good_wape = 0.2").unwrap();
        assert_eq!(c.good_wape, 0.2);
        assert_eq!(c.bad_wape, 0.5);
    }

    proptest! {
        #[test]
        fn weight_is_always_in_unit_interval(
            vals in proptest::collection::vec((-1e6f64..1e6, -1e6f64..1e6, prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -1e6f64..1e6]), 1..200)
        ) {
            let mut t = AccuracyTracker::new(AccuracyConfig { min_scored: 1, ..Default::default() });
            let key = SeriesKey::new("rps");
            for (i, (p50, p90, actual)) in vals.into_iter().enumerate() {
                let ts = i as i64 * 15;
                t.observe(&key, ts, actual);
                t.record(&fc(ts, p50, p90));
                let w = t.weight(&key);
                prop_assert!((0.0..=1.0).contains(&w), "weight {w}");
            }
        }
    }
}
