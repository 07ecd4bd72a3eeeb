//! A cycle with cluster state: 500 nodes in 5 pools, 1,000 Deployments, 5,000 pods, as
//! kube-state-metrics answers about them. Measured from the answers' bodies in memory:
//! parsing them (the client's own JSON reader), mapping them to a `ClusterState`, the planner's
//! view of it (pools, placements, requests, replica counts), and planning replicas and nodes
//! from that view.

use criterion::Criterion;
use prescale::collect::cluster::{samples_of, ClusterQuery, ClusterState};
use prescale::collect::prometheus::parse_body;
use prescale::plan::*;
use std::fmt::Write;
use std::hint::black_box;

const NODES: usize = 500;
const WORKLOADS: usize = 1_000;
const PODS_PER: usize = 5;
const POOL_LABEL: &str = "label_pool";

/// One instant-query body per query, as Prometheus sends it.
fn bodies() -> Vec<(ClusterQuery, String)> {
    let mut by: Vec<(ClusterQuery, Vec<String>)> =
        ClusterQuery::ALL.iter().map(|&q| (q, Vec::new())).collect();
    let mut push = |q: ClusterQuery, labels: String, v: f64| {
        let slot = by.iter_mut().find(|b| b.0 == q).unwrap();
        slot.1.push(format!(
            "{{\"metric\":{{{labels}}},\"value\":[1700000000,\"{v}\"]}}"
        ));
    };
    for n in 0..NODES {
        let l = format!("\"node\":\"node-{n:03}\"");
        push(
            ClusterQuery::NodeAllocatable,
            format!("{l},\"resource\":\"cpu\""),
            31.85,
        );
        push(
            ClusterQuery::NodeAllocatable,
            format!("{l},\"resource\":\"memory\""),
            120e9,
        );
        push(ClusterQuery::NodeUnschedulable, l.clone(), 0.0);
        push(
            ClusterQuery::NodeLabels,
            format!("{l},\"{POOL_LABEL}\":\"pool-{}\"", n % 5),
            1.0,
        );
    }
    for w in 0..WORKLOADS {
        let (ns, name) = (format!("ns{}", w % 20), format!("w{w}"));
        let l = format!("\"namespace\":\"{ns}\",\"deployment\":\"{name}\"");
        push(ClusterQuery::DeploymentSpec, l.clone(), PODS_PER as f64);
        push(ClusterQuery::DeploymentAvailable, l, PODS_PER as f64);
        push(
            ClusterQuery::ReplicaSetOwner,
            format!("\"namespace\":\"{ns}\",\"replicaset\":\"{name}-7d9\",\"owner_kind\":\"Deployment\",\"owner_name\":\"{name}\""),
            1.0,
        );
        for k in 0..PODS_PER {
            let pod = format!("\"namespace\":\"{ns}\",\"pod\":\"{name}-7d9-{k}\"");
            // Each workload's pods in one pool, spread over its nodes.
            let node = (w % 5) + 5 * ((w / 5 + k * 7) % (NODES / 5));
            push(
                ClusterQuery::PodInfo,
                format!("{pod},\"node\":\"node-{node:03}\",\"created_by_kind\":\"ReplicaSet\",\"created_by_name\":\"{name}-7d9\""),
                1.0,
            );
            push(
                ClusterQuery::PodPhase,
                format!("{pod},\"phase\":\"Running\""),
                1.0,
            );
            push(
                ClusterQuery::PodRequests,
                format!("{pod},\"resource\":\"cpu\""),
                0.5,
            );
            push(
                ClusterQuery::PodRequests,
                format!("{pod},\"resource\":\"memory\""),
                1e9,
            );
        }
    }
    by.into_iter()
        .map(|(q, results)| {
            let mut body = String::from(
                "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[",
            );
            let _ = write!(body, "{}]}}}}", results.join(","));
            (q, body)
        })
        .collect()
}

fn specs() -> Vec<WorkloadSpec> {
    (0..WORKLOADS)
        .map(|w| {
            let mut s = WorkloadSpec::new(&format!("w{w}"), "rps", 20.0, 50);
            s.deployment = Some(format!("ns{}/w{w}", w % 20));
            s
        })
        .collect()
}

pub fn bench(c: &mut Criterion) {
    let bodies = bodies();
    let bytes: usize = bodies.iter().map(|b| b.1.len()).sum();
    eprintln!(
        "[cluster] {} answers, {:.1} MB of JSON",
        bodies.len(),
        bytes as f64 / 1e6
    );
    let specs = specs();
    let read = |bodies: &[(ClusterQuery, String)]| {
        let answers = bodies
            .iter()
            .map(|(q, b)| {
                (
                    *q,
                    samples_of(parse_body("bench", 200, b.as_bytes()), 100_000),
                )
            })
            .collect();
        ClusterState::from_answers(1_700_000_000, POOL_LABEL, answers)
    };
    let state = read(&bodies);
    assert!(state.failures.is_empty(), "{:?}", state.failures);
    assert_eq!(
        (state.nodes.len(), state.pods.len()),
        (NODES, WORKLOADS * PODS_PER)
    );
    let view = observe_cluster(&state, &specs, &[]);
    assert!(view.unknown.is_empty() && view.nodes_unknown.is_none());
    assert_eq!(view.pools.len(), 5);
    let mut g = c.benchmark_group("cluster");
    g.sample_size(10);
    g.bench_function("parse_map_500_nodes_5000_pods", |b| {
        b.iter(|| black_box(read(&bodies)))
    });
    g.bench_function("cycle_500_nodes_5000_pods_1000_workloads", |b| {
        let mut replicas = ReplicaPlanner::new();
        let mut nodes = NodePlanner::new();
        let mut t = 1_700_000_000;
        b.iter(|| {
            t += 60;
            let state = read(&bodies);
            let view = observe_cluster(&state, &specs, &[]);
            let mut loads = Vec::with_capacity(view.workloads.len());
            for spec in &view.workloads {
                let input = WorkloadInput {
                    current_demand: Some(130.0),
                    data_stale: view.unknown.contains_key(&spec.name),
                    ..WorkloadInput::new(t, view.replicas[&spec.name])
                };
                let d = replicas.plan(spec, &input);
                loads.push(WorkloadLoad::new(spec, d.to, Some(130.0)));
            }
            black_box(nodes.plan(t, &view.pools, &view.nodes, &loads))
        })
    });
    g.finish();
}
