//! What the replay clock ([`super::replica`]) and every policy ([`super::policy`]) share: the
//! fixed facts of a run, what a policy sees at the end of a step, and the [`Policy`] trait.
//! Both import this file and not each other, so the clock and the policies stay one-way.

use serde::Serialize;

/// The fixed facts of one replica simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setup {
    /// Timestamp of step 0, Unix seconds.
    pub start: i64,
    /// Seconds per step.
    pub step: i64,
    /// Demand one replica serves, in the trace's unit.
    pub replica_capacity: f64,
    /// Steps from a scale-up decision to the new replicas serving (at least 1).
    pub boot_steps: usize,
    /// Fewest replicas any policy may run.
    pub min_replicas: u32,
    /// Most replicas any policy may run.
    pub max_replicas: u32,
}

impl Setup {
    /// Replicas needed to serve `demand` exactly (0 for a gap), within the replica bounds.
    pub fn needed(&self, demand: f64) -> u32 {
        if !demand.is_finite() || demand <= 0.0 {
            return self.min_replicas;
        }
        let n = ceil_tolerant(demand / self.replica_capacity);
        n.clamp(f64::from(self.min_replicas), f64::from(self.max_replicas)) as u32
    }

    /// Steps a boot time in seconds takes, rounded up, at least one.
    pub fn boot_steps_for(boot_time: i64, step: i64) -> usize {
        let step = step.max(1);
        (((boot_time.max(0) + step - 1) / step) as usize).max(1)
    }

    /// Timestamp of step `t`.
    pub fn timestamp(&self, t: usize) -> i64 {
        self.start + t as i64 * self.step
    }
}

/// `ceil(x)`, except that values a rounding error above an integer stay on it: 3 × (10 / 3)
/// must need 10 replicas, not 11.
pub fn ceil_tolerant(x: f64) -> f64 {
    let r = x.round();
    if (x - r).abs() <= 1e-9 * x.abs().max(1.0) {
        r
    } else {
        x.ceil()
    }
}

/// What a policy sees at the end of a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Step index (0 = the first simulated step).
    pub t: usize,
    /// Timestamp of the step, Unix seconds.
    pub ts: i64,
    /// Demand during the step; `NaN` where the trace has a gap.
    pub demand: f64,
    /// Replicas that served the step.
    pub ready: u32,
    /// Replicas provisioned: ready plus still booting.
    pub provisioned: u32,
}

/// A scaling policy: at the end of every step, the replica count it wants provisioned.
///
/// The engine clamps the answer to the workload's bounds and applies the boot time; a policy
/// only names a number.
pub trait Policy {
    /// Name for tables, file names and charts.
    fn name(&self) -> String;
    /// The replicas wanted from now on, having seen the step in `obs`.
    fn decide(&mut self, obs: &Observation) -> u32;
}
