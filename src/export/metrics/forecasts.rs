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
    /// The rows of a snapshot's forecasts and accuracy. Each series' label set is built once:
    /// taken from `previous` (the last snapshot's rows) when the series' id is the one it
    /// had there (the loop hands the same id to every snapshot), shared between a series'
    /// forecast and accuracy rows. At 100,000 series, building them afresh twice a cycle was
    /// a sixth of the loop's cycle.
    pub(super) fn of(
        forecasts: &[ForecastSample],
        accuracy: &[AccuracySample],
        previous: &Rows,
    ) -> Rows {
        // Keyed by the id's identity: `previous` holds those ids, so no other live id can
        // have the same, and one with the same identity is the same series.
        let mut known: HashMap<*const (), Arc<SeriesLabels>, SeriesHasher> =
            HashMap::with_capacity_and_hasher(
                forecasts.len().max(accuracy.len()),
                SeriesHasher::default(),
            );
        let before = (previous.forecasts.iter().map(|r| (&r.id, &r.labels)))
            .chain(previous.accuracy.iter().map(|r| (&r.id, &r.labels)));
        for (id, labels) in before {
            known.insert(id.identity(), Arc::clone(labels));
        }
        let mut labels = |id: &SeriesId| {
            Arc::clone(
                known
                    .entry(id.identity())
                    .or_insert_with(|| Arc::new(series_labels(id))),
            )
        };
        let forecasts = forecasts
            .iter()
            .map(|f| ForecastRow {
                id: f.series.clone(),
                labels: labels(&f.series),
                window_seconds: f.window_seconds,
                quantiles: f.quantiles.clone(),
                observed: f.observed,
            })
            .collect();
        let accuracy = accuracy
            .iter()
            .map(|a| AccuracyRow {
                id: a.series.clone(),
                labels: labels(&a.series),
                wape: a.wape,
                coverage_p90: a.coverage_p90,
                scored: a.scored,
            })
            .collect();
        Rows {
            forecasts: dedup(forecasts, |r| r.labels.as_ref()),
            accuracy: dedup(accuracy, |r| r.labels.as_ref()),
        }
    }
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
