//! The metric families prescale exports, registered once and updated from each [`Snapshot`].
//!
//! Label sets live in [`labels`]; [`Metrics::observe`] updates one group of families per
//! helper, in the order of the snapshot's fields.

mod calibration;
mod cluster;
mod keda;
mod labels;
mod node_load;
mod risk;
mod shard_stale;
mod sharing;
mod stage;
#[cfg(test)]
mod tests;
mod text;

pub use keda::KEDA_METHODS;
use labels::{
    series_labels, ActionLabels, BuildLabels, FGauge, KindLabel, Lv, ModelLabels, PoolLabel, Seen,
    SeriesLabels, ShardLabels, SignalErrorLabels, SignalLabel, WorkloadLabel,
};
pub use stage::FORECAST_STAGES;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use super::snapshot::{
    AccuracySample, ActionSample, ForecastSample, ModelSample, PoolSample, SignalSample, Snapshot,
    WorkloadSample,
};
use crate::plan::DecisionKind;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The decision kinds the planner and actuator emit, as metric labels (`scale_up`). Their
/// counters exist (at 0) from the start so that `rate()` and `increase()` have a baseline
/// before the first decision of a kind. Derived from [`DecisionKind::ALL`], the one list of
/// kinds, so that a new kind cannot be missed here.
pub fn decision_kinds() -> impl Iterator<Item = String> {
    DecisionKind::ALL.into_iter().map(DecisionKind::label)
}

/// The kinds of collection error the live loop reports per signal (`request`: one failed
/// request, retried or not; `poll`: a poll that failed after its retries). Every signal's
/// `prescale_collection_errors_total` has a series at 0 for each from its first snapshot, so
/// that `rate()` and alerts see a baseline before the first error rather than no series.
pub const COLLECTION_ERROR_KINDS: [&str; 2] = ["request", "poll"];

/// The outcomes of a workload's decision, as the `outcome` label of `prescale_actions_total`:
/// the act stage's [`Outcome::LABELS`](crate::act::Outcome::LABELS), the one spelling. Every
/// workload has a counter at 0 for each from its first snapshot, so that a first failure is an
/// increase, not a new series.
pub const ACTION_OUTCOMES: [&str; 4] = crate::act::Outcome::LABELS;

/// Upper bounds of the cycle duration histogram, seconds: 1 ms to 10 s in 1-2.5-5 steps, so
/// that both a cached cycle (milliseconds) and one that retrains or waits on a slow collector
/// (seconds) land in a bucket narrow enough for a useful p99.
pub const CYCLE_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// prescale's metric registry: every family it exports, updated from [`Snapshot`]s.
///
/// Cheap to share behind an `Arc`; [`observe`](Self::observe) and [`encode`](Self::encode)
/// take `&self` and serialise on one lock, so a scrape never sees half a snapshot (e.g. a
/// workload's recommendation from one cycle and its current replicas from the next).
pub struct Metrics {
    registry: Registry,
    lock: Mutex<Seen>,
    forecast: FGauge<SeriesLabels>,
    forecast_window: FGauge<SeriesLabels>,
    observed: FGauge<SeriesLabels>,
    recommended_replicas: Family<WorkloadLabel, Gauge>,
    current_replicas: Family<WorkloadLabel, Gauge>,
    recommended_nodes: Family<PoolLabel, Gauge>,
    shortfall: FGauge<PoolLabel>,
    allocation_cuts: Family<WorkloadLabel, Gauge>,
    decisions: Family<KindLabel, Counter>,
    actions: Family<ActionLabels, Counter>,
    actuator_failures: Family<WorkloadLabel, Counter>,
    external_changes: Family<WorkloadLabel, Counter>,
    errors: Family<SignalErrorLabels, Counter>,
    series_refused: Family<SignalLabel, Counter>,
    replica_read_errors: Family<WorkloadLabel, Counter>,
    signal_up: Family<SignalLabel, Gauge>,
    staleness: FGauge<SignalLabel>,
    wape: FGauge<SeriesLabels>,
    coverage: FGauge<SeriesLabels>,
    scored: Family<SeriesLabels, Counter>,
    short_share: FGauge<WorkloadLabel>,
    short_budget: FGauge<WorkloadLabel>,
    risk_level: FGauge<WorkloadLabel>,
    risk_margin: FGauge<WorkloadLabel>,
    risk_floor: FGauge<WorkloadLabel>,
    calibration: FGauge<WorkloadLabel>,
    forecast_stage: Family<labels::StageLabels, Gauge>,
    cluster_state_known: Family<WorkloadLabel, Gauge>,
    shard_stale: Family<labels::ShardLabel, Gauge>,
    cycle_duration: Histogram,
    cycles: Counter,
    last_cycle: Gauge<f64, std::sync::atomic::AtomicU64>,
    model_info: Family<ModelLabels, Gauge>,
    build_info: Family<BuildLabels, Gauge>,
    keda_requests: keda::KedaFamily,
    leader: Gauge,
    lease_transitions: Gauge,
    shard_info: Family<ShardLabels, Gauge>,
    shard_workloads: Gauge,
    utilization: FGauge<WorkloadLabel>,
    planned_at: Family<WorkloadLabel, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family under the `prescale_` prefix, with the decision counters at 0
    /// and `prescale_build_info` set.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("prescale");
        let m = Metrics {
            registry: Registry::default(),
            lock: Mutex::new(Seen::default()),
            forecast: Family::default(),
            forecast_window: Family::default(),
            observed: Family::default(),
            recommended_replicas: Family::default(),
            current_replicas: Family::default(),
            recommended_nodes: Family::default(),
            shortfall: Family::default(),
            allocation_cuts: Family::default(),
            decisions: Family::default(),
            actions: Family::default(),
            actuator_failures: Family::default(),
            external_changes: Family::default(),
            errors: Family::default(),
            series_refused: Family::default(),
            replica_read_errors: Family::default(),
            signal_up: Family::default(),
            staleness: Family::default(),
            wape: Family::default(),
            coverage: Family::default(),
            scored: Family::default(),
            short_share: Family::default(),
            short_budget: Family::default(),
            risk_level: Family::default(),
            risk_margin: Family::default(),
            risk_floor: Family::default(),
            calibration: Family::default(),
            forecast_stage: Family::default(),
            cluster_state_known: Family::default(),
            shard_stale: Family::default(),
            cycle_duration: Histogram::new(CYCLE_BUCKETS),
            cycles: Counter::default(),
            last_cycle: Gauge::default(),
            model_info: Family::default(),
            build_info: Family::default(),
            keda_requests: keda::family(),
            leader: Gauge::default(),
            lease_transitions: Gauge::default(),
            shard_info: Family::default(),
            shard_workloads: Gauge::default(),
            utilization: Family::default(),
            planned_at: Family::default(),
        };
        m.register(&mut r);
        m.build_info
            .get_or_create(&BuildLabels {
                version: Lv::from(env!("CARGO_PKG_VERSION")),
            })
            .set(1);
        for kind in decision_kinds() {
            let _ = m.decisions.get_or_create(&KindLabel { kind: kind.into() });
        }
        Metrics { registry: r, ..m }
    }

    /// Registers every family in `r`, with its help text and unit.
    fn register(&self, r: &mut Registry) {
        let m = self;
        // Counter and unit suffixes (`_total`, `_seconds`) are appended by the encoder.
        r.register(
            "forecast",
            "Forecast peak of a series over the next window at a quantile level (label level), in the series' units",
            m.forecast.clone(),
        );
        r.register_with_unit(
            "forecast_window",
            "Length of the window a series' forecast covers",
            Unit::Seconds,
            m.forecast_window.clone(),
        );
        r.register(
            "observed_demand",
            "Latest collected value of a series, in the series' units",
            m.observed.clone(),
        );
        r.register(
            "recommended_replicas",
            "Replicas the planner recommends for a workload",
            m.recommended_replicas.clone(),
        );
        r.register(
            "current_replicas",
            "Replicas a workload runs now",
            m.current_replicas.clone(),
        );
        r.register(
            "recommended_nodes",
            "Nodes the planner recommends for a node pool",
            m.recommended_nodes.clone(),
        );
        r.register(
            "forecast_shortfall",
            "Nodes a pool's forecast wants beyond its max_nodes, of its scarcest resource (0 when it fits)",
            m.shortfall.clone(),
        );
        r.register(
            "allocation_cut_replicas",
            "Replicas a workload's pool allocation cut from what its planner wanted this cycle",
            m.allocation_cuts.clone(),
        );
        r.register("decisions", "Decisions taken, by kind", m.decisions.clone());
        r.register(
            "actions",
            "Outcomes of workloads' decisions: dry_run, applied, failed, skipped (holds)",
            m.actions.clone(),
        );
        r.register(
            "actuator_failures",
            "Workload changes the actuator failed to carry out (exit status, timeout, stop)",
            m.actuator_failures.clone(),
        );
        r.register(
            "external_changes",
            "Times a workload's live replicas differed from what prescale last set, changed by \
             someone else; prescale then left them and planned from the live count",
            m.external_changes.clone(),
        );
        r.register(
            "collection_errors",
            "Failed collections, by signal and kind of error",
            m.errors.clone(),
        );
        r.register(
            "replicas_read_errors",
            "Failed reads of a workload's current replicas (its data count as stale meanwhile)",
            m.replica_read_errors.clone(),
        );
        r.register(
            "series_refused",
            "New series of a signal refused because it holds max_series already",
            m.series_refused.clone(),
        );
        r.register(
            "signal_up",
            "Whether the last collection of a signal succeeded (1) or not (0)",
            m.signal_up.clone(),
        );
        r.register_with_unit(
            "data_staleness",
            "Age of a signal's newest good sample",
            Unit::Seconds,
            m.staleness.clone(),
        );
        r.register(
            "forecast_wape",
            "Rolling weighted absolute percentage error of a series' median forecast (0.1 = 10%)",
            m.wape.clone(),
        );
        r.register(
            "forecast_p90_coverage",
            "Rolling fraction of a series' windows whose actual peak was at or below the p90 forecast",
            m.coverage.clone(),
        );
        r.register(
            "forecasts_scored",
            "Forecasts of a series scored against what happened",
            m.scored.clone(),
        );
        m.register_risk(r);
        m.register_calibration(r);
        m.register_stage(r);
        m.register_node_load(r);
        m.register_cluster(r);
        m.register_shard_stale(r);
        r.register_with_unit(
            "cycle_duration",
            "Wall-clock duration of one collect-forecast-plan-act cycle",
            Unit::Seconds,
            m.cycle_duration.clone(),
        );
        r.register("cycles", "Cycles completed", m.cycles.clone());
        r.register_with_unit(
            "last_cycle_timestamp",
            "Unix time the last cycle completed",
            Unit::Seconds,
            m.last_cycle.clone(),
        );
        r.register(
            "model_info",
            "The forecast model in use (value always 1)",
            m.model_info.clone(),
        );
        // A gauge at 1 rather than an OpenMetrics info: the same sample either way, and one
        // that the classic text format and `promtool check metrics` can type.
        r.register(
            "build_info",
            "prescale's build (value always 1)",
            m.build_info.clone(),
        );
        r.register(
            "keda_requests",
            "Calls of the KEDA external scaler, by method and gRPC status code",
            m.keda_requests.clone(),
        );
        r.register(
            "leader",
            "Whether this replica may act (1): it holds the leader Lease, or leader election is off",
            m.leader.clone(),
        );
        r.register(
            "lease_transitions",
            "leaseTransitions of the leader Lease as this replica last saw it (changes of holder)",
            m.lease_transitions.clone(),
        );
        r.register(
            "shard_info",
            "This replica's share of the workloads: its ordinal of replicas (value always 1)",
            m.shard_info.clone(),
        );
        r.register(
            "shard_workloads",
            "Workloads this replica plans (all of them when not sharded)",
            m.shard_workloads.clone(),
        );
    }

    /// Sets `prescale_shard_info{ordinal,replicas}` and `prescale_shard_workloads`, once at
    /// start: the split follows from the configuration and does not change while running.
    pub fn set_shard(&self, ordinal: u32, replicas: u32, workloads: usize) {
        self.shard_info.clear();
        self.shard_info
            .get_or_create(&ShardLabels {
                ordinal: Lv::from(ordinal.to_string()),
                replicas: Lv::from(replicas.to_string()),
            })
            .set(1);
        self.shard_workloads
            .set(i64::try_from(workloads).unwrap_or(i64::MAX));
    }

    /// Sets `prescale_leader` and `prescale_lease_transitions`. Called by the elector whenever
    /// its state changes, between cycles too: a scrape sees a step-down when it happens.
    pub fn set_leader(&self, leader: bool, transitions: i64) {
        self.leader.set(i64::from(leader));
        self.lease_transitions.set(transitions);
    }

    /// Updates every family from one cycle's snapshot: sets the state gauges, removes label
    /// sets that are no longer in the snapshot, and adds the cycle's events to the counters
    /// and the histogram.
    pub fn observe(&self, s: &Snapshot) {
        let mut seen = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let seen = &mut *seen;
        self.observe_forecasts(&s.forecasts, seen);
        self.observe_capacity(&s.workloads, &s.pools, seen);
        self.observe_sharing(&s.shortfalls, &s.allocation_cuts, seen);
        for kind in &s.decisions {
            self.decisions
                .get_or_create(&KindLabel {
                    kind: Lv::from(kind),
                })
                .inc();
        }
        self.observe_actions(&s.workloads, &s.actions, seen);
        self.observe_signals(&s.signals, seen);
        let mut now = HashSet::new();
        for (w, failed) in &s.replica_reads {
            let l = workload(w);
            self.replica_read_errors
                .get_or_create(&l)
                .inc_by(u64::from(*failed));
            now.insert(l);
        }
        sync(&self.replica_read_errors, &mut seen.replica_reads, now);
        self.observe_accuracy(&s.accuracy, seen);
        self.observe_risk(&s.risk, seen);
        self.observe_calibration(&s.calibration, seen);
        self.observe_stages(&s.stages, seen);
        self.observe_node_loads(&s.node_loads, s.at_unix, seen);
        self.observe_cluster(&s.cluster_state, seen);
        self.observe_shard_stale(&s.shard_stale, seen);
        let now = set_each(
            &self.model_info,
            s.model.iter().map(|m: &ModelSample| {
                let l = ModelLabels {
                    model: Lv::from(&m.model),
                    trained_at: Lv::from(&m.trained_at),
                    version: Lv::from(&m.version),
                };
                (l, 1)
            }),
        );
        sync(&self.model_info, &mut seen.model, now);

        if s.cycle_seconds.is_finite() && s.cycle_seconds >= 0.0 {
            self.cycle_duration.observe(s.cycle_seconds);
        }
        self.cycles.inc();
        self.last_cycle.set(s.at_unix as f64);
    }

    /// Forecast quantiles, windows and the observed values beside them.
    fn observe_forecasts(&self, forecasts: &[ForecastSample], seen: &mut Seen) {
        let mut now = HashSet::new();
        for f in forecasts {
            let series = series_labels(&f.series);
            for &(level, value) in &f.quantiles {
                let mut l = series.clone();
                l.push(("level".to_string(), Lv(level_label(level))));
                self.forecast.get_or_create(&l).set(value);
                now.insert(l);
            }
        }
        sync(&self.forecast, &mut seen.forecast, now);
        let now = set_each(
            &self.forecast_window,
            forecasts
                .iter()
                .map(|f| (series_labels(&f.series), f.window_seconds)),
        );
        sync(&self.forecast_window, &mut seen.window, now);
        let now = set_each(
            &self.observed,
            forecasts
                .iter()
                .filter_map(|f| f.observed.map(|v| (series_labels(&f.series), v))),
        );
        sync(&self.observed, &mut seen.observed, now);
    }

    /// Replica and node counts, current and recommended.
    fn observe_capacity(
        &self,
        workloads: &[WorkloadSample],
        pools: &[PoolSample],
        seen: &mut Seen,
    ) {
        let now = set_each(
            &self.recommended_replicas,
            workloads.iter().map(|w| {
                (
                    workload(&w.workload),
                    saturating_i64(w.recommended_replicas),
                )
            }),
        );
        sync(
            &self.recommended_replicas,
            &mut seen.recommended_replicas,
            now,
        );
        let now = set_each(
            &self.current_replicas,
            workloads
                .iter()
                .map(|w| (workload(&w.workload), saturating_i64(w.current_replicas))),
        );
        sync(&self.current_replicas, &mut seen.current_replicas, now);
        let now = set_each(
            &self.recommended_nodes,
            pools.iter().map(|p| {
                (
                    PoolLabel {
                        pool: Lv::from(&p.pool),
                    },
                    saturating_i64(p.recommended_nodes),
                )
            }),
        );
        sync(&self.recommended_nodes, &mut seen.recommended_nodes, now);
    }

    /// Outcomes of the workloads' decisions; every workload's counters start at 0 and live as
    /// long as the workload does.
    fn observe_actions(
        &self,
        workloads: &[WorkloadSample],
        actions: &[ActionSample],
        seen: &mut Seen,
    ) {
        let action = |w: &str, outcome: &str| ActionLabels {
            workload: Lv::from(w),
            outcome: Lv::from(outcome),
        };
        let mut now = HashSet::new();
        let mut failures = HashSet::new();
        let mut external = HashSet::new();
        for w in workloads {
            for outcome in ACTION_OUTCOMES {
                let l = action(&w.workload, outcome);
                let _ = self.actions.get_or_create(&l);
                now.insert(l);
            }
            let l = workload(&w.workload);
            let _ = self.actuator_failures.get_or_create(&l);
            let _ = self.external_changes.get_or_create(&l);
            external.insert(l.clone());
            failures.insert(l);
        }
        for a in actions {
            let l = action(&a.workload, &a.outcome);
            self.actions.get_or_create(&l).inc();
            now.insert(l);
            if a.outcome == "failed" {
                let l = workload(&a.workload);
                self.actuator_failures.get_or_create(&l).inc();
                failures.insert(l);
            }
            if a.external_change {
                let l = workload(&a.workload);
                self.external_changes.get_or_create(&l).inc();
                external.insert(l);
            }
        }
        sync(&self.actions, &mut seen.actions, now);
        sync(
            &self.actuator_failures,
            &mut seen.actuator_failures,
            failures,
        );
        sync(&self.external_changes, &mut seen.external_changes, external);
    }

    /// Signals' health and their error counters.
    fn observe_signals(&self, signals: &[SignalSample], seen: &mut Seen) {
        let now = set_each(
            &self.signal_up,
            signals.iter().map(|g| (signal(&g.signal), i64::from(g.up))),
        );
        sync(&self.signal_up, &mut seen.signal_up, now);
        let now = set_each(
            &self.staleness,
            signals
                .iter()
                .map(|g| (signal(&g.signal), g.staleness_seconds)),
        );
        sync(&self.staleness, &mut seen.staleness, now);
        // Error counters live as long as their signal does: an error kind that stops
        // recurring keeps its count (it is a counter), but a signal that is gone takes its
        // counters with it.
        for g in signals {
            for kind in COLLECTION_ERROR_KINDS {
                let l = SignalErrorLabels {
                    signal: Lv::from(&g.signal),
                    kind: Lv::from(kind),
                };
                let _ = self.errors.get_or_create(&l);
                seen.errors.insert(l);
            }
            self.series_refused
                .get_or_create(&signal(&g.signal))
                .inc_by(g.new_series_refused);
            for (kind, n) in &g.new_errors {
                let l = SignalErrorLabels {
                    signal: Lv::from(&g.signal),
                    kind: Lv::from(kind),
                };
                self.errors.get_or_create(&l).inc_by(*n);
                seen.errors.insert(l);
            }
        }
        let live: HashSet<&str> = signals.iter().map(|g| g.signal.as_str()).collect();
        seen.errors.retain(|l| {
            let keep = live.contains(l.signal.0.as_str());
            if !keep {
                self.errors.remove(l);
            }
            keep
        });
        let now = signals.iter().map(|g| signal(&g.signal)).collect();
        sync(&self.series_refused, &mut seen.series_refused, now);
    }

    /// Forecast accuracy per series.
    fn observe_accuracy(&self, accuracy: &[AccuracySample], seen: &mut Seen) {
        let now = set_each(
            &self.wape,
            accuracy
                .iter()
                .filter_map(|a| a.wape.map(|v| (series_labels(&a.series), v))),
        );
        sync(&self.wape, &mut seen.wape, now);
        let now = set_each(
            &self.coverage,
            accuracy
                .iter()
                .filter_map(|a| a.coverage_p90.map(|v| (series_labels(&a.series), v))),
        );
        sync(&self.coverage, &mut seen.coverage, now);
        let mut now = HashSet::new();
        for a in accuracy {
            let l = series_labels(&a.series);
            // The tracker owns the count; mirroring it (rather than adding deltas) keeps the two
            // equal, and a tracker restart shows up as the counter reset Prometheus expects.
            self.scored
                .get_or_create(&l)
                .inner()
                .store(a.scored, Ordering::Relaxed);
            now.insert(l);
        }
        sync(&self.scored, &mut seen.scored, now);
    }

    /// The registry in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let _consistent = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The registry in the classic Prometheus text format (version 0.0.4), for clients that do
    /// not ask for OpenMetrics: the same samples, with counters' `# HELP` and `# TYPE` naming
    /// the `_total` sample, and no `# UNIT` or `# EOF`.
    pub fn encode_text(&self) -> String {
        text::to_classic(&self.encode())
    }
}

fn workload(s: &str) -> WorkloadLabel {
    WorkloadLabel { workload: s.into() }
}

fn signal(s: &str) -> SignalLabel {
    SignalLabel { signal: s.into() }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `0.9` → `"0.9"`, `0.5` → `"0.5"`: Rust's shortest round-trip form, which is also what a
/// person types in PromQL (`level="0.9"`).
fn level_label(level: f64) -> String {
    format!("{level}")
}

/// Sets one gauge per label set and returns the label sets set.
fn set_each<L, N, A>(
    family: &Family<L, Gauge<N, A>>,
    values: impl Iterator<Item = (L, N)>,
) -> HashSet<L>
where
    L: Clone + Hash + Eq,
    A: prometheus_client::metrics::gauge::Atomic<N> + Default,
{
    values
        .map(|(l, v)| {
            family.get_or_create(&l).set(v);
            l
        })
        .collect()
}

/// Removes the label sets exported last time but not this time.
fn sync<L: Clone + Hash + Eq, M, C>(
    family: &Family<L, M, C>,
    seen: &mut HashSet<L>,
    now: HashSet<L>,
) where
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    for gone in seen.difference(&now) {
        family.remove(gone);
    }
    *seen = now;
}
