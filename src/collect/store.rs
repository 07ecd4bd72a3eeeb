//! The collected buffers: per signal, one bounded [`Ring`] per series, with when each series was
//! last seen.
//!
//! Memory is `max_series × ring_capacity × 4 bytes` plus a small per-series overhead, all fixed
//! by the configuration: a ring never grows, vanished series are dropped after `drop_after`,
//! and a signal never holds more than `max_series` series.

use super::config::SignalConfig;
use crate::series::{PushOutcome, Ring, Series, SeriesKey};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A value no store's removals had before: each new store, and each removal of series from
/// one, takes the next. A process-wide counter, so that a store built afresh (a new collector)
/// can never show the value an earlier one last had.
fn next_removal_mark() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One series' buffer and bookkeeping.
#[derive(Debug, Clone)]
pub struct SeriesEntry {
    ring: Ring,
    /// Timestamp of the newest sample ever received for it (finite or not).
    last_seen: i64,
    stale: bool,
}

impl SeriesEntry {
    /// The buffer.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Timestamp (Unix seconds) of the newest sample received.
    pub fn last_seen(&self) -> i64 {
        self.last_seen
    }

    /// True when no sample has arrived for longer than the signal's `stale_after` at the time
    /// of the last poll; the planner should not trust its newest values.
    pub fn is_stale(&self) -> bool {
        self.stale
    }
}

/// What ingesting one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Samples that extended a ring.
    pub appended: usize,
    /// Samples that rewrote a slot already held (the overlap re-fetch; never a duplicate).
    pub replaced: usize,
    /// Samples older than the ring holds.
    pub too_old: usize,
    /// Series seen for the first time.
    pub new_series: usize,
    /// New series refused because the signal holds `max_series` fresh series.
    pub refused_series: usize,
    /// Stale series evicted to make room for new ones.
    pub evicted_series: usize,
}

impl IngestStats {
    /// Adds another batch's counts.
    pub fn add(&mut self, o: &IngestStats) {
        self.appended += o.appended;
        self.replaced += o.replaced;
        self.too_old += o.too_old;
        self.new_series += o.new_series;
        self.refused_series += o.refused_series;
        self.evicted_series += o.evicted_series;
    }
}

/// The series of one signal.
#[derive(Debug, Clone)]
pub struct SignalStore {
    name: String,
    step: i64,
    capacity: usize,
    max_series: usize,
    stale_after: i64,
    drop_after: i64,
    series: BTreeMap<SeriesKey, SeriesEntry>,
    /// With `[shard]`: the only series this store keeps; others are ignored on arrival.
    only: Option<Arc<HashSet<SeriesKey>>>,
    /// Changes whenever series are removed (see [`Store::removal_mark`]).
    removal_mark: u64,
}

impl SignalStore {
    /// An empty store sized by the signal's configuration.
    pub fn new(cfg: &SignalConfig) -> Self {
        SignalStore {
            name: cfg.name.clone(),
            step: cfg.step,
            capacity: cfg.ring_capacity(),
            max_series: cfg.max_series,
            stale_after: cfg.stale_after,
            drop_after: cfg.drop_after,
            series: BTreeMap::new(),
            only: None,
            removal_mark: next_removal_mark(),
        }
    }

    /// The signal's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signal's step in seconds.
    pub fn step(&self) -> i64 {
        self.step
    }

    /// Slots per ring.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// One series.
    pub fn get(&self, key: &SeriesKey) -> Option<&SeriesEntry> {
        self.series.get(key)
    }

    /// All series, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &SeriesEntry)> {
        self.series.iter()
    }

    /// All keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &SeriesKey> {
        self.series.keys()
    }

    /// Number of series marked stale.
    pub fn stale_count(&self) -> usize {
        self.series.values().filter(|e| e.stale).count()
    }

    /// Timestamp of the newest sample of any series.
    pub fn newest_sample(&self) -> Option<i64> {
        self.series.values().map(|e| e.last_seen).max()
    }

    /// Stores samples `(unix seconds, value)` of one series. The ring's slot rules make a
    /// re-fetched sample replace its slot, so overlapping fetches never duplicate points.
    pub fn ingest(
        &mut self,
        key: SeriesKey,
        points: impl IntoIterator<Item = (i64, f64)>,
    ) -> IngestStats {
        let mut stats = IngestStats::default();
        if self.only.as_ref().is_some_and(|o| !o.contains(&key)) {
            // Another shard's series: not counted as refused, it was never ours to hold.
            return stats;
        }
        let mut points = points.into_iter().peekable();
        // A series already held (the usual case, every poll): one descent of the tree.
        if let Some(entry) = self.series.get_mut(&key) {
            push_points(entry, points, &mut stats);
            return stats;
        }
        if points.peek().is_none() {
            // Never create an entry for a series with nothing to store.
            return stats;
        }
        if self.series.len() >= self.max_series {
            if !self.evict_one_stale() {
                stats.refused_series = 1;
                return stats;
            }
            stats.evicted_series = 1;
        }
        stats.new_series = 1;
        let entry = self.series.entry(key).or_insert(SeriesEntry {
            ring: Ring::new(self.step, self.capacity),
            last_seen: i64::MIN,
            stale: false,
        });
        push_points(entry, points, &mut stats);
        stats
    }

    /// Keeps only the series `keys` from now on, and drops any other held.
    pub fn keep_only(&mut self, keys: Arc<HashSet<SeriesKey>>) {
        let before = self.series.len();
        self.series.retain(|k, _| keys.contains(k));
        self.removed(before);
        self.only = Some(keys);
    }

    /// Evicts the longest-unseen series if it is stale; true if room was made.
    fn evict_one_stale(&mut self) -> bool {
        let victim = self
            .series
            .iter()
            .filter(|(_, e)| e.stale)
            .min_by_key(|(_, e)| e.last_seen)
            .map(|(k, _)| k.clone());
        match victim {
            Some(k) => {
                self.series.remove(&k);
                self.removal_mark = next_removal_mark();
                true
            }
            None => false,
        }
    }

    /// Marks series stale that have not been seen for `stale_after` at `now`, and un-marks
    /// those seen again. Returns how many are stale.
    pub fn mark_stale(&mut self, now: i64) -> usize {
        let mut n = 0;
        for e in self.series.values_mut() {
            e.stale = now.saturating_sub(e.last_seen) > self.stale_after;
            n += usize::from(e.stale);
        }
        n
    }

    /// Drops series not seen for `drop_after` at `now`; returns how many. Only called after a
    /// successful fetch: while the source is down, absence proves nothing.
    pub fn drop_vanished(&mut self, now: i64) -> usize {
        let before = self.series.len();
        let limit = self.drop_after;
        self.series
            .retain(|_, e| now.saturating_sub(e.last_seen) <= limit);
        self.removed(before);
        before - self.series.len()
    }

    /// Takes a new removal mark if the store holds fewer than `before` series.
    fn removed(&mut self, before: usize) {
        if self.series.len() < before {
            self.removal_mark = next_removal_mark();
        }
    }

    /// Every series as a [`Series`] (start = oldest slot held), in key order.
    pub fn to_series(&self) -> Vec<Series> {
        self.series
            .iter()
            .map(|(k, e)| e.ring.to_series(k.clone()))
            .collect()
    }

    /// Bytes held, with the map overhead estimated conservatively: B-tree nodes are at least
    /// half full, so at most twice the size of the entries themselves.
    pub fn memory_bytes(&self) -> usize {
        let per_entry = 2 * (std::mem::size_of::<SeriesKey>() + std::mem::size_of::<SeriesEntry>());
        self.series
            .iter()
            .map(|(k, e)| {
                per_entry + k.as_str().len() + e.ring.memory_bytes() - std::mem::size_of::<Ring>()
            })
            .sum::<usize>()
            + std::mem::size_of::<Self>()
    }
}

/// Pushes `points` into `entry`'s ring, counting what each did.
fn push_points(
    entry: &mut SeriesEntry,
    points: impl Iterator<Item = (i64, f64)>,
    stats: &mut IngestStats,
) {
    for (ts, v) in points {
        match entry.ring.push(ts, v) {
            PushOutcome::Appended { .. } => stats.appended += 1,
            PushOutcome::Replaced => stats.replaced += 1,
            PushOutcome::TooOld => stats.too_old += 1,
        }
        entry.last_seen = entry.last_seen.max(ts);
    }
}

/// All signals' buffers, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Store {
    signals: Vec<SignalStore>,
}

impl Store {
    /// Empty buffers for these signals.
    pub fn new(signals: &[SignalConfig]) -> Self {
        Store {
            signals: signals.iter().map(SignalStore::new).collect(),
        }
    }

    /// One signal's buffers.
    pub fn signal(&self, name: &str) -> Option<&SignalStore> {
        self.signals.iter().find(|s| s.name == name)
    }

    pub(crate) fn signal_at_mut(&mut self, i: usize) -> &mut SignalStore {
        &mut self.signals[i]
    }

    /// Signals in configuration order.
    pub fn signals(&self) -> &[SignalStore] {
        &self.signals
    }

    /// One series' ring, whichever signal it belongs to.
    pub fn series(&self, key: &SeriesKey) -> Option<&Ring> {
        self.entry(key).map(SeriesEntry::ring)
    }

    /// A mark that stays the same as long as no series is removed from this store (dropped
    /// after `drop_after`, evicted for room, or left to another shard) and differs from any
    /// mark this or another store showed before. What is kept per series elsewhere needs
    /// pruning only when it changed: looking every key up again each cycle costs a tenth of a
    /// cycle at 100,000 series, for nothing in the usual cycle.
    pub fn removal_mark(&self) -> u64 {
        self.signals
            .iter()
            .map(|s| s.removal_mark)
            .max()
            .unwrap_or(0)
    }

    /// One series' entry (ring, last seen, stale flag).
    pub fn entry(&self, key: &SeriesKey) -> Option<&SeriesEntry> {
        self.signals.iter().find_map(|s| s.series.get(key))
    }

    /// Keys of one signal's series (empty for an unknown signal).
    pub fn keys<'a>(&'a self, signal: &str) -> impl Iterator<Item = &'a SeriesKey> + 'a {
        self.signal(signal).into_iter().flat_map(|s| s.keys())
    }

    /// Ring slots allocated over all series and total bytes, for memory reporting.
    pub fn footprint(&self) -> (usize, usize) {
        let points = self
            .signals
            .iter()
            .flat_map(|s| s.series.values())
            .map(|e| e.ring.capacity())
            .sum();
        let bytes = self
            .signals
            .iter()
            .map(SignalStore::memory_bytes)
            .sum::<usize>()
            + std::mem::size_of::<Self>();
        (points, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_series: usize) -> SignalConfig {
        let mut c = SignalConfig::new("cpu", "q", 60, 600);
        c.max_series = max_series;
        c.stale_after = 120;
        c.drop_after = 300;
        c
    }

    #[test]
    fn overlap_refetch_replaces_and_gaps_stay_gaps() {
        let mut s = SignalStore::new(&cfg(10));
        let k = SeriesKey::new("cpu{a=\"1\"}");
        let st = s.ingest(k.clone(), [(600, 1.0), (660, 2.0)]);
        assert_eq!((st.appended, st.new_series), (2, 1));
        // Overlap re-fetch of 660 plus a new point after a missing one.
        let st = s.ingest(k.clone(), [(660, 2.5), (780, 4.0)]);
        assert_eq!((st.appended, st.replaced, st.new_series), (1, 1, 0));
        let t = s.get(&k).unwrap().ring().tail(10);
        assert_eq!(t.len(), 4);
        assert_eq!((t[0], t[1], t[3]), (1.0, 2.5, 4.0));
        assert!(t[2].is_nan());
    }

    #[test]
    fn stale_then_dropped_and_bounded() {
        let mut s = SignalStore::new(&cfg(2));
        let a = SeriesKey::new("a");
        let b = SeriesKey::new("b");
        s.ingest(a.clone(), [(600, 1.0)]);
        s.ingest(b.clone(), [(900, 1.0)]);
        // Full, nothing stale: refused.
        let st = s.ingest(SeriesKey::new("c"), [(900, 1.0)]);
        assert_eq!(st.refused_series, 1);
        assert_eq!(s.len(), 2);
        assert_eq!(s.mark_stale(900), 1);
        assert!(s.get(&a).unwrap().is_stale());
        assert!(!s.get(&b).unwrap().is_stale());
        // Full, `a` stale: evicted for the newcomer.
        let st = s.ingest(SeriesKey::new("c"), [(900, 1.0)]);
        assert_eq!(
            (st.new_series, st.refused_series, st.evicted_series),
            (1, 0, 1)
        );
        assert!(s.get(&a).is_none());
        assert_eq!(s.drop_vanished(1150), 0);
        assert_eq!(s.drop_vanished(1201), 2);
        assert!(s.is_empty());
    }

    /// The mark moves on every way a series leaves (drop, eviction, another shard's) and on
    /// nothing else, and two stores never show the same one.
    #[test]
    fn removal_mark_moves_only_when_series_leave() {
        let mut store = Store::new(&[cfg(2)]);
        let other = Store::new(&[cfg(2)]);
        assert_ne!(store.removal_mark(), other.removal_mark());
        let mark = |s: &Store| s.removal_mark();
        let m0 = mark(&store);
        let (a, b) = (SeriesKey::new("a"), SeriesKey::new("b"));
        store.signal_at_mut(0).ingest(a.clone(), [(600, 1.0)]);
        store.signal_at_mut(0).ingest(b.clone(), [(900, 1.0)]);
        store.signal_at_mut(0).mark_stale(900);
        assert_eq!(store.signal_at_mut(0).drop_vanished(900), 0);
        assert_eq!(
            mark(&store),
            m0,
            "ingesting and a drop that dropped nothing"
        );
        store
            .signal_at_mut(0)
            .ingest(SeriesKey::new("c"), [(900, 1.0)]);
        let m1 = mark(&store);
        assert_ne!(m1, m0, "an eviction");
        assert_eq!(store.signal_at_mut(0).drop_vanished(1201), 2);
        let m2 = mark(&store);
        assert!(m2 != m1 && m2 != m0, "a drop");
        store.signal_at_mut(0).ingest(a.clone(), [(1260, 1.0)]);
        store
            .signal_at_mut(0)
            .keep_only(Arc::new(HashSet::from([a.clone()])));
        assert_eq!(mark(&store), m2, "kept what another shard does not hold");
        store
            .signal_at_mut(0)
            .keep_only(Arc::new(HashSet::from([b.clone()])));
        assert!(
            ![m0, m1, m2].contains(&mark(&store)),
            "left to another shard"
        );
    }

    #[test]
    fn footprint_per_point() {
        let c = SignalConfig::new("cpu", "q", 300, 7 * 86_400);
        let mut s = SignalStore::new(&c);
        for i in 0..100 {
            s.ingest(
                SeriesKey::new(format!("cpu{{instance=\"node-{i:05}.example:9100\"}}")),
                [(0, 1.0)],
            );
        }
        let per_point = s.memory_bytes() as f64 / (100.0 * 2016.0);
        assert!(per_point <= 8.0, "{per_point}");
    }

    /// Issue #11's scale target: buffers cost at most 6 bytes per point held, overhead
    /// included, for the shape of `benches/scale.rs` (5-minute steps, two days, keys of two
    /// labels) and for a day at 1-minute steps.
    #[test]
    fn buffers_cost_at_most_six_bytes_per_point() {
        for (step, lookback) in [(300, 2 * 86_400), (60, 86_400), (300, 8 * 86_400)] {
            let mut c = SignalConfig::new("cpu", "q", step, lookback);
            c.max_series = 10_000;
            let mut s = SignalStore::new(&c);
            for i in 0..10_000 {
                let key = format!("cpu{{pod=\"p{}\",workload=\"w{}\"}}", i / 1000, i);
                s.ingest(SeriesKey::new(key), [(0, 1.0)]);
            }
            let per_point = s.memory_bytes() as f64 / (10_000 * s.capacity()) as f64;
            assert!(
                per_point <= 6.0,
                "step {step}, lookback {lookback}: {per_point}"
            );
        }
    }

    #[test]
    fn keep_only_ignores_other_series_and_drops_those_held() {
        let mut s = SignalStore::new(&cfg(10));
        let (a, b) = (SeriesKey::new("a"), SeriesKey::new("b"));
        s.ingest(b.clone(), [(600, 1.0)]);
        s.keep_only(std::sync::Arc::new([a.clone()].into_iter().collect()));
        assert!(s.get(&b).is_none());
        let st = s.ingest(b.clone(), [(900, 1.0)]);
        assert_eq!(st, IngestStats::default());
        assert!(s.get(&b).is_none());
        s.ingest(a.clone(), [(900, 1.0)]);
        assert_eq!(s.len(), 1);
    }
}
