//! `prescale simulate --tasks FILE|gen:N`: a task list through every queue discipline ×
//! placement, optionally under tenant allocation policies and on an elastic pool
//! (`--autoscale`) compared with the fixed cluster.

use super::{AllocationArg, SimulateArgs};
use anyhow::{bail, Context, Result};
use prescale::atomic_file::write_atomic;
use prescale::sim::batch::allocation;
use prescale::sim::batch::elastic::{self, ElasticPool};
use prescale::sim::batch::queue::{self, Discipline, Placement, QueueOptions};
use prescale::sim::batch::tasks::{self, Node, Task};
use prescale::sim::batch::TaskReport;
use std::path::Path;

/// Runs the task list `spec` (a file or `gen:N`) and writes the report.
pub(super) fn run(a: &SimulateArgs, spec: &str) -> Result<()> {
    if !(a.load.is_finite() && a.load > 0.0 && a.load <= 100.0) {
        bail!(
            "--load must be a share of the cluster's CPU above 0 (at most 100), got {}",
            a.load
        );
    }
    if !(a.aging_per_hour.is_finite() && a.aging_per_hour >= 0.0) {
        bail!("--aging-per-hour must be ≥ 0, got {}", a.aging_per_hour);
    }
    let nodes: Vec<Node> = match tasks::gen_count(&a.nodes)? {
        Some(n) => tasks::generate_nodes(n),
        None => tasks::read_nodes(Path::new(&a.nodes))?,
    };
    let (task_list, source): (Vec<Task>, String) = match tasks::gen_count(spec)? {
        Some(n) => (
            tasks::generate_tasks(n, &nodes, a.load, a.seed),
            format!("{n} generated tasks (seed {})", a.seed),
        ),
        None => (tasks::read_tasks(Path::new(spec))?, spec.to_string()),
    };
    let opts = QueueOptions {
        quantum: a.quantum as f64,
        mlfq_boost: a.mlfq_boost as f64,
        aging: a.aging_per_hour / 3600.0,
        starve_after: a.starve_after as f64,
        ..QueueOptions::default()
    };
    let mut results = Vec::new();
    for &d in &a.queue {
        for &p in &a.placement {
            let (d, p): (Discipline, Placement) = (d.into(), p.into());
            let started = std::time::Instant::now();
            let m = queue::run(&task_list, &nodes, d, p, &opts)?;
            tracing::debug!(
                "{} × {}: {:.2}s",
                d.as_str(),
                p.as_str(),
                started.elapsed().as_secs_f64()
            );
            results.push(m);
        }
    }
    let placements: Vec<Placement> = a.placement.iter().map(|&p| p.into()).collect();
    let alloc_placements: Vec<Placement> = placements
        .iter()
        .copied()
        .filter(|p| allocation::PLACEMENTS.contains(p))
        .collect();
    if a.allocation.contains(&AllocationArg::None) {
        bail!("--allocation none is for shared trace mode (--trace … --pool-cap); task mode has static, dynamic, priority, fair and market");
    }
    if !a.allocation.is_empty() && alloc_placements.is_empty() {
        bail!("--allocation runs place by least-loaded, best-fit or ffd: add one of them to --placement");
    }
    let mut allocations = Vec::new();
    for &al in &a.allocation {
        for &p in &alloc_placements {
            allocations.push(allocation::run(
                &task_list,
                &nodes,
                al.into(),
                p,
                opts.starve_after,
            )?);
        }
    }
    let autoscale = if a.autoscale.autoscale {
        let pool = elastic_pool(a, &nodes, &task_list);
        pool.validate()?;
        let started = std::time::Instant::now();
        let r = elastic::compare(&task_list, &results, nodes.len(), &pool, &opts)?;
        tracing::debug!("autoscaled runs: {:.2}s", started.elapsed().as_secs_f64());
        Some(r)
    } else {
        None
    };
    let (first, last) = task_list
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
            (lo.min(t.submit), hi.max(t.submit))
        });
    let report = TaskReport {
        tasks: source,
        nodes: nodes.len(),
        asked_load: tasks::gen_count(spec)?.map(|_| a.load),
        offered_load: tasks::offered_load(&task_list, &nodes),
        arrival_period: (last - first).max(0.0),
        options: opts,
        runs: results,
        allocations,
        autoscale,
    };
    print!("{}", report.table());
    std::fs::create_dir_all(&a.report).with_context(|| a.report.display().to_string())?;
    if let Some(auto) = &report.autoscale {
        for p in auto.write(&a.report)? {
            println!("wrote {}", p.display());
        }
    }
    let json = a.report.join("report.json");
    let text = serde_json::to_vec_pretty(&report)?;
    write_atomic(&json, |w| w.write_all(&text)).with_context(|| json.display().to_string())?;
    println!("wrote {}", json.display());
    if tasks::gen_count(spec)?.is_some() {
        let p = a.report.join("tasks.csv");
        tasks::write_tasks(&p, &task_list).with_context(|| p.display().to_string())?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// The elastic pool of `--autoscale`: `--node-*` over the default shape of `nodes` and
/// `tasks`, with the replay flags it shares (quantile, headroom, training).
fn elastic_pool(a: &SimulateArgs, nodes: &[Node], tasks: &[Task]) -> ElasticPool {
    let x = &a.autoscale;
    let base = elastic::default_shape(nodes, tasks);
    let shape = Node {
        cpu: x.node_cpu.unwrap_or(base.cpu),
        mem: x.node_mem.unwrap_or(base.mem),
        gpu: x.node_gpu.unwrap_or(base.gpu),
        weight: x.node_cpu.unwrap_or(base.cpu).max(1.0),
        ..base
    };
    ElasticPool {
        shape,
        boot_time: x.node_boot_time,
        min_nodes: x.min_nodes,
        max_nodes: x
            .max_nodes
            .unwrap_or_else(|| (2 * nodes.len()).min(u32::MAX as usize).max(1) as u32),
        scale_down_window: x.node_scale_down_window,
        interval: x.plan_interval,
        quantile: a.quantile.unwrap_or(0.9),
        headroom: a.headroom.unwrap_or(0.0),
        train_fraction: a.train_fraction,
        trees: a.trees,
        seed: a.seed,
    }
}
