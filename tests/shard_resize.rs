//! A shard count changing under a running deployment, against one real Prometheus: the
//! configuration is read once, so while N changes old pods split the workloads by the old N
//! and new pods by the new one, and a workload that moves has an owner under each. A real
//! `prescale run --apply` shard (0 of 3) is scraped beside a static exporter standing for a pod
//! already restarted with 4 shards (`prescale_shard_info{ordinal="3",replicas="4"}`): the
//! shard must carry out no change (its command actuator, which leaves a file per change,
//! leaves none) and log each scale decision `skipped (shards disagree)`. Once the exporter
//! says 3 like every shard (the roll done), the same shard acts again within a few cycles.

use crate::common;
use crate::shard_setup;

use common::*;
use shard_setup::{base_config, history, log, prescale, state_of, wait, workloads};
use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

const WORKLOADS: usize = 6;

fn info(ordinal: u32, replicas: u32) -> String {
    format!(
        "# TYPE prescale_shard_info gauge\n\
         prescale_shard_info{{ordinal=\"{ordinal}\",replicas=\"{replicas}\"}} 1\n"
    )
}

/// The files the command actuator left in `dir`, one per change carried out.
fn changes(dir: &Path) -> Vec<String> {
    let mut ran: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ran-"))
                .collect()
        })
        .unwrap_or_default();
    ran.sort();
    ran
}

#[test]
fn a_shard_acts_on_nothing_while_another_runs_with_another_count() {
    let now = now();
    let other = Exporter::start();
    other.set(info(3, 4));
    let port = free_port();
    let prom = Prometheus::start(PromOptions {
        history: Some(history(WORKLOADS, now, true)),
        scrape_targets: vec![other.target(), format!("127.0.0.1:{port}")],
        scrape_interval: Some("1s".into()),
        ..PromOptions::default()
    });
    wait_for_data(
        &prom,
        "prescale_shard_info{replicas=\"4\"}",
        Duration::from_secs(30),
    );
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("s0");
    let ran = root.path().join("ran");
    std::fs::create_dir_all(&ran).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let shard = "[shard]\nreplicas = 3\nordinal = 0\nmax_age = \"8s\"\n";
    let mut text = base_config(&dir, &prom.url(), Some(port), shard).replace(
        "interval = \"1s\"",
        &format!(
            "interval = \"1s\"\napply_command = \"touch {}/ran-{{target}}\"",
            ran.display()
        ),
    );
    text.push_str(&workloads(WORKLOADS, 10, "mode = \"auto\"\n"));
    let cfg = dir.join("prescale.toml");
    std::fs::write(&cfg, text).unwrap();
    let child = RefCell::new(ChildGuard(Some(
        prescale(&cfg, false).arg("--apply").spawn().unwrap(),
    )));

    // Held: scale decisions are logged, none carried out, for several cycles.
    let held = || {
        log(&dir)
            .iter()
            .filter(|d| d.outcome == "skipped (shards disagree)")
            .map(|d| d.cycle)
            .collect::<std::collections::BTreeSet<u64>>()
    };
    wait(
        Duration::from_secs(60),
        || held().len() >= 3,
        || {
            format!(
                "no three cycles held; log {:#?}\n{}",
                log(&dir),
                state_of(&dir, &mut child.borrow_mut(), Some(port))
            )
        },
    );
    let logged = log(&dir);
    assert!(
        logged.iter().all(|d| d.outcome != "applied"),
        "a change was carried out while the shards disagreed: {logged:#?}"
    );
    assert_eq!(changes(&ran), Vec::<String>::new());
    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(
        stderr.contains("holding every workload change")
            && stderr.contains("runs with shard.replicas = 4, this one with 3"),
        "{stderr}"
    );

    // The roll is done: every replica in view says 3. The shard acts again.
    other.set(info(1, 3));
    wait(
        Duration::from_secs(60),
        || !changes(&ran).is_empty(),
        || {
            format!(
                "nothing carried out after the shards agreed; log {:#?}\n{}",
                log(&dir),
                state_of(&dir, &mut child.borrow_mut(), Some(port))
            )
        },
    );
    let logged = log(&dir);
    let applied: Vec<&String> = logged
        .iter()
        .filter(|d| d.outcome == "applied")
        .map(|d| &d.target)
        .collect();
    assert!(!applied.is_empty(), "{logged:#?}");
    // Only this shard's own workloads, each change the command's.
    for t in &applied {
        assert_eq!(
            prescale::shard::hash::owner(t, 3),
            0,
            "{t} is not shard 0's"
        );
    }
    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(stderr.contains("acting again"), "{stderr}");
}
