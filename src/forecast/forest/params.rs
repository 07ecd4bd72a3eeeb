//! Hyper-parameters: the unchecked builder [`ForestParams`] and the [`ForestValidParams`] that
//! linfa's [`ParamGuard`] turns it into (and that implements `Fit`).

use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

use super::ForestError;

/// Largest accepted `leaf_quantiles`; beyond this the summary stops being a summary.
const MAX_LEAF_QUANTILES: usize = 256;

/// Most trees a forest may have: 100 times the default. The trees' outputs are collected
/// into one buffer up front, so `--trees 18446744073709551615` aborted on a capacity overflow
/// and `--trees 100000000` ran for days while its memory grew without bound; quantiles stop
/// improving long before this.
pub const MAX_TREES: usize = 10_000;

/// Validated hyper-parameters of a [`QuantileForest`](super::QuantileForest); obtained from [`ForestParams`] via
/// [`ParamGuard`], and the type that implements [`Fit`](linfa::traits::Fit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestValidParams {
    pub(super) n_trees: usize,
    pub(super) max_depth: usize,
    pub(super) min_samples_leaf: usize,
    pub(super) max_features: usize,
    pub(super) bootstrap: bool,
    pub(super) sample_fraction: f64,
    pub(super) max_bins: usize,
    pub(super) leaf_quantiles: usize,
    pub(super) seed: u64,
    pub(super) show_progress: bool,
}

impl ForestValidParams {
    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.n_trees
    }
    /// Maximum depth of a tree (the root has depth 0).
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }
    /// Minimum number of distinct in-bag rows in each leaf.
    pub fn min_samples_leaf(&self) -> usize {
        self.min_samples_leaf
    }
    /// Features tried per split (clamped to the number of features at fit time).
    pub fn max_features(&self) -> usize {
        self.max_features
    }
    /// Whether rows are drawn with replacement (bootstrap) or without (subsampling).
    pub fn bootstrap(&self) -> bool {
        self.bootstrap
    }
    /// Draws per tree as a fraction of the training rows.
    pub fn sample_fraction(&self) -> f64 {
        self.sample_fraction
    }
    /// Maximum number of histogram bins per feature (2..=256).
    pub fn max_bins(&self) -> usize {
        self.max_bins
    }
    /// Maximum number of summary points kept per leaf for quantile prediction.
    pub fn leaf_quantiles(&self) -> usize {
        self.leaf_quantiles
    }
    /// Seed of all randomness (bootstrap, feature subsampling, bin-edge sample).
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Whether a progress bar over trees is drawn on stderr while fitting.
    pub fn show_progress(&self) -> bool {
        self.show_progress
    }
}

/// Unchecked builder of [`ForestValidParams`]; check with [`ParamGuard`] or fit directly
/// (linfa checks on `fit`).
#[derive(Debug, Clone, PartialEq)]
pub struct ForestParams(ForestValidParams);

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams(ForestValidParams {
            n_trees: 100,
            max_depth: 12,
            min_samples_leaf: 5,
            max_features: 8,
            bootstrap: true,
            sample_fraction: 1.0,
            max_bins: 256,
            leaf_quantiles: 16,
            seed: 0,
            show_progress: false,
        })
    }
}

impl ForestParams {
    /// Default parameters: 100 trees, depth 12, min leaf 5, 8 features per split, bootstrap,
    /// 256 bins, 16 summary points per leaf, seed 0, no progress bar.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the number of trees (≥ 1).
    pub fn n_trees(mut self, v: usize) -> Self {
        self.0.n_trees = v;
        self
    }
    /// Sets the maximum depth (≥ 1).
    pub fn max_depth(mut self, v: usize) -> Self {
        self.0.max_depth = v;
        self
    }
    /// Sets the minimum distinct in-bag rows per leaf (≥ 1).
    pub fn min_samples_leaf(mut self, v: usize) -> Self {
        self.0.min_samples_leaf = v;
        self
    }
    /// Sets the features tried per split (≥ 1; clamped to the feature count at fit).
    pub fn max_features(mut self, v: usize) -> Self {
        self.0.max_features = v;
        self
    }
    /// Chooses bootstrap (with replacement) or subsampling without replacement.
    pub fn bootstrap(mut self, v: bool) -> Self {
        self.0.bootstrap = v;
        self
    }
    /// Sets rows drawn per tree as a fraction of the training rows, in (0, 1].
    pub fn sample_fraction(mut self, v: f64) -> Self {
        self.0.sample_fraction = v;
        self
    }
    /// Sets the maximum bins per feature, in 2..=256.
    pub fn max_bins(mut self, v: usize) -> Self {
        self.0.max_bins = v;
        self
    }
    /// Sets the summary points per leaf, in 1..=256.
    pub fn leaf_quantiles(mut self, v: usize) -> Self {
        self.0.leaf_quantiles = v;
        self
    }
    /// Sets the random seed.
    pub fn seed(mut self, v: u64) -> Self {
        self.0.seed = v;
        self
    }
    /// Enables the progress bar (the caller decides, e.g. when stderr is a terminal).
    pub fn show_progress(mut self, v: bool) -> Self {
        self.0.show_progress = v;
        self
    }
}

impl ParamGuard for ForestParams {
    type Checked = ForestValidParams;
    type Error = ForestError;

    fn check_ref(&self) -> Result<&Self::Checked, Self::Error> {
        let p = &self.0;
        let bad = |name: &'static str, reason: String| {
            Err(ForestError::InvalidParameter { name, reason })
        };
        if !(1..=MAX_TREES).contains(&p.n_trees) {
            return bad(
                "n_trees",
                format!("must be in 1..={MAX_TREES}, got {}", p.n_trees),
            );
        }
        if p.max_depth == 0 {
            return bad("max_depth", "must be at least 1".into());
        }
        if p.min_samples_leaf == 0 {
            return bad("min_samples_leaf", "must be at least 1".into());
        }
        if p.max_features == 0 {
            return bad("max_features", "must be at least 1".into());
        }
        if !(p.sample_fraction > 0.0 && p.sample_fraction <= 1.0) {
            return bad(
                "sample_fraction",
                format!("must be in (0, 1], got {}", p.sample_fraction),
            );
        }
        if !(2..=256).contains(&p.max_bins) {
            return bad(
                "max_bins",
                format!("must be in 2..=256 (bins are u8), got {}", p.max_bins),
            );
        }
        if !(1..=MAX_LEAF_QUANTILES).contains(&p.leaf_quantiles) {
            return bad(
                "leaf_quantiles",
                format!(
                    "must be in 1..={MAX_LEAF_QUANTILES}, got {}",
                    p.leaf_quantiles
                ),
            );
        }
        Ok(p)
    }

    fn check(self) -> Result<Self::Checked, Self::Error> {
        self.check_ref()?;
        Ok(self.0)
    }
}
