//! End to end: a real Prometheus scrapes prescale's exporter and the values fed to it come back
//! from PromQL, including a series disappearing when it leaves the snapshot.

#[path = "common/prometheus.rs"]
mod prometheus;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prescale::export::{
    serve, AccuracySample, ExportState, ForecastSample, Metrics, ModelSample, PoolSample,
    SignalSample, Snapshot, WorkloadSample,
};
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
            series: "web".into(),
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
        signals: vec![
            SignalSample {
                signal: "web_rps".into(),
                up: true,
                staleness_seconds: 4.0,
                new_errors: vec![],
                new_series_refused: 0,
            },
            SignalSample {
                signal: "batch_queue".into(),
                up: false,
                staleness_seconds: 95.0,
                new_errors: vec![("timeout".into(), 1)],
                new_series_refused: 0,
            },
        ],
        replica_reads: vec![],
        accuracy: vec![AccuracySample {
            series: "web".into(),
            wape: Some(0.12),
            coverage_p90: Some(0.875),
            scored: 40,
        }],
        model: Some(ModelSample {
            model: "default".into(),
            trained_at: "2025-01-01T00:00:00Z".into(),
            version: "0.1.0".into(),
        }),
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
    expect(r#"prescale_forecast{series="web",quantile="0.9"}"#, 140.5);
    expect(r#"prescale_forecast_window_seconds{series="web"}"#, 300.0);
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
    expect(r#"prescale_forecast_wape{series="web"}"#, 0.12);
    expect(r#"prescale_forecast_p90_coverage{series="web"}"#, 0.875);
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
            .replace("$series", ".*")
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
