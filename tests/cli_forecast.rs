//! End to end through the binary: train → backtest → forecast on bundled data, and the errors a
//! user sees for bad input.

use crate::cli;
use cli::{data, prescale, text};

use std::path::PathBuf;

#[test]
fn train_backtest_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.model");
    let m = model.to_str().unwrap();
    let h1 = data("nab_ec2_cpu_utilization_5f5533.csv");
    let h2 = data("nab_rds_cpu_utilization_cc0c53.csv");
    let small = ["--trees", "12", "--max-depth", "8"];

    let o = prescale(&[&["train", "--history", &h1, &h2, "--out", m], &small[..]].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("trained on 2 series"), "{}", text(&o));
    assert!(model.exists());

    let report = dir.path().join("rep");
    let fc = dir.path().join("f.csv");
    let o = prescale(&[
        "backtest",
        "--history",
        &h1,
        "--model",
        m,
        "--report",
        report.to_str().unwrap(),
        "--forecasts-csv",
        fc.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("persistence") && out.contains("seasonal"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    let n = json["overall"]["model"]["n"].as_u64().unwrap();
    assert!(n > 1000, "{n}");
    assert!(report.join("nab_ec2_cpu_utilization_5f5533.png").exists());
    let csv = std::fs::read_to_string(&fc).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("timestamp,p50,p90,p95,p99"));
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() as u64 >= n);
    // Quantiles ascend on every row.
    for r in &rows {
        let v: Vec<f64> = r.split(',').skip(1).map(|x| x.parse().unwrap()).collect();
        assert!(v.windows(2).all(|w| w[0] <= w[1]), "{r}");
    }

    // Without --model: trains on the head, scores the tail.
    let o = prescale(
        &[
            &[
                "backtest",
                "--history",
                &h2,
                "--report",
                report.to_str().unwrap(),
            ],
            &small[..],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("trained on the first 70%"),
        "{}",
        text(&o)
    );

    let o = prescale(&["forecast", "--model", m, "--history", &h1]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("nab_ec2_cpu_utilization_5f5533"),
        "{}",
        text(&o)
    );
    let o = prescale(&["forecast", "--model", m, "--history", &h1, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["quantiles"].as_array().unwrap().len(), 4);
    // Corrected by what the history taught unless asked not to: the median is never raised,
    // the upper levels move by the offsets (the same origin either way).
    let o = prescale(&[
        "forecast",
        "--model",
        m,
        "--history",
        &h1,
        "--json",
        "--no-online-calibration",
    ]);
    let raw: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(raw[0]["at"], v[0]["at"]);
    assert_ne!(
        raw[0]["quantiles"], v[0]["quantiles"],
        "no correction applied"
    );
    let o = prescale(&[
        "forecast",
        "--model",
        m,
        "--history",
        &h1,
        "--online-gain",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--online-gain"), "{}", text(&o));

    // A step that is not the model's is refused with both steps named.
    let o = prescale(&["forecast", "--model", m, "--history", &h1, "--step", "1m"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("differs from the model's step"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:05:00Z,oops\n",
    )
    .unwrap();
    let o = prescale(&[
        "train",
        "--history",
        bad.to_str().unwrap(),
        "--out",
        "/dev/null",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("bad.csv:3:") && text(&o).contains("'oops'"),
        "{}",
        text(&o)
    );

    let junk = dir.path().join("junk.model");
    std::fs::write(&junk, b"PRESCALE\x01\x00\x00\x00").unwrap();
    let h = data("nab_ec2_cpu_utilization_5f5533.csv");
    let o = prescale(&[
        "forecast",
        "--model",
        junk.to_str().unwrap(),
        "--history",
        &h,
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("junk.model") && text(&o).contains("truncated"),
        "{}",
        text(&o)
    );

    let missing: PathBuf = dir.path().join("nope.csv");
    let o = prescale(&[
        "backtest",
        "--history",
        missing.to_str().unwrap(),
        "--report",
        "x",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("nope.csv"), "{}", text(&o));
}
