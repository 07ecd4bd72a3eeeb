//! A fake Kubernetes API server for the Kubernetes actuator: exactly the endpoints prescale
//! calls, with the API's JSON shapes, on a loopback port (`use crate::fake_kube;`).
//!
//! A real API server cannot run in these tests (no cluster, no etcd), so this answers as the
//! real one does:
//! - `GET   /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}/scale`: 200 and an
//!   `autoscaling/v1` Scale (`metadata.resourceVersion` and `uid` of the object, `spec` and
//!   `status.replicas`), or 404 and a `meta/v1` Status (`reason: NotFound`).
//! - `PATCH` on the same path: only `application/merge-patch+json` (415 otherwise); 409
//!   `Conflict` when the patch's `metadata.resourceVersion` is not the stored one; else the
//!   replicas are set, the version moves on, and the Scale is answered.
//! - `POST  /api/v1/namespaces/{ns}/events`: 201 and the core/v1 Event stored.
//!
//! The endpoints are an axum [`Router`](axum::Router) ([`FakeKube::router`]) so that they can
//! be merged with other fakes (the Lease endpoints of `fake_lease.rs`) into one server;
//! [`FakeKube::start`] serves them alone, answering anything else 404 (and recording it).
//! Every request is recorded (method, path, query, content type, body, status). Per object,
//! a test can make it answer an error ([`FakeKube::fail`]: 403, 404, 500 …), refuse the next
//! PATCHes with 409 ([`FakeKube::conflicts`]), hold every request unanswered
//! ([`FakeKube::stall`], released on drop), or be changed by "a person"
//! ([`FakeKube::set_replicas`], [`FakeKube::person_after_patch`]).

use crate::fake_api::{self, json_response, Server};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string (`fieldManager=prescale`), if any.
    pub query: Option<String>,
    pub content_type: Option<String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// What was answered; `None` while stalled.
    pub status: Option<u16>,
    /// When it arrived.
    pub at: Instant,
}

/// What an object does instead of answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Every request gets this status (403, 404, 500 …) and a Status body.
    Status(u16),
    /// Every request is held unanswered until the server stops.
    Stall,
    /// A PATCH is applied, then its answer held until the server stops (a reply lost on the
    /// way back); GETs are answered.
    ApplyThenStall,
}

#[derive(Debug, Clone)]
struct Object {
    replicas: u32,
    version: u64,
    uid: String,
    fault: Option<Fault>,
    /// PATCHes still to refuse with 409.
    conflicts: u32,
    /// After each accepted PATCH, someone sets the replicas to the patched count plus this.
    person: Option<u32>,
}

#[derive(Default)]
struct Inner {
    /// By `resource/ns/name` (`deployments/shop/web`).
    objects: BTreeMap<String, Object>,
    version: u64,
    requests: Vec<Recorded>,
    events: Vec<Value>,
    /// Answer every Event POST with this status.
    events_fail: Option<u16>,
    /// Hold every Event POST unanswered until the server stops.
    events_stall: bool,
    stopping: bool,
}

type Shared = Arc<Mutex<Inner>>;

/// The fake's state, and its server when started alone; the server stops on drop.
pub struct FakeKube {
    pub port: u16,
    inner: Shared,
    server: Option<Server>,
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds a request unanswered until the server stops (at most 2 minutes).
async fn held_until_stopping(s: &Shared) {
    let t0 = Instant::now();
    while !lock(s).stopping && t0.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn key(resource: &str, ns: &str, name: &str) -> String {
    format!("{resource}/{ns}/{name}")
}

impl FakeKube {
    /// Serves the endpoints alone on a loopback port.
    pub fn start() -> FakeKube {
        let inner: Shared = Arc::default();
        let app = router(inner.clone())
            .fallback(unknown)
            .with_state(inner.clone());
        let server = Server::start(app);
        FakeKube {
            port: server.port,
            inner,
            server: Some(server),
        }
    }

    /// The endpoints as a router with its state, to merge into another fake's server.
    pub fn router(&self) -> axum::Router {
        router(self.inner.clone()).with_state(self.inner.clone())
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig for this server (token auth, namespace `default`).
    pub fn kubeconfig(&self, path: &std::path::Path) {
        fake_api::kubeconfig(&self.url(), path, "fake-token");
    }

    /// Adds (or resets) `resource` (`deployments` or `statefulsets`) `ns/name` at `replicas`.
    pub fn add(&self, resource: &str, ns: &str, name: &str, replicas: u32) {
        let mut s = lock(&self.inner);
        s.version += 1;
        let v = s.version;
        s.objects.insert(
            key(resource, ns, name),
            Object {
                replicas,
                version: v,
                uid: format!("00000000-0000-4000-8000-{v:012}"),
                fault: None,
                conflicts: 0,
                person: None,
            },
        );
    }

    fn with(&self, resource: &str, ns: &str, name: &str, f: impl FnOnce(&mut Object, u64)) {
        let mut s = lock(&self.inner);
        s.version += 1;
        let v = s.version;
        let o = s
            .objects
            .get_mut(&key(resource, ns, name))
            .expect("an object added first");
        f(o, v);
    }

    /// A person scales the object (`kubectl scale`): new count, new version.
    pub fn set_replicas(&self, resource: &str, ns: &str, name: &str, replicas: u32) {
        self.with(resource, ns, name, |o, v| {
            o.replicas = replicas;
            o.version = v;
        });
    }

    /// After each accepted PATCH of the object, a person sets it to the patched count + `plus`.
    pub fn person_after_patch(&self, resource: &str, ns: &str, name: &str, plus: u32) {
        self.with(resource, ns, name, |o, _| o.person = Some(plus));
    }

    /// Every request on the object is answered `code` with a Status.
    pub fn fail(&self, resource: &str, ns: &str, name: &str, code: u16) {
        self.with(resource, ns, name, |o, _| {
            o.fault = Some(Fault::Status(code))
        });
    }

    /// Every request on the object is held unanswered until the server stops.
    pub fn stall(&self, resource: &str, ns: &str, name: &str) {
        self.with(resource, ns, name, |o, _| o.fault = Some(Fault::Stall));
    }

    /// A PATCH of the object is applied but never answered (until the server stops); GETs are.
    pub fn apply_then_stall(&self, resource: &str, ns: &str, name: &str) {
        self.with(resource, ns, name, |o, _| {
            o.fault = Some(Fault::ApplyThenStall)
        });
    }

    /// The object answers normally again.
    pub fn heal(&self, resource: &str, ns: &str, name: &str) {
        self.with(resource, ns, name, |o, _| o.fault = None);
    }

    /// The next `n` PATCHes of the object are refused 409, as if another writer had been first
    /// (the version moves on each time, as that write would make it).
    pub fn conflicts(&self, resource: &str, ns: &str, name: &str, n: u32) {
        self.with(resource, ns, name, |o, _| o.conflicts = n);
    }

    /// Every Event POST is answered `code` with a Status (RBAC without `create` on events).
    pub fn fail_events(&self, code: u16) {
        lock(&self.inner).events_fail = Some(code);
    }

    /// Every Event POST is held unanswered until the server stops (a slow API server).
    pub fn stall_events(&self) {
        lock(&self.inner).events_stall = true;
    }

    pub fn replicas(&self, resource: &str, ns: &str, name: &str) -> u32 {
        lock(&self.inner).objects[&key(resource, ns, name)].replicas
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner).requests.clone()
    }

    /// The requests on one object's scale subresource.
    pub fn requests_on(&self, resource: &str, ns: &str, name: &str) -> Vec<Recorded> {
        let path = format!("/apis/apps/v1/namespaces/{ns}/{resource}/{name}/scale");
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    pub fn events(&self) -> Vec<Value> {
        lock(&self.inner).events.clone()
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        // Releases stalled requests, so the server can stop (it is dropped after this).
        lock(&self.inner).stopping = true;
        self.server.take();
    }
}

fn router(_state: Shared) -> axum::Router<Shared> {
    axum::Router::new()
        .route(
            "/apis/apps/v1/namespaces/{ns}/{resource}/{name}/scale",
            axum::routing::get(scale).patch(scale),
        )
        .route("/api/v1/namespaces/{ns}/events", axum::routing::post(event))
}

/// A `meta/v1` Status of an `apps` object, as the API server answers errors.
fn status(code: u16, reason: &str, message: String, name: &str, kind: &str) -> Response {
    fake_api::status(code, reason, message, name, "apps", kind)
}

/// Records the request; returns its index.
fn record(s: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> usize {
    let mut s = lock(s);
    s.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_slice(body).ok(),
        status: None,
        at: Instant::now(),
    });
    s.requests.len() - 1
}

fn answered(s: &Shared, index: usize, r: Response) -> Response {
    lock(s).requests[index].status = Some(r.status().as_u16());
    r
}

async fn unknown(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let i = record(&s, &method, &uri, &headers, &body);
    let path = uri.path().to_string();
    answered(
        &s,
        i,
        status(
            404,
            "NotFound",
            format!("the server could not find {path}"),
            "",
            "",
        ),
    )
}

fn scale_json(ns: &str, name: &str, o: &Object) -> Value {
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": o.uid,
            "resourceVersion": o.version.to_string(),
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"replicas": o.replicas},
        "status": {"replicas": o.replicas, "selector": format!("app={name}")},
    })
}

async fn scale(
    State(s): State<Shared>,
    Path((ns, resource, name)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let i = record(&s, &method, &uri, &headers, &body);
    let k = key(&resource, &ns, &name);
    let fault = lock(&s).objects.get(&k).and_then(|o| o.fault);
    let lost_reply = fault == Some(Fault::ApplyThenStall) && method == Method::PATCH;
    if lost_reply {
        let mut st = lock(&s);
        answer(&mut st, &method, &resource, &ns, &name, &headers, &body);
    }
    if fault == Some(Fault::Stall) || lost_reply {
        held_until_stopping(&s).await;
        return status(
            503,
            "ServiceUnavailable",
            "stalled".into(),
            &name,
            &resource,
        );
    }
    let group_name = format!("{resource}.apps \"{name}\"");
    let r = match fault {
        Some(Fault::Status(403)) => status(
            403,
            "Forbidden",
            format!(
                "{group_name} is forbidden: User \"system:serviceaccount:prescale:prescale\" \
                 cannot {} resource \"{resource}/scale\" in API group \"apps\" in the namespace \
                 \"{ns}\"",
                method.as_str().to_lowercase()
            ),
            &name,
            &resource,
        ),
        Some(Fault::Status(404)) => status(
            404,
            "NotFound",
            format!("{group_name} not found"),
            &name,
            &resource,
        ),
        Some(Fault::Status(code)) => status(
            code,
            "InternalError",
            "Internal error occurred: etcdserver: request timed out".into(),
            &name,
            &resource,
        ),
        _ => {
            let mut st = lock(&s);
            answer(&mut st, &method, &resource, &ns, &name, &headers, &body)
        }
    };
    answered(&s, i, r)
}

/// The scale subresource's behaviour on the stored state.
fn answer(
    s: &mut Inner,
    method: &Method,
    resource: &str,
    ns: &str,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let k = key(resource, ns, name);
    let not_found = || {
        status(
            404,
            "NotFound",
            format!("{resource}.apps \"{name}\" not found"),
            name,
            resource,
        )
    };
    if resource != "deployments" && resource != "statefulsets" {
        return not_found();
    }
    if method == Method::GET {
        return match s.objects.get(&k) {
            Some(o) => json_response(200, &scale_json(ns, name, o)),
            None => not_found(),
        };
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != "application/merge-patch+json" {
        return status(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"),
            name,
            resource,
        );
    }
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return status(
            400,
            "BadRequest",
            "the patch is not JSON".into(),
            name,
            resource,
        );
    };
    s.version += 1;
    let next = s.version;
    let Some(o) = s.objects.get_mut(&k) else {
        return not_found();
    };
    let conflict = || {
        status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource}.apps \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
            name,
            resource,
        )
    };
    if o.conflicts > 0 {
        o.conflicts -= 1;
        o.version = next;
        return conflict();
    }
    if let Some(sent) = patch["metadata"]["resourceVersion"].as_str() {
        if sent != o.version.to_string() {
            return conflict();
        }
    }
    let Some(n) = patch["spec"]["replicas"].as_u64() else {
        return status(
            400,
            "BadRequest",
            "spec.replicas: Required value".into(),
            name,
            resource,
        );
    };
    o.replicas = n as u32;
    o.version = next;
    let answer = json_response(200, &scale_json(ns, name, o));
    if let Some(plus) = o.person {
        // Someone scales it right after, as a person overriding prescale would.
        o.replicas = n as u32 + plus;
        o.version = next + 1;
        s.version += 1;
    }
    answer
}

async fn event(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let i = record(&s, &method, &uri, &headers, &body);
    if lock(&s).events_stall {
        held_until_stopping(&s).await;
    }
    let r = {
        let mut st = lock(&s);
        if let Some(code) = st.events_fail {
            drop(st);
            let r = status(
                code,
                "Forbidden",
                format!(
                    "events is forbidden: User \"system:serviceaccount:prescale:prescale\" cannot \
                     create resource \"events\" in API group \"\" in the namespace \"{ns}\""
                ),
                "",
                "events",
            );
            return answered(&s, i, r);
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(mut e) if e["involvedObject"].is_object() => {
                st.version += 1;
                e["metadata"]["namespace"] = json!(ns);
                e["metadata"]["resourceVersion"] = json!(st.version.to_string());
                e["metadata"]["uid"] = json!(format!("00000000-0000-4000-9000-{:012}", st.version));
                e["apiVersion"] = json!("v1");
                e["kind"] = json!("Event");
                st.events.push(e.clone());
                json_response(201, &e)
            }
            _ => status(
                422,
                "Invalid",
                "Event \"\" is invalid: involvedObject: Required value".into(),
                "",
                "events",
            ),
        }
    };
    answered(&s, i, r)
}

/// The line of `config/demo.toml` for `line`, pointed at this fake's objects (for
/// `cli::demo_config`'s `edit`): web and api as Deployments and db-readers as a StatefulSet,
/// all in namespace `shop`, and the replay allowed to act (this fake is the test cluster);
/// `None` leaves any other line alone.
pub fn demo_object(line: &str) -> Option<String> {
    let object = match line.trim() {
        "name = \"web\"" => "deployment = \"shop/web\"",
        "name = \"api\"" => "deployment = \"shop/api\"",
        "name = \"db-readers\"" => "statefulset = \"shop/db-readers\"",
        l if l.starts_with("warmup =") => "allow_apply = true",
        _ => return None,
    };
    Some(format!("{line}\n{object}"))
}

/// Appends `section` to the configuration at `cfg`, after the demo's last `[[workload]]`,
/// with the `[kubernetes]` section reaching the fake through `kubeconfig` beside it.
pub fn with_kubernetes(cfg: &std::path::Path, section: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(cfg).unwrap();
    write!(
        f,
        "\n[kubernetes]\nkubeconfig = \"kubeconfig\"\ntimeout = \"2s\"\n{section}"
    )
    .unwrap();
}
