//! The training rows of every series stacked into one table, with what turns each row's
//! target back into the series' units, and the selections training makes of them (the first
//! fit's rows, the calibration rows) under a chosen anchor.

use super::Anchor;
use crate::forecast::features::{self, FeatureSpec};
use crate::series::Series;
use ndarray::{Array1, Array2, ArrayView2};

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
    /// The table of `series`' rows. It is the largest thing training holds (a row of
    /// `n_features` f64 per point, ~260 bytes), so it is the only copy: each series' rows are
    /// dropped once stacked, and the table is sized for at most one row per point up front
    /// rather than grown by doubling.
    pub(super) fn build(spec: &FeatureSpec, series: &[Series]) -> Stack {
        let nf = spec.n_features();
        let points: usize = series.iter().map(Series::len).sum();
        let mut st = Stack {
            x: Vec::with_capacity(points.saturating_mul(nf)),
            y: Vec::with_capacity(points),
            base: Vec::with_capacity(points),
            level: Vec::with_capacity(points),
            spans: Vec::with_capacity(series.len()),
            skipped: 0,
            nf,
        };
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
        }
        // Origins without a target (the first day of each series, gaps) are not rows.
        st.x.shrink_to_fit();
        st.y.shrink_to_fit();
        st.base.shrink_to_fit();
        st.level.shrink_to_fit();
        st
    }

    /// Every row with targets measured from `anchor`, the features a view of the table: the
    /// final fit takes every row, and a copy would double the table.
    pub(super) fn all(&self, anchor: Anchor) -> (ArrayView2<'_, f64>, Array1<f64>) {
        let x = self.view();
        let y = self
            .y
            .iter()
            .zip(&self.base)
            .map(|(&y, &base)| anchor.target(y, base))
            .collect();
        (x, y)
    }

    /// How many rows `pick(k, n)` keeps (k-th of a series' n rows).
    pub(super) fn count(&self, pick: impl Fn(usize, usize) -> bool) -> usize {
        self.spans
            .iter()
            .map(|&(_, n)| (0..n).filter(|&k| pick(k, n)).count())
            .sum()
    }

    /// The indices of the rows `pick(k, n)` keeps (k-th of a series' n rows) and their targets
    /// measured from `anchor`: a fit on part of the table names its rows rather than copying
    /// them ([`ForestValidParams::fit_rows`](crate::forecast::ForestValidParams::fit_rows)).
    pub(super) fn rows(
        &self,
        anchor: Anchor,
        pick: impl Fn(usize, usize) -> bool,
    ) -> (Vec<usize>, Array1<f64>) {
        let n = self.count(&pick);
        let (mut rows, mut y) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for &(first, n) in &self.spans {
            for k in (0..n).filter(|&k| pick(k, n)) {
                rows.push(first + k);
                y.push(anchor.target(self.y[first + k], self.base[first + k]));
            }
        }
        (rows, Array1::from(y))
    }

    /// The whole table's features.
    pub(super) fn view(&self) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((self.y.len(), self.nf), &self.x).expect("rows are nf wide")
    }

    /// The rows `pick(k, n)` keeps (k-th of a series' n rows) with targets measured from
    /// `anchor`, and what turns them into the series' units.
    pub(super) fn select_full(
        &self,
        anchor: Anchor,
        pick: impl Fn(usize, usize) -> bool,
    ) -> Selected {
        let rows = self.count(&pick);
        let mut x = Vec::with_capacity(rows * self.nf);
        let mut y = Vec::with_capacity(rows);
        let (mut offset, mut level) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
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
