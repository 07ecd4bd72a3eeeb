//! `prescale simulate` end to end through the binary: a bundled trace through every policy with
//! a sweep, task queues from files and from the generator, and the errors bad files get.

#[path = "common/cli.rs"]
mod cli;
use cli::{data, prescale, text};

use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn trace_through_every_policy_with_a_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("rep");
    let trace = data("nab_ec2_cpu_utilization_5f5533.csv");
    let o = prescale(&[
        "simulate",
        "--trace",
        &trace,
        "--sweep",
        "--trees",
        "20",
        "--report",
        rep.to_str().unwrap(),
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for p in [
        "predictive",
        "reactive",
        "static",
        "persistence",
        "oracle",
        "budget",
    ] {
        assert!(out.contains(p), "{p} missing from:\n{out}");
    }
    for f in [
        "report.json",
        "decisions.csv",
        "decisions-predictive.csv",
        "decisions-reactive.csv",
        "capacity.png",
        "capacity-predictive.png",
        "sweep.png",
    ] {
        assert!(rep.join(f).exists(), "{f} not written");
    }
    let csv = std::fs::read_to_string(rep.join("decisions.csv")).unwrap();
    assert!(
        csv.starts_with("timestamp,demand,replicas,capacity\n"),
        "{}",
        &csv[..80]
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("report.json")).unwrap()).unwrap();
    let policies = json["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 5);
    let oracle = policies.iter().find(|p| p["policy"] == "oracle").unwrap();
    assert_eq!(oracle["scores"]["under_provisioned"], 0.0);
    assert_eq!(oracle["scores"]["cost_vs_oracle"], 1.0);
    // Every policy replayed exactly the same steps.
    let steps: Vec<u64> = policies
        .iter()
        .map(|p| p["scores"]["steps"].as_u64().unwrap())
        .collect();
    assert!(steps.windows(2).all(|w| w[0] == w[1]), "{steps:?}");
    let curves = json["sweep"].as_array().unwrap();
    assert_eq!(curves.len(), 4);
    // The summary names the policy whose bisected budget is cheapest, whichever it is.
    let cheapest = curves
        .iter()
        .filter(|c| !c["budget"].is_null())
        .min_by(|a, b| {
            let h = |c: &serde_json::Value| c["budget"]["replica_hours"].as_f64().unwrap();
            h(a).total_cmp(&h(b))
        })
        .unwrap();
    let verdict = json["verdict"].as_str().unwrap();
    let named = format!(
        "cheapest with under-provisioned steps ≤ 1%: {} ({})",
        cheapest["policy"].as_str().unwrap(),
        cheapest["budget"]["knob"].as_str().unwrap()
    );
    assert!(verdict.starts_with(&named), "{verdict}\nexpected: {named}");
    assert!(out.contains(verdict), "{out}");
}

#[test]
fn reactive_only_needs_no_model_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let trace = data("nab_rds_cpu_utilization_cc0c53.csv");
    let run = |name: &str| {
        let rep = dir.path().join(name);
        let o = prescale(&[
            "simulate",
            "--trace",
            &trace,
            "--policy",
            "reactive,static",
            "--boot-time",
            "10m",
            "--replica-capacity",
            "2",
            "--report",
            rep.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        std::fs::read_to_string(rep.join("decisions-reactive.csv")).unwrap()
    };
    assert_eq!(run("a"), run("b"));
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
    let o = prescale(&[
        "simulate",
        "--tasks",
        tasks.to_str().unwrap(),
        "--nodes",
        nodes.to_str().unwrap(),
        "--queue",
        "fcfs,sjf",
        "--placement",
        "best-fit",
        "--report",
        rep.to_str().unwrap(),
    ]);
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
        let o = prescale(&[
            "simulate",
            "--tasks",
            "gen:400",
            "--nodes",
            "gen:8",
            "--placement",
            "ffd,hash,wrr",
            "--queue",
            "rr,mlfq,priority",
            "--seed",
            "3",
            "--report",
            rep.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        std::fs::read(rep.join("report.json")).unwrap()
    };
    assert_eq!(gen("g1"), gen("g2"), "same seed, same report");
}

#[test]
fn bad_files_get_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("r");
    let r = rep.to_str().unwrap();
    let trace = write(dir.path(), "t.csv", "timestamp,value\n60,1\n120,oops\n");
    let o = prescale(&[
        "simulate",
        "--trace",
        trace.to_str().unwrap(),
        "--report",
        r,
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("t.csv:3:") && text(&o).contains("'oops' is not a number"),
        "{}",
        text(&o)
    );

    let tasks = write(
        dir.path(),
        "tasks.csv",
        "id,submit,duration,priority,cpu,mem,gpu\n1,0,10,0,1,1,0\n2,0,-5,0,1,1,0\n",
    );
    let o = prescale(&[
        "simulate",
        "--tasks",
        tasks.to_str().unwrap(),
        "--report",
        r,
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("tasks.csv:3: duration -5 must be > 0"),
        "{}",
        text(&o)
    );

    let nodes = write(
        dir.path(),
        "nodes.toml",
        "[[node]]\nname = \"a\"\ncpu = \"lots\"\nmem = 1\n",
    );
    let o = prescale(&[
        "simulate",
        "--tasks",
        "gen:10",
        "--nodes",
        nodes.to_str().unwrap(),
        "--report",
        r,
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("nodes.toml") && text(&o).contains("cpu"),
        "{}",
        text(&o)
    );

    let o = prescale(&["simulate", "--tasks", "gen:zero", "--report", r]);
    assert!(!o.status.success());
    assert!(text(&o).contains("gen:N"), "{}", text(&o));
}

#[test]
fn workload_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let trace = data("nab_ec2_cpu_utilization_5f5533.csv");
    let cfg = write(
        dir.path(),
        "prescale.toml",
        "[[workload]]\nname = \"other\"\ndemand = \"x\"\nreplica_capacity = 1\nmax_replicas = 5\nboot_time = \"1m\"\n\n\
         [[workload]]\nname = \"ec2\"\ndemand = \"nab_ec2_cpu_utilization_5f5533\"\nreplica_capacity = 8\n\
         target_utilization = 0.5\nmax_replicas = 40\nboot_time = \"10m\"\nquantile = \"p95\"\n",
    );
    let rep = dir.path().join("rep");
    let o = prescale(&[
        "simulate",
        "--trace",
        &trace,
        "--config",
        cfg.to_str().unwrap(),
        "--policy",
        "reactive",
        "--report",
        rep.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("report.json")).unwrap()).unwrap();
    // 8 at 50 % target utilisation = 4 per replica; 10 minutes = 2 steps.
    assert_eq!(json["workload"]["name"], "ec2");
    assert_eq!(json["workload"]["replica_capacity"], 4.0);
    assert_eq!(json["workload"]["max_replicas"], 40);
    assert_eq!(json["boot_steps"], 2);
    assert_eq!(json["knobs"]["quantile"], 0.95);

    let o = prescale(&[
        "simulate",
        "--trace",
        &trace,
        "--config",
        cfg.to_str().unwrap(),
        "--workload",
        "nope",
        "--report",
        rep.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no workload named 'nope'; it has: other, ec2"),
        "{}",
        text(&o)
    );
    let bad = write(
        dir.path(),
        "bad.toml",
        "[[workload]]\nname = \"w\"\ndemand = \"x\"\nreplica_capacity = 1\n",
    );
    let o = prescale(&[
        "simulate",
        "--trace",
        &trace,
        "--config",
        bad.to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("bad.toml") && text(&o).contains("max_replicas"),
        "{}",
        text(&o)
    );
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
        let o = prescale(&[
            "simulate",
            "--tasks",
            tasks.to_str().unwrap(),
            "--nodes",
            nodes.to_str().unwrap(),
            "--queue",
            "fcfs",
            "--autoscale",
            "--node-boot-time",
            "1m",
            "--max-nodes",
            "4",
            "--node-scale-down-window",
            "2m",
            "--report",
            rep.to_str().unwrap(),
        ]);
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
    let o = prescale(&[
        "simulate",
        "--tasks",
        tasks.to_str().unwrap(),
        "--nodes",
        nodes.to_str().unwrap(),
        "--autoscale",
        "--min-nodes",
        "5",
        "--max-nodes",
        "2",
        "--report",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--min-nodes (5) is greater than --max-nodes (2)"),
        "{}",
        text(&o)
    );
    // A task larger than the pool's node is refused up front.
    let o = prescale(&[
        "simulate",
        "--tasks",
        tasks.to_str().unwrap(),
        "--nodes",
        nodes.to_str().unwrap(),
        "--autoscale",
        "--node-cpu",
        "0.5",
        "--report",
        dir.path().join("bad2").to_str().unwrap(),
    ]);
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
    let o = prescale(&[
        "simulate",
        "--tasks",
        tasks.to_str().unwrap(),
        "--nodes",
        nodes.to_str().unwrap(),
        "--queue",
        "fcfs",
        "--allocation",
        "static,dynamic,priority,fair,market",
        "--report",
        rep.to_str().unwrap(),
    ]);
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
    let o = prescale(&[
        "simulate",
        "--tasks",
        "gen:600",
        "--nodes",
        "gen:6",
        "--queue",
        "fcfs",
        "--placement",
        "best-fit,rr",
        "--allocation",
        "dynamic,fair",
        "--report",
        rep.to_str().unwrap(),
    ]);
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
    let o = prescale(&[
        "simulate",
        "--tasks",
        "gen:50",
        "--nodes",
        "gen:2",
        "--placement",
        "hash",
        "--allocation",
        "fair",
        "--report",
        rep.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("least-loaded, best-fit or ffd"),
        "{}",
        text(&o)
    );
}

/// Two bundled traces on one pool of 22 replicas (their predictive wants peak well above it):
/// priority and market (by bid) leave the favoured workload as it is uncapped and cut the
/// other; fair shares the cuts; a cap of 1,000 replicas binds nobody, so every policy is `none`.
#[test]
fn two_traces_share_a_capped_pool() {
    let dir = tempfile::tempdir().unwrap();
    let run = |cap: &str, rep: &Path| {
        let o = prescale(&[
            "simulate",
            "--trace",
            &data("nab_ec2_cpu_utilization_5f5533.csv"),
            "--trace",
            &data("nab_ec2_cpu_utilization_ac20cd.csv"),
            "--pool-cap",
            cap,
            "--trees",
            "20",
            "--workload-opts",
            "nab_ec2_cpu_utilization_5f5533:priority=10,bid=2",
            "--report",
            rep.to_str().unwrap(),
        ]);
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        for p in ["none", "priority", "fair", "static", "market", "jain-short"] {
            assert!(out.contains(p), "{p} missing from:\n{out}");
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(rep.join("report.json")).unwrap()).unwrap();
        json
    };
    let results = |json: &serde_json::Value| -> Vec<(String, Vec<(f64, u64)>)> {
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let ws = r["workloads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| {
                        (
                            w["scores"]["under_provisioned"].as_f64().unwrap(),
                            w["cuts"].as_u64().unwrap(),
                        )
                    })
                    .collect();
                (r["allocation"].as_str().unwrap().to_string(), ws)
            })
            .collect()
    };
    let capped = results(&run("22", &dir.path().join("capped")));
    let by = |name: &str| capped.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let none = by("none");
    assert_eq!(none.iter().map(|w| w.1).sum::<u64>(), 0, "{capped:?}");
    for p in ["priority", "market"] {
        let r = by(p);
        assert_eq!(r[0], none[0], "{p}: the favoured workload as uncapped");
        assert!(r[1].1 > 0 && r[1].0 > none[1].0, "{p}: {r:?}");
    }
    let fair = by("fair");
    assert!(fair.iter().all(|w| w.1 > 0), "fair cuts both: {fair:?}");
    let free = results(&run("1000", &dir.path().join("free")));
    for (p, r) in &free {
        assert_eq!(
            r, &free[0].1,
            "{p} differs from none under a cap that never binds"
        );
    }
    assert_eq!(free[0].1, none);
}

#[test]
fn shared_mode_names_bad_workload_opts() {
    let dir = tempfile::tempdir().unwrap();
    let trace = data("nab_ec2_cpu_utilization_5f5533.csv");
    let o = prescale(&[
        "simulate",
        "--trace",
        &trace,
        "--pool-cap",
        "10",
        "--workload-opts",
        "nab_ec2_cpu_utilization_5f5533:prio=1",
        "--report",
        dir.path().to_str().unwrap(),
    ]);
    let out = text(&o);
    assert!(!o.status.success());
    assert!(out.contains("unknown key 'prio'"), "{out}");
    let o = prescale(&[
        "simulate",
        "--trace",
        &trace,
        "--trace",
        &trace,
        "--report",
        dir.path().to_str().unwrap(),
    ]);
    assert!(text(&o).contains("give --pool-cap"), "{}", text(&o));
}

/// A trained model reads its features on the step it was trained on: `--step` of another
/// step is refused before anything is replayed, naming the trace and both steps, in shared
/// mode as in single-trace mode (shared mode once replayed with features of the wrong scale).
#[test]
fn a_step_that_is_not_the_models_is_refused_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let trace = data("nab_ec2_cpu_utilization_5f5533.csv");
    let model = cli::repo("models/web.model");
    let rep = dir.path().join("rep");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--trace",
            &trace,
            "--model",
            &model,
            "--step",
            "1m",
            "--report",
            rep.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        prescale(&args)
    };
    for extra in [&["--pool-cap", "10"][..], &[]] {
        let o = run(extra);
        let out = text(&o);
        assert!(!o.status.success(), "{extra:?}: {out}");
        for part in [
            trace.as_str(),
            "the model was trained on a 300s step, the data has a 60s step",
        ] {
            assert!(out.contains(part), "{extra:?}: {part}\nnot in:\n{out}");
        }
        assert!(!rep.exists(), "{extra:?}: a report was written");
    }
    // Before any trace is read: a second trace that is not CSV is not what is reported.
    let junk = write(dir.path(), "junk.csv", "not,a\ntrace");
    let o = run(&["--trace", junk.to_str().unwrap(), "--pool-cap", "10"]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("the data has a 60s step") && out.contains(junk.to_str().unwrap()),
        "{out}"
    );
}

/// An hour at a 1 s step, like the Azure LLM traces: requests per second with a slow wave.
fn one_hour_per_second(dir: &Path) -> PathBuf {
    let mut csv = String::from("timestamp,value\n");
    for t in 0..3500i64 {
        let wave = 10.0 + 4.0 * (t as f64 / 600.0).sin() + ((t * 7919) % 5) as f64;
        csv.push_str(&format!("{},{wave}\n", 1_700_000_000 + t));
    }
    write(dir, "llm.csv", &csv)
}

#[test]
fn a_fine_trace_too_short_to_train_on_says_how_much_history_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let trace = one_hour_per_second(dir.path());
    let rep = dir.path().join("r");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--trace",
            trace.to_str().unwrap(),
            "--trees",
            "5",
            "--policy",
            "predictive,reactive",
            "--report",
            rep.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        prescale(&args)
    };
    // 25 % is 875 steps; a 15-minute window is 900 of them.
    let o = run(&["--train-fraction", "0.25"]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    for part in [
        "the history part (the first 25% of the trace, 875 steps of 1s: 14m 35s) is too short",
        "with a 15m window at a 1s step: that needs at least 962 steps (16m 2s)",
        "give --train-fraction 0.28 or more",
    ] {
        assert!(out.contains(part), "{part}\nnot in:\n{out}");
    }
    // The advice works, and so does the default 30 % (1,050 steps, trained uncalibrated).
    let o = run(&["--train-fraction", "0.28"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&[]);
    assert!(o.status.success(), "{}", text(&o));
    // A window that fits the short history trains too.
    let o = run(&["--train-fraction", "0.25", "--window", "1m"]);
    assert!(o.status.success(), "{}", text(&o));
}
