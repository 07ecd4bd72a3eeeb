//! How to train ([`TrainOptions`]): the forest's hyper-parameters, the feature spec's step
//! and window, the calibration share, and what the history must hold for them.

use super::{Anchor, DEFAULT_QUANTILES};
use crate::forecast::features::FeatureSpec;
use crate::forecast::forest::{ForestParams, QuantileForest};

/// Fewest rows a forest is fitted on: fewer leave too few distinct leaves for quantiles.
const MIN_ROWS: usize = 50;

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Step of the series, seconds (they must all share it).
    pub step: i64,
    /// Forecast window, seconds.
    pub window: i64,
    /// Quantile levels the model reports by default.
    pub quantiles: Vec<f64>,
    /// Trees in the forest.
    pub n_trees: usize,
    /// Deepest a tree may grow.
    pub max_depth: usize,
    /// Fewest training rows per leaf.
    pub min_samples_leaf: usize,
    /// Features tried per split.
    pub max_features: usize,
    /// Share of each series' newest rows held back to calibrate the quantiles.
    pub calibration_fraction: f64,
    /// Seed: the same seed and data give the same model.
    pub seed: u64,
    /// Draw a progress bar while fitting.
    pub show_progress: bool,
    /// The anchor to use; `None` chooses by held-out cost at 1 % short (see [`Anchor`]). The
    /// default is [`Anchor::Zero`].
    pub anchor: Option<Anchor>,
}

impl TrainOptions {
    /// Defaults for a step and window (seconds).
    pub fn new(step: i64, window: i64) -> Self {
        TrainOptions {
            step,
            window,
            quantiles: DEFAULT_QUANTILES.to_vec(),
            n_trees: 100,
            max_depth: 12,
            // 10, not 5: leaves of 5 rows made upper quantiles from a handful of noisy peaks;
            // the yardstick's cost at 1 % short improved on bursty and smooth traces alike.
            min_samples_leaf: 10,
            max_features: 8,
            calibration_fraction: 0.2,
            seed: 42,
            show_progress: false,
            // Zero, not the held-out choice: see the `anchor` module for why.
            anchor: Some(Anchor::Zero),
        }
    }

    pub(super) fn forest_params(&self) -> ForestParams {
        QuantileForest::params()
            .n_trees(self.n_trees)
            .max_depth(self.max_depth)
            .min_samples_leaf(self.min_samples_leaf)
            .max_features(self.max_features)
            .seed(self.seed)
            .show_progress(self.show_progress)
    }

    /// Fewest training rows (origins with a known target) a model is fitted on.
    pub fn rows_needed(&self) -> usize {
        // Saturating: `--min-leaf` is the user's number, and 2 × 2^63 must not wrap to 0.
        MIN_ROWS.max(self.min_samples_leaf.saturating_mul(2))
    }

    /// Fewest steps of unbroken history a model can be trained on with these options: each
    /// row needs the spec's `min_history` steps up to its origin and the forecast window's
    /// steps after it. `None` when the step or window cannot make a feature spec.
    pub fn history_needed(&self) -> Option<usize> {
        let spec = FeatureSpec::new(self.step, self.window).ok()?;
        Some(
            self.rows_needed()
                .saturating_add(spec.horizon() + spec.min_history - 1),
        )
    }
}
