//! What a replay is asked to run: which policy ([`PolicyKind`]), with which risk knobs
//! ([`Knobs`]), on which workload ([`Workload`]). Plain data that the scenario, the predictive
//! policy, the sweep and the report all read, so none of them imports another for it.

use super::error::ReplayError;
use serde::Serialize;

/// The policies the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// prescale's planner on the model's forecasts.
    Predictive,
    /// The Kubernetes HPA rule.
    Reactive,
    /// A fixed size at a percentile of the training part.
    Static,
    /// The peak of the last forecast window, plus a margin.
    Persistence,
    /// Perfect foresight.
    Oracle,
}

impl PolicyKind {
    /// Every policy, in report order.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Predictive,
        PolicyKind::Reactive,
        PolicyKind::Static,
        PolicyKind::Persistence,
        PolicyKind::Oracle,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Predictive => "predictive",
            PolicyKind::Reactive => "reactive",
            PolicyKind::Static => "static",
            PolicyKind::Persistence => "persistence",
            PolicyKind::Oracle => "oracle",
        }
    }
}

/// Every policy's risk knob.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Knobs {
    /// Predictive: forecast quantile provisioned to.
    pub quantile: f64,
    /// Predictive: a budget of short steps (0.01 = 1 %) instead of `quantile`: the margin on
    /// the budget's level is calibrated online (`plan::risk`), so this is not swept.
    pub max_short: Option<f64>,
    /// Predictive: extra capacity on top of the forecast (0.1 = 10 %).
    pub headroom: f64,
    /// Predictive: a fixed factor on the forecast's quantiles before the planner sees them,
    /// the margin the sweep bisects per quantile; `None`: the quantile as configured. It is
    /// what `max_short`'s calibrated margin does live, held fixed. Unlike `headroom` and
    /// `target_utilization` it leaves the reactive floor alone, so a margin below 1 trims the
    /// forecast, never current demand.
    pub forecast_margin: Option<f64>,
    /// Predictive: the planner's target utilisation of a replica, (0, 1]: its margin on both
    /// the forecast and the reactive floor, as the HPA's target is.
    pub target_utilization: f64,
    /// Reactive: the HPA's target utilisation in (0, 1].
    pub hpa_target: f64,
    /// Static: percentile (0–100) of the training part's demand it is sized for.
    pub static_percentile: f64,
    /// Static: extra capacity on top of that percentile.
    pub static_margin: f64,
    /// Persistence: extra capacity on top of the recent peak.
    pub persistence_margin: f64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            quantile: 0.9,
            max_short: None,
            headroom: 0.0,
            forecast_margin: None,
            target_utilization: 1.0,
            hpa_target: 0.8,
            static_percentile: 95.0,
            static_margin: 0.0,
            persistence_margin: 0.0,
        }
    }
}

impl Knobs {
    /// The knob that matters for `kind`, as text for tables.
    pub fn describe(&self, kind: PolicyKind) -> String {
        // Two decimals of a percentage, printed without trailing zeros (80 %, 77.25 %).
        let pct = |x: f64| (x * 10_000.0).round() / 100.0;
        match kind {
            PolicyKind::Predictive => {
                let mut s = match self.max_short {
                    Some(m) => format!("short≤{}%", pct(m)),
                    None => format!("q={}", self.quantile),
                };
                if let Some(m) = self.forecast_margin {
                    s.push_str(&format!(" ×{}", (m * 1e4).round() / 1e4));
                }
                if self.headroom > 0.0 {
                    s.push_str(&format!(" +{}%", pct(self.headroom)));
                }
                if self.target_utilization < 1.0 {
                    s.push_str(&format!(" u={}%", pct(self.target_utilization)));
                }
                s
            }
            PolicyKind::Reactive => format!("target={}%", pct(self.hpa_target)),
            PolicyKind::Static if self.static_margin > 0.0 => {
                format!("p{} +{}%", self.static_percentile, pct(self.static_margin))
            }
            PolicyKind::Static => format!("p{}", self.static_percentile),
            PolicyKind::Persistence if self.persistence_margin < 0.0 => {
                format!("{}%", pct(self.persistence_margin))
            }
            PolicyKind::Persistence => format!("+{}%", pct(self.persistence_margin)),
            PolicyKind::Oracle => "-".into(),
        }
    }
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
    /// A workload for tests: capacity 10 per replica, 1 to `max_replicas`, the planner's
    /// default tolerance (10 %) and a 300 s scale-down window.
    #[cfg(test)]
    pub(crate) fn for_test(name: &str, boot_time: i64, max_replicas: u32) -> Self {
        Workload {
            name: name.into(),
            replica_capacity: 10.0,
            boot_time,
            min_replicas: 1,
            max_replicas,
            tolerance: 0.1,
            scale_down_window: 300,
            spec: None,
        }
    }

    /// Checks the fields the replay depends on.
    pub fn validate(&self) -> Result<(), ReplayError> {
        if !(self.replica_capacity.is_finite() && self.replica_capacity > 0.0) {
            return Err(ReplayError::Capacity(self.replica_capacity));
        }
        if self.max_replicas == 0 || self.min_replicas > self.max_replicas {
            return Err(ReplayError::Bounds {
                min: self.min_replicas,
                max: self.max_replicas,
            });
        }
        if self.boot_time < 0 {
            return Err(ReplayError::BootTime(self.boot_time));
        }
        Ok(())
    }
}
