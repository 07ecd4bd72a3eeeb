//! One series' offsets as kept across restarts: a restart (a rollout, an evicted pod, a crash)
//! would otherwise start every series at θ = 0, and with γ = 0.01 a series takes hundreds of
//! resolved forecasts to learn back an offset of a few tenths. The live loop's state file
//! holds a list of these (`run::persist`, which says when they are restored).
//!
//! Kept per series: its offsets θ (one per tracked level) and how many forecasts taught them,
//! and the median's choice (its mixes' weighted errors), which takes a day of forecasts to
//! learn back.
//! Not the forecasts still waiting for their windows: at 100,000 series they would be most of
//! the file, and losing them costs one window of learning, not the offsets.

use super::{Calibrator, MedianMix, OnlineCalibration, THETA_MAX};
use crate::series::SeriesKey;
use std::collections::HashSet;

/// One series' offsets as saved.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSeries {
    key: SeriesKey,
    resolved: u64,
    /// `(level, θ)`, levels ascending.
    theta: Vec<(f64, f64)>,
    /// The median's online choice (absent in files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    median: Option<MedianMix>,
}

/// Whether calibrators can hold `series`: each series once, its levels above the median and
/// ascending, its offsets within ±[`THETA_MAX`]. The error names the series.
pub fn check(series: &[SavedSeries]) -> Result<(), String> {
    let mut seen = HashSet::with_capacity(series.len());
    for s in series {
        let key = s.key.as_str();
        if !seen.insert(key) {
            return Err(format!("series '{key}' appears twice"));
        }
        let mut previous = 0.5;
        for &(level, theta) in &s.theta {
            if !(level > previous && level < 1.0) {
                return Err(format!(
                    "series '{key}': level {level} is not above {previous} and below 1 \
                         (tracked levels are above the median, ascending)"
                ));
            }
            if !theta.is_finite() || theta.abs() > THETA_MAX {
                return Err(format!(
                    "series '{key}': offset {theta} at level {level} is outside ±{THETA_MAX}"
                ));
            }
            previous = level;
        }
        if let Some(m) = &s.median {
            m.check().map_err(|e| format!("series '{key}': {e}"))?;
        }
    }
    Ok(())
}

impl OnlineCalibration {
    /// The offsets of the series `keep` selects (those that have learnt any), in key order.
    pub fn to_saved(&self, keep: impl Fn(&SeriesKey) -> bool) -> Vec<SavedSeries> {
        let mut series: Vec<SavedSeries> = self
            .series
            .iter()
            .filter(|(k, c)| {
                keep(k)
                    && (!c.theta.is_empty() || c.median.as_ref().is_some_and(|m| m.resolved > 0))
            })
            .map(|(k, c)| SavedSeries {
                key: k.clone(),
                resolved: c.resolved,
                theta: c.theta.clone(),
                median: c.median.clone().filter(|m| m.resolved > 0),
            })
            .collect();
        series.sort_by(|a, b| a.key.cmp(&b.key));
        series
    }

    /// Starts every series in `saved` (passed by [`check`]) from its saved offsets
    /// (replacing what it had). Returns how many series were restored (none when calibration
    /// is off).
    pub fn restore(&mut self, saved: Vec<SavedSeries>) -> usize {
        if !self.config.enabled {
            return 0;
        }
        let n = saved.len();
        for s in saved {
            let mut c = Calibrator::with_config(&self.config);
            c.theta = s.theta;
            c.resolved = s.resolved;
            // A file from before the median's choice, or a configuration without it, leaves
            // the calibrator's own (fresh or none).
            if let (Some(m), Some(saved)) = (c.median.as_mut(), s.median) {
                *m = saved;
            }
            self.series.insert(s.key, c);
        }
        n
    }
}
