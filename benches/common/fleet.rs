//! A fleet at the scale of issue #11 for benches that run the live loop itself: series served
//! by a synthetic [`Source`] (values made on request, so nothing but the loop's own rings holds
//! history), and the `prescale` configuration of its workloads, pool and nodes. Include it with
//! `#[path = "common/fleet.rs"] mod fleet;` (it needs `common/load.rs` as `load`).
//!
//! The shapes are `benches/scale.rs`'s, so the two measure the same cycle: series `i` is
//! `cpu{pod="p<i / workloads>",workload="w<i % workloads>"}` with [`super::load::value`]'s
//! load, workload `w` plans on the series of pod `p0` (20 units per replica, at most 200
//! replicas, a minute to boot, 0.25 CPU and 256 MiB each), in one pool of 32-CPU, 128 GiB nodes.

use prescale::collect::prometheus::{Answer, Point, RangeSeries};
use prescale::collect::{SignalConfig, Source, SourceError};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// The fleet's size.
#[derive(Debug, Clone, Copy)]
pub struct Fleet {
    /// Series of the signal.
    pub series: usize,
    /// Workloads; each plans on one series, and owns `series / workloads` of them.
    pub workloads: usize,
    /// Nodes at start, all in the one pool.
    pub nodes: usize,
}

impl Fleet {
    /// The labels of series `i`.
    fn labels(&self, i: usize) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("pod".to_string(), format!("p{}", i / self.workloads)),
            ("workload".to_string(), format!("w{}", i % self.workloads)),
        ])
    }

    /// The series' value at `ts`: the load of `benches/common/load.rs`, its noise seeded by the
    /// series and the time, so that a fetch answers the same however the range is cut.
    fn value(i: usize, ts: i64) -> f64 {
        let mut s = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ts as u64;
        super::load::value(i, ts, &mut s)
    }

    /// The configuration of `prescale run` for this fleet: the one signal (`cpu`, 5-minute
    /// step, eight days of lookback), `model` as `run.model`, the decision log (and with it the
    /// online calibration's state file) in `dir`, no listener, dry-run.
    pub fn config(&self, model: &Path, dir: &Path) -> String {
        let mut t = String::new();
        let log = dir.join("decisions.jsonl");
        writeln!(
            t,
            "[run]\nmodel = {:?}\ndecision_log = {:?}\n",
            model.display().to_string(),
            log.display().to_string()
        )
        .unwrap();
        writeln!(
            t,
            "[[signal]]\nname = \"cpu\"\nquery = \"synthetic\"\nstep = \"5m\"\n\
             lookback = \"8d\"\nmax_series = {}\n",
            self.series
        )
        .unwrap();
        for w in 0..self.workloads {
            writeln!(
                t,
                "[[workload]]\nname = \"w{w}\"\ndemand = 'cpu{{pod=\"p0\",workload=\"w{w}\"}}'\n\
                 replica_capacity = 20\nmax_replicas = 200\nboot_time = \"1m\"\n\
                 resources = {{ cpu = 0.25, memory = \"256Mi\" }}\n"
            )
            .unwrap();
        }
        writeln!(
            t,
            "[[pool]]\nname = \"general\"\ncapacity = {{ cpu = 32, memory = \"128Gi\" }}\n\
             max_nodes = 4000\nboot_time = \"3m\"\n"
        )
        .unwrap();
        for n in 0..self.nodes {
            writeln!(t, "[[node]]\nname = \"node-{n:04}\"\npool = \"general\"\n").unwrap();
        }
        t
    }
}

/// Answers every fetch of any signal with the fleet's series, as Prometheus would answer a
/// range query (labels per series, one point per grid step), but from no store at all.
pub struct Synthetic(pub Fleet);

impl Source for Synthetic {
    async fn check(&self, _: &SignalConfig, _: i64) -> Result<Answer<usize>, SourceError> {
        Ok(Answer {
            data: self.0.series,
            warnings: Vec::new(),
        })
    }

    async fn fetch(
        &self,
        signal: &SignalConfig,
        start: i64,
        end: i64,
    ) -> Result<Answer<Vec<RangeSeries>>, SourceError> {
        let step = signal.step.max(1);
        let data = (0..self.0.series)
            .map(|i| RangeSeries {
                metric: self.0.labels(i),
                values: (start..=end)
                    .step_by(step as usize)
                    .map(|ts| Point {
                        ts: ts as f64,
                        value: Fleet::value(i, ts),
                    })
                    .collect(),
            })
            .collect();
        Ok(Answer {
            data,
            warnings: Vec::new(),
        })
    }

    fn max_points(&self) -> i64 {
        // Prometheus' own limit, as `PrometheusSource` has it.
        10_000
    }

    fn describe(&self) -> String {
        format!("synthetic fleet of {} series", self.0.series)
    }
}
