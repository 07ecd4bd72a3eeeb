//! Retraining as the live loop runs it ([`Retrainer`]: a candidate trained on all but the
//! newest fifth, scored against the current model there, refitted on everything when it wins),
//! at the size the loop hands it at most by default (`run.retrain_max_points`, 1,000,000
//! points, a spread sample of a larger fleet).
//!
//! What it costs at that size is printed once before criterion runs, with a counting global
//! allocator: the peak bytes live above what was live before the series were made (the series
//! handed over included, as the loop copies them out of its rings), and the wall time. Criterion
//! then times one contest on `RETRAIN_BENCH_SMALL` points (default 100,000) so `cargo bench`
//! stays short. `RETRAIN_BENCH_POINTS` changes the printed size (e.g. 500000 for a quick look).

use criterion::{criterion_group, criterion_main, Criterion};
use prescale::forecast::{Model, Retrainer, TrainOptions};
use prescale::series::{Series, SeriesKey};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/common/counting.rs"]
mod counting;
#[path = "common/load.rs"]
mod load;

const STEP: i64 = 300;
/// A week at 5 minutes: what the loop's rings hold for the weekly features.
const WEEK: usize = 7 * 288;

/// `points` points as series of a week each (the last one shorter), named `prefix-<i>`.
fn fleet(prefix: &str, points: usize, seed: u64) -> Vec<Series> {
    let mut s = seed;
    let start = 1_704_067_200;
    (0..points.div_ceil(WEEK))
        .map(|i| {
            let n = WEEK.min(points - i * WEEK);
            Series {
                key: SeriesKey::new(format!("{prefix}-{i}")),
                start,
                step: STEP,
                values: (0..n)
                    .map(|k| load::value(i, start + k as i64 * STEP, &mut s))
                    .collect(),
            }
        })
        .collect()
}

/// The model being challenged: trained on noise alone, so every point handed over is unseen,
/// the candidate wins and the whole contest runs, the refit on everything included.
fn current() -> Arc<Model> {
    let mut s = 9u64;
    let noise = Series {
        key: SeriesKey::new("noise"),
        start: 1_704_067_200,
        step: STEP,
        values: (0..4 * WEEK)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                1000.0 * (s >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect(),
    };
    let opts = TrainOptions::new(STEP, 900);
    Arc::new(Model::train(&[noise], &opts).expect("trains"))
}

/// One retraining of `series` against `current`, to its end; whether the candidate won.
async fn contest(current: &Arc<Model>, series: Vec<Series>) -> bool {
    let mut r = Retrainer::new(Some(1));
    r.start(0);
    let mut series = Some(series);
    let mut hand = |_| series.take().unwrap_or_default();
    let mut won = r.poll(1, current, &mut hand).await.is_some();
    while r.running() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        won |= r.poll(1, current, &mut hand).await.is_some();
    }
    won
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

fn env_points(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The printed measurement: peak bytes and wall time of one contest on `points` points.
fn measure_once(rt: &tokio::runtime::Runtime, current: &Arc<Model>, points: usize) {
    let _alone = counting::alone();
    let t0 = Instant::now();
    let ((handed, won), peak) = counting::peak_of(|| {
        let series = fleet("load", points, 1);
        let handed: usize = series.iter().map(|s| s.values.len()).sum();
        (handed, rt.block_on(contest(current, series)))
    });
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "retraining {handed} points ({} series of a week at 5 min): peak {:.0} MiB live above \
         the start ({:.0} bytes a point), {secs:.1} s wall, candidate {}",
        handed.div_ceil(WEEK),
        peak as f64 / (1 << 20) as f64,
        peak as f64 / handed as f64,
        if won { "won" } else { "lost" }
    );
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let current = current();
    measure_once(
        &rt,
        &current,
        env_points(
            "RETRAIN_BENCH_POINTS",
            prescale::config::DEFAULT_RETRAIN_MAX_POINTS,
        ),
    );
    let small = env_points("RETRAIN_BENCH_SMALL", 100_000);
    let mut g = c.benchmark_group("retrain");
    g.sample_size(10);
    g.bench_function(format!("contest_{small}_points"), |b| {
        b.iter(|| rt.block_on(contest(&current, fleet("load", small, 1))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
