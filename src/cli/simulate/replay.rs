//! `prescale simulate --trace FILE`: one trace replayed through the scaling policies (and
//! swept with `--sweep`). The workload, the model and the layout of the trace are drawn from
//! the flags, then `--config`, then the trace itself; shared mode (`shared`) reuses them per
//! workload.

use super::SimulateArgs;
use anyhow::{bail, Context, Result};
use prescale::forecast::{FeatureError, Model, ModelError, TrainOptions};
use prescale::plan::WorkloadSpec;
use prescale::series::{self, format_duration, HistoryOptions, Series};
use prescale::sim::replay::report::{PolicyResult, ReplicaReport};
use prescale::sim::replay::scenario::{default_replica_capacity, Scenario, ScenarioOptions};
use prescale::sim::replay::sweep;
use prescale::sim::replay::{Knobs, PolicyKind, Workload};
use std::path::Path;

/// Refuses replay flags out of range before anything is read.
pub(super) fn check_replay_flags(a: &SimulateArgs) -> Result<()> {
    if a.autoscale.autoscale {
        bail!("--autoscale is for task-queue mode (--tasks)");
    }
    if !(a.train_fraction > 0.0 && a.train_fraction < 1.0) {
        bail!(
            "--train-fraction must be between 0 and 1 (exclusive), got {}",
            a.train_fraction
        );
    }
    if !(a.hpa_target > 0.0 && a.hpa_target <= 1.0) {
        bail!("--hpa-target must be in (0, 1], got {}", a.hpa_target);
    }
    if let Some(q) = a.quantile {
        if !(q > 0.0 && q < 1.0) {
            bail!("--quantile must be in (0, 1), got {q}");
        }
    }
    if let Some(u) = a.target_utilization {
        if !(u > 0.0 && u <= 1.0) {
            bail!("--target-utilization must be in (0, 1], got {u}");
        }
    }
    if let Some(h) = a.headroom {
        if !(h.is_finite() && h >= 0.0) {
            bail!("--headroom must be ≥ 0, got {h}");
        }
    }
    if !(a.persistence_margin.is_finite() && a.persistence_margin > -1.0) {
        bail!(
            "--persistence-margin must be > -1 (−100 %), got {}",
            a.persistence_margin
        );
    }
    if !(0.0..=100.0).contains(&a.static_percentile) {
        bail!(
            "--static-percentile must be in [0, 100], got {}",
            a.static_percentile
        );
    }
    Ok(())
}

/// The `--model` (if any) and the trace's series on the model's step (or `--step`).
fn load_trace(a: &SimulateArgs, trace: &Path) -> Result<(Option<Model>, Series)> {
    let loaded = load_model(a, &[trace])?;
    let step = a.step.or(loaded.as_ref().map(|m| m.spec.step));
    let all = read_trace(trace, step)?;
    Ok((loaded, pick_series(all, a.series.as_deref())?))
}

/// The `--model`, if given, refused when `--step` asks for another step than its own: its
/// features (lags, rolling windows, seasons) count steps, so on another step they would be
/// of the wrong time scale. Refused as `backtest --model` and `run` refuse it
/// ([`FeatureError::StepMismatch`]), naming the `traces` that would have been replayed, and
/// before any of them is read.
pub(super) fn load_model(a: &SimulateArgs, traces: &[&Path]) -> Result<Option<Model>> {
    let Some(path) = &a.model else {
        return Ok(None);
    };
    let m = Model::load(path)?;
    if let Some(step) = a.step.filter(|&s| s != m.spec.step) {
        let names: Vec<String> = traces.iter().map(|t| t.display().to_string()).collect();
        return Err(anyhow::Error::new(FeatureError::StepMismatch {
            trained: m.spec.step,
            found: step,
        })
        .context(format!(
            "{}: replayed at --step {} with --model {} (leave --step out to replay on the \
             model's step {})",
            names.join(", "),
            format_duration(step),
            path.display(),
            format_duration(m.spec.step)
        )));
    }
    Ok(Some(m))
}

/// Every series of `trace` on `step` (default: its median spacing), what was read logged.
pub(super) fn read_trace(trace: &Path, step: Option<i64>) -> Result<Vec<Series>> {
    let (all, reports) = series::read_history(
        &[trace.to_path_buf()],
        &HistoryOptions {
            step,
            max_gap: None,
        },
    )?;
    for r in &reports {
        tracing::info!("read {}", r.summary());
    }
    Ok(all)
}

/// The workload replayed: flags first, then `--config`'s `[[workload]]`, then defaults drawn
/// from the trace (`history` is its head).
pub(super) fn workload(
    a: &SimulateArgs,
    trace: &Path,
    series: &Series,
    history: &[f64],
) -> Result<Workload> {
    let configured = match &a.config {
        Some(path) => Some(config_workload(
            path,
            a.workload.as_deref(),
            series.key.as_str(),
        )?),
        None => None,
    };
    let from_config = configured.as_ref().map(|w| w.effective_capacity());
    let replica_capacity = match a.replica_capacity.or(from_config) {
        Some(c) if c.is_finite() && c > 0.0 => c,
        Some(c) => bail!("--replica-capacity must be a number > 0, got {c}"),
        None => default_replica_capacity(history).with_context(|| {
            format!(
                "{}: the history part has no demand above zero; give --replica-capacity",
                trace.display()
            )
        })?,
    };
    let peak = series
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let c = configured.as_ref();
    let min_replicas = a.min_replicas.or(c.map(|w| w.min_replicas)).unwrap_or(1);
    let max_replicas = a
        .max_replicas
        .or(c.map(|w| w.max_replicas))
        .unwrap_or_else(|| {
            // Saturating: a tiny --replica-capacity makes the first term u32::MAX (the cast
            // saturates), and + 1 overflowed (a panic, or 0 and a refusal of bounds the user
            // never gave).
            ((2.0 * peak / replica_capacity).ceil() as u32)
                .max(min_replicas.max(1))
                .saturating_add(1)
        });
    Ok(Workload {
        name: c.map_or_else(|| series.key.to_string(), |w| w.name.clone()),
        replica_capacity,
        boot_time: a.boot_time.or(c.map(|w| w.boot_time)).unwrap_or(180),
        min_replicas,
        max_replicas,
        tolerance: c.map_or(0.1, |w| w.tolerance),
        scale_down_window: c.map_or(300, |w| w.scale_down_window),
        spec: configured,
    })
}

/// The model for the predictive policy and how the report names it: `--model`, else one
/// trained on the trace's first `split` steps when the predictive policy runs.
pub(super) fn model(
    a: &SimulateArgs,
    loaded: Option<Model>,
    series: &Series,
    split: usize,
    wants_model: bool,
) -> Result<(Option<Model>, String)> {
    Ok(match loaded {
        Some(m) => (
            Some(m),
            format!(
                "model file {}",
                a.model
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        ),
        None if wants_model => {
            let opts = TrainOptions {
                n_trees: a.trees,
                seed: a.seed,
                ..TrainOptions::new(series.step, a.window)
            };
            let started = std::time::Instant::now();
            let m = Model::train(&[series.slice(0..split)], &opts).map_err(|e| {
                let why = too_short(a, &opts, series.len(), split, &e).unwrap_or_else(|| {
                    "training a model on the history part of the trace (pass --model to use a \
                     trained one)"
                        .into()
                });
                anyhow::Error::new(e).context(why)
            })?;
            tracing::info!(
                "trained a {}-tree model on {} steps in {:.1}s",
                a.trees,
                split,
                started.elapsed().as_secs_f64()
            );
            let name = format!(
                "a {}-tree forest trained on the first {:.0}% of the trace (window {})",
                a.trees,
                a.train_fraction * 100.0,
                format_duration(a.window)
            );
            (Some(m), name)
        }
        None => (None, "none (the predictive policy was not run)".into()),
    })
}

/// What to tell the user when training failed for too little history: how much the step and
/// window need, what the trace has, and what to change. `None` when that is not the cause.
fn too_short(
    a: &SimulateArgs,
    opts: &TrainOptions,
    len: usize,
    split: usize,
    e: &ModelError,
) -> Option<String> {
    if !matches!(e, ModelError::TooLittleData { .. } | ModelError::Forest(_)) {
        return None;
    }
    let needed = opts.history_needed().filter(|&n| split < n)?;
    let span = |steps: usize| format_duration(steps as i64 * opts.step);
    let remedy = if needed + 2 <= len {
        let fraction = (needed as f64 / len as f64 * 100.0).ceil() / 100.0;
        format!("give --train-fraction {fraction:.2} or more, ")
    } else {
        format!("the whole trace has {len} steps; ")
    };
    Some(format!(
        "the history part (the first {:.0}% of the trace, {split} steps of {}: {}) is too short \
         to train a model with a {} window at a {} step: that needs at least {needed} steps \
         ({}) of history; {remedy}a shorter --window, a coarser --step, or --model with a \
         model trained elsewhere",
        a.train_fraction * 100.0,
        format_duration(opts.step),
        span(split),
        format_duration(opts.window),
        format_duration(opts.step),
        span(needed),
    ))
}

/// Replays `trace` through every `--policy` and writes the report.
pub(super) fn run(a: &SimulateArgs, trace: &Path) -> Result<()> {
    check_replay_flags(a)?;
    let (loaded, series) = load_trace(a, trace)?;
    let split = ((series.len() as f64) * a.train_fraction).round() as usize;
    if split < 2 || split + 2 > series.len() {
        bail!(
            "{}: {} steps is too short to split {:.0}% history / {:.0}% simulated",
            trace.display(),
            series.len(),
            a.train_fraction * 100.0,
            (1.0 - a.train_fraction) * 100.0
        );
    }
    let workload = workload(a, trace, &series, &series.values[..split])?;
    let c = workload.spec.as_ref();
    let knobs = Knobs {
        quantile: a.quantile.or(c.map(|w| w.quantile)).unwrap_or(0.9),
        max_short: a.max_short.or(c.and_then(|w| w.max_short)),
        headroom: a.headroom.or(c.map(|w| w.headroom)).unwrap_or(0.0),
        forecast_margin: None,
        target_utilization: a.target_utilization.unwrap_or(1.0),
        hpa_target: a.hpa_target,
        static_percentile: a.static_percentile,
        static_margin: 0.0,
        persistence_margin: a.persistence_margin,
    };
    let kinds: Vec<PolicyKind> = {
        let mut k: Vec<PolicyKind> = a.policy.iter().map(|&p| p.into()).collect();
        k.sort();
        k.dedup();
        k
    };
    let wants_model = kinds.contains(&PolicyKind::Predictive);
    let (model, model_name) = model(a, loaded, &series, split, wants_model)?;
    let scenario = Scenario::new(
        &series,
        &scenario_options(a, split, workload, model.as_ref())?,
        model.as_ref(),
    )?;
    let mut results = Vec::new();
    for &k in &kinds {
        let (run, scores) = scenario.run(k, &knobs)?;
        results.push(PolicyResult {
            policy: k,
            knob: knobs.describe(k),
            scores,
            run,
        });
    }
    let curves = if a.sweep {
        let swept: Vec<PolicyKind> = kinds
            .iter()
            .copied()
            .filter(|k| *k != PolicyKind::Oracle)
            .collect();
        Some(sweep::run(&scenario, &swept)?)
    } else {
        None
    };
    let report = ReplicaReport::new(trace, model_name, &scenario, knobs, results, curves);
    print!("{}", report.table());
    for p in report.write(&a.report)? {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// How the trace is laid out: from `split` on, the forecast window (the model's, else
/// `--window`) and `--config`'s `[online_calibration]` (else its defaults, as `run` has).
pub(super) fn scenario_options(
    a: &SimulateArgs,
    split: usize,
    workload: Workload,
    model: Option<&Model>,
) -> Result<ScenarioOptions> {
    let online = match &a.config {
        Some(path) => {
            prescale::config::Config::load(path)?
                .live
                .online_calibration
        }
        None => prescale::forecast::OnlineConfig::default(),
    };
    Ok(ScenarioOptions {
        window: model.map_or(a.window, |m| m.spec.window),
        online,
        ..ScenarioOptions::new(split, workload)
    })
}

/// The `[[workload]]` of a prescale.toml to simulate: by name, else the one whose demand is
/// the trace's series, else the only one. The whole file is read and validated as for `run`.
fn config_workload(path: &Path, name: Option<&str>, series: &str) -> Result<WorkloadSpec> {
    // The same reading and validation as `prescale run`, so a file that runs also simulates.
    let specs = prescale::config::Config::load(path)?.live.workloads;
    if specs.is_empty() {
        bail!("{}: no [[workload]] tables", path.display());
    }
    let names = || {
        specs
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = match name {
        Some(n) => specs.iter().find(|s| s.name == n),
        None => specs
            .iter()
            .find(|s| s.demand.as_str() == series)
            .or(if specs.len() == 1 {
                specs.first()
            } else {
                None
            }),
    };
    match (found, name) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(n)) => bail!(
            "{}: no workload named '{n}'; it has: {}",
            path.display(),
            names()
        ),
        (None, None) => bail!(
            "{}: several workloads and none has demand '{series}'; pick one with --workload ({})",
            path.display(),
            names()
        ),
    }
}

fn pick_series(all: Vec<Series>, name: Option<&str>) -> Result<Series> {
    match name {
        None => all.into_iter().next().context("the trace holds no series"),
        Some(n) => {
            let names: Vec<String> = all.iter().map(|s| s.key.to_string()).collect();
            all.into_iter()
                .find(|s| s.key.as_str() == n)
                .with_context(|| {
                    format!("no series '{n}' in the trace; it has: {}", names.join(", "))
                })
        }
    }
}
