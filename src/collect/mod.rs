//! Collect: Prometheus (or a CSV replay) → fixed-step series buffers, with health.
//!
//! - `config`: the `[prometheus]` and `[[signal]]` sections this stage owns, with their
//!   defaults and validation; `crate::config` reads the file and hands them over, and nothing
//!   here looks at the rest of it.
//! - [`prometheus`]: a small typed client for the Prometheus HTTP API; the answers' shapes are in
//!   `wire.rs`, read by the hand-written reader in `json.rs`.
//! - [`Source`]: the seam between where samples come from ([`PrometheusSource`], [`Replay`])
//!   and the [`Collector`], which backfills `lookback` in chunks under Prometheus' 11,000-point
//!   limit, then polls on the step grid, re-fetching a small overlap for late samples.
//! - [`Store`]: one bounded [`Ring`](crate::series::Ring) per series, memory fixed by the
//!   configuration; vanished series go stale, then are dropped.
//!
//! Faults (timeouts, refused connections, 5xx, garbled bodies) are retried with capped
//! exponential backoff and full jitter; a poll that still fails keeps everything held and shows
//! up in [`SignalHealth`] and [`SignalStats`], which the planner and the exporter read. A query
//! Prometheus rejects fails [`Collector::connect`], quoting Prometheus' message. Daemons start
//! with [`Collector::connect_waiting`] instead, which waits (with the same backoff, reporting
//! each try as a [`Waiting`]) for as long as Prometheus is unreachable, until stopped.
//!
//! - [`restrict`]: a signal's query narrowed to the series one shard plans (`[shard]`); the
//!   collector also drops every other series on arrival ([`Collector::keep_only`]).
//! - [`cluster`]: the cluster's state (nodes, pools, workloads, pods and their requests) read
//!   from kube-state-metrics series each cycle ([`ClusterReader`] → [`ClusterState`]), with the
//!   `[cluster]` section it owns.
//!
//! This stage never calls forecast or plan; they read [`Collector::store`] and [`ClusterState`].

pub mod cluster;
mod collector;
pub(crate) mod config;
mod json;
pub mod prometheus;
mod redact;
mod replicas;
pub mod restrict;
mod source;
mod store;
mod wire;

pub use cluster::{ClusterConfig, ClusterReader, ClusterState};
pub use collector::{
    export_csv, series_key, unix_now, Backoff, Collector, HealthState, PollReport, RetryPolicy,
    SignalHealth, SignalPoll, SignalStats, Waiting, STARTUP_BACKOFF,
};
pub use config::{
    default_overlap_steps, Auth, PrometheusConfig, Secret, SignalConfig, DEFAULT_DROP_AFTER,
    DEFAULT_MAX_SERIES, DEFAULT_OVERLAP_SECONDS, DEFAULT_OVERLAP_STEPS, DEFAULT_TIMEOUT,
};
pub use prometheus::{PromClient, PromError};
pub use replicas::ReplicaReader;
pub use source::{PrometheusSource, Replay, Source, SourceError};
pub use store::{IngestStats, SeriesEntry, SignalStore, Store};

use std::path::PathBuf;

/// Why collection could not start or its output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The configuration has no `[[signal]]`.
    #[error("no [[signal]] configured: nothing to collect")]
    NoSignals,
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Client(PromError),
    /// A signal's start-up check failed (e.g. Prometheus rejected the PromQL).
    // Fields are not named `source`: the text is in this message already, and a source would
    // print it twice under `{:#}`.
    #[error("signal '{signal}': start-up check failed: {error}")]
    Check {
        /// The signal.
        signal: String,
        /// Why; for a rejected query, Prometheus' own message.
        error: SourceError,
    },
    /// The async runtime could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    /// Some signals could not be collected (the others were exported).
    #[error("not every signal was collected:\n  {}", failed.join("\n  "))]
    Incomplete {
        /// `signal: error` per failed signal.
        failed: Vec<String>,
    },
    /// Writing an export file failed.
    #[error("exporting to {path}: {error}")]
    Export {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: crate::series::CsvError,
    },
}
