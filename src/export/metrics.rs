//! The metric families prescale exports, registered once and updated from each [`Snapshot`].
//!
//! Label sets live in [`labels`]; [`Metrics::observe`] updates one group of families per
//! helper, in the order of the snapshot's fields. Each group, its registration (help text,
//! unit) and its update live in one file per stage of the pipeline they describe, so that a
//! family is read and changed in one place: `forecasts` (quantiles, window, observed value,
//! accuracy; per series, so a collector over the latest snapshot's rows rather than
//! families), `capacity` (replicas and nodes, current and recommended), `sharing` (a capped
//! pool's shortfall and cuts), `actions` (decisions and their outcomes), `collection` (signal
//! health, collection and replica-read errors), `risk`, `calibration`, `stage`, `node_load`,
//! `cluster`, `shard_stale` and `keda`. Here: the registry itself, the order families are
//! registered in (the order of a scrape, the per-series collector last), the process-wide
//! families (cycles, model, build, leader, shard) and the helpers every group uses.

mod actions;
mod calibration;
mod capacity;
mod cluster;
mod collection;
mod forecasts;
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

pub use actions::{decision_kinds, ACTION_OUTCOMES};
pub use collection::COLLECTION_ERROR_KINDS;
pub use keda::KEDA_METHODS;
use labels::{
    ActionLabels, BuildLabels, FGauge, KindLabel, Lv, ModelLabels, PoolLabel, Seen, ShardLabels,
    SignalErrorLabels, SignalLabel, WorkloadLabel,
};
pub use stage::FORECAST_STAGES;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Mutex;

use super::snapshot::{ModelSample, Snapshot};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

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
    series: forecasts::SeriesFamilies,
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
            series: forecasts::SeriesFamilies::default(),
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
        // Counter and unit suffixes (`_total`, `_seconds`) are appended by the encoder. In
        // pipeline order (the order of the scrape), but for the per-series families (forecasts
        // and their accuracy), a collector the registry encodes after every family.
        r.register_collector(Box::new(m.series.clone()));
        m.register_capacity(r);
        m.register_sharing(r);
        m.register_actions(r);
        m.register_collection(r);
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
        // The per-series rows are built before the lock and the old ones freed after it: a
        // scrape waits only for the swap.
        let rows = forecasts::Rows::of(&s.forecasts, &s.accuracy, &self.series.latest());
        let replaced = {
            let mut seen = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.observe_families(s, &mut seen);
            self.series.replace(rows)
        };
        drop(replaced);
    }

    /// [`observe`](Self::observe) of every family but the per-series ones, under the lock.
    fn observe_families(&self, s: &Snapshot, seen: &mut Seen) {
        self.observe_capacity(&s.workloads, &s.pools, seen);
        self.observe_sharing(&s.shortfalls, &s.allocation_cuts, seen);
        self.observe_decisions(&s.decisions);
        self.observe_actions(&s.workloads, &s.actions, seen);
        self.observe_signals(&s.signals, seen);
        self.observe_replica_reads(&s.replica_reads, seen);
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

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Sets one gauge per label set and returns the label sets set, in order.
fn set_each<L, N, A>(
    family: &Family<L, Gauge<N, A>>,
    values: impl Iterator<Item = (L, N)>,
) -> Vec<L>
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

/// Removes the label sets exported last time (`seen`) but not this time (`now`).
///
/// The usual cycle exports the same label sets in the same order (the workloads of the
/// configuration, in its order): then nothing is removed, found by comparing the two lists in
/// turn, with no hashing. At 10,000 workloads, sets of each family's label sets, built and
/// diffed every cycle, were most of the per-workload families' update.
fn sync<L: Clone + Hash + Eq, M, C>(family: &Family<L, M, C>, seen: &mut Vec<L>, now: Vec<L>)
where
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    if *seen != now {
        let live: HashSet<&L> = now.iter().collect();
        for gone in seen.iter().filter(|l| !live.contains(l)) {
            family.remove(gone);
        }
    }
    *seen = now;
}
