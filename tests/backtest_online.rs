//! `prescale backtest` with and without the online calibration (`forecast::online`), end to
//! end through the binary: the correction is causal (the first forecasts of the tail, whose
//! targets no origin before them could know, are the model's own), it brings an overconfident
//! model's p90 coverage back to 0.9, and `--no-online-calibration` turns it off.

use crate::cli;
use cli::{data, prescale, text};

fn rows(path: &std::path::Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|x| x.parse().unwrap()).collect())
        .collect()
}

fn p90_coverage(dir: &std::path::Path) -> f64 {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    json["overall"]["model"]["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| (c[0].as_f64().unwrap() - 0.9).abs() < 1e-9)
        .unwrap()[1]
        .as_f64()
        .unwrap()
}

/// One `backtest` of 5f5533's tail (small forest) into `dir/name`: its stdout, its forecasts
/// CSV rows (`p50, p90, p95, p99`) and its report's directory.
fn backtest(
    dir: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> (String, Vec<Vec<f64>>, std::path::PathBuf) {
    // 5-minute steps, a 15-minute window: an origin's target is complete 3 origins later.
    let h = data("nab_ec2_cpu_utilization_5f5533.csv");
    let rep = dir.join(name);
    let fc = dir.join(format!("{name}.csv"));
    let args = [
        &[
            "backtest",
            "--history",
            &h,
            "--window",
            "15m",
            "--report",
            rep.to_str().unwrap(),
            "--forecasts-csv",
            fc.to_str().unwrap(),
            "--trees",
            "30",
            "--max-depth",
            "10",
        ][..],
        extra,
    ]
    .concat();
    let o = prescale(&args);
    assert!(o.status.success(), "{}", text(&o));
    (text(&o), rows(&fc), rep)
}

fn overall_wape(dir: &std::path::Path) -> f64 {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    json["overall"]["model"]["wape"].as_f64().unwrap()
}

#[test]
fn backtest_calibrates_online_causally_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let h = data("nab_ec2_cpu_utilization_5f5533.csv");
    let run = |name: &str, extra: &[&str]| {
        let (text, rows, rep) = backtest(dir.path(), name, extra);
        (text, rows, p90_coverage(&rep))
    };
    let (on_text, on, on_cov) = run("on", &[]);
    let (off_text, off, off_cov) = run("off", &["--no-online-calibration"]);
    assert!(
        on_text.contains("quantiles calibrated online (gain 0.01, median chosen online)"),
        "{on_text}"
    );
    assert!(off_text.contains("no online calibration"), "{off_text}");
    assert_eq!(on.len(), off.len());
    // No target is complete before the fourth origin of the tail: the first three forecasts
    // are the model's own; the correction only starts once one is.
    assert_eq!(on[..3], off[..3]);
    assert_ne!(on[3..], off[3..]);
    for r in &on {
        assert!(r.windows(2).all(|w| w[0] <= w[1]), "{r:?}");
    }
    // The model alone is overconfident the other way on this trace (its p90 covers nearly
    // every peak); corrected online, the p90 means 90 %.
    assert!(off_cov > 0.93, "raw p90 coverage {off_cov}");
    assert!(
        (0.87..=0.93).contains(&on_cov),
        "online p90 coverage {on_cov}"
    );

    let o = prescale(&[
        "backtest",
        "--history",
        &h,
        "--report",
        dir.path().join("x").to_str().unwrap(),
        "--online-gain",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--online-gain") && text(&o).contains("got 0"),
        "{}",
        text(&o)
    );
}

/// The median chosen online (`forecast::online::median`): the forest's until a half-life of
/// forecasts has resolved, then, on this trace whose tail is calmer than its head (the forest's
/// median above the actual peak most of the time), a mix with the last window's peak that
/// lowers WAPE; `--forest-median` keeps the forest's throughout.
#[test]
fn backtest_chooses_the_median_online_and_forest_median_keeps_the_forests() {
    let dir = tempfile::tempdir().unwrap();
    let (on_text, on, on_rep) = backtest(dir.path(), "on", &[]);
    let (forest_text, forest, forest_rep) = backtest(dir.path(), "forest", &["--forest-median"]);
    assert!(on_text.contains("median chosen online"), "{on_text}");
    assert!(
        forest_text.contains("quantiles calibrated online (gain 0.01)")
            && !forest_text.contains("median chosen online"),
        "{forest_text}"
    );
    // Upper levels alike; the median alike until 288 forecasts have taught the choice (the
    // first one's recent peak unknown, each target complete 3 origins later: origin 291 is
    // the first issued after forecasts 1..=288 resolved).
    for (a, b) in on.iter().zip(&forest) {
        assert_eq!(a[1..], b[1..]);
    }
    let first_mixed = on.iter().zip(&forest).position(|(a, b)| a[0] != b[0]);
    assert_eq!(first_mixed, Some(291), "first origin whose median differs");
    let (w_on, w_forest) = (overall_wape(&on_rep), overall_wape(&forest_rep));
    assert!(
        w_on < 0.9 * w_forest,
        "WAPE {w_on} chosen online vs {w_forest} the forest's"
    );
}
