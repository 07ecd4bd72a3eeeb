//! prescale's own policy: the live loop's planner, [`ReplicaPlanner`], fed at every simulated
//! step the forecast the model made at that step, with the [`AccuracyTracker`] scoring those
//! forecasts as the demand arrives, exactly as the live loop does, and (for a workload with
//! `max_short`) the [`RiskTracker`] told whether each step was short, so the margin it
//! provisions at is calibrated as live. Nothing of the planner is copied here: only the
//! inputs are assembled.

use super::error::ReplayError;
use super::setup::{Observation, Policy};
use super::workload::{Knobs, Workload};
use crate::forecast::Forecast;
use crate::plan::{
    AccuracyConfig, AccuracyTracker, ReplicaPlanner, RiskTracker, WorkloadInput, WorkloadSpec,
};
use crate::series::SeriesKey;

/// The planner-driven policy.
#[derive(Debug)]
pub struct Predictive<'a> {
    spec: WorkloadSpec,
    forecasts: &'a [Option<Forecast>],
    margin: Option<f64>,
    planner: ReplicaPlanner,
    tracker: AccuracyTracker,
    risk: RiskTracker,
}

impl<'a> Predictive<'a> {
    /// A policy planning `spec` with `forecasts[t]`, the forecast made at the end of step `t`,
    /// its quantiles multiplied by a fixed `margin` if one is given (see
    /// [`Knobs::forecast_margin`]).
    pub fn new(spec: WorkloadSpec, forecasts: &'a [Option<Forecast>], margin: Option<f64>) -> Self {
        Predictive {
            spec,
            forecasts,
            margin,
            planner: ReplicaPlanner::new(),
            tracker: AccuracyTracker::new(AccuracyConfig::default()),
            risk: RiskTracker::new(),
        }
    }
}

impl Policy for Predictive<'_> {
    fn name(&self) -> String {
        "predictive".into()
    }

    fn decide(&mut self, obs: &Observation) -> u32 {
        let demand = obs.demand.is_finite().then_some(obs.demand);
        if let Some(d) = demand {
            // Score the earlier forecasts whose windows this sample completes, before the new
            // forecast is weighed: the live loop sees samples before it plans too.
            self.tracker.observe(&self.spec.demand, obs.ts, d);
        }
        // The step just served: short if its demand exceeded what was ready in it.
        self.risk.observe(&self.spec, obs.ts, demand, obs.ready);
        let issued = self.forecasts.get(obs.t).and_then(Option::as_ref);
        // The accuracy tracker scores the model's own forecast; the margin is the policy's.
        if let Some(f) = issued {
            self.tracker.record(f);
        }
        let scaled = issued.zip(self.margin).map(|(f, m)| Forecast {
            quantiles: f.quantiles.iter().map(|&(l, v)| (l, v * m)).collect(),
            ..f.clone()
        });
        let forecast = scaled.as_ref().or(issued);
        // For the decisions' reasons only: the planner counts every forecast in full.
        let forecast_weight = self.tracker.weight(&self.spec.demand);
        let input = WorkloadInput {
            now: obs.ts,
            current_replicas: obs.provisioned,
            current_demand: demand,
            forecast,
            // A gap in the trace is what stale data looks like live: no scale-down on it.
            data_stale: demand.is_none(),
            model_healthy: true,
            forecast_weight,
            risk: self.risk.level(&self.spec),
        };
        self.planner.plan(&self.spec, &input).to
    }
}

/// The workload as the planner sees it: the replayed workload `w` (whose demand is the series
/// `key`) with the sweep's knobs.
pub fn spec(w: &Workload, key: &SeriesKey, knobs: &Knobs) -> WorkloadSpec {
    let mut spec = match &w.spec {
        Some(s) => s.clone(),
        None => WorkloadSpec::new(&w.name, key.as_str(), w.replica_capacity, w.max_replicas),
    };
    spec.demand = key.clone();
    spec.replica_capacity = w.replica_capacity;
    spec.target_utilization = (knobs.target_utilization < 1.0).then_some(knobs.target_utilization);
    spec.min_replicas = w.min_replicas;
    spec.max_replicas = w.max_replicas;
    spec.boot_time = w.boot_time;
    spec.tolerance = w.tolerance;
    spec.scale_down_window = w.scale_down_window;
    spec.quantile = knobs.quantile;
    spec.max_short = knobs.max_short;
    spec.headroom = knobs.headroom;
    spec
}

/// The predictive policy for workload `w` on series `key` with `knobs`, planning with
/// `forecasts[t]`, the forecast made at the end of simulated step `t`.
pub fn policy<'a>(
    w: &Workload,
    key: &SeriesKey,
    forecasts: &'a [Option<Forecast>],
    knobs: &Knobs,
) -> Result<Box<dyn Policy + 'a>, ReplayError> {
    let spec = spec(w, key, knobs);
    spec.validate()?;
    let margin = knobs.forecast_margin;
    if let Some(m) = margin.filter(|m| !(m.is_finite() && *m >= 0.0)) {
        return Err(ReplayError::Margin(m));
    }
    Ok(Box::new(Predictive::new(spec, forecasts, margin)))
}
