//! A small typed client for the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`).
//!
//! Bodies are read whole, up to `max_answer_size` (past it the answer is refused, not read on),
//! and parsed by a small hand-written JSON reader (see `json.rs` for why), so a truncated body
//! is told apart from a malformed one.

use super::config::{Auth, PrometheusConfig};
use super::json::parse_envelope_with;
use super::redact::{redact_text, secrets_of};
pub use super::wire::{Answer, InstantSample, Point, QueryData, RangeSeries, StringPoint};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Prometheus refuses range queries with more points than this per series.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// How much of a non-JSON error body is quoted in an error.
const BODY_SNIPPET: usize = 200;

/// A failed call to Prometheus. The URL in every variant is the endpoint without query
/// parameters and without credentials (the configuration refuses URLs with credentials), and
/// no variant ever carries a secret the client holds: errors built by [`PromClient`] have every
/// credential and header value redacted, even when the server echoed them in its body.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// The HTTP client could not be built (e.g. the CA file did not load).
    #[error("setting up the HTTP client for {url}: {message}")]
    Setup {
        /// Base URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// No connection: refused, unreachable, DNS, TLS handshake.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// Endpoint.
        url: String,
        /// The transport's description, source chain included.
        message: String,
    },
    /// No complete answer within the configured timeout.
    #[error("{url}: no complete response within {timeout:?}")]
    Timeout {
        /// Endpoint.
        url: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The connection failed mid-request or mid-body.
    #[error("{url}: transfer failed: {message}")]
    Transport {
        /// Endpoint.
        url: String,
        /// The transport's description.
        message: String,
    },
    /// Prometheus answered with its error envelope (`status: error`).
    #[error("{url}: Prometheus error (HTTP {status}, {error_type}): {message}")]
    Api {
        /// Endpoint.
        url: String,
        /// HTTP status.
        status: u16,
        /// `errorType`, e.g. `bad_data`, `execution`, `timeout`.
        error_type: String,
        /// `error`, Prometheus' own message.
        message: String,
    },
    /// A non-success status without Prometheus' envelope (a proxy's page, an empty 502).
    #[error("{url}: HTTP {status}: {snippet}")]
    Http {
        /// Endpoint.
        url: String,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        snippet: String,
    },
    /// The answer was larger than `max_answer_size`; the rest of it was not read.
    #[error(
        "{url}: answer larger than {}, the limit ([prometheus] max_answer_size): narrow the \
         query to fewer series or raise the limit",
        size_text(*limit)
    )]
    TooLarge {
        /// Endpoint.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A success status whose body is not a usable answer (malformed or truncated JSON, an
    /// unexpected result type).
    #[error("{url}: unreadable response: {message}")]
    Decode {
        /// Endpoint.
        url: String,
        /// What was wrong.
        message: String,
    },
}

impl PromError {
    /// Whether trying again later can help: transport trouble, timeouts, 5xx, 429 and garbled
    /// bodies are transient; a query Prometheus rejects will be rejected again.
    pub fn is_retryable(&self) -> bool {
        match self {
            PromError::Setup { .. } | PromError::TooLarge { .. } => false,
            PromError::Connect { .. }
            | PromError::Timeout { .. }
            | PromError::Transport { .. }
            | PromError::Decode { .. } => true,
            PromError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            PromError::Api {
                status, error_type, ..
            } => {
                *status >= 500
                    || *status == 429
                    || matches!(error_type.as_str(), "timeout" | "canceled" | "unavailable")
            }
        }
    }

    /// Whether the store failed for the weight of what was asked (the answer over
    /// `max_answer_size`, no answer within the timeout, or a query refused as too large to
    /// evaluate: Prometheus' 422 `execution` "would load too many samples", VictoriaMetrics'
    /// `-search.maxSamplesPerQuery`), so that asking for less can pass.
    pub fn is_heavy(&self) -> bool {
        match self {
            PromError::TooLarge { .. } | PromError::Timeout { .. } => true,
            PromError::Api {
                status, error_type, ..
            } => *status == 422 || matches!(error_type.as_str(), "execution" | "timeout"),
            _ => false,
        }
    }

    /// The same error with every occurrence of each secret replaced by `<redacted>`.
    fn redact(self, secrets: &[String]) -> PromError {
        let r = |s: String| redact_text(s, secrets);
        match self {
            PromError::Setup { url, message } => PromError::Setup {
                url: r(url),
                message: r(message),
            },
            PromError::Connect { url, message } => PromError::Connect {
                url: r(url),
                message: r(message),
            },
            PromError::Timeout { url, timeout } => PromError::Timeout {
                url: r(url),
                timeout,
            },
            PromError::Transport { url, message } => PromError::Transport {
                url: r(url),
                message: r(message),
            },
            PromError::Api {
                url,
                status,
                error_type,
                message,
            } => PromError::Api {
                url: r(url),
                status,
                error_type: r(error_type),
                message: r(message),
            },
            PromError::Http {
                url,
                status,
                snippet,
            } => PromError::Http {
                url: r(url),
                status,
                snippet: r(snippet),
            },
            PromError::Decode { url, message } => PromError::Decode {
                url: r(url),
                message: r(message),
            },
            PromError::TooLarge { url, limit } => PromError::TooLarge { url: r(url), limit },
        }
    }

    /// A short machine-readable kind, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            PromError::Setup { .. } => "setup",
            PromError::Connect { .. } => "connect",
            PromError::Timeout { .. } => "timeout",
            PromError::Transport { .. } => "transport",
            PromError::Api { .. } => "api",
            PromError::Http { .. } => "http",
            PromError::Decode { .. } => "decode",
            PromError::TooLarge { .. } => "too_large",
        }
    }
}

/// `bytes` as a configuration would write it: `128Mi`, or bytes when not a whole Ki.
fn size_text(bytes: usize) -> String {
    match bytes.trailing_zeros() {
        30.. => format!("{}Gi", bytes >> 30),
        20.. => format!("{}Mi", bytes >> 20),
        10.. => format!("{}Ki", bytes >> 10),
        _ => format!("{bytes} bytes"),
    }
}

/// A body read as far as the limit allows.
enum Body {
    Whole(Vec<u8>),
    TooLarge,
}

/// Reads `resp`'s body, stopping at `limit` bytes. A declared length over the limit is refused
/// before any of it is read, but memory is reserved only for what arrives (a server may claim
/// more than it sends).
async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<Body, reqwest::Error> {
    let declared = resp.content_length().unwrap_or(0);
    if declared > limit as u64 {
        return Ok(Body::TooLarge);
    }
    let mut body = Vec::with_capacity((declared as usize).min(1 << 20));
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(Body::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body::Whole(body))
}

/// Parses a whole API response body. Public for the parse benchmark and for tests that feed
/// bodies without a server.
pub fn parse_body(url: &str, status: u16, body: &[u8]) -> Result<Answer<QueryData>, PromError> {
    parse_body_with(url, status, body, &[])
}

/// [`parse_body`], with `secrets` replaced in each string of the body that an error quotes,
/// before it is cut: the body holds it decoded only (a proxy may JSON-escape `&` as `\u0026`),
/// and a cut that splits it would leave a part that no later replacement finds.
fn parse_body_with(
    url: &str,
    status: u16,
    body: &[u8],
    secrets: &[String],
) -> Result<Answer<QueryData>, PromError> {
    let quote = |text: String| cut(&redact_text(text, secrets));
    let ok_status = (200..300).contains(&status);
    let env = match parse_envelope_with(body, secrets) {
        Ok(env) => env,
        Err(_) if !ok_status => {
            return Err(PromError::Http {
                url: url.to_string(),
                status,
                snippet: snippet(body),
            })
        }
        Err(e) => {
            return Err(PromError::Decode {
                url: url.to_string(),
                message: if e.truncated {
                    format!("truncated JSON ({} bytes): {}", body.len(), e.message)
                } else {
                    format!("malformed JSON: {}", e.message)
                },
            })
        }
    };
    let status_text = env.status.unwrap_or_default();
    if status_text == "error" || env.error.is_some() {
        return Err(PromError::Api {
            url: url.to_string(),
            status,
            error_type: quote(env.error_type.unwrap_or_else(|| "unknown".into())),
            message: quote(env.error.unwrap_or_default()),
        });
    }
    if !ok_status {
        return Err(PromError::Http {
            url: url.to_string(),
            status,
            snippet: snippet(body),
        });
    }
    if env.is_partial {
        // Sums over the storage nodes that answered: finite, plausible and too low. Stored,
        // they would outlive the overlap re-fetched and could drive a scale-down.
        return Err(PromError::Decode {
            url: url.to_string(),
            message: "a partial answer (isPartial: some storage nodes did not answer)".into(),
        });
    }
    match (status_text.as_str(), env.data) {
        ("success", Some(data)) => Ok(Answer {
            data,
            warnings: env.warnings,
        }),
        ("success", None) => Err(PromError::Decode {
            url: url.to_string(),
            message: "status is success but there is no data".into(),
        }),
        (other, _) => Err(PromError::Decode {
            url: url.to_string(),
            message: format!("unknown status '{}'", quote(other.to_string())),
        }),
    }
}

/// `text` cut to [`BODY_SNIPPET`] characters, marked where cut: Prometheus' messages are a
/// line, but a proxy or a broken server can put megabytes in `error`.
fn cut(text: &str) -> String {
    let n = text.chars().count();
    if n <= BODY_SNIPPET {
        return text.to_string();
    }
    let head: String = text.chars().take(BODY_SNIPPET).collect();
    format!("{head}… ({n} characters)")
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_SNIPPET)]);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.trim().is_empty() {
        "(empty body)".into()
    } else {
        one_line.trim().to_string()
    }
}

/// The most warnings of one answer kept: they are logged, one line each, every poll.
const MAX_WARNINGS: usize = 10;

/// A server's `warnings`, made fit to log: the collector logs them, and a reflecting proxy or a
/// broken server can put the request's credentials, megabytes, or thousands of them there.
/// Secrets are replaced, each warning cut like an error message, and at most [`MAX_WARNINGS`]
/// kept, with a last line saying how many were left out.
fn clean_warnings(warnings: Vec<String>, secrets: &[String]) -> Vec<String> {
    let total = warnings.len();
    let mut kept: Vec<String> = warnings
        .into_iter()
        .take(MAX_WARNINGS)
        .map(|w| cut(&redact_text(w, secrets)))
        .collect();
    if total > MAX_WARNINGS {
        kept.push(format!("({} more warnings left out)", total - MAX_WARNINGS));
    }
    kept
}

/// Follows redirects within the configured origin only. reqwest drops `Authorization` when a
/// redirect leaves the host but forwards every other header, and the configured `headers` are
/// secrets (tenant keys, API keys): a redirect elsewhere is refused, naming where it pointed
/// without its credentials or query.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(|u| u.origin());
        if attempt.previous().len() > 10 {
            attempt.error("more than 10 redirects")
        } else if first.is_some_and(|o| o != attempt.url().origin()) {
            let to = attempt.url().origin().ascii_serialization();
            attempt.error(format!(
                "refusing a redirect to another origin ({to}): the configured headers and \
                 credentials are for the configured URL only"
            ))
        } else {
            attempt.follow()
        }
    })
}

/// The API client. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct PromClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    auth: Auth,
    max_answer_bytes: usize,
    /// What [`secrets_of`] found: redacted from every error this client returns, since a proxy
    /// may echo the request's headers in its error body.
    secrets: Arc<[String]>,
}

// By hand: the client holds the credentials and default headers.
impl fmt::Debug for PromClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl PromClient {
    /// A client for the configured server. Does not contact it.
    pub fn new(cfg: &PrometheusConfig) -> Result<Self, PromError> {
        let secrets: Arc<[String]> = secrets_of(cfg).into();
        let setup = |message: String| {
            PromError::Setup {
                url: cfg.url.clone(),
                message,
            }
            .redact(&secrets)
        };
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &cfg.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| setup(format!("invalid header name '{name}'")))?;
            let mut value = reqwest::header::HeaderValue::from_str(value.expose())
                .map_err(|_| setup(format!("invalid value for header '{name}'")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .default_headers(headers)
            .redirect(same_origin_redirects())
            .user_agent(concat!("prescale/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| setup(format!("cannot read CA file {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup(format!("CA file {}: {e}", ca.display())))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder.build().map_err(|e| setup(chain(&e)))?;
        Ok(PromClient {
            http,
            base: cfg.url.clone(),
            timeout: cfg.timeout,
            auth: cfg.auth.clone(),
            max_answer_bytes: cfg.max_answer_bytes,
            secrets,
        })
    }

    /// The base URL (never has credentials).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// An instant query at `time` (Unix seconds; `None` = the server's now).
    pub async fn query(
        &self,
        query: &str,
        time: Option<i64>,
    ) -> Result<Answer<QueryData>, PromError> {
        let mut form = vec![("query", query.to_string())];
        if let Some(t) = time {
            form.push(("time", t.to_string()));
        }
        self.call("/api/v1/query", &form).await
    }

    /// A range query over `[start, end]` (Unix seconds, both inclusive) at `step` seconds.
    /// Refuses locally, without a request, a range Prometheus would refuse for its size.
    pub async fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Answer<Vec<RangeSeries>>, PromError> {
        let url = self.url("/api/v1/query_range");
        if step < 1 || end < start || (end - start) / step > MAX_POINTS_PER_SERIES {
            return Err(PromError::Decode {
                url,
                message: format!(
                    "range {start}..{end} at step {step}s exceeds {MAX_POINTS_PER_SERIES} points \
                     (a bug in the caller's chunking)"
                ),
            });
        }
        let form = [
            ("query", query.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
        ];
        let answer = self.call("/api/v1/query_range", &form).await?;
        match answer.data {
            QueryData::Matrix(m) => Ok(Answer {
                data: m,
                warnings: answer.warnings,
            }),
            other => Err(PromError::Decode {
                url,
                message: format!("expected a matrix, got a {}", other.type_name()),
            }),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs a form: queries can be longer than a URL may be, and POST keeps them out of
    /// access logs of proxies in between.
    async fn call(
        &self,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<Answer<QueryData>, PromError> {
        let url = self.url(path);
        // A partial answer is refused at the source where it can be (Thanos:
        // `partial_response`, VictoriaMetrics cluster: `deny_partial_response`; Prometheus
        // ignores both), and where it is still marked (`isPartial`) by `parse_body_with`.
        let mut all: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend([
            ("partial_response", "false"),
            ("deny_partial_response", "1"),
        ]);
        let mut req = self.http.post(&url).form(&all);
        req = match &self.auth {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token.expose()),
            Auth::Basic { user, password } => req.basic_auth(user, Some(password.expose())),
        };
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport(&url, e).redact(&self.secrets))?;
        let status = resp.status().as_u16();
        match read_body(resp, self.max_answer_bytes).await {
            Ok(Body::Whole(body)) => self.parse_answer(&url, status, &body),
            Ok(Body::TooLarge) => Err(PromError::TooLarge {
                url,
                limit: self.max_answer_bytes,
            }
            .redact(&self.secrets)),
            Err(e) => Err(self.transport(&url, e).redact(&self.secrets)),
        }
    }

    /// [`parse_body`] with every secret this client holds gone from the answer's warnings and
    /// from any error.
    fn parse_answer(
        &self,
        url: &str,
        status: u16,
        body: &[u8],
    ) -> Result<Answer<QueryData>, PromError> {
        let mut answer = parse_body_with(url, status, body, &self.secrets)
            .map_err(|e| self.redacted(e, url, status, body))?;
        answer.warnings = clean_warnings(std::mem::take(&mut answer.warnings), &self.secrets);
        Ok(answer)
    }

    /// A parse error with every secret gone. The body is redacted and parsed again first,
    /// because the error quotes only the start of the body and could end in the middle of a
    /// secret, where replacing whole secrets in the quote would miss it.
    fn redacted(&self, e: PromError, url: &str, status: u16, body: &[u8]) -> PromError {
        if self.secrets.is_empty() {
            return e;
        }
        let clean = redact_text(String::from_utf8_lossy(body).into_owned(), &self.secrets);
        match parse_body_with(url, status, clean.as_bytes(), &self.secrets) {
            Err(again) => again.redact(&self.secrets),
            // Cannot happen in practice (replacing a secret does not mend a body); the original
            // error, redacted, is still safe to show.
            Ok(_) => e.redact(&self.secrets),
        }
    }

    fn transport(&self, url: &str, e: reqwest::Error) -> PromError {
        // `without_url` because reqwest would print the full URL; ours has no secrets, but the
        // caller's context already names it, once.
        let e = e.without_url();
        if e.is_timeout() {
            PromError::Timeout {
                url: url.to_string(),
                timeout: self.timeout,
            }
        } else if e.is_connect() {
            PromError::Connect {
                url: url.to_string(),
                message: chain(&e),
            }
        } else {
            PromError::Transport {
                url: url.to_string(),
                message: chain(&e),
            }
        }
    }
}

/// An error and its sources on one line; reqwest's top-level text alone ("error sending
/// request") does not say what happened.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_matrix_vector_and_warnings() {
        let body = br#"{"status":"success","warnings":["w1"],"data":{"resultType":"matrix","result":[
            {"metric":{"instance":"a"},"values":[[1700000000,"1.5"],[1700000060.5,"NaN"],[1700000120,"+Inf"]]}]}}"#;
        let a = parse_body("u", 200, body).unwrap();
        assert_eq!(a.warnings, vec!["w1"]);
        let QueryData::Matrix(m) = a.data else {
            panic!("not a matrix")
        };
        assert_eq!(m[0].metric["instance"], "a");
        assert_eq!(
            m[0].values[0],
            Point {
                ts: 1.7e9,
                value: 1.5
            }
        );
        assert!(m[0].values[1].value.is_nan());
        assert_eq!(m[0].values[2].value, f64::INFINITY);

        let body = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"-Inf"]}]}}"#;
        let QueryData::Vector(v) = parse_body("u", 200, body).unwrap().data else {
            panic!("not a vector")
        };
        assert_eq!(v[0].value.unwrap().value, f64::NEG_INFINITY);

        let body = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#;
        assert!(matches!(
            parse_body("u", 200, body).unwrap().data,
            QueryData::Scalar(Point { value, .. }) if value == 2.0
        ));
    }

    /// VictoriaMetrics cluster marks an answer missing some storage nodes `isPartial`: its
    /// sums are finite and too low, so it is refused (retryably), never stored.
    #[test]
    fn a_partial_answer_is_refused() {
        let body = br#"{"status":"success","isPartial":true,"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"5"]}]}}"#;
        let e = parse_body("u", 200, body).unwrap_err();
        assert!(e.to_string().contains("partial answer"), "{e}");
        assert!(e.is_retryable());
        let whole =
            br#"{"status":"success","isPartial":false,"data":{"resultType":"vector","result":[]}}"#;
        assert!(parse_body("u", 200, whole).is_ok());
        let bad =
            br#"{"status":"success","isPartial":"yes","data":{"resultType":"vector","result":[]}}"#;
        assert!(parse_body("u", 200, bad).is_err());
    }

    #[test]
    fn error_envelope_and_bodies() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#;
        let e = parse_body("http://p/api/v1/query", 400, body).unwrap_err();
        assert!(!e.is_retryable());
        assert!(
            e.to_string()
                .contains("parse error: unexpected end of input"),
            "{e}"
        );
        assert!(e.to_string().contains("bad_data"), "{e}");

        let e = parse_body("u", 503, b"<html>Service Unavailable</html>").unwrap_err();
        assert!(matches!(e, PromError::Http { status: 503, .. }));
        assert!(e.is_retryable());

        let e = parse_body("u", 200, br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"#).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(e.is_retryable());

        let e = parse_body("u", 200, br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#).unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");

        let e = parse_body("u", 502, b"").unwrap_err();
        assert!(e.to_string().contains("(empty body)"), "{e}");
    }

    /// A secret the server JSON-escaped (`&` as `\u0026`, so the raw body does not hold it)
    /// and that the cut of a long string splits: no part of it may be shown.
    #[test]
    fn an_escaped_secret_split_by_the_cut_is_redacted() {
        let cfg = PrometheusConfig {
            url: "http://127.0.0.1:9".into(),
            timeout: Duration::from_secs(1),
            auth: Auth::None,
            ca_file: None,
            headers: vec![(
                "X-Api-Key".into(),
                crate::collect::Secret::new("sk&live&SECRET"),
            )],
            max_answer_bytes: crate::collect::config::DEFAULT_MAX_ANSWER_BYTES,
        };
        let client = PromClient::new(&cfg).unwrap();
        let secret = r"sk\u0026live\u0026SECRET";
        let (long, short) = ("x".repeat(BODY_SNIPPET - 5), "x".repeat(35));
        for (status, body) in [
            (
                400,
                format!(r#"{{"status":"error","errorType":"bad_data","error":"{long}{secret}"}}"#),
            ),
            (
                400,
                format!(r#"{{"status":"error","errorType":"{long}{secret}","error":"e"}}"#),
            ),
            (200, format!(r#"{{"status":"{long}{secret}","data":null}}"#)),
            (
                200,
                format!(
                    r#"{{"status":"success","data":{{"resultType":"{short}{secret}","result":[]}}}}"#
                ),
            ),
        ] {
            let e = client
                .parse_answer("u", status, body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(!e.contains("sk&") && !e.contains("sk\\u0026"), "{e}");
            assert!(e.contains("xxxxx"), "{e}");
        }
    }
}
