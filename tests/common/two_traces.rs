//! The history the store tests load into a real Prometheus (`collect_backfill.rs`) and a real
//! VictoriaMetrics (`collect_victoria.rs`), and the one check that a backfilled collector holds
//! it exactly: both stores must keep the same promises, so they are held to the same check.

use crate::common::{load_config, trace_values};
use prescale::collect::Collector;
use prescale::config::Config;
use prescale::series::{read_history, HistoryOptions, SeriesKey};
use std::path::Path;

/// The traces' step.
pub const STEP: i64 = 300;
/// Sample indices of series `a` left out of the history: they must come back as gaps.
pub const REMOVED: [usize; 3] = [100, 101, 102];

/// A 5-minute signal with one series per `series` label, and a 15-second signal over 49 h
/// (11,761 points: more than one request may ask for, so it is fetched in chunks).
pub const SIGNALS: &str = r#"
[[signal]]
name = "load"
query = "load"
series_labels = ["series"]
step = "5m"
lookback = "3d"

[[signal]]
name = "load_fine"
query = 'load{series="a"}'
step = "15s"
lookback = "49h"
"#;

/// Two days of two real traces on one grid ending 10 minutes before `now`.
pub struct TwoTraces {
    /// Timestamp of sample 0.
    pub first: i64,
    /// Series `a` (`pod="p-1"`), whole.
    pub a: Vec<f64>,
    /// Series `b` (`pod="p-2"`).
    pub b: Vec<f64>,
}

impl TwoTraces {
    pub fn ending_before(now: i64) -> Self {
        let a = trace_values("nab_ec2_cpu_utilization_5f5533_2d.csv");
        let b = trace_values("nab_ec2_cpu_utilization_53ea38_2d.csv");
        assert_eq!((a.len(), b.len()), (576, 576));
        let last = (now / STEP) * STEP - 2 * STEP;
        let first = last - (a.len() as i64 - 1) * STEP;
        TwoTraces { first, a, b }
    }

    /// Each series' labels and its `(timestamp, value)` samples as loaded: `a` without
    /// [`REMOVED`].
    pub fn series(&self) -> [(&'static str, Vec<(i64, f64)>); 2] {
        let samples = |v: &[f64], skip: &[usize]| -> Vec<(i64, f64)> {
            v.iter()
                .enumerate()
                .filter(|(i, _)| !skip.contains(i))
                .map(|(i, x)| (self.first + i as i64 * STEP, *x))
                .collect()
        };
        [
            (r#"series="a",pod="p-1""#, samples(&self.a, &REMOVED)),
            (r#"series="b",pod="p-2""#, samples(&self.b, &[])),
        ]
    }

    /// Series `a` as a collector must hold it: the removed samples as gaps.
    pub fn a_with_gaps(&self) -> Vec<f64> {
        let mut a = self.a.clone();
        for i in REMOVED {
            a[i] = f64::NAN;
        }
        a
    }
}

/// `[prometheus]` at `url` plus `signals`.
pub fn config(dir: &Path, url: &str, signals: &str) -> Config {
    let text = format!("[prometheus]\nurl = \"{url}\"\ntimeout = \"20s\"\n\n{signals}");
    load_config(dir, &text)
}

/// Equal as the rings store them (f32), gaps equal to gaps.
pub fn assert_same(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = (g.is_nan() && w.is_nan()) || *g as f32 == *w as f32;
        assert!(same, "{what}[{i}]: got {g}, want {w}");
    }
}

/// A collector backfilled with [`SIGNALS`] from a store holding `t` (whose lookback shows a
/// 5-minute sample at its grid point and up to 240 s after, not at the next) holds exactly
/// `t`: one ring per `series` label, no point lost, shifted or duplicated, removed samples as
/// gaps; the 15-second signal fetched in non-overlapping chunks. `what` names the store.
pub fn assert_holds_two_traces(c: &Collector, t: &TwoTraces, what: &str) {
    let keys: Vec<String> = c.store().keys("load").map(|k| k.to_string()).collect();
    assert_eq!(
        keys,
        vec![r#"load{series="a"}"#, r#"load{series="b"}"#],
        "{what}"
    );
    let want_a = t.a_with_gaps();
    for (key, want) in [
        (r#"load{series="a"}"#, &want_a),
        (r#"load{series="b"}"#, &t.b),
    ] {
        let ring = c.store().series(&SeriesKey::new(key)).expect("series held");
        assert_eq!(
            ring.oldest_timestamp(),
            Some(t.first),
            "{what} {key}: first point not shifted"
        );
        assert_eq!(
            ring.newest_timestamp(),
            Some(t.first + 575 * STEP),
            "{what} {key}: last point"
        );
        let s = ring.to_series(SeriesKey::new(key));
        assert_same(&format!("{what} {key}"), &s.values, want);
    }

    // Each 5-minute sample at its grid point and the next 16 points (4 min), then gaps.
    let ring = c
        .store()
        .series(&SeriesKey::new(r#"load_fine{pod="p-1",series="a"}"#))
        .expect("fine series held");
    let s = ring.to_series(SeriesKey::new("fine"));
    assert_eq!(s.start, t.first, "{what}");
    let want: Vec<f64> = (0..s.values.len())
        .map(|k| {
            let ts = s.start + k as i64 * 15;
            let i = ((ts - t.first) / STEP) as usize;
            let age = ts - (t.first + i as i64 * STEP);
            if age <= 240 && i < want_a.len() {
                want_a[i]
            } else {
                f64::NAN
            }
        })
        .collect();
    assert_eq!(s.values.len(), 575 * 20 + 17, "{what}");
    assert_same(&format!("{what} load_fine"), &s.values, &want);
    let stats = c.stats("load_fine").expect("stats");
    assert!(stats.requests >= 2, "{what}: chunked: {stats:?}");
    assert_eq!(
        stats.points_replaced, 0,
        "{what}: chunks do not overlap: {stats:?}"
    );
}

/// `prescale collect --export-csv` from the store at `url` writes what the training reader reads
/// back as `t` (series `b` checked whole, from its first timestamp), and `prescale train` trains
/// on the export as it is. `what` names the store.
pub fn assert_collect_export_trains(dir: &Path, url: &str, t: &TwoTraces, what: &str) {
    let cfg = config(dir, url, SIGNALS);
    let out = dir.join("history");
    let bin = env!("CARGO_BIN_EXE_prescale");
    let run = std::process::Command::new(bin)
        .args(["collect", "--config"])
        .arg(&cfg.path)
        .arg("--export-csv")
        .arg(&out)
        .output()
        .expect("run prescale collect");
    assert!(
        run.status.success(),
        "{what}: prescale collect failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let (series, _) = read_history(
        &[out.join("load.csv")],
        &HistoryOptions {
            step: Some(STEP),
            max_gap: Some(0),
        },
    )
    .expect("export reads back");
    assert_eq!(series.len(), 2, "{what}");
    assert_eq!(series[1].start, t.first, "{what}");
    assert_same(&format!("{what} exported b"), &series[1].values, &t.b);

    let model = dir.join("load.model");
    let train = std::process::Command::new(bin)
        .args(["train", "--trees", "10", "--history"])
        .arg(out.join("load.csv"))
        .arg("--out")
        .arg(&model)
        .output()
        .expect("run prescale train");
    assert!(
        train.status.success(),
        "{what}: prescale train on the export failed:\n{}{}",
        String::from_utf8_lossy(&train.stdout),
        String::from_utf8_lossy(&train.stderr)
    );
    assert!(model.exists(), "{what}");
}
