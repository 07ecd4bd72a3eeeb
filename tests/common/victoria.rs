//! A real single-node VictoriaMetrics for tests: started on a free loopback port with its own
//! temporary data dir, loaded through its own import API, and killed (and waited for) when
//! dropped, also when the test panics.
//!
//! `use crate::victoria;` in a test module; its loopback port comes from
//! `crate::common::free_port`.
//!
//! Needs Debian's `victoria-metrics` package (`/usr/bin/victoria-metrics`, or
//! `$VICTORIA_METRICS_BIN`); a test that uses this fails, rather than skips, when it is missing,
//! so that a machine without it cannot report a green run that tested nothing. The package may
//! also start a system service on :8428; these tests never talk to it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the binary is unless `$VICTORIA_METRICS_BIN` says otherwise.
pub const DEFAULT_BIN: &str = "/usr/bin/victoria-metrics";

/// A running VictoriaMetrics. Dropping it kills the process and removes its data.
pub struct Victoria {
    /// The loopback port its HTTP API listens on.
    pub port: u16,
    child: Child,
    log: PathBuf,
    // Dropped after the child is killed (fields drop in order, after `Drop::drop`).
    _dir: tempfile::TempDir,
}

impl Victoria {
    /// Starts VictoriaMetrics with `extra_args` (e.g. `-search.latencyOffset=0s`) and waits (at
    /// most 15 s) until `/health` answers. Retention is 100 years so that history of any age
    /// stays. Panics with the reason (and the server's log) if it cannot start.
    pub fn start(extra_args: &[&str]) -> Victoria {
        let bin = std::env::var_os("VICTORIA_METRICS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
        assert!(
            bin.exists(),
            "{} not found: this test runs a real VictoriaMetrics; install it with \
             scripts/install-test-deps.sh (Debian package `victoria-metrics`)",
            bin.display()
        );
        // The free port is found by binding and releasing it, so another process can take it
        // first; such a start fails fast and is retried on a new port.
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin, extra_args) {
                Ok(v) => return v,
                Err(e) => last_err = e,
            }
        }
        panic!("VictoriaMetrics did not start (3 attempts); last: {last_err}");
    }

    fn try_start(bin: &PathBuf, extra_args: &[&str]) -> Result<Victoria, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let port = crate::common::free_port();
        let log = dir.path().join("victoria.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let child = Command::new(bin)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg("-retentionPeriod=100y")
            .args(extra_args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        // From here on `Drop` cleans up whatever happens.
        let mut v = Victoria {
            port,
            child,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = v.child.try_wait() {
                return Err(format!("exited with {status}; log:\n{}", v.log_tail()));
            }
            if matches!(v.get("/health"), Ok((200, _))) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after 15 s; log:\n{}", v.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The base URL, as a `prometheus.url` for the single-node server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Imports Prometheus exposition text with **millisecond** timestamps
    /// (`load{series="a"} 1.5 1700000000000`) through `/api/v1/import/prometheus`, then makes
    /// it visible to queries (`/internal/force_flush`): imported rows otherwise sit in an
    /// in-memory buffer for up to a second. Panics with the server's answer on failure.
    pub fn import_prometheus(&self, text: &str) {
        let (status, body) = self
            .request("POST", "/api/v1/import/prometheus", text.as_bytes())
            .expect("import request");
        assert!(
            (200..300).contains(&status),
            "import refused: HTTP {status}: {body}\nlog:\n{}",
            self.log_tail()
        );
        self.flush();
    }

    /// `/internal/force_flush`: what was imported becomes searchable now.
    pub fn flush(&self) {
        let (status, body) = self.get("/internal/force_flush").expect("force_flush");
        assert_eq!(status, 200, "force_flush: {body}");
    }

    /// `GET path` (query string included, already URL-safe); status and body.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        self.request("GET", path, &[])
    }

    /// One HTTP/1.0 request over loopback: the answer is un-chunked and the connection
    /// one-shot, so a few lines of std suffice inside synchronous tests.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), String> {
        let port = self.port;
        let addr = (Ipv4Addr::LOCALHOST, port).into();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .and_then(|_| s.set_write_timeout(Some(Duration::from_secs(10))))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .and_then(|_| s.write_all(body))
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

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- victoria-metrics log (last lines) ---\n{}",
                self.log_tail()
            );
        }
    }
}
