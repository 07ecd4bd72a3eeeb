//! The live loop: every interval, collect → forecast → plan → act → export, until stopped.
//!
//! This module only wires the stages together; each stage's logic lives in its own module. The
//! source is the one seam between a real deployment and the offline demo: Prometheus, or a
//! replay of CSV history on an accelerated clock. Everything after the collector is the same
//! code either way.

use crate::act::{Act, CommandActuator, DecisionLog};
use crate::collect::{Collector, HealthState, Replay, RetryPolicy, Source};
use crate::config::{Config, LiveConfig};
use crate::export::{self, ExportState, Metrics, Snapshot};
use crate::forecast::{self, Forecast, Model};
use crate::plan::{
    AccuracyTracker, CurrentReplicas, Decision, DecisionKind, NodePlanner, NodeState,
    ReplicaPlanner, WorkloadInput, WorkloadLoad, WorkloadSpec,
};
use crate::series::{read_history, HistoryOptions, SeriesKey};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bundled demo: replays `data/` through the whole pipeline. `prescale run` without
/// `--config` uses it.
pub const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run one cycle and exit.
    pub once: bool,
    /// Carry decisions out through `run.apply_command` (dry-run otherwise).
    pub apply: bool,
    /// Stop after this many cycles (overrides `run.cycles`).
    pub cycles: Option<u64>,
}

/// What a run did, for the caller's last line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Cycles completed.
    pub cycles: u64,
    /// Decisions other than holds.
    pub changes: usize,
    /// Holds.
    pub holds: usize,
}

/// Runs the live loop until a signal, the cycle limit, or the end of a replay.
pub async fn run(cfg: Config, opts: RunOptions, out: Box<dyn Write + Send>) -> Result<RunSummary> {
    let live = &cfg.live;
    if live.workloads.is_empty() {
        bail!(
            "{}: no [[workload]] configured: nothing to plan",
            cfg.path.display()
        );
    }
    let model_path = live
        .model
        .clone()
        .context("no model: set run.model to a file written by `prescale train`")?;
    let model = Model::load(&model_path)?;
    check_model(&cfg, &model)?;
    let act = make_act(live, &opts, out)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    spawn_signal_handler(stop_tx.clone());
    let state = Arc::new(ExportState::new(
        Metrics::new(),
        Duration::from_secs(live.interval.max(1) as u64),
    ));
    let exporter = match live.listen {
        Some(addr) => {
            let mut rx = stop_rx.clone();
            let e = export::serve(addr, state.clone(), async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
            .with_context(|| format!("serving /metrics on {addr} (export.listen)"))?;
            tracing::info!(
                "serving /metrics, /healthz, /readyz on http://{}",
                e.local_addr()
            );
            Some(e)
        }
        None => None,
    };
    let loop_state = Loop::new(&cfg, model, model_path.display().to_string(), act, state);
    let summary = match &live.replay {
        Some(r) => {
            let (source, start, end) = replay_source(r, &cfg)?;
            let collector =
                Collector::with_source(source, cfg.signals.clone(), RetryPolicy::default(), start)
                    .await?;
            let clock = Clock::Virtual {
                now: start,
                end,
                step: live.interval,
                pause: Duration::from_secs_f64(live.interval as f64 / r.speed),
            };
            loop_state.drive(collector, clock, &opts, stop_rx).await?
        }
        None => {
            let collector = Collector::connect(cfg.require_prometheus()?, &cfg.signals).await?;
            let loop_state = loop_state.with_replica_queries(collector.source().client().clone());
            let clock = Clock::Wall {
                step: live.interval,
            };
            loop_state.drive(collector, clock, &opts, stop_rx).await?
        }
    };
    let _ = stop_tx.send(true);
    if let Some(e) = exporter {
        e.stopped().await.context("stopping the exporter")?;
    }
    Ok(summary)
}

/// Refuses a model whose step does not match the signals its workloads read.
fn check_model(cfg: &Config, model: &Model) -> Result<()> {
    for w in &cfg.live.workloads {
        let signal = signal_of(&w.demand);
        let Some(sig) = cfg.signal(signal) else {
            bail!(
                "workload '{}': its demand '{}' names signal '{signal}', which is not a [[signal]]",
                w.name,
                w.demand
            );
        };
        if sig.step != model.spec.step {
            bail!(
                "workload '{}': signal '{}' has a {}s step but the model was trained on {}s; \
                 retrain with --step {}s or change the signal's step",
                w.name,
                sig.name,
                sig.step,
                model.spec.step,
                sig.step
            );
        }
        let need = model.spec.history_needed() as i64 * sig.step;
        if sig.lookback < need {
            tracing::warn!(
                "signal '{}': lookback {}s is shorter than the {}s of history the model's \
                 weekly features use; those features stay unavailable",
                sig.name,
                sig.lookback,
                need
            );
        }
        if w.boot_time > model.spec.window {
            tracing::warn!(
                "workload '{}': boot time {}s is longer than the model's {}s window, so the \
                 forecast ends before new replicas are ready",
                w.name,
                w.boot_time,
                model.spec.window
            );
        }
    }
    Ok(())
}

/// The signal name of a series key (`cpu{instance="a"}` → `cpu`).
fn signal_of(key: &SeriesKey) -> &str {
    key.as_str().split('{').next().unwrap_or("")
}

fn make_act(live: &LiveConfig, opts: &RunOptions, out: Box<dyn Write + Send>) -> Result<Act> {
    let log = DecisionLog::open(&live.decision_log)?;
    tracing::info!("logging decisions to {}", log.path().display());
    let act = Act::dry_run(out, Some(log)).show_holds(live.show_holds);
    if !opts.apply {
        return Ok(act);
    }
    match &live.apply_command {
        Some(cmd) => Ok(act.with_actuator(Box::new(CommandActuator::new(cmd.clone())))),
        None => bail!("--apply needs run.apply_command in the config (e.g. \"kubectl scale deployment/{{target}} --replicas={{to}}\")"),
    }
}

/// Reads the replay's history and lines every series up to end at the same instant, so series
/// recorded in different years replay side by side. Returns the source and the virtual clock's
/// first and last instants.
fn replay_source(r: &crate::config::ReplayConfig, cfg: &Config) -> Result<(Replay, i64, i64)> {
    let sig = cfg
        .signal(&r.signal)
        .context("replay.signal names no [[signal]]")?;
    let (mut series, reports) = read_history(
        &r.files,
        &HistoryOptions {
            step: Some(sig.step),
            max_gap: None,
        },
    )?;
    for rep in &reports {
        tracing::debug!("replay: {}", rep.summary());
    }
    let end = series
        .iter()
        .map(|s| s.end())
        .max()
        .context("replay has no series")?;
    for s in &mut series {
        s.start += end - s.end();
    }
    // Every series gets its warm-up before the first cycle, the shortest one included.
    let latest_start = series.iter().map(|s| s.start).max().unwrap_or(end);
    let start = (latest_start + r.warmup).min(end - sig.step);
    let start = start - start.rem_euclid(sig.step);
    Ok((Replay::new().with_signal(&r.signal, series), start, end))
}

/// When cycles happen.
enum Clock {
    /// Real time, on the step grid.
    Wall { step: i64 },
    /// Replay time: one step per cycle, `pause` of wall time between cycles, until `end`.
    Virtual {
        now: i64,
        end: i64,
        step: i64,
        pause: Duration,
    },
}

impl Clock {
    fn now(&self) -> i64 {
        match self {
            Clock::Wall { .. } => crate::collect::unix_now(),
            Clock::Virtual { now, .. } => *now,
        }
    }

    /// Waits for the next cycle; false when the replay is over or a stop was asked for.
    async fn tick(&mut self, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
        let wait = match self {
            Clock::Wall { step } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                let step = *step as f64;
                let next = ((now / step).floor() + 1.0) * step;
                // A little after the grid point, so the newest sample has been scraped.
                Duration::from_secs_f64(next - now + (step / 10.0).min(5.0))
            }
            Clock::Virtual {
                now,
                end,
                step,
                pause,
            } => {
                if *now + *step > *end {
                    return false;
                }
                *now += *step;
                *pause
            }
        };
        let stopped = tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        !stopped && !*stop.borrow()
    }
}

/// Replica counts and placement as prescale believes them to be. With a replay, or a workload
/// whose current replicas are not read from Prometheus, this is the running tally of the
/// decisions themselves (as if each had been carried out), so the loop plans against its own
/// recommendations instead of re-recommending the same change every cycle.
#[derive(Debug, Default)]
struct Tally {
    replicas: BTreeMap<String, u32>,
    nodes: Vec<NodeState>,
    added: BTreeMap<String, u32>,
}

impl Tally {
    fn apply(&mut self, decisions: &[Decision]) {
        for d in decisions {
            match d.kind {
                DecisionKind::ScaleUp | DecisionKind::ScaleDown | DecisionKind::Hold => {
                    self.replicas.insert(d.target.clone(), d.to);
                    if d.to < d.from {
                        self.remove_replicas(&d.target, d.from - d.to);
                    }
                }
                DecisionKind::Place => {
                    if let Some(n) = d.node.as_ref().and_then(|n| self.node_mut(n)) {
                        set_count(&mut n.replicas, &d.target, d.to);
                    }
                }
                DecisionKind::Move => {
                    let moved = d.from.saturating_sub(d.to);
                    if let Some(n) = d.node.as_ref().and_then(|n| self.node_mut(n)) {
                        set_count(&mut n.replicas, &d.target, d.to);
                    }
                    if let Some(n) = d.to_node.as_ref().and_then(|n| self.node_mut(n)) {
                        let have = count(&n.replicas, &d.target);
                        set_count(&mut n.replicas, &d.target, have + moved);
                    }
                }
                DecisionKind::AddNode => {
                    for _ in d.from..d.to {
                        let k = self.added.entry(d.target.clone()).or_insert(0);
                        *k += 1;
                        let name = format!("{}-new-{}", d.target, k);
                        self.nodes.push(NodeState {
                            name,
                            pool: d.target.clone(),
                            replicas: Vec::new(),
                        });
                    }
                }
                DecisionKind::RemoveNode => {
                    if let Some(name) = &d.node {
                        self.nodes.retain(|n| &n.name != name);
                    }
                }
            }
        }
    }

    fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// Takes replicas off the nodes holding the most of them first.
    fn remove_replicas(&mut self, workload: &str, mut n: u32) {
        while n > 0 {
            let Some(node) = self
                .nodes
                .iter_mut()
                .filter(|x| count(&x.replicas, workload) > 0)
                .max_by_key(|x| count(&x.replicas, workload))
            else {
                return;
            };
            let have = count(&node.replicas, workload);
            set_count(&mut node.replicas, workload, have - 1);
            n -= 1;
        }
    }
}

fn count(list: &[(String, u32)], w: &str) -> u32 {
    list.iter().find(|(n, _)| n == w).map_or(0, |x| x.1)
}

fn set_count(list: &mut Vec<(String, u32)>, w: &str, v: u32) {
    list.retain(|(n, _)| n != w);
    if v > 0 {
        list.push((w.to_string(), v));
    }
}

/// Everything the loop keeps between cycles.
struct Loop {
    workloads: Vec<WorkloadSpec>,
    pools: Vec<crate::plan::PoolSpec>,
    model: Arc<Model>,
    model_name: String,
    act: Act,
    export: Arc<ExportState>,
    replicas: ReplicaPlanner,
    nodes: NodePlanner,
    accuracy: AccuracyTracker,
    tally: Tally,
    /// Newest timestamp already shown to the accuracy tracker, per series.
    observed: HashMap<SeriesKey, i64>,
    retrain_every: Option<i64>,
    retrain: Option<Retrain>,
    last_retrain: Option<i64>,
    cycles_limit: Option<u64>,
    /// Collector counters at the last snapshot, to export what is new each cycle.
    last_stats: HashMap<String, crate::collect::SignalStats>,
    /// Reads `current_replicas` queries (Prometheus mode only).
    prom: Option<crate::collect::PromClient>,
    /// Workloads whose replica query failed this cycle: their data counts as stale.
    replicas_unknown: std::collections::HashSet<String>,
}

/// A model being trained in the background.
struct Retrain {
    started: i64,
    job: tokio::task::JoinHandle<Result<Option<Model>, String>>,
}

impl Loop {
    fn new(
        cfg: &Config,
        model: Model,
        model_name: String,
        act: Act,
        export: Arc<ExportState>,
    ) -> Self {
        let live = &cfg.live;
        let mut tally = Tally {
            nodes: live
                .nodes
                .iter()
                .map(|(name, pool)| NodeState {
                    name: name.clone(),
                    pool: pool.clone(),
                    replicas: Vec::new(),
                })
                .collect(),
            ..Tally::default()
        };
        for w in &live.workloads {
            let start = match w.current_replicas {
                Some(CurrentReplicas::Fixed(n)) => n,
                _ => w.min_replicas,
            };
            tally.replicas.insert(w.name.clone(), start);
        }
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
            tally,
            observed: HashMap::new(),
            retrain_every: live.retrain_every,
            retrain: None,
            last_retrain: None,
            cycles_limit: live.cycles,
            last_stats: HashMap::new(),
            prom: None,
            replicas_unknown: std::collections::HashSet::new(),
        }
    }

    fn with_replica_queries(mut self, client: crate::collect::PromClient) -> Self {
        self.prom = Some(client);
        self
    }

    /// Reads each workload's `current_replicas` query. A failed or empty answer keeps the last
    /// known count and marks the workload's data stale, so nothing scales down on a guess.
    async fn read_replicas(&mut self, now: i64) {
        let Some(client) = &self.prom else { return };
        self.replicas_unknown.clear();
        for w in &self.workloads {
            let Some(CurrentReplicas::Query(q)) = &w.current_replicas else {
                continue;
            };
            let value = match client.query(q, Some(now)).await {
                Ok(a) => match a.data {
                    crate::collect::prometheus::QueryData::Vector(v) if v.len() == 1 => {
                        v[0].value.as_ref().map(|p| p.value)
                    }
                    crate::collect::prometheus::QueryData::Scalar(p) => Some(p.value),
                    _ => None,
                },
                Err(e) => {
                    tracing::warn!("workload '{}': current_replicas query failed: {e}", w.name);
                    None
                }
            };
            match value {
                Some(v) if v.is_finite() && v >= 0.0 => {
                    self.tally
                        .replicas
                        .insert(w.name.clone(), v.round().min(f64::from(u32::MAX)) as u32);
                }
                _ => {
                    tracing::warn!(
                        "workload '{}': current_replicas query gave no single sample; keeping the last count",
                        w.name
                    );
                    self.replicas_unknown.insert(w.name.clone());
                }
            }
        }
    }

    async fn drive<S: Source + Send + Sync>(
        mut self,
        mut collector: Collector<S>,
        mut clock: Clock,
        opts: &RunOptions,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<RunSummary> {
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
        self.last_retrain = Some(clock.now());
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
            self.read_replicas(now).await;
            let decisions = self.cycle(&collector, now, started, summary.cycles + 1)?;
            summary.cycles += 1;
            let holds = decisions.iter().filter(|d| d.is_hold()).count();
            summary.holds += holds;
            summary.changes += decisions.len() - holds;
            self.maybe_retrain(&collector, now).await;
            if limit.is_some_and(|l| summary.cycles >= l) || !clock.tick(&mut stop).await {
                break;
            }
        }
        self.act.flush().map_err(anyhow::Error::msg)?;
        Ok(summary)
    }

    /// One cycle after the poll: forecast, plan, act, export.
    fn cycle<S: Source>(
        &mut self,
        collector: &Collector<S>,
        now: i64,
        started: Instant,
        n: u64,
    ) -> Result<Vec<Decision>> {
        let store = collector.store();
        let model = self.model.clone();
        let need = model.spec.history_needed();
        // Every series on the model's step is forecast (the exporter shows them all), in one
        // parallel batch; workloads then pick theirs.
        let mut inputs = Vec::new();
        let mut stale_keys = std::collections::HashSet::new();
        for sig in store
            .signals()
            .iter()
            .filter(|s| s.step() == model.spec.step)
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
                // Feed the accuracy tracker what arrived since last cycle.
                let seen = self.observed.get(key).copied().unwrap_or(i64::MIN);
                for (k, v) in values.iter().enumerate() {
                    let ts = start + k as i64 * ring.step();
                    if ts > seen && v.is_finite() {
                        self.accuracy.observe(key, ts, *v);
                    }
                }
                self.observed.insert(key.clone(), newest);
                if entry.is_stale() || !signal_ok || now - newest > 3 * ring.step() {
                    stale_keys.insert(key.clone());
                }
                inputs.push((key.clone(), values, start));
            }
        }
        let predicted = model.forecast_many(&inputs);
        let mut by_key: HashMap<SeriesKey, (Option<Forecast>, Option<f64>)> =
            HashMap::with_capacity(inputs.len());
        let mut forecasts: Vec<(Forecast, Option<f64>)> = Vec::with_capacity(inputs.len());
        for ((key, values, _), f) in inputs.iter().zip(predicted) {
            let current = values.iter().rev().find(|v| v.is_finite()).copied();
            if let Some(f) = &f {
                self.accuracy.record(f);
                forecasts.push((f.clone(), current));
            }
            by_key.insert(key.clone(), (f, current));
        }
        let mut decisions = Vec::with_capacity(self.workloads.len());
        let mut loads: Vec<(usize, u32, Option<f64>)> = Vec::with_capacity(self.workloads.len());
        for (i, spec) in self.workloads.iter().enumerate() {
            let (forecast, current) = by_key.remove(&spec.demand).unwrap_or((None, None));
            let stale = stale_keys.contains(&spec.demand)
                || store.entry(&spec.demand).is_none()
                || self.replicas_unknown.contains(&spec.name);
            let current_replicas = self
                .tally
                .replicas
                .get(&spec.name)
                .copied()
                .unwrap_or(spec.min_replicas);
            let input = WorkloadInput {
                now,
                current_replicas,
                current_demand: current,
                forecast: forecast.as_ref(),
                data_stale: stale,
                model_healthy: forecast
                    .as_ref()
                    .is_none_or(|f| f.quantiles.iter().all(|q| q.1.is_finite())),
                forecast_weight: self.accuracy.weight(&spec.demand),
            };
            let d = self.replicas.plan(spec, &input);
            let peak = forecast.as_ref().and_then(|f| f.quantile(spec.quantile));
            loads.push((i, d.to, peak));
            decisions.push(d);
        }
        if !self.pools.is_empty() {
            let wl: Vec<WorkloadLoad> = loads
                .iter()
                .map(|&(i, desired, peak)| WorkloadLoad::new(&self.workloads[i], desired, peak))
                .collect();
            let node_decisions = self.nodes.plan(now, &self.pools, &self.tally.nodes, &wl);
            decisions.extend(node_decisions);
        }
        self.act
            .handle(n, now, &decisions)
            .map_err(anyhow::Error::msg)?;
        self.tally.apply(&decisions);
        let snapshot = self.snapshot(collector, now, started, &forecasts, &decisions);
        self.export.cycle_finished(&snapshot);
        Ok(decisions)
    }

    fn snapshot<S: Source>(
        &mut self,
        collector: &Collector<S>,
        now: i64,
        started: Instant,
        forecasts: &[(Forecast, Option<f64>)],
        decisions: &[Decision],
    ) -> Snapshot {
        let mut pools: BTreeMap<String, u32> = BTreeMap::new();
        for n in &self.tally.nodes {
            *pools.entry(n.pool.clone()).or_insert(0) += 1;
        }
        Snapshot {
            forecasts: forecasts
                .iter()
                .map(|(f, observed)| export::ForecastSample {
                    series: f.key.to_string(),
                    window_seconds: f.window as f64,
                    quantiles: f.quantiles.clone(),
                    observed: *observed,
                })
                .collect(),
            workloads: decisions
                .iter()
                .filter(|d| {
                    matches!(
                        d.kind,
                        DecisionKind::ScaleUp | DecisionKind::ScaleDown | DecisionKind::Hold
                    )
                })
                .map(|d| export::WorkloadSample {
                    workload: d.target.clone(),
                    current_replicas: u64::from(d.from),
                    recommended_replicas: u64::from(d.to),
                })
                .collect(),
            pools: pools
                .into_iter()
                .map(|(pool, n)| export::PoolSample {
                    pool,
                    recommended_nodes: u64::from(n),
                })
                .collect(),
            decisions: decisions
                .iter()
                .map(|d| kind_label(d.kind).to_string())
                .collect(),
            signals: collector
                .signals()
                .iter()
                .map(|s| {
                    let h = collector.health(&s.name);
                    export::SignalSample {
                        signal: s.name.clone(),
                        up: h.is_some_and(|h| h.state != HealthState::Down),
                        staleness_seconds: h.and_then(|h| h.data_age).unwrap_or(0) as f64,
                        new_errors: self.new_errors(collector, &s.name),
                    }
                })
                .collect(),
            accuracy: self
                .accuracy
                .keys()
                .map(|k| {
                    let s = self.accuracy.stats(k);
                    export::AccuracySample {
                        series: k.to_string(),
                        wape: s.wape,
                        coverage_p90: s.coverage_p90,
                        scored: s.scored,
                    }
                })
                .collect(),
            model: Some(export::ModelSample {
                model: self.model_name.clone(),
                trained_at: chrono::DateTime::from_timestamp(self.model.meta.trained_at, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                version: self.model.meta.crate_version.clone(),
            }),
            cycle_seconds: started.elapsed().as_secs_f64(),
            at_unix: now,
        }
    }

    /// Failed requests and failed polls of a signal since the last snapshot, by kind.
    fn new_errors<S: Source>(
        &mut self,
        collector: &Collector<S>,
        signal: &str,
    ) -> Vec<(String, u64)> {
        let Some(now) = collector.stats(signal).copied() else {
            return Vec::new();
        };
        let before = self
            .last_stats
            .insert(signal.to_string(), now)
            .unwrap_or_default();
        [
            (
                "request",
                now.request_failures.saturating_sub(before.request_failures),
            ),
            ("poll", now.failed_polls.saturating_sub(before.failed_polls)),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), n))
        .collect()
    }

    /// Starts a background retraining when one is due, and swaps in its model when it is done
    /// and scored better than the current one on recent data.
    async fn maybe_retrain<S: Source>(&mut self, collector: &Collector<S>, now: i64) {
        if let Some(r) = &self.retrain {
            if !r.job.is_finished() {
                return;
            }
            let r = self.retrain.take().expect("checked above");
            match r.job.await {
                Ok(Ok(Some(m))) => {
                    tracing::info!("retrained model (started {}) beats the current one on recent data: using it", r.started);
                    self.model = Arc::new(m);
                    self.model_name = format!("retrained at {now}");
                }
                Ok(Ok(None)) => tracing::info!(
                    "retrained model is not better on recent data: keeping the current one"
                ),
                Ok(Err(e)) => tracing::warn!("retraining failed, keeping the current model: {e}"),
                Err(e) => tracing::warn!("retraining task failed, keeping the current model: {e}"),
            }
        }
        let Some(every) = self.retrain_every else {
            return;
        };
        if self.last_retrain.is_some_and(|t| now - t < every) {
            return;
        }
        self.last_retrain = Some(now);
        let step = self.model.spec.step;
        let series: Vec<_> = collector
            .store()
            .signals()
            .iter()
            .filter(|s| s.step() == step)
            .flat_map(|s| s.to_series())
            .collect();
        let current = self.model.clone();
        let job = tokio::task::spawn_blocking(move || retrain(&current, &series));
        self.retrain = Some(Retrain { started: now, job });
    }
}

/// Trains a candidate on all but the newest fifth of the buffers and compares it with the
/// current model on that fifth (pinball loss at p90, the level capacity is usually planned to).
/// Returns the candidate refitted on everything when it wins.
fn retrain(current: &Model, series: &[crate::series::Series]) -> Result<Option<Model>, String> {
    use forecast::backtest::{self, holdout_start};
    let holdout = 0.2;
    let mut opts = forecast::TrainOptions::new(current.spec.step, current.spec.window);
    opts.quantiles = current.quantiles.clone();
    let heads: Vec<_> = series
        .iter()
        .map(|s| s.slice(0..holdout_start(s.len(), holdout)))
        .collect();
    let candidate = Model::train(&heads, &opts).map_err(|e| e.to_string())?;
    let score = |m: &Model| {
        let r = backtest::run(m, series, holdout, "");
        r.overall
            .model
            .pinball
            .iter()
            .find(|p| (p.0 - 0.9).abs() < 1e-9)
            .map_or(f64::INFINITY, |p| p.1)
    };
    let (new, old) = (score(&candidate), score(current));
    tracing::info!(
        "retraining: p90 pinball on recent data {new:.4} (candidate) vs {old:.4} (current)"
    );
    if new.is_finite() && new < old {
        Model::train(series, &opts)
            .map(Some)
            .map_err(|e| e.to_string())
    } else {
        Ok(None)
    }
}

fn kind_label(k: DecisionKind) -> &'static str {
    match k {
        DecisionKind::ScaleUp => "scale_up",
        DecisionKind::ScaleDown => "scale_down",
        DecisionKind::Hold => "hold",
        DecisionKind::AddNode => "add_node",
        DecisionKind::RemoveNode => "remove_node",
        DecisionKind::Move => "move",
        DecisionKind::Place => "place",
    }
}

/// Turns SIGINT and SIGTERM into a stop request: the current cycle finishes, the decision log
/// is flushed, and the process exits 0.
fn spawn_signal_handler(stop: tokio::sync::watch::Sender<bool>) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("stop requested: finishing the current cycle");
        let _ = stop.send(true);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Series;

    fn series(key: &str, days: usize, noise_only: bool, seed: u64) -> Series {
        let mut s = seed;
        let values = (0..days * 288)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                if noise_only {
                    1000.0 * u
                } else {
                    let hour = (i % 288) as f64 / 12.0;
                    100.0 + 60.0 * (std::f64::consts::TAU * hour / 24.0).sin() + 10.0 * u
                }
            })
            .collect();
        Series {
            key: SeriesKey::new(key),
            start: 1_704_067_200,
            step: 300,
            values,
        }
    }

    #[test]
    fn retraining_replaces_a_worse_model_and_keeps_a_better_one() {
        let load = series("load", 9, false, 1);
        let noise = series("noise", 9, true, 2);
        let opts = forecast::TrainOptions::new(300, 900);
        // A model that only ever saw noise forecasts a daily cycle badly: replaced.
        let bad = Model::train(std::slice::from_ref(&noise), &opts).unwrap();
        let new = retrain(&bad, std::slice::from_ref(&load)).unwrap();
        let new = new.expect("a model trained on the load beats one trained on noise");
        assert_eq!(new.meta.series[0].key.as_str(), "load");
        assert_eq!(new.meta.series[0].range, (load.start, load.end()));
        // A model that has already seen the recent data is kept.
        let good = Model::train(std::slice::from_ref(&load), &opts).unwrap();
        assert!(retrain(&good, std::slice::from_ref(&load))
            .unwrap()
            .is_none());
    }

    fn decision(
        kind: DecisionKind,
        target: &str,
        node: Option<&str>,
        to_node: Option<&str>,
        from: u32,
        to: u32,
    ) -> Decision {
        Decision {
            at: 0,
            kind,
            target: target.into(),
            node: node.map(String::from),
            to_node: to_node.map(String::from),
            from,
            to,
            raw: to,
            forecast: None,
            current: None,
            guards: Vec::new(),
            reason: String::new(),
        }
    }

    #[test]
    fn the_tally_follows_decisions() {
        let mut t = Tally::default();
        t.nodes.push(NodeState {
            name: "a".into(),
            pool: "p".into(),
            replicas: Vec::new(),
        });
        t.nodes.push(NodeState {
            name: "b".into(),
            pool: "p".into(),
            replicas: Vec::new(),
        });
        t.apply(&[
            decision(DecisionKind::ScaleUp, "web", None, None, 1, 5),
            decision(DecisionKind::Place, "web", Some("a"), None, 0, 3),
            decision(DecisionKind::Place, "web", Some("b"), None, 0, 2),
            decision(DecisionKind::AddNode, "p", None, None, 2, 3),
        ]);
        assert_eq!(t.replicas["web"], 5);
        assert_eq!(t.nodes.len(), 3);
        assert_eq!(t.nodes[2].name, "p-new-1");
        t.apply(&[decision(
            DecisionKind::Move,
            "web",
            Some("a"),
            Some("p-new-1"),
            3,
            1,
        )]);
        assert_eq!(count(&t.nodes[0].replicas, "web"), 1);
        assert_eq!(count(&t.nodes[2].replicas, "web"), 2);
        // Scaling down takes replicas off the fullest nodes first.
        t.apply(&[decision(DecisionKind::ScaleDown, "web", None, None, 5, 2)]);
        let left: u32 = t.nodes.iter().map(|n| count(&n.replicas, "web")).sum();
        assert_eq!(left, 2);
        t.apply(&[decision(
            DecisionKind::RemoveNode,
            "p",
            Some("b"),
            None,
            3,
            2,
        )]);
        assert!(t.nodes.iter().all(|n| n.name != "b"));
    }

    #[test]
    fn signal_of_a_key_is_its_name() {
        assert_eq!(signal_of(&SeriesKey::new("cpu{instance=\"a\"}")), "cpu");
        assert_eq!(signal_of(&SeriesKey::new("demand")), "demand");
    }
}
