//! What runs now: each cycle's read of the current replica counts (from the cluster's state
//! with `[cluster]`, else each workload's `current_replicas` query), and at the first cycle,
//! the recovery of the believed state from those reads and the decision log; and what either
//! leaves the user to know, added to the decisions' reasons.

use super::state::Loop;
use crate::plan::{CurrentReplicas, Decision, PoolSpec, RecordedCounts, StartSource};
use std::collections::BTreeMap;

impl Loop {
    /// Recovers the believed state from the first cycle's replica reads and the log. Nodes
    /// read from the cluster are what is there: the log's node counts are not recovered.
    pub(super) fn recover(&mut self, read: &BTreeMap<String, u32>, recorded: &RecordedCounts) {
        let pools: &[PoolSpec] = match self.cluster {
            Some(_) => &[],
            None => &self.pools,
        };
        let sources = self
            .believed
            .recover(&self.workloads, pools, read, recorded);
        for (target, n, source) in sources {
            let from = match source {
                StartSource::Cluster => "read from the cluster",
                StartSource::Log => "the decision log's last record",
                StartSource::Config => "the configuration",
            };
            match self.believed.start_note(&target) {
                // Also in the target's first decision, which for a pool may come cycles later.
                Some(note) => tracing::warn!("'{target}' {note}"),
                None => tracing::info!("'{target}' starts from {n} ({from})"),
            }
        }
    }

    /// Reads the current replicas: from the cluster's state with `[cluster]`, else each
    /// workload's `current_replicas` query. A failed or empty answer keeps the last known
    /// count and marks the workload's data stale, so nothing scales down on a guess.
    /// Returns the counts that were read.
    pub(super) async fn read_replicas(&mut self, now: i64) -> BTreeMap<String, u32> {
        if let Some(reader) = self.cluster.clone() {
            return self.read_cluster(&reader, now).await;
        }
        let mut read = BTreeMap::new();
        let Some(reader) = &self.replica_reader else {
            return read;
        };
        self.replicas_unknown.clear();
        let queries = self
            .workloads
            .iter()
            .filter_map(|w| match &w.current_replicas {
                Some(CurrentReplicas::Query(q)) => Some((w.name.as_str(), q.as_str())),
                _ => None,
            });
        for (name, count) in reader.read(queries, now).await {
            match count {
                Some(n) => {
                    self.believed.set_replicas(name, n);
                    read.insert(name.to_string(), n);
                }
                None => {
                    self.replicas_unknown.insert(name.to_string());
                }
            }
        }
        read
    }

    /// Adds to the decisions' reasons what the user must know: what recovery changed (a
    /// clamped count, once, in the target's first decision) and why a workload's replica
    /// count is unknown (every cycle it is).
    pub(super) fn annotate(&mut self, decisions: &mut [Decision]) {
        for d in decisions {
            if let Some(note) = self.believed.take_start_note(&d.target) {
                d.reason = format!("{}; {note}", d.reason);
            }
            if d.is_workload_decision() {
                if let Some(why) = self.state_unknown.get(&d.target) {
                    d.reason = format!("{}; replica count unknown: {why}", d.reason);
                }
            }
        }
    }
}
