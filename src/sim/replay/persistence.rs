//! Persistence plus margin: the naive forecaster every forecast must beat, as a scaling
//! policy. The peak of the next boot time is forecast as the peak of the last one, and
//! provisioned with a margin on top; the margin is its risk knob, tuned by the sweep like
//! every other policy's.

use super::setup::{Observation, Policy, Setup};
use std::collections::VecDeque;

/// Provisions `needed(peak of the last boot_steps steps × (1 + margin))` at every step.
///
/// The window is the boot time because a decision made now serves from one boot time on: the
/// oracle provisions for the next `boot_steps` steps, persistence assumes they look like the
/// last `boot_steps`. Scale-down is immediate (the margin is the only protection), and a gap
/// in the trace holds the current count, as the HPA does.
#[derive(Debug, Clone)]
pub struct Persistence {
    setup: Setup,
    margin: f64,
    recent: VecDeque<f64>,
}

impl Persistence {
    /// Persistence on `setup` with `margin` (0.1 = 10 % above the recent peak).
    pub fn new(setup: &Setup, margin: f64) -> Self {
        Persistence {
            setup: setup.clone(),
            margin: if margin.is_finite() {
                margin.max(0.0)
            } else {
                0.0
            },
            recent: VecDeque::new(),
        }
    }
}

impl Policy for Persistence {
    fn name(&self) -> String {
        "persistence".into()
    }

    fn decide(&mut self, obs: &Observation) -> u32 {
        if !obs.demand.is_finite() {
            return obs.provisioned;
        }
        self.recent.push_back(obs.demand.max(0.0));
        while self.recent.len() > self.setup.boot_steps.max(1) {
            self.recent.pop_front();
        }
        let peak = self.recent.iter().copied().fold(0.0, f64::max);
        self.setup.needed(peak * (1.0 + self.margin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::replay::replica::simulate;

    #[test]
    fn persistence_provisions_the_recent_peak_plus_margin() {
        let s = Setup {
            start: 0,
            step: 60,
            replica_capacity: 10.0,
            boot_steps: 2,
            min_replicas: 1,
            max_replicas: 50,
        };
        let obs = |t: usize, demand: f64| Observation {
            t,
            ts: t as i64 * 60,
            demand,
            ready: 1,
            provisioned: 1,
        };
        let mut p = Persistence::new(&s, 0.25);
        // 40 × 1.25 = 50 → 5 replicas; then the window of 2 keeps the 40 one more step.
        assert_eq!(p.decide(&obs(0, 40.0)), 5);
        assert_eq!(p.decide(&obs(1, 10.0)), 5);
        // 10 and 12 are left: 12 × 1.25 = 15 → 2.
        assert_eq!(p.decide(&obs(2, 12.0)), 2);
        // A gap holds what is provisioned.
        assert_eq!(p.decide(&obs(3, f64::NAN)), 1);
        // In the engine: a step up is seen one step late and served a boot time later.
        let demand = [10.0, 10.0, 40.0, 40.0, 40.0, 40.0];
        let run = simulate(&s, &demand, &mut Persistence::new(&s, 0.0), 1);
        assert_eq!(run.ready, vec![1, 1, 1, 1, 4, 4]);
    }
}
