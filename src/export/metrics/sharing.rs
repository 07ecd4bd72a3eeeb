//! The families of sharing a capped pool: a pool's forecast shortfall and the replicas its
//! allocation cut per workload.

use super::labels::{Lv, PoolLabel, Seen};
use super::{saturating_i64, set_each, sync, workload, Metrics};
use prometheus_client::registry::Registry;

impl Metrics {
    /// Registers the pool shortfall and the allocation cuts.
    pub(super) fn register_sharing(&self, r: &mut Registry) {
        r.register(
            "forecast_shortfall",
            "Nodes a pool's forecast wants beyond its max_nodes, of its scarcest resource (0 when it fits)",
            self.shortfall.clone(),
        );
        r.register(
            "allocation_cut_replicas",
            "Replicas a workload's pool allocation cut from what its planner wanted this cycle",
            self.allocation_cuts.clone(),
        );
    }

    /// `prescale_forecast_shortfall{pool}` and `prescale_allocation_cut_replicas{workload}`:
    /// state, so a pool or workload gone from the snapshot is gone from `/metrics`.
    pub(super) fn observe_sharing(
        &self,
        shortfalls: &[(String, f64)],
        cuts: &[(String, u64)],
        seen: &mut Seen,
    ) {
        let now = set_each(
            &self.shortfall,
            shortfalls
                .iter()
                .map(|(p, v)| (PoolLabel { pool: Lv::from(p) }, *v)),
        );
        sync(&self.shortfall, &mut seen.shortfall, now);
        let now = set_each(
            &self.allocation_cuts,
            cuts.iter().map(|(w, n)| (workload(w), saturating_i64(*n))),
        );
        sync(&self.allocation_cuts, &mut seen.allocation_cuts, now);
    }
}

#[cfg(test)]
mod tests {
    use crate::export::{Metrics, Snapshot};

    /// Both families show what the snapshot says, in both formats, and a pool or workload no
    /// longer in the snapshot leaves `/metrics`.
    #[test]
    fn shortfall_and_cuts_follow_the_snapshot() {
        let m = Metrics::new();
        m.observe(&Snapshot {
            shortfalls: vec![("general".into(), 2.5), ("gpu".into(), 0.0)],
            allocation_cuts: vec![("batch".into(), 3), ("web".into(), 0)],
            ..Snapshot::default()
        });
        for text in [m.encode(), m.encode_text()] {
            for line in [
                r#"prescale_forecast_shortfall{pool="general"} 2.5"#,
                r#"prescale_forecast_shortfall{pool="gpu"} 0.0"#,
                r#"prescale_allocation_cut_replicas{workload="batch"} 3"#,
                r#"prescale_allocation_cut_replicas{workload="web"} 0"#,
            ] {
                assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
            }
        }
        m.observe(&Snapshot {
            shortfalls: vec![("general".into(), 0.0)],
            allocation_cuts: vec![("web".into(), 1)],
            ..Snapshot::default()
        });
        let text = m.encode_text();
        assert!(!text.contains("gpu") && !text.contains("batch"), "{text}");
        assert!(text.contains(r#"prescale_allocation_cut_replicas{workload="web"} 1"#));
    }
}
