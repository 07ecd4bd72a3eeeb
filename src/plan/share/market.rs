//! `market`: scarce capacity goes to the highest bids.

use super::policy::Fill;

/// Highest bid first (ties by name), each workload taking all it wants that fits; what a
/// high bidder cannot use (its replicas too large for what is left) goes on down the bids.
/// Returns the clearing price: the highest bid that did not get all it wanted (the first
/// rejected bid, which any bid must beat to be served in full), `None` when nobody was cut.
pub(super) fn allocate(fill: &mut Fill) -> Option<f64> {
    let mut order: Vec<usize> = (0..fill.claims.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&fill.claims[a], &fill.claims[b]);
        cb.bid
            .total_cmp(&ca.bid)
            .then_with(|| ca.name.cmp(&cb.name))
    });
    for &i in &order {
        let n = fill.room(i);
        fill.give(i, n);
    }
    order
        .iter()
        .find(|&&i| fill.granted[i] < fill.claims[i].want)
        .map(|&i| fill.claims[i].bid)
}
