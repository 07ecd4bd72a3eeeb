//! Forecast and accuracy families: what a series exports, under which labels.

use super::*;

#[test]
fn scored_counter_mirrors_the_tracker_including_its_restarts() {
    let m = Metrics::new();
    let acc = |n| Snapshot {
        accuracy: vec![AccuracySample {
            series: "web".into(),
            wape: Some(0.1),
            coverage_p90: Some(0.9),
            scored: n,
        }],
        ..Snapshot::default()
    };
    m.observe(&acc(10));
    m.observe(&acc(25));
    assert_has(
        &lines(&m),
        r#"prescale_forecasts_scored_total{signal="web"} 25"#,
    );
    m.observe(&acc(3));
    assert_has(
        &lines(&m),
        r#"prescale_forecasts_scored_total{signal="web"} 3"#,
    );
}

/// Issue #10: a series is exported as `signal` plus its own labels, not as one label holding the
/// whole key; its labels that collide with prescale's get the `exported_` prefix (as Prometheus
/// does), invalid names are made valid, and no gauge has a `quantile` or `le` label.
#[test]
fn series_are_exported_with_their_own_labels() {
    let m = Metrics::new();
    let api = SeriesId::new("rps", [("service", "api"), ("level", "high")]);
    let odd = SeriesId::new(
        "rps",
        [
            ("quantile", "x"),
            ("le", "y"),
            ("signal", "z"),
            ("__meta", "m"),
            ("9-lives", "w\"q"),
        ],
    );
    m.observe(&Snapshot {
        forecasts: vec![
            ForecastSample {
                series: api.clone(),
                window_seconds: 300.0,
                quantiles: vec![(0.5, 10.0), (0.9, 12.5)],
                observed: Some(9.0),
            },
            ForecastSample {
                series: odd.clone(),
                window_seconds: 300.0,
                quantiles: vec![(0.9, 1.0)],
                observed: None,
            },
        ],
        accuracy: vec![AccuracySample {
            series: api,
            wape: Some(0.2),
            coverage_p90: Some(0.9),
            scored: 3,
        }],
        ..Snapshot::default()
    });
    let text = lines(&m);
    let api = r#"signal="rps",exported_level="high",service="api""#;
    for line in [
        format!(r#"prescale_forecast{{{api},level="0.5"}} 10.0"#),
        format!(r#"prescale_forecast{{{api},level="0.9"}} 12.5"#),
        format!(r#"prescale_forecast_window_seconds{{{api}}} 300.0"#),
        format!(r#"prescale_observed_demand{{{api}}} 9.0"#),
        format!(r#"prescale_forecast_wape{{{api}}} 0.2"#),
        format!(r#"prescale_forecast_p90_coverage{{{api}}} 0.9"#),
        format!(r#"prescale_forecasts_scored_total{{{api}}} 3"#),
        r#"prescale_forecast{signal="rps",_9_lives="w\"q",exported___meta="m",exported_le="y",exported_quantile="x",exported_signal="z",level="0.9"} 1.0"#.to_string(),
    ] {
        assert_has(&text, &line);
    }
    assert_no_mention(&text, "series=");
    assert_no_mention(&text, "{quantile=");
    assert_no_mention(&text, ",quantile=");
    assert_no_mention(&text, "{le=\"y");
}

/// Two series whose label names meet once made valid (`a-b` and `a_b`) would be one sample
/// twice, and Prometheus refuses a whole scrape for that: one is exported, the later one, as a
/// family did; a series missing from the next snapshot is gone from the scrape.
#[test]
fn label_sets_that_meet_are_exported_once_and_vanish_with_their_series() {
    let m = Metrics::new();
    let sample = |label: &str, v: f64| ForecastSample {
        series: SeriesId::new("rps", [(label, "x")]),
        window_seconds: 60.0,
        quantiles: vec![(0.9, v)],
        observed: Some(v),
    };
    m.observe(&Snapshot {
        forecasts: vec![sample("a-b", 1.0), sample("a_b", 2.0)],
        ..Snapshot::default()
    });
    let text = lines(&m);
    let forecasts: Vec<_> = text
        .iter()
        .filter(|l| l.starts_with("prescale_forecast{"))
        .collect();
    assert_eq!(forecasts.len(), 1, "{forecasts:?}");
    assert_has(
        &text,
        r#"prescale_forecast{signal="rps",a_b="x",level="0.9"} 2.0"#,
    );
    assert_has(
        &text,
        r#"prescale_observed_demand{signal="rps",a_b="x"} 2.0"#,
    );
    m.observe(&Snapshot::default());
    let text = lines(&m);
    assert_no_mention(&text, "a_b=");
    assert_has(&text, "# TYPE prescale_forecast gauge");
}

/// The exporter keeps a series' label set while the loop hands it the same id: the values
/// follow each snapshot, a series under a new id (same signal, other labels) gets its own
/// label set, and one left out of a snapshot is gone.
#[test]
fn label_sets_kept_across_snapshots_follow_the_ids() {
    let m = Metrics::new();
    let api = SeriesId::new("rps", [("service", "api")]);
    let web = SeriesId::new("rps", [("service", "web")]);
    let snap = |ids: &[&SeriesId], value: f64| Snapshot {
        forecasts: ids
            .iter()
            .map(|&id| ForecastSample {
                series: id.clone(),
                window_seconds: 300.0,
                quantiles: vec![(0.9, value)],
                observed: None,
            })
            .collect(),
        accuracy: ids
            .iter()
            .map(|&id| AccuracySample {
                series: id.clone(),
                wape: Some(value),
                coverage_p90: None,
                scored: 1,
            })
            .collect(),
        ..Snapshot::default()
    };
    m.observe(&snap(&[&api, &web], 1.0));
    m.observe(&snap(&[&api, &web], 2.0));
    let text = lines(&m);
    for s in ["api", "web"] {
        assert_has(
            &text,
            &format!(r#"prescale_forecast{{signal="rps",service="{s}",level="0.9"}} 2.0"#),
        );
        assert_has(
            &text,
            &format!(r#"prescale_forecast_wape{{signal="rps",service="{s}"}} 2.0"#),
        );
    }
    let db = SeriesId::new("rps", [("service", "db")]);
    m.observe(&snap(&[&api, &db], 3.0));
    let text = lines(&m);
    assert_has(
        &text,
        r#"prescale_forecast{signal="rps",service="db",level="0.9"} 3.0"#,
    );
    assert_has(
        &text,
        r#"prescale_forecast_wape{signal="rps",service="api"} 3.0"#,
    );
    assert!(
        !text.iter().any(|l| l.contains(r#"service="web""#)),
        "{text:?}"
    );
    // The same series in another order, and one named twice (by two ids of equal labels).
    let api_again = SeriesId::new("rps", [("service", "api")]);
    for _ in 0..2 {
        m.observe(&snap(&[&db, &api, &api_again], 4.0));
        let text = lines(&m);
        for s in ["api", "db"] {
            let line = format!(r#"prescale_forecast_wape{{signal="rps",service="{s}"}} 4.0"#);
            assert_eq!(text.iter().filter(|l| **l == line).count(), 1, "{text:?}");
        }
    }
}
