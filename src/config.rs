//! `prescale.toml`: read and validated once at start-up, so that a mistake is reported before
//! anything runs, naming the key it is in (`signal[1].step: ...`).
//!
//! Parsing happens in two layers. Serde reads the file into `Raw*` structs that mirror the TOML
//! (plain strings for durations and paths) and rejects unknown keys; [`Config::from_toml`] then
//! checks every value and turns it into the typed, validated [`Config`] the rest of the program
//! uses. Durations stay strings in the raw layer so the error can name the key and quote the
//! text, which serde's own errors cannot do well.
//!
//! To add a section (`[[workload]]`, `[run]`, ...): add a `Raw*` field to [`RawConfig`], a typed
//! field to [`Config`], and a `validate_*` step that pushes [`Problem`]s.

use crate::plan::{AccuracyConfig, PoolSpec, WorkloadSpec};
use crate::series::parse_duration;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// The file is not valid TOML, or has keys or types prescale does not know.
    #[error("{path}: {message}")]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// The TOML parser's message, which names the line and key.
        message: String,
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

/// The file as serde reads it. Unknown keys are refused so a typo is an error, not a silently
/// ignored setting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[prometheus]`.
    pub prometheus: Option<RawPrometheus>,
    /// `[[signal]]`, in file order.
    #[serde(default)]
    pub signal: Vec<RawSignal>,
    /// `[run]`: the live loop.
    pub run: Option<RawRun>,
    /// `[export]`: prescale's own /metrics.
    pub export: Option<RawExport>,
    /// `[replay]`: replay CSV history instead of querying Prometheus.
    pub replay: Option<RawReplay>,
    /// `[[workload]]`: what to scale.
    #[serde(default)]
    pub workload: Vec<WorkloadSpec>,
    /// `[[pool]]`: node pools.
    #[serde(default)]
    pub pool: Vec<PoolSpec>,
    /// `[[node]]`: the nodes there are at start, per pool.
    #[serde(default)]
    pub node: Vec<RawNode>,
    /// `[accuracy]`: how the forecast's measured accuracy weights it.
    pub accuracy: Option<AccuracyConfig>,
}

/// `[prometheus]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheus {
    /// Base URL, e.g. `http://127.0.0.1:9090` (a path prefix is kept).
    pub url: String,
    /// Per-request timeout, e.g. `10s`.
    pub timeout: Option<String>,
    /// File holding a bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// Basic auth; the password comes from a file.
    pub basic_auth: Option<RawBasicAuth>,
    /// PEM file of extra CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// Extra request headers (e.g. a tenant header). Values are treated as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

// By hand so that a header value (possibly an API key) never reaches a log via `{:?}`.
impl fmt::Debug for RawPrometheus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawPrometheus")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("bearer_token_file", &self.bearer_token_file)
            .field("basic_auth", &self.basic_auth)
            .field("ca_file", &self.ca_file)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `basic_auth = { user = "...", password_file = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    /// User name (not a secret).
    pub user: String,
    /// File holding the password.
    pub password_file: PathBuf,
}

/// `[[signal]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignal {
    /// Name; also the CSV file stem on export.
    pub name: String,
    /// PromQL.
    pub query: String,
    /// Labels that name one series; absent = all labels of the result.
    pub series_labels: Option<Vec<String>>,
    /// Grid step, e.g. `1m`.
    pub step: String,
    /// History to backfill and to keep, e.g. `7d`.
    pub lookback: String,
    /// A series not seen for this long is stale (default: 3 steps, at least 1m).
    pub stale_after: Option<String>,
    /// A series not seen for this long is dropped (default: 1h, at least `stale_after`).
    pub drop_after: Option<String>,
    /// Most series kept for this signal; bounds memory (default 10000).
    pub max_series: Option<usize>,
    /// Steps re-fetched on every poll to pick up late samples (default 2).
    pub overlap_steps: Option<u32>,
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
    /// The live loop's sections: `[run]`, `[export]`, `[replay]`, workloads, pools, nodes.
    pub live: LiveConfig,
}

/// How to reach Prometheus. Secrets are read from their files at start-up and held in
/// [`Secret`], whose `Debug` and `Display` print `<redacted>`.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Base URL without a trailing slash and without credentials.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Authentication.
    pub auth: Auth,
    /// Extra CA certificates (PEM file), checked to parse at start-up.
    pub ca_file: Option<PathBuf>,
    /// Extra headers; values are secret.
    pub headers: Vec<(String, Secret)>,
}

/// Authentication towards Prometheus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// None.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic ...`.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
}

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One signal to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalConfig {
    /// Name, a safe file stem (`[A-Za-z0-9_.-]`).
    pub name: String,
    /// PromQL.
    pub query: String,
    /// Labels that name one series; empty = all labels of the result except `__name__`.
    pub series_labels: Vec<String>,
    /// Grid step in seconds.
    pub step: i64,
    /// History kept, in seconds; also what is backfilled at start.
    pub lookback: i64,
    /// Seconds without a sample after which a series is stale.
    pub stale_after: i64,
    /// Seconds without a sample after which a series is dropped.
    pub drop_after: i64,
    /// Most series kept.
    pub max_series: usize,
    /// Steps re-fetched on each poll.
    pub overlap_steps: u32,
}

impl SignalConfig {
    /// Ring slots per series: the lookback in steps, plus the overlap and one slot so that a
    /// full lookback is still held right after a poll appends.
    pub fn ring_capacity(&self) -> usize {
        let steps = (self.lookback + self.step - 1) / self.step;
        steps as usize + 1 + self.overlap_steps as usize
    }

    /// A signal with defaults for everything optional (for tests and programmatic use).
    pub fn new(name: &str, query: &str, step: i64, lookback: i64) -> Self {
        SignalConfig {
            name: name.to_string(),
            query: query.to_string(),
            series_labels: Vec::new(),
            step,
            lookback,
            stale_after: default_stale_after(step),
            drop_after: default_stale_after(step).max(DEFAULT_DROP_AFTER),
            max_series: DEFAULT_MAX_SERIES,
            overlap_steps: DEFAULT_OVERLAP_STEPS,
        }
    }
}

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on series per signal.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// Default steps re-fetched per poll.
pub const DEFAULT_OVERLAP_STEPS: u32 = 2;
/// Default time after which a vanished series is dropped.
pub const DEFAULT_DROP_AFTER: i64 = 3600;
/// Longest lookback accepted: a year. Beyond that the ring sizing is surely a typo.
const MAX_LOOKBACK: i64 = 366 * 86_400;
/// Most slots one series' ring may have; bounds memory against `step = "1s", lookback = "1y"`.
const MAX_RING_SLOTS: i64 = 1_000_000;

fn default_stale_after(step: i64) -> i64 {
    (3 * step).max(60)
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Config::from_toml(path, &text)
    }

    /// Validates configuration text; `path` names it in errors and anchors relative paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();
        let prometheus = raw
            .prometheus
            .as_ref()
            .and_then(|p| validate_prometheus(p, base, &mut problems));
        let signals = validate_signals(&raw.signal, &mut problems);
        let live = validate_live(&raw, base, &signals, &mut problems);
        if raw.prometheus.is_some() && raw.replay.is_some() {
            problem(
                &mut problems,
                "replay",
                "[replay] and [prometheus] are mutually exclusive: replay stands in for Prometheus",
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
            live,
        })
    }

    /// The signal with this name.
    pub fn signal(&self, name: &str) -> Option<&SignalConfig> {
        self.signals.iter().find(|s| s.name == name)
    }
}

fn problem(problems: &mut Vec<Problem>, key: impl Into<String>, message: impl Into<String>) {
    problems.push(Problem {
        key: key.into(),
        message: message.into(),
    });
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Reads a secret file; trailing newlines are not part of the secret (editors add them).
fn read_secret(base: &Path, file: &Path, key: &str, problems: &mut Vec<Problem>) -> Option<Secret> {
    let path = resolve(base, file);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let s = text.trim_end_matches(['\n', '\r']);
            if s.is_empty() {
                problem(problems, key, format!("{} is empty", path.display()));
                None
            } else {
                Some(Secret::new(s))
            }
        }
        Err(e) => {
            problem(
                problems,
                key,
                format!("cannot read {}: {e}", path.display()),
            );
            None
        }
    }
}

fn validate_prometheus(
    raw: &RawPrometheus,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Option<PrometheusConfig> {
    let before = problems.len();
    let url = raw.url.trim().trim_end_matches('/').to_string();
    match url.split_once("://") {
        Some(("http" | "https", rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            if authority.contains('@') {
                // Credentials in a URL end up in logs and error messages; refuse them outright.
                problem(
                    problems,
                    "prometheus.url",
                    "credentials in the URL are not accepted (they would be logged); use \
                     basic_auth with password_file or bearer_token_file",
                );
            } else if authority.is_empty() {
                problem(problems, "prometheus.url", "has no host");
            } else if rest.contains(['?', '#']) {
                problem(
                    problems,
                    "prometheus.url",
                    "must not have a query or fragment",
                );
            }
        }
        _ => problem(
            problems,
            "prometheus.url",
            format!("'{url}' must start with http:// or https://"),
        ),
    }
    let timeout = match &raw.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => match parse_duration(t) {
            Ok(s) => Duration::from_secs(s as u64),
            Err(e) => {
                problem(problems, "prometheus.timeout", e);
                DEFAULT_TIMEOUT
            }
        },
    };
    let auth = match (&raw.bearer_token_file, &raw.basic_auth) {
        (Some(_), Some(_)) => {
            problem(
                problems,
                "prometheus",
                "bearer_token_file and basic_auth are mutually exclusive",
            );
            Auth::None
        }
        (Some(f), None) => read_secret(base, f, "prometheus.bearer_token_file", problems)
            .map(Auth::Bearer)
            .unwrap_or(Auth::None),
        (None, Some(b)) => {
            if b.user.is_empty() || b.user.contains(':') {
                problem(
                    problems,
                    "prometheus.basic_auth.user",
                    "must be non-empty and contain no ':'",
                );
            }
            read_secret(
                base,
                &b.password_file,
                "prometheus.basic_auth.password_file",
                problems,
            )
            .map(|password| Auth::Basic {
                user: b.user.clone(),
                password,
            })
            .unwrap_or(Auth::None)
        }
        (None, None) => Auth::None,
    };
    let ca_file = raw.ca_file.as_ref().map(|f| resolve(base, f));
    if let Some(ca) = &ca_file {
        match std::fs::read(ca) {
            Ok(pem) => match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => {}
                Ok(_) => problem(
                    problems,
                    "prometheus.ca_file",
                    format!("{} holds no PEM certificate", ca.display()),
                ),
                Err(e) => problem(
                    problems,
                    "prometheus.ca_file",
                    format!("{} is not a PEM certificate bundle: {e}", ca.display()),
                ),
            },
            Err(e) => problem(
                problems,
                "prometheus.ca_file",
                format!("cannot read {}: {e}", ca.display()),
            ),
        }
    }
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        let key = format!("prometheus.headers.{name}");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problem(problems, key, "is not a valid HTTP header name");
        } else if name.eq_ignore_ascii_case("authorization") {
            problem(
                problems,
                key,
                "set authentication with bearer_token_file or basic_auth instead",
            );
        } else if reqwest::header::HeaderValue::from_str(value).is_err() {
            // The value is not quoted: it may be a credential.
            problem(problems, key, "value is not a valid HTTP header value");
        } else {
            headers.push((name.clone(), Secret::new(value.clone())));
        }
    }
    (problems.len() == before).then_some(PrometheusConfig {
        url,
        timeout,
        auth,
        ca_file,
        headers,
    })
}

fn validate_signals(raw: &[RawSignal], problems: &mut Vec<Problem>) -> Vec<SignalConfig> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, s) in raw.iter().enumerate() {
        let key = |field: &str| format!("signal[{i}].{field}");
        let before = problems.len();
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || s.name.starts_with('.')
        {
            // The name becomes a file name on export.
            problem(
                problems,
                key("name"),
                format!(
                    "'{}' must be non-empty and use only letters, digits, '_', '-', '.'",
                    s.name
                ),
            );
        } else if !names.insert(s.name.clone()) {
            problem(
                problems,
                key("name"),
                format!("'{}' is used by an earlier signal", s.name),
            );
        }
        if s.query.trim().is_empty() {
            problem(problems, key("query"), "is empty");
        }
        let labels = s.series_labels.clone().unwrap_or_default();
        let mut seen = BTreeSet::new();
        for l in &labels {
            let valid = !l.is_empty()
                && l.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                problem(
                    problems,
                    key("series_labels"),
                    format!("'{l}' is not a Prometheus label name"),
                );
            } else if !seen.insert(l) {
                problem(
                    problems,
                    key("series_labels"),
                    format!("'{l}' is listed twice"),
                );
            }
        }
        let mut dur = |field: &str, text: &str| match parse_duration(text) {
            Ok(v) => Some(v),
            Err(e) => {
                problem(problems, key(field), e);
                None
            }
        };
        let step = dur("step", &s.step);
        let lookback = dur("lookback", &s.lookback);
        let stale_after = s.stale_after.as_deref().and_then(|t| dur("stale_after", t));
        let drop_after = s.drop_after.as_deref().and_then(|t| dur("drop_after", t));
        if let (Some(step), Some(lookback)) = (step, lookback) {
            if lookback < step {
                problem(problems, key("lookback"), "must be at least one step");
            } else if lookback > MAX_LOOKBACK {
                problem(problems, key("lookback"), "must be at most 366d");
            } else if lookback / step > MAX_RING_SLOTS {
                problem(
                    problems,
                    key("lookback"),
                    format!(
                        "{} steps per series is more than the limit of {MAX_RING_SLOTS}; \
                         use a longer step or a shorter lookback",
                        lookback / step
                    ),
                );
            }
        }
        let stale = stale_after.unwrap_or_else(|| default_stale_after(step.unwrap_or(60)));
        let drop = drop_after.unwrap_or(stale.max(DEFAULT_DROP_AFTER));
        if drop < stale {
            problem(
                problems,
                key("drop_after"),
                "must not be shorter than stale_after",
            );
        }
        let max_series = s.max_series.unwrap_or(DEFAULT_MAX_SERIES);
        if max_series == 0 {
            problem(problems, key("max_series"), "must be at least 1");
        }
        let overlap = s.overlap_steps.unwrap_or(DEFAULT_OVERLAP_STEPS);
        if overlap > 1000 {
            problem(problems, key("overlap_steps"), "must be at most 1000");
        }
        if problems.len() == before {
            if let (Some(step), Some(lookback)) = (step, lookback) {
                out.push(SignalConfig {
                    name: s.name.clone(),
                    query: s.query.clone(),
                    series_labels: labels,
                    step,
                    lookback,
                    stale_after: stale,
                    drop_after: drop,
                    max_series,
                    overlap_steps: overlap,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("/nonexistent/prescale.toml"), text)
    }

    const GOOD: &str = r#"
[prometheus]
url = "http://127.0.0.1:9090/"
timeout = "5s"

[[signal]]
name = "cpu"
query = 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[2m]))'
series_labels = ["instance"]
step = "1m"
lookback = "7d"
"#;

    #[test]
    fn good_config() {
        let c = parse(GOOD).unwrap();
        let p = c.prometheus.as_ref().unwrap();
        assert_eq!(p.url, "http://127.0.0.1:9090");
        assert_eq!(p.timeout, Duration::from_secs(5));
        assert_eq!(p.auth, Auth::None);
        let s = c.signal("cpu").unwrap();
        assert_eq!((s.step, s.lookback), (60, 7 * 86_400));
        assert_eq!(s.series_labels, vec!["instance"]);
        assert_eq!(s.stale_after, 180);
        assert_eq!(s.drop_after, 3600);
        assert_eq!(s.ring_capacity(), 10_080 + 1 + 2);
    }

    #[test]
    fn errors_name_the_key() {
        let text = GOOD.replace("step = \"1m\"", "step = \"soon\"")
            + "\n[[signal]]\nname = \"cpu\"\nquery = \"\"\nstep = \"1m\"\nlookback = \"1h\"\nseries_labels = [\"0x\"]\n";
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("signal[0].step: 'soon'"), "{e}");
        assert!(e.contains("signal[1].name: 'cpu' is used"), "{e}");
        assert!(e.contains("signal[1].query: is empty"), "{e}");
        assert!(e.contains("signal[1].series_labels: '0x'"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse(&GOOD.replace("timeout", "timout"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("timout"), "{e}");
        let e = parse("[promethus]\nurl='x'\n").unwrap_err().to_string();
        assert!(e.contains("promethus"), "{e}");
    }

    #[test]
    fn url_credentials_are_refused_without_echo() {
        let e = parse(&GOOD.replace("127.0.0.1:9090/", "admin:hunter2@127.0.0.1:9090"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prometheus.url: credentials"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn secrets_from_files_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "tok-SECRET\n").unwrap();
        std::fs::write(dir.path().join("pw"), "pw-SECRET").unwrap();
        let path = dir.path().join("prescale.toml");
        let c = Config::from_toml(
            &path,
            &GOOD.replace(
                "timeout = \"5s\"",
                "bearer_token_file = \"token\"\nheaders = { X-Scope-OrgID = \"org-SECRET\" }",
            ),
        )
        .unwrap();
        let p = c.prometheus.as_ref().unwrap();
        assert_eq!(p.auth, Auth::Bearer(Secret::new("tok-SECRET")));
        assert!(!format!("{c:?}").contains("SECRET"));

        let c = Config::from_toml(
            &path,
            &GOOD.replace(
                "timeout = \"5s\"",
                "basic_auth = { user = \"u\", password_file = \"pw\" }",
            ),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("SECRET"));
        assert!(
            matches!(&c.prometheus.unwrap().auth, Auth::Basic { user, password }
            if user == "u" && password.expose() == "pw-SECRET")
        );

        let e = Config::from_toml(
            &path,
            &GOOD.replace("timeout = \"5s\"", "bearer_token_file = \"missing\""),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("prometheus.bearer_token_file: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn bounds_memory_by_configuration() {
        let e = parse(
            &GOOD
                .replace("step = \"1m\"", "step = \"1s\"")
                .replace("7d", "300d"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("signal[0].lookback"), "{e}");
        let e = parse(&GOOD.replace("lookback = \"7d\"", "lookback = \"7d\"\nmax_series = 0"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("signal[0].max_series"), "{e}");
    }

    #[test]
    fn bad_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not a cert").unwrap();
        let e = Config::from_toml(
            &dir.path().join("p.toml"),
            &GOOD.replace("timeout = \"5s\"", "ca_file = \"ca.pem\""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("prometheus.ca_file"), "{e}");
    }
}

/// `[run]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    /// Model file (`models/web.model`).
    pub model: Option<PathBuf>,
    /// Time between cycles; default: the step of the first signal.
    pub interval: Option<String>,
    /// JSON-lines decision log; default `prescale-decisions.jsonl`.
    pub decision_log: Option<PathBuf>,
    /// Shell command run per scale decision when `--apply` is given.
    pub apply_command: Option<String>,
    /// Retrain on the buffers this often (`24h`); off when absent.
    pub retrain_every: Option<String>,
    /// Stop after this many cycles; default: run until stopped (or the replay ends).
    pub cycles: Option<u64>,
    /// Print holds in the dry-run table, not only changes.
    pub show_holds: Option<bool>,
}

/// `[export]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    /// Listen address for /metrics, /healthz, /readyz; default `127.0.0.1:9464`.
    pub listen: Option<String>,
    /// Set to false to serve nothing.
    pub enabled: Option<bool>,
}

/// `[replay]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplay {
    /// Signal the replayed series belong to (a `[[signal]]` name).
    pub signal: String,
    /// History files (`timestamp,value` or `timestamp,series,value`).
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// A directory whose `*.csv` files are all replayed.
    pub dir: Option<PathBuf>,
    /// Replay seconds per wall-clock second; default 600 (a 5-minute step every 0.5 s).
    pub speed: Option<f64>,
    /// History replayed before the first cycle, so features have what they need; default 8d.
    pub warmup: Option<String>,
}

/// `[[node]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Node name.
    pub name: String,
    /// Pool it belongs to (a `[[pool]]` name).
    pub pool: String,
}

/// The live loop's validated settings.
#[derive(Debug, Clone, Default)]
pub struct LiveConfig {
    /// Model file.
    pub model: Option<PathBuf>,
    /// Seconds between cycles.
    pub interval: i64,
    /// Decision log path.
    pub decision_log: PathBuf,
    /// Command template for `--apply`.
    pub apply_command: Option<String>,
    /// Retraining period, seconds.
    pub retrain_every: Option<i64>,
    /// Cycles to run, if limited.
    pub cycles: Option<u64>,
    /// Print holds in the table.
    pub show_holds: bool,
    /// Where to serve /metrics; `None` = not at all.
    pub listen: Option<SocketAddr>,
    /// Replay instead of Prometheus.
    pub replay: Option<ReplayConfig>,
    /// Workloads, validated.
    pub workloads: Vec<WorkloadSpec>,
    /// Pools, validated.
    pub pools: Vec<PoolSpec>,
    /// Nodes at start: (name, pool).
    pub nodes: Vec<(String, String)>,
    /// Accuracy tracking.
    pub accuracy: AccuracyConfig,
}

/// Validated `[replay]`.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Signal name.
    pub signal: String,
    /// Files, resolved and sorted.
    pub files: Vec<PathBuf>,
    /// Replay seconds per wall second.
    pub speed: f64,
    /// Seconds of history before the first cycle.
    pub warmup: i64,
}

/// The default listen address of the exporter.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

fn duration_key(
    text: &Option<String>,
    key: &str,
    default: i64,
    problems: &mut Vec<Problem>,
) -> i64 {
    match text {
        None => default,
        Some(t) => parse_duration(t).unwrap_or_else(|e| {
            problem(problems, key, e);
            default
        }),
    }
}

fn validate_live(
    raw: &RawConfig,
    base: &Path,
    signals: &[SignalConfig],
    problems: &mut Vec<Problem>,
) -> LiveConfig {
    let run = raw.run.as_ref();
    let default_interval = signals.first().map(|s| s.step).unwrap_or(60);
    let interval = duration_key(
        &run.and_then(|r| r.interval.clone()),
        "run.interval",
        default_interval,
        problems,
    );
    let retrain_every = run.and_then(|r| r.retrain_every.as_ref()).and_then(|t| {
        parse_duration(t)
            .map_err(|e| problem(problems, "run.retrain_every", e))
            .ok()
    });
    if let Some(Some(c)) = run.map(|r| r.cycles) {
        if c == 0 {
            problem(problems, "run.cycles", "must be at least 1");
        }
    }
    let export = raw.export.as_ref();
    let listen = if export.and_then(|e| e.enabled) == Some(false) {
        None
    } else {
        let text = export
            .and_then(|e| e.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                problem(
                    problems,
                    "export.listen",
                    format!("'{text}' is not host:port: {e}"),
                );
                None
            }
        }
    };
    let replay = raw.replay.as_ref().and_then(|r| {
        let before = problems.len();
        if !signals.iter().any(|s| s.name == r.signal) {
            problem(
                problems,
                "replay.signal",
                format!("'{}' is not the name of a [[signal]]", r.signal),
            );
        }
        let mut files: Vec<PathBuf> = r.files.iter().map(|f| resolve(base, f)).collect();
        if let Some(dir) = &r.dir {
            let dir = resolve(base, dir);
            match crate::series::csv_files(&dir) {
                Ok(found) => files.extend(found),
                Err(e) => problem(problems, "replay.dir", format!("{}: {e}", dir.display())),
            }
        }
        files.sort();
        files.dedup();
        if files.is_empty() && problems.len() == before {
            problem(
                problems,
                "replay",
                "no files: give files = [...] or dir = \"...\"",
            );
        }
        let speed = r.speed.unwrap_or(600.0);
        if !(speed.is_finite() && speed > 0.0) {
            problem(
                problems,
                "replay.speed",
                format!("must be a positive number, got {speed}"),
            );
        }
        let warmup = duration_key(&r.warmup, "replay.warmup", 8 * 86_400, problems);
        (problems.len() == before).then(|| ReplayConfig {
            signal: r.signal.clone(),
            files,
            speed,
            warmup,
        })
    });
    let mut names = BTreeSet::new();
    for (i, w) in raw.workload.iter().enumerate() {
        if let Err(e) = w.validate() {
            problem(problems, format!("workload[{i}]"), e);
        }
        if !names.insert(w.name.clone()) {
            problem(
                problems,
                format!("workload[{i}].name"),
                format!("'{}' is used twice", w.name),
            );
        }
        if let Some(pool) = &w.pool {
            if !raw.pool.iter().any(|p| &p.name == pool) {
                problem(
                    problems,
                    format!("workload[{i}].pool"),
                    format!("no [[pool]] named '{pool}'"),
                );
            }
        }
    }
    let mut pools = BTreeSet::new();
    for (i, p) in raw.pool.iter().enumerate() {
        if let Err(e) = p.validate() {
            problem(problems, format!("pool[{i}]"), e);
        }
        if !pools.insert(p.name.clone()) {
            problem(
                problems,
                format!("pool[{i}].name"),
                format!("'{}' is used twice", p.name),
            );
        }
    }
    let mut nodes = BTreeSet::new();
    for (i, n) in raw.node.iter().enumerate() {
        if !pools.contains(&n.pool) {
            problem(
                problems,
                format!("node[{i}].pool"),
                format!("no [[pool]] named '{}'", n.pool),
            );
        }
        if !nodes.insert(n.name.clone()) {
            problem(
                problems,
                format!("node[{i}].name"),
                format!("'{}' is used twice", n.name),
            );
        }
    }
    LiveConfig {
        model: run.and_then(|r| r.model.as_ref()).map(|m| resolve(base, m)),
        interval,
        decision_log: resolve(
            base,
            run.and_then(|r| r.decision_log.as_deref())
                .unwrap_or(Path::new("prescale-decisions.jsonl")),
        ),
        apply_command: run.and_then(|r| r.apply_command.clone()),
        retrain_every,
        cycles: run.and_then(|r| r.cycles),
        show_holds: run.and_then(|r| r.show_holds).unwrap_or(false),
        listen,
        replay,
        workloads: raw.workload.clone(),
        pools: raw.pool.clone(),
        nodes: raw
            .node
            .iter()
            .map(|n| (n.name.clone(), n.pool.clone()))
            .collect(),
        accuracy: {
            let a = raw.accuracy.unwrap_or_default();
            if let Err(e) = a.validate() {
                problem(problems, "accuracy", e);
            }
            a
        },
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;

    #[test]
    fn the_example_and_the_demo_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in ["config/prescale.example.toml", "config/demo.toml"] {
            let path = root.join(name);
            let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!cfg.live.workloads.is_empty(), "{name}");
            assert!(!cfg.live.pools.is_empty(), "{name}");
        }
    }

    #[test]
    fn live_sections_are_checked_by_key() {
        let text = r#"
[[signal]]
name = "cpu"
query = "up"
step = "1m"
lookback = "1d"

[replay]
signal = "mem"
files = ["x.csv"]
speed = -1

[run]
interval = "soon"
cycles = 0

[[workload]]
name = "a"
demand = "cpu"
replica_capacity = 0
max_replicas = 3
boot_time = "1m"
pool = "nope"

[[pool]]
name = "p"
capacity = { cpu = 4, memory = "8Gi" }
boot_time = "2m"
max_nodes = 3

[[node]]
name = "n1"
pool = "q"

[accuracy]
good_wape = 0.9
bad_wape = 0.1
"#;
        let e = Config::from_toml(Path::new("t.toml"), text)
            .unwrap_err()
            .to_string();
        for key in [
            "replay.signal",
            "replay.speed",
            "run.interval",
            "run.cycles",
            "workload[0]",
            "workload[0].pool",
            "node[0].pool",
            "accuracy",
        ] {
            assert!(e.contains(&format!("{key}:")), "missing {key} in:\n{e}");
        }
    }
}
