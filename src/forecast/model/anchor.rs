//! What the forest's target is measured from: the recent peak or zero.
//!
//! Measuring the target from the last window's peak (the persistence forecast) makes the
//! forest's default persistence, which is hard to beat on series that wander like a random
//! walk. On noisy counts (requests or events per minute) the last window's peak is mostly
//! noise, though: a forest learning the change from it inherits that noise at every origin,
//! while one learning the peak itself (in levels, anchored at zero) can average it away. Which
//! one wins is a property of the series, so training fits both on the same rows and keeps the
//! one with the lower pinball loss on the held-out calibration rows (one choice per model: a
//! model trained for one series, as `backtest` and most users do, gets that series' choice).

use super::super::forest::QuantileForest;
use ndarray::{Array1, Array2};

/// The value a forecast is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Anchor {
    /// The peak of the last window: the forest learns (peak − recent peak) / level. Format 1
    /// models all used it.
    #[default]
    Recent,
    /// Zero: the forest learns peak / level.
    Zero,
}

impl Anchor {
    /// Both anchors, in the order [`AnchorChoice::held_out_pinball`] lists their losses.
    pub const ALL: [Anchor; 2] = [Anchor::Recent, Anchor::Zero];

    /// What a forest output (in levels) is added to, in the series' units, at an origin whose
    /// last window peaked at `base`.
    pub fn offset(self, base: f64) -> f64 {
        match self {
            Anchor::Recent => base,
            Anchor::Zero => 0.0,
        }
    }

    /// The training target for this anchor, from the relative one the features compute
    /// (`(peak − base) / level`) and the row's `base / level`.
    pub fn target(self, relative: f64, base_in_levels: f64) -> f64 {
        match self {
            Anchor::Recent => relative,
            Anchor::Zero => relative + base_in_levels,
        }
    }
}

/// The anchor a model uses and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnchorChoice {
    /// The anchor forecasts are measured from.
    pub anchor: Anchor,
    /// Mean pinball loss (in levels, averaged over the model's quantile levels) of a forest
    /// with each anchor of [`Anchor::ALL`] on the held-out calibration rows; empty when there
    /// were too few rows to compare or the anchor was fixed by the caller.
    pub held_out_pinball: Vec<f64>,
}

impl AnchorChoice {
    /// A fixed anchor, not compared.
    pub fn fixed(anchor: Anchor) -> Self {
        AnchorChoice {
            anchor,
            held_out_pinball: Vec::new(),
        }
    }
}

impl std::fmt::Display for AnchorChoice {
    /// `anchor zero (held-out pinball: recent 0.0123, zero 0.0110)`, or `anchor recent (fixed)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |a: Anchor| match a {
            Anchor::Recent => "recent",
            Anchor::Zero => "zero",
        };
        write!(f, "anchor {}", name(self.anchor))?;
        if self.held_out_pinball.len() == Anchor::ALL.len() {
            let [r, z] = [self.held_out_pinball[0], self.held_out_pinball[1]];
            write!(f, " (held-out pinball: recent {r:.4}, zero {z:.4})")
        } else {
            write!(f, " (fixed)")
        }
    }
}

/// Mean pinball loss of `forest`'s (uncalibrated) quantiles at `levels` on the rows `x` with
/// targets `y`, in the targets' units. Targets of both anchors differ by a per-row offset that
/// the forecasts differ by too, so the losses of two anchors on the same rows compare fairly.
pub(super) fn held_out_pinball(
    forest: &QuantileForest,
    x: &Array2<f64>,
    y: &Array1<f64>,
    levels: &[f64],
) -> f64 {
    let q = forest.predict_quantiles(x.view(), levels);
    let mut sum = 0.0;
    for (row, &actual) in q.rows().into_iter().zip(y) {
        for (&f, &level) in row.iter().zip(levels) {
            sum += crate::forecast::backtest::pinball(level, actual, f);
        }
    }
    sum / (y.len() * levels.len()).max(1) as f64
}
