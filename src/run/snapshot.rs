//! What one cycle hands the exporter: the loop's values copied into a plain [`Snapshot`].
//!
//! The exporter imports none of the pipeline's types (see [`crate::export`]), so this is the
//! one place that knows both sides.

use super::cycle::Loop;
use crate::collect::{Collector, HealthState, Source};
use crate::export::{
    AccuracySample, ForecastSample, ModelSample, PoolSample, SignalSample, Snapshot, WorkloadSample,
};
use crate::forecast::Forecast;
use crate::plan::{Decision, DecisionKind};
use std::time::Instant;

impl Loop {
    /// The exporter's view of the cycle that started at `started` for time `now`.
    pub(super) fn snapshot<S: Source>(
        &mut self,
        collector: &Collector<S>,
        now: i64,
        started: Instant,
        forecasts: &[(Forecast, Option<f64>)],
        decisions: &[Decision],
    ) -> Snapshot {
        Snapshot {
            forecasts: forecasts
                .iter()
                .map(|(f, observed)| ForecastSample {
                    series: f.key.to_string(),
                    window_seconds: f.window as f64,
                    quantiles: f.quantiles.clone(),
                    observed: *observed,
                })
                .collect(),
            workloads: workloads(decisions),
            pools: self
                .believed
                .nodes_per_pool()
                .into_iter()
                .map(|(pool, n)| PoolSample {
                    pool,
                    recommended_nodes: u64::from(n),
                })
                .collect(),
            decisions: decisions.iter().map(|d| d.kind.label()).collect(),
            signals: self.signals(collector),
            accuracy: self.accuracy(),
            model: Some(self.model()),
            cycle_seconds: started.elapsed().as_secs_f64(),
            at_unix: now,
        }
    }

    fn signals<S: Source>(&mut self, collector: &Collector<S>) -> Vec<SignalSample> {
        collector
            .signals()
            .iter()
            .map(|s| {
                let h = collector.health(&s.name);
                SignalSample {
                    signal: s.name.clone(),
                    up: h.is_some_and(|h| h.state != HealthState::Down),
                    staleness_seconds: h.and_then(|h| h.data_age).unwrap_or(0) as f64,
                    new_errors: self.new_errors(collector, &s.name),
                }
            })
            .collect()
    }

    fn accuracy(&self) -> Vec<AccuracySample> {
        self.accuracy
            .keys()
            .map(|k| {
                let s = self.accuracy.stats(k);
                AccuracySample {
                    series: k.to_string(),
                    wape: s.wape,
                    coverage_p90: s.coverage_p90,
                    scored: s.scored,
                }
            })
            .collect()
    }

    fn model(&self) -> ModelSample {
        ModelSample {
            model: self.model_name.clone(),
            trained_at: crate::series::format_timestamp(self.model.meta.trained_at),
            version: self.model.meta.crate_version.clone(),
        }
    }

    /// Failed requests and failed polls of a signal since the last snapshot, by kind.
    fn new_errors<S: Source>(
        &mut self,
        collector: &Collector<S>,
        signal: &str,
    ) -> Vec<(String, u64)> {
        let Some(now) = collector.stats(signal).copied() else {
            return Vec::new();
        };
        let before = self
            .last_stats
            .insert(signal.to_string(), now)
            .unwrap_or_default();
        [
            (
                "request",
                now.request_failures.saturating_sub(before.request_failures),
            ),
            ("poll", now.failed_polls.saturating_sub(before.failed_polls)),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), n))
        .collect()
    }
}

/// Current and recommended replicas, from the scale decisions (holds included).
fn workloads(decisions: &[Decision]) -> Vec<WorkloadSample> {
    decisions
        .iter()
        .filter(|d| {
            matches!(
                d.kind,
                DecisionKind::ScaleUp | DecisionKind::ScaleDown | DecisionKind::Hold
            )
        })
        .map(|d| WorkloadSample {
            workload: d.target.clone(),
            current_replicas: u64::from(d.from),
            recommended_replicas: u64::from(d.to),
        })
        .collect()
}
