//! The cluster view the loop asks each cycle: with `[cluster]`, the state read from
//! kube-state-metrics; without it, the `[[node]]` list and prescale's own decisions (the
//! offline and demo source), which is what [`BelievedState`](crate::plan::BelievedState)
//! already holds, so that source needs no reading.
//!
//! Reading replaces, every cycle, the workloads' requests and pools, the discovered pools, the
//! nodes with their placements and the replica counts: what someone else changed is what the
//! next cycle plans from. What cannot be read is said once when it starts (and when it ends),
//! kept per workload for its decision's reason, and blocks scale-down (stale data) or, for
//! nodes, the node planner's cycle.

use super::state::Loop;
use crate::collect::ClusterReader;
use crate::plan::observe_cluster;
use std::collections::BTreeMap;

impl Loop {
    /// Reads the cluster and makes the loop's state its view; returns the counts read.
    pub(super) async fn read_cluster(
        &mut self,
        reader: &ClusterReader,
        now: i64,
    ) -> BTreeMap<String, u32> {
        let state = reader.read(now).await;
        for f in &state.failures {
            tracing::warn!("cluster state: {}: {}", f.query.metric(), f.error);
        }
        // The other shards' workloads (ordinal 0) are read too: their pods are theirs, not
        // unmanaged load, and their requests are the cluster's.
        let all: Vec<_> = self
            .configured
            .0
            .iter()
            .chain(&self.others_configured)
            .cloned()
            .collect();
        let mut view = observe_cluster(&state, &all, &self.configured.1);
        for note in &view.notes {
            tracing::info!("cluster state: {note}");
        }
        for (w, why) in &view.unknown {
            if self.state_unknown.get(w) != Some(why) {
                tracing::warn!("workload '{w}': replica count unknown, no scale-down: {why}");
            }
        }
        for w in self.state_unknown.keys() {
            if !view.unknown.contains_key(w) {
                tracing::info!("workload '{w}': replica count read again");
            }
        }
        match &view.nodes_unknown {
            Some(why) if self.nodes_unknown.as_ref() != Some(why) => {
                tracing::warn!("nodes and placements unknown, no node decisions: {why}")
            }
            None if self.nodes_unknown.is_some() => tracing::info!("nodes read again"),
            _ => {}
        }
        let mine: std::collections::HashSet<&str> =
            self.configured.0.iter().map(|w| w.name.as_str()).collect();
        let (own, others): (Vec<_>, Vec<_>) = std::mem::take(&mut view.workloads)
            .into_iter()
            .partition(|w| mine.contains(w.name.as_str()));
        self.others = others;
        self.set_workloads(own);
        self.pools = view.pools;
        self.replicas_unknown = view.unknown.keys().cloned().collect();
        self.state_unknown = view.unknown;
        self.nodes_unknown = view.nodes_unknown;
        if self.nodes_unknown.is_none() {
            self.believed.set_nodes(view.nodes);
        }
        for (w, &n) in &view.replicas {
            self.believed.set_replicas(w, n);
        }
        view.replicas
    }
}
