//! One trace, split into a head the model and the static baseline learn from and a tail every
//! policy is replayed on, with everything per-step that does not depend on a policy's knobs
//! (forecasts, the oracle's cost) computed once.

use super::error::ReplayError;
use super::policy::{Fixed, Hpa, Oracle};
use super::replica::{simulate, Run, Scores};
use super::setup::{Observation, Policy, Setup};
pub use super::workload::{Knobs, PolicyKind, Workload};
use crate::forecast::{Forecast, Model};
use crate::series::{Series, SeriesKey};

/// A trace prepared for replay.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The series replayed.
    pub key: SeriesKey,
    /// Clock, replica capacity, boot time and bounds.
    pub setup: Setup,
    /// The head: what the model (when trained here) and the static baseline learned from.
    pub history: Vec<f64>,
    /// The tail: the demand every policy is replayed on.
    pub demand: Vec<f64>,
    /// The model's forecast made at the end of each simulated step (`None` where the model
    /// cannot forecast, e.g. right after a gap).
    pub forecasts: Vec<Option<Forecast>>,
    /// Ready replicas at the start: what the first boot time's steps need.
    pub initial: u32,
    /// The oracle's run, the cost floor.
    pub oracle: Run,
    /// The oracle's replica-hours.
    pub oracle_hours: f64,
    /// The workload replayed.
    pub workload: Workload,
}

/// How to lay a trace out for replay.
#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    /// Index of the first simulated step (everything before is history).
    pub split: usize,
    /// The workload replayed.
    pub workload: Workload,
}

/// The replica capacity used when none is configured: a tenth of the trace's median (of the
/// history part), so the typical step needs about ten replicas and one replica is a 10 % step
/// of load: fine enough for the policies to differ, coarse enough to be a realistic pod size.
/// Falls back to the mean, then the maximum, for traces that are mostly zero.
pub fn default_replica_capacity(values: &[f64]) -> Option<f64> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let median = crate::sim::stats::percentile(&finite, 50.0)?;
    let mean = finite.iter().sum::<f64>() / finite.len() as f64;
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    [median, mean, max]
        .into_iter()
        .find(|v| *v > 0.0)
        .map(|v| v / 10.0)
}

impl Scenario {
    /// Prepares `series` for replay from `opts.split` on. With a model, the forecast for every
    /// simulated step is computed here in one batch (features may look back into the history
    /// part: that is what a live loop would have in its buffer).
    pub fn new(
        series: &Series,
        opts: &ScenarioOptions,
        model: Option<&Model>,
    ) -> Result<Self, ReplayError> {
        let split = opts.split;
        if split == 0 || split >= series.len() {
            return Err(ReplayError::Split {
                steps: series.len(),
                split,
            });
        }
        let w = &opts.workload;
        w.validate()?;
        let setup = Setup {
            start: series.timestamp(split),
            step: series.step,
            replica_capacity: w.replica_capacity,
            boot_steps: Setup::boot_steps_for(w.boot_time, series.step),
            min_replicas: w.min_replicas,
            max_replicas: w.max_replicas,
        };
        let history = series.values[..split].to_vec();
        let demand = series.values[split..].to_vec();
        if !demand.iter().any(|v| v.is_finite()) {
            return Err(ReplayError::AllGaps);
        }
        let mut forecasts = vec![None; demand.len()];
        if let Some(m) = model {
            if m.spec.step != series.step {
                return Err(ReplayError::ModelStep {
                    model: m.spec.step,
                    trace: series.step,
                });
            }
            for (t, f) in m.forecast_range(
                &series.key,
                &series.values,
                series.start,
                split..series.len(),
            ) {
                forecasts[t - split] = Some(f);
            }
        }
        let initial = super::replica::warm_start(&setup, &demand);
        let oracle = simulate(&setup, &demand, &mut Oracle::new(&setup, &demand), initial);
        let oracle_hours = Scores::of(&setup, &demand, &oracle).replica_hours;
        let workload = w.clone();
        Ok(Scenario {
            key: series.key.clone(),
            setup,
            history,
            demand,
            forecasts,
            initial,
            oracle,
            oracle_hours,
            workload,
        })
    }

    /// True when forecasts were computed (a model was given).
    pub fn has_forecasts(&self) -> bool {
        self.forecasts.iter().any(Option::is_some)
    }

    /// The policy `kind` with `knobs`. The predictive policy needs forecasts.
    pub fn policy(
        &self,
        kind: PolicyKind,
        knobs: &Knobs,
    ) -> Result<Box<dyn Policy + '_>, ReplayError> {
        Ok(match kind {
            PolicyKind::Predictive => {
                if !self.has_forecasts() {
                    return Err(ReplayError::NoModel);
                }
                super::predictive::policy(&self.workload, &self.key, &self.forecasts, knobs)?
            }
            PolicyKind::Reactive => Box::new(Hpa::new(&self.setup, knobs.hpa_target)),
            PolicyKind::Static => Box::new(Fixed::at_percentile(
                &self.setup,
                &self.history,
                knobs.static_percentile,
                knobs.static_margin,
            )),
            PolicyKind::Persistence => Box::new(super::persistence::Persistence::new(
                &self.setup,
                knobs.persistence_margin,
            )),
            PolicyKind::Oracle => Box::new(Oracle::new(&self.setup, &self.demand)),
        })
    }

    /// Runs `kind` with `knobs` and scores it.
    pub fn run(&self, kind: PolicyKind, knobs: &Knobs) -> Result<(Run, Scores), ReplayError> {
        if kind == PolicyKind::Oracle {
            let s =
                Scores::of(&self.setup, &self.demand, &self.oracle).relative_to(self.oracle_hours);
            return Ok((self.oracle.clone(), s));
        }
        let mut p = self.policy(kind, knobs)?;
        // A fixed size is in place from the start; the others start from what step 0 needs.
        let initial = match kind {
            PolicyKind::Static => p.decide(&Observation {
                t: 0,
                ts: self.setup.start,
                demand: f64::NAN,
                ready: 0,
                provisioned: 0,
            }),
            _ => self.initial,
        };
        let run = simulate(&self.setup, &self.demand, p.as_mut(), initial);
        let scores = Scores::of(&self.setup, &self.demand, &run).relative_to(self.oracle_hours);
        Ok((run, scores))
    }
}

#[cfg(test)]
mod predictive_tests {
    //! The predictive policy through a scenario (moved here from `predictive.rs`, which no
    //! longer knows the scenario).
    use super::*;
    use crate::series::{Series, SeriesKey};
    use crate::sim::replay::predictive::spec;

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
        assert_eq!(spec(&sc.workload, &sc.key, &util).effective_capacity(), 5.0);
        let s = spec(
            &sc.workload,
            &sc.key,
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
        assert!(e.to_string().contains("needs a model"), "{e}");
    }
}
