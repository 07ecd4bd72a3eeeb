//! `prescale simulate`: the flags of both simulator modes and the glue from them to the
//! library's plain options, reports and files. Trace replay (`--trace`) is
//! [`prescale::sim::replay`]; task queues (`--tasks`) are [`prescale::sim::batch`].

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use prescale::atomic_file::write_atomic;
use prescale::forecast::{Model, TrainOptions};
use prescale::plan::WorkloadSpec;
use prescale::series::{self, format_duration, parse_duration, HistoryOptions, Series};
use prescale::sim::batch::allocation::{self, Allocation};
use prescale::sim::batch::elastic::{self, ElasticPool};
use prescale::sim::batch::queue::{self, Discipline, Placement, QueueOptions};
use prescale::sim::batch::tasks::{self, Node, Task};
use prescale::sim::batch::TaskReport;
use prescale::sim::replay::report::{PolicyResult, ReplicaReport};
use prescale::sim::replay::scenario::{default_replica_capacity, Scenario, ScenarioOptions};
use prescale::sim::replay::sweep;
use prescale::sim::replay::{Knobs, PolicyKind, Workload};
use std::path::{Path, PathBuf};

mod shared;

/// `prescale simulate`: replay a trace through scaling policies (`--trace`), or run a task list
/// through queue disciplines and placements (`--tasks`).
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Trace to replay (`timestamp,value` or `timestamp,series,value`, as `train` reads).
    /// Repeat it with --pool-cap to replay several workloads on one capped pool: every series
    /// of every file is then one workload.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "tasks",
        required_unless_present = "tasks"
    )]
    pub trace: Vec<PathBuf>,
    /// Shared mode: the pool's cap in replicas, shared between the workloads of every --trace
    /// by each --allocation policy (default: all of none, priority, fair, static, market).
    #[arg(long, value_name = "REPLICAS")]
    pub pool_cap: Option<u32>,
    /// Shared mode: a workload's ranking keys, `NAME:key=value,...` with keys priority, weight,
    /// share, bid and team (repeat per workload; NAME is its series, e.g. the file's stem).
    #[arg(long, value_name = "NAME:KEY=VALUE,...")]
    pub workload_opts: Vec<String>,
    /// Which series of a long-format trace to replay; default: the first.
    #[arg(long)]
    pub series: Option<String>,
    /// Policies to replay, comma separated; the oracle is always computed as the cost floor.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "predictive,reactive,static,persistence,oracle"
    )]
    pub policy: Vec<PolicyArg>,
    /// Sweep each policy's risk knob and report cost-versus-risk curves.
    #[arg(long)]
    pub sweep: bool,
    /// Directory for report.json, decisions CSV files and charts.
    #[arg(long, value_name = "DIR")]
    pub report: PathBuf,
    /// A trained model for the predictive policy (its step must be the trace's after
    /// resampling). Without it a model is trained on the history part of the trace.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Share of the trace at its start used as history (model training, the static baseline's
    /// percentile); every policy is replayed on the rest.
    #[arg(long, default_value_t = 0.3)]
    pub train_fraction: f64,
    /// Step to resample the trace onto; default: its median spacing (or the model's step).
    #[arg(long, value_parser = parse_duration)]
    pub step: Option<i64>,
    /// Forecast window of a model trained here.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub window: i64,
    /// Trees of a model trained here.
    #[arg(long, default_value_t = 50)]
    pub trees: usize,
    /// prescale.toml: the workload (`[[workload]]`) to simulate is taken from it: replica
    /// capacity (× target utilisation), boot time, bounds, quantile, headroom, tolerance,
    /// scale-down window and step limits. Flags given explicitly override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Which `[[workload]]` of --config (by name); default: the one whose `demand` is the
    /// trace's series, or the only one.
    #[arg(long)]
    pub workload: Option<String>,
    /// Demand one replica serves, in the trace's unit; default: from --config, else a tenth
    /// of the history's median, so a typical step needs about ten replicas.
    #[arg(long)]
    pub replica_capacity: Option<f64>,
    /// Time from scale-up to serving, rounded up to whole steps (at least one); default: from
    /// --config, else 3m.
    #[arg(long, value_parser = parse_duration_or_zero)]
    pub boot_time: Option<i64>,
    /// Fewest replicas; default: from --config, else 1.
    #[arg(long)]
    pub min_replicas: Option<u32>,
    /// Most replicas; default: from --config, else enough for twice the trace's peak (no
    /// effective limit).
    #[arg(long)]
    pub max_replicas: Option<u32>,
    /// Predictive: forecast quantile provisioned to; default: from --config, else 0.9.
    #[arg(long)]
    pub quantile: Option<f64>,
    /// Predictive: a budget of short steps (`1%`, `0.5%` or `0.01`) instead of --quantile: the
    /// planner provisions at the budget's forecast level times a margin calibrated online, as
    /// `max_short` in prescale.toml; default: from --config, else none.
    #[arg(long, value_name = "SHARE", value_parser = parse_max_short)]
    pub max_short: Option<f64>,
    /// Predictive: extra capacity on top of the forecast (0.1 = 10 %); default: from
    /// --config, else 0.
    #[arg(long)]
    pub headroom: Option<f64>,
    /// Predictive: the planner's target utilisation of a replica, (0, 1]; default: from
    /// --config, else 1 (replica capacity is the load one replica should carry).
    #[arg(long)]
    pub target_utilization: Option<f64>,
    /// Reactive: the HPA's target utilisation, (0, 1].
    #[arg(long, default_value_t = 0.8)]
    pub hpa_target: f64,
    /// Static: percentile of the history's demand it is sized for.
    #[arg(long, default_value_t = 95.0)]
    pub static_percentile: f64,
    /// Persistence: margin on the peak of the last forecast window (--window, or the model's):
    /// 0.1 = 10 % above it, −0.1 below it.
    #[arg(long, default_value_t = 0.0)]
    pub persistence_margin: f64,
    /// Seed for model training and the task generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Task list (`id,submit,duration,priority,cpu,mem,gpu`, optionally then `tenant` and/or
    /// `bid`) or `gen:N` for N generated tasks.
    #[arg(long, value_name = "FILE|gen:N")]
    pub tasks: Option<String>,
    /// Nodes (`[[node]]` TOML: name, cpu, mem, gpu, weight) or `gen:N`. Default: gen:16.
    #[arg(long, value_name = "FILE|gen:N", default_value = "gen:16")]
    pub nodes: String,
    /// Queue disciplines to run, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "fcfs,sjf,priority,rr,mlfq"
    )]
    pub queue: Vec<DisciplineArg>,
    /// Placement strategies to run, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "least-loaded"
    )]
    pub placement: Vec<PlacementArg>,
    /// Allocation policies, comma separated. Task mode: sharing the cluster between tenants
    /// (none by default; `none` is refused), each on every --placement that is least-loaded,
    /// best-fit or ffd. Shared trace mode (--pool-cap): sharing the cap between workloads
    /// (default: none, priority, fair, static, market; `dynamic` is refused).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub allocation: Vec<AllocationArg>,
    /// Time slice of round robin and the MLFQ's top level.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub quantum: i64,
    /// Priority gained per hour waited under the priority discipline (0 = no aging).
    #[arg(long, default_value_t = 6.0)]
    pub aging_per_hour: f64,
    /// Seconds between MLFQ boosts to the top level (0 = never).
    #[arg(long, default_value = "1h", value_parser = parse_duration_or_zero)]
    pub mlfq_boost: i64,
    /// A task that waited longer than this counts as starved.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub starve_after: i64,
    /// Offered CPU load of generated tasks, as a share of the cluster's CPU.
    #[arg(long, default_value_t = 0.85)]
    pub load: f64,
    /// The elastic pool of task-queue mode (`--autoscale`).
    #[command(flatten)]
    pub autoscale: AutoscaleArgs,
}

/// A duration, or a bare `0` (which [`parse_duration`] refuses: a zero step makes no sense, a
/// zero boot time or boost period does). The one spelling for every flag that may be zero.
fn parse_duration_or_zero(text: &str) -> Result<i64, series::DurationError> {
    if text.trim() == "0" {
        return Ok(0);
    }
    parse_duration(text)
}

/// A short-step budget as `max_short` takes it: a share in (0, 50 %].
fn parse_max_short(text: &str) -> Result<f64, String> {
    let v = prescale::plan::parse_share(text).map_err(|e| e.to_string())?;
    if !(v > 0.0 && v <= 0.5) {
        return Err(format!("'{text}' must be a share in (0, 50%]"));
    }
    Ok(v)
}

/// `--autoscale` and the elastic pool's settings (part of `prescale simulate`).
#[derive(Debug, Clone, Args)]
pub struct AutoscaleArgs {
    /// Task-queue mode: also run every queue × placement on an elastic pool that prescale's
    /// node planner grows ahead of the forecast backlog, and compare it with the fixed
    /// --nodes cluster (uses --quantile, --headroom, --trees, --train-fraction, --seed).
    #[arg(long)]
    pub autoscale: bool,
    /// CPU cores of one pool node; default: the most common --nodes shape that fits every
    /// task, else the largest of each resource.
    #[arg(long)]
    pub node_cpu: Option<f64>,
    /// Memory of one pool node (the tasks' unit); default as --node-cpu.
    #[arg(long)]
    pub node_mem: Option<f64>,
    /// GPUs of one pool node; default as --node-cpu.
    #[arg(long)]
    pub node_gpu: Option<f64>,
    /// Time from "add node" to the node taking tasks.
    #[arg(long, default_value = "3m", value_parser = parse_duration_or_zero)]
    pub node_boot_time: i64,
    /// Fewest pool nodes (the pool starts with this many, ready).
    #[arg(long, default_value_t = 1)]
    pub min_nodes: u32,
    /// Most pool nodes; default: twice the --nodes count.
    #[arg(long)]
    pub max_nodes: Option<u32>,
    /// A node is removed only after removal has fitted the forecast for this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration_or_zero)]
    pub node_scale_down_window: i64,
    /// Time between planning cycles (the backlog series' step).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub plan_interval: i64,
}

/// `--policy` values: [`PolicyKind`] as clap spells and documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// prescale's planner on the model's forecasts.
    Predictive,
    /// The Kubernetes HPA rule.
    Reactive,
    /// A fixed size at a percentile of the training part.
    Static,
    /// The peak of the last boot time plus a margin.
    Persistence,
    /// Perfect foresight.
    Oracle,
}

impl From<PolicyArg> for PolicyKind {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Predictive => PolicyKind::Predictive,
            PolicyArg::Reactive => PolicyKind::Reactive,
            PolicyArg::Static => PolicyKind::Static,
            PolicyArg::Persistence => PolicyKind::Persistence,
            PolicyArg::Oracle => PolicyKind::Oracle,
        }
    }
}

/// `--queue` values: [`Discipline`] as clap spells and documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisciplineArg {
    /// First come, first served, non-pre-emptive.
    Fcfs,
    /// Shortest job first (by duration), non-pre-emptive.
    Sjf,
    /// Highest priority first, non-pre-emptive, with aging: a task's effective priority grows by
    /// `aging` per second waited, so nothing waits for ever.
    Priority,
    /// Round robin: FIFO with a time slice; at the end of a slice a task is pre-empted and
    /// goes to the back if anyone is waiting.
    Rr,
    /// Multi-level feedback queue: new tasks enter the top level; a task that uses up its
    /// slice drops a level (slices double per level) and is pre-empted if anyone is waiting;
    /// the highest non-empty level goes first; every `boost` seconds all tasks return to the
    /// top against starvation.
    Mlfq,
}

impl From<DisciplineArg> for Discipline {
    fn from(d: DisciplineArg) -> Self {
        match d {
            DisciplineArg::Fcfs => Discipline::Fcfs,
            DisciplineArg::Sjf => Discipline::Sjf,
            DisciplineArg::Priority => Discipline::Priority,
            DisciplineArg::Rr => Discipline::Rr,
            DisciplineArg::Mlfq => Discipline::Mlfq,
        }
    }
}

/// `--allocation` values: [`Allocation`] as clap spells and documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocationArg {
    /// Shared trace mode only: nobody is cut, every workload gets what it wants (the cap is
    /// ignored: today's behaviour).
    None,
    /// Static partitioning: each tenant a fixed, equal share of every resource it uses.
    Static,
    /// On demand: first come, first served across tenants.
    Dynamic,
    /// Highest task priority first, never overtaken by a lower one.
    Priority,
    /// Dominant-resource fair share across tenants.
    Fair,
    /// Highest bid first.
    Market,
}

impl From<AllocationArg> for Allocation {
    fn from(a: AllocationArg) -> Self {
        match a {
            // Refused in task mode before conversion (`task_mode`); on-demand is the task
            // queue's uncapped policy.
            AllocationArg::None => Allocation::Dynamic,
            AllocationArg::Static => Allocation::Static,
            AllocationArg::Dynamic => Allocation::Dynamic,
            AllocationArg::Priority => Allocation::Priority,
            AllocationArg::Fair => Allocation::Fair,
            AllocationArg::Market => Allocation::Market,
        }
    }
}

/// `--placement` values: [`Placement`] as clap spells and documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlacementArg {
    /// The node whose fullest resource is least full.
    LeastLoaded,
    /// The node the task fills best: least spare capacity left (summed over resources, each
    /// relative to the node's size).
    BestFit,
    /// First node that fits, taking the batch at the head of the queue largest first.
    #[value(name = "ffd", alias = "first-fit-decreasing")]
    Ffd,
    /// The next node in turn that fits.
    #[value(name = "rr", alias = "round-robin")]
    RoundRobin,
    /// Smooth weighted round robin (as nginx): nodes chosen in proportion to their weight.
    #[value(name = "wrr", alias = "weighted-round-robin")]
    WeightedRoundRobin,
    /// Consistent hashing of task ids onto a ring of virtual nodes; the first node clockwise
    /// that fits.
    #[value(name = "hash", alias = "consistent-hash")]
    ConsistentHash,
}

impl From<PlacementArg> for Placement {
    fn from(p: PlacementArg) -> Self {
        match p {
            PlacementArg::LeastLoaded => Placement::LeastLoaded,
            PlacementArg::BestFit => Placement::BestFit,
            PlacementArg::Ffd => Placement::Ffd,
            PlacementArg::RoundRobin => Placement::RoundRobin,
            PlacementArg::WeightedRoundRobin => Placement::WeightedRoundRobin,
            PlacementArg::ConsistentHash => Placement::ConsistentHash,
        }
    }
}

/// Runs `prescale simulate`.
pub(crate) fn run(a: SimulateArgs) -> Result<()> {
    if a.pool_cap.is_some() || a.trace.len() > 1 {
        return shared::run(&a);
    }
    if !a.workload_opts.is_empty() {
        bail!("--workload-opts is for shared mode (--pool-cap)");
    }
    match (a.trace.first(), &a.tasks) {
        (Some(trace), _) => replica_mode(&a, trace),
        (None, Some(tasks)) => task_mode(&a, tasks),
        (None, None) => {
            bail!("give --trace FILE (replica simulation) or --tasks FILE|gen:N (task queues)")
        }
    }
}

/// Refuses replay flags out of range before anything is read.
fn check_replay_flags(a: &SimulateArgs) -> Result<()> {
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
    let loaded = match &a.model {
        Some(p) => Some(Model::load(p)?),
        None => None,
    };
    let step = match (a.step, &loaded) {
        (Some(s), Some(m)) if s != m.spec.step => bail!(
            "--step {} differs from the model's step {}",
            format_duration(s),
            format_duration(m.spec.step)
        ),
        (s, m) => s.or(m.as_ref().map(|m| m.spec.step)),
    };
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
    Ok((loaded, pick_series(all, a.series.as_deref())?))
}

/// The workload replayed: flags first, then `--config`'s `[[workload]]`, then defaults drawn
/// from the trace (`history` is its head).
fn workload(a: &SimulateArgs, trace: &Path, series: &Series, history: &[f64]) -> Result<Workload> {
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
            ((2.0 * peak / replica_capacity).ceil() as u32).max(min_replicas.max(1)) + 1
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
fn model(
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
            let m = Model::train(&[series.slice(0..split)], &opts)
                .context("training a model on the history part of the trace (pass --model to use a trained one)")?;
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

fn replica_mode(a: &SimulateArgs, trace: &Path) -> Result<()> {
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
fn scenario_options(
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

fn task_mode(a: &SimulateArgs, spec: &str) -> Result<()> {
    let nodes: Vec<Node> = match tasks::gen_count(&a.nodes)? {
        Some(n) => tasks::generate_nodes(n),
        None => tasks::read_nodes(Path::new(&a.nodes))?,
    };
    let (task_list, source): (Vec<Task>, String) = match tasks::gen_count(spec)? {
        Some(n) => (
            tasks::generate_tasks(n, &nodes, a.load, a.seed),
            format!("{n} generated tasks (seed {})", a.seed),
        ),
        None => (tasks::read_tasks(Path::new(spec))?, spec.to_string()),
    };
    let opts = QueueOptions {
        quantum: a.quantum as f64,
        mlfq_boost: a.mlfq_boost as f64,
        aging: a.aging_per_hour / 3600.0,
        starve_after: a.starve_after as f64,
        ..QueueOptions::default()
    };
    let mut results = Vec::new();
    for &d in &a.queue {
        for &p in &a.placement {
            let (d, p): (Discipline, Placement) = (d.into(), p.into());
            let started = std::time::Instant::now();
            let m = queue::run(&task_list, &nodes, d, p, &opts)?;
            tracing::debug!(
                "{} × {}: {:.2}s",
                d.as_str(),
                p.as_str(),
                started.elapsed().as_secs_f64()
            );
            results.push(m);
        }
    }
    let placements: Vec<Placement> = a.placement.iter().map(|&p| p.into()).collect();
    let alloc_placements: Vec<Placement> = placements
        .iter()
        .copied()
        .filter(|p| allocation::PLACEMENTS.contains(p))
        .collect();
    if a.allocation.contains(&AllocationArg::None) {
        bail!("--allocation none is for shared trace mode (--trace … --pool-cap); task mode has static, dynamic, priority, fair and market");
    }
    if !a.allocation.is_empty() && alloc_placements.is_empty() {
        bail!("--allocation runs place by least-loaded, best-fit or ffd: add one of them to --placement");
    }
    let mut allocations = Vec::new();
    for &al in &a.allocation {
        for &p in &alloc_placements {
            allocations.push(allocation::run(
                &task_list,
                &nodes,
                al.into(),
                p,
                opts.starve_after,
            )?);
        }
    }
    let autoscale = if a.autoscale.autoscale {
        let pool = elastic_pool(a, &nodes, &task_list);
        pool.validate()?;
        let started = std::time::Instant::now();
        let r = elastic::compare(&task_list, &results, nodes.len(), &pool, &opts)?;
        tracing::debug!("autoscaled runs: {:.2}s", started.elapsed().as_secs_f64());
        Some(r)
    } else {
        None
    };
    let (first, last) = task_list
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
            (lo.min(t.submit), hi.max(t.submit))
        });
    let report = TaskReport {
        tasks: source,
        nodes: nodes.len(),
        asked_load: tasks::gen_count(spec)?.map(|_| a.load),
        offered_load: tasks::offered_load(&task_list, &nodes),
        arrival_period: (last - first).max(0.0),
        options: opts,
        runs: results,
        allocations,
        autoscale,
    };
    print!("{}", report.table());
    std::fs::create_dir_all(&a.report).with_context(|| a.report.display().to_string())?;
    if let Some(auto) = &report.autoscale {
        for p in auto.write(&a.report)? {
            println!("wrote {}", p.display());
        }
    }
    let json = a.report.join("report.json");
    let text = serde_json::to_vec_pretty(&report)?;
    write_atomic(&json, |w| w.write_all(&text)).with_context(|| json.display().to_string())?;
    println!("wrote {}", json.display());
    if tasks::gen_count(spec)?.is_some() {
        let p = a.report.join("tasks.csv");
        tasks::write_tasks(&p, &task_list).with_context(|| p.display().to_string())?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// The elastic pool of `--autoscale`: `--node-*` over the default shape of `nodes` and
/// `tasks`, with the replay flags it shares (quantile, headroom, training).
fn elastic_pool(a: &SimulateArgs, nodes: &[Node], tasks: &[Task]) -> ElasticPool {
    let x = &a.autoscale;
    let base = elastic::default_shape(nodes, tasks);
    let shape = Node {
        cpu: x.node_cpu.unwrap_or(base.cpu),
        mem: x.node_mem.unwrap_or(base.mem),
        gpu: x.node_gpu.unwrap_or(base.gpu),
        weight: x.node_cpu.unwrap_or(base.cpu).max(1.0),
        ..base
    };
    ElasticPool {
        shape,
        boot_time: x.node_boot_time,
        min_nodes: x.min_nodes,
        max_nodes: x
            .max_nodes
            .unwrap_or_else(|| (2 * nodes.len()).min(u32::MAX as usize).max(1) as u32),
        scale_down_window: x.node_scale_down_window,
        interval: x.plan_interval,
        quantile: a.quantile.unwrap_or(0.9),
        headroom: a.headroom.unwrap_or(0.0),
        train_fraction: a.train_fraction,
        trees: a.trees,
        seed: a.seed,
    }
}
