//! Tests of the accuracy tracker and its weights.

use super::*;
use proptest::prelude::*;

fn fc(at: i64, p50: f64, p90: f64) -> Forecast {
    Forecast {
        key: SeriesKey::new("rps"),
        at,
        window: 60,
        quantiles: vec![(0.5, p50), (0.9, p90), (0.95, p90 * 1.1), (0.99, p90 * 1.3)],
    }
}

/// Feeds forecasts every 15 s and an actual series `actual(ts)`, one sample per 15 s.
fn run(
    t: &mut AccuracyTracker,
    from: i64,
    to: i64,
    f: impl Fn(i64) -> (f64, f64),
    actual: impl Fn(i64) -> f64,
) {
    let key = SeriesKey::new("rps");
    let mut ts = from;
    while ts < to {
        t.observe(&key, ts, actual(ts));
        let (p50, p90) = f(ts);
        t.record(&fc(ts, p50, p90));
        ts += 15;
    }
}

#[test]
fn prior_until_enough_scores() {
    let mut t = AccuracyTracker::new(AccuracyConfig::default());
    let key = SeriesKey::new("rps");
    assert_eq!(t.weight(&key), 0.5);
    run(&mut t, 0, 120, |_| (100.0, 110.0), |_| 100.0);
    let s = t.stats(&key);
    assert!(s.scored > 0 && s.scored < 5, "{s:?}");
    assert_eq!(t.weight(&key), 0.5);
}

#[test]
fn accurate_model_is_trusted() {
    let mut t = AccuracyTracker::new(AccuracyConfig::default());
    run(&mut t, 0, 3600, |_| (100.0, 110.0), |_| 100.0);
    let key = SeriesKey::new("rps");
    let s = t.stats(&key);
    assert!(s.scored > 200, "{s:?}");
    assert!(
        s.wape.unwrap() < 1e-9 && s.coverage_p90 == Some(1.0),
        "{s:?}"
    );
    assert_eq!(t.weight(&key), 1.0);
}

#[test]
fn wrong_model_is_rated_zero() {
    let mut t = AccuracyTracker::new(AccuracyConfig::default());
    run(&mut t, 0, 3600, |_| (100.0, 110.0), |_| 100.0);
    // Demand doubles and the model keeps forecasting the old level.
    run(&mut t, 3600, 7200, |_| (100.0, 110.0), |_| 200.0);
    let key = SeriesKey::new("rps");
    let s = t.stats(&key);
    assert!(s.wape.unwrap() > 0.45, "{s:?}");
    assert!(s.coverage_p90.unwrap() < 0.1, "{s:?}");
    assert_eq!(t.weight(&key), 0.0);
}

#[test]
fn under_coverage_alone_reduces_weight() {
    let mut t = AccuracyTracker::new(AccuracyConfig::default());
    // Median spot on, but p90 below the actual peak every time: WAPE 0, coverage 0.
    run(
        &mut t,
        0,
        3600,
        |_| (100.0, 100.0),
        |ts| if ts % 60 == 0 { 101.0 } else { 100.0 },
    );
    let key = SeriesKey::new("rps");
    let s = t.stats(&key);
    assert!(s.wape.unwrap() < 0.02, "{s:?}");
    assert!(s.coverage_p90.unwrap() < 0.1, "{s:?}");
    assert_eq!(t.weight(&key), 0.0);
}

#[test]
fn peak_is_the_max_over_the_window_and_gaps_are_skipped() {
    let mut t = AccuracyTracker::new(AccuracyConfig {
        min_scored: 1,
        ..Default::default()
    });
    let key = SeriesKey::new("rps");
    t.record(&fc(0, 100.0, 120.0));
    t.observe(&key, 0, 999.0); // at the origin: not in (0, 60]
    t.observe(&key, 15, 80.0);
    t.observe(&key, 30, f64::NAN);
    t.observe(&key, 45, 100.0);
    assert_eq!(t.stats(&key).scored, 0);
    t.observe(&key, 60, 90.0);
    let s = t.stats(&key);
    assert_eq!(s.scored, 1);
    assert_eq!(s.wape, Some(0.0));
    assert_eq!(s.pending, 0);
    // A window with no values at all is dropped, not scored as zero.
    t.record(&fc(60, 100.0, 120.0));
    t.observe(&key, 200, 100.0);
    assert_eq!(t.stats(&key).scored, 1);
}

#[test]
fn unusable_and_out_of_order_forecasts_are_ignored_and_clock_going_back_resets() {
    let mut t = AccuracyTracker::new(AccuracyConfig {
        min_scored: 1,
        ..Default::default()
    });
    let key = SeriesKey::new("rps");
    assert!(!t.record(&fc(0, f64::NAN, 1.0)));
    let mut empty = fc(0, 1.0, 1.0);
    empty.quantiles.clear();
    assert!(!t.record(&empty));
    assert!(t.record(&fc(100, 1.0, 1.0)));
    assert!(t.record(&fc(100, 2.0, 2.0)));
    assert_eq!(t.stats(&key).pending, 1);
    assert!(!t.record(&fc(50, 1.0, 1.0)), "older origin");
    t.observe(&key, 130, 2.0);
    assert!(!t.record(&fc(60, 1.0, 1.0)), "window already past");
    t.observe(&key, 160, 2.0);
    assert_eq!(t.stats(&key).scored, 1);
    assert_eq!(
        t.stats(&key).wape,
        Some(0.0),
        "scored against the replacement"
    );
    // A replay restarting at t=0 drops what was held and accepts early origins again.
    assert!(t.record(&fc(200, 1.0, 1.0)));
    t.observe(&key, 10, 1.0);
    assert_eq!(t.stats(&key).pending, 0);
    assert!(t.record(&fc(10, 1.0, 1.0)));
}

#[test]
fn pending_is_bounded() {
    let mut t = AccuracyTracker::new(AccuracyConfig {
        max_pending: 3,
        ..Default::default()
    });
    for at in 0..10 {
        t.record(&fc(at, 1.0, 1.0));
    }
    assert_eq!(t.stats(&SeriesKey::new("rps")).pending, 3);
}

#[test]
fn config_validation_names_the_key() {
    AccuracyConfig::default().validate().unwrap();
    let bad = AccuracyConfig {
        bad_wape: 0.1,
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("bad_wape"));
    let bad = AccuracyConfig {
        alpha: 0.0,
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("alpha"));
    let c: AccuracyConfig = toml::from_str("good_wape = 0.2").unwrap();
    assert_eq!(c.good_wape, 0.2);
    assert_eq!(c.bad_wape, 0.5);
}

/// The obvious implementation: keep every sample, rescan each window when it is due.
#[derive(Default)]
struct Naive {
    listening: bool,
    last_at: Option<i64>,
    samples: Vec<(i64, f64)>,
    pending: Vec<(i64, i64, f64, f64)>,
    s: SeriesAccuracy,
}

impl Naive {
    fn record(&mut self, at: i64, window: i64, p50: f64, p90: f64) {
        self.listening = true;
        if self.samples.last().is_some_and(|l| l.0 >= at + window) {
            return;
        }
        match self.last_at {
            Some(l) if l == at && self.pending.last().is_some_and(|p| p.0 == at) => {
                self.pending.pop();
            }
            Some(l) if l > at => return,
            _ => {}
        }
        self.last_at = Some(at);
        self.pending.push((at, at + window, p50, p90));
    }

    fn settle(&mut self, upto: i64) {
        let (due, keep): (Vec<_>, Vec<_>) = self.pending.iter().partition(|p| p.1 <= upto);
        self.pending = keep;
        for (at, end, p50, p90) in due {
            let peak = self
                .samples
                .iter()
                .filter(|s| s.0 > at && s.0 <= end)
                .map(|s| s.1)
                .fold(f64::NAN, f64::max);
            if peak.is_finite() {
                self.s.score(peak, p50, p90, 0.1);
            }
        }
    }

    fn observe(&mut self, ts: i64, v: f64) {
        if !self.listening {
            return;
        }
        self.settle(ts - 1);
        self.samples.push((ts, v));
        self.settle(ts);
    }
}

proptest! {
    /// The monotonic-queue peak gives exactly what rescanning every window gives.
    #[test]
    fn sliding_peak_matches_naive(
        steps in proptest::collection::vec((1i64..40, 0.0f64..1000.0, 0usize..3, 0i64..20, any::<bool>()), 1..300)
    ) {
        let mut t = AccuracyTracker::new(AccuracyConfig { max_pending: 100_000, ..Default::default() });
        let mut n = Naive::default();
        let key = SeriesKey::new("rps");
        let mut ts = 0;
        for (dt, v, w, lag, rec) in steps {
            ts += dt;
            t.observe(&key, ts, v);
            n.observe(ts, v);
            if rec {
                let window = [30, 60, 90][w];
                let (p50, p90) = (v * 0.9, v * 1.2);
                let mut f = fc(ts - lag, p50, p90);
                f.window = window;
                t.record(&f);
                n.record(ts - lag, window, f.quantile(0.5).unwrap(), f.quantile(0.9).unwrap());
            }
        }
        let s = t.stats(&key);
        prop_assert_eq!(s.scored, n.s.scored);
        if let (Some(a), Some(b)) = (s.wape, n.s.wape()) {
            prop_assert!((a - b).abs() < 1e-9 || (a.is_infinite() && b.is_infinite()), "{} vs {}", a, b);
        }
        prop_assert_eq!(s.coverage_p90.map(|c| (c * 1e9).round()), (n.s.scored > 0).then(|| (n.s.covered * 1e9).round()));
    }

    #[test]
    fn weight_is_always_in_unit_interval(
        vals in proptest::collection::vec((-1e6f64..1e6, -1e6f64..1e6, prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -1e6f64..1e6]), 1..200)
    ) {
        let mut t = AccuracyTracker::new(AccuracyConfig { min_scored: 1, ..Default::default() });
        let key = SeriesKey::new("rps");
        for (i, (p50, p90, actual)) in vals.into_iter().enumerate() {
            let ts = i as i64 * 15;
            t.observe(&key, ts, actual);
            t.record(&fc(ts, p50, p90));
            let w = t.weight(&key);
            prop_assert!((0.0..=1.0).contains(&w), "weight {w}");
        }
    }
}

proptest! {
    /// `update` is `observe` of each sample then `record`, with one look-up: the same scores
    /// and holdings step by step, whether the series is new (its samples before its first
    /// forecast are not seen), a forecast is refused (a NaN median) or none comes.
    #[test]
    fn update_is_observe_of_each_sample_then_record(
        steps in proptest::collection::vec(
            (
                0usize..3,
                proptest::option::of((0.0f64..100.0, 0.0f64..50.0, 0i64..3)),
                0.0f64..100.0,
            ),
            1..60,
        ),
    ) {
        let key = SeriesKey::new("rps");
        let mut calls = AccuracyTracker::new(AccuracyConfig::default());
        let mut one = AccuracyTracker::new(AccuracyConfig::default());
        let mut ts = 0;
        for (n, f, v) in steps {
            let samples: Vec<(i64, f64)> = (0..n)
                .map(|k| {
                    ts += 15;
                    (ts, v + 7.0 * k as f64)
                })
                .collect();
            // An origin before this step's samples too, so that samples a new series must
            // not see would fall in its window.
            let f = f.map(|(p50, up, lag)| {
                let p50_or_nan = if p50 > 90.0 { f64::NAN } else { p50 };
                fc(ts - 15 * lag, p50_or_nan, p50 + up)
            });
            for &(t, v) in &samples {
                calls.observe(&key, t, v);
            }
            if let Some(f) = &f {
                calls.record(f);
            }
            one.update(&key, samples, f.as_ref());
            prop_assert_eq!(calls.len(), one.len());
            prop_assert_eq!(calls.stats(&key), one.stats(&key));
        }
    }
}
