use super::*;
use crate::sim::batch::queue::{Discipline, Placement};

fn task(id: u64, submit: f64, duration: f64, cpu: f64) -> Task {
    Task {
        id,
        submit,
        duration,
        priority: 0,
        req: Res {
            cpu,
            mem: cpu,
            gpu: 0.0,
        },
        tenant: String::new(),
        bid: 1.0,
    }
}

fn shape() -> Node {
    Node {
        name: POOL.into(),
        cpu: 4.0,
        mem: 4.0,
        gpu: 0.0,
        weight: 1.0,
    }
}

fn pool() -> ElasticPool {
    ElasticPool {
        shape: shape(),
        boot_time: 60,
        min_nodes: 1,
        max_nodes: 4,
        scale_down_window: 120,
        interval: 60,
        quantile: 0.9,
        headroom: 0.0,
        train_fraction: 0.3,
        trees: 10,
        seed: 1,
    }
}

/// 16 one-core tasks of 10 minutes at t=0, then a one-core, 10-second task every 5
/// minutes until t=3000 s so the run goes on after the burst.
fn burst() -> Vec<Task> {
    let mut t: Vec<Task> = (0..16).map(|i| task(i, 0.0, 600.0, 1.0)).collect();
    for k in 1..=10 {
        t.push(task(100 + k, 300.0 * k as f64, 10.0, 1.0));
    }
    t
}

fn fixed(tasks: &[Task]) -> QueueMetrics {
    let node = Node {
        name: "fixed".into(),
        ..shape()
    };
    queue::run(
        tasks,
        &[node],
        Discipline::Fcfs,
        Placement::LeastLoaded,
        &QueueOptions::default(),
    )
    .unwrap()
}

#[test]
fn burst_adds_nodes_ahead_and_removes_them_after() {
    let tasks = burst();
    let f = fixed(&tasks);
    let r = run(&tasks, f.clone(), 1, &pool(), &QueueOptions::default()).unwrap();
    // Fixed, one 4-core node: the burst runs in four waves of four; waits 0, 600, 1200,
    // 1800 s per wave.
    let burst_wait = |m: &QueueMetrics| {
        m.timeline[..16]
            .iter()
            .zip(&tasks)
            .map(|(o, t)| o.finish - t.submit - t.duration)
            .sum::<f64>()
            / 16.0
    };
    assert!((burst_wait(&f) - 900.0).abs() < 1e-9, "{}", burst_wait(&f));
    // Autoscaled: at t=0 the backlog is 16 cores = 4 nodes; the planner asks for 3 more,
    // which take the other 12 tasks when they are up at t=60.
    let first = &r.decisions[0];
    assert_eq!(
        (first.t, first.kind.as_str(), first.from, first.to),
        (0.0, "add-node", 1, 4),
        "{first:?}"
    );
    assert!(
        first.reason.contains("ahead of 1m node boot"),
        "{}",
        first.reason
    );
    assert!(
        (burst_wait(&r.autoscaled) - 45.0).abs() < 1e-9,
        "{}",
        burst_wait(&r.autoscaled)
    );
    let late: Vec<_> = r.autoscaled.timeline[..16]
        .iter()
        .filter(|o| o.start > 0.0)
        .collect();
    assert_eq!(late.len(), 12);
    assert!(
        late.iter().all(|o| o.start == 60.0 && o.node >= 1),
        "{late:?}"
    );
    assert!(r.autoscaled.mean_wait < f.mean_wait);
    // After the burst the planner drains the extra nodes once removal has fitted for the
    // scale-down window, never below the minimum.
    assert_eq!(r.cluster.added, 3);
    assert_eq!(r.cluster.removed, 3, "{:#?}", r.decisions);
    assert_eq!((r.cluster.peak_nodes, r.cluster.min_nodes), (4, 1));
    let removals: Vec<f64> = r
        .decisions
        .iter()
        .filter(|d| d.kind == "remove-node")
        .map(|d| d.t)
        .collect();
    assert_eq!(removals.len(), 3);
    // The burst ends at 660 s; each removal waits its own window.
    assert!(removals[0] >= 660.0 + 120.0, "{removals:?}");
    assert!(
        removals.windows(2).all(|w| w[1] - w[0] >= 120.0),
        "{removals:?}"
    );
    // Cheaper than keeping four nodes for the run, dearer than one.
    let hours = r.autoscaled.makespan / 3600.0;
    assert!(r.cluster.node_hours > hours && r.cluster.node_hours < 4.0 * hours);
    assert!(r.timeline.iter().all(|s| s.paid <= 4 && s.ready >= 1));
}

#[test]
fn max_and_min_nodes_hold() {
    let tasks = burst();
    let f = fixed(&tasks);
    let mut p = pool();
    p.max_nodes = 2;
    p.min_nodes = 2;
    let r = run(&tasks, f.clone(), 1, &p, &QueueOptions::default()).unwrap();
    assert_eq!((r.cluster.peak_nodes, r.cluster.min_nodes), (2, 2));
    assert_eq!((r.cluster.added, r.cluster.removed), (0, 0));
    assert!(r
        .decisions
        .iter()
        .any(|d| d.kind == "hold" && d.reason.contains("pool at max 2")));
    assert!(r.timeline.iter().all(|s| s.paid == 2));
    // From zero nodes: the first plan asks for nodes and nothing starts before they boot.
    p.min_nodes = 0;
    p.max_nodes = 3;
    let r = run(&tasks, f, 1, &p, &QueueOptions::default()).unwrap();
    assert!(r.autoscaled.timeline.iter().all(|o| o.start >= 60.0));
    assert!(r.cluster.peak_nodes <= 3);
    assert!(r.cluster.removed >= 1);
}

#[test]
fn fallback_is_persistence_plus_growth() {
    let mut s = BacklogScaler::new(&pool(), 0.0, 0.0).unwrap();
    // Window 2 m on a 1 m step: horizon 2 steps.
    s.history[0] = vec![0.0, 2.0, 4.0];
    // Peak of the last two (4) vs 4 + growth (4 - 0) / 2 per step × 2 = 8.
    assert_eq!(s.fallback(0), 8.0);
    s.history[0] = vec![9.0, 5.0, 1.0];
    assert_eq!(s.fallback(0), 5.0);
    s.history[0] = vec![3.0];
    assert_eq!(s.fallback(0), 3.0);
    assert!(s.forecaster.contains("throughout"), "{}", s.forecaster);
}

#[test]
fn forest_takes_over_on_a_long_run_and_runs_are_deterministic() {
    // Three hours of arrivals in waves: long enough for the forest.
    let tasks: Vec<Task> = (0..540)
        .map(|i| {
            let t = i as f64 * 20.0;
            let wave = ((t / 1800.0).floor() as u64 % 2) as f64;
            task(i, t, 120.0 + 240.0 * wave, 1.0 + wave)
        })
        .collect();
    let f = fixed(&tasks);
    let mut p = pool();
    p.max_nodes = 8;
    let a = run(&tasks, f.clone(), 1, &p, &QueueOptions::default()).unwrap();
    assert!(a.forest_cycles > 0, "{}", a.forecaster);
    assert!(a.forecaster.contains("forest trained"), "{}", a.forecaster);
    assert!(a.fallback_cycles > 0);
    let b = run(&tasks, f, 1, &p, &QueueOptions::default()).unwrap();
    // Debug text, because the GPU utilisation of a pool without GPUs is NaN.
    assert_eq!(format!("{:?}", a.autoscaled), format!("{:?}", b.autoscaled));
    assert_eq!(a.cluster, b.cluster);
    assert_eq!(a.timeline, b.timeline);
    assert_eq!(a.decisions, b.decisions);
}

#[test]
fn default_shape_prefers_a_common_shape_that_fits() {
    let nodes = crate::sim::batch::tasks::generate_nodes(8);
    let cpu_only = [task(0, 0.0, 1.0, 4.0)];
    let s = default_shape(&nodes, &cpu_only);
    assert_eq!((s.cpu, s.mem, s.gpu), (32.0, 128.0, 0.0));
    let mut gpu = task(1, 0.0, 1.0, 4.0);
    gpu.req.gpu = 1.0;
    let s = default_shape(&nodes, &[gpu.clone()]);
    assert_eq!((s.cpu, s.mem, s.gpu), (32.0, 128.0, 4.0));
    gpu.req.cpu = 48.0;
    let s = default_shape(&nodes, &[gpu]);
    assert_eq!((s.cpu, s.mem, s.gpu), (64.0, 256.0, 4.0));
    let mut bad = pool();
    bad.min_nodes = 5;
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("--min-nodes"));
}
