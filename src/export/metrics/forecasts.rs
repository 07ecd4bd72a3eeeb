//! The forecast stage's families: each series' forecast quantiles, the window they cover and
//! the value observed beside them, and how well past forecasts did (WAPE, p90 coverage,
//! forecasts scored). Per series, as the forecaster works per series, not per workload.

use super::labels::{series_labels, Lv, Seen};
use super::{set_each, sync, Metrics};
use crate::export::snapshot::{AccuracySample, ForecastSample};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

impl Metrics {
    /// Registers the forecasts' families: quantiles, window, observed value.
    pub(super) fn register_forecasts(&self, r: &mut Registry) {
        r.register(
            "forecast",
            "Forecast peak of a series over the next window at a quantile level (label level), in the series' units",
            self.forecast.clone(),
        );
        r.register_with_unit(
            "forecast_window",
            "Length of the window a series' forecast covers",
            Unit::Seconds,
            self.forecast_window.clone(),
        );
        r.register(
            "observed_demand",
            "Latest collected value of a series, in the series' units",
            self.observed.clone(),
        );
    }

    /// Registers the accuracy families: WAPE, p90 coverage, forecasts scored.
    pub(super) fn register_accuracy(&self, r: &mut Registry) {
        r.register(
            "forecast_wape",
            "Rolling weighted absolute percentage error of a series' median forecast (0.1 = 10%)",
            self.wape.clone(),
        );
        r.register(
            "forecast_p90_coverage",
            "Rolling fraction of a series' windows whose actual peak was at or below the p90 forecast",
            self.coverage.clone(),
        );
        r.register(
            "forecasts_scored",
            "Forecasts of a series scored against what happened",
            self.scored.clone(),
        );
    }

    /// Forecast quantiles, windows and the observed values beside them.
    pub(super) fn observe_forecasts(&self, forecasts: &[ForecastSample], seen: &mut Seen) {
        let mut now = HashSet::new();
        for f in forecasts {
            let series = series_labels(&f.series);
            for &(level, value) in &f.quantiles {
                let mut l = series.clone();
                l.push(("level".to_string(), Lv(level_label(level))));
                self.forecast.get_or_create(&l).set(value);
                now.insert(l);
            }
        }
        sync(&self.forecast, &mut seen.forecast, now);
        let now = set_each(
            &self.forecast_window,
            forecasts
                .iter()
                .map(|f| (series_labels(&f.series), f.window_seconds)),
        );
        sync(&self.forecast_window, &mut seen.window, now);
        let now = set_each(
            &self.observed,
            forecasts
                .iter()
                .filter_map(|f| f.observed.map(|v| (series_labels(&f.series), v))),
        );
        sync(&self.observed, &mut seen.observed, now);
    }

    /// Forecast accuracy per series.
    pub(super) fn observe_accuracy(&self, accuracy: &[AccuracySample], seen: &mut Seen) {
        let now = set_each(
            &self.wape,
            accuracy
                .iter()
                .filter_map(|a| a.wape.map(|v| (series_labels(&a.series), v))),
        );
        sync(&self.wape, &mut seen.wape, now);
        let now = set_each(
            &self.coverage,
            accuracy
                .iter()
                .filter_map(|a| a.coverage_p90.map(|v| (series_labels(&a.series), v))),
        );
        sync(&self.coverage, &mut seen.coverage, now);
        let mut now = HashSet::new();
        for a in accuracy {
            let l = series_labels(&a.series);
            // The tracker owns the count; mirroring it (rather than adding deltas) keeps the two
            // equal, and a tracker restart shows up as the counter reset Prometheus expects.
            self.scored
                .get_or_create(&l)
                .inner()
                .store(a.scored, Ordering::Relaxed);
            now.insert(l);
        }
        sync(&self.scored, &mut seen.scored, now);
    }
}

/// `0.9` → `"0.9"`, `0.5` → `"0.5"`: Rust's shortest round-trip form, which is also what a
/// person types in PromQL (`level="0.9"`).
fn level_label(level: f64) -> String {
    format!("{level}")
}
