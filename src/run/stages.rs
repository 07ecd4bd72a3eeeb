//! Cold start in the live loop: each series' stage (reactive, global, own; the rules are
//! [`forecast::stage`](crate::forecast::stage)'s), the own model's forecast in place of the
//! global one, the widened copy the planner sees, the background contests for own models,
//! and the stage in every workload decision's reason.

use super::state::Loop;
use crate::collect::{Collector, Source};
use crate::forecast::{Contest, Forecast, StageView};
use crate::plan::Decision;
use crate::series::{Ring, SeriesKey, SeriesMap};
use std::collections::HashMap;

impl Loop {
    /// Per input `(key, ring)` with the global model's forecast: the forecast used (the
    /// series' own model's when it has one that forecasts) and the series' stage.
    pub(super) fn staged(
        &self,
        inputs: &[(&SeriesKey, &Ring)],
        global: Vec<Option<Forecast>>,
    ) -> Vec<(Option<Forecast>, StageView)> {
        let spec = &self.model.spec;
        let needed = spec.min_history as i64 * spec.step;
        inputs
            .iter()
            .zip(global)
            .map(|(&(key, ring), g)| {
                let own = self.own.get(key).and_then(|o| {
                    // An own model is trained with today's feature spec, which may look back
                    // further than the global model's file: it reads what it needs.
                    Some((o.model.forecast_ring(key, ring)?, o.since))
                });
                // Unbroken history is shown only while reactive (no forecast at all): count
                // it then only, on the ring (a copy of the week would cost every cycle).
                let unbroken = if own.is_none() && g.is_none() {
                    ring.finite_tail_len(spec.history_needed()) as i64 * spec.step
                } else {
                    0
                };
                let view = StageView::derive(
                    ring_span(ring),
                    unbroken,
                    needed,
                    g.is_some(),
                    own.as_ref().map(|o| o.1),
                    self.own.after(),
                );
                (own.map(|o| o.0).or(g), view)
            })
            .collect()
    }

    /// Collects a finished own-model contest and starts the next one due (one at a time; see
    /// [`OwnModels`](crate::forecast::OwnModels)). Candidates are the workloads' demand series,
    /// in configuration order; the history handed to training has `run.retrain_exclude` as
    /// gaps, as the Retrainer's does. A series whose own model won starts its accuracy record
    /// afresh: the errors on record were the previous model's, and holding them against the
    /// new one would plan it at forecast weight 0 for as long as they take to age out.
    pub(super) async fn maybe_train_own<S: Source>(&mut self, collector: &Collector<S>, now: i64) {
        let store = collector.store();
        self.own.retain(|k| store.entry(k).is_some());
        let candidates: Vec<(SeriesKey, i64)> = self
            .workloads
            .iter()
            .filter_map(|w| Some((w.demand.clone(), ring_span(store.series(&w.demand)?))))
            .collect();
        let exclude = &self.retrain_exclude;
        let step = self.model.spec.step;
        let series = |k: &SeriesKey| {
            let ring = store.series(k).filter(|r| r.step() == step)?;
            let mut s = vec![ring.to_series(k.clone())];
            if let Err(e) = crate::series::exclude(&mut s, exclude, "run.retrain_exclude") {
                tracing::warn!("{e}");
            }
            s.pop()
        };
        let global = self.model.clone();
        let outcome = self.own.poll(now, &global, candidates, series).await;
        if let Some(Contest::Won(key)) = &outcome {
            self.series.forget_learned(key);
        }
    }

    /// Opens every workload decision's reason with the workload's stage, and remembers the
    /// stages for the snapshot.
    pub(super) fn stage_reasons(
        &mut self,
        views: &SeriesMap<StageView>,
        decisions: &mut [Decision],
    ) {
        let spec = &self.model.spec;
        let needed = spec.min_history as i64 * spec.step;
        let own_after = self.own.after();
        self.stages = self
            .workloads
            .iter()
            .map(|w| {
                let view = views.get(&w.demand).cloned().unwrap_or_else(|| {
                    // No data at all yet: reactive with nothing.
                    StageView::derive(0, 0, needed, false, None, own_after)
                });
                (w.name.clone(), view)
            })
            .collect();
        // By name, not a scan of the list per decision: at 10,000 workloads the scan was 10^8
        // string compares a cycle, a tenth of the loop's CPU (`benches/loop_cycle.rs`).
        let by_name: HashMap<&str, &StageView> =
            self.stages.iter().map(|(w, v)| (w.as_str(), v)).collect();
        for d in decisions.iter_mut().filter(|d| d.is_workload_decision()) {
            if let Some(v) = by_name.get(d.target.as_str()) {
                d.reason = format!("{}; {}", v.reason(), d.reason);
            }
        }
    }
}

/// `f` with every quantile multiplied by `by` (a margin ≥ 1; the values below 0 are left as
/// they are, so a margin never moves one further from 0 on the wrong side).
pub(super) fn widened(f: &Forecast, by: f64) -> Forecast {
    if by == 1.0 {
        return f.clone();
    }
    Forecast {
        quantiles: f
            .quantiles
            .iter()
            .map(|&(l, v)| (l, if v > 0.0 { v * by } else { v }))
            .collect(),
        ..f.clone()
    }
}

/// Seconds of history a ring holds: from its oldest slot to its newest, both counted.
fn ring_span(ring: &Ring) -> i64 {
    match (ring.oldest_timestamp(), ring.newest_timestamp()) {
        (Some(o), Some(n)) => n - o + ring.step(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_scales_positive_quantiles_and_history_counts_slots() {
        let f = Forecast {
            key: SeriesKey::new("x"),
            at: 0,
            window: 900,
            quantiles: vec![(0.5, -2.0), (0.9, 10.0), (0.99, 20.0)],
        };
        let w = widened(&f, 1.05);
        assert_eq!(w.quantiles[0], (0.5, -2.0));
        assert!((w.quantiles[1].1 - 10.5).abs() < 1e-12);
        assert!((w.quantiles[2].1 - 21.0).abs() < 1e-12);
        assert_eq!(widened(&f, 1.0), f);
        let mut r = Ring::new(300, 100);
        assert_eq!(ring_span(&r), 0);
        r.push(3000, 1.0);
        assert_eq!(ring_span(&r), 300);
        r.push(3000 + 12 * 300, 1.0);
        assert_eq!(ring_span(&r), 13 * 300);
    }
}
