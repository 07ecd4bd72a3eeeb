//! Online calibration: each series' forecast quantiles kept calibrated as its load moves, so a
//! p90 keeps meaning 90 % after the level shifts the training-time map cannot know about.
//!
//! # Rule (quantile tracking, the delayed-feedback form of adaptive conformal inference)
//!
//! Per series and per upper level q (q > 0.5) a log-offset θ_q, starting at 0, scales the
//! model's quantile: issued = raw · e^θ (a scale-relative correction, since load levels shift
//! by factors, not by fixed amounts; a negative raw value is divided instead, so θ > 0 still
//! raises it). When the target of a forecast issued at origin `at` is complete, i.e. a sample
//! at or after `at + window` has arrived, and only then,
//!
//! ```text
//! θ_q ← clamp(θ_q + γ · (1{peak > issued_q} − (1 − q)), ±THETA_MAX)
//! ```
//!
//! At origin t the forecasts corrected so far only ever learnt from origins ≤ t − window: a
//! target still open is never read, which is what keeps the backtest honest and the live
//! loop causal.
//!
//! # Guarantee
//!
//! θ moves by γq on a miss and by −γ(1 − q) on a cover, so between any two times at which the
//! clamp has not acted, `θ_end − θ_start = γ · Σ (miss − (1 − q))`; with |θ| ≤ THETA_MAX,
//! over T resolved forecasts `|miss rate − (1 − q)| ≤ 2 · THETA_MAX / (γ T)`, whatever the
//! load does (no stationarity or exchangeability assumed: Gibbs & Candès 2021; Angelopoulos,
//! Barber & Bates 2023 for the quantile-tracking form). The delay only postpones terms of
//! the sum, so the bound holds for the resolved ones. With the default γ = 0.01 the bound is
//! 300 / T: loose over a day at one-minute steps, but the measured coverage converges far
//! faster (see the README's yardstick table and the tests here).
//!
//! # Choices and why
//!
//! - **The median has no offset.** Tracking p50 made it chase noise and raised WAPE on
//!   most shared traces while adding nothing to cost at 1 % short (whose best base is an
//!   upper level). Instead it is chosen online between the forest's and mixes of it with
//!   the last window's peak, by their recent absolute errors ([`median`], `[online_calibration]
//!   median`), and capped by the corrected level above it, so quantiles stay ordered.
//! - **γ = 0.01 for load in general**, one value for every series and step: on the shared
//!   traces it was the cheapest at 1 % short (10 of 16 below the best peer, against 9 at 0.005
//!   and 7 at 0.015–0.03, whose issued quantiles got noisy) with p90 coverage in 0.87–0.93 on
//!   16 of 18 (README, yardstick section). It is `[online_calibration] gain`.
//! - **Ordering:** after correction, each level is capped by the next one up (p99 is the
//!   most conservative): quantiles never cross.
//! - **Scope:** the state is per series. A new model for the series (the live loop forgets
//!   it then) starts it at 0 again: the training-time calibration alone, as a backtest starts
//!   at the tail. A restart does not: the live loop keeps the offsets in a file
//!   (`run.calibration_state`, through [`SavedSeries`]) and a run of the same model starts
//!   from them.

pub mod median;
mod saved;

pub use median::MedianMix;
pub use saved::{check as check_saved, SavedSeries};

use super::Forecast;
use crate::series::{SeriesKey, SeriesMap};
use std::collections::VecDeque;

/// Bound on |θ|: a factor in [e^−1.5, e^1.5] ≈ [0.22, 4.5]. Beyond it the model, not its
/// calibration, is wrong, and the accuracy tracker's weight is the tool for that.
pub const THETA_MAX: f64 = 1.5;
/// Default step size γ.
pub const DEFAULT_GAIN: f64 = 0.01;
/// Most forecasts held per series for their targets (past it, new ones are not held): a
/// 15-minute window at a one-second step is 900.
const MAX_PENDING: usize = 4096;

/// `[online_calibration]` in `prescale.toml`; every key optional.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnlineConfig {
    /// Correct forecasts online. Default true.
    pub enabled: bool,
    /// Step size γ of the log-offset per resolved forecast. Default 0.01.
    pub gain: f64,
    /// Choose the median online between the forest's and its mixes with the last window's
    /// peak ([`median`]). Default true; false issues the forest's median as it is.
    pub median: bool,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        OnlineConfig {
            enabled: true,
            gain: DEFAULT_GAIN,
            median: true,
        }
    }
}

/// Why an `[online_calibration]` setting was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("online_calibration.gain must be in (0, 1], got {0}")]
pub struct OnlineConfigError(pub f64);

impl OnlineConfig {
    /// Checks the step size.
    pub fn validate(&self) -> Result<(), OnlineConfigError> {
        if self.gain > 0.0 && self.gain <= 1.0 {
            Ok(())
        } else {
            Err(OnlineConfigError(self.gain))
        }
    }

    /// The configuration that corrects nothing.
    pub fn off() -> Self {
        OnlineConfig {
            enabled: false,
            ..Self::default()
        }
    }
}

/// A forecast issued and waiting for its window to complete.
#[derive(Debug, Clone)]
struct Issued {
    at: i64,
    end: i64,
    /// `(level, issued value)` for the tracked levels.
    values: Vec<(f64, f64)>,
    /// The forest's median (as capped) and the recent peak it was issued with, when the
    /// median is chosen online and both were known.
    median: Option<(f64, f64)>,
}

/// One series' online calibration state.
#[derive(Debug, Clone)]
pub struct Calibrator {
    gain: f64,
    /// `None` when the median is the forest's as it is (`[online_calibration] median`).
    median: Option<MedianMix>,
    /// `(level, θ)` for every tracked level seen, ascending.
    theta: Vec<(f64, f64)>,
    pending: VecDeque<Issued>,
    /// Samples as a monotonic queue (time ascending, value strictly descending): the peak over
    /// `(at, newest]` is the first entry after `at`. Kept from the oldest pending origin, and
    /// a window before the newest sample, which holds the recent peak the median mixes in.
    samples: VecDeque<(i64, f64)>,
    /// The window of the newest forecast corrected: how far back the recent peak looks.
    window: i64,
    last_ts: Option<i64>,
    resolved: u64,
}

/// What the exporter and the reasons show of one series' calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibratorStats {
    /// Forecasts whose targets have updated the offsets.
    pub resolved: u64,
    /// Forecasts waiting for their windows.
    pub pending: usize,
    /// `(level, factor)`: what each tracked level is multiplied by now.
    pub factors: Vec<(f64, f64)>,
    /// The forest's weight in the median issued now (1: the forest's median as it is; the
    /// rest is the last window's peak's); `None` when the median is not chosen online.
    pub median_forest_weight: Option<f64>,
}

impl Calibrator {
    /// A calibrator with step size `gain` and no correction yet, which leaves the median
    /// the forest's.
    pub fn new(gain: f64) -> Self {
        Calibrator {
            gain,
            median: None,
            theta: Vec::new(),
            pending: VecDeque::new(),
            samples: VecDeque::new(),
            window: 0,
            last_ts: None,
            resolved: 0,
        }
    }

    /// A calibrator as `config` asks for (its step size; the median chosen online or not).
    pub fn with_config(config: &OnlineConfig) -> Self {
        Calibrator {
            median: config.median.then(MedianMix::default),
            ..Calibrator::new(config.gain)
        }
    }

    /// A new sample of the series (in time order; an older or repeated timestamp is ignored,
    /// a NaN is a gap). Every forecast whose window `(at, at + window]` is complete by `ts`
    /// updates the offsets; none other can.
    pub fn observe(&mut self, ts: i64, value: f64) {
        if self.last_ts.is_some_and(|l| ts <= l) {
            return;
        }
        self.last_ts = Some(ts);
        // Windows that ended before this sample are complete without it.
        self.resolve(|end| end < ts);
        if value.is_finite() {
            while self.samples.back().is_some_and(|s| s.1 <= value) {
                self.samples.pop_back();
            }
            self.samples.push_back((ts, value));
        }
        self.resolve(|end| end <= ts);
        // Samples at or before every pending origin, and a window before the newest, can no
        // longer be any window's peak, recent or future.
        let recent_from = ts.saturating_sub(self.window);
        let keep_after = self
            .pending
            .front()
            .map_or(recent_from, |p| p.at.min(recent_from));
        while self.samples.front().is_some_and(|s| s.0 <= keep_after) && self.samples.len() > 1 {
            self.samples.pop_front();
        }
    }

    fn resolve(&mut self, complete: impl Fn(i64) -> bool) {
        while let Some(p) = self.pending.front() {
            if !complete(p.end) {
                break;
            }
            let p = self.pending.pop_front().expect("front exists");
            let i = self.samples.partition_point(|s| s.0 <= p.at);
            // No sample inside the window (a gap): nothing learnt.
            let Some(&(ts, peak)) = self.samples.get(i) else {
                continue;
            };
            if ts > p.end {
                continue;
            }
            self.resolved += 1;
            if let (Some(mix), Some((forest, recent))) = (self.median.as_mut(), p.median) {
                mix.learn(forest, recent, peak);
            }
            for (level, issued) in p.values {
                let miss = if peak > issued { 1.0 } else { 0.0 };
                let gain = self.gain;
                let th = self.theta_mut(level);
                *th = (*th + gain * (miss - (1.0 - level))).clamp(-THETA_MAX, THETA_MAX);
            }
        }
    }

    fn theta_mut(&mut self, level: f64) -> &mut f64 {
        let i = match self.theta.iter().position(|t| t.0 == level) {
            Some(i) => i,
            None => {
                let i = self.theta.partition_point(|t| t.0 < level);
                self.theta.insert(i, (level, 0.0));
                i
            }
        };
        &mut self.theta[i].1
    }

    /// The factor level `q` is multiplied by now (1 for an untracked level).
    pub fn factor(&self, q: f64) -> f64 {
        self.theta
            .iter()
            .find(|t| t.0 == q)
            .map_or(1.0, |t| t.1.exp())
    }

    /// `f` with the current correction applied, held until its target is known. Forecasts
    /// must come in origin order, each after the samples up to its origin were observed.
    pub fn correct(&mut self, f: &Forecast) -> Forecast {
        self.correct_owned(f.clone())
    }

    /// [`correct`](Self::correct) of a forecast the caller no longer needs: corrected in
    /// place, without the copy (the live loop corrects every series each cycle).
    pub fn correct_owned(&mut self, f: Forecast) -> Forecast {
        let (at, window) = (f.at, f.window);
        let mut out = f;
        for (level, v) in out.quantiles.iter_mut() {
            if tracked(*level) {
                let k = self.factor(*level);
                *v = if *v >= 0.0 { *v * k } else { *v / k };
            }
        }
        cap_from_the_top(&mut out.quantiles);
        // The samples held reach a whole window back only once they were kept for this one.
        let whole = self.window == window;
        self.window = window;
        let mut median = None;
        if let Some(mix) = &self.median {
            let recent = whole.then(|| self.recent_peak(at, window)).flatten();
            if let Some(m) = out.quantiles.iter_mut().find(|q| q.0 == 0.5) {
                let forest = m.1;
                m.1 = mix.median(forest, recent);
                median = recent.filter(|_| forest.is_finite()).map(|r| (forest, r));
                // The mix may have raised it above the level over it.
                cap_from_the_top(&mut out.quantiles);
            }
        }
        // Full, this one is not held: dropping the oldest instead would, at a window of more
        // than MAX_PENDING forecasts, drop each one just before its window closed, and none
        // would ever resolve. Held ones resolve oldest first, so room comes back.
        if self.pending.len() >= MAX_PENDING {
            return out;
        }
        let values = out
            .quantiles
            .iter()
            .filter(|q| tracked(q.0) && q.1.is_finite())
            .copied()
            .collect();
        self.pending.push_back(Issued {
            at,
            end: at + window,
            values,
            median,
        });
        out
    }

    /// The peak of the samples in `(at − window, at]`, if any.
    fn recent_peak(&self, at: i64, window: i64) -> Option<f64> {
        let i = self.samples.partition_point(|s| s.0 <= at - window);
        self.samples.get(i).filter(|s| s.0 <= at).map(|s| s.1)
    }

    /// Counts and factors now.
    pub fn stats(&self) -> CalibratorStats {
        CalibratorStats {
            resolved: self.resolved,
            pending: self.pending.len(),
            factors: self.theta.iter().map(|t| (t.0, t.1.exp())).collect(),
            median_forest_weight: self.median_forest_weight(),
        }
    }

    /// The forest's weight in the median issued now; `None` when the median is not chosen
    /// online (see [`CalibratorStats::median_forest_weight`]).
    pub fn median_forest_weight(&self) -> Option<f64> {
        self.median.as_ref().map(MedianMix::forest_weight)
    }
}

/// Caps each level by the one above it, from the top down: the corrected upper levels stand,
/// a lower one (the median included) never exceeds the one above it.
fn cap_from_the_top(quantiles: &mut [(f64, f64)]) {
    for i in (0..quantiles.len().saturating_sub(1)).rev() {
        let above = quantiles[i + 1].1;
        let v = &mut quantiles[i].1;
        if *v > above {
            *v = above;
        }
    }
}

/// Levels with their own offset: every level above the median.
fn tracked(level: f64) -> bool {
    level > 0.5
}

/// Every series' calibrator, as the live loop keeps them.
#[derive(Debug, Clone)]
pub struct OnlineCalibration {
    config: OnlineConfig,
    series: SeriesMap<Calibrator>,
}

impl OnlineCalibration {
    /// Calibrators made as series appear, per `config`.
    pub fn new(config: OnlineConfig) -> Self {
        OnlineCalibration {
            config,
            series: SeriesMap::default(),
        }
    }

    /// Whether forecasts are corrected at all.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// A new sample of `key` (see [`Calibrator::observe`]).
    pub fn observe(&mut self, key: &SeriesKey, ts: i64, value: f64) {
        if self.config.enabled {
            self.calibrator(key).observe(ts, value);
        }
    }

    /// `f` corrected (see [`Calibrator::correct`]); unchanged when disabled.
    pub fn correct(&mut self, f: &Forecast) -> Forecast {
        self.correct_owned(f.clone())
    }

    /// [`correct`](Self::correct) without the copy, for a forecast the caller is done with.
    pub fn correct_owned(&mut self, f: Forecast) -> Forecast {
        if !self.config.enabled {
            return f;
        }
        self.calibrator(&f.key).correct_owned(f)
    }

    /// [`observe`](Self::observe) of each of `samples` (in time order), then
    /// [`correct_owned`](Self::correct_owned) of `f` (a forecast of `key`) if there is one:
    /// what the live loop does for a series each cycle, with one look-up of its calibrator
    /// instead of one per call.
    pub fn update(
        &mut self,
        key: &SeriesKey,
        samples: impl IntoIterator<Item = (i64, f64)>,
        f: Option<Forecast>,
    ) -> Option<Forecast> {
        if !self.config.enabled {
            return f;
        }
        let mut samples = samples.into_iter().peekable();
        let c = match self.series.get_mut(key) {
            Some(c) => c,
            // Made only when there is something to learn or correct, as the calls in turn
            // would: a series with neither gets no (saved) state.
            None if f.is_some() || samples.peek().is_some() => self
                .series
                .entry(key.clone())
                .or_insert_with(|| Calibrator::with_config(&self.config)),
            None => return f,
        };
        for (ts, v) in samples {
            c.observe(ts, v);
        }
        f.map(|f| c.correct_owned(f))
    }

    /// `key`'s calibrator, made if it has none yet; the key is copied only then (`observe` is
    /// called per sample).
    fn calibrator(&mut self, key: &SeriesKey) -> &mut Calibrator {
        if !self.series.contains_key(key) {
            let c = Calibrator::with_config(&self.config);
            self.series.insert(key.clone(), c);
        }
        self.series.get_mut(key).expect("inserted above")
    }

    /// The state of `key`, if it has one.
    pub fn get(&self, key: &SeriesKey) -> Option<&Calibrator> {
        self.series.get(key)
    }

    /// Keeps only the series `keep` says are live.
    pub fn retain(&mut self, keep: impl Fn(&SeriesKey) -> bool) {
        self.series.retain(|k, _| keep(k));
    }
}

/// The forecast from the newest value of `values` (first at `start`) as the live loop would
/// issue it after forecasting every origin of `values` in turn: the model's own forecast,
/// corrected by the offsets those earlier forecasts' windows taught ([`replay`]). `None`
/// when the model cannot forecast from the newest value (a gap, too little history). With
/// the calibration off, [`Model::forecast_latest`](super::Model::forecast_latest)'s.
pub fn latest(
    config: &OnlineConfig,
    model: &super::Model,
    key: &SeriesKey,
    values: &[f64],
    start: i64,
) -> Option<Forecast> {
    if !config.enabled {
        return model.forecast_latest(key, values, start);
    }
    let newest = values.len().checked_sub(1)?;
    let all = model.forecast_range(key, values, start, 0..values.len());
    if all.last().is_none_or(|f| f.0 != newest) {
        return None;
    }
    replay(config, values, start, model.spec.step, all)
        .pop()
        .map(|(_, f)| f)
}

/// Corrects forecasts made offline for one series exactly as the live loop would: `values`
/// (first at `start`, `step` apart) are observed in order, and each forecast (in origin order,
/// `forecasts[i].0` its index into `values`) is corrected after the sample at its origin.
pub fn replay(
    config: &OnlineConfig,
    values: &[f64],
    start: i64,
    step: i64,
    forecasts: Vec<(usize, Forecast)>,
) -> Vec<(usize, Forecast)> {
    if !config.enabled {
        return forecasts;
    }
    let mut cal = Calibrator::with_config(config);
    let mut next = forecasts.first().map_or(values.len(), |f| f.0);
    let mut out = Vec::with_capacity(forecasts.len());
    for (t, f) in forecasts {
        while next <= t && next < values.len() {
            cal.observe(start + next as i64 * step, values[next]);
            next += 1;
        }
        out.push((t, cal.correct_owned(f)));
    }
    out
}

#[cfg(test)]
mod tests;
