use super::*;
use crate::collect::prometheus::Point;

const NOW: i64 = 1_700_000_000;

fn sample(family: &str, workload: &str, instance: &str, value: f64) -> InstantSample {
    let mut metric = BTreeMap::new();
    metric.insert("__name__".to_string(), family.to_string());
    metric.insert("instance".to_string(), instance.to_string());
    metric.insert("job".to_string(), "prescale".to_string());
    metric.insert("workload".to_string(), workload.to_string());
    InstantSample {
        metric,
        value: Some(Point {
            ts: NOW as f64,
            value,
        }),
    }
}

/// The three families of one target for `(workload, desired, utilisation, planned_at)`.
fn answers(rows: &[(&str, &str, f64, f64, f64)]) -> [FamilyAnswer; 3] {
    let fam = |family: &str, pick: fn(&(&str, &str, f64, f64, f64)) -> f64| -> FamilyAnswer {
        Ok(rows
            .iter()
            .map(|r| sample(family, r.0, r.1, pick(r)))
            .collect())
    };
    [
        fam(DESIRED_METRIC, |r| r.2),
        fam(UTILIZATION_METRIC, |r| r.3),
        fam(PLANNED_AT_METRIC, |r| r.4),
    ]
}

fn wanted(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn map(rows: &[(&str, &str, f64, f64, f64)], names: &[&str]) -> ReadBack {
    let [d, u, t] = answers(rows);
    map_answers(&wanted(names), &d, &u, &t, NOW, 30)
}

#[test]
fn fresh_complete_series_map_to_loads_and_unwanted_ones_are_ignored() {
    let now = NOW as f64;
    let got = map(
        &[
            ("a", "s1:1", 4.0, 0.75, now - 5.0),
            ("b", "s2:1", 0.0, 1.0, now),
            ("mine", "s0:1", 9.0, 0.5, now),
        ],
        &["a", "b"],
    );
    assert_eq!(got.len(), 2);
    assert_eq!(
        got["a"],
        Ok(RemoteLoad {
            desired: 4,
            utilization: 0.75,
            planned_at: NOW - 5
        })
    );
    assert_eq!(got["b"].as_ref().unwrap().desired, 0);
}

#[test]
fn missing_series_are_unknown_naming_the_workload_and_family() {
    let now = NOW as f64;
    let [d, u, _] = answers(&[("a", "s1:1", 4.0, 0.75, now)]);
    let got = map_answers(&wanted(&["a", "gone"]), &d, &u, &Ok(Vec::new()), NOW, 30);
    let a = got["a"].as_ref().unwrap_err();
    assert!(
        a.contains(PLANNED_AT_METRIC) && a.contains("workload=\"a\""),
        "{a}"
    );
    let gone = got["gone"].as_ref().unwrap_err();
    assert!(
        gone.contains(DESIRED_METRIC) && gone.contains("workload=\"gone\""),
        "{gone}"
    );
}

#[test]
fn bad_values_are_unknown_with_the_value_and_target_named() {
    let now = NOW as f64;
    let got = map(
        &[
            ("nan", "s1:1", f64::NAN, 0.5, now),
            ("neg", "s1:1", -1.0, 0.5, now),
            ("half", "s1:1", 2.5, 0.5, now),
            ("inf", "s1:1", 2.0, f64::INFINITY, now),
            ("when", "s1:1", 2.0, 0.5, f64::NAN),
        ],
        &["nan", "neg", "half", "inf", "when"],
    );
    for (w, want) in [
        ("nan", "is NaN"),
        ("neg", "is -1"),
        ("half", "is 2.5"),
        ("inf", "is inf"),
        ("when", "not a time"),
    ] {
        let why = got[w].as_ref().unwrap_err();
        assert!(why.contains(want), "{w}: {why}");
        assert!(why.contains(&format!("workload=\"{w}\"")), "{w}: {why}");
        assert!(why.contains("instance=\"s1:1\""), "{w}: {why}");
    }
}

#[test]
fn a_plan_older_than_the_bound_is_unknown() {
    let now = NOW as f64;
    let got = map(
        &[
            ("old", "s1:1", 3.0, 0.5, now - 31.0),
            ("edge", "s1:1", 3.0, 0.5, now - 30.0),
        ],
        &["old", "edge"],
    );
    let why = got["old"].as_ref().unwrap_err();
    assert!(
        why.contains("31s old") && why.contains("30s bound"),
        "{why}"
    );
    assert!(got["edge"].is_ok());
}

/// A plan dated further ahead of this clock than the bound cannot be judged fresh: a shard
/// whose clock runs ahead would otherwise stay fresh that much longer after it stalled.
#[test]
fn a_plan_dated_ahead_by_more_than_the_bound_is_unknown() {
    let now = NOW as f64;
    let got = map(
        &[
            ("ahead", "s1:1", 3.0, 0.5, now + 31.0),
            ("edge", "s1:1", 3.0, 0.5, now + 30.0),
        ],
        &["ahead", "edge"],
    );
    let why = got["ahead"].as_ref().unwrap_err();
    assert!(
        why.contains("dated 31s ahead") && why.contains("the clocks disagree"),
        "{why}"
    );
    assert!(got["edge"].is_ok());
}

#[test]
fn a_failed_query_makes_every_workload_unknown_naming_the_family() {
    let now = NOW as f64;
    let [d, _, t] = answers(&[("a", "s1:1", 4.0, 0.75, now)]);
    let got = map_answers(
        &wanted(&["a", "b"]),
        &d,
        &Err("connection refused".into()),
        &t,
        NOW,
        30,
    );
    for w in ["a", "b"] {
        let why = got[w].as_ref().unwrap_err();
        assert!(
            why.contains(UTILIZATION_METRIC) && why.contains("connection refused"),
            "{why}"
        );
    }
}

/// Two targets export one workload (a resize in progress): the freshest complete one wins,
/// and values are never mixed between targets.
#[test]
fn the_freshest_complete_target_wins_and_targets_are_not_mixed() {
    let now = NOW as f64;
    let got = map(
        &[
            ("a", "old:1", 2.0, 0.4, now - 10.0),
            ("a", "new:1", 6.0, 0.9, now - 1.0),
        ],
        &["a"],
    );
    assert_eq!(
        got["a"],
        Ok(RemoteLoad {
            desired: 6,
            utilization: 0.9,
            planned_at: NOW - 1
        })
    );
    // The freshest target lacks its utilisation: the other, complete one is used.
    let [d, mut u, t] = answers(&[
        ("a", "old:1", 2.0, 0.4, now - 10.0),
        ("a", "new:1", 6.0, 0.9, now - 1.0),
    ]);
    if let Ok(v) = &mut u {
        v.retain(|s| s.metric["instance"] == "old:1");
    }
    let got = map_answers(&wanted(&["a"]), &d, &u, &t, NOW, 30);
    assert_eq!(got["a"].as_ref().unwrap().desired, 2);
    assert_eq!(got["a"].as_ref().unwrap().utilization, 0.4);
    // No target has all three.
    let [d, _, t] = answers(&[("a", "x:1", 2.0, 0.4, now)]);
    let u = Ok(vec![sample(UTILIZATION_METRIC, "a", "y:1", 0.4)]);
    let got = map_answers(&wanted(&["a"]), &d, &u, &t, NOW, 30);
    assert!(got["a"].as_ref().unwrap_err().contains("different targets"));
}
