//! Cold start through the real `prescale run` binary on the bundled replay: the `api`
//! workload's history starts 10 minutes before the first cycle (its replay file holds only
//! its last day), so it is planned reactively until the features have a row, then with the
//! global model, then, once it has `run.own_model_after` of history and its own model wins
//! the contest on its newest fifth, with its own model. Each stage shows in the decision
//! reasons and as `prescale_forecast_stage` while the loop runs.
//!
//! The global model is trained by `prescale train` on noise, so that a model of `api`'s own
//! history beats it (the shipped model saw the bundled series and wins their contests, which
//! would leave nothing to see past `global`).

use crate::cli;
use cli::{data, demo_config, key, listen_line, prescale, run_quietly, sample, scrape, text};

use std::path::Path;
use std::time::{Duration, Instant};

/// A 5-minute CSV of uniform noise in 0..1000 over `days` days.
fn write_noise(path: &Path, days: usize) {
    let mut s: u64 = 7;
    let mut out = String::from("timestamp,value\n");
    for i in 0..days * 288 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = (s >> 11) as f64 / (1u64 << 53) as f64;
        out.push_str(&format!(
            "{},{:.1}\n",
            1_600_000_000 + i as i64 * 300,
            1000.0 * u
        ));
    }
    std::fs::write(path, out).unwrap();
}

/// The newest `rows` rows of a bundled history file, under the same name in `dir`.
fn tail_of(name: &str, rows: usize, dir: &Path) -> String {
    let text = std::fs::read_to_string(data(name)).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    let kept = &body[body.len() - rows..];
    let path = dir.join(name);
    std::fs::write(&path, format!("{header}\n{}\n", kept.join("\n"))).unwrap();
    path.display().to_string()
}

/// The stage exported as 1 for `workload`, if any.
fn stage(metrics: &str, workload: &str) -> Option<&'static str> {
    ["reactive", "global", "own"].into_iter().find(|s| {
        sample(
            metrics,
            &format!("prescale_forecast_stage{{workload=\"{workload}\",stage=\"{s}\"}}"),
        ) == Some(1.0)
    })
}

#[test]
fn a_late_workload_goes_reactive_then_global_then_own() {
    let dir = tempfile::tempdir().unwrap();
    let noise = dir.path().join("noise.csv");
    write_noise(&noise, 4);
    let model = dir.path().join("global.model");
    let o = prescale(&[
        "train",
        "--history",
        noise.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--trees",
        "30",
    ]);
    assert!(o.status.success(), "{}", text(&o));

    let replay = dir.path().join("replay");
    std::fs::create_dir(&replay).unwrap();
    // api: its last day only; web: its whole history (more than the 8d lookback).
    // (The demo's series are swapped between the two: an own model of a day of the bursty
    // ELB requests need not beat the global one, and need not; the Twitter volume's does.)
    let api = tail_of("nab_twitter_volume_amzn.csv", 288, &replay);
    let web = data("nab_elb_request_count_8c0756.csv");
    let port = cli::free_port();
    let cfg = demo_config(dir.path(), |line| match key(line) {
        "model" => Some(format!("model = {:?}", model.display().to_string())),
        "cycles" => Some("cycles = 2000\nown_model_after = \"8h\"".into()),
        "listen" => Some(listen_line(Some(port))),
        "speed" => Some("speed = 3000".into()),
        "warmup" => Some("warmup = \"10m\"".into()),
        "dir" => Some(format!("files = [{api:?}, {web:?}]")),
        "demand" if line.contains("nab_elb") => {
            Some(line.replace("nab_elb_request_count_8c0756", "nab_twitter_volume_amzn"))
        }
        "demand" if line.contains("nab_twitter") => {
            Some(line.replace("nab_twitter_volume_amzn", "nab_elb_request_count_8c0756"))
        }
        _ => None,
    });
    let mut running = run_quietly(&cfg);

    // Every stage api is exported in, in the order first seen, until it reaches `own`.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen: Vec<&str> = Vec::new();
    let mut last = String::new();
    while seen.last() != Some(&"own") {
        assert!(
            Instant::now() < deadline,
            "api did not reach the own stage in time; stages seen {seen:?}\n{last}"
        );
        if let Some(t) = scrape(port) {
            if let Some(s) = stage(&t, "api") {
                if !seen.contains(&s) {
                    seen.push(s);
                }
            }
            last = t;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen, ["reactive", "global", "own"], "{last}");
    // A workload with no data at all is reactive; exactly one stage is 1 per workload.
    assert_eq!(stage(&last, "db-readers"), Some("reactive"), "{last}");
    for w in ["api", "web", "db-readers"] {
        let ones: f64 = ["reactive", "global", "own"]
            .iter()
            .filter_map(|s| {
                sample(
                    &last,
                    &format!("prescale_forecast_stage{{workload=\"{w}\",stage=\"{s}\"}}"),
                )
            })
            .sum();
        assert_eq!(ones, 1.0, "{w}: {last}");
    }
    let _ = running.0.kill();
    let _ = running.0.wait();

    // The decision log: api's reasons open with its stage, in that order, never back.
    let log = std::fs::read_to_string(dir.path().join("d.jsonl")).unwrap();
    let reasons: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["decision"]["target"] == "api")
        .filter_map(|l| l["decision"]["reason"].as_str().map(str::to_string))
        .filter(|r| !r.contains("new replica"))
        .collect();
    let first = |prefix: &str| reasons.iter().position(|r| r.starts_with(prefix));
    let (r, g, o) = (
        first("reactive: "),
        first("global model: "),
        first("own model since "),
    );
    assert!(r.is_some() && g.is_some() && o.is_some(), "{reasons:#?}");
    assert!(r < g && g < o, "{reasons:#?}");
    assert!(
        reasons[0].starts_with("reactive: 10m of history, forecasts from 1h 5m; current "),
        "{}",
        reasons[0]
    );
    // The first cycle is reactive with the warm-up's 10 minutes; the first global forecast comes with 13 samples (1h 5m), widened.
    let g = &reasons[g.unwrap()];
    assert!(
        g.starts_with("global model: 1h 5m of history, forecast × 1.06 until 1day, own model tried from 8h; p95 "),
        "{g}"
    );
    let o = o.unwrap();
    assert!(reasons[o].contains(" of history); p95 "), "{}", reasons[o]);
    assert!(
        reasons[o..]
            .iter()
            .all(|r| r.starts_with("own model since ")),
        "{reasons:#?}"
    );
}
