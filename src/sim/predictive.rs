//! prescale's own policy: the live loop's planner, [`ReplicaPlanner`], fed at every simulated
//! step the forecast the model made at that step, with the [`AccuracyTracker`] scoring those
//! forecasts as the demand arrives, exactly as the live loop does. Nothing of the planner is
//! copied here: only the inputs are assembled.

use super::policy::Policy;
use super::replica::Observation;
use super::scenario::{Knobs, Scenario};
use crate::forecast::Forecast;
use crate::plan::{AccuracyConfig, AccuracyTracker, ReplicaPlanner, WorkloadInput, WorkloadSpec};

/// The planner-driven policy.
#[derive(Debug)]
pub struct Predictive<'a> {
    spec: WorkloadSpec,
    forecasts: &'a [Option<Forecast>],
    planner: ReplicaPlanner,
    tracker: AccuracyTracker,
}

impl<'a> Predictive<'a> {
    /// A policy planning `spec` with `forecasts[t]`, the forecast made at the end of step `t`.
    pub fn new(spec: WorkloadSpec, forecasts: &'a [Option<Forecast>]) -> Self {
        Predictive {
            spec,
            forecasts,
            planner: ReplicaPlanner::new(),
            tracker: AccuracyTracker::new(AccuracyConfig::default()),
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
        let forecast = self.forecasts.get(obs.t).and_then(Option::as_ref);
        if let Some(f) = forecast {
            self.tracker.record(f);
        }
        let input = WorkloadInput {
            now: obs.ts,
            current_replicas: obs.provisioned,
            current_demand: demand,
            forecast,
            // A gap in the trace is what stale data looks like live: no scale-down on it.
            data_stale: demand.is_none(),
            model_healthy: true,
            forecast_weight: self.tracker.weight(&self.spec.demand),
        };
        self.planner.plan(&self.spec, &input).to
    }
}

/// The workload as the planner sees it: the scenario's workload with the sweep's knobs.
pub fn spec(scenario: &Scenario, knobs: &Knobs) -> WorkloadSpec {
    let w = &scenario.workload;
    let mut spec = match &w.spec {
        Some(s) => s.clone(),
        None => WorkloadSpec::new(
            &w.name,
            scenario.key.as_str(),
            w.replica_capacity,
            w.max_replicas,
        ),
    };
    spec.demand = scenario.key.clone();
    spec.replica_capacity = w.replica_capacity;
    spec.target_utilization = (knobs.target_utilization < 1.0).then_some(knobs.target_utilization);
    spec.min_replicas = w.min_replicas;
    spec.max_replicas = w.max_replicas;
    spec.boot_time = w.boot_time;
    spec.tolerance = w.tolerance;
    spec.scale_down_window = w.scale_down_window;
    spec.quantile = knobs.quantile;
    spec.headroom = knobs.headroom;
    spec
}

/// The predictive policy for `scenario` with `knobs`.
pub fn policy<'a>(scenario: &'a Scenario, knobs: &Knobs) -> Result<Box<dyn Policy + 'a>, String> {
    let spec = spec(scenario, knobs);
    spec.validate()?;
    Ok(Box::new(Predictive::new(spec, &scenario.forecasts)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{Series, SeriesKey};
    use crate::sim::scenario::{PolicyKind, ScenarioOptions, Workload};

    /// A daily cycle on 5-minute steps with ramps steep enough that reacting one step late
    /// falls short.
    fn series() -> Series {
        let values = (0..288 * 6)
            .map(|i| {
                let h = (i % 288) as f64 / 12.0;
                100.0 + 80.0 * (std::f64::consts::TAU * (h - 6.0) / 24.0).sin()
            })
            .collect();
        Series {
            key: SeriesKey::new("web"),
            start: 1_704_067_200,
            step: 300,
            values,
        }
    }

    fn scenario(forecast: impl Fn(&[f64], usize) -> Vec<(f64, f64)>) -> Scenario {
        let s = series();
        let w = Workload {
            name: "web".into(),
            replica_capacity: 10.0,
            boot_time: 600,
            min_replicas: 1,
            max_replicas: 100,
            tolerance: 0.1,
            scale_down_window: 300,
            spec: None,
        };
        let mut sc = Scenario::new(
            &s,
            &ScenarioOptions {
                split: 288,
                workload: w,
            },
            None,
        )
        .unwrap();
        let all = s.values.clone();
        sc.forecasts = (0..sc.demand.len())
            .map(|t| {
                Some(Forecast {
                    key: s.key.clone(),
                    at: sc.setup.timestamp(t),
                    window: 900,
                    quantiles: forecast(&all, 288 + t),
                })
            })
            .collect();
        sc
    }

    #[test]
    fn perfect_forecasts_beat_reacting() {
        // The true peak of the next three steps at every level.
        let sc = scenario(|v, i| {
            let peak = v[i + 1..(i + 4).min(v.len())]
                .iter()
                .copied()
                .fold(v[i], f64::max);
            vec![(0.5, peak), (0.9, peak), (0.99, peak)]
        });
        let knobs = Knobs::default();
        let (_, pred) = sc.run(PolicyKind::Predictive, &knobs).unwrap();
        let hpa = Knobs {
            hpa_target: 1.0,
            ..knobs
        };
        let (_, reac) = sc.run(PolicyKind::Reactive, &hpa).unwrap();
        assert!(
            pred.under_provisioned < reac.under_provisioned,
            "{pred:?}\n{reac:?}"
        );
        assert!(
            pred.lead_time_hit_rate > reac.lead_time_hit_rate,
            "{pred:?}\n{reac:?}"
        );
        assert_eq!(pred.steps, reac.steps);
    }

    #[test]
    fn the_knobs_reach_the_planner() {
        // A wide forecast: the p99 is twice the median.
        let sc = scenario(|v, i| vec![(0.5, v[i]), (0.9, 1.5 * v[i]), (0.99, 2.0 * v[i])]);
        let cost = |quantile: f64, headroom: f64| {
            let k = Knobs {
                quantile,
                headroom,
                ..Knobs::default()
            };
            sc.run(PolicyKind::Predictive, &k).unwrap().1.replica_hours
        };
        assert!(cost(0.5, 0.0) < cost(0.9, 0.0));
        assert!(cost(0.9, 0.0) < cost(0.99, 0.0));
        assert!(cost(0.99, 0.0) < cost(0.99, 0.5));
        let util = Knobs {
            quantile: 0.99,
            target_utilization: 0.5,
            ..Knobs::default()
        };
        assert!(
            cost(0.99, 0.0)
                < sc.run(PolicyKind::Predictive, &util)
                    .unwrap()
                    .1
                    .replica_hours
        );
        assert_eq!(spec(&sc, &util).effective_capacity(), 5.0);
        let s = spec(
            &sc,
            &Knobs {
                quantile: 0.95,
                headroom: 0.2,
                ..Knobs::default()
            },
        );
        assert_eq!(
            (s.quantile, s.headroom, s.boot_time, s.max_replicas),
            (0.95, 0.2, 600, 100)
        );
    }

    #[test]
    fn no_model_no_predictive_policy() {
        let s = series();
        let w = Workload {
            name: "web".into(),
            replica_capacity: 10.0,
            boot_time: 600,
            min_replicas: 1,
            max_replicas: 100,
            tolerance: 0.1,
            scale_down_window: 300,
            spec: None,
        };
        let sc = Scenario::new(
            &s,
            &ScenarioOptions {
                split: 288,
                workload: w,
            },
            None,
        )
        .unwrap();
        let e = sc
            .run(PolicyKind::Predictive, &Knobs::default())
            .unwrap_err();
        assert!(e.contains("needs a model"), "{e}");
    }
}
