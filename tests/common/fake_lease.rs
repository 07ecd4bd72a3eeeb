//! A fake Kubernetes API server for leader election: exactly the Lease endpoints prescale
//! calls, with the API's JSON shapes, on a loopback port (`use crate::fake_lease;`).
//!
//! A real API server cannot run in these tests (no cluster, no etcd), so this answers
//! `coordination.k8s.io/v1` Lease requests as the real one does:
//! - `GET  /apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}`: 200 and the Lease, or
//!   404 and a `Status` (`reason: NotFound`).
//! - `POST /apis/coordination.k8s.io/v1/namespaces/{ns}/leases`: 201 and the stored Lease
//!   (with `resourceVersion`, `uid`, `creationTimestamp`), or 409 `AlreadyExists`.
//! - `PUT  /apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}`: 200, or 409 `Conflict`
//!   when the body's `resourceVersion` is not the stored one, 404 when there is none.
//!
//! The Lease paths are explicit routes, and [`FakeLease::start_with`] serves other fakes'
//! routes on the same server (the scale and Event endpoints of `fake_kube.rs`), so one process
//! can lead and act against one API server. Anything no route takes is recorded here and
//! answered 404 (`Status`), so a test sees any call it did not expect. Every request is recorded (time, method, path and query, the bearer token, body,
//! status), and every accepted write is kept in a history of holders, so a test can ask who
//! held the Lease at any instant. [`FakeLease::stall`] partitions one client: requests carrying
//! its token are held unanswered (and never applied) until [`FakeLease::heal`].

use crate::fake_api::{self, json_response, Server};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const PREFIX: &str = "/apis/coordination.k8s.io/v1/namespaces/";

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived.
    pub at: SystemTime,
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The bearer token (`Authorization: Bearer …`), if any.
    pub token: Option<String>,
    pub content_type: Option<String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// What was answered; `None` while stalled or if never answered.
    pub status: Option<u16>,
}

/// One accepted write: who held the Lease from `at` on.
#[derive(Debug, Clone)]
pub struct Write {
    pub at: SystemTime,
    pub method: String,
    pub token: Option<String>,
    /// `spec.holderIdentity` written (`None` or empty: released).
    pub holder: Option<String>,
    pub transitions: i64,
}

#[derive(Default)]
struct Inner {
    /// Leases by `ns/name`, as stored JSON.
    leases: BTreeMap<String, Value>,
    version: u64,
    requests: Vec<Recorded>,
    writes: Vec<Write>,
    stalled: HashSet<String>,
}

type Shared = Arc<Mutex<Inner>>;

/// The server; stopped on drop.
pub struct FakeLease {
    pub port: u16,
    inner: Shared,
    server: Option<Server>,
}

impl FakeLease {
    /// Serves the Lease endpoints alone.
    pub fn start() -> FakeLease {
        FakeLease::start_with(axum::Router::new())
    }

    /// Serves the Lease endpoints and `others` (another fake's routes, e.g.
    /// `FakeKube::router()`) on one server, as one API server answers them all; a path that
    /// none of them routes is recorded here and answered 404.
    pub fn start_with(others: axum::Router) -> FakeLease {
        let inner: Shared = Arc::default();
        // Explicit routes (any method, so a wrong one is recorded and refused by `answer`
        // rather than by the router unseen), and the fallback for the rest.
        let any = axum::routing::any(handle);
        let app = axum::Router::new()
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                any.clone(),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                any,
            )
            .fallback(handle)
            .with_state(inner.clone())
            .merge(others);
        let server = Server::start(app);
        FakeLease {
            port: server.port,
            inner,
            server: Some(server),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a kubeconfig for a client that authenticates with `token`.
    pub fn kubeconfig(&self, path: &std::path::Path, token: &str) {
        fake_api::kubeconfig(&self.url(), path, token);
    }

    /// Partitions the client using `token`: its requests get no answer until [`heal`].
    pub fn stall(&self, token: &str) {
        self.lock().stalled.insert(token.to_string());
    }

    /// Ends every partition; held requests are then answered 503, never applied.
    pub fn heal(&self) {
        self.lock().stalled.clear();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn writes(&self) -> Vec<Write> {
        self.lock().writes.clone()
    }

    /// The stored Lease `ns/name`.
    pub fn lease(&self, ns: &str, name: &str) -> Option<Value> {
        self.lock().leases.get(&format!("{ns}/{name}")).cloned()
    }

    /// Who held the Lease at `t`, per the accepted writes (`None`: nobody, or released).
    pub fn holder_at(&self, t: SystemTime) -> Option<String> {
        self.lock()
            .writes
            .iter()
            .rev()
            .find(|w| w.at <= t)
            .and_then(|w| w.holder.clone())
            .filter(|h| !h.is_empty())
    }
}

impl Drop for FakeLease {
    fn drop(&mut self) {
        // Releases held requests, so the server can stop (it is dropped after this).
        self.heal();
        self.server.take();
    }
}

/// A `meta/v1` Status of a Lease, as the API server answers errors.
fn status(code: u16, reason: &str, message: String, name: &str) -> Response {
    fake_api::status(code, reason, message, name, "coordination.k8s.io", "leases")
}

async fn handle(
    State(inner): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    let index = {
        let mut s = inner.lock().unwrap_or_else(|e| e.into_inner());
        s.requests.push(Recorded {
            at: SystemTime::now(),
            method: method.to_string(),
            uri: uri.to_string(),
            token: token.clone(),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body.clone(),
            status: None,
        });
        s.requests.len() - 1
    };
    // A partitioned client's request waits, unanswered; it is never applied.
    let stalled = |s: &Shared| {
        let s = s.lock().unwrap_or_else(|e| e.into_inner());
        token.as_ref().is_some_and(|t| s.stalled.contains(t))
    };
    if stalled(&inner) {
        let t0 = std::time::Instant::now();
        while stalled(&inner) && t0.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return status(503, "ServiceUnavailable", "partitioned".into(), "");
    }
    let mut s = inner.lock().unwrap_or_else(|e| e.into_inner());
    let response = answer(&mut s, &method, uri.path(), token, body);
    s.requests[index].status = Some(response.status().as_u16());
    response
}

/// The Lease API's behaviour on the stored state.
fn answer(
    s: &mut Inner,
    method: &Method,
    path: &str,
    token: Option<String>,
    body: Option<Value>,
) -> Response {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return status(
            404,
            "NotFound",
            format!("the server could not find {path}"),
            "",
        );
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (ns, name) = match parts.as_slice() {
        [ns, "leases"] => (*ns, None),
        [ns, "leases", name] => (*ns, Some(*name)),
        _ => {
            return status(
                404,
                "NotFound",
                format!("the server could not find {path}"),
                "",
            )
        }
    };
    match (method.as_str(), name) {
        ("GET", Some(name)) => match s.leases.get(&format!("{ns}/{name}")) {
            Some(l) => json_response(200, l),
            None => status(
                404,
                "NotFound",
                format!("leases.coordination.k8s.io \"{name}\" not found"),
                name,
            ),
        },
        ("POST", None) => {
            let Some(mut lease) = body.filter(|b| b["kind"] == "Lease" || b["spec"].is_object())
            else {
                return status(400, "BadRequest", "the body is not a Lease".into(), "");
            };
            let name = lease["metadata"]["name"].as_str().unwrap_or("").to_string();
            let key = format!("{ns}/{name}");
            if s.leases.contains_key(&key) {
                return status(
                    409,
                    "AlreadyExists",
                    format!("leases.coordination.k8s.io \"{name}\" already exists"),
                    &name,
                );
            }
            s.version += 1;
            let now = chrono_now();
            let meta = &mut lease["metadata"];
            meta["namespace"] = json!(ns);
            meta["resourceVersion"] = json!(s.version.to_string());
            meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", s.version));
            meta["creationTimestamp"] = json!(now);
            lease["apiVersion"] = json!("coordination.k8s.io/v1");
            lease["kind"] = json!("Lease");
            record_write(s, "POST", token, &lease);
            s.leases.insert(key, lease.clone());
            json_response(201, &lease)
        }
        ("PUT", Some(name)) => {
            let key = format!("{ns}/{name}");
            let Some(mut lease) = body else {
                return status(400, "BadRequest", "the body is not a Lease".into(), name);
            };
            let Some(stored) = s.leases.get(&key) else {
                return status(
                    404,
                    "NotFound",
                    format!("leases.coordination.k8s.io \"{name}\" not found"),
                    name,
                );
            };
            let sent = lease["metadata"]["resourceVersion"].as_str().unwrap_or("");
            let have = stored["metadata"]["resourceVersion"].as_str().unwrap_or("");
            if !sent.is_empty() && sent != have {
                return status(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": \
                         the object has been modified; please apply your changes to the latest \
                         version and try again"
                    ),
                    name,
                );
            }
            s.version += 1;
            let meta = &mut lease["metadata"];
            meta["namespace"] = json!(ns);
            meta["resourceVersion"] = json!(s.version.to_string());
            meta["uid"] = stored["metadata"]["uid"].clone();
            meta["creationTimestamp"] = stored["metadata"]["creationTimestamp"].clone();
            lease["apiVersion"] = json!("coordination.k8s.io/v1");
            lease["kind"] = json!("Lease");
            record_write(s, "PUT", token, &lease);
            s.leases.insert(key, lease.clone());
            json_response(200, &lease)
        }
        _ => status(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {path}"),
            name.unwrap_or(""),
        ),
    }
}

fn record_write(s: &mut Inner, method: &str, token: Option<String>, lease: &Value) {
    s.writes.push(Write {
        at: SystemTime::now(),
        method: method.to_string(),
        token,
        holder: lease["spec"]["holderIdentity"].as_str().map(str::to_string),
        transitions: lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0),
    });
}

/// Now as RFC 3339 to the second, as `creationTimestamp` is written.
fn chrono_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .expect("timestamp")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
