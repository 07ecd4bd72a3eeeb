//! Simulator speed: a 30-day, 1-minute trace (43,200 steps) through the HPA and through
//! prescale's planner, and 100,000 generated tasks on 1,000 nodes under each queue discipline.

use criterion::{criterion_group, criterion_main, Criterion};
use prescale::forecast::{Model, TrainOptions};
use prescale::series::{Series, SeriesKey};
use prescale::sim::batch::queue::{self, Discipline, Placement, QueueOptions};
use prescale::sim::batch::tasks;
use prescale::sim::replay::scenario::{Knobs, PolicyKind, Scenario, ScenarioOptions, Workload};
use std::hint::black_box;

/// 30 days of 1-minute demand with a daily cycle, a weekly dip, bursts and noise, from a
/// fixed-seed LCG so every run benches the same trace.
fn month() -> Series {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut burst = 0.0;
    let values = (0..43_200 + 7 * 1440)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            let hour = (i % 1440) as f64 / 60.0;
            let weekend = if (i / 1440) % 7 >= 5 { 0.7 } else { 1.0 };
            if u > 0.999 {
                burst = 200.0;
            }
            burst *= 0.97;
            weekend
                * (400.0
                    + 300.0
                        * (std::f64::consts::TAU * (hour - 8.0) / 24.0)
                            .sin()
                            .max(-0.6))
                + 60.0 * u
                + burst
        })
        .collect();
    Series {
        key: SeriesKey::new("bench"),
        start: 1_704_067_200,
        step: 60,
        values,
    }
}

fn workload() -> Workload {
    Workload {
        name: "bench".into(),
        replica_capacity: 40.0,
        boot_time: 180,
        min_replicas: 1,
        max_replicas: 200,
        tolerance: 0.1,
        scale_down_window: 300,
        spec: None,
    }
}

fn replica(c: &mut Criterion) {
    let series = month();
    // The first week is history; the 30 days after it are simulated.
    let split = 7 * 1440;
    let opts = ScenarioOptions::new(split, workload());
    let plain = Scenario::new(&series, &opts, None).expect("scenario");
    assert_eq!(plain.demand.len(), 43_200);
    let mut g = c.benchmark_group("replica, 43,200 1-minute steps");
    g.sample_size(10);
    g.bench_function("reactive (HPA)", |b| {
        b.iter(|| {
            black_box(
                plain
                    .run(PolicyKind::Reactive, &Knobs::default())
                    .expect("runs"),
            )
        })
    });
    g.bench_function("static", |b| {
        b.iter(|| {
            black_box(
                plain
                    .run(PolicyKind::Static, &Knobs::default())
                    .expect("runs"),
            )
        })
    });
    g.finish();

    // A full-size model (100 trees, depth 12, 15-minute window) trained on the history week.
    let t = std::time::Instant::now();
    let model =
        Model::train(&[series.slice(0..split)], &TrainOptions::new(60, 900)).expect("trains");
    eprintln!(
        "trained 100 trees on {} rows in {:.1}s",
        model.meta.rows,
        t.elapsed().as_secs_f64()
    );
    let mut g = c.benchmark_group("replica, 43,200 1-minute steps");
    g.sample_size(10);
    // Everything the predictive policy costs: one batch of 43,200 forecasts, then the
    // planner and accuracy tracker at every step.
    g.bench_function("predictive (forecasts + planner)", |b| {
        b.iter(|| {
            let s = Scenario::new(&series, &opts, Some(&model)).expect("scenario");
            black_box(
                s.run(PolicyKind::Predictive, &Knobs::default())
                    .expect("runs"),
            )
        })
    });
    let with = Scenario::new(&series, &opts, Some(&model)).expect("scenario");
    g.bench_function("predictive (planner only, forecasts precomputed)", |b| {
        b.iter(|| {
            black_box(
                with.run(PolicyKind::Predictive, &Knobs::default())
                    .expect("runs"),
            )
        })
    });
    g.finish();
}

fn task_queues(c: &mut Criterion) {
    let nodes = tasks::generate_nodes(1000);
    let list = tasks::generate_tasks(100_000, &nodes, 0.85, 42);
    let opts = QueueOptions::default();
    let mut g = c.benchmark_group("queue, 100,000 tasks on 1,000 nodes, least-loaded");
    g.sample_size(10);
    for d in Discipline::ALL {
        g.bench_function(d.as_str(), |b| {
            b.iter(|| {
                black_box(
                    queue::run(&list, &nodes, d, Placement::LeastLoaded, &opts).expect("runs"),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, replica, task_queues);
criterion_main!(benches);
