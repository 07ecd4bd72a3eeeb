//! `prescale simulate --tasks` end to end through the binary: task queues from files and from
//! the generator, an autoscaled pool against the fixed cluster, and the allocation policies
//! per tenant.

use crate::cli;
use cli::{prescale, text, write};
use std::process::Output;

/// `prescale simulate --tasks TASKS --nodes NODES ARGS… --report REPORT`.
fn simulate_tasks(tasks: &str, nodes: &str, args: &[&str], report: &str) -> Output {
    let mut all = vec!["simulate", "--tasks", tasks, "--nodes", nodes];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--report", report]);
    prescale(&all)
}

#[test]
fn task_queues_from_files_and_generator() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = write(
        dir.path(),
        "tasks.csv",
        "id,submit,duration,priority,cpu,mem,gpu\n1,0,10,0,1,1,0\n2,1,5,1,1,1,0\n3,2,1,5,1,1,0\n",
    );
    let nodes = write(
        dir.path(),
        "nodes.toml",
        "[[node]]\nname = \"n1\"\ncpu = 1\nmem = 4\n",
    );
    let rep = dir.path().join("q");
    let o = simulate_tasks(
        tasks.to_str().unwrap(),
        nodes.to_str().unwrap(),
        &["--queue", "fcfs,sjf", "--placement", "best-fit"],
        rep.to_str().unwrap(),
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("report.json")).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    // FCFS waits 0, 9, 13; SJF 0, 10, 8.
    assert!(
        (runs[0]["mean_wait"].as_f64().unwrap() - 22.0 / 3.0).abs() < 1e-9,
        "{out}"
    );
    assert!(
        (runs[1]["mean_wait"].as_f64().unwrap() - 6.0).abs() < 1e-9,
        "{out}"
    );

    let gen = |name: &str| {
        let rep = dir.path().join(name);
        let o = simulate_tasks(
            "gen:400",
            "gen:8",
            &[
                "--placement",
                "ffd,hash,wrr",
                "--queue",
                "rr,mlfq,priority",
                "--seed",
                "3",
            ],
            rep.to_str().unwrap(),
        );
        assert!(o.status.success(), "{}", text(&o));
        std::fs::read(rep.join("report.json")).unwrap()
    };
    assert_eq!(gen("g1"), gen("g2"), "same seed, same report");
}

#[test]
fn autoscaled_pool_against_the_fixed_cluster() {
    let dir = tempfile::tempdir().unwrap();
    // A burst of sixteen 1-core, 10-minute tasks on a single 4-core node, then a trickle.
    let mut csv = String::from("id,submit,duration,priority,cpu,mem,gpu\n");
    for i in 0..16 {
        csv.push_str(&format!("{i},0,600,0,1,1,0\n"));
    }
    for k in 1..=10 {
        csv.push_str(&format!("{},{},10,0,1,1,0\n", 100 + k, 300 * k));
    }
    let tasks = write(dir.path(), "tasks.csv", &csv);
    let nodes = write(
        dir.path(),
        "nodes.toml",
        "[[node]]\nname = \"n1\"\ncpu = 4\nmem = 4\n",
    );
    let run = |name: &str| {
        let rep = dir.path().join(name);
        let o = simulate_tasks(
            tasks.to_str().unwrap(),
            nodes.to_str().unwrap(),
            &[
                "--queue",
                "fcfs",
                "--autoscale",
                "--node-boot-time",
                "1m",
                "--max-nodes",
                "4",
                "--node-scale-down-window",
                "2m",
            ],
            rep.to_str().unwrap(),
        );
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        (rep, out)
    };
    let (rep, out) = run("a");
    for s in ["autoscaled", "node-h", "persistence + recent growth"] {
        assert!(out.contains(s), "{s} missing from:\n{out}");
    }
    for f in [
        "report.json",
        "nodes.png",
        "nodes-fcfs-least-loaded.png",
        "nodes-fcfs-least-loaded.csv",
        "node-decisions-fcfs-least-loaded.csv",
    ] {
        assert!(rep.join(f).exists(), "{f} not written");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("report.json")).unwrap()).unwrap();
    let r = &json["autoscale"]["runs"][0];
    let (fixed, auto) = (
        r["fixed"]["mean_wait"].as_f64().unwrap(),
        r["autoscaled"]["mean_wait"].as_f64().unwrap(),
    );
    assert!(auto < fixed / 4.0, "autoscaled {auto} vs fixed {fixed}");
    assert_eq!(r["cluster"]["added"], 3);
    assert_eq!(r["cluster"]["removed"], 3);
    assert_eq!(r["cluster"]["peak_nodes"], 4);
    let decisions =
        std::fs::read_to_string(rep.join("node-decisions-fcfs-least-loaded.csv")).unwrap();
    assert!(
        decisions.starts_with("t,kind,from,to,node,reason\n0,add-node,1,4,"),
        "{decisions}"
    );
    let (rep_b, _) = run("b");
    assert_eq!(
        std::fs::read(rep.join("report.json")).unwrap(),
        std::fs::read(rep_b.join("report.json")).unwrap(),
        "same inputs, same report"
    );
    // Bad pool settings are refused with the flag's name.
    let o = simulate_tasks(
        tasks.to_str().unwrap(),
        nodes.to_str().unwrap(),
        &["--autoscale", "--min-nodes", "5", "--max-nodes", "2"],
        dir.path().join("bad").to_str().unwrap(),
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--min-nodes (5) is greater than --max-nodes (2)"),
        "{}",
        text(&o)
    );
    // A task larger than the pool's node is refused up front.
    let o = simulate_tasks(
        tasks.to_str().unwrap(),
        nodes.to_str().unwrap(),
        &["--autoscale", "--node-cpu", "0.5"],
        dir.path().join("bad2").to_str().unwrap(),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("fits no node"), "{}", text(&o));
}

/// Issue #12 section 2 end to end: allocation policies on a task file with tenants and bids,
/// and on generated tasks, through `prescale simulate --allocation`.
#[test]
fn allocation_policies_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    // The DRF paper's two users on one 9-core, 18 GB node: each task runs 100 s, all at 0.
    let mut csv = String::from("id,submit,duration,priority,cpu,mem,gpu,tenant,bid\n");
    for i in 0..6 {
        csv.push_str(&format!("{i},0,100,0,1,4,0,A,1\n"));
        csv.push_str(&format!("{},0,100,5,3,1,0,B,2\n", 100 + i));
    }
    let tasks = write(dir.path(), "tasks.csv", &csv);
    let nodes = write(
        dir.path(),
        "nodes.toml",
        "[[node]]\nname = \"n1\"\ncpu = 9\nmem = 18\n",
    );
    let rep = dir.path().join("a");
    let o = simulate_tasks(
        tasks.to_str().unwrap(),
        nodes.to_str().unwrap(),
        &[
            "--queue",
            "fcfs",
            "--allocation",
            "static,dynamic,priority,fair,market",
        ],
        rep.to_str().unwrap(),
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for p in [
        "static", "dynamic", "priority", "fair", "market", "jain", "  A (6)", "  B (6)",
    ] {
        assert!(out.contains(p), "{p} missing from:\n{out}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("report.json")).unwrap()).unwrap();
    let allocs = json["allocations"].as_array().unwrap();
    assert_eq!(allocs.len(), 5);
    let get = |name: &str| allocs.iter().find(|a| a["allocation"] == name).unwrap();
    let tenant = |a: &serde_json::Value, t: &str| {
        a["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["tenant"] == t)
            .unwrap()
            .clone()
    };
    // DRF: A runs 3 at a time, B 2, in rounds of 100 s: A's waits 0,0,0,100,100,100 (mean
    // 50); B's 0,0,100,100,200,200 (mean 100).
    let fair = get("fair");
    assert_eq!(tenant(fair, "A")["mean_wait"], 50.0, "{out}");
    assert_eq!(tenant(fair, "B")["mean_wait"], 100.0, "{out}");
    // Priority (B's 5 beats A's 0) and market (B bids 2) both serve B first: three B at a
    // time by CPU, so B waits 0,0,0,100,100,100; B's slowdown (completion/run) is 1.5.
    for policy in ["priority", "market"] {
        let b = tenant(get(policy), "B");
        assert_eq!(b["mean_wait"], 50.0, "{policy}: {out}");
        assert_eq!(b["mean_slowdown"], 1.5, "{policy}: {out}");
    }
    assert_eq!(get("market")["clearing_bid"], 1.0, "{out}");
    assert!(get("fair")["clearing_bid"].is_null());
    let jain = get("fair")["jain"].as_f64().unwrap();
    assert!(jain > 0.5 && jain <= 1.0, "{jain}");

    // Generated tasks: three tenants; on-demand allocation is the fcfs discipline's run.
    let rep = dir.path().join("g");
    let o = simulate_tasks(
        "gen:600",
        "gen:6",
        &[
            "--queue",
            "fcfs",
            "--placement",
            "best-fit,rr",
            "--allocation",
            "dynamic,fair",
        ],
        rep.to_str().unwrap(),
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("the generator was asked for cpu 85%"), "{out}");
    assert!(out.contains("cpu%arr"), "{out}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("report.json")).unwrap()).unwrap();
    let allocs = json["allocations"].as_array().unwrap();
    // rr has no allocation run; best-fit does, for each policy.
    assert_eq!(allocs.len(), 2, "{out}");
    let dynamic = &allocs[0];
    assert_eq!(dynamic["tenants"].as_array().unwrap().len(), 3);
    let fcfs = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["placement"] == "best-fit")
        .unwrap();
    assert_eq!(dynamic["mean_wait"], fcfs["mean_wait"], "{out}");
    assert_eq!(dynamic["utilisation"], fcfs["utilisation"], "{out}");
    let offered = json["offered_load"]["cpu"].as_f64().unwrap();
    assert!(offered > 0.5 && offered < 1.2, "{offered}");

    // A placement allocation runs cannot use alone is refused with a clear message.
    let o = simulate_tasks(
        "gen:50",
        "gen:2",
        &["--placement", "hash", "--allocation", "fair"],
        rep.to_str().unwrap(),
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("least-loaded, best-fit or ffd"),
        "{}",
        text(&o)
    );
}

/// Flags of task mode that reached the generator unchecked: `--load nan` panicked in the GPU
/// draw, `gen:<huge>` aborted on allocation. Each is refused naming it, and writes nothing.
#[test]
fn bad_generator_flags_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("r");
    for (tasks, args, want) in [
        ("gen:50", vec!["--load", "nan"], "--load must be"),
        ("gen:50", vec!["--load", "inf"], "--load must be"),
        ("gen:50", vec!["--load", "0"], "--load must be"),
        (
            "gen:50",
            vec!["--aging-per-hour", "NaN"],
            "--aging-per-hour must be",
        ),
        ("gen:18446744073709551615", vec![], "from 1 to 10000000"),
    ] {
        let o = simulate_tasks(tasks, "gen:4", &args, rep.to_str().unwrap());
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{tasks} {args:?}: {t}");
        assert!(t.contains(want), "{tasks} {args:?}: {t}");
        assert!(!t.contains("panicked"), "{t}");
        assert!(!rep.exists(), "{tasks} {args:?} wrote a report");
    }
}
