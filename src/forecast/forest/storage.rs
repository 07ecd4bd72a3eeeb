//! The fitted model's layout, shared by fitting and prediction: flat pre-order node arrays and
//! one contiguous byte record per leaf, plus the structural checks a deserialised model must
//! pass before prediction may trust its offsets.

use serde::{Deserialize, Serialize};

use super::{ForestError, ForestValidParams, QuantileForest};

/// Marks a leaf in [`Node::feature`].
pub(super) const LEAF: u16 = u16::MAX;

/// One tree node. Internal: `x[feature] <= threshold` goes to the next node (pre-order),
/// otherwise to `right`. Leaf (`feature == LEAF`): `threshold` is the in-bag leaf mean
/// (relative to the training mean) and `right` is the byte offset of the leaf's record in
/// `Tree::leaves`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) struct Node {
    pub(super) threshold: f32,
    pub(super) right: u32,
    pub(super) feature: u16,
}

/// A fitted tree plus its leaf summaries. A leaf node's `right` is the byte offset of its
/// record in `leaves`: `lo: f32 LE, span: f32 LE, k: u16 LE, k × u8 code`, atoms decoded as
/// `lo + span * code / 255` (sorted, equally weighted). One contiguous record per leaf means
/// one cache miss per tree on the quantile path instead of one per table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Tree {
    pub(super) nodes: Vec<Node>,
    pub(super) leaves: Vec<u8>,
}

/// Bytes before the codes in a leaf record.
pub(super) const LEAF_HEADER: usize = 10;

/// Largest atom magnitude a deserialised leaf may hold: prediction merges a row's atoms onto
/// one grid over their range, which must itself be a finite f32.
pub(super) const LEAF_LIMIT: f32 = f32::MAX / 4.0;

/// Header of the leaf record at `o`: `(lo, span, k)`. Offsets come from fitting or from
/// validated deserialisation, so they are in bounds.
#[inline]
pub(super) fn leaf_header(blob: &[u8], o: usize) -> (f32, f32, usize) {
    let h = &blob[o..o + LEAF_HEADER];
    let f = |i: usize| f32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    (f(0), f(4), usize::from(u16::from_le_bytes([h[8], h[9]])))
}

/// Mirror of [`QuantileForest`] used only to validate deserialised models before use, so a
/// corrupt file cannot make prediction loop forever or index out of bounds.
#[derive(Deserialize)]
pub(super) struct ForestRepr {
    n_features: usize,
    y_offset: f64,
    trees: Vec<Tree>,
    importances: Vec<f64>,
    params: ForestValidParams,
}

/// A forest as decoded, not yet checked: lets a caller that decodes a larger structure (the
/// model file) run the checks itself and keep their message, which a deserialiser such as
/// postcard would replace with a generic one.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct UncheckedForest(ForestRepr);

impl UncheckedForest {
    /// Runs the structural checks; the error names the broken one.
    pub(crate) fn check(self) -> Result<QuantileForest, ForestError> {
        QuantileForest::try_from(self.0)
    }
}

/// What is wrong with the leaf record at byte `o` of `blob`, if anything.
fn leaf_problem(blob: &[u8], o: usize) -> Option<String> {
    if o.checked_add(LEAF_HEADER)
        .is_none_or(|end| end > blob.len())
    {
        return Some(format!(
            "leaf record at byte {o} is past the {} bytes of leaves",
            blob.len()
        ));
    }
    let (lo, span, k) = leaf_header(blob, o);
    // Within ±LEAF_LIMIT at both ends, so the spread of any row's atoms (highest − lowest over
    // all trees) is finite in f32.
    if !(lo.abs() <= LEAF_LIMIT && span >= 0.0 && (lo + span).abs() <= LEAF_LIMIT) {
        return Some(format!(
            "leaf range {lo:e} + {span:e} is not a finite range within ±{LEAF_LIMIT:e}"
        ));
    }
    if k == 0 || o + LEAF_HEADER + k > blob.len() {
        return Some(format!(
            "leaf record at byte {o} has {k} atoms, past the {} bytes of leaves",
            blob.len()
        ));
    }
    None
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
            if tree.nodes.is_empty() {
                return bad(format!("tree {t}: no nodes"));
            }
            let len = tree.nodes.len();
            for (i, n) in tree.nodes.iter().enumerate() {
                let problem = if n.feature == LEAF {
                    leaf_problem(&tree.leaves, n.right as usize)
                } else if (n.feature as usize) >= r.n_features {
                    Some(format!(
                        "splits on feature {} of {}",
                        n.feature, r.n_features
                    ))
                } else if !(i + 1 < len && (n.right as usize) > i + 1 && (n.right as usize) < len) {
                    // Children strictly after the parent guarantee that traversal terminates.
                    Some(format!(
                        "right child {} is not after node {} and within the tree's {len} nodes",
                        n.right,
                        i + 1
                    ))
                } else {
                    None
                };
                if let Some(p) = problem {
                    return bad(format!("tree {t}: node {i} is malformed: {p}"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::traits::Fit;
    use linfa::Dataset;
    use ndarray::{Array1, Array2};

    /// Sets the first leaf record of tree 0 to `(lo, span)`.
    fn with_first_leaf(f: &QuantileForest, lo: f32, span: f32) -> Vec<u8> {
        let mut bad = f.clone();
        let tree = &mut bad.trees[0];
        let o = tree.nodes.iter().find(|n| n.feature == LEAF).unwrap().right as usize;
        tree.leaves[o..o + 4].copy_from_slice(&lo.to_le_bytes());
        tree.leaves[o + 4..o + 8].copy_from_slice(&span.to_le_bytes());
        postcard::to_stdvec(&bad).unwrap()
    }

    #[test]
    fn leaf_values_whose_spread_overflows_f32_are_refused() {
        let x = Array2::from_shape_fn((200, 2), |(i, j)| ((i * 7 + j * 13) % 31) as f64);
        let y = Array1::from_shape_fn(200, |i| (i % 17) as f64);
        let f = QuantileForest::params()
            .n_trees(4)
            .max_depth(4)
            .fit(&Dataset::new(x, y))
            .unwrap();
        let ok = with_first_leaf(&f, -1.0e6, 2.0e6);
        assert!(postcard::from_bytes::<QuantileForest>(&ok).is_ok());
        // Finite each, but two such leaves in one row span more than f32 holds, and the
        // quantiles read off the merged grid come out NaN.
        for (lo, span) in [(3.0e38, 0.0), (-3.0e38, 0.0), (0.0, 3.0e38)] {
            let bad = with_first_leaf(&f, lo, span);
            assert!(postcard::from_bytes::<QuantileForest>(&bad).is_err());
            let e = postcard::from_bytes::<UncheckedForest>(&bad)
                .unwrap()
                .check()
                .unwrap_err();
            assert!(e.to_string().contains("is malformed: leaf range"), "{e}");
        }
    }
}
