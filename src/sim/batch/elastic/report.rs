//! [`AutoscaleReport`]: the fixed cluster against the elastic pool, as a table, JSON, CSV and
//! charts.

use super::{ElasticPool, ElasticRun, Source};
use crate::atomic_file::write_atomic;
use crate::chart::{self, Chart, Line};
use crate::series::format_duration;
use crate::sim::batch::error::BatchError;
use crate::sim::batch::queue::ClusterLog;
use crate::sim::batch::tasks::Node;
use serde::Serialize;
use std::path::{Path, PathBuf};

pub(super) fn shape_text(n: &Node) -> String {
    format!("cpu {} mem {} gpu {}", n.cpu, n.mem, n.gpu)
}

/// The autoscaling part of the task report.
#[derive(Debug, Clone, Serialize)]
pub struct AutoscaleReport {
    /// The pool.
    pub pool: ElasticPool,
    /// Slices per node in the planner's view.
    pub slices_per_node: u32,
    /// Nodes of the fixed cluster.
    pub fixed_nodes: usize,
    /// One per queue × placement.
    pub runs: Vec<ElasticRun>,
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}", v * 100.0)
    } else {
        "-".into()
    }
}

impl AutoscaleReport {
    /// The comparison table.
    pub fn table(&self) -> String {
        let p = &self.pool;
        let mut out = format!(
            "\nfixed {} nodes vs autoscaled pool ({}; boot {}, nodes {}..{}, scale-down window {}, planned every {}, forecast window {}, p{:.0}, headroom {:.0}%)\n",
            self.fixed_nodes,
            shape_text(&p.shape),
            format_duration(p.boot_time),
            p.min_nodes,
            p.max_nodes,
            format_duration(p.scale_down_window),
            format_duration(p.interval),
            format_duration(p.window()),
            p.quantile * 100.0,
            p.headroom * 100.0,
        );
        out.push_str(&format!(
            "{:<9} {:<13} {:<10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>6} {:>6} {:>5} {:>7} {:>5} {:>5}\n",
            "queue", "placement", "cluster", "wait-mean", "wait-p95", "compl-mean", "makespan",
            "node-h", "cpu%", "mem%", "added", "removed", "peak", "low"
        ));
        for r in &self.runs {
            let rows = [
                ("fixed", &r.fixed, r.fixed_node_hours, None),
                (
                    "autoscaled",
                    &r.autoscaled,
                    r.cluster.node_hours,
                    Some(&r.cluster),
                ),
            ];
            for (name, m, hours, c) in rows {
                let counts = |f: fn(&ClusterLog) -> usize| {
                    c.map_or(self.fixed_nodes.to_string(), |c| f(c).to_string())
                };
                out.push_str(&format!(
                    "{:<9} {:<13} {:<10} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9.2} {:>6} {:>6} {:>5} {:>7} {:>5} {:>5}\n",
                    m.discipline.as_str(),
                    m.placement.as_str(),
                    name,
                    m.mean_wait,
                    m.p95_wait,
                    m.mean_completion,
                    m.makespan,
                    hours,
                    pct(m.utilisation.cpu),
                    pct(m.utilisation.mem),
                    c.map_or("-".into(), |c| c.added.to_string()),
                    c.map_or("-".into(), |c| c.removed.to_string()),
                    counts(|c| c.peak_nodes),
                    counts(|c| c.min_nodes),
                ));
            }
        }
        if let Some(r) = self.runs.first() {
            out.push_str(&format!(
                "forecasts: {} ({} cycles forest, {} fallback in the first run)\n",
                r.forecaster, r.forest_cycles, r.fallback_cycles
            ));
        }
        out.push_str("node-h = node-hours paid from the first submit to the last completion (booting and draining nodes included); utilisation is over the hours nodes took tasks\n");
        out
    }

    /// Writes `nodes-<queue>-<placement>.png` and `.csv` (node count, backlog and forecast
    /// per planning cycle), `node-decisions-<queue>-<placement>.csv`, and `nodes.png` (the
    /// first run's chart). Returns the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, BatchError> {
        let mut written = Vec::new();
        for (i, r) in self.runs.iter().enumerate() {
            let stem = format!(
                "{}-{}",
                r.fixed.discipline.as_str(),
                r.fixed.placement.as_str()
            );
            let png = dir.join(format!("nodes-{stem}.png"));
            self.chart(r, &png)?;
            written.push(png.clone());
            if i == 0 {
                let main = dir.join("nodes.png");
                self.chart(r, &main)?;
                written.push(main);
            }
            let csv_path = dir.join(format!("nodes-{stem}.csv"));
            write_atomic(&csv_path, |w| {
                let mut out = csv::Writer::from_writer(w);
                out.write_record([
                    "t",
                    "backlog_cpu",
                    "backlog_mem",
                    "backlog_gpu",
                    "backlog_nodes",
                    "forecast_nodes",
                    "forecaster",
                    "desired_slices",
                    "ready",
                    "paid",
                ])?;
                for s in &r.timeline {
                    out.write_record([
                        s.t.to_string(),
                        s.backlog[0].to_string(),
                        s.backlog[1].to_string(),
                        s.backlog[2].to_string(),
                        s.backlog_nodes.to_string(),
                        s.forecast_nodes.to_string(),
                        match s.source {
                            Source::Forest => "forest".into(),
                            Source::Fallback => "fallback".into(),
                        },
                        s.desired_slices.to_string(),
                        s.ready.to_string(),
                        s.paid.to_string(),
                    ])?;
                }
                out.flush()?;
                Ok(())
            })
            .map_err(|error| BatchError::Write {
                path: csv_path.to_path_buf(),
                error,
            })?;
            written.push(csv_path);
            let dec_path = dir.join(format!("node-decisions-{stem}.csv"));
            write_atomic(&dec_path, |w| {
                let mut out = csv::Writer::from_writer(w);
                out.write_record(["t", "kind", "from", "to", "node", "reason"])?;
                for d in &r.decisions {
                    out.write_record([
                        d.t.to_string(),
                        d.kind.clone(),
                        d.from.to_string(),
                        d.to.to_string(),
                        d.node.clone().unwrap_or_default(),
                        d.reason.clone(),
                    ])?;
                }
                out.flush()?;
                Ok(())
            })
            .map_err(|error| BatchError::Write {
                path: dec_path.to_path_buf(),
                error,
            })?;
            written.push(dec_path);
        }
        Ok(written)
    }

    fn chart(&self, r: &ElasticRun, path: &Path) -> Result<(), BatchError> {
        let x: Vec<f64> = r.timeline.iter().map(|s| s.t / 3600.0).collect();
        let paid: Vec<f64> = r.timeline.iter().map(|s| s.paid as f64).collect();
        let ready: Vec<f64> = r.timeline.iter().map(|s| s.ready as f64).collect();
        let fixed = vec![self.fixed_nodes as f64; x.len()];
        let backlog: Vec<f64> = r.timeline.iter().map(|s| s.backlog_nodes).collect();
        let forecast: Vec<f64> = r.timeline.iter().map(|s| s.forecast_nodes).collect();
        let title = format!(
            "{} × {}: nodes, autoscaled vs fixed",
            r.fixed.discipline.as_str(),
            r.fixed.placement.as_str()
        );
        chart::draw(
            &Chart {
                title: &title,
                x_label: "hours since the first submit",
                y_label: "nodes",
                x: &x,
                lines: vec![
                    Line {
                        label: "backlog (queued + running), in nodes",
                        y: &backlog,
                        rgb: (0, 0, 0),
                    },
                    Line {
                        label: "forecast peak, in nodes",
                        y: &forecast,
                        rgb: (255, 127, 14),
                    },
                    Line {
                        label: "autoscaled: nodes paid (booting + ready + draining)",
                        y: &paid,
                        rgb: (31, 119, 180),
                    },
                    Line {
                        label: "autoscaled: nodes ready",
                        y: &ready,
                        rgb: (44, 160, 44),
                    },
                    Line {
                        label: "fixed cluster",
                        y: &fixed,
                        rgb: (214, 39, 40),
                    },
                ],
                bands: Vec::new(),
            },
            path,
            1400,
            600,
        )?;
        Ok(())
    }
}
