//! One cycle of the live loop, and the loop that repeats it.
//!
//! A cycle reads as the pipeline does: poll the collector, read current replicas, then
//! [`Loop::cycle`]: forecast every series, plan every workload (and the node pools), act on the
//! decisions, believe them carried out, and hand the exporter a snapshot. Then retraining (of
//! the global model, and of own models: `stages`) gets its turn, and the clock decides whether
//! there is another cycle.

use super::clock::Clock;
use super::{RunError, RunOptions, RunSummary};
use crate::act::{Act, Outcome};
use crate::collect::{
    ClusterReader, Collector, HealthState, ReplicaReader, SignalStats, Source, Store,
};
use crate::config::Config;
use crate::export::ExportState;
use crate::forecast::{Forecast, Model, OnlineCalibration, OwnModels, Retrainer, StageView};
use crate::plan::share_pools;
use crate::plan::{
    AccuracyTracker, BelievedState, CurrentReplicas, Decision, DecisionKind, NodePlanner, PoolSpec,
    RecordedCounts, ReplicaPlanner, RiskTracker, StartSource, WorkloadInput, WorkloadLoad,
    WorkloadSpec,
};
use crate::series::SeriesKey;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Everything the loop keeps between cycles.
pub(super) struct Loop {
    pub(super) workloads: Vec<WorkloadSpec>,
    pub(super) pools: Vec<PoolSpec>,
    pub(super) model: Arc<Model>,
    pub(super) model_name: String,
    pub(super) act: Act,
    pub(super) export: Arc<ExportState>,
    pub(super) replicas: ReplicaPlanner,
    pub(super) nodes: NodePlanner,
    pub(super) accuracy: AccuracyTracker,
    /// Per series: the online correction of its forecast quantiles (`[online_calibration]`).
    pub(super) online: OnlineCalibration,
    /// Per workload, this cycle: the online correction's factor at its planning level.
    pub(super) calibration: Vec<(String, f64)>,
    /// Per workload with `max_short`: the calibrated margin and the realised short share.
    pub(super) risk: RiskTracker,
    pub(super) believed: BelievedState,
    /// Newest timestamp already shown to the accuracy tracker, per series.
    pub(super) observed: HashMap<SeriesKey, i64>,
    pub(super) retrainer: Retrainer,
    /// Per-series own models and their background contests (`run.own_model_after`).
    pub(super) own: OwnModels,
    /// Each workload's cold-start stage this cycle, in configuration order.
    pub(super) stages: Vec<(String, StageView)>,
    /// `run.retrain_exclude`: ranges retraining sees as gaps.
    pub(super) retrain_exclude: Vec<crate::series::TimeRange>,
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
    /// Whether this replica plans the node pools: unsharded, or ordinal 0 of several (`shard`).
    pub(super) plans_nodes: bool,
    /// On ordinal 0 of several: the other shards' workloads, whose loads the node planner
    /// takes from `remote`; as configured (`.1`) and as the last cluster read made them (`.0`).
    pub(super) others: Vec<WorkloadSpec>,
    pub(super) others_configured: Vec<WorkloadSpec>,
    /// Reads the other shards' loads back from Prometheus (ordinal 0 in Prometheus mode).
    pub(super) shard_reader: Option<crate::shard::readback::ShardReader>,
    /// This cycle's read-back of the other shards' loads.
    pub(super) remote: crate::shard::readback::ReadBack,
}

/// One cycle's forecasts, as the planner and the exporter read them.
struct Forecasts {
    /// Per series: the forecast the planner uses (if one could be made; widened while the
    /// history is short) and its newest finite value.
    by_key: HashMap<SeriesKey, (Option<Forecast>, Option<f64>)>,
    /// Per series: its cold-start stage.
    views: HashMap<SeriesKey, StageView>,
    /// Every forecast made, with its series' newest value, in the order forecast.
    made: Vec<(Forecast, Option<f64>)>,
    /// Series whose data are stale: old, marked stale by the store, or of an unhealthy signal.
    stale: HashSet<SeriesKey>,
    /// Per series: the forecast before its online correction.
    raw: HashMap<SeriesKey, Forecast>,
}

/// What forecasting takes for one series: its key, its newest values and their first timestamp.
type Input = (SeriesKey, Vec<f64>, i64);

impl Loop {
    pub(super) fn new(
        cfg: &Config,
        model: Model,
        model_name: String,
        act: Act,
        export: Arc<ExportState>,
    ) -> Self {
        let live = &cfg.live;
        Loop {
            workloads: live.workloads.clone(),
            pools: live.pools.clone(),
            model: Arc::new(model),
            model_name,
            act,
            export,
            replicas: ReplicaPlanner::new(),
            nodes: NodePlanner::new(),
            accuracy: AccuracyTracker::new(live.accuracy),
            online: OnlineCalibration::new(live.online_calibration),
            calibration: Vec::new(),
            risk: RiskTracker::new(),
            believed: BelievedState::new(&live.nodes, &live.workloads),
            observed: HashMap::new(),
            retrainer: Retrainer::new(live.retrain_every),
            own: OwnModels::new(live.own_model_after),
            stages: Vec::new(),
            retrain_exclude: live.retrain_exclude.clone(),
            cycles_limit: live.cycles,
            last_stats: HashMap::new(),
            replica_reader: None,
            replicas_unknown: HashSet::new(),
            recorded: None,
            cluster: None,
            configured: (live.workloads.clone(), live.pools.clone()),
            state_unknown: BTreeMap::new(),
            nodes_unknown: None,
            plans_nodes: cfg.shard.plans_nodes(),
            others: Vec::new(),
            others_configured: Vec::new(),
            shard_reader: None,
            remote: Default::default(),
        }
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

    /// Recovers the believed state from the first cycle's replica reads and the log. Nodes
    /// read from the cluster are what is there: the log's node counts are not recovered.
    fn recover(&mut self, read: &BTreeMap<String, u32>, recorded: &RecordedCounts) {
        let pools: &[PoolSpec] = match self.cluster {
            Some(_) => &[],
            None => &self.pools,
        };
        let sources = self
            .believed
            .recover(&self.workloads, pools, read, recorded);
        for (target, n, source) in sources {
            let from = match source {
                StartSource::Cluster => "read from the cluster",
                StartSource::Log => "the decision log's last record",
                StartSource::Config => "the configuration",
            };
            match self.believed.start_note(&target) {
                // Also in the target's first decision, which for a pool may come cycles later.
                Some(note) => tracing::warn!("'{target}' {note}"),
                None => tracing::info!("'{target}' starts from {n} ({from})"),
            }
        }
    }

    /// Reads workloads' `current_replicas` queries through `reader` each cycle.
    pub(super) fn with_replica_queries(mut self, reader: ReplicaReader) -> Self {
        self.replica_reader = Some(reader);
        self
    }

    /// Runs cycles until the limit, the end of a replay or a stop request; flushes the log.
    pub(super) async fn drive<S: Source + Send + Sync>(
        mut self,
        mut collector: Collector<S>,
        mut clock: Clock,
        opts: &RunOptions,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<RunSummary, RunError> {
        let limit = if opts.once {
            Some(1)
        } else {
            opts.cycles.or(self.cycles_limit)
        };
        let mut summary = RunSummary::default();
        let report = collector.backfill(clock.now()).await;
        for s in report.signals.iter().filter(|s| s.error.is_some()) {
            tracing::warn!(
                "backfill of '{}' failed: {}",
                s.signal,
                s.error.as_deref().unwrap_or("")
            );
        }
        self.retrainer.start(clock.now());
        loop {
            let started = Instant::now();
            let now = clock.now();
            if summary.cycles > 0 {
                let report = collector.poll(now).await;
                for s in report.signals.iter().filter(|s| s.error.is_some()) {
                    tracing::warn!(
                        "poll of '{}' failed: {}",
                        s.signal,
                        s.error.as_deref().unwrap_or("")
                    );
                }
            }
            let read = self.read_replicas(now).await;
            if let Some(recorded) = self.recorded.take() {
                self.recover(&read, &recorded);
            }
            self.read_other_shards(now).await;
            let decisions = self
                .cycle(&collector, now, started, summary.cycles + 1)
                .await?;
            summary.cycles += 1;
            let holds = decisions.iter().filter(|d| d.is_hold()).count();
            summary.holds += holds;
            summary.changes += decisions.len() - holds;
            self.maybe_retrain(&collector, now).await;
            self.maybe_train_own(&collector, now).await;
            if limit.is_some_and(|l| summary.cycles >= l) || !clock.tick(&mut stop).await {
                break;
            }
        }
        self.act.flush()?;
        Ok(summary)
    }

    /// One cycle after the poll: forecast, plan, act, export.
    async fn cycle<S: Source + Sync>(
        &mut self,
        collector: &Collector<S>,
        now: i64,
        started: Instant,
        n: u64,
    ) -> Result<Vec<Decision>, RunError> {
        forget_dropped(collector.store(), &mut self.observed, &mut self.accuracy);
        self.online.retain(|k| collector.store().entry(k).is_some());
        let forecasts = self.forecast(collector, now);
        let (mut decisions, peaks) = self.plan_workloads(collector.store(), now, &forecasts);
        // Before the node planner, so that it places and sizes for what the pools can give.
        let shared = share_pools(&self.pools, &self.workloads, &mut decisions);
        let node_loads = super::shard::own_utilizations(&self.workloads, &decisions, &peaks);
        decisions.extend(self.plan_nodes(now, &decisions, &peaks));
        self.stage_reasons(&forecasts.views, &mut decisions);
        self.calibration_reasons(&forecasts.by_key, &forecasts.raw, &mut decisions);
        self.annotate(&mut decisions);
        let outcomes = self.act.handle(n, now, &decisions).await?;
        believe(&mut self.believed, &decisions, &outcomes);
        let mut snapshot = self.snapshot(
            collector,
            now,
            started,
            &forecasts.made,
            &decisions,
            &outcomes,
        );
        Self::add_sharing(&mut snapshot, shared);
        snapshot.node_loads = node_loads;
        self.add_scaler(&mut snapshot, &decisions, &forecasts.by_key);
        self.export.cycle_finished(&snapshot);
        Ok(decisions)
    }

    /// Adds to the decisions' reasons what the user must know: what recovery changed (a
    /// clamped count, once, in the target's first decision) and why a workload's replica
    /// count is unknown (every cycle it is).
    fn annotate(&mut self, decisions: &mut [Decision]) {
        for d in decisions {
            if let Some(note) = self.believed.take_start_note(&d.target) {
                d.reason = format!("{}; {note}", d.reason);
            }
            if matches!(
                d.kind,
                DecisionKind::ScaleUp | DecisionKind::ScaleDown | DecisionKind::Hold
            ) {
                if let Some(why) = self.state_unknown.get(&d.target) {
                    d.reason = format!("{}; replica count unknown: {why}", d.reason);
                }
            }
        }
    }

    /// Reads the current replicas: from the cluster's state with `[cluster]`, else each
    /// workload's `current_replicas` query. A failed or empty answer keeps the last known
    /// count and marks the workload's data stale, so nothing scales down on a guess.
    /// Returns the counts that were read.
    async fn read_replicas(&mut self, now: i64) -> BTreeMap<String, u32> {
        if let Some(reader) = self.cluster.clone() {
            return self.read_cluster(&reader, now).await;
        }
        let mut read = BTreeMap::new();
        let Some(reader) = &self.replica_reader else {
            return read;
        };
        self.replicas_unknown.clear();
        let queries = self
            .workloads
            .iter()
            .filter_map(|w| match &w.current_replicas {
                Some(CurrentReplicas::Query(q)) => Some((w.name.as_str(), q.as_str())),
                _ => None,
            });
        for (name, count) in reader.read(queries, now).await {
            match count {
                Some(n) => {
                    self.believed.set_replicas(name, n);
                    read.insert(name.to_string(), n);
                }
                None => {
                    self.replicas_unknown.insert(name.to_string());
                }
            }
        }
        read
    }

    /// Forecasts every series on the model's step (the exporter shows them all) in one
    /// parallel batch; workloads then pick theirs.
    fn forecast<S: Source>(&mut self, collector: &Collector<S>, now: i64) -> Forecasts {
        let (inputs, stale) = self.inputs(collector, now);
        let predicted = self.model.forecast_many(&inputs);
        let staged = self.staged(collector, &inputs, predicted);
        let mut by_key = HashMap::with_capacity(inputs.len());
        let mut made = Vec::with_capacity(inputs.len());
        let mut views = HashMap::with_capacity(inputs.len());
        let mut raw = HashMap::new();
        for ((key, values, _), (f, view)) in inputs.iter().zip(staged) {
            let current = values.iter().rev().find(|v| v.is_finite()).copied();
            // The correction is part of the forecaster: scored, exported and planned with.
            let f = f.map(|f| {
                let corrected = self.online.correct(&f);
                raw.insert(key.clone(), f);
                corrected
            });
            // Scored and exported as the model made it; only the planner sees the margin.
            if let Some(f) = &f {
                self.accuracy.record(f);
                made.push((f.clone(), current));
            }
            let planned = f.map(|f| super::stages::widened(&f, view.widen));
            by_key.insert(key.clone(), (planned, current));
            views.insert(key.clone(), view);
        }
        Forecasts {
            by_key,
            made,
            stale,
            views,
            raw,
        }
    }

    /// Copies the newest values of every series on the model's step, feeding the accuracy
    /// tracker what arrived since last cycle, and notes which series are stale.
    fn inputs<S: Source>(
        &mut self,
        collector: &Collector<S>,
        now: i64,
    ) -> (Vec<Input>, HashSet<SeriesKey>) {
        let step = self.model.spec.step;
        let need = self.model.spec.history_needed();
        let mut inputs = Vec::new();
        let mut stale = HashSet::new();
        for sig in collector
            .store()
            .signals()
            .iter()
            .filter(|s| s.step() == step)
        {
            let signal_ok = collector
                .health(sig.name())
                .is_some_and(|h| h.state == HealthState::Healthy);
            for (key, entry) in sig.iter() {
                let ring = entry.ring();
                let Some(newest) = ring.newest_timestamp() else {
                    continue;
                };
                let values = ring.tail(need);
                let start = newest - (values.len() as i64 - 1) * ring.step();
                let seen = self.observed.get(key).copied().unwrap_or(i64::MIN);
                for (k, v) in values.iter().enumerate() {
                    let ts = start + k as i64 * ring.step();
                    if ts > seen && v.is_finite() {
                        self.accuracy.observe(key, ts, *v);
                        self.online.observe(key, ts, *v);
                    }
                }
                self.observed.insert(key.clone(), newest);
                if entry.is_stale() || !signal_ok || now - newest > 3 * ring.step() {
                    stale.insert(key.clone());
                }
                inputs.push((key.clone(), values, start));
            }
        }
        (inputs, stale)
    }

    /// The scale planner's decision for every workload, in configuration order, with the
    /// forecast peak at the workload's quantile that the node planner provisions for.
    fn plan_workloads(
        &mut self,
        store: &Store,
        now: i64,
        f: &Forecasts,
    ) -> (Vec<Decision>, Vec<Option<f64>>) {
        let mut decisions = Vec::with_capacity(self.workloads.len());
        let mut peaks = Vec::with_capacity(self.workloads.len());
        for spec in &self.workloads {
            // Looked up, not taken: several workloads may read one demand series (a canary, a
            // service split in two), and each must plan from its forecast.
            let (forecast, current) = f
                .by_key
                .get(&spec.demand)
                .map_or((None, None), |(f, c)| (f.clone(), *c));
            let current_replicas = self
                .believed
                .replicas(&spec.name)
                .unwrap_or(spec.min_replicas);
            // The step is the demand's newest sample, not the clock: a cycle that brought no
            // new sample is not counted again. What runs is what was decided before it (the
            // loop cannot see readiness; a replica still booting counts as serving).
            if let Some(ts) = store
                .entry(&spec.demand)
                .and_then(|e| e.ring().newest_timestamp())
            {
                self.risk.observe(spec, ts, current, current_replicas);
            }
            let input = WorkloadInput {
                now,
                current_replicas,
                current_demand: current,
                forecast: forecast.as_ref(),
                data_stale: f.stale.contains(&spec.demand)
                    || store.entry(&spec.demand).is_none()
                    || self.replicas_unknown.contains(&spec.name),
                model_healthy: forecast
                    .as_ref()
                    .is_none_or(|f| f.quantiles.iter().all(|q| q.1.is_finite())),
                forecast_weight: self.accuracy.weight(&spec.demand),
                risk: self.risk.level(spec),
            };
            let risk = input.risk;
            decisions.push(self.replicas.plan(spec, &input));
            peaks.push(forecast.as_ref().and_then(|f| match risk {
                Some(r) => r.provision(f),
                None => f.quantile(spec.quantile),
            }));
        }
        (decisions, peaks)
    }

    /// The node planner's decisions for the workloads' new replica counts, if pools are
    /// configured. `workload_decisions` are [`plan_workloads`](Self::plan_workloads)'s, in
    /// order, so each lines up with its spec and its peak.
    fn plan_nodes(
        &mut self,
        now: i64,
        workload_decisions: &[Decision],
        peaks: &[Option<f64>],
    ) -> Vec<Decision> {
        // Nodes that could not be read are not planned: removing one unseen is not advice.
        // Nor by a shard other than 0, which sees only its share of the load.
        if self.pools.is_empty() || self.nodes_unknown.is_some() || !self.plans_nodes {
            return Vec::new();
        }
        let mut loads: Vec<WorkloadLoad> = self
            .workloads
            .iter()
            .zip(workload_decisions.iter().zip(peaks))
            .map(|(spec, (d, &peak))| WorkloadLoad::new(spec, d.to, peak))
            .collect();
        // On ordinal 0 of several: every other shard's workload too, as read back.
        let (others, unknown) =
            super::shard::other_loads(&self.others, &self.remote, self.believed.nodes());
        loads.extend(others);
        self.nodes.plan_partial(
            now,
            &self.pools,
            self.believed.nodes(),
            &loads,
            unknown.as_deref(),
        )
    }

    /// Lets the retrainer hand over a better model and start its next job when one is due.
    async fn maybe_retrain<S: Source>(&mut self, collector: &Collector<S>, now: i64) {
        let exclude = &self.retrain_exclude;
        let series = |step: i64| {
            let mut series: Vec<_> = collector
                .store()
                .signals()
                .iter()
                .filter(|s| s.step() == step)
                .flat_map(|s| s.to_series())
                .collect();
            // The buffers keep the excluded samples (forecasts still read them); only the
            // copy handed to training has them as gaps.
            match crate::series::exclude(&mut series, exclude, "run.retrain_exclude") {
                Ok(counts) if !exclude.is_empty() => {
                    let n: usize = counts.iter().map(|(_, n)| n).sum();
                    tracing::info!(
                        "retraining without {n} points in run.retrain_exclude ({} series)",
                        counts.iter().filter(|(_, n)| *n > 0).count()
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("{e}"),
            }
            series
        };
        if let Some(m) = self.retrainer.poll(now, &self.model, series).await {
            self.model = m;
            self.model_name = format!("retrained at {now}");
            // The offsets learnt the old model's errors; series on own models keep theirs.
            let own = &self.own;
            self.online.retain(|k| own.get(k).is_some());
        }
    }
}

/// Follows a cycle's outcomes: what was carried out is believed done, and where someone else
/// had set the replicas, their count is (so the next cycle plans from it).
fn believe(believed: &mut BelievedState, decisions: &[Decision], outcomes: &[Outcome]) {
    believed.apply(&carried_out(decisions, outcomes));
    for (d, o) in decisions.iter().zip(outcomes) {
        if let Some(live) = o.changed_elsewhere() {
            tracing::warn!(
                "workload '{}': replicas changed elsewhere (live {live}, not what prescale last \
                 set); left as they are this cycle, planning from {live} next",
                d.target
            );
            believed.set_replicas(&d.target, live);
        }
    }
}

/// The decisions to believe carried out: all but the failed ones (and those someone else's
/// change stopped, whose live count is believed instead), and but the placements of new
/// replicas whose scale-up failed. A failed change leaves the believed count where it was, so
/// the next cycle plans from it and tries again.
fn carried_out(decisions: &[Decision], outcomes: &[Outcome]) -> Vec<Decision> {
    let failed: HashSet<&str> = decisions
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| o.is_failed())
        .map(|(d, _)| d.target.as_str())
        .collect();
    decisions
        .iter()
        .zip(outcomes)
        .filter(|(d, o)| {
            let orphan_place = d.kind == DecisionKind::Place && failed.contains(d.target.as_str());
            !o.is_failed() && o.changed_elsewhere().is_none() && !orphan_place
        })
        .map(|(d, _)| d.clone())
        .collect()
}

/// Forgets what the loop keeps per series for series the store no longer holds (dropped after
/// `drop_after`, or evicted for room), so that memory and the exported accuracy series follow
/// the live series rather than every series ever seen.
fn forget_dropped(
    store: &Store,
    observed: &mut HashMap<SeriesKey, i64>,
    accuracy: &mut AccuracyTracker,
) {
    let live = |k: &SeriesKey| store.entry(k).is_some();
    observed.retain(|k, _| live(k));
    accuracy.retain(live);
}

#[cfg(test)]
mod tests;
