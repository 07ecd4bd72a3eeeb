//! Fitting: bootstrap counts per tree, depth-first tree growth on the binned features, and the
//! leaf summaries built from all training rows; linfa's [`Fit`] ties it together in parallel.

use indicatif::{ProgressBar, ProgressStyle};
use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::Fit;
use ndarray::{ArrayBase, ArrayView1, ArrayView2, Data, Ix2};
use rand::seq::index::sample as sample_indices;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::binning::{bin_dataset, Binned, Table};
use super::storage::{Node, Tree, LEAF, LEAF_HEADER};
use super::{ForestError, ForestValidParams, QuantileForest};

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

/// Per-row multiplicity of one tree's sample (bootstrap draws or a subsample without
/// replacement); rows with 0 are out-of-bag.
#[inline]
fn bootstrap_counts(p: &ForestValidParams, n: usize, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let draws = ((p.sample_fraction * n as f64).ceil() as usize).clamp(1, n);
    let mut counts = vec![0u32; n];
    if p.bootstrap {
        for _ in 0..draws {
            counts[rng.gen_range(0..n)] += 1;
        }
    } else {
        for r in sample_indices(rng, n, draws).into_iter() {
            counts[r] = 1;
        }
    }
    counts
}

/// Splits `samples[start..end]` at `bin` of `col` (left: `<= bin`) and returns where the right
/// side starts. Stable partition keeps row indices ascending, so the byte gathers in histogram
/// building walk each column forwards.
#[inline]
fn partition(
    samples: &mut [Sample],
    start: usize,
    end: usize,
    col: &[u8],
    bin: u8,
    scratch: &mut Vec<Sample>,
) -> usize {
    scratch.clear();
    let mut l = start;
    for i in start..end {
        let smp = samples[i];
        if col[smp.row as usize] <= bin {
            samples[l] = smp;
            l += 1;
        } else {
            scratch.push(smp);
        }
    }
    samples[l..end].copy_from_slice(scratch);
    l
}

/// Grows one tree depth-first on its own ChaCha stream `(seed, tree_index)`, so the forest does
/// not depend on the thread count.
fn fit_tree(ctx: &Ctx<'_>, tree_index: usize) -> TreeOutput {
    let n = ctx.binned.n_rows;
    let n_feat = ctx.binned.edges.len();
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.p.seed);
    rng.set_stream(tree_index as u64);
    let counts = bootstrap_counts(ctx.p, n, &mut rng);
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
        let split =
            if pd.depth >= ctx.p.max_depth || count < min_leaf.saturating_mul(2) || ymin == ymax {
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
                let l = partition(&mut samples, pd.start, pd.end, col, sp.bin, &mut scratch);
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

    let (leaves, offsets) =
        summarise_leaves(ctx, &nodes, &split_bins, &samples, &leaf_ranges, &counts);
    for n in nodes.iter_mut().filter(|n| n.feature == LEAF) {
        n.right = offsets[n.right as usize];
    }
    let total: f64 = importances.iter().sum();
    if total > 0.0 {
        importances.iter_mut().for_each(|v| *v /= total);
    }
    TreeOutput {
        tree: Tree { nodes, leaves },
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
) -> (Vec<u8>, Vec<u32>) {
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
    let mut blob: Vec<u8> = Vec::with_capacity(n_leaves * (LEAF_HEADER + kmax));
    let mut offsets: Vec<u32> = Vec::with_capacity(n_leaves);
    let mut atoms = Vec::with_capacity(kmax);
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
        // Fits: `fit` rejects inputs whose summaries could exceed u32 offsets.
        offsets.push(blob.len() as u32);
        blob.extend_from_slice(&lo.to_le_bytes());
        blob.extend_from_slice(&span.to_le_bytes());
        // k ≤ leaf_quantiles ≤ 256, so it fits u16.
        blob.extend_from_slice(&(k as u16).to_le_bytes());
        for &a in &atoms {
            let c = if span > 0.0 {
                ((a as f32 - lo) / span * 255.0).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
            blob.push(c);
        }
    }
    (blob, offsets)
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
        self.fit_table(Table { x, rows: None }, y)
    }
}

impl ForestValidParams {
    /// Fits on the rows of `x` listed in `rows` (each `< x.nrows()`), `y[i]` the target of
    /// `rows[i]`: the same forest as fitting a copy of those rows, without the copy (training
    /// fits on a part of a table that is already the largest thing it holds).
    pub fn fit_rows<'a>(
        &self,
        x: ArrayView2<'a, f64>,
        rows: &'a [usize],
        y: ArrayView1<'_, f64>,
    ) -> Result<QuantileForest, ForestError> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= x.nrows()) {
            return Err(ForestError::InvalidParameter {
                name: "rows",
                reason: format!("row {bad} of a table of {}", x.nrows()),
            });
        }
        self.fit_table(
            Table {
                x,
                rows: Some(rows),
            },
            y,
        )
    }

    fn fit_table(
        &self,
        t: Table<'_>,
        y: ArrayView1<'_, f64>,
    ) -> Result<QuantileForest, ForestError> {
        let (n, p) = (t.n_rows(), t.x.ncols());
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
        // Each leaf holds ≥ 1 distinct row, so this bounds one tree's summary bytes.
        if n.saturating_mul(LEAF_HEADER + self.leaf_quantiles) > u32::MAX as usize {
            return Err(ForestError::TooLarge {
                what: format!("{n} rows × {} leaf quantiles", self.leaf_quantiles),
            });
        }
        if p >= LEAF as usize {
            return Err(ForestError::TooLarge {
                what: format!("{p} features (max {})", LEAF - 1),
            });
        }
        for row in 0..n {
            let r = t.x.row(t.row(row));
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
        // Leaves hold these in f32: a spread past the bound a loaded model is held to would
        // store infinities, and prediction would then read NaN atoms.
        if let Some((row, &c)) = yc
            .iter()
            .enumerate()
            .find(|(_, c)| c.abs() > f64::from(super::storage::LEAF_LIMIT))
        {
            return Err(ForestError::InvalidParameter {
                name: "targets",
                reason: format!(
                    "target at row {row} lies {c:e} from the targets' mean, beyond the ±{:e} \
                     a leaf can hold: rescale the targets",
                    super::storage::LEAF_LIMIT
                ),
            });
        }
        let binned = bin_dataset(t, self.max_bins, self.seed);
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
