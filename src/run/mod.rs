//! The live loop: every interval, collect → forecast → plan → act → export, until stopped.
//!
//! This module only wires the stages together; each stage's logic lives in its own module:
//! believed cluster state in [`plan::BelievedState`](crate::plan::BelievedState), retraining in
//! [`forecast::Retrainer`](crate::forecast::Retrainer), current replicas read through
//! [`collect::ReplicaReader`](crate::collect::ReplicaReader). Here: start-up checks and wiring
//! (this file, with the wait for an unreachable Prometheus), `state` (what the loop keeps
//! between cycles), `clock` (when cycles happen), `cycle` (one cycle, and the loop repeating
//! it: the order of the steps only), and one file per step: `replicas` (current counts read,
//! recovery at the first cycle), `cluster` (the cluster view read each cycle with
//! `[cluster]`), `forecasts` (every series forecast from the rings), `calibration` (the online
//! correction's factor per workload, in reasons and the snapshot), `stages` (cold start:
//! each series' stage, own models, the stage in reasons), `planning` (scale and node
//! planners), `bookkeeping` (what is believed carried out, per-series state kept bounded),
//! `retrain` (the global model's background retraining), `persist` (the online offsets and
//! risk ledgers kept across restarts), `shard` (with `[shard]`: the
//! workloads this replica keeps and, on the node planner, the other shards' loads read back)
//! and `snapshot` (what the exporter is handed). Every step file extends `state::Loop` and
//! none imports `cycle`, so the module has no import circle.
//!
//! With `[leader_election]`, the elector starts before the first cycle (so a lone replica
//! leads from its first decision), the act stage asks it before every change, and the Lease is
//! released only after the last cycle, never on the signal itself: until then this replica may
//! still be acting. Sharded, the Lease elects the node planner instead: the loop asks it before
//! planning the pools, and the act stage acts on the shard's own workloads ungated.
//!
//! The source is the one seam between a real deployment and the offline demo: Prometheus, or a
//! replay of CSV history on an accelerated clock. Everything after the collector is the same
//! code either way.

mod bookkeeping;
mod calibration;
mod clock;
mod cluster;
mod cycle;
mod forecasts;
mod persist;
mod planning;
mod replicas;
mod retrain;
mod shard;
mod snapshot;
mod stages;
mod state;
mod step;

use crate::act::{
    read_tail, Act, ActError, ActuatorKind, CommandActuator, DecisionLog, KubeActError,
    KubeActuator, LogError, TailOptions,
};
use crate::collect::{ClusterReader, CollectError, Collector, Replay, ReplicaReader, RetryPolicy};
use crate::config::{Config, LiveConfig};
use crate::export::{self, ExportState, Exporter, Metrics};
use crate::forecast::{Model, ModelError};
use crate::leader;
use crate::plan::RecordedCounts;
use crate::series::{read_history, CsvError, HistoryOptions, SeriesKey};
use crate::shard::agree::ShardCheck;
use crate::shard::readback::ShardReader;
use crate::shard::NodePlanning;
pub use persist::StateError;
pub use step::Stepper;

use clock::Clock;
use state::Loop;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The bundled demo: replays `data/` through the whole pipeline. `prescale run` without
/// `--config` uses it.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// Why the live loop could not start or had to stop. Each names the key or file to fix.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration has no workload, so there is nothing to plan.
    #[error("{}: no [[workload]] configured: nothing to plan", path.display())]
    NoWorkloads {
        /// The configuration file.
        path: PathBuf,
    },
    /// `run.model` is not set.
    #[error("no model: set run.model to a file written by `prescale train`")]
    NoModel,
    /// The model file could not be read.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A workload's demand names a signal that is not configured.
    #[error("workload '{workload}': its demand '{demand}' names signal '{signal}', which is not a [[signal]]")]
    UnknownSignal {
        /// The workload.
        workload: String,
        /// Its demand series key.
        demand: String,
        /// The signal name in it.
        signal: String,
    },
    /// A workload's signal is on another step than the model.
    #[error(
        "workload '{workload}': signal '{signal}' has a {signal_step}s step but the model was \
         trained on {model_step}s; retrain with --step {signal_step}s or change the signal's step"
    )]
    StepMismatch {
        /// The workload.
        workload: String,
        /// The signal its demand reads.
        signal: String,
        /// The signal's step, seconds.
        signal_step: i64,
        /// The model's step, seconds.
        model_step: i64,
    },
    /// `--apply` on a `[replay]` without `replay.allow_apply = true`.
    #[error(
        "{}: --apply with [replay] would act on decisions made from replayed history, at the \
         replay's speed; remove [replay] to act on live data, or set replay.allow_apply = true \
         to try an actuator on a test cluster",
        path.display()
    )]
    ApplyOnReplay {
        /// The configuration file.
        path: PathBuf,
    },
    /// `run.actuator = "command"` without a command to apply with (refused at load too).
    #[error("run.actuator = \"command\" needs run.apply_command (e.g. \"kubectl scale deployment/{{target}} --replicas={{to}}\")")]
    NoApplyCommand,
    /// The Kubernetes actuator could not be set up (`[kubernetes]`, a workload's object).
    #[error("--apply with the kubernetes actuator (run.actuator): {0}")]
    KubeActuator(#[from] KubeActError),
    /// The decision log could not be opened.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The exporter could not listen.
    #[error("serving /metrics on {addr} (export.listen)")]
    Serve {
        /// The address configured.
        addr: SocketAddr,
        /// Why it could not listen.
        #[source]
        source: std::io::Error,
    },
    /// The exporter failed while shutting down.
    #[error("stopping the exporter")]
    StopExporter(#[source] std::io::Error),
    /// The KEDA scaler could not listen.
    #[error("serving KEDA's external scaler on {addr} (export.keda_listen)")]
    ServeKeda {
        /// The address configured.
        addr: SocketAddr,
        /// Why it could not listen.
        #[source]
        source: std::io::Error,
    },
    /// The KEDA scaler failed while shutting down.
    #[error("stopping the KEDA scaler")]
    StopKeda(#[source] std::io::Error),
    /// `replay.signal` is not a configured signal.
    #[error("replay.signal names no [[signal]]")]
    ReplaySignal,
    /// The replay's history could not be read.
    #[error(transparent)]
    History(#[from] CsvError),
    /// The replay's files hold no series.
    #[error("replay has no series")]
    EmptyReplay,
    /// The configuration lacks what this mode needs (e.g. `[prometheus]`).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The collector could not start.
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// Decisions could not be shown, logged or applied.
    #[error(transparent)]
    Act(#[from] ActError),
    /// The online calibration's state file (`run.calibration_state`) could not be read, or
    /// is not prescale's.
    #[error(transparent)]
    CalibrationState(#[from] persist::StateError),
    /// The [`Stepper`] was handed a configuration it does not build (`what`): only `run`
    /// sets up sharding, leader election and the cluster read.
    #[error(
        "{what} is configured, which only `prescale run` runs: the loop cannot be stepped with it"
    )]
    NotSteppable {
        /// The section.
        what: &'static str,
    },
    /// Leader election could not start (`[kubernetes]`, `[leader_election]`).
    #[error(transparent)]
    Leader(#[from] crate::leader::LeaderError),
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run one cycle and exit.
    pub once: bool,
    /// Carry decisions out through the actuator (`run.actuator`; dry-run otherwise).
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
pub async fn run(
    cfg: Config,
    opts: RunOptions,
    out: Box<dyn Write + Send>,
) -> Result<RunSummary, RunError> {
    if cfg.live.workloads.is_empty() {
        return Err(RunError::NoWorkloads {
            path: cfg.path.clone(),
        });
    }
    // Before anything is opened or started: an SRE who checked a production configuration
    // in replay and then added --apply must not have history drive the real cluster.
    if opts.apply && cfg.live.replay.as_ref().is_some_and(|r| !r.allow_apply) {
        return Err(RunError::ApplyOnReplay {
            path: cfg.path.clone(),
        });
    }
    let model_path = cfg.live.model.clone().ok_or(RunError::NoModel)?;
    let model = Model::load(&model_path)?;
    check_model(&cfg, &model)?;
    let (cfg, share) = shard::take_shard(cfg);
    let own_series = share.keys;
    let live = &cfg.live;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut act = make_act(&cfg, &opts, out, stop_rx.clone()).await?;
    spawn_signal_handler(stop_tx.clone());
    let state = export_state(&cfg);
    let exporter = match live.listen {
        Some(addr) => Some(start_exporter(addr, state.clone(), stop_rx.clone()).await?),
        None => None,
    };
    let keda = match live.keda_listen {
        Some(addr) => Some(start_keda(addr, state.clone(), stop_rx.clone()).await?),
        None => None,
    };
    // Before the first cycle, so a lone replica leads from its first decision on.
    let elector = match &cfg.leader {
        Some(l) => {
            let gauge = state.clone();
            let on_change: leader::OnChange =
                Arc::new(move |leads, transitions| gauge.metrics().set_leader(leads, transitions));
            Some(leader::start(l, &cfg.kubernetes, on_change).await?)
        }
        None => {
            state.metrics().set_leader(true, 0);
            None
        }
    };
    // Sharded, the Lease elects the node planner only; each shard acts on its own workloads.
    let node_lease = cfg.shard.node_planning(cfg.leader.is_some()) == NodePlanning::WhileLeading;
    if let Some(e) = elector.as_ref().filter(|_| !node_lease) {
        act = act.with_leadership(e.leadership());
    }
    let loop_state =
        build_loop(&cfg, model, &model_path, act, state.clone(), &opts)?.with_others(share.others);
    let loop_state = match elector.as_ref().filter(|_| node_lease) {
        Some(e) => loop_state.with_node_leadership(e.leadership()),
        None => loop_state,
    };
    let summary = match &live.replay {
        Some(r) => {
            let (source, start, end) = replay_source(r, &cfg)?;
            let mut collector =
                Collector::with_source(source, cfg.signals.clone(), RetryPolicy::default(), start)
                    .await?;
            if let Some(keys) = own_series {
                collector.keep_only(keys);
            }
            let clock = Clock::Virtual {
                now: start,
                end,
                step: live.interval,
                // Checked although the configuration bounds both: a panic here would
                // take the loop down.
                pause: Duration::try_from_secs_f64(live.interval as f64 / r.speed)
                    .unwrap_or(Duration::MAX),
            };
            loop_state.drive(collector, clock, &opts, stop_rx).await?
        }
        None => {
            // Waits as long as Prometheus is away (a crash loop under Kubernetes otherwise),
            // with /healthz alive and /readyz saying what it waits for.
            let prometheus = cfg.require_prometheus()?;
            let waited =
                Collector::connect_waiting(prometheus, &cfg.signals, stop_rx.clone(), |w| {
                    state.waiting(
                        &w.target,
                        w.attempt,
                        format!("signal '{}': {}", w.signal, w.error),
                        w.retry_in,
                    )
                })
                .await?;
            match waited {
                Some(mut collector) => {
                    state.wait_over();
                    if let Some(keys) = own_series {
                        collector.keep_only(keys);
                    }
                    let client = collector.source().client().clone();
                    let mut loop_state =
                        loop_state.with_replica_queries(ReplicaReader::new(client.clone()));
                    if cfg.shard.is_sharded() {
                        let check = ShardCheck::new(
                            client.clone(),
                            cfg.shard.selector.clone(),
                            cfg.shard.replicas,
                        );
                        loop_state = loop_state.with_shard_check(check);
                    }
                    if cfg.shard.is_sharded()
                        && cfg.shard.node_planning(cfg.leader.is_some()).ever()
                    {
                        let max_age = cfg.shard.max_age(live.interval);
                        let reader = ShardReader::new(client.clone(), max_age)
                            .with_selector(cfg.shard.selector.clone());
                        loop_state = loop_state.with_shard_reader(reader);
                    }
                    if let Some(c) = &cfg.cluster {
                        loop_state = loop_state.with_cluster(ClusterReader::new(client, c.clone()));
                    }
                    let clock = Clock::Wall {
                        step: live.interval,
                    };
                    loop_state.drive(collector, clock, &opts, stop_rx).await?
                }
                None => {
                    tracing::info!("stopped while waiting for Prometheus: no cycle ran");
                    RunSummary::default()
                }
            }
        }
    };
    // After the last cycle, never before: until then this replica may still be acting.
    if let Some(e) = elector {
        e.release().await;
    }
    let _ = stop_tx.send(true);
    if let Some(e) = exporter {
        e.stopped().await.map_err(RunError::StopExporter)?;
    }
    if let Some(k) = keda {
        k.stopped().await.map_err(RunError::StopKeda)?;
    }
    Ok(summary)
}

/// What the exporter is handed, with this replica's shard recorded (`run` and the
/// [`Stepper`] alike).
fn export_state(cfg: &Config) -> Arc<ExportState> {
    let state = Arc::new(ExportState::new(
        Metrics::new(),
        Duration::from_secs(cfg.live.interval.max(1) as u64),
    ));
    state.metrics().set_shard(
        cfg.shard.ordinal,
        cfg.shard.replicas,
        cfg.live.workloads.len(),
    );
    state
}

/// The loop's state as `run` starts it (and the [`Stepper`]): the counts the decision log
/// recorded to recover from, and the persisted online state, both read before any cycle, so
/// that a file prescale must not replace stops the start.
fn build_loop(
    cfg: &Config,
    model: Model,
    model_path: &std::path::Path,
    act: Act,
    state: Arc<ExportState>,
    opts: &RunOptions,
) -> Result<Loop, RunError> {
    let recorded = recorded_counts(&cfg.live, opts)?;
    let persisted =
        persist::load_or_set_aside(&cfg.live.calibration_state, crate::collect::unix_now())?;
    Ok(
        Loop::new(cfg, model, model_path.display().to_string(), act, state)
            .with_recorded(recorded)
            .with_persisted(persisted),
    )
}

/// Serves KEDA's external-scaler interface on `addr` until a stop is requested.
async fn start_keda(
    addr: SocketAddr,
    state: Arc<ExportState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<export::keda::KedaServer, RunError> {
    let k = export::keda::serve_keda(addr, state, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await
    .map_err(|source| RunError::ServeKeda { addr, source })?;
    tracing::info!(
        "serving KEDA's external scaler (gRPC) on {}",
        k.local_addr()
    );
    Ok(k)
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until a stop is requested.
async fn start_exporter(
    addr: SocketAddr,
    state: Arc<ExportState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Exporter, RunError> {
    let e = export::serve(addr, state, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await
    .map_err(|source| RunError::Serve { addr, source })?;
    tracing::info!(
        "serving /metrics, /healthz, /readyz on http://{}",
        e.local_addr()
    );
    Ok(e)
}

/// Refuses a model whose step does not match the signals its workloads read.
fn check_model(cfg: &Config, model: &Model) -> Result<(), RunError> {
    for w in &cfg.live.workloads {
        let signal = signal_of(&w.demand);
        let Some(sig) = cfg.signal(signal) else {
            return Err(RunError::UnknownSignal {
                workload: w.name.clone(),
                demand: w.demand.to_string(),
                signal: signal.to_string(),
            });
        };
        if sig.step != model.spec.step {
            return Err(RunError::StepMismatch {
                workload: w.name.clone(),
                signal: sig.name.clone(),
                signal_step: sig.step,
                model_step: model.spec.step,
            });
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

/// The act stage as configured: dry-run unless `--apply`, which acts through the configured
/// actuator (`run.actuator`) on the workloads in `auto` mode.
async fn make_act(
    cfg: &Config,
    opts: &RunOptions,
    out: Box<dyn Write + Send>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Act, RunError> {
    let live = &cfg.live;
    let log = DecisionLog::open(&live.decision_log)?;
    tracing::info!("logging decisions to {}", log.path().display());
    let modes = live
        .workloads
        .iter()
        .map(|w| (w.name.clone(), w.mode))
        .collect();
    let act = Act::dry_run(out, Some(log))
        .show_holds(live.show_holds)
        .with_modes(modes);
    if !opts.apply {
        return Ok(act);
    }
    match (live.actuator(), &live.apply_command) {
        (ActuatorKind::Command, Some(template)) => Ok(act.with_actuator(Box::new(
            CommandActuator::new(template.clone())
                .with_timeout(Duration::from_secs(live.apply_timeout.max(1) as u64))
                .with_stop(stop),
        ))),
        (ActuatorKind::Command, None) => Err(RunError::NoApplyCommand),
        (ActuatorKind::Kubernetes, _) => {
            // What it last set outlives a restart: the log's tail says what that was.
            let tail = read_tail(
                &live.decision_log,
                TailOptions {
                    applied_only: true,
                    ..TailOptions::default()
                },
            )?;
            let k = KubeActuator::connect(&cfg.kubernetes, &live.workloads)
                .await?
                .with_last_set(tail.last_set)
                .with_pending(tail.pending)
                .with_stop(stop);
            tracing::info!(
                "acting through the Kubernetes API (scale subresource, request timeout {})",
                humantime::format_duration(cfg.kubernetes.timeout())
            );
            Ok(act.with_actuator(Box::new(k)))
        }
    }
}

/// The counts the decision log's tail recorded, for the restart to go on from. An `--apply`
/// run takes only applied records: a dry-run's recommendations never reached the cluster.
fn recorded_counts(live: &LiveConfig, opts: &RunOptions) -> Result<RecordedCounts, RunError> {
    let opts = TailOptions {
        applied_only: opts.apply,
        ..TailOptions::default()
    };
    let tail = read_tail(&live.decision_log, opts)?;
    if tail.skipped > 0 {
        tracing::warn!(
            "decision log {}: {} lines that are not decision records were skipped",
            live.decision_log.display(),
            tail.skipped
        );
    }
    if tail.records > 0 {
        tracing::info!(
            "decision log {}: recovering from the newest of {} records in its last {} bytes \
             ({} passed over as not carried out)",
            live.decision_log.display(),
            tail.records,
            tail.bytes_read,
            tail.not_applied
        );
    }
    Ok(tail.counts)
}

/// Reads the replay's history and lines every series up to end at the same instant, so series
/// recorded in different years replay side by side. Returns the source and the virtual clock's
/// first and last instants.
fn replay_source(
    r: &crate::config::ReplayConfig,
    cfg: &Config,
) -> Result<(Replay, i64, i64), RunError> {
    let sig = cfg.signal(&r.signal).ok_or(RunError::ReplaySignal)?;
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
        .ok_or(RunError::EmptyReplay)?;
    for s in &mut series {
        s.start += end - s.end();
    }
    // Every series gets its warm-up before the first cycle, the shortest one included.
    let latest_start = series.iter().map(|s| s.start).max().unwrap_or(end);
    let start = latest_start
        .saturating_add(r.warmup)
        .min(end.saturating_sub(sig.step));
    let start = start - start.rem_euclid(sig.step);
    Ok((Replay::new().with_signal(&r.signal, series), start, end))
}

/// Turns SIGINT and SIGTERM into a stop request: the current cycle finishes (a running
/// `apply_command` is killed), the decision log is flushed, and the process exits 0.
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
        tracing::info!("stop requested: the cycle's reads give up, its acting finishes");
        let _ = stop.send(true);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_of_a_key_is_its_name() {
        assert_eq!(signal_of(&SeriesKey::new("cpu{instance=\"a\"}")), "cpu");
        assert_eq!(signal_of(&SeriesKey::new("demand")), "demand");
    }
}
