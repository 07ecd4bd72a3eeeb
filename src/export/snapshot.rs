//! The [`Snapshot`]: what one cycle of the live loop tells the exporter, as plain data.

use std::sync::Arc;

/// Everything one cycle of the live loop knows that the exporter shows.
///
/// Plain data on purpose: the stages that produce these values must not be coupled to the
/// exporter, and the exporter must not be coupled to them. The loop copies what it has into a
/// `Snapshot` and calls [`Metrics::observe`](super::Metrics::observe).
///
/// Two kinds of fields: **state** (forecasts, workloads, pools, signals' `up`/staleness,
/// accuracy, model) is the complete current picture, and anything absent from it is removed
/// from `/metrics`; **events** (`decisions`, `actions`, signals' `new_errors`, `cycle_seconds`) happened
/// during this cycle only and are added to counters and the histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Latest forecast per series.
    pub forecasts: Vec<ForecastSample>,
    /// Replica counts per workload.
    pub workloads: Vec<WorkloadSample>,
    /// Node counts per node pool.
    pub pools: Vec<PoolSample>,
    /// Kinds of the decisions taken this cycle, one entry per decision, e.g. `"scale_up"`; see
    /// [`decision_kinds`](super::decision_kinds). Other kinds are counted too.
    pub decisions: Vec<String>,
    /// What became of each workload's decision this cycle (events: counted into
    /// `prescale_actions_total` and `prescale_actuator_failures_total`, whose label sets start
    /// at 0 for every workload in `workloads`).
    pub actions: Vec<ActionSample>,
    /// Health of each collected signal.
    pub signals: Vec<SignalSample>,
    /// Per workload whose replicas are read with a query: whether this cycle's read failed
    /// (state: the label set lives as long as the workload; the failures are counted into
    /// `prescale_replicas_read_errors_total`, which starts at 0).
    pub replica_reads: Vec<(String, bool)>,
    /// Rolling forecast accuracy per series.
    pub accuracy: Vec<AccuracySample>,
    /// Per workload with a `max_short` budget: the budget, the realised short share and the
    /// level provisioned at (state).
    pub risk: Vec<RiskSample>,
    /// Per workload whose forecast is calibrated online (not those with `max_short`, which plan
    /// uncorrected): the factor the correction multiplies the forecast at the workload's
    /// quantile by (1.12 = raised 12 %; state). Exported
    /// as `prescale_forecast_calibration{workload}`.
    pub calibration: Vec<(String, f64)>,
    /// Per workload: its cold-start stage (`reactive`, `global` or `own`, one of
    /// [`FORECAST_STAGES`](super::FORECAST_STAGES); state). Exported as
    /// `prescale_forecast_stage{workload,stage}`, 1 for the current stage and 0 for the others.
    pub stages: Vec<(String, String)>,
    /// Per workload, with `[cluster]`: whether its state was read from the cluster this cycle
    /// (state; empty without `[cluster]`). Exported as `prescale_cluster_state_known{workload}`
    /// (0 = unknown: kube-state-metrics missing or a series stale; no scale-down meanwhile).
    pub cluster_state: Vec<(String, bool)>,
    /// The model in use; `None` until one is loaded (and `/readyz` says so).
    pub model: Option<ModelSample>,
    /// Per node pool: how many nodes more than `max_nodes` the forecast wants, of the scarcest
    /// resource (state; 0 when the pool is not short). Exported as
    /// `prescale_forecast_shortfall{pool}`.
    pub shortfalls: Vec<(String, f64)>,
    /// Per workload: replicas its pool's allocation cut this cycle from what its planner wanted
    /// (state; 0 when not cut). Exported as `prescale_allocation_cut_replicas{workload}`.
    pub allocation_cuts: Vec<(String, u64)>,
    /// Per workload: what the KEDA external scaler serves (state: the complete current set;
    /// see [`crate::export::keda`]).
    pub scaler: Vec<ScalerSample>,
    /// Per workload planned this cycle: the fraction of each replica's CPU request it is
    /// forecast to use at its peak, as the node planner counts it (1 without a forecast;
    /// state). Exported as `prescale_forecast_utilization{workload}`, beside
    /// `prescale_plan_timestamp_seconds{workload}` (this cycle's `at_unix`), so that the shard
    /// that plans the node pools can read every other shard's load back from Prometheus
    /// (see [`crate::shard`]).
    pub node_loads: Vec<(String, f64)>,
    /// On the replica that plans the node pools and read the other shards back this cycle:
    /// per other shard ordinal, whether none of its workloads was read back fresh (state).
    /// Exported as `prescale_shard_stale{shard}`; empty on every other replica.
    pub shard_stale: Vec<(u32, bool)>,
    /// Wall-clock duration of this cycle, seconds.
    pub cycle_seconds: f64,
    /// When this cycle finished, Unix seconds.
    pub at_unix: i64,
}

/// Which series a sample is of: the signal it was collected as and the labels that tell its
/// series apart, e.g. signal `rps` and `service="api"`.
///
/// Exported as a `signal` label beside the series' own labels (`prescale_forecast{signal="rps",
/// service="api",level="0.9"}`), so that dashboards can join prescale's series with others
/// carrying the same labels (`kube_*`). A series label named like one of prescale's own labels
/// (`signal`, `level`, `workload`, ...) is exported with the `exported_` prefix, as Prometheus
/// does for a target's colliding labels.
///
/// Cheap to copy (shared, like the loop's series keys): the loop makes one per series and hands
/// the same one to every snapshot, so that the exporter can tell a series it already labelled
/// by its identity instead of building its label set again each cycle. Two ids are equal when
/// their signal and labels are.
#[derive(Clone, Default)]
pub struct SeriesId(Arc<IdParts>);

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct IdParts {
    signal: String,
    labels: Vec<(String, String)>,
}

impl SeriesId {
    /// A series with labels, e.g. `SeriesId::new("rps", [("service", "api")])`.
    pub fn new<K: Into<String>, V: Into<String>>(
        signal: impl Into<String>,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        SeriesId(Arc::new(IdParts {
            signal: signal.into(),
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }))
    }

    /// The signal's name (or a history file's series name), e.g. `"rps"`.
    pub fn signal(&self) -> &str {
        &self.0.signal
    }

    /// The series' own labels, e.g. `[("service", "api")]`; empty for a signal with one series.
    pub fn labels(&self) -> &[(String, String)] {
        &self.0.labels
    }

    /// Which copy this is: the same for every clone of one id, different from any other live
    /// id's.
    pub(crate) fn identity(&self) -> *const () {
        Arc::as_ptr(&self.0).cast()
    }
}

impl PartialEq for SeriesId {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for SeriesId {}

impl std::hash::Hash for SeriesId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl std::fmt::Debug for SeriesId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesId")
            .field("signal", &self.0.signal)
            .field("labels", &self.0.labels)
            .finish()
    }
}

/// The only series of a signal: no labels.
impl From<&str> for SeriesId {
    fn from(signal: &str) -> Self {
        SeriesId::new(signal, std::iter::empty::<(String, String)>())
    }
}

/// One series' forecast of its peak over the next window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForecastSample {
    /// Which series, e.g. signal `"rps"` with `service="api"`.
    pub series: SeriesId,
    /// Length of the forecast window, seconds.
    pub window_seconds: f64,
    /// `(level, value)` pairs, e.g. `(0.9, 412.0)`, values in the series' units.
    pub quantiles: Vec<(f64, f64)>,
    /// The series' latest collected value, in its units, if the loop has one; exported so a
    /// dashboard can put forecast and reality side by side without a second data source.
    pub observed: Option<f64>,
}

/// One workload's replica counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadSample {
    /// Workload name, e.g. `"web"`.
    pub workload: String,
    /// Replicas running now.
    pub current_replicas: u64,
    /// Replicas the planner recommends.
    pub recommended_replicas: u64,
}

/// What the KEDA external scaler needs of one workload's cycle: the planner's count and what
/// it planned from. See [`crate::export::keda`] for how these become KEDA's metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScalerSample {
    /// Workload name, e.g. `"api"` (what a ScaledObject's trigger metadata names).
    pub workload: String,
    /// Its demand series, e.g. `rps{service="api"}`, for error messages.
    pub demand: String,
    /// Replicas running now, as the planner saw them.
    pub current_replicas: u64,
    /// Replicas the planner wants (its decision's target, after guards and allocation).
    pub desired_replicas: u64,
    /// Demand one replica is planned to carry (`replica_capacity × target_utilization`).
    pub per_replica: f64,
    /// The workload's headroom (0.1 = 10 % over the forecast).
    pub headroom: f64,
    /// The forecast level the workload plans at: its `quantile` (e.g. 0.9), or with a
    /// short-step budget (`max_short`) the budget's level (0.99 for 1 %), which the planner
    /// reads on the forecast before the online correction and multiplies by its margin.
    pub quantile: f64,
    /// The demand peak the planner sized for over the forecast's window, before headroom: the
    /// forecast at `quantile`, with a budget times its calibrated margin (or its demand
    /// floor, if higher); `None` until the model could forecast the workload's demand series.
    pub forecast_peak: Option<f64>,
    /// The forecast's window (the lead it looks ahead), seconds; `None` with no forecast.
    pub lead_seconds: Option<i64>,
}

/// The outcome of one workload's decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionSample {
    /// Workload name, e.g. `"web"`.
    pub workload: String,
    /// One of [`ACTION_OUTCOMES`](super::ACTION_OUTCOMES): `dry_run`, `applied`, `failed`,
    /// `skipped` (never a failure's reason: each value is a time series).
    pub outcome: String,
    /// The outcome was `skipped (changed elsewhere)`: someone else had changed the replicas
    /// (`prescale_external_changes_total`).
    pub external_change: bool,
}

/// One node pool's recommended size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolSample {
    /// Pool name.
    pub pool: String,
    /// Nodes the planner recommends.
    pub recommended_nodes: u64,
}

/// One collected signal's health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalSample {
    /// Signal name, e.g. `"web_rps"`.
    pub signal: String,
    /// Whether the last collection of this signal succeeded.
    pub up: bool,
    /// Why the loop counts the signal as down (failing for a while, failing with an error
    /// retries cannot fix, or failing with stale data), `None` while it is not; `/readyz`
    /// answers 503 naming every down signal. A signal that failed once but still has fresh
    /// data is not `up` but not down either: one failed poll is no reason to be unready.
    pub down: Option<String>,
    /// Age of the newest good sample, seconds.
    pub staleness_seconds: f64,
    /// Errors since the previous snapshot, as `(kind, count)`, e.g. `("timeout", 1)`. Kinds
    /// should be a small fixed vocabulary (`timeout`, `http`, `parse`, ...), never an error
    /// message: each kind is a time series kept as long as the signal exists.
    pub new_errors: Vec<(String, u64)>,
    /// New series refused since the previous snapshot because the signal holds `max_series`
    /// already (exported as `prescale_series_refused_total`, not only logged).
    pub new_series_refused: u64,
}

/// One series' rolling forecast accuracy, as the accuracy tracker reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccuracySample {
    /// Which series.
    pub series: SeriesId,
    /// Weighted absolute percentage error of the median forecast (0.1 = 10 %); `None` until a
    /// forecast has been scored.
    pub wape: Option<f64>,
    /// Fraction of scored windows whose actual peak was at or below the p90 forecast (should
    /// be near 0.9); `None` until a forecast has been scored.
    pub coverage_p90: Option<f64>,
    /// Forecasts scored so far (cumulative; a smaller value than last time means the tracker
    /// restarted, and the counter resets with it).
    pub scored: u64,
}

/// The model in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSample {
    /// Model name or file stem.
    pub model: String,
    /// When it was trained, RFC 3339.
    pub trained_at: String,
    /// Version of prescale (or the model format) that trained it.
    pub version: String,
}

/// One workload's short-step budget and how it is being met (`max_short`).
#[derive(Debug, Clone, PartialEq)]
pub struct RiskSample {
    /// The workload.
    pub workload: String,
    /// The budget, a share of steps (0.01 = 1 %).
    pub budget: f64,
    /// Share of steps short over the window; `None` before any step (then not exported).
    pub realised: Option<f64>,
    /// The window the share is over, seconds.
    pub window_seconds: f64,
    /// The forecast level the margin scales (0.99).
    pub level: f64,
    /// The calibrated margin on that level (1.1 = 10 % above it).
    pub margin: f64,
    /// The demand floor, in the demand's unit, while engaged (the margin at its cap and
    /// steps still short: `plan::risk`); `None` otherwise (then not exported).
    pub floor: Option<f64>,
}
