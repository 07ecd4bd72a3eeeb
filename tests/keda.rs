//! The KEDA external scaler through a real gRPC client generated from the same proto
//! (`prescale::export::keda::proto`'s tonic client), on loopback:
//!
//! - in process, fed the real replica planner's decisions: the values served make the HPA's
//!   formula land on the planner's counts, StreamIsActive reports a change, errors name the
//!   workload or key, and the calls are counted on `/metrics`;
//! - end to end, `prescale run` on the bundled replay with `export.keda_listen`: what the
//!   scaler serves agrees with the same process's `prescale_recommended_replicas`.
//!
//! Every wait is bounded; every process started is killed when the test ends.

use crate::cli;
use cli::{free_port, repo};

use prescale::export::keda::proto::external_scaler_client::ExternalScalerClient;
use prescale::export::keda::proto::{GetMetricsRequest, ScaledObjectRef};
use prescale::export::keda::{hpa_replicas, metric_name, serve_keda, to_milli, HPA_TOLERANCE};
use prescale::export::{ExportState, Metrics, ScalerSample, Snapshot};
use prescale::forecast::Forecast;
use prescale::plan::{ReplicaPlanner, WorkloadInput, WorkloadSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const BOUND: Duration = Duration::from_secs(20);

fn so(workload: Option<&str>) -> ScaledObjectRef {
    ScaledObjectRef {
        name: "api-so".into(),
        namespace: "shop".into(),
        scaler_metadata: workload
            .map(|w| [("workload".to_string(), w.to_string())].into())
            .unwrap_or_default(),
    }
}

async fn client(addr: std::net::SocketAddr) -> ExternalScalerClient<Channel> {
    tokio::time::timeout(
        BOUND,
        ExternalScalerClient::connect(format!("http://{addr}")),
    )
    .await
    .expect("connect within the bound")
    .expect("connect")
}

/// The HPA's count from the served metric (with `current` replicas), the value and the target.
async fn served(
    c: &mut ExternalScalerClient<Channel>,
    workload: &str,
    current: u64,
) -> (u64, f64, f64) {
    let spec = c
        .get_metric_spec(so(Some(workload)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spec.metric_specs.len(), 1);
    assert_eq!(spec.metric_specs[0].metric_name, metric_name(workload));
    let target = spec.metric_specs[0].target_size_float;
    let hpa_name = format!("s0-{}", metric_name(workload));
    let values = c
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: Some(so(Some(workload))),
            metric_name: hpa_name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(values.metric_values.len(), 1);
    assert_eq!(values.metric_values[0].metric_name, hpa_name);
    let value = values.metric_values[0].metric_value_float;
    let hpa = hpa_replicas(value, target, current).expect("a usable target");
    (hpa, value, target)
}

/// Whether a change from `c` to `d` leaves the HPA's band for the best value of `d`'s interval.
fn outside_band(d: u64, c: u64) -> bool {
    c == 0 || d == c || (d as f64 / c as f64 - 1.0).abs() > HPA_TOLERANCE + 0.1 / c as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_values_are_the_planners_and_streams_report_changes() {
    let state = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(60)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = serve_keda("127.0.0.1:0".parse().unwrap(), state.clone(), async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let mut c = client(server.local_addr()).await;

    // Before the first cycle: UNAVAILABLE, naming the workload.
    let e = c.is_active(so(Some("api"))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(e.message().contains("'api'"), "{}", e.message());

    let mut spec = WorkloadSpec::new("api", "rps{service=\"api\"}", 50.0, 40);
    spec.min_replicas = 0;
    spec.headroom = 0.1;
    spec.target_utilization = Some(0.8);
    spec.scale_down_window = 0;
    spec.quantile = 0.9;
    let mut planner = ReplicaPlanner::new();
    let mut current = 3u32;
    let mut stream: Option<tonic::Streaming<_>> = None;
    // A day's shape: rising, a peak beyond max_replicas (a guard), falling to nothing.
    let peaks = [100.0, 400.0, 900.0, 2500.0, 700.0, 180.0, 0.0];
    let mut actives = Vec::new();
    let mut sent_forecast = Vec::new();
    for (i, &p90) in peaks.iter().enumerate() {
        let now = 1_750_000_000 + i as i64 * 300;
        let forecast = Forecast {
            key: spec.demand.clone(),
            at: now,
            window: 300,
            quantiles: vec![(0.5, p90 * 0.8), (0.9, p90), (0.99, p90 * 1.2)],
        };
        let mut input = WorkloadInput::new(now, current);
        input.forecast = Some(&forecast);
        input.current_demand = Some(p90 * 0.7);
        let d = planner.plan(&spec, &input);
        state.cycle_finished(&Snapshot {
            scaler: vec![ScalerSample {
                workload: spec.name.clone(),
                demand: spec.demand.to_string(),
                current_replicas: u64::from(d.from),
                desired_replicas: u64::from(d.to),
                per_replica: spec.effective_capacity(),
                headroom: spec.headroom,
                quantile: spec.quantile,
                forecast_peak: forecast.quantile(spec.quantile),
                lead_seconds: Some(forecast.window),
            }],
            ..Snapshot::default()
        });
        let (from, to) = (u64::from(d.from), u64::from(d.to));
        let (hpa, value, target) = served(&mut c, "api", from).await;
        // The target is the planner's per-replica capacity (50 × 0.8).
        assert_eq!(to_milli(target), 40_000);
        if outside_band(to, from) {
            assert_eq!(
                hpa, to,
                "cycle {i}: planner {from} -> {to}, served {value}/{target}"
            );
        }
        // From scaled-to-zero, or any count outside the band, the HPA lands on the planner's.
        assert_eq!(hpa_replicas(value, target, 0), Some(to), "cycle {i}");
        let demand = forecast.quantile(spec.quantile).unwrap() * (1.0 + spec.headroom);
        sent_forecast.push(value == demand);
        let active = c
            .is_active(so(Some("api")))
            .await
            .unwrap()
            .into_inner()
            .result;
        assert_eq!(active, to > 0, "cycle {i}");
        actives.push(active);
        if stream.is_none() {
            let mut s = c
                .stream_is_active(so(Some("api")))
                .await
                .unwrap()
                .into_inner();
            let first = tokio::time::timeout(BOUND, s.next()).await.unwrap();
            assert!(first.unwrap().unwrap().result, "sent at once");
            stream = Some(s);
        }
        current = d.to;
    }
    // Both paths of the rule ran on the planner's numbers: the forecast demand served as it is,
    // and a guarded count's own value (2500 at p90 needs 69 replicas; max_replicas caps at 40).
    assert!(sent_forecast.contains(&true), "{sent_forecast:?}");
    assert!(!sent_forecast[3], "{sent_forecast:?}");
    assert!(
        actives.first() == Some(&true) && actives.last() == Some(&false),
        "{actives:?}"
    );
    // The stream reported the change to inactive (and nothing in between: it stayed active).
    let next = tokio::time::timeout(BOUND, stream.as_mut().unwrap().next())
        .await
        .expect("the stream reports the change")
        .unwrap()
        .unwrap();
    assert!(!next.result);

    // Errors name the key or the workload.
    let e = c.get_metric_spec(so(None)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("'workload'") && e.message().contains("shop/api-so"));
    let e = c.get_metric_spec(so(Some("cart"))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(
        e.message().contains("'cart'") && e.message().contains("api"),
        "{}",
        e.message()
    );
    let e = c.stream_is_active(so(Some("cart"))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    // Counted on /metrics by method and code.
    let text = state.metrics().encode_text();
    for want in [
        r#"prescale_keda_requests_total{method="GetMetrics",code="OK"} 7"#,
        r#"prescale_keda_requests_total{method="IsActive",code="UNAVAILABLE"} 1"#,
        r#"prescale_keda_requests_total{method="GetMetricSpec",code="NOT_FOUND"} 1"#,
        r#"prescale_keda_requests_total{method="StreamIsActive",code="OK"} 1"#,
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }

    // Shutdown ends the open stream and stops the server within the bound.
    let _ = stop.send(());
    let t = Instant::now();
    tokio::time::timeout(BOUND, server.stopped())
        .await
        .unwrap()
        .unwrap();
    assert!(t.elapsed() < BOUND);
}

/// A child process that is killed (and reaped) when the test ends, also on panic.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `prescale_<name>{workload="<w>"} <n>` from a scrape.
fn gauge(text: &str, name: &str, workload: &str) -> Option<u64> {
    let prefix = format!("prescale_{name}{{workload=\"{workload}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prescale_run_serves_keda_what_it_plans() {
    let dir = tempfile::tempdir().unwrap();
    let (metrics_port, keda_port) = (free_port(), free_port());
    let demo = std::fs::read_to_string(repo("config/demo.toml")).unwrap();
    let mut text = String::new();
    for line in demo.lines() {
        let line = match line.split_whitespace().next() {
            Some("model") => format!("model = {:?}", repo("models/web.model")),
            Some("decision_log") => format!(
                "decision_log = {:?}",
                dir.path().join("d.jsonl").display().to_string()
            ),
            Some("cycles") => "cycles = 1000".to_string(),
            Some("listen") => format!(
                "listen = \"127.0.0.1:{metrics_port}\"\nkeda_listen = \"127.0.0.1:{keda_port}\""
            ),
            Some("dir") => format!("dir = {:?}", repo("data")),
            // One 5-minute step every 2 s: time to read both sides within one cycle.
            Some("speed") => "speed = 150".to_string(),
            _ => line.to_string(),
        };
        text.push_str(&line);
        text.push('\n');
    }
    let cfg = dir.path().join("keda.toml");
    std::fs::write(&cfg, text).unwrap();
    let _child = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let keda_addr: std::net::SocketAddr = format!("127.0.0.1:{keda_port}").parse().unwrap();
    let mut c = loop {
        match ExternalScalerClient::connect(format!("http://{keda_addr}")).await {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the KEDA port never opened: {e}"),
        }
    };
    let http = reqwest::Client::new();
    let scrape = || async {
        http.get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    let mut compared = 0;
    while compared < 3 {
        assert!(Instant::now() < deadline, "compared only {compared} cycles");
        // The same cycle on both sides: /metrics before and after the gRPC calls agree.
        let before = scrape().await.unwrap_or_default();
        let answers = {
            let mut out = Vec::new();
            for w in ["web", "api", "db-readers"] {
                match c.get_metric_spec(so(Some(w))).await {
                    Err(e) if e.code() == tonic::Code::Unavailable => break,
                    Err(e) => panic!("{w}: {e}"),
                    Ok(_) => {}
                }
                let current = gauge(&before, "current_replicas", w).unwrap_or(0);
                let (hpa, ..) = served(&mut c, w, current).await;
                let active = c.is_active(so(Some(w))).await.unwrap().into_inner().result;
                out.push((w, current, hpa, active));
            }
            out
        };
        let after = scrape().await.unwrap_or_default();
        if answers.len() < 3 || before.is_empty() || !same_cycle(&before, &after) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for (w, current, hpa, active) in answers {
            let want = gauge(&before, "recommended_replicas", w).unwrap();
            if outside_band(want, current) {
                assert_eq!(hpa, want, "{w}: {current} -> {want}");
            } else {
                assert_eq!(hpa, current, "{w}: inside the HPA's band");
            }
            assert_eq!(active, want > 0, "{w}");
        }
        compared += 1;
        tokio::time::sleep(Duration::from_millis(2000)).await;
    }
    let text = scrape().await.unwrap();
    assert!(
        text.contains(r#"prescale_keda_requests_total{method="GetMetrics",code="OK"}"#),
        "{text}"
    );
}

/// Whether two scrapes are of the same cycle.
fn same_cycle(a: &str, b: &str) -> bool {
    let cycles = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("prescale_cycles_total "))
            .map(str::to_string)
    };
    cycles(a).is_some() && cycles(a) == cycles(b)
}

/// KEDA multiplexes every ScaledObject's stream on one connection; tonic's default is no limit,
/// so prescale's own (4096) must reach the client in the server's HTTP/2 SETTINGS.
#[tokio::test]
async fn the_server_caps_concurrent_streams_per_connection() {
    let state = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(60)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = serve_keda("127.0.0.1:0".parse().unwrap(), state, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (client, mut conn) = h2::client::handshake(tcp).await.unwrap();
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/externalscaler.ExternalScaler/IsActive",
        server.local_addr()
    ))
    .header("content-type", "application/grpc")
    .body(())
    .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    // The answer's headers come after the server's SETTINGS, which the connection applies.
    let headers = tokio::time::timeout(BOUND, async {
        tokio::select! {
            r = response => r.unwrap(),
            c = &mut conn => panic!("connection ended: {c:?}"),
        }
    })
    .await
    .unwrap();
    assert_eq!(headers.status(), 200);
    assert_eq!(conn.max_concurrent_send_streams(), 4096);
    let _ = stop.send(());
}
