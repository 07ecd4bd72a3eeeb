//! Task-queue mode: an event-driven simulation of a batch cluster, the scheduling models
//! prescale grew out of. Tasks arrive, wait in a queue ordered by a [`Discipline`], and are put
//! on nodes by a [`Placement`] strategy; they hold their resource vector until they finish or,
//! under the time-sliced disciplines, until their slice ends and someone is waiting.
//!
//! # Rules
//!
//! - Events at the same instant run completions first, then slice ends, then arrivals, then
//!   boosts; ties within a kind go by task id. Nothing depends on hash order or wall time, so
//!   a run is a pure function of its inputs.
//! - Strict order: after every event the scheduler takes tasks in queue order while the head
//!   can be placed; a head that fits nowhere blocks those behind it (no backfilling), except
//!   under first-fit-decreasing, which places a batch from the head largest first.
//! - Wait = completion − submit − duration: all the time a task was not running, before its
//!   start and between its slices.
//! - A task that fits no node even when the cluster is empty is refused up front, since it
//!   would block the queue for ever.
//!
//! # Elastic clusters
//!
//! [`run_elastic`] runs the same disciplines and placements on a cluster a [`Scaler`] grows and
//! shrinks: every planning interval it sees the cluster ([`ClusterView`]) and may add nodes,
//! which take tasks once booted, or drain nodes, which take no new tasks and leave when their
//! last task ends (batch tasks are not moved or killed, as a cluster autoscaler leaves
//! non-evictable pods alone). Node up and planning events come after boosts at the same
//! instant, so a plan sees the arrivals of its instant.

mod engine;
mod metrics;
#[cfg(test)]
mod tests;

use super::error::BatchError;
use super::tasks::{Node, Res, Task};
use engine::Sim;
use serde::Serialize;

/// The order a queue releases tasks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Discipline {
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

impl Discipline {
    /// Every discipline.
    pub const ALL: [Discipline; 5] = [
        Discipline::Fcfs,
        Discipline::Sjf,
        Discipline::Priority,
        Discipline::Rr,
        Discipline::Mlfq,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Discipline::Fcfs => "fcfs",
            Discipline::Sjf => "sjf",
            Discipline::Priority => "priority",
            Discipline::Rr => "rr",
            Discipline::Mlfq => "mlfq",
        }
    }
}

/// How a node is chosen for a task that is released from the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// The node whose fullest resource is least full.
    LeastLoaded,
    /// The node the task fills best: least spare capacity left (summed over resources, each
    /// relative to the node's size).
    BestFit,
    /// First node that fits, taking the batch at the head of the queue largest first.
    Ffd,
    /// The next node in turn that fits.
    RoundRobin,
    /// Smooth weighted round robin (as nginx): nodes chosen in proportion to their weight.
    WeightedRoundRobin,
    /// Consistent hashing of task ids onto a ring of virtual nodes; the first node clockwise
    /// that fits.
    ConsistentHash,
}

impl Placement {
    /// Every strategy.
    pub const ALL: [Placement; 6] = [
        Placement::LeastLoaded,
        Placement::BestFit,
        Placement::Ffd,
        Placement::RoundRobin,
        Placement::WeightedRoundRobin,
        Placement::ConsistentHash,
    ];

    /// Short name.
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::LeastLoaded => "least-loaded",
            Placement::BestFit => "best-fit",
            Placement::Ffd => "ffd",
            Placement::RoundRobin => "rr",
            Placement::WeightedRoundRobin => "wrr",
            Placement::ConsistentHash => "hash",
        }
    }
}

/// Knobs of the disciplines and placements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QueueOptions {
    /// Time slice of round robin and of the MLFQ's top level, seconds.
    pub quantum: f64,
    /// MLFQ levels.
    pub mlfq_levels: usize,
    /// Seconds between MLFQ priority boosts; 0 = never.
    pub mlfq_boost: f64,
    /// Priority gained per second waited (priority discipline); 0 = no aging.
    pub aging: f64,
    /// A task that waited longer than this, seconds, counts as starved.
    pub starve_after: f64,
    /// Tasks first-fit-decreasing takes from the head per pass.
    pub ffd_batch: usize,
    /// Virtual nodes per node on the consistent-hash ring.
    pub vnodes: usize,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            quantum: 300.0,
            mlfq_levels: 3,
            mlfq_boost: 3600.0,
            aging: 1.0 / 600.0,
            starve_after: 3600.0,
            ffd_batch: 32,
            vnodes: 16,
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueMetrics {
    /// Discipline.
    pub discipline: Discipline,
    /// Placement.
    pub placement: Placement,
    /// Tasks run.
    pub tasks: usize,
    /// Mean wait, seconds.
    pub mean_wait: f64,
    /// 95th percentile of wait, seconds.
    pub p95_wait: f64,
    /// Mean completion time (completion − submit), seconds.
    pub mean_completion: f64,
    /// 95th percentile of completion time, seconds.
    pub p95_completion: f64,
    /// First submit to last completion, seconds.
    pub makespan: f64,
    /// Used / offered resource-time over the makespan: CPU, memory, GPU (`NaN` when the
    /// cluster has none of a resource).
    pub utilisation: Res,
    /// First to last submit, seconds: the period over which load is offered.
    pub arrival_period: f64,
    /// Used / offered resource-time over the arrival period alone (`NaN` when it is empty or
    /// the cluster has none of a resource). Over the makespan, a tail of long tasks running
    /// after the last arrival on an emptying cluster pulls utilisation down; this figure is
    /// the one to set beside the offered load.
    pub utilisation_arrivals: Res,
    /// Coefficient of variation of the nodes' utilisation (std / mean): 0 = perfectly even.
    pub load_cv: f64,
    /// Tasks that waited longer than `starve_after`.
    pub starved: usize,
    /// Longest wait, seconds.
    pub max_wait: f64,
    /// Times a running task was pre-empted.
    pub preemptions: usize,
    /// Per-task timeline, in task order (for tests and CSV).
    #[serde(skip)]
    pub timeline: Vec<TaskOutcome>,
}

/// What happened to one task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TaskOutcome {
    /// Task id.
    pub id: u64,
    /// First start.
    pub start: f64,
    /// Completion.
    pub finish: f64,
    /// Node of its last slice.
    pub node: usize,
}

/// Where a node of an elastic cluster is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodePhase {
    /// Asked for, not taking tasks yet (but paid for).
    Booting,
    /// Taking tasks.
    Ready,
    /// Asked to leave: takes no new tasks, leaves when its last one ends.
    Draining,
    /// Gone.
    Removed,
}

/// One node as a [`Scaler`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView<'v> {
    /// The node.
    pub node: &'v Node,
    /// Where it is in its life.
    pub phase: NodePhase,
    /// Resources requested by the tasks running on it.
    pub used: Res,
    /// Tasks running on it.
    pub tasks: usize,
}

/// The cluster at a planning instant.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterView<'v> {
    /// Seconds from the start of the run.
    pub now: f64,
    /// Every node ever added, in the order added (indices are stable).
    pub nodes: Vec<NodeView<'v>>,
    /// Resources requested by every task submitted and not finished: queued plus running,
    /// the backlog the cluster has to get through.
    pub outstanding: Res,
    /// Tasks waiting.
    pub queued: usize,
    /// Tasks running.
    pub running: usize,
}

/// A change a [`Scaler`] asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeChange {
    /// Add this node; it takes tasks after `boot` seconds.
    Add {
        /// The node (its name should be unique).
        node: Node,
        /// Seconds until it takes tasks.
        boot: f64,
    },
    /// Drain the node at this index of [`ClusterView::nodes`]; ignored unless it is ready.
    Drain(usize),
}

/// Grows and shrinks the cluster of [`run_elastic`].
pub trait Scaler {
    /// Seconds between planning instants (> 0).
    fn interval(&self) -> f64;
    /// One planning instant: what to add and what to drain.
    fn plan(&mut self, view: &ClusterView) -> Vec<NodeChange>;
}

/// One node's life in an elastic run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeLife {
    /// Node name.
    pub name: String,
    /// When it was asked for.
    pub added: f64,
    /// When it took tasks (`None`: never did).
    pub ready: Option<f64>,
    /// When it was asked to drain.
    pub drained: Option<f64>,
    /// When it left (`None`: still there at the end).
    pub removed: Option<f64>,
}

/// The cluster side of an elastic run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterLog {
    /// Every node, in the order added.
    pub nodes: Vec<NodeLife>,
    /// Node-hours paid for between the first submit and the last completion (booting and
    /// draining nodes included).
    pub node_hours: f64,
    /// Nodes the scaler added.
    pub added: usize,
    /// Nodes removed.
    pub removed: usize,
    /// Most nodes paid for at once.
    pub peak_nodes: usize,
    /// Fewest nodes paid for at once from the first submit on.
    pub min_nodes: usize,
}

/// (time, kind, task id, task index, run epoch): min-heap order via `Reverse`.
/// Checks that every task fits some node when the cluster is empty; the error names the
/// first that does not.
pub fn check_fits(tasks: &[Task], nodes: &[Node]) -> Result<(), BatchError> {
    if nodes.is_empty() {
        return Err(BatchError::NoNodes);
    }
    for t in tasks {
        if !nodes.iter().any(|n| t.req.fits_in(&n.capacity())) {
            return Err(BatchError::DoesNotFit {
                id: t.id,
                cpu: t.req.cpu,
                mem: t.req.mem,
                gpu: t.req.gpu,
            });
        }
    }
    Ok(())
}

/// Runs `tasks` (sorted by submit time, as [`super::tasks::read_tasks`] returns them) on
/// `nodes` under `discipline` and `placement`.
pub fn run(
    tasks: &[Task],
    nodes: &[Node],
    discipline: Discipline,
    placement: Placement,
    opts: &QueueOptions,
) -> Result<QueueMetrics, BatchError> {
    check_fits(tasks, nodes)?;
    if matches!(discipline, Discipline::Rr | Discipline::Mlfq)
        && (opts.quantum.is_nan() || opts.quantum <= 0.0)
    {
        return Err(BatchError::Quantum(opts.quantum));
    }
    let mut sim = Sim::new(tasks, nodes.to_vec(), discipline, placement, *opts);
    sim.run();
    Ok(sim.metrics())
}

/// Runs `tasks` on an elastic cluster: `initial` nodes are ready from the first submit, and
/// `scaler` is asked every [`Scaler::interval`] seconds, from the first submit until every task
/// is done, for nodes to add or drain. Every task must fit one of `shapes` (the nodes the
/// scaler can add) when empty. Errors when the scaler leaves tasks unfinished for longer than
/// any sane run could take (it would otherwise never end).
pub fn run_elastic(
    tasks: &[Task],
    initial: &[Node],
    shapes: &[Node],
    discipline: Discipline,
    placement: Placement,
    opts: &QueueOptions,
    scaler: &mut dyn Scaler,
) -> Result<(QueueMetrics, ClusterLog), BatchError> {
    check_fits(tasks, shapes)?;
    if matches!(discipline, Discipline::Rr | Discipline::Mlfq)
        && (opts.quantum.is_nan() || opts.quantum <= 0.0)
    {
        return Err(BatchError::Quantum(opts.quantum));
    }
    let interval = scaler.interval();
    if !(interval.is_finite() && interval > 0.0) {
        return Err(BatchError::Interval(interval));
    }
    let first = tasks.iter().map(|t| t.submit).fold(f64::INFINITY, f64::min);
    let first = if first.is_finite() { first } else { 0.0 };
    let last_submit = tasks.iter().map(|t| t.submit).fold(first, f64::max);
    let work: f64 = tasks.iter().map(|t| t.duration).sum();
    let mut sim = Sim::new(tasks, initial.to_vec(), discipline, placement, *opts);
    for l in &mut sim.life {
        l.added = first;
        l.ready = Some(first);
    }
    // Running every task one after the other on a single node, plus a day and a thousand
    // planning intervals of slack, bounds any run that makes progress.
    sim.give_up_at = last_submit + 2.0 * work + 86_400.0 + 1000.0 * interval;
    sim.scaler = Some(scaler);
    sim.plan_at(first);
    sim.run();
    if sim.unfinished > 0 {
        return Err(BatchError::Unfinished {
            unfinished: sim.unfinished,
            total: tasks.len(),
            at: sim.now,
        });
    }
    let metrics = sim.metrics();
    let log = sim.cluster_log(first, first + metrics.makespan);
    Ok((metrics, log))
}
