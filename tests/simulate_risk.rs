//! `prescale simulate --max-short`: the predictive policy with a short-step budget on a bursty
//! bundled trace (tweet volumes, max/median 33) meets the budget, where the fixed default
//! quantile (p90) does not, and the report names the budget as the policy's knob.

use crate::cli;
use cli::{data, prescale, text};

/// The predictive policy's scores in `dir/report.json`.
fn predictive(dir: &std::path::Path) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    json["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == "predictive")
        .unwrap()
        .clone()
}

#[test]
fn the_budget_is_met_on_a_bursty_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = data("nab_twitter_volume_amzn.csv");
    let run = |extra: &[&str], rep: &str| {
        let rep = dir.path().join(rep);
        let mut args = vec![
            "simulate",
            "--trace",
            &trace,
            "--policy",
            "predictive",
            "--trees",
            "20",
            "--report",
            rep.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = prescale(&args);
        assert!(o.status.success(), "{}", text(&o));
        (predictive(&rep), text(&o))
    };
    let (fixed, _) = run(&[], "fixed");
    let (budget, out) = run(&["--max-short", "1%"], "budget");
    let short = |p: &serde_json::Value| p["scores"]["under_provisioned"].as_f64().unwrap();
    assert!(
        short(&fixed) > 0.01,
        "the fixed p90 already meets 1 % here ({}): the test shows nothing",
        short(&fixed)
    );
    assert!(
        short(&budget) <= 0.01,
        "budget 1 %: realised {}",
        short(&budget)
    );
    assert_eq!(budget["knob"], "short≤1%", "{budget}");
    assert!(out.contains("short≤1%"), "{out}");
    // The budget's line: realised, met, and the online bound for this many steps.
    assert!(
        out.contains("budget 1.00% short steps: predictive realised") && out.contains("(met)"),
        "{out}"
    );
    assert!(out.contains("online bound 1.0"), "{out}");
    assert!(!out.contains("too short"), "{out}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("budget/report.json")).unwrap())
            .unwrap();
    let b = &json["budget"];
    assert_eq!(b["budget"], 0.01, "{b}");
    assert!(b["bound"].as_f64().unwrap() > 0.01, "{b}");
    assert_eq!(b["realised"], budget["scores"]["under_provisioned"], "{b}");
    // Without a budget there is nothing to check.
    let plain: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("fixed/report.json")).unwrap())
            .unwrap();
    assert!(plain["budget"].is_null(), "{plain}");

    // A budget out of range is refused naming the flag.
    let o = prescale(&[
        "simulate",
        "--trace",
        &trace,
        "--max-short",
        "80%",
        "--report",
        "x",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--max-short"), "{}", text(&o));
}
