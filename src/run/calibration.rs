//! The online calibration of the forecasts ([`forecast::online`](crate::forecast::online)) as
//! the live loop shows it: per workload, the factor the correction multiplied its forecast by
//! at the level it plans with, exported each cycle and named in the decision's reason
//! whenever it changed the number; and the offsets kept across restarts in
//! `run.calibration_state` (restored before the first cycle, saved at most once a minute of
//! wall time and after the last cycle: see [`forecast::online`](crate::forecast::online)'s
//! `saved` for what is kept and when it applies).

use super::state::Loop;
use crate::forecast::online::{self, SavedCalibration};
use crate::forecast::Forecast;
use crate::plan::{Decision, DecisionKind};
use crate::series::SeriesKey;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Wall time between two saves of the offsets: they move by γ per resolved forecast, so a
/// crash loses at most a minute's learning, and at 100,000 series (a few MB of JSON) the
/// writes stay a small share of the loop's time.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// The online calibration's state file, as the loop keeps it.
pub(super) struct CalibrationState {
    path: PathBuf,
    /// Fingerprint of the model the offsets are learnt against; `None` once the loop has
    /// retrained its model: the file then keeps the offsets last learnt for `run.model`, the
    /// model a restart loads.
    model: Option<u32>,
    /// Read at start-up; restored at the first cycle when it may be.
    loaded: Option<SavedCalibration>,
    last_save: Option<Instant>,
}

impl CalibrationState {
    /// Saving to `path` the offsets learnt against the model of fingerprint `model`; nothing
    /// is saved without one (online calibration off).
    pub(super) fn new(path: PathBuf, model: Option<u32>) -> Self {
        CalibrationState {
            path,
            model,
            loaded: None,
            last_save: None,
        }
    }

    /// Stops saving: the offsets now learnt are not `run.model`'s.
    pub(super) fn model_replaced(&mut self) {
        if self.model.take().is_some() {
            tracing::info!(
                "online calibration: the retrained model's offsets are not saved; {} keeps \
                 the last ones learnt for run.model",
                self.path.display()
            );
        }
    }
}

/// A factor closer to 1 than this is not named in reasons: it moves no replica count that a
/// reader could trace back to it.
const NOTEWORTHY: f64 = 0.005;

impl Loop {
    /// Notes each workload's factor (corrected ÷ raw forecast at its planning level: the
    /// `max_short` base level when it has a budget, its quantile otherwise) and opens the
    /// reasons of its scale decisions with it when it is not 1.
    pub(super) fn calibration_reasons(
        &mut self,
        planned: &HashMap<SeriesKey, (Option<Forecast>, Option<f64>)>,
        raw: &HashMap<SeriesKey, Forecast>,
        decisions: &mut [Decision],
    ) {
        self.calibration.clear();
        if !self.online.enabled() {
            return;
        }
        for spec in &self.workloads {
            let (Some((Some(f), _)), Some(r)) = (planned.get(&spec.demand), raw.get(&spec.demand))
            else {
                continue;
            };
            let level = self.risk.level(spec).map_or(spec.quantile, |r| r.base);
            let Some(k) = factor(f, r, level) else {
                continue;
            };
            self.calibration.push((spec.name.clone(), k));
            if (k - 1.0).abs() < NOTEWORTHY {
                continue;
            }
            let note = format!(
                "forecast p{} ×{k:.2} by online calibration",
                (level * 100.0).round()
            );
            for d in decisions.iter_mut().filter(|d| {
                d.target == spec.name
                    && matches!(
                        d.kind,
                        DecisionKind::ScaleUp | DecisionKind::ScaleDown | DecisionKind::Hold
                    )
            }) {
                d.reason = format!("{}; {note}", d.reason);
            }
        }
    }
}

impl Loop {
    /// Starts from the state read at start-up.
    pub(super) fn with_saved_calibration(mut self, saved: Option<SavedCalibration>) -> Self {
        self.calibration_state.loaded = saved;
        self
    }

    /// Restores the offsets read at start-up, if they were learnt against this model and
    /// saved at or before `now`, the first cycle's time.
    pub(super) fn restore_calibration(&mut self, now: i64) {
        let Some(saved) = self.calibration_state.loaded.take() else {
            return;
        };
        let path = self.calibration_state.path.display();
        if Some(saved.model) != self.calibration_state.model {
            tracing::info!(
                "online calibration: {path} was learnt against another model; starting afresh"
            );
        } else if saved.saved_at > now {
            tracing::info!(
                "online calibration: {path} was saved at {}, after this run's first cycle at \
                 {now} (a replay of earlier history): starting afresh",
                saved.saved_at
            );
        } else {
            let n = self.online.restore(saved);
            tracing::info!("online calibration: offsets of {n} series restored from {path}");
        }
    }

    /// Saves the offsets when a minute has passed since the last save, or always with
    /// `last`. A failure is logged, never fatal: planning goes on without the file.
    pub(super) fn save_calibration(&mut self, now: i64, last: bool) {
        let state = &mut self.calibration_state;
        let Some(model) = state.model else {
            return;
        };
        if !self.online.enabled()
            || !(last || state.last_save.is_none_or(|t| t.elapsed() >= SAVE_EVERY))
        {
            return;
        }
        state.last_save = Some(Instant::now());
        // Offsets learnt on an own model are that model's: a restart loads run.model.
        let own = &self.own;
        let saved = self.online.to_saved(model, now, |k| own.get(k).is_none());
        if let Err(e) = online::save(&state.path, &saved) {
            tracing::warn!("online calibration not saved: {e}");
        }
    }
}

/// Corrected ÷ raw at `level`, where both are positive and finite. The planned forecast may
/// be widened for cold start; the widening multiplies every level alike, so it is divided out
/// by comparing the two at the median, which the correction never raises.
fn factor(planned: &Forecast, raw: &Forecast, level: f64) -> Option<f64> {
    let (p, r) = (planned.quantile(level)?, raw.quantile(level)?);
    let (pm, rm) = (planned.quantile(0.5)?, raw.quantile(0.5)?);
    let widen = if pm > 0.0 && rm > 0.0 && pm > rm {
        pm / rm
    } else {
        1.0
    };
    let k = p / widen / r;
    (r > 0.0 && k.is_finite()).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(qs: &[(f64, f64)]) -> Forecast {
        Forecast {
            key: SeriesKey::new("d"),
            at: 0,
            window: 900,
            quantiles: qs.to_vec(),
        }
    }

    #[test]
    fn factor_is_corrected_over_raw_at_the_level_with_widening_divided_out() {
        let raw = f(&[(0.5, 10.0), (0.9, 20.0), (0.99, 40.0)]);
        let corrected = f(&[(0.5, 10.0), (0.9, 25.0), (0.99, 40.0)]);
        assert!((factor(&corrected, &raw, 0.9).unwrap() - 1.25).abs() < 1e-12);
        assert!((factor(&corrected, &raw, 0.99).unwrap() - 1.0).abs() < 1e-12);
        let widened = crate::run::stages::widened(&corrected, 1.2);
        assert!((factor(&widened, &raw, 0.9).unwrap() - 1.25).abs() < 1e-12);
        assert_eq!(factor(&corrected, &f(&[(0.5, 0.0), (0.9, 0.0)]), 0.9), None);
    }
}
