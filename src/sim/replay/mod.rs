//! Trace replay: one trace split into a training head and a simulated tail, replayed through
//! scaling policies on a replica clock with boot times, scored, swept and reported.
//!
//! The files import downward only:
//!
//! - `setup`: what the clock and every policy share: [`Setup`], [`Observation`], the
//!   [`Policy`] trait.
//! - `workload`: what a replay is asked to run: [`PolicyKind`],
//!   [`Knobs`], [`Workload`].
//! - `replica`: the trace-driven replay clock (boot times, booting replicas cost money) and
//!   its scores (under-provisioned steps, unserved demand, replica-hours, cost relative to the
//!   oracle, scaling actions, lead-time hit rate).
//! - `policy`: the baselines: the Kubernetes HPA rule, a static size, the oracle.
//! - `persistence`: persistence plus margin (the recent peak, scaled), the naive baseline.
//! - `predictive`: prescale's own planner behind the same trait.
//! - [`scenario`]: the trace laid out for replay, with the forecasts for every simulated step
//!   computed once in a batch, so every policy and every sweep point runs on exactly the same
//!   steps.
//! - [`tune`]: every policy's knob on one cheap-to-safe scale, and the bisection to the budget.
//! - [`sweep`]: each policy's risk knob varied into a cost-versus-risk curve and bisected to
//!   its cheapest setting within the budget.
//! - [`shared`]: several traces replayed together on one capped pool, the predictive wants
//!   shared by each allocation policy of `plan::share` on the same forecasts.
//! - [`budget`]: the short-step budget's outcome next to the online bound, and when a trace is
//!   too short for one.
//! - [`report`]: tables, `report.json`, `decisions.csv` and charts; `sweep_chart` draws the
//!   sweep's cost-versus-risk chart, one line per policy and per predictive arm.

pub mod budget;
mod error;
mod persistence;
mod policy;
mod predictive;
mod replica;
pub mod report;
pub mod scenario;
mod setup;
pub mod shared;
pub mod sweep;
mod sweep_chart;
pub mod tune;
mod workload;

pub use error::ReplayError;
pub use persistence::Persistence;
pub use policy::{Fixed, Hpa, Oracle};
pub use replica::{simulate, Clock, Run, Scores};
pub use setup::{Observation, Policy, Setup};
pub use workload::{Knobs, PolicyKind, Workload};
