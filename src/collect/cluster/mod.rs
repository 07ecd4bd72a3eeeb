//! Cluster state read from Prometheus: kube-state-metrics series → a plain [`ClusterState`].
//!
//! Each cycle the live loop asks [`ClusterReader::read`] for the cluster at that instant: one
//! instant query per fact ([`ClusterQuery`]: workloads' spec and available replicas, pods with
//! their node, owner, phase and requests, nodes with allocatable resources, cordon and pool
//! label), run concurrently through the collector's [`PromClient`] so that a slow Prometheus
//! costs one timeout, not eleven.
//!
//! - `config`: the `[cluster]` section ([`ClusterConfig`]).
//! - `query`: the PromQL of each fact.
//! - `state`: the data and the mapping from answers to it (ReplicaSet → Deployment, pods
//!   without a node, duplicates from HA kube-state-metrics).
//!
//! Failures never panic and never stop the loop: a query that fails (transport, Prometheus'
//! error, more than `max_series` series) is recorded in [`ClusterState::failures`], and what
//! it would have said stays unknown; the planner decides what unknown means (no scale-down).
//! A series Prometheus no longer has (kube-state-metrics gone for longer than Prometheus'
//! lookback, or a stale marker after its target vanished) is simply absent from the answer.
//! Memory follows the data: each answer is refused above `max_series` before it is mapped.
//!
//! This module never imports the planner: it says what the cluster is, not what to do.

mod config;
mod query;
mod state;
#[cfg(test)]
mod tests;

pub use config::{
    ksm_label, ClusterConfig, ClusterSource, DEFAULT_CLUSTER_MAX_SERIES, DEFAULT_POOL_LABEL,
};
pub(crate) use config::{validate_cluster, RawCluster};
pub use query::ClusterQuery;
pub use state::{
    ClusterNode, ClusterPod, ClusterState, ClusterWorkload, PodPhase, QueryAnswer, QueryFailure,
    WorkloadId, WorkloadKind,
};

use super::prometheus::{Answer, InstantSample, PromClient, PromError, QueryData};

/// Reads the cluster's state through a Prometheus client.
#[derive(Debug, Clone)]
pub struct ClusterReader {
    client: PromClient,
    config: ClusterConfig,
    queries: Vec<(ClusterQuery, String)>,
}

impl ClusterReader {
    /// A reader sharing the collector's client (its address, auth and timeout).
    pub fn new(client: PromClient, config: ClusterConfig) -> Self {
        let queries = ClusterQuery::ALL
            .iter()
            .map(|&q| (q, q.promql(&config.selector, &config.pool_label)))
            .collect();
        ClusterReader {
            client,
            config,
            queries,
        }
    }

    /// The configuration it reads with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The PromQL of each query, as sent.
    pub fn queries(&self) -> &[(ClusterQuery, String)] {
        &self.queries
    }

    /// The cluster at `at` (Unix seconds). Never fails as a whole: each query's failure is in
    /// the state's `failures`.
    pub async fn read(&self, at: i64) -> ClusterState {
        let mut set = tokio::task::JoinSet::new();
        for (q, text) in &self.queries {
            let (client, q, text) = (self.client.clone(), *q, text.clone());
            let max = self.config.max_series;
            set.spawn(async move {
                let answer = client.query(&text, Some(at)).await;
                (q, samples_of(answer, max))
            });
        }
        let mut answers = Vec::with_capacity(self.queries.len());
        while let Some(joined) = set.join_next().await {
            // A query task cannot panic on input (the mapping is done here, not in it); a
            // join error leaves that query out, which `from_answers` reports as not queried.
            if let Ok(a) = joined {
                answers.push(a);
            }
        }
        ClusterState::from_answers(at, &self.config.pool_label, answers)
    }
}

/// The samples of an instant query's answer, or why they cannot be used: the query failed, it
/// answered something else than a vector, or more than `max_series` series.
pub fn samples_of(
    answer: Result<Answer<QueryData>, PromError>,
    max_series: usize,
) -> Result<Vec<InstantSample>, String> {
    match answer.map_err(|e| e.to_string())?.data {
        QueryData::Vector(v) if v.len() > max_series => Err(format!(
            "{} series, more than cluster.max_series = {max_series}; narrow cluster.selector",
            v.len()
        )),
        QueryData::Vector(v) => Ok(v),
        other => Err(format!("expected a vector, got a {}", other.type_name())),
    }
}
