//! `prescale.toml`: read and validated once at start-up, so that a mistake is reported before
//! anything runs, naming the key it is in (`signal[1].step: ...`).
//!
//! Parsing happens in two layers. Serde reads the file into `Raw*` structs that mirror the TOML
//! (plain strings for durations and paths) and rejects unknown keys; [`Config::from_toml`] then
//! checks every value and turns it into the typed, validated [`Config`] the rest of the program
//! uses. Durations stay strings in the raw layer so the error can name the key and quote the
//! text, which serde's own errors cannot do well.
//!
//! To add a section (`[[workload]]`, `[run]`, ...): add a `Raw*` field to `RawConfig` (`raw.rs`), a
//! typed field to [`Config`], and a `validate_*` step that pushes [`Problem`]s.
//!
//! Each stage owns the type of its sections: the collector `[prometheus]` and `[[signal]]`
//! (`crate::collect::config`), the planners `[[workload]]`, `[[pool]]` and `[accuracy]`
//! ([`crate::plan`]), the cluster-state reader `[cluster]` (`crate::collect::cluster`), the forecast's online
//! calibration `[online_calibration]` ([`crate::forecast::online`]). This module reads the file, checks what spans sections (names used
//! twice, a workload's pool, `[replay]` against `[prometheus]`), collects every problem, and
//! holds the live loop's own sections ([`LiveConfig`]). `[kubernetes]` belongs to
//! [`crate::kubernetes`], `[leader_election]` to [`crate::leader`] and `[shard]` to
//! [`crate::shard`].

mod live;
mod raw;
#[cfg(test)]
mod tests;

pub use live::{LiveConfig, ReplayConfig, DEFAULT_LISTEN, DEFAULT_RETRAIN_MAX_POINTS};

use crate::collect::cluster::validate_cluster;
use crate::collect::config::{redact_userinfo, validate_prometheus, validate_signals};
use crate::collect::{ClusterConfig, PrometheusConfig, SignalConfig};
use live::validate_live;
use raw::RawConfig;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The configuration file.
        path: PathBuf,
        /// What the OS said (not a `source`, so `{:#}` does not print it twice).
        error: std::io::Error,
    },
    /// The file is larger than any configuration: it is refused before it is read whole
    /// (`--config /dev/zero` would otherwise read until memory runs out).
    #[error("{path}: larger than {} MiB; a configuration is a few KiB: is this the right file?", MAX_CONFIG_BYTES >> 20)]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not valid TOML, or has keys or types prescale does not know.
    #[error("{path}: {message}")]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// Where (line and column) and the TOML parser's own message, which names the key
        /// where it knows it; never the text of the line, which may hold a secret.
        message: String,
    },
    /// The command needs Prometheus and the file has no `[prometheus]` section.
    #[error("{path}: no [prometheus] section; collecting needs one (url = \"http://...\")")]
    NoPrometheus {
        /// The configuration file.
        path: PathBuf,
    },
    /// Values that parse but cannot work; every problem found is listed.
    #[error("{path}: invalid configuration:\n{}", format_problems(.problems))]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// One entry per bad key.
        problems: Vec<Problem>,
    },
}

fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One bad value, with the dotted path of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, e.g. `signal[1].step` or `prometheus.url`.
    pub key: String,
    /// What is wrong; never contains a secret.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (relative paths in it were resolved against its directory).
    pub path: PathBuf,
    /// Where to collect from; `None` when the file has no `[prometheus]` (e.g. a replay setup).
    pub prometheus: Option<PrometheusConfig>,
    /// What to collect, in file order.
    pub signals: Vec<SignalConfig>,
    /// `[cluster]`: where the cluster's state is read from; `None` = the `[[node]]` list and
    /// prescale's own decisions (offline, demos).
    pub cluster: Option<ClusterConfig>,
    /// The live loop's sections: `[run]`, `[export]`, `[replay]`, workloads, pools, nodes.
    pub live: LiveConfig,
    /// `[kubernetes]`: how to reach the API server (leader election, the actuator).
    pub kubernetes: crate::kubernetes::KubernetesConfig,
    /// `[leader_election]`, when enabled.
    pub leader: Option<crate::leader::LeaderConfig>,
    /// `[shard]`: which share of the workloads this replica plans (all of them by default).
    pub shard: crate::shard::ShardConfig,
}

impl Config {
    /// Reads and validates a configuration file of at most [`MAX_CONFIG_BYTES`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let io = |error| ConfigError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            ))
        })?;
        Config::from_toml(path, &text)
    }

    /// Validates configuration text; `path` names it in errors and anchors relative paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: parse_message(text, &e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();
        let mut collector_problems = Vec::new();
        let prometheus = raw
            .prometheus
            .as_ref()
            .and_then(|p| validate_prometheus(p, base, &mut collector_problems));
        let signals = validate_signals(&raw.signal, &mut collector_problems);
        let cluster = raw
            .cluster
            .as_ref()
            .and_then(|c| validate_cluster(c, &mut collector_problems));
        for (key, message) in collector_problems {
            problem(&mut problems, key, message);
        }
        let live = validate_live(&raw, base, &signals, &mut problems);
        let mut kube_problems = Vec::new();
        let kubernetes = crate::kubernetes::KubernetesConfig::validate(
            raw.kubernetes.as_ref(),
            base,
            &mut kube_problems,
        );
        let leader =
            crate::leader::LeaderConfig::validate(raw.leader_election.as_ref(), &mut kube_problems);
        let shard = crate::shard::ShardConfig::validate(
            raw.shard.as_ref(),
            |var| std::env::var(var).ok(),
            &mut kube_problems,
        );
        for (key, message) in kube_problems {
            problem(&mut problems, key, message);
        }
        if raw.prometheus.is_some() && raw.replay.is_some() {
            problem(
                &mut problems,
                "replay",
                "[replay] and [prometheus] are mutually exclusive: replay stands in for Prometheus",
            );
        }
        if raw.cluster.is_some() && raw.prometheus.is_none() {
            problem(
                &mut problems,
                "cluster",
                "[cluster] reads kube-state-metrics through [prometheus]; add [prometheus] (url = \"http://...\")",
            );
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            });
        }
        Ok(Config {
            path: path.to_path_buf(),
            prometheus,
            signals,
            cluster,
            live,
            kubernetes,
            leader,
            shard,
        })
    }

    /// The signal with this name.
    pub fn signal(&self, name: &str) -> Option<&SignalConfig> {
        self.signals.iter().find(|s| s.name == name)
    }

    /// `[prometheus]`, for the commands that cannot run without it.
    pub fn require_prometheus(&self) -> Result<&PrometheusConfig, ConfigError> {
        self.prometheus
            .as_ref()
            .ok_or_else(|| ConfigError::NoPrometheus {
                path: self.path.clone(),
            })
    }
}

/// Largest configuration file read: real ones are a few KiB; the limit keeps a wrong path
/// (a log, a device) from being read whole.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Longest line, in characters, that a message keeps: a parser's message can quote a key
/// or a value of the file, which may be megabytes long.
const MAX_QUOTED_LINE: usize = 200;

/// A TOML error as the line and column it is at, then the parser's own message.
///
/// Not toml's `Display`: that quotes the offending line of the file, and in `[prometheus]` a
/// mistyped line can carry a token or a header's value (an unknown `bearer_token = "..."`, an
/// unquoted header value beside a quoted API key). The message itself names keys, not values,
/// except serde's "invalid type: string "..."", which quotes a string of the wrong type whole:
/// that string is left out.
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let message = match e.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            let keys = keys_before(text, span.start);
            let at = match keys.as_slice() {
                [] => String::new(),
                keys => format!(" (key {})", keys.join(" > ")),
            };
            format!("line {line}, column {column}{at}: {}", e.message())
        }
        // Without a position toml's `Display` quotes no line; it names the key instead
        // (`in `run.cycles``), which is worth keeping.
        None => e.to_string(),
    };
    short_lines(&redact_userinfo(&hide_strings(message.trim_end())))
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// The keys written on the line of byte `offset` before it (`events = [{ from = …` → `events`,
/// `from`), to name what a value's error is about; keys only, never a value. Strings are
/// skipped whole (a value may hold `=`), and a quoted key is kept only when `=` follows it.
fn keys_before(text: &str, offset: usize) -> Vec<String> {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let line = &text[text[..end].rfind('\n').map_or(0, |i| i + 1)..end];
    let mut keys = Vec::new();
    let mut word = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                let mut quoted = String::new();
                let mut escaped = false;
                for q in chars.by_ref() {
                    match q {
                        _ if escaped => escaped = false,
                        '\\' if c == '"' => escaped = true,
                        q if q == c => break,
                        _ => {}
                    }
                    quoted.push(q);
                }
                while chars.next_if(|n| n.is_whitespace()).is_some() {}
                if chars.peek() == Some(&'=') {
                    keys.push(format!("\"{}\"", quoted.escape_debug()));
                }
                word.clear();
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => word.push(c),
            '=' if !word.is_empty() => keys.push(std::mem::take(&mut word)),
            c if c.is_whitespace() => {}
            _ => word.clear(),
        }
    }
    keys
}

/// `message` with every string serde quotes as unexpected (`string "..."`, in Rust's debug
/// escaping) replaced by `a string`.
fn hide_strings(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(QUOTED) {
        out.push_str(&rest[..at]);
        out.push_str("a string");
        let quoted = &rest[at + QUOTED.len()..];
        // The closing quote is the first one not escaped by a backslash.
        let mut escaped = false;
        let close = quoted.char_indices().find_map(|(i, c)| match c {
            _ if escaped => {
                escaped = false;
                None
            }
            '\\' => {
                escaped = true;
                None
            }
            '"' => Some(i),
            _ => None,
        });
        rest = close.map_or("", |i| &quoted[i + 1..]);
    }
    out.push_str(rest);
    out
}

/// `text` with every line cut to [`MAX_QUOTED_LINE`] characters, marked where cut.
pub(crate) fn short_lines(text: &str) -> String {
    text.lines()
        .map(|line| {
            let n = line.chars().count();
            if n <= MAX_QUOTED_LINE {
                line.to_string()
            } else {
                let head: String = line.chars().take(MAX_QUOTED_LINE).collect();
                format!("{head}… ({n} characters)")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn problem(
    problems: &mut Vec<Problem>,
    key: impl Into<String>,
    message: impl std::fmt::Display,
) {
    // Every problem goes through here, whichever section found it: a URL quoted in a message
    // never shows its credentials, and a value quoted in it is never quoted whole.
    problems.push(Problem {
        key: key.into(),
        message: short_lines(&redact_userinfo(&message.to_string())),
    });
}
