//! What the sharding tests (`shard_prometheus.rs`, `shard_nodes.rs`, `shard_lease.rs`,
//! `shard_readback.rs`) share: the workloads' names, demand history and `[[workload]]`
//! sections, the part of the configuration every process has, how a process is started, how
//! they wait on it and count what Prometheus holds, and the one reader of a process's decision
//! log (`use crate::shard_setup;`).

use crate::common::{http_get_body, openmetrics, OmSeries, Prometheus};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Workload `i`'s name.
pub fn name(i: usize) -> String {
    format!("w{i:02}")
}

/// A day and a half of demand for `workloads` workloads on the 5-minute grid, up to `end`: a
/// daily wave of its own size and phase, rising over the last hours for every third workload
/// when `ramp`.
pub fn history(workloads: usize, end: i64, ramp: bool) -> String {
    let series: Vec<(String, Vec<(i64, f64)>)> = (0..workloads)
        .map(|i| {
            let base = 20.0 + 7.0 * i as f64;
            let phase = i as f64 * 0.37;
            let samples = (0..432)
                .map(|k| {
                    let t = end - (431 - k) * 300;
                    let day = (t as f64 / 86_400.0) * std::f64::consts::TAU + phase;
                    let rise = if ramp && i % 3 == 0 && k > 400 {
                        (k - 400) as f64 * 0.04
                    } else {
                        0.0
                    };
                    (t, (base * (1.0 + 0.4 * day.sin() + rise)).round())
                })
                .collect();
            (format!("service=\"{}\"", name(i)), samples)
        })
        .collect();
    let om: Vec<OmSeries> = series
        .iter()
        .map(|(labels, samples)| OmSeries {
            labels,
            samples: samples.clone(),
        })
        .collect();
    openmetrics("demand", &om)
}

/// The configuration every process shares: Prometheus at `url`, the demand signal, the
/// shipped model, a decision log in `dir`, a 1 s interval, `/metrics` on `listen` (or none),
/// and `shard` (a `[shard]` section or nothing). Pools, nodes and workloads follow.
pub fn base_config(dir: &Path, url: &str, listen: Option<u16>, shard: &str) -> String {
    let export = match listen {
        Some(p) => format!("listen = \"127.0.0.1:{p}\""),
        None => "enabled = false".into(),
    };
    format!(
        r#"
[prometheus]
url = "{url}"
timeout = "20s"

[[signal]]
name = "demand"
query = 'demand'
series_labels = ["service"]
step = "5m"
lookback = "2d"

[run]
model = "{}"
decision_log = "{}"
interval = "1s"

[export]
{export}

{shard}
"#,
        repo("models/web.model"),
        dir.join("d.jsonl").display(),
    )
}

/// A path in the repository.
pub fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

/// `prescale run --config cfg` (with `--once` when `once`), logging at `warn`, with no
/// `POD_NAME` from the environment (the ordinal is the configuration's). A long-running
/// process's stderr goes to `stderr.log` beside `cfg` (see [`stderr_of`]), `--once`'s to a pipe.
pub fn prescale(cfg: &Path, once: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prescale"));
    c.args(["run", "--config", cfg.to_str().unwrap()]);
    if once {
        c.arg("--once");
    }
    // A long-running shard's output is not read as it runs, so it must not fill a pipe; a
    // file keeps it for the message of a test that waited on the process in vain.
    let stderr = if once {
        Stdio::piped()
    } else {
        let dir = cfg.parent().expect("a configuration in a directory");
        std::fs::File::create(dir.join("stderr.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    };
    c.env("RUST_LOG", "warn")
        .env_remove("POD_NAME")
        .stdout(Stdio::null())
        .stderr(stderr);
    c
}

/// What a long-running process started by [`prescale`] in `dir` has shown of itself, for a
/// failed wait's message: whether it still runs (or how it ended), the last lines of its
/// stderr, and what its `/readyz` on `port` says (e.g. what it waits for).
pub fn state_of(dir: &Path, child: &mut crate::common::ChildGuard, port: Option<u16>) -> String {
    let status = match child.0.as_mut().map(|c| c.try_wait()) {
        Some(Ok(None)) => "running".to_string(),
        Some(Ok(Some(s))) => format!("exited: {s}"),
        Some(Err(e)) => format!("unknown ({e})"),
        None => "killed by the test".to_string(),
    };
    let readyz = port
        .and_then(|p| http_get_body(std::net::SocketAddr::from(([127, 0, 0, 1], p)), "/readyz"))
        .unwrap_or_else(|| "(no answer)".into());
    format!(
        "process {status}; /readyz: {}\n--- its stderr (last lines) ---\n{}",
        readyz.trim(),
        stderr_of(dir)
    )
}

/// The last 40 lines of `dir/stderr.log`, written by a process [`prescale`] started.
pub fn stderr_of(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Percent-encodes a query for a URL.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `[[workload]]` sections for the first `n` workloads (each with its own demand series), with
/// `replica_capacity` and `extra` lines (e.g. resources and a pool) appended to each.
pub fn workloads(n: usize, capacity: u32, extra: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[workload]]\nname = \"{n}\"\ndemand = 'demand{{service=\"{n}\"}}'\n\
                 replica_capacity = {capacity}\nmin_replicas = 1\nmax_replicas = 200\n\
                 boot_time = \"2m\"\nquantile = \"p90\"\n{extra}\n",
                n = name(i)
            )
        })
        .collect()
}

/// What the node-planning tests add to each workload: requests, and pool `web`.
pub const IN_WEB: &str = "resources = { cpu = \"500m\", memory = \"512Mi\" }\npool = \"web\"\n";

/// Waits for `ok` to hold, polling every 200 ms, or fails with `what()`.
pub fn wait(limit: Duration, mut ok: impl FnMut() -> bool, what: impl Fn() -> String) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "after {limit:?}: {}", what());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The number of series an instant query answers, counted by Prometheus (the bare HTTP
/// client reads no chunked bodies, so answers are kept small).
pub fn count(prom: &Prometheus, promql: &str) -> usize {
    let path = format!(
        "/api/v1/query?query={}",
        encode(&format!("count({promql})"))
    );
    http_get_body(prom.addr(), &path)
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v["data"]["result"][0]["value"][1]
                .as_str()?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0) as usize
}

/// The pools the sharding tests configure (`web`, and `spare` where a test has it): a hold on
/// one of them is the node planner's, a hold on a workload is not.
pub const POOLS: [&str; 2] = ["web", "spare"];

/// One record of a process's decision log, with the fields the sharding tests look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// The cycle's number, counted from 1 by each process.
    pub cycle: u64,
    /// The cycle's time (seconds since the epoch).
    pub at: i64,
    /// `place`, `move`, `add_node`, `remove_node`, `hold`, `scale_up`, …
    pub kind: String,
    /// The workload or pool decided for.
    pub target: String,
    /// The node a placement or node decision names; empty when it names none.
    pub node: String,
    /// Replicas (or nodes) before; `u64::MAX` when the record has none.
    pub from: u64,
    /// Replicas (or nodes) after; `u64::MAX` when the record has none.
    pub to: u64,
    /// What became of the decision (`applied`, `skipped (not leader)`, …).
    pub outcome: String,
    /// Why it was decided.
    pub reason: String,
}

impl Logged {
    /// Whether the node planner decided it: a placement, a node added or removed, or a
    /// pool's hold.
    pub fn is_node_decision(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "place" | "move" | "add_node" | "remove_node"
        ) || (self.kind == "hold" && POOLS.contains(&self.target.as_str()))
    }
}

/// The decisions in `dir/d.jsonl` (as [`base_config`] names the log), in logged order.
pub fn log(dir: &Path) -> Vec<Logged> {
    std::fs::read_to_string(dir.join("d.jsonl"))
        .unwrap_or_default()
        .lines()
        // A line being written may be cut: only whole records count.
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|r| {
            let d = &r["decision"];
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            Logged {
                cycle: r["cycle"].as_u64().unwrap_or(0),
                at: d["at"].as_i64().unwrap_or(0),
                kind: s(&d["kind"]),
                target: s(&d["target"]),
                node: s(&d["node"]),
                from: d["from"].as_u64().unwrap_or(u64::MAX),
                to: d["to"].as_u64().unwrap_or(u64::MAX),
                outcome: s(&r["outcome"]),
                reason: s(&d["reason"]),
            }
        })
        .collect()
}
