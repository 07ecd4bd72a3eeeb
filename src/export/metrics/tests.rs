//! The registry against snapshots, and the dashboard against the registry.
use super::*;
use crate::export::{
    AccuracySample, ActionSample, ForecastSample, PoolSample, SeriesId, SignalSample,
    WorkloadSample,
};

fn forecast(series: &str, p50: f64, p90: f64) -> ForecastSample {
    ForecastSample {
        series: series.into(),
        window_seconds: 300.0,
        quantiles: vec![(0.5, p50), (0.9, p90)],
        observed: Some(p50 * 0.9),
    }
}

fn signal(name: &str, errors: &[(&str, u64)]) -> SignalSample {
    SignalSample {
        signal: name.into(),
        up: errors.is_empty(),
        down: None,
        staleness_seconds: 12.5,
        new_errors: errors.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        new_series_refused: 0,
    }
}

/// A snapshot that touches every family, with two of everything that has labels.
pub(crate) fn full_snapshot() -> Snapshot {
    Snapshot {
        forecasts: vec![forecast("web", 100.0, 140.5), forecast("batch", 10.0, 30.0)],
        workloads: vec![
            WorkloadSample {
                workload: "web".into(),
                current_replicas: 4,
                recommended_replicas: 7,
            },
            WorkloadSample {
                workload: "batch".into(),
                current_replicas: 2,
                recommended_replicas: 1,
            },
        ],
        pools: vec![
            PoolSample {
                pool: "general".into(),
                recommended_nodes: 3,
            },
            PoolSample {
                pool: "spot".into(),
                recommended_nodes: 0,
            },
        ],
        decisions: vec!["scale_up".into(), "scale_up".into(), "scale_down".into()],
        actions: vec![
            ActionSample {
                workload: "web".into(),
                outcome: "applied".into(),
                external_change: false,
            },
            ActionSample {
                workload: "batch".into(),
                outcome: "failed".into(),
                external_change: false,
            },
        ],
        signals: vec![
            signal("web_rps", &[]),
            signal("batch_queue", &[("timeout", 2)]),
        ],
        replica_reads: vec![("web".into(), false), ("batch".into(), true)],
        cluster_state: vec![("web".into(), true), ("batch".into(), false)],
        accuracy: vec![
            AccuracySample {
                series: "web".into(),
                wape: Some(0.12),
                coverage_p90: Some(0.875),
                scored: 40,
            },
            AccuracySample {
                series: "batch".into(),
                wape: None,
                coverage_p90: None,
                scored: 0,
            },
        ],
        risk: vec![crate::export::RiskSample {
            workload: "web".into(),
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
        shard_stale: Vec::new(),
        cycle_seconds: 0.042,
        at_unix: 1_750_000_000,
    }
}

fn lines(m: &Metrics) -> Vec<String> {
    m.encode().lines().map(str::to_string).collect()
}

fn assert_has(text: &[String], line: &str) {
    assert!(
        text.iter().any(|l| l == line),
        "missing line {line:?} in:\n{}",
        text.join("\n")
    );
}

fn assert_no_mention(text: &[String], needle: &str) {
    let hits: Vec<_> = text.iter().filter(|l| l.contains(needle)).collect();
    assert!(hits.is_empty(), "{needle:?} still exported: {hits:#?}");
}

#[test]
fn fresh_registry_has_build_info_and_zeroed_decisions() {
    let text = lines(&Metrics::new());
    assert_has(
        &text,
        &format!(
            "prescale_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    );
    for kind in decision_kinds() {
        assert_has(
            &text,
            &format!("prescale_decisions_total{{kind=\"{kind}\"}} 0"),
        );
    }
    assert_has(&text, "prescale_cycles_total 0");
    assert_eq!(text.last().map(String::as_str), Some("# EOF"));
}

#[test]
fn encode_after_observe_contains_every_value() {
    let m = Metrics::new();
    m.observe(&full_snapshot());
    let text = lines(&m);
    for line in [
        "# TYPE prescale_forecast gauge",
        r#"prescale_forecast{signal="web",level="0.5"} 100.0"#,
        r#"prescale_forecast{signal="web",level="0.9"} 140.5"#,
        r#"prescale_forecast{signal="batch",level="0.9"} 30.0"#,
        "# UNIT prescale_forecast_window_seconds seconds",
        r#"prescale_forecast_window_seconds{signal="web"} 300.0"#,
        r#"prescale_observed_demand{signal="web"} 90.0"#,
        r#"prescale_recommended_replicas{workload="web"} 7"#,
        r#"prescale_current_replicas{workload="web"} 4"#,
        r#"prescale_recommended_replicas{workload="batch"} 1"#,
        r#"prescale_recommended_nodes{pool="general"} 3"#,
        r#"prescale_recommended_nodes{pool="spot"} 0"#,
        "# TYPE prescale_decisions counter",
        r#"prescale_decisions_total{kind="scale_up"} 2"#,
        r#"prescale_decisions_total{kind="scale_down"} 1"#,
        r#"prescale_decisions_total{kind="hold"} 0"#,
        r#"prescale_collection_errors_total{signal="batch_queue",kind="timeout"} 2"#,
        r#"prescale_signal_up{signal="web_rps"} 1"#,
        r#"prescale_signal_up{signal="batch_queue"} 0"#,
        r#"prescale_data_staleness_seconds{signal="web_rps"} 12.5"#,
        r#"prescale_forecast_wape{signal="web"} 0.12"#,
        r#"prescale_forecast_p90_coverage{signal="web"} 0.875"#,
        r#"prescale_forecasts_scored_total{signal="web"} 40"#,
        r#"prescale_forecasts_scored_total{signal="batch"} 0"#,
        "prescale_cycle_duration_seconds_count 1",
        "prescale_cycles_total 1",
        "prescale_last_cycle_timestamp_seconds 1750000000.0",
        r#"prescale_model_info{model="default",trained_at="2025-01-01T00:00:00Z",version="0.1.0"} 1"#,
    ] {
        assert_has(&text, line);
    }
    // An unscored series has no accuracy gauges rather than a NaN or a misleading 0.
    assert_no_mention(&text, r#"prescale_forecast_wape{signal="batch"}"#);
    assert_no_mention(&text, r#"prescale_forecast_p90_coverage{signal="batch"}"#);
}

#[test]
fn series_missing_from_the_next_snapshot_vanish() {
    let m = Metrics::new();
    m.observe(&full_snapshot());
    let mut next = full_snapshot();
    next.forecasts.retain(|f| f.series.signal == "web");
    next.forecasts[0].quantiles.retain(|q| q.0 == 0.9);
    next.workloads.retain(|w| w.workload == "web");
    next.replica_reads.retain(|(w, _)| w == "web");
    next.cluster_state.retain(|(w, _)| w == "web");
    next.actions.retain(|a| a.workload == "web");
    next.pools.retain(|p| p.pool == "general");
    next.signals.retain(|s| s.signal == "web_rps");
    next.accuracy.retain(|a| a.series.signal == "web");
    next.model = None;
    m.observe(&next);
    let text = lines(&m);
    for gone in [
        "\"batch\"",
        "batch_queue",
        "\"spot\"",
        r#"level="0.5""#,
        "prescale_model_info{",
    ] {
        assert_no_mention(&text, gone);
    }
    assert_has(
        &text,
        r#"prescale_forecast{signal="web",level="0.9"} 140.5"#,
    );
    assert_has(&text, r#"prescale_recommended_replicas{workload="web"} 7"#);
    assert_has(&text, r#"prescale_signal_up{signal="web_rps"} 1"#);
    // Decision counters are not state: they keep counting.
    assert_has(&text, r#"prescale_decisions_total{kind="scale_up"} 4"#);

    // Back again: the series reappears from its new value, not a leftover.
    let mut again = full_snapshot();
    again.workloads[1].recommended_replicas = 9;
    m.observe(&again);
    let text = lines(&m);
    assert_has(
        &text,
        r#"prescale_recommended_replicas{workload="batch"} 9"#,
    );
    assert_has(
        &text,
        r#"prescale_collection_errors_total{signal="batch_queue",kind="timeout"} 2"#,
    );
}

#[test]
fn error_counters_accumulate_while_their_signal_lives() {
    let m = Metrics::new();
    let mut s = Snapshot {
        signals: vec![signal("q", &[("timeout", 2), ("parse", 1)])],
        ..Snapshot::default()
    };
    m.observe(&s);
    s.signals = vec![signal("q", &[("timeout", 3)])];
    m.observe(&s);
    s.signals = vec![signal("q", &[])];
    m.observe(&s);
    let text = lines(&m);
    assert_has(
        &text,
        r#"prescale_collection_errors_total{signal="q",kind="timeout"} 5"#,
    );
    assert_has(
        &text,
        r#"prescale_collection_errors_total{signal="q",kind="parse"} 1"#,
    );
    assert_has(&text, r#"prescale_signal_up{signal="q"} 1"#);
}

#[test]
fn scored_counter_mirrors_the_tracker_including_its_restarts() {
    let m = Metrics::new();
    let acc = |n| Snapshot {
        accuracy: vec![AccuracySample {
            series: "web".into(),
            wape: Some(0.1),
            coverage_p90: Some(0.9),
            scored: n,
        }],
        ..Snapshot::default()
    };
    m.observe(&acc(10));
    m.observe(&acc(25));
    assert_has(
        &lines(&m),
        r#"prescale_forecasts_scored_total{signal="web"} 25"#,
    );
    m.observe(&acc(3));
    assert_has(
        &lines(&m),
        r#"prescale_forecasts_scored_total{signal="web"} 3"#,
    );
}

#[test]
fn model_change_replaces_the_info_series() {
    let m = Metrics::new();
    let mut s = full_snapshot();
    m.observe(&s);
    s.model.as_mut().unwrap().trained_at = "2025-02-01T00:00:00Z".into();
    m.observe(&s);
    let text = lines(&m);
    let infos: Vec<_> = text
        .iter()
        .filter(|l| l.starts_with("prescale_model_info{"))
        .collect();
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert!(infos[0].contains("2025-02-01"), "{infos:?}");
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new();
    m.observe(&Snapshot {
        workloads: vec![WorkloadSample {
            workload: "we\"b\\x\ny".into(),
            current_replicas: 1,
            recommended_replicas: 2,
        }],
        ..Snapshot::default()
    });
    assert_has(
        &lines(&m),
        r#"prescale_recommended_replicas{workload="we\"b\\x\ny"} 2"#,
    );
}

#[test]
fn histogram_counts_each_cycle_in_its_bucket() {
    let m = Metrics::new();
    for secs in [0.0005, 0.002, 0.3, 0.3, 20.0, f64::NAN] {
        m.observe(&Snapshot {
            cycle_seconds: secs,
            ..Snapshot::default()
        });
    }
    let text = lines(&m);
    // NaN is not a duration: the cycle counts, the histogram skips it.
    assert_has(&text, "prescale_cycles_total 6");
    assert_has(&text, "prescale_cycle_duration_seconds_count 5");
    assert_has(&text, "prescale_cycle_duration_seconds_sum 20.6025");
    assert_has(
        &text,
        r#"prescale_cycle_duration_seconds_bucket{le="0.001"} 1"#,
    );
    assert_has(
        &text,
        r#"prescale_cycle_duration_seconds_bucket{le="0.0025"} 2"#,
    );
    assert_has(
        &text,
        r#"prescale_cycle_duration_seconds_bucket{le="0.25"} 2"#,
    );
    assert_has(
        &text,
        r#"prescale_cycle_duration_seconds_bucket{le="0.5"} 4"#,
    );
    assert_has(
        &text,
        r#"prescale_cycle_duration_seconds_bucket{le="10.0"} 4"#,
    );
    assert_has(
        &text,
        r#"prescale_cycle_duration_seconds_bucket{le="+Inf"} 5"#,
    );
}

/// Names of the samples in an OpenMetrics text (`foo_bucket`, `foo_total`, ...).
fn sample_names(text: &str) -> HashSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_string())
        .collect()
}

/// Every `prescale_*` name in a string (PromQL, a variable query, a description).
fn metric_names_in(s: &str, out: &mut HashSet<String>) {
    let mut rest = s;
    while let Some(i) = rest.find("prescale_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
}

/// The PromQL in a dashboard: panel targets' `expr` and template variables' queries
/// (descriptions may name a family, e.g. a histogram, which is not a queryable name).
fn queries<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|v| queries(v, out)),
        serde_json::Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("expr" | "query" | "definition", serde_json::Value::String(s)) => out.push(s),
                    _ => queries(v, out),
                }
            }
        }
        _ => {}
    }
}

#[test]
fn dashboard_is_json_and_queries_only_exported_metrics() {
    let text = include_str!("../../../dashboards/prescale-grafana.json");
    let dash: serde_json::Value = serde_json::from_str(text).expect("dashboard is JSON");
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    let vars = dash["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter()
            .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"),
        "no DS_PROMETHEUS datasource variable"
    );

    let panels = dash["panels"].as_array().unwrap();
    let mut ids = HashSet::new();
    let mut exprs = 0;
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        for t in p["targets"].as_array().into_iter().flatten() {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{t}");
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{t}");
            exprs += 1;
        }
    }
    assert!(exprs >= 15, "only {exprs} queries");

    let mut all = Vec::new();
    queries(&dash, &mut all);
    let mut referenced = HashSet::new();
    all.iter().for_each(|s| metric_names_in(s, &mut referenced));
    let m = Metrics::new();
    m.observe(&full_snapshot());
    let exported = sample_names(&m.encode());
    let mut unknown: Vec<_> = referenced.difference(&exported).collect();
    unknown.sort();
    assert!(
        unknown.is_empty(),
        "dashboard uses names /metrics does not have: {unknown:?}"
    );
    // And the dashboard shows every family the brief asked for.
    for needed in [
        "prescale_forecast",
        "prescale_observed_demand",
        "prescale_recommended_replicas",
        "prescale_current_replicas",
        "prescale_recommended_nodes",
        "prescale_decisions_total",
        "prescale_collection_errors_total",
        "prescale_data_staleness_seconds",
        "prescale_signal_up",
        "prescale_forecast_wape",
        "prescale_forecast_p90_coverage",
        "prescale_cycle_duration_seconds_bucket",
        "prescale_build_info",
        "prescale_model_info",
    ] {
        assert!(referenced.contains(needed), "dashboard lacks {needed}");
    }
}

/// A signal's error and refusal counters exist at 0 from its first snapshot (every known kind),
/// and a failing signal reads `prescale_signal_up 0`.
#[test]
fn health_counters_start_at_zero_and_a_down_signal_reads_up_0() {
    let m = Metrics::new();
    m.observe(&Snapshot {
        signals: vec![signal("web_rps", &[])],
        ..Snapshot::default()
    });
    let out = m.encode();
    for kind in COLLECTION_ERROR_KINDS {
        let line =
            format!("prescale_collection_errors_total{{signal=\"web_rps\",kind=\"{kind}\"}} 0");
        assert!(out.contains(&line), "missing {line} in\n{out}");
    }
    assert!(
        out.contains("prescale_series_refused_total{signal=\"web_rps\"} 0"),
        "{out}"
    );
    let mut down = signal("web_rps", &[("request", 3)]);
    down.new_series_refused = 2;
    m.observe(&Snapshot {
        signals: vec![down],
        ..Snapshot::default()
    });
    let out = m.encode();
    assert!(
        out.contains("prescale_signal_up{signal=\"web_rps\"} 0"),
        "{out}"
    );
    assert!(
        out.contains("prescale_collection_errors_total{signal=\"web_rps\",kind=\"request\"} 3"),
        "{out}"
    );
    assert!(
        out.contains("prescale_series_refused_total{signal=\"web_rps\"} 2"),
        "{out}"
    );
}

/// Failed `current_replicas` reads are counted per workload, from 0 at the first snapshot.
#[test]
fn replica_read_errors_are_counted_per_workload_from_zero() {
    let m = Metrics::new();
    let reads = |failed| Snapshot {
        replica_reads: vec![("web".into(), failed)],
        ..Snapshot::default()
    };
    m.observe(&reads(false));
    assert!(m
        .encode()
        .contains("prescale_replicas_read_errors_total{workload=\"web\"} 0"));
    m.observe(&reads(true));
    m.observe(&reads(true));
    let out = m.encode();
    assert!(
        out.contains("prescale_replicas_read_errors_total{workload=\"web\"} 2"),
        "{out}"
    );
    m.observe(&Snapshot::default());
    assert!(!m.encode().contains("prescale_replicas_read_errors_total{"));
}

/// Issue #9: every workload has a counter per outcome and a failure counter from its first
/// snapshot, at 0; outcomes add up per cycle, failures count twice (by outcome and as failures).
#[test]
fn action_outcomes_are_counted_per_workload_from_zero() {
    let m = Metrics::new();
    let w = |name: &str| WorkloadSample {
        workload: name.into(),
        current_replicas: 2,
        recommended_replicas: 3,
    };
    let cycle = |outcomes: &[(&str, &str)]| Snapshot {
        workloads: vec![w("web"), w("api")],
        actions: outcomes
            .iter()
            .map(|(w, o)| ActionSample {
                workload: w.to_string(),
                // Written as the act stage words it; the label is the word before it.
                outcome: o.split(' ').next().unwrap_or(o).to_string(),
                external_change: o.contains("changed elsewhere"),
            })
            .collect(),
        ..Snapshot::default()
    };
    m.observe(&cycle(&[]));
    let text = lines(&m);
    for wl in ["web", "api"] {
        for o in ACTION_OUTCOMES {
            assert_has(
                &text,
                &format!("prescale_actions_total{{workload=\"{wl}\",outcome=\"{o}\"}} 0"),
            );
        }
        assert_has(
            &text,
            &format!("prescale_actuator_failures_total{{workload=\"{wl}\"}} 0"),
        );
        assert_has(
            &text,
            &format!("prescale_external_changes_total{{workload=\"{wl}\"}} 0"),
        );
    }
    m.observe(&cycle(&[("web", "applied"), ("api", "failed")]));
    m.observe(&cycle(&[
        ("web", "skipped (changed elsewhere)"),
        ("api", "failed"),
    ]));
    let text = lines(&m);
    for line in [
        "prescale_actions_total{workload=\"web\",outcome=\"applied\"} 1",
        "prescale_actions_total{workload=\"web\",outcome=\"skipped\"} 1",
        "prescale_actions_total{workload=\"web\",outcome=\"failed\"} 0",
        "prescale_actions_total{workload=\"api\",outcome=\"failed\"} 2",
        "prescale_actuator_failures_total{workload=\"api\"} 2",
        "prescale_actuator_failures_total{workload=\"web\"} 0",
        "prescale_external_changes_total{workload=\"web\"} 1",
        "prescale_external_changes_total{workload=\"api\"} 0",
    ] {
        assert_has(&text, line);
    }
    // A workload gone from the configuration takes its counters with it.
    m.observe(&Snapshot::default());
    assert_no_mention(&lines(&m), "workload=\"api\"");
}

/// Issue #10: a series is exported as `signal` plus its own labels, not as one label holding the
/// whole key; its labels that collide with prescale's get the `exported_` prefix (as Prometheus
/// does), invalid names are made valid, and no gauge has a `quantile` or `le` label.
#[test]
fn series_are_exported_with_their_own_labels() {
    let m = Metrics::new();
    let api = SeriesId::new("rps", [("service", "api"), ("level", "high")]);
    let odd = SeriesId::new(
        "rps",
        [
            ("quantile", "x"),
            ("le", "y"),
            ("signal", "z"),
            ("__meta", "m"),
            ("9-lives", "w\"q"),
        ],
    );
    m.observe(&Snapshot {
        forecasts: vec![
            ForecastSample {
                series: api.clone(),
                window_seconds: 300.0,
                quantiles: vec![(0.5, 10.0), (0.9, 12.5)],
                observed: Some(9.0),
            },
            ForecastSample {
                series: odd.clone(),
                window_seconds: 300.0,
                quantiles: vec![(0.9, 1.0)],
                observed: None,
            },
        ],
        accuracy: vec![AccuracySample {
            series: api,
            wape: Some(0.2),
            coverage_p90: Some(0.9),
            scored: 3,
        }],
        ..Snapshot::default()
    });
    let text = lines(&m);
    let api = r#"signal="rps",exported_level="high",service="api""#;
    for line in [
        format!(r#"prescale_forecast{{{api},level="0.5"}} 10.0"#),
        format!(r#"prescale_forecast{{{api},level="0.9"}} 12.5"#),
        format!(r#"prescale_forecast_window_seconds{{{api}}} 300.0"#),
        format!(r#"prescale_observed_demand{{{api}}} 9.0"#),
        format!(r#"prescale_forecast_wape{{{api}}} 0.2"#),
        format!(r#"prescale_forecast_p90_coverage{{{api}}} 0.9"#),
        format!(r#"prescale_forecasts_scored_total{{{api}}} 3"#),
        r#"prescale_forecast{signal="rps",_9_lives="w\"q",exported___meta="m",exported_le="y",exported_quantile="x",exported_signal="z",level="0.9"} 1.0"#.to_string(),
    ] {
        assert_has(&text, &line);
    }
    assert_no_mention(&text, "series=");
    assert_no_mention(&text, "{quantile=");
    assert_no_mention(&text, ",quantile=");
    assert_no_mention(&text, "{le=\"y");
}

/// The text format served to clients that do not ask for OpenMetrics holds the same samples,
/// with every family typed under its samples' name.
#[test]
fn text_format_has_the_same_samples_typed_by_sample_name() {
    let m = Metrics::new();
    m.observe(&full_snapshot());
    let (om, text) = (m.encode(), m.encode_text());
    let samples = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(samples(&om), samples(&text));
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    let typed: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    for name in sample_names(&text) {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(f)))
            .unwrap_or(name.as_str());
        assert!(typed.contains(family), "{name} has no # TYPE in\n{text}");
    }
    assert!(
        text.contains("# TYPE prescale_decisions_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE prescale_build_info gauge\n"),
        "{text}"
    );
}
