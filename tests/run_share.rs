//! Sharing a capped pool through the real `prescale run`: the bundled demo's pool capped at 2
//! nodes (12.8 cores at its 80 % target), with `web` at priority 100 and the others at 0.
//!
//! Its first cycle wants web 8 × 0.5, api 7 × 1 and db-readers 2 × 2 cores: 15 > 12.8. By
//! priority, web gets its 8 (4 cores); api (min 2) and db-readers (min 1) take turns in what
//! is left: api 3, db-readers 2, api 4 → 12 cores, and api's fifth would make 13. So api is
//! cut 7 → 4, and the pool is (15 − 12.8) / 6.4 = 0.34 nodes short.

use crate::cli;
use cli::{demo_config, key, listen_line, log_lines, prescale, sample, scrape, Running};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The demo configuration with a private log, the pool capped at 2 nodes under `allocation`
/// (left out when `None`), and web at priority 100.
fn config(dir: &Path, listen: Option<u16>, speed: f64, allocation: Option<&str>) -> PathBuf {
    demo_config(dir, |line| match key(line) {
        "cycles" => Some("cycles = 1000".into()),
        "listen" => Some(listen_line(listen)),
        "speed" => Some(format!("speed = {speed}")),
        "max_nodes" => Some(match allocation {
            Some(a) => format!("max_nodes = 2\nallocation = {a:?}"),
            None => "max_nodes = 2".to_string(),
        }),
        _ if line == "name = \"web\"" => Some("name = \"web\"\npriority = 100".into()),
        _ => None,
    })
}

/// The first cycle's decision for `target`.
fn first(lines: &[serde_json::Value], target: &str) -> serde_json::Value {
    lines
        .iter()
        .find(|l| l["cycle"] == 1 && l["decision"]["target"] == target)
        .unwrap_or_else(|| panic!("no cycle-1 decision for {target}: {lines:#?}"))["decision"]
        .clone()
}

#[test]
fn a_capped_pool_cuts_the_lower_priority_and_says_so_in_the_log_and_metrics() {
    let port = cli::free_port();
    let dir = tempfile::tempdir().unwrap();
    // One 5-minute step every 2 s: time to read /metrics between cycles.
    let cfg = config(dir.path(), Some(port), 150.0, Some("priority"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = Running(child, None);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });

    // The metrics, once a cycle has been exported.
    let deadline = Instant::now() + Duration::from_secs(60);
    let cut = r#"prescale_allocation_cut_replicas{workload="api"}"#;
    let text = loop {
        if let Some(t) = scrape(port).filter(|t| sample(t, cut).is_some()) {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "no {cut} on /metrics within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let shortfall = sample(&text, r#"prescale_forecast_shortfall{pool="general"}"#)
        .unwrap_or_else(|| panic!("no shortfall in\n{text}"));
    assert!(shortfall > 0.0, "{text}");
    assert!(sample(&text, cut).unwrap() >= 1.0, "{text}");
    assert_eq!(
        sample(&text, r#"prescale_allocation_cut_replicas{workload="web"}"#),
        Some(0.0),
        "{text}"
    );

    // Stop it, then read what it printed and logged.
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stop = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < stop, "prescale did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let printed: Vec<String> = rx.try_iter().collect();
    let row = printed
        .iter()
        .find(|l| l.contains(" api ") && l.contains("capped-priority"))
        .unwrap_or_else(|| panic!("no capped api row in\n{}", printed.join("\n")));
    assert!(row.contains("would have got 7"), "{row}");

    let lines = log_lines(dir.path());
    let api = first(&lines, "api");
    // How far it is cut depends on what the higher priority's forecast leaves of the pool;
    // that it is cut, from 7, to what it is logged at, does not.
    let to = api["to"].as_u64().unwrap();
    assert!(to < 7, "{api:#}");
    assert_eq!(
        api["guards"].as_array().unwrap().last().unwrap(),
        &serde_json::json!({"kind": "capped_priority", "before": 7, "after": to}),
        "{api:#}"
    );
    let reason = api["reason"].as_str().unwrap();
    assert!(
        reason.contains("capped by priority allocation: would have got 7")
            && reason.contains("pool 'general' short at max_nodes 2"),
        "{reason}"
    );
    // The higher priority and the one that fits beside it are not cut.
    let web = first(&lines, "web");
    assert!(web["to"].as_u64().unwrap() >= 7, "{web:#}");
    assert!(web["guards"].as_array().unwrap().is_empty(), "{web:#}");
    assert_eq!(first(&lines, "db-readers")["to"], 2);
}

/// The same short pool without `allocation`: today's behaviour, nobody cut.
#[test]
fn without_an_allocation_the_short_pool_cuts_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), None, 1e6, None);
    let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--once"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = log_lines(dir.path());
    let api = first(&lines, "api");
    assert_eq!(api["to"], 7, "{api:#}");
    assert!(
        !api["reason"].as_str().unwrap().contains("capped"),
        "{api:#}"
    );
}

/// A static pool whose shares add up to more than the whole is refused, naming the key.
#[test]
fn static_shares_over_the_whole_pool_are_refused_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), None, 1e6, Some("static"));
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("priority = 100", "share = 0.7")
        .replace("name = \"api\"", "name = \"api\"\nshare = 0.6");
    std::fs::write(&cfg, text).unwrap();
    let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--once"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("pool[0].allocation") && err.contains("add up to 1.300"),
        "{err}"
    );
}
