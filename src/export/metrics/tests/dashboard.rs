//! The Grafana dashboard against the registry: every name it queries is exported.

use super::*;

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
    let text = include_str!("../../../../dashboards/prescale-grafana.json");
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
