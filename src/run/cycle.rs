//! One cycle of the live loop, and the loop that repeats it.
//!
//! A cycle reads as the pipeline does: poll the collector, read current replicas, then
//! [`Loop::cycle`]: forecast every series, plan every workload (and the node pools), act on the
//! decisions, believe them carried out, and hand the exporter a snapshot. Then retraining (of
//! the global model, and of own models: `stages`) gets its turn, and the clock decides whether
//! there is another cycle. Each step's body lives with its concept: `replicas`, `forecasts`,
//! `planning`, `bookkeeping`, `snapshot`, `retrain`; here only their order.

use super::bookkeeping::believe;
use super::clock::Clock;
use super::state::Loop;
use super::{RunError, RunOptions, RunSummary};
use crate::collect::{Collector, PollReport, Source};
use crate::plan::share_pools;
use crate::plan::Decision;
use std::time::Instant;

impl Loop {
    /// Runs cycles until the limit, the end of a replay or a stop request; flushes the log.
    pub(super) async fn drive<S: Source + Send + Sync>(
        mut self,
        mut collector: Collector<S>,
        mut clock: Clock,
        opts: &RunOptions,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<RunSummary, RunError> {
        let limit = if opts.once {
            Some(1)
        } else {
            opts.cycles.or(self.cycles_limit)
        };
        let mut summary = RunSummary::default();
        self.stop = Some(stop.clone());
        let mut last = clock.now();
        // Stopped during the backfill: no cycle, straight to the end.
        if self.begin(&mut collector, last).await {
            loop {
                let started = Instant::now();
                let now = clock.now();
                let Some(decisions) = self
                    .step(&mut collector, now, started, summary.cycles + 1)
                    .await?
                else {
                    break;
                };
                summary.cycles += 1;
                let holds = decisions.iter().filter(|d| d.is_hold()).count();
                summary.holds += holds;
                summary.changes += decisions.len() - holds;
                last = now;
                if limit.is_some_and(|l| summary.cycles >= l) || !clock.tick(&mut stop).await {
                    break;
                }
            }
        }
        self.end(last)?;
        Ok(summary)
    }

    /// Before the first cycle at `now`: the persisted state restored, the buffers backfilled,
    /// retraining's clock started. `false`: stopped during the backfill.
    pub(super) async fn begin<S: Source + Send + Sync>(
        &mut self,
        collector: &mut Collector<S>,
        now: i64,
    ) -> bool {
        self.restore_persisted(now);
        let Some(report) = unless_stopped(self.stop.clone(), collector.backfill(now)).await else {
            tracing::info!("stopped during the backfill");
            return false;
        };
        warn_failures("backfill", &report);
        self.retrainer.start(now);
        true
    }

    /// After the last cycle, at `last`: the state saved for good and the decision log
    /// flushed.
    pub(super) fn end(&mut self, last: i64) -> Result<(), RunError> {
        self.save_persisted(last, true);
        self.act.flush()?;
        Ok(())
    }

    /// Cycle number `n` (from 1) at `now`, everything the loop does between two clock ticks:
    /// the poll (not in the first cycle: the backfill was its poll), replicas read (and
    /// recovered from the log at the first), the other shards read back and their count
    /// checked, [`Loop::cycle`],
    /// retraining's turn and the state saved. `drive` and the [`Stepper`](super::Stepper) both
    /// run cycles through this, so a benchmark stepping the loop measures the loop's own code.
    pub(super) async fn step<S: Source + Send + Sync>(
        &mut self,
        collector: &mut Collector<S>,
        now: i64,
        started: Instant,
        n: u64,
    ) -> Result<Option<Vec<Decision>>, RunError> {
        let stop = self.stop.clone();
        let read = unless_stopped(stop, async {
            if n > 1 {
                warn_failures("poll", &collector.poll(now).await);
            }
            self.read_replicas(now).await
        })
        .await;
        let Some(read) = read else {
            tracing::info!("stopped while reading; cycle {n} skipped");
            return Ok(None);
        };
        if let Some(recorded) = self.recorded.take() {
            self.recover(&read, &recorded);
        }
        self.read_other_shards(now).await;
        self.check_shards_agree().await;
        let decisions = self.cycle(collector, now, started, n).await?;
        self.maybe_retrain(collector, now).await;
        self.maybe_train_own(collector, now).await;
        self.save_persisted(now, false);
        Ok(Some(decisions))
    }

    /// One cycle after the poll: forecast, plan, act, export.
    async fn cycle<S: Source + Sync>(
        &mut self,
        collector: &Collector<S>,
        now: i64,
        started: Instant,
        n: u64,
    ) -> Result<Vec<Decision>, RunError> {
        self.series.forget_dropped(collector.store());
        let mut forecasts = self.forecast(collector, now);
        let (mut decisions, peaks) = self.plan_workloads(collector.store(), now, &forecasts);
        // Before the node planner, so that it places and sizes for what the pools can give.
        let shared = share_pools(&self.pools, &self.workloads, &mut decisions);
        let node_loads = super::shard::own_utilizations(
            &self.workloads,
            &decisions,
            peaks.iter().map(|p| p.value),
        );
        decisions.extend(self.plan_nodes(now, &decisions, &peaks));
        self.stage_reasons(&forecasts.views, &mut decisions);
        self.calibration_reasons(
            &forecasts.by_key,
            &forecasts.raw,
            &forecasts.views,
            &mut decisions,
        );
        self.annotate(&mut decisions);
        let outcomes = self.act.handle(n, now, &decisions).await?;
        believe(&mut self.believed, &decisions, &outcomes);
        self.follow_other_shards();
        let mut snapshot = self.snapshot(
            collector,
            now,
            started,
            std::mem::take(&mut forecasts.made),
            &decisions,
            &outcomes,
        );
        Self::add_sharing(&mut snapshot, shared);
        snapshot.node_loads = node_loads;
        snapshot.shard_stale = self.stale.gauges();
        self.add_scaler(&mut snapshot, &decisions, &peaks);
        self.export.cycle_finished(&snapshot);
        Ok(decisions)
    }
}

/// Logs each signal `what` (a backfill or a poll) failed for; the loop goes on with the
/// others and with what the failed ones already hold.
fn warn_failures(what: &str, report: &PollReport) {
    for s in report.signals.iter().filter(|s| s.error.is_some()) {
        tracing::warn!(
            "{what} of '{}' failed: {}",
            s.signal,
            s.error.as_deref().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests;

/// `fut`'s output, or `None` if a stop is asked first (then `fut` is dropped where it waits).
/// Only for reads: dropping a poll or a replica read loses nothing (what a backfill stored is
/// kept, its cursor with it), while a change cut off mid-flight would leave its outcome unknown,
/// so acting is never wrapped in this.
async fn unless_stopped<T>(
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        v = fut => Some(v),
        () = crate::act::stopped(stop) => None,
    }
}
