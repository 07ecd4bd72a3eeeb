//! The shard read-back's two gaps (issue #11 section 3), against one real Prometheus:
//!
//! - **Two deployments, equal workload names.** Prometheus scrapes deployment A (job `test`:
//!   three shards) and deployment B (job `other`: one unsharded `prescale run` planning the
//!   same workload names with a third of A's replica capacity, so its plans differ). Without
//!   `shard.selector` A's read-back takes B's plans where they are fresher; with
//!   `selector = 'job="test"'` it reads A's only.
//! - **A stale-but-scraped shard.** A's shard 2 is a static exporter on loopback whose
//!   `/metrics` answers every scrape with its workloads' three families, but with a
//!   `prescale_plan_timestamp_seconds` ten minutes old, as a shard whose cycle hangs would:
//!   Prometheus keeps scraping it (`up` is 1), yet its plans are older than `shard.max_age`.
//!   The real shard 0 process holds pool `spare`'s scale-in naming one of them and why, and
//!   the reader says so per workload.
//!
//! Shards 0 and 1 and deployment B are real `prescale run` processes; all are killed when their
//! guards drop, also on a panic.

use crate::common;
use crate::shard_setup;

use common::*;
use prescale::shard::hash::owner;
use prescale::shard::readback::{ReadBack, ShardReader};
use shard_setup::{
    base_config, count, history, log, name, prescale, state_of, wait, workloads, Logged, IN_WEB,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WORKLOADS: usize = 12;
const SELECTOR: &str = r#"job="test""#;

/// A `prescale run` configuration: `shard` is a `[shard]` section or nothing, `capacity` each
/// workload's `replica_capacity`. Pool `spare` has two idle nodes, so a removal fits at once
/// and only unknown load holds it.
fn config(dir: &Path, url: &str, port: u16, shard: &str, capacity: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = base_config(dir, url, Some(port), shard);
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

[[node]]
name = "web-1"
pool = "web"

[[node]]
name = "spare-1"
pool = "spare"

[[node]]
name = "spare-2"
pool = "spare"

"#,
    );
    text.push_str(&workloads(WORKLOADS, capacity, IN_WEB));
    let path = dir.join("prescale.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn a_shard(o: u32) -> String {
    format!("[shard]\nreplicas = 3\nordinal = {o}\nmax_age = \"8s\"\nselector = '{SELECTOR}'\n")
}

/// A target's exported `prescale_recommended_replicas`, per workload.
fn exported(port: u16) -> BTreeMap<String, f64> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let body = http_get_body(addr, "/metrics").unwrap_or_default();
    body.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("prescale_recommended_replicas{workload=\"")?;
            let (w, v) = rest.split_once("\"} ")?;
            Some((w.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn the_selector_keeps_deployments_apart_and_a_stalled_shard_is_unknown() {
    let end = now() - now() % 300;
    let of = |o: u32| -> Vec<String> {
        (0..WORKLOADS)
            .map(name)
            .filter(|n| owner(n, 3) == o)
            .collect()
    };
    let (mine, live, stalled) = (of(0), of(1), of(2));
    assert!(!mine.is_empty() && !live.is_empty() && !stalled.is_empty());

    // A's shard 2: scraped fine, its plans ten minutes old.
    let frozen = Exporter::start();
    let planned = now() - 600;
    let mut text = String::new();
    for (family, value) in [
        ("prescale_recommended_replicas", "2".to_string()),
        ("prescale_forecast_utilization", "0.5".to_string()),
        ("prescale_plan_timestamp_seconds", planned.to_string()),
    ] {
        text.push_str(&format!("# TYPE {family} gauge\n"));
        for w in &stalled {
            text.push_str(&format!("{family}{{workload=\"{w}\"}} {value}\n"));
        }
    }
    frozen.set(text);

    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let prom = Prometheus::start(PromOptions {
        history: Some(history(WORKLOADS, end, false)),
        scrape_targets: vec![
            format!("127.0.0.1:{}", ports[0]),
            format!("127.0.0.1:{}", ports[1]),
            frozen.target(),
        ],
        jobs: vec![("other".into(), vec![format!("127.0.0.1:{}", ports[2])])],
        scrape_interval: Some("1s".into()),
        ..PromOptions::default()
    });
    let url = prom.url();
    let root = tempfile::tempdir().unwrap();
    let dir = |n: &str| root.path().join(n);
    // Deployment B: one process, every workload, a third of A's capacity per replica.
    let b_cfg = config(&dir("b"), &url, ports[2], "", 3);
    let b = RefCell::new(ChildGuard(Some(prescale(&b_cfg, false).spawn().unwrap())));
    let a1_cfg = config(&dir("a1"), &url, ports[1], &a_shard(1), 10);
    let a1 = RefCell::new(ChildGuard(Some(prescale(&a1_cfg, false).spawn().unwrap())));
    wait(
        Duration::from_secs(90),
        || {
            count(&prom, "prescale_plan_timestamp_seconds{job=\"other\"}") == WORKLOADS
                && count(&prom, "prescale_plan_timestamp_seconds{job=\"test\"}")
                    == live.len() + stalled.len()
        },
        || {
            format!(
                "Prometheus lacks the plans\n{}\nB: {}\nshard 1: {}",
                prom.log(),
                state_of(&dir("b"), &mut b.borrow_mut(), Some(ports[2])),
                state_of(&dir("a1"), &mut a1.borrow_mut(), Some(ports[1]))
            )
        },
    );
    // Shard 2 is scraped: it is up, only its plans are old.
    assert_eq!(
        count(
            &prom,
            &format!("up{{instance=\"{}\"}} == 1", frozen.target())
        ),
        1
    );

    // The reader as shard 0 builds it from its configuration.
    let a0_cfg = config(&dir("a0"), &url, ports[0], &a_shard(0), 10);
    let cfg = prescale::config::Config::load(&a0_cfg).unwrap();
    assert_eq!(cfg.shard.selector.as_deref(), Some(SELECTOR));
    let client = prescale::collect::PromClient::new(cfg.prometheus.as_ref().unwrap()).unwrap();
    let with = ShardReader::new(client.clone(), cfg.shard.max_age(1))
        .with_selector(cfg.shard.selector.clone());
    let without = ShardReader::new(client, cfg.shard.max_age(1));
    assert_eq!(
        with.query_for("prescale_recommended_replicas"),
        "prescale_recommended_replicas{job=\"test\"}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let others: Vec<String> = live.iter().chain(&stalled).cloned().collect();
    let read = |r: &ShardReader| -> ReadBack { rt.block_on(r.read(&others, now())) };

    // With the selector: shard 1's plans, as its own /metrics says (a cycle may land between
    // the two reads, so a few tries), and shard 2's as too old, naming the bound and target.
    let mut tries = 0;
    loop {
        let got = read(&with);
        let theirs = exported(ports[1]);
        let desired: BTreeMap<String, f64> = live
            .iter()
            .map(|w| {
                let r = got[w].as_ref().unwrap_or_else(|e| panic!("'{w}': {e}"));
                (w.clone(), f64::from(r.desired))
            })
            .collect();
        let want: BTreeMap<String, f64> = live.iter().map(|w| (w.clone(), theirs[w])).collect();
        tries += 1;
        if desired == want || tries == 5 {
            assert_eq!(desired, want, "read back vs shard 1's /metrics");
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let got = read(&with);
    for w in &stalled {
        let e = got[w].as_ref().expect_err("a stalled shard's plan");
        assert!(
            e.contains("older than the 8s bound (shard.max_age)"),
            "'{w}': {e}"
        );
        assert!(
            e.contains(&format!("instance=\"{}\"", frozen.target())),
            "{e}"
        );
        assert!(e.contains("job=\"test\""), "{e}");
        assert!(
            e.contains("(read with shard.selector {job=\"test\"})"),
            "{e}"
        );
    }
    // B plans differently: without the selector its fresh plans stand in for the stalled
    // shard's, so A would plan its nodes from B's workloads.
    let b = exported(ports[2]);
    let got = read(&without);
    for w in &stalled {
        let r = got[w].as_ref().unwrap_or_else(|e| panic!("'{w}': {e}"));
        assert_eq!(f64::from(r.desired), b[w], "'{w}' read from B");
        assert_ne!(b[w], 2.0, "B's plan for '{w}' equals the stalled one");
    }

    // The real shard 0: spare's scale-in held, naming a stalled workload and why; no shard-1
    // workload is unknown.
    let a0 = RefCell::new(ChildGuard(Some(prescale(&a0_cfg, false).spawn().unwrap())));
    let held =
        |d: &Logged| d.kind == "hold" && d.target == "spare" && d.reason.contains("scale-in held");
    wait(
        Duration::from_secs(90),
        || log(&dir("a0")).iter().any(held),
        || {
            format!(
                "shard 0 held no scale-in: {:#?}\n{}",
                log(&dir("a0")),
                state_of(&dir("a0"), &mut a0.borrow_mut(), Some(ports[0]))
            )
        },
    );
    let hold = log(&dir("a0")).into_iter().find(held).unwrap();
    let n = stalled.len();
    assert!(
        hold.reason.contains(&format!(
            "{n} workload{} with unknown load",
            if n == 1 { "" } else { "s" }
        )),
        "{}",
        hold.reason
    );
    assert!(
        hold.reason
            .contains(&format!("'{}' (its plan is", stalled[0])),
        "{}",
        hold.reason
    );
    assert!(
        hold.reason.contains("older than the 8s bound"),
        "{}",
        hold.reason
    );
    for w in &live {
        assert!(!hold.reason.contains(&format!("'{w}'")), "{}", hold.reason);
    }
    assert!(!log(&dir("a0")).iter().any(|d| d.kind == "remove_node"));
}
