//! Tests of the exporter's server: endpoints, readiness and liveness verdicts, timeouts.

use super::*;
use crate::export::ModelSample;

fn with_model() -> Snapshot {
    Snapshot {
        model: Some(ModelSample {
            model: "m".into(),
            trained_at: "2025-01-01T00:00:00Z".into(),
            version: "0.1.0".into(),
        }),
        ..Snapshot::default()
    }
}

#[test]
fn liveness_follows_the_heartbeat() {
    let state = ExportState::new(Metrics::new(), Duration::from_secs(10));
    let t0 = state.started;
    // Start-up counts as a beat: a fresh process is alive until it has had time to cycle.
    assert!(state.liveness(t0 + Duration::from_secs(30)).is_ok());
    let err = state
        .liveness(t0 + Duration::from_secs(31))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no cycle finished"), "{err}");

    state.cycle_finished_at(&Snapshot::default(), t0 + Duration::from_secs(40));
    assert!(state.liveness(t0 + Duration::from_secs(41)).is_ok());
    assert!(state.liveness(t0 + Duration::from_secs(70)).is_ok());
    assert!(state.liveness(t0 + Duration::from_secs(71)).is_err());
    // A clock reading from before the beat (threads racing) is not "negative staleness".
    assert!(state.liveness(t0).is_ok());
}

#[test]
fn readiness_needs_a_cycle_and_a_model() {
    let state = ExportState::new(Metrics::new(), Duration::from_secs(10));
    assert_eq!(
        state.readiness().unwrap_err().to_string(),
        "no cycle completed yet"
    );
    state.cycle_finished(&Snapshot::default());
    assert_eq!(
        state.readiness().unwrap_err().to_string(),
        "no forecast model loaded"
    );
    state.cycle_finished(&with_model());
    assert_eq!(state.readiness(), Ok(()));
    // Losing the model (e.g. a failed reload that unloaded it) makes it unready again.
    state.cycle_finished(&Snapshot::default());
    assert!(state.readiness().is_err());
}

fn with_signals(signals: &[(&str, Option<&str>)]) -> Snapshot {
    Snapshot {
        signals: signals
            .iter()
            .map(|(name, down)| crate::export::SignalSample {
                signal: name.to_string(),
                up: down.is_none(),
                down: down.map(String::from),
                ..Default::default()
            })
            .collect(),
        ..with_model()
    }
}

/// Issue #10, items 6 and 7: while start-up waits, `/readyz` says what for; afterwards it
/// fails while a signal is down, naming it, and recovers with the signal.
#[test]
fn readiness_says_what_start_up_waits_for_and_which_signals_are_down() {
    let state = ExportState::new(Metrics::new(), Duration::from_secs(10));
    state.waiting(
        "Prometheus at http://127.0.0.1:9",
        7,
        "signal 'cpu': cannot connect",
        Duration::from_secs(4),
    );
    let why = state.readiness().unwrap_err();
    assert_eq!(
        why,
        NotReady::Waiting {
            target: "Prometheus at http://127.0.0.1:9".into(),
            attempt: 7,
            error: "signal 'cpu': cannot connect".into(),
        }
    );
    assert_eq!(
        why.to_string(),
        "waiting for Prometheus at http://127.0.0.1:9 (attempt 7): signal 'cpu': cannot connect"
    );
    state.wait_over();
    assert_eq!(state.readiness(), Err(NotReady::NoCycle));

    state.cycle_finished(&with_signals(&[("cpu", None), ("mem", None)]));
    assert_eq!(state.readiness(), Ok(()));
    state.cycle_finished(&with_signals(&[
        ("cpu", Some("cannot connect to http://p/api/v1/query_range")),
        ("mem", None),
        ("disk", Some("HTTP 422")),
    ]));
    let why = state.readiness().unwrap_err();
    assert_eq!(
        why,
        NotReady::SignalsDown(vec![
            (
                "cpu".into(),
                "cannot connect to http://p/api/v1/query_range".into()
            ),
            ("disk".into(), "HTTP 422".into()),
        ])
    );
    assert_eq!(
        why.to_string(),
        "signal 'cpu' is down: cannot connect to http://p/api/v1/query_range; \
         signal 'disk' is down: HTTP 422"
    );
    state.cycle_finished(&with_signals(&[("cpu", None), ("mem", None)]));
    assert_eq!(state.readiness(), Ok(()));
}

/// The start-up wait's backoff can be longer than the liveness limit: the time until its
/// next try is allowed on top, so `/healthz` does not get a waiting process restarted.
#[test]
fn liveness_allows_the_wait_until_the_next_try() {
    let state = ExportState::new(Metrics::new(), Duration::from_secs(1));
    state.waiting("Prometheus", 1, "refused", Duration::from_secs(10));
    let now = Instant::now();
    assert!(state.liveness(now + Duration::from_secs(12)).is_ok());
    assert!(state.liveness(now + Duration::from_secs(14)).is_err());
    state.wait_over();
    let now = Instant::now();
    assert!(state.liveness(now + Duration::from_millis(2500)).is_ok());
    assert!(state.liveness(now + Duration::from_secs(4)).is_err());
}

async fn get(client: &reqwest::Client, addr: SocketAddr, path: &str) -> (u16, String, String) {
    get_accepting(client, addr, path, "*/*").await
}

async fn get_accepting(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    accept: &str,
) -> (u16, String, String) {
    let r = client
        .get(format!("http://{addr}{path}"))
        .header(header::ACCEPT, accept)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn endpoints_over_http_and_graceful_shutdown() {
    let state = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(10)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let exporter = serve("127.0.0.1:0".parse().unwrap(), state.clone(), async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let addr = exporter.local_addr();
    assert_ne!(addr.port(), 0);

    // One client, so its keep-alive connection is still open at shutdown.
    let client = reqwest::Client::new();
    let (code, _, body) = get(&client, addr, "/readyz").await;
    assert_eq!((code, body.as_str()), (503, "no cycle completed yet\n"));
    let (code, _, _) = get(&client, addr, "/healthz").await;
    assert_eq!(code, 200);

    state.cycle_finished(&with_model());
    let (code, _, body) = get(&client, addr, "/readyz").await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, ct, body) =
        get_accepting(&client, addr, "/metrics", "application/openmetrics-text").await;
    assert_eq!(code, 200);
    assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
    assert!(body.contains("prescale_cycles_total 1\n"), "{body}");
    assert!(body.ends_with("# EOF\n"));
    // Anyone else (curl sends `*/*`) gets the classic text format.
    let (code, ct, body) = get(&client, addr, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(ct, TEXT_CONTENT_TYPE);
    assert!(
        body.contains("# TYPE prescale_cycles_total counter\n"),
        "{body}"
    );
    assert!(body.contains("prescale_cycles_total 1\n"), "{body}");
    assert!(!body.contains("# EOF"), "{body}");
    let (code, _, _) = get(&client, addr, "/nope").await;
    assert_eq!(code, 404);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), exporter.stopped())
        .await
        .expect("graceful shutdown did not finish within 5 s with an idle keep-alive client")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn a_half_open_connection_is_closed_and_does_not_hold_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let state = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(10)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let exporter = serve("127.0.0.1:0".parse().unwrap(), state, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let addr = exporter.local_addr();
    // Headers never finished: the server closes the connection after the header timeout.
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(
        HEADER_READ_TIMEOUT + Duration::from_secs(3),
        half.read_to_end(&mut buf),
    )
    .await;
    assert!(closed.is_ok(), "half-open connection still open");
    // Another one opened just before shutdown does not hold it past the grace period.
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(2), exporter.stopped())
        .await
        .expect("shutdown held by a half-open connection")
        .unwrap();
    drop(half);
}

/// Past [`MAX_CONNECTIONS`] open connections a new one is closed at once, not served or kept
/// waiting; once the idle ones are gone, scrapes are served again.
#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let state = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(10)));
    let exporter = serve(
        "127.0.0.1:0".parse().unwrap(),
        state,
        std::future::pending(),
    )
    .await
    .unwrap();
    let addr = exporter.local_addr();
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept every one before the next comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the connection past the cap was served or kept open: {closed:?} {}",
        String::from_utf8_lossy(&buf)
    );
    drop(idle);
    // The closed ones are reaped as the server notices them: a few tries.
    let client = reqwest::Client::new();
    let mut served = None;
    for _ in 0..50 {
        if let Ok(r) = client.get(format!("http://{addr}/metrics")).send().await {
            served = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, Some(200));
}

/// Prometheus 2.x and 3.x (default and text-first `scrape_protocols`), curl, no header.
#[test]
fn openmetrics_only_for_clients_that_prefer_it() {
    let om = |accept: &[&str]| prefers_openmetrics(accept.iter().copied());
    assert!(om(&["application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"]));
    assert!(om(&["application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,application/openmetrics-text;version=0.0.1;q=0.3,text/plain;version=1.0.0;q=0.2,text/plain;version=0.0.4;q=0.1,*/*;q=0.05"]));
    assert!(om(&[
        "Application/OpenMetrics-Text ; Q=0.9",
        "text/plain;q=0.5"
    ]));
    assert!(!om(&[
        "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.1"
    ]));
    assert!(!om(&["application/openmetrics-text;q=0,*/*"]));
    assert!(!om(&["*/*"]));
    assert!(!om(&["text/plain"]));
    assert!(!om(&[]));
}

#[tokio::test]
async fn busy_port_is_an_error_from_serve() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let state = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(1)));
    let err = serve(addr, state, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
}
