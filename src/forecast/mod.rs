//! Forecasting: from a series' recent history to quantiles of its peak demand over the next
//! window.
//!
//! [`features`] turns a fixed-step buffer into scale-free rows; `forest` is the quantile
//! regression forest (written to linfa's conventions, since linfa's own trees only classify);
//! `model` ties the two together with calibration and a versioned file format; [`online`] keeps
//! each series' upper quantiles calibrated as its load moves, live and in backtests; [`backtest`]
//! scores a model against the persistence and seasonal-naive baselines; [`stage`] says which
//! forecaster a series is planned with as its history grows (reactive, global, its own), and
//! [`OwnModels`] trains and keeps the per-series ones.

pub mod backtest;
mod batch;
pub mod features;
mod forest;
mod model;
pub mod online;
mod own;
mod retrain;
mod sample;
pub mod stage;

pub use features::{FeatureError, FeatureSpec};
pub use forest::{ForestError, ForestParams, ForestValidParams, LinfaError, QuantileForest};
pub use model::{
    Anchor, AnchorChoice, Model, ModelError, ModelMeta, TrainOptions, TrainedSeries, FORMAT_VERSION,
};
pub use online::{OnlineCalibration, OnlineConfig};
pub use own::{Contest, Own, OwnModels, RETRY_AFTER};
pub use retrain::Retrainer;
pub use sample::{spread_sample, TRAIN_BYTES_PER_POINT};
pub use stage::{Stage, StageView};

use crate::series::SeriesKey;

/// The quantile levels prescale forecasts by default: the median and three levels of risk.
pub const DEFAULT_QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

/// A forecast of one series' peak demand over `(at, at + window]`, as quantiles in the series'
/// own units. This is what the planner provisions against.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Forecast {
    /// The series forecast.
    pub key: SeriesKey,
    /// Origin: the timestamp of the newest value used (Unix seconds).
    pub at: i64,
    /// Length of the window forecast, seconds.
    pub window: i64,
    /// `(level, value)` pairs, levels ascending, values non-decreasing.
    pub quantiles: Vec<(f64, f64)>,
}

impl Forecast {
    /// The value at quantile level `q`, linearly interpolated between the stored levels and
    /// clamped to the outermost ones.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let qs = &self.quantiles;
        let first = qs.first()?;
        let last = qs.last()?;
        if q <= first.0 {
            return Some(first.1);
        }
        if q >= last.0 {
            return Some(last.1);
        }
        qs.windows(2).find(|w| q <= w[1].0).map(|w| {
            let f = (q - w[0].0) / (w[1].0 - w[0].0);
            w[0].1 + f * (w[1].1 - w[0].1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_and_clamps() {
        let f = Forecast {
            key: SeriesKey::new("x"),
            at: 0,
            window: 60,
            quantiles: vec![(0.5, 10.0), (0.9, 20.0), (0.99, 40.0)],
        };
        assert_eq!(f.quantile(0.5), Some(10.0));
        assert_eq!(f.quantile(0.7), Some(15.0));
        assert_eq!(f.quantile(0.1), Some(10.0));
        assert_eq!(f.quantile(0.999), Some(40.0));
    }
}
