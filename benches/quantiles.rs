//! The forest's quantile path at the live loop's size, on one thread: the shipped model
//! (`models/web.model`: 100 trees, depth 12, up to 16 atoms per leaf) on the feature rows of
//! 2,048 synthetic series like the scale bench's, read at the model's calibrated
//! p50/p90/p95/p99.
//!
//! * `walk only`: the conditional mean, the same blocked tree walk without the merge, so
//!   `quantiles − walk only` is what merging the leaves costs;
//! * `quantiles`: the walk plus the merge of each row's 100 leaf records;
//! * `forecast_rings`: the live loop's whole per-series path (features from the ring, walk,
//!   merge, units), as `Model::forecast_rings` runs it each cycle.
//!
//! Everything runs on one thread (the quantile paths on the calling thread, `forecast_rings`
//! in a one-thread rayon pool), and the time reported is the process's CPU time, not wall time:
//! on a machine shared with other builds, wall time mostly measures the others. Divide by
//! 2,048 for one series.

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_seconds;
#[path = "common/load.rs"]
mod load;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use load::value;
use prescale::forecast::{features, Model};
use prescale::series::{Ring, SeriesKey};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

const SERIES: usize = 2048;
const STEP: i64 = 300;

/// CPU time of `iters` calls of `f`.
fn cpu_time(iters: u64, mut f: impl FnMut()) -> Duration {
    let c0 = cpu_seconds();
    for _ in 0..iters {
        f();
    }
    Duration::from_secs_f64((cpu_seconds() - c0).max(0.0))
}

fn bench(c: &mut Criterion) {
    let model = Model::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/web.model"))
        .expect("models/web.model loads");
    assert_eq!(model.spec.step, STEP);
    let need = model.spec.history_needed();
    let now = 1_700_006_400 - 1_700_006_400 % STEP;
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let keys: Vec<SeriesKey> = (0..SERIES)
        .map(|i| SeriesKey::new(format!("s{i}")))
        .collect();
    let rings: Vec<Ring> = (0..SERIES)
        .map(|i| {
            let mut r = Ring::new(STEP, need);
            for j in 0..need as i64 {
                let ts = now - (need as i64 - 1 - j) * STEP;
                r.push(ts, value(i, ts, &mut s));
            }
            r
        })
        .collect();
    let mut x = Vec::with_capacity(SERIES * model.spec.n_features());
    let mut buf = Vec::new();
    for r in &rings {
        r.tail_into(need, &mut buf);
        let start = now - (buf.len() as i64 - 1) * STEP;
        features::latest(&model.spec, &buf, start, &mut x).expect("a full row");
    }
    let x = ndarray::Array2::from_shape_vec((SERIES, model.spec.n_features()), x).expect("rows");
    let levels: Vec<f64> = model
        .quantiles
        .iter()
        .map(|&q| model.calibrated_level(q))
        .collect();
    let views: Vec<(&SeriesKey, &Ring)> = keys.iter().zip(&rings).collect();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");

    let mut g = c.benchmark_group("quantiles");
    g.sample_size(20);
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("walk only (mean), 2048 rows", |b| {
        b.iter_custom(|n| {
            one.install(|| {
                cpu_time(n, || {
                    drop(black_box(model.forest.try_predict_mean(x.view())))
                })
            })
        })
    });
    let flat = x.as_slice().expect("standard layout");
    let mut out = vec![0.0; SERIES * levels.len()];
    g.bench_function("quantiles p50/p90/p95/p99, 2048 rows", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
                model
                    .forest
                    .predict_quantiles_block(black_box(flat), &levels, &mut out);
                black_box(&out);
            })
        })
    });
    g.bench_function("forecast_rings, 2048 series", |b| {
        b.iter_custom(|n| {
            one.install(|| cpu_time(n, || drop(black_box(model.forecast_rings(&views)))))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
