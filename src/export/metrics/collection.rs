//! The collect stage's families: per signal whether its last collection succeeded, how old
//! its data are, its failed collections by kind and the new series it refused; per workload
//! read with a query, its failed reads of current replicas.

use super::labels::{Lv, Seen, SignalErrorLabels, SignalLabel};
use super::{set_each, sync, workload, Metrics};
use crate::export::snapshot::SignalSample;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashSet;

/// The kinds of collection error the live loop reports per signal (`request`: one failed
/// request, retried or not; `poll`: a poll that failed after its retries). Every signal's
/// `prescale_collection_errors_total` has a series at 0 for each from its first snapshot, so
/// that `rate()` and alerts see a baseline before the first error rather than no series.
pub const COLLECTION_ERROR_KINDS: [&str; 2] = ["request", "poll"];

impl Metrics {
    /// Registers the collection families.
    pub(super) fn register_collection(&self, r: &mut Registry) {
        r.register(
            "collection_errors",
            "Failed collections, by signal and kind of error",
            self.errors.clone(),
        );
        r.register(
            "replicas_read_errors",
            "Failed reads of a workload's current replicas (its data count as stale meanwhile)",
            self.replica_read_errors.clone(),
        );
        r.register(
            "series_refused",
            "New series of a signal refused because it holds max_series already",
            self.series_refused.clone(),
        );
        r.register(
            "signal_up",
            "Whether the last collection of a signal succeeded (1) or not (0)",
            self.signal_up.clone(),
        );
        r.register_with_unit(
            "data_staleness",
            "Age of a signal's newest good sample",
            Unit::Seconds,
            self.staleness.clone(),
        );
    }

    /// Signals' health and their error counters.
    pub(super) fn observe_signals(&self, signals: &[SignalSample], seen: &mut Seen) {
        let now = set_each(
            &self.signal_up,
            signals.iter().map(|g| (signal(&g.signal), i64::from(g.up))),
        );
        sync(&self.signal_up, &mut seen.signal_up, now);
        let now = set_each(
            &self.staleness,
            signals
                .iter()
                .map(|g| (signal(&g.signal), g.staleness_seconds)),
        );
        sync(&self.staleness, &mut seen.staleness, now);
        // Error counters live as long as their signal does: an error kind that stops
        // recurring keeps its count (it is a counter), but a signal that is gone takes its
        // counters with it.
        for g in signals {
            for kind in COLLECTION_ERROR_KINDS {
                let l = SignalErrorLabels {
                    signal: Lv::from(&g.signal),
                    kind: Lv::from(kind),
                };
                let _ = self.errors.get_or_create(&l);
                seen.errors.insert(l);
            }
            self.series_refused
                .get_or_create(&signal(&g.signal))
                .inc_by(g.new_series_refused);
            for (kind, n) in &g.new_errors {
                let l = SignalErrorLabels {
                    signal: Lv::from(&g.signal),
                    kind: Lv::from(kind),
                };
                self.errors.get_or_create(&l).inc_by(*n);
                seen.errors.insert(l);
            }
        }
        let live: HashSet<&str> = signals.iter().map(|g| g.signal.as_str()).collect();
        seen.errors.retain(|l| {
            let keep = live.contains(l.signal.0.as_str());
            if !keep {
                self.errors.remove(l);
            }
            keep
        });
        let now = signals.iter().map(|g| signal(&g.signal)).collect();
        sync(&self.series_refused, &mut seen.series_refused, now);
    }

    /// Per workload read with a query, whether this cycle's read failed: a counter that
    /// lives as long as the workload is read.
    pub(super) fn observe_replica_reads(&self, reads: &[(String, bool)], seen: &mut Seen) {
        let mut now = Vec::with_capacity(reads.len());
        for (w, failed) in reads {
            let l = workload(w);
            self.replica_read_errors
                .get_or_create(&l)
                .inc_by(u64::from(*failed));
            now.push(l);
        }
        sync(&self.replica_read_errors, &mut seen.replica_reads, now);
    }
}

fn signal(s: &str) -> SignalLabel {
    SignalLabel { signal: s.into() }
}
