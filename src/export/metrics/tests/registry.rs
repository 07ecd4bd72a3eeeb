//! The registry as a whole against snapshots, and the process-wide families (build, model,
//! cycles).

use super::*;

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
    next.forecasts.retain(|f| f.series.signal() == "web");
    next.forecasts[0].quantiles.retain(|q| q.0 == 0.9);
    next.workloads.retain(|w| w.workload == "web");
    next.replica_reads.retain(|(w, _)| w == "web");
    next.cluster_state.retain(|(w, _)| w == "web");
    next.actions.retain(|a| a.workload == "web");
    next.pools.retain(|p| p.pool == "general");
    next.signals.retain(|s| s.signal == "web_rps");
    next.accuracy.retain(|a| a.series.signal() == "web");
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

/// Per-workload families follow the snapshot's workloads in any order: the same workloads
/// reordered keep their series, and a workload left out loses its own only.
#[test]
fn per_workload_series_follow_the_workloads_in_any_order() {
    let m = Metrics::new();
    let stages = |names: &[&str]| Snapshot {
        stages: names
            .iter()
            .map(|w| (w.to_string(), "global".to_string()))
            .collect(),
        ..Snapshot::default()
    };
    let has = |w: &str| {
        lines(&m)
            .iter()
            .any(|l| l == &format!(r#"prescale_forecast_stage{{workload="{w}",stage="global"}} 1"#))
    };
    m.observe(&stages(&["a", "b", "c"]));
    m.observe(&stages(&["c", "a", "b"]));
    assert!(has("a") && has("b") && has("c"));
    m.observe(&stages(&["c", "a"]));
    assert!(has("a") && has("c") && !has("b"));
    m.observe(&stages(&["c", "a"]));
    assert!(has("a") && has("c") && !has("b"));
    m.observe(&stages(&["b", "c", "a"]));
    assert!(has("a") && has("b") && has("c"));
}
