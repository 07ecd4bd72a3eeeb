//! Best fit on forecast headroom: where one more replica of a workload fits in a pool, and how
//! a scan over a pool's nodes skips the exact check on nodes that cannot win.

use super::model::{NodeModel, WorkloadInfo};
use super::EPS;
use crate::plan::spec::PoolSpec;

/// The normalised forecast headroom node `n` would have left with one more replica of `info`,
/// or `None` if that replica does not fit there (requests over capacity, forecast over the
/// pool's threshold). Cordoned nodes and exclusions are the caller's business.
#[inline]
pub(super) fn headroom_after(n: &NodeModel, info: &WorkloadInfo, pool: &PoolSpec) -> Option<f64> {
    let cap = &pool.capacity;
    let thr = pool.target_utilization;
    let mut req = n.request;
    req.add_scaled(&info.request, 1.0);
    let mut fc = n.forecast;
    fc.add_scaled(&info.forecast, 1.0);
    if req.fill_ratio(cap) > 1.0 + EPS || fc.fill_ratio(cap) > thr + EPS {
        return None;
    }
    let mut left = 0.0;
    if cap.cpu > 0.0 {
        left += thr - fc.cpu / cap.cpu;
    }
    if cap.memory > 0.0 {
        left += thr - fc.memory / cap.memory;
    }
    Some(left)
}

/// Whether one replica of `info` fits an empty node of `pool` within the threshold: if not, no
/// node the planner could add would hold it, so it must not make the pool grow (it would
/// grow every cycle up to `max_nodes`, each new node as useless as the last).
pub(super) fn fits_empty(info: &WorkloadInfo, pool: &PoolSpec) -> bool {
    let cap = &pool.capacity;
    info.request.fill_ratio(cap) <= 1.0 + EPS
        && info.forecast.fill_ratio(cap) <= pool.target_utilization + EPS
}

/// A floor under [`headroom_after`]'s headroom from multiplications alone, so a scan passes
/// over the nodes that cannot beat the best found so far without the four divisions the exact
/// check costs (at 2,000 nodes a best-fit scan was mostly divisions).
///
/// Rule: a node is passed over only when its approximate headroom, less a slack a million
/// times the rounding it can differ by, is still at least the headroom to beat, so the exact
/// check would not have picked it either; whatever is not finite gets the exact check.
struct Floor {
    thr: f64,
    /// `1 / capacity` of each resource the pool offers (`None`: not counted, as there).
    cpu: Option<f64>,
    memory: Option<f64>,
}

impl Floor {
    fn new(pool: &PoolSpec) -> Self {
        let inv = |c: f64| (c > 0.0).then(|| 1.0 / c);
        Floor {
            thr: pool.target_utilization,
            cpu: inv(pool.capacity.cpu),
            memory: inv(pool.capacity.memory),
        }
    }

    /// Whether [`headroom_after`] of `n` and `info` is surely not below `target` (or `None`).
    #[inline]
    fn surely_not_below(&self, n: &NodeModel, info: &WorkloadInfo, target: f64) -> bool {
        // `headroom_after` computes `thr − (forecast + one replica) / capacity` per resource;
        // with a reciprocal instead of the division each term is off by a few roundings of
        // its own size, far inside the slack.
        let mut approx = 0.0;
        let mut size = 2.0 * self.thr.abs();
        if let Some(r) = self.cpu {
            let f = (n.forecast.cpu + info.forecast.cpu) * r;
            approx += self.thr - f;
            size += f.abs();
        }
        if let Some(r) = self.memory {
            let f = (n.forecast.memory + info.forecast.memory) * r;
            approx += self.thr - f;
            size += f.abs();
        }
        // NaN compares false: the exact check decides.
        approx - (size * 1e-12 + 1e-300) >= target
    }
}

/// Where one more replica of `w` fits best in `pool`, skipping `exclude`: requests within
/// capacity, forecast within the threshold, least normalised headroom left; ties by name
/// because nodes are sorted by name. With `floor`, nodes that cannot beat the best so far are
/// passed over without the exact check ([`Floor`]); the answer is the same.
pub(super) fn best_fit(
    nodes: &[NodeModel],
    members: &[usize],
    info: &WorkloadInfo,
    pool: &PoolSpec,
    exclude: Option<usize>,
    floor: bool,
) -> Option<usize> {
    let fl = Floor::new(pool);
    let mut best: Option<(usize, f64)> = None;
    for &i in members {
        if Some(i) == exclude || nodes[i].unschedulable {
            continue;
        }
        if let Some((_, b)) = best {
            if floor && fl.surely_not_below(&nodes[i], info, b - EPS) {
                continue;
            }
        }
        let Some(left) = headroom_after(&nodes[i], info, pool) else {
            continue;
        };
        if best.is_none_or(|(_, b)| left < b - EPS) {
            best = Some((i, left));
        }
    }
    best.map(|b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::spec::Resources;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The floor passes over no node the exact scan would pick: the same node with and
        /// without it, when forecasts tie to within fractions of EPS (every side of the
        /// `left < best − EPS` test), on pools without one of the resources, with cordoned
        /// and excluded nodes and nodes the replica does not fit.
        #[test]
        fn the_floor_changes_no_pick(
            cap in (prop_oneof![Just(0.0), Just(8.0), 0.5f64..64.0],
                    prop_oneof![Just(0.0), Just(32.0), 1.0f64..512.0]),
            thr in prop_oneof![Just(0.8), 0.05f64..1.0],
            nodes in proptest::collection::vec(
                (0u32..8, -4i32..5, -4i32..5, any::<bool>(), 0.5f64..1.5), 1..60),
            ask in (0.0f64..4.0, 0.0f64..32.0),
            exclude in proptest::option::of(0usize..60),
        ) {
            let mut pool = PoolSpec::new("p", Resources::new(cap.0, cap.1), 100);
            pool.target_utilization = thr;
            let info = WorkloadInfo {
                name: "w",
                request: Resources::new(ask.0, ask.1),
                forecast: Resources::new(ask.0 * 0.7, ask.1),
                pool: Some(0),
                desired: 1,
            };
            // Forecasts on a few fill levels, each nudged by multiples of 0.3 EPS of the
            // capacity, so headrooms tie within EPS in every way; requests some way off.
            let names: Vec<String> = (0..nodes.len()).map(|i| format!("n{i:02}")).collect();
            let model: Vec<NodeModel> = nodes
                .iter()
                .zip(&names)
                .map(|(&(level, dc, dm, cordoned, req), name)| {
                    let at = |c: f64, d: i32| {
                        let c = if c > 0.0 { c } else { 1.0 };
                        c * (f64::from(level) / 8.0 + f64::from(d) * 0.3 * EPS)
                    };
                    let forecast = Resources::new(at(cap.0, dc), at(cap.1, dm));
                    NodeModel {
                        name,
                        pool: 0,
                        request: Resources::new(forecast.cpu * req, forecast.memory * req),
                        forecast,
                        unschedulable: cordoned && level % 3 == 0,
                        reps: Vec::new(),
                        movable: &[],
                    }
                })
                .collect();
            let members: Vec<usize> = (0..model.len()).collect();
            let fast = best_fit(&model, &members, &info, &pool, exclude, true);
            let plain = best_fit(&model, &members, &info, &pool, exclude, false);
            prop_assert_eq!(fast, plain);
        }
    }
}
