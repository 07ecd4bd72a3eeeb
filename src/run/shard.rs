//! The live loop with `[shard]`: which workloads this replica keeps, and, on the replica that
//! plans the node pools (ordinal 0, or with `[leader_election]` the Lease holder: [`NodeRole`]),
//! the node pools planned from every workload's load: its own from this cycle, the other
//! shards' read back from Prometheus ([`crate::shard::readback`]) before the cycle.
//!
//! A workload whose load is unknown (not read back, or too old) is counted as running what it
//! runs now (its replicas on the believed nodes) at its requests, the planner holds scale-in
//! and adds nodes from known demand only (see
//! [`NodePlanner::plan_partial`](crate::plan::NodePlanner::plan_partial)); the decisions'
//! reasons name the workloads and why. Changes in which workloads are unknown are logged once.

use super::signal_of;
use super::state::{Loop, NodeRole};
use crate::collect::restrict::restrict;
use crate::config::Config;
use crate::leader::Leadership;
use crate::plan::{Decision, NodeState, UnknownLoad, WorkloadLoad, WorkloadSpec};
use crate::series::SeriesKey;
use crate::shard::agree::ShardCheck;
use crate::shard::readback::{ReadBack, ShardReader};
use crate::shard::NodePlanning;
#[cfg(test)]
use crate::shard::Staleness;
use std::collections::{BTreeMap, HashSet};

/// What [`take_shard`] leaves this replica: the series to keep (when sharded) and the other
/// shards' workloads (on a replica that may plan the node pools for them too).
pub(super) struct Share {
    pub(super) keys: Option<HashSet<SeriesKey>>,
    pub(super) others: Vec<WorkloadSpec>,
}

/// With `[shard]`, keeps only this replica's workloads and narrows each signal's query to
/// their demand series.
pub(super) fn take_shard(mut cfg: Config) -> (Config, Share) {
    let shard = cfg.shard.clone();
    if !shard.is_sharded() {
        let share = Share {
            keys: None,
            others: Vec::new(),
        };
        return (cfg, share);
    }
    let total = cfg.live.workloads.len();
    let (mine, others): (Vec<WorkloadSpec>, Vec<WorkloadSpec>) =
        std::mem::take(&mut cfg.live.workloads)
            .into_iter()
            .partition(|w| shard.owns(&w.name));
    cfg.live.workloads = mine;
    tracing::info!(
        "shard {} of {}: planning {} of {total} workloads",
        shard.ordinal,
        shard.replicas,
        cfg.live.workloads.len()
    );
    let planning = shard.node_planning(cfg.leader.is_some());
    let others = match (planning, cfg.live.pools.is_empty() && cfg.cluster.is_none()) {
        (_, true) => Vec::new(),
        (NodePlanning::WhileLeading, false) => {
            tracing::info!(
                "shard {}: plans the node pools for all {total} workloads while it holds the \
                 Lease (leader_election), the other shards' {} read back from Prometheus; its \
                 own workloads' decisions are acted on whether it holds the Lease or not",
                shard.ordinal,
                others.len()
            );
            others
        }
        (NodePlanning::Here, false) => {
            tracing::info!(
                "shard 0 plans the node pools for all {total} workloads: the other shards' \
                 {} read back from Prometheus each cycle (freshness bound {}s, shard.max_age)",
                others.len(),
                shard.max_age(cfg.live.interval)
            );
            others
        }
        (NodePlanning::Elsewhere, false) => {
            tracing::info!(
                "shard {}: node pools are planned by shard 0 (from every shard's loads, read \
                 back from Prometheus), not here; workload decisions are unaffected",
                shard.ordinal
            );
            Vec::new()
        }
    };
    let keys: HashSet<SeriesKey> = cfg
        .live
        .workloads
        .iter()
        .map(|w| w.demand.clone())
        .collect();
    for sig in &mut cfg.signals {
        let mine: Vec<SeriesKey> = keys
            .iter()
            .filter(|k| signal_of(k) == sig.name)
            .cloned()
            .collect();
        if let Some(q) = restrict(sig, &mine) {
            tracing::debug!(signal = %sig.name, series = mine.len(), "query narrowed to this shard's series");
            sig.query = q;
        }
    }
    let share = Share {
        keys: Some(keys),
        others,
    };
    (cfg, share)
}

impl Loop {
    /// Plans the node pools only while `leadership` holds the Lease (sharded with leader
    /// election: the workloads' own decisions are not gated, see [`crate::shard`]).
    pub(super) fn with_node_leadership(mut self, leadership: Leadership) -> Self {
        self.plans_nodes = NodeRole::WhileLeading(leadership);
        self
    }

    /// Checks through `check` before each cycle that every shard runs with one count.
    pub(super) fn with_shard_check(mut self, check: ShardCheck) -> Self {
        self.shard_check = Some(check);
        self
    }

    /// Before the cycle (sharded): holds this replica's workload changes while a replica in
    /// view splits the workloads over another count ([`crate::shard::agree`]), logging when
    /// the hold starts, changes and ends. A failed check holds nothing (no evidence), and is
    /// logged.
    pub(super) async fn check_shards_agree(&mut self) {
        let Some(check) = &self.shard_check else {
            return;
        };
        let held = match check.check().await {
            Ok(held) => held,
            Err(why) => {
                tracing::warn!("could not check that every shard runs with one count: {why}");
                None
            }
        };
        // An error where changes would be carried out; a dry run only says what it would do.
        let say = |what: &str, why: &str| match self.act.is_dry_run() {
            true => tracing::warn!("{what} (dry-run: nothing is carried out anyway): {why}"),
            false => tracing::error!("{what}: {why}"),
        };
        match (self.act.held(), &held) {
            (None, Some(why)) => say("holding every workload change", why),
            (Some(before), Some(why)) if before != why => {
                say("still holding every workload change", why)
            }
            (Some(_), None) => {
                tracing::warn!("every shard in view runs with one count: acting again")
            }
            _ => {}
        }
        self.act.hold_changes(held);
    }

    /// Reads the other shards' loads through `reader` each cycle (ordinal 0).
    pub(super) fn with_shard_reader(mut self, reader: ShardReader) -> Self {
        self.shard_reader = Some(reader);
        self
    }

    /// Before the cycle, on the replica that plans nodes for other shards too: reads their
    /// workloads' loads back, logging which became unknown or known again. Not while another
    /// replica holds the Lease: nothing would read them.
    pub(super) async fn read_other_shards(&mut self, now: i64) {
        if self.others.is_empty() || self.pools.is_empty() || !self.plans_nodes.now() {
            // Not reading them: no view of the other shards to export, and none kept to plan
            // from should this replica take the Lease before the node planning: loads read
            // while it last led would pass for this cycle's (stale, yet "known").
            self.stale.forget();
            self.remote.clear();
            return;
        }
        let wanted: Vec<String> = self.others.iter().map(|w| w.name.clone()).collect();
        let read = match &self.shard_reader {
            Some(r) => r.read(&wanted, now).await,
            None => wanted
                .iter()
                .map(|w| {
                    let why = "no Prometheus to read the other shards' loads from (replay)";
                    (w.clone(), Err(why.to_string()))
                })
                .collect(),
        };
        let unknown: BTreeMap<&String, &String> = read
            .iter()
            .filter_map(|(w, r)| r.as_ref().err().map(|why| (w, why)))
            .collect();
        let before: HashSet<&String> = self
            .remote
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(w, _)| w)
            .collect();
        let newly: Vec<String> = unknown
            .iter()
            .filter(|(w, _)| !before.contains(*w))
            .map(|(w, why)| format!("'{w}': {why}"))
            .collect();
        if !newly.is_empty() {
            tracing::warn!(
                "node planning: {} other shards' workload loads unknown, no node removed while \
                 they are: {}",
                newly.len(),
                newly.join("; ")
            );
        }
        let back = before.iter().filter(|w| !unknown.contains_key(*w)).count();
        if back > 0 {
            tracing::info!("node planning: {back} other shards' workload loads read again");
        }
        self.remote = read;
        self.stale.observe(&self.others, &self.remote, now);
    }
}

impl Loop {
    /// After the cycle's decisions are believed: the other shards' workloads whose load was
    /// read back are believed placed no more than their shards planned (their scale-downs are
    /// no decision here, see [`BelievedState::trim_placed`](crate::plan::BelievedState::trim_placed)),
    /// so an unknown one later counts as running what its shard last planned.
    pub(super) fn follow_other_shards(&mut self) {
        for (w, r) in &self.remote {
            if let Ok(r) = r {
                self.believed.trim_placed(w, r.desired);
            }
        }
    }
}

/// The node planner's input for the other shards' workloads (`others`, as read back in
/// `remote`; an unknown one runs what it has on `nodes`), and which are unknown and why (and
/// `group`, what they have in common: a stale shard), for
/// [`crate::plan::NodePlanner::plan_partial`] (which holds scale-in only in the pools they
/// can be in).
pub(super) fn other_loads<'a>(
    others: &'a [WorkloadSpec],
    remote: &ReadBack,
    nodes: &[NodeState],
    group: impl Fn(&str) -> Option<String>,
) -> (Vec<WorkloadLoad<'a>>, Vec<UnknownLoad>) {
    let mut loads = Vec::with_capacity(others.len());
    let mut unknown = Vec::new();
    for spec in others {
        match remote.get(&spec.name) {
            Some(Ok(r)) => loads.push(WorkloadLoad {
                spec,
                desired: r.desired,
                utilization: r.utilization,
            }),
            other => {
                let why = match other {
                    Some(Err(why)) => why.as_str(),
                    _ => "not read back yet",
                };
                unknown.push(UnknownLoad {
                    workload: spec.name.clone(),
                    why: why.to_string(),
                    group: group(&spec.name),
                });
                loads.push(WorkloadLoad {
                    spec,
                    desired: placed(nodes, &spec.name),
                    utilization: 1.0,
                });
            }
        }
    }
    (loads, unknown)
}

/// Replicas of `workload` on `nodes`.
fn placed(nodes: &[NodeState], workload: &str) -> u32 {
    nodes
        .iter()
        .flat_map(|n| &n.replicas)
        .filter(|(w, _)| w == workload)
        .map(|(_, c)| *c)
        .sum()
}

/// Each of this replica's workloads' CPU utilisation at its forecast peak, as the node planner
/// counts it (exported for the shard that plans the node pools). `decisions` and `peaks` are
/// in `workloads`' order.
pub(super) fn own_utilizations(
    workloads: &[WorkloadSpec],
    decisions: &[Decision],
    peaks: impl IntoIterator<Item = Option<f64>>,
) -> Vec<(String, f64)> {
    workloads
        .iter()
        .zip(decisions.iter().zip(peaks))
        .map(|(spec, (d, peak))| {
            let u = WorkloadLoad::new(spec, d.to, peak).utilization;
            (spec.name.clone(), u)
        })
        .collect()
}

#[cfg(test)]
mod tests;
