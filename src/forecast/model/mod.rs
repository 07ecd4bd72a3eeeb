//! A trained forecaster: feature spec + calibrated quantile forest + provenance, and its file
//! format.
//!
//! File layout (all integers little-endian):
//! `b"PRESCALE"` | format version `u32` | payload length `u64` | CRC-32 of payload `u32` |
//! payload (postcard-encoded [`Model`]). The header lets a wrong, truncated or corrupted file be
//! told apart from a good one before anything is decoded.

use super::features::{self, FeatureSpec, Rows};
use super::forest::{ForestError, QuantileForest};
use super::{Forecast, DEFAULT_QUANTILES};
use crate::series::{Series, SeriesKey};
use calibration::{calibrate, calibrated_level, calibration_problem};
use linfa::prelude::*;
use ndarray::{Array2, Axis};
use std::path::PathBuf;

/// The model file format this build writes and reads. Bump it whenever anything serialised
/// changes shape (the feature spec, calibration, or the forest's node and leaf layout), so an
/// old file is refused by version instead of failing to decode.
///
/// Version 2 added the anchor ([`AnchorChoice`]); version 1 files still load, as models
/// anchored at the recent peak (what every version 1 model was).
pub const FORMAT_VERSION: u32 = 2;

/// Problems training, loading or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading or writing the file failed.
    #[error("{path}: {error}")]
    Io {
        /// The model file.
        path: PathBuf,
        /// What the OS said (not a `source`: the message shows it already).
        error: std::io::Error,
    },
    /// The file does not start with prescale's magic bytes.
    #[error("{path}: not a prescale model file (bad magic bytes)")]
    NotAModel {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a format this build does not read.
    #[error("{path}: model format version {found}, this build reads versions 1 to {FORMAT_VERSION}; retrain with `prescale train`")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
    },
    /// The file is shorter than its header says.
    #[error("{path}: truncated model file: {found} of {expected} bytes")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header promises.
        expected: u64,
        /// Bytes there are.
        found: u64,
    },
    /// The payload does not match its checksum.
    #[error("{path}: corrupt model file (checksum mismatch)")]
    Corrupt {
        /// The file.
        path: PathBuf,
    },
    /// A file is already at the path a model is to be written to, and it is not a model: a
    /// model is only ever written over a model (or nothing), so a mistyped path cannot replace
    /// history, a configuration or a log that prescale did not write.
    #[error("{path}: exists and is not a prescale model file; refusing to overwrite it (remove it or write the model elsewhere)")]
    NotOurs {
        /// The file.
        path: PathBuf,
    },
    /// The payload passed the checksum but could not be decoded.
    #[error("{path}: cannot decode model: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// The payload decoded but breaks an invariant forecasting relies on (a calibration map
    /// that is not increasing would make p95 < p90).
    #[error("{path}: invalid model: {invariant}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which invariant is broken, and where.
        invariant: String,
    },
    /// Not enough usable rows to train on.
    #[error("not enough history to train: {rows} usable rows (need at least {needed}); {detail}")]
    TooLittleData {
        /// Rows found.
        rows: usize,
        /// Rows needed.
        needed: usize,
        /// What was skipped and why.
        detail: String,
    },
    /// Invalid training options.
    #[error("{0}")]
    Options(String),
    /// The step or window cannot make features.
    #[error(transparent)]
    Features(#[from] features::FeatureError),
    /// The forest refused its parameters or data.
    #[error(transparent)]
    Forest(#[from] ForestError),
}

/// Where a model's training data came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainedSeries {
    /// The series.
    pub key: SeriesKey,
    /// First and one-past-last timestamp used, Unix seconds.
    pub range: (i64, i64),
    /// Training rows it gave.
    pub rows: usize,
}

/// Provenance and training figures, kept in the model file for review.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    /// prescale version that trained it.
    pub crate_version: String,
    /// When it was trained, Unix seconds.
    pub trained_at: i64,
    /// Training series and ranges.
    pub series: Vec<TrainedSeries>,
    /// Rows trained on.
    pub rows: usize,
    /// Origins that gave no row (gaps, too little history since a gap).
    pub skipped: usize,
    /// Trees, depth, min leaf, features per split, seed.
    pub forest: (usize, usize, usize, usize, u64),
    /// Share of calibration rows at or under the uncalibrated 90 % quantile: how overconfident
    /// the raw forest was.
    pub raw_p90_coverage: f64,
    /// The same after calibration (on the calibration rows themselves).
    pub calibrated_p90_coverage: f64,
    /// Feature names with their importance.
    pub importances: Vec<(String, f64)>,
    /// Every training value was ≥ 0 (load usually is), so forecasts are clamped at 0.
    pub nonnegative: bool,
}

/// A trained forecaster.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Model {
    /// How features are computed; also fixes step and window.
    pub spec: FeatureSpec,
    /// Levels reported by default.
    pub quantiles: Vec<f64>,
    /// Quantile recalibration: `calibration[k]` is the forest level that held-out targets fell
    /// under with frequency (k+1)/100. Empty = identity.
    pub calibration: Vec<f64>,
    /// What the forest's output is measured from, and why.
    pub anchor: AnchorChoice,
    /// The forest, predicting (peak − anchor) / level.
    pub forest: QuantileForest,
    /// Provenance.
    pub meta: ModelMeta,
}

impl Model {
    /// Trains a global model on every series (all on `opts.step`).
    ///
    /// The forest is first fitted without each series' newest `calibration_fraction` of rows;
    /// its quantiles on those held-back rows give a recalibration map (forests are overconfident
    /// on their own training data, and a p90 must mean 90 %). The final forest is then refitted
    /// on everything and carries that map.
    pub fn train(series: &[Series], opts: &TrainOptions) -> Result<Model, ModelError> {
        let spec = FeatureSpec::new(opts.step, opts.window)?;
        // Refused here too, or training would write a model that loading refuses.
        spec_problem(&spec).map_or(Ok(()), |m| Err(ModelError::Options(m)))?;
        check_levels(&opts.quantiles)?;
        if !(0.0..0.9).contains(&opts.calibration_fraction) {
            return Err(ModelError::Options(format!(
                "calibration fraction must be in [0, 0.9), got {}",
                opts.calibration_fraction
            )));
        }
        if let Some(s) = series.iter().find(|s| s.step != opts.step) {
            return Err(ModelError::Options(format!(
                "series '{}' has a {}s step, the model is trained on {}s",
                s.key, s.step, opts.step
            )));
        }
        let stack = Stack::build(&spec, series);
        let needed = opts.rows_needed();
        if stack.y.len() < needed {
            return Err(ModelError::TooLittleData {
                rows: stack.y.len(),
                needed,
                detail: format!(
                    "{} origins skipped for gaps or under {} steps of history since a gap",
                    stack.skipped, spec.min_history
                ),
            });
        }
        let params = opts.forest_params();
        let h = spec.horizon();
        let frac = opts.calibration_fraction;
        // Rows whose target window reaches into the calibration part are left out of the first
        // fit, or the calibration rows would not be unseen.
        let is_cal = |k: usize, n: usize| k >= cal_start(n, frac);
        let is_fit = |k: usize, n: usize| k + h < cal_start(n, frac);
        // Calibrate only when both parts are big enough: a short history (an hour at a 1 s
        // step) can hold 20 calibration rows and leave nothing for the first fit, and then it
        // is trained on every row uncalibrated rather than refused (the online calibration
        // still corrects it live).
        let held_out = frac > 0.0 && stack.count(is_cal) >= 20 && stack.count(is_fit) >= needed;
        let (anchor, calibration, raw_cov, cal_cov) = if held_out {
            // One forest per anchor candidate on the same rows, scored on the same held-out
            // rows by the cost at the product's risk; the winner's quantiles give the
            // calibration map.
            let candidates = match opts.anchor {
                Some(a) => vec![a],
                None => Anchor::ALL.to_vec(),
            };
            let mut fitted = Vec::with_capacity(candidates.len());
            for &a in &candidates {
                let (rows, fy) = stack.rows(a, is_fit);
                let c = stack.select_full(a, is_cal);
                let forest = params
                    .check_ref()?
                    .fit_rows(stack.view(), &rows, fy.view())?;
                let held_out = anchor::HeldOut {
                    x: &c.x,
                    y: &c.y,
                    offset: &c.offset,
                    level: &c.level,
                };
                let loss = anchor::held_out_cost(&forest, &held_out, &opts.quantiles);
                fitted.push((a, forest, c.x, c.y, loss));
            }
            let losses: Vec<f64> = fitted.iter().map(|f| f.4).collect();
            let best = (0..fitted.len())
                .min_by(|&i, &j| losses[i].total_cmp(&losses[j]))
                .expect("at least one candidate");
            let (a, forest, cx, cy, _) = fitted.swap_remove(best);
            let (table, raw, cal) = calibrate(&forest, &cx, &cy);
            let choice = if candidates.len() > 1 {
                AnchorChoice {
                    anchor: a,
                    held_out_cost: losses,
                }
            } else {
                AnchorChoice::fixed(a)
            };
            (choice, table, raw, cal)
        } else {
            let a = opts.anchor.unwrap_or_default();
            (AnchorChoice::fixed(a), Vec::new(), f64::NAN, f64::NAN)
        };
        let (ax, ay) = stack.all(anchor.anchor);
        let forest = params.fit(&DatasetBase::new(ax, ay))?;
        let importances = spec
            .names()
            .into_iter()
            .zip(forest.feature_importances())
            .collect();
        let meta = ModelMeta {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            trained_at: chrono::Utc::now().timestamp(),
            series: series
                .iter()
                .zip(&stack.spans)
                .map(|(s, &(_, n))| TrainedSeries {
                    key: s.key.clone(),
                    range: (s.start, s.end()),
                    rows: n,
                })
                .collect(),
            rows: stack.y.len(),
            skipped: stack.skipped,
            forest: (
                opts.n_trees,
                opts.max_depth,
                opts.min_samples_leaf,
                opts.max_features,
                opts.seed,
            ),
            raw_p90_coverage: raw_cov,
            calibrated_p90_coverage: cal_cov,
            importances,
            nonnegative: series
                .iter()
                .all(|s| s.values.iter().all(|v| v.is_nan() || *v >= 0.0)),
        };
        Ok(Model {
            spec,
            quantiles: opts.quantiles.clone(),
            calibration,
            anchor,
            forest,
            meta,
        })
    }

    /// A forest output (change from the anchor, in levels) back in the series' units, at an
    /// origin whose last window peaked at `base`. A series that never went below zero in
    /// training is not forecast below zero either.
    pub(super) fn to_units(&self, v: f64, level: f64, base: f64) -> f64 {
        let x = self.anchor.anchor.offset(base) + v * level;
        if self.meta.nonnegative {
            x.max(0.0)
        } else {
            x
        }
    }

    /// The forest level to ask for so that nominal level `q` holds on unseen data.
    pub fn calibrated_level(&self, q: f64) -> f64 {
        calibrated_level(&self.calibration, q)
    }

    /// Quantiles (in the series' units, levels as given) for every row of `rows`.
    pub fn predict_rows(&self, rows: &Rows, levels: &[f64]) -> Array2<f64> {
        let cal: Vec<f64> = levels.iter().map(|&q| self.calibrated_level(q)).collect();
        let mut out = self.forest.predict_quantiles(rows.x.view(), &cal);
        for ((mut row, &lvl), &base) in out.axis_iter_mut(Axis(0)).zip(&rows.level).zip(&rows.base)
        {
            row.mapv_inplace(|v| self.to_units(v, lvl, base));
        }
        out
    }

    /// Forecasts for origins `origins` of `values` (first value at `start`): one per origin that
    /// has a feature row, at the model's default levels.
    pub fn forecast_range(
        &self,
        key: &SeriesKey,
        values: &[f64],
        start: i64,
        origins: std::ops::Range<usize>,
    ) -> Vec<(usize, Forecast)> {
        let rows = features::compute(&self.spec, values, start, origins);
        if rows.is_empty() {
            return Vec::new();
        }
        let q = self.predict_rows(&rows, &self.quantiles);
        rows.origin
            .iter()
            .zip(q.axis_iter(Axis(0)))
            .map(|(&t, qs)| {
                (
                    t,
                    self.labelled(key, start + t as i64 * self.spec.step, qs.iter().copied()),
                )
            })
            .collect()
    }

    /// A forecast at the model's levels from values in level order.
    pub(super) fn labelled(
        &self,
        key: &SeriesKey,
        at: i64,
        values: impl Iterator<Item = f64>,
    ) -> Forecast {
        Forecast {
            key: key.clone(),
            at,
            window: self.spec.window,
            quantiles: self.quantiles.iter().copied().zip(values).collect(),
        }
    }

    /// The forecast from the newest value of `values` (whose first value is at `start`); `None`
    /// when the newest value is a gap or there is too little history since the last gap. Pass
    /// at least [`FeatureSpec::history_needed`] values for the full feature set.
    pub fn forecast_latest(&self, key: &SeriesKey, values: &[f64], start: i64) -> Option<Forecast> {
        let n = values.len();
        // The newest row alone (`features::latest`, `compute`'s last row to the bit), not a
        // pass over every value given: own models forecast through here every cycle.
        let mut x = Vec::with_capacity(self.spec.n_features());
        let features::Latest { level, base } = features::latest(&self.spec, values, start, &mut x)?;
        let cal: Vec<f64> = self
            .quantiles
            .iter()
            .map(|&q| self.calibrated_level(q))
            .collect();
        let mut out = vec![0.0; cal.len()];
        self.forest.predict_quantiles_row(&x, &cal, &mut out);
        let at = start + (n as i64 - 1) * self.spec.step;
        Some(self.labelled(
            key,
            at,
            out.into_iter().map(|v| self.to_units(v, level, base)),
        ))
    }
}

fn check_levels(levels: &[f64]) -> Result<(), ModelError> {
    levels_problem(levels).map_or(Ok(()), |m| Err(ModelError::Options(m)))
}

/// What is wrong with a list of quantile levels, if anything.
fn levels_problem(levels: &[f64]) -> Option<String> {
    if levels.is_empty() {
        return Some("at least one quantile level is needed".into());
    }
    if let Some(q) = levels.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
        return Some(format!("quantile level {q} is not in (0, 1)"));
    }
    if levels.windows(2).any(|w| w[1] <= w[0]) {
        return Some("quantile levels must be strictly increasing".into());
    }
    None
}

/// Farthest any part of a feature spec may reach, in seconds: a year, far beyond the weekly
/// season the standard spec uses. It keeps every step count × step product (history sizes,
/// timestamps) far from overflow for a spec read from a file.
const MAX_SPEC_SECONDS: i64 = 366 * 86_400;

/// What is wrong with a feature spec, if anything: the invariants [`features::compute`] and
/// the live loop rely on.
fn spec_problem(spec: &FeatureSpec) -> Option<String> {
    for (what, secs) in [("step", spec.step), ("window", spec.window)] {
        if !(1..=MAX_SPEC_SECONDS).contains(&secs) {
            return Some(format!(
                "feature spec {what} {secs}s is not in [1s, {MAX_SPEC_SECONDS}s]"
            ));
        }
    }
    if spec.rolling.is_empty() {
        // The seasonal fallback reads the first rolling window's peak.
        return Some("feature spec has no rolling window".into());
    }
    // A rolling window or level of 0 steps averages nothing; a season of 0 steps would read
    // the target window itself.
    let nonzero = [
        ("rolling window", &spec.rolling[..]),
        ("season", &spec.season[..]),
        ("level", std::slice::from_ref(&spec.level_steps)),
    ];
    for (what, counts) in nonzero {
        if counts.contains(&0) {
            return Some(format!("feature spec {what} of 0 steps"));
        }
    }
    let horizon = spec.horizon();
    let counts = [
        ("lag", &spec.lags[..]),
        ("rolling window", &spec.rolling[..]),
        ("season", &spec.season[..]),
        ("level", std::slice::from_ref(&spec.level_steps)),
        ("minimum history", std::slice::from_ref(&spec.min_history)),
        ("horizon", std::slice::from_ref(&horizon)),
    ];
    for (what, counts) in counts {
        for &n in counts {
            let secs = i64::try_from(n).ok().and_then(|n| n.checked_mul(spec.step));
            if secs.is_none_or(|s| s > MAX_SPEC_SECONDS) {
                return Some(format!(
                    "feature spec {what} of {n} steps reaches back more than {MAX_SPEC_SECONDS}s"
                ));
            }
        }
    }
    None
}

impl Model {
    /// What is wrong with a decoded model, if anything: every invariant forecasting relies on
    /// beyond the forest's own structural checks (done while decoding it).
    fn invariant_problem(&self) -> Option<String> {
        if self.forest.n_features() != self.spec.n_features() {
            return Some(format!(
                "forest takes {} features, the feature spec makes {}",
                self.forest.n_features(),
                self.spec.n_features()
            ));
        }
        spec_problem(&self.spec)
            .or_else(|| levels_problem(&self.quantiles))
            .or_else(|| calibration_problem(&self.calibration))
    }
}

/// Index of the first calibration row of a series with `n` rows.
fn cal_start(n: usize, frac: f64) -> usize {
    n - ((n as f64 * frac).round() as usize).min(n)
}

mod anchor;
mod calibration;
mod file;
mod options;
mod stack;

pub use options::TrainOptions;
use stack::Stack;

pub use anchor::{Anchor, AnchorChoice};

#[cfg(test)]
mod tests;
