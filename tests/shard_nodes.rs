//! Node pools in sharded mode through the real `prescale run` against one real Prometheus
//! (issue #11, section 3): shard 0 plans the node pools from every workload's load, its own
//! from its cycle and the other shards' read back from Prometheus, which scrapes every shard's
//! `/metrics` every second.
//!
//! 24 workloads in pool `web` (one node: a scale-out is needed) and an idle pool `spare` of
//! four nodes (a scale-in is allowed once its 20 s window has passed). One unsharded process
//! plans them all once; then shards 1 and 2 run until Prometheus holds their loads, and shard
//! 0's first cycle must decide exactly the node decisions the single process did. Once shard 0
//! has placed every workload of shard 2 (on web), shard 2 is killed: its workloads' loads go
//! unknown, `prescale_shard_stale{shard="2"}` goes to 1, and shard 0 holds web's scale-in,
//! naming them and their stale shard, while spare, where none of them runs, still loses a node
//! once its window has passed.

use crate::common;

use crate::shard_setup;
use common::*;
use prescale::shard::hash::owner;
use shard_setup::{
    base_config, count, history, log, name, prescale, stderr_of, wait, workloads, Logged, IN_WEB,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WORKLOADS: usize = 24;

/// The configuration of one process: `shard` is `None` or `(replicas, ordinal)`.
fn config(dir: &Path, url: &str, listen: Option<u16>, shard: Option<(u32, u32)>) -> PathBuf {
    let shard = match shard {
        Some((n, o)) => format!("[shard]\nreplicas = {n}\nordinal = {o}\nmax_age = \"8s\"\n"),
        None => String::new(),
    };
    let mut text = base_config(dir, url, listen, &shard);
    text.push_str(
        r#"
[[pool]]
name = "web"
capacity = { cpu = 4, memory = "16Gi" }
boot_time = "2m"
min_nodes = 1
max_nodes = 100

[[pool]]
name = "spare"
capacity = { cpu = 4, memory = "16Gi" }
boot_time = "2m"
min_nodes = 1
max_nodes = 10
scale_down_window = "20s"

[[node]]
name = "web-1"
pool = "web"
"#,
    );
    for n in 1..=4 {
        text.push_str(&format!(
            "[[node]]\nname = \"spare-{n}\"\npool = \"spare\"\n\n"
        ));
    }
    text.push_str(&workloads(WORKLOADS, 10, IN_WEB));
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("prescale.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The slot of the 5-minute grid `dir`'s first cycle ran in (what it read from Prometheus
/// depends on it).
fn first_cycle_slot(dir: &Path) -> Option<i64> {
    log(dir).iter().find(|d| d.cycle == 1).map(|d| d.at / 300)
}

/// Cycle `n`'s node decisions without their reasons, in logged order.
fn node_decisions(dir: &Path, n: u64) -> Vec<(String, String, String, u64, u64)> {
    log(dir)
        .into_iter()
        .filter(|d| d.cycle == n && d.is_node_decision())
        .map(|d| (d.kind, d.target, d.node, d.from, d.to))
        .collect()
}

#[test]
fn shard_0_plans_nodes_as_one_process_would_and_holds_scale_in_when_a_shard_is_gone() {
    let end = now() - now() % 300;
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let prom = Prometheus::start(PromOptions {
        history: Some(history(WORKLOADS, end, false)),
        scrape_targets: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        scrape_interval: Some("1s".into()),
        ..PromOptions::default()
    });
    let url = prom.url();
    let root = tempfile::tempdir().unwrap();
    let of = |o: u32| -> Vec<String> {
        (0..WORKLOADS)
            .map(name)
            .filter(|n| owner(n, 3) == o)
            .collect()
    };
    for o in 0..3 {
        assert!(of(o).len() >= 4, "shard {o}: {:?}", of(o));
    }

    // One process, all workloads, one cycle. A run reads Prometheus on the 5-minute grid of
    // its wall clock, and one after a grid point reads one step more (the last sample again,
    // within Prometheus' lookback): shard 0's plan is compared with a single run in the same
    // slot of that grid (below), the single process run again if shard 0 started in the next.
    let single_run = |dir: &Path| {
        let o = prescale(&config(dir, &url, None, None), true)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (node_decisions(dir, 1), first_cycle_slot(dir))
    };
    let (mut want, mut want_slot) = single_run(&root.path().join("single"));
    let kinds = |k: &str| want.iter().filter(|d| d.0 == k).count();
    // Replicas placed on web-1, and web scaled out for the rest; spare's window has not passed.
    assert!(kinds("place") >= 1, "{want:#?}");
    assert_eq!(kinds("add_node"), 1, "{want:#?}");
    assert!(want.iter().all(|d| d.1 != "spare"), "{want:#?}");

    // Shards 1 and 2 first, until Prometheus holds all their loads.
    let dirs: Vec<PathBuf> = (0..3)
        .map(|o| root.path().join(format!("shard-{o}")))
        .collect();
    let start = |o: usize| {
        let cfg = config(&dirs[o], &url, Some(ports[o]), Some((3, o as u32)));
        ChildGuard(Some(prescale(&cfg, false).spawn().unwrap()))
    };
    let others = of(1).len() + of(2).len();
    let _s1 = start(1);
    let mut s2 = start(2);
    let query = "prescale_plan_timestamp_seconds and prescale_forecast_utilization \
                 and prescale_recommended_replicas";
    wait(
        Duration::from_secs(90),
        || count(&prom, query) == others,
        || {
            format!(
                "Prometheus has {} of {others} loads\n{}",
                count(&prom, query),
                prom.log()
            )
        },
    );

    // Shard 0's first cycle: the same node decisions as the single process's.
    let _s0 = start(0);
    wait(
        Duration::from_secs(60),
        || log(&dirs[0]).iter().any(|d| d.cycle == 1),
        || {
            format!(
                "shard 0 logged no cycle; its stderr:\n{}",
                stderr_of(&dirs[0])
            )
        },
    );
    let started = Instant::now();
    let got = node_decisions(&dirs[0], 1);
    let got_slot = first_cycle_slot(&dirs[0]);
    if got_slot != want_slot {
        (want, want_slot) = single_run(&root.path().join("single-again"));
        assert_eq!(
            want_slot, got_slot,
            "the single process's run missed shard 0's slot"
        );
    }
    let reasons: Vec<String> = log(&dirs[0])
        .into_iter()
        .filter(|d| d.cycle == 1 && d.is_node_decision())
        .map(|d| d.reason)
        .collect();
    assert_eq!(
        got, want,
        "shard 0's node decisions differ from one process's: {reasons:#?}"
    );
    // Its workload decisions are its own only.
    for d in log(&dirs[0]).iter().filter(|d| !d.is_node_decision()) {
        assert_eq!(owner(&d.target, 3), 0, "{d:?}");
    }
    // The other shards plan no pools.
    for o in [1, 2] {
        let node: Vec<_> = log(&dirs[o])
            .into_iter()
            .filter(Logged::is_node_decision)
            .collect();
        assert!(node.is_empty(), "shard {o} planned nodes: {node:#?}");
    }

    // Where shard 0 believes shard 2's workloads run is where its own node plans put them
    // (there is no `[cluster]` to read placements from): its first cycle places on web-1 what
    // fits and adds nodes for the rest, a later cycle places the rest on them. Shard 2 is
    // killed only once all of its workloads are placed, so what is tested is the rule for a
    // workload believed placed: its unknown load holds the pools it runs in and is configured
    // for (web), not spare (`plan::nodes::unknown`). Killed before that, a workload placed
    // nowhere yet would hold every pool, spare too.
    let placed_by_0 = |w: &String| {
        log(&dirs[0])
            .iter()
            .any(|d| d.kind == "place" && &d.target == w)
    };
    wait(
        Duration::from_secs(30),
        || of(2).iter().all(placed_by_0),
        || {
            let left: Vec<_> = of(2).into_iter().filter(|w| !placed_by_0(w)).collect();
            format!("shard 0 never placed {left:?}")
        },
    );
    let stale = |o: u32| -> Option<i64> {
        let line = format!("prescale_shard_stale{{shard=\"{o}\"}} ");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ports[0]));
        http_get_body(addr, "/metrics")?
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str())?.trim().parse().ok())
    };
    assert_eq!((stale(1), stale(2)), (Some(0), Some(0)));

    // Shard 2 gone: its workloads' loads go unknown, and web's scale-in is held, naming them
    // and their stale shard.
    let held = |d: &Logged| {
        d.kind == "hold"
            && (d.target == "web" || d.target == "spare")
            && d.reason.contains("scale-in held")
    };
    let before = log(&dirs[0]);
    let before_kill = before.iter().map(|d| d.cycle).max().unwrap();
    assert!(
        !before.iter().any(held),
        "scale-in held while every shard ran: {:#?}",
        before.iter().find(|d| held(d))
    );
    s2.kill();
    let killed = Instant::now();
    let first_gone = of(2)[0].clone();
    let held_after = |d: &Logged| d.cycle > before_kill && held(d);
    wait(
        Duration::from_secs(30),
        || log(&dirs[0]).iter().any(held_after),
        || {
            let tail: Vec<_> = log(&dirs[0]).into_iter().rev().take(5).collect();
            format!("shard 0 never held a pool's scale-in; last decisions {tail:#?}")
        },
    );
    let hold = log(&dirs[0]).into_iter().find(held_after).unwrap();
    assert_eq!(hold.target, "web", "{hold:#?}");
    for part in [
        format!("'{first_gone}'"),
        "unknown load".into(),
        "shard 2 stale for ".to_string(),
        format!("(none of its {} workloads read back)", of(2).len()),
    ] {
        assert!(hold.reason.contains(&part), "{part} not in {}", hold.reason);
    }
    // The hold came within the freshness bound (8 s) plus a few cycles of the kill.
    let took = killed.elapsed();
    eprintln!("scale-in held {took:?} after shard 2 was killed");
    assert!(took < Duration::from_secs(20), "{took:?}");
    wait(
        Duration::from_secs(10),
        || stale(2) == Some(1),
        || format!("prescale_shard_stale{{shard=\"2\"}} is {:?}", stale(2)),
    );
    assert_eq!(stale(1), Some(0));
    // Past the 20 s window from shard 0's start and a few cycles more: no web node removed,
    // the hold repeated every cycle; spare, which none of the unknown workloads can be in, is
    // never held and loses its emptiest node once its window has passed.
    let past = Duration::from_secs(26);
    std::thread::sleep(past.saturating_sub(started.elapsed()));
    let after = log(&dirs[0]);
    let removed: Vec<_> = after
        .iter()
        .filter(|d| d.kind == "remove_node" && (d.target == "web" || d.node.starts_with("web-")))
        .collect();
    assert!(removed.is_empty(), "{removed:#?}");
    let spare_held: Vec<_> = after
        .iter()
        .filter(|d| held(d) && d.target == "spare")
        .collect();
    assert!(spare_held.is_empty(), "{spare_held:#?}");
    assert!(
        after
            .iter()
            .any(|d| d.kind == "remove_node" && d.target == "spare"),
        "spare kept every node: {:#?}",
        after
            .iter()
            .filter(|d| d.target == "spare")
            .collect::<Vec<_>>()
    );
    let last_cycle = after.iter().map(|d| d.cycle).max().unwrap();
    assert!(
        after.iter().any(|d| d.cycle == last_cycle && held(d)),
        "no hold in shard 0's last cycle {last_cycle}"
    );
}
