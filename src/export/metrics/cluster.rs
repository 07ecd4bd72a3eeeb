//! `prescale_cluster_state_known{workload}`: whether this cycle read a workload's state from
//! the cluster (kube-state-metrics, `[cluster]`). A workload whose state could not be read
//! (kube-state-metrics not scraped, its series stale or absent, the query failed) is at 0 and
//! cannot scale down until it is read again, so an alert on `== 0` finds the workloads
//! prescale is holding for want of data; the decision's reason says which series is missing.
//!
//! A gauge per workload rather than a counter of failed reads: what matters to an operator is
//! "is it blind now", and the series exists only with `[cluster]`, so its absence means the
//! cluster is not read at all rather than read fine.

use super::labels::Seen;
use super::{set_each, sync, workload, Metrics};
use prometheus_client::registry::Registry;

impl Metrics {
    /// Registers the family.
    pub(super) fn register_cluster(&self, r: &mut Registry) {
        r.register(
            "cluster_state_known",
            "Whether a workload's state (spec.replicas) was read from the cluster this cycle (1) or is unknown (0: kube-state-metrics missing or its series stale; no scale-down meanwhile)",
            self.cluster_state_known.clone(),
        );
    }

    /// State: a workload gone from the snapshot is gone from `/metrics`.
    pub(super) fn observe_cluster(&self, known: &[(String, bool)], seen: &mut Seen) {
        let now = set_each(
            &self.cluster_state_known,
            known.iter().map(|(w, k)| (workload(w), i64::from(*k))),
        );
        sync(
            &self.cluster_state_known,
            &mut seen.cluster_state_known,
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::export::{Metrics, Snapshot};

    /// One gauge per workload at 0 or 1 as the snapshot says, in both formats; a workload no
    /// longer in the snapshot leaves `/metrics`, and without `[cluster]` (empty) there is none.
    #[test]
    fn cluster_state_known_follows_the_snapshot() {
        let m = Metrics::new();
        assert!(!m.encode_text().contains("prescale_cluster_state_known{"));
        m.observe(&Snapshot {
            cluster_state: vec![("web".into(), true), ("db".into(), false)],
            ..Snapshot::default()
        });
        for text in [m.encode(), m.encode_text()] {
            for line in [
                r#"prescale_cluster_state_known{workload="web"} 1"#,
                r#"prescale_cluster_state_known{workload="db"} 0"#,
            ] {
                assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
            }
        }
        m.observe(&Snapshot {
            cluster_state: vec![("db".into(), true)],
            ..Snapshot::default()
        });
        let text = m.encode_text();
        assert!(!text.contains(r#"workload="web""#), "{text}");
        assert!(text.contains(r#"prescale_cluster_state_known{workload="db"} 1"#));
    }
}
