//! Allocation policies: who gets scarce capacity when several tenants share one cluster (issue
//! #12). Tasks arrive, wait in one queue per tenant (first come, first served within a
//! tenant) and run to completion, non-pre-emptively, on the node a [`Placement`] picks; the
//! policy decides which tenant's task goes next:
//!
//! - [`Allocation::Static`]: static partitioning (`static_share`): each tenant owns an equal,
//!   fixed share of every resource it asks for and never uses more, even when the rest stands
//!   idle;
//! - [`Allocation::Dynamic`]: on demand (`dynamic`): one first-come, first-served queue for
//!   everyone, today's `fcfs` discipline;
//! - [`Allocation::Priority`]: highest task priority first (`priority`), strictly: a waiting
//!   task is never overtaken by a lower priority, so only the low ones can starve;
//! - [`Allocation::Fair`]: dominant-resource fair share (`fair`, Ghodsi et al., NSDI 2011):
//!   the next task comes from the tenant with the lowest dominant share, skipping tenants
//!   whose next task fits nowhere;
//! - [`Allocation::Market`]: highest bid first (`market`): scarce capacity goes to whoever
//!   values it most.
//!
//! Events at one instant run completions first, then arrivals, then one scheduling pass, as in
//! [`super::queue`]; ties go by submit time and task id, so a run is a pure function of its
//! inputs. The figures ([`metrics`]) are the design documents': wait and completion (mean and
//! p95), utilisation over the makespan and over the arrival period, load balance across nodes,
//! starvation, and per tenant the same with Jain's fairness index across tenants.

mod dynamic;
mod engine;
mod fair;
mod key;
mod market;
pub mod metrics;
mod priority;
mod static_share;
mod table;
#[cfg(test)]
mod tests;

use super::error::BatchError;
use super::queue::Placement;
use super::tasks::{Node, Task};
pub use metrics::{jain_index, AllocationMetrics, TenantMetrics};
use serde::Serialize;
pub use table::table;

/// How capacity is shared between tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    /// Each tenant a fixed, equal share of every resource.
    Static,
    /// On demand: first come, first served across tenants.
    Dynamic,
    /// Highest task priority first, never overtaken by a lower one.
    Priority,
    /// Dominant-resource fair share across tenants.
    Fair,
    /// Highest bid first.
    Market,
}

impl Allocation {
    /// Every policy.
    pub const ALL: [Allocation; 5] = [
        Allocation::Static,
        Allocation::Dynamic,
        Allocation::Priority,
        Allocation::Fair,
        Allocation::Market,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Allocation::Static => "static",
            Allocation::Dynamic => "dynamic",
            Allocation::Priority => "priority",
            Allocation::Fair => "fair",
            Allocation::Market => "market",
        }
    }
}

/// The placements an allocation run can use: those that need no state of their own.
pub const PLACEMENTS: [Placement; 3] = [Placement::LeastLoaded, Placement::BestFit, Placement::Ffd];

/// Runs `tasks` on `nodes`, sharing them by `allocation`, placing by `placement` (one of
/// [`PLACEMENTS`]; first-fit-decreasing is plain first fit here, since the policy, not size,
/// orders the queue). A task waiting longer than `starve_after` seconds counts as starved.
pub fn run(
    tasks: &[Task],
    nodes: &[Node],
    allocation: Allocation,
    placement: Placement,
    starve_after: f64,
) -> Result<AllocationMetrics, BatchError> {
    super::queue::check_fits(tasks, nodes)?;
    if !PLACEMENTS.contains(&placement) {
        return Err(BatchError::AllocationPlacement(placement.as_str()));
    }
    let mut sim = engine::AllocSim::new(tasks, nodes, allocation, placement);
    if allocation == Allocation::Static {
        sim.quotas = static_share::quotas(sim.tasks, &sim.tenant_of, sim.tenants.len(), &sim.total);
        static_share::check(sim.tasks, &sim.tenant_of, &sim.tenants, &sim.quotas)?;
    }
    sim.run();
    Ok(sim.metrics(starve_after))
}
