//! `prescale_forecast_stage{workload,stage}`: which forecaster each workload is planned with
//! (see [`forecast::stage`](crate::forecast::stage)), as a state set: 1 for the current stage
//! and 0 for the others, so a dashboard can count workloads per stage with `sum by (stage)`
//! and an alert can find one stuck in `reactive`.

use super::labels::{Lv, Seen, StageLabels};
use super::{set_each, sync, Metrics};
use prometheus_client::registry::Registry;

/// The cold-start stages, as the `stage` label: the forecast stage's own spelling. Every
/// workload has all three label sets, the current one at 1.
pub const FORECAST_STAGES: [&str; 3] = crate::forecast::Stage::LABELS;

impl Metrics {
    /// Registers the family.
    pub(super) fn register_stage(&self, r: &mut Registry) {
        r.register(
            "forecast_stage",
            "Cold-start stage a workload is planned with (1 = current): reactive (too little history for a forecast), global (the shared model), own (a model of its own history)",
            self.forecast_stage.clone(),
        );
    }

    /// State: a workload gone from the snapshot is gone from `/metrics`.
    pub(super) fn observe_stages(&self, stages: &[(String, String)], seen: &mut Seen) {
        let now = set_each(
            &self.forecast_stage,
            stages.iter().flat_map(|(w, current)| {
                FORECAST_STAGES.iter().map(move |s| {
                    let l = StageLabels {
                        workload: Lv::from(w),
                        stage: Lv::from(s),
                    };
                    (l, i64::from(s == current))
                })
            }),
        );
        sync(&self.forecast_stage, &mut seen.forecast_stage, now);
    }
}

#[cfg(test)]
mod tests {
    use crate::export::{Metrics, Snapshot};

    /// One stage at 1 per workload, the others at 0, in both formats; a workload gone from the
    /// snapshot leaves `/metrics`.
    #[test]
    fn stages_are_a_state_set_per_workload() {
        let m = Metrics::new();
        m.observe(&Snapshot {
            stages: vec![
                ("api".into(), "reactive".into()),
                ("web".into(), "own".into()),
            ],
            ..Snapshot::default()
        });
        for text in [m.encode(), m.encode_text()] {
            for line in [
                r#"prescale_forecast_stage{workload="api",stage="reactive"} 1"#,
                r#"prescale_forecast_stage{workload="api",stage="global"} 0"#,
                r#"prescale_forecast_stage{workload="api",stage="own"} 0"#,
                r#"prescale_forecast_stage{workload="web",stage="own"} 1"#,
                r#"prescale_forecast_stage{workload="web",stage="reactive"} 0"#,
            ] {
                assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
            }
        }
        m.observe(&Snapshot {
            stages: vec![("api".into(), "global".into())],
            ..Snapshot::default()
        });
        let text = m.encode_text();
        assert!(!text.contains(r#"workload="web""#), "{text}");
        assert!(text.contains(r#"prescale_forecast_stage{workload="api",stage="global"} 1"#));
        assert!(text.contains(r#"prescale_forecast_stage{workload="api",stage="reactive"} 0"#));
    }
}
