//! `prescale simulate --trace A --trace B … --pool-cap N`: several workloads replayed on one
//! capped pool, compared across allocation policies ([`prescale::sim::replay::shared`]).
//! Every series of every trace is one workload, planned by the predictive policy on its own
//! forecasts (computed once), and the policies share the cap between their wants.

use super::replay::{
    check_replay_flags, load_model, model, read_trace, scenario_options, workload,
};
use super::{AllocationArg, SimulateArgs};
use anyhow::{bail, Context, Result};
use prescale::atomic_file::write_atomic;
use prescale::plan::{Allocation, Claim};
use prescale::sim::replay::scenario::Scenario;
use prescale::sim::replay::shared::{self, Member, SharedResult};
use prescale::sim::replay::Knobs;
use serde::Serialize;

/// Every allocation policy, in report order: the default of shared mode.
const ALL: [Allocation; 5] = [
    Allocation::None,
    Allocation::Priority,
    Allocation::Fair,
    Allocation::Static,
    Allocation::Market,
];

/// What `report.json` holds in shared mode.
#[derive(Serialize)]
struct SharedReport<'a> {
    pool_cap: u32,
    knobs: Knobs,
    workloads: Vec<WorkloadRow>,
    results: &'a [SharedResult],
}

/// One workload as it was replayed.
#[derive(Serialize)]
struct WorkloadRow {
    name: String,
    trace: String,
    replica_capacity: f64,
    boot_time: i64,
    priority: i32,
    weight: f64,
    share: f64,
    bid: f64,
    team: String,
}

/// Runs shared mode.
pub(super) fn run(a: &SimulateArgs) -> Result<()> {
    check_replay_flags(a)?;
    let Some(cap) = a.pool_cap else {
        bail!("several --trace files are replayed on one pool: give --pool-cap REPLICAS");
    };
    if a.trace.is_empty() {
        bail!("--pool-cap needs --trace (one or more files)");
    }
    for (set, flag) in [
        (a.series.is_some(), "--series"),
        (a.sweep, "--sweep"),
        (a.config.is_some(), "--config"),
        (a.workload.is_some(), "--workload"),
    ] {
        if set {
            bail!("{flag} is for single-trace mode; with --pool-cap every series of every --trace is one workload");
        }
    }
    let traces: Vec<&std::path::Path> = a.trace.iter().map(|t| t.as_path()).collect();
    let loaded = load_model(a, &traces)?;
    let step = a.step.or(loaded.as_ref().map(|m| m.spec.step));
    let knobs = Knobs {
        quantile: a.quantile.unwrap_or(0.9),
        max_short: a.max_short,
        headroom: a.headroom.unwrap_or(0.0),
        target_utilization: a.target_utilization.unwrap_or(1.0),
        ..Knobs::default()
    };
    let mut members: Vec<Member> = Vec::new();
    let mut rows = Vec::new();
    for trace in &a.trace {
        for s in read_trace(trace, step)? {
            let split = ((s.len() as f64) * a.train_fraction).round() as usize;
            if split < 2 || split + 2 > s.len() {
                bail!(
                    "{}: series '{}' has {} steps, too short to split {:.0}% history",
                    trace.display(),
                    s.key,
                    s.len(),
                    a.train_fraction * 100.0
                );
            }
            let w = workload(a, trace, &s, &s.values[..split])?;
            let (m, _) = model(a, loaded.clone(), &s, split, true)?;
            let opts = scenario_options(a, split, w, m.as_ref())?;
            let sc = Scenario::new(&s, &opts, m.as_ref())
                .with_context(|| format!("{}: series '{}'", trace.display(), s.key))?;
            rows.push((trace.display().to_string(), sc.workload.clone()));
            members.push(Member::new(sc));
        }
    }
    apply_opts(&a.workload_opts, &mut members)?;
    let allocations: Vec<Allocation> = if a.allocation.is_empty() {
        ALL.to_vec()
    } else {
        let mut v: Vec<Allocation> = a
            .allocation
            .iter()
            .map(|&x| shared_policy(x))
            .collect::<Result<_>>()?;
        v.dedup();
        v
    };
    let mut results = Vec::new();
    for &al in &allocations {
        results.push(shared::replay(&members, cap, al, &knobs)?);
    }
    print!("{}", shared::table(&results, cap));
    let report = SharedReport {
        pool_cap: cap,
        knobs,
        workloads: members
            .iter()
            .zip(rows)
            .map(|(m, (trace, w))| WorkloadRow {
                name: m.keys.name.clone(),
                trace,
                replica_capacity: w.replica_capacity,
                boot_time: w.boot_time,
                priority: m.keys.priority,
                weight: m.keys.weight,
                share: m.keys.share,
                bid: m.keys.bid,
                team: m.keys.team.clone(),
            })
            .collect(),
        results: &results,
    };
    std::fs::create_dir_all(&a.report)
        .with_context(|| format!("creating {}", a.report.display()))?;
    let path = a.report.join("report.json");
    let json = serde_json::to_vec_pretty(&report)?;
    write_atomic(&path, |w| w.write_all(&json))
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `--allocation` as shared mode reads it: `dynamic` is task mode's.
fn shared_policy(a: AllocationArg) -> Result<Allocation> {
    Ok(match a {
        AllocationArg::None => Allocation::None,
        AllocationArg::Priority => Allocation::Priority,
        AllocationArg::Fair => Allocation::Fair,
        AllocationArg::Static => Allocation::Static,
        AllocationArg::Market => Allocation::Market,
        AllocationArg::Dynamic => bail!(
            "--allocation dynamic is for task mode; shared mode has none, priority, fair, static and market"
        ),
    })
}

/// Applies every `--workload-opts NAME:key=value,...` to the member named NAME.
fn apply_opts(opts: &[String], members: &mut [Member]) -> Result<()> {
    for text in opts {
        let (name, pairs) = text.split_once(':').with_context(|| {
            format!("--workload-opts '{text}': expected NAME:key=value,... (e.g. web:priority=10,bid=2)")
        })?;
        let names = members
            .iter()
            .map(|m| m.keys.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        let Some(m) = members.iter_mut().find(|m| m.keys.name == name) else {
            bail!(
                "--workload-opts '{text}': no workload named '{name}'; the workloads are: {names}"
            );
        };
        for pair in pairs.split(',').filter(|p| !p.trim().is_empty()) {
            set_key(&mut m.keys, pair.trim())
                .with_context(|| format!("--workload-opts '{text}'"))?;
        }
    }
    Ok(())
}

/// Sets one `key=value` of a claim's ranking keys.
fn set_key(keys: &mut Claim, pair: &str) -> Result<()> {
    let (key, value) = pair
        .split_once('=')
        .with_context(|| format!("'{pair}': expected key=value"))?;
    let num = || -> Result<f64> {
        match value.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => bail!("key '{key}': '{value}' is not a finite number"),
        }
    };
    match key.trim() {
        "priority" => {
            keys.priority = value
                .trim()
                .parse()
                .with_context(|| format!("key 'priority': '{value}' is not an integer"))?
        }
        "weight" => {
            let w = num()?;
            if w <= 0.0 {
                bail!("key 'weight': must be > 0, got {w}");
            }
            keys.weight = w;
        }
        "share" => {
            let s = num()?;
            if !(0.0..=1.0).contains(&s) {
                bail!("key 'share': must be in [0, 1], got {s}");
            }
            keys.share = s;
        }
        "bid" => keys.bid = num()?,
        "team" => keys.team = value.trim().to_string(),
        other => bail!("unknown key '{other}' (priority, weight, share, bid, team)"),
    }
    Ok(())
}
