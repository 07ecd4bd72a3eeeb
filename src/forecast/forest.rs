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

use std::cell::RefCell;
use std::fmt;

use indicatif::{ProgressBar, ProgressStyle};
use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use linfa::ParamGuard;
use ndarray::{Array1, Array2, ArrayBase, ArrayView2, Data, Ix2, Zip};
use rand::seq::index::sample as sample_indices;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Marks a leaf in [`Node::feature`].
const LEAF: u16 = u16::MAX;
/// Rows sampled per feature to place the quantile bin edges; enough for 256 stable quantiles
/// while keeping the sort cheap on large inputs.
const BIN_SAMPLE: usize = 65_536;
/// Rows predicted together, tree by tree, so a tree's top levels stay in cache across rows.
const PREDICT_BLOCK: usize = 64;
/// Largest accepted `leaf_quantiles`; beyond this the summary stops being a summary.
const MAX_LEAF_QUANTILES: usize = 256;
const INV_255: f32 = 1.0 / 255.0;

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

/// Validated hyper-parameters of a [`QuantileForest`]; obtained from [`ForestParams`] via
/// [`ParamGuard`], and the type that implements [`Fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestValidParams {
    n_trees: usize,
    max_depth: usize,
    min_samples_leaf: usize,
    max_features: usize,
    bootstrap: bool,
    sample_fraction: f64,
    max_bins: usize,
    leaf_quantiles: usize,
    seed: u64,
    show_progress: bool,
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
        if p.n_trees == 0 {
            return bad("n_trees", "must be at least 1".into());
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

/// One tree node. Internal: `x[feature] <= threshold` goes to the next node (pre-order),
/// otherwise to `right`. Leaf (`feature == LEAF`): `threshold` is the in-bag leaf mean and
/// `right` is the leaf index into the tree's summary tables.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Node {
    threshold: f32,
    right: u32,
    feature: u16,
}

/// A fitted tree plus its leaf summaries. Leaf `l` owns `codes[leaf_start[l]..leaf_start[l+1]]`,
/// decoded as `leaf_lo[l] + leaf_span[l] * code / 255` (sorted, equally weighted atoms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tree {
    nodes: Vec<Node>,
    leaf_start: Vec<u32>,
    leaf_lo: Vec<f32>,
    leaf_span: Vec<f32>,
    codes: Vec<u8>,
}

impl Tree {
    #[inline]
    fn leaf_node(&self, x: &[f64]) -> Node {
        let nodes = &self.nodes[..];
        let mut i = 0usize;
        loop {
            let n = nodes[i];
            if n.feature == LEAF {
                return n;
            }
            // NaN compares false and therefore goes right, deterministically.
            i = if x[n.feature as usize] <= f64::from(n.threshold) {
                i + 1
            } else {
                n.right as usize
            };
        }
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

/// Mirror of [`QuantileForest`] used only to validate deserialised models before use, so a
/// corrupt file cannot make prediction loop forever or index out of bounds.
#[derive(Deserialize)]
struct ForestRepr {
    n_features: usize,
    y_offset: f64,
    trees: Vec<Tree>,
    importances: Vec<f64>,
    params: ForestValidParams,
}

impl TryFrom<ForestRepr> for QuantileForest {
    type Error = ForestError;

    fn try_from(r: ForestRepr) -> Result<Self, ForestError> {
        let bad = |m: String| Err(ForestError::InvalidModel(m));
        if r.trees.is_empty() {
            return bad("no trees".into());
        }
        if r.n_features == 0 || r.n_features >= LEAF as usize {
            return bad(format!("feature count {}", r.n_features));
        }
        if !r.y_offset.is_finite() {
            return bad("non-finite target offset".into());
        }
        if r.importances.len() != r.n_features {
            return bad("importance length mismatch".into());
        }
        for (t, tree) in r.trees.iter().enumerate() {
            let n_leaves = tree.leaf_lo.len();
            if tree.leaf_span.len() != n_leaves || tree.leaf_start.len() != n_leaves + 1 {
                return bad(format!("tree {t}: leaf table lengths disagree"));
            }
            if tree.leaf_start.first() != Some(&0)
                || tree.leaf_start.last().map(|&v| v as usize) != Some(tree.codes.len())
                || tree.leaf_start.windows(2).any(|w| w[1] <= w[0])
            {
                return bad(format!("tree {t}: leaf offsets not strictly increasing"));
            }
            if tree
                .leaf_lo
                .iter()
                .zip(&tree.leaf_span)
                .any(|(lo, sp)| !lo.is_finite() || !sp.is_finite() || *sp < 0.0)
            {
                return bad(format!("tree {t}: non-finite leaf summary"));
            }
            if tree.nodes.is_empty() {
                return bad(format!("tree {t}: no nodes"));
            }
            let len = tree.nodes.len();
            for (i, n) in tree.nodes.iter().enumerate() {
                let ok = if n.feature == LEAF {
                    (n.right as usize) < n_leaves
                } else {
                    // Children strictly after the parent guarantee that traversal terminates.
                    (n.feature as usize) < r.n_features
                        && i + 1 < len
                        && (n.right as usize) > i + 1
                        && (n.right as usize) < len
                };
                if !ok {
                    return bad(format!("tree {t}: node {i} is malformed"));
                }
            }
        }
        Ok(QuantileForest {
            n_features: r.n_features,
            y_offset: r.y_offset,
            trees: r.trees,
            importances: r.importances,
            params: r.params,
        })
    }
}

thread_local! {
    /// Reused per-thread buffers for quantile queries so the live path does not allocate.
    static SCRATCH: RefCell<QuantileScratch> = RefCell::new(QuantileScratch::default());
}

#[derive(Default)]
struct QuantileScratch {
    keys: Vec<u64>,
    centers: Vec<f64>,
    values: Vec<f64>,
}

/// Maps f32 to u32 so that unsigned order equals numeric order (no NaN reaches here).
#[inline]
fn f32_key(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

#[inline]
fn key_f32(k: u32) -> f32 {
    if k & 0x8000_0000 != 0 {
        f32::from_bits(k & 0x7fff_ffff)
    } else {
        f32::from_bits(!k)
    }
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

    /// Conditional mean for one row (average of the trees' in-bag leaf means).
    ///
    /// # Panics
    /// If `x.len() != self.n_features()`.
    pub fn predict_mean_row(&self, x: &[f64]) -> f64 {
        assert_eq!(x.len(), self.n_features, "feature count mismatch");
        let s: f64 = self
            .trees
            .iter()
            .map(|t| f64::from(t.leaf_node(x).threshold))
            .sum();
        s / self.trees.len() as f64 + self.y_offset
    }

    /// Conditional quantiles for one row into `out` (same length as `qs`). Uses a per-thread
    /// scratch buffer, so after warm-up it does not allocate. `q` outside [0, 1] clamps to the
    /// extreme summary points; a NaN `q` yields NaN. Output is non-decreasing in `q`.
    ///
    /// # Panics
    /// If `x.len() != self.n_features()` or `out.len() != qs.len()`.
    pub fn predict_quantiles_row(&self, x: &[f64], qs: &[f64], out: &mut [f64]) {
        assert_eq!(x.len(), self.n_features, "feature count mismatch");
        assert_eq!(out.len(), qs.len(), "output length must equal qs length");
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.quantiles_with(x, qs, out, &mut s),
            // Only reachable on re-entrancy; correctness over the allocation.
            Err(_) => self.quantiles_with(x, qs, out, &mut QuantileScratch::default()),
        });
    }

    fn quantiles_with(&self, x: &[f64], qs: &[f64], out: &mut [f64], s: &mut QuantileScratch) {
        s.keys.clear();
        for t in &self.trees {
            let leaf = t.leaf_node(x).right as usize;
            let (a, b) = (t.leaf_start[leaf] as usize, t.leaf_start[leaf + 1] as usize);
            let k = (b - a) as u64;
            let (lo, span) = (t.leaf_lo[leaf], t.leaf_span[leaf] * INV_255);
            s.keys.extend(
                t.codes[a..b]
                    .iter()
                    .map(|&c| (u64::from(f32_key(lo + span * f32::from(c))) << 32) | k),
            );
        }
        s.keys.sort_unstable();
        // Each tree carries weight 1/T, split evenly over its leaf's k atoms; an atom's
        // "center" is the midpoint of its cumulative-probability step (Hazen positions),
        // and quantiles interpolate linearly between centers.
        let inv_t = 1.0 / self.trees.len() as f64;
        s.centers.clear();
        s.values.clear();
        let mut cum = 0.0f64;
        for &key in &s.keys {
            let w = inv_t / (key & 0xffff_ffff) as f64;
            s.centers.push(cum + 0.5 * w);
            s.values
                .push(f64::from(key_f32((key >> 32) as u32)) + self.y_offset);
            cum += w;
        }
        for (o, &q) in out.iter_mut().zip(qs) {
            *o = interpolate(&s.centers, &s.values, q);
        }
    }

    /// Conditional quantiles for each row: `rows × qs.len()`, parallel over rows.
    ///
    /// # Panics
    /// If `x.ncols() != self.n_features()`; use [`Self::try_predict_quantiles`] to get an error.
    pub fn predict_quantiles(&self, x: ArrayView2<f64>, qs: &[f64]) -> Array2<f64> {
        assert_eq!(x.ncols(), self.n_features, "feature count mismatch");
        let mut out = Array2::<f64>::zeros((x.nrows(), qs.len()));
        Zip::from(out.rows_mut())
            .and(x.rows())
            .par_for_each(|mut o, r| {
                let mut tmp_x = Vec::new();
                let xr = match r.as_slice() {
                    Some(s) => s,
                    None => {
                        tmp_x.extend(r.iter().copied());
                        &tmp_x[..]
                    }
                };
                match o.as_slice_mut() {
                    Some(os) => self.predict_quantiles_row(xr, qs, os),
                    None => {
                        let mut tmp = vec![0.0; qs.len()];
                        self.predict_quantiles_row(xr, qs, &mut tmp);
                        o.iter_mut().zip(tmp).for_each(|(d, v)| *d = v);
                    }
                }
            });
        out
    }

    /// Checked variant of [`Self::predict_quantiles`].
    pub fn try_predict_quantiles(
        &self,
        x: ArrayView2<f64>,
        qs: &[f64],
    ) -> Result<Array2<f64>, ForestError> {
        self.check_features(x.ncols())?;
        Ok(self.predict_quantiles(x, qs))
    }

    /// Checked conditional-mean prediction for a batch (parallel over row blocks).
    pub fn try_predict_mean(&self, x: ArrayView2<f64>) -> Result<Array1<f64>, ForestError> {
        self.check_features(x.ncols())?;
        let mut y = Array1::zeros(x.nrows());
        self.mean_into(x, &mut y);
        Ok(y)
    }

    fn check_features(&self, found: usize) -> Result<(), ForestError> {
        if found != self.n_features {
            return Err(ForestError::FeatureCount {
                expected: self.n_features,
                found,
            });
        }
        Ok(())
    }

    fn mean_into(&self, x: ArrayView2<f64>, y: &mut Array1<f64>) {
        assert_eq!(x.ncols(), self.n_features, "feature count mismatch");
        assert_eq!(x.nrows(), y.len(), "target length must equal row count");
        let p = self.n_features;
        let contiguous = x.as_slice();
        let mut out = vec![0.0f64; x.nrows()];
        out.par_chunks_mut(PREDICT_BLOCK)
            .enumerate()
            .for_each(|(bi, chunk)| {
                let r0 = bi * PREDICT_BLOCK;
                let mut buf = Vec::new();
                let block: &[f64] = match contiguous {
                    Some(s) => &s[r0 * p..(r0 + chunk.len()) * p],
                    None => {
                        for r in r0..r0 + chunk.len() {
                            buf.extend(x.row(r).iter().copied());
                        }
                        &buf
                    }
                };
                // Tree-outer order keeps each tree's hot top levels in cache for the block.
                for t in &self.trees {
                    for (o, xr) in chunk.iter_mut().zip(block.chunks_exact(p)) {
                        *o += f64::from(t.leaf_node(xr).threshold);
                    }
                }
                let inv = 1.0 / self.trees.len() as f64;
                chunk.iter_mut().for_each(|o| *o = *o * inv + self.y_offset);
            });
        y.iter_mut().zip(out).for_each(|(d, v)| *d = v);
    }
}

/// Piecewise-linear interpolation of the weighted empirical quantile function through the atom
/// centers; clamps outside the first/last center, which makes out-of-range `q` clamp too.
#[inline]
fn interpolate(centers: &[f64], values: &[f64], q: f64) -> f64 {
    if q.is_nan() || values.is_empty() {
        return f64::NAN;
    }
    let i = centers.partition_point(|&c| c <= q);
    if i == 0 {
        return values[0];
    }
    if i == centers.len() {
        return values[i - 1];
    }
    let (c0, c1, v0, v1) = (centers[i - 1], centers[i], values[i - 1], values[i]);
    let t = if c1 > c0 { (q - c0) / (c1 - c0) } else { 0.0 };
    // Clamp so rounding can never break monotonicity across segment boundaries.
    (v0 + (v1 - v0) * t).clamp(v0, v1)
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for QuantileForest {
    /// Conditional mean per row.
    ///
    /// # Panics
    /// On a feature-count or length mismatch (use [`QuantileForest::try_predict_mean`]).
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<f64>) {
        self.mean_into(x.view(), y);
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(x.nrows())
    }
}

// ---------------------------------------------------------------------------------------------
// Fitting
// ---------------------------------------------------------------------------------------------

/// Binned training features: `bins[f * n_rows + r]`, `edges[f]` the (f32-exact) upper edges.
struct Binned {
    n_rows: usize,
    bins: Vec<u8>,
    edges: Vec<Vec<f32>>,
}

impl Binned {
    #[inline]
    fn col(&self, f: usize) -> &[u8] {
        &self.bins[f * self.n_rows..(f + 1) * self.n_rows]
    }
}

/// Places bin edges at sample quantiles (or between all distinct values when there are few).
/// Edges are rounded to f32 here so that `x <= edge` means the same at fit and at predict.
fn bin_edges(mut sample: Vec<f64>, max_bins: usize) -> Vec<f32> {
    sample.sort_unstable_by(f64::total_cmp);
    let m = sample.len();
    let mut distinct = sample.clone();
    distinct.dedup();
    let mut edges: Vec<f32> = Vec::with_capacity(max_bins);
    let mut push = |a: f64, b: f64| {
        let e = (a + (b - a) * 0.5) as f32;
        // An f32 edge below `a` would move `a` into the next bin; keep `a <= e < b`.
        let e = if f64::from(e) < a {
            e.next_up()
        } else if f64::from(e) >= b {
            e.next_down()
        } else {
            e
        };
        if f64::from(e) >= a && f64::from(e) < b && edges.last().is_none_or(|&l| l < e) {
            edges.push(e);
        }
    };
    if distinct.len() <= max_bins {
        for w in distinct.windows(2) {
            push(w[0], w[1]);
        }
    } else {
        // Quantiles over the full (tied) sample, so heavy values get their own bin; the edge
        // sits just above the quantile value, between it and the next distinct value.
        for b in 1..max_bins {
            let a = sample[b * m / max_bins - 1];
            let next = distinct.partition_point(|&v| v <= a);
            if let Some(&hi) = distinct.get(next) {
                push(a, hi);
            }
        }
    }
    edges
}

fn bin_dataset(x: ArrayView2<f64>, max_bins: usize, seed: u64) -> Binned {
    let (n, p) = x.dim();
    let sample_rows: Vec<usize> = if n <= BIN_SAMPLE {
        (0..n).collect()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(u64::MAX);
        let mut v = sample_indices(&mut rng, n, BIN_SAMPLE).into_vec();
        v.sort_unstable();
        v
    };
    let per_feature: Vec<(Vec<f32>, Vec<u8>)> = (0..p)
        .into_par_iter()
        .map(|f| {
            let col = x.column(f);
            let edges = bin_edges(sample_rows.iter().map(|&r| col[r]).collect(), max_bins);
            let e64: Vec<f64> = edges.iter().map(|&e| f64::from(e)).collect();
            let bins = col
                .iter()
                .map(|&v| e64.partition_point(|&e| e < v) as u8)
                .collect();
            (edges, bins)
        })
        .collect();
    let mut bins = Vec::with_capacity(n * p);
    let mut edges = Vec::with_capacity(p);
    for (e, b) in per_feature {
        edges.push(e);
        bins.extend_from_slice(&b);
    }
    Binned {
        n_rows: n,
        bins,
        edges,
    }
}

/// An in-bag row: its index, bootstrap multiplicity and (centred) target.
#[derive(Clone, Copy)]
struct Sample {
    row: u32,
    w: u32,
    y: f64,
}

#[derive(Clone, Copy, Default)]
struct Bin {
    s: f64,
    w: u64,
    n: u32,
}

struct Split {
    feature: usize,
    bin: u8,
    gain: f64,
}

struct Pending {
    start: usize,
    end: usize,
    depth: usize,
    /// Node whose `right` must point here (only set for right children).
    patch: Option<usize>,
}

struct TreeOutput {
    tree: Tree,
    importances: Vec<f64>,
}

struct Ctx<'a> {
    binned: &'a Binned,
    y: &'a [f64],
    p: &'a ForestValidParams,
    max_features: usize,
}

fn fit_tree(ctx: &Ctx<'_>, tree_index: usize) -> TreeOutput {
    let n = ctx.binned.n_rows;
    let n_feat = ctx.binned.edges.len();
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.p.seed);
    rng.set_stream(tree_index as u64);

    // Per-row multiplicity; rows with 0 are out-of-bag.
    let draws = ((ctx.p.sample_fraction * n as f64).ceil() as usize).clamp(1, n);
    let mut counts = vec![0u32; n];
    if ctx.p.bootstrap {
        for _ in 0..draws {
            counts[rng.gen_range(0..n)] += 1;
        }
    } else {
        for r in sample_indices(&mut rng, n, draws).into_iter() {
            counts[r] = 1;
        }
    }
    let mut samples: Vec<Sample> = counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(r, &c)| Sample {
            row: r as u32,
            w: c,
            y: ctx.y[r],
        })
        .collect();
    let mut scratch: Vec<Sample> = Vec::with_capacity(samples.len());
    let mut hist = [Bin::default(); 256];
    let mut perm: Vec<usize> = (0..n_feat).collect();
    let mut importances = vec![0.0f64; n_feat];

    let mut nodes: Vec<Node> = Vec::new();
    let mut split_bins: Vec<u8> = Vec::new();
    let mut leaf_ranges: Vec<(usize, usize)> = Vec::new();
    let mut stack = vec![Pending {
        start: 0,
        end: samples.len(),
        depth: 0,
        patch: None,
    }];
    let min_leaf = ctx.p.min_samples_leaf;

    while let Some(pd) = stack.pop() {
        let id = nodes.len();
        if let Some(parent) = pd.patch {
            nodes[parent].right = id as u32;
        }
        let node_samples = &samples[pd.start..pd.end];
        let (mut s, mut w) = (0.0f64, 0u64);
        let (mut ymin, mut ymax) = (f64::INFINITY, f64::NEG_INFINITY);
        for smp in node_samples {
            s += f64::from(smp.w) * smp.y;
            w += u64::from(smp.w);
            ymin = ymin.min(smp.y);
            ymax = ymax.max(smp.y);
        }
        let count = node_samples.len();
        let split = if pd.depth >= ctx.p.max_depth || count < 2 * min_leaf || ymin == ymax {
            None
        } else {
            find_split(
                ctx,
                &mut rng,
                node_samples,
                (s, w, count),
                &mut hist,
                &mut perm,
            )
        };
        match split {
            None => {
                nodes.push(Node {
                    threshold: (s / w as f64) as f32,
                    right: leaf_ranges.len() as u32,
                    feature: LEAF,
                });
                split_bins.push(0);
                leaf_ranges.push((pd.start, pd.end));
            }
            Some(sp) => {
                importances[sp.feature] += sp.gain;
                let col = ctx.binned.col(sp.feature);
                // Stable partition keeps row indices ascending, so the byte gathers in
                // histogram building walk each column forwards.
                scratch.clear();
                let mut l = pd.start;
                for i in pd.start..pd.end {
                    let smp = samples[i];
                    if col[smp.row as usize] <= sp.bin {
                        samples[l] = smp;
                        l += 1;
                    } else {
                        scratch.push(smp);
                    }
                }
                samples[l..pd.end].copy_from_slice(&scratch);
                nodes.push(Node {
                    threshold: ctx.binned.edges[sp.feature][sp.bin as usize],
                    right: 0,
                    feature: sp.feature as u16,
                });
                split_bins.push(sp.bin);
                stack.push(Pending {
                    start: l,
                    end: pd.end,
                    depth: pd.depth + 1,
                    patch: Some(id),
                });
                stack.push(Pending {
                    start: pd.start,
                    end: l,
                    depth: pd.depth + 1,
                    patch: None,
                });
            }
        }
    }

    let tree = summarise_leaves(ctx, &nodes, &split_bins, &samples, &leaf_ranges, &counts);
    let total: f64 = importances.iter().sum();
    if total > 0.0 {
        importances.iter_mut().for_each(|v| *v /= total);
    }
    TreeOutput {
        tree: Tree { nodes, ..tree },
        importances,
    }
}

fn find_split(
    ctx: &Ctx<'_>,
    rng: &mut ChaCha8Rng,
    samples: &[Sample],
    (s_tot, w_tot, n_tot): (f64, u64, usize),
    hist: &mut [Bin; 256],
    perm: &mut [usize],
) -> Option<Split> {
    let min_leaf = ctx.p.min_samples_leaf;
    let n_feat = perm.len();
    let parent = s_tot * s_tot / w_tot as f64;
    let mut best: Option<Split> = None;
    let mut best_score = f64::NEG_INFINITY;
    let mut informative = 0usize;
    // Like scikit-learn, features that turn out constant in this node do not use up the
    // `max_features` budget: keep drawing (without replacement) until enough were informative.
    for j in 0..n_feat {
        let r = rng.gen_range(j..n_feat);
        perm.swap(j, r);
        let f = perm[j];
        let n_bins = ctx.binned.edges[f].len() + 1;
        if n_bins < 2 {
            continue;
        }
        let col = ctx.binned.col(f);
        hist[..n_bins].fill(Bin::default());
        for smp in samples {
            let h = &mut hist[col[smp.row as usize] as usize];
            h.s += f64::from(smp.w) * smp.y;
            h.w += u64::from(smp.w);
            h.n += 1;
        }
        let (mut sl, mut wl, mut nl) = (0.0f64, 0u64, 0usize);
        let mut varies = false;
        for (b, h) in hist[..n_bins - 1].iter().enumerate() {
            if h.n == 0 {
                continue;
            }
            sl += h.s;
            wl += h.w;
            nl += h.n as usize;
            if nl >= n_tot {
                break;
            }
            varies = true;
            if n_tot - nl < min_leaf {
                break;
            }
            if nl < min_leaf {
                continue;
            }
            let sr = s_tot - sl;
            let wr = (w_tot - wl) as f64;
            let score = sl * sl / wl as f64 + sr * sr / wr;
            if score > best_score {
                best_score = score;
                best = Some(Split {
                    feature: f,
                    bin: b as u8,
                    gain: 0.0,
                });
            }
        }
        if varies {
            informative += 1;
            if informative >= ctx.max_features {
                break;
            }
        }
    }
    let gain = best_score - parent;
    match best {
        Some(mut sp) if gain > 0.0 => {
            sp.gain = gain;
            Some(sp)
        }
        _ => None,
    }
}

/// Builds the per-leaf quantile summaries from *all* training rows: in-bag rows are already
/// grouped by leaf; out-of-bag rows are routed through the tree on their bins.
fn summarise_leaves(
    ctx: &Ctx<'_>,
    nodes: &[Node],
    split_bins: &[u8],
    samples: &[Sample],
    leaf_ranges: &[(usize, usize)],
    counts: &[u32],
) -> Tree {
    let n = ctx.binned.n_rows;
    let n_leaves = leaf_ranges.len();
    let mut leaf_of_row = vec![0u32; n];
    for (l, &(a, b)) in leaf_ranges.iter().enumerate() {
        for smp in &samples[a..b] {
            leaf_of_row[smp.row as usize] = l as u32;
        }
    }
    for (r, &c) in counts.iter().enumerate() {
        if c == 0 {
            let mut i = 0usize;
            loop {
                let nd = nodes[i];
                if nd.feature == LEAF {
                    leaf_of_row[r] = nd.right;
                    break;
                }
                i = if ctx.binned.col(nd.feature as usize)[r] <= split_bins[i] {
                    i + 1
                } else {
                    nd.right as usize
                };
            }
        }
    }
    // Counting sort of targets by leaf.
    let mut offs = vec![0usize; n_leaves + 1];
    for &l in &leaf_of_row {
        offs[l as usize + 1] += 1;
    }
    for i in 0..n_leaves {
        offs[i + 1] += offs[i];
    }
    let mut fill = offs.clone();
    let mut vals = vec![0.0f64; n];
    for (r, &l) in leaf_of_row.iter().enumerate() {
        vals[fill[l as usize]] = ctx.y[r];
        fill[l as usize] += 1;
    }
    let kmax = ctx.p.leaf_quantiles;
    let mut leaf_start = Vec::with_capacity(n_leaves + 1);
    let mut leaf_lo = Vec::with_capacity(n_leaves);
    let mut leaf_span = Vec::with_capacity(n_leaves);
    let mut codes = Vec::with_capacity(n_leaves * kmax);
    let mut atoms = Vec::with_capacity(kmax);
    leaf_start.push(0u32);
    for l in 0..n_leaves {
        let v = &mut vals[offs[l]..offs[l + 1]];
        // Every leaf holds at least one in-bag row, so `v` is never empty.
        v.sort_unstable_by(f64::total_cmp);
        let m = v.len();
        let k = m.min(kmax);
        atoms.clear();
        for j in 0..k {
            // Hazen position of probability (j + 0.5) / k; exact order statistics when k == m.
            let h = ((j as f64 + 0.5) * m as f64 / k as f64 - 0.5).clamp(0.0, (m - 1) as f64);
            let i0 = h.floor() as usize;
            let i1 = (i0 + 1).min(m - 1);
            atoms.push(v[i0] + (v[i1] - v[i0]) * (h - i0 as f64));
        }
        let lo = atoms[0] as f32;
        let hi = atoms[k - 1] as f32;
        let span = (hi - lo).max(0.0);
        leaf_lo.push(lo);
        leaf_span.push(span);
        for &a in &atoms {
            let c = if span > 0.0 {
                ((a as f32 - lo) / span * 255.0).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
            codes.push(c);
        }
        leaf_start.push(codes.len() as u32);
    }
    Tree {
        nodes: Vec::new(),
        leaf_start,
        leaf_lo,
        leaf_span,
        codes,
    }
}

impl<D, T> Fit<ArrayBase<D, Ix2>, T, ForestError> for ForestValidParams
where
    D: Data<Elem = f64>,
    T: AsSingleTargets<Elem = f64>,
{
    type Object = QuantileForest;

    fn fit(
        &self,
        dataset: &DatasetBase<ArrayBase<D, Ix2>, T>,
    ) -> Result<QuantileForest, ForestError> {
        let x = dataset.records.view();
        let y = dataset.targets.as_single_targets();
        let (n, p) = x.dim();
        if n == 0 || p == 0 {
            return Err(ForestError::EmptyDataset {
                rows: n,
                features: p,
            });
        }
        if y.len() != n {
            return Err(ForestError::TargetCount {
                rows: n,
                targets: y.len(),
            });
        }
        if n > u32::MAX as usize {
            return Err(ForestError::TooLarge {
                what: format!("{n} rows (max {})", u32::MAX),
            });
        }
        if p >= LEAF as usize {
            return Err(ForestError::TooLarge {
                what: format!("{p} features (max {})", LEAF - 1),
            });
        }
        for (row, r) in x.rows().into_iter().enumerate() {
            if let Some((column, &value)) = r.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(ForestError::NonFiniteFeature { row, column, value });
            }
        }
        if let Some((row, &value)) = y.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ForestError::NonFiniteTarget { row, value });
        }

        // Centring keeps the variance-reduction sums well conditioned for large offsets.
        // Divide first so huge-but-finite targets cannot overflow the sum.
        let y_offset: f64 = y.iter().map(|&v| v / n as f64).sum();
        let yc: Vec<f64> = y.iter().map(|&v| v - y_offset).collect();
        let binned = bin_dataset(x, self.max_bins, self.seed);
        let ctx = Ctx {
            binned: &binned,
            y: &yc,
            p: self,
            max_features: self.max_features.min(p),
        };

        let bar = if self.show_progress {
            let style = ProgressStyle::with_template(
                "fitting forest {bar:40} {pos}/{len} trees [{elapsed_precise}<{eta_precise}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(self.n_trees as u64).with_style(style)
        } else {
            ProgressBar::hidden()
        };
        let outputs: Vec<TreeOutput> = (0..self.n_trees)
            .into_par_iter()
            .map(|t| {
                let out = fit_tree(&ctx, t);
                bar.inc(1);
                out
            })
            .collect();
        bar.finish_and_clear();

        let mut importances = vec![0.0f64; p];
        let mut trees = Vec::with_capacity(outputs.len());
        for o in outputs {
            importances
                .iter_mut()
                .zip(&o.importances)
                .for_each(|(a, b)| *a += b);
            trees.push(o.tree);
        }
        let total: f64 = importances.iter().sum();
        if total > 0.0 {
            importances.iter_mut().for_each(|v| *v /= total);
        }
        Ok(QuantileForest {
            n_features: p,
            y_offset,
            trees,
            importances,
            params: self.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::traits::Predict;
    use linfa::Dataset;
    use ndarray::Array2;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn uniform(rng: &mut ChaCha8Rng, n: usize, p: usize, lo: f64, hi: f64) -> Array2<f64> {
        Array2::from_shape_fn((n, p), |_| rng.gen_range(lo..hi))
    }

    fn gauss(rng: &mut ChaCha8Rng) -> f64 {
        // Box–Muller; avoids pulling in rand_distr for tests.
        let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = rng.gen();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn r2(y: &Array1<f64>, pred: &Array1<f64>) -> f64 {
        let mean = y.mean().unwrap_or(0.0);
        let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
        let ss_tot: f64 = y.iter().map(|a| (a - mean).powi(2)).sum();
        1.0 - ss_res / ss_tot
    }

    fn smooth_data(n: usize, seed: u64) -> (Array2<f64>, Array1<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = uniform(&mut rng, n, 4, -3.0, 3.0);
        let y = x
            .rows()
            .into_iter()
            .map(|r| (r[0]).sin() * 3.0 + r[1] * r[1])
            .collect();
        (x, y)
    }

    fn small_params() -> ForestParams {
        QuantileForest::params().n_trees(24).max_features(3)
    }

    fn small_model() -> &'static QuantileForest {
        static M: OnceLock<QuantileForest> = OnceLock::new();
        M.get_or_init(|| {
            let (x, y) = smooth_data(2000, 1);
            small_params()
                .fit(&Dataset::new(x, y))
                .expect("fit small model")
        })
    }

    #[test]
    fn fits_known_function() {
        let (x, y) = smooth_data(4000, 2);
        let (xt, yt) = smooth_data(1000, 3);
        let model = small_params().fit(&Dataset::new(x, y)).unwrap();
        let pred = model.predict(&xt);
        let score = r2(&yt, &pred);
        assert!(score > 0.9, "R² {score}");
        // Batch mean and per-row mean agree exactly (same summation order).
        let row = xt.row(7).to_vec();
        assert_eq!(pred[7], model.predict_mean_row(&row));
        // x0 and x1 carry all the signal.
        let imp = model.feature_importances();
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(imp[0] + imp[1] > 0.9, "importances {imp:?}");
    }

    #[test]
    fn quantile_coverage_close_to_nominal() {
        // y = 2 x0 + N(0, (0.2 + 0.8 x1)^2): heteroscedastic, the forest has to localise sd.
        let make = |n: usize, seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let x = uniform(&mut rng, n, 3, 0.0, 1.0);
            let y: Array1<f64> = x
                .rows()
                .into_iter()
                .map(|r| 2.0 * r[0] + (0.2 + 0.8 * r[1]) * gauss(&mut rng))
                .collect();
            (x, y)
        };
        let (x, y) = make(8000, 10);
        let (xt, yt) = make(3000, 11);
        let model = QuantileForest::params()
            .n_trees(40)
            .max_features(3)
            .min_samples_leaf(10)
            .fit(&Dataset::new(x, y))
            .unwrap();
        let q = model.predict_quantiles(xt.view(), &[0.1, 0.5, 0.9]);
        let frac = |c: usize| {
            yt.iter().zip(q.column(c)).filter(|(y, p)| *y <= *p).count() as f64 / yt.len() as f64
        };
        let (c10, c50, c90) = (frac(0), frac(1), frac(2));
        assert!((c90 - 0.9).abs() < 0.04, "p90 coverage {c90}");
        assert!((c50 - 0.5).abs() < 0.04, "p50 coverage {c50}");
        assert!((c10 - 0.1).abs() < 0.04, "p10 coverage {c10}");
        // The band must actually follow the noise level, not just be globally calibrated.
        let width = |x1: f64| {
            let q = model.predict_quantiles(ndarray::arr2(&[[0.5, x1, 0.5]]).view(), &[0.1, 0.9]);
            q[[0, 1]] - q[[0, 0]]
        };
        assert!(
            width(0.9) > 2.0 * width(0.1),
            "band ignores heteroscedasticity"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn quantiles_are_ordered(
            row in proptest::collection::vec(-5.0f64..5.0, 4),
            mut qs in proptest::collection::vec(-0.5f64..1.5, 1..8),
        ) {
            let m = small_model();
            qs.sort_by(f64::total_cmp);
            let mut out = vec![0.0; qs.len()];
            m.predict_quantiles_row(&row, &qs, &mut out);
            for w in out.windows(2) {
                prop_assert!(w[0] <= w[1], "{:?} for {:?}", out, qs);
            }
            // Out-of-range q clamps to the extremes.
            let mut ext = [0.0; 4];
            m.predict_quantiles_row(&row, &[-1.0, 0.0, 1.0, 2.0], &mut ext);
            prop_assert_eq!(ext[0], ext[1]);
            prop_assert_eq!(ext[2], ext[3]);
            prop_assert!(out.iter().all(|v| *v >= ext[0] && *v <= ext[3]));
        }
    }

    #[test]
    fn deterministic_across_runs_and_thread_counts() {
        let (x, y) = smooth_data(1500, 4);
        let ds = Dataset::new(x.clone(), y);
        let params = small_params().n_trees(8).seed(42);
        let fit_in = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| params.fit(&ds).unwrap())
        };
        let a = fit_in(1);
        let b = fit_in(2);
        let c = params.fit(&ds).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        let qa = a.predict_quantiles(x.view(), &[0.1, 0.5, 0.9]);
        let qb = b.predict_quantiles(x.view(), &[0.1, 0.5, 0.9]);
        assert_eq!(qa, qb);
        let d = small_params().n_trees(8).seed(43).fit(&ds).unwrap();
        assert_ne!(a.predict(&x), d.predict(&x));
    }

    #[test]
    fn invalid_params_name_the_parameter() {
        let cases: Vec<(ForestParams, &str)> = vec![
            (QuantileForest::params().n_trees(0), "n_trees"),
            (QuantileForest::params().max_features(0), "max_features"),
            (
                QuantileForest::params().min_samples_leaf(0),
                "min_samples_leaf",
            ),
            (QuantileForest::params().max_bins(257), "max_bins"),
            (QuantileForest::params().max_bins(1), "max_bins"),
            (QuantileForest::params().leaf_quantiles(0), "leaf_quantiles"),
            (QuantileForest::params().max_depth(0), "max_depth"),
            (
                QuantileForest::params().sample_fraction(0.0),
                "sample_fraction",
            ),
            (
                QuantileForest::params().sample_fraction(f64::NAN),
                "sample_fraction",
            ),
        ];
        for (p, name) in cases {
            match p.check_ref() {
                Err(e @ ForestError::InvalidParameter { name: n, .. }) => {
                    assert_eq!(n, name);
                    assert!(e.to_string().contains(name));
                }
                other => panic!("{name}: expected error, got {other:?}"),
            }
        }
        assert!(QuantileForest::params().check().is_ok());
        // Fitting through the unchecked params reports the same error.
        let (x, y) = smooth_data(50, 5);
        let err = QuantileForest::params()
            .n_trees(0)
            .fit(&Dataset::new(x, y))
            .unwrap_err();
        assert!(matches!(
            err,
            ForestError::InvalidParameter {
                name: "n_trees",
                ..
            }
        ));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (mut x, mut y) = smooth_data(100, 6);
        x[[17, 2]] = f64::NAN;
        let err = small_params()
            .fit(&Dataset::new(x.clone(), y.clone()))
            .unwrap_err();
        assert!(
            matches!(
                err,
                ForestError::NonFiniteFeature {
                    row: 17,
                    column: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("row 17") && err.to_string().contains("column 2"));
        x[[17, 2]] = 0.0;
        y[33] = f64::INFINITY;
        let err = small_params().fit(&Dataset::new(x, y)).unwrap_err();
        assert!(matches!(err, ForestError::NonFiniteTarget { row: 33, .. }));

        let empty = Dataset::new(Array2::<f64>::zeros((0, 3)), Array1::<f64>::zeros(0));
        assert!(matches!(
            small_params().fit(&empty).unwrap_err(),
            ForestError::EmptyDataset { rows: 0, .. }
        ));
        let no_features = Dataset::new(Array2::<f64>::zeros((5, 0)), Array1::<f64>::zeros(5));
        assert!(matches!(
            small_params().fit(&no_features).unwrap_err(),
            ForestError::EmptyDataset { features: 0, .. }
        ));

        let m = small_model();
        let wrong = Array2::<f64>::zeros((3, 5));
        assert_eq!(
            m.try_predict_quantiles(wrong.view(), &[0.5]).unwrap_err(),
            ForestError::FeatureCount {
                expected: 4,
                found: 5
            }
        );
        assert!(m.try_predict_mean(wrong.view()).is_err());
    }

    #[test]
    fn tiny_and_degenerate_datasets_fit() {
        // One row, constant targets and constant features must not panic.
        let one = Dataset::new(ndarray::arr2(&[[1.0, 2.0]]), ndarray::arr1(&[3.0]));
        let m = small_params().fit(&one).unwrap();
        assert_eq!(m.predict_mean_row(&[0.0, 0.0]), 3.0);
        let mut out = [0.0; 2];
        m.predict_quantiles_row(&[0.0, 0.0], &[0.1, 0.9], &mut out);
        assert_eq!(out, [3.0, 3.0]);
        let constant = Dataset::new(Array2::<f64>::ones((50, 3)), Array1::from_elem(50, 1.5));
        let m = small_params().fit(&constant).unwrap();
        assert_eq!(m.predict_mean_row(&[1.0, 1.0, 1.0]), 1.5);
        assert_eq!(m.feature_importances(), vec![0.0; 3]);
        // Huge offset, tiny signal: centring must keep the split search meaningful.
        let (x, y) = smooth_data(1000, 8);
        let shifted = y.mapv(|v| 1e9 + v);
        let m = small_params()
            .fit(&Dataset::new(x.clone(), shifted))
            .unwrap();
        let pred = m.predict(&x).mapv(|v| v - 1e9);
        assert!(r2(&y, &pred) > 0.8);
    }

    #[test]
    fn serde_round_trip_is_exact() {
        let m = small_model();
        let bytes = postcard::to_stdvec(m).unwrap();
        let back: QuantileForest = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(&back, m);
        let (x, _) = smooth_data(200, 9);
        assert_eq!(back.predict(&x), m.predict(&x));
        assert_eq!(
            back.predict_quantiles(x.view(), &[0.05, 0.5, 0.95]),
            m.predict_quantiles(x.view(), &[0.05, 0.5, 0.95])
        );
        // Corrupt or truncated bytes are errors, never panics or hangs.
        assert!(postcard::from_bytes::<QuantileForest>(&bytes[..bytes.len() / 2]).is_err());
        let mut bad = m.clone();
        bad.trees[0].nodes[0].right = 0;
        let bytes = postcard::to_stdvec(&bad).unwrap();
        assert!(postcard::from_bytes::<QuantileForest>(&bytes).is_err());
    }

    #[test]
    fn non_contiguous_input_matches_contiguous() {
        let m = small_model();
        let (x, _) = smooth_data(100, 12);
        let xf = x.t().as_standard_layout().t().to_owned(); // column-major copy
        assert_eq!(m.predict(&x), m.predict(&xf));
        assert_eq!(
            m.predict_quantiles(x.view(), &[0.3]),
            m.predict_quantiles(xf.view(), &[0.3])
        );
    }

    #[test]
    fn f32_key_orders_like_numbers() {
        let vals = [-3.5f32, -0.0, 0.0, 1e-30, 2.0, f32::MAX, f32::MIN];
        for &a in &vals {
            assert_eq!(key_f32(f32_key(a)).to_bits(), a.to_bits());
            for &b in &vals {
                if a < b {
                    assert!(f32_key(a) < f32_key(b));
                }
            }
        }
    }
}
