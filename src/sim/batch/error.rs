//! [`BatchError`]: why a task-queue run could not happen or its report not be written. Reading
//! task and node files has its own [`TaskError`](super::tasks::TaskError), with file and line.

use crate::chart::ChartError;
use std::path::PathBuf;

/// Why a task-queue run (fixed or elastic) could not happen or its report could not be
/// written.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The cluster has no nodes.
    #[error("no nodes")]
    NoNodes,
    /// There are no tasks to plan an elastic pool for.
    #[error("no tasks")]
    NoTasks,
    /// A task fits no node even when the cluster is empty: it would block the queue for ever.
    #[error("task {id} (cpu {cpu}, mem {mem}, gpu {gpu}) fits no node even on an empty cluster")]
    DoesNotFit {
        /// The task's id.
        id: u64,
        /// CPU requested.
        cpu: f64,
        /// Memory requested.
        mem: f64,
        /// GPUs requested.
        gpu: f64,
    },
    /// A task larger than its tenant's static share would wait for ever.
    #[error("task {id} of tenant '{tenant}' is larger than the tenant's static share of the cluster ({share})")]
    OverQuota {
        /// The task's id.
        id: u64,
        /// Its tenant.
        tenant: String,
        /// The share, as the message prints it.
        share: String,
    },
    /// A placement allocation runs do not support.
    #[error("allocation runs place by least-loaded, best-fit or ffd, not '{0}'")]
    AllocationPlacement(&'static str),
    /// A time-sliced discipline with no time slice.
    #[error("the time slice must be > 0 s, got {0}")]
    Quantum(f64),
    /// The scaler's planning interval is not a positive time.
    #[error("the planning interval must be > 0 s, got {0}")]
    Interval(f64),
    /// The elastic run could not finish its tasks.
    #[error("{unfinished} of {total} tasks were still unfinished at {at:.0} s: the autoscaler left them no node")]
    Unfinished {
        /// Tasks not finished.
        unfinished: usize,
        /// All tasks.
        total: usize,
        /// Simulated time when the run gave up, seconds.
        at: f64,
    },
    /// An elastic pool setting is out of range.
    #[error("{message}")]
    Flag {
        /// The flag that sets it.
        flag: &'static str,
        /// What is wrong, naming the flag.
        message: String,
    },
    /// The pool's forecast settings are unusable (the forecaster's own message).
    #[error("{0}")]
    Forecast(String),
    /// A run on the elastic pool failed.
    #[error("autoscaled pool, node shape {shape}: {error}")]
    Pool {
        /// The pool node's shape, as the report prints it.
        shape: String,
        /// Why.
        error: Box<BatchError>,
    },
    /// A report file or directory could not be written.
    // Not `source`: the text is in this message already, and a source would print it twice.
    #[error("{}: {error}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] ChartError),
}
