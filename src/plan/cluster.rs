//! What the planners plan from when the cluster is read, not listed: [`observe_cluster`] turns
//! the collector's [`ClusterState`] and the configuration into a [`ClusterView`].
//!
//! Rules, and why:
//! - Pools are discovered: a pool is a value of the pool label among the nodes. A `[[pool]]`
//!   of the same name gives its policy (boot time, node bounds, target utilisation,
//!   allocation, quotas); a pool without one gets [`PoolSpec::new`]'s defaults with
//!   `min_nodes` [`DISCOVERED_MIN_NODES`] and `max_nodes` [`DISCOVERED_MAX_NODES`] (advice
//!   only; the node group's own bounds live with the cloud). A pool's capacity per node is what
//!   a new node of it brings: the most common allocatable CPU and memory among its
//!   schedulable nodes (ties to the smaller), not the smallest, so one odd or draining node
//!   does not under-size every node the pool is planned to get (see `new_node_size`). Nodes without the label are in no pool and left alone.
//! - Placements are where the pods are: each node holds, per configured workload, its pods
//!   that have not finished (unscheduled pods are replicas still to be placed). Pods of
//!   anything else count against their node as `reserved` requests, and those not bound to
//!   it (all but DaemonSet and static pods) are also `movable`: a node is removed only if
//!   the rest could hold them.
//! - A workload's request per replica is the largest its live pods request (a rollout may
//!   run two templates; the larger is the safe one); its `resources` from the file is the
//!   fallback when no pod runs. Its pool, unless configured, is where most of its pods run.
//! - The replica count is the object's `spec.replicas`, read every cycle, so a change made by
//!   someone else is what the next cycle plans from. Where it cannot be read, the workload is
//!   reported in [`ClusterView::unknown`] with the reason and the series, and the live loop
//!   treats its data as stale: no scale-down on a guess.
//! - Where nodes or placements cannot be read (a node or pod query failed, or no node reports
//!   its allocatable), [`ClusterView::nodes_unknown`] says why and the node planner sits the
//!   cycle out rather than remove nodes it cannot see.

use super::nodes::NodeState;
use super::spec::{ObjectKind, PoolSpec, Resources, WorkloadSpec};
use crate::collect::cluster::{ClusterQuery, ClusterState, WorkloadId, WorkloadKind};
use std::collections::{BTreeMap, HashMap};

/// `min_nodes` of a discovered pool without a `[[pool]]` entry: never advise removing its last
/// node.
pub const DISCOVERED_MIN_NODES: u32 = 1;
/// `max_nodes` of a discovered pool without a `[[pool]]` entry.
pub const DISCOVERED_MAX_NODES: u32 = 1000;

/// The queries whose failure leaves nodes or placements unknown.
const NODE_QUERIES: [ClusterQuery; 7] = [
    ClusterQuery::NodeAllocatable,
    ClusterQuery::NodeLabels,
    ClusterQuery::NodeUnschedulable,
    ClusterQuery::PodInfo,
    ClusterQuery::ReplicaSetOwner,
    ClusterQuery::PodPhase,
    ClusterQuery::PodRequests,
];

/// The cluster as the planners see it this cycle.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterView {
    /// The configured workloads, in file order, with the requests and pool read from their
    /// pods.
    pub workloads: Vec<WorkloadSpec>,
    /// Discovered pools, by name, with capacity from their nodes and policy from `[[pool]]`.
    pub pools: Vec<PoolSpec>,
    /// Nodes of discovered pools, by name, with their replicas per workload.
    pub nodes: Vec<NodeState>,
    /// `spec.replicas` per workload name, where it was read.
    pub replicas: BTreeMap<String, u32>,
    /// Workloads whose replica count could not be read, with why (naming the series).
    pub unknown: BTreeMap<String, String>,
    /// Why nodes and placements cannot be trusted this cycle, if they cannot.
    pub nodes_unknown: Option<String>,
    /// Things worth a log line: nodes without the pool label, `[[pool]]`s with no nodes.
    pub notes: Vec<String>,
}

fn id_of(spec: &WorkloadSpec) -> Option<WorkloadId> {
    let o = spec.object()?;
    let kind = match o.kind {
        ObjectKind::Deployment => WorkloadKind::Deployment,
        ObjectKind::StatefulSet => WorkloadKind::StatefulSet,
    };
    Some(WorkloadId {
        kind,
        namespace: o.namespace,
        name: o.name,
    })
}

/// The cluster view for `workloads` and `pools` (as configured) from `state`.
pub fn observe_cluster(
    state: &ClusterState,
    workloads: &[WorkloadSpec],
    pools: &[PoolSpec],
) -> ClusterView {
    let mut view = ClusterView {
        workloads: workloads.to_vec(),
        ..ClusterView::default()
    };
    view.nodes_unknown = NODE_QUERIES
        .iter()
        .find_map(|&q| {
            state
                .failure(q)
                .map(|e| format!("{} could not be read: {e}", q.metric()))
        })
        .or_else(|| {
            (!state
                .nodes
                .iter()
                .any(|n| n.cpu.is_some() || n.memory.is_some()))
            .then(|| {
                "kube_node_status_allocatable has no series: is kube-state-metrics scraped?"
                    .to_string()
            })
        });
    let ids: Vec<Option<WorkloadId>> = workloads.iter().map(id_of).collect();
    read_replicas(state, workloads, &ids, &mut view);
    let node_pool: HashMap<&str, &str> = state
        .nodes
        .iter()
        .filter_map(|n| Some((n.name.as_str(), n.pool.as_deref()?)))
        .collect();
    discover_pools(state, pools, &mut view);
    place(state, &ids, &node_pool, &mut view);
    view
}

/// Each workload's `spec.replicas`, or why it is unknown.
fn read_replicas(
    state: &ClusterState,
    workloads: &[WorkloadSpec],
    ids: &[Option<WorkloadId>],
    view: &mut ClusterView,
) {
    for (spec, id) in workloads.iter().zip(ids) {
        let Some(id) = id else {
            view.unknown.insert(
                spec.name.clone(),
                "names no deployment or statefulset to read".into(),
            );
            continue;
        };
        let q = match id.kind {
            WorkloadKind::Deployment => ClusterQuery::DeploymentSpec,
            WorkloadKind::StatefulSet => ClusterQuery::StatefulSetSpec,
        };
        match state.workload(id).and_then(|w| w.spec_replicas) {
            Some(n) => {
                view.replicas.insert(spec.name.clone(), n);
            }
            None => {
                let why = match state.failure(q) {
                    Some(e) => format!("{} could not be read: {e}", q.metric()),
                    None => format!(
                        "{}{{namespace=\"{}\",{}=\"{}\"}} is absent (kube-state-metrics not \
                         scraped, or no such object)",
                        q.metric(),
                        id.namespace,
                        id.kind.label(),
                        id.name
                    ),
                };
                view.unknown.insert(spec.name.clone(), why);
            }
        }
    }
}

/// Pools from the nodes' labels, capacity from their allocatable, policy from `[[pool]]`.
fn discover_pools(state: &ClusterState, configured: &[PoolSpec], view: &mut ClusterView) {
    // Per pool: the allocatable CPU and memory of the nodes that set its size, and whether
    // those are schedulable ones.
    type Sizes = (Vec<f64>, Vec<f64>, bool);
    let mut sizes: BTreeMap<&str, Sizes> = BTreeMap::new();
    let mut unlabelled = 0usize;
    for n in &state.nodes {
        let Some(pool) = n.pool.as_deref() else {
            unlabelled += 1;
            continue;
        };
        let e = sizes.entry(pool).or_insert((Vec::new(), Vec::new(), false));
        // Schedulable nodes set the size; cordoned ones only while the pool has no other.
        if !n.unschedulable && !e.2 {
            *e = (Vec::new(), Vec::new(), true);
        }
        if n.unschedulable && e.2 {
            continue;
        }
        e.0.extend(n.cpu);
        e.1.extend(n.memory);
    }
    if unlabelled > 0 {
        view.notes.push(format!(
            "{unlabelled} node(s) have no pool label: left out of every pool"
        ));
    }
    for (name, (cpu, mem, _)) in sizes {
        let capacity = Resources::new(new_node_size(cpu), new_node_size(mem));
        // Planned with a resource read as 0, every replica asking for it would fit no node:
        // the pool would be cut to minimums and grow to its max, all on a missing series.
        let missing: Vec<&str> = [("cpu", capacity.cpu), ("memory", capacity.memory)]
            .iter()
            .filter(|(_, v)| *v <= 0.0)
            .map(|(r, _)| *r)
            .collect();
        if !missing.is_empty() {
            view.notes.push(format!(
                "pool '{name}': no node reports its allocatable {} \
                 (kube_node_status_allocatable): not planned",
                missing.join(" nor ")
            ));
            continue;
        }
        // Decisions are told apart by target name: a pool named like a workload would have
        // its holds taken for the workload's count.
        if view.workloads.iter().any(|w| w.name == name) {
            view.notes.push(format!(
                "pool '{name}' has a workload's name: not planned (rename the workload)"
            ));
            continue;
        }
        let spec = match configured.iter().find(|p| p.name == name) {
            Some(p) => PoolSpec {
                capacity,
                ..p.clone()
            },
            None => PoolSpec {
                min_nodes: DISCOVERED_MIN_NODES,
                ..PoolSpec::new(name, capacity, DISCOVERED_MAX_NODES)
            },
        };
        view.pools.push(spec);
    }
    for p in configured {
        if !view.pools.iter().any(|d| d.name == p.name) {
            view.notes.push(format!(
                "[[pool]] '{}' has no node in the cluster: not planned",
                p.name
            ));
        }
    }
}

/// What a new node of a pool brings of one resource, from its nodes' allocatable: the most
/// common value, ties to the smaller; 0 when no node reports it.
///
/// Why not the smallest: a node group's new nodes are all of its template, and most of its
/// nodes are of it too. One odd node (an older instance type left over, a node whose
/// allocatable shrank while it is drained, a mixed group's smaller member) would make the
/// smallest under-size every node the planner asks for, and the pool would be sized for nodes
/// it does not get. Why not the mean: it is no node's size. Ties go to the smaller so that in a
/// pool split evenly between two sizes the planner errs towards one node too many, never too
/// few. Each resource on its own, so that a node missing one series still counts for the
/// other. Allocatable values come from the same node templates and are exact (millicores,
/// bytes), so equal values are equal floats.
fn new_node_size(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let mut best: Option<(f64, usize)> = None;
    for run in values.chunk_by(|a, b| a == b) {
        // Ascending order: a later run replaces the best only when strictly more common.
        if best.is_none_or(|(_, n)| run.len() > n) {
            best = Some((run[0], run.len()));
        }
    }
    best.map_or(0.0, |(v, _)| v)
}

/// What one node holds, as read from its pods.
#[derive(Default)]
struct Placed {
    /// Replicas per workload index.
    replicas: BTreeMap<usize, u32>,
    /// The requests of its other pods.
    reserved: Resources,
    /// Of those, each pod's a removal would have to place elsewhere.
    movable: Vec<Resources>,
}

/// Placements, reserved requests, and each workload's requests and pool from its pods.
fn place(
    state: &ClusterState,
    ids: &[Option<WorkloadId>],
    node_pool: &HashMap<&str, &str>,
    view: &mut ClusterView,
) {
    let by_id: HashMap<&WorkloadId, usize> = ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| Some((id.as_ref()?, i)))
        .collect();
    let n = view.workloads.len();
    let mut request: Vec<Option<Resources>> = vec![None; n];
    let mut pods_in_pool: Vec<BTreeMap<&str, u32>> = vec![BTreeMap::new(); n];
    // Per node: replicas per workload index, reserved requests, and the reserved pods a
    // removal would have to place elsewhere.
    let mut on: HashMap<&str, Placed> = HashMap::new();
    for pod in &state.pods {
        if pod.phase.is_some_and(|p| p.is_terminal()) {
            continue;
        }
        let w = pod.owner.as_ref().and_then(|o| by_id.get(o)).copied();
        if let Some(w) = w {
            let r = request[w].get_or_insert(Resources::default());
            r.cpu = r.cpu.max(pod.cpu);
            r.memory = r.memory.max(pod.memory);
        }
        let Some(node) = pod.node.as_deref() else {
            continue;
        };
        let slot = on.entry(node).or_default();
        match w {
            Some(w) => {
                *slot.replicas.entry(w).or_insert(0) += 1;
                if let Some(pool) = node_pool.get(node) {
                    *pods_in_pool[w].entry(pool).or_insert(0) += 1;
                }
            }
            None => {
                let r = Resources::new(pod.cpu, pod.memory);
                slot.reserved.add_scaled(&r, 1.0);
                if !pod.node_bound {
                    slot.movable.push(r);
                }
            }
        }
    }
    for (w, spec) in view.workloads.iter_mut().enumerate() {
        if let Some(r) = request[w].filter(|r| r.cpu > 0.0 || r.memory > 0.0) {
            spec.resources = r;
        }
        if spec.pool.is_none() {
            // Most pods first, then the pool's name, for a deterministic answer.
            spec.pool = pods_in_pool[w]
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(p, _)| p.to_string());
        }
    }
    let names: Vec<&str> = view.workloads.iter().map(|w| w.name.as_str()).collect();
    for node in &state.nodes {
        let Some(pool) = node.pool.as_deref() else {
            continue;
        };
        let Placed {
            replicas: reps,
            reserved,
            movable,
        } = on.remove(node.name.as_str()).unwrap_or_default();
        view.nodes.push(NodeState {
            name: node.name.clone(),
            pool: pool.to_string(),
            replicas: reps
                .into_iter()
                .map(|(w, c)| (names[w].to_string(), c))
                .collect(),
            reserved,
            movable,
            unschedulable: node.unschedulable,
        });
    }
}

#[cfg(test)]
mod tests;
