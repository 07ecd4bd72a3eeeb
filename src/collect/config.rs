//! The collector's sections of `prescale.toml`: `[prometheus]` and `[[signal]]`, as written
//! (`Raw*`, read by serde) and as validated ([`PrometheusConfig`], [`SignalConfig`]).
//!
//! They live here, not in `config/`, because the collector is what they configure: `config/`
//! reads the file and calls [`validate_prometheus`] and [`validate_signals`], and the collector
//! never looks at the rest of the file (workloads, pools, the live loop). Validation reports
//! `(key, message)` pairs, the key dotted from the file's root (`signal[1].step`), which
//! `config/` turns into its problem list; every problem is reported, not only the first.

use crate::series::parse_duration;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Problems found while validating: `(dotted key, message)`, in the order found.
pub(crate) type Problems = Vec<(String, String)>;

fn problem(problems: &mut Problems, key: impl Into<String>, message: impl std::fmt::Display) {
    problems.push((key.into(), message.to_string()));
}

/// A path from the file, made absolute against the file's directory.
pub(crate) fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// `[prometheus]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrometheus {
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
    /// Largest answer read, e.g. `128Mi`.
    pub max_answer_size: Option<String>,
    /// Extra request headers (e.g. a tenant header). Values are secrets: never shown, and
    /// redacted from errors when 6 characters or longer or under a credential-like name.
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
            .field("max_answer_size", &self.max_answer_size)
            .field("ca_file", &self.ca_file)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `basic_auth = { user = "...", password_file = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBasicAuth {
    /// User name (not a secret).
    pub user: String,
    /// File holding the password.
    pub password_file: PathBuf,
}

/// `[[signal]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSignal {
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
    /// Steps re-fetched on every poll to pick up late samples (default: 2 steps, at least
    /// 30 s; see [`default_overlap_steps`]).
    pub overlap_steps: Option<u32>,
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
    /// Bytes of one answer read at most: a query answering more is refused, not read whole
    /// (`max_answer_size`).
    pub max_answer_bytes: usize,
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
        let steps = self.lookback.saturating_add(self.step - 1) / self.step;
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
            overlap_steps: default_overlap_steps(step),
        }
    }
}

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default `max_answer_size`: over twice what a backfill chunk is sized to (2 million samples
/// at ~25 bytes of JSON each, labels besides: ~55 MB), so a normal answer never meets it, while
/// a query that answers a whole fleet's history at once is refused before it takes the process
/// down. Reading a body near the limit holds up to 1.5 times it for a moment (the buffer grows
/// by doubling; the declared length is not trusted to reserve more than 1 MiB).
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 128 << 20;

/// A size in bytes as a Kubernetes quantity (`128Mi`, `512Ki`, `1Gi`, `100M`, or a number),
/// written as a workload's memory is; at least 1Ki, at most 16Gi.
fn parse_size(text: &str) -> Result<usize, String> {
    let bytes = crate::series::parse_quantity(text).map_err(|e| e.to_string())?;
    if !(1024.0..=(16u64 << 30) as f64).contains(&bytes) {
        return Err(format!("'{text}' must be between 1Ki and 16Gi"));
    }
    // Within 16Gi, so it fits a usize on the 64-bit machines prescale is built for.
    Ok(bytes as usize)
}

/// Default cap on series per signal.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// Fewest steps re-fetched per poll by default (late scrapes of the newest step or two).
pub const DEFAULT_OVERLAP_STEPS: u32 = 2;
/// Seconds the default overlap covers at least. VictoriaMetrics answers the newest
/// `-search.latencyOffset` (default 30 s) of every range query provisionally, with the last
/// value before that window repeated or nothing, and the real values only once they are
/// older; the re-fetch must reach back that far or the provisional values stay for good.
pub const DEFAULT_OVERLAP_SECONDS: i64 = 30;

/// The default `overlap_steps` for a step of `step` seconds: [`DEFAULT_OVERLAP_STEPS`], or
/// more for steps under 15 s so that at least [`DEFAULT_OVERLAP_SECONDS`] are re-fetched.
pub fn default_overlap_steps(step: i64) -> u32 {
    let covering = DEFAULT_OVERLAP_SECONDS.saturating_add(step.max(1) - 1) / step.max(1);
    (covering as u32).max(DEFAULT_OVERLAP_STEPS)
}
/// Default time after which a vanished series is dropped.
pub const DEFAULT_DROP_AFTER: i64 = 3600;
/// Most slots one series' ring may have; bounds memory against `step = "1s", lookback = "1y"`.
const MAX_RING_SLOTS: i64 = 1_000_000;

fn default_stale_after(step: i64) -> i64 {
    // Saturating: `step` is bounded by the configuration, not by whoever builds a signal.
    step.saturating_mul(3).max(60)
}

/// Largest secret file read: tokens and passwords are short; the limit keeps a wrong path (a
/// device such as `/dev/zero`, a log) from being read until memory runs out.
const MAX_SECRET_BYTES: u64 = 64 << 10;
/// Largest CA bundle read (a system-wide bundle is about 200 KiB).
const MAX_CA_BYTES: u64 = 4 << 20;

/// The file's bytes, or an error when it is longer than `limit`, read without holding more
/// than `limit + 1` bytes.
fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Reads a secret file; trailing newlines are not part of the secret (editors add them).
fn read_secret(base: &Path, file: &Path, key: &str, problems: &mut Problems) -> Option<Secret> {
    let path = resolve(base, file);
    let text = read_limited(&path, MAX_SECRET_BYTES).and_then(|b| {
        String::from_utf8(b)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
    });
    match text {
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

/// Checks `[prometheus]`, reading its secret files; `None` when anything is wrong.
pub(crate) fn validate_prometheus(
    raw: &RawPrometheus,
    base: &Path,
    problems: &mut Problems,
) -> Option<PrometheusConfig> {
    let before = problems.len();
    let url = validate_url(&raw.url, problems);
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
        match read_limited(ca, MAX_CA_BYTES) {
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
    let max_answer_bytes = match &raw.max_answer_size {
        None => DEFAULT_MAX_ANSWER_BYTES,
        Some(t) => parse_size(t).unwrap_or_else(|e| {
            problem(problems, "prometheus.max_answer_size", e);
            DEFAULT_MAX_ANSWER_BYTES
        }),
    };
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
        max_answer_bytes,
    })
}

/// Checks every `[[signal]]`; only the valid ones are returned.
pub(crate) fn validate_signals(raw: &[RawSignal], problems: &mut Problems) -> Vec<SignalConfig> {
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
            // Neither is longer than `MAX_DURATION` (366d): `parse_duration` refuses it.
            if lookback < step {
                problem(problems, key("lookback"), "must be at least one step");
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
        let overlap = s
            .overlap_steps
            .unwrap_or_else(|| default_overlap_steps(step.unwrap_or(60)));
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

/// The base URL without a trailing slash; refuses credentials, queries and fragments.
fn validate_url(raw: &str, problems: &mut Problems) -> String {
    let url = raw.trim().trim_end_matches('/').to_string();
    match url.split_once("://") {
        Some(("http" | "https", rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            // Any `@` before the query: a password may hold an unencoded `/`, which would end
            // the authority early and hide the `@` from a check of the authority alone.
            if userinfo_end(rest).is_some() {
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
        // The URL itself is not quoted: with a password holding an unencoded `?` or `#`,
        // no rule tells where its userinfo ends, and a scheme is all there is to show.
        Some((scheme, _)) => problem(
            problems,
            "prometheus.url",
            format!(
                "scheme '{}' is not http or https: it must start with http:// or https://",
                scheme.chars().take(16).collect::<String>()
            ),
        ),
        None => problem(
            problems,
            "prometheus.url",
            "has no scheme: it must start with http:// or https://",
        ),
    }
    url
}

/// Where the userinfo of a URL ends, given the URL after its `://`: the last `@` before the
/// query or fragment, if any. Not the first `/`: a password may hold an unencoded `/`
/// (`admin:pa/ss@host`), and ending there would take the rest of it for the path.
fn userinfo_end(after_scheme: &str) -> Option<usize> {
    let end = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
    after_scheme[..end].rfind('@')
}

/// `text` with the userinfo (`user:password@`) of every URL in it replaced by `***@`, for
/// messages that quote what the user wrote: a token pasted into a URL must not reach a log.
/// Everything up to the last `@` before the query or fragment is taken for userinfo, so an
/// `@` in a path hides the host too: better than showing half a password.
pub(crate) fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The URL ends where the quoted text does (a quote, whitespace).
        let end = tail
            .find(|c: char| matches!(c, '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(tail.len());
        // The rest is scanned on: a query can hold another URL.
        rest = match userinfo_end(&tail[..end]) {
            Some(i) => {
                out.push_str("***");
                &tail[i..]
            }
            None => tail,
        };
    }
    out.push_str(rest);
    out
}
