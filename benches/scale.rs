//! The scale targets of issue #11: one process with 100,000 series, 10,000 workloads and
//! 2,000 nodes, a full cycle from memory; and one shard's cycle for N = 1, 2, 4 replicas.
//!
//! A cycle here is what the live loop does after its HTTP poll returns: ingest each series'
//! new sample into its ring (the collector's store), compute features and forecasts for every
//! series in one parallel batch read straight from the rings (`Model::forecast_rings`, the
//! shipped `models/web.model`), plan replicas for every workload and, in the one-process case,
//! plan nodes.
//!
//! Each workload owns ten series (its demand is the first); a shard holds the series of the
//! workloads rendezvous hashing gives it, as a signal narrowed by a workload label would
//! answer. (`prescale run` with `[shard]` keeps only the demand series, so a real shard does
//! less than this.) Rings hold two days of 5-minute history, not the eight days the weekly
//! features want: 100,000 eight-day rings are 0.9 GB, and forecasting cost does not depend on
//! the length held. Before criterion runs, each stage of the one-process cycle is timed once
//! and printed, to show where the time goes.

use criterion::{criterion_group, criterion_main, Criterion};
use prescale::collect::{SignalConfig, SignalStore};
use prescale::forecast::Model;
use prescale::plan::{
    NodePlanner, NodeState, PoolSpec, ReplicaPlanner, Resources, WorkloadInput, WorkloadLoad,
    WorkloadSpec,
};
use prescale::series::SeriesKey;
use prescale::shard::ShardConfig;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

const SERIES: usize = 100_000;
const WORKLOADS: usize = 10_000;
const NODES: usize = 2_000;
const STEP: i64 = 300;
const HISTORY: i64 = 2 * 86_400;

fn key(i: usize) -> SeriesKey {
    SeriesKey::new(format!(
        "cpu{{pod=\"p{}\",workload=\"w{}\"}}",
        i / WORKLOADS,
        i % WORKLOADS
    ))
}

/// A value of series `i` at `ts`: a daily wave of the series' own size and phase, plus noise.
fn value(i: usize, ts: i64, s: &mut u64) -> f64 {
    *s = s
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let u = (*s >> 11) as f64 / (1u64 << 53) as f64;
    let size = 10.0 + (i % 97) as f64 * 3.0;
    let hour = (ts % 86_400) as f64 / 3600.0 + (i % 24) as f64;
    size * (1.0 + 0.5 * (std::f64::consts::TAU * hour / 24.0).sin() + 0.2 * u)
}

/// One shard's share: its series' buffers and its workloads.
struct Share {
    store: SignalStore,
    keys: Vec<(usize, SeriesKey)>,
    specs: Vec<WorkloadSpec>,
}

fn share(shard: ShardConfig, now: i64) -> Share {
    let sig = SignalConfig::new("cpu", "cpu", STEP, HISTORY);
    let mut sig = sig;
    sig.max_series = SERIES;
    let mut store = SignalStore::new(&sig);
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let owned = |i: usize| shard.owns(&format!("w{}", i % WORKLOADS));
    let keys: Vec<(usize, SeriesKey)> = (0..SERIES)
        .filter(|&i| owned(i))
        .map(|i| (i, key(i)))
        .collect();
    let slots = HISTORY / STEP;
    for (i, k) in &keys {
        let points: Vec<(i64, f64)> = (0..slots)
            .map(|j| {
                let ts = now - (slots - 1 - j) * STEP;
                (ts, value(*i, ts, &mut s))
            })
            .collect();
        store.ingest(k.clone(), points);
    }
    let specs = (0..WORKLOADS)
        .filter(|&w| shard.owns(&format!("w{w}")))
        .map(|w| {
            let mut spec = WorkloadSpec::new(&format!("w{w}"), key(w).as_str(), 20.0, 200);
            spec.resources = Resources::new(0.25, 256.0 * 1024.0 * 1024.0);
            spec
        })
        .collect();
    Share { store, keys, specs }
}

/// Times of one cycle's stages, seconds.
#[derive(Default)]
struct Stages {
    ingest: f64,
    copy: f64,
    forecast: f64,
    plan: f64,
    nodes: f64,
}

/// One cycle at `t`; with `nodes`, the node planner runs too.
fn cycle(
    sh: &mut Share,
    model: &Model,
    planner: &mut ReplicaPlanner,
    nodes: Option<(&mut NodePlanner, &PoolSpec, &[NodeState])>,
    t: i64,
    stages: &mut Stages,
) -> usize {
    let mut s = t as u64;
    let t0 = Instant::now();
    for (i, k) in &sh.keys {
        sh.store.ingest(k.clone(), [(t, value(*i, t, &mut s))]);
    }
    let t1 = Instant::now();
    // Rings are read in place by the forecast (no copy of every window); the current demand
    // is each ring's newest slot, which is what the last value of a tail copy was.
    let inputs: Vec<(&SeriesKey, &prescale::series::Ring)> =
        sh.store.iter().map(|(k, e)| (k, e.ring())).collect();
    let t2 = Instant::now();
    let forecasts = model.forecast_rings(&inputs);
    let by_key: HashMap<&SeriesKey, (Option<&prescale::forecast::Forecast>, f64)> = inputs
        .iter()
        .zip(&forecasts)
        .map(|(&(k, r), f)| {
            let newest = r.newest_timestamp().and_then(|ts| r.get(ts));
            (k, (f.as_ref(), newest.unwrap_or(f64::NAN)))
        })
        .collect();
    let t3 = Instant::now();
    let mut loads = Vec::with_capacity(sh.specs.len());
    for spec in &sh.specs {
        let (f, current) = by_key[&spec.demand];
        let input = WorkloadInput {
            current_demand: Some(current),
            forecast: f,
            ..WorkloadInput::new(t, 3)
        };
        let d = planner.plan(spec, &input);
        loads.push(WorkloadLoad::new(
            spec,
            d.to,
            f.and_then(|f| f.quantile(spec.quantile)),
        ));
    }
    let t4 = Instant::now();
    let mut n = loads.len();
    if let Some((np, pool, states)) = nodes {
        n += black_box(np.plan(t, std::slice::from_ref(pool), states, &loads)).len();
    }
    let t5 = Instant::now();
    stages.ingest += (t1 - t0).as_secs_f64();
    stages.copy += (t2 - t1).as_secs_f64();
    stages.forecast += (t3 - t2).as_secs_f64();
    stages.plan += (t4 - t3).as_secs_f64();
    stages.nodes += (t5 - t4).as_secs_f64();
    n
}

fn bench(c: &mut Criterion) {
    let model = Model::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/web.model"))
        .expect("models/web.model loads");
    assert_eq!(model.spec.step, STEP);
    let now = 1_700_006_400 - 1_700_006_400 % STEP;
    let pool = PoolSpec::new(
        "general",
        Resources::new(32.0, 128.0 * (1u64 << 30) as f64),
        4000,
    );
    let states: Vec<NodeState> = (0..NODES)
        .map(|n| NodeState {
            name: format!("node-{n:04}"),
            pool: "general".into(),
            replicas: (0..WORKLOADS)
                .filter(|w| w % NODES == n)
                .map(|w| (format!("w{w}"), 3))
                .collect(),
            ..NodeState::default()
        })
        .collect();

    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    let mut one = share(ShardConfig::default(), now);
    let bytes = one.store.memory_bytes();
    let points = SERIES * one.store.capacity();
    eprintln!(
        "[scale] {SERIES} series × {} slots: {:.1} MB of buffers ({:.2} bytes/point)",
        one.store.capacity(),
        bytes as f64 / 1e6,
        bytes as f64 / points as f64
    );
    let mut planner = ReplicaPlanner::new();
    let mut np = NodePlanner::new();
    let mut t = now;
    let mut stages = Stages::default();
    t += STEP;
    cycle(
        &mut one,
        &model,
        &mut planner,
        Some((&mut np, &pool, &states)),
        t,
        &mut stages,
    );
    eprintln!(
        "[scale] one cycle's stages: ingest {:.0} ms, ring views {:.0} ms, forecast {:.0} ms, \
         plan workloads {:.0} ms, plan nodes {:.0} ms",
        stages.ingest * 1e3,
        stages.copy * 1e3,
        stages.forecast * 1e3,
        stages.plan * 1e3,
        stages.nodes * 1e3
    );
    g.bench_function("one process: 100k series, 10k workloads, 2k nodes", |b| {
        b.iter(|| {
            t += STEP;
            cycle(
                &mut one,
                &model,
                &mut planner,
                Some((&mut np, &pool, &states)),
                t,
                &mut stages,
            )
        })
    });
    drop(one);
    for n in [1u32, 2, 4] {
        let mut sh = share(ShardConfig::new(n, 0), now);
        eprintln!(
            "[scale] shard 0 of {n}: {} series, {} workloads",
            sh.keys.len(),
            sh.specs.len()
        );
        let mut planner = ReplicaPlanner::new();
        let mut t = now;
        g.bench_function(format!("one shard of {n}, workloads only"), |b| {
            b.iter(|| {
                t += STEP;
                cycle(
                    &mut sh,
                    &model,
                    &mut planner,
                    None,
                    t,
                    &mut Stages::default(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
