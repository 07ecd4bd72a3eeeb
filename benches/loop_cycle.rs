//! The scale target of issue #11 run through the live loop itself: one process, 100,000
//! series, 10,000 workloads, 2,000 nodes, one steady-state cycle of `prescale run` in dry-run.
//!
//! `benches/scale.rs` models the cycle by calling its stages; this bench runs the loop's own
//! cycle ([`prescale::Stepper`], which runs what `run`'s loop runs each tick), so everything the
//! loop does per cycle is in it: the poll through the collector (a synthetic source stands in
//! for Prometheus' answer, labels and points per series, without HTTP or JSON), the
//! forecasts, the online calibration and accuracy tracking, the cold-start stages, the replica
//! and node planners, pool sharing, the reasons, the act stage writing every decision to the
//! decision log (in a temporary directory), the exporter's snapshot and metrics update, the
//! own-model contests' and retraining's turns and the persisted state saved (every 60 s).
//!
//! The fleet is `benches/scale.rs`'s (`common/fleet.rs`); the model is the shipped
//! `models/web.model`, as there. Rings hold eight days (backfilled from the source before the
//! first cycle); three cycles warm up the calibration and tracker state before anything is
//! timed. Before criterion runs, a few cycles are timed in wall and CPU time, with the part
//! the loop itself reports as its cycle duration (the `prescale_cycle_duration_seconds`
//! metric: poll to snapshot) and what one `/metrics` scrape costs, and the process' memory.
//! Run with `cargo bench --bench loop_cycle -- --measurement-time 5` (criterion's options).

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/fleet.rs"]
mod fleet;
#[path = "common/load.rs"]
mod load;

use criterion::{criterion_group, criterion_main, Criterion};
use fleet::{Fleet, Synthetic};
use prescale::config::Config;
use prescale::Stepper;
use std::path::PathBuf;
use std::time::Instant;

/// The `prescale` binary's allocator (`src/main.rs` says why), so this measures its cycle.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FLEET: Fleet = Fleet {
    series: 100_000,
    workloads: 10_000,
    nodes: 2_000,
};
const STEP: i64 = 300;
/// Cycles run before any timing, so calibration, tracker and planner state exist.
const WARM_UP: usize = 3;
/// Cycles timed before criterion, for the breakdown printed.
const TIMED: usize = 3;

/// The process' resident memory now and at its peak, MB (Linux; NaN elsewhere).
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// The sum of the loop's own cycle durations so far, from a `/metrics` encoding.
fn cycle_seconds_sum(text: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix("prescale_cycle_duration_seconds_sum "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/web.model");
    let path = dir.path().join("loop_cycle.toml");
    let cfg = Config::from_toml(&path, &FLEET.config(&model, dir.path())).expect("config");
    let start = 1_700_006_400 - 1_700_006_400 % STEP;
    let setup = Instant::now();
    let mut stepper = rt
        .block_on(Stepper::new(
            cfg,
            Synthetic(FLEET),
            start,
            Box::new(std::io::sink()),
        ))
        .expect("the loop starts");
    let mut t = start;
    let mut decisions = 0;
    for _ in 0..WARM_UP {
        decisions = rt.block_on(stepper.cycle(t)).expect("a cycle").len();
        t += STEP;
    }
    assert!(
        decisions > FLEET.workloads,
        "{decisions} decisions: every workload and the pool should have one"
    );
    let (rss, peak) = rss_mb();
    eprintln!(
        "[loop_cycle] {} series, {} workloads, {} nodes: set up (backfill of 8 days) and {WARM_UP} \
         warm-up cycles in {:.1} s; {decisions} decisions a cycle; RSS {rss:.0} MB (peak {peak:.0} MB)",
        FLEET.series,
        FLEET.workloads,
        FLEET.nodes,
        setup.elapsed().as_secs_f64()
    );

    let metrics = stepper.export().clone();
    let scrape = Instant::now();
    let before = cycle_seconds_sum(&metrics.metrics().encode_text());
    let scrape = scrape.elapsed().as_secs_f64();
    // The classic format is the OpenMetrics text converted: how much of a scrape is each.
    let om = Instant::now();
    let om_bytes = metrics.metrics().encode().len();
    let om = om.elapsed().as_secs_f64();
    let (wall0, cpu0) = (Instant::now(), cpu::cpu_seconds());
    for _ in 0..TIMED {
        rt.block_on(stepper.cycle(t)).expect("a cycle");
        t += STEP;
    }
    let wall = wall0.elapsed().as_secs_f64() / TIMED as f64;
    let cpu = (cpu::cpu_seconds() - cpu0) / TIMED as f64;
    let own = (cycle_seconds_sum(&metrics.metrics().encode_text()) - before) / TIMED as f64;
    eprintln!(
        "[loop_cycle] one cycle, mean of {TIMED}: wall {:.0} ms (CPU {:.0} ms); of it the loop's \
         own cycle duration metric (poll to snapshot) {:.0} ms, the rest (metrics update, \
         retraining and own-model turns, state saved) {:.0} ms; one /metrics scrape {:.0} ms \
         (classic format; the OpenMetrics encoding it converts, {:.1} MB, {:.0} ms)",
        wall * 1e3,
        cpu * 1e3,
        own * 1e3,
        (wall - own) * 1e3,
        scrape * 1e3,
        om_bytes as f64 / 1e6,
        om * 1e3
    );

    let mut g = c.benchmark_group("loop_cycle");
    g.sample_size(10);
    g.bench_function("one process: 100k series, 10k workloads, 2k nodes", |b| {
        b.iter(|| {
            let n = rt.block_on(stepper.cycle(t)).expect("a cycle").len();
            t += STEP;
            n
        })
    });
    g.finish();
    let (rss, peak) = rss_mb();
    eprintln!("[loop_cycle] after measuring: RSS {rss:.0} MB (peak {peak:.0} MB)");
    stepper.finish(t - STEP).expect("the loop finishes");
}

criterion_group!(benches, bench);
criterion_main!(benches);
