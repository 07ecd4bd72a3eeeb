//! The sweep's cost-versus-risk chart: replica-hours relative to the oracle on x,
//! under-provisioned steps on y, one line per swept knob.
//!
//! The predictive policy is swept along one arm per forecast quantile (a margin on its p50,
//! p90, …, see [`tune::Arm`](super::tune::Arm)), and each arm is its own curve: joined into
//! one line, a point of the p50 arm would be drawn next to one of the p99 arm, a zigzag that
//! is no setting anyone can choose. So every arm gets its own line, legend entry and shade of
//! the policy's colour.

use super::error::ReplayError;
use super::report::colour;
use super::sweep::Curve;
use super::workload::PolicyKind;
use crate::chart::{self, Chart, Line};
use std::path::Path;

/// One line of the chart.
#[derive(Debug, Clone, PartialEq)]
struct SweepLine {
    /// The policy, and its arm's quantile for the predictive one (`predictive p90 × margin`).
    label: String,
    rgb: (u8, u8, u8),
    /// Under-provisioned steps (%), one per x; `NaN` (not drawn) where the line has no point.
    y: Vec<f64>,
}

/// Shades of the predictive policy's blue for its arms, lowest quantile darkest.
const ARM_SHADES: [(u8, u8, u8); 4] = [
    (8, 48, 107),
    (31, 119, 180),
    (107, 174, 214),
    (158, 202, 225),
];

/// Draws the curves with cost on x and under-provisioned steps (%) on y, one line per policy
/// and per predictive arm.
pub fn sweep_chart(curves: &[Curve], path: &Path, title: &str) -> Result<(), ReplayError> {
    let (xs, lines) = sweep_lines(curves);
    chart::draw(
        &Chart {
            title,
            x_label: "replica-hours relative to the oracle",
            y_label: "under-provisioned steps (%)",
            x: &xs,
            lines: lines
                .iter()
                .map(|l| Line {
                    label: &l.label,
                    y: &l.y,
                    rgb: l.rgb,
                })
                .collect(),
            bands: Vec::new(),
        },
        path,
        1000,
        650,
    )?;
    Ok(())
}

/// The chart's x values and lines. The chart module shares one x axis across lines, so the x
/// values of all curves are merged and each line is `NaN` where it has no point.
fn sweep_lines(curves: &[Curve]) -> (Vec<f64>, Vec<SweepLine>) {
    let mut xs: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.cost_vs_oracle))
        .filter(|x| x.is_finite())
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let mut lines = Vec::new();
    for c in curves {
        // The arms in the order swept (the forecast's quantiles, ascending).
        let mut arms: Vec<Option<f64>> = Vec::new();
        for p in &c.points {
            if !arms.contains(&p.arm) {
                arms.push(p.arm);
            }
        }
        let several = arms.len() > 1;
        for (i, &arm) in arms.iter().enumerate() {
            let mut y = vec![f64::NAN; xs.len()];
            for p in c.points.iter().filter(|p| p.arm == arm) {
                if let Ok(i) = xs.binary_search_by(|x| x.total_cmp(&p.cost_vs_oracle)) {
                    // Of two settings with the same cost, show the safer one.
                    let v = p.under_provisioned * 100.0;
                    y[i] = if y[i].is_nan() { v } else { y[i].min(v) };
                }
            }
            let (label, rgb) = match arm {
                Some(q) => (
                    format!(
                        "{} p{} × margin",
                        c.policy.as_str(),
                        (q * 1000.0).round() / 10.0
                    ),
                    if several && c.policy == PolicyKind::Predictive {
                        ARM_SHADES[i % ARM_SHADES.len()]
                    } else {
                        colour(c.policy)
                    },
                ),
                None => (c.policy.as_str().to_string(), colour(c.policy)),
            };
            lines.push(SweepLine { label, rgb, y });
        }
    }
    (xs, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::replay::sweep::CurvePoint;

    fn pt(arm: Option<f64>, cost: f64, under: f64) -> CurvePoint {
        CurvePoint {
            knob: format!("{arm:?} {cost}"),
            arm,
            cost_vs_oracle: cost,
            replica_hours: cost * 10.0,
            under_provisioned: under,
            unserved: 0.0,
            scaling_actions: 0,
        }
    }

    #[test]
    fn each_predictive_arm_is_its_own_line() {
        let arms = [0.5, 0.9, 0.95, 0.99];
        let predictive = Curve {
            policy: PolicyKind::Predictive,
            // Interleaved costs: joined, the arms would zigzag between each other.
            points: arms
                .iter()
                .enumerate()
                .flat_map(|(i, &q)| {
                    (0..3).map(move |k| {
                        pt(
                            Some(q),
                            1.0 + k as f64 + i as f64 * 0.25,
                            0.1 / (k + 1) as f64,
                        )
                    })
                })
                .collect(),
            budget: None,
        };
        let reactive = Curve {
            policy: PolicyKind::Reactive,
            // 1.5 is also a point of the p95 arm: the lines share one x axis.
            points: vec![pt(None, 1.5, 0.02), pt(None, 4.0, 0.0)],
            budget: None,
        };
        let (xs, lines) = sweep_lines(&[predictive, reactive]);
        assert_eq!(xs.len(), 13);
        let labels: Vec<&str> = lines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "predictive p50 × margin",
                "predictive p90 × margin",
                "predictive p95 × margin",
                "predictive p99 × margin",
                "reactive"
            ]
        );
        // Each line holds exactly its own arm's points, each arm its own colour.
        for (line, n) in lines.iter().zip([3, 3, 3, 3, 2]) {
            assert_eq!(
                line.y.iter().filter(|v| v.is_finite()).count(),
                n,
                "{}",
                line.label
            );
        }
        let p90 = &lines[1].y;
        let at = |x: f64| xs.iter().position(|&v| v == x).unwrap();
        assert_eq!(p90[at(1.25)], 10.0);
        assert!(p90[at(1.0)].is_nan(), "p50's point is not on the p90 line");
        let mut colours: Vec<_> = lines.iter().map(|l| l.rgb).collect();
        colours.dedup();
        assert_eq!(colours.len(), 5);
    }

    #[test]
    fn a_single_arm_keeps_the_policy_colour_and_the_chart_is_drawn() {
        let curve = Curve {
            policy: PolicyKind::Predictive,
            points: vec![pt(Some(0.9), 1.2, 0.03), pt(Some(0.9), 1.6, 0.0)],
            budget: None,
        };
        let (_, lines) = sweep_lines(std::slice::from_ref(&curve));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].rgb, colour(PolicyKind::Predictive));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.png");
        sweep_chart(&[curve], &path, "t").unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[1..4], b"PNG");
    }
}
