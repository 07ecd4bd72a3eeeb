//! Collection health: error and refusal counters, signal up, replica reads.

use super::*;

#[test]
fn error_counters_accumulate_while_their_signal_lives() {
    let m = Metrics::new();
    let mut s = Snapshot {
        signals: vec![signal("q", &[("timeout", 2), ("parse", 1)])],
        ..Snapshot::default()
    };
    m.observe(&s);
    s.signals = vec![signal("q", &[("timeout", 3)])];
    m.observe(&s);
    s.signals = vec![signal("q", &[])];
    m.observe(&s);
    let text = lines(&m);
    assert_has(
        &text,
        r#"prescale_collection_errors_total{signal="q",kind="timeout"} 5"#,
    );
    assert_has(
        &text,
        r#"prescale_collection_errors_total{signal="q",kind="parse"} 1"#,
    );
    assert_has(&text, r#"prescale_signal_up{signal="q"} 1"#);
}

/// A signal's error and refusal counters exist at 0 from its first snapshot (every known kind),
/// and a failing signal reads `prescale_signal_up 0`.
#[test]
fn health_counters_start_at_zero_and_a_down_signal_reads_up_0() {
    let m = Metrics::new();
    m.observe(&Snapshot {
        signals: vec![signal("web_rps", &[])],
        ..Snapshot::default()
    });
    let out = m.encode();
    for kind in COLLECTION_ERROR_KINDS {
        let line =
            format!("prescale_collection_errors_total{{signal=\"web_rps\",kind=\"{kind}\"}} 0");
        assert!(out.contains(&line), "missing {line} in\n{out}");
    }
    assert!(
        out.contains("prescale_series_refused_total{signal=\"web_rps\"} 0"),
        "{out}"
    );
    let mut down = signal("web_rps", &[("request", 3)]);
    down.new_series_refused = 2;
    m.observe(&Snapshot {
        signals: vec![down],
        ..Snapshot::default()
    });
    let out = m.encode();
    assert!(
        out.contains("prescale_signal_up{signal=\"web_rps\"} 0"),
        "{out}"
    );
    assert!(
        out.contains("prescale_collection_errors_total{signal=\"web_rps\",kind=\"request\"} 3"),
        "{out}"
    );
    assert!(
        out.contains("prescale_series_refused_total{signal=\"web_rps\"} 2"),
        "{out}"
    );
}

/// Failed `current_replicas` reads are counted per workload, from 0 at the first snapshot.
#[test]
fn replica_read_errors_are_counted_per_workload_from_zero() {
    let m = Metrics::new();
    let reads = |failed| Snapshot {
        replica_reads: vec![("web".into(), failed)],
        ..Snapshot::default()
    };
    m.observe(&reads(false));
    assert!(m
        .encode()
        .contains("prescale_replicas_read_errors_total{workload=\"web\"} 0"));
    m.observe(&reads(true));
    m.observe(&reads(true));
    let out = m.encode();
    assert!(
        out.contains("prescale_replicas_read_errors_total{workload=\"web\"} 2"),
        "{out}"
    );
    m.observe(&Snapshot::default());
    assert!(!m.encode().contains("prescale_replicas_read_errors_total{"));
}
