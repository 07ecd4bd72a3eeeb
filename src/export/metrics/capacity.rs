//! The planners' output: per workload the replicas it runs and the replicas recommended, per
//! pool the nodes recommended. State gauges, gone from `/metrics` with their workload or pool.

use super::labels::{Lv, PoolLabel, Seen};
use super::{saturating_i64, set_each, sync, workload, Metrics};
use crate::export::snapshot::{PoolSample, WorkloadSample};
use prometheus_client::registry::Registry;

impl Metrics {
    /// Registers the replica and node counts.
    pub(super) fn register_capacity(&self, r: &mut Registry) {
        r.register(
            "recommended_replicas",
            "Replicas the planner recommends for a workload",
            self.recommended_replicas.clone(),
        );
        r.register(
            "current_replicas",
            "Replicas a workload runs now",
            self.current_replicas.clone(),
        );
        r.register(
            "recommended_nodes",
            "Nodes the planner recommends for a node pool",
            self.recommended_nodes.clone(),
        );
    }

    /// Replica and node counts, current and recommended.
    pub(super) fn observe_capacity(
        &self,
        workloads: &[WorkloadSample],
        pools: &[PoolSample],
        seen: &mut Seen,
    ) {
        let now = set_each(
            &self.recommended_replicas,
            workloads.iter().map(|w| {
                (
                    workload(&w.workload),
                    saturating_i64(w.recommended_replicas),
                )
            }),
        );
        sync(
            &self.recommended_replicas,
            &mut seen.recommended_replicas,
            now,
        );
        let now = set_each(
            &self.current_replicas,
            workloads
                .iter()
                .map(|w| (workload(&w.workload), saturating_i64(w.current_replicas))),
        );
        sync(&self.current_replicas, &mut seen.current_replicas, now);
        let now = set_each(
            &self.recommended_nodes,
            pools.iter().map(|p| {
                (
                    PoolLabel {
                        pool: Lv::from(&p.pool),
                    },
                    saturating_i64(p.recommended_nodes),
                )
            }),
        );
        sync(&self.recommended_nodes, &mut seen.recommended_nodes, now);
    }
}
