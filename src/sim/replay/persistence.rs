//! Persistence plus margin: the naive forecaster every forecast must beat, as a scaling
//! policy. The peak of the next forecast window is forecast as the peak of the last one (the
//! definition `backtest` and the yardstick score as persistence), and provisioned with a
//! margin on top; the margin is its risk knob, tuned by the sweep like every other policy's.

use super::setup::{Observation, Policy, Setup};
use std::collections::VecDeque;

/// Provisions `needed(peak of the last look_back steps × (1 + margin))` at every step.
///
/// The look-back is the forecast window the predictive policy's forecasts cover (the
/// scenario's window), so persistence is the naive forecast of the same quantity: the next
/// window's peak is the last window's. It was the boot time before; a look-back that short
/// follows every dip and needs a larger margin for the same short steps, which is not the
/// persistence `backtest` or the yardstick measure. Scale-down is immediate (the margin is
/// the only protection), and a gap in the trace holds the current count, as the HPA does.
#[derive(Debug, Clone)]
pub struct Persistence {
    setup: Setup,
    look_back: usize,
    margin: f64,
    recent: VecDeque<f64>,
}

impl Persistence {
    /// Persistence on `setup` over the last `look_back` steps (at least one) with `margin`
    /// (0.1 = 10 % above the recent peak; a negative margin, down to −100 %, provisions below
    /// it, as the sweep tries).
    pub fn new(setup: &Setup, look_back: usize, margin: f64) -> Self {
        Persistence {
            setup: setup.clone(),
            look_back: look_back.max(1),
            margin: if margin.is_finite() {
                margin.max(-1.0)
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
        while self.recent.len() > self.look_back {
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

    /// One-minute steps, capacity 10, 1 to 50 replicas.
    fn setup(boot_steps: usize) -> Setup {
        Setup {
            start: 0,
            step: 60,
            replica_capacity: 10.0,
            boot_steps,
            min_replicas: 1,
            max_replicas: 50,
        }
    }

    /// Step `t` with `demand`, one replica ready and provisioned.
    fn obs(t: usize, demand: f64) -> Observation {
        Observation {
            t,
            ts: t as i64 * 60,
            demand,
            ready: 1,
            provisioned: 1,
        }
    }

    #[test]
    fn persistence_provisions_the_recent_peak_plus_margin() {
        let s = setup(2);
        let mut p = Persistence::new(&s, 2, 0.25);
        // 40 × 1.25 = 50 → 5 replicas; then the window of 2 keeps the 40 one more step.
        assert_eq!(p.decide(&obs(0, 40.0)), 5);
        assert_eq!(p.decide(&obs(1, 10.0)), 5);
        // 10 and 12 are left: 12 × 1.25 = 15 → 2.
        assert_eq!(p.decide(&obs(2, 12.0)), 2);
        // A gap holds what is provisioned.
        assert_eq!(p.decide(&obs(3, f64::NAN)), 1);
        // In the engine: a step up is seen one step late and served a boot time later.
        let demand = [10.0, 10.0, 40.0, 40.0, 40.0, 40.0];
        let run = simulate(&s, &demand, &mut Persistence::new(&s, 2, 0.0), 1);
        assert_eq!(run.ready, vec![1, 1, 1, 1, 4, 4]);
    }

    #[test]
    fn the_look_back_is_its_own_and_the_margin_may_be_negative() {
        // Boot 1 step, look back 3: a peak stays provisioned for three steps, not one.
        let s = setup(1);
        let mut p = Persistence::new(&s, 3, 0.0);
        let wants: Vec<u32> = [80.0, 10.0, 10.0, 10.0]
            .iter()
            .enumerate()
            .map(|(t, &d)| p.decide(&obs(t, d)))
            .collect();
        assert_eq!(wants, [8, 8, 8, 1]);
        // −50 %: 80 × 0.5 = 40 → 4; the margin stops at −100 % (the minimum).
        assert_eq!(Persistence::new(&s, 3, -0.5).decide(&obs(0, 80.0)), 4);
        assert_eq!(Persistence::new(&s, 3, -7.0).decide(&obs(0, 80.0)), 1);
    }
}
