//! Every policy's risk knob on one scale, and the bisection that finds the cheapest setting
//! meeting the under-provisioning budget, so each policy is tuned as finely as the others.
//!
//! A policy's settings are laid on a *safety* scale `s ∈ [0, 1]`: 0 is its cheapest,
//! riskiest setting, 1 the safest tried, and under-provisioning falls (roughly) as `s` rises.
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

/// The knobs of `kind` at safety `s` (clamped to 0..=1); the other policies' knobs are the
/// defaults.
///
/// - predictive: the quantile from 0.5 to 0.99 over the first half, then at 0.99 the
///   planner's target utilisation from 1 down to 0.2 (a margin on forecast and floor alike);
/// - reactive (the HPA): target utilisation from 100 % down to 5 %;
/// - static: the percentile of the history from 0 to 100 over the first half, then a margin
///   on the maximum from 0 to +200 %;
/// - persistence: the margin on the recent peak from 0 to +300 %.
pub fn knobs_at(kind: PolicyKind, s: f64) -> Knobs {
    let s = if s.is_finite() {
        s.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let base = Knobs::default();
    match kind {
        PolicyKind::Predictive if s <= 0.5 => Knobs {
            quantile: round(0.5 + 0.49 * s / 0.5, 4),
            ..base
        },
        PolicyKind::Predictive => Knobs {
            quantile: 0.99,
            target_utilization: round(1.0 - 0.8 * (s - 0.5) / 0.5, 4),
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
            persistence_margin: round(3.0 * s, 4),
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
        let k = |kind, s| knobs_at(kind, s);
        assert_eq!(k(PolicyKind::Reactive, 0.0).hpa_target, 1.0);
        assert_eq!(k(PolicyKind::Reactive, 1.0).hpa_target, 0.05);
        assert_eq!(k(PolicyKind::Reactive, 0.5).hpa_target, 0.525);
        assert_eq!(k(PolicyKind::Predictive, 0.25).quantile, 0.745);
        let p = k(PolicyKind::Predictive, 0.75);
        assert_eq!((p.quantile, p.target_utilization), (0.99, 0.6));
        assert_eq!(k(PolicyKind::Static, 0.45).static_percentile, 90.0);
        let st = k(PolicyKind::Static, 0.75);
        assert_eq!((st.static_percentile, st.static_margin), (100.0, 1.0));
        assert_eq!(k(PolicyKind::Persistence, 0.1).persistence_margin, 0.3);
        assert_eq!(k(PolicyKind::Persistence, f64::NAN).persistence_margin, 0.0);
    }
}
