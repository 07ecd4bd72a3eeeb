//! Sharing a capped pool: who gets the capacity when the forecast wants more than a pool can
//! hold.
//!
//! The replica planner decides each workload alone and the node planner adds nodes up to a
//! pool's `max_nodes`; when the replicas the planner wants request more than the pool holds
//! at `max_nodes` (each node's capacity × the pool's `target_utilization`, the fill the node
//! planner grows the pool to; summed, not bin-packed), or more than a team's quota, the pool's
//! `allocation` decides who is cut:
//!
//! - `priority` ([`priority`]): lower priorities first, never below `min_replicas`, and
//!   never a higher priority short while a lower one holds more than its minimum;
//! - `fair` ([`drf`]): weighted dominant-resource fairness between teams;
//! - `static` ([`fixed`]): each team's fixed share, unused shares redistributed;
//! - `market` ([`market`]): highest bid per replica-hour first, with the clearing price;
//! - `none` (the default): nobody is cut, as before.
//!
//! Every policy keeps every workload's `min_replicas`. Nothing changes when nothing is
//! scarce. A cut decision carries a `capped-<policy>` guard from what the planner wanted to
//! what the policy granted, and its reason says why. Plain data, like the rest of `plan`.

mod drf;
mod fixed;
mod market;
mod policy;
mod priority;
#[cfg(test)]
mod tests;
mod validate;

pub use policy::{Allocation, Claim};
pub use validate::validate_shares;

use super::decision::{num, Decision, DecisionKind, Guard, GuardKind};
use super::spec::{PoolSpec, Resources, WorkloadSpec};
use policy::Fill;

/// What one allocation granted: replicas per claim, in the claims' order, and under `market`
/// the clearing price.
#[derive(Debug, Clone, PartialEq)]
pub struct Granted {
    /// Replicas granted per claim.
    pub replicas: Vec<u32>,
    /// Under `market` when someone was cut: the highest bid not served in full.
    pub clearing_price: Option<f64>,
}

/// Allocates `capacity` among `claims` by `policy`. When everything wanted fits, or the policy
/// is `none`, everyone gets what they want.
pub fn allocate(policy: Allocation, claims: &[Claim], capacity: Resources) -> Granted {
    let wants = || claims.iter().map(|c| c.want).collect();
    let mut total = Resources::default();
    for c in claims {
        total.add_scaled(&c.request, c.want as f64);
    }
    if policy == Allocation::None || policy::within(&Resources::default(), &total, &capacity) {
        return Granted {
            replicas: wants(),
            clearing_price: None,
        };
    }
    let mut fill = Fill::new(claims, capacity);
    let mut clearing_price = None;
    match policy {
        Allocation::None => unreachable!("returned above"),
        Allocation::Priority => priority::allocate(&mut fill),
        Allocation::Fair => drf::allocate(&mut fill),
        Allocation::Static => fixed::allocate(&mut fill),
        Allocation::Market => clearing_price = market::allocate(&mut fill),
    }
    Granted {
        replicas: fill.granted,
        clearing_price,
    }
}

/// What sharing found this cycle, for the exporter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShareReport {
    /// Per pool (by name): how many more nodes the forecast wants than `max_nodes` allows
    /// (fractional, of the scarcest resource at the pool's target utilisation; 0 when it fits).
    pub shortfall_nodes: Vec<(String, f64)>,
    /// Per workload (configuration order): replicas its policy cut from what its planner
    /// wanted (0 when not cut).
    pub cut_replicas: Vec<(String, u32)>,
}

/// Applies every pool's allocation to the replica planner's `decisions`, which line up with
/// `specs` (one decision per workload, in order). A cut decision gets its new `to` and kind,
/// a `capped-<policy>` guard and a reason naming the policy and what it would have got.
pub fn share_pools(
    pools: &[PoolSpec],
    specs: &[WorkloadSpec],
    decisions: &mut [Decision],
) -> ShareReport {
    let mut report = ShareReport {
        shortfall_nodes: Vec::with_capacity(pools.len()),
        cut_replicas: specs.iter().map(|s| (s.name.clone(), 0)).collect(),
    };
    let first = pools.iter().map(|p| p.name.as_str()).min();
    for pool in pools {
        let members: Vec<usize> = (0..specs.len().min(decisions.len()))
            .filter(|&i| specs[i].pool.as_deref().or(first) == Some(pool.name.as_str()))
            .collect();
        let claims: Vec<Claim> = members
            .iter()
            .map(|&i| claim(&specs[i], decisions[i].to))
            .collect();
        let capacity = pool_capacity(pool);
        report
            .shortfall_nodes
            .push((pool.name.clone(), shortfall_nodes(pool, &claims, &capacity)));
        if pool.allocation == Allocation::None {
            continue;
        }
        let (granted, why) = share_pool(pool, claims.clone(), capacity);
        for ((&i, c), (n, why)) in members
            .iter()
            .zip(&claims)
            .zip(granted.into_iter().zip(why))
        {
            if n < c.want {
                cap(&mut decisions[i], pool, n, &why);
                report.cut_replicas[i].1 = c.want - n;
            }
        }
    }
    report
}

/// A pool's capacity at `max_nodes`, at the utilisation its node planner fills nodes to.
fn pool_capacity(pool: &PoolSpec) -> Resources {
    let f = pool.max_nodes as f64 * pool.target_utilization;
    Resources::new(pool.capacity.cpu * f, pool.capacity.memory * f)
}

/// Nodes the claims want beyond `max_nodes`, by the scarcest resource.
fn shortfall_nodes(pool: &PoolSpec, claims: &[Claim], capacity: &Resources) -> f64 {
    let mut want = Resources::default();
    for c in claims {
        want.add_scaled(&c.request, c.want as f64);
    }
    let node = |per_node: f64| per_node * pool.target_utilization;
    let over = |w: f64, cap: f64, per: f64| {
        if per > 0.0 {
            ((w - cap) / node(per)).max(0.0)
        } else {
            0.0
        }
    };
    over(want.cpu, capacity.cpu, pool.capacity.cpu).max(over(
        want.memory,
        capacity.memory,
        pool.capacity.memory,
    ))
}

/// A workload's claim, wanting `want` replicas. Negative or non-finite requests (refused by
/// validation) count as nothing, as in the node planner.
fn claim(spec: &WorkloadSpec, want: u32) -> Claim {
    let ok = |v: f64| if v.is_finite() && v >= 0.0 { v } else { 0.0 };
    Claim {
        name: spec.name.clone(),
        team: spec.team.clone().unwrap_or_else(|| spec.name.clone()),
        min: spec.min_replicas.min(want),
        want,
        request: Resources::new(ok(spec.resources.cpu), ok(spec.resources.memory)),
        priority: spec.priority,
        weight: if spec.weight.is_finite() && spec.weight > 0.0 {
            spec.weight
        } else {
            1.0
        },
        share: spec
            .share
            .filter(|s| s.is_finite())
            .unwrap_or(0.0)
            .clamp(0.0, 1.0),
        bid: if spec.bid.is_finite() { spec.bid } else { 0.0 },
    }
}

/// One pool: teams over their quota are cut among their own workloads first, then the pool
/// among everyone. Returns what each claim gets and, per claim, why it was cut.
fn share_pool(
    pool: &PoolSpec,
    mut claims: Vec<Claim>,
    capacity: Resources,
) -> (Vec<u32>, Vec<String>) {
    let mut why = vec![String::new(); claims.len()];
    for (team, stated) in &pool.quotas {
        // A resource the quota leaves out (0) is not limited by it: the pool's is the bound.
        // Read as 0 it would cut the team to its minimums whenever its workloads request it.
        let quota = Resources::new(
            if stated.cpu > 0.0 {
                stated.cpu
            } else {
                capacity.cpu
            },
            if stated.memory > 0.0 {
                stated.memory
            } else {
                capacity.memory
            },
        );
        let idx: Vec<usize> = (0..claims.len())
            .filter(|&i| claims[i].team == *team)
            .collect();
        // Within one team, the fair and static policies share between its workloads.
        let total_share: f64 = idx.iter().map(|&i| claims[i].share).sum();
        let inner: Vec<Claim> = idx
            .iter()
            .map(|&i| Claim {
                team: claims[i].name.clone(),
                share: if total_share > 0.0 {
                    claims[i].share / total_share
                } else {
                    1.0 / idx.len() as f64
                },
                ..claims[i].clone()
            })
            .collect();
        let got = allocate(pool.allocation, &inner, quota);
        for (&i, n) in idx.iter().zip(got.replicas) {
            if n < claims[i].want {
                let mut limits = Vec::new();
                if stated.cpu > 0.0 {
                    limits.push(format!("{} cpu", num(stated.cpu)));
                }
                if stated.memory > 0.0 {
                    limits.push(format!("{} GiB", num(stated.memory / GIB)));
                }
                why[i] = format!("team '{team}' over its quota ({})", limits.join(", "));
                claims[i].want = n;
            }
        }
    }
    let got = allocate(pool.allocation, &claims, capacity);
    for (i, &n) in got.replicas.iter().enumerate() {
        if n < claims[i].want {
            let mut w = format!(
                "pool '{}' short at max_nodes {} ({} cpu, {} GiB)",
                pool.name,
                pool.max_nodes,
                num(capacity.cpu),
                num(capacity.memory / GIB)
            );
            match (pool.allocation, got.clearing_price) {
                (Allocation::Priority, _) => {
                    w.push_str(&format!(", priority {}", claims[i].priority))
                }
                (Allocation::Market, Some(p)) => w.push_str(&format!(
                    ", bid {}, clearing price {} (the highest bid not served in full)",
                    num(claims[i].bid),
                    num(p)
                )),
                _ => {}
            }
            if why[i].is_empty() {
                why[i] = w;
            } else {
                why[i] = format!("{}; {w}", why[i]);
            }
        }
    }
    (got.replicas, why)
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The guard each policy's cuts are recorded under.
pub fn guard_kind(policy: Allocation) -> Option<GuardKind> {
    match policy {
        Allocation::None => None,
        Allocation::Priority => Some(GuardKind::CappedPriority),
        Allocation::Fair => Some(GuardKind::CappedFair),
        Allocation::Static => Some(GuardKind::CappedStatic),
        Allocation::Market => Some(GuardKind::CappedMarket),
    }
}

/// Cuts `d` to `to` replicas under `pool`'s policy.
fn cap(d: &mut Decision, pool: &PoolSpec, to: u32, why: &str) {
    let Some(kind) = guard_kind(pool.allocation) else {
        return;
    };
    let wanted = d.to;
    d.guards.push(Guard {
        kind,
        before: wanted,
        after: to,
    });
    d.to = to;
    d.kind = match to.cmp(&d.from) {
        std::cmp::Ordering::Greater => DecisionKind::ScaleUp,
        std::cmp::Ordering::Less => DecisionKind::ScaleDown,
        std::cmp::Ordering::Equal => DecisionKind::Hold,
    };
    d.reason = format!(
        "{}; capped by {} allocation: would have got {wanted}, {why} → {to}",
        d.reason, pool.allocation
    );
}
