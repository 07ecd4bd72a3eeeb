//! `prescale train --exclude FROM..TO` through the binary: an excluded incident leaves the
//! model as if the incident's rows had never been recorded, the summary counts what was
//! excluded, and bad or all-covering ranges are refused naming the flag.

use crate::cli;
use cli::{data, prescale, text};

use std::path::{Path, PathBuf};

const SMALL: [&str; 4] = ["--trees", "12", "--max-depth", "8"];
/// Rows (after the header) of the incident: 30 five-minute steps.
const SPIKE: std::ops::Range<usize> = 1000..1030;

/// The bundled trace as `dir/cpu.csv`, its rows passed through `edit` (index, line).
fn trace(dir: &Path, edit: impl Fn(usize, &str) -> Option<String>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let src = std::fs::read_to_string(data("nab_ec2_cpu_utilization_5f5533.csv")).unwrap();
    let mut lines = src.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for (i, l) in lines.enumerate() {
        if let Some(l) = edit(i, l) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    let p = dir.join("cpu.csv");
    std::fs::write(&p, out).unwrap();
    p
}

/// The spike's range, FROM..TO, from the trace's own timestamps.
fn spike_range() -> String {
    let src = std::fs::read_to_string(data("nab_ec2_cpu_utilization_5f5533.csv")).unwrap();
    let ts: Vec<&str> = src
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    format!("{}..{}", ts[SPIKE.start], ts[SPIKE.end])
}

fn train(history: &Path, model: &Path, extra: &[&str]) -> String {
    let args = [
        &[
            "train",
            "--history",
            history.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
        ][..],
        &SMALL[..],
        extra,
    ]
    .concat();
    let o = prescale(&args);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

fn forecast(model: &Path) -> String {
    let h = data("nab_ec2_cpu_utilization_5f5533.csv");
    let o = prescale(&[
        "forecast",
        "--model",
        model.to_str().unwrap(),
        "--history",
        &h,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn an_excluded_spike_leaves_the_model_as_if_it_never_happened() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spiked = trace(&d.join("spiked"), |i, l| {
        Some(if SPIKE.contains(&i) {
            let (t, v) = l.split_once(',').unwrap();
            format!("{t},{}", v.parse::<f64>().unwrap() * 40.0)
        } else {
            l.to_string()
        })
    });
    let without = trace(&d.join("without"), |i, l| {
        (!SPIKE.contains(&i)).then(|| l.to_string())
    });
    let range = spike_range();

    let excluded = d.join("excluded.model");
    let out = train(&spiked, &excluded, &["--exclude", &range]);
    assert!(out.contains("excluded 30 points of cpu"), "{out}");
    let clean = d.join("clean.model");
    train(&without, &clean, &[]);
    let polluted = d.join("polluted.model");
    train(&spiked, &polluted, &[]);

    let (fe, fc, fp) = (forecast(&excluded), forecast(&clean), forecast(&polluted));
    assert_eq!(fe, fc, "excluding the spike differs from never having it");
    // The test can fail: the spike, not excluded, changes the model.
    assert_ne!(
        fp, fc,
        "the spike made no difference, so this test proves nothing"
    );
}

#[test]
fn excluding_everything_or_a_bad_range_is_an_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let h = data("nab_ec2_cpu_utilization_5f5533.csv");
    let m = dir.path().join("m.model");
    let m = m.to_str().unwrap();
    for (range, want) in [
        ("0..4000000000", "--exclude excludes every sample"),
        (
            "2014-03-01T00:00:00Z..2014-02-01T00:00:00Z",
            "must be after",
        ),
        (
            "2014-03-01..2014-03-02",
            "FROM '2014-03-01' is neither RFC 3339",
        ),
        ("1393632000", "is not FROM..TO"),
        ("1393632000..1393632000000", "milliseconds"),
    ] {
        let o = prescale(&["train", "--history", &h, "--out", m, "--exclude", range]);
        let all = text(&o);
        assert!(!o.status.success(), "{range}: {all}");
        assert!(
            all.contains("--exclude") && all.contains(want),
            "{range}: {all}"
        );
        assert!(!all.contains("panicked"), "{all}");
        assert!(!Path::new(m).exists(), "{range}: a model was written");
    }
}
