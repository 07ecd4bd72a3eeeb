//! Collector targets: parsing a 1,000 × 1,440 `query_range` answer (≤ 50 ms) and the buffer
//! footprint (≤ 8 bytes per stored point, all overhead included).
//!
//! The parse group also reads the same body with `serde_json` into the same wire types, so the
//! hand-written reader's claim to be worth its code is measured, not asserted.

use criterion::{black_box, criterion_group, BatchSize, Criterion};
use prescale::collect::prometheus::{parse_body, QueryData};
use prescale::collect::SignalConfig;
use prescale::collect::SignalStore;
use prescale::series::SeriesKey;
use serde::Deserialize;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// A body shaped like Prometheus': 1-minute steps, values with Go's float formatting.
fn query_range_body(series: usize, points: usize) -> Vec<u8> {
    let mut s = String::with_capacity(series * points * 26);
    s.push_str(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for i in 0..series {
        if i > 0 {
            s.push(',');
        }
        write!(
            s,
            r#"{{"metric":{{"instance":"node-{i:04}.example:9100","job":"node"}},"values":["#
        )
        .unwrap();
        for p in 0..points {
            if p > 0 {
                s.push(',');
            }
            let v = 0.25 + ((i * 31 + p * 7) % 1000) as f64 / 1234.5678;
            write!(s, "[{},\"{}\"]", 1_700_000_000 + p * 60, v).unwrap();
        }
        s.push_str("]}");
    }
    s.push_str("]}}");
    s.into_bytes()
}

fn parse(c: &mut Criterion) {
    let body = query_range_body(1000, 1440);
    // Both arms must read the same thing for the comparison to mean anything.
    let by_serde: SerdeEnvelope = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        by_serde.data,
        Some(parse_body("bench", 200, &body).unwrap().data)
    );
    let mut g = c.benchmark_group("parse");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Bytes(body.len() as u64));
    g.bench_function("query_range_1000x1440", |b| {
        b.iter(|| {
            let a = parse_body("bench", 200, black_box(&body)).unwrap();
            match a.data {
                QueryData::Matrix(m) => assert_eq!(m.len(), 1000),
                _ => unreachable!(),
            }
        })
    });
    // The same work timed in this thread's CPU time: on a shared 2-core machine wall time
    // mostly measures the neighbours.
    g.bench_function("query_range_1000x1440_cpu_time", |b| {
        b.iter_custom(|iters| {
            let start = thread_cpu();
            for _ in 0..iters {
                black_box(parse_body("bench", 200, black_box(&body)).unwrap());
            }
            thread_cpu().saturating_sub(start)
        })
    });
    g.bench_function("query_range_1000x1440_serde_json", |b| {
        b.iter(|| {
            let e: SerdeEnvelope = serde_json::from_slice(black_box(&body)).unwrap();
            match e.data {
                Some(QueryData::Matrix(m)) => assert_eq!(m.len(), 1000),
                _ => unreachable!(),
            }
        })
    });
    g.bench_function("query_range_1000x1440_serde_json_cpu_time", |b| {
        b.iter_custom(|iters| {
            let start = thread_cpu();
            for _ in 0..iters {
                let e: SerdeEnvelope = serde_json::from_slice(black_box(&body)).unwrap();
                black_box(e);
            }
            thread_cpu().saturating_sub(start)
        })
    });
    g.finish();
}

/// The envelope fields `parse_body` reads, for the `serde_json` arm; unknown keys are skipped
/// as the hand reader skips them.
#[derive(Deserialize)]
#[allow(dead_code)] // read only to make serde do the same work as the hand reader
struct SerdeEnvelope {
    status: String,
    data: Option<QueryData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

fn parse_only(arm: &str) {
    let body = query_range_body(1000, 1440);
    let series = match arm {
        "hand" => match parse_body("bench", 200, &body).unwrap().data {
            QueryData::Matrix(m) => m.len(),
            _ => unreachable!(),
        },
        "serde" => match serde_json::from_slice::<SerdeEnvelope>(&body).unwrap().data {
            Some(QueryData::Matrix(m)) => m.len(),
            _ => unreachable!(),
        },
        _ => 0,
    };
    println!("{arm}: {series} series from {} bytes", body.len());
}

/// This thread's CPU time (Linux), or wall time elsewhere.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_else(|| START.with(|t| t.elapsed()))
}

thread_local! {
    static START: Instant = Instant::now();
}

fn ingest(c: &mut Criterion) {
    let cfg = SignalConfig::new("cpu", "q", 60, 86_400);
    let keys: Vec<SeriesKey> = (0..1000)
        .map(|i| SeriesKey::new(format!("cpu{{instance=\"node-{i:04}\"}}")))
        .collect();
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.bench_function("ingest_1000x1440", |b| {
        b.iter(|| {
            let mut s = SignalStore::new(&cfg);
            for k in &keys {
                s.ingest(k.clone(), (0..1440).map(|p| (p as i64 * 60, p as f64)));
            }
            black_box(s.len())
        })
    });
    g.finish();
}

/// A label explosion against `max_series`: twice `max_series` new series offered to a store
/// already full, whose series are all fresh (every newcomer refused) or all stale (the first
/// half evict them, the second half are refused). The cost should follow the newcomers, not
/// newcomers × series held.
fn ingest_past_max_series(c: &mut Criterion) {
    const MAX: usize = 10_000;
    let mut cfg = SignalConfig::new("cpu", "q", 60, 3600);
    cfg.max_series = MAX;
    let mut full = SignalStore::new(&cfg);
    for i in 0..MAX {
        full.ingest(
            SeriesKey::new(format!("cpu{{pod=\"held-{i:05}\"}}")),
            [(0, 1.0)],
        );
    }
    let newcomers: Vec<SeriesKey> = (0..2 * MAX)
        .map(|i| SeriesKey::new(format!("cpu{{pod=\"new-{i:05}\"}}")))
        .collect();
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    for (held, now) in [("fresh", 0), ("stale", 86_400)] {
        let mut start = full.clone();
        start.mark_stale(now);
        g.bench_function(format!("full_{MAX}_ingest_{}_new_{held}", 2 * MAX), |b| {
            b.iter_batched(
                || start.clone(),
                |mut s| {
                    for k in &newcomers {
                        s.ingest(k.clone(), [(now, 1.0)]);
                    }
                    s
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Prints the footprint of 10,000 series × 7 days at 5 minutes (not a timing; the figure the
/// collector's note reports).
fn report_memory() {
    let cfg = SignalConfig::new("cpu", "q", 300, 7 * 86_400);
    let mut s = SignalStore::new(&cfg);
    let points_per_series = 7 * 86_400 / 300;
    for i in 0..10_000 {
        s.ingest(
            SeriesKey::new(format!("cpu{{instance=\"node-{i:05}.example:9100\"}}")),
            (0..points_per_series).map(|p| (p as i64 * 300, 1.0)),
        );
    }
    let bytes = s.memory_bytes();
    let points = 10_000 * points_per_series;
    println!(
        "memory: 10,000 series x 7 d at 5 min = {points} points in {:.1} MiB = {:.2} bytes/point \
         (ring capacity {} slots/series)",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / points as f64,
        s.capacity()
    );
    assert!(bytes as f64 / points as f64 <= 8.0);
}

criterion_group!(benches, parse, ingest, ingest_past_max_series);

fn main() {
    // `PARSE_ONLY=hand|serde|none`: build the body, parse it once with one reader (or not at
    // all) and exit, for `valgrind --tool=callgrind`: instruction counts do not depend on the
    // neighbours on a shared machine the way times do; `none` is the baseline to subtract.
    if let Ok(arm) = std::env::var("PARSE_ONLY") {
        parse_only(&arm);
        return;
    }
    report_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
