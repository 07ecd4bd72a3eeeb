//! Planning in the live loop: the scale planner for each workload this replica keeps, then
//! (unsharded, or on ordinal 0) the node planner for every workload's load, the other shards'
//! as read back.

use super::forecasts::Forecasts;
use super::state::Loop;
use crate::collect::Store;
use crate::plan::{Decision, WorkloadInput, WorkloadLoad};

/// The demand peak one workload was planned for this cycle: what the node planner provisions
/// for and the KEDA scaler serves, computed once here so that neither applies a rule of its
/// own (they did once, and served a budget workload's corrected p95 while it was planned on
/// the uncorrected p99 times its margin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Peak {
    /// The forecast peak over the lead, before headroom: the forecast at the workload's
    /// `quantile`, or with `max_short` the budget's level times its calibrated margin (or the
    /// demand floor, if higher). `None` without a usable forecast.
    pub(super) value: Option<f64>,
    /// The forecast level `value` is read at: the workload's `quantile`, or its budget's level.
    pub(super) level: f64,
    /// The window of the forecast planned with (the lead it looks ahead), seconds.
    pub(super) lead: Option<i64>,
}

impl Loop {
    /// The scale planner's decision for every workload, in configuration order, with the
    /// demand peak it planned for ([`Peak`]), which the node planner provisions for.
    pub(super) fn plan_workloads(
        &mut self,
        store: &Store,
        now: i64,
        f: &Forecasts,
    ) -> (Vec<Decision>, Vec<Peak>) {
        let mut decisions = Vec::with_capacity(self.workloads.len());
        let mut peaks = Vec::with_capacity(self.workloads.len());
        for spec in &self.workloads {
            // Looked up, not taken: several workloads may read one demand series (a canary, a
            // service split in two), and each must plan from its forecast.
            let (forecast, current) = f.for_workload(spec);
            let current_replicas = self
                .believed
                .replicas(&spec.name)
                .unwrap_or(spec.min_replicas);
            // The step is the demand's newest sample, not the clock: a cycle that brought no
            // new sample is not counted again. What runs is what was decided before it (the
            // loop cannot see readiness; a replica still booting counts as serving).
            if let Some(ts) = store
                .entry(&spec.demand)
                .and_then(|e| e.ring().newest_timestamp())
            {
                self.risk.observe(spec, ts, current, current_replicas);
            }
            let input = WorkloadInput {
                now,
                current_replicas,
                current_demand: current,
                forecast: forecast.as_ref(),
                data_stale: f.stale.contains(&spec.demand)
                    || store.entry(&spec.demand).is_none()
                    || self.replicas_unknown.contains(&spec.name),
                model_healthy: forecast
                    .as_ref()
                    .is_none_or(|f| f.quantiles.iter().all(|q| q.1.is_finite())),
                forecast_weight: self.series.accuracy.weight(&spec.demand),
                risk: self.risk.level(spec),
            };
            let risk = input.risk;
            decisions.push(self.replicas.plan(spec, &input));
            peaks.push(Peak {
                value: forecast.as_ref().and_then(|f| match risk {
                    Some(r) => r.provision(f),
                    None => f.quantile(spec.quantile),
                }),
                level: risk.map_or(spec.quantile, |r| r.base),
                lead: forecast.as_ref().map(|f| f.window),
            });
        }
        (decisions, peaks)
    }

    /// The node planner's decisions for the workloads' new replica counts, if pools are
    /// configured. `workload_decisions` are [`plan_workloads`](Self::plan_workloads)'s, in
    /// order, so each lines up with its spec and its peak.
    pub(super) fn plan_nodes(
        &mut self,
        now: i64,
        workload_decisions: &[Decision],
        peaks: &[Peak],
    ) -> Vec<Decision> {
        // Nodes that could not be read are not planned: removing one unseen is not advice.
        // Nor by a shard not planning them (now), which sees only its share of the load.
        if self.pools.is_empty() || self.nodes_unknown.is_some() || !self.plans_nodes.now() {
            self.nodes.not_planned();
            return Vec::new();
        }
        let mut loads: Vec<WorkloadLoad> = self
            .workloads
            .iter()
            .zip(workload_decisions.iter().zip(peaks))
            .map(|(spec, (d, peak))| WorkloadLoad::new(spec, d.to, peak.value))
            .collect();
        // On ordinal 0 of several: every other shard's workload too, as read back.
        let (others, unknown) =
            super::shard::other_loads(&self.others, &self.remote, self.believed.nodes(), |w| {
                self.stale.group_of(w, now)
            });
        loads.extend(others);
        // Timestamped right after the leadership check: how a test (or an operator reading
        // a handover) tells which replica planned the pools when, to the microsecond.
        tracing::debug!(
            "planning the node pools for {} workloads ({} of unknown load)",
            loads.len(),
            unknown.len()
        );
        self.nodes
            .plan_partial(now, &self.pools, self.believed.nodes(), &loads, &unknown)
    }
}
