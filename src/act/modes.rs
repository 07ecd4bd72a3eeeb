//! Per-workload modes in the act stage: a `preview` workload's scale decisions are recorded
//! `skipped (preview)` even under `--apply` and never reach the actuator, whichever actuator
//! it is (command or Kubernetes), so opting a workload in is one key (`mode = "auto"`) and
//! not a property of how prescale acts.
//!
//! A workload the map does not name is treated as `preview`: a decision for something nobody
//! opted in must not change the cluster.

use super::{is_scale, Outcome, Skip};
use crate::plan::{Decision, Mode};
use std::collections::HashMap;

/// Splits a cycle's decisions into those handed on (every decision but the scale decisions of
/// `preview` workloads) and the outcomes already known (`Some(skipped (preview))` at their
/// index, `None` where an outcome is still to come).
pub(super) fn split(
    decisions: &[Decision],
    modes: &HashMap<String, Mode>,
) -> (Vec<Decision>, Vec<Option<Outcome>>) {
    let mut on = Vec::with_capacity(decisions.len());
    let mut known = Vec::with_capacity(decisions.len());
    for d in decisions {
        let mode = modes.get(&d.target).copied().unwrap_or(Mode::Preview);
        if is_scale(d) && mode == Mode::Preview {
            known.push(Some(Outcome::Skipped(Skip::Preview)));
        } else {
            known.push(None);
            on.push(d.clone());
        }
    }
    (on, known)
}

/// Fills the gaps of `known` with the outcomes of the decisions handed on, in order. A
/// missing outcome (an actuator that returned too few) is recorded failed, never believed.
pub(super) fn merge(known: Vec<Option<Outcome>>, done: Vec<Outcome>) -> Vec<Outcome> {
    let mut done = done.into_iter();
    known
        .into_iter()
        .map(|k| {
            k.or_else(|| done.next())
                .unwrap_or_else(|| Outcome::Failed("the actuator gave no outcome".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::tests::decision;
    use crate::plan::DecisionKind;

    #[test]
    fn preview_scale_decisions_are_held_back_and_the_rest_merged_in_order() {
        let ds = vec![
            decision(DecisionKind::ScaleUp, "web", 3, 5),
            decision(DecisionKind::ScaleDown, "api", 4, 2),
            decision(DecisionKind::Hold, "web", 5, 5),
            decision(DecisionKind::ScaleUp, "unnamed", 1, 2),
        ];
        let modes = HashMap::from([
            ("web".to_string(), Mode::Preview),
            ("api".into(), Mode::Auto),
        ]);
        let (on, known) = split(&ds, &modes);
        let targets: Vec<(&str, DecisionKind)> =
            on.iter().map(|d| (d.target.as_str(), d.kind)).collect();
        assert_eq!(
            targets,
            [
                ("api", DecisionKind::ScaleDown),
                ("web", DecisionKind::Hold)
            ]
        );
        let out = merge(
            known,
            vec![Outcome::Applied, Outcome::Skipped(Skip::Nothing)],
        );
        assert_eq!(
            out,
            [
                Outcome::Skipped(Skip::Preview),
                Outcome::Applied,
                Outcome::Skipped(Skip::Nothing),
                Outcome::Skipped(Skip::Preview),
            ]
        );
    }
}
