//! The kube-state-metrics queries the cluster-state reader runs, one per fact it needs.
//!
//! Each aggregates by the labels that identify its object (`max by (namespace, pod, …)`), so
//! the answer carries only what the mapping reads (not `uid`, `host_ip`, `instance`…) and two
//! kube-state-metrics replicas scraped side by side answer once.

use std::fmt;

/// One fact read from kube-state-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterQuery {
    /// `kube_deployment_spec_replicas`.
    DeploymentSpec,
    /// `kube_deployment_status_replicas_available`.
    DeploymentAvailable,
    /// `kube_statefulset_replicas` (the StatefulSet's `spec.replicas`).
    StatefulSetSpec,
    /// `kube_statefulset_status_replicas_available`.
    StatefulSetAvailable,
    /// `kube_pod_info`: node and creator of each pod.
    PodInfo,
    /// `kube_replicaset_owner`: the Deployment of each ReplicaSet.
    ReplicaSetOwner,
    /// `kube_pod_status_phase`: each pod's current phase.
    PodPhase,
    /// `kube_pod_container_resource_requests`: CPU and memory requested, summed per pod.
    PodRequests,
    /// `kube_node_status_allocatable`: CPU and memory each node offers pods.
    NodeAllocatable,
    /// `kube_node_spec_unschedulable`: cordoned nodes.
    NodeUnschedulable,
    /// `kube_node_labels`: the pool label of each node.
    NodeLabels,
}

impl ClusterQuery {
    /// Every query, in the order they are reported.
    pub const ALL: [ClusterQuery; 11] = [
        ClusterQuery::DeploymentSpec,
        ClusterQuery::DeploymentAvailable,
        ClusterQuery::StatefulSetSpec,
        ClusterQuery::StatefulSetAvailable,
        ClusterQuery::PodInfo,
        ClusterQuery::ReplicaSetOwner,
        ClusterQuery::PodPhase,
        ClusterQuery::PodRequests,
        ClusterQuery::NodeAllocatable,
        ClusterQuery::NodeUnschedulable,
        ClusterQuery::NodeLabels,
    ];

    /// The kube-state-metrics metric it reads.
    pub fn metric(self) -> &'static str {
        match self {
            ClusterQuery::DeploymentSpec => "kube_deployment_spec_replicas",
            ClusterQuery::DeploymentAvailable => "kube_deployment_status_replicas_available",
            ClusterQuery::StatefulSetSpec => "kube_statefulset_replicas",
            ClusterQuery::StatefulSetAvailable => "kube_statefulset_status_replicas_available",
            ClusterQuery::PodInfo => "kube_pod_info",
            ClusterQuery::ReplicaSetOwner => "kube_replicaset_owner",
            ClusterQuery::PodPhase => "kube_pod_status_phase",
            ClusterQuery::PodRequests => "kube_pod_container_resource_requests",
            ClusterQuery::NodeAllocatable => "kube_node_status_allocatable",
            ClusterQuery::NodeUnschedulable => "kube_node_spec_unschedulable",
            ClusterQuery::NodeLabels => "kube_node_labels",
        }
    }

    /// The PromQL, with `selector` (matchers without braces, may be empty) on the metric and
    /// `pool_label` kept by the node-labels query.
    pub fn promql(self, selector: &str, pool_label: &str) -> String {
        let sel = |fixed: &str| {
            let parts: Vec<&str> = [fixed, selector]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            format!("{}{{{}}}", self.metric(), parts.join(","))
        };
        let by = |labels: &str, fixed: &str| format!("max by ({labels}) ({})", sel(fixed));
        match self {
            ClusterQuery::DeploymentSpec | ClusterQuery::DeploymentAvailable => {
                by("namespace, deployment", "")
            }
            ClusterQuery::StatefulSetSpec | ClusterQuery::StatefulSetAvailable => {
                by("namespace, statefulset", "")
            }
            ClusterQuery::PodInfo => {
                by("namespace, pod, node, created_by_kind, created_by_name", "")
            }
            ClusterQuery::ReplicaSetOwner => by(
                "namespace, replicaset, owner_kind, owner_name",
                "owner_kind=\"Deployment\"",
            ),
            ClusterQuery::PodPhase => format!("{} == 1", by("namespace, pod, phase", "")),
            ClusterQuery::PodRequests => format!(
                "sum by (namespace, pod, resource) ({})",
                by(
                    "namespace, pod, container, resource",
                    "resource=~\"cpu|memory\""
                )
            ),
            ClusterQuery::NodeAllocatable => by("node, resource", "resource=~\"cpu|memory\""),
            ClusterQuery::NodeUnschedulable => by("node", ""),
            ClusterQuery::NodeLabels => by(&format!("node, {pool_label}"), ""),
        }
    }
}

impl fmt::Display for ClusterQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric())
    }
}
