//! The file as serde reads it, section by section. Only `config/` sees these: the rest of the
//! program gets the validated types. The collector's and the planners' sections are their own
//! types ([`crate::collect::config`], [`crate::plan`]).

use crate::collect::cluster::RawCluster;
use crate::collect::config::{RawPrometheus, RawSignal};
use crate::plan::{AccuracyConfig, PoolSpec, WorkloadSpec};
use serde::Deserialize;
use std::path::PathBuf;

/// The file as serde reads it. Unknown keys are refused so a typo is an error, not a silently
/// ignored setting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// `[prometheus]`.
    pub prometheus: Option<RawPrometheus>,
    /// `[[signal]]`, in file order.
    #[serde(default)]
    pub signal: Vec<RawSignal>,
    /// `[cluster]`: read the cluster's state (kube-state-metrics) instead of `[[node]]`.
    pub cluster: Option<RawCluster>,
    /// `[run]`: the live loop.
    pub run: Option<RawRun>,
    /// `[export]`: prescale's own /metrics.
    pub export: Option<RawExport>,
    /// `[replay]`: replay CSV history instead of querying Prometheus.
    pub replay: Option<RawReplay>,
    /// `[[workload]]`: what to scale.
    #[serde(default)]
    pub workload: Vec<WorkloadSpec>,
    /// `[[pool]]`: node pools.
    #[serde(default)]
    pub pool: Vec<PoolSpec>,
    /// `[[node]]`: the nodes there are at start, per pool.
    #[serde(default)]
    pub node: Vec<RawNode>,
    /// `[accuracy]`: how the forecast's measured accuracy weights it.
    pub accuracy: Option<AccuracyConfig>,
    /// `[online_calibration]`: the forecast quantiles' online correction.
    pub online_calibration: Option<crate::forecast::OnlineConfig>,
    /// `[kubernetes]`: how to reach the API server.
    pub kubernetes: Option<crate::kubernetes::RawKubernetes>,
    /// `[leader_election]`: one acting replica of several.
    pub leader_election: Option<crate::leader::RawLeaderElection>,
    /// `[shard]`: split the workloads between N replicas.
    pub shard: Option<crate::shard::RawShard>,
}

/// `[run]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRun {
    /// Model file (`models/web.model`).
    pub model: Option<PathBuf>,
    /// Time between cycles; default: the step of the first signal.
    pub interval: Option<String>,
    /// JSON-lines decision log; default `prescale-decisions.jsonl`.
    pub decision_log: Option<PathBuf>,
    /// Where the online calibration's offsets are kept across restarts; default beside the
    /// decision log, `<its stem>.calibration.json`.
    pub calibration_state: Option<PathBuf>,
    /// Command run per scale decision when `--apply` is given: a program and its arguments,
    /// run without a shell, with `{target}`, `{from}`, `{to}`, `{kind}` substituted.
    pub apply_command: Option<String>,
    /// What carries decisions out with `--apply`: `kubernetes` or `command`; default
    /// `command` when `apply_command` is set, `kubernetes` otherwise.
    pub actuator: Option<String>,
    /// How long one `apply_command` may run before it is killed (`30s`).
    pub apply_timeout: Option<String>,
    /// Retrain on the buffers this often (`24h`); off when absent.
    pub retrain_every: Option<String>,
    /// Most points (steps of all series together) one retraining is handed; default 1,000,000.
    pub retrain_max_points: Option<u64>,
    /// Where a retrained model that won is kept across restarts; default beside the decision
    /// log, `<its stem>.retrained.model`.
    pub retrained_model: Option<PathBuf>,
    /// Time ranges left out of retraining (`[{ from = "…", to = "…" }]`): their samples are
    /// gaps for training, as `prescale train --exclude` makes them.
    pub retrain_exclude: Option<Vec<crate::series::TimeRange>>,
    /// History after which a workload's own model is tried against the global one (`4d`), or
    /// `off`.
    pub own_model_after: Option<String>,
    /// Stop after this many cycles; default: run until stopped (or the replay ends).
    pub cycles: Option<u64>,
    /// Print holds in the dry-run table, not only changes.
    pub show_holds: Option<bool>,
}

/// `[export]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExport {
    /// Listen address for /metrics, /healthz, /readyz; default `127.0.0.1:9464`.
    pub listen: Option<String>,
    /// Set to false to serve nothing.
    pub enabled: Option<bool>,
    /// Listen address of the KEDA external scaler (gRPC); none by default.
    pub keda_listen: Option<String>,
}

/// `[replay]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplay {
    /// Signal the replayed series belong to (a `[[signal]]` name).
    pub signal: String,
    /// History files (`timestamp,value` or `timestamp,series,value`).
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// A directory whose `*.csv` files are all replayed.
    pub dir: Option<PathBuf>,
    /// Replay seconds per wall-clock second; default 600 (a 5-minute step every 0.5 s).
    pub speed: Option<f64>,
    /// History replayed before the first cycle, so features have what they need; default 8d.
    pub warmup: Option<String>,
    /// Lets `--apply` act on decisions made from replayed history; default false.
    #[serde(default)]
    pub allow_apply: bool,
}

/// `[[node]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    /// Node name.
    pub name: String,
    /// Pool it belongs to (a `[[pool]]` name).
    pub pool: String,
}
