//! Issue #9, the command actuator: `run.apply_command` runs without a shell, so no value can
//! run a command wherever the template puts it; templates that would hand a value to a shell's
//! script are refused at load; and every decision's outcome (dry-run, applied, failed, skipped)
//! is recorded in the decision log, the table and `/metrics`, with a failed change not believed
//! done. Each test runs the real binary on the bundled replay.

use crate::cli;
use cli::{
    free_port, log_lines, prescale, repo, sample, scrape as metrics, spawn_run, spawn_run_env,
    text, wait_exit,
};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a test's configuration differs from the others'.
struct Setup<'a> {
    /// Workload names; each gets its own bundled series as demand, with a replica capacity so
    /// small that each scales up in cycle 1.
    workloads: &'a [&'a str],
    apply_command: &'a str,
    apply_timeout: &'a str,
    cycles: u64,
    /// Replay seconds per wall second (300: one 5-minute cycle a second).
    speed: f64,
    listen: Option<u16>,
    /// Add the demo's node pool and nodes (so node decisions are made too).
    pool: bool,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            workloads: &["web"],
            apply_command: "true",
            apply_timeout: "30s",
            cycles: 1,
            speed: 1e6,
            listen: None,
            pool: false,
        }
    }
}

/// Bundled series with values well above 1 (a planner's input is one series per workload: two
/// workloads on one series would leave the second without a forecast).
const SERIES: [&str; 7] = [
    "nab_twitter_volume_amzn",
    "nab_elb_request_count_8c0756",
    "nab_cpu_utilization_asg_misconfiguration",
    "nab_ec2_cpu_utilization_5f5533",
    "nab_ec2_cpu_utilization_ac20cd",
    "nab_grok_asg_anomaly",
    "nab_rds_cpu_utilization_e47b3b",
];

/// Writes the configuration for `s` into `dir` and returns its path.
fn config(dir: &Path, s: &Setup) -> PathBuf {
    let export = match s.listen {
        Some(p) => format!("listen = \"127.0.0.1:{p}\""),
        None => "enabled = false".to_string(),
    };
    // `{:?}` of a Rust string is a valid TOML basic string (quotes and backslashes escaped).
    let mut text = format!(
        r#"
[run]
model = {model:?}
decision_log = {log:?}
cycles = {cycles}
apply_command = {cmd:?}
apply_timeout = {timeout:?}
show_holds = true

[export]
{export}

[replay]
signal = "demand"
dir = {data:?}
speed = {speed}
warmup = "8d"
allow_apply = true

[[signal]]
name = "demand"
query = "replay"
step = "5m"
lookback = "8d"
"#,
        model = repo("models/web.model"),
        log = dir.join("d.jsonl").display().to_string(),
        cycles = s.cycles,
        cmd = s.apply_command,
        timeout = s.apply_timeout,
        data = repo("data"),
        speed = s.speed,
    );
    for (name, series) in s.workloads.iter().zip(SERIES.iter().cycle()) {
        text.push_str(&format!(
            r#"
[[workload]]
name = {name:?}
demand = 'demand{{series="{series}"}}'
replica_capacity = 0.5
min_replicas = 2
max_replicas = 40
boot_time = "3m"
quantile = "p90"
resources = {{ cpu = 0.5, memory = "512Mi" }}
mode = "auto"
"#
        ));
    }
    if s.pool {
        text.push_str(
            r#"
[[pool]]
name = "general"
capacity = { cpu = 8, memory = "32Gi" }
boot_time = "4m"
min_nodes = 2
max_nodes = 10

[[node]]
name = "node-a"
pool = "general"

[[node]]
name = "node-b"
pool = "general"
"#,
        );
    }
    let p = dir.join("live.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The record of `target` in `cycle`.
fn record<'a>(lines: &'a [serde_json::Value], cycle: u64, target: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["cycle"] == cycle && l["decision"]["target"] == target)
        .unwrap_or_else(|| panic!("no record of '{target}' in cycle {cycle}: {lines:#?}"))
}

fn outcome(v: &serde_json::Value) -> &str {
    v["outcome"]
        .as_str()
        .unwrap_or_else(|| panic!("no outcome: {v}"))
}

/// The injection attempts: a workload name that a shell would run as a command, in every
/// style of quoting a template could wrap it in. `{tmp}` is replaced by the test's directory.
const PAYLOADS: [&str; 6] = [
    "x;touch {tmp}/f1",
    "$(touch {tmp}/f2)",
    "`touch {tmp}/f3`",
    "x';touch {tmp}/f4;'",
    "x\";touch {tmp}/f5;\"",
    "x && touch {tmp}/f6 #",
];

fn payloads(tmp: &Path) -> Vec<String> {
    PAYLOADS
        .iter()
        .map(|p| p.replace("{tmp}", &tmp.display().to_string()))
        .collect()
}

fn assert_no_file_created(tmp: &Path) {
    for i in 1..=PAYLOADS.len() {
        assert!(
            !tmp.join(format!("f{i}")).exists(),
            "payload {i} ran a command: {}",
            PAYLOADS[i - 1]
        );
    }
}

#[test]
fn no_workload_name_runs_a_command_wherever_the_template_puts_it() {
    let dir = tempfile::tempdir().unwrap();
    let names = payloads(dir.path());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let rec = dir.path().join("args");
    std::fs::create_dir(&rec).unwrap();
    // The safe way to use a shell: values as positional arguments. The value is also put bare,
    // single-quoted, double-quoted and inside words, in the template's own arguments. Each
    // command writes a file of its own (they run concurrently).
    let cmd = format!(
        r#"sh -c 'for a; do printf "%s\n" "$a"; done > "$(mktemp "$0/XXXXXX")"' {rec} {{target}} '{{target}}' "{{target}}" pre{{target}}post --name='{{target}}' "{{kind}}:{{target}}:{{to}}""#,
        rec = rec.display()
    );
    let cfg = config(
        dir.path(),
        &Setup {
            workloads: &names,
            apply_command: &cmd,
            ..Setup::default()
        },
    );
    let o = prescale(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--once",
        "--apply",
    ]);
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    assert_no_file_created(dir.path());
    // Every value arrived as itself, whole, in every position.
    let lines = log_lines(dir.path());
    let mut args: Vec<String> = std::fs::read_dir(&rec)
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    args.sort();
    let mut wants = Vec::new();
    for name in &names {
        let mut want = String::new();
        let d = record(&lines, 1, name);
        assert_eq!(d["decision"]["kind"], "scale_up", "{d}");
        assert_eq!(outcome(d), "applied", "{d}");
        let to = d["decision"]["to"].as_u64().unwrap();
        for arg in [
            name.to_string(),
            name.to_string(),
            name.to_string(),
            format!("pre{name}post"),
            format!("--name={name}"),
            format!("scale-up:{name}:{to}"),
        ] {
            want.push_str(&arg);
            want.push('\n');
        }
        wants.push(want);
    }
    wants.sort();
    assert_eq!(args, wants);
}

#[test]
fn a_template_that_hands_a_value_to_a_shell_script_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let names = payloads(dir.path());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = dir.path().join("out.txt");
    let out = out.display();
    for cmd in [
        format!("sh -c 'echo {{target}} >> {out}'"),
        format!("sh -c \"echo '{{target}}' >> {out}\""),
        format!("bash -c 'echo \"{{target}}\" >> {out}'"),
        format!("/bin/sh -ec 'echo {{target}} >> {out}'"),
        format!("env dash -c 'echo {{target}} >> {out}'"),
        format!("bash -o pipefail -c 'echo {{target}} | cat >> {out}'"),
        // The program itself must not be a value.
        "{target} --replicas={to}".to_string(),
    ] {
        let cfg = config(
            dir.path(),
            &Setup {
                workloads: &names,
                apply_command: &cmd,
                ..Setup::default()
            },
        );
        let o = prescale(&[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--once",
            "--apply",
        ]);
        let all = text(&o);
        assert!(!o.status.success(), "accepted {cmd}:\n{all}");
        assert!(all.contains("run.apply_command"), "{cmd}:\n{all}");
        assert_no_file_created(dir.path());
        // Refused before any cycle: nothing was decided, let alone run.
        assert!(log_lines(dir.path()).is_empty(), "{cmd}");
    }
}

#[test]
fn a_failing_command_is_recorded_failed_and_the_other_workloads_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("applied.txt");
    let cmd = format!(
        r#"sh -c 'if [ "$1" = api ]; then echo "Error from server (NotFound): deployments.apps \"$1\" not found" >&2; exit 3; fi; echo "$1 $2" >> "$0"' {} {{target}} {{to}}"#,
        rec.display()
    );
    let port = free_port();
    let cfg = config(
        dir.path(),
        &Setup {
            workloads: &["web", "api", "db"],
            apply_command: &cmd,
            cycles: 1000,
            speed: 300.0,
            listen: Some(port),
            ..Setup::default()
        },
    );
    let (mut child, _stdout) = spawn_run(&cfg, &["--apply"]);
    // Until /metrics shows two cycles (the snapshot follows the cycle's act stage).
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        assert!(Instant::now() < deadline, "no second cycle within 60 s");
        if let Some(b) = metrics(port) {
            if sample(&b, "prescale_cycles_total").is_some_and(|c| c >= 2.0) {
                break b;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.0.kill();
    let _ = child.0.wait();

    let lines = log_lines(dir.path());
    let api = record(&lines, 1, "api");
    assert_eq!(api["decision"]["kind"], "scale_up", "{api}");
    let why = outcome(api);
    assert!(
        why.starts_with("failed: ") && why.contains("status 3") && why.contains("not found"),
        "{why}"
    );
    for w in ["web", "db"] {
        assert_eq!(outcome(record(&lines, 1, w)), "applied", "{w}");
    }
    let applied = std::fs::read_to_string(&rec).unwrap();
    // The first cycle's two (they ran concurrently, in either order).
    let mut first: Vec<&str> = applied.lines().take(2).collect();
    first.sort_unstable();
    assert!(
        first[0].starts_with("db ") && first[1].starts_with("web "),
        "{applied}"
    );
    // The failed change is not believed done: the next cycle starts from the old count again,
    // while an applied one starts from where it was taken.
    let api2 = record(&lines, 2, "api");
    assert_eq!(api2["decision"]["from"], api["decision"]["from"], "{api2}");
    let web = record(&lines, 1, "web");
    assert_eq!(
        record(&lines, 2, "web")["decision"]["from"],
        web["decision"]["to"]
    );

    let failed_api = sample(
        &body,
        r#"prescale_actions_total{workload="api",outcome="failed"}"#,
    );
    assert!(failed_api.is_some_and(|n| n >= 1.0), "{body}");
    assert!(
        sample(&body, r#"prescale_actuator_failures_total{workload="api"}"#)
            .is_some_and(|n| n >= 1.0),
        "{body}"
    );
    // Counters of what has not happened exist at 0.
    assert_eq!(
        sample(&body, r#"prescale_actuator_failures_total{workload="web"}"#),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            r#"prescale_actions_total{workload="web",outcome="failed"}"#
        ),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            r#"prescale_actions_total{workload="web",outcome="dry_run"}"#
        ),
        Some(0.0),
        "{body}"
    );
    assert!(
        sample(
            &body,
            r#"prescale_actions_total{workload="web",outcome="applied"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{body}"
    );
}

/// Whether a process with exactly this command line is running (read from /proc).
fn running(cmdline: &[&str]) -> bool {
    let want: Vec<u8> = cmdline
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want))
}

#[test]
fn a_hanging_command_times_out_is_recorded_failed_and_the_loop_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("applied.txt");
    // A duration no other process uses, to find the command's child afterwards.
    let nap = format!("{}", 900_000 + std::process::id() % 90_000);
    let cmd = format!(
        r#"sh -c 'if [ "$1" = web ]; then sleep {nap}; fi; echo "$1" >> "$0"' {} {{target}}"#,
        rec.display()
    );
    let cfg = config(
        dir.path(),
        &Setup {
            workloads: &["web", "api"],
            apply_command: &cmd,
            apply_timeout: "1s",
            cycles: 2,
            ..Setup::default()
        },
    );
    // Only `sh` and `sleep` on the PATH, as in the shipped image, which has no `kill` program:
    // the timeout's kill of the command's process group must not need one.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["sh", "sleep"] {
        std::os::unix::fs::symlink(format!("/bin/{tool}"), bin.join(tool)).unwrap();
    }
    let started = Instant::now();
    let (mut child, _stdout) =
        spawn_run_env(&cfg, &["--apply"], &[("PATH", bin.to_str().unwrap())]);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    // Two cycles of one timeout each, not a hang.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let lines = log_lines(dir.path());
    for cycle in [1, 2] {
        let web = outcome(record(&lines, cycle, "web"));
        assert!(
            web.starts_with("failed: ") && web.contains("timed out") && web.contains("1s"),
            "{web}"
        );
    }
    assert_eq!(outcome(record(&lines, 1, "api")), "applied");
    assert!(std::fs::read_to_string(&rec).unwrap().starts_with("api\n"));
    // The timeout killed what the command started, not only the command.
    assert!(
        !running(&["sleep", &nap]),
        "sleep {nap} outlived its command"
    );
}

#[test]
fn dry_run_records_dry_run_and_holds_and_node_decisions_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran.txt");
    let cmd = format!("touch {}", marker.display());
    let cfg = config(
        dir.path(),
        &Setup {
            workloads: &["web", "api"],
            apply_command: &cmd,
            cycles: 3,
            pool: true,
            ..Setup::default()
        },
    );
    let o = prescale(&["run", "--config", cfg.to_str().unwrap()]);
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    assert!(!marker.exists(), "dry-run ran the command");
    let lines = log_lines(dir.path());
    let mut seen = std::collections::BTreeSet::new();
    for l in &lines {
        let kind = l["decision"]["kind"].as_str().unwrap();
        let want = match kind {
            "scale_up" | "scale_down" => "dry-run",
            _ => "skipped",
        };
        assert_eq!(outcome(l), want, "{l}");
        seen.insert(kind.to_string());
    }
    assert!(
        seen.contains("scale_up") && seen.contains("hold"),
        "{seen:?}"
    );
    assert!(seen.len() >= 3, "no node decision among {seen:?}");
    // The table shows the outcome of each row.
    let row = all
        .lines()
        .find(|l| l.contains("scale-up") && l.contains("web"))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(row.contains("dry-run"), "{row}");
    assert!(all.contains("OUTCOME"), "{all}");
}
