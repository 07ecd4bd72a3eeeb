//! What the fake Kubernetes API servers share: serving a router on a loopback port from a
//! thread of its own (stopped and joined on drop), the `meta/v1` Status every error is
//! answered with, and a kubeconfig pointing at the server (declared once in
//! `tests/integration.rs`, as every helper here). `fake_kube.rs` (scale subresource, Events)
//! and `fake_lease.rs` (Leases) are routes on it, and `FakeLease::start_with` serves both on
//! one port, as one API server answers them all.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A router served on `127.0.0.1:<port>`; stops (graceful, then joined) on drop.
pub struct Server {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `app` on a free loopback port, on a current-thread runtime of its own, so a
    /// test needs no runtime of its own and a blocking test cannot starve it.
    pub fn start(app: axum::Router) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Server {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A `meta/v1` Status, as the API server answers errors (`details` names the object).
pub fn status(
    code: u16,
    reason: &str,
    message: String,
    name: &str,
    group: &str,
    kind: &str,
) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "group": group, "kind": kind},
        "code": code,
    });
    json_response(code, &body)
}

pub fn json_response(code: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(code).expect("status"),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Writes a kubeconfig for the server at `url`, authenticating with `token` (namespace
/// `default`).
pub fn kubeconfig(url: &str, path: &std::path::Path, token: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
         users:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: fake\n  context:\n    \
         cluster: fake\n    user: u\n    namespace: default\ncurrent-context: fake\n"
    );
    std::fs::write(path, text).expect("write kubeconfig");
}
