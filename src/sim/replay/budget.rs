//! The short-step budget's check in a replay: the realised share of the predictive policy
//! next to the budget and to the online bound the calibrator guarantees
//! ([`Calibrator::bound`], `plan::risk`'s module doc), so a replay says whether the budget was
//! met, what was guaranteed, and when the trace is too short for any guarantee at all.
//!
//! Why "too short" is said and not hidden: an online rule that starts knowing nothing of the
//! load may spend `1/γ_f + d + 1` short steps (the ledger's reach plus the boot time) before
//! the floor stands at the window's maximum; on a replay of fewer than `that / budget` steps
//! those alone exceed the budget, so a realised share within the budget there is luck, not a
//! guarantee, and one above it is not a defect of the calibration.

use crate::plan::Calibrator;
use serde::Serialize;

/// The budget's outcome in one replay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetCheck {
    /// The budget, a share of steps.
    pub budget: f64,
    /// The predictive policy's realised share of short steps.
    pub realised: f64,
    /// Steps replayed.
    pub steps: usize,
    /// The online bound on the realised share: budget + (1/γ_f + boot + 1) / steps, under
    /// the assumption that demand stays within its window's maximum.
    pub bound: f64,
    /// Fewest steps for which the bound is within twice the budget.
    pub steps_for_guarantee: usize,
}

impl BudgetCheck {
    /// The check of a replay of `steps` steps with `boot_steps` of boot time, at `budget`,
    /// where the predictive policy realised `realised`.
    pub fn new(budget: f64, realised: f64, steps: usize, boot_steps: usize) -> Self {
        let bound = Calibrator::bound(budget, steps as u64, boot_steps as u64);
        let slack_steps = (bound - budget) * steps as f64;
        BudgetCheck {
            budget,
            realised,
            steps,
            bound,
            // The tolerance keeps 6 / 0.01 (600.0000000000001 in floating point) at 600.
            steps_for_guarantee: (slack_steps / budget - 1e-9).ceil() as usize,
        }
    }

    /// Whether the realised share is within the budget.
    pub fn met(&self) -> bool {
        self.realised <= self.budget * (1.0 + 1e-9)
    }

    /// Whether the trace is long enough for the bound to mean something: its slack at most
    /// the budget itself.
    pub fn guaranteed(&self) -> bool {
        self.steps >= self.steps_for_guarantee
    }

    /// One line for the table.
    pub fn line(&self) -> String {
        let pct = |x: f64| format!("{:.2}%", x * 100.0);
        let mut s = format!(
            "budget {} short steps: predictive realised {} of {} steps ({}); online bound {} \
             while demand stays within its window's maximum",
            pct(self.budget),
            pct(self.realised),
            self.steps,
            if self.met() { "met" } else { "NOT met" },
            pct(self.bound),
        );
        if !self.guaranteed() {
            s.push_str(&format!(
                "; too short for an online guarantee at this budget: the bound's slack alone is \
                 {} (it needs {} steps or more)",
                pct(self.bound - self.budget),
                self.steps_for_guarantee
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_replay_is_guaranteed_and_a_short_one_says_so() {
        // 1/γ_f = 4, boot 1: slack 6 steps; at 1 % that needs 600 steps.
        let long = BudgetCheck::new(0.01, 0.009, 7_224, 1);
        assert!(long.met() && long.guaranteed(), "{long:?}");
        assert_eq!(long.steps_for_guarantee, 600);
        assert!((long.bound - (0.01 + 6.0 / 7_224.0)).abs() < 1e-12);
        assert!(long.line().contains("(met)"), "{}", long.line());
        assert!(!long.line().contains("too short"), "{}", long.line());
        let short = BudgetCheck::new(0.01, 0.012, 400, 1);
        assert!(!short.met() && !short.guaranteed());
        let line = short.line();
        assert!(line.contains("NOT met"), "{line}");
        assert!(
            line.contains("too short for an online guarantee") && line.contains("600 steps"),
            "{line}"
        );
    }
}
