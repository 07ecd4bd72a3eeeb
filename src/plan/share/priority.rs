//! `priority`: the highest priority is served first; lower priorities keep their minimum and
//! get more only once every higher priority has all it wants.

use super::policy::Fill;

/// Level by level from the highest priority, one replica at a time round the level's
/// workloads (by name) so that equals share evenly. If a level is not fully served, the levels
/// below it get nothing above their minimum, even where a smaller replica would still fit:
/// otherwise a higher priority could be short while a lower one holds more than its minimum
/// (the capacity left over is a replica too small for the higher priority, and stays free).
pub(super) fn allocate(fill: &mut Fill) {
    let mut order: Vec<usize> = (0..fill.claims.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&fill.claims[a], &fill.claims[b]);
        cb.priority
            .cmp(&ca.priority)
            .then_with(|| ca.name.cmp(&cb.name))
    });
    for level in order.chunk_by(|&a, &b| fill.claims[a].priority == fill.claims[b].priority) {
        let mut active: Vec<usize> = level.to_vec();
        while !active.is_empty() {
            active.retain(|&i| {
                if fill.can_take(i) {
                    fill.give(i, 1);
                    true
                } else {
                    false
                }
            });
        }
        if level.iter().any(|&i| fill.granted[i] < fill.claims[i].want) {
            return;
        }
    }
}
