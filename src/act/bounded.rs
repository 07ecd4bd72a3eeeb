//! A cycle's changes run concurrently, at most [`MAX_IN_FLIGHT`] at once, each in its own
//! task, whichever actuator carries them out.
//!
//! Why: one change that stalls (an API server that does not answer, a command that hangs until
//! its timeout) must not hold back the others, or one stuck workload would keep every other
//! one from scaling up for as long as it hangs. Each task is its own failure domain: even a
//! panic in one is that decision's `failed: …`. Under leader election each task asks whether
//! this replica leads once it has its slot, right before its change starts (the wait for a
//! slot may outlast the lease), and a change still running when leadership lapses is
//! abandoned, so the question is per change without making the changes wait for each other.

use super::{abandoned, Outcome, Skip};
use crate::leader::Leadership;
use crate::plan::Decision;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// At most this many changes of one cycle are in flight at once: enough that one stalled
/// object does not hold the others back, few enough not to burst an API server's limits or
/// start a process per workload at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// One change, started by [`changes`]: owns what it needs, so it can run in its own task.
pub(super) type Change<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs `start`'s change for each decision, at most [`MAX_IN_FLIGHT`] at once, and returns one
/// result per decision, in order. `start` says what a decision comes to without a change
/// (`Err`: not a scale decision, no object to change) or hands the change to run (`Ok`).
/// Under `leadership`, a decision is `skipped (not leader)` unless this replica leads right
/// before its change starts, and abandoned (failed) if leadership lapses while it runs. Once
/// `stop` reads true (SIGTERM), a change that gets its slot starts nothing (the wait for one
/// may outlast the stop, and what started then could outlast the pod's grace period); changes
/// under way are the actuators' business.
pub(super) async fn changes<T: From<Outcome> + Send + 'static>(
    decisions: &[Decision],
    leadership: Option<&Leadership>,
    stop: Option<&tokio::sync::watch::Receiver<bool>>,
    mut start: impl FnMut(&Decision) -> Result<Change<T>, T>,
) -> Vec<T> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut results: Vec<Option<T>> = decisions.iter().map(|_| None).collect();
    for (i, d) in decisions.iter().enumerate() {
        if leadership.is_some_and(|l| !l.is_leader()) {
            results[i] = Some(Outcome::Skipped(Skip::NotLeader).into());
            continue;
        }
        let change = match start(d) {
            Ok(change) => change,
            Err(result) => {
                results[i] = Some(result);
                continue;
            }
        };
        let slots = slots.clone();
        let leadership = leadership.cloned();
        let stop = stop.cloned();
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            if stop.is_some_and(|s| *s.borrow()) {
                return (
                    i,
                    Outcome::Failed("not started: prescale is stopping".into()).into(),
                );
            }
            let Some(l) = leadership else {
                return (i, change.await);
            };
            if !l.is_leader() {
                return (i, Outcome::Skipped(Skip::NotLeader).into());
            }
            // Biased, the lapse first: when it and the change's next step are both ready
            // (a starved runtime), the change must not take one more step, a PATCH or a
            // command it would send after leadership is gone.
            tokio::select! {
                biased;
                _ = l.lost() => (i, abandoned().into()),
                done = change => (i, done),
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, done)) => results[i] = Some(done),
            Err(e) => tracing::error!("a change failed unexpectedly: {e}"),
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Outcome::Failed("the change's task ended early".into()).into())
        })
        .collect()
}
