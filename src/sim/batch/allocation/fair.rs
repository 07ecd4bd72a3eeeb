//! Dominant-resource fairness (Ghodsi et al., "Dominant Resource Fairness: Fair Allocation of
//! Multiple Resource Types", NSDI 2011). A tenant's dominant share is the largest, over
//! resources, of what its running tasks hold divided by the cluster's capacity of that
//! resource. The next task comes from the waiting tenant with the lowest dominant share (ties
//! by the earliest waiting task); a tenant whose next task fits no node is skipped for the
//! others, as progressive filling stops only the users it cannot serve.

use crate::sim::batch::tasks::Res;

/// `held`'s dominant share of `total`: the largest of its shares over the resources the
/// cluster has.
pub(super) fn dominant_share(held: &Res, total: &Res) -> f64 {
    held.as_array()
        .iter()
        .zip(total.as_array())
        .filter(|(_, c)| *c > 0.0)
        .map(|(h, c)| h / c)
        .fold(0.0, f64::max)
}
