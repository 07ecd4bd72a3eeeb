//! Sharding through the real `prescale run` against one real Prometheus (issue #11, section 3):
//! 60 workloads, each with its own demand series backfilled with promtool. One unsharded
//! process plans them all; three shards, running side by side and scraped by that Prometheus,
//! plan each workload exactly once and, together, exactly as the single process did; four
//! shards move only the workloads rendezvous hashing gives the new replica, about a quarter.
//! The narrowed signal query each shard sends is checked against Prometheus directly.

use crate::common;

use crate::shard_setup;
use common::*;
use prescale::collect::restrict::restrict;
use prescale::collect::SignalConfig;
use prescale::series::SeriesKey;
use prescale::shard::hash::owner;
use shard_setup::{base_config, encode, history, name, prescale, workloads};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WORKLOADS: usize = 60;

/// The configuration of one process: `shard` is `None` or `(replicas, ordinal)`.
fn config(dir: &Path, url: &str, listen: Option<u16>, shard: Option<(u32, u32)>) -> PathBuf {
    let shard = match shard {
        Some((n, o)) => format!("[shard]\nreplicas = {n}\nordinal = {o}\n"),
        None => String::new(),
    };
    let mut text = base_config(dir, url, listen, &shard);
    text.push_str(&workloads(WORKLOADS, 10, ""));
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("prescale.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Cycle 1's decisions in `dir`'s log: target → (kind, from, to).
type Plan = BTreeMap<String, (String, u64, u64)>;

fn first_plan(dir: &Path) -> Plan {
    std::fs::read_to_string(dir.join("d.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("log line parses"))
        .filter(|r| r["cycle"] == 1)
        .map(|r| {
            let d = &r["decision"];
            (
                d["target"].as_str().unwrap().to_string(),
                (
                    d["kind"].as_str().unwrap_or_default().to_string(),
                    d["from"].as_u64().unwrap_or(u64::MAX),
                    d["to"].as_u64().unwrap_or(u64::MAX),
                ),
            )
        })
        .collect()
}

/// Runs `prescale run --once` in each dir at once and waits for all of them.
fn run_once_all(cfgs: &[PathBuf]) {
    let children: Vec<_> = cfgs
        .iter()
        .map(|c| prescale(c, true).spawn().unwrap())
        .collect();
    for (c, cfg) in children.into_iter().zip(cfgs) {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{}: {}",
            cfg.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Waits until every process of `dirs` has logged its first cycle.
fn wait_first_cycles(dirs: &[PathBuf], limit: Duration) {
    let t0 = Instant::now();
    while dirs.iter().any(|d| first_plan(d).is_empty()) {
        assert!(
            t0.elapsed() < limit,
            "not every shard ran a cycle in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An instant query's sample count and the sum of their values, or `None` without a result.
/// Keep answers small (aggregate): the bare HTTP client reads no chunked bodies.
fn query_sum(prom: &Prometheus, promql: &str) -> Option<(usize, f64)> {
    let body = http_get_body(
        prom.addr(),
        &format!("/api/v1/query?query={}", encode(promql)),
    )?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    let sum = result
        .iter()
        .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
        .sum();
    Some((result.len(), sum))
}

#[test]
fn three_shards_plan_every_workload_once_and_as_one_process_would() {
    let end = now() - now() % 300;
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let prom = Prometheus::start(PromOptions {
        history: Some(history(WORKLOADS, end, true)),
        scrape_targets: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        ..PromOptions::default()
    });
    let url = prom.url();
    let root = tempfile::tempdir().unwrap();

    // The narrowed query a shard sends answers exactly its demand series.
    let mut sig = SignalConfig::new("demand", "demand", 300, 172_800);
    sig.series_labels = vec!["service".into()];
    let mine: Vec<SeriesKey> = (0..WORKLOADS)
        .filter(|&i| owner(&name(i), 3) == 1)
        .map(|i| SeriesKey::new(format!("demand{{service=\"{}\"}}", name(i))))
        .collect();
    let narrowed = restrict(&sig, &mine).expect("narrowable");
    let body = http_get_body(
        prom.addr(),
        &format!("/api/v1/query?query={}", encode(&narrowed)),
    )
    .expect("Prometheus answers");
    let v: serde_json::Value = serde_json::from_str(&body).expect(&body);
    let got: BTreeSet<String> = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|s| {
            let m = s["metric"].as_object().unwrap();
            assert_eq!(m.len(), 1, "helper labels left in {m:?}");
            m["service"].as_str().unwrap().to_string()
        })
        .collect();
    let want: BTreeSet<String> = (0..WORKLOADS)
        .filter(|&i| owner(&name(i), 3) == 1)
        .map(name)
        .collect();
    assert!(want.len() >= 10, "{want:?}");
    assert_eq!(got, want);

    // One process, all workloads. Each run reads Prometheus on the 5-minute grid of its wall
    // clock, so plans are compared only between runs in the same slot of that grid: a run
    // after a grid point reads one step more (the last sample again, within Prometheus'
    // lookback) and forecasts from it, so its plan may differ by a replica. On a loaded
    // machine the shards can start in the next slot; the single process is then run again.
    let mut single_runs = 0;
    let mut plan_single = || loop {
        single_runs += 1;
        let dir = root.path().join(format!("single-{single_runs}"));
        let slot = now() / 300;
        run_once_all(&[config(&dir, &url, None, None)]);
        if now() / 300 == slot || single_runs >= 6 {
            break (first_plan(&dir), slot);
        }
    };
    let (mut single_plan, mut single_slot) = plan_single();
    assert_eq!(single_plan.len(), WORKLOADS, "{single_plan:?}");
    // Every workload starts at min_replicas (1) and scales up to its own size: a plan of a few
    // distinct sizes would prove little about which forecast each decision came from.
    let sizes: BTreeSet<u64> = single_plan.values().map(|d| d.2).collect();
    assert!(sizes.len() >= 20, "too few distinct sizes: {sizes:?}");

    // Three shards, running side by side, scraped by the same Prometheus; tried again (at
    // most twice) if their first cycles straddle a grid point.
    let mut attempt = 0;
    let (dirs, mut running) = loop {
        attempt += 1;
        let dirs: Vec<PathBuf> = (0..3)
            .map(|o| root.path().join(format!("shard-{attempt}-{o}")))
            .collect();
        let slot = now() / 300;
        let running: Vec<ChildGuard> = dirs
            .iter()
            .zip(&ports)
            .enumerate()
            .map(|(o, (d, &p))| {
                let cfg = config(d, &url, Some(p), Some((3, o as u32)));
                ChildGuard(Some(prescale(&cfg, false).spawn().unwrap()))
            })
            .collect();
        wait_first_cycles(&dirs, Duration::from_secs(90));
        if now() / 300 == slot || attempt == 3 {
            if slot != single_slot {
                (single_plan, single_slot) = plan_single();
            }
            assert_eq!(single_slot, slot, "the grid moved during every attempt");
            break (dirs, running);
        }
        drop(running);
    };

    let mut union = Plan::new();
    for (o, d) in dirs.iter().enumerate() {
        let plan = first_plan(d);
        for target in plan.keys() {
            let i: usize = target[1..].parse().unwrap();
            assert_eq!(
                owner(&name(i), 3),
                o as u32,
                "{target} planned by shard {o}"
            );
        }
        for (t, decision) in plan {
            assert!(
                union.insert(t.clone(), decision).is_none(),
                "{t} planned twice"
            );
        }
    }
    assert_eq!(
        union, single_plan,
        "the shards' union differs from one process's plan"
    );

    // What the shards export, as Prometheus scraped it.
    let t0 = Instant::now();
    loop {
        let info = query_sum(&prom, "prescale_shard_info{replicas=\"3\"}");
        let counts = query_sum(&prom, "prescale_shard_workloads");
        let recommended = query_sum(&prom, "count(prescale_recommended_replicas)");
        if info.is_some_and(|i| i.0 == 3)
            && counts.is_some_and(|c| c == (3, WORKLOADS as f64))
            && recommended.is_some_and(|r| r.1 == WORKLOADS as f64)
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "Prometheus has not scraped the shards: info {info:?}, workloads {counts:?}, \
             recommended {recommended:?}\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    for o in 0..3 {
        let (n, _) = query_sum(&prom, &format!("prescale_shard_info{{ordinal=\"{o}\"}}")).unwrap();
        assert_eq!(n, 1, "ordinal {o}");
    }
    for c in &mut running {
        c.kill();
    }

    // Three to four replicas: only the workloads hashed to the new ordinal move. Run again
    // (in fresh directories: a log left behind would be resumed from) if the four straddle a
    // grid point, and the single process again if they ran in another slot than it.
    let mut attempt = 0;
    let four = loop {
        attempt += 1;
        let four: Vec<PathBuf> = (0..4)
            .map(|o| root.path().join(format!("four-{attempt}-{o}")))
            .collect();
        let cfgs: Vec<PathBuf> = four
            .iter()
            .enumerate()
            .map(|(o, d)| config(d, &url, None, Some((4, o as u32))))
            .collect();
        let slot = now() / 300;
        run_once_all(&cfgs);
        if now() / 300 == slot || attempt == 3 {
            if slot != single_slot {
                (single_plan, single_slot) = plan_single();
            }
            assert_eq!(single_slot, slot, "the grid moved during every attempt");
            break four;
        }
    };
    let mut union4 = Plan::new();
    let mut moved = 0;
    for (o, d) in four.iter().enumerate() {
        for (t, decision) in first_plan(d) {
            let i: usize = t[1..].parse().unwrap();
            if owner(&name(i), 3) != o as u32 {
                assert_eq!(
                    o,
                    3,
                    "{t} moved from {} to {o}, not to the new replica",
                    owner(&name(i), 3)
                );
                moved += 1;
            }
            assert!(union4.insert(t, decision).is_none());
        }
    }
    assert_eq!(union4, single_plan);
    // Expected 60/4 = 15; a third (20) is the bound.
    assert!(
        (5..=WORKLOADS / 3).contains(&moved),
        "{moved} of {WORKLOADS} moved"
    );
}
