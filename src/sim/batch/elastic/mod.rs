//! Task-queue mode with prescale's node planner in the loop: the same tasks on the fixed
//! `--nodes` cluster and on an elastic pool that [`plan::NodePlanner`](crate::plan::NodePlanner)
//! grows ahead of the forecast backlog.
//!
//! Every planning interval [`BacklogScaler`]:
//!
//! 1. measures the backlog: the resources (CPU, memory, GPU) requested by every task submitted
//!    and not finished, queued or running: what the cluster still has to get through;
//! 2. forecasts each resource's peak over the next window (node boot time + one interval: a
//!    node asked for now serves from one boot time on, until the next plan could act). Once
//!    enough backlog history exists, prescale's forest ([`Model::train`] on the backlog
//!    series observed so far: the run stays causal) forecasts it at `--quantile`; before that
//!    (or when the run is too short for the forest) a documented fallback does: the peak of
//!    the last window (persistence, the forest's own base) or, if higher, the newest value
//!    plus its growth over the last window extrapolated across the next one;
//! 3. hands [`NodePlanner::plan`] the pool and one synthetic workload, and carries out its
//!    `AddNode` (nodes join after the boot time) and `RemoveNode` (the node drains: it takes
//!    no new tasks and leaves when its last one ends) decisions.
//!
//! # The mapping onto the node planner
//!
//! The planner plans replicas of workloads. The backlog becomes one workload, `backlog`,
//! whose replica is a *slice*: 1/[`SLICES_PER_NODE`] of a node in every resource. Then
//!
//! - desired replicas = ⌈slices × forecast peak in nodes⌉, where the forecast in nodes is the
//!   scarcest resource's `peak / node capacity` (GPUs included, though the planner's own
//!   resource model has only CPU and memory: a slice carries its share of GPUs implicitly),
//!   times `1 + --headroom`;
//! - each ready node reports the slices its running tasks occupy: ⌈slices × its fullest
//!   resource's requested share⌉, so "the emptiest node" the planner removes is the one with
//!   the least running work, the cheapest to drain;
//! - the pool's `target_utilization` is 1: batch tasks are not moved, so the planner's
//!   "node runs hot, move replicas off" has nothing to act on, and nodes are meant to be
//!   filled to their requests; the safety margin is the forecast quantile and `--headroom`.
//!
//! Proportional slices pack exactly (a node holds `SLICES_PER_NODE` of them), so the planner's
//! node count is the forecast in nodes rounded up, its boot-time lead, min/max and scale-down
//! window apply unchanged, and `Place`/`Move` decisions (about where slices sit) are not acted
//! on: the queue's placement strategy places the real tasks.
//!
//! [`Model::train`]: crate::forecast::Model::train
//! [`NodePlanner::plan`]: crate::plan::NodePlanner::plan

mod report;
mod scaler;
#[cfg(test)]
mod tests;

pub use report::AutoscaleReport;
pub use scaler::{BacklogScaler, NodeDecision, PlanStep, Source};

use super::error::BatchError;
use super::queue::{self, ClusterLog, QueueMetrics, QueueOptions};
use super::tasks::{Node, Res, Task};
use crate::plan::{PoolSpec, Resources};
use report::shape_text;
use serde::Serialize;

/// Slices (synthetic replicas) per node; see the module documentation. Eight keeps a node's
/// running work rounded up to an eighth, fine enough for removal decisions and cheap to plan.
pub const SLICES_PER_NODE: u32 = 8;

/// Name of the elastic pool (and prefix of its nodes' names).
pub const POOL: &str = "elastic";

const WORKLOAD: &str = "backlog";
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const RESOURCES: [&str; 3] = ["cpu", "mem", "gpu"];
/// Rows the forest needs before it will train (see `Model::train`).
const FOREST_ROWS: usize = 50;

fn flag_error(flag: &'static str, message: String) -> BatchError {
    BatchError::Flag { flag, message }
}

/// The elastic pool and how it is planned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElasticPool {
    /// One node.
    pub shape: Node,
    /// Seconds from "add node" to taking tasks.
    pub boot_time: i64,
    /// Fewest nodes (also the nodes at the start).
    pub min_nodes: u32,
    /// Most nodes.
    pub max_nodes: u32,
    /// Seconds removal must have fitted before a node goes.
    pub scale_down_window: i64,
    /// Seconds between planning cycles.
    pub interval: i64,
    /// Forecast quantile provisioned to.
    pub quantile: f64,
    /// Extra capacity on top of the forecast (0.1 = 10 %).
    pub headroom: f64,
    /// Share of the arrivals' planning steps after which the forest is trained.
    pub train_fraction: f64,
    /// Trees of the forest.
    pub trees: usize,
    /// Seed of the forest.
    pub seed: u64,
}

impl ElasticPool {
    /// Checks the settings; the error names the flag.
    pub fn validate(&self) -> Result<(), BatchError> {
        let s = &self.shape;
        for (flag, v) in [
            ("--node-cpu", s.cpu),
            ("--node-mem", s.mem),
            ("--node-gpu", s.gpu),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(flag_error(
                    flag,
                    format!("{flag} must be a number ≥ 0, got {v}"),
                ));
            }
        }
        if s.cpu <= 0.0 && s.mem <= 0.0 {
            return Err(flag_error(
                "--node-cpu",
                "a pool node must offer some CPU (--node-cpu) or memory (--node-mem)".into(),
            ));
        }
        if self.max_nodes == 0 {
            return Err(flag_error(
                "--max-nodes",
                "--max-nodes must be at least 1".into(),
            ));
        }
        if self.min_nodes > self.max_nodes {
            return Err(flag_error(
                "--min-nodes",
                format!(
                    "--min-nodes ({}) is greater than --max-nodes ({})",
                    self.min_nodes, self.max_nodes
                ),
            ));
        }
        if self.interval < 1 {
            return Err(flag_error(
                "--plan-interval",
                format!("--plan-interval must be ≥ 1s, got {}", self.interval),
            ));
        }
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(flag_error(
                "--quantile",
                format!("--quantile must be in (0, 1), got {}", self.quantile),
            ));
        }
        if !(self.headroom.is_finite() && self.headroom >= 0.0) {
            return Err(flag_error(
                "--headroom",
                format!("--headroom must be ≥ 0, got {}", self.headroom),
            ));
        }
        if !(self.train_fraction > 0.0 && self.train_fraction < 1.0) {
            return Err(flag_error(
                "--train-fraction",
                format!(
                    "--train-fraction must be between 0 and 1 (exclusive), got {}",
                    self.train_fraction
                ),
            ));
        }
        if self.boot_time < 0 || self.scale_down_window < 0 {
            return Err(flag_error(
                "--node-boot-time",
                "boot time and scale-down window must not be negative".into(),
            ));
        }
        Ok(())
    }

    /// The forecast window: a boot time plus one planning interval.
    pub fn window(&self) -> i64 {
        self.boot_time + self.interval
    }

    fn pool_spec(&self) -> PoolSpec {
        // Memory in bytes, reading the tasks' unit as GiB, so the planner's reasons say GiB.
        let mut p = PoolSpec::new(
            POOL,
            Resources::new(self.shape.cpu, self.shape.mem * GIB),
            self.max_nodes,
        );
        p.boot_time = self.boot_time;
        p.min_nodes = self.min_nodes;
        p.target_utilization = 1.0;
        p.scale_down_window = self.scale_down_window;
        p
    }
}

/// The default pool node: the most common shape of `nodes` (first seen wins ties) that fits
/// every task, else the largest of each resource (which fits every task that fits any node).
pub fn default_shape(nodes: &[Node], tasks: &[Task]) -> Node {
    let shape = |n: &Node| (n.cpu, n.mem, n.gpu);
    let mut counts: Vec<((f64, f64, f64), usize)> = Vec::new();
    for n in nodes {
        match counts.iter_mut().find(|c| c.0 == shape(n)) {
            Some(c) => c.1 += 1,
            None => counts.push((shape(n), 1)),
        }
    }
    let fits_all = |s: &(f64, f64, f64)| {
        let cap = Res {
            cpu: s.0,
            mem: s.1,
            gpu: s.2,
        };
        tasks.iter().all(|t| t.req.fits_in(&cap))
    };
    let mut best: Option<((f64, f64, f64), usize)> = None;
    for c in counts.iter().filter(|c| fits_all(&c.0)) {
        if best.is_none_or(|b| c.1 > b.1) {
            best = Some(*c);
        }
    }
    let (cpu, mem, gpu) = best.map(|b| b.0).unwrap_or_else(|| {
        nodes.iter().fold((0.0, 0.0, 0.0), |m, n| {
            (m.0.max(n.cpu), m.1.max(n.mem), m.2.max(n.gpu))
        })
    });
    Node {
        name: POOL.into(),
        cpu,
        mem,
        gpu,
        weight: cpu.max(1.0),
    }
}

/// One queue × placement on the fixed cluster and on the elastic pool.
#[derive(Debug, Clone, Serialize)]
pub struct ElasticRun {
    /// The fixed cluster's run.
    pub fixed: QueueMetrics,
    /// Node-hours of the fixed cluster: its nodes over its makespan.
    pub fixed_node_hours: f64,
    /// The elastic pool's run.
    pub autoscaled: QueueMetrics,
    /// The pool's nodes, node-hours and counts.
    pub cluster: ClusterLog,
    /// Which forecaster served the cycles.
    pub forecaster: String,
    /// Planning cycles the forest forecast.
    pub forest_cycles: usize,
    /// Planning cycles the fallback forecast.
    pub fallback_cycles: usize,
    /// Every planning cycle (also `nodes-<queue>-<placement>.csv`).
    #[serde(skip)]
    pub timeline: Vec<PlanStep>,
    /// The planner's node decisions (also `node-decisions-<queue>-<placement>.csv`).
    pub decisions: Vec<NodeDecision>,
}

/// Runs `tasks` under `discipline` × `placement` on the elastic pool; `fixed` is the same
/// pair's run on the fixed cluster of `fixed_nodes` nodes.
pub fn run(
    tasks: &[Task],
    fixed: QueueMetrics,
    fixed_nodes: usize,
    pool: &ElasticPool,
    opts: &QueueOptions,
) -> Result<ElasticRun, BatchError> {
    let (discipline, placement) = (fixed.discipline, fixed.placement);
    let first = tasks.iter().map(|t| t.submit).fold(f64::INFINITY, f64::min);
    let last = tasks
        .iter()
        .map(|t| t.submit)
        .fold(f64::NEG_INFINITY, f64::max);
    if !first.is_finite() {
        return Err(BatchError::NoTasks);
    }
    let mut scaler = BacklogScaler::new(pool, first, last)?;
    let initial = scaler.initial_nodes();
    let shape = [pool.shape.clone()];
    let (autoscaled, cluster) = queue::run_elastic(
        tasks,
        &initial,
        &shape,
        discipline,
        placement,
        opts,
        &mut scaler,
    )
    .map_err(|e| BatchError::Pool {
        shape: shape_text(&pool.shape),
        error: Box::new(e),
    })?;
    let forest_cycles = scaler
        .timeline
        .iter()
        .filter(|s| s.source == Source::Forest)
        .count();
    Ok(ElasticRun {
        fixed_node_hours: fixed_nodes as f64 * fixed.makespan / 3600.0,
        fixed,
        autoscaled,
        cluster,
        forecaster: scaler.forecaster,
        forest_cycles,
        fallback_cycles: scaler.timeline.len() - forest_cycles,
        timeline: scaler.timeline,
        decisions: scaler.decisions,
    })
}

/// Runs every fixed-cluster result again on the elastic pool, in order.
pub fn compare(
    tasks: &[Task],
    fixed_runs: &[QueueMetrics],
    fixed_nodes: usize,
    pool: &ElasticPool,
    opts: &QueueOptions,
) -> Result<AutoscaleReport, BatchError> {
    let runs = fixed_runs
        .iter()
        .map(|m| run(tasks, m.clone(), fixed_nodes, pool, opts))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AutoscaleReport {
        pool: pool.clone(),
        slices_per_node: SLICES_PER_NODE,
        fixed_nodes,
        runs,
    })
}
