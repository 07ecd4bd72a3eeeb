//! The simulator, in two parts that share nothing but a percentile and Jain's index (`stats`):
//!
//! - [`replay`]: replays a trace through scaling policies (prescale's planner, the HPA rule, a
//!   static size, the oracle), scores them against the oracle and sweeps their risk knobs.
//! - [`batch`]: runs task lists through queue disciplines × placement strategies on a fixed
//!   cluster and on an elastic pool prescale's node planner grows.
//!
//! Both take plain option structs and return typed errors; `prescale simulate` (in the
//! binary's `cli/simulate.rs`) parses the flags and prints the reports.
//!
//! Everything is deterministic: the same inputs and seed give the same report.

pub mod batch;
pub mod replay;
pub(crate) mod stats;
