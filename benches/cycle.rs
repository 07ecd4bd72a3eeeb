//! One live cycle at scale: 10,000 series (a week and a day of 5-minute history each in rings),
//! 1,000 workloads, 500 nodes. Per cycle, as the live loop does: copy each ring's tail, compute
//! features and forecasts for every series in one parallel batch, feed the accuracy tracker,
//! plan replicas for every workload and plan nodes. The model is the full-size one (100 trees,
//! depth 12) trained on `data/`.

use criterion::{criterion_group, criterion_main, Criterion};
use prescale::forecast::{Model, TrainOptions};
use prescale::plan::{
    AccuracyConfig, AccuracyTracker, NodePlanner, NodeState, PoolSpec, ReplicaPlanner, Resources,
    WorkloadInput, WorkloadLoad, WorkloadSpec,
};
use prescale::series::{csv_files, read_history, HistoryOptions, Ring, SeriesKey};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;

const SERIES: usize = 10_000;
const WORKLOADS: usize = 1_000;
const NODES: usize = 500;
const STEP: i64 = 300;
const HISTORY: usize = 8 * 288;

fn model() -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    let files = csv_files(&dir).expect("data/ lists");
    let series = read_history(&files, &HistoryOptions::default())
        .expect("data/ reads")
        .0;
    Model::train(&series, &TrainOptions::new(STEP, 900)).expect("trains")
}

/// Rings of synthetic load: a daily cycle of per-series size and phase, plus noise.
fn rings(now: i64) -> Vec<(SeriesKey, Ring)> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..SERIES)
        .map(|i| {
            let mut ring = Ring::new(STEP, HISTORY);
            let size = 10.0 + (i % 97) as f64 * 3.0;
            let phase = (i % 24) as f64;
            for k in 0..HISTORY {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                let ts = now - (HISTORY - 1 - k) as i64 * STEP;
                let hour = (ts % 86_400) as f64 / 3600.0;
                let v = size
                    * (1.0 + 0.5 * (std::f64::consts::TAU * (hour + phase) / 24.0).sin() + 0.2 * u);
                ring.push(ts, v);
            }
            (SeriesKey::new(format!("cpu{{instance=\"n{i}\"}}")), ring)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let model = model();
    let now = 1_700_006_400 - 1_700_006_400 % STEP;
    let rings = rings(now);
    let ring_bytes: usize = rings.iter().map(|(_, r)| r.memory_bytes()).sum();
    eprintln!(
        "[cycle] {SERIES} rings × {HISTORY} slots: {:.1} MB ({:.2} bytes/point)",
        ring_bytes as f64 / 1e6,
        ring_bytes as f64 / (SERIES * HISTORY) as f64
    );
    let specs: Vec<WorkloadSpec> = (0..WORKLOADS)
        .map(|i| {
            let mut w = WorkloadSpec::new(&format!("w{i}"), rings[i].0.as_str(), 20.0, 200);
            w.resources = Resources::new(0.5, 512.0 * 1024.0 * 1024.0);
            w
        })
        .collect();
    let pool = PoolSpec::new(
        "general",
        Resources::new(32.0, 128.0 * (1u64 << 30) as f64),
        1000,
    );
    // Nodes with the workloads' current replicas spread over them.
    let nodes: Vec<NodeState> = (0..NODES)
        .map(|n| NodeState {
            name: format!("node-{n:03}"),
            pool: "general".into(),
            replicas: (0..WORKLOADS)
                .filter(|w| w % NODES == n)
                .map(|w| (format!("w{w}"), 3))
                .collect(),
            ..NodeState::default()
        })
        .collect();
    let need = model.spec.history_needed();
    let mut replicas = ReplicaPlanner::new();
    let mut node_planner = NodePlanner::new();
    let mut accuracy = AccuracyTracker::new(AccuracyConfig::default());
    let mut cycle = 0i64;

    let mut g = c.benchmark_group("cycle");
    g.sample_size(10);
    g.bench_function("10k series, 1k workloads, 500 nodes", |b| {
        b.iter(|| {
            cycle += 1;
            let t = now + cycle * STEP;
            let inputs: Vec<(SeriesKey, Vec<f64>, i64)> = rings
                .iter()
                .map(|(k, r)| {
                    let v = r.tail(need);
                    let start = now - (v.len() as i64 - 1) * STEP;
                    (k.clone(), v, start)
                })
                .collect();
            let forecasts = model.forecast_many(&inputs);
            let mut by_key = HashMap::with_capacity(SERIES);
            for ((k, v, _), f) in inputs.iter().zip(&forecasts) {
                accuracy.observe(k, t, v[v.len() - 1]);
                if let Some(f) = f {
                    accuracy.record(f);
                }
                by_key.insert(k, (f.as_ref(), v[v.len() - 1]));
            }
            let mut loads = Vec::with_capacity(WORKLOADS);
            for spec in &specs {
                let (f, current) = by_key[&spec.demand];
                let input = WorkloadInput {
                    current_demand: Some(current),
                    forecast: f,
                    forecast_weight: accuracy.weight(&spec.demand),
                    ..WorkloadInput::new(t, 3)
                };
                let d = replicas.plan(spec, &input);
                loads.push(WorkloadLoad::new(
                    spec,
                    d.to,
                    f.and_then(|f| f.quantile(spec.quantile)),
                ));
            }
            black_box(node_planner.plan(t, std::slice::from_ref(&pool), &nodes, &loads))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
