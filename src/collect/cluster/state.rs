//! The cluster as kube-state-metrics describes it, as plain data ([`ClusterState`]), and the
//! mapping from the queries' answers to it.
//!
//! Rules, and why:
//! - A pod belongs to a workload through its owner: `created_by_kind="StatefulSet"` names the
//!   StatefulSet; `created_by_kind="ReplicaSet"` names a ReplicaSet, which
//!   `kube_replicaset_owner` maps to its Deployment (a Deployment never owns pods directly).
//!   Pods of anything else (DaemonSets, Jobs, bare pods) have no owner workload but still use
//!   their node, so they are kept. A DaemonSet's pods and static pods (`created_by_kind="Node"`)
//!   are marked [`ClusterPod::node_bound`]: each node runs its own, so they go with a removed
//!   node and need no room elsewhere; every other pod would have to be placed again.
//! - A pod without a node (`node=""`, not scheduled yet) is kept with `node: None`: it is a
//!   replica that still needs a place.
//! - A count that is not a finite, non-negative number is treated as absent, never guessed.
//! - Duplicates (two kube-state-metrics replicas behind one job) are merged by their key:
//!   the queries aggregate by the labels that identify an object, and what still repeats is
//!   taken once.
//! - A query that failed is recorded in [`ClusterState::failures`] with Prometheus' error; what
//!   it would have filled stays unknown (`None`), so the planner can tell "zero" from "not read".

use super::query::ClusterQuery;
use crate::collect::prometheus::InstantSample;
use std::collections::{BTreeMap, HashMap};

/// Deployment or StatefulSet: the kinds whose replicas kube-state-metrics reports and prescale
/// plans. (The collector's own type: this stage does not import the planner's.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
}

impl WorkloadKind {
    /// The label kube-state-metrics names it by: `deployment`, `statefulset`.
    pub fn label(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }
}

/// One workload object by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadId {
    /// Deployment or StatefulSet.
    pub kind: WorkloadKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl WorkloadId {
    /// A workload id from its parts.
    pub fn new(kind: WorkloadKind, namespace: &str, name: &str) -> Self {
        WorkloadId {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// A pod's phase, as `kube_pod_status_phase` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PodPhase {
    /// Accepted, not all containers running yet (includes unscheduled pods).
    Pending,
    /// Bound to a node, containers running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished, at least one container failed.
    Failed,
    /// The node lost contact.
    Unknown,
}

impl PodPhase {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Pending" => PodPhase::Pending,
            "Running" => PodPhase::Running,
            "Succeeded" => PodPhase::Succeeded,
            "Failed" => PodPhase::Failed,
            "Unknown" => PodPhase::Unknown,
            _ => return None,
        })
    }

    /// Finished pods (`Succeeded`, `Failed`) hold no resources on their node.
    pub fn is_terminal(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

/// One node.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterNode {
    /// Node name.
    pub name: String,
    /// The value of the pool label (`None`: the node does not carry it, or labels were not read).
    pub pool: Option<String>,
    /// Allocatable CPU, cores (`None`: not reported).
    pub cpu: Option<f64>,
    /// Allocatable memory, bytes.
    pub memory: Option<f64>,
    /// Cordoned: nothing new is scheduled onto it.
    pub unschedulable: bool,
}

/// One Deployment or StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterWorkload {
    /// Which object.
    pub id: WorkloadId,
    /// `spec.replicas`: the count asked for.
    pub spec_replicas: Option<u32>,
    /// Replicas available (ready for `minReadySeconds`).
    pub available_replicas: Option<u32>,
}

/// One pod.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterPod {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The node it is bound to; `None` while unscheduled.
    pub node: Option<String>,
    /// The Deployment or StatefulSet it belongs to, if any (and if the owner chain was read).
    pub owner: Option<WorkloadId>,
    /// Its phase (`None`: not reported).
    pub phase: Option<PodPhase>,
    /// Made for its node alone, by a DaemonSet or by the kubelet (a static pod): it goes with
    /// the node, and removing the node needs no room for it elsewhere.
    pub node_bound: bool,
    /// CPU requested by its containers, cores.
    pub cpu: f64,
    /// Memory requested by its containers, bytes.
    pub memory: f64,
}

/// One query that could not be read, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryFailure {
    /// Which query.
    pub query: ClusterQuery,
    /// Prometheus' or the transport's error, or the series limit.
    pub error: String,
}

/// The cluster at one instant, as read from kube-state-metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterState {
    /// Evaluation time, Unix seconds.
    pub at: i64,
    /// Nodes, by name.
    pub nodes: Vec<ClusterNode>,
    /// Workloads, by (kind, namespace, name).
    pub workloads: Vec<ClusterWorkload>,
    /// Pods, by (namespace, name).
    pub pods: Vec<ClusterPod>,
    /// Queries that failed this time.
    pub failures: Vec<QueryFailure>,
}

/// A query's samples, or why there are none.
pub type QueryAnswer = (ClusterQuery, Result<Vec<InstantSample>, String>);

impl ClusterState {
    /// Why `query` failed this time, if it did.
    pub fn failure(&self, query: ClusterQuery) -> Option<&str> {
        self.failures
            .iter()
            .find(|f| f.query == query)
            .map(|f| f.error.as_str())
    }

    /// The workload with this id, if kube-state-metrics reported it.
    pub fn workload(&self, id: &WorkloadId) -> Option<&ClusterWorkload> {
        self.workloads
            .binary_search_by(|w| w.id.cmp(id))
            .ok()
            .map(|i| &self.workloads[i])
    }

    /// Builds the state from the answers of [`ClusterQuery::ALL`] (any order; a query missing
    /// from `answers` counts as failed). `pool_label` is the `kube_node_labels` label naming a
    /// node's pool.
    pub fn from_answers(at: i64, pool_label: &str, answers: Vec<QueryAnswer>) -> Self {
        let mut by: HashMap<ClusterQuery, Vec<InstantSample>> = HashMap::new();
        let mut failures = Vec::new();
        for (q, a) in answers {
            match a {
                Ok(s) => {
                    by.insert(q, s);
                }
                Err(error) => failures.push(QueryFailure { query: q, error }),
            }
        }
        for q in ClusterQuery::ALL {
            if !by.contains_key(&q) && !failures.iter().any(|f| f.query == q) {
                failures.push(QueryFailure {
                    query: q,
                    error: "not queried".into(),
                });
            }
        }
        failures.sort_by_key(|f| f.query);
        let mut take = |q| by.remove(&q).unwrap_or_default();
        let workloads = workloads(&mut take);
        let nodes = nodes(
            take(ClusterQuery::NodeAllocatable),
            take(ClusterQuery::NodeUnschedulable),
            take(ClusterQuery::NodeLabels),
            pool_label,
        );
        let pods = pods(
            take(ClusterQuery::PodInfo),
            take(ClusterQuery::ReplicaSetOwner),
            take(ClusterQuery::PodPhase),
            take(ClusterQuery::PodRequests),
        );
        ClusterState {
            at,
            nodes,
            workloads,
            pods,
            failures,
        }
    }
}

fn label<'a>(s: &'a InstantSample, name: &str) -> Option<&'a str> {
    s.metric
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn value(s: &InstantSample) -> Option<f64> {
    s.value
        .map(|p| p.value)
        .filter(|v| v.is_finite() && *v >= 0.0)
}

fn count(s: &InstantSample) -> Option<u32> {
    value(s).map(|v| v.round().min(f64::from(u32::MAX)) as u32)
}

fn workloads(take: &mut impl FnMut(ClusterQuery) -> Vec<InstantSample>) -> Vec<ClusterWorkload> {
    let mut out: BTreeMap<WorkloadId, ClusterWorkload> = BTreeMap::new();
    let kinds = [
        (
            WorkloadKind::Deployment,
            ClusterQuery::DeploymentSpec,
            ClusterQuery::DeploymentAvailable,
        ),
        (
            WorkloadKind::StatefulSet,
            ClusterQuery::StatefulSetSpec,
            ClusterQuery::StatefulSetAvailable,
        ),
    ];
    for (kind, spec_q, avail_q) in kinds {
        for (q, spec) in [(spec_q, true), (avail_q, false)] {
            for s in take(q) {
                let (Some(ns), Some(name)) = (label(&s, "namespace"), label(&s, kind.label()))
                else {
                    continue;
                };
                let id = WorkloadId::new(kind, ns, name);
                let w = out.entry(id.clone()).or_insert(ClusterWorkload {
                    id,
                    spec_replicas: None,
                    available_replicas: None,
                });
                if spec {
                    w.spec_replicas = count(&s);
                } else {
                    w.available_replicas = count(&s);
                }
            }
        }
    }
    out.into_values().collect()
}

fn nodes(
    allocatable: Vec<InstantSample>,
    unschedulable: Vec<InstantSample>,
    labels: Vec<InstantSample>,
    pool_label: &str,
) -> Vec<ClusterNode> {
    let mut out: BTreeMap<String, ClusterNode> = BTreeMap::new();
    fn node<'a>(out: &'a mut BTreeMap<String, ClusterNode>, name: &str) -> &'a mut ClusterNode {
        out.entry(name.to_string()).or_insert_with(|| ClusterNode {
            name: name.to_string(),
            pool: None,
            cpu: None,
            memory: None,
            unschedulable: false,
        })
    }
    for s in &allocatable {
        let Some(name) = label(s, "node") else {
            continue;
        };
        let v = value(s);
        match label(s, "resource") {
            Some("cpu") => node(&mut out, name).cpu = v,
            Some("memory") => node(&mut out, name).memory = v,
            _ => {}
        }
    }
    for s in &unschedulable {
        if let Some(name) = label(s, "node") {
            node(&mut out, name).unschedulable = value(s).is_some_and(|v| v > 0.0);
        }
    }
    for s in &labels {
        if let Some(name) = label(s, "node") {
            let pool = label(s, pool_label).map(str::to_string);
            if pool.is_some() {
                node(&mut out, name).pool = pool;
            }
        }
    }
    out.into_values().collect()
}

fn pods(
    info: Vec<InstantSample>,
    rs_owner: Vec<InstantSample>,
    phase: Vec<InstantSample>,
    requests: Vec<InstantSample>,
) -> Vec<ClusterPod> {
    let mut rs: HashMap<(String, String), String> = HashMap::with_capacity(rs_owner.len());
    for s in &rs_owner {
        if label(s, "owner_kind") != Some("Deployment") {
            continue;
        }
        if let (Some(ns), Some(r), Some(d)) = (
            label(s, "namespace"),
            label(s, "replicaset"),
            label(s, "owner_name"),
        ) {
            rs.insert((ns.to_string(), r.to_string()), d.to_string());
        }
    }
    let mut out: BTreeMap<(String, String), ClusterPod> = BTreeMap::new();
    for s in &info {
        let (Some(ns), Some(name)) = (label(s, "namespace"), label(s, "pod")) else {
            continue;
        };
        let kind = label(s, "created_by_kind");
        let owner = match (kind, label(s, "created_by_name")) {
            (Some("StatefulSet"), Some(n)) => {
                Some(WorkloadId::new(WorkloadKind::StatefulSet, ns, n))
            }
            (Some("ReplicaSet"), Some(r)) => rs
                .get(&(ns.to_string(), r.to_string()))
                .map(|d| WorkloadId::new(WorkloadKind::Deployment, ns, d)),
            _ => None,
        };
        out.insert(
            (ns.to_string(), name.to_string()),
            ClusterPod {
                namespace: ns.to_string(),
                name: name.to_string(),
                node: label(s, "node").map(str::to_string),
                owner,
                phase: None,
                node_bound: matches!(kind, Some("DaemonSet" | "Node")),
                cpu: 0.0,
                memory: 0.0,
            },
        );
    }
    for s in &phase {
        if value(s).is_some_and(|v| v > 0.0) {
            if let Some(ph) = label(s, "phase").and_then(PodPhase::parse) {
                set(&mut out, s, |pod| pod.phase = Some(ph));
            }
        }
    }
    for s in &requests {
        let Some(v) = value(s) else { continue };
        match label(s, "resource") {
            Some("cpu") => set(&mut out, s, |p| p.cpu += v),
            Some("memory") => set(&mut out, s, |p| p.memory += v),
            _ => {}
        }
    }
    out.into_values().collect()
}

/// Applies `f` to the pod a sample names, if it is known.
fn set(
    out: &mut BTreeMap<(String, String), ClusterPod>,
    s: &InstantSample,
    f: impl FnOnce(&mut ClusterPod),
) {
    if let (Some(ns), Some(pod)) = (label(s, "namespace"), label(s, "pod")) {
        if let Some(p) = out.get_mut(&(ns.to_string(), pod.to_string())) {
            f(p);
        }
    }
}
