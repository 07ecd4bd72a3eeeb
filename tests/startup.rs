//! Issue #10, items 6 and 7: start-up waits for Prometheus instead of giving up, and `/readyz`
//! says why it is not ready.
//!
//! Before: with Prometheus down, `prescale run` and `prescale collect` exited after ~0.5 s of
//! retries (a crash loop under Kubernetes), and `/readyz` answered 200 during an outage. Here a
//! real Prometheus is started, killed (its port now refuses connections) and restarted on the
//! same port, around real `prescale` processes.

use crate::cli;
use crate::common;

use common::{free_port, ChildGuard, PromOptions, Prometheus};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longer than the ~0.5 s after which start-up used to give up.
const OUTLIVES_OLD_START_UP: Duration = Duration::from_millis(2500);
/// How long any state change the tests wait for may take (the start-up backoff is capped at
/// 10 s; a signal is down after 3 failed one-second polls).
const BOUND: Duration = Duration::from_secs(40);
/// How long SIGTERM may take to end a waiting process.
const EXIT_BOUND: Duration = Duration::from_secs(5);

/// A Prometheus that was started and then killed: its port refuses connections until
/// [`Prometheus::restart`] brings it back on the same port.
fn prometheus_down() -> Prometheus {
    let mut prom = Prometheus::start(PromOptions::default());
    prom.kill();
    prom
}

/// A model on a 1 s step, trained by `prescale train` on a synthetic minute-long wave, so the
/// live loop polls (and notices an outage) every second.
fn one_second_model(dir: &Path) -> PathBuf {
    let csv = dir.join("history.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..3000 {
        let v = 30.0 + 5.0 * (i as f64 / 50.0).sin();
        text.push_str(&format!("{},{v}\n", 1_800_000_000 + i));
    }
    std::fs::write(&csv, text).unwrap();
    let model = dir.join("m.model");
    let o = cli::prescale(&[
        "train",
        "--history",
        csv.to_str().unwrap(),
        "--step",
        "1s",
        "--window",
        "5s",
        "--trees",
        "10",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", cli::text(&o));
    model
}

/// A live configuration against Prometheus at `prom_port`, exporting on `listen`.
fn run_config(dir: &Path, prom_port: u16, listen: u16) -> PathBuf {
    let path = dir.join("live.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[prometheus]
url = "http://127.0.0.1:{prom_port}"
timeout = "2s"

[[signal]]
name = "demand"
query = "vector(30)"
step = "1s"
lookback = "2m"

[run]
model = {model:?}
decision_log = {log:?}
interval = "1s"

[export]
listen = "127.0.0.1:{listen}"

[[workload]]
name = "web"
demand = "demand"
replica_capacity = 10
max_replicas = 50
boot_time = "3s"
"#,
            model = one_second_model(dir).display().to_string(),
            log = dir.join("d.jsonl").display().to_string(),
        ),
    )
    .unwrap();
    path
}

/// `prescale` with `args`, logging at `warn` to a pipe whose lines arrive on the channel.
fn spawn(args: &[&str]) -> (ChildGuard, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (ChildGuard(Some(child)), rx)
}

/// Whether the process is still running; panics with its stderr if it has exited.
fn assert_running(child: &mut ChildGuard, stderr: &mpsc::Receiver<String>) {
    let c = child.0.as_mut().unwrap();
    if let Some(status) = c.try_wait().unwrap() {
        let lines: Vec<String> = stderr.try_iter().collect();
        panic!("prescale exited ({status}):\n{}", lines.join("\n"));
    }
}

/// Waits for a stderr line containing `want`.
fn wait_line(rx: &mpsc::Receiver<String>, want: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            if l.contains(want) {
                return l;
            }
            seen.push(l);
        }
    }
    panic!(
        "no line containing {want:?} within {limit:?}; saw:\n{}",
        seen.join("\n")
    );
}

/// `GET path` on the exporter: status and body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Polls `GET path` until `accept` holds; returns that answer, or panics with the last one.
fn wait_for(port: u16, path: &str, accept: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + BOUND;
    let mut last = None;
    while Instant::now() < deadline {
        if let Some((code, body)) = get(port, path) {
            if accept(code, &body) {
                return (code, body);
            }
            last = Some((code, body));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("GET {path}: no accepted answer within {BOUND:?}; last: {last:?}");
}

/// Sends SIGTERM and waits at most `limit` for the exit.
fn terminate(child: &mut ChildGuard, limit: Duration) -> ExitStatus {
    let c = child.0.as_mut().unwrap();
    let sent = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let t0 = Instant::now();
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        assert!(
            t0.elapsed() < limit,
            "prescale did not stop within {limit:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits at most `limit` for the process to exit by itself.
fn wait_exit(child: &mut ChildGuard, limit: Duration) -> ExitStatus {
    let c = child.0.as_mut().unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        assert!(
            t0.elapsed() < limit,
            "prescale still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn decisions(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("d.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line parses"))
        .collect()
}

#[test]
fn run_waits_for_prometheus_unready_but_alive_then_becomes_ready_and_decides() {
    let mut prom = prometheus_down();
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let cfg = run_config(dir.path(), prom.port, listen);
    let (mut child, stderr) = spawn(&["run", "--config", cfg.to_str().unwrap()]);

    // Before the start-up wait begins, /readyz may briefly say "no cycle completed yet".
    let (code, body) = wait_for(listen, "/readyz", |code, body| {
        code == 503 && body.starts_with("waiting for")
    });
    let waiting = format!("waiting for Prometheus at http://127.0.0.1:{}", prom.port);
    assert!(body.starts_with(&waiting), "{code} {body}");
    assert!(body.contains("signal 'demand': cannot connect"), "{body}");
    std::thread::sleep(OUTLIVES_OLD_START_UP);
    assert_running(&mut child, &stderr);
    let (code, body) = get(listen, "/readyz").expect("exporter answers");
    assert_eq!(code, 503, "{body}");
    assert!(body.starts_with(&waiting), "{body}");
    let attempt: u32 = body
        .split("(attempt ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no attempt number in {body:?}"));
    assert!(attempt >= 4, "tries beyond the old 4 attempts: {body}");
    assert_eq!(get(listen, "/healthz").map(|a| a.0), Some(200));
    let logged = wait_line(&stderr, "waiting for Prometheus at", BOUND);
    assert!(logged.contains("next try in"), "{logged}");
    assert!(decisions(dir.path()).is_empty(), "no decision before data");

    prom.restart();
    let (_, body) = wait_for(listen, "/readyz", |code, _| code == 200);
    assert_eq!(body, "ok\n");
    assert_eq!(get(listen, "/healthz").map(|a| a.0), Some(200));
    let lines = decisions(dir.path());
    let web = lines
        .iter()
        .find(|l| l["decision"]["target"] == "web")
        .unwrap_or_else(|| panic!("a decision for web: {lines:?}"));
    assert_eq!(web["decision"]["current"], 30.0, "{web}");
    assert!(web["decision"]["forecast"].is_array(), "{web}");
    let status = terminate(&mut child, EXIT_BOUND);
    assert!(status.success(), "{status}");
}

#[test]
fn sigterm_during_the_wait_exits_promptly_with_status_0() {
    let prom = prometheus_down();
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let cfg = run_config(dir.path(), prom.port, listen);
    let (mut run, _run_err) = spawn(&["run", "--config", cfg.to_str().unwrap()]);
    wait_for(listen, "/readyz", |code, body| {
        code == 503 && body.contains("waiting for Prometheus")
    });

    let collect_cfg = collect_config(dir.path(), prom.port);
    let out = dir.path().join("history");
    let (mut collect, collect_err) = spawn(&[
        "collect",
        "--config",
        collect_cfg.to_str().unwrap(),
        "--export-csv",
        out.to_str().unwrap(),
    ]);
    wait_line(&collect_err, "waiting for Prometheus at", BOUND);

    let status = terminate(&mut run, EXIT_BOUND);
    assert!(status.success(), "run: {status}");
    let status = terminate(&mut collect, EXIT_BOUND);
    assert!(status.success(), "collect: {status}");
    assert!(!out.exists(), "nothing collected, nothing written");
    drop(prom);
}

fn collect_config(dir: &Path, prom_port: u16) -> PathBuf {
    let path = dir.join("collect.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[prometheus]
url = "http://127.0.0.1:{prom_port}"
timeout = "2s"

[[signal]]
name = "demand"
query = "vector(30)"
step = "1m"
lookback = "10m"
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn collect_waits_for_prometheus_then_exports() {
    let mut prom = prometheus_down();
    let dir = tempfile::tempdir().unwrap();
    let cfg = collect_config(dir.path(), prom.port);
    let out = dir.path().join("history");
    let (mut child, stderr) = spawn(&[
        "collect",
        "--config",
        cfg.to_str().unwrap(),
        "--export-csv",
        out.to_str().unwrap(),
    ]);
    let line = wait_line(&stderr, "waiting for Prometheus at", BOUND);
    assert!(
        line.contains(&format!("http://127.0.0.1:{}", prom.port)) && line.contains("next try in"),
        "{line}"
    );
    std::thread::sleep(OUTLIVES_OLD_START_UP);
    assert_running(&mut child, &stderr);

    prom.restart();
    let status = wait_exit(&mut child, BOUND);
    assert!(status.success(), "{status}");
    let csv = std::fs::read_to_string(out.join("demand.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(rows.len() >= 10, "{csv}");
    assert!(rows.iter().all(|r| r.ends_with(",30")), "{csv}");
}

#[test]
fn an_outage_after_start_up_makes_readyz_name_the_signal_until_it_recovers() {
    let mut prom = Prometheus::start(PromOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let cfg = run_config(dir.path(), prom.port, listen);
    let (mut child, _stderr) = spawn(&["run", "--config", cfg.to_str().unwrap()]);
    wait_for(listen, "/readyz", |code, _| code == 200);

    prom.kill();
    let (_, body) = wait_for(listen, "/readyz", |code, _| code == 503);
    assert!(
        body.starts_with("signal 'demand' is down: ") && body.contains("cannot connect"),
        "{body}"
    );
    // The loop is alive and says so: only readiness fails.
    assert_eq!(get(listen, "/healthz").map(|a| a.0), Some(200));

    prom.restart();
    let (_, body) = wait_for(listen, "/readyz", |code, _| code == 200);
    assert_eq!(body, "ok\n");
    let status = terminate(&mut child, EXIT_BOUND);
    assert!(status.success(), "{status}");
}

/// A reachable Prometheus that rejects the query: waiting cannot fix that, so start-up fails
/// at once, quoting Prometheus.
#[test]
fn invalid_promql_still_fails_start_up_at_once() {
    let prom = Prometheus::start(PromOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            "[prometheus]\nurl = \"{}\"\n\n[[signal]]\nname = \"cpu\"\nquery = \"sum(rate(up[5m])\"\n\
             step = \"1m\"\nlookback = \"10m\"\n",
            prom.url()
        ),
    )
    .unwrap();
    let (mut child, stderr) = spawn(&["collect", "--config", cfg.to_str().unwrap()]);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(!status.success());
    let text: Vec<String> = stderr.iter().collect();
    let text = text.join("\n");
    assert!(
        text.contains("signal 'cpu'") && text.contains("parse error"),
        "{text}"
    );
    assert!(!text.contains("waiting for"), "{text}");
}
