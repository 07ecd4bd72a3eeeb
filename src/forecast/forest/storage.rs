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
                let ok = if n.feature == LEAF {
                    let o = n.right as usize;
                    o + LEAF_HEADER <= tree.leaves.len() && {
                        let (lo, span, k) = leaf_header(&tree.leaves, o);
                        lo.is_finite()
                            && span.is_finite()
                            && span >= 0.0
                            && k >= 1
                            && o + LEAF_HEADER + k <= tree.leaves.len()
                    }
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
