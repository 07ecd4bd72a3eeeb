use super::*;
use crate::series::SeriesKey;
use proptest::prelude::*;

fn spec() -> WorkloadSpec {
    let mut s = WorkloadSpec::new("api", "rps", 50.0, 40);
    s.unit = "rps".into();
    s.min_replicas = 2;
    s.boot_time = 120;
    s
}

fn fc(at: i64, p90: f64) -> Forecast {
    Forecast {
        key: SeriesKey::new("rps"),
        at,
        window: 900,
        quantiles: vec![
            (0.5, p90 * 0.8),
            (0.9, p90),
            (0.95, p90 * 1.1),
            (0.99, p90 * 1.3),
        ],
    }
}

fn input(now: i64, current: u32, demand: f64, f: Option<&Forecast>) -> WorkloadInput<'_> {
    WorkloadInput {
        current_demand: Some(demand),
        forecast: f,
        ..WorkloadInput::new(now, current)
    }
}

#[test]
fn scales_up_ahead_of_forecast_peak() {
    let mut p = ReplicaPlanner::new();
    let f = fc(0, 412.0);
    let d = p.plan(&spec(), &input(0, 5, 250.0, Some(&f)));
    assert_eq!((d.kind, d.raw, d.to), (DecisionKind::ScaleUp, 9, 9), "{d}");
    assert!(d.guards.is_empty(), "{d}");
    assert!(
        d.reason
            .starts_with("p90 peak 412 rps over next 15m needs 9 × 50 rps"),
        "{}",
        d.reason
    );
    assert_eq!(d.forecast.as_ref().unwrap().len(), 4);
    assert_eq!(d.current, Some(250.0));
    assert!(!d.reason.contains("boot time"), "{}", d.reason);
    // A horizon shorter than the boot time is used, and flagged.
    let mut s = spec();
    s.boot_time = 1800;
    let d = ReplicaPlanner::new().plan(&s, &input(0, 5, 250.0, Some(&f)));
    assert_eq!(d.to, 9);
    assert!(
        d.reason
            .contains("forecast covers only 15m of the 30m boot time"),
        "{}",
        d.reason
    );
}

#[test]
fn headroom_and_target_utilization_raise_the_need() {
    let mut s = spec();
    s.headroom = 0.25;
    s.target_utilization = Some(0.5);
    let f = fc(0, 400.0);
    // 400 × 1.25 / (50 × 0.5) = 20.
    let d = ReplicaPlanner::new().plan(&s, &input(0, 20, 100.0, Some(&f)));
    assert_eq!(d.raw, 20);
}

#[test]
fn guard_surge_catches_what_the_forecast_missed() {
    let mut p = ReplicaPlanner::new();
    let f = fc(0, 200.0); // forecast says 4
    let d = p.plan(&spec(), &input(0, 5, 600.0, Some(&f)));
    assert_eq!(d.to, 12, "{d}");
    assert!(d.guarded_by(GuardKind::Surge), "{d}");
    assert!(d.reason.contains("surge"), "{}", d.reason);
}

#[test]
fn guard_stale_data_never_scales_down() {
    let mut s = spec();
    s.scale_down_window = 0;
    let f = fc(0, 100.0);
    let mut i = input(0, 10, 100.0, Some(&f));
    i.data_stale = true;
    let d = ReplicaPlanner::new().plan(&s, &i);
    assert_eq!((d.kind, d.raw, d.to), (DecisionKind::Hold, 2, 10), "{d}");
    assert!(d.guarded_by(GuardKind::StaleData), "{d}");
    // It may still scale up on stale data: a surge is a surge.
    let mut i = input(0, 10, 900.0, Some(&f));
    i.data_stale = true;
    assert_eq!(ReplicaPlanner::new().plan(&s, &i).to, 18);
}

#[test]
fn guard_unhealthy_model_ignores_forecast_and_never_scales_down() {
    let mut s = spec();
    s.scale_down_window = 0;
    let f = fc(0, 2000.0);
    let mut i = input(0, 10, 100.0, Some(&f));
    i.model_healthy = false;
    let d = ReplicaPlanner::new().plan(&s, &i);
    assert_eq!((d.raw, d.to), (2, 10), "{d}");
    assert!(d.guarded_by(GuardKind::UnhealthyModel), "{d}");
    assert!(d.reason.contains("model unhealthy"), "{}", d.reason);
}

/// However poorly the tracker rates the forecast, its need counts in full above the floor:
/// the weight is named in the reason, never weighed into the number (module doc).
#[test]
fn any_forecast_weight_counts_the_quantile_in_full() {
    let f = fc(0, 1000.0); // forecast says 20
    let mut i = input(0, 4, 200.0, Some(&f)); // current says 4
    for (w, said) in [
        (
            0.0,
            "forecast weight 0.00, poorly rated, counted in full → 20",
        ),
        (
            0.1,
            "forecast weight 0.10, poorly rated, counted in full → 20",
        ),
        (0.5, "forecast weight 0.50 → 20"),
        (
            f64::NAN,
            "forecast weight 0.00, poorly rated, counted in full → 20",
        ),
    ] {
        i.forecast_weight = w;
        let d = ReplicaPlanner::new().plan(&spec(), &i);
        assert_eq!(d.raw, 20, "weight {w}: {d}");
        assert!(
            d.reason.ends_with(&format!(
                "reactive floor 4 (current 200 rps); forecast above it; {said}"
            )),
            "weight {w}: {}",
            d.reason
        );
    }
    // Fully rated: nothing to say about it.
    i.forecast_weight = 1.0;
    let d = ReplicaPlanner::new().plan(&spec(), &i);
    assert!(d.reason.ends_with("forecast above it → 20"), "{}", d.reason);
}

#[test]
fn nan_forecast_and_expired_forecast_are_not_used() {
    let mut f = fc(0, f64::NAN);
    let d = ReplicaPlanner::new().plan(&spec(), &input(0, 4, 200.0, Some(&f)));
    assert_eq!(d.raw, 4);
    assert!(d.reason.contains("unusable"), "{}", d.reason);
    f = fc(0, 1000.0);
    let d = ReplicaPlanner::new().plan(&spec(), &input(900, 4, 200.0, Some(&f)));
    assert_eq!(d.raw, 4);
    assert!(d.reason.contains("out of date"), "{}", d.reason);
}

#[test]
fn guard_no_signal_holds() {
    let i = WorkloadInput {
        current_demand: Some(f64::NAN),
        ..WorkloadInput::new(0, 7)
    };
    let d = ReplicaPlanner::new().plan(&spec(), &i);
    assert_eq!((d.kind, d.to), (DecisionKind::Hold, 7));
    assert!(d.guarded_by(GuardKind::NoSignal), "{d}");
}

#[test]
fn forecast_without_current_demand_decides_unless_poorly_rated_then_only_adds() {
    let f = fc(0, 1000.0); // 20
    let low = fc(0, 100.0); // 2
    let mut s = spec();
    s.scale_down_window = 0;
    let mut i = WorkloadInput {
        forecast: Some(&f),
        forecast_weight: 0.5,
        ..WorkloadInput::new(0, 10)
    };
    // No floor to guard it: a forecast rated well enough decides, up or down.
    assert_eq!(ReplicaPlanner::new().plan(&s, &i).raw, 20);
    i.forecast = Some(&low);
    let d = ReplicaPlanner::new().plan(&s, &i);
    assert_eq!(d.raw, 2, "{d}");
    assert!(
        d.reason
            .ends_with("forecast weight 0.50; no current demand"),
        "{}",
        d.reason
    );
    // Poorly rated: the running replicas stand in for the floor, so it adds in full...
    i.forecast_weight = 0.2;
    i.forecast = Some(&f);
    let d = ReplicaPlanner::new().plan(&s, &i);
    assert_eq!(d.raw, 20, "{d}");
    // ... and never takes below them.
    i.forecast = Some(&low);
    let d = ReplicaPlanner::new().plan(&s, &i);
    assert_eq!(d.raw, 10, "{d}");
    assert!(
        d.reason.ends_with(
            "forecast weight 0.20, poorly rated, and no current demand: never below the 10 running → 10"
        ),
        "{}",
        d.reason
    );
}

/// Issue #13 item 2: the demo's `api` went 7 → 3 → 8 because the blend weighed a p95 forecast
/// (needs 8) against current demand (needs 1) at weight 0.26, and later 7 → 2 → 8 at weight
/// 0.04 because a poorly rated forecast added only a share of its excess.
#[test]
fn low_forecast_weight_never_provisions_below_the_reactive_or_the_quantile_need() {
    let mut s = spec();
    s.replica_capacity = 25.0;
    s.quantile = 0.95;
    s.min_replicas = 1;
    s.scale_down_window = 0;
    let f = fc(0, 189.0 / 1.1); // p95 189 → needs 8 × 25
    let mut i = input(0, 7, 9.0, Some(&f));
    for (w, said) in [
        (0.26, "forecast weight 0.26"),
        (0.04, "forecast weight 0.04, poorly rated, counted in full"),
    ] {
        i.forecast_weight = w;
        let d = ReplicaPlanner::new().plan(&s, &i);
        assert_eq!((d.raw, d.to), (8, 8), "{d}");
        assert_eq!(
            d.reason,
            format!("p95 peak 189 rps over next 15m needs 8 × 25 rps; reactive floor 1 (current 9 rps); forecast above it; {said} → 8")
        );
    }
    // A poorly rated forecast under current demand: the floor (with headroom) wins, recorded.
    s.headroom = 0.25;
    let f = fc(0, 40.0); // p95 44 × 1.25 = 55 → 3
    let mut i = input(0, 7, 150.0, Some(&f)); // 150 × 1.25 = 187.5 → 8
    i.forecast_weight = 0.05;
    let d = ReplicaPlanner::new().plan(&s, &i);
    assert_eq!((d.raw, d.to), (3, 8), "{d}");
    assert!(d.guarded_by(GuardKind::Surge), "{d}");
    assert!(d.reason.contains("floor wins"), "{}", d.reason);
    assert!(
        d.reason.contains("raised to the reactive floor 8"),
        "{}",
        d.reason
    );
}

#[test]
fn guard_tolerance_stops_flapping() {
    let mut s = spec();
    s.scale_down_window = 0;
    let mut p = ReplicaPlanner::new();
    // Forecast wobbles between 10 and 11 replicas' worth: up to 11 once (the forecast's
    // quantile is provisioned, not held back for a boot time), then the small drops are held.
    let mut current = 10;
    let mut seen = Vec::new();
    for (t, peak) in [(0, 520.0), (15, 480.0), (30, 530.0), (45, 470.0)] {
        let f = fc(t, peak);
        let d = p.plan(&s, &input(t, current, 400.0, Some(&f)));
        if t > 0 {
            assert!(
                d.to == current || !d.guarded_by(GuardKind::Tolerance),
                "{d}"
            );
        }
        current = d.to;
        seen.push(current);
    }
    assert_eq!(seen, [11, 11, 11, 11], "one move, no flapping");
    let f = fc(60, 480.0);
    let d = p.plan(&s, &input(60, 11, 400.0, Some(&f)));
    assert!(d.guarded_by(GuardKind::Tolerance), "{d}");
    // A drop beyond the band goes through.
    let f = fc(75, 300.0);
    assert_eq!(p.plan(&s, &input(75, 11, 290.0, Some(&f))).to, 6);
}

#[test]
fn tolerance_never_holds_a_scale_up() {
    let mut s = spec();
    s.scale_down_window = 0;
    s.tolerance = 0.2;
    let mut p = ReplicaPlanner::new();
    // 10 running, the forecast needs 11 (+10 %, inside the 20 % band), demand needs only 8:
    // scaled up, so the replica is ready when the forecast peak comes.
    let f = fc(0, 530.0);
    let d = p.plan(&s, &input(0, 10, 400.0, Some(&f)));
    assert_eq!(d.to, 11, "{d}");
    assert!(!d.guarded_by(GuardKind::Tolerance), "{d}");
    // Current demand alone asking for one more: scaled up as well.
    let d = p.plan(&s, &input(15, 10, 540.0, None));
    assert_eq!(d.to, 11, "{d}");
}

#[test]
fn guard_stabilization_scales_down_only_after_the_window() {
    let s = spec(); // 5m window
    let mut p = ReplicaPlanner::new();
    let low = fc(0, 200.0); // 4 replicas
    let mut current = 10;
    let mut downs = Vec::new();
    for t in (0..=600).step_by(30) {
        let f = Forecast {
            at: t,
            ..low.clone()
        };
        let d = p.plan(&s, &input(t, current, 150.0, Some(&f)));
        if t < 300 {
            assert_eq!(d.to, 10, "t={t}: {d}");
            assert!(d.guarded_by(GuardKind::Stabilization), "{d}");
            assert!(
                d.reason
                    .contains("held at 10 by 5m scale-down stabilisation"),
                "{}",
                d.reason
            );
        }
        if d.to < current {
            downs.push(t);
        }
        current = d.to;
    }
    assert_eq!(
        downs,
        vec![300],
        "one scale-down, a full window after first sight"
    );
    assert_eq!(current, 4);
}

#[test]
fn stabilization_remembers_a_recent_high() {
    let s = spec();
    let mut p = ReplicaPlanner::new();
    let f_hi = fc(0, 1000.0); // 20
    assert_eq!(p.plan(&s, &input(0, 10, 400.0, Some(&f_hi))).to, 20);
    let f_mid = fc(100, 600.0); // 12
    let d = p.plan(&s, &input(100, 20, 400.0, Some(&f_mid)));
    assert_eq!(d.to, 20, "{d}");
    let f_low = fc(320, 300.0); // 6; the 20 at t=0 has left the window, the 12 at t=100 not
    let d = p.plan(&s, &input(320, 20, 200.0, Some(&f_low)));
    assert_eq!(d.to, 12, "{d}");
    assert!(d.reason.contains("limited to 12"), "{}", d.reason);
}

#[test]
fn clock_going_back_resets_memory() {
    let s = spec();
    let mut p = ReplicaPlanner::new();
    let f = fc(1000, 1000.0);
    p.plan(&s, &input(1000, 10, 400.0, Some(&f)));
    let f = fc(0, 100.0);
    // A fresh first sight at t=0: the high recommendation from t=1000 is gone, current holds.
    let d = p.plan(&s, &input(0, 10, 100.0, Some(&f)));
    assert_eq!(d.to, 10);
    let d = p.plan(&s, &input(300, 10, 100.0, Some(&f)));
    assert_eq!(d.to, 2, "{d}");
}

#[test]
fn guard_max_step() {
    let mut s = spec();
    s.max_step_up = Some(3);
    s.max_step_down = Some(2);
    s.scale_down_window = 0;
    let f = fc(0, 1000.0);
    let d = ReplicaPlanner::new().plan(&s, &input(0, 5, 400.0, Some(&f)));
    assert_eq!((d.raw, d.to), (20, 8), "{d}");
    assert!(
        d.guarded_by(GuardKind::MaxStep) && d.reason.contains("max step +3"),
        "{d}"
    );
    let f = fc(0, 100.0);
    let d = ReplicaPlanner::new().plan(&s, &input(0, 10, 100.0, Some(&f)));
    assert_eq!(d.to, 8, "{d}");
    assert!(d.reason.contains("max step -2"), "{}", d.reason);
}

#[test]
fn guard_bounds() {
    let mut s = spec();
    s.scale_down_window = 0;
    s.max_replicas = 15;
    let f = fc(0, 5000.0);
    let d = ReplicaPlanner::new().plan(&s, &input(0, 10, 400.0, Some(&f)));
    assert_eq!(d.to, 15);
    assert!(
        d.guarded_by(GuardKind::MaxReplicas) && d.reason.contains("capped at max 15"),
        "{d}"
    );
    let f = fc(0, 0.0);
    let d = ReplicaPlanner::new().plan(&s, &input(0, 10, 0.0, Some(&f)));
    assert_eq!(d.to, 2);
    assert!(d.guarded_by(GuardKind::MinReplicas), "{d}");
    // Above max and stale: the user's bound still wins.
    let mut i = input(0, 30, 0.0, Some(&f));
    i.data_stale = true;
    assert_eq!(ReplicaPlanner::new().plan(&s, &i).to, 15);
}

#[test]
fn guard_invalid_spec_holds_and_says_why() {
    let mut s = spec();
    s.replica_capacity = 0.0;
    let d = ReplicaPlanner::new().plan(&s, &input(0, 3, 1e9, None));
    assert_eq!((d.kind, d.to), (DecisionKind::Hold, 3));
    assert!(d.guarded_by(GuardKind::InvalidSpec));
    assert!(d.reason.contains("replica_capacity"), "{}", d.reason);
    s.replica_capacity = 1.0;
    s.min_replicas = 50;
    assert!(ReplicaPlanner::new()
        .plan(&s, &input(0, 3, 1e9, None))
        .guarded_by(GuardKind::InvalidSpec));
}

#[test]
fn huge_demand_saturates_instead_of_overflowing() {
    let mut s = spec();
    s.max_replicas = u32::MAX;
    s.max_step_up = Some(u32::MAX);
    let f = fc(0, 1e300);
    let d = ReplicaPlanner::new().plan(&s, &input(0, u32::MAX - 1, 1e300, Some(&f)));
    assert_eq!(d.to, u32::MAX);
}

fn arb_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0f64..5000.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1.0),
    ]
}

proptest! {
    /// Bounds, freshness, step limits and the reactive floor hold over random sequences.
    #[test]
    fn invariants_hold(
        min in 0u32..10,
        span in 0u32..40,
        step_up in proptest::option::of(1u32..6),
        step_down in proptest::option::of(1u32..6),
        window in prop_oneof![Just(0i64), 30i64..600],
        tolerance in 0.0f64..0.5,
        steps in proptest::collection::vec(
            (arb_f64(), arb_f64(), any::<bool>(), any::<bool>(), -0.5f64..1.5, 0u32..60, 1i64..120),
            1..40,
        ),
    ) {
        let mut s = spec();
        s.min_replicas = min;
        s.max_replicas = (min + span).max(1);
        s.max_step_up = step_up;
        s.max_step_down = step_down;
        s.scale_down_window = window;
        s.tolerance = tolerance;
        prop_assume!(s.validate().is_ok());
        let mut p = ReplicaPlanner::new();
        let mut now = 0;
        for (demand, peak, stale, healthy, w, current, dt) in steps {
            now += dt;
            let f = fc(now, peak);
            let i = WorkloadInput {
                now,
                current_replicas: current,
                current_demand: Some(demand),
                forecast: Some(&f),
                data_stale: stale,
                model_healthy: healthy,
                forecast_weight: w,
                risk: None,
            };
            let d = p.plan(&s, &i);
            prop_assert!(d.to >= s.min_replicas && d.to <= s.max_replicas, "bounds: {d}");
            let in_bounds = current >= s.min_replicas && current <= s.max_replicas;
            if (stale || !healthy) && current <= s.max_replicas {
                prop_assert!(d.to >= current, "scaled down on stale/unhealthy: {d}");
            }
            if in_bounds {
                if let Some(u) = step_up {
                    prop_assert!(d.to <= current + u, "step up: {d}");
                }
                if let Some(dn) = step_down {
                    prop_assert!(d.to + dn >= current, "step down: {d}");
                }
            }
            if demand.is_finite() && demand >= 0.0 {
                let reactive = need(demand * (1.0 + s.headroom), s.effective_capacity());
                let cap = s.max_replicas.min(step_up.map_or(u32::MAX, |u| current.saturating_add(u)));
                prop_assert!(d.to >= reactive.min(cap), "below reactive {reactive}: {d}");
            }
            let expect = match d.to.cmp(&current) {
                std::cmp::Ordering::Greater => DecisionKind::ScaleUp,
                std::cmp::Ordering::Less => DecisionKind::ScaleDown,
                std::cmp::Ordering::Equal => DecisionKind::Hold,
            };
            prop_assert_eq!(d.kind, expect);
            prop_assert!(!d.reason.is_empty());
            for g in &d.guards {
                prop_assert!(g.before != g.after || g.kind == GuardKind::NoSignal, "no-op guard {g}");
            }
        }
    }
}

proptest! {
    /// The forecast only ever adds above the reactive floor, and in full: the number is the
    /// larger of the two needs at every weight, so no weight can take it below the quantile
    /// the user chose. Guards that could move the number (tolerance, stabilisation, steps)
    /// are off so the raw combination shows.
    #[test]
    fn the_number_is_the_larger_need_at_any_weight(
        demand in 0.0f64..5000.0,
        peak in 0.0f64..5000.0,
        headroom in 0.0f64..1.0,
        w in 0.0f64..=1.0,
        current in 0u32..200,
    ) {
        let mut s = spec();
        s.min_replicas = 0;
        s.max_replicas = 1000;
        s.tolerance = 0.0;
        s.scale_down_window = 0;
        s.headroom = headroom;
        let f = fc(0, peak);
        let floor = need(demand * (1.0 + headroom), s.effective_capacity());
        let fneed = need(peak * (1.0 + headroom), s.effective_capacity());
        let mut i = input(0, current, demand, Some(&f));
        i.forecast_weight = w;
        let d = ReplicaPlanner::new().plan(&s, &i);
        prop_assert_eq!(d.to, floor.max(fneed), "weight {}: {}", w, d);
    }
}

fn with_event(from: i64, to: i64, floor: u32) -> WorkloadSpec {
    let mut s = spec();
    s.events = vec![crate::plan::Event {
        name: Some("launch".into()),
        from,
        to,
        floor,
    }];
    s
}

#[test]
fn event_floor_applies_from_start_minus_boot_time_until_end() {
    // Boot time 120 s, event 10_000..20_000, floor 30; current demand needs 4 (200 / 50).
    let s = with_event(10_000, 20_000, 30);
    for (now, want) in [
        (9_879, 4),
        (9_880, 30),
        (10_000, 30),
        (19_999, 30),
        (20_000, 4),
    ] {
        let mut p = ReplicaPlanner::new();
        let mut s = s.clone();
        s.scale_down_window = 0;
        let d = p.plan(&s, &input(now, 4, 200.0, None));
        assert_eq!(d.to, want, "at {now}: {d}");
        let has = d.guards.iter().any(|g| g.kind == GuardKind::EventFloor);
        assert_eq!(has, want == 30, "at {now}: {d}");
        if want == 30 {
            assert!(d.reason.contains("event floor 30 by event 'launch'"), "{d}");
        }
    }
}

#[test]
fn event_floor_never_lowers_a_higher_number() {
    let s = with_event(0, 1_000, 5);
    let mut p = ReplicaPlanner::new();
    // Demand 600 needs 12 > floor 5.
    let d = p.plan(&s, &input(100, 12, 600.0, None));
    assert_eq!(d.to, 12, "{d}");
    assert!(
        d.guards.iter().all(|g| g.kind != GuardKind::EventFloor),
        "{d}"
    );
}

#[test]
fn event_floor_beats_tolerance_and_max_step_but_max_replicas_caps_it() {
    let mut s = with_event(0, 1_000, 50);
    s.max_step_up = Some(2);
    let mut p = ReplicaPlanner::new();
    let d = p.plan(&s, &input(100, 4, 200.0, None));
    // Raised to 50 by the event, then capped at max_replicas 40, both recorded.
    assert_eq!(d.to, 40, "{d}");
    let kinds: Vec<_> = d.guards.iter().map(|g| g.kind).collect();
    assert_eq!(
        kinds,
        vec![GuardKind::EventFloor, GuardKind::MaxReplicas],
        "{d}"
    );
    assert!(d.reason.contains("capped at max 40"), "{d}");
    // Within tolerance of current (10 % of 30 = 3): the floor still wins.
    let s = with_event(0, 1_000, 31);
    let d = ReplicaPlanner::new().plan(&s, &input(100, 30, 100.0, None));
    assert_eq!(d.to, 31, "{d}");
}

#[test]
fn invalid_event_is_named_by_key() {
    let s = with_event(100, 50, 3);
    let e = s.validate().unwrap_err().to_string();
    assert!(
        e.contains("events[0]") && e.contains("must be after"),
        "{e}"
    );
}
