//! Accuracy tracking: every forecast is scored against the peak that actually arrived, per
//! series, into a weight that says how far its forecasts can be relied on lately. The scale
//! planner names it in its reasons (`/metrics` exports its WAPE and p90 coverage); it does not
//! weigh the number (a
//! forecast counts in full above the reactive floor, `plan::replicas`), since weighing a
//! forecast down trades the user's chosen risk for cost.
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
use crate::series::{SeriesKey, SeriesMap};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Tuning of the accuracy tracker: `[accuracy]` in `prescale.toml`; every key optional.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccuracyConfig {
    /// Smoothing per scored forecast (0..1]: 0.1 ≈ the last 20 forecasts matter. Default 0.1.
    pub alpha: f64,
    /// WAPE at or below which the weight is 1. Default 0.15.
    pub good_wape: f64,
    /// WAPE at or above which the weight is 0. Default 0.5.
    pub bad_wape: f64,
    /// p90 coverage down to which no penalty applies. Default 0.8 (nominal 0.9 minus slack).
    pub coverage_ok: f64,
    /// p90 coverage at or below which the weight is 0. Default 0.5.
    pub coverage_bad: f64,
    /// Scored forecasts needed before the measured weight replaces the prior. Default 5.
    pub min_scored: u32,
    /// Weight of a series with too few scored forecasts. Default 0.5: nothing is known of a
    /// new model yet, either way.
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

/// Why an `[accuracy]` setting was refused: the key and what is wrong with its value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("accuracy.{key} {problem}")]
pub struct AccuracyConfigError {
    /// The offending key of `[accuracy]`.
    pub key: &'static str,
    /// What is wrong, with the value found (`must be in (0, 1], got 0`).
    pub problem: String,
}

impl AccuracyConfig {
    /// Checks every field; the error names the key.
    pub fn validate(&self) -> Result<(), AccuracyConfigError> {
        let in01 = |v: f64| (0.0..=1.0).contains(&v);
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(AccuracyConfigError {
                key: "alpha",
                problem: format!("must be in (0, 1], got {}", self.alpha),
            });
        }
        if !(self.good_wape.is_finite() && self.good_wape >= 0.0) {
            return Err(AccuracyConfigError {
                key: "good_wape",
                problem: format!("must be ≥ 0, got {}", self.good_wape),
            });
        }
        if !(self.bad_wape.is_finite() && self.bad_wape > self.good_wape) {
            return Err(AccuracyConfigError {
                key: "bad_wape",
                problem: format!(
                    "must be greater than good_wape ({}), got {}",
                    self.good_wape, self.bad_wape
                ),
            });
        }
        if !in01(self.coverage_ok) {
            return Err(AccuracyConfigError {
                key: "coverage_ok",
                problem: format!("must be in [0, 1], got {}", self.coverage_ok),
            });
        }
        if !(in01(self.coverage_bad) && self.coverage_bad < self.coverage_ok) {
            return Err(AccuracyConfigError {
                key: "coverage_bad",
                problem: format!("must be in [0, coverage_ok), got {}", self.coverage_bad),
            });
        }
        if !in01(self.prior_weight) {
            return Err(AccuracyConfigError {
                key: "prior_weight",
                problem: format!("must be in [0, 1], got {}", self.prior_weight),
            });
        }
        if self.max_pending == 0 {
            return Err(AccuracyConfigError {
                key: "max_pending",
                problem: "must be at least 1".to_string(),
            });
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
}

impl Pending {
    /// What is held of `f`; `None` when it cannot be scored (no finite median or p90, or an
    /// empty window).
    fn of(f: &Forecast) -> Option<Self> {
        let (Some(p50), Some(p90)) = (f.quantile(0.5), f.quantile(0.9)) else {
            return None;
        };
        if !(p50.is_finite() && p90.is_finite()) || f.window <= 0 {
            return None;
        }
        Some(Pending {
            at: f.at,
            end: f.at.saturating_add(f.window),
            p50,
            p90,
        })
    }
}

/// Most samples kept per series when no forecast is pending to bound them.
const MAX_SAMPLES: usize = 1024;

#[derive(Debug, Clone)]
struct SeriesAccuracy {
    /// Held forecasts, in origin order.
    pending: VecDeque<Pending>,
    /// At most the earliest window end among `pending` (`i64::MAX` when none), so that most
    /// samples, which complete no window, cost nothing.
    min_end: i64,
    /// Samples as a monotonic queue (time ascending, value strictly descending): the peak over
    /// `(at, end]` is the first entry after `at`, so scoring never rescans the window.
    samples: VecDeque<(i64, f64)>,
    last_ts: Option<i64>,
    /// Newest origin recorded: an older one means the clock went back.
    last_at: Option<i64>,
    scored: u64,
    abs_err: f64,
    actual: f64,
    covered: f64,
}

impl Default for SeriesAccuracy {
    fn default() -> Self {
        SeriesAccuracy {
            pending: VecDeque::new(),
            min_end: i64::MAX,
            samples: VecDeque::new(),
            last_ts: None,
            last_at: None,
            scored: 0,
            abs_err: 0.0,
            actual: 0.0,
            covered: 0.0,
        }
    }
}

impl SeriesAccuracy {
    fn score(&mut self, peak: f64, p50: f64, p90: f64, alpha: f64) {
        self.scored += 1;
        // Early on a plain running mean, later the EWMA: no start-up bias towards zero.
        let a = alpha.max(1.0 / self.scored as f64);
        let blend = |old: f64, new: f64| old + a * (new - old);
        self.abs_err = blend(self.abs_err, (peak - p50).abs());
        self.actual = blend(self.actual, peak.abs());
        self.covered = blend(self.covered, if peak <= p90 { 1.0 } else { 0.0 });
    }

    /// The highest sample in `(at, end]`, if any arrived.
    fn peak(&self, at: i64, end: i64) -> Option<f64> {
        let i = self.samples.partition_point(|s| s.0 <= at);
        self.samples.get(i).filter(|s| s.0 <= end).map(|s| s.1)
    }

    /// Scores and drops every held forecast whose window ends at or before `upto`.
    fn settle(&mut self, upto: i64, alpha: f64) {
        if self.min_end > upto {
            return;
        }
        let mut min_end = i64::MAX;
        let mut i = 0;
        while i < self.pending.len() {
            let p = &self.pending[i];
            if p.end > upto {
                min_end = min_end.min(p.end);
                i += 1;
                continue;
            }
            let (at, end, p50, p90) = (p.at, p.end, p.p50, p.p90);
            self.pending.remove(i);
            if let Some(peak) = self.peak(at, end) {
                self.score(peak, p50, p90, alpha);
            }
        }
        self.min_end = min_end;
        // Samples at or before the oldest held origin can never be in a window again.
        if let Some(oldest) = self.pending.front().map(|p| p.at) {
            while self.samples.front().is_some_and(|s| s.0 <= oldest) {
                self.samples.pop_front();
            }
        }
    }

    /// Holds `p` (see [`AccuracyTracker::record`]); false when it is refused.
    fn record(&mut self, p: Pending, max_pending: usize) -> bool {
        if self.last_ts.is_some_and(|t| t >= p.end) {
            return false;
        }
        match self.last_at {
            Some(last) if last == p.at && self.pending.back().is_some_and(|q| q.at == p.at) => {
                self.pending.pop_back();
            }
            Some(last) if last > p.at => return false,
            _ => {}
        }
        self.last_at = Some(p.at);
        if self.pending.len() >= max_pending.max(1) {
            self.pending.pop_front();
        }
        // A lower bound is enough (settling rescans): no scan per record.
        self.min_end = self.min_end.min(p.end);
        self.pending.push_back(p);
        true
    }

    /// One sample (see [`AccuracyTracker::observe`]).
    fn observe(&mut self, ts: i64, value: f64, alpha: f64) {
        if !value.is_finite() {
            return;
        }
        match self.last_ts {
            Some(t) if t == ts => return,
            Some(t) if t > ts => {
                self.pending.clear();
                self.samples.clear();
                self.min_end = i64::MAX;
                self.last_at = None;
            }
            _ => {}
        }
        // Windows that ended before this sample are complete without it.
        self.settle(ts - 1, alpha);
        while self.samples.back().is_some_and(|&(_, v)| v <= value) {
            self.samples.pop_back();
        }
        self.samples.push_back((ts, value));
        if self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.last_ts = Some(ts);
        self.settle(ts, alpha);
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
    series: SeriesMap<SeriesAccuracy>,
}

impl AccuracyTracker {
    /// A tracker with this tuning (validate it first; out-of-range values are clamped on use).
    pub fn new(cfg: AccuracyConfig) -> Self {
        AccuracyTracker {
            cfg,
            series: SeriesMap::default(),
        }
    }

    /// Holds a forecast until its window has arrived. Returns false when it cannot be scored
    /// (no finite median or p90, an empty window, a window already past the newest sample, or
    /// an origin older than one recorded before) and is ignored. One with the same origin as
    /// the last replaces it.
    pub fn record(&mut self, f: &Forecast) -> bool {
        let Some(held) = Pending::of(f) else {
            return false;
        };
        let max_pending = self.cfg.max_pending;
        self.series_for(&f.key).record(held, max_pending)
    }

    /// `key`'s state, made if it has none yet; the key is copied only then.
    fn series_for(&mut self, key: &SeriesKey) -> &mut SeriesAccuracy {
        if !self.series.contains_key(key) {
            self.series.insert(key.clone(), SeriesAccuracy::default());
        }
        self.series.get_mut(key).expect("inserted above")
    }

    /// [`observe`](Self::observe) of each of `samples` (in time order), then
    /// [`record`](Self::record) of `f` if there is one: what the live loop does for a series
    /// each cycle, with one look-up of its state instead of one per call (at 100,000 series
    /// each look-up is a cache miss or more).
    pub fn update(
        &mut self,
        key: &SeriesKey,
        samples: impl IntoIterator<Item = (i64, f64)>,
        f: Option<&Forecast>,
    ) {
        let alpha = self.alpha();
        let held = f.and_then(Pending::of);
        let max_pending = self.cfg.max_pending;
        match self.series.get_mut(key) {
            Some(s) => {
                for (ts, v) in samples {
                    s.observe(ts, v, alpha);
                }
                if let Some(held) = held {
                    s.record(held, max_pending);
                }
            }
            // A series is listened to from its first recorded forecast on, as `observe` and
            // `record` called in turn do: its samples before it are not seen.
            None => {
                if let Some(held) = held {
                    let mut s = SeriesAccuracy::default();
                    s.record(held, max_pending);
                    self.series.insert(key.clone(), s);
                }
            }
        }
    }

    /// The smoothing in use (a value out of range, which validation refuses, as the default).
    fn alpha(&self) -> f64 {
        if self.cfg.alpha > 0.0 && self.cfg.alpha <= 1.0 {
            self.cfg.alpha
        } else {
            0.1
        }
    }

    /// One actual sample of a series, in time order. A series is listened to from its first
    /// recorded forecast on; samples of series never forecast are ignored. Scores every held forecast whose window
    /// has now fully arrived (against the highest sample in it). Non-finite values are gaps
    /// and ignored, as are repeated timestamps; a timestamp going back means a replay
    /// restarted and drops what was held. A window that saw no value at all is dropped
    /// unscored.
    pub fn observe(&mut self, key: &SeriesKey, ts: i64, value: f64) {
        let alpha = self.alpha();
        if let Some(s) = self.series.get_mut(key) {
            s.observe(ts, value, alpha);
        }
    }

    /// How far this series' forecasts can be relied on lately: 1 = fully, 0 = not at all;
    /// below [`POORLY_RATED_WEIGHT`](super::POORLY_RATED_WEIGHT) the planner's reason calls the
    /// forecast poorly rated.
    pub fn weight(&self, key: &SeriesKey) -> f64 {
        self.weight_of(self.series.get(key))
    }

    fn weight_of(&self, s: Option<&SeriesAccuracy>) -> f64 {
        let c = &self.cfg;
        let prior = if c.prior_weight.is_finite() {
            c.prior_weight.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let Some(s) = s else {
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
        self.stats_of(self.series.get(key))
    }

    /// Every tracked series with its [`stats`](Self::stats), in no particular order: one
    /// pass, no look-up per series.
    pub fn all_stats(&self) -> impl Iterator<Item = (&SeriesKey, AccuracyStats)> {
        self.series.iter().map(|(k, s)| (k, self.stats_of(Some(s))))
    }

    fn stats_of(&self, s: Option<&SeriesAccuracy>) -> AccuracyStats {
        AccuracyStats {
            scored: s.map_or(0, |s| s.scored),
            wape: s.and_then(|s| s.wape()),
            coverage_p90: s.filter(|s| s.scored > 0).map(|s| s.covered),
            pending: s.map_or(0, |s| s.pending.len()),
            weight: self.weight_of(s),
        }
    }

    /// Series being tracked, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &SeriesKey> {
        self.series.keys()
    }

    /// Forgets every series for which `live` is false. The loop calls it with the series the
    /// store still holds: with per-pod label values series come and go, and a tracker that
    /// kept every key ever seen would grow (and grow `/metrics`) without bound.
    pub fn retain(&mut self, mut live: impl FnMut(&SeriesKey) -> bool) {
        self.series.retain(|k, _| live(k));
    }

    /// Series being tracked.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is tracked.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
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
mod tests;
