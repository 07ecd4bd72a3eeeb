//! The collected buffers: per signal, one bounded [`Ring`] per series, with when each series was
//! last seen.
//!
//! Memory is `max_series × ring_capacity × 4 bytes` plus a small per-series overhead, all fixed
//! by the configuration: a ring never grows, vanished series are dropped after `drop_after`,
//! and a signal never holds more than `max_series` series.
//!
//! A full signal costs a new series a look at one other, not a scan of all: the stale series
//! are kept in eviction order as they are marked, so a label explosion (thousands of new
//! series per poll, the case `max_series` is for) is refused at the cost of a lookup each.

use super::config::SignalConfig;
use crate::series::{PushOutcome, Ring, Series, SeriesKey};
use std::collections::{BTreeMap, BTreeSet, HashSet};
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
    /// The series marked stale, as `(last seen, key)`: the first is the next evicted, the one
    /// seen longest ago (the first in key order among equals). Holds exactly the entries whose
    /// `stale` is set, with their current `last_seen`, so that a full store finds its victim,
    /// or that it has none, without a scan of every series.
    victims: BTreeSet<(i64, SeriesKey)>,
    /// With `[shard]`: the only series this store keeps; others are ignored on arrival.
    only: Option<Arc<HashSet<SeriesKey>>>,
    /// Changes whenever series are removed (see [`Store::removal_mark`]).
    removal_mark: u64,
    /// Entries looked at to find eviction victims, for the tests that show a full store does
    /// not scan itself per new series.
    #[cfg(test)]
    visited: usize,
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
            victims: BTreeSet::new(),
            only: None,
            removal_mark: next_removal_mark(),
            #[cfg(test)]
            visited: 0,
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
        self.victims.len()
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
            let seen = entry.last_seen;
            push_points(entry, points, &mut stats);
            if entry.stale && entry.last_seen != seen {
                // Stale until the next marking, but now seen later: it moves back in line.
                self.victims.remove(&(seen, key.clone()));
                self.victims.insert((entry.last_seen, key));
            }
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
        let victims = &mut self.victims;
        self.series.retain(|k, e| {
            let keep = keys.contains(k);
            if !keep && e.stale {
                victims.remove(&(e.last_seen, k.clone()));
            }
            keep
        });
        self.removed(before);
        self.only = Some(keys);
    }

    /// Evicts the longest-unseen stale series, if there is one; true if room was made.
    fn evict_one_stale(&mut self) -> bool {
        let Some((_, key)) = self.victims.pop_first() else {
            return false;
        };
        #[cfg(test)]
        {
            self.visited += 1;
        }
        self.series.remove(&key);
        self.removal_mark = next_removal_mark();
        true
    }

    /// Marks series stale that have not been seen for `stale_after` at `now`, and un-marks
    /// those seen again. Returns how many are stale.
    pub fn mark_stale(&mut self, now: i64) -> usize {
        self.victims.clear();
        for (k, e) in self.series.iter_mut() {
            e.stale = now.saturating_sub(e.last_seen) > self.stale_after;
            if e.stale {
                self.victims.insert((e.last_seen, k.clone()));
            }
        }
        self.victims.len()
    }

    /// Drops series not seen for `drop_after` at `now`; returns how many. Only called after a
    /// successful fetch: while the source is down, absence proves nothing.
    pub fn drop_vanished(&mut self, now: i64) -> usize {
        let before = self.series.len();
        let limit = self.drop_after;
        let victims = &mut self.victims;
        self.series.retain(|k, e| {
            let keep = now.saturating_sub(e.last_seen) <= limit;
            if !keep && e.stale {
                victims.remove(&(e.last_seen, k.clone()));
            }
            keep
        });
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

    /// Bytes held, with the maps' overhead estimated conservatively: B-tree nodes are at least
    /// half full, so at most twice the size of the entries themselves (the stale series' order
    /// shares their keys).
    pub fn memory_bytes(&self) -> usize {
        let per_entry = 2 * (std::mem::size_of::<SeriesKey>() + std::mem::size_of::<SeriesEntry>());
        self.series
            .iter()
            .map(|(k, e)| {
                per_entry + k.as_str().len() + e.ring.memory_bytes() - std::mem::size_of::<Ring>()
            })
            .sum::<usize>()
            + self.victims.len() * 2 * std::mem::size_of::<(i64, SeriesKey)>()
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

    /// Past `max_series` with nothing stale, a new series is refused without a look at the
    /// series held (a label explosion brings thousands per poll), and an eviction looks at
    /// its victim only.
    #[test]
    fn a_full_store_refuses_and_evicts_without_scanning() {
        let mut s = SignalStore::new(&cfg(1000));
        let key = |i: usize| SeriesKey::new(format!("cpu{{pod=\"p{i:05}\"}}"));
        // The first 500 are last seen before the others, so they go stale.
        for i in 0..1000 {
            s.ingest(
                key(i),
                [(if i < 500 { 60 * (i as i64 % 10) } else { 1000 }, 1.0)],
            );
        }
        for i in 1000..3000 {
            assert_eq!(s.ingest(key(i), [(1000, 1.0)]).refused_series, 1);
        }
        assert_eq!(s.visited, 0, "refusals looked at the series held");
        assert_eq!(s.mark_stale(1000), 500);
        let mut total = IngestStats::default();
        for i in 3000..5000 {
            total.add(&s.ingest(key(i), [(1000, 1.0)]));
        }
        assert_eq!((total.evicted_series, total.refused_series), (500, 1500));
        assert!(s.visited <= 500, "{} entries looked at", s.visited);
        assert_eq!(s.len(), 1000);
    }

    /// The victim is the stale series seen longest ago (the first in key order among equals),
    /// counting samples that arrived after it was marked stale; a series that left otherwise
    /// is never "evicted" again.
    #[test]
    fn evicts_the_longest_unseen_stale_series_first() {
        let k = SeriesKey::new;
        let mut s = SignalStore::new(&cfg(5));
        s.ingest(k("a"), [(600, 1.0)]);
        s.ingest(k("b"), [(300, 1.0)]);
        s.ingest(k("c"), [(300, 1.0)]);
        s.ingest(k("d"), [(1000, 1.0)]);
        s.ingest(k("e"), [(240, 1.0)]);
        assert_eq!(s.mark_stale(1100), 4);
        // `b` is seen again: marked stale until the next marking, but now the newest.
        s.ingest(k("b"), [(1100, 1.0)]);
        // `e`, the oldest, leaves to another shard.
        let keep = ["a", "b", "c", "d", "n0", "n1", "n2", "n3", "n4"];
        s.keep_only(Arc::new(keep.iter().map(|n| k(n)).collect()));
        assert_eq!(s.ingest(k("n0"), [(1100, 1.0)]).evicted_series, 0);
        for (new, victim) in [("n1", "c"), ("n2", "a"), ("n3", "b")] {
            let st = s.ingest(k(new), [(1100, 1.0)]);
            assert_eq!((st.new_series, st.evicted_series), (1, 1), "{new}");
            assert!(s.get(&k(victim)).is_none(), "{new} evicts {victim}");
            assert_eq!(s.len(), 5);
        }
        assert_eq!(s.ingest(k("n4"), [(1100, 1.0)]).refused_series, 1);
        // A stale series dropped is no victim; the next marking finds the others.
        let mut s = SignalStore::new(&cfg(3));
        s.ingest(k("a"), [(0, 1.0)]);
        s.ingest(k("b"), [(700, 1.0)]);
        s.ingest(k("c"), [(900, 1.0)]);
        assert_eq!(s.mark_stale(1000), 2);
        assert_eq!(s.drop_vanished(1000), 1);
        assert_eq!(s.ingest(k("d"), [(1000, 1.0)]).evicted_series, 0);
        let st = s.ingest(k("e"), [(1000, 1.0)]);
        assert_eq!(st.evicted_series, 1);
        assert!(s.get(&k("b")).is_none());
        assert_eq!(s.ingest(k("f"), [(1000, 1.0)]).refused_series, 1);
        assert_eq!(s.mark_stale(1050), 1);
        assert_eq!(s.ingest(k("f"), [(1050, 1.0)]).evicted_series, 1);
        assert!(s.get(&k("c")).is_none());
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
