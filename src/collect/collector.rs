//! The collector: backfill at start, then incremental polls on the step grid, with retries,
//! health and the buffers.

use super::config::{PrometheusConfig, SignalConfig};
use super::prometheus::{Answer, RangeSeries};
use super::source::{PrometheusSource, Source, SourceError};
use super::store::{IngestStats, Store};
use super::CollectError;
use crate::series::{write_long_csv, SeriesHasher, SeriesKey};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod health;
mod retry;
mod startup;
pub use health::{HealthState, PollReport, SignalHealth, SignalPoll, SignalStats};
pub use retry::{Backoff, RetryPolicy};
pub use startup::{Waiting, STARTUP_BACKOFF};

/// Samples one backfill request should stay under, whatever the series count: Prometheus'
/// default `--query.max-samples` is 50 million, and one answer's JSON is ~25 bytes a sample.
const SAMPLES_PER_REQUEST: i64 = 2_000_000;

struct SignalState {
    /// Newest grid point fetched successfully; `None` until the first success. Moved on by
    /// each chunk stored, so a backfill that fails part way goes on from there next poll
    /// instead of fetching its oldest chunks again and never reaching the newest.
    cursor: Option<i64>,
    /// Series count hint for chunk sizing.
    series_hint: usize,
    /// Chunks are halved this many times: a chunk of more than 60 points (a backfill's; a
    /// poll's few points never are) that failed for its weight (`SourceError::heavy`) makes
    /// the next at most half its size, at once if it was refused for its size
    /// (`max_answer_size`), else from the next poll. The hint counts the series
    /// of one instant, not those that came and went over a backfill's range nor what the query
    /// aggregates, so a chunk can still be too heavy for the store's timeout or sample limit;
    /// failing on it every poll forever would leave the signal without recent data.
    chunk_halvings: u32,
    health: SignalHealth,
    stats: SignalStats,
}

/// Polls after this many failures in a row are `Down` even with retryable errors.
const DOWN_AFTER_FAILURES: u32 = 3;

/// Collects configured signals from a [`Source`] into bounded per-series rings.
///
/// The caller owns the clock: [`Collector::backfill`] and [`Collector::poll`] take `now`
/// (Unix seconds), so the same collector runs live (wall clock) or in an accelerated replay.
pub struct Collector<S = PrometheusSource> {
    source: S,
    signals: Vec<SignalConfig>,
    states: Vec<SignalState>,
    store: Store,
    retry: RetryPolicy,
    rng: rand::rngs::StdRng,
}

impl Collector<PrometheusSource> {
    /// A collector for `[prometheus]` and its `[[signal]]`s. Checks every query with an instant
    /// query first, so a PromQL error fails here, quoting Prometheus.
    pub async fn connect(
        prometheus: &PrometheusConfig,
        signals: &[SignalConfig],
    ) -> Result<Self, CollectError> {
        let source = PrometheusSource::new(prometheus).map_err(CollectError::Client)?;
        Collector::with_source(source, signals.to_vec(), RetryPolicy::default(), unix_now()).await
    }
}

impl<S: Source> Collector<S> {
    /// A collector over any source; checks each signal with [`Source::check`] (retrying
    /// transient failures per `retry`). For a start-up that waits as long as the source is
    /// away, see [`Collector::with_source_waiting`].
    pub async fn with_source(
        source: S,
        signals: Vec<SignalConfig>,
        retry: RetryPolicy,
        now: i64,
    ) -> Result<Self, CollectError> {
        if signals.is_empty() {
            return Err(CollectError::NoSignals);
        }
        let mut rng = rand::SeedableRng::from_entropy();
        let mut hints = Vec::with_capacity(signals.len());
        for sig in &signals {
            let mut backoff = Backoff::new(retry);
            let mut attempt = 1;
            let hint = loop {
                match check_signal(&source, sig, now).await {
                    Ok(hint) => break hint,
                    Err(e) if e.is_retryable() && attempt < retry.max_attempts => {
                        tracing::warn!(signal = %sig.name, error = %e, "start-up check failed; retrying");
                        tokio::time::sleep(backoff.next_delay(&mut rng)).await;
                        attempt += 1;
                    }
                    Err(e) => {
                        return Err(CollectError::Check {
                            signal: sig.name.clone(),
                            error: e,
                        })
                    }
                }
            };
            hints.push(hint);
        }
        Ok(Collector::assemble(source, signals, &hints, retry, rng))
    }

    /// The collector for signals whose start-up checks passed; `hints[i]` is signal `i`'s
    /// series count.
    fn assemble(
        source: S,
        signals: Vec<SignalConfig>,
        hints: &[usize],
        retry: RetryPolicy,
        rng: rand::rngs::StdRng,
    ) -> Self {
        let states = hints
            .iter()
            .map(|&hint| SignalState {
                cursor: None,
                series_hint: hint,
                chunk_halvings: 0,
                health: SignalHealth::new(),
                stats: SignalStats::default(),
            })
            .collect();
        Collector {
            store: Store::new(&signals),
            source,
            signals,
            states,
            retry,
            rng,
        }
    }

    /// Keeps only the series `keys` (a shard's workloads' demand series, `[shard]`): every
    /// other series is dropped on arrival, so this replica holds only its share.
    pub fn keep_only(&mut self, keys: HashSet<SeriesKey>) {
        let keys = std::sync::Arc::new(keys);
        for i in 0..self.signals.len() {
            self.store.signal_at_mut(i).keep_only(keys.clone());
        }
    }

    /// The buffers.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configured signals.
    pub fn signals(&self) -> &[SignalConfig] {
        &self.signals
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// One signal's health.
    pub fn health(&self, signal: &str) -> Option<&SignalHealth> {
        self.index(signal).map(|i| &self.states[i].health)
    }

    /// One signal's counters.
    pub fn stats(&self, signal: &str) -> Option<&SignalStats> {
        self.index(signal).map(|i| &self.states[i].stats)
    }

    fn index(&self, signal: &str) -> Option<usize> {
        self.signals.iter().position(|s| s.name == signal)
    }

    /// Fills the buffers with each signal's `lookback` ending at `now`, in chunks that keep
    /// every request under the source's point limit. Retries transient failures with the full
    /// policy; a signal that still fails keeps the end of its last chunk stored (or none), so
    /// the next poll goes on from there.
    pub async fn backfill(&mut self, now: i64) -> PollReport {
        for st in &mut self.states {
            st.cursor = None;
        }
        self.collect(now, None, false).await
    }

    /// Fetches what is new since the last successful fetch (plus `overlap_steps` steps again,
    /// for late samples) up to the last grid point at or before `now`. A signal never fetched
    /// successfully is backfilled. Retry sleeps per signal stay within half its step, so a poll
    /// does not run into the next one.
    pub async fn poll(&mut self, now: i64) -> PollReport {
        self.collect(now, Some(0.5), true).await
    }

    async fn collect(&mut self, now: i64, budget_steps: Option<f64>, drop: bool) -> PollReport {
        let mut report = PollReport {
            at: now,
            signals: Vec::with_capacity(self.signals.len()),
        };
        for i in 0..self.signals.len() {
            let budget =
                budget_steps.map(|f| Duration::from_secs_f64(self.signals[i].step as f64 * f));
            let r = self.collect_signal(i, now, budget, drop).await;
            report.signals.push(r);
        }
        report
    }

    async fn collect_signal(
        &mut self,
        i: usize,
        now: i64,
        budget: Option<Duration>,
        drop: bool,
    ) -> SignalPoll {
        let sig = self.signals[i].clone();
        let step = sig.step;
        let end = now.div_euclid(step) * step;
        let lookback_steps = (sig.lookback + step - 1) / step;
        let earliest = end - lookback_steps * step;
        let overlap = i64::from(sig.overlap_steps) * step;
        let start = match self.states[i].cursor {
            Some(c) => {
                // The clock stepped back (NTP after a fast start): waiting for it to pass the
                // cursor again would fetch nothing meanwhile, with health saying fresh.
                if c > end {
                    tracing::warn!(signal = %sig.name, cursor = c, now = end,
                        "the clock is behind the newest grid point fetched; fetching up to now");
                }
                (c.min(end) - overlap).max(earliest)
            }
            None => earliest,
        };
        let mut out = SignalPoll {
            signal: sig.name.clone(),
            range: None,
            requests: 0,
            retries: 0,
            appended: 0,
            replaced: 0,
            new_series: 0,
            dropped_series: 0,
            warnings: Vec::new(),
            error: None,
        };
        self.states[i].health.last_attempt = Some(now);
        if self.states[i].cursor == Some(end) {
            // Already fetched up to this grid point; nothing new can exist yet.
            self.finish(i, now);
            return out;
        }
        out.range = Some((start, end));
        let full = (SAMPLES_PER_REQUEST / self.states[i].series_hint.max(1) as i64)
            .max(60)
            .min(self.source.max_points().max(1));
        let mut chunk_start = start;
        let mut totals = IngestStats::default();
        let mut failure: Option<SourceError> = None;
        while chunk_start <= end {
            let per_chunk = (full >> self.states[i].chunk_halvings.min(32)).max(full.min(60));
            let chunk_end = (chunk_start + (per_chunk - 1) * step).min(end);
            match self
                .fetch_with_retry(i, &sig, chunk_start, chunk_end, budget, &mut out)
                .await
            {
                Ok(answer) => {
                    out.warnings.extend(answer.warnings);
                    let (stats, collisions) =
                        self.ingest(i, &sig, answer.data, (chunk_start, chunk_end));
                    self.states[i].stats.key_collisions += collisions;
                    self.states[i].cursor = Some(chunk_end);
                    totals.add(&stats);
                }
                Err(e) => {
                    let points = (chunk_end - chunk_start) / step + 1;
                    // Only a failure about the chunk's weight says smaller chunks would pass: a
                    // refused connection or a 503 while the store restarts does not.
                    if points > 60 && e.heavy() {
                        // At most half this chunk next, even when the range was shorter than
                        // the chunk size (halving a size the range never filled does nothing).
                        let h = &mut self.states[i].chunk_halvings;
                        *h += 1;
                        while *h < 32 && (full >> *h) > points / 2 {
                            *h += 1;
                        }
                        // Refused for its size: half the range is tried now, as an answer
                        // over the limit was refused without waiting for a timeout.
                        if e.too_large() {
                            tracing::info!(signal = %sig.name, error = %e, "answer too large; halving the range");
                            continue;
                        }
                    }
                    failure = Some(e);
                    break;
                }
            }
            chunk_start = chunk_end + step;
        }
        out.appended = totals.appended;
        out.replaced = totals.replaced;
        out.new_series = totals.new_series;
        let st = &mut self.states[i].stats;
        st.points_appended += totals.appended as u64;
        st.points_replaced += totals.replaced as u64;
        st.series_added += totals.new_series as u64;
        st.series_refused += totals.refused_series as u64;
        st.series_dropped += totals.evicted_series as u64;
        if totals.refused_series > 0 {
            tracing::warn!(signal = %sig.name, refused = totals.refused_series, max_series = sig.max_series,
                "signal is at max_series; new series refused");
        }
        for w in &out.warnings {
            tracing::warn!(signal = %sig.name, warning = %w, "source warning");
        }
        match failure {
            None => {
                let st = &mut self.states[i];
                st.health.last_success = Some(now);
                st.health.consecutive_failures = 0;
                st.health.last_error = None;
                st.series_hint = st.series_hint.max(self.store.signals()[i].len());
                if drop {
                    let dropped = self.store.signal_at_mut(i).drop_vanished(now);
                    out.dropped_series = dropped;
                    self.states[i].stats.series_dropped += dropped as u64;
                    if dropped > 0 {
                        tracing::info!(signal = %sig.name, dropped, "vanished series dropped");
                    }
                }
            }
            Some(e) => {
                let text = e.to_string();
                tracing::warn!(signal = %sig.name, kind = e.kind(), error = %text, "fetch failed; keeping what is held");
                let st = &mut self.states[i];
                st.stats.failed_polls += 1;
                st.health.consecutive_failures += 1;
                st.health.last_error = Some(text.clone());
                out.error = Some(text);
                if !e.is_retryable() {
                    st.health.consecutive_failures =
                        st.health.consecutive_failures.max(DOWN_AFTER_FAILURES);
                }
            }
        }
        self.finish(i, now);
        out
    }

    /// Updates staleness and the health state after a poll of signal `i`.
    fn finish(&mut self, i: usize, now: i64) {
        let sig = &self.signals[i];
        let store = self.store.signal_at_mut(i);
        let stale = store.mark_stale(now);
        let newest = store.newest_sample();
        let h = &mut self.states[i].health;
        h.series = store.len();
        h.stale_series = stale;
        h.data_age = newest.map(|t| now - t);
        let data_stale = h.data_age.is_some_and(|a| a > sig.stale_after);
        h.state = if h.last_success.is_none() || h.consecutive_failures >= DOWN_AFTER_FAILURES {
            HealthState::Down
        } else if h.consecutive_failures > 0 {
            if data_stale {
                HealthState::Down
            } else {
                HealthState::Degraded
            }
        } else if data_stale {
            HealthState::Degraded
        } else {
            HealthState::Healthy
        };
    }

    async fn fetch_with_retry(
        &mut self,
        i: usize,
        sig: &SignalConfig,
        start: i64,
        end: i64,
        budget: Option<Duration>,
        out: &mut SignalPoll,
    ) -> Result<Answer<Vec<RangeSeries>>, SourceError> {
        let mut backoff = Backoff::new(self.retry);
        let mut slept = Duration::ZERO;
        let mut attempt = 1;
        loop {
            out.requests += 1;
            self.states[i].stats.requests += 1;
            match self.source.fetch(sig, start, end).await {
                Ok(a) => return Ok(a),
                Err(e) => {
                    self.states[i].stats.request_failures += 1;
                    let delay = backoff.next_delay(&mut self.rng);
                    let over_budget = budget.is_some_and(|b| slept + delay > b);
                    if !e.is_retryable() || attempt >= self.retry.max_attempts || over_budget {
                        return Err(e);
                    }
                    tracing::debug!(signal = %sig.name, error = %e, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                    slept += delay;
                    attempt += 1;
                    out.retries += 1;
                    self.states[i].stats.retries += 1;
                }
            }
        }
    }

    /// Stores one answer to a query over `range`; returns the counts and how many series
    /// collided on a key. Points outside the range (by more than a step) are dropped: Prometheus
    /// never sends them, and one sample dated 1e300 from a broken proxy would otherwise become
    /// the ring's newest slot and make every real sample after it "too old".
    fn ingest(
        &mut self,
        i: usize,
        sig: &SignalConfig,
        data: Vec<RangeSeries>,
        range: (i64, i64),
    ) -> (IngestStats, u64) {
        let (lo, hi) = (
            range.0.saturating_sub(sig.step) as f64,
            range.1.saturating_add(sig.step) as f64,
        );
        let mut stats = IngestStats::default();
        let mut seen: HashSet<SeriesKey, SeriesHasher> =
            HashSet::with_capacity_and_hasher(data.len(), SeriesHasher::default());
        let mut collisions = 0;
        let store = self.store.signal_at_mut(i);
        for rs in data {
            let key = series_key(sig, &rs.metric);
            if !seen.insert(key.clone()) {
                collisions += 1;
                tracing::warn!(signal = %sig.name, key = %key,
                    "two series share this key; add the label that tells them apart to series_labels");
                continue;
            }
            let points = rs
                .values
                .iter()
                .filter(|p| (lo..=hi).contains(&p.ts))
                .map(|p| (p.ts.round() as i64, p.value));
            stats.add(&store.ingest(key, points));
        }
        (stats, collisions)
    }

    /// Writes every signal's buffers to `dir/<signal>.csv` (long format, atomically), the
    /// format `prescale train --history` reads. Returns the files written.
    pub fn export_csv(&self, dir: &Path) -> Result<Vec<PathBuf>, CollectError> {
        export_csv(&self.store, dir)
    }

    /// Polls on the step grid until `shutdown` turns true (or its sender is dropped):
    /// backfills first unless that was done, then wakes shortly after each grid point of the smallest step, calls
    /// [`Collector::poll`] with the wall clock, and hands each report to `on_poll`.
    pub async fn run(
        &mut self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        mut on_poll: impl FnMut(&PollReport, &Store),
    ) {
        if *shutdown.borrow() {
            return;
        }
        if self.states.iter().all(|s| s.cursor.is_none()) {
            let report = self.backfill(unix_now()).await;
            on_poll(&report, &self.store);
        }
        let step = self.signals.iter().map(|s| s.step).min().unwrap_or(60);
        // Wake a little after the grid point so the newest step has been scraped.
        let delay = Duration::from_secs_f64((step as f64 / 10.0).min(5.0));
        loop {
            let now = unix_now_f64();
            let next = ((now / step as f64).floor() + 1.0) * step as f64;
            let sleep = Duration::from_secs_f64((next - now).max(0.0)) + delay;
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                    continue;
                }
            }
            let report = self.poll(unix_now()).await;
            on_poll(&report, &self.store);
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// One start-up check of `sig`: its series count now; warnings are logged.
async fn check_signal<S: Source>(
    source: &S,
    sig: &SignalConfig,
    now: i64,
) -> Result<usize, SourceError> {
    let a = source.check(sig, now).await?;
    for w in &a.warnings {
        tracing::warn!(signal = %sig.name, warning = %w, "source warning");
    }
    tracing::info!(signal = %sig.name, series = a.data, source = %source.describe(), "signal checked");
    Ok(a.data)
}

/// A series' key: the signal name and the `series_labels` of its labels (all but `__name__`
/// when none are configured).
pub fn series_key(sig: &SignalConfig, metric: &BTreeMap<String, String>) -> SeriesKey {
    if sig.series_labels.is_empty() {
        let labels = metric.iter().filter(|(k, _)| k.as_str() != "__name__");
        SeriesKey::from_sorted_labels(&sig.name, labels.map(|(k, v)| (k.as_str(), v.as_str())))
    } else {
        let labels: BTreeMap<&str, &str> = sig
            .series_labels
            .iter()
            .filter_map(|l| {
                metric
                    .get_key_value(l)
                    .map(|(k, v)| (k.as_str(), v.as_str()))
            })
            .collect();
        SeriesKey::from_sorted_labels(&sig.name, labels)
    }
}

/// Writes each signal of `store` to `dir/<signal>.csv`.
pub fn export_csv(store: &Store, dir: &Path) -> Result<Vec<PathBuf>, CollectError> {
    let mut written = Vec::new();
    for s in store.signals() {
        let path = dir.join(format!("{}.csv", s.name()));
        write_long_csv(&path, &s.to_series()).map_err(|error| CollectError::Export {
            path: path.clone(),
            error,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Wall-clock Unix seconds.
pub fn unix_now() -> i64 {
    unix_now_f64().floor() as i64
}

fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests;
