//! The view on hand-made cluster states: pools, placements, reserved requests, and what
//! cannot be read.

use super::*;
use crate::collect::cluster::{
    ClusterNode, ClusterPod, ClusterWorkload, PodPhase, QueryFailure, WorkloadId,
};

fn node(name: &str, pool: Option<&str>, cpu: f64, cordoned: bool) -> ClusterNode {
    ClusterNode {
        name: name.into(),
        pool: pool.map(String::from),
        cpu: Some(cpu),
        memory: Some(8e9),
        unschedulable: cordoned,
    }
}

fn pod(
    name: &str,
    node: Option<&str>,
    owner: Option<&str>,
    phase: PodPhase,
    cpu: f64,
) -> ClusterPod {
    ClusterPod {
        namespace: "shop".into(),
        name: name.into(),
        node: node.map(String::from),
        owner: owner.map(|o| WorkloadId::new(WorkloadKind::Deployment, "shop", o)),
        phase: Some(phase),
        node_bound: false,
        cpu,
        memory: 1e9,
    }
}

/// `p` as a DaemonSet's pod: bound to its node.
fn daemon(mut p: ClusterPod) -> ClusterPod {
    p.node_bound = true;
    p
}

fn spec(name: &str) -> WorkloadSpec {
    let mut s = WorkloadSpec::new(name, "rps", 10.0, 50);
    s.deployment = Some(format!("shop/{name}"));
    s
}

fn state() -> ClusterState {
    ClusterState {
        at: 0,
        nodes: vec![
            node("a", Some("gp"), 4.0, false),
            node("b", Some("gp"), 3.5, false),
            node("c", Some("gp"), 1.0, true),
            node("d", Some("big"), 16.0, false),
            node("e", None, 4.0, false),
        ],
        workloads: vec![ClusterWorkload {
            id: WorkloadId::new(WorkloadKind::Deployment, "shop", "web"),
            spec_replicas: Some(4),
            available_replicas: Some(3),
        }],
        pods: vec![
            pod("web-1", Some("a"), Some("web"), PodPhase::Running, 0.5),
            pod("web-2", Some("a"), Some("web"), PodPhase::Running, 0.25),
            pod("web-3", Some("b"), Some("web"), PodPhase::Running, 0.5),
            pod("web-4", None, Some("web"), PodPhase::Pending, 0.5),
            pod("web-old", Some("b"), Some("web"), PodPhase::Failed, 9.0),
            daemon(pod("proxy-a", Some("a"), None, PodPhase::Running, 0.1)),
            pod("cron-b", Some("b"), Some("cron"), PodPhase::Running, 0.3),
            pod("job-x", Some("a"), None, PodPhase::Succeeded, 3.0),
        ],
        failures: Vec::new(),
    }
}

#[test]
fn pools_placements_and_requests_come_from_the_cluster() {
    let mut policy = PoolSpec::new("gp", Resources::default(), 12);
    policy.boot_time = 240;
    let v = observe_cluster(&state(), &[spec("web")], &[policy]);
    assert!(v.unknown.is_empty() && v.nodes_unknown.is_none(), "{v:?}");
    assert_eq!(v.replicas["web"], 4);
    // gp: the cordoned node's 1 cpu does not set the size; big: defaults.
    assert_eq!(v.pools.len(), 2);
    let big = &v.pools[0];
    assert_eq!(
        (
            big.name.as_str(),
            big.capacity.cpu,
            big.max_nodes,
            big.min_nodes
        ),
        ("big", 16.0, DISCOVERED_MAX_NODES, DISCOVERED_MIN_NODES)
    );
    let gp = &v.pools[1];
    assert_eq!(
        (gp.capacity.cpu, gp.boot_time, gp.max_nodes),
        (3.5, 240, 12)
    );
    // Node e has no pool label: left out, and said.
    let names: Vec<&str> = v.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("1 node(s) have no pool label")),
        "{:?}",
        v.notes
    );
    // a: two web replicas and the DaemonSet pod reserved; the finished Job holds nothing.
    assert_eq!(v.nodes[0].replicas, vec![("web".to_string(), 2)]);
    assert!(
        (v.nodes[0].reserved.cpu - 0.1).abs() < 1e-12,
        "{:?}",
        v.nodes[0].reserved
    );
    // The DaemonSet pod goes with its node: nothing on a would need room elsewhere.
    assert!(v.nodes[0].movable.is_empty(), "{:?}", v.nodes[0].movable);
    // b: the failed pod is not a replica; the pod of a Deployment prescale does not manage
    // is reserved and would have to move.
    assert_eq!(v.nodes[1].replicas, vec![("web".to_string(), 1)]);
    assert_eq!(v.nodes[1].movable, vec![Resources::new(0.3, 1e9)]);
    assert!((v.nodes[1].reserved.cpu - 0.3).abs() < 1e-12);
    assert!(v.nodes[2].unschedulable);
    // web: the largest live request, and the pool its pods run in.
    assert_eq!(v.workloads[0].resources.cpu, 0.5);
    assert_eq!(v.workloads[0].pool.as_deref(), Some("gp"));
}

#[test]
fn what_cannot_be_read_is_said_per_workload_and_for_nodes() {
    let mut s = state();
    let mut db = spec("db");
    db.deployment = None;
    db.statefulset = Some("shop/db".into());
    let mut loose = spec("loose");
    loose.deployment = None;
    let v = observe_cluster(
        &s,
        &[spec("web"), spec("gone"), db.clone(), loose.clone()],
        &[],
    );
    assert_eq!(
        v.unknown["gone"],
        "kube_deployment_spec_replicas{namespace=\"shop\",deployment=\"gone\"} is absent \
         (kube-state-metrics not scraped, or no such object)"
    );
    assert!(v.unknown["db"]
        .starts_with("kube_statefulset_replicas{namespace=\"shop\",statefulset=\"db\"}"));
    assert!(v.unknown["loose"].contains("names no deployment"));
    assert!(!v.unknown.contains_key("web"));

    s.failures.push(QueryFailure {
        query: ClusterQuery::StatefulSetSpec,
        error: "HTTP 503".into(),
    });
    s.failures.push(QueryFailure {
        query: ClusterQuery::PodInfo,
        error: "timed out after 10s".into(),
    });
    let v = observe_cluster(&s, &[db], &[]);
    assert_eq!(
        v.unknown["db"],
        "kube_statefulset_replicas could not be read: HTTP 503"
    );
    assert_eq!(
        v.nodes_unknown.as_deref(),
        Some("kube_pod_info could not be read: timed out after 10s")
    );

    let empty = ClusterState::default();
    let v = observe_cluster(&empty, &[spec("web")], &[]);
    assert!(v
        .nodes_unknown
        .unwrap()
        .contains("kube_node_status_allocatable has no series"));
}

/// A new node of a pool brings what most of its nodes have: one odd node, smaller (an old
/// instance type, or one draining) or larger, does not size the pool; a tie goes to the
/// smaller; cordoned nodes count only when the pool has no other; memory is decided apart
/// from CPU, and a node missing a series counts for the other resource.
#[test]
fn a_pool_is_sized_by_its_most_common_node_not_its_smallest() {
    let mut s = state();
    s.nodes = vec![
        node("m1", Some("mixed"), 8.0, false),
        node("m2", Some("mixed"), 8.0, false),
        node("m3", Some("mixed"), 8.0, false),
        node("m-old", Some("mixed"), 2.0, false),
        node("m-big", Some("mixed"), 32.0, false),
        node("m-drain", Some("mixed"), 0.5, true),
        node("t1", Some("tie"), 4.0, false),
        node("t2", Some("tie"), 16.0, false),
        node("t3", Some("tie"), 16.0, false),
        node("t4", Some("tie"), 4.0, false),
        node("c1", Some("cordoned"), 6.0, true),
        node("c2", Some("cordoned"), 6.0, true),
        node("c3", Some("cordoned"), 1.0, true),
    ];
    s.nodes[3].memory = Some(2e9);
    s.nodes[1].memory = None;
    s.nodes[2].memory = Some(16e9);
    s.nodes[4].memory = Some(16e9);
    let v = observe_cluster(&s, &[spec("web")], &[]);
    let cap = |name: &str| {
        let p = v.pools.iter().find(|p| p.name == name).unwrap();
        (p.capacity.cpu, p.capacity.memory)
    };
    // mixed: CPU 8 three times out of five schedulable; memory 16e9 twice (m3, m-big) against
    // 8e9 once (m1) and 2e9 once (m-old), m2 reporting none.
    assert_eq!(cap("mixed"), (8.0, 16e9));
    assert_eq!(cap("tie"), (4.0, 8e9));
    assert_eq!(cap("cordoned"), (6.0, 8e9));
    assert_eq!(new_node_size(vec![]), 0.0);
    assert_eq!(new_node_size(vec![f64::NAN, 3.0]), 3.0);
}

/// A pool whose nodes report no allocatable memory, and a pool named like a workload, are
/// left unplanned with a note naming why, not planned as if memory were 0.
#[test]
fn a_pool_missing_a_resource_or_named_like_a_workload_is_not_planned() {
    let mut s = state();
    for n in s
        .nodes
        .iter_mut()
        .filter(|n| n.pool.as_deref() == Some("big"))
    {
        n.memory = None;
    }
    let v = observe_cluster(&s, &[spec("web")], &[]);
    let names: Vec<&str> = v.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["gp"]);
    assert!(
        v.notes.iter().any(|n| {
            n
            == "pool 'big': no node reports its allocatable memory (kube_node_status_allocatable): \
                not planned"
        }),
        "{:?}",
        v.notes
    );
    let v = observe_cluster(&state(), &[spec("web"), spec("gp")], &[]);
    let names: Vec<&str> = v.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["big"]);
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("pool 'gp' has a workload's name: not planned")),
        "{:?}",
        v.notes
    );
}
