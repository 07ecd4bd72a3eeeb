//! The registry against snapshots, and the dashboard against the registry, split by subject
//! as the families are split by stage: `registry` (the whole snapshot, and the process-wide
//! families: build, model, cycles), `forecasts`, `collection`, `actions`, `encoding` (what a
//! scrape reads: escaping and the text format) and `dashboard`. Here: the snapshots and the
//! assertions every subject uses.

mod actions;
mod collection;
mod dashboard;
mod encoding;
mod forecasts;
mod registry;

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

/// Names of the samples in an OpenMetrics text (`foo_bucket`, `foo_total`, ...).
fn sample_names(text: &str) -> HashSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_string())
        .collect()
}
