//! The live loop stepped one cycle at a time by its caller: [`Stepper`].
//!
//! `run` owns its clock, its signals and its listeners, so nothing outside it can time one of
//! its cycles. The stepper is the smallest seam that can: it builds the loop as `run` does in
//! dry-run (model check, act stage with the decision log, exporter state, the log's counts and
//! the persisted online state recovered, backfill), fed by any [`Source`], and runs each cycle
//! through the very function `run`'s loop calls (`Loop::step`: poll, replicas, the cycle,
//! retraining's turn, the state saved). What it leaves out is what `run` does *around*
//! cycles, none of which a bench needs: listeners (`export.listen`, `export.keda_listen`),
//! signals, the clock's waits. It refuses what it does not build (sharding, leader election,
//! `[cluster]`, Prometheus-only readers) rather than run a loop unlike the configured one.

use super::state::Loop;
use super::{build_loop, check_model, export_state, make_act, RunError, RunOptions};
use crate::collect::{Collector, RetryPolicy, Source};
use crate::config::Config;
use crate::export::ExportState;
use crate::forecast::Model;
use crate::plan::Decision;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// The live loop in dry-run, driven one cycle at a time (for benchmarks and tests).
///
/// Built by [`Stepper::new`] as `prescale run` builds its loop; each [`Stepper::cycle`] is one
/// of `run`'s cycles at the time given; [`Stepper::finish`] does what `run` does after its
/// last cycle (the state saved, the decision log flushed).
pub struct Stepper<S: Source> {
    lp: Loop,
    collector: Collector<S>,
    cycles: u64,
    /// Kept so the act stage's stop receiver stays open; nothing ever asks it to stop.
    _stop: tokio::sync::watch::Sender<bool>,
}

impl<S: Source + Send + Sync> Stepper<S> {
    /// The loop of `cfg` in dry-run (the model at `run.model`, decisions to `out` and
    /// `run.decision_log`), reading from `source`, with every signal backfilled to `start`
    /// (Unix seconds), ready for its first cycle. `cfg` must be unsharded, without leader
    /// election or `[cluster]`: those need Prometheus and the Kubernetes API, which `run` alone
    /// sets up.
    pub async fn new(
        cfg: Config,
        source: S,
        start: i64,
        out: Box<dyn Write + Send>,
    ) -> Result<Self, RunError> {
        if cfg.live.workloads.is_empty() {
            return Err(RunError::NoWorkloads { path: cfg.path });
        }
        let unsupported = [
            (cfg.shard.is_sharded(), "[shard]"),
            (cfg.leader.is_some(), "[leader_election]"),
            (cfg.cluster.is_some(), "[cluster]"),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(on, _)| *on) {
            return Err(RunError::NotSteppable { what });
        }
        let model_path = cfg.live.model.clone().ok_or(RunError::NoModel)?;
        let model = Model::load(&model_path)?;
        check_model(&cfg, &model)?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let opts = RunOptions::default();
        let act = make_act(&cfg, &opts, out, stop_rx).await?;
        let state = export_state(&cfg);
        let mut lp = build_loop(&cfg, model, &model_path, act, state, &opts)?;
        let mut collector =
            Collector::with_source(source, cfg.signals.clone(), RetryPolicy::default(), start)
                .await?;
        // No stop is set here, so the backfill always completes.
        lp.begin(&mut collector, start).await;
        Ok(Stepper {
            lp,
            collector,
            cycles: 0,
            _stop: stop,
        })
    }

    /// One cycle of the loop at `now` (Unix seconds; the first at the `start` given to
    /// [`Stepper::new`], each next one a step later, as `run`'s clock gives them): its
    /// decisions, holds included.
    pub async fn cycle(&mut self, now: i64) -> Result<Vec<Decision>, RunError> {
        let n = self.cycles + 1;
        // No stop is set here (nothing asks a stepper to stop), so every cycle runs.
        let decisions = self
            .lp
            .step(&mut self.collector, now, Instant::now(), n)
            .await?
            .unwrap_or_default();
        self.cycles = n;
        Ok(decisions)
    }

    /// Cycles run so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// What the exporter is handed: its metrics and the last cycle's snapshot.
    pub fn export(&self) -> &Arc<ExportState> {
        &self.lp.export
    }

    /// After the last cycle (at `last`): the persisted state saved and the decision log
    /// flushed, as `run` ends.
    pub fn finish(mut self, last: i64) -> Result<(), RunError> {
        self.lp.end(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    /// The demo configuration with its decision log (and so its state file) in `dir`, no
    /// listener and a replay fast enough for a test.
    fn demo(dir: &Path) -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let log = dir.join("decisions.jsonl");
        let text = text
            .replace(
                "decision_log = \"../reports/demo-decisions.jsonl\"",
                &format!("decision_log = {:?}", log.display().to_string()),
            )
            .replace("listen = \"127.0.0.1:0\"", "")
            .replace("speed = 1500", "speed = 1000000");
        Config::from_toml(&path, &text).unwrap()
    }

    /// Stepping the loop N cycles writes the very decision log `run` writes in N cycles: the
    /// stepper runs `run`'s cycle, poll and recovery included, not a model of it.
    #[tokio::test(flavor = "current_thread")]
    async fn stepping_decides_as_run_does() {
        const CYCLES: u64 = 5;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cfg = demo(a.path());
        let opts = RunOptions {
            cycles: Some(CYCLES),
            ..RunOptions::default()
        };
        let summary = crate::run::run(cfg, opts, Box::new(std::io::sink()))
            .await
            .unwrap();
        assert_eq!(summary.cycles, CYCLES);

        let cfg = demo(b.path());
        let replay = cfg.live.replay.clone().unwrap();
        let (source, start, _) = super::super::replay_source(&replay, &cfg).unwrap();
        let step = cfg.live.interval;
        let workloads = cfg.live.workloads.len();
        let mut stepper = Stepper::new(cfg, source, start, Box::new(std::io::sink()))
            .await
            .unwrap();
        let (mut changes, mut holds) = (0, 0);
        for k in 0..CYCLES as i64 {
            let now = start + k * step;
            let decisions = stepper.cycle(now).await.unwrap();
            assert!(decisions.len() >= workloads, "cycle {k}: {decisions:?}");
            let snapshot_at = stepper.export().metrics().encode_text();
            assert!(snapshot_at.contains("prescale_cycle"), "{snapshot_at}");
            let h = decisions.iter().filter(|d| d.is_hold()).count();
            holds += h;
            changes += decisions.len() - h;
        }
        assert_eq!(stepper.cycles(), CYCLES);
        stepper.finish(start + (CYCLES as i64 - 1) * step).unwrap();
        assert_eq!((changes, holds), (summary.changes, summary.holds));
        let run_log = std::fs::read_to_string(a.path().join("decisions.jsonl")).unwrap();
        let step_log = std::fs::read_to_string(b.path().join("decisions.jsonl")).unwrap();
        assert!(
            run_log.contains(&format!("\"cycle\":{CYCLES},")),
            "{run_log}"
        );
        assert_eq!(step_log, run_log);
    }

    /// A sharded configuration is refused by name, not stepped as if it were a whole one.
    #[tokio::test(flavor = "current_thread")]
    async fn a_sharded_configuration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = demo(dir.path());
        cfg.shard = crate::shard::ShardConfig::new(2, 0);
        let err = Stepper::new(
            cfg,
            crate::collect::Replay::new(),
            0,
            Box::new(std::io::sink()),
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().contains("[shard]"), "{err}");
    }
}
