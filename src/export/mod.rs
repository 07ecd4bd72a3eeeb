//! Export: prescale's own `/metrics` (OpenMetrics, or the classic text format for clients that
//! do not ask for OpenMetrics), `/healthz` and `/readyz`; and, on a port of its own when
//! `export.keda_listen` is set, KEDA's external-scaler gRPC interface ([`keda`]), which serves
//! the same cycle's forecasts and replica counts to a ScaledObject.
//!
//! This stage is deliberately decoupled from the rest of the pipeline: it defines a plain
//! [`Snapshot`] of what one cycle knows (forecast quantiles, replica and node
//! recommendations, decisions, signal health, forecast accuracy, the model in use, the cycle's
//! duration), and the live loop copies its values into one and hands it over. Nothing here
//! imports the collector's or planner's types, so each side can change without the other; the
//! exceptions are [`DecisionKind::ALL`](crate::plan::DecisionKind::ALL) and
//! [`Outcome::LABELS`](crate::act::Outcome::LABELS), the lists of decision kinds and outcomes
//! whose counters start at 0, so that each is spelled in one place only.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use prescale::export::{serve, ExportState, Metrics, Snapshot};
//!
//! let state = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(30)));
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let exporter = serve(
//!     prescale::export::DEFAULT_ADDR.parse().unwrap(),
//!     state.clone(),
//!     async { let _ = stopped.await; },
//! )
//! .await?;
//! // ... every cycle:
//! state.cycle_finished(&Snapshot { cycle_seconds: 0.2, ..Snapshot::default() });
//! // ... on shutdown:
//! let _ = stop.send(());
//! exporter.stopped().await
//! # }
//! ```
//!
//! # Metrics
//!
//! Names follow Prometheus conventions (units in the name, `_total` on counters), and
//! `dashboards/prescale-grafana.json` queries exactly these (a test checks it):
//!
//! | name | type | labels |
//! | --- | --- | --- |
//! | `prescale_forecast` | gauge | series labels, `level` |
//! | `prescale_forecast_window_seconds` | gauge | series labels |
//! | `prescale_observed_demand` | gauge | series labels |
//! | `prescale_recommended_replicas`, `prescale_current_replicas` | gauge | `workload` |
//! | `prescale_recommended_nodes` | gauge | `pool` |
//! | `prescale_forecast_shortfall` | gauge (nodes) | `pool` |
//! | `prescale_allocation_cut_replicas` | gauge | `workload` |
//! | `prescale_decisions_total` | counter | `kind` |
//! | `prescale_actions_total` | counter | `workload`, `outcome` |
//! | `prescale_actuator_failures_total` | counter | `workload` |
//! | `prescale_collection_errors_total` | counter | `signal`, `kind` |
//! | `prescale_signal_up`, `prescale_data_staleness_seconds` | gauge | `signal` |
//! | `prescale_forecast_wape`, `prescale_forecast_p90_coverage` | gauge | series labels |
//! | `prescale_forecasts_scored_total` | counter | series labels |
//! | `prescale_short_share`, `prescale_short_budget` | gauge (share) | `workload` |
//! | `prescale_risk_level`, `prescale_risk_margin`, `prescale_risk_floor` | gauge | `workload` |
//! | `prescale_forecast_calibration` | gauge (factor) | `workload` |
//! | `prescale_cycle_duration_seconds` | histogram | |
//! | `prescale_cycles_total` | counter | |
//! | `prescale_last_cycle_timestamp_seconds` | gauge | |
//! | `prescale_model_info` | gauge (1) | `model`, `trained_at`, `version` |
//! | `prescale_build_info` | gauge (1) | `version` |
//! | `prescale_keda_requests_total` | counter | `method`, `code` |
//! | `prescale_leader` | gauge (0/1) | |
//! | `prescale_lease_transitions` | gauge | |
//! | `prescale_shard_info` | gauge (1) | `ordinal`, `replicas` |
//! | `prescale_shard_workloads` | gauge | |
//! | `prescale_shard_stale` | gauge (0/1) | `shard` |
//! | `prescale_forecast_utilization` | gauge (share) | `workload` |
//! | `prescale_plan_timestamp_seconds` | gauge | `workload` |
//! | `prescale_cluster_state_known` | gauge (0/1) | `workload` |
//!
//! *Series labels* are `signal` and the series' own labels (see [`SeriesId`]), e.g.
//! `prescale_forecast{signal="rps",service="api",level="0.9"}`.
//!
//! Label sets missing from a snapshot are removed, so `/metrics` does not grow with churn.

pub mod keda;
mod metrics;
mod server;
mod snapshot;

pub use metrics::{
    decision_kinds, Metrics, ACTION_OUTCOMES, COLLECTION_ERROR_KINDS, CYCLE_BUCKETS,
    FORECAST_STAGES, KEDA_METHODS,
};
pub use server::{
    router, serve, ExportState, Exporter, NotReady, Stalled, HEADER_READ_TIMEOUT, LIVENESS_FACTOR,
    OPENMETRICS_CONTENT_TYPE, REQUEST_TIMEOUT, SHUTDOWN_GRACE, TEXT_CONTENT_TYPE,
};
pub use snapshot::{
    AccuracySample, ActionSample, ForecastSample, ModelSample, PoolSample, RiskSample,
    ScalerSample, SeriesId, SignalSample, Snapshot, WorkloadSample,
};

/// Where the exporter listens unless configured otherwise: loopback only, so exposing it is a
/// deliberate choice; 9464 is the port commonly used by OpenTelemetry's Prometheus exporters.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";
