//! Backfill against a real Prometheus loaded with a bundled trace: the buffers hold exactly the
//! history (no lost, shifted or duplicated points, gaps kept as gaps), long ranges are chunked
//! under the 11,000-point limit, a bad query fails start-up quoting Prometheus, and
//! `prescale collect --export-csv` writes history that `prescale train` trains on.

mod common;

use common::*;
use prescale::config::Config;
use prescale::series::{read_history, HistoryOptions, SeriesKey};
use std::path::Path;
use std::time::Duration;

const STEP: i64 = 300;
/// Sample indices of series `a` left out of the history: they must come back as gaps.
const REMOVED: [usize; 3] = [100, 101, 102];

struct History {
    prom: Prometheus,
    /// Timestamp of sample 0 (both series share the grid).
    first: i64,
    a: Vec<f64>,
    b: Vec<f64>,
}

/// Two days of two real traces, shifted to end 10 minutes before now, loaded with promtool.
/// `--query.lookback-delta=250s` makes each 5-minute sample visible at its own grid point and
/// the 15-second points up to 4 minutes after it, and not at the next grid point, so a missing
/// sample is a gap rather than a repeat.
fn start_with_history() -> History {
    let a = trace_values("nab_ec2_cpu_utilization_5f5533_2d.csv");
    let b = trace_values("nab_ec2_cpu_utilization_53ea38_2d.csv");
    assert_eq!((a.len(), b.len()), (576, 576));
    let last = (now() / STEP) * STEP - 2 * STEP;
    let first = last - (a.len() as i64 - 1) * STEP;
    let samples = |v: &[f64], skip: &[usize]| -> Vec<(i64, f64)> {
        v.iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .map(|(i, x)| (first + i as i64 * STEP, *x))
            .collect()
    };
    let om = openmetrics(
        "load",
        &[
            OmSeries {
                labels: r#"series="a",pod="p-1""#,
                samples: samples(&a, &REMOVED),
            },
            OmSeries {
                labels: r#"series="b",pod="p-2""#,
                samples: samples(&b, &[]),
            },
        ],
    );
    let prom = Prometheus::start(PromOptions {
        history: Some(om),
        extra_args: vec!["--query.lookback-delta=250s".into()],
        ..PromOptions::default()
    });
    History { prom, first, a, b }
}

fn config(dir: &Path, url: &str, signals: &str) -> Config {
    let text = format!("[prometheus]\nurl = \"{url}\"\ntimeout = \"20s\"\n\n{signals}");
    load_config(dir, &text)
}

const SIGNALS: &str = r#"
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

fn assert_same(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = (g.is_nan() && w.is_nan()) || *g as f32 == *w as f32;
        assert!(same, "{what}[{i}]: got {g}, want {w}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_holds_exactly_the_history() {
    let h = start_with_history();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &h.prom.url(), SIGNALS);
    let run = async {
        let mut c = connect(&cfg).await.expect("collector starts");
        let report = c.backfill(now()).await;
        assert!(report.ok(), "{report:?}");
        c
    };
    let c = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("in time");

    // 5-minute signal: one ring per `series` label, exactly the trace, removed samples as gaps.
    let keys: Vec<String> = c.store().keys("load").map(|k| k.to_string()).collect();
    assert_eq!(keys, vec![r#"load{series="a"}"#, r#"load{series="b"}"#]);
    let mut want_a = h.a.clone();
    for i in REMOVED {
        want_a[i] = f64::NAN;
    }
    for (key, want) in [
        (r#"load{series="a"}"#, &want_a),
        (r#"load{series="b"}"#, &h.b),
    ] {
        let ring = c.store().series(&SeriesKey::new(key)).expect("series held");
        assert_eq!(
            ring.oldest_timestamp(),
            Some(h.first),
            "{key}: first point not shifted"
        );
        assert_eq!(
            ring.newest_timestamp(),
            Some(h.first + 575 * STEP),
            "{key}: last point"
        );
        let s = ring.to_series(SeriesKey::new(key));
        assert_same(key, &s.values, want);
    }

    // 15-second signal over 49 h: 11,761 points, more than one request may ask for, so this
    // went in chunks. Expected: each sample at its grid point and the next 16 points (4 min),
    // then gaps until the next sample.
    let ring = c
        .store()
        .series(&SeriesKey::new(r#"load_fine{pod="p-1",series="a"}"#))
        .expect("fine series held");
    let s = ring.to_series(SeriesKey::new("fine"));
    assert_eq!(s.start, h.first);
    let want: Vec<f64> = (0..s.values.len())
        .map(|k| {
            let t = s.start + k as i64 * 15;
            let i = ((t - h.first) / STEP) as usize;
            let age = t - (h.first + i as i64 * STEP);
            if age <= 240 && i < want_a.len() {
                want_a[i]
            } else {
                f64::NAN
            }
        })
        .collect();
    assert_eq!(s.values.len(), 575 * 20 + 17);
    assert_same("load_fine", &s.values, &want);
    let stats = c.stats("load_fine").expect("stats");
    assert!(stats.requests >= 2, "chunked: {stats:?}");
    assert_eq!(stats.points_replaced, 0, "chunks do not overlap: {stats:?}");

    // Export → the training reader gets the same values back.
    let out = dir.path().join("export");
    let files = c.export_csv(&out).expect("export");
    assert_eq!(files, vec![out.join("load.csv"), out.join("load_fine.csv")]);
    let (series, _) = read_history(
        &[out.join("load.csv")],
        &HistoryOptions {
            step: Some(STEP),
            max_gap: Some(0),
        },
    )
    .expect("export reads back");
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].key.as_str(), r#"load{series="a"}"#);
    assert_eq!(series[0].start, h.first);
    assert_same("exported a", &series[0].values, &want_a);
    assert_same("exported b", &series[1].values, &h.b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_promql_fails_start_up_quoting_prometheus() {
    let prom = Prometheus::start(PromOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        &prom.url(),
        "[[signal]]\nname = \"cpu\"\nquery = \"sum(rate(up[5m])\"\nstep = \"1m\"\nlookback = \"1h\"\n",
    );
    let err = tokio::time::timeout(Duration::from_secs(30), connect(&cfg))
        .await
        .expect("in time")
        .err()
        .expect("start-up fails");
    let text = err.to_string();
    assert!(text.contains("signal 'cpu'"), "{text}");
    assert!(text.contains("bad_data"), "{text}");
    // Prometheus' own words.
    assert!(text.contains("parse error"), "{text}");

    // A range selector passes an instant query but cannot be range-queried: refused up front.
    let cfg = config(
        dir.path(),
        &prom.url(),
        "[[signal]]\nname = \"up\"\nquery = \"up[5m]\"\nstep = \"1m\"\nlookback = \"1h\"\n",
    );
    let err = connect(&cfg).await.err().expect("start-up fails");
    assert!(err.to_string().contains("instant vector"), "{err}");
}

#[test]
fn collect_command_exports_csv_for_training() {
    let h = start_with_history();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &h.prom.url(), SIGNALS);
    let out = dir.path().join("history");
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
        "prescale collect failed:\n{}{}",
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
    assert_eq!(series.len(), 2);
    assert_same("exported b", &series[1].values, &h.b);

    // The export is training history as it is.
    let model = dir.path().join("load.model");
    let train = std::process::Command::new(bin)
        .args(["train", "--trees", "10", "--history"])
        .arg(out.join("load.csv"))
        .arg("--out")
        .arg(&model)
        .output()
        .expect("run prescale train");
    assert!(
        train.status.success(),
        "prescale train on the export failed:\n{}{}",
        String::from_utf8_lossy(&train.stdout),
        String::from_utf8_lossy(&train.stderr)
    );
    assert!(model.exists());
}
