//! A real Prometheus server for tests: started on a free loopback port with its own temporary
//! storage, scraping the given targets every second, and killed (and waited for) when dropped,
//! also when the test panics.
//!
//! `use crate::prometheus;` in a test module; its loopback port comes from
//! `crate::common::free_port`.
//!
//! Needs Debian's `prometheus` package (`/usr/bin/prometheus`, or `$PROMETHEUS_BIN`); a test
//! that uses this fails, rather than skips, when it is missing, so that a machine without it
//! cannot report a green run that tested nothing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::free_port;

/// Where the binary is unless `$PROMETHEUS_BIN` says otherwise.
pub const DEFAULT_BIN: &str = "/usr/bin/prometheus";

/// A running Prometheus. Dropping it kills the process and removes its storage.
pub struct Prometheus {
    /// The loopback port its HTTP API listens on.
    pub port: u16,
    child: Child,
    log: PathBuf,
    // Dropped after the child is killed (fields drop in order, after `Drop::drop`).
    _dir: tempfile::TempDir,
}

/// One sample of an instant-query result: its labels and value.
pub type Sample = (BTreeMap<String, String>, f64);

impl Prometheus {
    /// Starts Prometheus scraping `scrape_targets` (`"127.0.0.1:PORT"`, path `/metrics`) every
    /// second as job `"prescale"`, and waits (at most 15 s) until it is ready. Panics with the
    /// reason (and the server's log) if it cannot start.
    pub fn start(scrape_targets: &[String]) -> Prometheus {
        let bin = std::env::var_os("PROMETHEUS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
        assert!(
            bin.exists(),
            "{} not found: this test runs a real Prometheus; install it with \
             scripts/install-test-deps.sh (Debian package `prometheus`)",
            bin.display()
        );
        // The free port is found by binding and releasing it, so another process can take it
        // before Prometheus binds; such a start fails fast and is retried on a new port.
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin, scrape_targets) {
                Ok(p) => return p,
                Err(e) => last_err = e,
            }
        }
        panic!("Prometheus did not start (3 attempts); last: {last_err}");
    }

    fn try_start(bin: &Path, targets: &[String]) -> Result<Prometheus, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        let targets_yaml: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: prescale\n    static_configs:\n      \
                 - targets: [{}]\n",
                targets_yaml.join(", ")
            ),
        )
        .map_err(|e| format!("writing config: {e}"))?;
        let log = dir.path().join("prometheus.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        // From here on `Drop` cleans up whatever happens.
        let mut p = Prometheus {
            port,
            child,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(format!("exited with {status}; log:\n{}", p.log_tail()));
            }
            if matches!(http_get(port, "/-/ready"), Ok((200, _))) {
                return Ok(p);
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after 15 s; log:\n{}", p.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs an instant query and returns its samples, or the error Prometheus gave.
    pub fn query_vector(&self, promql: &str) -> Result<Vec<Sample>, String> {
        let (status, body) = http_get(
            self.port,
            &format!("/api/v1/query?query={}", percent_encode(promql)),
        )?;
        let v: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
        if v["status"] != "success" {
            return Err(format!("HTTP {status}: {body}"));
        }
        let result = &v["data"]["result"];
        match v["data"]["resultType"].as_str() {
            Some("vector") => {}
            Some("scalar") => return Ok(vec![(BTreeMap::new(), parse_value(result)?)]),
            other => return Err(format!("unexpected result type {other:?}: {body}")),
        }
        result
            .as_array()
            .ok_or_else(|| format!("no result array: {body}"))?
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok((labels, parse_value(&s["value"])?))
            })
            .collect()
    }

    /// The value of a query that yields exactly one sample; `None` if it yields none, more
    /// than one, or fails (use [`query_vector`](Self::query_vector) to see why).
    pub fn query(&self, promql: &str) -> Option<f64> {
        match self.query_vector(promql) {
            Ok(v) if v.len() == 1 => Some(v[0].1),
            _ => None,
        }
    }

    /// Polls `promql` until `accept` holds for its value (`None`: no single sample), and
    /// returns that value; panics with the last value, the targets' state and the log after
    /// `deadline`.
    pub fn wait_for(
        &self,
        promql: &str,
        deadline: Instant,
        accept: impl Fn(Option<f64>) -> bool,
    ) -> Option<f64> {
        loop {
            let got = self.query(promql);
            if accept(got) {
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting on `{promql}`: last result {:?}\ntargets: {}\nlog:\n{}",
                    self.query_vector(promql),
                    self.targets(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every scrape target has been scraped successfully (`up == 1`).
    pub fn wait_targets_up(&self, n: usize, deadline: Instant) {
        self.wait_for("count(up == 1)", deadline, |v| v == Some(n as f64));
    }

    /// The raw `/api/v1/targets` answer, for failure messages.
    pub fn targets(&self) -> String {
        http_get(self.port, "/api/v1/targets")
            .map(|(_, b)| b)
            .unwrap_or_else(|e| e)
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_value(v: &serde_json::Value) -> Result<f64, String> {
    // `[unix_ts, "value"]`; values are strings so that NaN and ±Inf survive JSON.
    let s = v[1]
        .as_str()
        .ok_or_else(|| format!("bad sample value {v}"))?;
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse()
            .map_err(|e| format!("bad sample value {s:?}: {e}")),
    }
}

/// `GET` over loopback with HTTP/1.0, which keeps the answer un-chunked and the connection
/// one-shot, so a few lines of std suffice (no async client inside synchronous tests).
fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let addr = (Ipv4Addr::LOCALHOST, port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .and_then(|_| s.set_write_timeout(Some(Duration::from_secs(5))))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed HTTP answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
