//! The cycle's working model of the cluster, shared by its steps (`cycle`) and the best-fit
//! scans (`fit`): what one replica of a workload requests and is forecast to use, and what each
//! node holds, changed replica by replica as the steps decide.

use crate::plan::spec::Resources;

/// One workload as the cycle sees it: per-replica request and forecast usage, its pool (if
/// valid) and the replicas the workload planner wants.
pub(super) struct WorkloadInfo<'a> {
    pub(super) name: &'a str,
    pub(super) request: Resources,
    pub(super) forecast: Resources,
    pub(super) pool: Option<usize>,
    pub(super) desired: u32,
}

/// One node as the cycle sees it: its load (requests and forecast) and which replicas it holds.
#[derive(Clone)]
pub(super) struct NodeModel<'a> {
    pub(super) name: &'a str,
    pub(super) pool: usize,
    pub(super) request: Resources,
    pub(super) forecast: Resources,
    /// Cordoned: never a destination.
    pub(super) unschedulable: bool,
    /// (workload index, replicas), only workloads known to the planner.
    pub(super) reps: Vec<(usize, u32)>,
    /// Requests of the other pods on it that a removal would have to place elsewhere
    /// (`NodeState::movable`); already counted in `request` and `forecast`.
    pub(super) movable: &'a [Resources],
}

impl NodeModel<'_> {
    pub(super) fn count(&self, w: usize) -> u32 {
        self.reps.iter().find(|r| r.0 == w).map_or(0, |r| r.1)
    }

    pub(super) fn add(&mut self, w: usize, info: &WorkloadInfo, n: i64) {
        match self.reps.iter_mut().find(|r| r.0 == w) {
            Some(r) => r.1 = (r.1 as i64 + n).max(0) as u32,
            None if n > 0 => self.reps.push((w, n as u32)),
            None => {}
        }
        self.request.add_scaled(&info.request, n as f64);
        self.forecast.add_scaled(&info.forecast, n as f64);
    }

    /// Counts one more pod that prescale does not manage, requesting `r` (forecast = request).
    pub(super) fn add_pod(&mut self, r: &Resources) {
        self.request.add_scaled(r, 1.0);
        self.forecast.add_scaled(r, 1.0);
    }
}
