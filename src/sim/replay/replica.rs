//! The replica simulation: a trace-driven replay clock that asks a [`Policy`] for a replica
//! count at every step and scores what that count would have served.
//!
//! # The clock
//!
//! Step `t` covers the interval in which the trace's sample `demand[t]` holds. During step `t`
//! the `ready[t]` replicas serve `demand[t]`; at the end of step `t` the policy sees
//! `demand[t]` and names the number of replicas it wants provisioned from now on. A scale-down
//! takes effect from step `t + 1`; new replicas are *booting* from step `t + 1` and serve from
//! step `t + boot_steps` (`boot_steps ≥ 1`: nothing decided after seeing a sample can serve that
//! same sample). Booting replicas cost money, so cost counts every provisioned replica, ready
//! or not. A scale-down first cancels replicas still booting (newest first), then stops ready
//! ones.

use super::setup::{Observation, Policy, Setup};
use serde::Serialize;
use std::collections::VecDeque;

/// The replicas every policy starts with: enough for the first `boot_steps` steps, which no
/// decision made inside the simulation can reach in time.
pub fn warm_start(setup: &Setup, demand: &[f64]) -> u32 {
    demand
        .iter()
        .take(setup.boot_steps.max(1))
        .map(|&d| setup.needed(d))
        .max()
        .unwrap_or(setup.min_replicas)
}

/// One simulated run: what was provisioned at every step.
#[derive(Debug, Clone)]
pub struct Run {
    /// Replicas serving each step.
    pub ready: Vec<u32>,
    /// Replicas provisioned (ready + booting) during each step; what is paid for.
    pub provisioned: Vec<u32>,
    /// Steps at whose end the policy changed the provisioned count.
    pub actions: usize,
}

/// Replays `demand` through `policy`, starting from `initial` ready replicas.
pub fn simulate(setup: &Setup, demand: &[f64], policy: &mut dyn Policy, initial: u32) -> Run {
    let mut clock = Clock::new(setup, initial, demand.len());
    for (t, &d) in demand.iter().enumerate() {
        let obs = clock.observe(t, d);
        let want = policy.decide(&obs);
        clock.provision(t, want);
    }
    clock.finish()
}

/// The replay clock one step at a time, so that several workloads can be stepped together
/// and their wants changed (shared, capped) between a policy's decision and the clock.
#[derive(Debug, Clone)]
pub struct Clock<'s> {
    setup: &'s Setup,
    running: u32,
    // (step from which they serve, count), in decision order.
    booting: VecDeque<(usize, u32)>,
    booting_total: u32,
    run: Run,
}

impl<'s> Clock<'s> {
    /// A clock with `initial` ready replicas (clamped to the bounds), for about `steps` steps.
    pub fn new(setup: &'s Setup, initial: u32, steps: usize) -> Self {
        Clock {
            setup,
            running: initial.clamp(setup.min_replicas, setup.max_replicas),
            booting: VecDeque::new(),
            booting_total: 0,
            run: Run {
                ready: Vec::with_capacity(steps),
                provisioned: Vec::with_capacity(steps),
                actions: 0,
            },
        }
    }

    /// Starts step `t` with demand `d`: replicas whose boot time is over start serving, and
    /// the step's ready and provisioned counts are recorded. Returns what a policy sees.
    pub fn observe(&mut self, t: usize, d: f64) -> Observation {
        while let Some(&(at, k)) = self.booting.front() {
            if at > t {
                break;
            }
            self.running += k;
            self.booting_total -= k;
            self.booting.pop_front();
        }
        let prov = self.running + self.booting_total;
        self.run.ready.push(self.running);
        self.run.provisioned.push(prov);
        Observation {
            t,
            ts: self.setup.timestamp(t),
            demand: d,
            ready: self.running,
            provisioned: prov,
        }
    }

    /// Replicas provisioned now (ready + booting).
    pub fn provisioned(&self) -> u32 {
        self.running + self.booting_total
    }

    /// Ends step `t` with `want` replicas provisioned from now on (clamped to the bounds).
    pub fn provision(&mut self, t: usize, want: u32) {
        let setup = self.setup;
        let want = want.clamp(setup.min_replicas, setup.max_replicas);
        let prov = self.provisioned();
        if want == prov {
            return;
        }
        self.run.actions += 1;
        if want > prov {
            let k = want - prov;
            self.booting.push_back((t + setup.boot_steps.max(1), k));
            self.booting_total += k;
        } else {
            let mut cut = prov - want;
            while cut > 0 {
                let Some(last) = self.booting.back_mut() else {
                    break;
                };
                let k = last.1.min(cut);
                last.1 -= k;
                self.booting_total -= k;
                cut -= k;
                if last.1 == 0 {
                    self.booting.pop_back();
                }
            }
            self.running -= cut;
        }
    }

    /// The run recorded so far.
    pub fn finish(self) -> Run {
        self.run
    }
}

/// How a run did against the demand it had to serve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// Steps scored (gaps in the trace are not).
    pub steps: usize,
    /// Share of scored steps whose demand exceeded the ready capacity.
    pub under_provisioned: f64,
    /// Σ max(0, demand − ready capacity) / Σ demand.
    pub unserved: f64,
    /// Replica-hours paid for (every provisioned replica, booting or ready).
    pub replica_hours: f64,
    /// Replica-hours relative to the oracle's on the same steps (1.0 = as cheap as perfect
    /// foresight); `NaN` until [`Scores::relative_to`] is applied.
    pub cost_vs_oracle: f64,
    /// Times the provisioned count changed.
    pub scaling_actions: usize,
    /// Of the steps where demand first needed more replicas than the step before, the share
    /// where enough capacity was already ready: scale-ups in place before the demand arrived.
    /// `None` when demand never rose.
    pub lead_time_hit_rate: Option<f64>,
    /// Average ready replicas.
    pub mean_replicas: f64,
    /// Most replicas provisioned at once.
    pub peak_replicas: u32,
}

impl Scores {
    /// Scores `run` against `demand`.
    pub fn of(setup: &Setup, demand: &[f64], run: &Run) -> Scores {
        let cap = setup.replica_capacity;
        let mut steps = 0usize;
        let mut under = 0usize;
        let (mut total, mut short) = (0.0, 0.0);
        let (mut rises, mut hits) = (0usize, 0usize);
        let mut prev_need: Option<u32> = None;
        let mut ready_sum = 0.0;
        for (t, &d) in demand.iter().enumerate() {
            let ready = run.ready[t];
            if !d.is_finite() {
                prev_need = None;
                continue;
            }
            steps += 1;
            ready_sum += f64::from(ready);
            let capacity = f64::from(ready) * cap;
            if d > capacity * (1.0 + 1e-12) {
                under += 1;
                short += d - capacity;
            }
            total += d.max(0.0);
            let need = setup.needed(d);
            if let Some(p) = prev_need {
                if need > p {
                    rises += 1;
                    if ready >= need {
                        hits += 1;
                    }
                }
            }
            prev_need = Some(need);
        }
        let hours =
            run.provisioned.iter().map(|&r| f64::from(r)).sum::<f64>() * setup.step as f64 / 3600.0;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Scores {
            steps,
            under_provisioned: ratio(under as f64, steps as f64),
            unserved: ratio(short, total),
            replica_hours: hours,
            cost_vs_oracle: f64::NAN,
            scaling_actions: run.actions,
            lead_time_hit_rate: (rises > 0).then(|| hits as f64 / rises as f64),
            mean_replicas: ratio(ready_sum, steps as f64),
            peak_replicas: run.provisioned.iter().copied().max().unwrap_or(0),
        }
    }

    /// Fills in the cost relative to the oracle's replica-hours.
    pub fn relative_to(mut self, oracle_hours: f64) -> Scores {
        self.cost_vs_oracle = if oracle_hours > 0.0 {
            self.replica_hours / oracle_hours
        } else {
            f64::NAN
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::replay::policy::{Fixed, Oracle};
    use crate::sim::replay::setup::ceil_tolerant;

    fn setup(boot: usize) -> Setup {
        Setup {
            start: 0,
            step: 60,
            replica_capacity: 10.0,
            boot_steps: boot,
            min_replicas: 1,
            max_replicas: 100,
        }
    }

    /// A policy that plays back a fixed list of decisions.
    struct Script(Vec<u32>);
    impl Policy for Script {
        fn name(&self) -> String {
            "script".into()
        }
        fn decide(&mut self, obs: &Observation) -> u32 {
            self.0[obs.t]
        }
    }

    #[test]
    fn scale_ups_wait_for_the_boot_time_and_scale_downs_cancel_booting_first() {
        let s = setup(2);
        let demand = [10.0; 6];
        // t0: want 3 (2 boot, ready at t2); t1: want 2 (cancel one booting); t3: want 1.
        let run = simulate(&s, &demand, &mut Script(vec![3, 2, 2, 1, 1, 1]), 1);
        assert_eq!(run.ready, vec![1, 1, 2, 2, 1, 1]);
        assert_eq!(run.provisioned, vec![1, 3, 2, 2, 1, 1]);
        assert_eq!(run.actions, 3);
    }

    #[test]
    fn hand_worked_scores() {
        let s = setup(1);
        // Needs: 1, 3, 3, 2, 5. Ready: 2, 2, 3, 3, 5.
        let demand = [10.0, 25.0, 30.0, 15.0, 50.0];
        let run = Run {
            ready: vec![2, 2, 3, 3, 5],
            provisioned: vec![2, 3, 3, 5, 5],
            actions: 2,
        };
        let sc = Scores::of(&s, &demand, &run);
        assert_eq!(sc.steps, 5);
        assert!((sc.under_provisioned - 0.2).abs() < 1e-12);
        assert!((sc.unserved - 5.0 / 130.0).abs() < 1e-12);
        assert!((sc.replica_hours - 18.0 / 60.0).abs() < 1e-12);
        // Rises at t1 (1→3, ready 2: miss) and t4 (2→5, ready 5: hit).
        assert_eq!(sc.lead_time_hit_rate, Some(0.5));
        assert_eq!(sc.peak_replicas, 5);
        assert!((sc.relative_to(0.15).cost_vs_oracle - 2.0).abs() < 1e-12);
    }

    #[test]
    fn gaps_are_not_scored() {
        let s = setup(1);
        let run = Run {
            ready: vec![1, 1, 1],
            provisioned: vec![1, 1, 1],
            actions: 0,
        };
        let sc = Scores::of(&s, &[5.0, f64::NAN, 50.0], &run);
        assert_eq!(sc.steps, 2);
        assert_eq!(sc.lead_time_hit_rate, None);
        assert!((sc.under_provisioned - 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_oracle_is_never_short_and_a_fixed_policy_holds() {
        let s = setup(3);
        let demand: Vec<f64> = (0..200)
            .map(|i| 50.0 + 40.0 * ((i as f64) / 7.0).sin())
            .collect();
        let mut oracle = Oracle::new(&s, &demand);
        let run = simulate(&s, &demand, &mut oracle, warm_start(&s, &demand));
        let sc = Scores::of(&s, &demand, &run);
        assert_eq!(sc.under_provisioned, 0.0);
        assert_eq!(sc.lead_time_hit_rate, Some(1.0));
        let run = simulate(&s, &demand, &mut Fixed::new("static", 9), 9);
        assert_eq!(run.actions, 0);
        assert!(run.ready.iter().all(|&r| r == 9));
    }

    #[test]
    fn ceil_tolerates_rounding() {
        assert_eq!(ceil_tolerant(3.0 * (10.0 / 3.0)), 10.0);
        assert_eq!(ceil_tolerant(10.000_1), 11.0);
        assert_eq!(Setup::boot_steps_for(180, 300), 1);
        assert_eq!(Setup::boot_steps_for(0, 300), 1);
        assert_eq!(Setup::boot_steps_for(301, 300), 2);
    }
}
