//! Regression tests for what `tests/fuzz_readers.rs` found, one per problem, each named for
//! it. They run the readers under the same counting allocator, so the ones about memory fail
//! by the bound (or by the allocator's hard cap, which aborts) rather than by taking the
//! machine's memory.

mod common;
mod fuzz;

use fuzz::*;
use prescale::config::Config;
use prescale::forecast::Model;
use prescale::series::{read_history, HistoryOptions};
use std::path::Path;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Asserts the fuzz properties on an error message outside proptest.
fn assert_error(message: &str, source: &str) {
    if let Err(e) = check_error(message, source) {
        panic!("{e}");
    }
}

#[test]
fn history_step_near_i64_max_is_read_not_an_overflow_panic() {
    // Found by history_csv: `--step` of 2^63 - 1 s overflowed `3 * step` (the default
    // max gap) and panicked.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.csv");
    std::fs::write(&path, "timestamp,value\n0,1\n60,2\n120,3\n").unwrap();
    for step in [i64::MAX, i64::MAX / 2, 1 << 62] {
        let opts = HistoryOptions {
            step: Some(step),
            max_gap: None,
        };
        let _ = read_history(std::slice::from_ref(&path), &opts);
    }
}

#[test]
fn task_errors_quote_a_long_field_as_a_short_excerpt() {
    // Found by task_csv: every field was quoted whole, so a 20,000-character id made a
    // 20,000-character error line.
    let dir = tempfile::tempdir().unwrap();
    let header = "id,submit,duration,priority,cpu,mem,gpu";
    let long = "x".repeat(20_000);
    for (i, row) in [
        format!("{long},0,1,0,1,1,0"),
        format!("1,{long},1,0,1,1,0"),
        format!("1,0,1,{long},1,1,0"),
        format!("1,0,1,0,1,1,{long}"),
    ]
    .iter()
    .enumerate()
    {
        let path = dir.path().join(format!("t{i}.csv"));
        std::fs::write(&path, format!("{header}\n{row}\n")).unwrap();
        let e = prescale::sim::batch::tasks::read_tasks(&path).unwrap_err();
        assert_error(&e.to_string(), &format!("t{i}.csv"));
    }
    let path = dir.path().join("h.csv");
    std::fs::write(&path, format!("{header},{long}\n1,0,1,0,1,1,0,0\n")).unwrap();
    let e = prescale::sim::batch::tasks::read_tasks(&path).unwrap_err();
    assert_error(&e.to_string(), "h.csv");
}

#[test]
fn config_parse_error_quotes_a_long_line_shortly() {
    // Found by config_toml: the TOML parser's message quotes the whole offending line.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.toml");
    std::fs::write(&path, format!("{} = 1\n[run\n", "k".repeat(50_000))).unwrap();
    let e = Config::load(&path).unwrap_err().to_string();
    assert_error(&e, "long.toml");
    std::fs::write(&path, format!("[run]\ncycles = \"{}\n", "v".repeat(50_000))).unwrap();
    let e = Config::load(&path).unwrap_err().to_string();
    assert_error(&e, "long.toml");
}

#[test]
fn config_over_4_mib_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let mut text = String::from("[run]\ncycles = 1\n");
    while text.len() <= 4 << 20 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, &text).unwrap();
    let (e, peak) = peak_of(|| Config::load(&path).unwrap_err().to_string());
    assert_error(&e, "huge.toml");
    assert!(e.contains("MiB"), "{e}");
    // Refused after reading at most the limit (a doubling buffer: under twice it), not parsed.
    assert!(peak < 9 << 20, "peak {peak}");
}

#[test]
fn config_from_an_endless_file_is_refused_not_read_forever() {
    // `--config /dev/zero` read zeros until memory ran out.
    let (e, peak) = peak_of(|| {
        Config::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string()
    });
    assert_error(&e, "/dev/zero");
    // Without the limit the read stops only at the allocator's hard cap (256 MiB here; the
    // machine's memory outside the test). With it, under twice the 4 MiB limit.
    assert!(peak < 9 << 20, "peak {peak}");
}

#[test]
fn config_secret_file_that_never_ends_is_refused() {
    // `bearer_token_file = "/dev/zero"` read zeros until memory ran out.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    for key in [
        "bearer_token_file = \"/dev/zero\"",
        "basic_auth = { user = \"u\", password_file = \"/dev/zero\" }",
        "ca_file = \"/dev/zero\"",
    ] {
        std::fs::write(
            &path,
            format!("[prometheus]\nurl = \"https://127.0.0.1:9\"\n{key}\n"),
        )
        .unwrap();
        let (e, peak) = peak_of(|| Config::load(&path).unwrap_err().to_string());
        assert_error(&e, "p.toml");
        assert!(e.contains("/dev/zero"), "{e}");
        assert!(peak < 9 << 20, "peak {peak} for {key}");
    }
}

#[test]
fn model_length_field_of_u64_max_is_refused_not_an_overflow_panic() {
    // Found by model_file: `HEADER_LEN + len` overflowed for a length field of 2^64 - 1.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.model");
    let mut bytes = b"PRESCALE".to_vec();
    bytes.extend_from_slice(&prescale::forecast::FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    bytes.extend_from_slice(b"payload");
    std::fs::write(&path, &bytes).unwrap();
    let e = Model::load(&path).unwrap_err().to_string();
    assert_error(&e, "x.model");
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn model_from_an_endless_file_is_refused_not_read_forever() {
    // `--model /dev/zero` read zeros until memory ran out before looking at the magic bytes.
    let (e, peak) = peak_of(|| Model::load(Path::new("/dev/zero")).unwrap_err().to_string());
    assert_error(&e, "/dev/zero");
    assert!(peak < 1 << 20, "peak {peak}");
}

#[test]
fn prometheus_error_message_is_cut_not_quoted_whole() {
    // Found by prometheus_answers: the `error` (and `errorType`, an unknown `status` or
    // `resultType`) of an answer was quoted whole, so a 50,000-character message made a
    // 50,000-character error line.
    let url = "http://127.0.0.1:9/api/v1/query";
    let long = "e".repeat(50_000);
    for body in [
        format!(r#"{{"status":"error","errorType":"bad_data","error":"{long}"}}"#),
        format!(r#"{{"status":"error","errorType":"{long}","error":"x"}}"#),
        format!(r#"{{"status":"{long}","data":null}}"#),
        format!(r#"{{"status":"success","data":{{"resultType":"{long}","result":[]}}}}"#),
    ] {
        for status in [200, 400, 503] {
            let e = prescale::collect::prometheus::parse_body(url, status, body.as_bytes())
                .unwrap_err()
                .to_string();
            assert_error(&e, url);
        }
    }
}

#[test]
fn prometheus_answer_of_many_empty_series_after_a_long_one_stays_small() {
    // A reader that sizes each `values` array by the previous one's length reserves a long
    // array's worth for every empty series after it: memory set by a claim, not by the data.
    let long: Vec<String> = (0..3000)
        .map(|i| format!("[{},\"1\"]", 1_700_000_000 + i))
        .collect();
    let mut series = vec![format!(
        r#"{{"metric":{{}},"values":[{}]}}"#,
        long.join(",")
    )];
    series.extend((0..400).map(|i| format!(r#"{{"metric":{{"i":"{i}"}},"values":[]}}"#)));
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}}}}"#,
        series.join(",")
    );
    let (out, peak) =
        peak_of(|| prescale::collect::prometheus::parse_body("u", 200, body.as_bytes()));
    assert!(out.is_ok());
    drop(out);
    assert!(
        peak <= alloc_bound(body.len()),
        "peak {peak} for {} bytes",
        body.len()
    );
}

#[test]
fn collector_takes_timestamps_beyond_i64_seconds_without_overflow() {
    // Timestamps far outside i64 seconds (1e300, -9.3e18) saturate to i64::MAX / MIN when
    // converted; the ring's slot arithmetic must not overflow on them.
    use prescale::collect::{Collector, PrometheusSource, RetryPolicy};
    for ts in [
        "1e300",
        "-1e300",
        "9.3e18",
        "-9.3e18",
        "9223372036854775807",
        "NaN",
    ] {
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[[1750000000,"1"],[{ts},"2"],[1750000060,"3"]]}}]}}}}"#
        );
        let server = common::TestServer::start(move |req| {
            if req.starts_with("POST /api/v1/query ") {
                common::Action::Respond(
                    200,
                    "application/json",
                    br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.to_vec(),
                )
            } else {
                common::Action::Respond(200, "application/json", body.clone().into_bytes())
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let cfg = common::load_config(
            dir.path(),
            &format!(
                "[prometheus]\nurl = \"{}\"\n\n[[signal]]\nname = \"up\"\nquery = \"up\"\n\
                 step = \"1m\"\nlookback = \"1h\"\n",
                server.url()
            ),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let source = PrometheusSource::new(cfg.prometheus.as_ref().unwrap()).unwrap();
            let retry = RetryPolicy {
                max_attempts: 1,
                base: std::time::Duration::from_millis(1),
                cap: std::time::Duration::from_millis(1),
            };
            let now = 1_750_000_080;
            let mut c = Collector::with_source(source, cfg.signals.clone(), retry, now)
                .await
                .unwrap();
            c.backfill(now).await;
            c.poll(now + 60).await;
            // The real samples are kept; the absurd one does not push them out ("NaN" is not
            // JSON: that answer is refused whole).
            let s = c.store().signal("up").unwrap();
            if ts != "NaN" {
                let ring = s.iter().next().expect("the series is kept").1.ring();
                assert_eq!(ring.newest_timestamp(), Some(1_750_000_080), "{ts}");
                assert_eq!(ring.get(1_750_000_060), Some(3.0), "{ts}");
            }
        });
    }
}
