//! The simulator: replays history through a scaling policy and scores it against baselines,
//! and runs the batch-scheduling models (queue disciplines × placement strategies) on task
//! lists.
//!
//! - [`replica`]: the trace-driven replay clock (boot times, booting replicas cost money) and
//!   its scores (under-provisioned steps, unserved demand, replica-hours, cost relative to the
//!   oracle, scaling actions, lead-time hit rate).
//! - [`policy`]: the [`Policy`] trait and the baselines: the Kubernetes HPA rule, a static size,
//!   the oracle; prescale's own planner behind the same trait.
//! - [`scenario`]: one trace split into a training head and a simulated tail, with the
//!   forecasts for every simulated step computed once in a batch, so every policy and every
//!   sweep point runs on exactly the same steps.
//! - [`sweep`]: each policy's risk knob varied into a cost-versus-risk curve.
//! - [`tasks`], [`queue`]: task-queue mode, an event-driven cluster simulation.
//! - [`elastic`]: task-queue mode on a pool prescale's node planner grows ahead of the
//!   forecast backlog, against the fixed cluster.
//! - [`report`]: tables, `report.json`, `decisions.csv` and charts.
//! - [`command`]: `prescale simulate`.
//!
//! Everything is deterministic: the same inputs and seed give the same report.

pub mod command;
pub mod elastic;
pub mod policy;
pub mod predictive;
pub mod queue;
pub mod replica;
pub mod report;
pub mod scenario;
pub mod sweep;
pub mod tasks;

pub use command::SimulateArgs;
pub use policy::{Fixed, Hpa, Oracle, Policy};
pub use replica::{simulate, Observation, Run, Scores, Setup};
