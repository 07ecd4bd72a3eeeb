//! What a finished run measured: waits, completions, utilisation, balance, starvation.

use super::engine::Sim;
use super::{QueueMetrics, TaskOutcome};
use crate::sim::batch::tasks::Res;

impl Sim<'_> {
    pub(super) fn metrics(&self) -> QueueMetrics {
        let n = self.tasks.len();
        let mut waits = Vec::with_capacity(n);
        let mut comps = Vec::with_capacity(n);
        let mut timeline = Vec::with_capacity(n);
        for (i, t) in self.tasks.iter().enumerate() {
            let comp = self.finish[i] - t.submit;
            waits.push((comp - t.duration).max(0.0));
            comps.push(comp);
            timeline.push(TaskOutcome {
                id: t.id,
                start: self.first_start[i],
                finish: self.finish[i],
                node: self.on_node[i],
            });
        }
        let first = self
            .tasks
            .iter()
            .map(|t| t.submit)
            .fold(f64::INFINITY, f64::min);
        let last = self
            .finish
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let span = (last - first).max(f64::MIN_POSITIVE);
        let used = self.busy.iter().fold(Res::default(), |a, b| a.plus(b));
        // Seconds each node could take tasks within the run; on a fixed cluster, all of it.
        let node_span: Vec<f64> = if self.scaler.is_some() {
            self.life
                .iter()
                .map(|l| {
                    let from = l.ready.map_or(f64::INFINITY, |r| r.max(first));
                    let to = l.drained.or(l.removed).unwrap_or(last).min(last);
                    (to - from).max(0.0)
                })
                .collect()
        } else {
            vec![span; self.cap.len()]
        };
        let offered = if self.scaler.is_some() {
            self.cap
                .iter()
                .zip(&node_span)
                .fold(Res::default(), |a, (c, &t)| {
                    a.plus(&Res {
                        cpu: c.cpu * t,
                        mem: c.mem * t,
                        gpu: c.gpu * t,
                    })
                })
        } else {
            // Summed first, as before elastic runs existed, so fixed-cluster figures keep
            // every bit.
            let c = self.cap.iter().fold(Res::default(), |a, b| a.plus(b));
            Res {
                cpu: c.cpu * span,
                mem: c.mem * span,
                gpu: c.gpu * span,
            }
        };
        let util = |u: f64, c: f64| if c > 0.0 { u / c } else { f64::NAN };
        let (lo, hi) = self.arrivals;
        let period = if n > 0 { hi - lo } else { 0.0 };
        let arrivals = self.offered_between(lo, hi);
        let over_arrivals = |u: f64, c: f64| {
            if period > 0.0 && c > 0.0 {
                u / c
            } else {
                f64::NAN
            }
        };
        let per_node: Vec<f64> = self
            .busy
            .iter()
            .zip(&self.cap)
            .zip(&node_span)
            .filter(|(_, &t)| t > 0.0)
            .map(|((b, c), &t)| {
                let (b, c) = (b.as_array(), c.as_array());
                let v: Vec<f64> = (0..3)
                    .filter(|&r| c[r] > 0.0)
                    .map(|r| b[r] / (c[r] * t))
                    .collect();
                v.iter().sum::<f64>() / v.len().max(1) as f64
            })
            .collect();
        let mean = per_node.iter().sum::<f64>() / per_node.len().max(1) as f64;
        let var =
            per_node.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / per_node.len().max(1) as f64;
        QueueMetrics {
            discipline: self.discipline,
            placement: self.placement,
            tasks: n,
            mean_wait: mean_of(&waits),
            p95_wait: pct(&waits, 95.0),
            mean_completion: mean_of(&comps),
            p95_completion: pct(&comps, 95.0),
            makespan: if n > 0 { last - first } else { 0.0 },
            utilisation: Res {
                cpu: util(used.cpu, offered.cpu),
                mem: util(used.mem, offered.mem),
                gpu: util(used.gpu, offered.gpu),
            },
            arrival_period: period,
            utilisation_arrivals: Res {
                cpu: over_arrivals(self.busy_arrivals.cpu, arrivals.cpu),
                mem: over_arrivals(self.busy_arrivals.mem, arrivals.mem),
                gpu: over_arrivals(self.busy_arrivals.gpu, arrivals.gpu),
            },
            load_cv: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
            starved: waits
                .iter()
                .filter(|&&w| w > self.opts.starve_after)
                .count(),
            max_wait: waits.iter().copied().fold(0.0, f64::max),
            preemptions: self.preemptions,
            timeline,
        }
    }
}

impl Sim<'_> {
    /// Capacity-time of the nodes taking tasks within `[lo, hi]`: on a fixed cluster every
    /// node for the whole span; on an elastic one, each node from ready to drained or removed.
    fn offered_between(&self, lo: f64, hi: f64) -> Res {
        self.cap
            .iter()
            .zip(&self.life)
            .fold(Res::default(), |a, (c, l)| {
                let t = if self.scaler.is_some() {
                    let from = l.ready.map_or(f64::INFINITY, |r| r.max(lo));
                    let to = l.drained.or(l.removed).unwrap_or(hi).min(hi);
                    (to - from).max(0.0)
                } else {
                    (hi - lo).max(0.0)
                };
                a.plus(&c.scaled(t))
            })
    }
}

fn mean_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    crate::sim::stats::percentile(v, p).unwrap_or(0.0)
}
