//! The scale targets of issue #11: one process with 100,000 series, 10,000 workloads and
//! 2,000 nodes, a full cycle from memory; and one shard's cycle for N = 1, 2, 4 replicas.
//!
//! A cycle here is what the live loop does after its HTTP poll returns: ingest each series'
//! new sample into its ring (the collector's store), compute features and forecasts for every
//! series in one parallel batch read straight from the rings (`Model::forecast_rings`, the
//! shipped `models/web.model`), feed each series' new sample to its online calibration and
//! accuracy tracker and correct and record its forecast (the live loop's per-series
//! bookkeeping, one thread, as there), plan replicas for every workload and, in the
//! one-process case, plan nodes.
//!
//! Each workload owns ten series (its demand is the first); a shard holds the series of the
//! workloads rendezvous hashing gives it, as a signal narrowed by a workload label would
//! answer. (`prescale run` with `[shard]` keeps only the demand series, so a real shard does
//! less than this.) Rings hold the eight days of 5-minute history the weekly features want
//! (0.9 GB at 100,000 series): the length held costs time too (with two-day rings the cycle
//! was ~10 % faster), as the store is larger than any cache. Before criterion runs, each stage of the one-process cycle is timed over
//! three cycles, wall and CPU time, and printed, to show where the time goes.

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_seconds;
#[path = "common/load.rs"]
mod load;
use criterion::{criterion_group, criterion_main, Criterion};
use load::value;
use prescale::collect::{SignalConfig, SignalStore};
use prescale::forecast::{Forecast, Model, OnlineCalibration, OnlineConfig};
use prescale::plan::{
    AccuracyConfig, AccuracyTracker, NodePlanner, NodeState, PoolSpec, ReplicaPlanner, Resources,
    WorkloadInput, WorkloadLoad, WorkloadSpec,
};
use prescale::series::{SeriesHasher, SeriesKey};
use prescale::shard::ShardConfig;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

/// The `prescale` binary's allocator (`src/main.rs` says why), so the stages cost what they do there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SERIES: usize = 100_000;
const WORKLOADS: usize = 10_000;
const NODES: usize = 2_000;
const STEP: i64 = 300;
const HISTORY: i64 = 8 * 86_400;

fn key(i: usize) -> SeriesKey {
    SeriesKey::new(format!(
        "cpu{{pod=\"p{}\",workload=\"w{}\"}}",
        i / WORKLOADS,
        i % WORKLOADS
    ))
}

/// One shard's share: its series' buffers, their calibration and accuracy state, and its
/// workloads.
struct Share {
    store: SignalStore,
    online: OnlineCalibration,
    accuracy: AccuracyTracker,
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
    Share {
        store,
        online: OnlineCalibration::new(OnlineConfig::default()),
        accuracy: AccuracyTracker::new(AccuracyConfig::default()),
        keys,
        specs,
    }
}

/// Wall and CPU times of cycles' stages (ingest, ring views, forecast, calibrate and track,
/// plan workloads, plan nodes), seconds, summed over the cycles timed.
#[derive(Default)]
struct Stages {
    wall: [f64; 6],
    cpu: [f64; 6],
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
    let mut cpu = [0.0; 7];
    cpu[0] = cpu_seconds();
    let t0 = Instant::now();
    for (i, k) in &sh.keys {
        sh.store.ingest(k.clone(), [(t, value(*i, t, &mut s))]);
    }
    let t1 = Instant::now();
    cpu[1] = cpu_seconds();
    // Rings are read in place by the forecast (no copy of every window); the current demand
    // is each ring's newest slot, which is what the last value of a tail copy was.
    let inputs: Vec<(&SeriesKey, &prescale::series::Ring)> =
        sh.store.iter().map(|(k, e)| (k, e.ring())).collect();
    let t2 = Instant::now();
    cpu[2] = cpu_seconds();
    let forecasts = model.forecast_rings(&inputs);
    let t3 = Instant::now();
    cpu[3] = cpu_seconds();
    // The live loop's bookkeeping per series: the new sample to the online calibration and
    // the accuracy tracker, the forecast corrected (what is planned with) and recorded.
    let mut newest = Vec::with_capacity(inputs.len());
    let mut corrected: Vec<Option<Forecast>> = Vec::with_capacity(inputs.len());
    for (&(k, r), f) in inputs.iter().zip(forecasts) {
        let ts = r.newest_timestamp();
        let v = ts.and_then(|ts| r.get(ts)).unwrap_or(f64::NAN);
        let fresh = ts.filter(|_| v.is_finite()).map(|ts| (ts, v));
        let f = sh.online.update(k, fresh, f);
        sh.accuracy.update(k, fresh, f.as_ref());
        corrected.push(f);
        newest.push(v);
    }
    // Keyed and hashed as the loop's own map of forecasts by series.
    let by_key: HashMap<&SeriesKey, (Option<&Forecast>, f64), SeriesHasher> = inputs
        .iter()
        .zip(&corrected)
        .zip(&newest)
        .map(|((&(k, _), f), &v)| (k, (f.as_ref(), v)))
        .collect();
    let t4 = Instant::now();
    cpu[4] = cpu_seconds();
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
    let t5 = Instant::now();
    cpu[5] = cpu_seconds();
    let mut n = loads.len();
    if let Some((np, pool, states)) = nodes {
        n += black_box(np.plan(t, std::slice::from_ref(pool), states, &loads)).len();
    }
    let t6 = Instant::now();
    cpu[6] = cpu_seconds();
    for (k, w) in [t0, t1, t2, t3, t4, t5, t6].windows(2).enumerate() {
        stages.wall[k] += (w[1] - w[0]).as_secs_f64();
        stages.cpu[k] += cpu[k + 1] - cpu[k];
    }
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
    // One cycle to warm up (thread-local buffers, the planners' memory), then three timed.
    let mut stages = Stages::default();
    const TIMED: usize = 3;
    for k in 0..=TIMED {
        if k == 1 {
            stages = Stages::default();
        }
        t += STEP;
        cycle(
            &mut one,
            &model,
            &mut planner,
            Some((&mut np, &pool, &states)),
            t,
            &mut stages,
        );
    }
    let ms = |v: &[f64; 6]| v.map(|x| x * 1e3 / TIMED as f64);
    let (w, c) = (ms(&stages.wall), ms(&stages.cpu));
    eprintln!(
        "[scale] one cycle's stages, mean of {TIMED}, wall (CPU) ms: ingest {:.0} ({:.0}), \
         ring views {:.0} ({:.0}), forecast {:.0} ({:.0}), calibrate and track {:.0} ({:.0}), \
         plan workloads {:.0} ({:.0}), plan nodes {:.0} ({:.0}); cycle {:.0} ({:.0})",
        w[0],
        c[0],
        w[1],
        c[1],
        w[2],
        c[2],
        w[3],
        c[3],
        w[4],
        c[4],
        w[5],
        c[5],
        w.iter().sum::<f64>(),
        c.iter().sum::<f64>(),
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
