//! The online calibration of the forecasts ([`forecast::online`](crate::forecast::online)) as
//! the live loop shows it: per workload, the factor the correction multiplied its forecast by
//! at the level it plans with, exported each cycle and named in the decision's reason
//! whenever it changed the number. Keeping the offsets across restarts is `persist`'s.

use super::state::Loop;
use crate::forecast::{Forecast, StageView};
use crate::plan::Decision;
use crate::series::SeriesMap;
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
        planned: &SeriesMap<(Option<Forecast>, Option<f64>)>,
        raw: &SeriesMap<Forecast>,
        views: &SeriesMap<StageView>,
        decisions: &mut [Decision],
    ) {
        self.calibration.clear();
        if !self.series.online.enabled() {
            return;
        }
        // Notes by workload, then one pass over the decisions: scanning every decision per
        // workload was 10^8 string compares a cycle at 10,000 workloads, a sixth of the loop's
        // CPU (`benches/loop_cycle.rs`).
        let mut notes: HashMap<&str, String> = HashMap::new();
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
            let widen = views.get(&spec.demand).map_or(1.0, |v| v.widen);
            let Some(k) = factor(f, r, level, widen) else {
                continue;
            };
            self.calibration.push((spec.name.clone(), k));
            if (k - 1.0).abs() < NOTEWORTHY {
                continue;
            }
            let forest_weight = (level == 0.5)
                .then(|| self.series.online.get(&spec.demand))
                .flatten()
                .and_then(|c| c.median_forest_weight());
            notes.insert(&spec.name, note(level, k, forest_weight));
        }
        for d in decisions.iter_mut().filter(|d| d.is_workload_decision()) {
            if let Some(note) = notes.get(d.target.as_str()) {
                d.reason = format!("{}; {note}", d.reason);
            }
        }
    }
}

/// What a decision's reason says of the correction `k` at `level`: at the median, which has no
/// offset, the mix it was chosen as (the forest's weight `forest_weight`) when it is one.
fn note(level: f64, k: f64, forest_weight: Option<f64>) -> String {
    match forest_weight.filter(|&a| level == 0.5 && a < 1.0) {
        Some(a) => format!(
            "forecast p50 ×{k:.2}: {a:.2} × the forest's + {:.2} × the last window's peak, \
             the mix chosen online by recent error",
            1.0 - a
        ),
        None => format!(
            "forecast p{} ×{k:.2} by online calibration",
            (level * 100.0).round()
        ),
    }
}

/// Corrected ÷ raw at `level`, where both are positive and finite. The planned forecast may
/// be widened for cold start (by `widen`, every level alike), which is divided out: it is the
/// stage's margin, not the calibration's.
fn factor(planned: &Forecast, raw: &Forecast, level: f64, widen: f64) -> Option<f64> {
    let (p, r) = (planned.quantile(level)?, raw.quantile(level)?);
    let k = p / widen / r;
    (r > 0.0 && k.is_finite()).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::SeriesKey;

    fn f(qs: &[(f64, f64)]) -> Forecast {
        Forecast {
            key: SeriesKey::new("d"),
            at: 0,
            window: 900,
            quantiles: qs.to_vec(),
        }
    }

    #[test]
    fn a_median_chosen_as_a_mix_is_named_as_one() {
        assert_eq!(
            note(0.5, 0.93, Some(0.25)),
            "forecast p50 ×0.93: 0.25 × the forest's + 0.75 × the last window's peak, the mix \
             chosen online by recent error"
        );
        // The forest's own median, an upper level, or no choice made: the factor alone.
        assert_eq!(
            note(0.5, 0.93, Some(1.0)),
            "forecast p50 ×0.93 by online calibration"
        );
        assert_eq!(
            note(0.9, 1.12, Some(0.25)),
            "forecast p90 ×1.12 by online calibration"
        );
        assert_eq!(
            note(0.5, 0.93, None),
            "forecast p50 ×0.93 by online calibration"
        );
    }

    #[test]
    fn factor_is_corrected_over_raw_at_the_level_with_widening_divided_out() {
        let raw = f(&[(0.5, 10.0), (0.9, 20.0), (0.99, 40.0)]);
        let corrected = f(&[(0.5, 10.0), (0.9, 25.0), (0.99, 40.0)]);
        assert!((factor(&corrected, &raw, 0.9, 1.0).unwrap() - 1.25).abs() < 1e-12);
        assert!((factor(&corrected, &raw, 0.99, 1.0).unwrap() - 1.0).abs() < 1e-12);
        let widened = crate::run::stages::widened(&corrected, 1.2);
        assert!((factor(&widened, &raw, 0.9, 1.2).unwrap() - 1.25).abs() < 1e-12);
        // The median chosen online moves the median too: the widening is the stage's, not
        // read off the median.
        let mixed = f(&[(0.5, 8.0), (0.9, 25.0), (0.99, 40.0)]);
        let widened = crate::run::stages::widened(&mixed, 1.2);
        assert!((factor(&widened, &raw, 0.9, 1.2).unwrap() - 1.25).abs() < 1e-12);
        assert!((factor(&widened, &raw, 0.5, 1.2).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(
            factor(&corrected, &f(&[(0.5, 0.0), (0.9, 0.0)]), 0.9, 1.0),
            None
        );
    }
}
