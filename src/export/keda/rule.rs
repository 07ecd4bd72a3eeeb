//! The value/target rule: which metric value and per-replica target make KEDA's HPA arrive at
//! exactly prescale's replica count.
//!
//! # What the HPA does with them
//!
//! KEDA puts an external metric with an `AverageValue` target (the trigger's default
//! `metricType`) into the HPA it creates, and hands the HPA both numbers as Kubernetes
//! quantities, truncated to thousandths (`int64(x * 1000)` milli-units). For such a metric the
//! HPA computes, with `c` the scale target's current replicas:
//!
//! ```text
//! ratio   = value / (target × c)
//! desired = c                        if |1 − ratio| ≤ tolerance (0.1 unless the cluster or
//!                                    the HPA's behavior sets another)
//!         = ceil(value / target)     otherwise
//! ```
//!
//! [`hpa_replicas`] is exactly this, on the truncated milli-units.
//!
//! # The rule
//!
//! - **target** = the workload's effective per-replica capacity (`replica_capacity ×
//!   target_utilization`, what the planner divides demand by), in milli-units, at least 1.
//! - **value**: `ceil(value / target) = d` (the planner's desired replicas) holds exactly for
//!   values in `((d − 1)·target, d·target]`. Preferred is the forecast demand the planner sized
//!   for (the peak at the workload's quantile over its lead, or with `max_short` at the
//!   budget's level times its margin, times `1 + headroom`), so that
//!   `kubectl get hpa` shows demand against capacity. That value is used whenever it lies in
//!   `d`'s interval and the HPA's formula turns it into exactly `d` from the current count.
//!   When it does not (a guard moved the count: the reactive
//!   floor, stabilisation, a step limit, an event, min/max, the pool's allocation; or the
//!   forecast value falls inside the HPA's tolerance band around `c`), the value is the point
//!   of `d`'s interval furthest from the band: `d·target` when scaling up or holding,
//!   `(d − 1)·target + 1 milli` when scaling down, `0` for `d = 0`.
//!
//! So the HPA arrives at `d` whenever any single value can make it: the one case it cannot is
//! a change within the tolerance band (`d/c ≤ 1.1` up, `(d − 1)/c ≥ 0.9` down, roughly),
//! where the HPA keeps `c` whatever the metric says. The planner's own `tolerance` (default
//! 0.1) holds most such changes anyway. `c` is prescale's current count for the workload,
//! which is the HPA's when both read the same cluster.
//!
//! Numbers are sent as `k + ½` milli-units, so that KEDA's truncation yields exactly `k`
//! whatever the float rounding of `k / 1000`. Exact up to about 9·10¹² units (f64's 53 bits
//! of milli-units).

/// The HPA's default tolerance: a ratio within 10 % of 1 leaves the replicas as they are
/// (`--horizontal-pod-autoscaler-tolerance`).
pub const HPA_TOLERANCE: f64 = 0.1;

/// The largest target sent, in milli-units (10⁶ units per replica): with `d ≤ u32::MAX` every
/// value stays within an `int64` of milli-units.
pub const MAX_TARGET_MILLI: i64 = 1_000_000_000;

/// What GetMetricSpec and GetMetrics answer for one workload: the metric's value and its
/// per-replica (`AverageValue`) target, in the workload's demand units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpaMetric {
    /// The metric's value (GetMetrics' `metricValueFloat`).
    pub value: f64,
    /// The per-replica target (GetMetricSpec's `targetSizeFloat`).
    pub target: f64,
}

/// A number as KEDA hands it to the HPA: milli-units, truncated (Go's `int64(x * 1000)`;
/// Rust's `as` saturates where Go's conversion is undefined, beyond any value sent here).
pub fn to_milli(x: f64) -> i64 {
    (x * 1000.0) as i64
}

/// The number sent for `milli` milli-units: half a milli above, so the truncation lands on it.
fn from_milli(milli: i64) -> f64 {
    if milli <= 0 {
        0.0
    } else {
        (milli as f64 + 0.5) / 1000.0
    }
}

/// The HPA's replica count for an `AverageValue` external metric of `value` against `target`
/// with `current` replicas, on the milli-units KEDA passes it, with [`HPA_TOLERANCE`]. `None`
/// for a target of 0 milli (the HPA cannot divide by it). `current = 0` (scaled to zero) skips
/// the tolerance: KEDA activates the target and the HPA takes over from there.
pub fn hpa_replicas(value: f64, target: f64, current: u64) -> Option<u64> {
    hpa_milli(to_milli(value), to_milli(target), current)
}

fn hpa_milli(value: i64, target: i64, current: u64) -> Option<u64> {
    if target <= 0 {
        return None;
    }
    let value = value.max(0);
    if current > 0 {
        let ratio = value as f64 / (target as f64 * current as f64);
        if (1.0 - ratio).abs() <= HPA_TOLERANCE {
            return Some(current);
        }
    }
    Some((value as u64).div_ceil(target as u64))
}

/// The value and target that bring KEDA's HPA from `current` to `desired` replicas (see the
/// module doc), given the workload's effective per-replica capacity and the forecast demand
/// the planner sized for (`None` when there is none).
pub fn metric_for(
    desired: u64,
    current: u64,
    per_replica: f64,
    forecast: Option<f64>,
) -> HpaMetric {
    let target_milli = if per_replica.is_finite() {
        ((per_replica * 1000.0).round() as i64).clamp(1, MAX_TARGET_MILLI)
    } else {
        MAX_TARGET_MILLI
    };
    let target = from_milli(target_milli);
    if let Some(v) = forecast.filter(|v| v.is_finite() && *v >= 0.0) {
        // In d's interval (so the HPA lands on d from any count outside the band) and not
        // held elsewhere by the band around the current count.
        let v_milli = to_milli(v);
        if hpa_milli(v_milli, target_milli, 0) == Some(desired)
            && hpa_milli(v_milli, target_milli, current) == Some(desired)
        {
            return HpaMetric { value: v, target };
        }
    }
    let d = desired.min(u64::from(u32::MAX)) as i64;
    let value_milli = match desired.cmp(&current) {
        _ if d == 0 => 0,
        std::cmp::Ordering::Less => (d - 1) * target_milli + 1,
        _ => d * target_milli,
    };
    HpaMetric {
        value: from_milli(value_milli),
        target,
    }
}
