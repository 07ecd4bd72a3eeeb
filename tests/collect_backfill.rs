//! Backfill against a real Prometheus loaded with a bundled trace: the buffers hold exactly the
//! history (no lost, shifted or duplicated points, gaps kept as gaps), long ranges are chunked
//! under the 11,000-point limit and halved where an answer is over `max_answer_size`, a bad
//! query fails start-up quoting Prometheus, and `prescale collect --export-csv` writes history
//! that `prescale train` trains on.

use crate::common;
use crate::two_traces;

use common::*;
use prescale::series::{read_history, HistoryOptions};
use std::time::Duration;
use two_traces::*;

struct History {
    prom: Prometheus,
    t: TwoTraces,
}

/// [`TwoTraces`] loaded with promtool. `--query.lookback-delta=250s` makes each 5-minute sample
/// visible at its own grid point and the 15-second points up to 4 minutes after it, and not at
/// the next grid point, so a missing sample is a gap rather than a repeat.
fn start_with_history() -> History {
    let t = TwoTraces::ending_before(now());
    let [(la, sa), (lb, sb)] = t.series();
    let om = openmetrics(
        "load",
        &[
            OmSeries {
                labels: la,
                samples: sa,
            },
            OmSeries {
                labels: lb,
                samples: sb,
            },
        ],
    );
    let prom = Prometheus::start(PromOptions {
        history: Some(om),
        extra_args: vec!["--query.lookback-delta=250s".into()],
        ..PromOptions::default()
    });
    History { prom, t }
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

    assert_holds_two_traces(&c, &h.t, "Prometheus");
    let want_a = h.t.a_with_gaps();

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
    assert_eq!(series[0].start, h.t.first);
    assert_same("exported a", &series[0].values, &want_a);
    assert_same("exported b", &series[1].values, &h.t.b);
}

/// Prometheus' answers for the 15-second signal's chunks of 10,000 points are ~250 KB; under a
/// 64 KiB `max_answer_size` they are refused and the chunks halved until they pass, in the one
/// backfill, and the buffers hold exactly the same history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_over_max_answer_size_are_fetched_in_smaller_chunks() {
    let h = start_with_history();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[prometheus]\nurl = \"{}\"\ntimeout = \"20s\"\nmax_answer_size = \"64Ki\"\n\n{SIGNALS}",
        h.prom.url()
    );
    let cfg = load_config(dir.path(), &text);
    let run = async {
        let mut c = connect(&cfg).await.expect("collector starts");
        let report = c.backfill(now()).await;
        assert!(report.ok(), "{report:?}");
        (c, report)
    };
    let (c, report) = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("in time");
    let fine = &report.signals[1];
    assert!(
        fine.requests > 11_761usize.div_ceil(10_000) as u32 + 1,
        "chunks were refused and halved: {fine:?}"
    );
    assert_holds_two_traces(&c, &h.t, "Prometheus, 64 KiB answers");
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
    assert_collect_export_trains(dir.path(), &h.prom.url(), &h.t, "Prometheus");
}
