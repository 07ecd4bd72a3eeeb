//! prescale: a predictive autoscaler.
//!
//! # Layout
//!
//! The crate is a one-way pipeline; each stage takes a plain value from the one before and
//! never calls back up the chain:
//!
//! ```text
//! series ─→ collect ─→ forecast ─→ plan ─→ act
//!                                      └──→ export      sim: a trace through forecast + plan
//! ```
//!
//! - [`series`]: fixed-step time series ([`series::Series`], the bounded [`series::Ring`]),
//!   CSV history in and out, resampling and the gap rules. Every other stage speaks in these.
//! - [`collect`]: Prometheus (or a CSV replay) → one bounded ring per series, with backfill,
//!   incremental polls, retries and per-signal health; it owns its `[prometheus]` and
//!   `[[signal]]` sections and reads current replica counts ([`collect::ReplicaReader`]) and,
//!   with `[cluster]`, the cluster's state from kube-state-metrics ([`collect::cluster`]:
//!   nodes, pools, workloads, pods and their requests, as a plain [`collect::ClusterState`]).
//! - [`forecast`]: features (one code path offline and live), the quantile regression forest,
//!   calibrated model files, the quantiles' online calibration per series (the upper levels'
//!   offsets, the median's online choice)
//!   ([`forecast::online`], the same code in the live loop and in backtests), backtests against
//!   baselines, and retraining with model selection ([`forecast::Retrainer`]).
//! - [`plan`]: forecasts and current state in, [`plan::Decision`]s out: the scale planner, the
//!   node planner, their guards, the accuracy tracker that weights the forecast, and the
//!   cluster as believed after the decisions ([`plan::BelievedState`]) or as read
//!   ([`plan::observe_cluster`]: discovered pools, real placements). Plain data, no I/O or
//!   clocks, so the live loop and the simulator share it.
//! - [`act`]: decisions shown as a dry-run table and appended to a JSON-lines log, whose tail
//!   is read back at start-up so a restart goes on from its last counts; applied only when
//!   asked (`--apply`, and per workload `mode = "auto"`) through the Kubernetes API's `scale`
//!   subresource ([`act::KubeActuator`]) or a command template (run without a shell); every
//!   decision's outcome recorded.
//! - [`export`]: prescale's own `/metrics`, `/healthz` and `/readyz`, and KEDA's external-scaler
//!   gRPC interface ([`export::keda`], generated code committed), all fed a plain
//!   [`export::Snapshot`] by the live loop.
//! - [`sim`]: `replay` runs a trace through scaling policies (prescale's planner, the HPA rule,
//!   persistence plus margin, a static size, the oracle), scores them and tunes each one's
//!   risk knob to the same budget, and (`replay::shared`) replays several traces on one capped
//!   pool under each of `plan::share`'s allocation policies; `batch` runs task lists through queue disciplines,
//!   placement strategies, allocation policies between tenants and an elastic pool.
//!
//! Around the stages: [`run()`] is the live loop (clock, cycle, snapshot for the exporter,
//! shutdown: wiring only; the source, Prometheus or a replay of CSV history, is its one seam,
//! and the cluster view, read each cycle or the `[[node]]` list, the other);
//! [`leader`] elects the one replica of several that acts, through a Kubernetes Lease
//! (`[leader_election]`; the live loop hands [`act`] its [`leader::Leadership`], asked before
//! every change), reaching the API server as [`kubernetes`] (`[kubernetes]`) configures;
//! [`shard`] splits the workloads between N replicas by rendezvous hashing (`[shard]`), each
//! planning its own share, and ordinal 0 (or, with leader election, the Lease holder) the node
//! pools, from every shard's per-workload load read back from Prometheus ([`shard::readback`]);
//! [`config`] reads `prescale.toml` once and validates it, each stage owning its section's
//! type; [`atomic_file`] gives crash-safe writes for models, logs and reports; [`chart`] draws
//! PNG charts for reports. The `prescale` command line lives in the binary (`src/cli/`, one
//! file per subcommand), so the library never names `clap` or `anyhow`.
//!
//! Each stage has its own `thiserror` error type naming what a user needs to fix the input
//! (file and line, key, series, flag); only the binary turns them into `anyhow` errors.

#![warn(missing_docs)]

pub mod act;
pub mod atomic_file;
pub mod chart;
pub mod collect;
pub mod config;
pub mod export;
pub mod forecast;
pub mod kubernetes;
pub mod leader;
pub mod plan;
mod run;
pub mod series;
pub mod shard;
pub mod sim;

pub use run::{run, RunError, RunOptions, RunSummary, StateError, Stepper, DEMO_CONFIG};
