//! The act stage's families: decisions taken by kind, the outcome of each workload's decision,
//! the changes the actuator failed to carry out and those found made by someone else. Counters,
//! each at 0 from the start (decision kinds) or from its workload's first snapshot, so that
//! `rate()` has a baseline before the first event.

use super::labels::{ActionLabels, KindLabel, Lv, Seen};
use super::{sync, workload, Metrics};
use crate::export::snapshot::{ActionSample, WorkloadSample};
use crate::plan::DecisionKind;
use prometheus_client::registry::Registry;

/// The decision kinds the planner and actuator emit, as metric labels (`scale_up`). Their
/// counters exist (at 0) from the start so that `rate()` and `increase()` have a baseline
/// before the first decision of a kind. Derived from [`DecisionKind::ALL`], the one list of
/// kinds, so that a new kind cannot be missed here.
pub fn decision_kinds() -> impl Iterator<Item = String> {
    DecisionKind::ALL.into_iter().map(DecisionKind::label)
}

/// The outcomes of a workload's decision, as the `outcome` label of `prescale_actions_total`:
/// the act stage's [`Outcome::LABELS`](crate::act::Outcome::LABELS), the one spelling. Every
/// workload has a counter at 0 for each from its first snapshot, so that a first failure is an
/// increase, not a new series.
pub const ACTION_OUTCOMES: [&str; 4] = crate::act::Outcome::LABELS;

impl Metrics {
    /// Registers the decision and action counters.
    pub(super) fn register_actions(&self, r: &mut Registry) {
        r.register(
            "decisions",
            "Decisions taken, by kind",
            self.decisions.clone(),
        );
        r.register(
            "actions",
            "Outcomes of workloads' decisions: dry_run, applied, failed, skipped (holds)",
            self.actions.clone(),
        );
        r.register(
            "actuator_failures",
            "Workload changes the actuator failed to carry out (exit status, timeout, stop)",
            self.actuator_failures.clone(),
        );
        r.register(
            "external_changes",
            "Times a workload's live replicas differed from what prescale last set, changed by \
             someone else; prescale then left them and planned from the live count",
            self.external_changes.clone(),
        );
    }

    /// Counts the cycle's decisions by kind.
    pub(super) fn observe_decisions(&self, kinds: &[String]) {
        for kind in kinds {
            self.decisions
                .get_or_create(&KindLabel {
                    kind: Lv::from(kind),
                })
                .inc();
        }
    }

    /// Outcomes of the workloads' decisions; every workload's counters start at 0 and live as
    /// long as the workload does.
    pub(super) fn observe_actions(
        &self,
        workloads: &[WorkloadSample],
        actions: &[ActionSample],
        seen: &mut Seen,
    ) {
        let action = |w: &str, outcome: &str| ActionLabels {
            workload: Lv::from(w),
            outcome: Lv::from(outcome),
        };
        let mut now = Vec::with_capacity(workloads.len() * ACTION_OUTCOMES.len() + actions.len());
        let mut failures = Vec::with_capacity(workloads.len());
        let mut external = Vec::with_capacity(workloads.len());
        for w in workloads {
            for outcome in ACTION_OUTCOMES {
                let l = action(&w.workload, outcome);
                let _ = self.actions.get_or_create(&l);
                now.push(l);
            }
            let l = workload(&w.workload);
            let _ = self.actuator_failures.get_or_create(&l);
            let _ = self.external_changes.get_or_create(&l);
            external.push(l.clone());
            failures.push(l);
        }
        for a in actions {
            let l = action(&a.workload, &a.outcome);
            self.actions.get_or_create(&l).inc();
            now.push(l);
            if a.outcome == "failed" {
                let l = workload(&a.workload);
                self.actuator_failures.get_or_create(&l).inc();
                failures.push(l);
            }
            if a.external_change {
                let l = workload(&a.workload);
                self.external_changes.get_or_create(&l).inc();
                external.push(l);
            }
        }
        sync(&self.actions, &mut seen.actions, now);
        sync(
            &self.actuator_failures,
            &mut seen.actuator_failures,
            failures,
        );
        sync(&self.external_changes, &mut seen.external_changes, external);
    }
}
