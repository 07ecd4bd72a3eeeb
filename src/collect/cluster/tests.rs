//! The mapping from kube-state-metrics answers to [`ClusterState`], on hand-made samples.

use super::*;
use crate::collect::prometheus::{parse_body, Point};
use std::collections::BTreeMap;

fn s(labels: &[(&str, &str)], v: f64) -> InstantSample {
    InstantSample {
        metric: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        value: Some(Point {
            ts: 100.0,
            value: v,
        }),
    }
}

fn all_empty() -> Vec<QueryAnswer> {
    ClusterQuery::ALL
        .iter()
        .map(|&q| (q, Ok(Vec::new())))
        .collect()
}

fn with(
    mut answers: Vec<QueryAnswer>,
    q: ClusterQuery,
    samples: Vec<InstantSample>,
) -> Vec<QueryAnswer> {
    answers.retain(|a| a.0 != q);
    answers.push((q, Ok(samples)));
    answers
}

#[test]
fn replicaset_pods_map_to_their_deployment_and_statefulset_pods_to_theirs() {
    let a = all_empty();
    let a = with(
        a,
        ClusterQuery::PodInfo,
        vec![
            s(
                &[
                    ("namespace", "shop"),
                    ("pod", "api-7d9-x"),
                    ("node", "n1"),
                    ("created_by_kind", "ReplicaSet"),
                    ("created_by_name", "api-7d9"),
                ],
                1.0,
            ),
            s(
                &[
                    ("namespace", "shop"),
                    ("pod", "db-0"),
                    ("node", "n2"),
                    ("created_by_kind", "StatefulSet"),
                    ("created_by_name", "db"),
                ],
                1.0,
            ),
            // Unscheduled: node is empty.
            s(
                &[
                    ("namespace", "shop"),
                    ("pod", "api-7d9-y"),
                    ("node", ""),
                    ("created_by_kind", "ReplicaSet"),
                    ("created_by_name", "api-7d9"),
                ],
                1.0,
            ),
            // A ReplicaSet nobody owns, and a DaemonSet pod.
            s(
                &[
                    ("namespace", "shop"),
                    ("pod", "lone-x"),
                    ("node", "n1"),
                    ("created_by_kind", "ReplicaSet"),
                    ("created_by_name", "lone"),
                ],
                1.0,
            ),
            s(
                &[
                    ("namespace", "kube-system"),
                    ("pod", "proxy-a"),
                    ("node", "n1"),
                    ("created_by_kind", "DaemonSet"),
                    ("created_by_name", "proxy"),
                ],
                1.0,
            ),
        ],
    );
    let a = with(
        a,
        ClusterQuery::ReplicaSetOwner,
        vec![
            s(
                &[
                    ("namespace", "shop"),
                    ("replicaset", "api-7d9"),
                    ("owner_kind", "Deployment"),
                    ("owner_name", "api"),
                ],
                1.0,
            ),
            // Same name in another namespace: not ours.
            s(
                &[
                    ("namespace", "other"),
                    ("replicaset", "lone"),
                    ("owner_kind", "Deployment"),
                    ("owner_name", "x"),
                ],
                1.0,
            ),
        ],
    );
    let a = with(
        a,
        ClusterQuery::PodPhase,
        vec![
            s(
                &[
                    ("namespace", "shop"),
                    ("pod", "api-7d9-x"),
                    ("phase", "Running"),
                ],
                1.0,
            ),
            s(
                &[
                    ("namespace", "shop"),
                    ("pod", "api-7d9-y"),
                    ("phase", "Pending"),
                ],
                1.0,
            ),
        ],
    );
    let a = with(
        a,
        ClusterQuery::PodRequests,
        vec![
            s(
                &[
                    ("namespace", "shop"),
                    ("pod", "api-7d9-x"),
                    ("resource", "cpu"),
                ],
                0.5,
            ),
            s(
                &[
                    ("namespace", "shop"),
                    ("pod", "api-7d9-x"),
                    ("resource", "memory"),
                ],
                1e9,
            ),
            // A pod kube_pod_info does not know is not invented.
            s(
                &[("namespace", "shop"), ("pod", "ghost"), ("resource", "cpu")],
                9.0,
            ),
        ],
    );
    let st = ClusterState::from_answers(100, "label_pool", a);
    assert!(st.failures.is_empty(), "{:?}", st.failures);
    let names: Vec<&str> = st.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["proxy-a", "api-7d9-x", "api-7d9-y", "db-0", "lone-x"]
    );
    let api = WorkloadId::new(WorkloadKind::Deployment, "shop", "api");
    let p = &st.pods[1];
    assert_eq!(p.owner.as_ref(), Some(&api));
    assert_eq!(
        (p.node.as_deref(), p.phase, p.cpu, p.memory),
        (Some("n1"), Some(PodPhase::Running), 0.5, 1e9)
    );
    let y = &st.pods[2];
    assert_eq!(
        (y.node.as_deref(), y.owner.as_ref(), y.phase),
        (None, Some(&api), Some(PodPhase::Pending))
    );
    assert_eq!(
        st.pods[3].owner,
        Some(WorkloadId::new(WorkloadKind::StatefulSet, "shop", "db"))
    );
    assert_eq!(
        st.pods[3].phase, None,
        "no phase series: unknown, not guessed"
    );
    assert_eq!(st.pods[4].owner, None);
    assert_eq!(st.pods[0].owner, None);
    // Only the DaemonSet's pod goes with its node; the lone pod (a ReplicaSet without a
    // Deployment) would need room elsewhere.
    let bound: Vec<bool> = st.pods.iter().map(|p| p.node_bound).collect();
    assert_eq!(bound, [true, false, false, false, false]);
}

#[test]
fn workloads_nodes_and_bad_values() {
    let a = all_empty();
    let a = with(
        a,
        ClusterQuery::DeploymentSpec,
        vec![
            s(&[("namespace", "shop"), ("deployment", "api")], 4.0),
            s(&[("namespace", "shop"), ("deployment", "nan")], f64::NAN),
            s(&[("namespace", "shop"), ("deployment", "neg")], -1.0),
        ],
    );
    let a = with(
        a,
        ClusterQuery::DeploymentAvailable,
        vec![s(&[("namespace", "shop"), ("deployment", "api")], 3.0)],
    );
    let a = with(
        a,
        ClusterQuery::StatefulSetSpec,
        vec![s(&[("namespace", "shop"), ("statefulset", "db")], 2.0)],
    );
    let a = with(
        a,
        ClusterQuery::NodeAllocatable,
        vec![
            s(&[("node", "n1"), ("resource", "cpu")], 3.92),
            s(&[("node", "n1"), ("resource", "memory")], 15e9),
            s(&[("node", "n2"), ("resource", "cpu")], 7.9),
        ],
    );
    let a = with(
        a,
        ClusterQuery::NodeUnschedulable,
        vec![s(&[("node", "n1")], 0.0), s(&[("node", "n2")], 1.0)],
    );
    let a = with(
        a,
        ClusterQuery::NodeLabels,
        vec![
            s(&[("node", "n1"), ("label_pool", "general")], 1.0),
            s(&[("node", "n2")], 1.0),
        ],
    );
    let st = ClusterState::from_answers(100, "label_pool", a);
    let api = st
        .workload(&WorkloadId::new(WorkloadKind::Deployment, "shop", "api"))
        .unwrap();
    assert_eq!(
        (api.spec_replicas, api.available_replicas),
        (Some(4), Some(3))
    );
    for bad in ["nan", "neg"] {
        let w = st
            .workload(&WorkloadId::new(WorkloadKind::Deployment, "shop", bad))
            .unwrap();
        assert_eq!(w.spec_replicas, None, "{bad}");
    }
    let db = st
        .workload(&WorkloadId::new(WorkloadKind::StatefulSet, "shop", "db"))
        .unwrap();
    assert_eq!((db.spec_replicas, db.available_replicas), (Some(2), None));
    assert_eq!(st.nodes.len(), 2);
    assert_eq!(
        st.nodes[0],
        ClusterNode {
            name: "n1".into(),
            pool: Some("general".into()),
            cpu: Some(3.92),
            memory: Some(15e9),
            unschedulable: false
        }
    );
    assert_eq!(
        (
            st.nodes[1].pool.as_deref(),
            st.nodes[1].memory,
            st.nodes[1].unschedulable
        ),
        (None, None, true)
    );
}

#[test]
fn failures_and_missing_answers_are_reported_per_query() {
    let mut a = all_empty();
    a.retain(|x| x.0 != ClusterQuery::NodeLabels);
    let a = a
        .into_iter()
        .map(|(q, r)| {
            if q == ClusterQuery::PodInfo {
                (q, Err("timed out".to_string()))
            } else {
                (q, r)
            }
        })
        .collect();
    let st = ClusterState::from_answers(100, "label_pool", a);
    assert_eq!(st.failure(ClusterQuery::PodInfo), Some("timed out"));
    assert_eq!(st.failure(ClusterQuery::NodeLabels), Some("not queried"));
    assert_eq!(st.failure(ClusterQuery::NodeAllocatable), None);
}

#[test]
fn answers_over_the_series_limit_or_of_another_type_are_refused() {
    let body = br#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"node":"a"},"value":[1,"1"]},{"metric":{"node":"b"},"value":[1,"0"]}]}}"#;
    assert_eq!(samples_of(parse_body("u", 200, body), 2).unwrap().len(), 2);
    let e = samples_of(parse_body("u", 200, body), 1).unwrap_err();
    assert!(
        e.contains("2 series") && e.contains("cluster.max_series = 1"),
        "{e}"
    );
    let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#;
    assert!(samples_of(parse_body("u", 200, scalar), 9)
        .unwrap_err()
        .contains("scalar"));
}

#[test]
fn queries_carry_the_selector_and_the_pool_label() {
    let q = ClusterQuery::ReplicaSetOwner.promql("job=\"ksm\"", "label_pool");
    assert_eq!(
        q,
        "max by (namespace, replicaset, owner_kind, owner_name) (kube_replicaset_owner{owner_kind=\"Deployment\",job=\"ksm\"})"
    );
    assert_eq!(
        ClusterQuery::NodeLabels.promql("", "label_pool"),
        "max by (node, label_pool) (kube_node_labels{})"
    );
    assert_eq!(
        ksm_label("node.kubernetes.io/instance-type"),
        "label_node_kubernetes_io_instance_type"
    );
    assert_eq!(ksm_label("label_pool"), "label_pool");
}

#[test]
fn cluster_section_is_validated_with_key_named_errors() {
    let raw =
        |source: &str, label: Option<&str>, sel: Option<&str>, max: Option<usize>| RawCluster {
            source: source.into(),
            pool_label: label.map(String::from),
            selector: sel.map(String::from),
            max_series: max,
        };
    let mut p = Vec::new();
    let c = validate_cluster(
        &raw("kube-state-metrics", None, Some("job=\"ksm\""), None),
        &mut p,
    )
    .unwrap();
    assert_eq!(c.pool_label, "label_node_kubernetes_io_instance_type");
    assert_eq!(c.selector, "job=\"ksm\"");
    for (r, key) in [
        (raw("ksm", None, None, None), "cluster.source"),
        (
            raw("kube-state-metrics", Some(""), None, None),
            "cluster.pool_label",
        ),
        (
            raw("kube-state-metrics", Some("a b"), None, None),
            "cluster.pool_label",
        ),
        (
            raw("kube-state-metrics", None, Some("{job=\"x\"}"), None),
            "cluster.selector",
        ),
        (
            raw("kube-state-metrics", None, Some("job"), None),
            "cluster.selector",
        ),
        (
            raw("kube-state-metrics", None, None, Some(0)),
            "cluster.max_series",
        ),
    ] {
        let mut p = Vec::new();
        assert!(validate_cluster(&r, &mut p).is_none());
        assert_eq!(p[0].0, key, "{p:?}");
    }
}
