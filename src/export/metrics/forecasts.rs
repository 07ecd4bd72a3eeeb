//! The forecast stage's families: each series' forecast quantiles, the window they cover and
//! the value observed beside them, and how well past forecasts did (WAPE, p90 coverage,
//! forecasts scored). Per series, as the forecaster works per series, not per workload.
//!
//! # Why a collector, not families
//!
//! These six families have a label set per series, 100,000 of them at the scale target. As
//! `Family`s, every cycle built each series' label set once per family, looked it up in the
//! family's map, put it in a set of those seen and diffed that set against the last cycle's to
//! remove the series gone: at 100,000 series that was 2.5 s of a 6.5 s loop cycle
//! (`benches/loop_cycle.rs`), and a scrape walked six maps of them. Here a cycle keeps the
//! snapshot's rows, each series' label set built once ([`Rows::of`]) and kept from one cycle to
//! the next while the series is; a scrape encodes from the latest rows, so a series gone from
//! the snapshot is gone from `/metrics` with nothing to remove.

use super::labels::{series_labels, SeriesLabels};
use crate::export::snapshot::{AccuracySample, ForecastSample, SeriesId};
use crate::series::SeriesHasher;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeLabelValue, EncodeMetric,
    LabelSetEncoder, LabelValueEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The per-series families, encoded at each scrape from the rows of the latest snapshot.
/// Clones share the rows: one is registered, the other updated.
#[derive(Debug, Clone, Default)]
pub(super) struct SeriesFamilies {
    latest: Arc<Mutex<Arc<Rows>>>,
}

/// One snapshot's per-series rows, as a scrape encodes them.
#[derive(Debug, Default)]
pub(super) struct Rows {
    forecasts: Vec<ForecastRow>,
    accuracy: Vec<AccuracyRow>,
}

#[derive(Debug)]
struct ForecastRow {
    id: SeriesId,
    labels: Arc<SeriesLabels>,
    window_seconds: f64,
    quantiles: Vec<(f64, f64)>,
    observed: Option<f64>,
}

#[derive(Debug)]
struct AccuracyRow {
    id: SeriesId,
    labels: Arc<SeriesLabels>,
    wape: Option<f64>,
    coverage_p90: Option<f64>,
    scored: u64,
}

impl Rows {
    /// The rows of a snapshot's forecasts and accuracy. Each series' label set is built once
    /// and kept while the loop hands the series the same id (it makes one per series): at
    /// 100,000 series, building them afresh twice a cycle and deduplicating them was a sixth
    /// of the loop's cycle.
    ///
    /// In the usual cycle a list names the same series in the same order as `previous` (the
    /// last snapshot's rows): its rows take their label sets by position, and need no
    /// deduplication, as `previous` had none. Otherwise label sets are found by id, shared
    /// between a series' forecast and accuracy rows, and the list is deduplicated.
    pub(super) fn of(
        forecasts: &[ForecastSample],
        accuracy: &[AccuracySample],
        previous: &Rows,
    ) -> Rows {
        let mut known = Known {
            previous,
            by_id: None,
        };
        let forecasts = rows(
            &previous.forecasts,
            forecasts,
            |f| &f.series,
            &mut known,
            |f, labels| ForecastRow {
                id: f.series.clone(),
                labels,
                window_seconds: f.window_seconds,
                quantiles: f.quantiles.clone(),
                observed: f.observed,
            },
        );
        let accuracy = rows(
            &previous.accuracy,
            accuracy,
            |a| &a.series,
            &mut known,
            |a, labels| AccuracyRow {
                id: a.series.clone(),
                labels,
                wape: a.wape,
                coverage_p90: a.coverage_p90,
                scored: a.scored,
            },
        );
        Rows {
            forecasts,
            accuracy,
        }
    }
}

/// Label sets by the identity of their series' id (see [`SeriesId`]), from the previous rows
/// and those built this snapshot; filled only when a list is not the previous one's.
struct Known<'a> {
    previous: &'a Rows,
    by_id: Option<HashMap<*const (), Arc<SeriesLabels>, SeriesHasher>>,
}

impl Known<'_> {
    fn labels(&mut self, id: &SeriesId) -> Arc<SeriesLabels> {
        let previous = self.previous;
        let by_id = self.by_id.get_or_insert_with(|| {
            // The previous rows hold their ids, so no other live id has one's identity.
            let before = (previous.forecasts.iter().map(|r| (&r.id, &r.labels)))
                .chain(previous.accuracy.iter().map(|r| (&r.id, &r.labels)));
            before
                .map(|(id, labels)| (id.identity(), Arc::clone(labels)))
                .collect()
        });
        Arc::clone(
            by_id
                .entry(id.identity())
                .or_insert_with(|| Arc::new(series_labels(id))),
        )
    }
}

/// A row of one of the per-series lists.
trait Row {
    fn id(&self) -> &SeriesId;
    fn labels(&self) -> &Arc<SeriesLabels>;
}

impl Row for ForecastRow {
    fn id(&self) -> &SeriesId {
        &self.id
    }
    fn labels(&self) -> &Arc<SeriesLabels> {
        &self.labels
    }
}

impl Row for AccuracyRow {
    fn id(&self) -> &SeriesId {
        &self.id
    }
    fn labels(&self) -> &Arc<SeriesLabels> {
        &self.labels
    }
}

/// One list's rows, made by `row` from each sample and its series' label set.
fn rows<R: Row, S>(
    previous: &[R],
    samples: &[S],
    sample_id: impl Fn(&S) -> &SeriesId,
    known: &mut Known<'_>,
    row: impl Fn(&S, Arc<SeriesLabels>) -> R,
) -> Vec<R> {
    let same = previous.len() == samples.len()
        && previous
            .iter()
            .zip(samples)
            .all(|(r, s)| r.id().identity() == sample_id(s).identity());
    if same {
        return previous
            .iter()
            .zip(samples)
            .map(|(r, s)| row(s, Arc::clone(r.labels())))
            .collect();
    }
    let made = samples
        .iter()
        .map(|s| row(s, known.labels(sample_id(s))))
        .collect();
    dedup(made, |r: &R| r.labels().as_ref())
}

impl SeriesFamilies {
    /// Makes `rows` what the next scrapes encode, and hands back the rows they replace, for
    /// the caller to drop where no scrape waits on it.
    pub(super) fn replace(&self, rows: Rows) -> Arc<Rows> {
        std::mem::replace(&mut *self.lock(), Arc::new(rows))
    }

    /// The rows the next scrape encodes (until replaced).
    pub(super) fn latest(&self) -> Arc<Rows> {
        Arc::clone(&self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<Rows>> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A row per label set, the last one where two series map to the same labels (names made
/// valid can meet, e.g. `a-b` and `a_b`): Prometheus refuses a whole scrape with one sample
/// twice, and a family kept the last value too. The map borrows the label sets, so the
/// common case (no two alike) copies nothing.
fn dedup<R>(rows: Vec<R>, labels: impl Fn(&R) -> &SeriesLabels) -> Vec<R> {
    let keep = {
        let mut last: HashMap<&SeriesLabels, usize, SeriesHasher> =
            HashMap::with_capacity_and_hasher(rows.len(), SeriesHasher::default());
        for (i, r) in rows.iter().enumerate() {
            last.insert(labels(r), i);
        }
        if last.len() == rows.len() {
            return rows;
        }
        let mut keep = vec![false; rows.len()];
        for &i in last.values() {
            keep[i] = true;
        }
        keep
    };
    rows.into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

impl Collector for SeriesFamilies {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = Arc::clone(&self.lock());
        let gauge = MetricType::Gauge;
        {
            let mut m = enc.encode_descriptor(
                "forecast",
                "Forecast peak of a series over the next window at a quantile level (label level), in the series' units",
                None,
                gauge,
            )?;
            for r in &rows.forecasts {
                for &(level, value) in &r.quantiles {
                    let labels = WithLevel(&r.labels, level);
                    ConstGauge::new(value).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "forecast_window",
                "Length of the window a series' forecast covers",
                Some(&Unit::Seconds),
                gauge,
            )?;
            for r in &rows.forecasts {
                ConstGauge::new(r.window_seconds).encode(m.encode_family(r.labels.as_ref())?)?;
            }
        }
        gauges(
            &mut enc,
            "observed_demand",
            "Latest collected value of a series, in the series' units",
            rows.forecasts
                .iter()
                .map(|r| (r.labels.as_ref(), r.observed)),
        )?;
        gauges(
            &mut enc,
            "forecast_wape",
            "Rolling weighted absolute percentage error of a series' median forecast (0.1 = 10%)",
            rows.accuracy.iter().map(|r| (r.labels.as_ref(), r.wape)),
        )?;
        gauges(
            &mut enc,
            "forecast_p90_coverage",
            "Rolling fraction of a series' windows whose actual peak was at or below the p90 forecast",
            rows.accuracy.iter().map(|r| (r.labels.as_ref(), r.coverage_p90)),
        )?;
        let mut m = enc.encode_descriptor(
            "forecasts_scored",
            "Forecasts of a series scored against what happened",
            None,
            MetricType::Counter,
        )?;
        // The tracker owns the count; mirroring it (rather than adding deltas) keeps the two
        // equal, and a tracker restart shows up as the counter reset Prometheus expects.
        for r in &rows.accuracy {
            ConstCounter::new(r.scored).encode(m.encode_family(r.labels.as_ref())?)?;
        }
        Ok(())
    }
}

/// One gauge family, a sample per label set that has a value.
fn gauges<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (&'a SeriesLabels, Option<f64>)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in values {
        if let Some(v) = v {
            ConstGauge::new(v).encode(m.encode_family(labels)?)?;
        }
    }
    Ok(())
}

/// A series' labels and `level`, without copying the series' labels per level.
struct WithLevel<'a>(&'a SeriesLabels, f64);

impl EncodeLabelSet for WithLevel<'_> {
    fn encode(&self, mut enc: LabelSetEncoder) -> Result<(), std::fmt::Error> {
        for label in self.0 {
            label.encode(enc.encode_label())?;
        }
        ("level", Level(self.1)).encode(enc.encode_label())
    }
}

/// `0.9` → `"0.9"`, `0.5` → `"0.5"`: Rust's shortest round-trip form, which is also what a
/// person types in PromQL (`level="0.9"`).
struct Level(f64);

impl EncodeLabelValue for Level {
    fn encode(&self, enc: &mut LabelValueEncoder) -> std::fmt::Result {
        use std::fmt::Write;
        write!(enc, "{}", self.0)
    }
}
