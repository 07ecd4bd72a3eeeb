//! Every policy's risk knob on one scale, and the bisection that finds the cheapest setting
//! meeting the under-provisioning budget, so each policy is tuned as finely as the others.
//!
//! A policy's settings are laid on a *safety* scale `s ∈ [0, 1]`: 0 is its cheapest,
//! riskiest setting, 1 the safest tried, and under-provisioning falls (roughly) as `s` rises.
//! The predictive policy has one such scale per forecast quantile ([`Arm`]): a margin on that
//! quantile, bisected for each, the cheapest within the budget being the policy's.
//! [`bisect`] then finds the smallest `s` that meets the budget to within `2^-steps`.
//! Under-provisioning is not exactly monotone in any knob (the HPA's tolerance band, rounding
//! to whole replicas), so the sweep takes the cheapest of *every* setting it replayed that
//! meets the budget, bisection points and the coarse grid alike.

use super::workload::{Knobs, PolicyKind};

/// Bisection steps per policy: the knob is found to `1/4096` of its range (an HPA target to
/// 0.02 percentage points), each step one replay.
pub const BISECTION_STEPS: usize = 12;

/// Rounds to `digits` decimals, so knobs print as they are meant (0.745, not 0.7450000001).
fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// The factors the sweep tries on a forecast (predictive) or the recent peak (persistence):
/// from half to nine times it, the range the yardstick tries on every method's outputs, so no
/// policy is judged at a coarser or narrower setting than its peers.
pub const FACTOR_RANGE: (f64, f64) = (0.5, 9.0);

/// The factor at safety `s` in [`FACTOR_RANGE`], linear.
fn factor(s: f64) -> f64 {
    let (lo, hi) = FACTOR_RANGE;
    round(lo + (hi - lo) * s, 4)
}

/// One line of settings a policy is swept along: the policy, and for the predictive policy
/// the forecast quantile its margin scales (each output is its own line, as the yardstick
/// tries each output as a base; the cheapest line within the budget is the policy's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arm {
    /// The policy.
    pub kind: PolicyKind,
    /// Predictive: the quantile level whose forecast the margin multiplies.
    pub base: Option<f64>,
}

/// The lines `kind` is swept along: one per forecast level in `levels` for the predictive
/// policy (the default quantile's if there are none), one otherwise.
pub fn arms(kind: PolicyKind, levels: &[f64]) -> Vec<Arm> {
    if kind != PolicyKind::Predictive {
        return vec![Arm { kind, base: None }];
    }
    let levels = if levels.is_empty() {
        vec![Knobs::default().quantile]
    } else {
        levels.to_vec()
    };
    levels
        .into_iter()
        .map(|q| Arm {
            kind,
            base: Some(q),
        })
        .collect()
}

/// The knobs of `arm` at safety `s` (clamped to 0..=1); the other policies' knobs are the
/// defaults.
///
/// - predictive: the forecast at the arm's quantile times a margin from 0.5 to 9
///   ([`FACTOR_RANGE`]);
/// - reactive (the HPA): target utilisation from 100 % down to 5 %;
/// - static: the percentile of the history from 0 to 100 over the first half, then a margin
///   on the maximum from 0 to +200 %;
/// - persistence: the recent peak times a factor from 0.5 to 9 (margin −50 % to +800 %).
pub fn knobs_at(arm: Arm, s: f64) -> Knobs {
    let s = if s.is_finite() {
        s.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let base = Knobs::default();
    match arm.kind {
        PolicyKind::Predictive => Knobs {
            quantile: arm.base.unwrap_or(base.quantile),
            forecast_margin: Some(factor(s)),
            ..base
        },
        PolicyKind::Reactive => Knobs {
            hpa_target: round(1.0 - 0.95 * s, 4),
            ..base
        },
        PolicyKind::Static if s <= 0.5 => Knobs {
            static_percentile: round(100.0 * s / 0.5, 2),
            ..base
        },
        PolicyKind::Static => Knobs {
            static_percentile: 100.0,
            static_margin: round(2.0 * (s - 0.5) / 0.5, 4),
            ..base
        },
        PolicyKind::Persistence => Knobs {
            persistence_margin: round(factor(s) - 1.0, 4),
            ..base
        },
        PolicyKind::Oracle => base,
    }
}

/// The smallest safety in `[0, 1]` for which `meets` holds, by bisection in `steps` halvings,
/// assuming `meets` is monotone (false below some point, true above it). `None` when even
/// `s = 1` does not meet it. Every safety tried is passed to `meets` once, in order.
pub fn bisect(mut meets: impl FnMut(f64) -> bool, steps: usize) -> Option<f64> {
    if !meets(1.0) {
        return None;
    }
    if meets(0.0) {
        return Some(0.0);
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..steps {
        let mid = 0.5 * (lo + hi);
        if meets(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bisection_hand_worked() {
        // Met from 0.3 on. The mids: .5 yes, .25 no, .375 yes, .3125 yes, .28125 no,
        // .296875 no, .3046875 yes, .30078125 yes, .298828125 no, .2998046875 no,
        // .30029296875 yes, .300048828125 yes.
        let mut tried = Vec::new();
        let s = bisect(
            |s| {
                tried.push(s);
                s >= 0.3
            },
            12,
        );
        assert_eq!(s, Some(0.300048828125));
        assert_eq!(tried.len(), 14, "1 and 0, then 12 mids");
        assert_eq!(&tried[..4], &[1.0, 0.0, 0.5, 0.25]);
        // Met everywhere: the cheapest end; nowhere: none.
        assert_eq!(bisect(|_| true, 12), Some(0.0));
        assert_eq!(bisect(|_| false, 12), None);
    }

    #[test]
    fn knobs_run_from_cheap_to_safe() {
        let k = |kind, s| knobs_at(Arm { kind, base: None }, s);
        assert_eq!(k(PolicyKind::Reactive, 0.0).hpa_target, 1.0);
        assert_eq!(k(PolicyKind::Reactive, 1.0).hpa_target, 0.05);
        assert_eq!(k(PolicyKind::Reactive, 0.5).hpa_target, 0.525);
        // Predictive: the arm's quantile, its margin 0.5 + 8.5 s.
        let p95 = Arm {
            kind: PolicyKind::Predictive,
            base: Some(0.95),
        };
        let p = knobs_at(p95, 0.25);
        assert_eq!((p.quantile, p.forecast_margin), (0.95, Some(2.625)));
        assert_eq!(knobs_at(p95, 0.0).forecast_margin, Some(0.5));
        assert_eq!(knobs_at(p95, 1.0).forecast_margin, Some(9.0));
        assert_eq!(p.target_utilization, 1.0, "the floor is left alone");
        assert_eq!(k(PolicyKind::Static, 0.45).static_percentile, 90.0);
        let st = k(PolicyKind::Static, 0.75);
        assert_eq!((st.static_percentile, st.static_margin), (100.0, 1.0));
        // Persistence: factor 0.5 + 8.5 s, as a margin −0.5 to +8.
        assert_eq!(k(PolicyKind::Persistence, 0.1).persistence_margin, 0.35);
        assert_eq!(k(PolicyKind::Persistence, 1.0).persistence_margin, 8.0);
        assert_eq!(
            k(PolicyKind::Persistence, f64::NAN).persistence_margin,
            -0.5
        );
    }

    #[test]
    fn predictive_is_swept_once_per_forecast_level() {
        let a = arms(PolicyKind::Predictive, &[0.5, 0.9, 0.95, 0.99]);
        let bases: Vec<Option<f64>> = a.iter().map(|a| a.base).collect();
        assert_eq!(bases, [Some(0.5), Some(0.9), Some(0.95), Some(0.99)]);
        assert_eq!(arms(PolicyKind::Predictive, &[])[0].base, Some(0.9));
        assert_eq!(arms(PolicyKind::Reactive, &[0.5, 0.9]).len(), 1);
    }
}
