//! The sharing keys checked across workloads and pools, with the key named (each item's own
//! keys are checked with the spec, in `plan::spec::sharing`).

use crate::plan::spec::{Allocation, PoolSpec, WorkloadSpec};
use std::collections::BTreeMap;

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
