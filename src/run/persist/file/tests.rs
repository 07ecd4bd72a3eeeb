use super::*;
use crate::forecast::{Forecast, OnlineCalibration, OnlineConfig};
use crate::series::SeriesKey;

fn forecast(key: &str, at: i64, qs: &[(f64, f64)]) -> Forecast {
    Forecast {
        key: SeriesKey::new(key),
        at,
        window: 1,
        quantiles: qs.to_vec(),
    }
}

/// `cal`'s offsets of every series as a state file holds them.
fn state(cal: &OnlineCalibration, model: u32, saved_at: i64) -> SavedState {
    SavedState::new(model, saved_at, cal.to_saved(|_| true))
}

/// Two series whose p90 and p99 were missed and covered for a while: offsets away from 0.
fn learnt() -> OnlineCalibration {
    let mut cal = OnlineCalibration::new(OnlineConfig {
        enabled: true,
        gain: 0.1,
        median: true,
    });
    for (key, level) in [("a", 30.0), ("b", 5.0)] {
        let k = SeriesKey::new(key);
        for t in 0..20i64 {
            cal.observe(&k, t, level + (t % 3) as f64);
            cal.correct(&forecast(key, t, &[(0.5, 9.0), (0.9, 10.0), (0.99, 12.0)]));
        }
    }
    cal
}

#[test]
fn saved_offsets_restore_to_the_same_corrections() {
    let cal = learnt();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let saved = state(&cal, 0xfeed, 19);
    assert_eq!(saved.series.len(), 2);
    save(&path, &saved).unwrap();
    let Loaded { state: back, risk } = load(&path).unwrap().expect("the file is there");
    assert_eq!(back, saved);
    assert!(risk.is_empty());
    assert_eq!((back.model, back.saved_at), (0xfeed, 19));
    // Which retrained model is kept reads back too; a file without it (written before it
    // existed) reads as none.
    let mut with = saved.clone();
    with.retrained = Some(super::Retrained {
        from: 1,
        model: 0xfeed,
        at: 18,
        previous: Some((0xbeef, 12)),
    });
    save(&path, &with).unwrap();
    assert_eq!(load(&path).unwrap().unwrap().state, with);

    let mut fresh = OnlineCalibration::new(OnlineConfig {
        enabled: true,
        gain: 0.1,
        median: true,
    });
    assert_eq!(fresh.restore(back.series), 2);
    for key in ["a", "b"] {
        let k = SeriesKey::new(key);
        let (was, is) = (cal.get(&k).unwrap().stats(), fresh.get(&k).unwrap().stats());
        assert_eq!(is.factors, was.factors, "{key}");
        assert_ne!(is.factors[0].1, 1.0, "{key}: the test must learn something");
        assert_eq!(is.resolved, was.resolved);
        // What the next forecast is corrected to does not depend on the restart.
        let next = forecast(key, 20, &[(0.5, 9.0), (0.9, 10.0), (0.99, 12.0)]);
        assert_eq!(
            cal.clone().correct(&next).quantiles,
            fresh.correct(&next).quantiles
        );
    }
}

#[test]
fn only_the_series_kept_are_saved_and_a_disabled_calibration_restores_nothing() {
    let cal = learnt();
    let saved = cal.to_saved(|k| k.as_str() == "b");
    assert_eq!(saved.len(), 1);
    let mut off = OnlineCalibration::new(OnlineConfig::off());
    assert_eq!(off.restore(saved), 0);
    assert!(off.get(&SeriesKey::new("b")).is_none());
}

#[test]
fn no_file_is_no_state_and_a_foreign_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    assert!(load(&path).unwrap().is_none());
    // (An empty file is no state, as for the other files prescale writes: see below.)
    for foreign in [&b"{\"series\": []}"[..], b"important notes"] {
        std::fs::write(&path, foreign).unwrap();
        let e = load(&path).unwrap_err();
        assert!(matches!(e, StateError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("state.json"), "{e}");
        let e = save(&path, &state(&learnt(), 1, 0)).unwrap_err();
        assert!(matches!(e, StateError::Foreign { .. }), "{e}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            foreign,
            "a foreign file was touched"
        );
    }
}

#[test]
fn a_device_is_refused_after_reading_the_marker_only() {
    let e = load(Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(e, StateError::Foreign { .. }), "{e}");
}

/// The saved text with `edit` applied to its JSON value.
fn edited(edit: impl Fn(&mut serde_json::Value)) -> String {
    let mut v = serde_json::to_value(state(&learnt(), 7, 0)).unwrap();
    edit(&mut v);
    // Without `preserve_order` the keys come out sorted: `format` first, as the marker wants.
    serde_json::to_string(&v).unwrap()
}

#[test]
fn a_damaged_state_names_the_line_or_the_series() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let cases: Vec<(String, &str)> = vec![
        (
            edited(|v| v["series"][1]["theta"][0][1] = serde_json::json!(9.0)),
            "series 'b': offset 9 at level 0.9 is outside",
        ),
        (
            edited(|v| v["series"][0]["theta"][0][0] = serde_json::json!(0.5)),
            "series 'a': level 0.5 is not above 0.5",
        ),
        (
            edited(|v| {
                let a = v["series"][0].clone();
                v["series"][1] = a;
            }),
            "series 'a' appears twice",
        ),
        (
            edited(|v| v["version"] = serde_json::json!(2)),
            "format version 2",
        ),
        (
            edited(|v| v["series"][0]["extra"] = serde_json::json!(1)),
            "unknown field `extra`",
        ),
    ];
    for (text, expect) in cases {
        std::fs::write(&path, &text).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.contains(expect) && e.contains("state.json"),
            "{e}\n{text}"
        );
    }
    // Cut short: the line where it ends is named (one series per line).
    save(&path, &state(&learnt(), 7, 0)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    // The header, a, b, the risk list's opening, the end.
    assert_eq!(text.lines().count(), 5, "{text}");
    let third = text.lines().take(2).map(|l| l.len() + 1).sum::<usize>();
    std::fs::write(&path, &text[..third + 5]).unwrap();
    let e = load(&path).unwrap_err();
    match &e {
        StateError::Parse { line, .. } => assert_eq!(*line, 3, "{e}"),
        other => panic!("{other}"),
    }
    // Ours though damaged: a save may replace it.
    save(&path, &state(&learnt(), 7, 0)).unwrap();
    assert!(load(&path).unwrap().is_some());
}

#[test]
fn risk_ledgers_are_restored_as_read_and_an_impossible_one_refuses_the_file() {
    use crate::plan::{RiskTracker, WorkloadSpec};
    let mut spec = WorkloadSpec::new("web", "d", 10.0, 100);
    spec.max_short = Some(0.01);
    let mut live = RiskTracker::new();
    for t in 0..200i64 {
        let d = if t % 9 == 0 { 50.0 } else { 5.0 };
        live.observe(&spec, t * 60, Some(d), 2);
    }
    let mut saved = state(&learnt(), 7, 0);
    saved.risk = live.to_saved();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    save(&path, &saved).unwrap();
    let Loaded { state: back, risk } = load(&path).unwrap().expect("the file is there");
    assert!(
        back.risk.is_empty(),
        "the ledgers are handed over converted, not twice"
    );
    assert_eq!(back.series, saved.series);
    let mut restored = RiskTracker::new();
    assert_eq!(restored.restore(risk), 1);
    assert_eq!(restored.to_saved(), saved.risk);

    let mut v = serde_json::to_value(&saved).unwrap();
    v["risk"][0]["theta"] = serde_json::json!(9.0);
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert!(
        e.contains("state.json: risk of workload 'web': theta 9 is outside"),
        "{e}"
    );
    saved.risk = [live.to_saved(), live.to_saved()].concat();
    save(&path, &saved).unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert!(e.contains("risk of workload 'web' appears twice"), "{e}");
}

/// A file of prescale's this build cannot read (a rollback to an older format, damage) is set
/// aside whole and the loop starts afresh, never crash-looping on a cache; a file that is not
/// prescale's stays an error and untouched; an empty one is no state.
#[test]
fn an_unreadable_state_is_set_aside_a_foreign_file_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    save(&path, &state(&learnt(), 7, 0)).unwrap();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["series"][0]["newer_field"] = serde_json::json!(1);
    let text = serde_json::to_string(&v).unwrap();
    std::fs::write(&path, &text).unwrap();
    assert!(load_or_set_aside(&path, 1_234).unwrap().is_none());
    assert!(!path.exists());
    let aside = dir.path().join("state.json.unreadable-1234");
    assert_eq!(std::fs::read_to_string(&aside).unwrap(), text);
    // The next save writes afresh at the path.
    save(&path, &state(&learnt(), 8, 0)).unwrap();
    assert!(load_or_set_aside(&path, 1_300).unwrap().is_some());

    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "my notes").unwrap();
    assert!(matches!(
        load_or_set_aside(&foreign, 1_234),
        Err(StateError::Foreign { .. })
    ));
    assert_eq!(std::fs::read_to_string(&foreign).unwrap(), "my notes");

    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();
    assert!(load_or_set_aside(&empty, 1_234).unwrap().is_none());
    assert!(empty.exists());
    save(&empty, &state(&learnt(), 7, 0)).unwrap();
    assert!(load(&empty).unwrap().is_some());
}
