//! Forecasting in the live loop: every series on the model's step, read from the collector's
//! rings, forecast in one parallel batch; the accuracy tracker fed what arrived since the last
//! cycle; and each series' cold-start stage (`stages`) deciding which forecast the planner
//! sees.

use super::state::Loop;
use crate::collect::{Collector, HealthState, Source};
use crate::forecast::{Forecast, StageView};
use crate::plan::WorkloadSpec;
use crate::series::{Ring, SeriesKey, SeriesMap};
use std::collections::HashSet;

/// One cycle's forecasts, as the planner and the exporter read them.
pub(super) struct Forecasts {
    /// Per series a workload plans with: the forecast the planner uses (if one could be made;
    /// widened while the history is short) and its newest finite value.
    pub(super) by_key: SeriesMap<(Option<Forecast>, Option<f64>)>,
    /// Per series a workload plans with: its cold-start stage.
    pub(super) views: SeriesMap<StageView>,
    /// Every forecast made, with its series' newest value, in the order forecast.
    pub(super) made: Vec<(Forecast, Option<f64>)>,
    /// Series whose data are stale: old, marked stale by the store, or of an unhealthy signal.
    pub(super) stale: HashSet<SeriesKey>,
    /// Per series that needs it ([`planned_series`](super::state::planned_series)): the forecast
    /// before its online correction (what `max_short` workloads plan with, see
    /// [`Forecasts::for_workload`]).
    pub(super) raw: SeriesMap<Forecast>,
}

impl Forecasts {
    /// The forecast `spec` plans with (if one could be made) and its series' newest value.
    ///
    /// A workload with a short-step budget (`max_short`) plans on the model's forecast *before*
    /// the online correction, widened for cold start alike: its risk margin is already
    /// calibrated online, on the short steps themselves, at the very level the correction
    /// would move. Two controllers integrating the same misses overshoot: in replay
    /// (`simulate --max-short 1%`, 17 shared traces, README "Online calibration") both
    /// stacked met the budget but cost more on 12 of 17 traces (up to 6 %) than the margin
    /// alone, which met it too.
    pub(super) fn for_workload(&self, spec: &WorkloadSpec) -> (Option<Forecast>, Option<f64>) {
        let Some((planned, current)) = self.by_key.get(&spec.demand) else {
            return (None, None);
        };
        if spec.max_short.is_some() {
            if let (Some(raw), Some(view)) =
                (self.raw.get(&spec.demand), self.views.get(&spec.demand))
            {
                return (Some(super::stages::widened(raw, view.widen)), *current);
            }
        }
        (planned.clone(), *current)
    }
}

/// What forecasting reads for one series: its key and its ring, read in place (at 100,000
/// series, a copy of every series' newest week each cycle was most of a cycle's memory traffic).
pub(super) type Input<'a> = (&'a SeriesKey, &'a Ring);

impl Loop {
    /// Forecasts every series on the model's step (the exporter shows them all) in one
    /// parallel batch; workloads then pick theirs.
    pub(super) fn forecast<S: Source>(&mut self, collector: &Collector<S>, now: i64) -> Forecasts {
        let (inputs, fresh, stale) = self.inputs(collector, now);
        let predicted = self.model.forecast_rings(&inputs);
        let staged = self.staged(&inputs, predicted);
        let need = self.model.spec.history_needed();
        let planned_n = self.planned_series.len();
        let mut by_key = SeriesMap::with_capacity_and_hasher(planned_n, Default::default());
        let mut made = Vec::with_capacity(inputs.len());
        let mut views = SeriesMap::with_capacity_and_hasher(planned_n, Default::default());
        let mut raw = SeriesMap::with_capacity_and_hasher(planned_n, Default::default());
        for ((&(key, ring), (f, view)), &fresh) in inputs.iter().zip(staged).zip(&fresh) {
            let current = newest_finite(ring, need);
            // Whether a workload plans with this series, and keeps its uncorrected forecast.
            let planned = self.planned_series.get(key).copied();
            if let Some(f) = f.as_ref().filter(|_| planned == Some(true)) {
                raw.insert(key.clone(), f.clone());
            }
            // What arrived since the last cycle, to each tracker just before this series'
            // forecast is corrected and recorded: one look-up of its state in each a cycle.
            // The correction is part of the forecaster: scored, exported and planned with.
            let f = self
                .series
                .online
                .update(key, fresh_samples(ring, fresh), f);
            // Scored and exported as the model made it; only the planner sees the margin.
            self.series
                .accuracy
                .update(key, fresh_samples(ring, fresh), f.as_ref());
            if planned.is_some() {
                let widened = f.as_ref().map(|f| super::stages::widened(f, view.widen));
                by_key.insert(key.clone(), (widened, current));
                views.insert(key.clone(), view);
            }
            if let Some(f) = f {
                made.push((f, current));
            }
        }
        Forecasts {
            by_key,
            made,
            stale,
            views,
            raw,
        }
    }

    /// Every non-empty series on the model's step, with the slots that arrived since the last
    /// cycle (what the accuracy tracker and the online calibration have not seen), and notes
    /// which series are stale.
    fn inputs<'c, S: Source>(
        &mut self,
        collector: &'c Collector<S>,
        now: i64,
    ) -> (Vec<Input<'c>>, Vec<Fresh>, HashSet<SeriesKey>) {
        let step = self.model.spec.step;
        let need = self.model.spec.history_needed();
        let mut inputs = Vec::new();
        let mut fresh = Vec::new();
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
                // The newest `need` slots (what forecasting reads), from the first newer than
                // what the tracker has seen.
                let len = need.min(ring.len()) as i64;
                let start = newest - (len - 1) * ring.step();
                // One look-up: what was seen, replaced by what is newest now.
                let seen = match self.series.observed.get_mut(key) {
                    Some(s) => std::mem::replace(s, newest),
                    None => {
                        self.series.observed.insert(key.clone(), newest);
                        i64::MIN
                    }
                };
                let first = if seen < start {
                    0
                } else {
                    (seen - start) / ring.step() + 1
                };
                fresh.push((start + first * ring.step(), (len - first).max(0)));
                if entry.is_stale() || !signal_ok || now - newest > 3 * ring.step() {
                    stale.insert(key.clone());
                }
                inputs.push((key, ring));
            }
        }
        (inputs, fresh, stale)
    }
}

/// The slots of a series new this cycle: the first one's timestamp and how many.
type Fresh = (i64, i64);

/// The finite samples among `ring`'s `fresh` slots, in time order.
fn fresh_samples(ring: &Ring, (first, count): Fresh) -> impl Iterator<Item = (i64, f64)> + '_ {
    let step = ring.step();
    (0..count).filter_map(move |k| {
        let ts = first + k * step;
        ring.get(ts).filter(|v| v.is_finite()).map(|v| (ts, v))
    })
}

/// The newest finite value among `ring`'s newest `need` slots.
fn newest_finite(ring: &Ring, need: usize) -> Option<f64> {
    let newest = ring.newest_timestamp()?;
    (0..need.min(ring.len()) as i64)
        .map(|k| ring.get(newest - k * ring.step()))
        .find_map(|v| v.filter(|v| v.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::super::state::planned_series;
    use super::*;

    /// Every workload's demand series is planned with; a budget's raw forecast is kept always,
    /// every workload's with the correction on; nothing else is in the map.
    #[test]
    fn raw_forecasts_are_kept_for_what_reads_them() {
        let mut api = WorkloadSpec::new("api", "rps{service=\"api\"}", 10.0, 20);
        api.max_short = Some(0.01);
        let web = WorkloadSpec::new("web", "rps{service=\"web\"}", 10.0, 20);
        // A canary reading api's series, without a budget (listed after it and before it).
        let canary = WorkloadSpec::new("canary", "rps{service=\"api\"}", 10.0, 20);
        let planned = |all: &[WorkloadSpec], online| {
            let mut v: Vec<(String, bool)> = planned_series(all, online)
                .into_iter()
                .map(|(k, raw)| (k.as_str().to_string(), raw))
                .collect();
            v.sort();
            v
        };
        let (a, w) = (
            api.demand.as_str().to_string(),
            web.demand.as_str().to_string(),
        );
        for all in [
            [api.clone(), web.clone(), canary.clone()],
            [canary.clone(), web.clone(), api.clone()],
        ] {
            assert_eq!(
                planned(&all, false),
                [(a.clone(), true), (w.clone(), false)]
            );
            assert_eq!(planned(&all, true), [(a.clone(), true), (w.clone(), true)]);
        }
        assert_eq!(planned(&[web], false), [(w, false)]);
    }
}
