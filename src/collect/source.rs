//! Where samples come from: the [`Source`] seam. The live loop and the offline demo differ only
//! in the source they hand the [`Collector`](super::Collector): [`PrometheusSource`] or
//! [`Replay`] of CSV history.

use super::config::{PrometheusConfig, SignalConfig};
use super::prometheus::{Answer, Point, PromClient, PromError, QueryData, RangeSeries};
use crate::series::{read_history, CsvError, HistoryOptions, Series};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

/// A failed fetch, from whichever source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// From Prometheus.
    #[error(transparent)]
    Prometheus(#[from] PromError),
    /// From a replay: the signal has no data.
    #[error("replay: {0}")]
    Replay(String),
}

impl SourceError {
    /// Whether trying again can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::Prometheus(e) => e.is_retryable(),
            SourceError::Replay(_) => false,
        }
    }

    /// Whether the answer was refused for its size: a shorter range may pass at once.
    pub fn too_large(&self) -> bool {
        matches!(self, SourceError::Prometheus(PromError::TooLarge { .. }))
    }

    /// Whether the failure was about the weight of what was asked
    /// ([`PromError::is_heavy`]): a shorter range may pass.
    pub fn heavy(&self) -> bool {
        matches!(self, SourceError::Prometheus(e) if e.is_heavy())
    }

    /// A short machine-readable kind, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::Prometheus(e) => e.kind(),
            SourceError::Replay(_) => "replay",
        }
    }
}

/// A source of fixed-step samples for configured signals.
///
/// Futures are `Send` so a collector can run on a multi-threaded runtime.
pub trait Source {
    /// Checks at start-up that `signal` can be fetched at all (Prometheus: an instant query,
    /// which is where it reports a PromQL syntax error). Returns the number of series the
    /// query has now, used to size backfill chunks, and any warnings.
    fn check(
        &self,
        signal: &SignalConfig,
        now: i64,
    ) -> impl Future<Output = Result<Answer<usize>, SourceError>> + Send;

    /// The signal's series on the grid `start, start + step, ..., end` (Unix seconds; both
    /// multiples of the signal's step; at most [`Source::max_points`] points). A series with no
    /// sample at a grid point simply lacks that point.
    fn fetch(
        &self,
        signal: &SignalConfig,
        start: i64,
        end: i64,
    ) -> impl Future<Output = Result<Answer<Vec<RangeSeries>>, SourceError>> + Send;

    /// Most grid points per series one [`Source::fetch`] may ask for.
    fn max_points(&self) -> i64;

    /// Where the data comes from, for logs (never with secrets).
    fn describe(&self) -> String;
}

/// Prometheus over its HTTP API.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    client: PromClient,
}

impl PrometheusSource {
    /// A source for the configured server (no request is made yet).
    pub fn new(cfg: &PrometheusConfig) -> Result<Self, PromError> {
        Ok(PrometheusSource {
            client: PromClient::new(cfg)?,
        })
    }

    /// The underlying client, for ad-hoc queries.
    pub fn client(&self) -> &PromClient {
        &self.client
    }
}

impl Source for PrometheusSource {
    async fn check(&self, signal: &SignalConfig, now: i64) -> Result<Answer<usize>, SourceError> {
        let a = self.client.query(&signal.query, Some(now)).await?;
        let n = match a.data {
            QueryData::Vector(v) => v.len(),
            QueryData::Scalar(_) => 1,
            QueryData::Matrix(_) | QueryData::String(_) => {
                // A range selector like `x[5m]` passes an instant query but every range query
                // would fail; say so now rather than at the first poll.
                return Err(SourceError::Prometheus(PromError::Api {
                    url: format!("{}/api/v1/query", self.client.base_url()),
                    status: 200,
                    error_type: "bad_data".into(),
                    message: "the query must give an instant vector or scalar (e.g. wrap a \
                              range selector in rate())"
                        .into(),
                }));
            }
        };
        Ok(Answer {
            data: n,
            warnings: a.warnings,
        })
    }

    async fn fetch(
        &self,
        signal: &SignalConfig,
        start: i64,
        end: i64,
    ) -> Result<Answer<Vec<RangeSeries>>, SourceError> {
        Ok(self
            .client
            .query_range(&signal.query, start, end, signal.step)
            .await?)
    }

    fn max_points(&self) -> i64 {
        // Below Prometheus' 11,000 to leave room for an inclusive end point.
        10_000
    }

    fn describe(&self) -> String {
        format!("Prometheus at {}", self.client.base_url())
    }
}

/// Replays CSV history as if it were a live source: each fetch answers with the recorded
/// values on the requested grid, so a collector polled with an accelerated clock sees the next
/// step's values on each poll.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    signals: BTreeMap<String, Vec<Series>>,
    offset: i64,
}

impl Replay {
    /// An empty replay; add signals with [`Replay::with_signal`].
    pub fn new() -> Self {
        Replay::default()
    }

    /// Replays `series` as signal `name`. Each series becomes one series of the signal with
    /// the label `series="<its key>"`.
    pub fn with_signal(mut self, name: &str, series: Vec<Series>) -> Self {
        self.signals.insert(name.to_string(), series);
        self
    }

    /// Reads CSV history (via [`read_history`], on `step`) for signal `name`.
    pub fn from_csv(name: &str, paths: &[PathBuf], step: i64) -> Result<Self, CsvError> {
        let (series, _) = read_history(
            paths,
            &HistoryOptions {
                step: Some(step),
                max_gap: None,
            },
        )?;
        Ok(Replay::new().with_signal(name, series))
    }

    /// Shifts every recorded timestamp by `secs`, e.g. to make old history end now.
    pub fn with_offset(mut self, secs: i64) -> Self {
        self.offset = secs;
        self
    }

    /// The recorded time span after the offset: `(first, last)` timestamp over all series.
    pub fn span(&self) -> Option<(i64, i64)> {
        let all = self.signals.values().flatten().filter(|s| !s.is_empty());
        let first = all.clone().map(|s| s.start).min()?;
        let last = all.map(|s| s.timestamp(s.len() - 1)).max()?;
        Some((first + self.offset, last + self.offset))
    }

    fn series_of(&self, signal: &SignalConfig) -> Result<&[Series], SourceError> {
        self.signals
            .get(&signal.name)
            .map(Vec::as_slice)
            .ok_or_else(|| SourceError::Replay(format!("no history for signal '{}'", signal.name)))
    }
}

impl Source for Replay {
    async fn check(&self, signal: &SignalConfig, _now: i64) -> Result<Answer<usize>, SourceError> {
        let n = self.series_of(signal)?.len();
        Ok(Answer {
            data: n,
            warnings: Vec::new(),
        })
    }

    async fn fetch(
        &self,
        signal: &SignalConfig,
        start: i64,
        end: i64,
    ) -> Result<Answer<Vec<RangeSeries>>, SourceError> {
        let step = signal.step.max(1);
        let mut out = Vec::new();
        for s in self.series_of(signal)? {
            let mut values = Vec::new();
            let mut t = start;
            while t <= end {
                // Nearest recorded step, if it lies within half a step of the grid point.
                let rel = t - self.offset - s.start;
                let i = (rel + s.step / 2).div_euclid(s.step.max(1));
                if i >= 0
                    && (i as usize) < s.len()
                    && (s.timestamp(i as usize) + self.offset - t).abs() * 2 <= step
                {
                    let v = s.values[i as usize];
                    if v.is_finite() {
                        values.push(Point {
                            ts: t as f64,
                            value: v,
                        });
                    }
                }
                t += step;
            }
            if !values.is_empty() {
                let mut metric = BTreeMap::new();
                metric.insert("series".to_string(), s.key.to_string());
                out.push(RangeSeries { metric, values });
            }
        }
        Ok(Answer {
            data: out,
            warnings: Vec::new(),
        })
    }

    fn max_points(&self) -> i64 {
        100_000
    }

    fn describe(&self) -> String {
        format!("replay of {} signal(s)", self.signals.len())
    }
}
