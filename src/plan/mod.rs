//! Planning: from forecasts and the current state to decisions, as plain data.
//!
//! Nothing here does I/O, reads a clock or talks to Prometheus: time and every input are passed
//! in, so the live loop and the simulator run the very same code and a decision can be replayed
//! from its inputs.
//!
//! - `spec`: what the user configures, [`WorkloadSpec`] (`[[workload]]`) and [`PoolSpec`]
//!   (`[[pool]]`), each with `validate()` naming the offending key.
//! - `replicas`: the scale planner, [`ReplicaPlanner`]: forecast-based replicas for the moment
//!   new ones would be ready, never below the reactive need (the larger of the two, the
//!   forecast counted in full however it has fared lately), then guarded (surge, stale data,
//!   unhealthy model, tolerance, stabilisation, max step, bounds).
//! - `nodes`: the node planner, [`NodePlanner`]: placement by forecast headroom, moves off
//!   nodes about to run hot, nodes added a boot time ahead and removed when the forecast allows.
//! - `accuracy`: [`AccuracyTracker`] scores every forecast against what arrived into a forecast
//!   weight, which the decisions' reasons name (`/metrics` has its WAPE and p90 coverage).
//! - `risk`: [`RiskTracker`], a workload's `max_short` budget of under-provisioned steps
//!   turned into the forecast level and margin to provision at, calibrated online.
//! - `believed`: [`BelievedState`], replicas and placement as believed after the decisions,
//!   which the live loop plans against when the cluster does not say.
//! - `cluster`: [`observe_cluster`], the [`ClusterView`] planned from when the cluster is read
//!   (kube-state-metrics, through the collector): pools discovered from a node label,
//!   placements from the pods, replica counts from `spec.replicas`, and what could not be read.
//! - `share`: [`share_pools`], who gets a pool's capacity when the forecast wants more than
//!   it holds at `max_nodes`: by priority, weighted DRF between teams, static shares or bids.
//! - `decision`: [`Decision`], what every planner returns: kind, target, from → to, the inputs
//!   it rests on, the guards that changed it and a one-line reason.
//!
//! A cycle, as the live loop or the simulator runs it:
//!
//! ```
//! use prescale::forecast::Forecast;
//! use prescale::plan::*;
//! use prescale::series::SeriesKey;
//!
//! let spec = WorkloadSpec::new("api", "rps", 50.0, 20);
//! let mut accuracy = AccuracyTracker::new(AccuracyConfig::default());
//! let mut replicas = ReplicaPlanner::new();
//! let forecast = Forecast {
//!     key: SeriesKey::new("rps"),
//!     at: 1_000,
//!     window: 900,
//!     quantiles: vec![(0.5, 300.0), (0.9, 412.0), (0.95, 450.0), (0.99, 520.0)],
//! };
//! accuracy.record(&forecast);
//! let input = WorkloadInput {
//!     current_demand: Some(250.0),
//!     forecast: Some(&forecast),
//!     forecast_weight: accuracy.weight(&spec.demand),
//!     ..WorkloadInput::new(1_000, 5)
//! };
//! let d = replicas.plan(&spec, &input);
//! assert_eq!(d.kind, DecisionKind::ScaleUp);
//! println!("{}\n{d}", Decision::table_header());
//! ```

mod accuracy;
mod believed;
mod cluster;
mod decision;
mod events;
mod nodes;
mod replicas;
mod risk;
mod share;
mod spec;

pub use accuracy::{AccuracyConfig, AccuracyConfigError, AccuracyStats, AccuracyTracker};
pub use believed::{BelievedState, RecordedCounts, StartSource};
pub use cluster::{observe_cluster, ClusterView, DISCOVERED_MAX_NODES, DISCOVERED_MIN_NODES};
pub use decision::{Decision, DecisionKind, Guard, GuardKind};
pub use events::Event;
pub use nodes::{NodePlanner, NodeState, UnknownLoad, WorkloadLoad};
pub use replicas::{ReplicaPlanner, WorkloadInput, POORLY_RATED_WEIGHT};
pub use risk::{
    base_level, Calibrator, CheckedRisk, RiskLevel, RiskStats, RiskTracker, SavedRisk,
    DEFAULT_GAMMA, DEFAULT_SHORT_WINDOW, THETA_MAX, THETA_MIN,
};
pub use share::{
    allocate, guard_kind, share_pools, validate_shares, Allocation, Claim, Granted, ShareReport,
};
pub use spec::{
    parse_quantile, parse_quantity, parse_share, CurrentReplicas, Mode, ObjectKind, ObjectRef,
    ParseValueError, PoolSpec, Resources, SpecError, WorkloadSpec,
};
