//! Several traces replayed together on one capped pool: at every step each workload's
//! predictive policy (the live [`ReplicaPlanner`](crate::plan::ReplicaPlanner) on its own
//! forecasts) says what it wants, [`plan::allocate`](crate::plan::allocate)
//! shares the pool's cap between those wants by an allocation policy, and each workload's
//! replay clock provisions what it was granted (boot times included).
//!
//! The forecasts are the [`Scenario`]s' own, computed once per workload, so the allocation
//! policies compared differ only in how the capped capacity is shared. The traces are laid
//! side by side by step index from the start of their simulated parts (they must share a
//! step) and replayed over the shortest of those parts: a trace stands for a workload's load
//! pattern, not for a date. One replica requests one unit of the pool, so the cap is in
//! replicas.

use super::error::ReplayError;
use super::replica::{Clock, Scores};
use super::scenario::Scenario;
use super::workload::{Knobs, PolicyKind};
use crate::plan::Resources;
use crate::plan::{allocate, Allocation, Claim};
use crate::sim::stats::jain_index;
use serde::Serialize;

/// One workload of a shared replay: its prepared trace and the keys the allocation policies
/// rank it by (`want`, `min` and `request` of `keys` are filled in at every step).
#[derive(Debug, Clone)]
pub struct Member {
    /// The trace, its forecasts and the workload's replay settings.
    pub scenario: Scenario,
    /// Name, team, priority, weight, share and bid as [`allocate`] reads them.
    pub keys: Claim,
}

impl Member {
    /// A member with neutral keys (priority 0, weight 1, no share, no bid, its own team).
    pub fn new(scenario: Scenario) -> Self {
        let keys = Claim::new(&scenario.workload.name, 0, 0, unit());
        Member { scenario, keys }
    }
}

/// What one replica requests of the pool: one unit, so capacities are replica counts.
fn unit() -> Resources {
    Resources::new(1.0, 0.0)
}

/// How one workload did under one allocation policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberScores {
    /// Workload name.
    pub name: String,
    /// Short steps, unserved demand, replica-hours, … on the shared steps.
    pub scores: Scores,
    /// Steps at which the policy granted fewer replicas than the planner wanted.
    pub cuts: usize,
    /// Replica-steps cut, over all steps.
    pub cut_replicas: u64,
}

/// One allocation policy's shared replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedResult {
    /// The policy sharing the cap.
    pub allocation: Allocation,
    /// Per workload, in the members' order.
    pub workloads: Vec<MemberScores>,
    /// Jain's index of the workloads' short-step shares (1 = equally short, or nobody short).
    pub jain_short: f64,
}

/// Replays `members` together on a pool of `cap` replicas shared by `allocation`, every
/// workload planned by the predictive policy with `knobs`.
pub fn replay(
    members: &[Member],
    cap: u32,
    allocation: Allocation,
    knobs: &Knobs,
) -> Result<SharedResult, ReplayError> {
    let steps = common_steps(members)?;
    let mut policies = Vec::with_capacity(members.len());
    let mut clocks = Vec::with_capacity(members.len());
    for m in members {
        policies.push(m.scenario.policy(PolicyKind::Predictive, knobs)?);
        clocks.push(Clock::new(&m.scenario.setup, m.scenario.initial, steps));
    }
    let capacity = Resources::new(f64::from(cap), 0.0);
    let mut cuts = vec![(0usize, 0u64); members.len()];
    let mut claims: Vec<Claim> = members.iter().map(|m| m.keys.clone()).collect();
    for t in 0..steps {
        for (i, m) in members.iter().enumerate() {
            let setup = &m.scenario.setup;
            let obs = clocks[i].observe(t, m.scenario.demand[t]);
            let want = policies[i]
                .decide(&obs)
                .clamp(setup.min_replicas, setup.max_replicas);
            let c = &mut claims[i];
            c.want = want;
            c.min = setup.min_replicas.min(want);
            c.request = unit();
        }
        let granted = allocate(allocation, &claims, capacity);
        for (i, (&n, c)) in granted.replicas.iter().zip(&claims).enumerate() {
            if n < c.want {
                cuts[i].0 += 1;
                cuts[i].1 += u64::from(c.want - n);
            }
            clocks[i].provision(t, n);
        }
    }
    let workloads: Vec<MemberScores> = members
        .iter()
        .zip(clocks)
        .zip(cuts)
        .map(|((m, clock), (cuts, cut_replicas))| {
            let sc = &m.scenario;
            let run = clock.finish();
            MemberScores {
                name: m.keys.name.clone(),
                scores: Scores::of(&sc.setup, &sc.demand[..steps], &run)
                    .relative_to(oracle_hours(sc, steps)),
                cuts,
                cut_replicas,
            }
        })
        .collect();
    let short: Vec<f64> = workloads
        .iter()
        .map(|w| w.scores.under_provisioned)
        .collect();
    Ok(SharedResult {
        allocation,
        jain_short: jain_index(&short),
        workloads,
    })
}

/// The oracle's replica-hours over the first `steps` simulated steps of `sc`.
fn oracle_hours(sc: &Scenario, steps: usize) -> f64 {
    let replicas: u64 = sc.oracle.provisioned[..steps]
        .iter()
        .map(|&r| u64::from(r))
        .sum();
    replicas as f64 * sc.setup.step as f64 / 3600.0
}

/// The steps every member replays: the shortest simulated part. The members must share a
/// step, have forecasts and distinct names.
fn common_steps(members: &[Member]) -> Result<usize, ReplayError> {
    let first = members.first().ok_or(ReplayError::NoMembers)?;
    for m in members {
        if m.scenario.setup.step != first.scenario.setup.step {
            return Err(ReplayError::SharedStep {
                name: m.keys.name.clone(),
                step: m.scenario.setup.step,
                first: first.keys.name.clone(),
                first_step: first.scenario.setup.step,
            });
        }
        if members
            .iter()
            .filter(|o| o.keys.name == m.keys.name)
            .count()
            > 1
        {
            return Err(ReplayError::SharedName(m.keys.name.clone()));
        }
    }
    Ok(members
        .iter()
        .map(|m| m.scenario.demand.len())
        .min()
        .unwrap_or(0))
}

/// The comparison as a table: per policy and workload, short steps, unserved demand,
/// replica-hours and cuts, and per policy Jain's index of short steps across workloads.
pub fn table(results: &[SharedResult], cap: u32) -> String {
    let mut out =
        format!("shared pool of {cap} replicas, predictive wants shared by allocation policy\n");
    out.push_str(&format!(
        "{:<10} {:<40} {:>7} {:>9} {:>13} {:>6} {:>10}\n",
        "policy", "workload", "short%", "unserved%", "replica-hours", "cuts", "jain-short"
    ));
    for r in results {
        for (k, w) in r.workloads.iter().enumerate() {
            let jain = if k == 0 {
                format!("{:.3}", r.jain_short)
            } else {
                String::new()
            };
            let line = format!(
                "{:<10} {:<40} {:>7.2} {:>9.3} {:>13.1} {:>6} {:>10}",
                r.allocation.as_str(),
                w.name,
                w.scores.under_provisioned * 100.0,
                w.scores.unserved * 100.0,
                w.scores.replica_hours,
                w.cuts,
                jain
            );
            // The index is printed once per policy: the other rows end without padding.
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::Forecast;
    use crate::series::Series;
    use crate::sim::replay::scenario::ScenarioOptions;
    use crate::sim::replay::Workload;

    const SPLIT: usize = 100;

    /// A workload named `name` whose demand is 100 (10 replicas of 10) except 200 (20
    /// replicas) over simulated steps 50..80, with perfect forecasts: the true peak of the
    /// next three steps at every level. Boot time is one 5-minute step.
    fn member(name: &str) -> Member {
        let values: Vec<f64> = (0..SPLIT + 150)
            .map(|i| {
                if (SPLIT + 50..SPLIT + 80).contains(&i) {
                    200.0
                } else {
                    100.0
                }
            })
            .collect();
        let s = Series::for_test(name, 1_704_067_200, 300, values);
        let w = Workload::for_test(name, 300, 100);
        let opts = ScenarioOptions::new(SPLIT, w);
        let mut sc = Scenario::new(&s, &opts, None).unwrap();
        sc.forecasts = (0..sc.demand.len())
            .map(|t| {
                let i = SPLIT + t;
                let peak = s.values[i + 1..(i + 4).min(s.values.len())]
                    .iter()
                    .copied()
                    .fold(s.values[i], f64::max);
                Some(Forecast {
                    key: s.key.clone(),
                    at: sc.setup.timestamp(t),
                    window: 900,
                    quantiles: vec![(0.5, peak), (0.9, peak), (0.99, peak)],
                })
            })
            .collect();
        Member::new(sc)
    }

    fn pair() -> Vec<Member> {
        let mut high = member("high");
        high.keys.priority = 10;
        high.keys.bid = 2.0;
        let mut low = member("low");
        low.keys.bid = 1.0;
        vec![high, low]
    }

    const POLICIES: [Allocation; 5] = [
        Allocation::None,
        Allocation::Priority,
        Allocation::Fair,
        Allocation::Static,
        Allocation::Market,
    ];

    #[test]
    fn none_is_each_workload_replayed_alone() {
        let members = pair();
        let r = replay(&members, 1, Allocation::None, &Knobs::default()).unwrap();
        for (m, w) in members.iter().zip(&r.workloads) {
            let (_, alone) = m
                .scenario
                .run(PolicyKind::Predictive, &Knobs::default())
                .unwrap();
            assert_eq!(w.scores.replica_hours, alone.replica_hours, "{}", w.name);
            assert_eq!(w.scores.under_provisioned, alone.under_provisioned);
            assert_eq!(w.scores.scaling_actions, alone.scaling_actions);
            assert_eq!(w.cuts, 0);
        }
    }

    #[test]
    fn a_cap_that_is_never_binding_changes_nothing() {
        // Combined want peaks at 40 (20 + 20): a cap of 40 never binds.
        let members = pair();
        let none = replay(&members, 40, Allocation::None, &Knobs::default()).unwrap();
        assert_eq!(none.workloads[0].scores.under_provisioned, 0.0);
        for p in POLICIES {
            let r = replay(&members, 40, p, &Knobs::default()).unwrap();
            assert_eq!(r.workloads, none.workloads, "{p}");
            assert_eq!(r.jain_short, none.jain_short);
        }
    }

    #[test]
    fn priority_gives_the_high_priority_workload_everything_it_wants() {
        // 30 replicas for a combined peak of 40: someone is short by 10 over the peak.
        let members = pair();
        let r = replay(&members, 30, Allocation::Priority, &Knobs::default()).unwrap();
        let (high, low) = (&r.workloads[0], &r.workloads[1]);
        assert_eq!((high.cuts, high.scores.under_provisioned), (0, 0.0));
        assert!(low.cuts > 0, "{low:?}");
        // Cut to 10 while it needs 20 on each of the 30 peak steps: half its demand there.
        assert!(
            (low.scores.under_provisioned - 30.0 / 150.0).abs() < 1e-12,
            "{low:?}"
        );
        assert!(low.scores.unserved > 0.0);
        // One workload takes all the short steps: Jain's index is 1/2.
        assert!((r.jain_short - 0.5).abs() < 1e-12);
        // The market ranks by bid, and `high` bids more: the same split.
        let m = replay(&members, 30, Allocation::Market, &Knobs::default()).unwrap();
        assert_eq!(m.workloads, r.workloads);
        // Fair share splits the cut: both are short, equally.
        let f = replay(&members, 30, Allocation::Fair, &Knobs::default()).unwrap();
        assert!(f.workloads.iter().all(|w| w.cuts > 0), "{f:?}");
        assert!((f.jain_short - 1.0).abs() < 1e-12, "{f:?}");
    }

    #[test]
    fn traces_on_different_steps_are_refused() {
        let mut members = pair();
        members[1].scenario.setup.step = 60;
        let e = replay(&members, 30, Allocation::Fair, &Knobs::default()).unwrap_err();
        assert!(e.to_string().contains("'low' is on a 60s step"), "{e}");
        let e = replay(&[], 30, Allocation::Fair, &Knobs::default()).unwrap_err();
        assert!(e.to_string().contains("at least one"), "{e}");
    }
}
