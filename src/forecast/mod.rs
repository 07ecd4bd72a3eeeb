//! Forecasting: from a series' recent history to quantiles of its peak demand over the next
//! window.
//!
//! Placeholder on the `plan` branch: only the [`Forecast`] value the planner consumes, copied
//! verbatim from the lead's forecast module so that merging is taking main's version of this
//! file.

use crate::series::SeriesKey;

/// The quantile levels prescale forecasts by default: the median and three levels of risk.
pub const DEFAULT_QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

/// A forecast of one series' peak demand over `(at, at + window]`, as quantiles in the series'
/// own units. This is what the planner provisions against.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Forecast {
    /// The series forecast.
    pub key: SeriesKey,
    /// Origin: the timestamp of the newest value used (Unix seconds).
    pub at: i64,
    /// Length of the window forecast, seconds.
    pub window: i64,
    /// `(level, value)` pairs, levels ascending, values non-decreasing.
    pub quantiles: Vec<(f64, f64)>,
}

impl Forecast {
    /// The value at quantile level `q`, linearly interpolated between the stored levels and
    /// clamped to the outermost ones.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let qs = &self.quantiles;
        let first = qs.first()?;
        let last = qs.last()?;
        if q <= first.0 {
            return Some(first.1);
        }
        if q >= last.0 {
            return Some(last.1);
        }
        qs.windows(2).find(|w| q <= w[1].0).map(|w| {
            let f = (q - w[0].0) / (w[1].0 - w[0].0);
            w[0].1 + f * (w[1].1 - w[0].1)
        })
    }
}
