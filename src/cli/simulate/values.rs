//! The values of `prescale simulate`'s list flags (`--policy`, `--queue`, `--allocation`,
//! `--placement`): the library's enums as clap spells and documents them, so the library
//! does not depend on clap.

use clap::ValueEnum;
use prescale::sim::batch::allocation::Allocation;
use prescale::sim::batch::queue::{Discipline, Placement};
use prescale::sim::replay::PolicyKind;

/// `--policy` values: [`PolicyKind`] as clap spells and documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// prescale's planner on the model's forecasts.
    Predictive,
    /// The Kubernetes HPA rule.
    Reactive,
    /// A fixed size at a percentile of the training part.
    Static,
    /// The peak of the last boot time plus a margin.
    Persistence,
    /// Perfect foresight.
    Oracle,
}

impl From<PolicyArg> for PolicyKind {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Predictive => PolicyKind::Predictive,
            PolicyArg::Reactive => PolicyKind::Reactive,
            PolicyArg::Static => PolicyKind::Static,
            PolicyArg::Persistence => PolicyKind::Persistence,
            PolicyArg::Oracle => PolicyKind::Oracle,
        }
    }
}

/// `--queue` values: [`Discipline`] as clap spells and documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisciplineArg {
    /// First come, first served, non-pre-emptive.
    Fcfs,
    /// Shortest job first (by duration), non-pre-emptive.
    Sjf,
    /// Highest priority first, non-pre-emptive, with aging: a task's effective priority grows by
    /// `aging` per second waited, so nothing waits for ever.
    Priority,
    /// Round robin: FIFO with a time slice; at the end of a slice a task is pre-empted and
    /// goes to the back if anyone is waiting.
    Rr,
    /// Multi-level feedback queue: new tasks enter the top level; a task that uses up its
    /// slice drops a level (slices double per level) and is pre-empted if anyone is waiting;
    /// the highest non-empty level goes first; every `boost` seconds all tasks return to the
    /// top against starvation.
    Mlfq,
}

impl From<DisciplineArg> for Discipline {
    fn from(d: DisciplineArg) -> Self {
        match d {
            DisciplineArg::Fcfs => Discipline::Fcfs,
            DisciplineArg::Sjf => Discipline::Sjf,
            DisciplineArg::Priority => Discipline::Priority,
            DisciplineArg::Rr => Discipline::Rr,
            DisciplineArg::Mlfq => Discipline::Mlfq,
        }
    }
}

/// `--allocation` values: [`Allocation`] as clap spells and documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocationArg {
    /// Shared trace mode only: nobody is cut, every workload gets what it wants (the cap is
    /// ignored: today's behaviour).
    None,
    /// Static partitioning: each tenant a fixed, equal share of every resource it uses.
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

impl From<AllocationArg> for Allocation {
    fn from(a: AllocationArg) -> Self {
        match a {
            // Refused in task mode before conversion (`task_mode`); on-demand is the task
            // queue's uncapped policy.
            AllocationArg::None => Allocation::Dynamic,
            AllocationArg::Static => Allocation::Static,
            AllocationArg::Dynamic => Allocation::Dynamic,
            AllocationArg::Priority => Allocation::Priority,
            AllocationArg::Fair => Allocation::Fair,
            AllocationArg::Market => Allocation::Market,
        }
    }
}

/// `--placement` values: [`Placement`] as clap spells and documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlacementArg {
    /// The node whose fullest resource is least full.
    LeastLoaded,
    /// The node the task fills best: least spare capacity left (summed over resources, each
    /// relative to the node's size).
    BestFit,
    /// First node that fits, taking the batch at the head of the queue largest first.
    #[value(name = "ffd", alias = "first-fit-decreasing")]
    Ffd,
    /// The next node in turn that fits.
    #[value(name = "rr", alias = "round-robin")]
    RoundRobin,
    /// Smooth weighted round robin (as nginx): nodes chosen in proportion to their weight.
    #[value(name = "wrr", alias = "weighted-round-robin")]
    WeightedRoundRobin,
    /// Consistent hashing of task ids onto a ring of virtual nodes; the first node clockwise
    /// that fits.
    #[value(name = "hash", alias = "consistent-hash")]
    ConsistentHash,
}

impl From<PlacementArg> for Placement {
    fn from(p: PlacementArg) -> Self {
        match p {
            PlacementArg::LeastLoaded => Placement::LeastLoaded,
            PlacementArg::BestFit => Placement::BestFit,
            PlacementArg::Ffd => Placement::Ffd,
            PlacementArg::RoundRobin => Placement::RoundRobin,
            PlacementArg::WeightedRoundRobin => Placement::WeightedRoundRobin,
            PlacementArg::ConsistentHash => Placement::ConsistentHash,
        }
    }
}
