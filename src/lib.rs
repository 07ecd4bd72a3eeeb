//! prescale: a predictive autoscaler.
//!
//! # Layout
//!
//! The crate is a one-way pipeline; each stage takes a plain value from the one before and
//! never calls back up the chain:
//!
//! - [`series`]: fixed-step time series ([`series::Series`], the bounded [`series::Ring`]),
//!   CSV history in and out, resampling and the gap rules. Every other stage speaks in these.
//! - [`collect`]: Prometheus (or a CSV replay) → one bounded ring per series, with backfill,
//!   incremental polls, retries and per-signal health.
//! - [`forecast`]: features (one code path offline and live), the quantile regression forest,
//!   calibrated model files, backtests against baselines.
//! - [`plan`]: forecasts and current state in, [`plan::Decision`]s out: the scale planner, the
//!   node planner, their guards and the accuracy tracker that weights the forecast. Plain data,
//!   no I/O or clocks, so the live loop and the simulator share it.
//! - [`act`]: decisions shown as a dry-run table and appended to a JSON-lines log; applied
//!   through a command template only when asked.
//! - [`export`]: prescale's own `/metrics`, `/healthz` and `/readyz`, fed a plain
//!   [`export::Snapshot`] by the live loop.
//! - [`sim`]: replays a trace through scaling policies (prescale's planner, the HPA rule, a
//!   static size, the oracle) and scores them; sweeps their risk knobs; runs task lists through
//!   queue disciplines and placement strategies.
//!
//! [`run`] is the live loop that wires the stages together (the source being Prometheus or a
//! replay of CSV history is its only seam); `sim` replays traces through the same planner.
//!
//! Around the stages: [`config`] (`prescale.toml`, validated once at start-up), [`atomic_file`] (crash-safe writes for models, logs and reports) and
//! [`chart`] (PNG charts for reports). The `prescale` command line lives in the binary
//! (`src/cli/`), so the library never names `clap` or `anyhow`.

#![warn(missing_docs)]

pub mod act;
pub mod atomic_file;
pub mod chart;
pub mod collect;
pub mod config;
pub mod export;
pub mod forecast;
pub mod plan;
pub mod run;
pub mod series;
pub mod sim;
