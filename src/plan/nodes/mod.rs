//! The node planner: where replicas go, which nodes will run hot, and how many nodes each pool
//! needs by the time a new one could boot.
//!
//! Usage is forecast per node from the replicas on it: CPU as each replica's request × its
//! workload's forecast utilisation (forecast peak ÷ the capacity of the desired replicas), so a
//! workload heading for its peak weighs more; memory as requested, because memory does not
//! shrink with load. Only workloads prescale manages count; leave room for the rest through the
//! pool's `target_utilization`.
//!
//! One cycle, per pool, deterministic (ties broken by name):
//!
//! 1. replicas to be removed (desired < placed) come off the fullest nodes (no decision: the
//!    scale-down decision already says it);
//! 2. new replicas (desired > placed) are placed by multi-resource best fit on forecast
//!    headroom: of the nodes where requests fit the capacity and the forecast stays within the
//!    pool's threshold, the one left with the least normalised headroom;
//! 3. replicas are moved off nodes whose forecast crosses the threshold, before they do;
//! 4. nodes are added when the pool's forecast (plus anything left unplaced or hot) would
//!    exceed what its nodes can hold at the threshold. The forecast is the peak over its window,
//!    which the live loop sizes to cover the node boot time, so deciding now is deciding a boot
//!    time ahead. Nodes asked for are counted as coming for twice their boot time, so one need
//!    does not add a node every cycle. A replica that no empty node could hold within the
//!    threshold (a request above a node's capacity, or a forecast above its threshold) adds
//!    nothing, neither left unplaced nor keeping a node hot: no node added would help, and it
//!    would add one every cycle up to `max_nodes`; the pool holds, its reason naming them;
//! 5. the emptiest node is removed once the rest could hold its replicas and the pool's forecast
//!    has allowed that continuously for the pool's `scale_down_window`.
//!
//! Nodes read from a cluster also carry the requests of pods prescale does not manage
//! (`reserved`, counted as used; of them, the pods a removal would have to place elsewhere,
//! `movable`, which step 5 places on the rest before the node's replicas) and whether they are
//! cordoned (never a destination).
//!
//! `cycle` holds the cycle's model of the cluster and steps 1 to 3; `fit` the best-fit scan
//! they share; `pools` steps 4 and 5; `unknown` which pools demand that cannot be seen holds.

use super::decision::Decision;
use super::spec::{PoolSpec, Resources, WorkloadSpec};
use std::collections::HashMap;

mod cycle;
mod fit;
mod model;
mod pools;
#[cfg(test)]
mod tests;
mod unknown;

use cycle::Cycle;
pub use unknown::UnknownLoad;

/// Slack for float comparisons against thresholds, so an exact fit fits.
const EPS: f64 = 1e-9;

/// One node as it is now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeState {
    /// Node name (unique).
    pub name: String,
    /// Pool it belongs to; nodes of unknown pools are left alone.
    pub pool: String,
    /// Replicas on it, per workload name.
    pub replicas: Vec<(String, u32)>,
    /// Requests of the pods on it that are no workload's replicas (DaemonSets, workloads
    /// prescale does not manage), read from the cluster: they use the node all the same, so
    /// they count against its capacity, as requested (forecast = request).
    pub reserved: Resources,
    /// Of `reserved`, each pod's requests that would need room on another node if this one
    /// went: every such pod but a DaemonSet's or a static pod (each node runs its own, gone
    /// with it). A node is removed only when the rest could hold these as well as its
    /// replicas: the pool's total fitting is not enough, one large pod can fit no other node.
    pub movable: Vec<Resources>,
    /// Cordoned: no replica is placed or moved onto it (what is on it stays counted).
    pub unschedulable: bool,
}

impl NodeState {
    /// An empty, schedulable node of `pool`.
    pub fn new(name: &str, pool: &str) -> Self {
        NodeState {
            name: name.to_string(),
            pool: pool.to_string(),
            ..NodeState::default()
        }
    }
}

/// What the node planner needs to know about one workload.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadLoad<'a> {
    /// Its spec (resources per replica, pool).
    pub spec: &'a WorkloadSpec,
    /// Replicas it should have, usually the scale planner's `to`.
    pub desired: u32,
    /// Fraction of each replica's CPU request it is forecast to use at the peak (1 = exactly its
    /// request); see [`WorkloadLoad::new`].
    pub utilization: f64,
}

impl<'a> WorkloadLoad<'a> {
    /// From the desired replicas and the forecast peak demand (at the workload's risk
    /// quantile): utilisation = peak ÷ (desired × capacity per replica). Without a usable
    /// forecast each replica is assumed to use what it requests.
    pub fn new(spec: &'a WorkloadSpec, desired: u32, forecast_peak: Option<f64>) -> Self {
        let cap = spec.effective_capacity() * desired as f64;
        let utilization = match forecast_peak {
            Some(p) if p.is_finite() && p >= 0.0 && cap > 0.0 && cap.is_finite() => {
                (p / cap).min(10.0)
            }
            _ => 1.0,
        };
        WorkloadLoad {
            spec,
            desired,
            utilization,
        }
    }
}

/// Plans nodes and placement, remembering nodes asked for and how long removal has fitted.
#[derive(Debug, Clone, Default)]
pub struct NodePlanner {
    /// Per pool: node count asked for, and until when it is expected to show up.
    coming: HashMap<String, (u32, i64)>,
    /// Per pool: since when removing a node has fitted the forecast.
    removable_since: HashMap<String, i64>,
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

impl NodePlanner {
    /// A planner with no memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cycle the pools were not planned in (nodes unreadable, another replica planning
    /// them): every removal window starts again at the next planned cycle, since nothing
    /// checked in between that removing a node still fitted.
    pub fn not_planned(&mut self) {
        self.removable_since.clear();
    }

    /// One planning cycle over all pools. Invalid pools are skipped (configuration validation
    /// reports them); decisions come pool by pool, then placements, moves, node changes.
    pub fn plan(
        &mut self,
        now: i64,
        pools: &[PoolSpec],
        nodes: &[NodeState],
        workloads: &[WorkloadLoad],
    ) -> Vec<Decision> {
        self.plan_with(now, pools, nodes, workloads, &[], true)
    }

    /// [`plan`](Self::plan) when some workloads' demand is unknown (`unknown` says which and
    /// why; a sharded planner's read-back of other shards, see [`crate::shard::readback`]).
    /// The caller passes them as running what they run now, at their requests. No node is
    /// removed meanwhile from a pool they can be in (the `unknown` module: the pools
    /// their replicas run on and are configured for, every pool when that is not known): such
    /// a pool whose known load would allow a removal gets a hold saying why, and its removal
    /// window starts afresh once all is known again. Nodes are still added, from the known
    /// demand; their reasons say so.
    pub fn plan_partial(
        &mut self,
        now: i64,
        pools: &[PoolSpec],
        nodes: &[NodeState],
        workloads: &[WorkloadLoad],
        unknown: &[UnknownLoad],
    ) -> Vec<Decision> {
        self.plan_with(now, pools, nodes, workloads, unknown, true)
    }

    /// [`plan_partial`](Self::plan_partial), with or without the shortcuts that skip scans
    /// whose answer is known (off only in tests, to check they change nothing).
    fn plan_with(
        &mut self,
        now: i64,
        pools: &[PoolSpec],
        nodes: &[NodeState],
        workloads: &[WorkloadLoad],
        unknown: &[UnknownLoad],
        shortcuts: bool,
    ) -> Vec<Decision> {
        let mut cycle = Cycle::new(now, pools, nodes, workloads);
        cycle.shortcuts = shortcuts;
        cycle.remove_excess(); // 1.
        cycle.place_new(); // 2.
        cycle.move_off_hot(); // 3.
        for p in 0..cycle.pools.len() {
            let held = unknown::held(unknown, &cycle.pools[p].name, nodes, workloads);
            self.size_pool(&mut cycle, p, held.as_deref()); // 4 and 5.
        }
        cycle.decisions
    }
}
