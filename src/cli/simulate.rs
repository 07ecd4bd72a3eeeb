//! `prescale simulate`: the flags of both simulator modes and the glue from them to the
//! library's plain options, reports and files. Trace replay (`--trace`) is
//! [`prescale::sim::replay`]; task queues (`--tasks`) are [`prescale::sim::batch`].
//!
//! One file per idea: the flags and the dispatch here, the flags' value spellings in
//! `values`, one trace replayed (`replay`), several on one capped pool (`shared`), and task
//! queues (`tasks`).

use anyhow::{bail, Result};
use clap::Args;
use prescale::series::{self, parse_duration};
use std::path::PathBuf;

mod replay;
mod shared;
mod tasks;
mod values;

use values::{AllocationArg, DisciplineArg, PlacementArg, PolicyArg};

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

/// Runs `prescale simulate`.
pub(crate) fn run(a: SimulateArgs) -> Result<()> {
    if a.pool_cap.is_some() || a.trace.len() > 1 {
        return shared::run(&a);
    }
    if !a.workload_opts.is_empty() {
        bail!("--workload-opts is for shared mode (--pool-cap)");
    }
    match (a.trace.first(), &a.tasks) {
        (Some(trace), _) => replay::run(&a, trace),
        (None, Some(tasks)) => tasks::run(&a, tasks),
        (None, None) => {
            bail!("give --trace FILE (replica simulation) or --tasks FILE|gen:N (task queues)")
        }
    }
}
