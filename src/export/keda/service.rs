//! The gRPC server: lookups of the workload a call names, the five methods, and serving them
//! on their own port until shutdown.

use super::proto::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use super::proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};
use super::{metric_name, ScalerView, WORKLOAD_KEY};
use crate::export::snapshot::ScalerSample;
use crate::export::{ExportState, SHUTDOWN_GRACE};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};

/// How often an idle connection is pinged: KEDA holds one connection (and a StreamIsActive
/// stream) open for as long as the ScaledObject exists, and a peer that vanished without
/// closing it must not keep its stream's task alive.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// The latest view, `None` before the first cycle.
type View = Option<Arc<ScalerView>>;

/// The service: reads the exporter's view, counts calls into its metrics.
struct Scaler {
    state: Arc<ExportState>,
    /// Turns true at shutdown, ending the open streams (or graceful shutdown would wait on
    /// them forever).
    closing: watch::Receiver<bool>,
}

/// The workload `r` names in the view `view`, with a forecast; else the status to answer.
/// Streams one connection may have open at once.
const MAX_STREAMS: u32 = 4096;

/// A ScaledObject's name or namespace as a stream keeps it, for its messages: Kubernetes
/// names are at most 253 characters, so anything longer is not a real one. (The workload is
/// kept whole: a name that matches no workload ends the stream at once.)
fn cap(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(256) {
        s.truncate(i);
    }
    s
}

pub(super) fn lookup(view: &View, r: &ScaledObjectRef) -> Result<ScalerSample, Status> {
    let so = format!("ScaledObject {}/{}", r.namespace, r.name);
    let Some(workload) = r
        .scaler_metadata
        .get(WORKLOAD_KEY)
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
    else {
        return Err(Status::invalid_argument(format!(
            "{so}: the trigger's metadata has no '{WORKLOAD_KEY}' key naming the prescale \
             workload to scale by"
        )));
    };
    let Some(view) = view else {
        return Err(Status::unavailable(format!(
            "{so}: workload '{workload}' has no forecast yet: prescale has not finished its \
             first cycle"
        )));
    };
    let Some(sample) = view.get(workload) else {
        let names: Vec<&str> = view.names().take(20).collect();
        return Err(Status::not_found(format!(
            "{so}: prescale plans no workload '{workload}' (it plans: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    if sample.forecast_peak.is_none() {
        return Err(Status::unavailable(format!(
            "{so}: workload '{workload}' has no forecast yet (demand series {}): the model \
             needs more history of it, or the series is missing",
            sample.demand
        )));
    }
    Ok(sample.clone())
}

/// The spec of a workload's one metric.
fn spec(sample: &ScalerSample) -> GetMetricSpecResponse {
    GetMetricSpecResponse {
        metric_specs: vec![MetricSpec {
            metric_name: metric_name(&sample.workload),
            target_size_float: sample.hpa_metric().target,
            ..MetricSpec::default()
        }],
    }
}

/// A status code as the `code` label: gRPC's canonical names (`OK`, `NOT_FOUND`, ...).
fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl Scaler {
    fn view(&self) -> View {
        self.state.scaler_view().borrow().clone()
    }

    /// Counts a call of `method` by its answer's code, and passes the answer on.
    fn counted<T>(&self, method: &str, answer: Result<T, Status>) -> Result<Response<T>, Status> {
        let code = answer.as_ref().map_or_else(|s| s.code(), |_| Code::Ok);
        self.state.metrics().keda_request(method, code_label(code));
        if let Err(s) = &answer {
            tracing::debug!("keda {method}: {}", s.message());
        }
        answer.map(Response::new)
    }

    /// A stream of `answer(view)` for `r`: the current answer now, then each different one
    /// as views arrive; an error is sent and ends it, as do shutdown and the client leaving.
    fn stream<T, F>(&self, r: ScaledObjectRef, answer: F) -> ReceiverStream<Result<T, Status>>
    where
        T: PartialEq + Clone + Send + 'static,
        F: Fn(&ScalerSample) -> T + Send + 'static,
    {
        // The task outlives the request: it keeps only what `lookup` reads, not metadata of
        // up to a message's 4 MB, times every stream a client opens.
        let r = ScaledObjectRef {
            name: cap(r.name),
            namespace: cap(r.namespace),
            scaler_metadata: r
                .scaler_metadata
                .into_iter()
                .filter(|(k, _)| k == WORKLOAD_KEY)
                .collect(),
        };
        let (tx, rx) = mpsc::channel(4);
        let mut views = self.state.scaler_view();
        let mut closing = self.closing.clone();
        tokio::spawn(async move {
            let mut last: Option<T> = None;
            loop {
                let now = lookup(&views.borrow_and_update().clone(), &r).map(|s| answer(&s));
                match now {
                    Ok(v) if last.as_ref() != Some(&v) => {
                        if tx.send(Ok(v.clone())).await.is_err() {
                            return;
                        }
                        last = Some(v);
                    }
                    Ok(_) => {}
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
                tokio::select! {
                    changed = views.changed() => if changed.is_err() { return },
                    _ = closing.wait_for(|c| *c) => return,
                    () = tx.closed() => return,
                }
            }
        });
        ReceiverStream::new(rx)
    }
}

#[tonic::async_trait]
impl ExternalScaler for Scaler {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        let answer = lookup(&self.view(), request.get_ref())
            .map(|s| IsActiveResponse { result: s.active() });
        self.counted("IsActive", answer)
    }

    type StreamIsActiveStream = ReceiverStream<Result<IsActiveResponse, Status>>;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let r = request.into_inner();
        // A call that cannot be answered now fails as a call, not as a stream's first message.
        let answer = lookup(&self.view(), &r)
            .map(|_| self.stream(r, |s| IsActiveResponse { result: s.active() }));
        self.counted("StreamIsActive", answer)
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        let answer = lookup(&self.view(), request.get_ref()).map(|s| spec(&s));
        self.counted("GetMetricSpec", answer)
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let r = request.into_inner();
        let answer = match &r.scaled_object_ref {
            None => Err(Status::invalid_argument(
                "GetMetrics without a scaledObjectRef: no workload to answer for",
            )),
            Some(so) => lookup(&self.view(), so).map(|s| GetMetricsResponse {
                metric_values: vec![MetricValue {
                    // KEDA asks with the name it gave the HPA (`s0-prescale-api`) and matches
                    // the answer by it.
                    metric_name: if r.metric_name.is_empty() {
                        metric_name(&s.workload)
                    } else {
                        r.metric_name.clone()
                    },
                    metric_value_float: s.hpa_metric().value,
                    ..MetricValue::default()
                }],
            }),
        };
        self.counted("GetMetrics", answer)
    }

    type StreamMetricSpecStream = ReceiverStream<Result<GetMetricSpecResponse, Status>>;

    async fn stream_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamMetricSpecStream>, Status> {
        let r = request.into_inner();
        let answer = lookup(&self.view(), &r).map(|_| self.stream(r, spec));
        self.counted("StreamMetricSpec", answer)
    }
}

/// A running KEDA scaler: where it listens and the task serving it.
#[derive(Debug)]
pub struct KedaServer {
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl KedaServer {
    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server has stopped: after the shutdown future passed to [`serve_keda`]
    /// completed, the open streams ended and the connections closed, or [`SHUTDOWN_GRACE`]
    /// later at most.
    pub async fn stopped(self) -> io::Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(format!("KEDA scaler task failed: {e}"))),
        }
    }
}

/// Binds `addr` and serves KEDA's external-scaler interface from `state`'s view on the current
/// tokio runtime until `shutdown` completes. Binding happens before this returns, so a busy
/// port is an error here, and `127.0.0.1:0` yields a usable [`KedaServer::local_addr`].
pub async fn serve_keda(
    addr: SocketAddr,
    state: Arc<ExportState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<KedaServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, "KEDA external scaler listening");
    let (closing_tx, closing) = watch::channel(false);
    let mut grace = closing.clone();
    let service = ExternalScalerServer::new(Scaler { state, closing });
    let server = tonic::transport::Server::builder()
        // KEDA multiplexes every ScaledObject's StreamIsActive on one connection, so the bound
        // is generous; without one (tonic's default), a client could open streams, and their
        // tasks, without end.
        .max_concurrent_streams(Some(MAX_STREAMS))
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE))
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            async move {
                shutdown.await;
                let _ = closing_tx.send(true);
            },
        );
    let task = tokio::spawn(async move {
        tokio::select! {
            served = server => served.map_err(io::Error::other),
            () = async {
                let _ = grace.wait_for(|c| *c).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                tracing::warn!(
                    "KEDA scaler: dropping connections still open {:.0}s after shutdown",
                    SHUTDOWN_GRACE.as_secs_f64()
                );
                Ok(())
            }
        }
    });
    Ok(KedaServer { local_addr, task })
}
