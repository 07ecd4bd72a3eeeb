//! prescale's own policy: the live loop's [`ReplicaPlanner`](crate::plan) fed, at every
//! simulated step, the forecast the model made at that step.

use super::policy::Policy;
use super::scenario::{Knobs, Scenario};

/// The predictive policy for `scenario` with `knobs`.
pub fn policy<'a>(_scenario: &'a Scenario, _knobs: &Knobs) -> Result<Box<dyn Policy + 'a>, String> {
    Err("the predictive policy needs prescale's planner (crate::plan), which is not in this build yet".into())
}
