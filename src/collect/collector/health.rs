//! What the collector reports: each signal's health (for the planner and `/healthz`), its
//! cumulative counters (for the exporter), and what one poll or backfill did.

/// How a signal's collection is doing, for the planner and for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// The last fetch succeeded.
    Healthy,
    /// Recent fetches failed, but the data is still fresh enough to use with care.
    Degraded,
    /// Failing for a while, or with an error retries cannot fix, or the data is stale.
    Down,
}

/// Per-signal health. `last_error` is an error's text, which never holds secrets.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SignalHealth {
    /// The state.
    pub state: HealthState,
    /// When (the caller's `now`) the last fetch succeeded.
    pub last_success: Option<i64>,
    /// When the last fetch was tried.
    pub last_attempt: Option<i64>,
    /// Failed polls in a row.
    pub consecutive_failures: u32,
    /// The error of the current failure streak.
    pub last_error: Option<String>,
    /// Seconds from the newest sample of any series to the last poll's `now`.
    pub data_age: Option<i64>,
    /// Series held.
    pub series: usize,
    /// Series marked stale.
    pub stale_series: usize,
}

impl SignalHealth {
    pub(super) fn new() -> Self {
        SignalHealth {
            state: HealthState::Down,
            last_success: None,
            last_attempt: None,
            consecutive_failures: 0,
            last_error: Some("not collected yet".into()),
            data_age: None,
            series: 0,
            stale_series: 0,
        }
    }
}

/// Cumulative counters per signal, for the exporter's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SignalStats {
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed (each attempt counts).
    pub request_failures: u64,
    /// Retries made.
    pub retries: u64,
    /// Polls that ended in failure.
    pub failed_polls: u64,
    /// Samples that extended a ring.
    pub points_appended: u64,
    /// Samples that rewrote a held slot (overlap).
    pub points_replaced: u64,
    /// Series added.
    pub series_added: u64,
    /// Series dropped after vanishing, or evicted for room.
    pub series_dropped: u64,
    /// New series refused for `max_series`.
    pub series_refused: u64,
    /// Answers with two series that map to one key (`series_labels` does not tell them apart).
    pub key_collisions: u64,
}

/// What happened to one signal in one poll or backfill.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SignalPoll {
    /// The signal.
    pub signal: String,
    /// Grid range asked for, `[start, end]`; `None` when already up to date.
    pub range: Option<(i64, i64)>,
    /// Requests sent (retries included).
    pub requests: u32,
    /// Retries.
    pub retries: u32,
    /// What was stored.
    pub appended: usize,
    /// Re-fetched samples that rewrote a slot.
    pub replaced: usize,
    /// New series.
    pub new_series: usize,
    /// Series dropped after vanishing.
    pub dropped_series: usize,
    /// Warnings from the source.
    pub warnings: Vec<String>,
    /// The error, when the poll failed for this signal.
    pub error: Option<String>,
}

/// What one [`Collector::poll`](super::Collector::poll) or [`Collector::backfill`](super::Collector::backfill) did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PollReport {
    /// The `now` it ran for.
    pub at: i64,
    /// One entry per signal, in configuration order.
    pub signals: Vec<SignalPoll>,
}

impl PollReport {
    /// True when every signal was fetched (or was already up to date).
    pub fn ok(&self) -> bool {
        self.signals.iter().all(|s| s.error.is_none())
    }
}
