//! What a scrape reads: label values escaped, and the text format beside OpenMetrics.

use super::*;

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new();
    m.observe(&Snapshot {
        workloads: vec![WorkloadSample {
            workload: "we\"b\\x\ny".into(),
            current_replicas: 1,
            recommended_replicas: 2,
        }],
        ..Snapshot::default()
    });
    assert_has(
        &lines(&m),
        r#"prescale_recommended_replicas{workload="we\"b\\x\ny"} 2"#,
    );
}

/// The text format served to clients that do not ask for OpenMetrics holds the same samples,
/// with every family typed under its samples' name.
#[test]
fn text_format_has_the_same_samples_typed_by_sample_name() {
    let m = Metrics::new();
    m.observe(&full_snapshot());
    let (om, text) = (m.encode(), m.encode_text());
    let samples = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(samples(&om), samples(&text));
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    let typed: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    for name in sample_names(&text) {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(f)))
            .unwrap_or(name.as_str());
        assert!(typed.contains(family), "{name} has no # TYPE in\n{text}");
    }
    assert!(
        text.contains("# TYPE prescale_decisions_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE prescale_build_info gauge\n"),
        "{text}"
    );
}
