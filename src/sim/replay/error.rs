//! [`ReplayError`]: why a trace could not be replayed or its report not written.

use crate::chart::ChartError;
use std::path::PathBuf;

/// Why a replay could not run or its report could not be written. Each message says what was
/// wrong with which value or file, as the user gave it.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The workload's replica capacity is not a number > 0.
    #[error("replica capacity must be a number > 0, got {0}")]
    Capacity(f64),
    /// The replica bounds are empty or reversed.
    #[error("replica bounds must satisfy 1 ≤ max and min ≤ max, got min {min} max {max}")]
    Bounds {
        /// Fewest replicas.
        min: u32,
        /// Most replicas.
        max: u32,
    },
    /// The boot time is negative.
    #[error("boot time must not be negative, got {0}s")]
    BootTime(i64),
    /// The split leaves the history or the simulated part empty.
    #[error(
        "cannot split {steps} steps at {split}: both the history and the simulated part need steps"
    )]
    Split {
        /// Steps in the trace.
        steps: usize,
        /// The split asked for.
        split: usize,
    },
    /// Nothing to replay: every simulated step is a gap.
    #[error("the simulated part of the trace is all gaps")]
    AllGaps,
    /// The model was trained on another step than the trace's.
    #[error("the model's step is {model}s, the trace's {trace}s")]
    ModelStep {
        /// The model's step, seconds.
        model: i64,
        /// The trace's step, seconds.
        trace: i64,
    },
    /// The predictive policy's margin on the forecast is not a number ≥ 0.
    #[error("the margin on the forecast must be a number ≥ 0, got {0}")]
    Margin(f64),
    /// The predictive policy was asked for without forecasts.
    #[error("the predictive policy needs a model (none was given or trained)")]
    NoModel,
    /// The planner refused the workload spec the knobs produce (its own message).
    #[error(transparent)]
    Spec(#[from] crate::plan::SpecError),
    /// A report file or directory could not be written.
    // Not `source`: the text is in this message already, and a source would print it twice.
    #[error("{}: {error}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// `report.json` could not be serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A shared replay was given no workloads.
    #[error("a shared replay needs at least one workload")]
    NoMembers,
    /// The traces of a shared replay are on different steps.
    #[error("workload '{name}' is on a {step}s step and '{first}' on {first_step}s: traces replayed on one pool must share a step (give --step)")]
    SharedStep {
        /// The workload on another step.
        name: String,
        /// Its step, seconds.
        step: i64,
        /// The first workload.
        first: String,
        /// Its step, seconds.
        first_step: i64,
    },
    /// Two workloads of a shared replay have the same name.
    #[error("two workloads of the shared pool are named '{0}'")]
    SharedName(String),
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] ChartError),
}
