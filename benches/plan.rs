//! Planning speed: one full planning cycle (accuracy weight + scale planner for 1,000
//! workloads, then the node planner over 500 nodes), and the accuracy tracker's share of a live
//! cycle for 10,000 series (record one forecast and observe one sample each). The cycle runs
//! the pools' allocation between the two planners as the live loop does; `..._priority`,
//! `_fair`, `_static` and `_market` run it with that policy on and both pools short.
//! `cluster/…` (in `plan/cluster.rs`): a cycle with cluster state read from kube-state-metrics
//! answers (500 nodes, 5,000 pods, 1,000 workloads), from the bodies in memory to decisions.
//!
//! The live cycle's whole budget (features + forecast for 10,000 series + plan) is 250 ms; the
//! planner should take a few milliseconds of it.

#[path = "plan/cluster.rs"]
mod cluster;

use criterion::{criterion_group, criterion_main, Criterion};
use prescale::forecast::Forecast;
use prescale::plan::*;
use prescale::series::SeriesKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

const WORKLOADS: usize = 1_000;
const NODES: usize = 500;

struct Fleet {
    pools: Vec<PoolSpec>,
    specs: Vec<WorkloadSpec>,
    forecasts: Vec<Forecast>,
    demand: Vec<f64>,
    current: Vec<u32>,
    nodes: Vec<NodeState>,
}

/// 1,000 workloads of 2–12 replicas (0.25–1 core, 0.5–2 GiB each) spread, skewed, over 500
/// nodes of 16 cores / 64 GiB in two pools, about half full overall; forecasts a third above or below
/// current demand, so the cycle has scale-ups to place, scale-downs, and some hot nodes.
fn fleet() -> Fleet {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let gib = 1024.0 * 1024.0 * 1024.0;
    let pools: Vec<PoolSpec> = ["general", "memory"]
        .iter()
        .map(|n| {
            let mut p = PoolSpec::new(n, Resources::new(16.0, 64.0 * gib), 400);
            p.min_nodes = 10;
            p
        })
        .collect();
    let mut specs = Vec::new();
    let mut forecasts = Vec::new();
    let mut demand = Vec::new();
    let mut current = Vec::new();
    for i in 0..WORKLOADS {
        let mut s = WorkloadSpec::new(
            &format!("w{i:04}"),
            &format!("rps{{svc=\"w{i:04}\"}}"),
            50.0,
            60,
        );
        s.resources = Resources::new(rng.gen_range(0.25..1.0), rng.gen_range(0.5..2.0) * gib);
        s.pool = Some(pools[i % 2].name.clone());
        s.max_step_up = Some(5);
        let n: u32 = rng.gen_range(2..=12);
        let d = n as f64 * 50.0 * rng.gen_range(0.6..1.0);
        let peak = d * rng.gen_range(0.7..1.4);
        forecasts.push(Forecast {
            key: s.demand.clone(),
            at: 0,
            window: 1 << 30,
            quantiles: vec![
                (0.5, peak * 0.9),
                (0.9, peak),
                (0.95, peak * 1.05),
                (0.99, peak * 1.2),
            ],
        });
        specs.push(s);
        demand.push(d);
        current.push(n);
    }
    let mut nodes: Vec<NodeState> = (0..NODES)
        .map(|j| NodeState {
            name: format!("node-{j:03}"),
            pool: pools[j % 2].name.clone(),
            replicas: Vec::new(),
            ..NodeState::default()
        })
        .collect();
    // Skewed within each pool (low-numbered nodes fuller), so that some nodes run hot and
    // others are nearly empty: every path of the node planner runs.
    for (i, &n) in current.iter().enumerate() {
        let p = i % 2;
        for _ in 0..n {
            let k = (rng.gen::<f64>().powf(1.5) * (NODES / 2) as f64) as usize;
            let j = (2 * k + p).min(NODES - 2 + p);
            let reps = &mut nodes[j].replicas;
            match reps.iter_mut().find(|r| r.0 == specs[i].name) {
                Some(r) => r.1 += 1,
                None => reps.push((specs[i].name.clone(), 1)),
            }
        }
    }
    Fleet {
        pools,
        specs,
        forecasts,
        demand,
        current,
        nodes,
    }
}

fn cycle(
    f: &Fleet,
    pools: &[PoolSpec],
    now: i64,
    acc: &AccuracyTracker,
    replicas: &mut ReplicaPlanner,
    nodes: &mut NodePlanner,
) -> Vec<Decision> {
    let mut out = Vec::with_capacity(WORKLOADS + 64);
    let mut desired = Vec::with_capacity(WORKLOADS);
    for (i, spec) in f.specs.iter().enumerate() {
        let fc = Forecast {
            at: now,
            ..f.forecasts[i].clone()
        };
        let input = WorkloadInput {
            current_demand: Some(f.demand[i]),
            forecast: Some(&fc),
            forecast_weight: acc.weight(&spec.demand),
            ..WorkloadInput::new(now, f.current[i])
        };
        let d = replicas.plan(spec, &input);
        desired.push((d.to, fc.quantile(spec.quantile)));
        out.push(d);
    }
    // As the live loop: the pools' allocation between the two planners.
    black_box(share_pools(pools, &f.specs, &mut out));
    for (d, w) in out.iter().zip(desired.iter_mut()) {
        w.0 = d.to;
    }
    let loads: Vec<WorkloadLoad> = f
        .specs
        .iter()
        .zip(&desired)
        .map(|(s, &(to, peak))| WorkloadLoad::new(s, to, peak))
        .collect();
    out.extend(nodes.plan(now, pools, &f.nodes, &loads));
    out
}

fn bench(c: &mut Criterion) {
    let f = fleet();
    let acc = AccuracyTracker::new(AccuracyConfig::default());
    let mut replicas = ReplicaPlanner::new();
    let mut nodes = NodePlanner::new();
    let first = cycle(&f, &f.pools, 0, &acc, &mut replicas, &mut nodes);
    let count = |k: DecisionKind| first.iter().filter(|d| d.kind == k).count();
    eprintln!(
        "one cycle: {} scale-up, {} scale-down, {} hold, {} place, {} move, {} add-node, {} remove-node",
        count(DecisionKind::ScaleUp),
        count(DecisionKind::ScaleDown),
        count(DecisionKind::Hold),
        count(DecisionKind::Place),
        count(DecisionKind::Move),
        count(DecisionKind::AddNode),
        count(DecisionKind::RemoveNode),
    );

    // The machine is shared: CPU time of this thread says what the cycle costs, whatever
    // else is running (wall time in criterion's figures includes waiting for a core).
    if let Some(before) = thread_cpu_seconds() {
        let mut r = ReplicaPlanner::new();
        let mut n = NodePlanner::new();
        let cycles = 200;
        for k in 0..cycles {
            black_box(cycle(&f, &f.pools, 15 * k, &acc, &mut r, &mut n));
        }
        if let Some(after) = thread_cpu_seconds() {
            eprintln!(
                "CPU time per cycle: {:.2} ms (over {cycles} cycles)",
                (after - before) * 1e3 / cycles as f64
            );
        }
    }

    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    let mut now = 0;
    g.bench_function("cycle_1000_workloads_500_nodes", |b| {
        b.iter(|| {
            now += 15;
            black_box(cycle(&f, &f.pools, now, &acc, &mut replicas, &mut nodes))
        })
    });
    shared(&mut g, &f, &acc);

    // The two halves on their own, to see where the time goes.
    let mut desired = Vec::new();
    for (i, spec) in f.specs.iter().enumerate() {
        let d = replicas.plan(spec, &input(&f, i, now, &acc));
        desired.push((d.to, f.forecasts[i].quantile(spec.quantile)));
    }
    g.bench_function("replicas_1000_workloads", |b| {
        b.iter(|| {
            now += 15;
            for (i, spec) in f.specs.iter().enumerate() {
                black_box(replicas.plan(spec, &input(&f, i, now, &acc)));
            }
        })
    });
    let loads: Vec<WorkloadLoad> = f
        .specs
        .iter()
        .zip(&desired)
        .map(|(s, &(to, peak))| WorkloadLoad::new(s, to, peak))
        .collect();
    g.bench_function("nodes_500_nodes", |b| {
        b.iter(|| {
            now += 15;
            black_box(nodes.plan(now, &f.pools, &f.nodes, &loads))
        })
    });

    let keys: Vec<SeriesKey> = (0..10_000)
        .map(|i| SeriesKey::new(format!("s{i}")))
        .collect();
    let mut tracker = AccuracyTracker::new(AccuracyConfig::default());
    let mut ts = 0;
    // Warm up to steady state: 900 s windows at a 15 s step keep 60 forecasts pending per series.
    for _ in 0..61 {
        ts += 15;
        step_accuracy(&mut tracker, &keys, ts);
    }
    g.bench_function("accuracy_10000_series", |b| {
        b.iter(|| {
            ts += 15;
            step_accuracy(&mut tracker, &keys, ts);
        })
    });
    g.finish();
}

/// The same cycle with each allocation policy on and both pools short: capped at 150 nodes
/// (1,920 cores at 80 %) where the workloads want about 2,300 cores each.
fn shared(
    g: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    f: &Fleet,
    acc: &AccuracyTracker,
) {
    let mut f = Fleet {
        specs: f.specs.clone(),
        pools: Vec::new(),
        forecasts: f.forecasts.clone(),
        demand: f.demand.clone(),
        current: f.current.clone(),
        nodes: f.nodes.clone(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (i, s) in f.specs.iter_mut().enumerate() {
        s.team = Some(format!("team-{:02}", i % 20));
        s.priority = (i % 5) as i32 * 100;
        s.weight = 1.0 + (i % 20 % 3) as f64;
        s.share = Some(0.05 / 25.0);
        s.bid = rng.gen_range(0.01..1.0);
    }
    for policy in [
        Allocation::Priority,
        Allocation::Fair,
        Allocation::Static,
        Allocation::Market,
    ] {
        let pools: Vec<PoolSpec> = ["general", "memory"]
            .iter()
            .map(|n| {
                let mut p = PoolSpec::new(
                    n,
                    Resources::new(16.0, 64.0 * 1024.0 * 1024.0 * 1024.0),
                    150,
                );
                p.min_nodes = 10;
                p.allocation = policy;
                p
            })
            .collect();
        let mut replicas = ReplicaPlanner::new();
        let mut nodes = NodePlanner::new();
        let first = cycle(&f, &pools, 0, acc, &mut replicas, &mut nodes);
        let capped = first
            .iter()
            .filter(|d| d.guards.iter().any(|g| g.kind.is_capped()))
            .count();
        let before = thread_cpu_seconds();
        let cycles = 50;
        for k in 1..=cycles {
            black_box(cycle(&f, &pools, 15 * k, acc, &mut replicas, &mut nodes));
        }
        if let (Some(b), Some(a)) = (before, thread_cpu_seconds()) {
            eprintln!(
                "{policy}: {capped} of 1000 workloads capped; CPU time per cycle {:.2} ms (over {cycles} cycles)",
                (a - b) * 1e3 / cycles as f64
            );
        }
        let mut now = 15 * cycles;
        g.bench_function(format!("cycle_1000_workloads_500_nodes_{policy}"), |b| {
            b.iter(|| {
                now += 15;
                black_box(cycle(&f, &pools, now, acc, &mut replicas, &mut nodes))
            })
        });
    }
}

fn input<'a>(f: &'a Fleet, i: usize, now: i64, acc: &AccuracyTracker) -> WorkloadInput<'a> {
    WorkloadInput {
        current_demand: Some(f.demand[i]),
        forecast: Some(&f.forecasts[i]),
        forecast_weight: acc.weight(&f.specs[i].demand),
        // The fleet's forecasts (origin 0) have a window long enough never to expire here.
        ..WorkloadInput::new(now, f.current[i])
    }
}

/// User + system CPU time of the calling thread (Linux; `None` elsewhere), 10 ms resolution.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn step_accuracy(t: &mut AccuracyTracker, keys: &[SeriesKey], ts: i64) {
    for (i, k) in keys.iter().enumerate() {
        let v = 100.0 + (i % 17) as f64 + (ts % 60) as f64;
        t.observe(k, ts, v);
        t.record(&Forecast {
            key: k.clone(),
            at: ts,
            window: 1 << 30,
            quantiles: vec![(0.5, 120.0), (0.9, 150.0), (0.95, 160.0), (0.99, 180.0)],
        });
    }
    black_box(t.weight(&keys[0]));
}

criterion_group!(benches, bench, cluster::bench);
criterion_main!(benches);
