//! One trace, split into a head the model and the static baseline learn from and a tail every
//! policy is replayed on, with everything per-step that does not depend on a policy's knobs
//! (forecasts, the oracle's cost) computed once.

use super::policy::{Fixed, Hpa, Oracle, Policy};
use super::replica::{simulate, Run, Scores, Setup};
use crate::forecast::{Forecast, Model};
use crate::series::{Series, SeriesKey};
use serde::Serialize;

/// The policies the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// prescale's planner on the model's forecasts.
    Predictive,
    /// The Kubernetes HPA rule.
    Reactive,
    /// A fixed size at a percentile of the training part.
    Static,
    /// Perfect foresight.
    Oracle,
}

impl PolicyKind {
    /// Every policy, in report order.
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::Predictive,
        PolicyKind::Reactive,
        PolicyKind::Static,
        PolicyKind::Oracle,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Predictive => "predictive",
            PolicyKind::Reactive => "reactive",
            PolicyKind::Static => "static",
            PolicyKind::Oracle => "oracle",
        }
    }
}

/// Every policy's risk knob.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Knobs {
    /// Predictive: forecast quantile provisioned to.
    pub quantile: f64,
    /// Predictive: extra capacity on top of the forecast (0.1 = 10 %).
    pub headroom: f64,
    /// Predictive: the planner's target utilisation of a replica, (0, 1]: its margin on both
    /// the forecast and the reactive floor, as the HPA's target is.
    pub target_utilization: f64,
    /// Reactive: the HPA's target utilisation in (0, 1].
    pub hpa_target: f64,
    /// Static: percentile (0–100) of the training part's demand it is sized for.
    pub static_percentile: f64,
    /// Static: extra capacity on top of that percentile.
    pub static_margin: f64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            quantile: 0.9,
            headroom: 0.0,
            target_utilization: 1.0,
            hpa_target: 0.8,
            static_percentile: 95.0,
            static_margin: 0.0,
        }
    }
}

impl Knobs {
    /// The knob that matters for `kind`, as text for tables.
    pub fn describe(&self, kind: PolicyKind) -> String {
        match kind {
            PolicyKind::Predictive => {
                let mut s = format!("q={}", self.quantile);
                if self.headroom > 0.0 {
                    s.push_str(&format!(" +{:.0}%", self.headroom * 100.0));
                }
                if self.target_utilization < 1.0 {
                    s.push_str(&format!(" u={:.0}%", self.target_utilization * 100.0));
                }
                s
            }
            PolicyKind::Reactive => format!("target={:.0}%", self.hpa_target * 100.0),
            PolicyKind::Static if self.static_margin > 0.0 => {
                format!(
                    "p{} +{:.0}%",
                    self.static_percentile,
                    self.static_margin * 100.0
                )
            }
            PolicyKind::Static => format!("p{}", self.static_percentile),
            PolicyKind::Oracle => "-".into(),
        }
    }
}

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

/// The workload being replayed: what the replay clock needs, plus the planner's own settings
/// for the predictive policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Name, for reports and the planner's decisions.
    pub name: String,
    /// Demand one replica serves, in the trace's unit.
    pub replica_capacity: f64,
    /// Seconds from a scale-up to the replica serving.
    pub boot_time: i64,
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// The planner's tolerance (relative change ignored).
    pub tolerance: f64,
    /// The planner's scale-down window, seconds.
    pub scale_down_window: i64,
    /// The full planner spec when the workload came from a configuration (`[[workload]]`):
    /// its other keys (step limits, …) then apply to the predictive policy too. The fields
    /// above and the sweep's knobs take precedence.
    #[serde(skip)]
    pub spec: Option<crate::plan::WorkloadSpec>,
}

impl Workload {
    /// Checks the fields the replay depends on.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.replica_capacity.is_finite() && self.replica_capacity > 0.0) {
            return Err(format!(
                "replica capacity must be a number > 0, got {}",
                self.replica_capacity
            ));
        }
        if self.max_replicas == 0 || self.min_replicas > self.max_replicas {
            return Err(format!(
                "replica bounds must satisfy 1 ≤ max and min ≤ max, got min {} max {}",
                self.min_replicas, self.max_replicas
            ));
        }
        if self.boot_time < 0 {
            return Err(format!(
                "boot time must not be negative, got {}s",
                self.boot_time
            ));
        }
        Ok(())
    }
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
    let median = super::policy::percentile(&finite, 50.0)?;
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
    ) -> Result<Self, String> {
        let split = opts.split;
        if split == 0 || split >= series.len() {
            return Err(format!(
                "cannot split {} steps at {split}: both the history and the simulated part need steps",
                series.len()
            ));
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
            return Err("the simulated part of the trace is all gaps".into());
        }
        let mut forecasts = vec![None; demand.len()];
        if let Some(m) = model {
            if m.spec.step != series.step {
                return Err(format!(
                    "the model's step is {}s, the trace's {}s",
                    m.spec.step, series.step
                ));
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
    pub fn policy(&self, kind: PolicyKind, knobs: &Knobs) -> Result<Box<dyn Policy + '_>, String> {
        Ok(match kind {
            PolicyKind::Predictive => {
                if !self.has_forecasts() {
                    return Err(
                        "the predictive policy needs a model (none was given or trained)".into(),
                    );
                }
                super::predictive::policy(self, knobs)?
            }
            PolicyKind::Reactive => Box::new(Hpa::new(&self.setup, knobs.hpa_target)),
            PolicyKind::Static => Box::new(Fixed::at_percentile(
                &self.setup,
                &self.history,
                knobs.static_percentile,
                knobs.static_margin,
            )),
            PolicyKind::Oracle => Box::new(Oracle::new(&self.setup, &self.demand)),
        })
    }

    /// Runs `kind` with `knobs` and scores it.
    pub fn run(&self, kind: PolicyKind, knobs: &Knobs) -> Result<(Run, Scores), String> {
        if kind == PolicyKind::Oracle {
            let s =
                Scores::of(&self.setup, &self.demand, &self.oracle).relative_to(self.oracle_hours);
            return Ok((self.oracle.clone(), s));
        }
        let mut p = self.policy(kind, knobs)?;
        // A fixed size is in place from the start; the others start from what step 0 needs.
        let initial = match kind {
            PolicyKind::Static => p.decide(&super::replica::Observation {
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
