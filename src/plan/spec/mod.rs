//! What the user configures: workloads (`[[workload]]`) and node pools (`[[pool]]`).
//!
//! These are plain `serde` structs so the config module can embed them as they are; every field
//! is a documented key of `prescale.toml`. Validation is separate from parsing so that each
//! error names the offending key and the item it belongs to.

use super::events::Event;
mod object;
mod sharing;
mod values;

use crate::series::SeriesKey;
pub use object::{Mode, ObjectKind, ObjectRef};
use serde::{Deserialize, Serialize};
pub use sharing::Allocation;
use std::collections::BTreeMap;
pub(crate) use values::de_duration;
use values::{de_opt_share, de_quantile, de_quantity};
pub use values::{parse_quantile, parse_quantity, parse_share, ParseValueError};

/// Why a `[[workload]]` or `[[pool]]` was refused: which item, which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The item has no name, so the message cannot name it either.
    #[error("{kind}: name must not be empty")]
    NoName {
        /// `"workload"` or `"pool"`.
        kind: &'static str,
    },
    /// A key of a named item has a value the planners cannot use.
    #[error("{kind} \"{name}\": {message}")]
    Key {
        /// `"workload"` or `"pool"`.
        kind: &'static str,
        /// The item's name.
        name: String,
        /// The offending key, as written in `prescale.toml` (`max_replicas`, `resources.cpu`).
        key: String,
        /// What is wrong, naming the key and the value found.
        message: String,
    },
}

/// Resources one replica requests, or one node offers.
///
/// In TOML either numbers (`cpu = 0.5`, `memory = 536870912`) or Kubernetes-style quantities
/// (`cpu = "500m"`, `memory = "512Mi"`) are accepted, so values can be copied from manifests.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU in cores (`"250m"` = 0.25).
    #[serde(default, deserialize_with = "de_quantity")]
    pub cpu: f64,
    /// Memory in bytes (`"512Mi"`, `"2Gi"`, `"1G"`).
    #[serde(default, deserialize_with = "de_quantity")]
    pub memory: f64,
}

impl Resources {
    /// A value from cores and bytes.
    pub const fn new(cpu: f64, memory: f64) -> Self {
        Resources { cpu, memory }
    }

    /// `self + other × n`.
    pub(crate) fn add_scaled(&mut self, other: &Resources, n: f64) {
        self.cpu += other.cpu * n;
        self.memory += other.memory * n;
    }

    /// The largest of the per-resource ratios `self / capacity`, so "how full" means the
    /// scarcest resource. A resource a node does not offer counts as full when anything asks
    /// for it, and as empty otherwise.
    pub(crate) fn fill_ratio(&self, capacity: &Resources) -> f64 {
        fn ratio(used: f64, cap: f64) -> f64 {
            if cap > 0.0 {
                used / cap
            } else if used > 0.0 {
                f64::INFINITY
            } else {
                0.0
            }
        }
        ratio(self.cpu, capacity.cpu).max(ratio(self.memory, capacity.memory))
    }

    /// Checks both fields; the error is `(key, message)` for the item's [`SpecError`].
    fn validate(&self, what: &str) -> Result<(), (String, String)> {
        for (field, v) in [("cpu", self.cpu), ("memory", self.memory)] {
            if !v.is_finite() || v < 0.0 {
                return Err((
                    format!("{what}.{field}"),
                    format!("{what}.{field} must be a finite number ≥ 0, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// Where the current replica count of a workload comes from. The collector reads it; the
/// planner is handed the number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CurrentReplicas {
    /// A fixed number (demos, or workloads prescale only advises on).
    Fixed(u32),
    /// A PromQL query returning one sample, e.g. `kube_deployment_status_replicas{deployment="api"}`.
    Query(String),
}

/// One workload prescale scales: `[[workload]]` in `prescale.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Unique name, used as the target of its decisions.
    pub name: String,
    /// Series key of the demand signal the forecast is made for (e.g. `http_requests{service="api"}`).
    pub demand: SeriesKey,
    /// Unit of the demand, only for reasons (`"rps"`); empty by default.
    #[serde(default)]
    pub unit: String,
    /// Demand one replica serves. Without `target_utilization` this is the load one replica
    /// should carry (already at its target); with it, the load at 100 % and the planner aims at
    /// `replica_capacity × target_utilization`.
    pub replica_capacity: f64,
    /// Optional target utilisation in (0, 1] applied to `replica_capacity`.
    #[serde(default)]
    pub target_utilization: Option<f64>,
    /// Where the current replica count comes from: a number or a PromQL query. Read by the
    /// collector; default: the planner's own last decision.
    #[serde(default)]
    pub current_replicas: Option<CurrentReplicas>,
    /// Fewest replicas ever planned.
    #[serde(default = "default_min_replicas")]
    pub min_replicas: u32,
    /// Most replicas ever planned.
    pub max_replicas: u32,
    /// Time from "scale up" to a replica serving (`"90s"`, `"3m"`): the lead time the forecast
    /// must cover.
    #[serde(deserialize_with = "de_duration")]
    pub boot_time: i64,
    /// Risk quantile to provision to: `0.9`, or `"p90"`, `"p95"`, `"p99"`. Default p90.
    #[serde(default = "default_quantile", deserialize_with = "de_quantile")]
    pub quantile: f64,
    /// Risk as a budget of under-provisioned time: at most this share of planning steps with
    /// demand above the capacity running (`"1%"`, `"0.5%"` or `0.01`), in (0, 50 %]. When set
    /// it takes precedence over `quantile`: the planner provisions at the forecast's
    /// `1 − max_short` level times a margin calibrated online so the realised share meets the
    /// budget (see `plan::risk`). Default: none (provision at `quantile`).
    #[serde(default, deserialize_with = "de_opt_share")]
    pub max_short: Option<f64>,
    /// Window over which the realised short share is reported (`"7d"`). Default 7d.
    #[serde(default = "default_short_window", deserialize_with = "de_duration")]
    pub short_window: i64,
    /// Extra capacity on top of the forecast, as a fraction (`0.1` = 10 %). Default 0.
    #[serde(default)]
    pub headroom: f64,
    /// Scale down only to the highest recommendation seen over this window (`"5m"`). Default 5m.
    #[serde(
        default = "default_scale_down_window",
        deserialize_with = "de_duration"
    )]
    pub scale_down_window: i64,
    /// Relative change ignored to stop flapping (`0.1` = within 10 % of current, hold). Default 0.1.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Most replicas added in one planning interval; unlimited when absent.
    #[serde(default)]
    pub max_step_up: Option<u32>,
    /// Most replicas removed in one planning interval; unlimited when absent.
    #[serde(default)]
    pub max_step_down: Option<u32>,
    /// Resources one replica requests.
    #[serde(default)]
    pub resources: Resources,
    /// Node pool its replicas run in; default: the first pool by name.
    #[serde(default)]
    pub pool: Option<String>,
    /// Priority when its pool is short and allocates by `priority` (the Kubernetes
    /// PriorityClass convention: higher wins). Default 0.
    #[serde(default)]
    pub priority: i32,
    /// Team (or namespace) it belongs to, the unit that `fair` and `static` pools share
    /// between and that a pool's `quotas` name; default: a team of its own, named after it.
    #[serde(default)]
    pub team: Option<String>,
    /// Its team's weight in a `fair` pool (a team weighs as its heaviest workload). Default 1.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Fraction of its pool that is its own in a `static` pool (a team's share is the sum of
    /// its workloads'). Default none: only what others leave.
    #[serde(default)]
    pub share: Option<f64>,
    /// What one replica-hour is worth to it, in any currency, in a `market` pool. Default 0.
    #[serde(default)]
    pub bid: f64,
    /// Known future events (a launch, a sale): while one is active, from its `from` minus
    /// `boot_time` until its `to`, at least its `floor` replicas (see [`Event`]).
    #[serde(default)]
    pub events: Vec<Event>,
    /// The Deployment it is, as `namespace/name` (`"shop/api"`): its replicas and pods are
    /// read from the cluster and, in `auto` mode, changed through its `scale` subresource.
    /// At most one of `deployment` and `statefulset`; see [`WorkloadSpec::object`].
    #[serde(default)]
    pub deployment: Option<String>,
    /// The StatefulSet it is, as `namespace/name`.
    #[serde(default)]
    pub statefulset: Option<String>,
    /// `preview` (default: recommend only) or `auto` (act under `--apply`).
    #[serde(default)]
    pub mode: Mode,
}

fn default_min_replicas() -> u32 {
    1
}
fn default_quantile() -> f64 {
    0.9
}
fn default_scale_down_window() -> i64 {
    300
}
fn default_short_window() -> i64 {
    super::risk::DEFAULT_SHORT_WINDOW
}
fn default_weight() -> f64 {
    1.0
}
fn default_tolerance() -> f64 {
    0.1
}
fn default_pool_target() -> f64 {
    0.8
}
fn default_pool_scale_down_window() -> i64 {
    600
}

impl WorkloadSpec {
    /// A spec with the documented defaults, for code and tests that build one by hand.
    pub fn new(name: &str, demand: &str, replica_capacity: f64, max_replicas: u32) -> Self {
        WorkloadSpec {
            name: name.to_string(),
            demand: SeriesKey::new(demand),
            unit: String::new(),
            replica_capacity,
            target_utilization: None,
            current_replicas: None,
            min_replicas: default_min_replicas(),
            max_replicas,
            boot_time: 60,
            quantile: default_quantile(),
            max_short: None,
            short_window: default_short_window(),
            headroom: 0.0,
            scale_down_window: default_scale_down_window(),
            tolerance: default_tolerance(),
            max_step_up: None,
            max_step_down: None,
            resources: Resources::default(),
            pool: None,
            priority: 0,
            team: None,
            weight: default_weight(),
            share: None,
            bid: 0.0,
            events: Vec::new(),
            deployment: None,
            statefulset: None,
            mode: Mode::default(),
        }
    }

    /// The Kubernetes object it names, if any (`None` also for a reference that
    /// [`validate`](Self::validate) refuses).
    pub fn object(&self) -> Option<ObjectRef> {
        match (&self.deployment, &self.statefulset) {
            (Some(d), None) => ObjectRef::parse(ObjectKind::Deployment, d).ok(),
            (None, Some(s)) => ObjectRef::parse(ObjectKind::StatefulSet, s).ok(),
            _ => None,
        }
    }

    /// The demand one replica is planned to carry: `replica_capacity × target_utilization`.
    pub fn effective_capacity(&self) -> f64 {
        self.replica_capacity * self.target_utilization.unwrap_or(1.0)
    }

    /// Checks every field; the error names the workload and the key.
    pub fn validate(&self) -> Result<(), SpecError> {
        let w = |key: &str, message: String| SpecError::Key {
            kind: "workload",
            name: self.name.clone(),
            key: key.to_string(),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(SpecError::NoName { kind: "workload" });
        }
        if self.demand.as_str().trim().is_empty() {
            return Err(w("demand", "demand must name a series".into()));
        }
        if !(self.replica_capacity.is_finite() && self.replica_capacity > 0.0) {
            return Err(w(
                "replica_capacity",
                format!(
                    "replica_capacity must be a finite number > 0, got {}",
                    self.replica_capacity
                ),
            ));
        }
        if let Some(t) = self.target_utilization {
            if !(t > 0.0 && t <= 1.0) {
                return Err(w(
                    "target_utilization",
                    format!("target_utilization must be in (0, 1], got {t}"),
                ));
            }
        }
        if self.max_replicas == 0 {
            return Err(w("max_replicas", "max_replicas must be at least 1".into()));
        }
        if self.min_replicas > self.max_replicas {
            return Err(w(
                "min_replicas",
                format!(
                    "min_replicas ({}) is greater than max_replicas ({})",
                    self.min_replicas, self.max_replicas
                ),
            ));
        }
        if self.boot_time < 0 {
            return Err(w(
                "boot_time",
                format!("boot_time must not be negative, got {}", self.boot_time),
            ));
        }
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(w(
                "quantile",
                format!("quantile must be in (0, 1), got {}", self.quantile),
            ));
        }
        if let Some(m) = self.max_short {
            if !(m > 0.0 && m <= 0.5) {
                return Err(w(
                    "max_short",
                    format!("max_short must be a share in (0, 50%], got {}", m),
                ));
            }
        }
        // An hour: a shorter window reports a share of a handful of steps, which says little.
        if self.short_window < 3_600 {
            return Err(w(
                "short_window",
                format!(
                    "short_window must be at least 1h, got {}",
                    crate::series::format_duration(self.short_window)
                ),
            ));
        }
        if !(self.headroom.is_finite() && self.headroom >= 0.0) {
            return Err(w(
                "headroom",
                format!(
                    "headroom must be a finite number ≥ 0, got {}",
                    self.headroom
                ),
            ));
        }
        if self.scale_down_window < 0 {
            return Err(w(
                "scale_down_window",
                format!(
                    "scale_down_window must not be negative, got {}",
                    self.scale_down_window
                ),
            ));
        }
        if !(self.tolerance >= 0.0 && self.tolerance < 1.0) {
            return Err(w(
                "tolerance",
                format!("tolerance must be in [0, 1), got {}", self.tolerance),
            ));
        }
        if self.max_step_up == Some(0) {
            return Err(w(
                "max_step_up",
                "max_step_up must be at least 1 (leave it out for no limit)".into(),
            ));
        }
        if self.max_step_down == Some(0) {
            return Err(w(
                "max_step_down",
                "max_step_down must be at least 1 (leave it out for no limit)".into(),
            ));
        }
        self.resources
            .validate("resources")
            .map_err(|(key, message)| w(&key, message))?;
        if let Some(p) = &self.pool {
            if p.trim().is_empty() {
                return Err(w("pool", "pool must not be empty when given".into()));
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            let key = format!("events[{i}]");
            e.validate().map_err(|m| w(&key, format!("{key}: {m}")))?;
        }
        match (&self.deployment, &self.statefulset) {
            (Some(_), Some(_)) => {
                return Err(w(
                    "statefulset",
                    "give deployment or statefulset, not both".into(),
                ))
            }
            (Some(d), None) => {
                ObjectRef::parse(ObjectKind::Deployment, d).map_err(|m| w("deployment", m))?;
            }
            (None, Some(s)) => {
                ObjectRef::parse(ObjectKind::StatefulSet, s).map_err(|m| w("statefulset", m))?;
            }
            (None, None) => {}
        }
        sharing::validate_workload(self).map_err(|(key, message)| w(key, message))
    }
}

/// One node pool: `[[pool]]` in `prescale.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Unique name; nodes report which pool they belong to.
    pub name: String,
    /// Allocatable resources of one node. Required with `[[node]]`; with `[cluster]` it is
    /// read from the nodes' allocatable and left out of the file.
    #[serde(default)]
    pub capacity: Resources,
    /// Time from "add node" to the node accepting replicas (`"3m"`): the lead time for adding.
    #[serde(deserialize_with = "de_duration")]
    pub boot_time: i64,
    /// Fewest nodes the pool keeps.
    #[serde(default)]
    pub min_nodes: u32,
    /// Most nodes the pool may grow to.
    pub max_nodes: u32,
    /// Fraction of a node's capacity its forecast usage may reach before the node counts as hot
    /// and replicas are moved off or nodes added. Default 0.8.
    #[serde(default = "default_pool_target")]
    pub target_utilization: f64,
    /// A node is removed only after removal has fitted the forecast continuously for this long
    /// (`"10m"`). Default 10m.
    #[serde(
        default = "default_pool_scale_down_window",
        deserialize_with = "de_duration"
    )]
    pub scale_down_window: i64,
    /// Who gets the capacity when the forecast wants more than the pool holds at
    /// `max_nodes`: `none` (default: nobody is cut), `priority`, `fair`, `static`, `market`.
    #[serde(default)]
    pub allocation: Allocation,
    /// Most resources each team's workloads may request together in this pool, e.g.
    /// `{ team-a = { cpu = 16, memory = "64Gi" } }`; a team over its quota is cut by the
    /// pool's `allocation` among its own workloads first.
    #[serde(default)]
    pub quotas: BTreeMap<String, Resources>,
}

impl PoolSpec {
    /// A pool with the documented defaults.
    pub fn new(name: &str, capacity: Resources, max_nodes: u32) -> Self {
        PoolSpec {
            name: name.to_string(),
            capacity,
            boot_time: 180,
            min_nodes: 0,
            max_nodes,
            target_utilization: default_pool_target(),
            scale_down_window: default_pool_scale_down_window(),
            allocation: Allocation::None,
            quotas: BTreeMap::new(),
        }
    }

    /// Checks every field; the error names the pool and the key.
    pub fn validate(&self) -> Result<(), SpecError> {
        let p = |key: &str, message: String| SpecError::Key {
            kind: "pool",
            name: self.name.clone(),
            key: key.to_string(),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(SpecError::NoName { kind: "pool" });
        }
        self.capacity
            .validate("capacity")
            .map_err(|(key, message)| p(&key, message))?;
        if self.capacity.cpu <= 0.0 && self.capacity.memory <= 0.0 {
            return Err(p(
                "capacity",
                "capacity must offer some cpu or memory".into(),
            ));
        }
        self.validate_policy()
    }

    /// Checks every field but `capacity`: a `[[pool]]` entry that gives the policy of a pool
    /// discovered in the cluster, whose capacity is read from its nodes.
    pub fn validate_policy(&self) -> Result<(), SpecError> {
        let p = |key: &str, message: String| SpecError::Key {
            kind: "pool",
            name: self.name.clone(),
            key: key.to_string(),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(SpecError::NoName { kind: "pool" });
        }
        if self.boot_time < 0 {
            return Err(p(
                "boot_time",
                format!("boot_time must not be negative, got {}", self.boot_time),
            ));
        }
        if self.min_nodes > self.max_nodes {
            return Err(p(
                "min_nodes",
                format!(
                    "min_nodes ({}) is greater than max_nodes ({})",
                    self.min_nodes, self.max_nodes
                ),
            ));
        }
        if !(self.target_utilization > 0.0 && self.target_utilization <= 1.0) {
            return Err(p(
                "target_utilization",
                format!(
                    "target_utilization must be in (0, 1], got {}",
                    self.target_utilization
                ),
            ));
        }
        if self.scale_down_window < 0 {
            return Err(p(
                "scale_down_window",
                format!(
                    "scale_down_window must not be negative, got {}",
                    self.scale_down_window
                ),
            ));
        }
        sharing::validate_pool(self).map_err(|(key, message)| p(&key, message))
    }
}

#[cfg(test)]
mod tests;
