//! Sharding: N replicas of a StatefulSet split the workloads between them (`[shard]`).
//!
//! Each workload belongs to exactly one replica ordinal, chosen by rendezvous hashing of the
//! workload's name ([`hash`]), so every replica computes the same split from the configuration
//! alone: no replica talks to another. A replica plans, exports and collects only its own
//! workloads (the collector narrows each signal's query to their demand series, see
//! [`crate::collect::restrict`]), so memory and cycle time fall as 1/N.
//!
//! The ordinal comes from `shard.ordinal`, else from the trailing `-<n>` of `POD_NAME`, then of
//! `HOSTNAME`, which is how a StatefulSet names its pods (`prescale-2`). The number of
//! replicas is `shard.replicas`; it must match the StatefulSet's `replicas`, or workloads go
//! unplanned (a smaller N) or are planned twice (a larger one). While the replicas in view
//! disagree on it (a resize rolling out), every shard holds its changes ([`agree`]), so a
//! workload owned under both counts is never acted on twice.
//!
//! Node-level decisions need every workload's forecast, which no single shard has. One
//! replica plans the node pools from all of them: its own workloads' loads from its own cycle,
//! every other workload's read back from Prometheus, which scrapes every shard's `/metrics`
//! ([`readback`]). No protocol between replicas is needed, at the cost of up to one scrape
//! interval of delay; a workload whose load is missing or older than `shard.max_age` is
//! unknown, which holds node scale-in and leaves scale-out to known demand. Which replica
//! plans them is [`NodePlanning`]: ordinal 0, or with `[leader_election]` the Lease holder,
//! whichever shard that is (see the README's "N shards" section).
//!
//! With both, the Lease elects only the node planner. Each shard still acts on its own
//! workloads whether or not it holds the Lease: the StatefulSet runs one pod per ordinal, so
//! no two replicas own a workload, and gating them on one Lease would leave every other
//! shard's workloads unchanged. The node pools are the one thing all shards share, so they
//! need the one elected planner; a fixed ordinal 0 would leave them unplanned for as long as
//! that one pod is down, the Lease hands them to another shard within lease duration + retry
//! period.

pub mod agree;
pub mod hash;
pub mod readback;
pub mod selector;
mod stale;
#[cfg(test)]
mod tests;

pub use stale::Staleness;

use serde::Deserialize;

/// `[shard]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShard {
    /// Replicas the workloads are split over; default 1 (no sharding).
    pub replicas: Option<i64>,
    /// This replica's ordinal; default: the trailing `-<n>` of `POD_NAME`, then `HOSTNAME`.
    pub ordinal: Option<i64>,
    /// Oldest plan of another shard that ordinal 0 still plans nodes from, e.g. `"3m"`;
    /// default [`default_max_age`] of `run.interval`.
    pub max_age: Option<String>,
    /// Extra label matchers for the read-back, e.g. `job="prescale"` ([`selector`]).
    pub selector: Option<String>,
}

/// Most replicas accepted: far beyond any real deployment, it catches a typo.
pub const MAX_REPLICAS: i64 = 1024;

/// Which replica plans the node pools, as one replica sees it ([`ShardConfig::node_planning`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePlanning {
    /// This one, every cycle: unsharded, or ordinal 0 of several without leader election.
    Here,
    /// Ordinal 0, not this one (sharded, no leader election): this one plans no pools.
    Elsewhere,
    /// The Lease holder (sharded with leader election): this one in the cycles it holds it,
    /// reading the other shards' loads back as ordinal 0 would.
    WhileLeading,
}

impl NodePlanning {
    /// True when this replica may plan the node pools in some cycle, so it must know every
    /// other shard's workloads and read their loads back.
    pub fn ever(self) -> bool {
        self != NodePlanning::Elsewhere
    }
}

/// Which share of the workloads this replica plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardConfig {
    /// Replicas the workloads are split over (1: this process plans everything).
    pub replicas: u32,
    /// This replica's ordinal, `< replicas`.
    pub ordinal: u32,
    /// `shard.max_age` in seconds, if set (see [`ShardConfig::max_age`]).
    pub max_age: Option<i64>,
    /// `shard.selector`, checked and normalised ([`selector::parse`]): the label matchers
    /// the read-back adds to its queries, so only this deployment's shards answer.
    pub selector: Option<String>,
}

/// Two of the shards' cycles (`interval`, seconds) plus one minute, Prometheus' default scrape
/// interval: a plan read back is at most a cycle plus a scrape old when all is well.
pub fn default_max_age(interval: i64) -> i64 {
    interval.max(1).saturating_mul(2).saturating_add(60)
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            replicas: 1,
            ordinal: 0,
            max_age: None,
            selector: None,
        }
    }
}

impl ShardConfig {
    /// Shard `ordinal` of `replicas` (tests, benches).
    pub fn new(replicas: u32, ordinal: u32) -> Self {
        ShardConfig {
            replicas,
            ordinal,
            max_age: None,
            selector: None,
        }
    }

    /// Who plans the node pools, seen from this replica; `elected`: `[leader_election]` is on.
    pub fn node_planning(&self, elected: bool) -> NodePlanning {
        match (self.is_sharded(), elected, self.ordinal) {
            // Unsharded, a Lease gates every action (the act stage's), node decisions included.
            (false, _, _) => NodePlanning::Here,
            (true, true, _) => NodePlanning::WhileLeading,
            (true, false, 0) => NodePlanning::Here,
            (true, false, _) => NodePlanning::Elsewhere,
        }
    }

    /// The freshness bound for other shards' plans, seconds: `shard.max_age`, else
    /// [`default_max_age`] of the loop's `interval`.
    pub fn max_age(&self, interval: i64) -> i64 {
        self.max_age.unwrap_or_else(|| default_max_age(interval))
    }

    /// True when the workloads are split (more than one replica).
    pub fn is_sharded(&self) -> bool {
        self.replicas > 1
    }

    /// True when this replica plans the workload named `name`.
    pub fn owns(&self, name: &str) -> bool {
        !self.is_sharded() || hash::owner(name, self.replicas) == self.ordinal
    }

    /// Checks `[shard]`, reading `POD_NAME`/`HOSTNAME` through `env` when the ordinal is not
    /// written; problems are `(key, message)`.
    pub(crate) fn validate(
        raw: Option<&RawShard>,
        env: impl Fn(&str) -> Option<String>,
        problems: &mut Vec<(String, String)>,
    ) -> ShardConfig {
        let Some(raw) = raw else {
            return ShardConfig::default();
        };
        let replicas = match raw.replicas {
            None => 1,
            Some(n) if (1..=MAX_REPLICAS).contains(&n) => n as u32,
            Some(n) => {
                problems.push((
                    "shard.replicas".into(),
                    format!("{n} is not between 1 and {MAX_REPLICAS}"),
                ));
                return ShardConfig::default();
            }
        };
        let ordinal = match raw.ordinal {
            Some(o) if o < 0 => {
                problems.push(("shard.ordinal".into(), format!("{o} is negative")));
                return ShardConfig::default();
            }
            Some(o) => {
                // One configuration file is usually every pod's: an ordinal written in it
                // gives every pod the same share (several actors on it, the rest unplanned).
                // A StatefulSet pod's own ordinal that disagrees says that is happening.
                let pod = env("POD_NAME").and_then(|v| ordinal_of(&v));
                if let Some(p) = pod.filter(|&p| p != o && p < i64::from(replicas)) {
                    problems.push((
                        "shard.ordinal".into(),
                        format!(
                            "{o}, but POD_NAME says this pod is ordinal {p}: an ordinal in a \
                             file every pod reads gives them all one share; leave it out \
                             to take it from the pod name"
                        ),
                    ));
                    return ShardConfig::default();
                }
                o
            }
            None if replicas == 1 => 0,
            None => match ordinal_from_env(&env) {
                Ok(o) => o,
                Err(why) => {
                    problems.push(("shard.ordinal".into(), why));
                    return ShardConfig::default();
                }
            },
        };
        if ordinal >= i64::from(replicas) {
            problems.push((
                "shard.ordinal".into(),
                format!(
                    "{ordinal} is not below shard.replicas = {replicas} (ordinals are 0..{})",
                    replicas - 1
                ),
            ));
            return ShardConfig::default();
        }
        let max_age = match raw.max_age.as_deref().map(crate::series::parse_duration) {
            None => None,
            Some(Ok(s)) if s > 0 => Some(s),
            Some(Ok(_)) => {
                problems.push(("shard.max_age".into(), "must be longer than 0s".into()));
                None
            }
            Some(Err(e)) => {
                problems.push(("shard.max_age".into(), e.to_string()));
                None
            }
        };
        let selector = raw
            .selector
            .as_deref()
            .and_then(|t| match selector::parse(t) {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(("shard.selector".into(), e));
                    None
                }
            });
        ShardConfig {
            replicas,
            ordinal: ordinal as u32,
            max_age,
            selector,
        }
    }
}

/// The ordinal of a StatefulSet pod name: its trailing `-<n>` (`prescale-2` → 2).
pub fn ordinal_of(pod_name: &str) -> Option<i64> {
    let (_, n) = pod_name.trim().rsplit_once('-')?;
    if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The ordinal from `POD_NAME`, else `HOSTNAME`; the error names both variables and what
/// they held.
fn ordinal_from_env(env: &impl Fn(&str) -> Option<String>) -> Result<i64, String> {
    let mut seen = Vec::new();
    for var in ["POD_NAME", "HOSTNAME"] {
        match env(var).filter(|v| !v.trim().is_empty()) {
            Some(v) => match ordinal_of(&v) {
                Some(o) => return Ok(o),
                None => seen.push(format!("{var} is '{v}'")),
            },
            None => seen.push(format!("{var} is not set")),
        }
    }
    Err(format!(
        "not set, and no ordinal could be read from the pod name ({}): set shard.ordinal, or \
         run as a StatefulSet pod named <name>-<ordinal>",
        seen.join(", ")
    ))
}
