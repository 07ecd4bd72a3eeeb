//! How the forecast and current demand make one number: by maximum, never by averaging.
//!
//! The reactive need (current demand × (1 + headroom) / capacity) is a **floor**: what is
//! needed right now is needed whatever the model says, so no forecast, good or bad, takes
//! capacity below it. The forecast can only **add** capacity above the floor:
//!
//! - a **trusted** forecast (weight ≥ [`TRUSTED_WEIGHT`]) adds all of its need: the number is
//!   `max(floor, forecast need)`, so the quantile the user chose is provisioned in full;
//! - a **poorly rated** one (weight below it) adds the share `weight / TRUSTED_WEIGHT` of its
//!   excess over the floor, fading to plain reactive at weight 0.
//!
//! This is the rule of Crane, AWS predictive scaling and Alibaba's AHPA (the larger of the
//! predictive and the reactive number). The blend it replaces, `w·forecast + (1−w)·reactive`,
//! provisioned *below* the chosen quantile whenever the weight was under 1, even for a model
//! that was right: the demo's `api` went 7 → 3 → 8 replicas at weight 0.26. A bad model can
//! now cost money (it adds capacity that is not used) but never risk (it cannot remove
//! capacity current demand needs).

/// Forecast weight from which a forecast is trusted in full.
///
/// Why 0.25: with the default `[accuracy]` settings a weight below it means the median's
/// recent WAPE is above about 0.41 (the forecast is off by more than 40 % of the peak), or its
/// p90 covered fewer than about 58 % of peaks instead of 90 %: the quantile no longer means
/// the risk it names, so paying for all of it is not justified. At or above it (including the
/// 0.5 prior of a model not yet scored) the forecast's errors are the ones its quantiles were
/// calibrated for, and the user's quantile is provisioned in full. The share below the
/// threshold is `weight / TRUSTED_WEIGHT`, so the number does not jump at the threshold.
pub const TRUSTED_WEIGHT: f64 = 0.25;

/// What the forecast asks for after weighing, before the guards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Combined {
    /// The planner's raw number. It is below the floor only when the forecast itself is (the
    /// surge guard then lifts it to the floor and records that the floor won).
    pub raw: u32,
    /// The share of the forecast's excess over the floor that counts: 1 when trusted.
    pub share: f64,
}

/// Combines the forecast's need `forecast` with the reactive `floor` (`None` when current
/// demand is unknown, then the `current` replicas stand in for it unless the forecast is
/// trusted) at forecast `weight` (already clamped to 0..=1).
pub(super) fn combine(forecast: u32, floor: Option<u32>, current: u32, weight: f64) -> Combined {
    let share = if weight >= TRUSTED_WEIGHT {
        1.0
    } else {
        (weight / TRUSTED_WEIGHT).clamp(0.0, 1.0)
    };
    let raw = match floor {
        // The floor is applied by the surge guard, so a forecast under it shows as one.
        Some(floor) if forecast <= floor => forecast,
        Some(floor) => floor.saturating_add(share_of(forecast - floor, share)),
        // No current demand: a trusted forecast decides alone (as it must, or nothing would
        // ever scale down without a demand reading); a poorly rated one may only add above
        // what runs.
        None if share >= 1.0 => forecast,
        None if forecast <= current => current,
        None => current.saturating_add(share_of(forecast - current, share)),
    };
    Combined { raw, share }
}

/// `share` of `excess` replicas, rounded up (a share of a replica is a replica).
fn share_of(excess: u32, share: f64) -> u32 {
    let n = (f64::from(excess) * share - 1e-9).ceil();
    if n <= 0.0 || n.is_nan() {
        0
    } else {
        (n as u32).min(excess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_forecasts_count_in_full_poorly_rated_ones_by_share() {
        // Trusted: the larger of the two, whatever the weight above the threshold.
        assert_eq!(combine(8, Some(1), 9, 0.26).raw, 8);
        assert_eq!(combine(8, Some(1), 9, 1.0).raw, 8);
        // Forecast under the floor: raw is the forecast, the surge guard lifts it.
        assert_eq!(combine(3, Some(5), 5, 1.0).raw, 3);
        assert_eq!(combine(3, Some(5), 5, 0.1).raw, 3);
        // Weight 0.1: share 0.4 of the excess 16 above the floor 4 is 6.4 → 7, so 11.
        let c = combine(20, Some(4), 4, 0.1);
        assert_eq!((c.raw, c.share), (11, 0.4));
        // Weight 0: the floor alone.
        assert_eq!(combine(20, Some(4), 4, 0.0).raw, 4);
        // No demand: trusted decides alone; poorly rated only adds above what runs.
        assert_eq!(combine(20, None, 10, 0.5).raw, 20);
        assert_eq!(combine(2, None, 10, 0.5).raw, 2);
        assert_eq!(combine(2, None, 10, 0.2).raw, 10);
        // 0.2 / 0.25 = 0.8 of 10 above 10 → 18.
        assert_eq!(combine(20, None, 10, 0.2).raw, 18);
        assert_eq!(combine(u32::MAX, Some(u32::MAX - 1), 0, 0.01).raw, u32::MAX);
    }
}
