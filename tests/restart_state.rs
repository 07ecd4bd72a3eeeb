//! A restart goes on from where the last run stood (issue #10, item 5): the binary recovers the
//! believed replica and node counts from the cluster where it reads them, otherwise from the
//! decision log's tail, and an `--apply` run only from what was applied.

use crate::cli;
use cli::{prescale, repo, text};

use crate::prometheus;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The demo configuration with absolute paths, no exporter, its log at `dir/d.jsonl`, an
/// `apply_command` that does nothing, and `extra` appended.
fn config(dir: &Path, extra: &str) -> String {
    let demo = std::fs::read_to_string(repo("config/demo.toml")).unwrap();
    let mut out = String::new();
    for line in demo.lines() {
        let line = match line.split_whitespace().next() {
            Some("model") => format!("model = {:?}", repo("models/web.model")),
            Some("decision_log") => format!(
                "decision_log = {:?}\napply_command = \"true\"",
                log(dir).display().to_string()
            ),
            Some("listen") => "enabled = false".to_string(),
            Some("dir") => format!("dir = {:?}", repo("data")),
            Some("speed") => "speed = 1e6\nallow_apply = true".to_string(),
            // Acting needs `auto`: a `preview` workload is only recommended for (issue #9).
            Some("quantile") => format!("{line}\nmode = \"auto\""),
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(extra);
    let p = dir.join("live.toml");
    std::fs::write(&p, out).unwrap();
    p.display().to_string()
}

fn log(dir: &Path) -> PathBuf {
    dir.join("d.jsonl")
}

fn records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(log(dir))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line parses"))
        .collect()
}

/// Runs one cycle and returns the records it appended.
fn run_once(dir: &Path, cfg: &str, apply: bool) -> Vec<Value> {
    let before = records(dir).len();
    let mut args = vec!["run", "--config", cfg, "--once"];
    if apply {
        args.push("--apply");
    }
    let o = prescale(&args);
    assert!(o.status.success(), "{}", text(&o));
    records(dir).split_off(before)
}

/// The scale decision (not a placement) for `target` among `recs`.
fn count_decision<'a>(recs: &'a [Value], target: &str) -> &'a Value {
    recs.iter()
        .find(|r| {
            r["decision"]["target"] == target
                && !matches!(r["decision"]["kind"].as_str(), Some("place" | "move"))
        })
        .unwrap_or_else(|| panic!("no decision for {target}: {recs:#?}"))
}

fn from_to(recs: &[Value], target: &str) -> (u64, u64) {
    let d = &count_decision(recs, target)["decision"];
    (d["from"].as_u64().unwrap(), d["to"].as_u64().unwrap())
}

#[test]
fn a_restart_plans_from_the_counts_the_log_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let first = run_once(dir.path(), &cfg, false);
    let (web_from, web_to) = from_to(&first, "web");
    // The demo's first cycle scales web up from its minimum of 2: a restart that forgot it
    // would say `from: 2` again.
    assert_eq!(web_from, 2);
    assert!(web_to > 2, "{first:#?}");
    let (_, pool_to) = from_to(&first, "general");

    let second = run_once(dir.path(), &cfg, false);
    for target in ["web", "api", "db-readers"] {
        let (_, before) = from_to(&first, target);
        assert_eq!(
            from_to(&second, target).0,
            before,
            "{target}: the restart did not start from the count the log recorded"
        );
    }
    // The node the first run added is believed to be there: replicas are placed on it, and
    // the pool is not grown from 2 again.
    assert_eq!(pool_to, 3, "{first:#?}");
    assert!(
        second
            .iter()
            .any(|r| r["decision"]["node"] == "general-new-1"),
        "{second:#?}"
    );
    if let Some(pool) = second.iter().find(|r| r["decision"]["target"] == "general") {
        assert_eq!(pool["decision"]["from"], pool_to, "{pool:#}");
    }
}

#[test]
fn an_apply_run_recovers_only_from_applied_records() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let dry = run_once(dir.path(), &cfg, false);
    assert!(dry.iter().all(|r| r.get("applied").is_none()), "{dry:#?}");
    let (_, dry_to) = from_to(&dry, "web");
    assert!(dry_to > 2);

    // The dry-run's recommendation never reached the cluster: the first --apply run starts
    // from the configuration, as if there were no log.
    let applied = run_once(dir.path(), &cfg, true);
    assert!(applied.iter().all(|r| r["applied"] == true), "{applied:#?}");
    assert_eq!(from_to(&applied, "web").0, 2, "{applied:#?}");
    let (_, applied_to) = from_to(&applied, "web");

    // A dry-run in between starts from the applied count (its own mode takes every record)...
    let dry_again = run_once(dir.path(), &cfg, false);
    assert_eq!(from_to(&dry_again, "web").0, applied_to);
    // ...and whatever it recommends (made to differ here, so starting from it would show)
    // does not move where the next --apply run starts.
    let recommended = serde_json::json!({
        "cycle": 9,
        "decision": {"at": 0, "kind": "scale_up", "target": "web", "from": applied_to,
                     "to": applied_to + 5, "raw": applied_to + 5, "forecast": null,
                     "current": null, "guards": [], "reason": "a dry-run's"}
    });
    let mut text = std::fs::read_to_string(log(dir.path())).unwrap();
    text.push_str(&format!("{recommended}\n"));
    std::fs::write(log(dir.path()), text).unwrap();
    let again = run_once(dir.path(), &cfg, true);
    assert_eq!(from_to(&again, "web").0, applied_to, "{again:#?}");
}

#[test]
fn a_logged_count_beyond_the_bounds_is_clamped_and_said() {
    let dir = tempfile::tempdir().unwrap();
    // Written when web's max_replicas was higher than the demo's 40.
    let line = serde_json::json!({
        "cycle": 1,
        "decision": {"at": 0, "kind": "hold", "target": "web", "from": 55, "to": 55,
                     "raw": 55, "forecast": null, "current": null, "guards": [],
                     "reason": "before max_replicas was lowered"}
    });
    std::fs::write(log(dir.path()), format!("{line}\n")).unwrap();
    let cfg = config(dir.path(), "");
    let recs = run_once(dir.path(), &cfg, false);
    let web = &count_decision(&recs, "web")["decision"];
    assert_eq!(web["from"], 40, "{web:#}");
    let reason = web["reason"].as_str().unwrap();
    assert!(
        reason.contains("55") && reason.contains("clamped to max_replicas 40"),
        "{reason}"
    );
    // Said once: the next restart starts from a count within bounds, with nothing to say.
    let next = run_once(dir.path(), &cfg, false);
    let reason = count_decision(&next, "web")["decision"]["reason"].clone();
    assert!(!reason.as_str().unwrap().contains("clamped"), "{reason}");
}

#[test]
fn a_replica_read_from_prometheus_wins_over_the_log_and_the_log_backs_a_failed_read() {
    let prom = prometheus::Prometheus::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let logged = |target: &str, to: u32| {
        serde_json::json!({
            "cycle": 4,
            "decision": {"at": 0, "kind": "scale_up", "target": target, "from": 1, "to": to,
                         "raw": to, "forecast": null, "current": null, "guards": [],
                         "reason": "the run before the restart"}
        })
        .to_string()
    };
    std::fs::write(
        log(dir.path()),
        format!("{}\n{}\n", logged("web", 12), logged("api", 9)),
    )
    .unwrap();
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

# Read from Prometheus: 7, whatever the log says.
[[workload]]
name = "web"
demand = "demand"
replica_capacity = 10
current_replicas = "vector(7)"
max_replicas = 50
boot_time = "3m"

# kube-state-metrics is not there: the read gives no sample, so the log's 9 stands.
[[workload]]
name = "api"
demand = "demand"
replica_capacity = 10
current_replicas = 'kube_deployment_status_replicas{{deployment="api"}}'
max_replicas = 50
boot_time = "3m"
"#,
            port = prom.port,
            model = repo("models/web.model"),
            log = log(dir.path()).display().to_string(),
        ),
    )
    .unwrap();
    let recs = run_once(dir.path(), cfg.to_str().unwrap(), false);
    let web = &count_decision(&recs, "web")["decision"];
    assert_eq!(web["from"], 7, "{web:#}");
    let api = &count_decision(&recs, "api")["decision"];
    assert_eq!(api["from"], 9, "{api:#}");
    // The failed read marks api's data stale: no scale-down from the logged 9 on a guess.
    assert!(api["to"].as_u64().unwrap() >= 9, "{api:#}");
}

/// The calibration state file the demo configuration in `dir` gets by default.
fn calibration_state(dir: &Path) -> PathBuf {
    dir.join("d.calibration.json")
}

/// Runs `args` with logs at `info` and returns stderr, asserting success.
fn run_ok(args: &[&str]) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("run prescale");
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether web's first scale decision among `recs` names the online correction.
fn web_names_calibration(recs: &[Value]) -> bool {
    count_decision(recs, "web")["decision"]["reason"]
        .as_str()
        .unwrap()
        .contains("by online calibration")
}

#[test]
fn a_restart_keeps_the_online_calibration_learnt_before_it() {
    let dir = tempfile::tempdir().unwrap();
    // A large gain, so that an hour of replayed 5-minute steps moves the offsets visibly.
    let cfg = config(dir.path(), "\n[online_calibration]\ngain = 0.5\n");
    run_ok(&["run", "--config", &cfg, "--cycles", "12"]);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(calibration_state(dir.path())).unwrap())
            .expect("the state file is JSON");
    assert_eq!(state["format"], "prescale-online-calibration");
    let series = state["series"].as_array().unwrap();
    assert!(
        series.iter().any(|s| {
            s["key"] == "demand{series=\"nab_twitter_volume_amzn\"}"
                && s["theta"][0][1].as_f64().unwrap().abs() > 0.05
        }),
        "web's series learnt nothing: {state:#}"
    );

    // The next run starts an hour later (after the save): it goes on from the offsets, and its
    // first cycle already plans with them.
    let later = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("warmup = \"8d\"", "warmup = \"193h\"");
    assert_ne!(later, std::fs::read_to_string(&cfg).unwrap());
    std::fs::write(&cfg, &later).unwrap();
    let before = records(dir.path()).len();
    let stderr = run_ok(&["run", "--config", &cfg, "--once"]);
    let restored = records(dir.path()).split_off(before);
    assert!(stderr.contains("restored from"), "{stderr}");
    assert!(web_names_calibration(&restored), "{restored:#?}");

    // Without the file the same cycle starts afresh: no correction yet.
    std::fs::remove_file(calibration_state(dir.path())).unwrap();
    let before = records(dir.path()).len();
    run_ok(&["run", "--config", &cfg, "--once"]);
    let fresh = records(dir.path()).split_off(before);
    assert!(!web_names_calibration(&fresh), "{fresh:#?}");
}

#[test]
fn offsets_saved_after_a_replays_start_or_for_another_model_are_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "\n[online_calibration]\ngain = 0.5\n");
    run_ok(&["run", "--config", &cfg, "--cycles", "12"]);
    let path = calibration_state(dir.path());
    let learnt = std::fs::read_to_string(&path).unwrap();
    // The same replay again starts before the save: learning from its future is refused.
    let stderr = run_ok(&["run", "--config", &cfg, "--once"]);
    assert!(stderr.contains("after this run's first cycle"), "{stderr}");
    assert!(!stderr.contains("restored from"), "{stderr}");

    // Saved for another model (its checksum in the file differs): afresh too.
    let mut state: Value = serde_json::from_str(&learnt).unwrap();
    let model = state["model"].as_u64().unwrap();
    state["model"] = serde_json::json!(model ^ 1);
    std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
    let later = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("warmup = \"8d\"", "warmup = \"193h\"");
    std::fs::write(&cfg, &later).unwrap();
    let before = records(dir.path()).len();
    let stderr = run_ok(&["run", "--config", &cfg, "--once"]);
    assert!(stderr.contains("learnt against another model"), "{stderr}");
    assert!(!web_names_calibration(
        &records(dir.path()).split_off(before)
    ));
    // ...and the run's own state replaced it.
    let now: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(now["model"].as_u64(), Some(model));
}

#[test]
fn a_file_that_is_not_the_calibration_state_stops_the_start_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let path = calibration_state(dir.path());
    std::fs::write(&path, "someone's notes\n").unwrap();
    let o = prescale(&["run", "--config", &cfg, "--once"]);
    assert!(!o.status.success());
    let err = text(&o);
    assert!(
        err.contains("d.calibration.json") && err.contains("not a prescale online-calibration"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone's notes\n");
    // A damaged state of prescale's names where, is set aside whole, and the run starts
    // afresh (a cache must not stop the loop: a rollback to an older format would crash-loop).
    let damaged = "{\"format\":\"prescale-online-calibration\",\"version\":1,\n\"model\":";
    std::fs::write(&path, damaged).unwrap();
    let err = run_ok(&["run", "--config", &cfg, "--once"]);
    assert!(
        err.contains("d.calibration.json: line 2") && err.contains("set aside as"),
        "{err}"
    );
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("d.calibration.json.unreadable-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read_to_string(aside[0].path()).unwrap(), damaged);
    // The run's own state is at the path again.
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("{\"format\":\"prescale-online-calibration\""));
}

/// `api`'s risk ledger in the state file: (steps, short steps).
fn api_ledger(dir: &Path) -> (u64, u64) {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(calibration_state(dir)).unwrap()).unwrap();
    let api = state["risk"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workload"] == "api")
        .unwrap_or_else(|| panic!("no ledger for api: {state:#}"))
        .clone();
    (
        api["steps"].as_u64().unwrap(),
        api["shorts"].as_u64().unwrap(),
    )
}

#[test]
fn a_restart_goes_on_counting_the_short_step_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let budget = std::fs::read_to_string(&cfg).unwrap().replace(
        "name = \"api\"",
        "name = \"api\"\nmax_short = \"5%\"\nshort_window = \"1d\"",
    );
    std::fs::write(&cfg, &budget).unwrap();
    run_ok(&["run", "--config", &cfg, "--cycles", "12"]);
    let (steps, _) = api_ledger(dir.path());
    assert!(steps >= 10, "{steps}");

    // An hour later: the ledger goes on from where it stood, one step more.
    std::fs::write(&cfg, budget.replace("warmup = \"8d\"", "warmup = \"193h\"")).unwrap();
    let stderr = run_ok(&["run", "--config", &cfg, "--once"]);
    assert!(
        stderr.contains("risk ledgers of 1 workloads restored"),
        "{stderr}"
    );
    let (after, _) = api_ledger(dir.path());
    assert!(after > steps && after <= steps + 2, "{steps} → {after}");

    // `api` renamed (or removed, or now another shard's): its ledger is neither restored nor
    // saved again.
    std::fs::write(
        &cfg,
        budget
            .replace("warmup = \"8d\"", "warmup = \"194h\"")
            .replace("name = \"api\"", "name = \"api-v2\""),
    )
    .unwrap();
    run_ok(&["run", "--config", &cfg, "--once"]);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(calibration_state(dir.path())).unwrap())
            .unwrap();
    let names: Vec<&str> = state["risk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api-v2"], "{state:#}");
    // Put back, it starts from nothing, not from the old debt.
    std::fs::write(&cfg, budget.replace("warmup = \"8d\"", "warmup = \"195h\"")).unwrap();
    run_ok(&["run", "--config", &cfg, "--once"]);
    assert!(api_ledger(dir.path()).0 <= 2);

    // Without the file it starts from nothing.
    std::fs::remove_file(calibration_state(dir.path())).unwrap();
    run_ok(&["run", "--config", &cfg, "--once"]);
    assert!(api_ledger(dir.path()).0 <= 2);
}
