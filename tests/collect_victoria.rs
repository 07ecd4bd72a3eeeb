//! The collector end to end against a second real Prometheus-compatible store: Debian's
//! single-node VictoriaMetrics, loaded through its own import API (issue #11, item 4). The same
//! promises as against Prometheus (`collect_backfill.rs`, `collect_live.rs`): backfilled rings
//! equal the imported history with removed samples as gaps, polls fetch new points, a bad query
//! fails start-up quoting the server, both URL forms (`/api/v1/...` and the
//! `/prometheus/api/v1/...` prefix) work, and `prescale collect --export-csv` trains.
//!
//! Where VictoriaMetrics answers differently from Prometheus, the test that showed it says so.

use crate::common;
use crate::two_traces;
use crate::victoria;

use common::*;
use prescale::collect::prometheus::PromClient;
use prescale::collect::Collector;
use prescale::config::Config;
use prescale::series::SeriesKey;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use two_traces::*;
use victoria::Victoria;

/// Server flags every test here starts with.
///
/// `-search.maxLookback=250s` is Prometheus' `--query.lookback-delta=250s` in
/// `collect_backfill.rs`: a 5-minute sample is visible at its own grid point and up to 250 s
/// after it, so a removed sample is a gap, not a repeat of the one before. (Without it,
/// VictoriaMetrics derives the window from the samples' spacing and fills a one-sample gap
/// with the previous value, as Prometheus' default 5-minute lookback also would.)
const LOOKBACK: &str = "-search.maxLookback=250s";

struct History {
    vm: Victoria,
    t: TwoTraces,
}

/// [`TwoTraces`] imported through `/api/v1/import/prometheus` (millisecond timestamps) and
/// flushed.
fn start_with_history() -> History {
    let t = TwoTraces::ending_before(now());
    let mut text = String::new();
    for (labels, samples) in t.series() {
        for (ts, x) in samples {
            text.push_str(&format!("load{{{labels}}} {x} {}\n", ts * 1000));
        }
    }
    let vm = Victoria::start(&[LOOKBACK]);
    vm.import_prometheus(&text);
    History { vm, t }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_holds_exactly_the_imported_history_at_both_url_forms() {
    let h = start_with_history();
    // The single-node server answers the Prometheus API at the root and under `/prometheus`.
    for url in [h.vm.url(), format!("{}/prometheus", h.vm.url())] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path(), &url, SIGNALS);
        let run = async {
            let mut c = connect(&cfg).await.expect("collector starts");
            let report = c.backfill(now()).await;
            assert!(report.ok(), "{url}: {report:?}");
            c
        };
        let c = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("in time");

        assert_holds_two_traces(&c, &h.t, &url);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_metricsql_fails_start_up_quoting_victoria_metrics() {
    let vm = Victoria::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    for url in [vm.url(), format!("{}/prometheus", vm.url())] {
        let cfg = config(
            dir.path(),
            &url,
            "[[signal]]\nname = \"cpu\"\nquery = \"sum(rate(up[5m])\"\nstep = \"1m\"\nlookback = \"1h\"\n",
        );
        let err = tokio::time::timeout(Duration::from_secs(30), connect(&cfg))
            .await
            .expect("in time")
            .err()
            .expect("start-up fails");
        let text = err.to_string();
        assert!(text.contains("signal 'cpu'"), "{text}");
        // VictoriaMetrics' envelope has the HTTP status as `errorType` ("422"), not
        // Prometheus' `bad_data`; its own words are quoted as they come.
        assert!(text.contains("HTTP 422"), "{text}");
        assert!(text.contains("unparsed data"), "{text}");

        // A range selector: VictoriaMetrics answers the instant query with a matrix (and would
        // even range-query it), but it is not a demand series: refused up front as against
        // Prometheus.
        let cfg = config(
            dir.path(),
            &url,
            "[[signal]]\nname = \"up\"\nquery = \"up[5m]\"\nstep = \"1m\"\nlookback = \"1h\"\n",
        );
        let err = connect(&cfg).await.err().expect("start-up fails");
        assert!(err.to_string().contains("instant vector"), "{err}");
    }

    // The cluster's URL form against the single-node server: a plain-text 400, no envelope;
    // quoted, and not waited out (a wrong URL stays wrong).
    let cfg = config(
        dir.path(),
        &format!("{}/select/0/prometheus", vm.url()),
        "[[signal]]\nname = \"up\"\nquery = \"up\"\nstep = \"1m\"\nlookback = \"1h\"\n",
    );
    let err = tokio::time::timeout(Duration::from_secs(30), connect(&cfg))
        .await
        .expect("in time")
        .err()
        .expect("start-up fails");
    let text = err.to_string();
    assert!(text.contains("HTTP 400"), "{text}");
    assert!(text.contains("unsupported path requested"), "{text}");
}

#[test]
fn collect_command_exports_csv_for_training() {
    let h = start_with_history();
    let dir = tempfile::tempdir().expect("tempdir");
    assert_collect_export_trains(
        dir.path(),
        &format!("{}/prometheus", h.vm.url()),
        &h.t,
        "VictoriaMetrics",
    );
}

/// A 1-second gauge `live{series="x"}` whose value at `t` is `t % 1000`.
fn live_samples(from: i64, to: i64) -> String {
    (from..=to)
        .map(|t| format!("live{{series=\"x\"}} {} {}\n", t % 1000, t * 1000))
        .collect()
}

fn live_config(dir: &Path, url: &str) -> Config {
    let text = format!(
        "[prometheus]\nurl = \"{url}\"\ntimeout = \"5s\"\n\n[[signal]]\nname = \"g\"\n\
         query = \"live\"\nseries_labels = [\"series\"]\nstep = \"1s\"\nlookback = \"5m\"\n\
         stale_after = \"2m\"\n"
    );
    load_config(dir, &text)
}

/// The ring of `g{series="x"}` as `ts → value`, gaps left out.
fn held(c: &Collector) -> BTreeMap<i64, f64> {
    let key = SeriesKey::new(r#"g{series="x"}"#);
    let s = c.store().series(&key).expect("series held").to_series(key);
    s.values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (s.timestamp(i), *v))
        .collect()
}

/// What the server itself answers for `live` on the 1 s grid.
async fn server_view(url: &str, start: i64, end: i64) -> BTreeMap<i64, f64> {
    let cfg = Config::from_toml(
        Path::new("x.toml"),
        &format!("[prometheus]\nurl = \"{url}\"\n"),
    )
    .expect("config")
    .prometheus
    .expect("prometheus");
    let a = PromClient::new(&cfg)
        .expect("client")
        .query_range("live", start, end, 1)
        .await
        .expect("query_range");
    a.data
        .iter()
        .flat_map(|s| s.values.iter().map(|p| (p.ts as i64, p.value)))
        .collect()
}

/// With `-search.latencyOffset=0s` (the default hides the newest 30 s from every query), each
/// poll brings the points imported since the last one, and the buffer equals the server's own
/// answer point for point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_fetch_new_points() {
    let vm = Victoria::start(&[LOOKBACK, "-search.latencyOffset=0s"]);
    let url = format!("{}/prometheus", vm.url());
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = live_config(dir.path(), &url);
    let t0 = now();
    vm.import_prometheus(&live_samples(t0 - 60, t0));
    let test = async {
        let mut c = connect(&cfg).await.expect("collector");
        let r = c.backfill(t0).await;
        assert!(r.ok(), "{r:?}");
        assert_eq!(held(&c).keys().next_back(), Some(&t0), "backfill to now");
        let mut newest = t0;
        for round in 0..4 {
            sleep_to_next_second(0.3).await;
            let t = now();
            vm.import_prometheus(&live_samples(newest + 1, t));
            let r = c.poll(t).await;
            assert!(r.ok(), "{r:?}");
            assert!(r.signals[0].appended >= 1, "round {round}: {r:?}");
            let n = *held(&c).keys().next_back().expect("points");
            assert_eq!(n, t, "round {round}: newest point is the one just imported");
            newest = n;
        }
        let ours = held(&c);
        let theirs = server_view(&url, t0 - 60, newest).await;
        assert_eq!(ours.len(), 61 + (newest - t0) as usize, "no gaps: {ours:?}");
        assert_eq!(ours, theirs, "buffer equals the server's answer");
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("in time");
}

/// VictoriaMetrics treats the newest `-search.latencyOffset` of every range answer (default
/// 30 s) as possibly incomplete and fills it with the last value before that window: a
/// provisional repeat, not a gap. Once older, the same points come back with their real values.
/// A collector that re-fetched only `2 × step` (2 s here) kept the repeats for good; the default
/// overlap now re-fetches at least 30 s, so they are replaced. The server runs with a 5 s offset
/// only to keep the test short: 5 s > 2 s fails the old overlap just as the default 30 s does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisional_points_inside_the_latency_offset_are_replaced_by_later_polls() {
    let vm = Victoria::start(&[LOOKBACK, "-search.latencyOffset=5s"]);
    let url = vm.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = live_config(dir.path(), &url);
    sleep_to_next_second(0.1).await;
    let t0 = now();
    // Real points up to a minute ahead: the server shows each as itself once it is 5 s old.
    vm.import_prometheus(&live_samples(t0 - 120, t0 + 60));
    let real = |t: i64| (t % 1000) as f64;
    let test = async {
        let mut c = connect(&cfg).await.expect("collector");
        let r = c.backfill(t0).await;
        assert!(r.ok(), "{r:?}");
        let after_backfill = held(&c);
        // What the server answered for `t0`, within its latency offset: the value of an older
        // point (the real one would be t0 % 1000).
        assert_ne!(
            after_backfill.get(&t0),
            Some(&real(t0)),
            "VictoriaMetrics answered the newest 5 s with a repeat of an older value"
        );
        let mut t = t0;
        while t < t0 + 8 {
            sleep_to_next_second(0.3).await;
            t = now();
            let r = c.poll(t).await;
            assert!(r.ok(), "{r:?}");
        }
        // Everything older than the offset at the last poll is final and must be held as is.
        let settled = t - 6;
        let ours: BTreeMap<i64, f64> = held(&c)
            .into_iter()
            .filter(|(ts, _)| *ts <= settled)
            .collect();
        let want: BTreeMap<i64, f64> = (t0 - 120..=settled).map(|ts| (ts, real(ts))).collect();
        assert_eq!(
            ours, want,
            "provisional values were replaced by the real ones"
        );
        assert_eq!(ours, server_view(&url, t0 - 120, settled).await);
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("in time");
}
