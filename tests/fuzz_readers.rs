//! Fuzzing every reader of outside input (issue #10, "Fuzzing"): history CSV, task CSV,
//! Prometheus answers (the body parser, and the collector behind a loopback server), the
//! configuration, model files and the decision log's repair.
//!
//! Each reader gets structured generators (`tests/fuzz/`) that start from a valid input and
//! break it the ways real inputs break (bad timestamps, NaN, quotes, NULs, CRLF, long fields,
//! truncation, deep nesting, many short series after a long one, mutated keys and values,
//! bytes changed behind a recomputed CRC, torn tails), so cases get past the first check. The
//! property, for every case: no panic and no abort; the reader allocates at most
//! `fuzz::alloc_bound` of its input at once (counted per thread by `fuzz::Counting`); every
//! error names its source (file path or URL) and no line of it is longer than
//! `fuzz::MAX_MESSAGE_LINE`, so no error echoes a large input.
//!
//! Cases per reader: `PRESCALE_FUZZ_CASES` (default `fuzz::DEFAULT_CASES`) times the
//! reader's weight; `scripts/fuzz.sh` runs the long campaign. Failing seeds are kept in
//! `proptest-regressions/fuzz_readers.txt` and replayed first on every run. The
//! model-payload, decision-log and JSON-number proptests in the modules' unit tests stay
//! where they are; these add the allocation bound, the message checks and deeper inputs.

mod common;
mod fuzz;

use fuzz::wire::{edit_model, LogCase};
use fuzz::*;
use prescale::act::DecisionLog;
use prescale::collect::{Collector, PrometheusSource, RetryPolicy};
use prescale::config::Config;
use prescale::forecast::{Model, TrainOptions};
use prescale::plan::{Decision, DecisionKind};
use prescale::series::{read_history, CsvError, HistoryOptions, Series, SeriesKey};
use proptest::prelude::*;
use std::sync::OnceLock;
use std::time::Duration;

#[global_allocator]
static ALLOC: Counting = Counting;

/// History CSV through `read_history`, the public reader `train`, `backtest` and the replay
/// use (kept on the public API so it runs against any rewrite of the reader).
#[test]
fn history_csv() {
    run("history_csv", file!(), 1.0, fuzz::text::history(), |case| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hist.csv");
        std::fs::write(&path, &*case.bytes).expect("write");
        let opts = HistoryOptions {
            step: case.step,
            max_gap: case.max_gap,
        };
        let (out, peak) = peak_of(|| read_history(std::slice::from_ref(&path), &opts));
        match &out {
            // Option errors are about the flags, not the file; they must still be short.
            Err(CsvError::Options(m)) => check_error(m, "")?,
            Err(e) => check_error(&e.to_string(), "hist.csv")?,
            Ok(_) => {}
        }
        drop(out);
        check_peak(peak, case.bytes.len())
    });
}

/// Task CSV through `read_tasks`, as `simulate --tasks FILE` reads it.
#[test]
fn task_csv() {
    run("task_csv", file!(), 1.0, fuzz::text::tasks(), |bytes| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tasks.csv");
        std::fs::write(&path, &*bytes).expect("write");
        let (out, peak) = peak_of(|| prescale::sim::batch::tasks::read_tasks(&path));
        if let Err(e) = &out {
            check_error(&e.to_string(), "tasks.csv")?;
        }
        drop(out);
        check_peak(peak, bytes.len())
    });
}

const URL: &str = "http://127.0.0.1:9/api/v1/query_range";

/// Prometheus answer bodies through `parse_body`, the client's decoder.
#[test]
fn prometheus_answers() {
    run(
        "prometheus_answers",
        file!(),
        1.0,
        fuzz::wire::prom(),
        |case| {
            let body = case.body();
            let (out, peak) =
                peak_of(|| prescale::collect::prometheus::parse_body(URL, case.status, &body));
            if let Err(e) = &out {
                check_error(&e.to_string(), URL)?;
            }
            drop(out);
            check_peak(peak, body.len())
        },
    );
}

/// Answers served by a loopback server to the collector's backfill: the path from the wire
/// into the buffers (timestamps far outside `i64` seconds, values that are not numbers), with
/// the real HTTP client on a current-thread runtime so its allocations are counted too.
#[test]
fn prometheus_collector() {
    let instant = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    run(
        "prometheus_collector",
        file!(),
        0.1,
        fuzz::wire::prom(),
        |case| {
            let body = case.body();
            let (status, answer) = (case.status, body.clone());
            let server = common::TestServer::start(move |req| {
                if req.starts_with("POST /api/v1/query ") {
                    common::Action::Respond(200, "application/json", instant.to_vec())
                } else {
                    common::Action::Respond(status, "application/json", answer.clone())
                }
            });
            let dir = tempfile::tempdir().expect("tempdir");
            let text = format!(
                "[prometheus]\nurl = \"{}\"\ntimeout = \"2s\"\n\n[[signal]]\nname = \"up\"\n\
             query = \"up\"\nstep = \"1m\"\nlookback = \"1h\"\n",
                server.url()
            );
            let cfg = common::load_config(dir.path(), &text);
            let now = 1_750_000_020;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let retry = RetryPolicy {
                max_attempts: 1,
                base: Duration::from_millis(1),
                cap: Duration::from_millis(1),
            };
            let (report, peak) = peak_of(|| {
                rt.block_on(async {
                    let source =
                        PrometheusSource::new(cfg.prometheus.as_ref().expect("prometheus"))
                            .expect("client");
                    let mut c = Collector::with_source(source, cfg.signals.clone(), retry, now)
                        .await
                        .expect("the instant check passes");
                    let r = c.backfill(now).await;
                    let poll = c.poll(now + 60).await;
                    (format!("{r:?}"), format!("{poll:?}"), c.store().footprint())
                })
            });
            for text in [&report.0, &report.1] {
                for line in text.lines() {
                    prop_assert!(
                        line.len() <= 64 * 1024,
                        "report line of {} bytes",
                        line.len()
                    );
                }
            }
            check_peak(peak, body.len())
        },
    );
}

/// `prescale.toml` through `Config::load`.
#[test]
fn config_toml() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "s3cret-token\n").expect("token");
    let path = dir.path().join("prescale-fuzz.toml");
    std::fs::write(&path, fuzz::config::BASE_CONFIG).expect("write");
    Config::load(&path).expect("the unmutated base configuration is valid");
    run(
        "config_toml",
        file!(),
        1.0,
        fuzz::config::config(),
        |bytes| {
            std::fs::write(&path, &*bytes).expect("write");
            let (out, peak) = peak_of(|| Config::load(&path));
            if let Err(e) = &out {
                let msg = e.to_string();
                check_error(&msg, "prescale-fuzz.toml")?;
                prop_assert!(
                    !msg.contains("s3cret-token"),
                    "secret in error: {}",
                    short(&msg)
                );
            }
            drop(out);
            check_peak(peak, bytes.len())
        },
    );
}

/// A small trained model's file bytes and a series to forecast with it.
fn model_base() -> &'static (Vec<u8>, Series) {
    static BASE: OnceLock<(Vec<u8>, Series)> = OnceLock::new();
    BASE.get_or_init(|| {
        let values: Vec<f64> = (0..3 * 288)
            .map(|i| {
                100.0 + 60.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin() + (i % 7) as f64
            })
            .collect();
        let s = Series {
            key: SeriesKey::new("web"),
            start: 1_700_000_100,
            step: 300,
            values,
        };
        let opts = TrainOptions {
            n_trees: 6,
            max_depth: 5,
            ..TrainOptions::new(300, 900)
        };
        let m = Model::train(std::slice::from_ref(&s), &opts).expect("train");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("m.model");
        m.save(&p).expect("save");
        (std::fs::read(&p).expect("read"), s)
    })
}

/// Model files through `Model::load`: header edits, and payload edits behind a recomputed
/// CRC so decoding and validation meet them. A model that loads must forecast in order.
#[test]
fn model_file() {
    let (file, s) = model_base();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fuzzed.model");
    run(
        "model_file",
        file!(),
        0.5,
        fuzz::wire::model_edits(),
        |edits| {
            let bytes = edit_model(file, &edits);
            std::fs::write(&path, &bytes).expect("write");
            let (out, peak) = peak_of(|| Model::load(&path));
            match &out {
                Err(e) => check_error(&e.to_string(), "fuzzed.model")?,
                Ok(m) => {
                    if let Some(f) = m.forecast_latest(&s.key, &s.values, s.start) {
                        let qs: Vec<f64> = f.quantiles.iter().map(|q| q.1).collect();
                        prop_assert!(
                            qs.windows(2).all(|w| w[0] <= w[1]),
                            "quantiles cross: {qs:?}"
                        );
                    }
                }
            }
            drop(out);
            check_peak(peak, bytes.len())
        },
    );
}

/// One decision-log record as `DecisionLog` writes it.
fn record() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("one.jsonl");
    let mut log = DecisionLog::open(&p).expect("open");
    let d = Decision {
        at: 1_750_000_000,
        kind: DecisionKind::ScaleUp,
        target: "web".into(),
        node: None,
        to_node: None,
        from: 2,
        to: 3,
        raw: 3,
        forecast: Some(vec![(0.5, 10.0), (0.9, 12.5)]),
        current: Some(9.0),
        guards: Vec::new(),
        reason: "p90 peak 12.5 needs 3".into(),
    };
    log.append(1, &[d], &[]).expect("append");
    drop(log);
    let mut bytes = std::fs::read(&p).expect("read");
    assert_eq!(bytes.pop(), Some(b'\n'));
    bytes
}

/// Decision logs through `DecisionLog::open`: it refuses (file untouched, error naming it) or
/// changes only what follows the last newline, and cuts only what a torn write of its own can
/// have left (a prefix of a record, or NULs from a power loss): never bytes someone else wrote.
#[test]
fn decision_log() {
    let rec = record();
    run(
        "decision_log",
        file!(),
        1.0,
        fuzz::wire::log_case(),
        |case: LogCase| {
            let bytes = case.bytes(&rec);
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("d.jsonl");
            std::fs::write(&path, &bytes).expect("write");
            let (out, peak) = peak_of(|| DecisionLog::open(&path));
            let after = std::fs::read(&path).expect("read back");
            match &out {
                Err(e) => {
                    check_error(&e.to_string(), "d.jsonl")?;
                    prop_assert!(after == bytes, "a refused file was changed");
                }
                Ok(_) => {
                    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                    prop_assert!(
                        after.len() >= keep && after[..keep] == bytes[..keep],
                        "bytes before the last newline changed"
                    );
                    let tail = &bytes[keep..];
                    if after.len() < bytes.len() {
                        prop_assert_eq!(after.len(), keep, "a cut must remove the whole last line");
                        prop_assert!(
                            looks_torn(tail, &rec),
                            "cut a tail that no torn write of ours leaves: {:?}",
                            String::from_utf8_lossy(&tail[..tail.len().min(100)])
                        );
                    } else if after.len() > bytes.len() {
                        prop_assert_eq!(&after[bytes.len()..], b"\n");
                    }
                }
            }
            drop(out);
            check_peak(peak, bytes.len())
        },
    );
}

/// What a write of the log torn by a crash can leave after the last newline: the start of a
/// record (all records start alike), possibly followed or replaced by NULs.
fn looks_torn(tail: &[u8], record: &[u8]) -> bool {
    let data = tail
        .iter()
        .rposition(|&b| b != 0)
        .map_or(&tail[..0], |i| &tail[..=i]);
    let prefix = &record[..9];
    data.starts_with(prefix) || prefix.starts_with(data)
}
