//! The online calibration of the forecasts ([`forecast::online`](crate::forecast::online)) as
//! the live loop shows it: per workload, the factor the correction multiplied its forecast by
//! at the level it plans with, exported each cycle and named in the decision's reason
//! whenever it changed the number. Keeping the offsets across restarts is `persist`'s.

use super::state::Loop;
use crate::forecast::Forecast;
use crate::plan::{Decision, DecisionKind};
use crate::series::SeriesKey;
use std::collections::HashMap;

/// A factor closer to 1 than this is not named in reasons: it moves no replica count that a
/// reader could trace back to it.
const NOTEWORTHY: f64 = 0.005;

impl Loop {
    /// Notes each workload's factor (corrected ÷ raw forecast at its quantile) and opens the
    /// reasons of its scale decisions with it when it is not 1. A workload with `max_short`
    /// has none: it plans on the uncorrected forecast, its margin being its calibration.
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
            // A budget's margin is its calibration: it plans uncorrected (`for_workload`).
            if spec.max_short.is_some() {
                continue;
            }
            let level = spec.quantile;
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
