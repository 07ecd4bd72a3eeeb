//! Acting on decisions. Dry-run is the default: decisions are printed as a compact table and
//! appended to a JSON-lines decision log for review, and nothing in the cluster changes.
//!
//! Applying is opt-in (`--apply`) and goes through an [`Actuator`]; the one shipped runs a
//! command template per decision (e.g. `kubectl scale deployment/{target} --replicas={to}`), so
//! prescale never needs cluster credentials of its own.

mod log;

pub use log::{read_tail, DecisionLog, LogError, LogTail, TailOptions};

use crate::plan::{Decision, DecisionKind};
use std::io::Write;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one decision's command may run when `run.apply_timeout` is not set.
pub const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the act stage could not show, log or carry out a cycle's decisions.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// The decision log could not be written or synced.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The decision table could not be written to its output.
    #[error("writing the decision table")]
    Table(#[source] std::io::Error),
    /// A decision's command could not be started.
    #[error("running `{command}`")]
    Spawn {
        /// The command, as given to `sh -c`.
        command: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// A decision's command ran and failed.
    #[error("`{command}` failed with {status}")]
    Failed {
        /// The command, as given to `sh -c`.
        command: String,
        /// How it exited.
        status: ExitStatus,
    },
    /// A decision's command ran longer than `run.apply_timeout` and was killed.
    #[error("`{command}` did not finish within {}s (run.apply_timeout) and was killed", timeout.as_secs_f64())]
    TimedOut {
        /// The command, as given to `sh -c`.
        command: String,
        /// The limit it ran into.
        timeout: Duration,
    },
    /// A decision's command was killed, or not started, because prescale is stopping.
    #[error("`{command}` was not carried out: prescale is stopping")]
    Stopped {
        /// The command, as given to `sh -c`.
        command: String,
    },
}

/// Something that carries decisions out.
pub trait Actuator: Send {
    /// Carries out one cycle's decisions; returns how many were applied. Every decision is
    /// attempted even when one fails (one stuck workload must not keep the others from scaling
    /// up); an error is the first failure, after all were attempted.
    fn apply(&mut self, decisions: &[Decision]) -> Result<usize, ActError>;
}

/// Runs a shell command per scale decision, with `{target}`, `{from}`, `{to}` and `{kind}`
/// substituted. Node decisions are left to the operator (pools are scaled by cloud tooling
/// prescale does not drive).
///
/// Each command runs at most its timeout, and is killed at once when the stop flag is raised,
/// so neither a hanging command nor SIGTERM during one can hold the loop.
#[derive(Debug, Clone)]
pub struct CommandActuator {
    template: String,
    timeout: Duration,
    stop: Arc<AtomicBool>,
}

/// How often a running command is checked for exit, timeout and stop: short against any
/// timeout, long enough to cost nothing.
const POLL: Duration = Duration::from_millis(20);

impl CommandActuator {
    /// An actuator for a command template, with [`DEFAULT_APPLY_TIMEOUT`].
    pub fn new(template: impl Into<String>) -> Self {
        CommandActuator {
            template: template.into(),
            timeout: DEFAULT_APPLY_TIMEOUT,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Kills each command still running after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Kills the running command, and starts no more, once `stop` is true (set on SIGTERM).
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = stop;
        self
    }

    /// Runs one command to its end, its timeout, or the stop flag.
    fn run(&self, cmd: &str) -> Result<(), ActError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(ActError::Stopped {
                command: cmd.to_string(),
            });
        }
        let mut command = std::process::Command::new("sh");
        command.arg("-c").arg(cmd);
        // Its own process group, so a kill reaches what the shell started too (`sleep` under
        // `sh -c "a; sleep 1000"` would otherwise outlive it).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let spawn_err = |source| ActError::Spawn {
            command: cmd.to_string(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_err)?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().map_err(spawn_err)? {
                if status.success() {
                    return Ok(());
                }
                return Err(ActError::Failed {
                    command: cmd.to_string(),
                    status,
                });
            }
            let err = if self.stop.load(Ordering::Relaxed) {
                ActError::Stopped {
                    command: cmd.to_string(),
                }
            } else if started.elapsed() >= self.timeout {
                ActError::TimedOut {
                    command: cmd.to_string(),
                    timeout: self.timeout,
                }
            } else {
                std::thread::sleep(POLL);
                continue;
            };
            kill_group(&mut child);
            return Err(err);
        }
    }

    fn command_for(&self, d: &Decision) -> String {
        self.template
            .replace("{target}", &shell_quote(&d.target))
            .replace("{from}", &d.from.to_string())
            .replace("{to}", &d.to.to_string())
            .replace("{kind}", d.kind.as_str())
    }
}

/// Kills a command's process group (see [`CommandActuator::run`]) and reaps it.
fn kill_group(child: &mut std::process::Child) {
    // No libc here: `kill` on a negative id signals the whole group.
    #[cfg(unix)]
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(std::process::Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Single-quotes a value for `sh -c`, so a workload name cannot inject shell syntax.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl Actuator for CommandActuator {
    fn apply(&mut self, decisions: &[Decision]) -> Result<usize, ActError> {
        let mut applied = 0;
        let mut first_failure = None;
        for d in decisions
            .iter()
            .filter(|d| matches!(d.kind, DecisionKind::ScaleUp | DecisionKind::ScaleDown))
        {
            match self.run(&self.command_for(d)) {
                Ok(()) => applied += 1,
                Err(e) => {
                    // Logged here, per decision, so every failure is seen, not only the first.
                    tracing::warn!("{} '{}' not applied: {e}", d.kind.as_str(), d.target);
                    first_failure.get_or_insert(e);
                }
            }
        }
        match first_failure {
            Some(e) => Err(e),
            None => Ok(applied),
        }
    }
}

/// The act stage: shows decisions, logs them, and applies them only when an actuator is given.
pub struct Act {
    out: Box<dyn Write + Send>,
    log: Option<DecisionLog>,
    actuator: Option<Box<dyn Actuator>>,
    show_holds: bool,
}

impl Act {
    /// Dry-run to `out` (the table) and `log` (JSON lines), if given.
    pub fn dry_run(out: Box<dyn Write + Send>, log: Option<DecisionLog>) -> Self {
        Act {
            out,
            log,
            actuator: None,
            show_holds: false,
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

    /// Print holds in the table too (they are always logged).
    pub fn show_holds(mut self, yes: bool) -> Self {
        self.show_holds = yes;
        self
    }

    /// True when decisions are only shown and logged.
    pub fn is_dry_run(&self) -> bool {
        self.actuator.is_none()
    }

    /// Handles one cycle's decisions: table, log, and (only when asked) apply. Decisions that
    /// could not be applied are logged, not returned: the loop goes on.
    pub fn handle(&mut self, cycle: u64, at: i64, decisions: &[Decision]) -> Result<(), ActError> {
        if let Some(log) = &mut self.log {
            log.append(cycle, decisions)?;
        }
        let shown: Vec<&Decision> = decisions
            .iter()
            .filter(|d| self.show_holds || !d.is_hold())
            .collect();
        let when = crate::series::format_timestamp(at);
        let holds = decisions.len() - decisions.iter().filter(|d| !d.is_hold()).count();
        let mode = if self.is_dry_run() {
            "dry-run"
        } else {
            "apply"
        };
        let mut text = format!(
            "── cycle {cycle} at {when} ({mode}): {} changes, {holds} holds\n",
            decisions.len() - holds
        );
        if !shown.is_empty() {
            text.push_str(&Decision::table_header());
            text.push('\n');
            for d in shown {
                text.push_str(&d.to_string());
                text.push('\n');
            }
        }
        self.out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.flush())
            .map_err(ActError::Table)?;
        if let Some(a) = &mut self.actuator {
            // A failed command is the cluster's or the command's trouble, not the loop's: the
            // actuator logged each one, and the next cycle decides again from what it sees.
            match a.apply(decisions) {
                Ok(n) => tracing::info!("applied {n} decisions"),
                Err(_) => tracing::warn!("cycle {cycle}: not every decision was applied"),
            }
        }
        Ok(())
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
mod tests {
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
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dry_run_prints_changes_and_logs_everything() {
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
        ];
        act.handle(1, 1_700_000_000, &ds).unwrap();
        act.flush().unwrap();
        let shown = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(shown.contains("dry-run): 1 changes, 1 holds"), "{shown}");
        assert!(
            shown.contains("scale-up") && shown.contains("web"),
            "{shown}"
        );
        assert!(!shown.contains("api"), "{shown}");
        let log = std::fs::read_to_string(&path).unwrap();
        assert_eq!(log.lines().count(), 2);
        let v: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
        assert_eq!(v["cycle"], 1);
        assert_eq!(v["decision"]["kind"], "scale_up");
        assert_eq!(v["decision"]["guards"][0]["kind"], "max_step");
    }

    #[test]
    fn command_actuator_runs_only_scale_decisions_with_quoted_names() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("applied.txt");
        let mut a = CommandActuator::new(format!(
            "echo {{kind}} {{target}} {{from}} {{to}} >> {}",
            out.display()
        ));
        let ds = vec![
            decision(DecisionKind::ScaleUp, "web", 3, 5),
            decision(DecisionKind::AddNode, "pool", 1, 2),
            decision(DecisionKind::ScaleDown, "x; rm -rf /", 5, 4),
        ];
        assert_eq!(a.apply(&ds).unwrap(), 2);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, "scale-up web 3 5\nscale-down x; rm -rf / 5 4\n");
        let mut failing = CommandActuator::new("exit 3");
        let err = failing.apply(&ds).unwrap_err();
        assert!(err.to_string().contains("failed"));
        // The error names the command and how it exited, not just a message.
        assert!(
            matches!(&err, ActError::Failed { command, status } if command == "exit 3" && status.code() == Some(3)),
            "{err:?}"
        );
    }

    #[test]
    fn a_hanging_command_is_killed_at_its_timeout_and_the_rest_still_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("applied.txt");
        let mut a = CommandActuator::new(format!(
            "echo {{target}} >> {}; [ {{target}} = web ] && sleep 1000; true",
            out.display()
        ))
        .with_timeout(Duration::from_millis(500));
        let ds = vec![
            decision(DecisionKind::ScaleUp, "web", 3, 5),
            decision(DecisionKind::ScaleUp, "api", 2, 4),
        ];
        let t0 = Instant::now();
        let err = a.apply(&ds).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        let msg = err.to_string();
        assert!(
            matches!(&err, ActError::TimedOut { command, .. } if command.contains("sleep 1000")),
            "{err:?}"
        );
        assert!(
            msg.contains("0.5s") && msg.contains("apply_timeout"),
            "{msg}"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "web\napi\n");
    }

    #[test]
    fn the_stop_flag_kills_the_running_command() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut a = CommandActuator::new("sleep 1000").with_stop(stop.clone());
        let flag = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(true, Ordering::Relaxed);
        });
        let t0 = Instant::now();
        let err = a
            .apply(&[decision(DecisionKind::ScaleUp, "web", 3, 5)])
            .unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(matches!(err, ActError::Stopped { .. }), "{err:?}");
    }
}
