//! The node planner's extra work in sharded mode (issue #11 section 3), at the scale targets'
//! size: 10,000 workloads on 2,000 nodes.
//!
//! Beyond its own share's cycle (`benches/scale.rs`, "one shard of N"), the replica that plans
//! the node pools (ordinal 0, or with leader election the Lease holder) reads every other
//! shard's per-workload plans back from Prometheus and plans the pools for all workloads. This
//! times that part of its cycle: the three instant-query answers decoded from Prometheus' JSON
//! (with serde's derive, which `benches/collect.rs` compares with the client's own reader),
//! matched by target (`readback::map_answers`), and `NodePlanner::plan_partial` over every
//! workload, with 1 % of the others' plans missing (unknown: placed where they are, holding
//! scale-in). The HTTP round trips are not included: three queries on loopback, each a few
//! milliseconds at this size.

use criterion::{criterion_group, criterion_main, Criterion};
use prescale::collect::prometheus::InstantSample;
use prescale::plan::{
    NodePlanner, NodeState, PoolSpec, Resources, UnknownLoad, WorkloadLoad, WorkloadSpec,
};
use prescale::shard::hash::owner;
use prescale::shard::readback::{
    map_answers, DESIRED_METRIC, PLANNED_AT_METRIC, UTILIZATION_METRIC,
};
use std::hint::black_box;

const WORKLOADS: usize = 10_000;
const NODES: usize = 2_000;
const NOW: i64 = 1_700_006_400;

/// One family's answer as Prometheus sends it: one series per other workload, from the
/// target of the shard that owns it; every hundredth workload left out.
fn answer(family: &str, others: &[(usize, u32)], value: impl Fn(usize) -> f64) -> String {
    let series: Vec<String> = others
        .iter()
        .filter(|(w, _)| w % 100 != 7)
        .map(|&(w, o)| {
            format!(
                r#"{{"metric":{{"__name__":"{family}","instance":"10.0.0.{o}:9100","job":"prescale","workload":"w{w}"}},"value":[{NOW}.5,"{}"]}}"#,
                value(w)
            )
        })
        .collect();
    format!("[{}]", series.join(","))
}

fn bench(c: &mut Criterion) {
    let specs: Vec<WorkloadSpec> = (0..WORKLOADS)
        .map(|w| {
            let mut spec =
                WorkloadSpec::new(&format!("w{w}"), &format!("cpu{{w=\"{w}\"}}"), 20.0, 200);
            spec.resources = Resources::new(0.25, 256.0 * 1024.0 * 1024.0);
            spec
        })
        .collect();
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
    let mut g = c.benchmark_group("shard");
    g.sample_size(10);
    for n in [2u32, 4] {
        let (own, others): (Vec<usize>, Vec<usize>) =
            (0..WORKLOADS).partition(|w| owner(&format!("w{w}"), n) == 0);
        let owned_by: Vec<(usize, u32)> = others
            .iter()
            .map(|&w| (w, owner(&format!("w{w}"), n)))
            .collect();
        let bodies = [
            answer(DESIRED_METRIC, &owned_by, |w| (3 + w % 4) as f64),
            answer(UTILIZATION_METRIC, &owned_by, |w| {
                0.4 + (w % 50) as f64 / 100.0
            }),
            answer(PLANNED_AT_METRIC, &owned_by, |_| NOW as f64),
        ];
        let wanted: Vec<String> = others.iter().map(|w| format!("w{w}")).collect();
        let own_loads: Vec<WorkloadLoad> = own
            .iter()
            .map(|&w| WorkloadLoad::new(&specs[w], 3, Some(45.0)))
            .collect();
        eprintln!(
            "[shard] planner of {n}: {} own workloads, {} read back ({} KB of answers)",
            own.len(),
            others.len(),
            bodies.iter().map(String::len).sum::<usize>() / 1000
        );
        // Where the time goes, once before criterion: decoding, matching, planning.
        let t0 = std::time::Instant::now();
        let decoded: Vec<Result<Vec<InstantSample>, String>> = bodies
            .iter()
            .map(|body| serde_json::from_str(body).map_err(|e| e.to_string()))
            .collect();
        let t1 = std::time::Instant::now();
        let read = map_answers(&wanted, &decoded[0], &decoded[1], &decoded[2], NOW, 180);
        let t2 = std::time::Instant::now();
        eprintln!(
            "[shard] planner of {n}: decode {:.0} ms, match {:.0} ms ({} unknown)",
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            read.values().filter(|r| r.is_err()).count()
        );
        let mut planner = NodePlanner::new();
        let mut t = NOW;
        g.bench_function(
            format!("planner of {n} shards: read-back and node pools"),
            |b| {
                b.iter(|| {
                    t += 60;
                    let decoded: Vec<Result<Vec<InstantSample>, String>> = bodies
                        .iter()
                        .map(|body| {
                            serde_json::from_str(black_box(body)).map_err(|e| e.to_string())
                        })
                        .collect();
                    let read =
                        map_answers(&wanted, &decoded[0], &decoded[1], &decoded[2], NOW, 180);
                    let mut loads = own_loads.clone();
                    let mut unknown = Vec::new();
                    for &w in &others {
                        let spec = &specs[w];
                        match &read[&spec.name] {
                            Ok(r) => loads.push(WorkloadLoad {
                                spec,
                                desired: r.desired,
                                utilization: r.utilization,
                            }),
                            Err(why) => {
                                unknown.push(UnknownLoad {
                                    workload: spec.name.clone(),
                                    why: why.clone(),
                                    group: None,
                                });
                                loads.push(WorkloadLoad {
                                    spec,
                                    desired: 3,
                                    utilization: 1.0,
                                });
                            }
                        }
                    }
                    assert!(!unknown.is_empty());
                    black_box(planner.plan_partial(
                        t,
                        std::slice::from_ref(&pool),
                        &states,
                        &loads,
                        &unknown,
                    ))
                    .len()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
