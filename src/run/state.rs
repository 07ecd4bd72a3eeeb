//! What the loop keeps between cycles ([`Loop`]), and how `run` builds it: the planners and
//! trackers that carry state from one cycle to the next, the model, the act stage, and the
//! optional readers (replica queries, the cluster, the other shards) that the configuration
//! switches on. The cycle itself is `cycle`'s; each stage's part of `Loop` lives with its stage.

use super::bookkeeping::PerSeries;
use crate::act::Act;
use crate::collect::{ClusterReader, ReplicaReader, SignalStats};
use crate::config::Config;
use crate::export::ExportState;
use crate::forecast::{Model, OwnModels, Retrainer, StageView};
use crate::leader::Leadership;
use crate::plan::{
    BelievedState, NodePlanner, PoolSpec, RecordedCounts, ReplicaPlanner, RiskTracker, WorkloadSpec,
};
use crate::series::SeriesMap;
use crate::shard::NodePlanning;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Everything the loop keeps between cycles.
pub(super) struct Loop {
    /// The workloads this replica plans; replaced through [`Loop::set_workloads`] only, which
    /// keeps `planned_series` in step.
    pub(super) workloads: Vec<WorkloadSpec>,
    /// The series `workloads` plan with, each with whether a cycle keeps its uncorrected
    /// forecast too ([`planned_series`]).
    pub(super) planned_series: SeriesMap<bool>,
    pub(super) pools: Vec<PoolSpec>,
    pub(super) model: Arc<Model>,
    pub(super) model_name: String,
    pub(super) act: Act,
    pub(super) export: Arc<ExportState>,
    pub(super) replicas: ReplicaPlanner,
    pub(super) nodes: NodePlanner,
    /// Per series: accuracy, online calibration, exporter ids; bounded by the store's series.
    pub(super) series: PerSeries,
    /// What is kept across restarts (`persist`): the online offsets and risk ledgers.
    pub(super) persisted: Persisted,
    /// Per workload, this cycle: the online correction's factor at its planning level.
    pub(super) calibration: Vec<(String, f64)>,
    /// Per workload with `max_short`: the calibrated margin and the realised short share.
    pub(super) risk: RiskTracker,
    pub(super) believed: BelievedState,
    pub(super) retrainer: Retrainer,
    /// Per-series own models and their background contests (`run.own_model_after`).
    pub(super) own: OwnModels,
    /// Each workload's cold-start stage this cycle, in configuration order.
    pub(super) stages: Vec<(String, StageView)>,
    /// `run.retrain_exclude`: ranges retraining sees as gaps.
    pub(super) retrain_exclude: Vec<crate::series::TimeRange>,
    /// `run.retrain_max_points`: most points one retraining is handed.
    pub(super) retrain_max_points: usize,
    pub(super) cycles_limit: Option<u64>,
    /// Collector counters at the last snapshot, to export what is new each cycle.
    pub(super) last_stats: HashMap<String, SignalStats>,
    /// Reads `current_replicas` queries (Prometheus mode only).
    pub(super) replica_reader: Option<ReplicaReader>,
    /// Workloads whose replica query failed this cycle: their data counts as stale.
    pub(super) replicas_unknown: HashSet<String>,
    /// The counts the decision log recorded, until the first cycle recovers from them (after
    /// its replica reads, which win over the log).
    pub(super) recorded: Option<RecordedCounts>,
    /// Reads the cluster's state each cycle (`[cluster]`); `None`: the `[[node]]` list and
    /// the loop's own decisions are the cluster.
    pub(super) cluster: Option<ClusterReader>,
    /// The workloads and pools as configured; with `[cluster]`, `workloads` and `pools` are
    /// these as the last read of the cluster made them.
    pub(super) configured: (Vec<WorkloadSpec>, Vec<PoolSpec>),
    /// Workloads whose replica count the cluster did not give this cycle, with why.
    pub(super) state_unknown: BTreeMap<String, String>,
    /// Why nodes and placements were not read this cycle, if they were not.
    pub(super) nodes_unknown: Option<String>,
    /// Whether this replica plans the node pools: unsharded, ordinal 0 of several, or the
    /// Lease holder of several (`shard`).
    pub(super) plans_nodes: NodeRole,
    /// On ordinal 0 of several: the other shards' workloads, whose loads the node planner
    /// takes from `remote`; as configured (`.1`) and as the last cluster read made them (`.0`).
    pub(super) others: Vec<WorkloadSpec>,
    pub(super) others_configured: Vec<WorkloadSpec>,
    /// Reads the other shards' loads back from Prometheus (ordinal 0 in Prometheus mode).
    pub(super) shard_reader: Option<crate::shard::readback::ShardReader>,
    /// This cycle's read-back of the other shards' loads.
    pub(super) remote: crate::shard::readback::ReadBack,
    /// Which other shards none of whose plans could be read back, and since when.
    pub(super) stale: crate::shard::Staleness,
    /// Checks each cycle that every shard in view runs with this one's count (sharded, in
    /// Prometheus mode); its last answer is the act stage's hold ([`Act::held`]).
    pub(super) shard_check: Option<crate::shard::agree::ShardCheck>,
    /// Reads true once `run` is asked to stop (SIGTERM, SIGINT); set by `drive`. The cycle's
    /// reads (backfill, poll, replica read) give up at it: each can take a timeout times its
    /// retries per signal or workload, minutes against a pod's 30-second grace period.
    pub(super) stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Loop {
    pub(super) fn new(
        cfg: &Config,
        model: Model,
        model_name: String,
        act: Act,
        export: Arc<ExportState>,
    ) -> Self {
        let live = &cfg.live;
        // Only what is saved needs it, and it costs an encoding of the whole model.
        let fingerprint = (live.online_calibration.enabled || live.retrain_every.is_some())
            .then(|| model.fingerprint());
        Loop {
            workloads: live.workloads.clone(),
            planned_series: planned_series(&live.workloads, live.online_calibration.enabled),
            pools: live.pools.clone(),
            model: Arc::new(model),
            model_name,
            act,
            export,
            replicas: ReplicaPlanner::new(),
            nodes: NodePlanner::new(),
            series: PerSeries::new(live.accuracy, live.online_calibration),
            persisted: Persisted::new(
                live.calibration_state.clone(),
                fingerprint.filter(|_| live.online_calibration.enabled),
                live.retrained_model.clone(),
                fingerprint.filter(|_| live.retrain_every.is_some()),
            ),
            calibration: Vec::new(),
            risk: RiskTracker::new(),
            believed: BelievedState::new(&live.nodes, &live.workloads),
            retrainer: Retrainer::new(live.retrain_every),
            own: OwnModels::new(live.own_model_after),
            stages: Vec::new(),
            retrain_exclude: live.retrain_exclude.clone(),
            retrain_max_points: live.retrain_max_points,
            cycles_limit: live.cycles,
            last_stats: HashMap::new(),
            replica_reader: None,
            replicas_unknown: HashSet::new(),
            recorded: None,
            cluster: None,
            configured: (live.workloads.clone(), live.pools.clone()),
            state_unknown: BTreeMap::new(),
            nodes_unknown: None,
            plans_nodes: NodeRole::of(cfg),
            others: Vec::new(),
            others_configured: Vec::new(),
            shard_reader: None,
            remote: Default::default(),
            stale: crate::shard::Staleness::new(cfg.shard.replicas),
            shard_check: None,
            stop: None,
        }
    }

    /// Replaces the workloads planned (with `[cluster]`, by each cycle's read of them), and
    /// with them the series whose uncorrected forecast the cycle keeps.
    pub(super) fn set_workloads(&mut self, workloads: Vec<WorkloadSpec>) {
        self.planned_series = planned_series(&workloads, self.series.online.enabled());
        self.workloads = workloads;
    }

    /// Drops the risk ledgers of workloads not planned here with a `max_short` budget.
    pub(super) fn retain_risk(&mut self) {
        let workloads = &self.workloads;
        self.risk.retain(|name| {
            workloads
                .iter()
                .any(|w| w.name == name && w.max_short.is_some())
        });
    }

    /// Starts from the counts a previous run recorded, where the cluster does not say.
    pub(super) fn with_recorded(mut self, recorded: RecordedCounts) -> Self {
        self.recorded = Some(recorded);
        self
    }

    /// Plans the node pools for `others` too, the other shards' workloads (ordinal 0).
    pub(super) fn with_others(mut self, others: Vec<WorkloadSpec>) -> Self {
        self.others_configured = others.clone();
        self.others = others;
        self
    }

    /// Reads the cluster's state through `reader` each cycle.
    pub(super) fn with_cluster(mut self, reader: ClusterReader) -> Self {
        self.cluster = Some(reader);
        self
    }

    /// Reads workloads' `current_replicas` queries through `reader` each cycle.
    pub(super) fn with_replica_queries(mut self, reader: ReplicaReader) -> Self {
        self.replica_reader = Some(reader);
        self
    }
}

/// Whether the loop plans the node pools in a cycle.
#[derive(Debug, Clone)]
pub(super) enum NodeRole {
    /// Every cycle (unsharded, or ordinal 0 without leader election).
    Always,
    /// Never: another shard plans them, or (until [`Loop::with_node_leadership`]) the Lease
    /// holder does.
    Never,
    /// In the cycles this replica holds the Lease (sharded with leader election).
    WhileLeading(Leadership),
}

impl NodeRole {
    /// The role before any Lease is handed over: from `[shard]` and whether a leader is elected.
    pub(super) fn of(cfg: &Config) -> Self {
        match cfg.shard.node_planning(cfg.leader.is_some()) {
            NodePlanning::Here => NodeRole::Always,
            NodePlanning::Elsewhere | NodePlanning::WhileLeading => NodeRole::Never,
        }
    }

    /// True when the node pools are planned now. Asked when the cycle plans them, so a leader
    /// whose Lease lapsed in the cycle plans none: another shard may hold it by then.
    pub(super) fn now(&self) -> bool {
        match self {
            NodeRole::Always => true,
            NodeRole::Never => false,
            NodeRole::WhileLeading(l) => l.is_leader(),
        }
    }
}

/// The state file kept across restarts, as the loop keeps it (`persist` reads and writes it).
pub(super) struct Persisted {
    pub(super) path: PathBuf,
    /// Fingerprint of the model the offsets are learnt against and a restart loads: `run.model`,
    /// or the retrained model kept in `retrained_path`; `None` with the online calibration off.
    pub(super) model: Option<u32>,
    /// `run.retrained_model`.
    pub(super) retrained_path: PathBuf,
    /// Fingerprint of `run.model` as loaded; `None` with retraining off.
    pub(super) root: Option<u32>,
    /// Which retrained model `retrained_path` holds, once one was kept there (or restored).
    pub(super) retrained: Option<super::persist::file::Retrained>,
    /// Once the loop has put in place a model a restart could not load (its file not written):
    /// the offsets learnt for the last model a restart would load, saved in place of the new
    /// model's.
    pub(super) frozen: Option<super::persist::file::SavedState>,
    /// Read at start-up; restored at the first cycle when it may be.
    pub(super) loaded: Option<super::persist::file::Loaded>,
    pub(super) last_save: Option<Instant>,
}

impl Persisted {
    /// Saving to `path`, the offsets being `model`'s (its fingerprint; `None`: calibration off);
    /// a retrained model kept in `retrained_path`, retrained from the model of fingerprint
    /// `root` (`None`: retraining off).
    pub(super) fn new(
        path: PathBuf,
        model: Option<u32>,
        retrained_path: PathBuf,
        root: Option<u32>,
    ) -> Self {
        Persisted {
            path,
            model,
            retrained_path,
            root,
            retrained: None,
            frozen: None,
            loaded: None,
            last_save: None,
        }
    }
}

/// The series workloads plan with (their demand), each with whether a cycle keeps its forecast
/// before the online correction too: the demand series of workloads with `max_short`, which
/// plan on it (`Forecasts::for_workload`), and with the correction `online`, every workload's,
/// whose calibration factor compares the two
/// ([`calibration_reasons`](Loop::calibration_reasons)). A cycle forecasts every series (the
/// exporter shows them all) but keeps per-series maps for these only: at the scale target
/// (100,000 series, ten per workload) maps of every series cost a key copy, an entry and a
/// forecast's memory per series each cycle for what only the workloads read. The loop holds
/// the map with its workloads ([`Loop::set_workloads`]).
pub(super) fn planned_series(workloads: &[WorkloadSpec], online: bool) -> SeriesMap<bool> {
    let mut planned = SeriesMap::default();
    for w in workloads {
        let raw = planned.entry(w.demand.clone()).or_insert(false);
        *raw |= online || w.max_short.is_some();
    }
    planned
}
