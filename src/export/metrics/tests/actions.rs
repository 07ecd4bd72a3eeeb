//! The act stage's counters per workload: outcomes, actuator failures, external changes.

use super::*;

/// Issue #9: every workload has a counter per outcome and a failure counter from its first
/// snapshot, at 0; outcomes add up per cycle, failures count twice (by outcome and as failures).
#[test]
fn action_outcomes_are_counted_per_workload_from_zero() {
    let m = Metrics::new();
    let w = |name: &str| WorkloadSample {
        workload: name.into(),
        current_replicas: 2,
        recommended_replicas: 3,
    };
    let cycle = |outcomes: &[(&str, &str)]| Snapshot {
        workloads: vec![w("web"), w("api")],
        actions: outcomes
            .iter()
            .map(|(w, o)| ActionSample {
                workload: w.to_string(),
                // Written as the act stage words it; the label is the word before it.
                outcome: o.split(' ').next().unwrap_or(o).to_string(),
                external_change: o.contains("changed elsewhere"),
            })
            .collect(),
        ..Snapshot::default()
    };
    m.observe(&cycle(&[]));
    let text = lines(&m);
    for wl in ["web", "api"] {
        for o in ACTION_OUTCOMES {
            assert_has(
                &text,
                &format!("prescale_actions_total{{workload=\"{wl}\",outcome=\"{o}\"}} 0"),
            );
        }
        assert_has(
            &text,
            &format!("prescale_actuator_failures_total{{workload=\"{wl}\"}} 0"),
        );
        assert_has(
            &text,
            &format!("prescale_external_changes_total{{workload=\"{wl}\"}} 0"),
        );
    }
    m.observe(&cycle(&[("web", "applied"), ("api", "failed")]));
    m.observe(&cycle(&[
        ("web", "skipped (changed elsewhere)"),
        ("api", "failed"),
    ]));
    let text = lines(&m);
    for line in [
        "prescale_actions_total{workload=\"web\",outcome=\"applied\"} 1",
        "prescale_actions_total{workload=\"web\",outcome=\"skipped\"} 1",
        "prescale_actions_total{workload=\"web\",outcome=\"failed\"} 0",
        "prescale_actions_total{workload=\"api\",outcome=\"failed\"} 2",
        "prescale_actuator_failures_total{workload=\"api\"} 2",
        "prescale_actuator_failures_total{workload=\"web\"} 0",
        "prescale_external_changes_total{workload=\"web\"} 1",
        "prescale_external_changes_total{workload=\"api\"} 0",
    ] {
        assert_has(&text, line);
    }
    // A workload gone from the configuration takes its counters with it.
    m.observe(&Snapshot::default());
    assert_no_mention(&lines(&m), "workload=\"api\"");
}
