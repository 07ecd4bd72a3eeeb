//! The sharing keys of `[[workload]]` and `[[pool]]`, checked with the key named.

use super::policy::Allocation;
use crate::plan::spec::{PoolSpec, WorkloadSpec};
use std::collections::BTreeMap;

/// Checks a workload's sharing keys: `(key, message)` for its [`SpecError`](crate::plan::SpecError).
pub(crate) fn validate_workload(w: &WorkloadSpec) -> Result<(), (&'static str, String)> {
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
pub(crate) fn validate_pool(p: &PoolSpec) -> Result<(), (String, String)> {
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

/// Checks what spans workloads and pools: a `static` pool's shares add up to at most 1, and
/// a quota names a team that has workloads in the pool. Returns `(key, message)` per problem,
/// keys as `pool[<index>].<key>` in the order of `pools`.
pub fn validate_shares(workloads: &[WorkloadSpec], pools: &[PoolSpec]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let first = pools.iter().map(|p| p.name.as_str()).min();
    for (i, p) in pools.iter().enumerate() {
        let members = workloads
            .iter()
            .filter(|w| w.pool.as_deref().or(first) == Some(p.name.as_str()));
        let mut teams: BTreeMap<&str, f64> = BTreeMap::new();
        for w in members {
            *teams
                .entry(w.team.as_deref().unwrap_or(&w.name))
                .or_insert(0.0) += w.share.unwrap_or(0.0);
        }
        if p.allocation == Allocation::Static {
            let total: f64 = teams.values().sum();
            if total > 1.0 + 1e-9 {
                problems.push((
                    format!("pool[{i}].allocation"),
                    format!(
                        "the shares of pool '{}' add up to {total:.3}, more than the whole pool: \
                         {}",
                        p.name,
                        teams
                            .iter()
                            .filter(|(_, s)| **s > 0.0)
                            .map(|(t, s)| format!("{t} {s}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        for team in p.quotas.keys() {
            if !teams.contains_key(team.as_str()) {
                problems.push((
                    format!("pool[{i}].quotas.{team}"),
                    format!("no workload of pool '{}' is in team '{team}'", p.name),
                ));
            }
        }
    }
    problems
}
