//! Batch scheduling: task lists run through queue disciplines and placement strategies in an
//! event-driven cluster simulation, on a fixed cluster and on an elastic pool.
//!
//! - [`allocation`]: allocation policies (static, dynamic, priority, fair share, market)
//!   sharing the cluster between tenants, with per-tenant figures.
//! - [`tasks`]: tasks and nodes: reading them (CSV, TOML), generating them, writing them back.
//! - [`queue`]: the event-driven cluster: disciplines, placements, metrics, and the
//!   [`queue::Scaler`] seam an elastic pool plugs into.
//! - [`elastic`]: the pool prescale's node planner grows ahead of the forecast backlog,
//!   compared with the fixed cluster.
//! - `report`: the task-queue report: its table and `report.json`'s content.

pub mod allocation;
pub mod elastic;
mod error;
pub mod queue;
mod report;
pub mod tasks;

pub use error::BatchError;
pub use report::TaskReport;
