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

use super::queue::{self, ClusterLog, ClusterView, NodeChange, NodePhase};
use super::queue::{QueueMetrics, QueueOptions, Scaler};
use super::tasks::{Node, Res, Task};
use crate::atomic_file::write_atomic;
use crate::chart::{self, Chart, Line};
use crate::forecast::{FeatureSpec, Model, TrainOptions};
use crate::plan::WorkloadSpec;
use crate::plan::{DecisionKind, NodePlanner, NodeState, PoolSpec, Resources, WorkloadLoad};
use crate::series::{format_duration, Series, SeriesKey};
use serde::Serialize;
use std::path::{Path, PathBuf};

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
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.shape;
        for (flag, v) in [
            ("--node-cpu", s.cpu),
            ("--node-mem", s.mem),
            ("--node-gpu", s.gpu),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{flag} must be a number ≥ 0, got {v}"));
            }
        }
        if s.cpu <= 0.0 && s.mem <= 0.0 {
            return Err(
                "a pool node must offer some CPU (--node-cpu) or memory (--node-mem)".into(),
            );
        }
        if self.max_nodes == 0 {
            return Err("--max-nodes must be at least 1".into());
        }
        if self.min_nodes > self.max_nodes {
            return Err(format!(
                "--min-nodes ({}) is greater than --max-nodes ({})",
                self.min_nodes, self.max_nodes
            ));
        }
        if self.interval < 1 {
            return Err(format!(
                "--plan-interval must be ≥ 1s, got {}",
                self.interval
            ));
        }
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(format!(
                "--quantile must be in (0, 1), got {}",
                self.quantile
            ));
        }
        if !(self.headroom.is_finite() && self.headroom >= 0.0) {
            return Err(format!("--headroom must be ≥ 0, got {}", self.headroom));
        }
        if !(self.train_fraction > 0.0 && self.train_fraction < 1.0) {
            return Err(format!(
                "--train-fraction must be between 0 and 1 (exclusive), got {}",
                self.train_fraction
            ));
        }
        if self.boot_time < 0 || self.scale_down_window < 0 {
            return Err("boot time and scale-down window must not be negative".into());
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

/// Which forecaster served a planning cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// prescale's forest, trained on the backlog so far.
    Forest,
    /// Persistence plus recent growth.
    Fallback,
}

/// One planning cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanStep {
    /// Seconds since the first submit.
    pub t: f64,
    /// Backlog (queued + running requests): CPU, memory, GPU.
    pub backlog: [f64; 3],
    /// The backlog in nodes (scarcest resource).
    pub backlog_nodes: f64,
    /// The forecast peak in nodes, headroom included.
    pub forecast_nodes: f64,
    /// Who forecast it.
    pub source: Source,
    /// Slices asked of the planner.
    pub desired_slices: u32,
    /// Nodes taking tasks.
    pub ready: usize,
    /// Nodes paid for: booting, ready and draining.
    pub paid: usize,
}

/// A node decision of the planner, as carried out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeDecision {
    /// Seconds since the first submit.
    pub t: f64,
    /// `add-node`, `remove-node` or `hold`.
    pub kind: String,
    /// Node count before.
    pub from: u32,
    /// Node count after.
    pub to: u32,
    /// The node removed.
    pub node: Option<String>,
    /// The planner's reason.
    pub reason: String,
}

/// The [`Scaler`] that puts prescale's node planner in the loop.
pub struct BacklogScaler {
    pool: ElasticPool,
    spec: PoolSpec,
    workload: WorkloadSpec,
    planner: NodePlanner,
    features: FeatureSpec,
    origin: f64,
    history: [Vec<f64>; 3],
    /// Backlog samples after which the forest is trained (`None`: never).
    train_at: Option<usize>,
    model: Option<Model>,
    trained: Vec<usize>,
    /// What the report says about the forecaster.
    pub forecaster: String,
    next_name: usize,
    /// Every planning cycle.
    pub timeline: Vec<PlanStep>,
    /// Every node decision.
    pub decisions: Vec<NodeDecision>,
}

impl BacklogScaler {
    /// A scaler for `pool`, for tasks whose arrivals span `first..=last_submit` seconds.
    pub fn new(pool: &ElasticPool, first: f64, last_submit: f64) -> Result<Self, String> {
        pool.validate()?;
        let features = FeatureSpec::new(pool.interval, pool.window())?;
        let cycles = ((last_submit - first).max(0.0) / pool.interval as f64).floor() as usize + 1;
        // Rows start after `min_history` steps and need a full window ahead for their
        // target; the forest wants `FOREST_ROWS` of them, counted on one series to be safe.
        let needed = features.min_history + features.horizon() + FOREST_ROWS;
        let at = ((cycles as f64 * pool.train_fraction).ceil() as usize).max(needed);
        let (train_at, forecaster) = if at <= cycles {
            (
                Some(at),
                format!(
                    "persistence + recent growth until {at} planning steps of backlog exist, then a {}-tree forest trained on them",
                    pool.trees
                ),
            )
        } else {
            (
                None,
                format!(
                    "persistence + recent growth throughout: the arrivals span {cycles} planning steps of {}, the forest needs {needed} (history {}, window {} step(s), {FOREST_ROWS} rows)",
                    format_duration(pool.interval),
                    features.min_history,
                    features.horizon()
                ),
            )
        };
        let mut workload = WorkloadSpec::new(
            WORKLOAD,
            WORKLOAD,
            1.0,
            SLICES_PER_NODE.saturating_mul(pool.max_nodes),
        );
        let k = f64::from(SLICES_PER_NODE);
        workload.resources = Resources::new(pool.shape.cpu / k, pool.shape.mem * GIB / k);
        workload.pool = Some(POOL.into());
        workload.min_replicas = 0;
        Ok(BacklogScaler {
            spec: pool.pool_spec(),
            pool: pool.clone(),
            workload,
            planner: NodePlanner::new(),
            features,
            origin: first,
            history: Default::default(),
            train_at,
            model: None,
            trained: Vec::new(),
            forecaster,
            next_name: 0,
            timeline: Vec::new(),
            decisions: Vec::new(),
        })
    }

    /// The nodes the pool starts with (`min_nodes`, ready).
    pub fn initial_nodes(&mut self) -> Vec<Node> {
        (0..self.pool.min_nodes).map(|_| self.new_node()).collect()
    }

    fn new_node(&mut self) -> Node {
        let name = format!("{POOL}-{:04}", self.next_name);
        self.next_name += 1;
        Node {
            name,
            ..self.pool.shape.clone()
        }
    }

    fn key(r: usize) -> SeriesKey {
        SeriesKey::new(format!("backlog_{}", RESOURCES[r]))
    }

    fn capacity(&self, r: usize) -> f64 {
        self.pool.shape.capacity().as_array()[r]
    }

    /// Trains the forest on the backlog so far: every resource the pool offers that has been
    /// asked for.
    fn train(&mut self) {
        let step = self.pool.interval;
        let series: Vec<(usize, Series)> = (0..3)
            .filter(|&r| self.capacity(r) > 0.0 && self.history[r].iter().any(|v| *v > 0.0))
            .map(|r| {
                (
                    r,
                    Series {
                        key: Self::key(r),
                        start: self.origin as i64,
                        step,
                        values: self.history[r].clone(),
                    },
                )
            })
            .collect();
        let n = self.history[0].len();
        let opts = TrainOptions {
            n_trees: self.pool.trees,
            seed: self.pool.seed,
            ..TrainOptions::new(step, self.pool.window())
        };
        let all: Vec<Series> = series.iter().map(|s| s.1.clone()).collect();
        match Model::train(&all, &opts) {
            Ok(m) => {
                self.model = Some(m);
                self.trained = series.iter().map(|s| s.0).collect();
                let names: Vec<&str> = self.trained.iter().map(|&r| RESOURCES[r]).collect();
                self.forecaster = format!(
                    "persistence + recent growth for the first {n} planning steps, then a {}-tree forest trained on those {n} steps of backlog ({}) at the {:.0}th percentile",
                    self.pool.trees,
                    names.join(", "),
                    self.pool.quantile * 100.0
                );
            }
            Err(e) => {
                self.forecaster = format!(
                    "persistence + recent growth throughout: the forest could not be trained on {n} planning steps of backlog ({e})"
                );
            }
        }
    }

    /// Persistence (the peak of the last window) or, if higher, the newest value plus its
    /// growth over the last window carried across the next.
    fn fallback(&self, r: usize) -> f64 {
        let v = &self.history[r];
        let Some(&now) = v.last() else {
            return 0.0;
        };
        let h = self.features.horizon();
        let lo = v.len().saturating_sub(h);
        let peak = v[lo..].iter().copied().fold(now, f64::max);
        let back = v.len().saturating_sub(h + 1);
        let steps = (v.len() - 1 - back) as f64;
        let growth = if steps > 0.0 {
            ((now - v[back]) / steps).max(0.0) * h as f64
        } else {
            0.0
        };
        peak.max(now + growth)
    }

    /// The forecast peak of resource `r`, and whether the forest made it.
    fn forecast(&self, r: usize) -> (f64, bool) {
        if let (Some(m), true) = (&self.model, self.trained.contains(&r)) {
            let f = m
                .forecast_latest(&Self::key(r), &self.history[r], self.origin as i64)
                .and_then(|f| f.quantile(self.pool.quantile));
            if let Some(p) = f.filter(|p| p.is_finite()) {
                return (p.max(0.0), true);
            }
        }
        (self.fallback(r), false)
    }
}

impl Scaler for BacklogScaler {
    fn interval(&self) -> f64 {
        self.pool.interval as f64
    }

    fn plan(&mut self, view: &ClusterView) -> Vec<NodeChange> {
        let backlog = view.outstanding.as_array();
        for (h, v) in self.history.iter_mut().zip(backlog) {
            h.push(v);
        }
        if self.model.is_none() && Some(self.history[0].len()) == self.train_at {
            self.train();
        }
        let k = f64::from(SLICES_PER_NODE);
        let (mut backlog_nodes, mut forecast_nodes) = (0.0f64, 0.0f64);
        let mut all_forest = true;
        for (r, &b) in backlog.iter().enumerate() {
            let cap = self.capacity(r);
            if cap <= 0.0 {
                continue;
            }
            backlog_nodes = backlog_nodes.max(b / cap);
            let (peak, forest) = self.forecast(r);
            // A resource nobody asked for has no series to forecast; it does not decide.
            if self.history[r].iter().any(|v| *v > 0.0) {
                all_forest &= forest;
            }
            forecast_nodes = forecast_nodes.max(peak / cap);
        }
        forecast_nodes *= 1.0 + self.pool.headroom;
        let max_slices = f64::from(SLICES_PER_NODE.saturating_mul(self.pool.max_nodes));
        let desired = (forecast_nodes * k - 1e-9).ceil().clamp(0.0, max_slices) as u32;

        let mut states = Vec::new();
        let (mut ready, mut paid) = (0, 0);
        for nv in &view.nodes {
            if nv.phase != NodePhase::Removed {
                paid += 1;
            }
            if nv.phase != NodePhase::Ready {
                // Booting nodes are the planner's "coming"; draining ones are leaving.
                continue;
            }
            ready += 1;
            let cap = nv.node.capacity().as_array();
            let fill = nv
                .used
                .as_array()
                .iter()
                .zip(cap)
                .filter(|(_, c)| *c > 0.0)
                .map(|(u, c)| u / c)
                .fold(0.0, f64::max);
            let slices = ((fill * k - 1e-9).ceil().max(0.0) as u32).min(SLICES_PER_NODE);
            states.push(NodeState {
                name: nv.node.name.clone(),
                pool: POOL.into(),
                replicas: if slices > 0 {
                    vec![(WORKLOAD.into(), slices)]
                } else {
                    Vec::new()
                },
            });
        }
        let t = view.now - self.origin;
        self.timeline.push(PlanStep {
            t,
            backlog,
            backlog_nodes,
            forecast_nodes,
            source: if all_forest && self.model.is_some() {
                Source::Forest
            } else {
                Source::Fallback
            },
            desired_slices: desired,
            ready,
            paid,
        });

        let load = WorkloadLoad::new(&self.workload, desired, Some(forecast_nodes * k));
        // Whole seconds, as the live loop plans; the interval is whole seconds too.
        let now = view.now.floor() as i64;
        let decisions = self
            .planner
            .plan(now, std::slice::from_ref(&self.spec), &states, &[load]);
        let mut changes = Vec::new();
        let mut added = 0;
        for d in decisions {
            let mut deferred = 0;
            match d.kind {
                DecisionKind::AddNode => {
                    // Draining nodes are not the planner's (they are leaving) but still count
                    // against the pool's maximum until they are gone.
                    let room = (self.pool.max_nodes as usize).saturating_sub(paid + added);
                    let n = ((d.to - d.from) as usize).min(room);
                    added += n;
                    if n < (d.to - d.from) as usize {
                        deferred = (d.to - d.from) as usize - n;
                    }
                    for _ in 0..n {
                        let node = self.new_node();
                        changes.push(NodeChange::Add {
                            node,
                            boot: self.pool.boot_time as f64,
                        });
                    }
                }
                DecisionKind::RemoveNode => {
                    let idx = d
                        .node
                        .as_deref()
                        .and_then(|name| view.nodes.iter().position(|n| n.node.name == name));
                    if let Some(i) = idx {
                        changes.push(NodeChange::Drain(i));
                    }
                }
                DecisionKind::Hold => {}
                _ => continue,
            }
            self.decisions.push(NodeDecision {
                t,
                kind: d.kind.as_str().into(),
                from: d.from,
                to: d.to,
                node: d.node.clone(),
                reason: if deferred > 0 {
                    format!(
                        "{}; {deferred} deferred: draining nodes count against max {}",
                        d.reason, self.pool.max_nodes
                    )
                } else {
                    d.reason.clone()
                },
            });
        }
        changes
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
) -> Result<ElasticRun, String> {
    let (discipline, placement) = (fixed.discipline, fixed.placement);
    let first = tasks.iter().map(|t| t.submit).fold(f64::INFINITY, f64::min);
    let last = tasks
        .iter()
        .map(|t| t.submit)
        .fold(f64::NEG_INFINITY, f64::max);
    if !first.is_finite() {
        return Err("no tasks".into());
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
    .map_err(|e| {
        format!(
            "autoscaled pool, node shape {}: {e}",
            shape_text(&pool.shape)
        )
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

fn shape_text(n: &Node) -> String {
    format!("cpu {} mem {} gpu {}", n.cpu, n.mem, n.gpu)
}

/// The autoscaling part of the task report.
#[derive(Debug, Clone, Serialize)]
pub struct AutoscaleReport {
    /// The pool.
    pub pool: ElasticPool,
    /// Slices per node in the planner's view.
    pub slices_per_node: u32,
    /// Nodes of the fixed cluster.
    pub fixed_nodes: usize,
    /// One per queue × placement.
    pub runs: Vec<ElasticRun>,
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}", v * 100.0)
    } else {
        "-".into()
    }
}

impl AutoscaleReport {
    /// The comparison table.
    pub fn table(&self) -> String {
        let p = &self.pool;
        let mut out = format!(
            "\nfixed {} nodes vs autoscaled pool ({}; boot {}, nodes {}..{}, scale-down window {}, planned every {}, forecast window {}, p{:.0}, headroom {:.0}%)\n",
            self.fixed_nodes,
            shape_text(&p.shape),
            format_duration(p.boot_time),
            p.min_nodes,
            p.max_nodes,
            format_duration(p.scale_down_window),
            format_duration(p.interval),
            format_duration(p.window()),
            p.quantile * 100.0,
            p.headroom * 100.0,
        );
        out.push_str(&format!(
            "{:<9} {:<13} {:<10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>6} {:>6} {:>5} {:>7} {:>5} {:>5}\n",
            "queue", "placement", "cluster", "wait-mean", "wait-p95", "compl-mean", "makespan",
            "node-h", "cpu%", "mem%", "added", "removed", "peak", "low"
        ));
        for r in &self.runs {
            let rows = [
                ("fixed", &r.fixed, r.fixed_node_hours, None),
                (
                    "autoscaled",
                    &r.autoscaled,
                    r.cluster.node_hours,
                    Some(&r.cluster),
                ),
            ];
            for (name, m, hours, c) in rows {
                let counts = |f: fn(&ClusterLog) -> usize| {
                    c.map_or(self.fixed_nodes.to_string(), |c| f(c).to_string())
                };
                out.push_str(&format!(
                    "{:<9} {:<13} {:<10} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9.2} {:>6} {:>6} {:>5} {:>7} {:>5} {:>5}\n",
                    m.discipline.as_str(),
                    m.placement.as_str(),
                    name,
                    m.mean_wait,
                    m.p95_wait,
                    m.mean_completion,
                    m.makespan,
                    hours,
                    pct(m.utilisation.cpu),
                    pct(m.utilisation.mem),
                    c.map_or("-".into(), |c| c.added.to_string()),
                    c.map_or("-".into(), |c| c.removed.to_string()),
                    counts(|c| c.peak_nodes),
                    counts(|c| c.min_nodes),
                ));
            }
        }
        if let Some(r) = self.runs.first() {
            out.push_str(&format!(
                "forecasts: {} ({} cycles forest, {} fallback in the first run)\n",
                r.forecaster, r.forest_cycles, r.fallback_cycles
            ));
        }
        out.push_str("node-h = node-hours paid from the first submit to the last completion (booting and draining nodes included); utilisation is over the hours nodes took tasks\n");
        out
    }

    /// Writes `nodes-<queue>-<placement>.png` and `.csv` (node count, backlog and forecast
    /// per planning cycle), `node-decisions-<queue>-<placement>.csv`, and `nodes.png` (the
    /// first run's chart). Returns the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        let mut written = Vec::new();
        for (i, r) in self.runs.iter().enumerate() {
            let stem = format!(
                "{}-{}",
                r.fixed.discipline.as_str(),
                r.fixed.placement.as_str()
            );
            let png = dir.join(format!("nodes-{stem}.png"));
            self.chart(r, &png)?;
            written.push(png.clone());
            if i == 0 {
                let main = dir.join("nodes.png");
                self.chart(r, &main)?;
                written.push(main);
            }
            let csv_path = dir.join(format!("nodes-{stem}.csv"));
            write_atomic(&csv_path, |w| {
                let mut out = csv::Writer::from_writer(w);
                out.write_record([
                    "t",
                    "backlog_cpu",
                    "backlog_mem",
                    "backlog_gpu",
                    "backlog_nodes",
                    "forecast_nodes",
                    "forecaster",
                    "desired_slices",
                    "ready",
                    "paid",
                ])?;
                for s in &r.timeline {
                    out.write_record([
                        s.t.to_string(),
                        s.backlog[0].to_string(),
                        s.backlog[1].to_string(),
                        s.backlog[2].to_string(),
                        s.backlog_nodes.to_string(),
                        s.forecast_nodes.to_string(),
                        match s.source {
                            Source::Forest => "forest".into(),
                            Source::Fallback => "fallback".into(),
                        },
                        s.desired_slices.to_string(),
                        s.ready.to_string(),
                        s.paid.to_string(),
                    ])?;
                }
                out.flush()?;
                Ok(())
            })
            .map_err(|e| format!("{}: {e}", csv_path.display()))?;
            written.push(csv_path);
            let dec_path = dir.join(format!("node-decisions-{stem}.csv"));
            write_atomic(&dec_path, |w| {
                let mut out = csv::Writer::from_writer(w);
                out.write_record(["t", "kind", "from", "to", "node", "reason"])?;
                for d in &r.decisions {
                    out.write_record([
                        d.t.to_string(),
                        d.kind.clone(),
                        d.from.to_string(),
                        d.to.to_string(),
                        d.node.clone().unwrap_or_default(),
                        d.reason.clone(),
                    ])?;
                }
                out.flush()?;
                Ok(())
            })
            .map_err(|e| format!("{}: {e}", dec_path.display()))?;
            written.push(dec_path);
        }
        Ok(written)
    }

    fn chart(&self, r: &ElasticRun, path: &Path) -> Result<(), String> {
        let x: Vec<f64> = r.timeline.iter().map(|s| s.t / 3600.0).collect();
        let paid: Vec<f64> = r.timeline.iter().map(|s| s.paid as f64).collect();
        let ready: Vec<f64> = r.timeline.iter().map(|s| s.ready as f64).collect();
        let fixed = vec![self.fixed_nodes as f64; x.len()];
        let backlog: Vec<f64> = r.timeline.iter().map(|s| s.backlog_nodes).collect();
        let forecast: Vec<f64> = r.timeline.iter().map(|s| s.forecast_nodes).collect();
        let title = format!(
            "{} × {}: nodes, autoscaled vs fixed",
            r.fixed.discipline.as_str(),
            r.fixed.placement.as_str()
        );
        chart::draw(
            &Chart {
                title: &title,
                x_label: "hours since the first submit",
                y_label: "nodes",
                x: &x,
                lines: vec![
                    Line {
                        label: "backlog (queued + running), in nodes",
                        y: &backlog,
                        rgb: (0, 0, 0),
                    },
                    Line {
                        label: "forecast peak, in nodes",
                        y: &forecast,
                        rgb: (255, 127, 14),
                    },
                    Line {
                        label: "autoscaled: nodes paid (booting + ready + draining)",
                        y: &paid,
                        rgb: (31, 119, 180),
                    },
                    Line {
                        label: "autoscaled: nodes ready",
                        y: &ready,
                        rgb: (44, 160, 44),
                    },
                    Line {
                        label: "fixed cluster",
                        y: &fixed,
                        rgb: (214, 39, 40),
                    },
                ],
                bands: Vec::new(),
            },
            path,
            1400,
            600,
        )
    }
}

/// Runs every fixed-cluster result again on the elastic pool, in order.
pub fn compare(
    tasks: &[Task],
    fixed_runs: &[QueueMetrics],
    fixed_nodes: usize,
    pool: &ElasticPool,
    opts: &QueueOptions,
) -> Result<AutoscaleReport, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::batch::queue::{Discipline, Placement};

    fn task(id: u64, submit: f64, duration: f64, cpu: f64) -> Task {
        Task {
            id,
            submit,
            duration,
            priority: 0,
            req: Res {
                cpu,
                mem: cpu,
                gpu: 0.0,
            },
        }
    }

    fn shape() -> Node {
        Node {
            name: POOL.into(),
            cpu: 4.0,
            mem: 4.0,
            gpu: 0.0,
            weight: 1.0,
        }
    }

    fn pool() -> ElasticPool {
        ElasticPool {
            shape: shape(),
            boot_time: 60,
            min_nodes: 1,
            max_nodes: 4,
            scale_down_window: 120,
            interval: 60,
            quantile: 0.9,
            headroom: 0.0,
            train_fraction: 0.3,
            trees: 10,
            seed: 1,
        }
    }

    /// 16 one-core tasks of 10 minutes at t=0, then a one-core, 10-second task every 5
    /// minutes until t=3000 s so the run goes on after the burst.
    fn burst() -> Vec<Task> {
        let mut t: Vec<Task> = (0..16).map(|i| task(i, 0.0, 600.0, 1.0)).collect();
        for k in 1..=10 {
            t.push(task(100 + k, 300.0 * k as f64, 10.0, 1.0));
        }
        t
    }

    fn fixed(tasks: &[Task]) -> QueueMetrics {
        let node = Node {
            name: "fixed".into(),
            ..shape()
        };
        queue::run(
            tasks,
            &[node],
            Discipline::Fcfs,
            Placement::LeastLoaded,
            &QueueOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn burst_adds_nodes_ahead_and_removes_them_after() {
        let tasks = burst();
        let f = fixed(&tasks);
        let r = run(&tasks, f.clone(), 1, &pool(), &QueueOptions::default()).unwrap();
        // Fixed, one 4-core node: the burst runs in four waves of four; waits 0, 600, 1200,
        // 1800 s per wave.
        let burst_wait = |m: &QueueMetrics| {
            m.timeline[..16]
                .iter()
                .zip(&tasks)
                .map(|(o, t)| o.finish - t.submit - t.duration)
                .sum::<f64>()
                / 16.0
        };
        assert!((burst_wait(&f) - 900.0).abs() < 1e-9, "{}", burst_wait(&f));
        // Autoscaled: at t=0 the backlog is 16 cores = 4 nodes; the planner asks for 3 more,
        // which take the other 12 tasks when they are up at t=60.
        let first = &r.decisions[0];
        assert_eq!(
            (first.t, first.kind.as_str(), first.from, first.to),
            (0.0, "add-node", 1, 4),
            "{first:?}"
        );
        assert!(
            first.reason.contains("ahead of 1m node boot"),
            "{}",
            first.reason
        );
        assert!(
            (burst_wait(&r.autoscaled) - 45.0).abs() < 1e-9,
            "{}",
            burst_wait(&r.autoscaled)
        );
        let late: Vec<_> = r.autoscaled.timeline[..16]
            .iter()
            .filter(|o| o.start > 0.0)
            .collect();
        assert_eq!(late.len(), 12);
        assert!(
            late.iter().all(|o| o.start == 60.0 && o.node >= 1),
            "{late:?}"
        );
        assert!(r.autoscaled.mean_wait < f.mean_wait);
        // After the burst the planner drains the extra nodes once removal has fitted for the
        // scale-down window, never below the minimum.
        assert_eq!(r.cluster.added, 3);
        assert_eq!(r.cluster.removed, 3, "{:#?}", r.decisions);
        assert_eq!((r.cluster.peak_nodes, r.cluster.min_nodes), (4, 1));
        let removals: Vec<f64> = r
            .decisions
            .iter()
            .filter(|d| d.kind == "remove-node")
            .map(|d| d.t)
            .collect();
        assert_eq!(removals.len(), 3);
        // The burst ends at 660 s; each removal waits its own window.
        assert!(removals[0] >= 660.0 + 120.0, "{removals:?}");
        assert!(
            removals.windows(2).all(|w| w[1] - w[0] >= 120.0),
            "{removals:?}"
        );
        // Cheaper than keeping four nodes for the run, dearer than one.
        let hours = r.autoscaled.makespan / 3600.0;
        assert!(r.cluster.node_hours > hours && r.cluster.node_hours < 4.0 * hours);
        assert!(r.timeline.iter().all(|s| s.paid <= 4 && s.ready >= 1));
    }

    #[test]
    fn max_and_min_nodes_hold() {
        let tasks = burst();
        let f = fixed(&tasks);
        let mut p = pool();
        p.max_nodes = 2;
        p.min_nodes = 2;
        let r = run(&tasks, f.clone(), 1, &p, &QueueOptions::default()).unwrap();
        assert_eq!((r.cluster.peak_nodes, r.cluster.min_nodes), (2, 2));
        assert_eq!((r.cluster.added, r.cluster.removed), (0, 0));
        assert!(r
            .decisions
            .iter()
            .any(|d| d.kind == "hold" && d.reason.contains("pool at max 2")));
        assert!(r.timeline.iter().all(|s| s.paid == 2));
        // From zero nodes: the first plan asks for nodes and nothing starts before they boot.
        p.min_nodes = 0;
        p.max_nodes = 3;
        let r = run(&tasks, f, 1, &p, &QueueOptions::default()).unwrap();
        assert!(r.autoscaled.timeline.iter().all(|o| o.start >= 60.0));
        assert!(r.cluster.peak_nodes <= 3);
        assert!(r.cluster.removed >= 1);
    }

    #[test]
    fn fallback_is_persistence_plus_growth() {
        let mut s = BacklogScaler::new(&pool(), 0.0, 0.0).unwrap();
        // Window 2 m on a 1 m step: horizon 2 steps.
        s.history[0] = vec![0.0, 2.0, 4.0];
        // Peak of the last two (4) vs 4 + growth (4 - 0) / 2 per step × 2 = 8.
        assert_eq!(s.fallback(0), 8.0);
        s.history[0] = vec![9.0, 5.0, 1.0];
        assert_eq!(s.fallback(0), 5.0);
        s.history[0] = vec![3.0];
        assert_eq!(s.fallback(0), 3.0);
        assert!(s.forecaster.contains("throughout"), "{}", s.forecaster);
    }

    #[test]
    fn forest_takes_over_on_a_long_run_and_runs_are_deterministic() {
        // Three hours of arrivals in waves: long enough for the forest.
        let tasks: Vec<Task> = (0..540)
            .map(|i| {
                let t = i as f64 * 20.0;
                let wave = ((t / 1800.0).floor() as u64 % 2) as f64;
                task(i, t, 120.0 + 240.0 * wave, 1.0 + wave)
            })
            .collect();
        let f = fixed(&tasks);
        let mut p = pool();
        p.max_nodes = 8;
        let a = run(&tasks, f.clone(), 1, &p, &QueueOptions::default()).unwrap();
        assert!(a.forest_cycles > 0, "{}", a.forecaster);
        assert!(a.forecaster.contains("forest trained"), "{}", a.forecaster);
        assert!(a.fallback_cycles > 0);
        let b = run(&tasks, f, 1, &p, &QueueOptions::default()).unwrap();
        // Debug text, because the GPU utilisation of a pool without GPUs is NaN.
        assert_eq!(format!("{:?}", a.autoscaled), format!("{:?}", b.autoscaled));
        assert_eq!(a.cluster, b.cluster);
        assert_eq!(a.timeline, b.timeline);
        assert_eq!(a.decisions, b.decisions);
    }

    #[test]
    fn default_shape_prefers_a_common_shape_that_fits() {
        let nodes = crate::sim::batch::tasks::generate_nodes(8);
        let cpu_only = [task(0, 0.0, 1.0, 4.0)];
        let s = default_shape(&nodes, &cpu_only);
        assert_eq!((s.cpu, s.mem, s.gpu), (32.0, 128.0, 0.0));
        let mut gpu = task(1, 0.0, 1.0, 4.0);
        gpu.req.gpu = 1.0;
        let s = default_shape(&nodes, &[gpu.clone()]);
        assert_eq!((s.cpu, s.mem, s.gpu), (32.0, 128.0, 4.0));
        gpu.req.cpu = 48.0;
        let s = default_shape(&nodes, &[gpu]);
        assert_eq!((s.cpu, s.mem, s.gpu), (64.0, 256.0, 4.0));
        let mut bad = pool();
        bad.min_nodes = 5;
        assert!(bad.validate().unwrap_err().contains("--min-nodes"));
    }
}
