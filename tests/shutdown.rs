//! Issue #10, item 2: shutdown is bounded. A half-open `/metrics` connection or a hanging
//! `apply_command` must not hold SIGTERM's exit, and a failing `apply_command` must not stop
//! the loop. (Outcomes, timeouts and injection: `act_command.rs`.)

use crate::cli;
use cli::{
    acting_demo_config as config, free_port, prescale, spawn_run as spawn, terminate, text,
    wait_line,
};

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long SIGTERM may take to end the process, whatever its clients and commands do.
const EXIT_BOUND: Duration = Duration::from_secs(10);

#[test]
fn a_half_open_metrics_connection_does_not_hold_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), Some(port), 150.0, 1000, "true");
    let (mut child, rx) = spawn(&cfg, &[]);
    wait_line(&rx, "cycle 1", Duration::from_secs(60));
    // The request line and one header, never the blank line that ends the headers.
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = terminate(&mut child, EXIT_BOUND);
    assert!(status.success(), "{status}");
    drop(conn);
}

#[test]
fn a_hanging_apply_command_does_not_hold_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started.txt");
    let cmd = format!(
        r#"sh -c 'echo started >> "$0"; exec sleep 1000' {}"#,
        started.display()
    );
    let cfg = config(dir.path(), None, 150.0, 1000, &cmd);
    let (mut child, _rx) = spawn(&cfg, &["--apply"]);
    // The command writes its marker, then hangs: it is running now.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = terminate(&mut child, EXIT_BOUND);
    assert!(status.success(), "{status}");
    // Killed by the stop, and recorded so.
    let log = std::fs::read_to_string(dir.path().join("d.jsonl")).unwrap();
    assert!(log.contains("killed: prescale is stopping"), "{log}");
}

#[test]
fn a_failing_apply_command_is_logged_per_decision_and_the_loop_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("attempted.txt");
    let cmd = format!(
        r#"sh -c 'echo "$1" >> "$0"; false' {} {{target}}"#,
        marker.display()
    );
    let cfg = config(dir.path(), None, 1e6, 3, &cmd);
    let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--apply"]);
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    // All three cycles ran although every command failed.
    assert!(all.contains("cycle 3"), "{all}");
    let attempted = std::fs::read_to_string(&marker).unwrap();
    let scale_changes: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("d.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| {
            matches!(
                v["decision"]["kind"].as_str(),
                Some("scale_up") | Some("scale_down")
            )
        })
        .collect();
    assert!(scale_changes.len() >= 2, "{scale_changes:?}");
    // Every scale decision was attempted, not only the first of its cycle, and recorded failed.
    assert_eq!(
        attempted.lines().count(),
        scale_changes.len(),
        "{attempted}"
    );
    for v in &scale_changes {
        assert_eq!(v["outcome"], "failed: sh exited with status 1", "{v}");
    }
    // Each failure is logged with how its command ended.
    let failures = all
        .lines()
        .filter(|l| l.contains("not applied") && l.contains("exited with status 1"))
        .count();
    assert_eq!(failures, scale_changes.len(), "{all}");
}

/// A store that answers the start-up check but never the backfill (a heavy range on a slow
/// Thanos) must not hold SIGTERM for the request's timeout times its retries: the reads give
/// up at the stop, the state is saved, and the process exits.
#[test]
fn a_backfill_that_never_answers_does_not_hold_sigterm() {
    use crate::common::{Action, TestServer};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let asked = Arc::new(AtomicBool::new(false));
    let flag = asked.clone();
    let server = TestServer::start(move |req| {
        if req.starts_with("POST /api/v1/query_range") {
            flag.store(true, Ordering::SeqCst);
            return Action::Stall(Duration::from_secs(120));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"series":"a"}},"value":[{now},"1"]}}]}}}}"#
        );
        Action::Respond(200, "application/json", body.into_bytes())
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("live.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[run]
model = {model:?}
decision_log = "d.jsonl"

[export]
enabled = false

[prometheus]
url = "{url}"
timeout = "30s"

[[signal]]
name = "demand"
query = "demand"
step = "5m"
lookback = "8d"

[[workload]]
name = "web"
demand = 'demand{{series="a"}}'
replica_capacity = 12
max_replicas = 40
boot_time = "3m"
"#,
            model = cli::repo("models/web.model"),
            url = server.url(),
        ),
    )
    .unwrap();
    let (mut child, _rx) = spawn(&cfg, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !asked.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the backfill was never asked for"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let status = terminate(&mut child, EXIT_BOUND);
    assert!(status.success(), "{status}");
    assert!(t0.elapsed() < EXIT_BOUND, "{:?}", t0.elapsed());
}
