//! Cost-versus-risk curves: each policy's risk knob stepped from cheap-and-risky to
//! safe-and-dear, every point replayed on the same simulated steps.

use super::error::ReplayError;
use super::scenario::{Knobs, PolicyKind, Scenario};
use super::tune;
use serde::Serialize;

/// The share of under-provisioned steps a policy must stay within for [`Curve::budget`].
pub const RISK_TARGET: f64 = 0.01;

/// One replay of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    /// The knob setting, as text (`q=0.9`, `target=70%`, `p95`).
    pub knob: String,
    /// Predictive: the forecast quantile whose margin was swept (its [`tune::Arm`]'s base),
    /// so each arm can be told apart; absent for the other policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<f64>,
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
    /// Its points, arm by arm (see [`tune::Arm`]), each in knob order (cheapest setting
    /// first): the coarse grid and every bisection step.
    pub points: Vec<CurvePoint>,
    /// The cheapest point with at most [`RISK_TARGET`] of steps under-provisioned; `None` if
    /// no setting tried gets there.
    pub budget: Option<CurvePoint>,
}

/// Safeties of the coarse grid every curve is drawn on: eleven evenly spaced settings.
const GRID: [f64; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// The coarse knob settings swept for `kind` with forecasts at `levels`, cheapest first per
/// [`tune::Arm`] (see [`tune::knobs_at`]); the budget is then found by bisection between them.
pub fn grid(kind: PolicyKind, levels: &[f64]) -> Vec<Knobs> {
    if kind == PolicyKind::Oracle {
        return vec![Knobs::default()];
    }
    tune::arms(kind, levels)
        .into_iter()
        .flat_map(|arm| GRID.iter().map(move |&s| tune::knobs_at(arm, s)))
        .collect()
}

/// Sweeps every policy in `kinds`: along each of its [`tune::arms`] (the predictive policy
/// has one per forecast quantile), the coarse 11-point grid (`GRID`, replayed in parallel) for the curve,
/// then [`tune::bisect`] on the knob for the cheapest setting within [`RISK_TARGET`], so every
/// policy, prescale's and the baselines alike, is tuned to the same precision. A policy's
/// budget is the cheapest of every point of every arm. The result does not depend on the
/// order replays finish in.
pub fn run(scenario: &Scenario, kinds: &[PolicyKind]) -> Result<Vec<Curve>, ReplayError> {
    let levels: Vec<f64> = scenario
        .forecasts
        .iter()
        .flatten()
        .next()
        .map(|f| f.quantiles.iter().map(|q| q.0).collect())
        .unwrap_or_default();
    kinds
        .iter()
        .map(|&kind| {
            let mut points = Vec::new();
            if kind == PolicyKind::Oracle {
                points.push(replay(scenario, tune::Arm { kind, base: None }, 0.0)?);
            } else {
                for arm in tune::arms(kind, &levels) {
                    points.extend(sweep_arm(scenario, arm)?);
                }
            }
            Ok(Curve {
                policy: kind,
                budget: budget(&points),
                points,
            })
        })
        .collect()
}

/// One replay of `arm` at safety `s`, as a curve point.
fn replay(scenario: &Scenario, arm: tune::Arm, s: f64) -> Result<CurvePoint, ReplayError> {
    let knobs = tune::knobs_at(arm, s);
    let (_, sc) = scenario.run(arm.kind, &knobs)?;
    Ok(CurvePoint {
        knob: knobs.describe(arm.kind),
        arm: arm.base,
        cost_vs_oracle: sc.cost_vs_oracle,
        replica_hours: sc.replica_hours,
        under_provisioned: sc.under_provisioned,
        unserved: sc.unserved,
        scaling_actions: sc.scaling_actions,
    })
}

/// One arm: the grid in parallel, then the bisection; its points in safety order.
fn sweep_arm(scenario: &Scenario, arm: tune::Arm) -> Result<Vec<CurvePoint>, ReplayError> {
    use rayon::prelude::*;
    let point = |s: f64| replay(scenario, arm, s).map(|p| (s, p));
    let mut points = GRID
        .par_iter()
        .map(|&s| point(s))
        .collect::<Result<Vec<_>, ReplayError>>()?;
    let mut failed = None;
    tune::bisect(
        |s| {
            if failed.is_some() {
                return false;
            }
            // The grid's ends are already replayed: no need to run them again.
            if let Some((_, p)) = points.iter().find(|(g, _)| *g == s) {
                return p.under_provisioned <= RISK_TARGET;
            }
            match point(s) {
                Ok(p) => {
                    let ok = p.1.under_provisioned <= RISK_TARGET;
                    points.push(p);
                    ok
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        },
        tune::BISECTION_STEPS,
    );
    if let Some(e) = failed {
        return Err(e);
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.dedup_by(|a, b| a.0 == b.0);
    Ok(points.into_iter().map(|(_, p)| p).collect())
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
            arm: None,
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

    /// History and tail both 1, 2, …, 100 at capacity 10: 10 replicas serve every step, 9
    /// leave 91..=100 short (10 %). The static percentile needs a level above 90, i.e.
    /// `1 + 0.99 p > 90`, p > 89.899; on the 2-decimal grid of knobs that is p89.90.
    /// Bisection on s (p = 200 s) tries 1, 0, then .5 (p100 yes), .25 (p50 no), .375 (p75 no),
    /// .4375 (p87.5 no), .46875 (p93.75 yes), .453125 (p90.63 yes), .4453125 (p89.06 no),
    /// .44921875 (p89.84 no), .451171875 (p90.23 yes), .4501953125 (p90.04 yes),
    /// .44970703125 (p89.94 yes), .449462890625 (p89.89 no): p89.94, 10 replicas all along.
    #[test]
    fn static_budget_by_bisection_hand_worked() {
        use crate::series::Series;
        use crate::sim::replay::scenario::ScenarioOptions;
        use crate::sim::replay::Workload;
        let values: Vec<f64> = (1..=100).chain(1..=100).map(f64::from).collect();
        let series = Series::for_test("x", 0, 60, values);
        let workload = Workload::for_test("x", 60, 50);
        let sc = Scenario::new(&series, &ScenarioOptions::new(100, workload), None).unwrap();
        let curves = run(&sc, &[PolicyKind::Static, PolicyKind::Reactive]).unwrap();
        let b = curves[0].budget.as_ref().unwrap();
        assert_eq!(b.knob, "p89.94");
        assert_eq!(b.under_provisioned, 0.0);
        assert!(
            (b.replica_hours - 10.0 * 100.0 / 60.0).abs() < 1e-9,
            "{b:?}"
        );
        assert!(curves[0]
            .points
            .iter()
            .any(|p| p.knob == "p89.89" && (p.under_provisioned - 0.1).abs() < 1e-12));
        // The HPA's target is bisected the same way and meets the budget too.
        let h = curves[1].budget.as_ref().unwrap();
        assert!(h.under_provisioned <= RISK_TARGET, "{h:?}");
        assert!(curves[1].points.len() > GRID.len(), "bisection points kept");
    }

    #[test]
    fn verdict_names_the_cheapest_policy_whichever_it_is() {
        use crate::sim::replay::report::verdict;
        let curve = |policy, budget: Option<CurvePoint>| Curve {
            policy,
            points: Vec::new(),
            budget,
        };
        let line = verdict(&[
            curve(PolicyKind::Predictive, Some(pt("q=0.9", 12.0, 0.01))),
            curve(PolicyKind::Reactive, Some(pt("target=80%", 15.0, 0.0))),
            curve(PolicyKind::Static, Some(pt("p99", 11.0, 0.005))),
            curve(PolicyKind::Persistence, None),
            curve(PolicyKind::Oracle, Some(pt("-", 10.0, 0.0))),
        ])
        .unwrap();
        assert_eq!(
            line,
            "cheapest with under-provisioned steps ≤ 1%: static (p99) at 1.100x the oracle's \
             replica-hours; predictive (q=0.9) 1.200x, 9.1% dearer; reactive (target=80%) \
             1.500x, 36.4% dearer; no setting tried gets persistence there"
        );
        assert!(verdict(&[curve(PolicyKind::Oracle, None)]).is_none());
    }

    #[test]
    fn grids_run_cheap_to_safe() {
        for kind in [
            PolicyKind::Reactive,
            PolicyKind::Static,
            PolicyKind::Predictive,
            PolicyKind::Persistence,
        ] {
            assert!(grid(kind, &[]).len() >= 8, "{kind:?}");
        }
        assert_eq!(
            grid(PolicyKind::Predictive, &[0.5, 0.9]).len(),
            2 * GRID.len(),
            "one grid per forecast level"
        );
        let r = grid(PolicyKind::Reactive, &[]);
        assert!(r.windows(2).all(|w| w[0].hpa_target > w[1].hpa_target));
    }
}
