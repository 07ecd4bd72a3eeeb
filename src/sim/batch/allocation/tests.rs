use super::*;
use crate::sim::batch::tasks::{generate_nodes, generate_tasks, Res};

fn task(id: u64, submit: f64, duration: f64, tenant: &str, cpu: f64, mem: f64) -> Task {
    Task {
        id,
        submit,
        duration,
        priority: 0,
        req: Res { cpu, mem, gpu: 0.0 },
        tenant: tenant.into(),
        bid: 1.0,
    }
}

fn node(cpu: f64, mem: f64) -> Node {
    Node {
        name: "n".into(),
        cpu,
        mem,
        gpu: 0.0,
        weight: 1.0,
    }
}

fn run1(tasks: &[Task], nodes: &[Node], a: Allocation) -> AllocationMetrics {
    run(tasks, nodes, a, Placement::LeastLoaded, 3600.0).unwrap()
}

/// Tasks started at time 0, per tenant.
fn started_at_zero(tasks: &[Task], m: &AllocationMetrics, tenant: &str) -> usize {
    tasks
        .iter()
        .zip(&m.timeline)
        .filter(|(t, (s, _))| t.tenant == tenant && *s == 0.0)
        .count()
}

/// The DRF paper's example (Ghodsi et al. 2011, §4): 9 CPUs and 18 GB; user A's tasks ask
/// <1 CPU, 4 GB>, B's <3 CPU, 1 GB>. DRF gives A three tasks (3 CPU, 12 GB: dominant share
/// 12/18 = 2/3) and B two (6 CPU, 2 GB: 6/9 = 2/3). By hand, from zero: A (2/9), B (1/3),
/// A (4/9), B (2/3), A (2/3); then A needs a CPU and B three, and none is left.
#[test]
fn fair_share_is_the_drf_papers_example() {
    let mut tasks = Vec::new();
    for i in 0..10 {
        tasks.push(task(i, 0.0, 100.0, "A", 1.0, 4.0));
        tasks.push(task(100 + i, 0.0, 100.0, "B", 3.0, 1.0));
    }
    let nodes = [node(9.0, 18.0)];
    let m = run1(&tasks, &nodes, Allocation::Fair);
    assert_eq!(started_at_zero(&tasks, &m, "A"), 3);
    assert_eq!(started_at_zero(&tasks, &m, "B"), 2);
    // First come, first served instead (every task submitted at 0, so by id: A's ten first,
    // and only nine fit by CPU... and by memory four): A takes 4 tasks (16 GB), B none.
    let d = run1(&tasks, &nodes, Allocation::Dynamic);
    assert_eq!(started_at_zero(&tasks, &d, "A"), 4);
    assert_eq!(started_at_zero(&tasks, &d, "B"), 0);
    assert_eq!(
        fair::dominant_share(
            &Res {
                cpu: 6.0,
                mem: 2.0,
                gpu: 0.0
            },
            &nodes[0].capacity()
        ),
        6.0 / 9.0
    );
}

/// A higher priority is never overtaken. One 2-core node: L0 and L1 (1 core, 10 s) fill it
/// at 0; L2 (1 core, 10 s) arrives at 0.5; H (2 cores, 5 s, priority 9) at 1; L3 at 0.6.
/// Priority: H starts at 10 when both cores free, ends 15; L2 and L3 start at 15.
/// Dynamic (first come): L2 and L3 start at 10, H waits for both: starts at 20.
#[test]
fn priority_never_lets_a_lower_priority_overtake() {
    let mut tasks = vec![
        task(0, 0.0, 10.0, "a", 1.0, 1.0),
        task(1, 0.0, 10.0, "a", 1.0, 1.0),
        task(2, 0.5, 10.0, "a", 1.0, 1.0),
        task(4, 0.6, 10.0, "a", 1.0, 1.0),
        task(3, 1.0, 5.0, "b", 2.0, 2.0),
    ];
    tasks[4].priority = 9;
    let nodes = [node(2.0, 2.0)];
    let p = run1(&tasks, &nodes, Allocation::Priority);
    let starts = |m: &AllocationMetrics| m.timeline.iter().map(|t| t.0).collect::<Vec<_>>();
    assert_eq!(starts(&p), vec![0.0, 0.0, 15.0, 15.0, 10.0]);
    let d = run1(&tasks, &nodes, Allocation::Dynamic);
    assert_eq!(starts(&d), vec![0.0, 0.0, 10.0, 10.0, 20.0]);

    // On a generated, overloaded cluster: no task ever starts while a task of higher
    // priority that arrived before it started is waiting.
    let nodes = generate_nodes(4);
    let tasks = generate_tasks(600, &nodes, 1.3, 5);
    let m = run1(&tasks, &nodes, Allocation::Priority);
    for (a, (sa, _)) in tasks.iter().zip(&m.timeline) {
        for (b, (sb, _)) in tasks.iter().zip(&m.timeline) {
            if a.priority > b.priority && a.submit <= *sb {
                assert!(sa <= sb, "task {} (priority {}) started at {sb}, before task {} (priority {}) waiting since {} started at {sa}", b.id, b.priority, a.id, a.priority, a.submit);
            }
        }
    }
    assert!(m.starved > 0, "overloaded: low priorities starve");
    assert_eq!(
        m.tenants.iter().map(|t| t.starved).sum::<usize>(),
        m.starved
    );
}

/// Market: on one node that runs one task at a time, with everything submitted at once,
/// tasks start in the order of their bids, highest first: sorting by bid.
#[test]
fn market_is_sorting_by_bid() {
    let bids = [3.0, 9.5, 0.5, 7.0, 2.0, 8.0, 1.0];
    let tasks: Vec<Task> = bids
        .iter()
        .enumerate()
        .map(|(i, &b)| Task {
            bid: b,
            ..task(
                i as u64,
                0.0,
                10.0,
                if i % 2 == 0 { "x" } else { "y" },
                1.0,
                1.0,
            )
        })
        .collect();
    let m = run1(&tasks, &[node(1.0, 1.0)], Allocation::Market);
    let mut by_start: Vec<(f64, f64)> = tasks
        .iter()
        .zip(&m.timeline)
        .map(|(t, s)| (s.0, t.bid))
        .collect();
    by_start.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut sorted = bids.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(by_start.iter().map(|s| s.1).collect::<Vec<_>>(), sorted);
    assert_eq!(
        by_start.iter().map(|s| s.0).collect::<Vec<_>>(),
        (0..7).map(|k| 10.0 * k as f64).collect::<Vec<_>>()
    );
    // The last task to start while another waited bid 1.0.
    assert_eq!(m.clearing_bid, Some(1.0));
}

/// Static: two tenants, one 4-core node, so 2 cores each. A submits four 1-core 10 s tasks
/// at 0; B one at 5. Static: A runs two at 0 and two at 10 though two cores stand idle; B
/// starts at 5 at once. Dynamic: A takes all four cores at 0, B waits until 10.
#[test]
fn static_shares_hold_capacity_back() {
    let tasks = vec![
        task(0, 0.0, 10.0, "A", 1.0, 1.0),
        task(1, 0.0, 10.0, "A", 1.0, 1.0),
        task(2, 0.0, 10.0, "A", 1.0, 1.0),
        task(3, 0.0, 10.0, "A", 1.0, 1.0),
        task(4, 5.0, 10.0, "B", 1.0, 1.0),
    ];
    let nodes = [node(4.0, 4.0)];
    let starts = |m: &AllocationMetrics| m.timeline.iter().map(|t| t.0).collect::<Vec<_>>();
    let s = run1(&tasks, &nodes, Allocation::Static);
    assert_eq!(starts(&s), vec![0.0, 0.0, 10.0, 10.0, 5.0]);
    let d = run1(&tasks, &nodes, Allocation::Dynamic);
    assert_eq!(starts(&d), vec![0.0, 0.0, 0.0, 0.0, 10.0]);
    // Makespan 20 s either way; static used 50 core-s of 80, dynamic the same 50 of 80.
    assert_eq!(s.makespan, 20.0);
    assert!((s.utilisation.cpu - 50.0 / 80.0).abs() < 1e-12);
    // Per tenant: static's A waited 0,0,10,10 (mean 5), B 0; dynamic's A 0, B 5.
    assert_eq!((s.tenants[0].mean_wait, s.tenants[1].mean_wait), (5.0, 0.0));
    assert_eq!((d.tenants[0].mean_wait, d.tenants[1].mean_wait), (0.0, 5.0));
    // A task larger than its tenant's share is refused, naming it.
    let big = vec![
        task(7, 0.0, 1.0, "A", 3.0, 1.0),
        task(8, 0.0, 1.0, "B", 1.0, 1.0),
    ];
    let e = run(
        &big,
        &nodes,
        Allocation::Static,
        Placement::LeastLoaded,
        60.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("task 7 of tenant 'A'"), "{e}");
}

#[test]
fn jain_index_on_known_vectors() {
    assert_eq!(jain_index(&[1.0, 1.0, 1.0, 1.0]), 1.0);
    assert_eq!(jain_index(&[1.0, 0.0, 0.0, 0.0]), 0.25);
    // (1 + 2 + 3)² / (3 · 14) = 36 / 42.
    assert!((jain_index(&[1.0, 2.0, 3.0]) - 36.0 / 42.0).abs() < 1e-15);
    assert_eq!(jain_index(&[5.0, 5.0]), 1.0);
    assert_eq!(jain_index(&[]), 1.0);
}

#[test]
fn every_policy_runs_every_task_once_and_deterministically() {
    let nodes = generate_nodes(6);
    let tasks = generate_tasks(800, &nodes, 0.9, 11);
    for a in Allocation::ALL {
        for p in PLACEMENTS {
            let m = run(&tasks, &nodes, a, p, 1800.0).unwrap();
            assert_eq!(m, run(&tasks, &nodes, a, p, 1800.0).unwrap());
            assert!(
                m.timeline
                    .iter()
                    .zip(&tasks)
                    .all(|((s, f), t)| *s >= t.submit && (f - s - t.duration).abs() < 1e-6),
                "{a:?} {p:?}"
            );
            assert_eq!(
                m.tenants.iter().map(|t| t.tasks).sum::<usize>(),
                tasks.len()
            );
            assert!(
                m.jain > 1.0 / 3.0 - 1e-12 && m.jain <= 1.0 + 1e-12,
                "{}",
                m.jain
            );
        }
    }
    let e = run(
        &tasks,
        &nodes,
        Allocation::Fair,
        Placement::RoundRobin,
        60.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not 'rr'"), "{e}");
}
