//! Quantile regression random forest (Meinshausen-style) following linfa's conventions.
//!
//! `ForestParams` → `fit(&Dataset)` → [`QuantileForest`] → `predict` (conditional mean) or
//! [`QuantileForest::predict_quantiles`] (conditional quantiles).
//!
//! Design in brief:
//! * Every feature is binned once into at most 256 quantile bins (u8, column-major), so split
//!   search is a histogram scan instead of a sort; thresholds are stored as the real-valued bin
//!   upper edges (rounded to f32 *before* binning so training and prediction agree exactly).
//! * Bootstrap is represented by per-row counts; rows are never copied.
//! * Each tree has its own ChaCha stream derived from `(seed, tree index)`, so results do not
//!   depend on the rayon thread count.
//! * Trees are flat pre-order node arrays (left child = next node), 12 bytes per node.
//! * Each leaf keeps a compressed summary of the *all-training-rows* target distribution that
//!   falls into it (in-bag and out-of-bag rows, unweighted, as in the original QRF): up to `K`
//!   atoms at the mid-probabilities `(j + 0.5) / K`, quantised to u8 between the exact lowest
//!   and highest atom. Quantiles are read from the equally-weighted mixture of the leaves.
//!
//! The files follow linfa-trees' seams: `params` (hyper-parameters and their
//! [`ParamGuard`]), `binning` (quantile bins of the features), `fit` (bootstrap and tree
//! growth, linfa's [`Fit`]), `predict` (lockstep leaf lookup, mean and quantiles, linfa's
//! [`PredictInplace`]), `merge` (one row's leaves to its quantiles) and `storage` (the flat
//! node arrays and leaf records both sides share, and the checks a deserialised model must
//! pass).

use std::fmt;

#[cfg(doc)]
use linfa::traits::{Fit, PredictInplace};
#[cfg(doc)]
use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

mod binning;
mod fit;
mod lanes;
mod merge;
mod params;
mod predict;
mod storage;
#[cfg(test)]
mod tests;

pub use params::{ForestParams, ForestValidParams};
pub(crate) use storage::UncheckedForest;

use storage::{ForestRepr, Tree};

/// Everything that can go wrong when fitting, loading or querying a [`QuantileForest`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForestError {
    /// A hyper-parameter is out of its valid range.
    #[error("invalid hyper-parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the offending parameter, as spelled by the builder method.
        name: &'static str,
        /// Why the value was rejected.
        reason: String,
    },
    /// The dataset has no rows or no feature columns.
    #[error("empty dataset: {rows} rows × {features} features")]
    EmptyDataset {
        /// Number of rows found.
        rows: usize,
        /// Number of feature columns found.
        features: usize,
    },
    /// A feature value is NaN or infinite.
    #[error("non-finite feature value {value} at row {row}, column {column}")]
    NonFiniteFeature {
        /// Row index of the bad value.
        row: usize,
        /// Column index of the bad value.
        column: usize,
        /// The value itself.
        value: f64,
    },
    /// A target value is NaN or infinite.
    #[error("non-finite target value {value} at row {row}")]
    NonFiniteTarget {
        /// Row index of the bad target.
        row: usize,
        /// The value itself.
        value: f64,
    },
    /// Number of targets differs from the number of feature rows.
    #[error("{targets} targets for {rows} feature rows")]
    TargetCount {
        /// Feature rows.
        rows: usize,
        /// Targets.
        targets: usize,
    },
    /// The dataset is larger than the compact model layout can index.
    #[error("dataset too large: {what}")]
    TooLarge {
        /// Which limit was hit.
        what: String,
    },
    /// Prediction input has a different number of features than the training data.
    #[error("expected {expected} features, got {found}")]
    FeatureCount {
        /// Features the model was trained on.
        expected: usize,
        /// Features supplied.
        found: usize,
    },
    /// A deserialised model violates the structural invariants prediction relies on.
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// Error raised by linfa itself (required by linfa's `Fit` trait bound).
    #[error(transparent)]
    Linfa(#[from] LinfaError),
}

/// Cloneable, comparable wrapper for [`linfa::Error`] (which is neither `PartialEq` nor
/// always `Clone`-friendly across versions), so [`ForestError`] can be.
#[derive(Debug, Clone, PartialEq)]
pub struct LinfaError(pub String);

impl fmt::Display for LinfaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "linfa error: {}", self.0)
    }
}

impl std::error::Error for LinfaError {}

impl From<linfa::Error> for ForestError {
    fn from(e: linfa::Error) -> Self {
        ForestError::Linfa(LinfaError(e.to_string()))
    }
}

/// A fitted quantile regression forest. `predict` (via linfa's [`PredictInplace`]) gives the
/// conditional mean; [`QuantileForest::predict_quantiles`] gives conditional quantiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ForestRepr")]
pub struct QuantileForest {
    n_features: usize,
    /// Mean training target; leaf values are stored relative to it so f32 storage keeps
    /// precision relative to the target's spread rather than its magnitude.
    y_offset: f64,
    trees: Vec<Tree>,
    importances: Vec<f64>,
    params: ForestValidParams,
}

impl QuantileForest {
    /// Default hyper-parameters (see [`ForestParams::new`]).
    pub fn params() -> ForestParams {
        ForestParams::default()
    }

    /// Number of features the model was trained on.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The hyper-parameters the model was fitted with.
    pub fn fitted_params(&self) -> &ForestValidParams {
        &self.params
    }

    /// Impurity-decrease (variance reduction) importances, normalised per tree and then over
    /// the forest so they sum to 1 (all zeros if no tree ever split).
    pub fn feature_importances(&self) -> Vec<f64> {
        self.importances.clone()
    }
}
