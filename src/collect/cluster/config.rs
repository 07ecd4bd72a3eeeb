//! `[cluster]` of `prescale.toml`: where the cluster's state comes from, as written
//! ([`RawCluster`]) and as validated ([`ClusterConfig`]).
//!
//! Only one source exists, `kube-state-metrics` (its series, read through the collector's
//! Prometheus); the key is there so that a second one (the API server's watch) can be added
//! without changing what existing files mean.

use super::super::config::Problems;
use serde::Deserialize;

/// Most series one cluster-state query may return before it is refused: a cluster of 5,000
/// pods answers with about 5,000 per query, so the default leaves room for clusters 20 times
/// that size while keeping a wrong selector (every series of a federation) from filling memory.
pub const DEFAULT_CLUSTER_MAX_SERIES: usize = 100_000;

/// The node label naming a node's pool, unless `pool_label` says otherwise: the instance type,
/// which every managed Kubernetes sets.
pub const DEFAULT_POOL_LABEL: &str = "node.kubernetes.io/instance-type";

/// `[cluster]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    /// `kube-state-metrics` (the only source so far).
    pub source: String,
    /// The node label naming a node's pool, as Kubernetes writes it
    /// (`node.kubernetes.io/instance-type`) or as kube-state-metrics exports it
    /// (`label_node_kubernetes_io_instance_type`).
    pub pool_label: Option<String>,
    /// Extra label matchers every query carries, e.g. `job="kube-state-metrics"`.
    pub selector: Option<String>,
    /// Most series one query may return.
    pub max_series: Option<usize>,
}

/// Where the cluster's state is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterSource {
    /// kube-state-metrics series in the collector's Prometheus.
    KubeStateMetrics,
}

/// The validated `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Where the state comes from.
    pub source: ClusterSource,
    /// The `kube_node_labels` label holding a node's pool, in kube-state-metrics' form
    /// (`label_node_kubernetes_io_instance_type`).
    pub pool_label: String,
    /// Extra matchers put inside every query's braces (`job="kube-state-metrics"`); empty for
    /// none.
    pub selector: String,
    /// Most series one query may return.
    pub max_series: usize,
}

impl ClusterConfig {
    /// kube-state-metrics with the defaults: the instance-type label, no extra selector.
    pub fn new() -> Self {
        ClusterConfig {
            source: ClusterSource::KubeStateMetrics,
            pool_label: ksm_label(DEFAULT_POOL_LABEL),
            selector: String::new(),
            max_series: DEFAULT_CLUSTER_MAX_SERIES,
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The name kube-state-metrics gives a Kubernetes label in `kube_node_labels`: `label_` and the
/// label with every character that is not a letter, digit or `_` replaced by `_`.
pub fn ksm_label(k8s_label: &str) -> String {
    if k8s_label.starts_with("label_") {
        return k8s_label.to_string();
    }
    let body: String = k8s_label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("label_{body}")
}

/// Checks `[cluster]`, pushing `(key, message)` per problem.
pub(crate) fn validate_cluster(raw: &RawCluster, problems: &mut Problems) -> Option<ClusterConfig> {
    let before = problems.len();
    let mut push = |k: &str, m: String| problems.push((format!("cluster.{k}"), m));
    let source = match raw.source.as_str() {
        "kube-state-metrics" => ClusterSource::KubeStateMetrics,
        other => {
            push(
                "source",
                format!(
                    "'{other}' is not a cluster source; the one there is: \"kube-state-metrics\""
                ),
            );
            ClusterSource::KubeStateMetrics
        }
    };
    let label = raw
        .pool_label
        .as_deref()
        .unwrap_or(DEFAULT_POOL_LABEL)
        .trim();
    if label.is_empty() || label == "label_" {
        push(
            "pool_label",
            "must name a node label, e.g. \"node.kubernetes.io/instance-type\"".into(),
        );
    } else if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')))
    {
        push(
            "pool_label",
            format!(
                "'{label}' has '{}', which no Kubernetes label has",
                c.escape_default()
            ),
        );
    }
    let selector = raw.selector.as_deref().unwrap_or("").trim().to_string();
    if selector.contains(['{', '}']) {
        push(
            "selector",
            format!(
                "'{selector}': give the matchers without braces, e.g. job=\"kube-state-metrics\""
            ),
        );
    } else if !selector.is_empty() && !selector.contains(['=', '~']) {
        push(
            "selector",
            format!("'{selector}' is not a label matcher like job=\"kube-state-metrics\""),
        );
    }
    let max_series = raw.max_series.unwrap_or(DEFAULT_CLUSTER_MAX_SERIES);
    if max_series == 0 {
        push("max_series", "must be at least 1".into());
    }
    (problems.len() == before).then(|| ClusterConfig {
        source,
        pool_label: ksm_label(label),
        selector,
        max_series,
    })
}
