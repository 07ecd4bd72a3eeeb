//! The training rows of every series stacked into one table, with what turns each row's
//! target back into the series' units, and the selections training makes of them (the first
//! fit's rows, the calibration rows) under a chosen anchor.

use super::Anchor;
use crate::forecast::features::{self, FeatureSpec, Rows};
use crate::series::Series;
use ndarray::{Array1, Array2};

/// Training rows of all series, stacked.
pub(super) struct Stack {
    pub(super) x: Vec<f64>,
    /// Targets relative to the recent peak.
    pub(super) y: Vec<f64>,
    /// Each row's recent peak in levels, which turns `y` into a zero-anchored target.
    pub(super) base: Vec<f64>,
    /// Each row's level, which turns levels into the series' units.
    pub(super) level: Vec<f64>,
    /// Per series: (first row, rows) in the stack.
    pub(super) spans: Vec<(usize, usize)>,
    pub(super) skipped: usize,
    pub(super) nf: usize,
}

impl Stack {
    pub(super) fn build(spec: &FeatureSpec, series: &[Series]) -> (Stack, Vec<Rows>) {
        let nf = spec.n_features();
        let mut st = Stack {
            x: Vec::new(),
            y: Vec::new(),
            base: Vec::new(),
            level: Vec::new(),
            spans: Vec::new(),
            skipped: 0,
            nf,
        };
        let mut all = Vec::with_capacity(series.len());
        for s in series {
            let rows = features::compute(spec, &s.values, s.start, 0..s.len());
            st.skipped += rows.skipped;
            let first = st.y.len();
            for (i, &y) in rows.target.iter().enumerate() {
                if y.is_finite() {
                    st.x.extend(rows.x.row(i).iter());
                    st.y.push(y);
                    st.base.push(rows.base[i] / rows.level[i]);
                    st.level.push(rows.level[i]);
                }
            }
            st.spans.push((first, st.y.len() - first));
            all.push(rows);
        }
        (st, all)
    }

    /// How many rows `pick(k, n)` keeps (k-th of a series' n rows).
    pub(super) fn count(&self, pick: impl Fn(usize, usize) -> bool) -> usize {
        self.spans
            .iter()
            .map(|&(_, n)| (0..n).filter(|&k| pick(k, n)).count())
            .sum()
    }

    pub(super) fn select(
        &self,
        anchor: Anchor,
        pick: impl Fn(usize, usize) -> bool,
    ) -> (Array2<f64>, Array1<f64>) {
        let s = self.select_full(anchor, pick);
        (s.x, s.y)
    }

    /// The rows `pick(k, n)` keeps (k-th of a series' n rows) with targets measured from
    /// `anchor`, and what turns them into the series' units.
    pub(super) fn select_full(
        &self,
        anchor: Anchor,
        pick: impl Fn(usize, usize) -> bool,
    ) -> Selected {
        let mut x = Vec::new();
        let mut y = Vec::new();
        let (mut offset, mut level) = (Vec::new(), Vec::new());
        for &(first, n) in &self.spans {
            for k in 0..n {
                if pick(k, n) {
                    let r = first + k;
                    x.extend_from_slice(&self.x[r * self.nf..(r + 1) * self.nf]);
                    y.push(anchor.target(self.y[r], self.base[r]));
                    offset.push(self.base[r] - anchor.target(0.0, self.base[r]));
                    level.push(self.level[r]);
                }
            }
        }
        let n = y.len();
        Selected {
            x: Array2::from_shape_vec((n, self.nf), x).expect("rows are nf wide"),
            y: Array1::from(y),
            offset,
            level,
        }
    }
}

/// Rows picked from a [`Stack`] for one anchor.
pub(super) struct Selected {
    pub(super) x: Array2<f64>,
    pub(super) y: Array1<f64>,
    /// Per row, the anchor in levels: target + offset is the peak in levels.
    pub(super) offset: Vec<f64>,
    /// Per row, the level.
    pub(super) level: Vec<f64>,
}
