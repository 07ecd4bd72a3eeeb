//! What the node planner needs of each workload this replica plans, exported so that, with
//! `[shard]`, the one replica that plans the node pools can read it back from Prometheus (see
//! [`crate::shard`]): `prescale_forecast_utilization{workload}` (the forecast peak's share of
//! each replica's CPU request) and `prescale_plan_timestamp_seconds{workload}` (when the
//! cycle that planned it ran, so a reader can tell a stalled shard from a live one). The
//! replicas planned are `prescale_recommended_replicas{workload}`, exported already.

use super::labels::Seen;
use super::{set_each, sync, workload, Metrics};
use prometheus_client::registry::{Registry, Unit};

impl Metrics {
    /// Registers both families.
    pub(super) fn register_node_load(&self, r: &mut Registry) {
        r.register(
            "forecast_utilization",
            "Share of each replica's CPU request a workload is forecast to use at its peak, as the node planner counts it (1 without a forecast)",
            self.utilization.clone(),
        );
        r.register_with_unit(
            "plan_timestamp",
            "Unix time of the cycle that last planned a workload (for readers of its recommendation and utilisation: how fresh they are)",
            Unit::Seconds,
            self.planned_at.clone(),
        );
    }

    /// State: a workload gone from the snapshot is gone from `/metrics`. Every workload in
    /// `loads` was planned by the cycle at `at_unix`.
    pub(super) fn observe_node_loads(
        &self,
        loads: &[(String, f64)],
        at_unix: i64,
        seen: &mut Seen,
    ) {
        let now = set_each(
            &self.utilization,
            loads.iter().map(|(w, u)| (workload(w), *u)),
        );
        sync(&self.utilization, &mut seen.utilization, now);
        let now = set_each(
            &self.planned_at,
            loads.iter().map(|(w, _)| (workload(w), at_unix)),
        );
        sync(&self.planned_at, &mut seen.planned_at, now);
    }
}

#[cfg(test)]
mod tests {
    use crate::export::{Metrics, Snapshot};
    use crate::shard::readback::{PLANNED_AT_METRIC, UTILIZATION_METRIC};

    /// The names are the ones the read-back queries, and a workload no longer planned leaves.
    #[test]
    fn node_loads_are_exported_under_the_read_back_names() {
        let m = Metrics::new();
        m.observe(&Snapshot {
            node_loads: vec![("web".into(), 0.75), ("batch".into(), 1.0)],
            at_unix: 1_700_000_000,
            ..Snapshot::default()
        });
        for text in [m.encode(), m.encode_text()] {
            for line in [
                format!("{UTILIZATION_METRIC}{{workload=\"web\"}} 0.75"),
                format!("{UTILIZATION_METRIC}{{workload=\"batch\"}} 1.0"),
                format!("{PLANNED_AT_METRIC}{{workload=\"web\"}} 1700000000"),
            ] {
                assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
            }
        }
        m.observe(&Snapshot {
            node_loads: vec![("web".into(), 0.5)],
            at_unix: 1_700_000_060,
            ..Snapshot::default()
        });
        let text = m.encode_text();
        assert!(!text.contains("batch"), "{text}");
        assert!(text.contains(&format!(
            "{PLANNED_AT_METRIC}{{workload=\"web\"}} 1700000060"
        )));
    }
}
