//! A short-step budget (`max_short`) through the real `prescale run` binary on the bundled
//! replay: the `api` workload's decisions name the budget, the level and margin it is
//! provisioned at and the share realised so far, and `/metrics` exports that share, the budget
//! and the level while the loop runs.

use crate::cli;
use cli::{demo_config, free_port, key, listen_line, run_quietly, sample, scrape};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The demo configuration with a private log, many cycles, the exporter on `port`, and
/// `extra` inserted into the `api` workload.
fn config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    demo_config(dir, |line| match key(line) {
        "cycles" => Some("cycles = 2000".into()),
        "listen" => Some(listen_line(Some(port))),
        // One 5-minute step every 0.1 s.
        "speed" => Some("speed = 3000".into()),
        _ if line == "name = \"api\"" => Some(format!("{line}\n{extra}")),
        _ => None,
    })
}

/// The decision log's reasons for `target`, in order. Read while the loop writes it, so a
/// line still being written is skipped rather than failing the test.
fn reasons(dir: &Path, target: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("d.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["decision"]["target"] == target)
        .filter_map(|l| l["decision"]["reason"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_budget_shows_in_the_reason_and_as_metrics() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        port,
        "max_short = \"1%\"\nshort_window = \"1d\"",
    );
    let _running = run_quietly(&cfg);

    // Wait for a few counted steps in the exported share.
    let deadline = Instant::now() + Duration::from_secs(90);
    let text = loop {
        assert!(
            Instant::now() < deadline,
            "no prescale_short_share for api in time"
        );
        if let Some(t) = scrape(port) {
            let cycles = sample(&t, "prescale_cycles_total").unwrap_or(0.0);
            if cycles >= 5.0 && sample(&t, "prescale_short_share{workload=\"api\"}").is_some() {
                break t;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let share = sample(&text, "prescale_short_share{workload=\"api\"}").unwrap();
    assert!((0.0..=1.0).contains(&share), "{share}");
    assert_eq!(
        sample(&text, "prescale_short_budget{workload=\"api\"}"),
        Some(0.01),
        "{text}"
    );
    assert_eq!(
        sample(&text, "prescale_risk_level{workload=\"api\"}"),
        Some(0.99)
    );
    let margin = sample(&text, "prescale_risk_margin{workload=\"api\"}").unwrap();
    assert!(margin > 0.2 && margin < 100.0, "{margin}");
    // Workloads without a budget export none of it.
    assert!(
        !text.contains("prescale_short_budget{workload=\"web\"}"),
        "{text}"
    );

    // The decision log: api's reasons name the level, the budget and the realised share.
    let reasons = reasons(dir.path(), "api");
    assert!(reasons.len() >= 2, "{reasons:#?}");
    let realised = reasons
        .iter()
        .find(|r| r.contains("realised"))
        .unwrap_or_else(|| panic!("no realised share in {reasons:#?}"));
    assert!(
        realised.contains("p99 × ") || realised.contains("p99 ("),
        "{realised}"
    );
    assert!(
        realised.contains("(budget 1% short, realised "),
        "{realised}"
    );
    assert!(realised.contains("over 1day)"), "{realised}");
    // web has no budget: its reasons are as before.
    let web = self::reasons(dir.path(), "web");
    assert!(web.iter().any(|r| r.contains("p90 peak")), "{web:#?}");
}

#[test]
fn a_budget_plans_on_the_uncorrected_forecast_a_quantile_on_the_corrected_one() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, "max_short = \"1%\"");
    // A large gain, so that the correction moves web's p90 within a few cycles.
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[online_calibration]\ngain = 0.5\n");
    std::fs::write(&cfg, text).unwrap();
    let _running = run_quietly(&cfg);

    let deadline = Instant::now() + Duration::from_secs(90);
    let metrics = loop {
        assert!(
            Instant::now() < deadline,
            "web's reasons never named the online calibration: {:#?}",
            reasons(dir.path(), "web")
        );
        if let Some(t) = scrape(port) {
            if reasons(dir.path(), "web")
                .iter()
                .any(|r| r.contains("by online calibration"))
            {
                break t;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // web (p90) plans on the corrected forecast and says so; api (1 % budget) on the model's
    // own: its margin is its calibration, so neither its reasons nor /metrics name a factor.
    assert!(
        sample(&metrics, "prescale_forecast_calibration{workload=\"web\"}").is_some(),
        "{metrics}"
    );
    assert!(
        !metrics.contains("prescale_forecast_calibration{workload=\"api\"}"),
        "{metrics}"
    );
    let api = reasons(dir.path(), "api");
    assert!(api.len() >= 2, "{api:#?}");
    assert!(
        api.iter().all(|r| !r.contains("by online calibration")),
        "{api:#?}"
    );
    assert!(api.iter().any(|r| r.contains("realised")), "{api:#?}");
}
