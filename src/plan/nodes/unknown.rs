//! Demand the node planner cannot see (a sharded planner's read-back of another shard that
//! failed, see [`crate::shard::readback`]), and which pools it holds.
//!
//! A workload whose load is unknown is passed to the planner as running what it runs now, at
//! its requests; what it will need is not known, so a pool it could grow into must not lose a
//! node for want of load that cannot be seen. That is only the pools it can be in: the pools of
//! the nodes its replicas run on (as the cluster's state says) and the pool it is configured
//! for (where new replicas go). A pool it is in neither of cannot be short because of it, so
//! that pool is sized as usual. When no node says where it runs (no replicas seen, or placements
//! unknown), it could be anywhere: every pool holds, as before the placements were known.

use super::{NodeState, WorkloadLoad};

/// Unknown workloads named in a reason; the rest are counted.
const NAMED: usize = 3;

/// One workload whose load is unknown, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLoad {
    /// The workload's name.
    pub workload: String,
    /// Why its load is unknown (quoted in the reasons).
    pub why: String,
    /// What many unknown workloads have in common, named once in a reason rather than per
    /// workload (a sharded planner's `shard 2 stale for 40s`), if anything.
    pub group: Option<String>,
}

/// True when unknown workload `w` may need room in `pool`: its replicas run there (per
/// `nodes`), it is configured for it, or where it runs is not known at all.
fn concerns(w: &str, pool: &str, nodes: &[NodeState], workloads: &[WorkloadLoad]) -> bool {
    let mut runs_somewhere = false;
    for n in nodes {
        if n.replicas.iter().any(|(name, c)| name == w && *c > 0) {
            if n.pool == pool {
                return true;
            }
            runs_somewhere = true;
        }
    }
    let configured = workloads
        .iter()
        .find(|l| l.spec.name == w)
        .and_then(|l| l.spec.pool.as_deref());
    !runs_somewhere || configured == Some(pool)
}

/// Why `pool`'s scale-in is held (naming the first few unknown workloads that concern it), or
/// `None` when none does.
pub(super) fn held(
    unknown: &[UnknownLoad],
    pool: &str,
    nodes: &[NodeState],
    workloads: &[WorkloadLoad],
) -> Option<String> {
    let here: Vec<&UnknownLoad> = unknown
        .iter()
        .filter(|u| concerns(&u.workload, pool, nodes, workloads))
        .collect();
    reason(&here)
}

/// "2 workloads with unknown load (counted as placed, at their requests; shard 2 stale for
/// 40s): 'a' (why), …".
fn reason(unknown: &[&UnknownLoad]) -> Option<String> {
    let n = unknown.len();
    if n == 0 {
        return None;
    }
    let named: Vec<String> = unknown
        .iter()
        .take(NAMED)
        .map(|u| format!("'{}' ({})", u.workload, u.why))
        .collect();
    let mut groups: Vec<&str> = unknown.iter().filter_map(|u| u.group.as_deref()).collect();
    groups.sort_unstable();
    groups.dedup();
    let groups: String = groups.iter().map(|g| format!("; {g}")).collect();
    let mut why = format!(
        "{n} workload{} with unknown load (counted as placed, at their requests{groups}): {}",
        if n == 1 { "" } else { "s" },
        named.join(", ")
    );
    if n > NAMED {
        why.push_str(&format!(" and {} more", n - NAMED));
    }
    Some(why)
}
