//! What one cycle hands the exporter: the loop's values copied into a plain [`Snapshot`].
//!
//! The exporter imports none of the pipeline's types (see [`crate::export`]), so this is the
//! one place that knows both sides.

use super::planning::Peak;
use super::state::Loop;
use crate::act::Outcome;
use crate::collect::{Collector, HealthState, SignalHealth, Source};
use crate::export::{
    AccuracySample, ActionSample, ForecastSample, ModelSample, PoolSample, RiskSample,
    ScalerSample, SeriesId, SignalSample, Snapshot, WorkloadSample, COLLECTION_ERROR_KINDS,
};
use crate::forecast::Forecast;
use crate::plan::{CurrentReplicas, Decision, ShareReport};
use crate::series::{SeriesKey, SeriesMap};
use std::collections::HashMap;
use std::time::Instant;

impl Loop {
    /// The exporter's view of the cycle that started at `started` for time `now`.
    pub(super) fn snapshot<S: Source>(
        &mut self,
        collector: &Collector<S>,
        now: i64,
        started: Instant,
        forecasts: Vec<(Forecast, Option<f64>)>,
        decisions: &[Decision],
        outcomes: &[Outcome],
    ) -> Snapshot {
        let forecasts = forecasts
            .into_iter()
            .map(|(f, observed)| ForecastSample {
                series: cached_id(&mut self.series.ids, &f.key),
                window_seconds: f.window as f64,
                quantiles: f.quantiles,
                observed,
            })
            .collect();
        let accuracy = self.accuracy();
        Snapshot {
            forecasts,
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
            actions: actions(decisions, outcomes),
            signals: self.signals(collector),
            replica_reads: self.replica_reads(),
            accuracy,
            risk: self.risk(),
            calibration: self.calibration.clone(),
            stages: self
                .stages
                .iter()
                .map(|(w, v)| (w.clone(), v.stage.label().to_string()))
                .collect(),
            cluster_state: self.cluster_state(),
            model: Some(self.model()),
            shortfalls: Vec::new(),
            allocation_cuts: Vec::new(),
            scaler: Vec::new(),
            node_loads: Vec::new(),
            shard_stale: Vec::new(),
            cycle_seconds: started.elapsed().as_secs_f64(),
            at_unix: now,
        }
    }

    /// Adds what sharing the pools found this cycle (see [`crate::plan::share_pools`]).
    pub(super) fn add_sharing(snapshot: &mut Snapshot, shared: ShareReport) {
        snapshot.shortfalls = shared.shortfall_nodes;
        snapshot.allocation_cuts = shared
            .cut_replicas
            .into_iter()
            .map(|(w, n)| (w, u64::from(n)))
            .collect();
    }

    /// Adds what the KEDA scaler serves per workload: the planner's count after every guard
    /// and the pool's allocation (`decisions`), and the demand peak the planner sized for
    /// (`peaks`, [`plan_workloads`](Loop::plan_workloads)'s, in workload order): taken, not
    /// recomputed, so that the scaler cannot serve another forecast than the one planned with.
    pub(super) fn add_scaler(
        &self,
        snapshot: &mut Snapshot,
        decisions: &[Decision],
        peaks: &[Peak],
    ) {
        let by_target: HashMap<&str, &Decision> = decisions
            .iter()
            .filter(|d| d.is_workload_decision())
            .map(|d| (d.target.as_str(), d))
            .collect();
        snapshot.scaler = self
            .workloads
            .iter()
            .zip(peaks)
            .filter_map(|(spec, peak)| {
                let d = by_target.get(spec.name.as_str())?;
                Some(ScalerSample {
                    workload: spec.name.clone(),
                    demand: spec.demand.as_str().to_string(),
                    current_replicas: u64::from(d.from),
                    desired_replicas: u64::from(d.to),
                    per_replica: spec.effective_capacity(),
                    headroom: spec.headroom,
                    quantile: peak.level,
                    forecast_peak: peak.value,
                    lead_seconds: peak.lead,
                })
            })
            .collect();
    }

    fn signals<S: Source>(&mut self, collector: &Collector<S>) -> Vec<SignalSample> {
        collector
            .signals()
            .iter()
            .map(|s| {
                let h = collector.health(&s.name);
                let (new_errors, new_series_refused) = self.new_errors(collector, &s.name);
                SignalSample {
                    signal: s.name.clone(),
                    up: signal_up(h),
                    down: signal_down(h),
                    staleness_seconds: h.and_then(|h| h.data_age).unwrap_or(0) as f64,
                    new_errors,
                    new_series_refused,
                }
            })
            .collect()
    }

    /// Per workload read with a query, whether this cycle's read failed.
    fn replica_reads(&self) -> Vec<(String, bool)> {
        if self.replica_reader.is_none() {
            return Vec::new();
        }
        self.workloads
            .iter()
            .filter(|w| matches!(w.current_replicas, Some(CurrentReplicas::Query(_))))
            .map(|w| (w.name.clone(), self.replicas_unknown.contains(&w.name)))
            .collect()
    }

    /// With `[cluster]`, per workload whether this cycle read its state (see
    /// [`read_cluster`](Loop::read_cluster)); nothing without it.
    fn cluster_state(&self) -> Vec<(String, bool)> {
        if self.cluster.is_none() {
            return Vec::new();
        }
        self.configured
            .0
            .iter()
            .map(|w| (w.name.clone(), !self.state_unknown.contains_key(&w.name)))
            .collect()
    }

    fn accuracy(&mut self) -> Vec<AccuracySample> {
        let ids = &mut self.series.ids;
        self.series
            .accuracy
            .all_stats()
            .map(|(k, s)| AccuracySample {
                series: cached_id(ids, k),
                wape: s.wape,
                coverage_p90: s.coverage_p90,
                scored: s.scored,
            })
            .collect()
    }

    /// Per workload with `max_short`, its budget and how it is being met.
    fn risk(&self) -> Vec<RiskSample> {
        self.workloads
            .iter()
            .filter_map(|w| {
                self.risk.stats(w).map(|s| RiskSample {
                    workload: w.name.clone(),
                    budget: s.budget,
                    realised: s.realised,
                    window_seconds: s.window as f64,
                    level: s.base,
                    margin: s.margin,
                    floor: s.floor,
                })
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

    /// Failed requests and failed polls of a signal since the last snapshot, by kind (every
    /// kind of [`COLLECTION_ERROR_KINDS`], 0 included), and the new series it refused.
    fn new_errors<S: Source>(
        &mut self,
        collector: &Collector<S>,
        signal: &str,
    ) -> (Vec<(String, u64)>, u64) {
        let Some(now) = collector.stats(signal).copied() else {
            return (Vec::new(), 0);
        };
        let before = self
            .last_stats
            .insert(signal.to_string(), now)
            .unwrap_or_default();
        let [request, poll] = COLLECTION_ERROR_KINDS;
        let errors = [
            (
                request,
                now.request_failures.saturating_sub(before.request_failures),
            ),
            (poll, now.failed_polls.saturating_sub(before.failed_polls)),
        ]
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
        (
            errors,
            now.series_refused.saturating_sub(before.series_refused),
        )
    }
}

/// Whether a signal's last collection succeeded: `prescale_signal_up` says so, as its help
/// text promises. `HealthState::Degraded` (failing, data still fresh) is not up: during an
/// outage the metric must drop at the first failed poll, not once the data have gone stale.
fn signal_up(h: Option<&SignalHealth>) -> bool {
    h.is_some_and(|h| {
        h.last_success.is_some() && h.consecutive_failures == 0 && h.state != HealthState::Down
    })
}

/// Why a signal is down, if it is: `/readyz` names it. The collector's last error (which never
/// holds a secret); a signal without health (not configured) is not down, it does not exist.
fn signal_down(h: Option<&SignalHealth>) -> Option<String> {
    let h = h.filter(|h| h.state == HealthState::Down)?;
    Some(
        h.last_error
            .clone()
            .unwrap_or_else(|| "its data are stale".into()),
    )
}

/// `key`'s id for the exporter, made once per series and handed to every snapshot after (the
/// exporter keeps a series' label set while it gets the same id).
fn cached_id(ids: &mut SeriesMap<SeriesId>, key: &SeriesKey) -> SeriesId {
    if let Some(id) = ids.get(key) {
        return id.clone();
    }
    let id = series_id(key);
    ids.insert(key.clone(), id.clone());
    id
}

/// A series key (`rps{service="api"}`) as the exporter's signal and labels, so that `/metrics`
/// carries `signal="rps",service="api"` rather than the key as one label value.
fn series_id(key: &SeriesKey) -> SeriesId {
    let (signal, labels) = key.parts();
    SeriesId::new(signal, labels)
}

/// The outcome of each workload's decision this cycle (node decisions are the pools').
fn actions(decisions: &[Decision], outcomes: &[Outcome]) -> Vec<ActionSample> {
    decisions
        .iter()
        .zip(outcomes)
        .filter(|(d, _)| d.is_workload_decision())
        .map(|(d, o)| ActionSample {
            workload: d.target.clone(),
            outcome: o.label().to_string(),
            external_change: o.changed_elsewhere().is_some(),
        })
        .collect()
}

/// Current and recommended replicas, from the scale decisions (holds included).
fn workloads(decisions: &[Decision]) -> Vec<WorkloadSample> {
    decisions
        .iter()
        .filter(|d| d.is_workload_decision())
        .map(|d| WorkloadSample {
            workload: d.target.clone(),
            current_replicas: u64::from(d.from),
            recommended_replicas: u64::from(d.to),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(state: HealthState, failures: u32) -> SignalHealth {
        SignalHealth {
            state,
            last_success: Some(100),
            last_attempt: Some(160),
            consecutive_failures: failures,
            last_error: (failures > 0).then(|| "connection refused".into()),
            data_age: Some(60),
            series: 3,
            stale_series: 0,
        }
    }

    /// An outage shorter than the staleness limit leaves the signal `Degraded`: the last
    /// collection failed, so `prescale_signal_up` must read 0 from the first failed poll.
    #[test]
    fn series_keys_become_a_signal_and_its_labels() {
        let key = SeriesKey::new(r#"demand{pod="a-1",service="api"}"#);
        assert_eq!(
            series_id(&key),
            SeriesId::new("demand", [("pod", "a-1"), ("service", "api")])
        );
        assert_eq!(series_id(&SeriesKey::new("web")), SeriesId::from("web"));
    }

    #[test]
    fn signal_up_is_0_from_the_first_failed_poll() {
        assert!(signal_up(Some(&health(HealthState::Healthy, 0))));
        assert!(!signal_up(Some(&health(HealthState::Degraded, 1))));
        assert!(!signal_up(Some(&health(HealthState::Down, 3))));
        assert!(!signal_up(None));
    }

    /// Only `Down` makes `/readyz` fail: a first failed poll with fresh data does not.
    #[test]
    fn signal_down_names_the_error_of_a_down_signal_only() {
        assert_eq!(signal_down(Some(&health(HealthState::Healthy, 0))), None);
        assert_eq!(signal_down(Some(&health(HealthState::Degraded, 1))), None);
        assert_eq!(
            signal_down(Some(&health(HealthState::Down, 3))).as_deref(),
            Some("connection refused")
        );
        assert_eq!(signal_down(None), None);
    }
}
