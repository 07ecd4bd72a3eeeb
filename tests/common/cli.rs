//! Running the `prescale` binary from integration tests. Include it with
//! `#[path = "common/cli.rs"] mod cli;`.
#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;
use std::process::{Command, Output};

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

/// A child process that is killed (and reaped) when the test ends, also on panic.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
