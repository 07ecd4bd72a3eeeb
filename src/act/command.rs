//! The command actuator: `run.apply_command` split into a program and its arguments once, at
//! config load, and run per scale decision without a shell.
//!
//! Values (`{target}`, `{from}`, `{to}`, `{kind}`) are substituted inside each argument and the
//! program is started with those arguments directly, so no value can run a command wherever
//! the template puts it: there is no shell to read `;`, `$(…)` or a closing quote. The one
//! way left to hand a value to a shell, a placeholder inside the script of `sh -c '…'`, is
//! refused at load; a shell that needs values takes them as positional arguments
//! (`sh -c 'kubectl scale "deployment/$1" --replicas="$2"' _ {target} {to}`), which a shell
//! never parses as code. A value that would begin an argument with `-` (a workload named
//! `--kubeconfig=…` put as a bare `{target}`) would be an option to the program instead: that
//! decision fails, saying so, and nothing runs. A program that itself runs its arguments as
//! code (`ssh host …`, `su -c`, `python -c`) is the template writer's to keep values out of.

use super::{Outcome, Skip};
use crate::leader::Leadership;
use crate::plan::{Decision, DecisionKind};
use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The placeholders a template may use, each replaced by the decision's value.
pub const PLACEHOLDERS: [&str; 4] = ["target", "from", "to", "kind"];

/// Programs that run their `-c` argument as shell code. A placeholder in that argument would
/// be code again, whatever quoting the template used.
const SHELLS: [&str; 12] = [
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "pdksh", "ash", "yash", "fish", "csh", "tcsh",
];

/// Why `run.apply_command` was refused (reported under that key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Nothing to run.
    #[error(
        "is empty: give a program and its arguments, e.g. \
         \"kubectl scale deployment/{{target}} --replicas={{to}}\""
    )]
    Empty,
    /// The text cannot be split into arguments.
    #[error("cannot be split into arguments: a quote is not closed, or it ends in a backslash")]
    Unsplittable,
    /// The program to run is (or contains) a placeholder.
    #[error(
        "the program to run, `{program}`, holds a placeholder: a decision's value would choose \
         what runs; name the program itself and pass values as its arguments"
    )]
    PlaceholderProgram {
        /// The first word of the template.
        program: String,
    },
    /// A `{name}` that is not one of [`PLACEHOLDERS`] (a typo would reach the program as is).
    #[error(
        "argument {index} holds `{{{name}}}`, which is not a placeholder; \
         the placeholders are {{target}}, {{from}}, {{to}} and {{kind}}"
    )]
    UnknownPlaceholder {
        /// The unknown name, without braces.
        name: String,
        /// Which argument holds it (0 is the program).
        index: usize,
    },
    /// A placeholder inside a shell's `-c` script.
    #[error(
        "argument {index} is the script of `{shell} -c` and holds a placeholder: the shell would \
         run the value as code. Pass values as positional arguments instead, e.g. \
         {shell} -c 'kubectl scale \"deployment/$1\" --replicas=\"$2\"' _ {{target}} {{to}}"
    )]
    ShellScript {
        /// The shell, as written.
        shell: String,
        /// Which argument is the script (0 is the program).
        index: usize,
    },
}

/// `run.apply_command`, split into arguments and checked.
///
/// Parsing follows POSIX shell word rules (via the `shlex` crate): quotes group words and are
/// removed, `\` escapes; nothing is expanded (`$HOME`, `*`, `~` stay as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    args: Vec<String>,
}

impl CommandTemplate {
    /// Splits `text` into the program and its arguments, refusing what could let a value run
    /// a command: a placeholder as the program or inside a shell's `-c` script.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let args = shlex::split(text).ok_or(TemplateError::Unsplittable)?;
        let Some(program) = args.first() else {
            return Err(TemplateError::Empty);
        };
        for (index, arg) in args.iter().enumerate() {
            if let Some(name) = braced_names(arg).find(|n| !PLACEHOLDERS.contains(n)) {
                return Err(TemplateError::UnknownPlaceholder {
                    name: name.to_string(),
                    index,
                });
            }
        }
        if has_placeholder(program) {
            return Err(TemplateError::PlaceholderProgram {
                program: program.clone(),
            });
        }
        for (i, arg) in args.iter().enumerate() {
            if !SHELLS.contains(&basename(arg)) {
                continue;
            }
            if let Some(script) = shell_script(&args[i + 1..]) {
                let index = i + 1 + script;
                if args[i..=index].iter().any(|a| has_placeholder(a)) {
                    return Err(TemplateError::ShellScript {
                        shell: arg.clone(),
                        index,
                    });
                }
            }
        }
        Ok(CommandTemplate { args })
    }

    /// The program to run, as written (looked up in `PATH` when it has no `/`).
    pub fn program(&self) -> &str {
        &self.args[0]
    }

    /// The program and its arguments for one decision, each placeholder replaced by its value
    /// in one pass (a value holding `{to}` stays as it is).
    ///
    /// Refused (with why) when an argument that starts with a placeholder would begin with `-`:
    /// a workload named `--kubeconfig=/tmp/x` there would be read as an option, not a name.
    /// With no shell, that is the one way left for a value to change what the program does.
    pub fn argv(&self, d: &Decision) -> Result<Vec<String>, String> {
        let from = d.from.to_string();
        let to = d.to.to_string();
        let value = |name: &str| match name {
            "target" => Some(d.target.as_str()),
            "from" => Some(from.as_str()),
            "to" => Some(to.as_str()),
            "kind" => Some(d.kind.as_str()),
            _ => None,
        };
        self.args
            .iter()
            .map(|a| {
                let arg = substitute(a, value);
                // The template's own argument starts with a placeholder: the `-` is a value's.
                if a.starts_with('{') && arg.starts_with('-') {
                    return Err(format!(
                        "not started: argument `{a}` would be `{arg}`, which {} would read as \
                         an option; rename the workload or put the value inside a word \
                         (deployment/{{target}})",
                        self.program()
                    ));
                }
                Ok(arg)
            })
            .collect()
    }
}

/// The template as a command line a shell would split back into the same arguments.
impl fmt::Display for CommandTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match shlex::try_join(self.args.iter().map(String::as_str)) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "{:?}", self.args),
        }
    }
}

/// The names of every `{name}` in `arg` (`name` of lowercase letters and `_`).
fn braced_names(arg: &str) -> impl Iterator<Item = &str> {
    arg.match_indices('{').filter_map(move |(i, _)| {
        let rest = &arg[i + 1..];
        let end = rest.find('}')?;
        let name = &rest[..end];
        (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then_some(name)
    })
}

fn has_placeholder(arg: &str) -> bool {
    braced_names(arg).any(|n| PLACEHOLDERS.contains(&n))
}

/// `/usr/bin/bash` → `bash`.
fn basename(arg: &str) -> &str {
    arg.rsplit('/').next().unwrap_or(arg)
}

/// Given the arguments after a shell, the index (among them) of the script it runs with `-c`,
/// if it is run so: the first operand after options that include `c` (`-c`, `-ec`, `-xc`,
/// fish's `--command`).
/// Options that take a value (`-o pipefail`, `-O extglob`, `--rcfile f`) skip it.
fn shell_script(rest: &[String]) -> Option<usize> {
    let mut command_mode = false;
    let mut i = 0;
    while i < rest.len() {
        let a = rest[i].as_str();
        if a == "--" || a == "-" {
            i += 1;
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            if long.starts_with("command=") {
                // fish's `--command=script`: the script is this very argument.
                return Some(i);
            }
            command_mode |= long == "command";
            if ["rcfile", "init-file"].contains(&long) {
                i += 1;
            }
        } else if let Some(flags) = a.strip_prefix('-').or_else(|| a.strip_prefix('+')) {
            command_mode |= flags.contains('c');
            if flags.ends_with('o') || flags.ends_with('O') {
                i += 1;
            }
        } else {
            break;
        }
        i += 1;
    }
    (command_mode && i < rest.len()).then_some(i)
}

/// `arg` with each `{name}` that `value` knows replaced, scanning left to right once.
fn substitute<'a>(arg: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| Some((close, value(&after[..close])?)))
        {
            Some((close, v)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Runs the template per scale decision (holds and node decisions are skipped: pools are
/// scaled by cloud tooling prescale does not drive), at most
/// [`MAX_IN_FLIGHT`](super::MAX_IN_FLIGHT) at once, each in its own task, so one command
/// that hangs until its timeout holds back no other workload.
///
/// Each command runs at most its timeout and is killed, with everything it started (its own
/// process group), at the timeout or when prescale is asked to stop; neither can hold the
/// loop. Its stdout is discarded; the end of its stderr is kept for the failure's reason.
#[derive(Debug, Clone)]
pub struct CommandActuator {
    template: CommandTemplate,
    timeout: Duration,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Bytes of a command's stderr kept (the newest): enough for any error message, bounded
/// whatever the command writes.
const STDERR_KEPT: usize = 4096;

/// Characters of stderr quoted in a failure's reason.
const EXCERPT_CHARS: usize = 200;

/// How long stderr is still read after the command exited (a background child may hold it).
const STDERR_GRACE: Duration = Duration::from_millis(200);

impl CommandActuator {
    /// An actuator for a checked template, with [`DEFAULT_APPLY_TIMEOUT`](super::DEFAULT_APPLY_TIMEOUT).
    pub fn new(template: CommandTemplate) -> Self {
        CommandActuator {
            template,
            timeout: super::DEFAULT_APPLY_TIMEOUT,
            stop: None,
        }
    }

    /// Kills each command still running after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Kills the running command, and starts no more, once `stop` reads true (on SIGTERM).
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Runs one decision's command to its end, its timeout, or a stop.
    async fn run(&self, d: &Decision) -> Outcome {
        let program = self.template.program();
        let argv = match self.template.argv(d) {
            Ok(argv) => argv,
            Err(why) => return Outcome::Failed(why),
        };
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so a kill reaches what it started too (`sleep` under
        // `sh -c 'a; sleep 1000'` would otherwise outlive it).
        #[cfg(unix)]
        command.process_group(0);
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(format!("{program} could not be started: {e}")),
        };
        // Dropped unfinished (leadership lapsed, the cycle was abandoned), this future would
        // only kill the program itself (`kill_on_drop`): the guard kills its group too.
        let mut guard = GroupGuard(child.id());
        let mut stderr = child.stderr.take();
        let mut kept = Vec::new();
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let stopped = super::stopped(self.stop.clone());
        tokio::pin!(stopped);
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                n = read_some(&mut stderr, &mut buf) => match n {
                    Some(n) => keep_tail(&mut kept, &buf[..n]),
                    None => stderr = None,
                },
                _ = &mut deadline => {
                    guard.0 = None;
                    kill_group(&mut child).await;
                    return Outcome::Failed(format!(
                        "{program} timed out after {}s (run.apply_timeout) and was killed",
                        self.timeout.as_secs_f64()
                    ));
                }
                _ = &mut stopped => {
                    guard.0 = None;
                    kill_group(&mut child).await;
                    return Outcome::Failed(format!("{program} killed: prescale is stopping"));
                }
            }
        };
        if stderr.is_some() {
            let _ = tokio::time::timeout(STDERR_GRACE, async {
                while let Some(n) = read_some(&mut stderr, &mut buf).await {
                    keep_tail(&mut kept, &buf[..n]);
                }
            })
            .await;
        }
        guard.0 = None;
        match status {
            Ok(s) if s.success() => Outcome::Applied,
            Ok(s) => {
                let said = excerpt(&kept);
                let sep = if said.is_empty() { "" } else { ": " };
                Outcome::Failed(format!("{program} {}{sep}{said}", exit_text(s)))
            }
            Err(e) => Outcome::Failed(format!("waiting for {program}: {e}")),
        }
    }
}

impl super::Actuator for CommandActuator {
    fn apply<'a>(&'a mut self, decisions: &'a [Decision]) -> super::Applying<'a> {
        Box::pin(self.changes(decisions, None))
    }

    /// Concurrently as without leader election, each command asking leadership in its own
    /// task once it has its slot, right before it starts.
    fn apply_led<'a>(
        &'a mut self,
        decisions: &'a [Decision],
        leadership: &'a Leadership,
    ) -> super::Applying<'a> {
        Box::pin(self.changes(decisions, Some(leadership)))
    }
}

impl CommandActuator {
    /// One cycle's commands through [`super::bounded::changes`] (at most
    /// [`MAX_IN_FLIGHT`](super::MAX_IN_FLIGHT) at once).
    async fn changes(
        &self,
        decisions: &[Decision],
        leadership: Option<&Leadership>,
    ) -> Vec<Outcome> {
        super::bounded::changes(decisions, leadership, self.stop.as_ref(), |d| {
            if !matches!(d.kind, DecisionKind::ScaleUp | DecisionKind::ScaleDown) {
                return Err(Outcome::Skipped(Skip::Nothing));
            }
            let (me, d) = (self.clone(), d.clone());
            Ok(Box::pin(async move {
                tracing::info!(
                    "{} '{}' {} → {}: running {}",
                    d.kind,
                    d.target,
                    d.from,
                    d.to,
                    me.template.program()
                );
                let o = me.run(&d).await;
                if let Outcome::Failed(why) = &o {
                    // Here, per decision, so that every failure is seen, not only the first.
                    tracing::warn!("{} '{}' not applied: {why}", d.kind, d.target);
                }
                o
            }))
        })
        .await
    }
}

/// Reads what is there; `None` at the end (or on an error). Never resolves without a pipe.
async fn read_some(r: &mut Option<tokio::process::ChildStderr>, buf: &mut [u8]) -> Option<usize> {
    match r {
        Some(r) => match r.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

/// Appends `new`, keeping only the newest [`STDERR_KEPT`] bytes.
fn keep_tail(kept: &mut Vec<u8>, new: &[u8]) {
    kept.extend_from_slice(new);
    if kept.len() > STDERR_KEPT {
        kept.drain(..kept.len() - STDERR_KEPT);
    }
}

/// The end of what a command said, on one line: control characters (colours, newlines) as
/// spaces, runs of spaces as one, at most [`EXCERPT_CHARS`] characters (the last ones).
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let words: Vec<&str> = text
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let line = words.join(" ");
    let n = line.chars().count();
    if n <= EXCERPT_CHARS {
        line
    } else {
        let tail: String = line.chars().skip(n - EXCERPT_CHARS).collect();
        format!("…{tail}")
    }
}

/// `exited with status 3`, or `was killed by signal 9`.
fn exit_text(s: ExitStatus) -> String {
    if let Some(code) = s.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&s) {
        return format!("was killed by signal {sig}");
    }
    format!("ended with {s}")
}

/// Kills a running command's process group when dropped while armed (`Some(group id)`).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(id) = self.0 {
            kill_process_group(id);
        }
    }
}

/// SIGKILL to process group `id` (the command's: it leads its own group). A system call, not
/// the `kill` program: the image prescale ships in (`debian:bookworm-slim`) has none, and
/// killing only the shell would leave its `kubectl` running to scale after the outcome was
/// logged as failed.
fn kill_process_group(id: u32) {
    #[cfg(unix)]
    if let Ok(pgid) = libc::pid_t::try_from(id) {
        // SAFETY: killpg takes plain integers and touches no memory of this process; a group
        // that is already gone gives ESRCH, which is fine.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Kills a command's process group (see [`CommandActuator::run`]) and reaps it.
async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(id) = child.id() {
        kill_process_group(id);
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests;
