use super::*;
use crate::plan::decision::{DecisionKind, GuardKind};
use crate::plan::spec::Resources;
use proptest::prelude::*;

const GI: f64 = GIB;

fn pool() -> PoolSpec {
    let mut p = PoolSpec::new("gp", Resources::new(4.0, 16.0 * GI), 10);
    p.boot_time = 180;
    p.min_nodes = 1;
    p
}

fn wl(name: &str, cpu: f64, mem_gi: f64) -> WorkloadSpec {
    let mut s = WorkloadSpec::new(name, name, 10.0, 100);
    s.resources = Resources::new(cpu, mem_gi * GI);
    s
}

fn node(name: &str, reps: &[(&str, u32)]) -> NodeState {
    NodeState {
        name: name.into(),
        pool: "gp".into(),
        replicas: reps.iter().map(|(w, n)| (w.to_string(), *n)).collect(),
        ..NodeState::default()
    }
}

fn load(spec: &WorkloadSpec, desired: u32, utilization: f64) -> WorkloadLoad<'_> {
    WorkloadLoad {
        spec,
        desired,
        utilization,
    }
}

/// Nodes a, b, c holding 2, 1 and 2 replicas of `api`: b is the emptiest, and removing it
/// fits at 1 core a replica.
fn api_on_three_nodes() -> [NodeState; 3] {
    [
        node("a", &[("api", 2)]),
        node("b", &[("api", 1)]),
        node("c", &[("api", 2)]),
    ]
}

fn kinds(ds: &[Decision]) -> Vec<DecisionKind> {
    ds.iter().map(|d| d.kind).collect()
}

#[test]
fn utilization_from_forecast_peak() {
    let s = wl("api", 1.0, 1.0); // 10 per replica
    assert_eq!(WorkloadLoad::new(&s, 4, Some(30.0)).utilization, 0.75);
    assert_eq!(WorkloadLoad::new(&s, 4, None).utilization, 1.0);
    assert_eq!(WorkloadLoad::new(&s, 4, Some(f64::NAN)).utilization, 1.0);
    assert_eq!(WorkloadLoad::new(&s, 0, Some(30.0)).utilization, 1.0);
}

#[test]
fn places_new_replicas_by_best_fit() {
    let api = wl("api", 1.0, 1.0);
    let filler = wl("filler", 1.0, 1.0);
    let nodes = [
        node("a", &[("filler", 2)]),
        node("b", &[("filler", 1)]),
        node("c", &[]),
    ];
    let ds = NodePlanner::new().plan(
        0,
        &[pool()],
        &nodes,
        &[load(&api, 1, 1.0), load(&filler, 3, 1.0)],
    );
    assert_eq!(kinds(&ds), vec![DecisionKind::Place], "{ds:#?}");
    let d = &ds[0];
    assert_eq!(
        (d.target.as_str(), d.node.as_deref(), d.from, d.to),
        ("api", Some("a"), 0, 1)
    );
    assert!(d.reason.contains("best fit"), "{}", d.reason);
    // A second replica would take a past its threshold (4 of 3.2 allowed cores): b next.
    let ds = NodePlanner::new().plan(
        0,
        &[pool()],
        &nodes,
        &[load(&api, 3, 1.0), load(&filler, 3, 1.0)],
    );
    let placed: Vec<_> = ds
        .iter()
        .map(|d| (d.node.clone().unwrap(), d.to - d.from))
        .collect();
    assert_eq!(
        placed,
        vec![("a".to_string(), 1), ("b".to_string(), 2)],
        "{ds:#?}"
    );
}

#[test]
fn best_fit_weighs_every_resource() {
    // a has CPU room but its memory is nearly full; b fits on both.
    let hog = wl("hog", 0.1, 12.0);
    let cpu = wl("cpu", 2.0, 0.0);
    let api = wl("api", 1.0, 2.0);
    let nodes = [node("a", &[("hog", 1)]), node("b", &[("cpu", 1)])];
    let w = [load(&api, 1, 1.0), load(&cpu, 1, 1.0), load(&hog, 1, 1.0)];
    let ds = NodePlanner::new().plan(0, &[pool()], &nodes, &w);
    assert_eq!(ds.len(), 1, "{ds:#?}");
    assert_eq!(ds[0].node.as_deref(), Some("b"), "{ds:#?}");
}

#[test]
fn moves_replicas_off_a_node_forecast_to_run_hot() {
    let api = wl("api", 1.0, 1.0);
    let nodes = [node("a", &[("api", 3)]), node("b", &[]), node("c", &[])];
    // Forecast utilisation 1.2: a would use 3.6 of 4 cores (90% > 80%).
    let ds = NodePlanner::new().plan(0, &[pool()], &nodes, &[load(&api, 3, 1.2)]);
    assert_eq!(kinds(&ds), vec![DecisionKind::Move], "{ds:#?}");
    let d = &ds[0];
    assert_eq!(
        (d.node.as_deref(), d.to_node.as_deref(), d.from, d.to),
        (Some("a"), Some("b"), 3, 2)
    );
    assert!(
        d.reason.starts_with("a forecast 90% > 80% threshold"),
        "{}",
        d.reason
    );
    // Not hot: nothing to do.
    let ds = NodePlanner::new().plan(0, &[pool()], &nodes, &[load(&api, 3, 1.0)]);
    assert!(ds.iter().all(|d| d.kind != DecisionKind::Move), "{ds:#?}");
}

#[test]
fn scale_down_frees_the_fullest_node_first() {
    let api = wl("api", 1.0, 1.0);
    let nodes = [node("a", &[("api", 3)]), node("b", &[("api", 1)])];
    // At utilisation 1.2 node a would be hot with 3 replicas; with one fewer it is not.
    let ds = NodePlanner::new().plan(0, &[pool()], &nodes, &[load(&api, 3, 1.2)]);
    assert!(ds.iter().all(|d| d.kind != DecisionKind::Move), "{ds:#?}");
}

#[test]
fn adds_nodes_ahead_of_forecast_demand_once() {
    let api = wl("api", 1.0, 1.0);
    let nodes = [node("a", &[("api", 3)]), node("b", &[("api", 3)])];
    let mut p = NodePlanner::new();
    // 9 replicas at 1 core forecast: needs ceil(9 / 3.2) = 3 nodes.
    let w = [load(&api, 9, 1.0)];
    let ds = p.plan(0, &[pool()], &nodes, &w);
    let add: Vec<_> = ds
        .iter()
        .filter(|d| d.kind == DecisionKind::AddNode)
        .collect();
    assert_eq!(add.len(), 1, "{ds:#?}");
    assert_eq!(
        (add[0].target.as_str(), add[0].from, add[0].to),
        ("gp", 2, 3)
    );
    assert!(
        add[0].reason.contains("ahead of 3m node boot"),
        "{}",
        add[0].reason
    );
    // Next cycle, the node is still booting: no second request.
    let ds = p.plan(15, &[pool()], &nodes, &w);
    assert!(
        ds.iter().all(|d| d.kind != DecisionKind::AddNode),
        "{ds:#?}"
    );
    // It never showed up: ask again after twice the boot time.
    let ds = p.plan(361, &[pool()], &nodes, &w);
    assert!(
        ds.iter().any(|d| d.kind == DecisionKind::AddNode),
        "{ds:#?}"
    );
}

#[test]
fn unplaceable_replica_adds_a_node_even_when_totals_fit() {
    let big = wl("big", 2.0, 1.0);
    let small = wl("small", 1.5, 1.0);
    let nodes = [node("a", &[("small", 1)]), node("b", &[("small", 1)])];
    // 5 cores forecast on 6.4 allowed fits the totals, but 2 more cores fit on neither node.
    let ds = NodePlanner::new().plan(
        0,
        &[pool()],
        &nodes,
        &[load(&big, 1, 1.0), load(&small, 2, 1.0)],
    );
    assert_eq!(kinds(&ds), vec![DecisionKind::AddNode], "{ds:#?}");
    assert_eq!((ds[0].from, ds[0].to), (2, 3));
    assert!(
        ds[0].reason.contains("1 replica unplaced"),
        "{}",
        ds[0].reason
    );
}

/// A replica forecast above what an empty node holds at the threshold (a 2-core replica
/// forecast at 4× its request: 8 cores on 4-core nodes) fits no node the planner could add:
/// it neither adds a node for it, cycle after cycle up to max_nodes, nor counts the node it
/// runs on as hot for it; the pool's reason names it.
#[test]
fn a_replica_no_empty_node_could_hold_adds_no_node() {
    let huge = wl("huge", 2.0, 1.0);
    let small = wl("small", 0.5, 1.0);
    let nodes = [node("a", &[("small", 1), ("huge", 1)]), node("b", &[])];
    let mut p = NodePlanner::new();
    for t in [0, 600, 1200] {
        let ds = p.plan(
            t,
            &[pool()],
            &nodes,
            &[load(&huge, 3, 4.0), load(&small, 1, 1.0)],
        );
        assert!(
            ds.iter().all(|d| d.kind != DecisionKind::AddNode),
            "t={t}: {ds:#?}"
        );
        // a's hotness is huge's alone: small moves off, no node is added for huge, and the
        // pool holds saying why.
        let hold = ds
            .iter()
            .find(|d| d.kind == DecisionKind::Hold && d.target == "gp")
            .unwrap_or_else(|| panic!("t={t}: no hold of the pool in {ds:#?}"));
        assert!(
            hold.reason.contains(
                "3 replicas fit no node even empty at the threshold, so no node added would \
                 hold them: 3 of huge"
            ) && hold.reason.ends_with("; no node added"),
            "t={t}: {}",
            hold.reason
        );
        assert_eq!((hold.from, hold.to), (2, 2));
    }
    // Same pool, a replica that does fit an empty node: a node is added for it.
    let big = wl("big", 2.0, 1.0);
    let nodes = [node("a", &[("small", 3)]), node("b", &[("small", 3)])];
    let ds = NodePlanner::new().plan(
        0,
        &[pool()],
        &nodes,
        &[load(&big, 1, 1.0), load(&small, 6, 2.0)],
    );
    assert_eq!(kinds(&ds), vec![DecisionKind::AddNode], "{ds:#?}");
}

/// A pool already above its max (nodes added by hand) holds, saying so, and adds nothing.
#[test]
fn a_pool_over_its_max_says_so() {
    let api = wl("api", 1.0, 1.0);
    let mut pl = pool();
    pl.max_nodes = 2;
    let nodes = [
        node("a", &[("api", 3)]),
        node("b", &[("api", 3)]),
        node("c", &[("api", 3)]),
    ];
    let ds = NodePlanner::new().plan(0, &[pl], &nodes, &[load(&api, 12, 1.0)]);
    let hold = ds
        .iter()
        .find(|d| d.target == "gp")
        .unwrap_or_else(|| panic!("{ds:#?}"));
    assert_eq!((hold.kind, hold.from, hold.to), (DecisionKind::Hold, 3, 3));
    assert!(
        hold.reason
            .contains("pool over its max 2 nodes, none added"),
        "{}",
        hold.reason
    );
}

#[test]
fn guard_max_nodes() {
    let api = wl("api", 1.0, 1.0);
    let mut pl = pool();
    pl.max_nodes = 3;
    let nodes = [node("a", &[("api", 3)]), node("b", &[("api", 3)])];
    let ds = NodePlanner::new().plan(0, &[pl.clone()], &nodes, &[load(&api, 20, 1.0)]);
    let add = ds
        .iter()
        .find(|d| d.kind == DecisionKind::AddNode)
        .expect("add");
    assert_eq!((add.from, add.to, add.raw), (2, 3, 7));
    assert!(add.guarded_by(GuardKind::MaxNodes), "{add:#?}");
    let nodes = [
        node("a", &[("api", 3)]),
        node("b", &[("api", 3)]),
        node("c", &[("api", 3)]),
    ];
    let ds = NodePlanner::new().plan(0, &[pl], &nodes, &[load(&api, 20, 1.0)]);
    let hold = ds.iter().find(|d| d.target == "gp").expect("pool decision");
    assert_eq!((hold.kind, hold.from, hold.to), (DecisionKind::Hold, 3, 3));
    assert!(
        hold.guarded_by(GuardKind::MaxNodes) && hold.reason.contains("pool at max 3"),
        "{hold:#?}"
    );
}

#[test]
fn guard_min_nodes() {
    let mut pl = pool();
    pl.min_nodes = 2;
    let ds = NodePlanner::new().plan(0, &[pl], &[], &[]);
    assert_eq!(kinds(&ds), vec![DecisionKind::AddNode]);
    assert_eq!((ds[0].from, ds[0].to), (0, 2));
    assert!(ds[0].guarded_by(GuardKind::MinNodes));
}

#[test]
fn removes_the_emptiest_node_only_after_the_window() {
    let api = wl("api", 1.0, 1.0);
    let nodes = api_on_three_nodes();
    let w = [load(&api, 5, 1.0)];
    let mut p = NodePlanner::new();
    for t in [0, 300, 599] {
        assert!(p.plan(t, &[pool()], &nodes, &w).is_empty(), "t={t}");
    }
    let ds = p.plan(600, &[pool()], &nodes, &w);
    assert_eq!(kinds(&ds), vec![DecisionKind::RemoveNode], "{ds:#?}");
    assert_eq!(
        (ds[0].node.as_deref(), ds[0].from, ds[0].to),
        (Some("b"), 3, 2)
    );
    assert!(
        ds[0].reason.contains("remove emptiest b"),
        "{}",
        ds[0].reason
    );
}

/// Nodes a and b with 3 replicas of 3 GiB each, node c with only pods prescale does not manage
/// (`reserved` GiB in all, `movable` the ones a removal would have to place). The pool's
/// memory fits two nodes at 80 % and c is the emptiest, so only where its pods could go
/// decides whether c may go.
fn two_full_nodes_and_others_on_c(
    reserved: f64,
    movable: &[f64],
) -> (WorkloadSpec, [NodeState; 3]) {
    let c = NodeState {
        reserved: Resources::new(0.0, reserved * GI),
        movable: movable
            .iter()
            .map(|m| Resources::new(0.0, m * GI))
            .collect(),
        ..node("c", &[])
    };
    let nodes = [node("a", &[("web", 3)]), node("b", &[("web", 3)]), c];
    (wl("web", 0.5, 3.0), nodes)
}

#[test]
fn a_node_stays_while_a_pod_on_it_would_fit_no_other() {
    // 9 + 9 + 7.5 GiB fit two nodes' 25.6, but a and b have 3.8 GiB each left under 80 %.
    let (web, nodes) = two_full_nodes_and_others_on_c(7.5, &[7.5]);
    let w = [load(&web, 6, 1.0)];
    let mut p = NodePlanner::new();
    for t in [0, 600, 1200, 3600] {
        let ds = p.plan(t, &[pool()], &nodes, &w);
        assert!(
            ds.iter().all(|d| d.kind != DecisionKind::RemoveNode),
            "t={t}: {ds:#?}"
        );
    }
}

#[test]
fn pods_bound_to_a_node_go_with_it_and_others_that_fit_are_placed() {
    // The same 7.5 GiB as a DaemonSet's pod: it goes with c, so c may go.
    let (web, nodes) = two_full_nodes_and_others_on_c(7.5, &[]);
    let w = [load(&web, 6, 1.0)];
    let mut p = NodePlanner::new();
    assert!(p.plan(0, &[pool()], &nodes, &w).is_empty());
    let ds = p.plan(600, &[pool()], &nodes, &w);
    assert_eq!(kinds(&ds), vec![DecisionKind::RemoveNode], "{ds:#?}");
    assert_eq!(ds[0].node.as_deref(), Some("c"));
    // Two pods of 3.5 GiB: one fits a, the other b.
    let (web, nodes) = two_full_nodes_and_others_on_c(7.0, &[3.5, 3.5]);
    let w = [load(&web, 6, 1.0)];
    let mut p = NodePlanner::new();
    assert!(p.plan(0, &[pool()], &nodes, &w).is_empty());
    let ds = p.plan(600, &[pool()], &nodes, &w);
    assert_eq!(kinds(&ds), vec![DecisionKind::RemoveNode], "{ds:#?}");
    assert!(
        ds[0]
            .reason
            .contains("its 0 replicas and 2 other pods fit the rest"),
        "{}",
        ds[0].reason
    );
    // Three of 2.5 GiB: the third fits neither.
    let (web, nodes) = two_full_nodes_and_others_on_c(7.5, &[2.5, 2.5, 2.5]);
    let w = [load(&web, 6, 1.0)];
    let mut p = NodePlanner::new();
    for t in [0, 600, 1200] {
        let ds = p.plan(t, &[pool()], &nodes, &w);
        assert!(
            ds.iter().all(|d| d.kind != DecisionKind::RemoveNode),
            "t={t}: {ds:#?}"
        );
    }
}

#[test]
fn a_busy_moment_restarts_the_removal_window() {
    let api = wl("api", 1.0, 1.0);
    let nodes = api_on_three_nodes();
    let mut p = NodePlanner::new();
    assert!(p
        .plan(0, &[pool()], &nodes, &[load(&api, 5, 1.0)])
        .is_empty());
    // At t=300 the forecast peaks: 5 × 1.3 = 6.5 cores no longer fit two nodes at 80%.
    let ds = p.plan(300, &[pool()], &nodes, &[load(&api, 5, 1.3)]);
    assert!(ds.iter().all(|d| d.kind != DecisionKind::RemoveNode));
    assert!(p
        .plan(600, &[pool()], &nodes, &[load(&api, 5, 1.0)])
        .is_empty());
    assert_eq!(
        kinds(&p.plan(1200, &[pool()], &nodes, &[load(&api, 5, 1.0)])),
        vec![DecisionKind::RemoveNode]
    );
}

/// Cycles the pools were not planned in (nodes unreadable, another replica planning) restart
/// the removal window: nothing checked meanwhile that removal still fitted, so the first
/// cycle back must not remove a node saying "removal has fitted for 1h".
#[test]
fn cycles_not_planned_restart_the_removal_window() {
    let api = wl("api", 1.0, 1.0);
    let nodes = api_on_three_nodes();
    let w = [load(&api, 5, 1.0)];
    let mut p = NodePlanner::new();
    assert!(p.plan(0, &[pool()], &nodes, &w).is_empty());
    p.not_planned();
    assert!(p.plan(3600, &[pool()], &nodes, &w).is_empty());
    assert_eq!(
        kinds(&p.plan(4200, &[pool()], &nodes, &w)),
        vec![DecisionKind::RemoveNode]
    );
}

/// Unknown demand (a shard's loads not read back) holds scale-in, saying why, and restarts
/// the removal window; nodes are still added from the known demand, and the reason says so.
#[test]
fn unknown_demand_holds_scale_in_and_adds_from_known_demand() {
    let api = wl("api", 1.0, 1.0);
    let nodes = api_on_three_nodes();
    let w = [load(&api, 5, 1.0)];
    let why = [UnknownLoad {
        workload: "x".into(),
        why: "no series".into(),
        group: None,
    }];
    let mut p = NodePlanner::new();
    assert!(p.plan(0, &[pool()], &nodes, &w).is_empty());
    let ds = p.plan_partial(600, &[pool()], &nodes, &w, &why);
    assert_eq!(kinds(&ds), vec![DecisionKind::Hold], "{ds:#?}");
    assert_eq!((ds[0].target.as_str(), ds[0].from, ds[0].to), ("gp", 3, 3));
    assert!(
        ds[0]
            .reason
            .contains("scale-in held: 1 workload with unknown load (counted as placed, at their requests): 'x' (no series)"),
        "{}",
        ds[0].reason
    );
    // Known again: the window starts afresh rather than removing at once.
    assert!(p.plan(900, &[pool()], &nodes, &w).is_empty());
    assert_eq!(
        kinds(&p.plan(1500, &[pool()], &nodes, &w)),
        vec![DecisionKind::RemoveNode]
    );
    // Scale-out from the known demand: 8 replicas need more than three nodes hold at 80%.
    let ds = NodePlanner::new().plan_partial(0, &[pool()], &nodes, &[load(&api, 12, 1.0)], &why);
    let add = ds
        .iter()
        .find(|d| d.kind == DecisionKind::AddNode)
        .expect("a node added");
    assert!(
        add.reason.contains("from known demand only: 1 workload"),
        "{}",
        add.reason
    );
}

/// An unknown workload holds scale-in only in the pools it can be in: those its replicas run
/// on and the one it is configured for; every pool while where it runs is not known.
#[test]
fn unknown_demand_holds_only_the_pools_it_can_be_in() {
    let api = wl("api", 1.0, 1.0);
    let mut y = wl("y", 1.0, 1.0);
    let mut other = pool();
    other.name = "other".into();
    let pools = [pool(), other];
    let on_gp = vec![
        node("a", &[("api", 2), ("y", 1)]),
        node("b", &[("api", 1)]),
        node("c", &[("api", 2)]),
        NodeState::new("o1", "other"),
        NodeState::new("o2", "other"),
    ];
    let unknown = [UnknownLoad {
        workload: "y".into(),
        why: "no series".into(),
        group: None,
    }];
    let plan = |nodes: &[NodeState], y: &WorkloadSpec| {
        let w = [load(&api, 5, 1.0), load(y, 1, 1.0)];
        let mut p = NodePlanner::new();
        // The removal window starts (a known pool's) or the pool holds at once (unknown).
        p.plan_partial(0, &pools, nodes, &w, &unknown);
        p.plan_partial(600, &pools, nodes, &w, &unknown)
    };
    // y runs on gp only: gp holds, naming y; other removes its idle node as usual.
    let ds = plan(&on_gp, &y);
    let got: Vec<(DecisionKind, &str)> = ds.iter().map(|d| (d.kind, d.target.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (DecisionKind::Hold, "gp"),
            (DecisionKind::RemoveNode, "other")
        ],
        "{ds:#?}"
    );
    assert!(ds[0]
        .reason
        .contains("scale-in held: 1 workload with unknown load"));
    assert!(ds[0].reason.contains("'y' (no series)"), "{}", ds[0].reason);
    // Configured for other (new replicas go there): both hold.
    y.pool = Some("other".into());
    let ds = plan(&on_gp, &y);
    assert_eq!(kinds(&ds), vec![DecisionKind::Hold; 2], "{ds:#?}");
    y.pool = None;
    // Where it runs not known (no node has its replicas): both hold.
    let mut nowhere = on_gp.clone();
    nowhere[0].replicas.retain(|(w, _)| w != "y");
    let mut ds = plan(&nowhere, &y);
    // (Its one replica is placed anew, as the planner sees none.)
    ds.retain(|d| d.kind != DecisionKind::Place);
    assert_eq!(kinds(&ds), vec![DecisionKind::Hold; 2], "{ds:#?}");
    assert!(ds[1].reason.contains("'y' (no series)"), "{}", ds[1].reason);
    // And a known load everywhere: both pools remove.
    let w = [load(&api, 5, 1.0), load(&y, 1, 1.0)];
    let mut p = NodePlanner::new();
    assert!(p.plan(0, &pools, &on_gp, &w).is_empty());
    let ds = p.plan(600, &pools, &on_gp, &w);
    assert_eq!(kinds(&ds), vec![DecisionKind::RemoveNode; 2], "{ds:#?}");
}

/// A reason names the first three unknown workloads and counts the rest, and names their
/// groups (a stale shard) once each.
#[test]
fn unknown_reason_names_three_and_counts_the_rest() {
    let api = wl("api", 1.0, 1.0);
    let nodes = [node("a", &[("api", 1)]), node("b", &[])];
    let unknown: Vec<UnknownLoad> = (0..5)
        .map(|i| UnknownLoad {
            workload: format!("u{i}"),
            why: "gone".into(),
            group: (i > 0).then(|| format!("shard {} stale", 1 + i % 2)),
        })
        .collect();
    let w = [load(&api, 1, 1.0)];
    let ds = NodePlanner::new().plan_partial(0, &[pool()], &nodes, &w, &unknown);
    assert_eq!(kinds(&ds), vec![DecisionKind::Hold], "{ds:#?}");
    let r = &ds[0].reason;
    assert!(r.contains("5 workloads with unknown load"), "{r}");
    assert!(
        r.contains("'u0' (gone), 'u1' (gone), 'u2' (gone) and 2 more"),
        "{r}"
    );
    assert!(!r.contains("'u3'"), "{r}");
    // What several have in common is named once, each group once, in order.
    assert!(
        r.contains("at their requests; shard 1 stale; shard 2 stale): 'u0'"),
        "{r}"
    );
}

#[test]
fn removal_respects_min_nodes() {
    let mut pl = pool();
    pl.min_nodes = 2;
    pl.scale_down_window = 0;
    let nodes = [node("a", &[]), node("b", &[])];
    assert!(NodePlanner::new().plan(0, &[pl], &nodes, &[]).is_empty());
}

#[test]
fn invalid_pools_and_unknown_names_are_skipped() {
    let mut bad = pool();
    bad.capacity = Resources::new(0.0, 0.0);
    let api = wl("api", 1.0, 1.0);
    let nodes = [
        node("a", &[("ghost", 5), ("api", 1)]),
        NodeState {
            pool: "nowhere".into(),
            ..node("z", &[])
        },
    ];
    assert!(NodePlanner::new()
        .plan(0, &[bad], &nodes, &[load(&api, 3, 1.0)])
        .is_empty());
}

/// (pools: min, span, instant removal), (nodes: replicas per workload),
/// (workloads: cpu, memory GiB, desired, utilisation).
type Case = (
    Vec<(u32, u32, bool)>,
    Vec<Vec<u32>>,
    Vec<(f64, f64, u32, f64)>,
);

fn arb_case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec((0u32..3, 0u32..8, any::<bool>()), 1..3),
        proptest::collection::vec(proptest::collection::vec(0u32..4, 4), 0..12),
        proptest::collection::vec(
            (
                0.0f64..3.0,
                0.0f64..6.0,
                0u32..20,
                prop_oneof![0.0f64..3.0, Just(f64::NAN), Just(f64::INFINITY)],
            ),
            4,
        ),
    )
}

proptest! {
    /// No panics on odd inputs; node counts stay in bounds; the same input in another
    /// order gives the same decisions.
    #[test]
    fn node_planner_invariants((pools_in, nodes_in, wls) in arb_case(), now in 0i64..10_000) {
        let pools: Vec<PoolSpec> = pools_in
            .iter()
            .enumerate()
            .map(|(i, &(min, span, instant))| {
                let mut p = PoolSpec::new(&format!("p{i}"), Resources::new(4.0, 16.0 * GI), min + span);
                p.min_nodes = min;
                if instant {
                    p.scale_down_window = 0;
                }
                p
            })
            .collect();
        let specs: Vec<WorkloadSpec> = wls
            .iter()
            .enumerate()
            .map(|(i, &(cpu, mem, _, _))| {
                let mut s = wl(&format!("w{i}"), cpu, mem);
                s.pool = Some(format!("p{}", i % pools.len()));
                s
            })
            .collect();
        let loads: Vec<WorkloadLoad> =
            specs.iter().zip(&wls).map(|(s, &(_, _, desired, u))| load(s, desired, u)).collect();
        let nodes: Vec<NodeState> = nodes_in
            .iter()
            .enumerate()
            .map(|(i, reps)| NodeState {
                name: format!("n{i:02}"),
                pool: format!("p{}", i % pools.len()),
                replicas: reps.iter().enumerate().map(|(w, &c)| (format!("w{w}"), c)).collect(),
                ..NodeState::default()
            })
            .collect();
        let a = NodePlanner::new().plan(now, &pools, &nodes, &loads);
        let mut rev_nodes = nodes.clone();
        rev_nodes.reverse();
        let mut rev_loads = loads.clone();
        rev_loads.reverse();
        let mut rev_pools = pools.clone();
        rev_pools.reverse();
        let b = NodePlanner::new().plan(now, &rev_pools, &rev_nodes, &rev_loads);
        prop_assert_eq!(&a, &b);
        for d in &a {
            if let Some(p) = pools.iter().find(|p| p.name == d.target) {
                match d.kind {
                    DecisionKind::AddNode => prop_assert!(d.to <= p.max_nodes && d.to > d.from, "{d:?}"),
                    DecisionKind::RemoveNode => prop_assert!(d.to >= p.min_nodes && d.to + 1 == d.from, "{d:?}"),
                    _ => {}
                }
            }
            prop_assert!(!d.reason.is_empty());
        }
        // Placements never exceed what was asked for.
        for (s, l) in specs.iter().zip(&loads) {
            let on_nodes: u32 = nodes.iter().flat_map(|n| &n.replicas).filter(|r| r.0 == s.name).map(|r| r.1).sum();
            let placed: u32 = a.iter().filter(|d| d.kind == DecisionKind::Place && d.target == s.name).map(|d| d.to - d.from).sum();
            prop_assert!(on_nodes + placed <= l.desired.max(on_nodes), "{}", s.name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// The shortcuts of steps 1 and 2 (nodes holding a workload, the last node while it
    /// fits, nothing after nothing fitted) give the decisions the plain scans give, over
    /// several cycles, with equal sizes (ties by name) and mixed ones, cordoned nodes and
    /// nodes already over the threshold.
    #[test]
    fn shortcuts_change_no_decision(
        n_nodes in 1usize..40,
        sizes in proptest::collection::vec(
            (prop_oneof![Just(0.5f64), 0.0f64..2.0], prop_oneof![Just(2.0f64), 0.0f64..8.0],
             0u32..60, prop_oneof![Just(1.0f64), 0.0f64..3.0]),
            1..14,
        ),
        placed in proptest::collection::vec(0u32..6, 0..200),
        cordoned in proptest::collection::vec(any::<bool>(), 40),
        thr in prop_oneof![Just(0.8f64), 0.3f64..1.0],
    ) {
        let mut pool = PoolSpec::new("gp", Resources::new(8.0, 32.0 * GI), 60);
        pool.target_utilization = thr;
        pool.scale_down_window = 0;
        let specs: Vec<WorkloadSpec> = sizes
            .iter()
            .enumerate()
            .map(|(i, &(cpu, mem, _, _))| wl(&format!("w{i:02}"), cpu, mem))
            .collect();
        let nodes: Vec<NodeState> = (0..n_nodes)
            .map(|n| NodeState {
                name: format!("n{n:02}"),
                pool: "gp".into(),
                replicas: (0..specs.len())
                    .map(|w| (specs[w].name.clone(), placed.get(n * specs.len() + w).copied().unwrap_or(0)))
                    .collect(),
                unschedulable: cordoned[n] && n % 3 == 0,
                ..NodeState::default()
            })
            .collect();
        let (mut fast, mut plain) = (NodePlanner::new(), NodePlanner::new());
        for cycle in 0..3i64 {
            let loads: Vec<WorkloadLoad> = specs
                .iter()
                .zip(&sizes)
                .map(|(s, &(_, _, desired, u))| load(s, desired + cycle as u32, u))
                .collect();
            let now = cycle * 300;
            let pools = std::slice::from_ref(&pool);
            let a = fast.plan_with(now, pools, &nodes, &loads, &[], true);
            let b = plain.plan_with(now, pools, &nodes, &loads, &[], false);
            prop_assert_eq!(a, b);
        }
    }
}
