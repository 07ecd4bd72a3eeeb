//! Acting on decisions. Dry-run is the default: decisions are printed as a compact table and
//! appended to a JSON-lines decision log for review, and nothing in the cluster changes.
//!
//! Applying is opt-in twice: `--apply` for the process, `mode = "auto"` per workload (a
//! `preview` workload is recorded `skipped (preview)`, whichever actuator; see `modes`). It goes
//! through an [`Actuator`] chosen by `run.actuator` ([`ActuatorKind`]): [`KubeActuator`], the
//! `scale` subresource through the Kubernetes API with an Event per change (`kube`), or
//! [`CommandActuator`], a command template per decision run without a shell (see
//! [`CommandTemplate`]). Every decision gets an [`Outcome`], recorded in the log, the table and
//! the metrics.

mod bounded;
mod command;
mod kube;
mod log;
mod modes;
mod outcome;

pub use bounded::MAX_IN_FLIGHT;
pub use command::{CommandActuator, CommandTemplate, TemplateError, PLACEHOLDERS};
pub use kube::{
    objects as kube_objects, KubeActError, KubeActuator, EVENT_COMPONENT, EVENT_REASON,
    FIELD_MANAGER,
};
pub use log::{read_tail, DecisionLog, LogError, LogTail, TailOptions};
pub use outcome::{Outcome, Skip};

use crate::leader::Leadership;
use crate::plan::{Decision, DecisionKind, Mode};
use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::time::Duration;

/// How long one decision's command may run when `run.apply_timeout` is not set.
pub const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which actuator carries decisions out under `--apply` (`run.actuator`).
///
/// Default ([`LiveConfig::actuator`](crate::config::LiveConfig::actuator)): `command` when
/// `run.apply_command` is set (what such a configuration meant before there was a choice),
/// `kubernetes` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActuatorKind {
    /// `run.apply_command`, run without a shell ([`CommandActuator`]).
    Command,
    /// The `scale` subresource through the Kubernetes API ([`KubeActuator`]).
    Kubernetes,
}

impl ActuatorKind {
    /// Parses `run.actuator`'s value.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "kubernetes" => Ok(ActuatorKind::Kubernetes),
            "command" => Ok(ActuatorKind::Command),
            other => Err(format!(
                "'{other}' is not an actuator: write \"kubernetes\" or \"command\""
            )),
        }
    }
}

/// Why the act stage could not show or log a cycle's decisions. (A decision that could not be
/// carried out is not an error of the stage: it is the decision's [`Outcome`].)
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// The decision log could not be written or synced.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The decision table could not be written to its output.
    #[error("writing the decision table")]
    Table(#[source] std::io::Error),
}

/// The outcomes under leader election: every decision `skipped (not leader)` unless this
/// replica leads when it comes to it. With an actuator, it carries them out under
/// [`Actuator::apply_led`], which asks leadership right before each change.
async fn led(
    actuator: Option<&mut (dyn Actuator + 'static)>,
    leadership: &Leadership,
    decisions: &[Decision],
) -> Vec<Outcome> {
    match actuator {
        Some(a) => a.apply_led(decisions, leadership).await,
        None => decisions
            .iter()
            .map(|d| {
                if leadership.is_leader() {
                    Outcome::dry_run(d)
                } else {
                    Outcome::Skipped(Skip::NotLeader)
                }
            })
            .collect(),
    }
}

/// What a change abandoned because leadership lapsed while it ran is recorded as.
pub(crate) fn abandoned() -> Outcome {
    Outcome::Failed(ABANDONED.into())
}

/// Resolves when a stop is requested (SIGTERM); never without a stop channel, or once its
/// sender is gone. The command actuator kills a running command at it; the live loop's reads
/// give up at it.
pub(crate) async fn stopped(stop: Option<tokio::sync::watch::Receiver<bool>>) {
    if let Some(mut s) = stop {
        if s.wait_for(|v| *v).await.is_ok() {
            return;
        }
    }
    std::future::pending::<()>().await
}

/// [`abandoned`]'s reason.
const ABANDONED: &str = "abandoned: this replica stopped leading while it ran";

/// True for decisions that change a workload's replicas (the ones an actuator carries out).
fn is_scale(d: &Decision) -> bool {
    matches!(d.kind, DecisionKind::ScaleUp | DecisionKind::ScaleDown)
}

/// What [`Actuator::apply`] returns: one outcome per decision, in order, once all are done.
pub type Applying<'a> = Pin<Box<dyn Future<Output = Vec<Outcome>> + Send + 'a>>;

/// Something that carries decisions out.
pub trait Actuator: Send {
    /// Carries out one cycle's decisions and returns one outcome per decision, in order.
    /// Every decision is attempted even when one fails (one stuck workload must not keep the
    /// others from scaling up), and nothing here can stop the loop.
    fn apply<'a>(&'a mut self, decisions: &'a [Decision]) -> Applying<'a>;

    /// [`apply`](Self::apply) under leader election: each decision is `skipped (not leader)`
    /// unless this replica leads right before its change starts (a batch could outlast the
    /// lease), and a change still running when leadership lapses is abandoned (recorded
    /// failed, so it is not believed done).
    ///
    /// By default the decisions go to [`apply`](Self::apply) one at a time, so that the
    /// question comes before each; an actuator that runs changes concurrently overrides this
    /// to ask in each change's own task (both shipped actuators do, through `bounded`).
    fn apply_led<'a>(
        &'a mut self,
        decisions: &'a [Decision],
        leadership: &'a Leadership,
    ) -> Applying<'a> {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(decisions.len());
            for d in decisions {
                if !leadership.is_leader() {
                    outcomes.push(Outcome::Skipped(Skip::NotLeader));
                    continue;
                }
                if !is_scale(d) {
                    outcomes.push(Outcome::dry_run(d));
                    continue;
                }
                // Biased, the lapse first (see `bounded::changes`).
                let o = tokio::select! {
                    biased;
                    _ = leadership.lost() => Some(abandoned()),
                    o = self.apply(std::slice::from_ref(d)) => o.into_iter().next(),
                };
                outcomes.push(
                    o.unwrap_or_else(|| Outcome::Failed("the actuator gave no outcome".into())),
                );
            }
            outcomes
        })
    }
}

/// The act stage: shows decisions, logs them, and applies them only when an actuator is given.
pub struct Act {
    out: Box<dyn Write + Send>,
    log: Option<DecisionLog>,
    actuator: Option<Box<dyn Actuator>>,
    show_holds: bool,
    leadership: Option<Leadership>,
    /// Per workload, whether it may be changed; `None`: every workload may (an act stage
    /// built by hand, as in tests). The live loop always sets it from the configuration.
    modes: Option<HashMap<String, Mode>>,
    /// Why no change may be carried out this cycle (the shards disagree on their count), if
    /// so: set by the loop before each cycle's [`handle`](Self::handle).
    held: Option<String>,
}

impl Act {
    /// Dry-run to `out` (the table) and `log` (JSON lines), if given.
    pub fn dry_run(out: Box<dyn Write + Send>, log: Option<DecisionLog>) -> Self {
        Act {
            out,
            log,
            actuator: None,
            show_holds: false,
            leadership: None,
            modes: None,
            held: None,
        }
    }

    /// Also carry decisions out through `actuator`. The log then marks its records
    /// `"applied": true`, so a restart in `--apply` mode recovers from them alone.
    pub fn with_actuator(mut self, actuator: Box<dyn Actuator>) -> Self {
        self.actuator = Some(actuator);
        if let Some(log) = &mut self.log {
            log.set_applied(true);
        }
        self
    }

    /// Act only while `leadership` says this replica leads (leader election, issue #11): it
    /// is asked right before every decision is carried out, and a change still running when
    /// leadership lapses is abandoned (recorded failed, so it is not believed done). A
    /// non-leader records every decision as `skipped (not leader)`.
    pub fn with_leadership(mut self, leadership: Leadership) -> Self {
        self.leadership = Some(leadership);
        self
    }

    /// Act only on the workloads in `auto` mode (issue #9): a scale decision of any other
    /// workload, `preview` or not named, is recorded `skipped (preview)` under `--apply` and
    /// never reaches the actuator, whichever it is.
    pub fn with_modes(mut self, modes: HashMap<String, Mode>) -> Self {
        self.modes = Some(modes);
        self
    }

    /// Holds every change of the next cycles, `why` (the shards disagree, see
    /// [`crate::shard::agree`]), or acts again (`None`). Under `--apply` a held scale decision
    /// is recorded `skipped (shards disagree)` and never reaches the actuator; a dry run is
    /// unchanged, and the table's mode says it either way.
    pub fn hold_changes(&mut self, why: Option<String>) {
        self.held = why;
    }

    /// Why changes are held, if they are ([`hold_changes`](Self::hold_changes)).
    pub fn held(&self) -> Option<&str> {
        self.held.as_deref()
    }

    /// Print holds in the table too (they are always logged).
    pub fn show_holds(mut self, yes: bool) -> Self {
        self.show_holds = yes;
        self
    }

    /// True when decisions are only shown and logged.
    pub fn is_dry_run(&self) -> bool {
        self.actuator.is_none()
    }

    /// Handles one cycle's decisions: carries them out (only when asked), then logs and shows
    /// each with its outcome, and returns the outcomes, one per decision. A decision that could
    /// not be carried out is recorded as failed, not returned as an error: the loop goes on.
    pub async fn handle(
        &mut self,
        cycle: u64,
        at: i64,
        decisions: &[Decision],
    ) -> Result<Vec<Outcome>, ActError> {
        // Preview workloads are held back only when acting: a dry run records dry-run.
        let (acting, known) = match (&self.modes, &self.actuator) {
            (Some(modes), Some(_)) => modes::split(decisions, modes),
            _ => (decisions.to_vec(), vec![None; decisions.len()]),
        };
        let done = match (&mut self.actuator, &self.leadership) {
            (Some(_), _) if self.held.is_some() => acting
                .iter()
                .map(|d| match is_scale(d) {
                    true => Outcome::Skipped(Skip::ShardsDisagree),
                    false => Outcome::Skipped(Skip::Nothing),
                })
                .collect(),
            (actuator, Some(l)) => led(actuator.as_deref_mut(), l, &acting).await,
            (Some(a), None) => a.apply(&acting).await,
            (None, None) => acting.iter().map(Outcome::dry_run).collect(),
        };
        let outcomes = modes::merge(known, done);
        debug_assert_eq!(outcomes.len(), decisions.len());
        if let Some(log) = &mut self.log {
            log.append(cycle, decisions, &outcomes)?;
        }
        let text = self.table(cycle, at, decisions, &outcomes);
        self.out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.flush())
            .map_err(ActError::Table)?;
        Ok(outcomes)
    }

    /// The cycle's summary line and, unless there is nothing to show, its table: one row per
    /// decision with its outcome first, and a failure's reason on the line below it.
    fn table(&self, cycle: u64, at: i64, decisions: &[Decision], outcomes: &[Outcome]) -> String {
        let when = crate::series::format_timestamp(at);
        let holds = decisions.iter().filter(|d| d.is_hold()).count();
        let mode = match (self.is_dry_run(), &self.leadership) {
            (true, Some(l)) if !l.is_leader() => "dry-run, not leader",
            (false, Some(l)) if !l.is_leader() => "apply, not leader",
            (true, _) => "dry-run",
            (false, _) => "apply",
        };
        let held = match &self.held {
            Some(why) => format!(", held: {why}"),
            None => String::new(),
        };
        let mut text = format!(
            "── cycle {cycle} at {when} ({mode}{held}): {} changes, {holds} holds",
            decisions.len() - holds
        );
        if !self.is_dry_run() {
            let count = |o: &str| outcomes.iter().filter(|x| x.short() == o).count();
            text.push_str(&format!(
                "; {} applied, {} failed",
                count("applied"),
                count("failed")
            ));
        }
        text.push('\n');
        let shown: Vec<(&Decision, &Outcome)> = decisions
            .iter()
            .zip(outcomes)
            .filter(|(d, _)| self.show_holds || !d.is_hold())
            .collect();
        if !shown.is_empty() {
            text.push_str(&format!("{:<8} {}\n", "OUTCOME", Decision::table_header()));
            for (d, o) in shown {
                text.push_str(&format!("{:<8} {d}\n", o.short()));
                if let Outcome::Failed(why) = o {
                    text.push_str(&format!("{:<8} ↳ {why}\n", ""));
                }
            }
        }
        text
    }

    /// Flushes the decision log to disk (at shutdown).
    pub fn flush(&mut self) -> Result<(), ActError> {
        match &mut self.log {
            Some(log) => Ok(log.sync()?),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{Guard, GuardKind};
    use std::sync::{Arc, Mutex};

    pub(crate) fn decision(kind: DecisionKind, target: &str, from: u32, to: u32) -> Decision {
        Decision {
            at: 1_700_000_000,
            kind,
            target: target.into(),
            node: None,
            to_node: None,
            from,
            to,
            raw: to,
            forecast: Some(vec![(0.5, 10.0), (0.9, 12.0)]),
            current: Some(9.0),
            guards: vec![Guard {
                kind: GuardKind::MaxStep,
                before: to + 2,
                after: to,
            }],
            reason: "test".into(),
        }
    }

    #[derive(Clone, Default)]
    pub(crate) struct Buf(pub(crate) Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_records(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn dry_run_prints_changes_and_logs_everything_with_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        let buf = Buf::default();
        let mut act = Act::dry_run(
            Box::new(buf.clone()),
            Some(DecisionLog::open(&path).unwrap()),
        );
        assert!(act.is_dry_run());
        let ds = vec![
            decision(DecisionKind::ScaleUp, "web", 3, 5),
            decision(DecisionKind::Hold, "api", 2, 2),
            decision(DecisionKind::AddNode, "general", 2, 3),
        ];
        let outcomes = act.handle(1, 1_700_000_000, &ds).await.unwrap();
        assert_eq!(
            outcomes,
            vec![
                Outcome::DryRun,
                Outcome::Skipped(Skip::Nothing),
                Outcome::Skipped(Skip::Nothing)
            ]
        );
        act.flush().unwrap();
        let shown = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(shown.contains("dry-run): 2 changes, 1 holds"), "{shown}");
        assert!(shown.contains("OUTCOME  KIND"), "{shown}");
        assert!(
            shown.contains("dry-run  scale-up") && shown.contains("web"),
            "{shown}"
        );
        assert!(shown.contains("skipped  add-node"), "{shown}");
        assert!(!shown.contains("api"), "{shown}");
        let log = log_records(&path);
        assert_eq!(log.len(), 3);
        assert_eq!(log[0]["cycle"], 1);
        assert_eq!(log[0]["decision"]["kind"], "scale_up");
        assert_eq!(log[0]["decision"]["guards"][0]["kind"], "max_step");
        let logged: Vec<&str> = log.iter().map(|l| l["outcome"].as_str().unwrap()).collect();
        assert_eq!(logged, ["dry-run", "skipped", "skipped"]);
    }

    /// Fails every scale decision of one workload, applies the rest.
    struct FailsFor(&'static str);
    impl Actuator for FailsFor {
        fn apply<'a>(&'a mut self, decisions: &'a [Decision]) -> Applying<'a> {
            Box::pin(async move {
                decisions
                    .iter()
                    .map(|d| match Outcome::dry_run(d) {
                        Outcome::DryRun if d.target == self.0 => {
                            Outcome::Failed("kubectl exited with status 1: not found".into())
                        }
                        Outcome::DryRun => Outcome::Applied,
                        o => o,
                    })
                    .collect()
            })
        }
    }

    #[tokio::test]
    async fn applied_and_failed_outcomes_reach_the_log_and_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        let buf = Buf::default();
        let mut act = Act::dry_run(
            Box::new(buf.clone()),
            Some(DecisionLog::open(&path).unwrap()),
        )
        .with_actuator(Box::new(FailsFor("api")));
        let ds = vec![
            decision(DecisionKind::ScaleUp, "web", 3, 5),
            decision(DecisionKind::ScaleDown, "api", 4, 2),
        ];
        act.handle(7, 1_700_000_000, &ds).await.unwrap();
        let shown = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            shown.contains("(apply): 2 changes, 0 holds; 1 applied, 1 failed"),
            "{shown}"
        );
        assert!(shown.contains("applied  scale-up"), "{shown}");
        assert!(shown.contains("failed   scale-down"), "{shown}");
        assert!(
            shown.contains("↳ kubectl exited with status 1: not found"),
            "{shown}"
        );
        let log = log_records(&path);
        assert_eq!(log[0]["outcome"], "applied");
        assert_eq!(
            log[1]["outcome"],
            "failed: kubectl exited with status 1: not found"
        );
    }

    /// Applies every scale decision after `delay`.
    struct Slow(std::time::Duration);
    impl Actuator for Slow {
        fn apply<'a>(&'a mut self, decisions: &'a [Decision]) -> Applying<'a> {
            Box::pin(async move {
                tokio::time::sleep(self.0).await;
                decisions
                    .iter()
                    .map(|d| match Outcome::dry_run(d) {
                        Outcome::DryRun => Outcome::Applied,
                        o => o,
                    })
                    .collect()
            })
        }
    }

    #[tokio::test]
    async fn only_the_leader_acts_and_a_lapse_mid_action_abandons_it() {
        let buf = Buf::default();
        let ds = vec![
            decision(DecisionKind::ScaleUp, "web", 3, 5),
            decision(DecisionKind::Hold, "api", 2, 2),
        ];
        // Not leader: nothing reaches the actuator, everything is skipped (not leader).
        let follower = crate::leader::Leadership::lapsing_in(std::time::Duration::ZERO);
        let mut act = Act::dry_run(Box::new(buf.clone()), None)
            .with_actuator(Box::new(Slow(std::time::Duration::ZERO)))
            .with_leadership(follower);
        let outcomes = act.handle(1, 1_700_000_000, &ds).await.unwrap();
        assert_eq!(outcomes, vec![Outcome::Skipped(Skip::NotLeader); 2]);
        assert_eq!(outcomes[0].to_string(), "skipped (not leader)");
        let shown = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(shown.contains("(apply, not leader)"), "{shown}");
        // Leader: applied.
        let mut act = Act::dry_run(Box::new(Buf::default()), None)
            .with_actuator(Box::new(Slow(std::time::Duration::ZERO)))
            .with_leadership(crate::leader::Leadership::always());
        let outcomes = act.handle(2, 1_700_000_000, &ds).await.unwrap();
        assert_eq!(
            outcomes,
            vec![Outcome::Applied, Outcome::Skipped(Skip::Nothing)]
        );
        // Leadership lapses while the change runs: abandoned, recorded failed (not believed).
        let mut act = Act::dry_run(Box::new(Buf::default()), None)
            .with_actuator(Box::new(Slow(std::time::Duration::from_secs(30))))
            .with_leadership(crate::leader::Leadership::lapsing_in(
                std::time::Duration::from_millis(100),
            ));
        let t0 = std::time::Instant::now();
        let outcomes = act.handle(3, 1_700_000_000, &ds).await.unwrap();
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
        assert!(outcomes[0].is_failed(), "{:?}", outcomes[0]);
        assert!(outcomes[0].to_string().contains("stopped leading"));
        assert_eq!(outcomes[1], Outcome::Skipped(Skip::NotLeader));
    }

    /// Counts the decisions that reach it, and applies them.
    struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Actuator for Counting {
        fn apply<'a>(&'a mut self, decisions: &'a [Decision]) -> Applying<'a> {
            self.0
                .fetch_add(decisions.len(), std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move { decisions.iter().map(|_| Outcome::Applied).collect() })
        }
    }

    /// While held (the shards disagree), no decision reaches the actuator: scale decisions are
    /// `skipped (shards disagree)`, and the table says why; released, they are carried out.
    #[tokio::test]
    async fn held_changes_never_reach_the_actuator() {
        let buf = Buf::default();
        let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ds = vec![
            decision(DecisionKind::ScaleUp, "web", 3, 5),
            decision(DecisionKind::Hold, "api", 2, 2),
        ];
        let mut act = Act::dry_run(Box::new(buf.clone()), None)
            .with_actuator(Box::new(Counting(reached.clone())));
        act.hold_changes(Some("a replica runs with shard.replicas = 4".into()));
        let outcomes = act.handle(1, 1_700_000_000, &ds).await.unwrap();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Skipped(Skip::ShardsDisagree),
                Outcome::Skipped(Skip::Nothing)
            ]
        );
        assert_eq!(outcomes[0].to_string(), "skipped (shards disagree)");
        assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0);
        let shown = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            shown.contains("(apply, held: a replica runs with shard.replicas = 4)"),
            "{shown}"
        );
        act.hold_changes(None);
        let outcomes = act.handle(2, 1_700_000_000, &ds).await.unwrap();
        assert_eq!(outcomes[0], Outcome::Applied);
        assert!(reached.load(std::sync::atomic::Ordering::SeqCst) > 0);
    }
}
