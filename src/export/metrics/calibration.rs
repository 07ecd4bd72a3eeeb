//! `prescale_forecast_calibration{workload}`: the online calibration's factor at each
//! workload's quantile (`forecast::online`); none for `max_short` workloads, which plan
//! uncorrected.

use super::labels::Seen;
use super::{set_each, sync, workload, Metrics};
use prometheus_client::registry::Registry;

impl Metrics {
    /// Registers the family.
    pub(super) fn register_calibration(&self, r: &mut Registry) {
        r.register(
            "forecast_calibration",
            "Factor the online calibration multiplies a workload's forecast by at its quantile (1.12 = raised 12%, 1 = unchanged; none for a max_short workload, whose margin is its calibration)",
            self.calibration.clone(),
        );
    }

    /// Sets the family from the snapshot; a workload gone from it leaves `/metrics`.
    pub(super) fn observe_calibration(&self, factors: &[(String, f64)], seen: &mut Seen) {
        let now = set_each(
            &self.calibration,
            factors.iter().map(|(w, f)| (workload(w), *f)),
        );
        sync(&self.calibration, &mut seen.calibration, now);
    }
}

#[cfg(test)]
mod tests {
    use crate::export::{Metrics, Snapshot};

    #[test]
    fn calibration_follows_the_snapshot() {
        let m = Metrics::new();
        m.observe(&Snapshot {
            calibration: vec![("api".into(), 1.25), ("web".into(), 0.8)],
            ..Snapshot::default()
        });
        for text in [m.encode(), m.encode_text()] {
            assert!(
                text.contains(r#"prescale_forecast_calibration{workload="api"} 1.25"#),
                "{text}"
            );
            assert!(
                text.contains(r#"prescale_forecast_calibration{workload="web"} 0.8"#),
                "{text}"
            );
        }
        m.observe(&Snapshot {
            calibration: vec![("api".into(), 1.0)],
            ..Snapshot::default()
        });
        let text = m.encode_text();
        assert!(
            text.contains(r#"prescale_forecast_calibration{workload="api"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"workload="web""#), "{text}");
    }
}
