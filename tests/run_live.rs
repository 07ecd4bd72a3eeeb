//! The live loop through the binary, on the bundled replay: dry-run changes nothing, `--apply`
//! does, SIGTERM stops it cleanly with the log flushed, and a real Prometheus scrapes it.

use crate::cli;
use cli::{
    acting_demo_config as config, log_lines, prescale, repo, spawn_run, terminate, wait_line,
};

use crate::prometheus;

use std::time::{Duration, Instant};

/// `--apply` on a replay acts on decisions made from history: refused before anything is
/// opened or run, unless `replay.allow_apply = true` says it is meant (a test cluster).
#[test]
fn apply_on_a_replay_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("applied.txt");
    let cmd = format!(
        r#"sh -c 'echo "$1" >> "$0"' {} {{target}}"#,
        marker.display()
    );
    let cfg = config(dir.path(), None, 1e6, 1, &cmd);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("allow_apply = true\n", "")).unwrap();
    let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--apply"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("live.toml: --apply with [replay]") && err.contains("replay.allow_apply"),
        "{err}"
    );
    assert!(!marker.exists(), "a command ran");
    assert!(!dir.path().join("d.jsonl").exists(), "the log was opened");
    // Dry-run on the same file is what a replay is for.
    let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--once"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn dry_run_shows_and_logs_but_changes_nothing_and_apply_does() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("applied.txt");
    // No shell runs the template: a shell that is wanted gets the values as arguments.
    let cmd = format!(
        r#"sh -c 'echo "$1 $2 $3" >> "$0"' {} {{kind}} {{target}} {{to}}"#,
        marker.display()
    );
    let cfg = config(dir.path(), None, 1e6, 3, &cmd);
    let cfg = cfg.to_str().unwrap();

    let o = prescale(&["run", "--config", cfg, "--once"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("cycle 1") && out.contains("(dry-run)"),
        "{out}"
    );
    assert!(out.contains("scale-up") && out.contains("web"), "{out}");
    assert!(
        out.contains("done: 1 cycles") && out.contains("nothing was changed"),
        "{out}"
    );
    let lines = log_lines(dir.path());
    assert!(lines.len() >= 3, "{lines:?}");
    assert!(lines
        .iter()
        .all(|l| l["cycle"] == 1 && l["decision"]["reason"].is_string()));
    assert!(!marker.exists(), "dry-run ran the apply command");

    let o = prescale(&["run", "--config", cfg, "--once", "--apply"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let applied = std::fs::read_to_string(&marker).unwrap();
    assert!(applied.contains("scale-up web"), "{applied}");
    let applied_web = log_lines(dir.path())
        .into_iter()
        .filter(|l| l["decision"]["target"] == "web" && l["outcome"] == "applied")
        .count();
    assert_eq!(applied_web, 1);
    // The log is appended to, never rewritten.
    assert!(log_lines(dir.path()).len() > lines.len());
}

#[test]
fn bad_config_is_named_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[[signal]]\nname = \"d\"\nquery = \"x\"\nstep = \"5q\"\nlookback = \"1d\"\n[export]\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let o = prescale(&["run", "--config", p.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("signal[0].step") && err.contains("export.listen"),
        "{err}"
    );
}

#[test]
fn sigterm_finishes_the_cycle_flushes_the_log_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    // One 5-minute step every 2 s: the loop is sleeping between cycles when the signal comes.
    let cfg = config(dir.path(), None, 150.0, 1000, "false");
    let (mut child, rx) = spawn_run(&cfg, &[]);
    wait_line(&rx, "cycle 2", Duration::from_secs(60));
    let status = terminate(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let lines = log_lines(dir.path());
    assert!(!lines.is_empty());
    let last_cycle = lines
        .iter()
        .filter_map(|l| l["cycle"].as_u64())
        .max()
        .unwrap();
    assert!((2..10).contains(&last_cycle), "{last_cycle}");
}

#[test]
fn a_real_prometheus_scrapes_the_running_loop() {
    let port = cli::free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), Some(port), 300.0, 1000, "false");
    let (mut child, rx) = spawn_run(&cfg, &[]);
    wait_line(&rx, "cycle 1", Duration::from_secs(60));
    let prom = prometheus::Prometheus::start(&[format!("127.0.0.1:{port}")]);
    let deadline = Instant::now() + Duration::from_secs(40);
    prom.wait_targets_up(1, deadline);
    let web = prom
        .wait_for(
            "prescale_recommended_replicas{workload=\"web\"}",
            deadline,
            |v| v.is_some(),
        )
        .unwrap();
    assert!((2.0..=40.0).contains(&web), "{web}");
    prom.wait_for("prescale_cycles_total", deadline, |v| {
        v.is_some_and(|c| c >= 2.0)
    });
    let p90 = prom
        .wait_for(
            "prescale_forecast{signal=\"demand\",series=\"nab_twitter_volume_amzn\",level=\"0.9\"}",
            deadline,
            |v| v.is_some(),
        )
        .unwrap();
    assert!(p90 > 0.0, "{p90}");
    // The online calibration's factor at web's level: exported, within its bound e^±1.5.
    let k = prom
        .wait_for(
            "prescale_forecast_calibration{workload=\"web\"}",
            deadline,
            |v| v.is_some(),
        )
        .unwrap();
    assert!((0.22..=4.49).contains(&k), "{k}");
    prom.wait_for("sum(prescale_decisions_total)", deadline, |v| {
        v.is_some_and(|c| c >= 3.0)
    });
    prom.wait_for("prescale_signal_up{signal=\"demand\"}", deadline, |v| {
        v == Some(1.0)
    });
    prom.wait_for(
        "prescale_recommended_nodes{pool=\"general\"}",
        deadline,
        |v| v.is_some_and(|n| n >= 2.0),
    );
    let status = terminate(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
}

#[test]
fn against_a_real_prometheus_current_replicas_come_from_promql() {
    let prom = prometheus::Prometheus::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prom.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[prometheus]
url = "http://127.0.0.1:{port}"

[[signal]]
name = "demand"
query = "vector(30)"
step = "5m"
lookback = "8d"

[run]
model = {model:?}
decision_log = {log:?}

[export]
enabled = false

[[workload]]
name = "web"
demand = "demand"
replica_capacity = 10
current_replicas = "vector(7)"
max_replicas = 50
boot_time = "3m"
"#,
            port = prom.port,
            model = repo("models/web.model"),
            log = dir.path().join("d.jsonl").display().to_string(),
        ),
    )
    .unwrap();
    let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--once"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines = log_lines(dir.path());
    let web = lines
        .iter()
        .find(|l| l["decision"]["target"] == "web")
        .expect("a decision for web");
    // 7 running (read from Prometheus, not the default of min_replicas), a steady 30 needing 3:
    // the first sight of a workload counts as its scale-down history, so it holds at 7.
    assert_eq!(web["decision"]["from"], 7, "{web}");
    assert_eq!(web["decision"]["to"], 7, "{web}");
    assert_eq!(web["decision"]["current"], 30.0, "{web}");
    assert!(web["decision"]["forecast"].is_array(), "{web}");
}

#[test]
fn two_workloads_reading_one_demand_series_both_get_its_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), None, 1e6, 1, "true");
    // A second workload on web's demand series (a canary, or one service split in two).
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        r#"
[[workload]]
name = "web-canary"
demand = 'demand{series="nab_twitter_volume_amzn"}'
replica_capacity = 12
max_replicas = 40
boot_time = "3m"
"#,
    );
    std::fs::write(&cfg, text).unwrap();
    let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--once"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = log_lines(dir.path());
    let of = |target: &str| {
        lines
            .iter()
            .find(|l| l["decision"]["target"] == target)
            .unwrap_or_else(|| panic!("no decision for {target}: {lines:#?}"))["decision"]
            .clone()
    };
    let (web, canary) = (of("web"), of("web-canary"));
    for d in [&web, &canary] {
        assert!(d["forecast"].is_array(), "planned blind: {d:#}");
        assert!(d["current"].is_number(), "planned blind: {d:#}");
    }
    assert_eq!(web["forecast"], canary["forecast"]);
    assert_eq!(web["current"], canary["current"]);
}
