//! What training is handed when all of the history would not fit in memory: a spread sample of
//! whole series within a budget of points. Training holds about [`TRAIN_BYTES_PER_POINT`] per
//! point at its peak, sixty times what the history itself takes, so the budget, not the
//! history, sets training's memory. The live loop's retraining (`run.retrain_max_points`) and
//! `prescale train`/`backtest --max-points` both sample this way.

/// Bytes a point of history takes at training's peak, rounded up from what `benches/retrain.rs`
/// measures for a whole retraining (candidate, contest and refit): 482 bytes a point
/// (2026-12-08).
pub const TRAIN_BYTES_PER_POINT: u64 = 500;

/// The indices of the series to train on, given each series' length, in order: every `k`-th,
/// `k` = ⌈all points / `budget`⌉, each kept while it fits in what is left of `budget`, then
/// any other that still fits, in order (series of uneven lengths: a long one skipped leaves
/// room for shorter ones). A spread sample, the same one for the same lengths, never over
/// `budget`; everything when it all fits.
pub fn spread_sample(lens: &[usize], budget: usize) -> Vec<usize> {
    let total: usize = lens.iter().sum();
    let every = total.div_ceil(budget.max(1)).max(1);
    let mut left = budget;
    let mut keep = vec![false; lens.len()];
    let spread = (0..lens.len()).step_by(every);
    for i in spread.chain(0..lens.len()) {
        if !keep[i] && lens[i] <= left {
            keep[i] = true;
            left -= lens[i];
        }
    }
    (0..lens.len()).filter(|&i| keep[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_is_sampled_within_the_points_budget_and_a_small_one_whole() {
        let lens = vec![50; 100];
        // 5,000 points within 10,000: every series.
        assert_eq!(spread_sample(&lens, 10_000).len(), 100);
        // Within 1,200: every 5th (k = ceil(5000 / 1200) = 5), 20 series, 1,000 points, then
        // the first four others that fit.
        let some = spread_sample(&lens, 1_200);
        assert_eq!(some.len(), 24);
        assert_eq!(&some[..7], [0, 1, 2, 3, 4, 5, 10]);
        assert_eq!(some[23], 95);
        // Uneven lengths, 10, 1, 10, 1 within 11: k = 2 takes the first of 10 (the second
        // does not fit), then a short one.
        assert_eq!(spread_sample(&[10, 1, 10, 1], 11), [0, 1]);
        // A long series that fits is kept even where it leaves room for nothing else; one that
        // does not fit leaves its room to the others.
        assert_eq!(spread_sample(&[18, 4, 4, 4, 11], 20), [0]);
        assert_eq!(spread_sample(&[18, 4, 4, 4, 11], 12), [4]);
        assert_eq!(spread_sample(&[18, 4, 4, 4, 11], 16), [1, 2, 3]);
        assert!(spread_sample(&[], 5).is_empty());
    }
}
