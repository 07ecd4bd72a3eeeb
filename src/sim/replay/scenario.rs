//! One trace, split into a head the model and the static baseline learn from and a tail every
//! policy is replayed on, with everything per-step that does not depend on a policy's knobs
//! (forecasts, the oracle's cost) computed once.

use super::error::ReplayError;
use super::policy::{Fixed, Hpa, Oracle};
use super::replica::{simulate, Run, Scores};
use super::setup::{Observation, Policy, Setup};
pub use super::workload::{Knobs, PolicyKind, Workload};
use crate::forecast::online::{self, OnlineConfig};
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
    /// The model's forecast made at the end of each simulated step, corrected online as the
    /// live loop corrects it (`None` where the model cannot forecast, e.g. right after a gap).
    pub forecasts: Vec<Option<Forecast>>,
    /// The same forecasts before the online correction: what a policy with a short-step
    /// budget plans with, as it does live (its margin is its calibration; see
    /// `run::Forecasts::for_workload`). Empty without a model: then every policy plans with
    /// `forecasts`, however they were made.
    pub uncorrected: Vec<Option<Forecast>>,
    /// Ready replicas at the start: what the first boot time's steps need.
    pub initial: u32,
    /// The oracle's run, the cost floor.
    pub oracle: Run,
    /// The oracle's replica-hours.
    pub oracle_hours: f64,
    /// The workload replayed.
    pub workload: Workload,
    /// The forecast window, seconds: what the forecasts' peak is over, and persistence's
    /// look-back (the last window's peak forecasts the next window's).
    pub window: i64,
}

/// How to lay a trace out for replay.
#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    /// Index of the first simulated step (everything before is history).
    pub split: usize,
    /// The workload replayed.
    pub workload: Workload,
    /// The forecast window, seconds (a model's own window takes precedence): persistence
    /// looks back this far, as the backtest's and the yardstick's persistence do.
    pub window: i64,
    /// The online calibration the live loop applies to the model's quantiles
    /// (`[online_calibration]`), replayed here from the first simulated step on, so the
    /// predictive policy plans with the forecasts the live loop would plan with.
    pub online: OnlineConfig,
}

impl ScenarioOptions {
    /// Simulate from `split` on with `workload`, a 15-minute window (`prescale train`'s
    /// default) and the default online calibration.
    pub fn new(split: usize, workload: Workload) -> Self {
        ScenarioOptions {
            split,
            workload,
            window: DEFAULT_WINDOW,
            online: OnlineConfig::default(),
        }
    }
}

/// The forecast window when none is given, seconds.
pub const DEFAULT_WINDOW: i64 = 900;

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
        let mut uncorrected = Vec::new();
        let mut window = opts.window;
        if let Some(m) = model {
            if m.spec.step != series.step {
                return Err(ReplayError::ModelStep {
                    model: m.spec.step,
                    trace: series.step,
                });
            }
            window = m.spec.window;
            let raw = m.forecast_range(
                &series.key,
                &series.values,
                series.start,
                split..series.len(),
            );
            // Corrected as the live loop corrects them, starting afresh at the first simulated
            // step (a live loop starts its calibration with its model), each correction
            // learning only from windows complete by then.
            uncorrected = vec![None; demand.len()];
            for (t, f) in &raw {
                uncorrected[t - split] = Some(f.clone());
            }
            let corrected =
                online::replay(&opts.online, &series.values, series.start, series.step, raw);
            for (t, f) in corrected {
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
            uncorrected,
            initial,
            oracle,
            oracle_hours,
            workload,
            window: window.max(series.step),
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
                let forecasts = match knobs.max_short {
                    Some(_) if !self.uncorrected.is_empty() => &self.uncorrected,
                    _ => &self.forecasts,
                };
                super::predictive::policy(&self.workload, &self.key, forecasts, knobs)?
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
                Setup::boot_steps_for(self.window, self.setup.step),
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
    use crate::series::Series;
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
        Series::for_test("web", 1_704_067_200, 300, values)
    }

    fn scenario(forecast: impl Fn(&[f64], usize) -> Vec<(f64, f64)>) -> Scenario {
        let s = series();
        let w = Workload::for_test("web", 600, 100);
        let mut sc = Scenario::new(&s, &ScenarioOptions::new(288, w), None).unwrap();
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
    fn forecasts_count_in_full_whatever_their_accuracy() {
        // Forecasts at five times demand: the accuracy tracker soon rates them poorly, and
        // they are still planned in full at the configured quantile, as with a fixed margin
        // (the sweep's knob, as max_short's): a poorly rated model costs, it is not faded
        // towards reactive, which would trade the chosen risk for cost.
        let sc = scenario(|v, i| vec![(0.5, 5.0 * v[i]), (0.9, 5.0 * v[i]), (0.99, 5.0 * v[i])]);
        let hours = |forecast_margin| {
            let k = Knobs {
                forecast_margin,
                ..Knobs::default()
            };
            sc.run(PolicyKind::Predictive, &k).unwrap().1.replica_hours
        };
        let reactive = sc
            .run(PolicyKind::Reactive, &Knobs::default())
            .unwrap()
            .1
            .replica_hours;
        let at_quantile = hours(None);
        let full = hours(Some(1.0));
        assert_eq!(at_quantile, full);
        assert!(full > 3.0 * reactive, "full {full}, reactive {reactive}");
        assert!(hours(Some(0.5)) < full);
        let bad = Knobs {
            forecast_margin: Some(f64::NAN),
            ..Knobs::default()
        };
        let e = sc.run(PolicyKind::Predictive, &bad).unwrap_err();
        assert!(e.to_string().contains("margin on the forecast"), "{e}");
    }

    #[test]
    fn persistence_looks_back_one_forecast_window() {
        // One spike in a flat trace: persistence holds it for the window's steps after it.
        let mut values = vec![10.0; 40];
        values[25] = 100.0;
        let series = Series::for_test("x", 0, 60, values);
        let w = Workload::for_test("x", 60, 50);
        let held = |window: i64| {
            let sc = Scenario::new(
                &series,
                &ScenarioOptions {
                    window,
                    ..ScenarioOptions::new(20, w.clone())
                },
                None,
            )
            .unwrap();
            let (run, _) = sc.run(PolicyKind::Persistence, &Knobs::default()).unwrap();
            run.provisioned.iter().filter(|&&r| r == 10).count()
        };
        // Seen at the end of step 5 (of the tail), provisioned from step 6 for `window` steps.
        assert_eq!(held(240), 4);
        assert_eq!(held(60), 1);
    }

    #[test]
    fn forecasts_are_corrected_online_as_the_live_loop_does() {
        use crate::forecast::TrainOptions;
        let s = series();
        let opts = TrainOptions {
            n_trees: 8,
            max_depth: 6,
            ..TrainOptions::new(300, 900)
        };
        let m = Model::train(&[s.slice(0..288 * 4)], &opts).unwrap();
        let w = Workload::for_test("web", 600, 100);
        let build = |online| {
            Scenario::new(
                &s,
                &ScenarioOptions {
                    online,
                    ..ScenarioOptions::new(288 * 4, w.clone())
                },
                Some(&m),
            )
            .unwrap()
        };
        let on = build(OnlineConfig::default());
        let off = build(OnlineConfig::off());
        assert_eq!(on.window, 900, "the model's window");
        let q = |sc: &Scenario, t: usize| sc.forecasts[t].as_ref().unwrap().quantile(0.9).unwrap();
        // Nothing is resolved at the first step; later the correction has learnt something,
        // and it is the library's own replay of the live loop's calibrator.
        assert_eq!(q(&on, 0), q(&off, 0));
        let last = on.demand.len() - 1;
        assert_ne!(q(&on, last), q(&off, last));
        let raw = m.forecast_range(&s.key, &s.values, s.start, 288 * 4..s.len());
        let want = online::replay(&OnlineConfig::default(), &s.values, s.start, s.step, raw);
        let (t, f) = want.last().unwrap();
        assert_eq!(on.forecasts[t - 288 * 4].as_ref(), Some(f));
        // A short-step budget plans on the uncorrected forecasts, as live: its margin is its
        // calibration. A fixed quantile plans on the corrected ones.
        let provisioned = |sc: &Scenario, knobs: &Knobs| {
            sc.run(PolicyKind::Predictive, knobs).unwrap().0.provisioned
        };
        let budget = Knobs {
            max_short: Some(0.01),
            ..Knobs::default()
        };
        assert_eq!(provisioned(&on, &budget), provisioned(&off, &budget));
        let fixed = Knobs::default();
        assert_ne!(provisioned(&on, &fixed), provisioned(&off, &fixed));
    }

    #[test]
    fn no_model_no_predictive_policy() {
        let s = series();
        let w = Workload::for_test("web", 600, 100);
        let sc = Scenario::new(&s, &ScenarioOptions::new(288, w), None).unwrap();
        let e = sc
            .run(PolicyKind::Predictive, &Knobs::default())
            .unwrap_err();
        assert!(e.to_string().contains("needs a model"), "{e}");
    }
}
