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

    /// A `run.model` trained on noise alone (so retraining on the demo's buffers beats it),
    /// written to `dir/noise.model`, and the demo configuration using it with `extra` in
    /// `[run]`.
    fn retraining(dir: &Path, extra: &str) -> (Config, Model) {
        let mut s = 7u64;
        let values = (0..6 * 288)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                1000.0 * (s >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        let noise = crate::series::Series {
            key: crate::series::SeriesKey::new("noise"),
            start: 1_704_067_200,
            step: 300,
            values,
        };
        let opts = crate::forecast::TrainOptions::new(300, 900);
        let model = Model::train(&[noise], &opts).unwrap();
        let path = dir.join("noise.model");
        model.save(&path).unwrap();
        let mut cfg = demo(dir);
        let text = std::fs::read_to_string(&cfg.path).unwrap();
        let log = dir.join("decisions.jsonl");
        let text = text
            .replace(
                "decision_log = \"../reports/demo-decisions.jsonl\"",
                &format!("decision_log = {:?}\n{extra}", log.display().to_string()),
            )
            .replace(
                "model = \"../models/web.model\"",
                &format!("model = {:?}", path.display().to_string()),
            )
            .replace("listen = \"127.0.0.1:0\"", "");
        cfg = Config::from_toml(&cfg.path, &text).unwrap();
        (cfg, model)
    }

    /// Steps `cfg`'s loop from `start` until a retrained model is put in place (at most a
    /// minute of wall time); returns the stepper and the last cycle's time.
    async fn until_retrained(cfg: &Config, start: i64) -> (Stepper<crate::collect::Replay>, i64) {
        let replay = cfg.live.replay.clone().unwrap();
        let (source, _, _) = super::super::replay_source(&replay, cfg).unwrap();
        let mut stepper = Stepper::new(cfg.clone(), source, start, Box::new(std::io::sink()))
            .await
            .unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let mut now = start;
        loop {
            stepper.cycle(now).await.unwrap();
            if stepper.lp.model_name.starts_with("retrained at") {
                return (stepper, now);
            }
            assert!(Instant::now() < deadline, "no retrained model in a minute");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            now += cfg.live.interval;
        }
    }

    /// A restart's loop on `cfg`, its first cycle at `start`.
    async fn restarted(cfg: &Config, start: i64) -> Stepper<crate::collect::Replay> {
        let replay = cfg.live.replay.clone().unwrap();
        let (source, _, _) = super::super::replay_source(&replay, cfg).unwrap();
        Stepper::new(cfg.clone(), source, start, Box::new(std::io::sink()))
            .await
            .unwrap()
    }

    /// A retrained model that won is written to `run.retrained_model` and named in the state
    /// file, and a restart goes on with it (and with the offsets learnt for it); not once
    /// `run.model` is another model, nor when the file holds another model than the one named,
    /// nor with retraining off. The file is never removed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_goes_on_with_the_retrained_model_while_run_model_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, noise) = retraining(dir.path(), "retrain_every = \"5m\"");
        let (_, start, _) =
            super::super::replay_source(cfg.live.replay.as_ref().unwrap(), &cfg).unwrap();
        let (mut stepper, mut last) = until_retrained(&cfg, start).await;
        let retrained = stepper.lp.model.fingerprint();
        // Cycles on it, so the online calibration learns its errors (a 15-minute window
        // resolves three steps on).
        for _ in 0..6 {
            last += cfg.live.interval;
            stepper.cycle(last).await.unwrap();
        }
        assert_eq!(stepper.lp.model.fingerprint(), retrained);
        stepper.finish(last).unwrap();
        let kept = dir.path().join("decisions.retrained.model");
        assert_eq!(cfg.live.retrained_model, kept);
        let bytes = std::fs::read(&kept).unwrap();
        assert_eq!(Model::load(&kept).unwrap().fingerprint(), retrained);
        let state = std::fs::read_to_string(dir.path().join("decisions.calibration.json")).unwrap();
        let want = format!(
            "\"retrained\":{{\"from\":{},\"model\":{retrained},",
            noise.fingerprint()
        );
        assert!(state.contains(&want), "{want}\n{state}");
        assert!(
            state.contains(&format!("\"model\":{retrained},\"saved_at\"")),
            "the offsets saved are the retrained model's: {state}"
        );

        // Restarted a cycle later: the retrained model, and its offsets.
        let next = last + cfg.live.interval;
        let s = restarted(&cfg, next).await;
        assert_eq!(s.lp.model.fingerprint(), retrained);
        assert!(s
            .lp
            .model_name
            .contains("decisions.retrained.model (retrained at "));
        assert_eq!(s.lp.persisted.model, Some(retrained));
        assert!(
            !s.lp.series.online.to_saved(|_| true).is_empty(),
            "offsets restored"
        );
        drop(s);

        // Retraining off: run.model.
        let mut off = cfg.clone();
        off.live.retrain_every = None;
        let s = restarted(&off, next).await;
        assert_eq!(s.lp.model.fingerprint(), noise.fingerprint());
        drop(s);

        // Another run.model: it, and the file stays.
        let mut other = cfg.clone();
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/web.model");
        other.live.model = Some(web.clone());
        let s = restarted(&other, next).await;
        assert_eq!(
            s.lp.model.fingerprint(),
            Model::load(&web).unwrap().fingerprint()
        );
        drop(s);
        assert_eq!(std::fs::read(&kept).unwrap(), bytes);

        // Stopped between naming a newer model and writing it: the state names the newer
        // one and, as the file's model until the write ends, this one. The file's is restored.
        let state_path = dir.path().join("decisions.calibration.json");
        let mut state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
        let at = state["retrained"]["at"].as_i64().unwrap();
        state["retrained"]["model"] = 12345.into();
        state["retrained"]["at"] = (at + 300).into();
        state["retrained"]["previous"] = serde_json::json!([retrained, at]);
        std::fs::write(&state_path, state.to_string()).unwrap();
        let s = restarted(&cfg, next).await;
        assert_eq!(s.lp.model.fingerprint(), retrained);
        assert!(s.lp.model_name.ends_with(&format!("(retrained at {at})")));
        drop(s);

        // The file holds another model than the state names: run.model.
        noise.save(&kept).unwrap();
        let s = restarted(&cfg, next).await;
        assert_eq!(s.lp.model.fingerprint(), noise.fingerprint());
        assert!(kept.exists());
    }

    /// A `run.retrained_model` path holding a file that is not a model is never replaced: the
    /// retrained model is used but not kept, and the state names none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retrained_model_is_not_written_over_a_file_that_is_not_a_model() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("notes.txt");
        std::fs::write(&mine, "mine").unwrap();
        let extra = format!(
            "retrain_every = \"5m\"\nretrained_model = {:?}",
            mine.display().to_string()
        );
        let (cfg, _) = retraining(dir.path(), &extra);
        let (_, start, _) =
            super::super::replay_source(cfg.live.replay.as_ref().unwrap(), &cfg).unwrap();
        let (stepper, last) = until_retrained(&cfg, start).await;
        stepper.finish(last).unwrap();
        assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");
        let state = std::fs::read_to_string(dir.path().join("decisions.calibration.json")).unwrap();
        assert!(!state.contains("retrained"), "{state}");
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
