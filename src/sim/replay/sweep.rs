//! Cost-versus-risk curves: each policy's risk knob stepped from cheap-and-risky to
//! safe-and-dear, every point replayed on the same simulated steps.

use super::error::ReplayError;
use super::scenario::{Knobs, PolicyKind, Scenario};
use serde::Serialize;

/// The share of under-provisioned steps a policy must stay within for [`Curve::budget`].
pub const RISK_TARGET: f64 = 0.01;

/// One replay of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    /// The knob setting, as text (`q=0.9`, `target=70%`, `p95`).
    pub knob: String,
    /// Replica-hours relative to the oracle's.
    pub cost_vs_oracle: f64,
    /// Replica-hours.
    pub replica_hours: f64,
    /// Share of steps under-provisioned.
    pub under_provisioned: f64,
    /// Share of demand unserved.
    pub unserved: f64,
    /// Scaling actions.
    pub scaling_actions: usize,
}

/// One policy's curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    /// The policy.
    pub policy: PolicyKind,
    /// Its points, in knob order (cheapest setting first).
    pub points: Vec<CurvePoint>,
    /// The cheapest point with at most [`RISK_TARGET`] of steps under-provisioned; `None` if
    /// no setting tried gets there.
    pub budget: Option<CurvePoint>,
}

/// The knob settings swept for `kind`, cheapest first.
pub fn grid(kind: PolicyKind) -> Vec<Knobs> {
    let base = Knobs::default();
    match kind {
        PolicyKind::Predictive => {
            let mut v: Vec<Knobs> = [0.5, 0.7, 0.8, 0.9, 0.95, 0.99]
                .into_iter()
                .map(|quantile| Knobs { quantile, ..base })
                .collect();
            // Beyond the top quantile, margin: the planner's target utilisation, which (like the
            // HPA's target) also covers its reactive floor when the forecast is trusted little.
            v.extend(
                [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
                    .into_iter()
                    .map(|target_utilization| Knobs {
                        quantile: 0.99,
                        target_utilization,
                        ..base
                    }),
            );
            v
        }
        PolicyKind::Reactive => [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
            .into_iter()
            .map(|hpa_target| Knobs { hpa_target, ..base })
            .collect(),
        PolicyKind::Static => {
            let mut v: Vec<Knobs> = [50.0, 75.0, 90.0, 95.0, 99.0, 100.0]
                .into_iter()
                .map(|static_percentile| Knobs {
                    static_percentile,
                    ..base
                })
                .collect();
            v.extend(
                [0.1, 0.25, 0.5, 1.0]
                    .into_iter()
                    .map(|static_margin| Knobs {
                        static_percentile: 100.0,
                        static_margin,
                        ..base
                    }),
            );
            v
        }
        PolicyKind::Oracle => vec![base],
    }
}

/// Sweeps every policy in `kinds` over its [`grid`]. Points are independent replays, run in
/// parallel; the result does not depend on the order they finish in.
pub fn run(scenario: &Scenario, kinds: &[PolicyKind]) -> Result<Vec<Curve>, ReplayError> {
    use rayon::prelude::*;
    kinds
        .iter()
        .map(|&kind| {
            let points = grid(kind)
                .par_iter()
                .map(|k| {
                    let (_, s) = scenario.run(kind, k)?;
                    Ok(CurvePoint {
                        knob: k.describe(kind),
                        cost_vs_oracle: s.cost_vs_oracle,
                        replica_hours: s.replica_hours,
                        under_provisioned: s.under_provisioned,
                        unserved: s.unserved,
                        scaling_actions: s.scaling_actions,
                    })
                })
                .collect::<Result<Vec<_>, ReplayError>>()?;
            Ok(Curve {
                policy: kind,
                budget: budget(&points),
                points,
            })
        })
        .collect()
}

/// The cheapest point within the risk target.
pub fn budget(points: &[CurvePoint]) -> Option<CurvePoint> {
    points
        .iter()
        .filter(|p| p.under_provisioned <= RISK_TARGET)
        .min_by(|a, b| a.replica_hours.total_cmp(&b.replica_hours))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(knob: &str, hours: f64, under: f64) -> CurvePoint {
        CurvePoint {
            knob: knob.into(),
            cost_vs_oracle: hours / 10.0,
            replica_hours: hours,
            under_provisioned: under,
            unserved: 0.0,
            scaling_actions: 0,
        }
    }

    #[test]
    fn budget_is_the_cheapest_point_within_target() {
        let pts = [
            pt("a", 10.0, 0.2),
            pt("b", 14.0, 0.01),
            pt("c", 12.0, 0.005),
            pt("d", 20.0, 0.0),
        ];
        assert_eq!(budget(&pts).unwrap().knob, "c");
        assert!(budget(&pts[..1]).is_none());
    }

    #[test]
    fn grids_run_cheap_to_safe() {
        for kind in [
            PolicyKind::Reactive,
            PolicyKind::Static,
            PolicyKind::Predictive,
        ] {
            assert!(grid(kind).len() >= 8, "{kind:?}");
        }
        let r = grid(PolicyKind::Reactive);
        assert!(r.windows(2).all(|w| w[0].hpa_target > w[1].hpa_target));
    }
}
