//! The cluster read from kube-state-metrics in a real Prometheus (backfilled with promtool from
//! a synthetic cluster of 40 nodes, 32 workloads and ~650 pods that changes over time): the
//! planner's view equals the cluster at every step, its decisions follow each change, and
//! `prescale run` plans from it with no `[[node]]` in its configuration. Without
//! kube-state-metrics every workload says why its count is unknown and nothing scales down.

use crate::cli;
use crate::cluster;
use crate::common;

use cli::{prescale, repo};
use cluster::*;
use common::*;
use prescale::collect::{ClusterReader, PromClient};
use prescale::plan::{
    observe_cluster, ClusterView, DecisionKind, NodePlanner, ReplicaPlanner, WorkloadInput,
    WorkloadLoad,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const DEMAND: &str = "demand{service=\"web\"}";

/// Two days of low demand on the 5-minute grid, up to `now`.
fn demand(om: &mut Families, now: i64) {
    let end = now - now % 300;
    om.push(
        "demand",
        "service=\"web\"",
        (0..576).map(|k| (end - (575 - k) * 300, 10.0)),
    );
}

fn config_text(url: &str, dir: &Path, c: &Cluster, pools: &str) -> String {
    format!(
        r#"
[prometheus]
url = "{url}"
timeout = "20s"

[cluster]
source = "kube-state-metrics"
pool_label = "{POOL_LABEL}"
selector = 'job="kube-state-metrics"'

[[signal]]
name = "demand"
query = 'demand'
series_labels = ["service"]
step = "5m"
lookback = "2d"

[run]
model = "{}"
decision_log = "{}"

[export]
enabled = false

{pools}
{}"#,
        repo("models/web.model"),
        dir.join("d.jsonl").display(),
        workloads_toml(c, DEMAND)
    )
}

/// The view in the generator's terms.
fn seen(v: &ClusterView) -> Truth {
    let nodes = v
        .nodes
        .iter()
        .map(|n| {
            let reps = n.replicas.iter().cloned().collect();
            (n.name.clone(), (n.pool.clone(), n.unschedulable, reps))
        })
        .collect();
    let pools = v
        .pools
        .iter()
        .map(|p| (p.name.clone(), (p.capacity.cpu, p.capacity.memory)))
        .collect();
    Truth {
        nodes,
        replicas: v.replicas.clone(),
        pools,
    }
}

/// Runs `prescale run` with `config` (its exporter on a free port) until its `/metrics` has a
/// cycle's `prescale_cluster_state_known`, stops it, and returns that gauge per workload.
/// Restores the decision log, so the caller's view of it is as before.
fn state_known_on_metrics(cfg_path: &Path, config: &str) -> BTreeMap<String, f64> {
    let port = free_port();
    let cfg = config.replace(
        "[export]\nenabled = false",
        &format!("[export]\nlisten = \"127.0.0.1:{port}\""),
    );
    assert!(cfg.contains(&format!("127.0.0.1:{port}")), "{cfg}");
    let log = cfg_path.with_file_name("d.jsonl");
    let before = std::fs::read(&log).ok();
    std::fs::write(cfg_path, cfg).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["run", "--config", cfg_path.to_str().unwrap()])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = cli::Running(child, None);
    let family = "prescale_cluster_state_known{workload=\"";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        if let Some(t) = cli::scrape(port).filter(|t| t.contains(family)) {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {family} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(child);
    std::fs::write(cfg_path, config).unwrap();
    match before {
        Some(b) => std::fs::write(&log, b).unwrap(),
        None => {
            let _ = std::fs::remove_file(&log);
        }
    }
    metrics
        .lines()
        .filter_map(|l| {
            let (w, v) = l.strip_prefix(family)?.split_once("\"} ")?;
            Some((w.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The decision log's records (`{cycle, decision, outcome}`).
fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("d.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("log line parses"))
        .collect()
}

/// The decisions the log holds.
fn log_lines(dir: &Path) -> Vec<serde_json::Value> {
    records(dir)
        .into_iter()
        .map(|r| r["decision"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_equals_the_cluster_at_every_step_and_decisions_follow_its_changes() {
    let now = now() - now() % 60;
    // Four states, ten minutes each, the last one running into the future; each is read 7
    // minutes into its own, when the last one's series are past Prometheus' 5-minute lookback.
    let c0 = Cluster::new();
    assert!((550..700).contains(&c0.pod_count()), "{}", c0.pod_count());
    let mut c1 = c0.clone();
    c1.scale_by_hand("web", 30, 6);
    let mut c2 = c1.clone();
    c2.remove_node("general-07");
    let mut c3 = c2.clone();
    let api_rs = &c3.workloads[c3.workload("api")].rs.clone();
    let from = c3
        .pods
        .iter()
        .find(|p| &p.created_by_name == api_rs)
        .and_then(|p| p.node.clone())
        .unwrap();
    let to = if from == "compute-11" {
        "compute-10"
    } else {
        "compute-11"
    };
    c3.move_pods("api", 1, &from, to);
    let phases = [c0, c1, c2, c3];
    let start = |k: usize| now - 39 * 60 + k as i64 * 600;
    let mut om = Families::default();
    for (k, c) in phases.iter().enumerate() {
        c.write_samples(&mut om, start(k), start(k) + 600, 60);
    }
    demand(&mut om, now);
    let prom = Prometheus::start(PromOptions {
        history: Some(om.text()),
        ..PromOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let pools = "[[pool]]\nname = \"general\"\nboot_time = \"4m\"\nmin_nodes = 3\nmax_nodes = 30\n";
    let cfg = load_config(
        dir.path(),
        &config_text(&prom.url(), dir.path(), &phases[0], pools),
    );
    let client = PromClient::new(cfg.prometheus.as_ref().unwrap()).unwrap();
    let reader = ClusterReader::new(client, cfg.cluster.clone().unwrap());
    let (workloads, pool_specs) = (&cfg.live.workloads, &cfg.live.pools);
    let web = workloads.iter().find(|w| w.name == "web").unwrap();

    for (k, c) in phases.iter().enumerate() {
        let at = start(k) + 7 * 60;
        let state = tokio::time::timeout(Duration::from_secs(60), reader.read(at))
            .await
            .expect("read in time");
        assert!(state.failures.is_empty(), "step {k}: {:?}", state.failures);
        let view = observe_cluster(&state, workloads, pool_specs);
        let want = c.truth();
        let got = seen(&view);
        assert_eq!(got.replicas, want.replicas, "step {k}: replicas");
        assert_eq!(got.pools, want.pools, "step {k}: pools");
        for (name, n) in &want.nodes {
            assert_eq!(got.nodes.get(name), Some(n), "step {k}: node {name}");
        }
        assert_eq!(got.nodes.len(), want.nodes.len(), "step {k}: node count");
        assert!(
            view.unknown.is_empty() && view.nodes_unknown.is_none(),
            "{view:?}"
        );
        // The [[pool]] gives general its policy; the others are discovered with defaults.
        let general = view.pools.iter().find(|p| p.name == "general").unwrap();
        assert_eq!(
            (general.boot_time, general.min_nodes, general.max_nodes),
            (240, 3, 30)
        );
        let compute = view.pools.iter().find(|p| p.name == "compute").unwrap();
        assert_eq!(compute.max_nodes, prescale::plan::DISCOVERED_MAX_NODES);
        // Each workload's request per replica and pool come from its pods.
        let vweb = view.workloads.iter().find(|w| w.name == "web").unwrap();
        assert_eq!(vweb.pool.as_deref(), Some("general"));
        let wl = &c.workloads[c.workload("web")];
        assert!(
            (vweb.resources.cpu - wl.cpu).abs() < 1e-9,
            "{:?}",
            vweb.resources
        );

        // The replica planner starts from the count the cluster has, whoever set it.
        let d = ReplicaPlanner::new().plan(
            web,
            &WorkloadInput {
                current_demand: Some(150.0),
                ..WorkloadInput::new(at, view.replicas["web"])
            },
        );
        assert_eq!(d.from, wl.replicas, "step {k}: {d}");
        // The node planner places what is unscheduled, on nodes that exist and take pods.
        let loads: Vec<WorkloadLoad> = view
            .workloads
            .iter()
            .map(|w| WorkloadLoad::new(w, view.replicas[&w.name], None))
            .collect();
        let ds = NodePlanner::new().plan(at, &view.pools, &view.nodes, &loads);
        let placed_web: u32 = ds
            .iter()
            .filter(|d| d.kind == DecisionKind::Place && d.target == "web")
            .map(|d| d.to - d.from)
            .sum();
        assert_eq!(placed_web, if k == 0 { 0 } else { 4 }, "step {k}: {ds:?}");
        for d in &ds {
            for n in d.node.iter().chain(&d.to_node) {
                assert!(
                    want.nodes.contains_key(n),
                    "step {k}: {d} names a node not there"
                );
                assert_ne!(n, "general-19", "step {k}: cordoned node used: {d}");
            }
        }
    }

    // The binary, now: plans from the cluster it reads, with no [[node]] anywhere.
    let o = prescale(&[
        "run",
        "--once",
        "--config",
        dir.path().join("prescale.toml").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", cli::text(&o));
    let log = log_lines(dir.path());
    let web_d = log
        .iter()
        .find(|d| d["target"] == "web")
        .expect("a web decision");
    assert_eq!(web_d["from"], 30, "{web_d}");
    let nodes_now = phases[3].truth().nodes;
    for d in &log {
        if let Some(n) = d["node"].as_str() {
            assert!(nodes_now.contains_key(n), "{d}");
        }
    }
    assert!(
        log.iter()
            .all(|d| d["node"] != "general-07" && d["to_node"] != "general-07"),
        "the removed node is gone"
    );
}

/// Without kube-state-metrics (never scraped, or gone longer than the lookback), every workload
/// is reported with the series it misses, nothing scales down, and no node decision is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_kube_state_metrics_each_workload_says_why_and_nothing_scales_down() {
    let now = now() - now() % 60;
    let c = Cluster::new();
    let dir = tempfile::tempdir().unwrap();
    // First with kube-state-metrics: web is read at 20 (demand wants fewer) and logged.
    let mut om = Families::default();
    c.write_samples(&mut om, now - 600, now + 60, 60);
    demand(&mut om, now);
    let prom = Prometheus::start(PromOptions {
        history: Some(om.text()),
        ..PromOptions::default()
    });
    let cfg_path = dir.path().join("prescale.toml");
    std::fs::write(&cfg_path, config_text(&prom.url(), dir.path(), &c, "")).unwrap();
    let o = prescale(&["run", "--once", "--config", cfg_path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", cli::text(&o));
    let known = state_known_on_metrics(&cfg_path, &config_text(&prom.url(), dir.path(), &c, ""));
    for w in &c.workloads {
        assert_eq!(known.get(&w.name), Some(&1.0), "{}: {known:?}", w.name);
    }
    drop(prom);
    let first = records(dir.path());
    let rec = first
        .iter()
        .find(|r| r["decision"]["target"] == "web")
        .unwrap();
    let web1 = &rec["decision"];
    assert_eq!(web1["from"], 20, "{web1}");
    assert_eq!(web1["kind"], "scale_down", "the demand wants fewer: {web1}");
    std::fs::remove_file(dir.path().join("d.jsonl")).unwrap();

    // Then only the demand: same config, and a log that says web runs 20.
    let mut om = Families::default();
    demand(&mut om, now);
    let prom = Prometheus::start(PromOptions {
        history: Some(om.text()),
        ..PromOptions::default()
    });
    std::fs::write(&cfg_path, config_text(&prom.url(), dir.path(), &c, "")).unwrap();
    let mut seeded = rec.clone();
    seeded["decision"]["to"] = 20.into();
    seeded["decision"]["kind"] = "hold".into();
    std::fs::write(dir.path().join("d.jsonl"), format!("{seeded}\n")).unwrap();
    let o = prescale(&["run", "--once", "--config", cfg_path.to_str().unwrap()]);
    let text = cli::text(&o);
    assert!(o.status.success(), "{text}");
    let log = log_lines(dir.path());
    let mut checked = 0;
    for d in log.iter().skip(1) {
        assert_ne!(d["kind"], "scale_down", "{d}");
        assert!(
            !["add_node", "remove_node", "place", "move"].contains(&d["kind"].as_str().unwrap()),
            "no node decision without nodes: {d}"
        );
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.contains("replica count unknown"), "{reason}");
        checked += 1;
    }
    assert_eq!(checked, c.workloads.len(), "{log:?}");
    let web = log.iter().skip(1).find(|d| d["target"] == "web").unwrap();
    assert_eq!(
        (web["from"].as_u64(), web["to"].as_u64()),
        (Some(20), Some(20)),
        "{web}"
    );
    let guards = web["guards"].as_array().unwrap();
    assert!(guards.iter().any(|g| g["kind"] == "stale_data"), "{web}");
    let reason = web["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "kube_deployment_spec_replicas{namespace=\"shop\",deployment=\"web\"} is absent"
        ),
        "{reason}"
    );
    let db = log.iter().skip(1).find(|d| d["target"] == "db").unwrap();
    assert!(
        db["reason"]
            .as_str()
            .unwrap()
            .contains("kube_statefulset_replicas{namespace=\"data\",statefulset=\"db\"}"),
        "{db}"
    );
    assert!(text.contains("no node decisions"), "{text}");

    // And /metrics says so per workload, for an alert: every workload's state is unknown (0).
    let known = state_known_on_metrics(&cfg_path, &config_text(&prom.url(), dir.path(), &c, ""));
    for w in &c.workloads {
        assert_eq!(known.get(&w.name), Some(&0.0), "{}: {known:?}", w.name);
    }
}
