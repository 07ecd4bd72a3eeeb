//! How failed requests are retried: capped exponential backoff with full jitter.

use rand::Rng;
use std::time::Duration;

/// How hard to retry a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff ceiling.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
        }
    }
}

/// Exponential backoff with full jitter: the n-th delay is uniform in `[0, min(cap, base·2ⁿ)]`,
/// so that many collectors hitting one recovering Prometheus do not retry in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new(policy: RetryPolicy) -> Self {
        Backoff { policy, attempt: 0 }
    }

    /// The ceiling of the next delay (without jitter).
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(30)).unwrap_or(u32::MAX);
        self.policy
            .base
            .checked_mul(factor)
            .unwrap_or(self.policy.cap)
            .min(self.policy.cap)
    }

    /// The next delay, drawn with `rng`.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(rng.gen_range(0.0..=1.0))
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
