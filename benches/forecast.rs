//! Forecasting speed: features over a long history, and one live forecast (features from a
//! ring + p50/p90/p95/p99) with a full-size model (100 trees, depth 12) trained on `data/`.

use criterion::{criterion_group, criterion_main, Criterion};
use prescale::forecast::{features, Model, TrainOptions};
use prescale::series::{csv_files, read_history, HistoryOptions, Ring};
use std::hint::black_box;
use std::path::PathBuf;

fn bundled() -> Vec<prescale::series::Series> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    let files = csv_files(&dir).expect("data/ lists");
    read_history(&files, &HistoryOptions::default())
        .expect("bundled data reads")
        .0
}

fn bench(c: &mut Criterion) {
    let series = bundled();
    let opts = TrainOptions::new(300, 900);
    let t = std::time::Instant::now();
    let model = Model::train(&series, &opts).expect("trains");
    eprintln!(
        "trained 100 trees on {} rows of data/ in {:.2}s (incl. calibration refit)",
        model.meta.rows,
        t.elapsed().as_secs_f64()
    );
    let long = series.iter().max_by_key(|s| s.len()).expect("a series");

    let mut g = c.benchmark_group("forecast");
    g.sample_size(10);
    g.bench_function(format!("features, {} origins", long.len()), |b| {
        b.iter(|| {
            features::compute(
                &model.spec,
                black_box(&long.values),
                long.start,
                0..long.len(),
            )
        })
    });

    // The live path: a ring holding a week of 5-minute history, the newest values copied out,
    // features computed, forest queried.
    let need = model.spec.history_needed();
    let mut ring = Ring::new(300, need);
    for (i, v) in long.values.iter().enumerate() {
        ring.push(long.timestamp(i), *v);
    }
    let start = ring.oldest_timestamp().unwrap_or(0);
    let mut buf = Vec::with_capacity(need);
    g.sample_size(50);
    g.bench_function(
        "live forecast (ring → features → p50/p90/p95/p99)",
        |b| {
            b.iter(|| {
                ring.tail_into(need, &mut buf);
                black_box(model.forecast_latest(&long.key, &buf, start))
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
