//! `prescale simulate --trace` end to end through the binary: replica replay of a bundled
//! trace through every policy (with a sweep), the reactive policy alone, the workload drawn
//! from a configuration, several traces sharing one capped pool, and the advice a trace too
//! short to train on gets.

use crate::cli;
use cli::{data, prescale, text, write};

use std::path::{Path, PathBuf};

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
    let run = |cfg: &Path, extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--trace",
            &trace,
            "--config",
            cfg.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--report", rep.to_str().unwrap()]);
        prescale(&args)
    };
    let o = run(&cfg, &["--policy", "reactive"]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("report.json")).unwrap()).unwrap();
    // 8 at 50 % target utilisation = 4 per replica; 10 minutes = 2 steps.
    assert_eq!(json["workload"]["name"], "ec2");
    assert_eq!(json["workload"]["replica_capacity"], 4.0);
    assert_eq!(json["workload"]["max_replicas"], 40);
    assert_eq!(json["boot_steps"], 2);
    assert_eq!(json["knobs"]["quantile"], 0.95);

    let o = run(&cfg, &["--workload", "nope"]);
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
    let o = run(&bad, &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("bad.toml") && text(&o).contains("max_replicas"),
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

#[test]
fn a_tiny_replica_capacity_caps_the_default_bounds_without_overflow() {
    // The default max_replicas is twice the trace's peak in replicas, plus one: with a replica
    // capacity of 1e-300 the first term saturated at u32::MAX and the + 1 overflowed (a panic
    // with overflow checks; in release 0, and a refusal of "min 1 max 0" bounds never given).
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("r");
    let o = prescale(&[
        "simulate",
        "--trace",
        &data("nab_ec2_cpu_utilization_5f5533.csv"),
        "--policy",
        "reactive",
        "--replica-capacity",
        "1e-300",
        "--report",
        rep.to_str().unwrap(),
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("4294967295"), "{out}");
}
