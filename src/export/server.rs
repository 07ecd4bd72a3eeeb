//! The HTTP side: `/metrics`, `/healthz`, `/readyz`, and the liveness/readiness state behind
//! them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::keda::ScalerView;
use super::metrics::Metrics;
use super::snapshot::Snapshot;

/// The content type of `/metrics` for clients that ask for OpenMetrics (Prometheus does, and
/// picks its parser from this header): OpenMetrics 1.0, which is what `prometheus-client` writes.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of `/metrics` for every other client (curl, `promtool check metrics`,
/// older scrapers): the classic Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `/healthz` fails once no cycle has finished for this many cycle intervals: one late cycle
/// is normal (a slow collector), three in a row means the loop is stuck or dead.
pub const LIVENESS_FACTOR: u32 = 3;

/// Why `/healthz` fails: the loop has been quiet for longer than the liveness limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no cycle finished for {:.1}s (limit {:.1}s = {LIVENESS_FACTOR} x interval)",
    quiet.as_secs_f64(),
    limit.as_secs_f64()
)]
pub struct Stalled {
    /// How long since the last heartbeat (or the start).
    pub quiet: Duration,
    /// [`ExportState::liveness_limit`].
    pub limit: Duration,
}

/// Why `/readyz` fails: the typed verdict, whose text is the 503's body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// Start-up is waiting for its data source (see [`ExportState::waiting`]).
    #[error("waiting for {target} (attempt {attempt}): {error}")]
    Waiting {
        /// What is waited for, e.g. `Prometheus at http://127.0.0.1:9090`.
        target: String,
        /// Tries so far.
        attempt: u32,
        /// Why the last try failed.
        error: String,
    },
    /// No cycle has finished since start-up.
    #[error("no cycle completed yet")]
    NoCycle,
    /// The last cycle ran without a forecast model.
    #[error("no forecast model loaded")]
    NoModel,
    /// The last cycle counted these signals as down, as `(signal, why)` (see
    /// [`SignalSample::down`](super::SignalSample::down)): the loop plans on data it cannot
    /// refresh, so nothing scales down on them, and a load balancer or rollout should know.
    #[error("{}", signals_down(.0))]
    SignalsDown(Vec<(String, String)>),
}

fn signals_down(down: &[(String, String)]) -> String {
    let each: Vec<String> = down
        .iter()
        .map(|(signal, why)| format!("signal '{signal}' is down: {why}"))
        .collect();
    each.join("; ")
}

/// What the endpoints serve: the metrics and the loop's heartbeat.
///
/// The live loop owns an `Arc<ExportState>` and calls [`cycle_finished`](Self::cycle_finished)
/// at the end of every cycle; the server only reads it.
#[derive(Debug)]
pub struct ExportState {
    metrics: Metrics,
    interval: Duration,
    started: Instant,
    health: Mutex<Health>,
    /// The KEDA scaler's view of the last cycle, `None` before the first; a watch so that its
    /// streams wake on each cycle.
    scaler: tokio::sync::watch::Sender<Option<Arc<ScalerView>>>,
}

#[derive(Debug, Default)]
struct Health {
    last_beat: Option<Instant>,
    cycles: u64,
    model_loaded: bool,
    /// Set while start-up waits: the verdict, and how long until its next try.
    waiting: Option<(NotReady, Duration)>,
    /// The signals the last cycle counted as down, `(signal, why)`.
    down: Vec<(String, String)>,
}

impl ExportState {
    /// State for a loop that runs one cycle every `cycle_interval`.
    pub fn new(metrics: Metrics, cycle_interval: Duration) -> Self {
        ExportState {
            metrics,
            interval: cycle_interval,
            started: Instant::now(),
            health: Mutex::new(Health::default()),
            scaler: tokio::sync::watch::Sender::new(None),
        }
    }

    /// The metrics, e.g. to encode them outside the server.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A receiver of the KEDA scaler's view, replaced at every finished cycle (see
    /// [`crate::export::keda`]); it holds `None` until the first.
    pub fn scaler_view(&self) -> tokio::sync::watch::Receiver<Option<Arc<ScalerView>>> {
        self.scaler.subscribe()
    }

    /// Records a finished cycle: updates the metrics from `snapshot`, beats the heartbeat,
    /// notes whether a model is loaded (`snapshot.model`), and hands the KEDA scaler its view.
    pub fn cycle_finished(&self, snapshot: &Snapshot) {
        self.cycle_finished_at(snapshot, Instant::now());
    }

    /// [`cycle_finished`](Self::cycle_finished) with an explicit clock, for tests.
    pub fn cycle_finished_at(&self, snapshot: &Snapshot, now: Instant) {
        self.metrics.observe(snapshot);
        self.scaler
            .send_replace(Some(Arc::new(ScalerView::new(&snapshot.scaler))));
        let mut h = self.lock();
        h.last_beat = Some(now);
        h.cycles += 1;
        h.model_loaded = snapshot.model.is_some();
        h.down = snapshot
            .signals
            .iter()
            .filter_map(|s| Some((s.signal.clone(), s.down.clone()?)))
            .collect();
    }

    /// Records a failed try of a start-up that waits for `target` (e.g. `Prometheus at
    /// http://...`): until [`wait_over`](Self::wait_over), `/readyz` answers 503 saying so.
    /// Beats the heartbeat, and lets `/healthz` allow `retry_in` more quiet on top of the
    /// liveness limit: the wait between tries is progress, not a stuck loop.
    pub fn waiting(
        &self,
        target: impl Into<String>,
        attempt: u32,
        error: impl Into<String>,
        retry_in: Duration,
    ) {
        let mut h = self.lock();
        h.last_beat = Some(Instant::now());
        let why = NotReady::Waiting {
            target: target.into(),
            attempt,
            error: error.into(),
        };
        h.waiting = Some((why, retry_in));
    }

    /// Ends the start-up wait: readiness is up to the cycles again.
    pub fn wait_over(&self) {
        let mut h = self.lock();
        h.last_beat = Some(Instant::now());
        h.waiting = None;
    }

    /// Beats the heartbeat without finishing a cycle. For work longer than the liveness limit
    /// that is known to be progressing (e.g. training a model at start-up), so that `/healthz`
    /// does not get the process restarted in the middle of it.
    pub fn heartbeat(&self) {
        self.lock().last_beat = Some(Instant::now());
    }

    /// How long the loop may go without a heartbeat before `/healthz` fails.
    pub fn liveness_limit(&self) -> Duration {
        // Saturating: the interval comes from the configuration, and a panic here would take
        // `/healthz` down.
        self.interval.saturating_mul(LIVENESS_FACTOR)
    }

    /// `Ok` while the loop is alive: a heartbeat (or the start, before the first one) within
    /// [`liveness_limit`](Self::liveness_limit) of `now`; else how long it has been quiet.
    /// While start-up waits, the limit grows by the time until the wait's next try.
    pub fn liveness(&self, now: Instant) -> Result<(), Stalled> {
        let (last, retry_in) = {
            let h = self.lock();
            let retry_in = h.waiting.as_ref().map_or(Duration::ZERO, |(_, d)| *d);
            (h.last_beat.unwrap_or(self.started), retry_in)
        };
        let quiet = now.saturating_duration_since(last);
        let limit = self.liveness_limit().saturating_add(retry_in);
        if quiet > limit {
            return Err(Stalled { quiet, limit });
        }
        Ok(())
    }

    /// `Ok` once start-up is over and the last cycle ran with a model loaded and no signal
    /// down; else the reason, the first that applies in that order.
    pub fn readiness(&self) -> Result<(), NotReady> {
        let h = self.lock();
        if let Some((why, _)) = &h.waiting {
            return Err(why.clone());
        }
        if h.cycles == 0 {
            return Err(NotReady::NoCycle);
        }
        if !h.model_loaded {
            return Err(NotReady::NoModel);
        }
        if !h.down.is_empty() {
            return Err(NotReady::SignalsDown(h.down.clone()));
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        // Health is a few plain fields, valid after any panic mid-update.
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running exporter: where it listens and the task serving it.
#[derive(Debug)]
pub struct Exporter {
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl Exporter {
    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server has stopped: after the shutdown future passed to [`serve`]
    /// completed and the open requests were answered.
    pub async fn stopped(self) -> io::Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(format!("exporter task failed: {e}"))),
        }
    }
}

/// The router, for embedding the endpoints in another server or testing them without a socket.
pub fn router(state: Arc<ExportState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// How long a client may take to send a request's headers. A scraper sends them at once; a
/// client that stops halfway (a half-open connection) would otherwise hold the connection, and
/// with it graceful shutdown, for as long as it likes (issue #10).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one request may take to be answered once its headers are in.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for open connections to finish before dropping them, so no client
/// can delay the process's exit by more than this.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long one write to a client may wait for it to read: a scrape of the largest /metrics
/// (tens of MB) drains in well under a second on any network a scraper sits on.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once; more are closed as they come. Scrapers, probes and a person
/// with curl need a handful: the bound is what keeps idle or stalled clients from holding an
/// answer each without end.
pub const MAX_CONNECTIONS: usize = 64;

/// Binds `addr` and serves the endpoints on the current tokio runtime until `shutdown`
/// completes, then stops gracefully: in-flight requests are answered and idle connections
/// closed, and whatever is still open [`SHUTDOWN_GRACE`] later is dropped.
///
/// Every connection has a [`HEADER_READ_TIMEOUT`] and every request a [`REQUEST_TIMEOUT`].
///
/// Binding happens before this returns, so a busy port is an error here rather than in a
/// background task, and `127.0.0.1:0` yields a usable [`Exporter::local_addr`].
pub async fn serve(
    addr: SocketAddr,
    state: Arc<ExportState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<Exporter> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, "exporter listening");
    let app = router(state).layer(axum::middleware::from_fn(bounded));
    let task = tokio::spawn(accept_loop(listener, app, shutdown));
    Ok(Exporter { local_addr, task })
}

/// Accepts connections until `shutdown`, then closes the listener, asks every connection to
/// finish, and drops those still open after [`SHUTDOWN_GRACE`].
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) if conns.len() >= MAX_CONNECTIONS => {
                    tracing::debug!("exporter: {MAX_CONNECTIONS} connections open, closing {peer}'s");
                    drop(stream);
                }
                Ok((stream, _)) => {
                    conns.spawn(connection(stream, app.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    // Per-connection trouble (a reset before accept, out of descriptors): keep
                    // serving, but do not spin on an error that repeats.
                    tracing::warn!("exporter: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set stays as small as the open ones.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "exporter: dropping {} connection(s) still open {:.0}s after shutdown",
            conns.len(),
            SHUTDOWN_GRACE.as_secs_f64()
        );
        conns.abort_all();
    }
    Ok(())
}

/// Serves one connection with the header-read timeout, finishing gracefully when `stop` turns
/// true.
async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
    stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let io = hyper_util::rt::TokioIo::new(Box::pin(stream));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        // The guard `wait_for` returns is dropped inside, so it is not held across `conn.await`.
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // A client's fault (timeout, garbage, reset): nothing for the operator to act on.
        tracing::debug!("exporter connection: {e}");
    }
}

/// Answers 503 when a request takes longer than [`REQUEST_TIMEOUT`].
async fn bounded(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "request timed out\n").into_response(),
    }
}

async fn metrics(State(state): State<Arc<ExportState>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let openmetrics = prefers_openmetrics(accept);
    // Encoding takes a lock and, at scale, most of a second: on a blocking thread, so a burst
    // of scrapes does not hold up /healthz, the lease renewals and the KEDA server.
    let encoded = tokio::task::spawn_blocking(move || match openmetrics {
        true => (OPENMETRICS_CONTENT_TYPE, state.metrics.encode()),
        false => (TEXT_CONTENT_TYPE, state.metrics.encode_text()),
    })
    .await;
    match encoded {
        Ok((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => {
            tracing::error!("exporter: encoding /metrics failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response()
        }
    }
}

/// Whether `Accept` values ask for OpenMetrics at least as much as for the text format:
/// `application/openmetrics-text` (any version) with a q-value above 0 and not below that of
/// `text/plain`, `text/*` or `*/*`. Without an `Accept`, or with `*/*` only (curl), the text
/// format, which every client parses.
fn prefers_openmetrics<'a>(accept: impl Iterator<Item = &'a str>) -> bool {
    let (mut openmetrics, mut text) = (0.0_f64, 0.0_f64);
    for range in accept.flat_map(|v| v.split(',')) {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse().unwrap_or(0.0));
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

async fn healthz(State(state): State<Arc<ExportState>>) -> Response {
    verdict(state.liveness(Instant::now()))
}

async fn readyz(State(state): State<Arc<ExportState>>) -> Response {
    verdict(state.readiness())
}

fn verdict(r: Result<(), impl std::fmt::Display>) -> Response {
    match r {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests;
