//! What an allocation run measured, overall and per tenant, and Jain's fairness index.

use super::engine::AllocSim;
use super::Allocation;
use crate::sim::batch::queue::Placement;
use crate::sim::batch::tasks::Res;
pub use crate::sim::stats::jain_index;
use crate::sim::stats::percentile;
use serde::Serialize;

/// The figures of one allocation run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllocationMetrics {
    /// The policy.
    pub allocation: Allocation,
    /// The placement.
    pub placement: Placement,
    /// Tasks run.
    pub tasks: usize,
    /// Mean wait (start − submit), seconds.
    pub mean_wait: f64,
    /// 95th percentile of wait, seconds.
    pub p95_wait: f64,
    /// Mean completion time (finish − submit), seconds.
    pub mean_completion: f64,
    /// 95th percentile of completion time, seconds.
    pub p95_completion: f64,
    /// First submit to last completion, seconds.
    pub makespan: f64,
    /// Used / offered resource-time over the makespan (`NaN`: the cluster has none).
    pub utilisation: Res,
    /// Used / offered resource-time over the arrival period (first to last submit).
    pub utilisation_arrivals: Res,
    /// Coefficient of variation of the nodes' utilisation over the makespan: 0 = even.
    pub load_cv: f64,
    /// Jain's fairness index across tenants of their mean slowdown (completion / run
    /// time): 1 when every tenant's tasks are slowed alike, 1 / tenants at the worst.
    pub jain: f64,
    /// Tasks that waited longer than the starvation threshold.
    pub starved: usize,
    /// The threshold, seconds.
    pub starve_after: f64,
    /// Market policy only: the lowest bid started while other tasks were waiting, the price
    /// capacity cleared at (`None`: another policy, or nobody ever waited).
    pub clearing_bid: Option<f64>,
    /// The same figures per tenant, by name.
    pub tenants: Vec<TenantMetrics>,
    /// Per task, in task order: (start, finish), for tests.
    #[serde(skip)]
    pub timeline: Vec<(f64, f64)>,
}

/// One tenant's figures in an allocation run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantMetrics {
    /// The tenant.
    pub tenant: String,
    /// Its tasks.
    pub tasks: usize,
    /// Mean wait, seconds.
    pub mean_wait: f64,
    /// 95th percentile of wait, seconds.
    pub p95_wait: f64,
    /// Mean completion time, seconds.
    pub mean_completion: f64,
    /// 95th percentile of completion time, seconds.
    pub p95_completion: f64,
    /// Mean slowdown: completion / run time (1 = never waited).
    pub mean_slowdown: f64,
    /// Its resource-time over the cluster's over the makespan: its share of the utilisation.
    pub utilisation: Res,
    /// Its tasks that waited longer than the starvation threshold.
    pub starved: usize,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn p95(v: &[f64]) -> f64 {
    percentile(v, 95.0).unwrap_or(0.0)
}

fn share(used: &Res, cap: &Res, span: f64) -> Res {
    let f = |u: f64, c: f64| {
        if c > 0.0 && span > 0.0 {
            u / (c * span)
        } else {
            f64::NAN
        }
    };
    Res {
        cpu: f(used.cpu, cap.cpu),
        mem: f(used.mem, cap.mem),
        gpu: f(used.gpu, cap.gpu),
    }
}

impl AllocSim<'_> {
    pub(super) fn metrics(&self, starve_after: f64) -> AllocationMetrics {
        let waits: Vec<f64> = self
            .tasks
            .iter()
            .zip(&self.start)
            .map(|(t, s)| s - t.submit)
            .collect();
        let comps: Vec<f64> = self
            .tasks
            .iter()
            .zip(&self.finish)
            .map(|(t, f)| f - t.submit)
            .collect();
        let (first, last_submit) = self.arrivals;
        let last = self.finish.iter().copied().fold(first, f64::max);
        let span = if self.tasks.is_empty() {
            0.0
        } else {
            last - first
        };
        let used = self.busy.iter().fold(Res::default(), |a, b| a.plus(b));
        let per_node: Vec<f64> = self
            .busy
            .iter()
            .zip(&self.cap)
            .map(|(b, c)| {
                let u = share(b, c, span).as_array();
                let v: Vec<f64> = u.into_iter().filter(|x| x.is_finite()).collect();
                mean(&v)
            })
            .collect();
        let m = mean(&per_node);
        let sd = mean(&per_node.iter().map(|u| (u - m).powi(2)).collect::<Vec<_>>()).sqrt();
        let starved = |w: &f64| *w > starve_after;
        let tenants: Vec<TenantMetrics> = (0..self.tenants.len())
            .map(|k| {
                let mine: Vec<usize> = (0..self.tasks.len())
                    .filter(|&i| self.tenant_of[i] == k)
                    .collect();
                let w: Vec<f64> = mine.iter().map(|&i| waits[i]).collect();
                let c: Vec<f64> = mine.iter().map(|&i| comps[i]).collect();
                let slow: Vec<f64> = mine
                    .iter()
                    .map(|&i| comps[i] / self.tasks[i].duration)
                    .collect();
                TenantMetrics {
                    tenant: self.tenants[k].clone(),
                    tasks: mine.len(),
                    mean_wait: mean(&w),
                    p95_wait: p95(&w),
                    mean_completion: mean(&c),
                    p95_completion: p95(&c),
                    mean_slowdown: mean(&slow),
                    utilisation: share(&self.tenant_busy[k], &self.total, span),
                    starved: w.iter().filter(|w| starved(w)).count(),
                }
            })
            .collect();
        let slowdowns: Vec<f64> = tenants.iter().map(|t| t.mean_slowdown).collect();
        AllocationMetrics {
            allocation: self.allocation,
            placement: self.placement,
            tasks: self.tasks.len(),
            mean_wait: mean(&waits),
            p95_wait: p95(&waits),
            mean_completion: mean(&comps),
            p95_completion: p95(&comps),
            makespan: span,
            utilisation: share(&used, &self.total, span),
            utilisation_arrivals: share(&self.busy_arrivals, &self.total, last_submit - first),
            load_cv: if m > 0.0 { sd / m } else { 0.0 },
            jain: jain_index(&slowdowns),
            starved: waits.iter().filter(|w| starved(w)).count(),
            starve_after,
            clearing_bid: self.clearing_bid,
            tenants,
            timeline: self
                .start
                .iter()
                .copied()
                .zip(self.finish.iter().copied())
                .collect(),
        }
    }
}
