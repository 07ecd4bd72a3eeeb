//! What the tests of shards with leader election (`shard_lease.rs`, `shard_partition.rs`)
//! share: a shard's configuration (`[shard]`, `[kubernetes]` against the fake API server,
//! `[leader_election]` with short periods, pool `web` at its maximum of one node), its
//! decision log, the times it planned the node pools, its `prescale_leader` gauge, and a
//! polling wait (`use crate::lease_setup;`; it reaches `shard_setup` and `fake_lease` through
//! `crate::`).
//!
//! The marker of node planning is pool `web`'s hold: its one node is at `max_nodes`, so every
//! cycle that plans the pools holds it (`pool at max 1 nodes, cannot add`).

use crate::common::{free_port, http_get_body, now, PromOptions, Prometheus};
use crate::fake_lease::FakeLease;
use crate::shard_setup::{base_config, history, log, workloads, IN_WEB};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What every lease test starts from: a port per shard, a real Prometheus holding the
/// workloads' history and scraping those ports every second, the fake Lease API, and a
/// directory per shard under `root`.
pub struct Setup {
    pub ports: Vec<u16>,
    pub prom: Prometheus,
    pub api: FakeLease,
    pub root: tempfile::TempDir,
    pub dirs: Vec<PathBuf>,
}

/// [`Setup`] for [`SHARDS`] shards and [`WORKLOADS`] workloads.
pub fn setup() -> Setup {
    let end = now() - now() % 300;
    let ports: Vec<u16> = (0..SHARDS).map(|_| free_port()).collect();
    let prom = Prometheus::start(PromOptions {
        history: Some(history(WORKLOADS, end, false)),
        scrape_targets: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        scrape_interval: Some("1s".into()),
        ..PromOptions::default()
    });
    let api = FakeLease::start();
    let root = tempfile::tempdir().unwrap();
    let dirs = (0..SHARDS)
        .map(|o| root.path().join(format!("shard-{o}")))
        .collect();
    Setup {
        ports,
        prom,
        api,
        root,
        dirs,
    }
}

pub const WORKLOADS: usize = 12;
pub const SHARDS: u32 = 3;
pub const LEASE: Duration = Duration::from_secs(4);
pub const RENEW: Duration = Duration::from_secs(2);
pub const RETRY: Duration = Duration::from_millis(500);
/// One 1 s cycle, and scheduling on a loaded 2-core machine.
pub const SLACK: Duration = Duration::from_millis(2500);

/// Shard `o`'s configuration: `[shard]`, `[kubernetes]` and `[leader_election]` with identity base
/// `shard-<o>` and token `token-shard-<o>`, pool `web` at its maximum of one node, and the
/// workloads.
pub fn config(dir: &Path, url: &str, port: u16, o: u32, api: &FakeLease) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    api.kubeconfig(&dir.join("kubeconfig"), &token(o));
    let shard = format!("[shard]\nreplicas = {SHARDS}\nordinal = {o}\nmax_age = \"8s\"\n");
    let mut text = base_config(dir, url, Some(port), &shard);
    text.push_str(&format!(
        r#"
[kubernetes]
kubeconfig = "kubeconfig"

[leader_election]
enabled = true
namespace = "prescale"
name = "prescale"
identity = "shard-{o}"
lease_duration = "{}s"
renew_deadline = "{}s"
retry_period = "{}ms"

[[pool]]
name = "web"
capacity = {{ cpu = 4, memory = "16Gi" }}
boot_time = "2m"
min_nodes = 1
max_nodes = 1

[[node]]
name = "web-1"
pool = "web"

"#,
        LEASE.as_secs(),
        RENEW.as_secs(),
        RETRY.as_millis()
    ));
    text.push_str(&workloads(WORKLOADS, 10, IN_WEB));
    let path = dir.join("prescale.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The bearer token shard `o` sends to the fake API server.
pub fn token(o: u32) -> String {
    format!("token-shard-{o}")
}

/// The cycle times (`at`) at which shard `dir` logged node decisions.
pub fn node_times(dir: &Path) -> Vec<i64> {
    let mut t: Vec<i64> = log(dir)
        .iter()
        .filter(|d| d.is_node_decision())
        .map(|d| d.at)
        .collect();
    t.dedup();
    t
}

pub fn wait_for<T>(
    limit: Duration,
    what: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < limit, "after {limit:?}: {}", what());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `prescale_leader` as shard `port`'s `/metrics` says.
pub fn leader_gauge(port: u16) -> Option<i64> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    http_get_body(addr, "/metrics")?
        .lines()
        .find_map(|l| l.strip_prefix("prescale_leader "))
        .and_then(|v| v.trim().parse().ok())
}

/// The configured identity (`shard-<o>`) of a holder: prescale adds `_` and 8 random hex
/// digits to it, so replicas sharing a configuration never share an identity.
pub fn shard_of(holder: &Option<String>) -> Option<&str> {
    let (base, suffix) = holder.as_deref()?.rsplit_once('_')?;
    (suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit())).then_some(base)
}
