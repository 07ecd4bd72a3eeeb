//! The loop's own bookkeeping between cycles: what is believed carried out after the act
//! stage, and per-series state kept bounded by the series the store still holds.

use crate::act::Outcome;
use crate::collect::Store;
use crate::export::SeriesId;
use crate::forecast::{OnlineCalibration, OnlineConfig};
use crate::plan::{AccuracyConfig, AccuracyTracker, BelievedState, Decision, DecisionKind};
use crate::series::{SeriesKey, SeriesMap};
use std::collections::HashSet;

/// Follows a cycle's outcomes: what was carried out is believed done, and where the decision
/// was left for a live count (someone else's, or an earlier change of prescale's that landed
/// unanswered), that count is (so the next cycle plans from it).
pub(super) fn believe(believed: &mut BelievedState, decisions: &[Decision], outcomes: &[Outcome]) {
    believed.apply(&carried_out(decisions, outcomes));
    for (d, o) in decisions.iter().zip(outcomes) {
        if let Some(live) = o.changed_elsewhere() {
            tracing::warn!(
                "workload '{}': replicas changed elsewhere (live {live}, not what prescale last \
                 set or planned from); left as they are this cycle, planning from {live} next",
                d.target
            );
        }
        if let Some(live) = o.live_count() {
            believed.set_replicas(&d.target, live);
        }
    }
}

/// The decisions to believe carried out: all but the failed and the held ones (and those
/// someone else's change stopped, whose live count is believed instead), and but the
/// placements of new replicas whose scale-up failed or was held. A failed change leaves the believed count where it was, so
/// the next cycle plans from it and tries again.
fn carried_out(decisions: &[Decision], outcomes: &[Outcome]) -> Vec<Decision> {
    let failed: HashSet<&str> = decisions
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| o.is_failed() || o.is_held())
        .map(|(d, _)| d.target.as_str())
        .collect();
    decisions
        .iter()
        .zip(outcomes)
        .filter(|(d, o)| {
            let orphan_place = d.kind == DecisionKind::Place && failed.contains(d.target.as_str());
            !o.is_failed() && !o.is_held() && o.live_count().is_none() && !orphan_place
        })
        .map(|(d, _)| d.clone())
        .collect()
}

/// What the loop keeps per series between cycles, kept bounded by the series the store still
/// holds ([`PerSeries::forget_dropped`]).
pub(super) struct PerSeries {
    /// Each series' forecast accuracy, which weighs its forecast against reactive demand.
    pub(super) accuracy: AccuracyTracker,
    /// The online correction of each series' forecast quantiles (`[online_calibration]`).
    pub(super) online: OnlineCalibration,
    /// Newest timestamp already shown to the accuracy tracker.
    pub(super) observed: SeriesMap<i64>,
    /// Each series' id for the exporter (made once, see `snapshot`).
    pub(super) ids: SeriesMap<SeriesId>,
    /// The store's removal mark when these maps were last pruned to its series.
    pruned_at: Option<u64>,
}

impl PerSeries {
    /// Nothing kept yet, with the trackers configured as `accuracy` and `online` say.
    pub(super) fn new(accuracy: AccuracyConfig, online: OnlineConfig) -> Self {
        PerSeries {
            accuracy: AccuracyTracker::new(accuracy),
            online: OnlineCalibration::new(online),
            observed: SeriesMap::default(),
            ids: SeriesMap::default(),
            pruned_at: None,
        }
    }

    /// Forgets what is kept for series the store no longer holds (dropped after
    /// `drop_after`, evicted for room, or left to another shard), so that memory and the
    /// exported accuracy series follow the live series rather than every series ever seen.
    ///
    /// Only when the store's [removal mark](Store::removal_mark) moved since the last pruning
    /// (or on the first call): keys enter these maps only from series the store holds (the
    /// forecast's inputs) or from the state restored before the first cycle, so under the
    /// same mark there is nothing to forget, and looking 100,000 keys up in these maps took a
    /// tenth of a cycle.
    pub(super) fn forget_dropped(&mut self, store: &Store) {
        let mark = store.removal_mark();
        if self.pruned_at == Some(mark) {
            return;
        }
        let live = |k: &SeriesKey| store.entry(k).is_some();
        self.observed.retain(|k, _| live(k));
        self.accuracy.retain(live);
        self.online.retain(live);
        self.ids.retain(|k, _| live(k));
        self.pruned_at = Some(mark);
    }

    /// Forgets the errors learnt of `key`'s forecasts (its accuracy record and its online
    /// offsets) when a new model takes the series over: they were the previous model's.
    pub(super) fn forget_learned(&mut self, key: &SeriesKey) {
        self.accuracy.retain(|k| k != key);
        self.online.retain(|k| k != key);
    }
}

#[cfg(test)]
mod tests;
