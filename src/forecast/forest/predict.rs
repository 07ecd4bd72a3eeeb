//! Prediction: trees walked in lockstep to their leaves, then the conditional mean from the
//! leaf means or conditional quantiles from the mixture of the leaf records.

use std::cell::RefCell;

use linfa::traits::PredictInplace;
use ndarray::{Array1, Array2, ArrayBase, ArrayView2, Data, Ix2};
use rayon::prelude::*;

use super::merge::{self, MergeScratch};
use super::storage::{Node, Tree, LEAF};
use super::{ForestError, QuantileForest};

/// Rows predicted together, tree by tree, so a tree's top levels stay in cache across rows.
const PREDICT_BLOCK: usize = 256;

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

/// Lanes walked in lockstep: independent traversals whose cache misses overlap, instead of
/// one dependent chain of ~depth misses per tree (the model is larger than L2).
const LANES: usize = 8;

/// Walks `L` (tree, row) pairs down to their leaves in lockstep.
#[inline]
fn walk_lanes<const L: usize>(trees: [&[Node]; L], xs: [&[f64]; L]) -> [Node; L] {
    let mut idx = [0usize; L];
    let mut cur: [Node; L] = std::array::from_fn(|k| trees[k][0]);
    loop {
        let mut active = false;
        for k in 0..L {
            let n = cur[k];
            if n.feature != LEAF {
                active = true;
                let next = if xs[k][n.feature as usize] <= f64::from(n.threshold) {
                    idx[k] + 1
                } else {
                    n.right as usize
                };
                idx[k] = next;
                cur[k] = trees[k][next];
            }
        }
        if !active {
            return cur;
        }
    }
}

/// Calls `f(tree_index, leaf_node)` for every tree on one row, walking trees in lockstep.
#[inline]
fn for_each_leaf(trees: &[Tree], x: &[f64], mut f: impl FnMut(usize, Node)) {
    let mut chunks = trees.chunks_exact(LANES);
    let mut base = 0;
    for c in &mut chunks {
        let leaves = walk_lanes::<LANES>(std::array::from_fn(|k| &c[k].nodes[..]), [x; LANES]);
        for (k, n) in leaves.into_iter().enumerate() {
            f(base + k, n);
        }
        base += LANES;
    }
    for (k, t) in chunks.remainder().iter().enumerate() {
        f(base + k, t.leaf_node(x));
    }
}

thread_local! {
    /// Reused per-thread buffers for quantile queries so the live path does not allocate.
    static SCRATCH: RefCell<QuantileScratch> = RefCell::new(QuantileScratch::default());
}

#[derive(Default)]
struct QuantileScratch {
    /// One row's leaf record offsets, by tree.
    leaves: Vec<u32>,
    /// A block's leaf record offsets, row-major (`row × tree`).
    block: Vec<u32>,
    merge: MergeScratch,
}

impl QuantileForest {
    /// Conditional mean for one row (average of the trees' in-bag leaf means).
    ///
    /// # Panics
    /// If `x.len() != self.n_features()`.
    pub fn predict_mean_row(&self, x: &[f64]) -> f64 {
        assert_eq!(x.len(), self.n_features, "feature count mismatch");
        let mut s = 0.0f64;
        for_each_leaf(&self.trees, x, |_, n| s += f64::from(n.threshold));
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
        if qs.is_empty() {
            return;
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.quantiles_with(x, qs, out, &mut s),
            // Only reachable on re-entrancy; correctness over the allocation.
            Err(_) => self.quantiles_with(x, qs, out, &mut QuantileScratch::default()),
        });
    }

    fn quantiles_with(&self, x: &[f64], qs: &[f64], out: &mut [f64], s: &mut QuantileScratch) {
        let mut leaves = std::mem::take(&mut s.leaves);
        leaves.clear();
        for_each_leaf(&self.trees, x, |_, node| leaves.push(node.right));
        self.merge_leaves(&leaves, qs, out, s);
        s.leaves = leaves;
    }

    /// Quantiles from one row's leaves: `leaves[t]` is the byte offset of the row's leaf record
    /// in tree `t`. The one merge both the per-row and the batched path run, so they agree to
    /// the bit.
    fn merge_leaves(&self, leaves: &[u32], qs: &[f64], out: &mut [f64], s: &mut QuantileScratch) {
        merge::quantiles(&self.trees, self.y_offset, leaves, qs, out, &mut s.merge);
    }

    /// One row's leaf record offsets, by tree (for the merge's tests).
    #[cfg(test)]
    pub(super) fn leaves_of(&self, x: &[f64]) -> Vec<u32> {
        let mut v = Vec::new();
        for_each_leaf(&self.trees, x, |_, n| v.push(n.right));
        v
    }

    /// Conditional quantiles for a batch of rows, `x` row-major (`rows × n_features`), into
    /// `out` (`rows × qs.len()`, row-major), on the calling thread. Same results as
    /// [`Self::predict_quantiles_row`] row by row, to the bit; faster on many rows because
    /// each tree is walked for a block of rows at a time (tree-outer), so its nodes stay in
    /// cache instead of the whole forest streaming through it once per row.
    ///
    /// # Panics
    /// If `x.len()` is not a multiple of `n_features()` or `out.len() != rows × qs.len()`.
    pub fn predict_quantiles_block(&self, x: &[f64], qs: &[f64], out: &mut [f64]) {
        let p = self.n_features;
        assert_eq!(x.len() % p, 0, "feature count mismatch");
        let rows = x.len() / p;
        assert_eq!(
            out.len(),
            rows * qs.len(),
            "output length must be rows × qs"
        );
        if qs.is_empty() || rows == 0 {
            return;
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.block_with(x, qs, out, &mut s),
            Err(_) => self.block_with(x, qs, out, &mut QuantileScratch::default()),
        });
    }

    fn block_with(&self, x: &[f64], qs: &[f64], out: &mut [f64], s: &mut QuantileScratch) {
        let p = self.n_features;
        let n_trees = self.trees.len();
        let mut block_leaves = std::mem::take(&mut s.block);
        for (xb, ob) in x
            .chunks(PREDICT_BLOCK * p)
            .zip(out.chunks_mut(PREDICT_BLOCK * qs.len()))
        {
            let m = xb.len() / p;
            // Row-major leaf offsets: `block_leaves[r * T + t]`, so each row's leaves are one
            // slice for the merge.
            block_leaves.clear();
            block_leaves.resize(m * n_trees, 0);
            let full = m - m % LANES;
            for (t, tree) in self.trees.iter().enumerate() {
                let nodes = &tree.nodes[..];
                for r0 in (0..full).step_by(LANES) {
                    let leaves = walk_lanes::<LANES>(
                        [nodes; LANES],
                        std::array::from_fn(|k| &xb[(r0 + k) * p..(r0 + k + 1) * p]),
                    );
                    for (k, n) in leaves.into_iter().enumerate() {
                        block_leaves[(r0 + k) * n_trees + t] = n.right;
                    }
                }
                for r in full..m {
                    block_leaves[r * n_trees + t] = tree.leaf_node(&xb[r * p..(r + 1) * p]).right;
                }
            }
            for (leaves, o) in block_leaves
                .chunks_exact(n_trees)
                .zip(ob.chunks_exact_mut(qs.len()))
            {
                self.merge_leaves(leaves, qs, o, s);
            }
        }
        s.block = block_leaves;
    }

    /// Conditional quantiles for each row: `rows × qs.len()`, parallel over blocks of rows
    /// (see [`Self::predict_quantiles_block`]).
    ///
    /// # Panics
    /// If `x.ncols() != self.n_features()`; use [`Self::try_predict_quantiles`] to get an error.
    pub fn predict_quantiles(&self, x: ArrayView2<f64>, qs: &[f64]) -> Array2<f64> {
        assert_eq!(x.ncols(), self.n_features, "feature count mismatch");
        let mut out = Array2::<f64>::zeros((x.nrows(), qs.len()));
        if qs.is_empty() {
            return out;
        }
        let p = self.n_features;
        let contiguous = x.as_slice();
        let flat = out
            .as_slice_mut()
            .expect("a fresh array is in standard layout");
        flat.par_chunks_mut(PREDICT_BLOCK * qs.len())
            .enumerate()
            .for_each(|(bi, o)| {
                let r0 = bi * PREDICT_BLOCK;
                let m = o.len() / qs.len();
                let mut buf = Vec::new();
                let block: &[f64] = match contiguous {
                    Some(s) => &s[r0 * p..(r0 + m) * p],
                    None => {
                        for r in r0..r0 + m {
                            buf.extend(x.row(r).iter().copied());
                        }
                        &buf
                    }
                };
                self.predict_quantiles_block(block, qs, o);
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
                let m = chunk.len();
                let full = m - m % LANES;
                for t in &self.trees {
                    let nodes = &t.nodes[..];
                    for r0 in (0..full).step_by(LANES) {
                        let leaves = walk_lanes::<LANES>(
                            [nodes; LANES],
                            std::array::from_fn(|k| &block[(r0 + k) * p..(r0 + k + 1) * p]),
                        );
                        for (k, n) in leaves.into_iter().enumerate() {
                            chunk[r0 + k] += f64::from(n.threshold);
                        }
                    }
                    for r in full..m {
                        chunk[r] += f64::from(t.leaf_node(&block[r * p..(r + 1) * p]).threshold);
                    }
                }
                let inv = 1.0 / self.trees.len() as f64;
                chunk.iter_mut().for_each(|o| *o = *o * inv + self.y_offset);
            });
        y.iter_mut().zip(out).for_each(|(d, v)| *d = v);
    }
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
