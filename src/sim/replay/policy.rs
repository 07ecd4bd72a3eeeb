//! Scaling policies the simulator compares: the Kubernetes HPA rule ([`Hpa`]), a fixed size
//! ([`Fixed`], e.g. a peak percentile), perfect foresight ([`Oracle`]) and prescale's own
//! planner (`Predictive`). All sit behind [`Policy`] so the replay clock treats them alike.

use super::setup::{ceil_tolerant, Observation, Policy, Setup};
use crate::sim::stats::percentile;
use std::collections::VecDeque;

/// The Kubernetes Horizontal Pod Autoscaler's rule with its default behaviour, as in
/// `pkg/controller/podautoscaler` (`replica_calculator.go`, `horizontal.go`):
///
/// - **Rule**: `desired = ceil(current × utilisation / target)`, where `current` counts every
///   provisioned replica and utilisation is `demand / (current × replica_capacity)`. Counting
///   booting replicas at zero load is what the HPA does for not-yet-ready pods when scaling up
///   on CPU; it keeps one burst from being answered twice while the first answer boots.
/// - **Tolerance**: when `|utilisation / target − 1| ≤ 10 %`, `desired = current`.
/// - **Scale-down stabilisation**: the result is `current` clamped between the newest
///   recommendation (scale-up window 0 s) and the highest recommendation of the last 300 s
///   (recommendations stamped after `now − 300 s`), so replicas are removed only once every
///   recent recommendation agrees.
/// - **Scale-up rate**: at most the larger of +4 pods and +100 % per 15 s, counted from the
///   replicas at the start of the period: `current − added + removed` by the HPA's own scale
///   events of the last period, and never below `current` (a scale-down leaving the period
///   must not turn the limit into a cut). 15 s is what the controller applies (`defaults.go`,
///   and the legacy rule without `behavior`: `max(2 × current, 4)` every sync); the API
///   reference's "per 60 seconds" is not what runs.
/// - **Sync period**: the HPA recomputes every 15 s, so a trace step of `s` seconds is
///   `max(1, s / 15)` syncs that all see that step's demand (a 5-minute step allows twenty
///   rate-limited rounds, not one).
/// - A gap in the metric (`NaN` demand) holds the current count, as the HPA skips a sync it
///   has no metrics for.
/// - **Bounds**: every sync's result is clamped to `min_replicas..=max_replicas`, as the
///   controller does, so the next sync (and the scale events the rate counts) start from a
///   count the workload can have.
///
/// Not modelled: CPU initialisation periods and readiness delays beyond the boot time.
#[derive(Debug, Clone)]
pub struct Hpa {
    replica_capacity: f64,
    target: f64,
    tolerance: f64,
    window: i64,
    step: i64,
    /// `min_replicas` and `max_replicas`.
    bounds: (u32, u32),
    /// Recommendations of the scale-down window: (timestamp, replicas).
    recent: VecDeque<(i64, u32)>,
    /// The HPA's own scale events of the last rate period: (timestamp, change).
    events: VecDeque<(i64, i64)>,
}

/// Seconds between two HPA syncs (`--horizontal-pod-autoscaler-sync-period`).
pub const HPA_SYNC: i64 = 15;
/// The scale-up rate's period, seconds (Kubernetes' default `scaleUp` policies' `periodSeconds`).
pub const HPA_UP_PERIOD: i64 = 15;
/// Pods the scale-up rate allows per period, whatever the size.
pub const HPA_UP_PODS: i64 = 4;

impl Hpa {
    /// The HPA with target utilisation `target` (0, 1], 10 % tolerance and a 5-minute
    /// scale-down window on `setup`'s step.
    pub fn new(setup: &Setup, target: f64) -> Self {
        Self::with(setup.replica_capacity, target, 0.1, 300, setup.step)
            .bounded(setup.min_replicas, setup.max_replicas)
    }

    /// Clamps every sync's result to `min..=max` (unbounded unless set).
    pub fn bounded(mut self, min: u32, max: u32) -> Self {
        self.bounds = (min.min(max), max);
        self
    }

    /// The HPA with every knob given: tolerance as a fraction, window and step in seconds.
    pub fn with(
        replica_capacity: f64,
        target: f64,
        tolerance: f64,
        window: i64,
        step: i64,
    ) -> Self {
        Hpa {
            replica_capacity,
            target,
            tolerance,
            window: window.max(0),
            step: step.max(1),
            bounds: (0, u32::MAX),
            recent: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The un-stabilised recommendation for `demand` with `current` replicas provisioned.
    pub fn desired(&self, current: u32, demand: f64) -> u32 {
        let per_target = self.replica_capacity * self.target;
        if current == 0 {
            return ceil_tolerant(demand / per_target).max(0.0) as u32;
        }
        let utilisation = demand / (f64::from(current) * self.replica_capacity);
        let ratio = utilisation / self.target;
        // The slack keeps a ratio of exactly 1.1 (which is 1.1000000000000003 in floating
        // point) inside a 10 % tolerance, as the rule reads.
        if (ratio - 1.0).abs() <= self.tolerance + 1e-9 {
            return current;
        }
        let want = ceil_tolerant(f64::from(current) * ratio);
        want.clamp(0.0, f64::from(u32::MAX)) as u32
    }

    /// The most replicas the scale-up rate allows at `now` with `current` provisioned:
    /// `max(start + 4, ceil(start × 2))` where `start` is the count at the period's start, and
    /// never below `current`: as the controller does, a limit below it (replicas the HPA
    /// removed have left the period) holds the count, it never cuts it.
    pub fn scale_up_limit(&self, now: i64, current: u32) -> u32 {
        let since = now - HPA_UP_PERIOD;
        let changed: i64 = self
            .events
            .iter()
            .filter(|&&(t, _)| t > since)
            .map(|&(_, c)| c)
            .sum();
        let start = (i64::from(current) - changed).max(0);
        let limit = (start + HPA_UP_PODS).max(start * 2);
        (limit.clamp(0, i64::from(u32::MAX)) as u32).max(current)
    }

    /// One sync at `now`: recommendation, stabilisation, rate limit; returns the new count.
    fn sync(&mut self, now: i64, current: u32, demand: f64) -> u32 {
        let desired = self.desired(current, demand);
        self.recent.push_back((now, desired));
        while self
            .recent
            .front()
            .is_some_and(|&(t, _)| t <= now - self.window)
        {
            self.recent.pop_front();
        }
        let down = self.recent.iter().map(|&(_, r)| r).max().unwrap_or(desired);
        let next = current
            .max(desired)
            .min(down)
            .min(self.scale_up_limit(now, current))
            .clamp(self.bounds.0, self.bounds.1);
        while self
            .events
            .front()
            .is_some_and(|&(t, _)| t <= now - HPA_UP_PERIOD)
        {
            self.events.pop_front();
        }
        if next != current {
            self.events
                .push_back((now, i64::from(next) - i64::from(current)));
        }
        next
    }
}

impl Policy for Hpa {
    fn name(&self) -> String {
        "reactive".into()
    }

    fn decide(&mut self, obs: &Observation) -> u32 {
        let mut current = obs.provisioned;
        if !obs.demand.is_finite() {
            return current;
        }
        let demand = obs.demand.max(0.0);
        // The syncs of the step that ends at `obs.ts`, the last one at its end.
        let syncs = (self.step / HPA_SYNC).max(1);
        let every = self.step / syncs;
        for k in (0..syncs).rev() {
            current = self.sync(obs.ts - k * every, current, demand);
        }
        current
    }
}

/// A fixed replica count (the static baseline).
#[derive(Debug, Clone)]
pub struct Fixed {
    name: String,
    replicas: u32,
}

impl Fixed {
    /// Always `replicas`.
    pub fn new(name: &str, replicas: u32) -> Self {
        Fixed {
            name: name.to_string(),
            replicas,
        }
    }

    /// Sized for the `pct` percentile of `history` (the part of the trace before the
    /// simulation, never the future) times `1 + margin`.
    pub fn at_percentile(setup: &Setup, history: &[f64], pct: f64, margin: f64) -> Self {
        let level = percentile(history, pct).unwrap_or(0.0) * (1.0 + margin);
        Fixed::new("static", setup.needed(level))
    }

    /// The count it holds.
    pub fn replicas(&self) -> u32 {
        self.replicas
    }
}

impl Policy for Fixed {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn decide(&mut self, _: &Observation) -> u32 {
        self.replicas
    }
}

/// Perfect foresight: at the end of step `t` it provisions the most any of steps
/// `t + 1 ..= t + boot_steps` needs. Scale-ups decided then are ready exactly in time, and
/// nothing is removed before the last step that needs it, so the oracle is never short and pays
/// only for what the boot time forces: the cost floor other policies are measured against.
#[derive(Debug, Clone)]
pub struct Oracle {
    needed: Vec<u32>,
    boot_steps: usize,
}

impl Oracle {
    /// The oracle for `demand` (which it may read ahead in).
    pub fn new(setup: &Setup, demand: &[f64]) -> Self {
        Oracle {
            needed: demand.iter().map(|&d| setup.needed(d)).collect(),
            boot_steps: setup.boot_steps.max(1),
        }
    }
}

impl Policy for Oracle {
    fn name(&self) -> String {
        "oracle".into()
    }

    fn decide(&mut self, obs: &Observation) -> u32 {
        let from = obs.t + 1;
        let to = (obs.t + self.boot_steps).min(self.needed.len().saturating_sub(1));
        if from > to {
            return obs.provisioned;
        }
        self.needed[from..=to]
            .iter()
            .copied()
            .max()
            .unwrap_or(obs.provisioned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::replay::replica::simulate;

    fn obs(t: usize, demand: f64, provisioned: u32) -> Observation {
        Observation {
            t,
            ts: t as i64 * 60,
            demand,
            ready: provisioned,
            provisioned,
        }
    }

    #[test]
    fn hpa_rule_hand_worked() {
        // capacity 100 per replica, target 50 %: each replica should carry 50.
        let h = Hpa::with(100.0, 0.5, 0.1, 300, 60);
        // 4 replicas at 300 load: utilisation 75 %, ratio 1.5 → ceil(4 × 1.5) = 6.
        assert_eq!(h.desired(4, 300.0), 6);
        // 4 replicas at 210: utilisation 52.5 %, ratio 1.05, within 10 % → stay at 4.
        assert_eq!(h.desired(4, 210.0), 4);
        // 4 replicas at 220: ratio 1.1 exactly: still within tolerance.
        assert_eq!(h.desired(4, 220.0), 4);
        // 4 replicas at 230: ratio 1.15 → ceil(4.6) = 5.
        assert_eq!(h.desired(4, 230.0), 5);
        // 10 replicas at 120: ratio 0.24 → ceil(2.4) = 3.
        assert_eq!(h.desired(10, 120.0), 3);
        // 3 replicas at 150 exactly on target.
        assert_eq!(h.desired(3, 150.0), 3);
    }

    #[test]
    fn hpa_scale_down_waits_for_the_window_scale_up_does_not() {
        // 1-minute steps = 4 syncs at 15 s; 5-minute window.
        let mut h = Hpa::with(100.0, 0.5, 0.1, 300, 60);
        // 2 replicas at 400 want 8: the rate allows max(2 + 4, 2 × 2) = 6 per 15 s, so the
        // sync at -45 goes 2 → 6 and the one at -30 (a new period, counting from 6) 6 → 8.
        assert_eq!(h.decide(&obs(0, 400.0, 2)), 8);
        assert_eq!(h.decide(&obs(1, 400.0, 8)), 8);
        // Demand drops to 100 (wants 2), but the 8s recommended up to t = 60 s stay in the
        // window until a sync after 360 s.
        for t in 2..=5 {
            assert_eq!(h.decide(&obs(t, 100.0, 8)), 8, "t={t}");
        }
        assert_eq!(h.decide(&obs(6, 100.0, 8)), 2);
        // A gap holds.
        assert_eq!(h.decide(&obs(7, f64::NAN, 2)), 2);
    }

    /// `h` over the 15-second steps `ts`, each at `demand`, provisioned what it last decided
    /// (from `start`): what it decides at each.
    fn fed_back(h: &mut Hpa, ts: std::ops::Range<usize>, demand: f64, start: u32) -> Vec<u32> {
        let mut current = start;
        ts.map(|t| {
            current = h.decide(&Observation {
                t,
                ts: t as i64 * 15,
                demand,
                ready: current,
                provisioned: current,
            });
            current
        })
        .collect()
    }

    #[test]
    fn hpa_scale_up_rate_is_max_of_4_pods_and_100_percent_per_15s() {
        // 15-second steps: one sync per step. Capacity 100 at target 50 %: 2,000 wants 40.
        let mut h = Hpa::with(100.0, 0.5, 0.1, 300, 15);
        let seen = fed_back(&mut h, 0..13, 2000.0, 2);
        // 0 s: max(2 + 4, 2 × 2) = 6; each next sync is a new 15 s period: 15 s: from 6,
        // max(10, 12) = 12; 30 s: 24; 45 s: 48, capped by the desired 40.
        assert_eq!(seen, [6, 12, 24, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40]);
        // Small counts: the 4 pods win over doubling (1 → 5).
        let h = Hpa::with(100.0, 0.5, 0.1, 300, 15);
        assert_eq!(h.scale_up_limit(0, 1), 5);
        assert_eq!(h.scale_up_limit(0, 10), 20);
    }

    #[test]
    fn a_scale_down_leaving_the_rate_period_does_not_cut_a_scale_up() {
        // Capacity 100 at target 100 %, no stabilisation window, 10 s steps: one sync each,
        // so a 15 s rate period holds the previous sync's event too.
        let mut h = Hpa::with(100.0, 1.0, 0.1, 0, 10);
        let mut at = |t: i64, demand: f64, current: u32| {
            h.decide(&Observation {
                t: t as usize,
                ts: t * 10,
                demand,
                ready: current,
                provisioned: current,
            })
        };
        // 20 → 10, then a spike: from the period's start (10 + 10 = 20) up to 40.
        assert_eq!(at(0, 1000.0, 20), 10);
        assert_eq!(at(1, 4000.0, 10), 40);
        // At 20 s the -10 has left the period, the +30 has not: start 40 − 30 = 10, limit
        // max(14, 20) = 20, below the 40 running. Demand wants 80: held at 40, not cut to 20.
        assert_eq!(at(2, 8000.0, 40), 40);
    }

    #[test]
    fn every_sync_is_clamped_to_the_bounds() {
        // 15-second steps, one sync each; 2 replicas at 2,000 want 40 at 50 % of 100. At
        // most 10: 2 → 6 → 10 (not 12), and the scale event the rate counts is +4, not +6.
        let mut h = Hpa::with(100.0, 0.5, 0.1, 300, 15).bounded(1, 10);
        assert_eq!(fed_back(&mut h, 0..2, 2000.0, 2), [6, 10]);
        assert_eq!(h.events.back(), Some(&(15, 4)));
        assert_eq!(fed_back(&mut h, 2..3, 2000.0, 10), [10]);
        // At least 3, even with no load and the window's recommendations gone.
        let mut h = Hpa::with(100.0, 0.5, 0.1, 0, 60).bounded(3, 10);
        assert_eq!(h.decide(&obs(0, 0.0, 5)), 3);
    }

    #[test]
    fn hpa_syncs_every_15s_within_a_step() {
        // A 5-minute step is 20 syncs (at -285, -270, ..., 0): 2 → 6 at -285, 12 at -270,
        // 24 at -255, 40 (the desired) at -240.
        let mut h = Hpa::with(100.0, 0.5, 0.1, 300, 300);
        assert_eq!(h.decide(&obs(0, 2000.0, 2)), 40);
        // A step shorter than a sync is one sync.
        let mut h = Hpa::with(100.0, 0.5, 0.1, 300, 10);
        assert_eq!(h.decide(&obs(0, 2000.0, 2)), 6);
    }

    #[test]
    fn hpa_down_is_limited_by_the_highest_recent_recommendation() {
        let mut h = Hpa::with(100.0, 0.5, 0.1, 180, 60);
        assert_eq!(h.decide(&obs(0, 500.0, 10)), 10); // on target
        assert_eq!(h.decide(&obs(1, 300.0, 10)), 10); // wants 6, window max 10
        assert_eq!(h.decide(&obs(2, 400.0, 10)), 10); // wants 8, window max 10
        assert_eq!(h.decide(&obs(3, 100.0, 10)), 8); // wants 2, window {6, 8, 2}
        assert_eq!(h.decide(&obs(4, 100.0, 8)), 8); // window {8, 2, 2}
        assert_eq!(h.decide(&obs(5, 100.0, 8)), 2); // window {2, 2, 2}
    }

    #[test]
    fn hpa_in_the_engine_reacts_one_boot_late() {
        let s = Setup {
            start: 0,
            step: 60,
            replica_capacity: 10.0,
            boot_steps: 2,
            min_replicas: 1,
            max_replicas: 50,
        };
        let demand = [10.0, 10.0, 40.0, 40.0, 40.0, 40.0];
        let run = simulate(&s, &demand, &mut Hpa::new(&s, 1.0), 1);
        // Sees 40 at the end of t2, 4 replicas serve from t4.
        assert_eq!(run.ready, vec![1, 1, 1, 1, 4, 4]);
    }

    #[test]
    fn static_uses_a_percentile_of_history() {
        let s = Setup {
            start: 0,
            step: 60,
            replica_capacity: 10.0,
            boot_steps: 1,
            min_replicas: 1,
            max_replicas: 50,
        };
        let hist: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hist, 50.0), Some(50.5));
        assert_eq!(percentile(&hist, 100.0), Some(100.0));
        assert_eq!(Fixed::at_percentile(&s, &hist, 95.0, 0.0).replicas(), 10);
        assert_eq!(Fixed::at_percentile(&s, &hist, 100.0, 0.25).replicas(), 13);
        assert_eq!(percentile(&[f64::NAN], 50.0), None);
    }
}
