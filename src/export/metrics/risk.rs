//! The families of a workload's short-step budget (`max_short`): the budget, the share of
//! steps realised short over its window, and the forecast level and margin it is provisioned
//! at, so a dashboard can put "budget 1 %, realised 0.8 %" side by side and alert on the gap.

use super::labels::{Seen, WorkloadLabel};
use super::{set_each, sync, workload, Metrics};
use crate::export::RiskSample;
use prometheus_client::registry::Registry;

impl Metrics {
    /// Registers the five families.
    pub(super) fn register_risk(&self, r: &mut Registry) {
        r.register(
            "short_share",
            "Share of a workload's steps with demand above the capacity running, over its short_window (0.01 = 1%)",
            self.short_share.clone(),
        );
        r.register(
            "short_budget",
            "A workload's max_short: the share of steps it may be short (0.01 = 1%)",
            self.short_budget.clone(),
        );
        r.register(
            "risk_level",
            "Forecast quantile level a workload with max_short is provisioned at, before its margin",
            self.risk_level.clone(),
        );
        r.register(
            "risk_margin",
            "Calibrated margin on that level (1.1 = 10% above the forecast quantile)",
            self.risk_margin.clone(),
        );
        r.register(
            "risk_floor",
            "Demand floor of a workload with max_short while engaged (its margin at the cap and steps still short): a high quantile of its own recent demand, in the demand's unit",
            self.risk_floor.clone(),
        );
    }

    /// `prescale_short_share`, `prescale_short_budget`, `prescale_risk_level`,
    /// `prescale_risk_margin` and `prescale_risk_floor` (while engaged), per workload with a budget: state, so a workload gone from the
    /// snapshot is gone from `/metrics`; the share only once a step was counted.
    pub(super) fn observe_risk(&self, risk: &[RiskSample], seen: &mut Seen) {
        let each = |f: fn(&RiskSample) -> Option<f64>| {
            risk.iter()
                .filter_map(move |r| f(r).map(|v| (workload(&r.workload), v)))
                .collect::<Vec<(WorkloadLabel, f64)>>()
        };
        let now = set_each(&self.short_share, each(|r| r.realised).into_iter());
        sync(&self.short_share, &mut seen.short_share, now);
        let now = set_each(&self.short_budget, each(|r| Some(r.budget)).into_iter());
        sync(&self.short_budget, &mut seen.short_budget, now);
        let now = set_each(&self.risk_level, each(|r| Some(r.level)).into_iter());
        sync(&self.risk_level, &mut seen.risk_level, now);
        let now = set_each(&self.risk_margin, each(|r| Some(r.margin)).into_iter());
        sync(&self.risk_margin, &mut seen.risk_margin, now);
        let now = set_each(&self.risk_floor, each(|r| r.floor).into_iter());
        sync(&self.risk_floor, &mut seen.risk_floor, now);
    }
}

#[cfg(test)]
mod tests {
    use crate::export::{Metrics, RiskSample, Snapshot};

    /// The families show what the snapshot says; the share waits for a counted step; a
    /// workload gone from the snapshot leaves `/metrics`.
    #[test]
    fn risk_families_follow_the_snapshot() {
        let m = Metrics::new();
        let sample = |w: &str, realised| RiskSample {
            workload: w.into(),
            budget: 0.01,
            realised,
            window_seconds: 604_800.0,
            level: 0.99,
            margin: 1.25,
            floor: (w == "api").then_some(240.0),
        };
        m.observe(&Snapshot {
            risk: vec![sample("api", Some(0.008)), sample("new", None)],
            ..Snapshot::default()
        });
        for text in [m.encode(), m.encode_text()] {
            for line in [
                r#"prescale_short_share{workload="api"} 0.008"#,
                r#"prescale_short_budget{workload="api"} 0.01"#,
                r#"prescale_short_budget{workload="new"} 0.01"#,
                r#"prescale_risk_level{workload="api"} 0.99"#,
                r#"prescale_risk_margin{workload="api"} 1.25"#,
                r#"prescale_risk_floor{workload="api"} 240.0"#,
            ] {
                assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
            }
            assert!(!text.contains(r#"prescale_short_share{workload="new"}"#));
            assert!(!text.contains(r#"prescale_risk_floor{workload="new"}"#));
        }
        m.observe(&Snapshot {
            risk: vec![sample("new", Some(0.0))],
            ..Snapshot::default()
        });
        let text = m.encode_text();
        assert!(!text.contains(r#"workload="api""#), "{text}");
        assert!(text.contains(r#"prescale_short_share{workload="new"} 0.0"#));
    }
}
