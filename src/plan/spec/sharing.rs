//! The sharing keys of one `[[workload]]` or `[[pool]]` (issue #12): the [`Allocation`] a
//! pool cuts by, and each item's own checks. They live with the spec, not with `plan::share`,
//! so the spec never imports the policies that read it.

use super::{PoolSpec, WorkloadSpec};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who gets a pool's capacity when the forecast wants more than it holds: `allocation` of a
/// `[[pool]]`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    /// Nobody is cut: every workload gets what its planner decided (the behaviour before
    /// allocation existed).
    #[default]
    None,
    /// Lower `priority` is cut first, never below `min_replicas`.
    Priority,
    /// Weighted dominant-resource fairness (DRF) across CPU and memory between teams.
    Fair,
    /// Each team's fixed `share` of the pool; what a team leaves unused goes to the others.
    Static,
    /// Highest `bid` per replica-hour first.
    Market,
}

impl Allocation {
    /// The name as written in `prescale.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Allocation::None => "none",
            Allocation::Priority => "priority",
            Allocation::Fair => "fair",
            Allocation::Static => "static",
            Allocation::Market => "market",
        }
    }
}

impl fmt::Display for Allocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Checks a workload's sharing keys: `(key, message)` for its [`SpecError`](crate::plan::SpecError).
pub(super) fn validate_workload(w: &WorkloadSpec) -> Result<(), (&'static str, String)> {
    if !(w.weight.is_finite() && w.weight > 0.0) {
        return Err((
            "weight",
            format!("weight must be a finite number > 0, got {}", w.weight),
        ));
    }
    if let Some(s) = w.share {
        if !(0.0..=1.0).contains(&s) {
            return Err(("share", format!("share must be in [0, 1], got {s}")));
        }
    }
    if !(w.bid.is_finite() && w.bid >= 0.0) {
        return Err((
            "bid",
            format!("bid must be a finite number ≥ 0, got {}", w.bid),
        ));
    }
    if w.team.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(("team", "team must not be empty when given".into()));
    }
    Ok(())
}

/// Checks a pool's sharing keys: `(key, message)` for its [`SpecError`](crate::plan::SpecError).
pub(super) fn validate_pool(p: &PoolSpec) -> Result<(), (String, String)> {
    for (team, q) in &p.quotas {
        let key = format!("quotas.{team}");
        for (field, v) in [("cpu", q.cpu), ("memory", q.memory)] {
            if !v.is_finite() || v < 0.0 {
                return Err((
                    format!("{key}.{field}"),
                    format!("{key}.{field} must be a finite number ≥ 0, got {v}"),
                ));
            }
        }
        if p.allocation == Allocation::None {
            return Err((
                key.clone(),
                format!(
                    "{key} needs an allocation policy to cut by (allocation is \"none\"); \
                     set allocation = \"priority\", \"fair\", \"static\" or \"market\""
                ),
            ));
        }
    }
    Ok(())
}
