//! Forecasting in the live loop: every series on the model's step, read from the collector's
//! rings, forecast in one parallel batch; the accuracy tracker fed what arrived since the last
//! cycle; and each series' cold-start stage (`stages`) deciding which forecast the planner
//! sees.

use super::state::Loop;
use crate::collect::{Collector, HealthState, Source};
use crate::forecast::{Forecast, StageView};
use crate::series::SeriesKey;
use std::collections::{HashMap, HashSet};

/// One cycle's forecasts, as the planner and the exporter read them.
pub(super) struct Forecasts {
    /// Per series: the forecast the planner uses (if one could be made; widened while the
    /// history is short) and its newest finite value.
    pub(super) by_key: HashMap<SeriesKey, (Option<Forecast>, Option<f64>)>,
    /// Per series: its cold-start stage.
    pub(super) views: HashMap<SeriesKey, StageView>,
    /// Every forecast made, with its series' newest value, in the order forecast.
    pub(super) made: Vec<(Forecast, Option<f64>)>,
    /// Series whose data are stale: old, marked stale by the store, or of an unhealthy signal.
    pub(super) stale: HashSet<SeriesKey>,
}

/// What forecasting takes for one series: its key, its newest values and their first timestamp.
pub(super) type Input = (SeriesKey, Vec<f64>, i64);

impl Loop {
    /// Forecasts every series on the model's step (the exporter shows them all) in one
    /// parallel batch; workloads then pick theirs.
    pub(super) fn forecast<S: Source>(&mut self, collector: &Collector<S>, now: i64) -> Forecasts {
        let (inputs, stale) = self.inputs(collector, now);
        let predicted = self.model.forecast_many(&inputs);
        let staged = self.staged(collector, &inputs, predicted);
        let mut by_key = HashMap::with_capacity(inputs.len());
        let mut made = Vec::with_capacity(inputs.len());
        let mut views = HashMap::with_capacity(inputs.len());
        for ((key, values, _), (f, view)) in inputs.iter().zip(staged) {
            let current = values.iter().rev().find(|v| v.is_finite()).copied();
            // Scored and exported as the model made it; only the planner sees the margin.
            if let Some(f) = &f {
                self.accuracy.record(f);
                made.push((f.clone(), current));
            }
            let planned = f.map(|f| super::stages::widened(&f, view.widen));
            by_key.insert(key.clone(), (planned, current));
            views.insert(key.clone(), view);
        }
        Forecasts {
            by_key,
            made,
            stale,
            views,
        }
    }

    /// Copies the newest values of every series on the model's step, feeding the accuracy
    /// tracker what arrived since last cycle, and notes which series are stale.
    fn inputs<S: Source>(
        &mut self,
        collector: &Collector<S>,
        now: i64,
    ) -> (Vec<Input>, HashSet<SeriesKey>) {
        let step = self.model.spec.step;
        let need = self.model.spec.history_needed();
        let mut inputs = Vec::new();
        let mut stale = HashSet::new();
        for sig in collector
            .store()
            .signals()
            .iter()
            .filter(|s| s.step() == step)
        {
            let signal_ok = collector
                .health(sig.name())
                .is_some_and(|h| h.state == HealthState::Healthy);
            for (key, entry) in sig.iter() {
                let ring = entry.ring();
                let Some(newest) = ring.newest_timestamp() else {
                    continue;
                };
                let values = ring.tail(need);
                let start = newest - (values.len() as i64 - 1) * ring.step();
                let seen = self.observed.get(key).copied().unwrap_or(i64::MIN);
                for (k, v) in values.iter().enumerate() {
                    let ts = start + k as i64 * ring.step();
                    if ts > seen && v.is_finite() {
                        self.accuracy.observe(key, ts, *v);
                    }
                }
                self.observed.insert(key.clone(), newest);
                if entry.is_stale() || !signal_ok || now - newest > 3 * ring.step() {
                    stale.insert(key.clone());
                }
                inputs.push((key.clone(), values, start));
            }
        }
        (inputs, stale)
    }
}
