//! Running the `prescale` binary from integration tests (`use crate::cli;` in a test module).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use crate::common::free_port;

/// Runs `prescale` with `args` (logs at `warn`) and waits for it.
pub fn prescale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run prescale")
}

/// A path under the repository, as a string for arguments.
pub fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

/// A bundled history file in `data/`.
pub fn data(name: &str) -> String {
    repo(&format!("data/{name}"))
}

/// Everything the process printed, stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The bundled demo configuration (`config/demo.toml`) made runnable from a test: the model,
/// the replay data and the decision log (`dir/d.jsonl`) as absolute paths. `edit` sees every
/// line first and may replace it (return `Some`); the result is written to `dir/live.toml`.
pub fn demo_config(dir: &Path, edit: impl Fn(&str) -> Option<String>) -> std::path::PathBuf {
    let demo = std::fs::read_to_string(repo("config/demo.toml")).unwrap();
    let mut out = String::new();
    for line in demo.lines() {
        let line = edit(line).unwrap_or_else(|| match line.split_whitespace().next() {
            Some("model") => format!("model = {:?}", repo("models/web.model")),
            Some("decision_log") => format!(
                "decision_log = {:?}",
                dir.join("d.jsonl").display().to_string()
            ),
            Some("dir") => format!("dir = {:?}", repo("data")),
            _ => line.to_string(),
        });
        out.push_str(&line);
        out.push('\n');
    }
    let p = dir.join("live.toml");
    std::fs::write(&p, out).unwrap();
    p
}

/// The `[export]` line of [`demo_config`] for an exporter on `port`, or none.
pub fn listen_line(port: Option<u16>) -> String {
    match port {
        Some(p) => format!("listen = \"127.0.0.1:{p}\""),
        None => "enabled = false".to_string(),
    }
}

/// The first word of a configuration line: its key, for [`demo_config`]'s `edit`.
pub fn key(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

/// Every line of the decision log `dir/d.jsonl` (none while it does not exist yet).
pub fn log_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("d.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line parses"))
        .collect()
}

/// A child process that is killed (and reaped) when the test ends, also on panic; then, when
/// its stderr went to a file (the second field), the file's last lines are printed, so that a
/// test that waited on the process in vain says what the process said.
pub struct Running(pub std::process::Child, pub Option<PathBuf>);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let (true, Some(path)) = (std::thread::panicking(), &self.1) {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- prescale's stderr ({}, last lines) ---", path.display());
            for l in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{l}");
            }
        }
    }
}

/// Where a process started for `cfg` writes its stderr: `stderr.log` beside `cfg` (as the
/// sharding tests' processes do).
fn stderr_file(cfg: &Path) -> (std::process::Stdio, Option<PathBuf>) {
    let path = cfg.with_file_name("stderr.log");
    match std::fs::File::create(&path) {
        Ok(f) => (f.into(), Some(path)),
        Err(_) => (std::process::Stdio::null(), None),
    }
}

/// `prescale run --config cfg` with its stdout discarded (logging at `warn` to a file, shown
/// if the test fails), killed when the test ends: for tests that read what it writes (the log,
/// `/metrics`), not what it prints.
pub fn run_quietly(cfg: &Path) -> Running {
    let (stderr, path) = stderr_file(cfg);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    Running(child, path)
}

/// `GET /metrics` on loopback in the text format; `None` while nothing answers.
pub fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The value of the sample line starting with `series ` (name and labels as exported).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The demo configuration with a private log, `listen` for `/metrics`, the replay `speed`,
/// `cycles`, an `apply_command`, every workload in `auto` mode (a `preview` workload is
/// only recommended for: issue #9), and `--apply` allowed on the replay.
pub fn acting_demo_config(
    dir: &Path,
    listen: Option<u16>,
    speed: f64,
    cycles: u64,
    apply_command: &str,
) -> std::path::PathBuf {
    demo_config(dir, |line| match key(line) {
        "cycles" => Some(format!(
            "cycles = {cycles}\napply_command = {apply_command:?}"
        )),
        "listen" => Some(listen_line(listen)),
        "speed" => Some(format!("speed = {speed}\nallow_apply = true")),
        "quantile" => Some(format!("{line}\nmode = \"auto\"")),
        _ => None,
    })
}

/// Starts `prescale run --config cfg` with `extra` arguments (logs at `warn` to a file, shown
/// if the test fails) and returns it with a channel of its stdout lines.
pub fn spawn_run(cfg: &Path, extra: &[&str]) -> (Running, std::sync::mpsc::Receiver<String>) {
    spawn_run_env(cfg, extra, &[])
}

/// [`spawn_run`] with `env` added to (or replacing in) the process environment.
pub fn spawn_run_env(
    cfg: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Running, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let (stderr, path) = stderr_file(cfg);
    let mut child = Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .args(extra)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Running(child, path), rx)
}

/// Waits at most `limit` for a line containing `want`; returns the lines seen up to and with
/// it, and panics with them if it never comes.
pub fn wait_line(
    rx: &std::sync::mpsc::Receiver<String>,
    want: &str,
    limit: std::time::Duration,
) -> Vec<String> {
    let deadline = std::time::Instant::now() + limit;
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            let hit = l.contains(want);
            seen.push(l);
            if hit {
                return seen;
            }
        }
    }
    panic!(
        "no line containing {want:?} within {limit:?}; saw:\n{}",
        seen.join("\n")
    );
}

/// Sends SIGTERM and waits at most `limit` for the exit.
pub fn terminate(child: &mut Running, limit: std::time::Duration) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_exit(child, limit)
}

/// Waits at most `limit` for the process to exit on its own.
pub fn wait_exit(child: &mut Running, limit: std::time::Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prescale still running {limit:?} after it was asked to stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Writes `body` to `dir/name` (a test's input file) and returns its path.
pub fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}
