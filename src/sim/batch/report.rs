//! The task-queue report: every discipline × placement run, with the elastic comparison when
//! asked; printed as a table and written as `report.json`.

use super::allocation::{self, AllocationMetrics};
use super::elastic::AutoscaleReport;
use super::queue::{QueueMetrics, QueueOptions};
use super::tasks::Res;

/// The task-queue report.
#[derive(Debug, serde::Serialize)]
pub struct TaskReport {
    /// Where the tasks came from.
    pub tasks: String,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// The offered CPU load the generator was asked for (`None` for a task file).
    pub asked_load: Option<f64>,
    /// The load the tasks really offer over their arrival period, per resource
    /// ([`super::tasks::offered_load`]); `None` when they all arrive at once.
    pub offered_load: Option<Res>,
    /// First to last submit, seconds.
    pub arrival_period: f64,
    /// Discipline knobs.
    pub options: QueueOptions,
    /// One entry per discipline × placement.
    pub runs: Vec<QueueMetrics>,
    /// With `--allocation`: one entry per policy × placement, with per-tenant figures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allocations: Vec<AllocationMetrics>,
    /// With `--autoscale`: each run again on the elastic pool, compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<AutoscaleReport>,
}

impl TaskReport {
    /// The table printed on stdout.
    pub fn table(&self) -> String {
        let mut out = format!("task queues: {} on {} nodes\n", self.tasks, self.nodes);
        out.push_str(&self.load_line());
        out.push_str(&format!(
            "{:<9} {:<13} {:>10} {:>10} {:>10} {:>10} {:>6} {:>7} {:>6} {:>6} {:>7} {:>8} {:>8}\n",
            "queue",
            "placement",
            "wait-mean",
            "wait-p95",
            "compl-mean",
            "compl-p95",
            "cpu%",
            "cpu%arr",
            "mem%",
            "gpu%",
            "load-cv",
            "starved",
            "preempt"
        ));
        let pct = |v: f64| {
            if v.is_finite() {
                format!("{:.1}", v * 100.0)
            } else {
                "-".into()
            }
        };
        for m in &self.runs {
            out.push_str(&format!(
                "{:<9} {:<13} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>6} {:>7} {:>6} {:>6} {:>7.3} {:>8} {:>8}\n",
                m.discipline.as_str(),
                m.placement.as_str(),
                m.mean_wait,
                m.p95_wait,
                m.mean_completion,
                m.p95_completion,
                pct(m.utilisation.cpu),
                pct(m.utilisation_arrivals.cpu),
                pct(m.utilisation.mem),
                pct(m.utilisation.gpu),
                m.load_cv,
                m.starved,
                m.preemptions,
            ));
        }
        out.push_str(
            "times in seconds; wait = time not running (before start and between slices); \
             cpu% over the makespan (drain tail included), cpu%arr over the arrival period\n",
        );
        out.push_str(&allocation::table(&self.allocations));
        if let Some(a) = &self.autoscale {
            out.push_str(&a.table());
        }
        out
    }

    /// The offered load, asked and realised, so that "85 %" is not read as the utilisation
    /// over the makespan.
    fn load_line(&self) -> String {
        let hours = self.arrival_period / 3600.0;
        let realised = match self.offered_load {
            Some(l) => {
                let pct = |v: f64| {
                    if v.is_finite() {
                        format!("{:.1}%", v * 100.0)
                    } else {
                        "-".into()
                    }
                };
                format!(
                    "load offered over the {hours:.2} h arrival period (requested resource-time / \
                     cluster resource-time): cpu {}, mem {}, gpu {}",
                    pct(l.cpu),
                    pct(l.mem),
                    pct(l.gpu)
                )
            }
            None => {
                "every task arrives at one instant: no arrival period to offer load over".into()
            }
        };
        match self.asked_load {
            Some(asked) => format!(
                "{realised}; the generator was asked for cpu {:.0}%\n",
                asked * 100.0
            ),
            None => format!("{realised}\n"),
        }
    }
}
