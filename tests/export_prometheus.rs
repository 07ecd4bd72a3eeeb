//! End to end: a real Prometheus scrapes prescale's exporter and the values fed to it come back
//! from PromQL, including a series disappearing when it leaves the snapshot.

use crate::cli;

use crate::prometheus;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prescale::export::{
    serve, AccuracySample, ExportState, ForecastSample, Metrics, ModelSample, PoolSample, SeriesId,
    SignalSample, Snapshot, WorkloadSample,
};

/// A series with labels of its own, one of them named like prescale's `level`.
fn api() -> SeriesId {
    SeriesId::new(
        "rps",
        [("service", "api"), ("namespace", "shop"), ("level", "edge")],
    )
}

/// `api()`'s labels as exported.
const API: &str = r#"signal="rps",exported_level="edge",namespace="shop",service="api""#;
use prometheus::Prometheus;

fn snapshot(cycle_seconds: f64, decisions: &[&str], with_batch: bool) -> Snapshot {
    let mut workloads = vec![WorkloadSample {
        workload: "web".into(),
        current_replicas: 4,
        recommended_replicas: 7,
    }];
    if with_batch {
        workloads.push(WorkloadSample {
            workload: "batch".into(),
            current_replicas: 2,
            recommended_replicas: 1,
        });
    }
    Snapshot {
        forecasts: vec![ForecastSample {
            series: api(),
            window_seconds: 300.0,
            quantiles: vec![(0.5, 100.0), (0.9, 140.5), (0.99, 180.0)],
            observed: Some(95.0),
        }],
        workloads,
        pools: vec![PoolSample {
            pool: "general".into(),
            recommended_nodes: 3,
        }],
        decisions: decisions.iter().map(|d| d.to_string()).collect(),
        actions: vec![],
        signals: vec![
            SignalSample {
                signal: "web_rps".into(),
                up: true,
                down: None,
                staleness_seconds: 4.0,
                new_errors: vec![],
                new_series_refused: 0,
            },
            SignalSample {
                signal: "batch_queue".into(),
                up: false,
                down: None,
                staleness_seconds: 95.0,
                new_errors: vec![("timeout".into(), 1)],
                new_series_refused: 0,
            },
        ],
        replica_reads: vec![],
        cluster_state: vec![("web".into(), false)],
        accuracy: vec![AccuracySample {
            series: api(),
            wape: Some(0.12),
            coverage_p90: Some(0.875),
            scored: 40,
        }],
        risk: vec![prescale::export::RiskSample {
            workload: "api".into(),
            budget: 0.01,
            realised: Some(0.008),
            window_seconds: 604_800.0,
            level: 0.99,
            margin: 1.1,
            floor: None,
        }],
        calibration: vec![("web".into(), 1.1)],
        stages: vec![("web".into(), "global".into())],
        model: Some(ModelSample {
            model: "default".into(),
            trained_at: "2025-01-01T00:00:00Z".into(),
            version: "0.1.0".into(),
        }),
        shortfalls: vec![("general".into(), 1.5)],
        allocation_cuts: vec![("web".into(), 2)],
        scaler: Vec::new(),
        node_loads: vec![("web".into(), 0.8)],
        shard_stale: vec![(2, true)],
        cycle_seconds,
        at_unix: 1_750_000_000,
    }
}

/// Names of the samples in an OpenMetrics text (`foo_bucket`, `foo_total`, ...).
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// The PromQL of every panel target in the Grafana dashboard.
fn dashboard_exprs() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/prescale-grafana.json"
    );
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn prometheus_scrapes_and_queries_back_the_exported_values() {
    let deadline = Instant::now() + Duration::from_secs(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let state = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(1)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let exporter = rt
        .block_on(serve(
            "127.0.0.1:0".parse().unwrap(),
            state.clone(),
            async {
                let _ = stopped.await;
            },
        ))
        .expect("exporter binds a loopback port");

    state.cycle_finished(&snapshot(0.05, &["scale_up", "scale_up"], true));
    state.cycle_finished(&snapshot(0.2, &["scale_up", "hold"], true));

    let prom = Prometheus::start(&[exporter.local_addr().to_string()]);
    prom.wait_targets_up(1, deadline);

    let expect = |promql: &str, want: f64| {
        let got = prom.wait_for(promql, deadline, |v| v.is_some());
        assert_eq!(got, Some(want), "{promql}");
    };
    expect(r#"prescale_recommended_replicas{workload="web"}"#, 7.0);
    expect(r#"prescale_current_replicas{workload="batch"}"#, 2.0);
    expect(r#"prescale_forecast_calibration{workload="web"}"#, 1.1);
    // Issue #10: the series' own labels, which PromQL can match and join on.
    expect(&format!(r#"prescale_forecast{{{API},level="0.9"}}"#), 140.5);
    expect(
        r#"prescale_forecast{signal="rps",service="api",level="0.99"}"#,
        180.0,
    );
    expect(
        &format!(r#"prescale_forecast_window_seconds{{{API}}}"#),
        300.0,
    );
    expect(&format!(r#"prescale_observed_demand{{{API}}}"#), 95.0);
    expect(r#"prescale_recommended_nodes{pool="general"}"#, 3.0);
    expect(r#"prescale_decisions_total{kind="scale_up"}"#, 3.0);
    expect(r#"prescale_decisions_total{kind="move"}"#, 0.0);
    expect(
        r#"prescale_collection_errors_total{signal="batch_queue",kind="timeout"}"#,
        2.0,
    );
    expect(r#"prescale_signal_up{signal="batch_queue"}"#, 0.0);
    expect(
        r#"prescale_data_staleness_seconds{signal="batch_queue"}"#,
        95.0,
    );
    expect(&format!(r#"prescale_forecast_wape{{{API}}}"#), 0.12);
    expect(
        &format!(r#"prescale_forecast_p90_coverage{{{API}}}"#),
        0.875,
    );
    expect(
        &format!(r#"prescale_forecasts_scored_total{{{API}}}"#),
        40.0,
    );
    // No label holds a whole selector any more.
    assert_eq!(
        prom.query_vector(r#"{__name__=~"prescale_.+",series=~".+"}"#)
            .expect("query by label"),
        vec![]
    );
    expect("prescale_cycle_duration_seconds_count", 2.0);
    expect(r#"prescale_cycle_duration_seconds_bucket{le="0.1"}"#, 1.0);
    expect("prescale_cycles_total", 2.0);
    expect(
        &format!(
            r#"prescale_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ),
        1.0,
    );
    expect(r#"prescale_model_info{model="default"}"#, 1.0);
    expect(
        r#"prescale_forecast_stage{workload="web",stage="global"}"#,
        1.0,
    );
    expect(
        r#"prescale_forecast_stage{workload="web",stage="own"}"#,
        0.0,
    );
    expect(r#"prescale_cluster_state_known{workload="web"}"#, 0.0);
    expect(r#"prescale_shard_stale{shard="2"}"#, 1.0);

    // Prometheus parsed every family (OpenMetrics info, units, histograms) under the names the
    // exposition shows, which are the names the dashboard queries.
    let names_in_prometheus: BTreeSet<String> = prom
        .query_vector(r#"group by (__name__) ({__name__=~"prescale_.+"})"#)
        .expect("query by name")
        .into_iter()
        .map(|(labels, _)| labels["__name__"].clone())
        .collect();
    assert_eq!(
        names_in_prometheus,
        sample_names(&state.metrics().encode()),
        "names stored by Prometheus differ from the exposition's"
    );

    // Every query on the dashboard is valid PromQL and finds data here.
    for expr in dashboard_exprs() {
        let promql = expr
            .replace("$__rate_interval", "1m")
            .replace("$signal", ".*")
            .replace("$workload", ".*");
        let got = prom
            .query_vector(&promql)
            .unwrap_or_else(|e| panic!("dashboard query `{promql}` is rejected: {e}"));
        // A rate needs two scrapes inside its range, which the first seconds may not have.
        assert!(
            !got.is_empty() || promql.contains("rate("),
            "dashboard query `{promql}` finds nothing"
        );
    }

    // A workload that leaves the snapshot leaves Prometheus too (staleness marker on the
    // next scrape), rather than lingering for the 5-minute lookback.
    state.cycle_finished(&snapshot(0.01, &[], false));
    prom.wait_for("prescale_cycles_total", deadline, |v| v == Some(3.0));
    prom.wait_for(
        r#"prescale_recommended_replicas{workload="batch"}"#,
        deadline,
        |v| v.is_none(),
    );
    expect(r#"prescale_recommended_replicas{workload="web"}"#, 7.0);

    drop(prom);
    stop.send(()).unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), exporter.stopped())
            .await
            .expect("exporter shuts down within 5 s")
            .expect("exporter ran without error")
    });
}

/// The demo configuration with absolute paths, a private decision log, listening on `port`,
/// and enough cycles to outlive the test (it is stopped when the test ends).
fn demo_config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let demo = std::fs::read_to_string(cli::repo("config/demo.toml")).unwrap();
    let mut text = String::new();
    for line in demo.lines() {
        let line = match line.split_whitespace().next() {
            Some("model") => format!("model = {:?}", cli::repo("models/web.model")),
            Some("decision_log") => {
                format!(
                    "decision_log = {:?}",
                    dir.join("d.jsonl").display().to_string()
                )
            }
            Some("cycles") => "cycles = 100000".to_string(),
            Some("listen") => format!("listen = \"127.0.0.1:{port}\""),
            Some("dir") => format!("dir = {:?}", cli::repo("data")),
            _ => line.to_string(),
        };
        text.push_str(&line);
        text.push('\n');
    }
    let p = dir.join("live.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A child process killed (and reaped) when the test ends, also on panic.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /metrics` with the given `Accept` header (none if `None`): the response's content type
/// and body, or `None` if the exporter does not answer (yet).
fn scrape(port: u16, accept: Option<&str>) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let ct = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Some((ct, body.to_string()))
}

/// `promtool check metrics` on `text` (stdin): its exit status and everything it printed.
fn promtool_check(text: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package `prometheus`)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// What Prometheus 2.x sends when it scrapes (OpenMetrics preferred, the text format accepted).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Issue #10: `promtool check metrics` reports nothing on a running `prescale run`'s `/metrics`
/// in the classic text format, which is what clients that do not ask for OpenMetrics get (curl,
/// older scrapers); Prometheus, which asks for OpenMetrics, gets it.
#[test]
fn promtool_is_silent_on_a_running_loop_in_both_formats() {
    let port = cli::free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo_config(dir.path(), port);
    let _child = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait until a cycle has exported forecasts, accuracy and decisions.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((_, body)) = scrape(port, None) {
            if body.contains("prescale_forecast{")
                && body.contains("prescale_forecasts_scored_total{")
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no forecasts on /metrics within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    for accept in [None, Some("*/*"), Some("text/plain")] {
        let (ct, body) = scrape(port, accept).expect("scrape");
        assert_eq!(
            ct, "text/plain; version=0.0.4; charset=utf-8",
            "Accept: {accept:?}"
        );
        assert!(
            !body.contains("# EOF") && !body.contains("# UNIT"),
            "{body}"
        );
        let (ok, said) = promtool_check(&body);
        assert!(
            ok && said.is_empty(),
            "promtool on the text format (Accept: {accept:?}):\n{said}\n{body}"
        );
    }

    let (ct, body) = scrape(port, Some(PROMETHEUS_ACCEPT)).expect("scrape");
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    // promtool parses only the classic text format: in OpenMetrics a counter's HELP and TYPE
    // name the family (`foo`) and its sample `foo_total`, which promtool takes for a second
    // metric without help. That is the one thing it may say; anything else is a finding.
    let counters: BTreeSet<String> = body
        .lines()
        .filter_map(|l| {
            l.strip_prefix("# TYPE ")?
                .strip_suffix(" counter")
                .map(str::to_string)
        })
        .collect();
    assert!(!counters.is_empty());
    let (_, said) = promtool_check(&body);
    for line in said.lines() {
        let artefact = line
            .strip_suffix("_total no help text")
            .is_some_and(|family| counters.contains(family));
        assert!(
            artefact,
            "promtool on the OpenMetrics format:\n{said}\n{body}"
        );
    }
}
