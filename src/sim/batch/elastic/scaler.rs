//! [`BacklogScaler`]: the three steps of the module documentation, every planning interval,
//! with the timeline and the decisions it keeps for the report.

use super::{ElasticPool, FOREST_ROWS, GIB, POOL, RESOURCES, SLICES_PER_NODE, WORKLOAD};
use crate::forecast::{FeatureSpec, Model, TrainOptions};
use crate::plan::{
    DecisionKind, NodePlanner, NodeState, PoolSpec, Resources, WorkloadLoad, WorkloadSpec,
};
use crate::series::{format_duration, Series, SeriesKey};
use crate::sim::batch::error::BatchError;
use crate::sim::batch::queue::{ClusterView, NodeChange, NodePhase, Scaler};
use crate::sim::batch::tasks::Node;
use serde::Serialize;

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
    pub(super) history: [Vec<f64>; 3],
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
    pub fn new(pool: &ElasticPool, first: f64, last_submit: f64) -> Result<Self, BatchError> {
        pool.validate()?;
        let features = FeatureSpec::new(pool.interval, pool.window())
            .map_err(|e| BatchError::Forecast(e.to_string()))?;
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
    pub(super) fn fallback(&self, r: usize) -> f64 {
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
        let (backlog_nodes, forecast_nodes, all_forest) = self.in_nodes(backlog);
        let max_slices = f64::from(SLICES_PER_NODE.saturating_mul(self.pool.max_nodes));
        let desired = (forecast_nodes * k - 1e-9).ceil().clamp(0.0, max_slices) as u32;
        let (states, ready, paid) = node_states(view);
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
        self.carry_out(decisions, view, t, paid)
    }
}

impl BacklogScaler {
    /// Step 2 of the module documentation: the backlog and its forecast peak in nodes (the
    /// scarcest resource's share of a node, the forecast with `--headroom`), and whether the
    /// forest made every forecast that counts.
    fn in_nodes(&self, backlog: [f64; 3]) -> (f64, f64, bool) {
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
        (backlog_nodes, forecast_nodes, all_forest)
    }

    /// Step 3: carries out the planner's `AddNode` and `RemoveNode` decisions (within the
    /// pool's maximum, which draining nodes still count against) and records every decision.
    fn carry_out(
        &mut self,
        decisions: Vec<crate::plan::Decision>,
        view: &ClusterView,
        t: f64,
        paid: usize,
    ) -> Vec<NodeChange> {
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

/// The ready nodes as the planner sees them (slices of running work each), with the ready
/// and the paid-for (not yet removed) node counts. Booting nodes are the planner's "coming";
/// draining ones are leaving, so neither is listed.
fn node_states(view: &ClusterView) -> (Vec<NodeState>, usize, usize) {
    let k = f64::from(SLICES_PER_NODE);
    let mut states = Vec::new();
    let (mut ready, mut paid) = (0, 0);
    for nv in &view.nodes {
        if nv.phase != NodePhase::Removed {
            paid += 1;
        }
        if nv.phase != NodePhase::Ready {
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
            ..NodeState::default()
        });
    }
    (states, ready, paid)
}
