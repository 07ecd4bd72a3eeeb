//! Feature binning: every feature is cut once into at most 256 quantile bins (u8), so split
//! search is a histogram scan; edges are f32-exact so fit and predict agree.

use ndarray::ArrayView2;
use rand::seq::index::sample as sample_indices;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Rows sampled per feature to place the quantile bin edges; enough for 256 stable quantiles
/// while keeping the sort cheap on large inputs.
const BIN_SAMPLE: usize = 65_536;

/// The training rows: every row of `x`, or the rows of `x` listed in `rows`, in that order.
#[derive(Clone, Copy)]
pub(super) struct Table<'a> {
    pub(super) x: ArrayView2<'a, f64>,
    pub(super) rows: Option<&'a [usize]>,
}

impl Table<'_> {
    pub(super) fn n_rows(&self) -> usize {
        self.rows.map_or(self.x.nrows(), <[usize]>::len)
    }

    /// The `i`-th training row's index in `x`.
    #[inline]
    pub(super) fn row(&self, i: usize) -> usize {
        self.rows.map_or(i, |r| r[i])
    }
}

/// Binned training features: `bins[f * n_rows + r]`, `edges[f]` the (f32-exact) upper edges.
pub(super) struct Binned {
    pub(super) n_rows: usize,
    bins: Vec<u8>,
    pub(super) edges: Vec<Vec<f32>>,
}

impl Binned {
    #[inline]
    pub(super) fn col(&self, f: usize) -> &[u8] {
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

/// Bins the training rows of `t`, one feature per task, straight into the binned table.
pub(super) fn bin_dataset(t: Table<'_>, max_bins: usize, seed: u64) -> Binned {
    let (n, p) = (t.n_rows(), t.x.ncols());
    let sample_rows: Vec<usize> = if n <= BIN_SAMPLE {
        (0..n).collect()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(u64::MAX);
        let mut v = sample_indices(&mut rng, n, BIN_SAMPLE).into_vec();
        v.sort_unstable();
        v
    };
    let mut bins = vec![0u8; n * p];
    let edges: Vec<Vec<f32>> = bins
        .par_chunks_mut(n.max(1))
        .take(p)
        .enumerate()
        .map(|(f, out)| {
            let col = t.x.column(f);
            let value = |i: usize| col[t.row(i)];
            let edges = bin_edges(sample_rows.iter().map(|&r| value(r)).collect(), max_bins);
            let e64: Vec<f64> = edges.iter().map(|&e| f64::from(e)).collect();
            for (i, b) in out.iter_mut().enumerate() {
                let v = value(i);
                *b = e64.partition_point(|&e| e < v) as u8;
            }
            edges
        })
        .collect();
    Binned {
        n_rows: n,
        bins,
        edges,
    }
}
