use super::*;
use crate::forecast::Forecast;
use crate::plan::{ReplicaPlanner, WorkloadInput, WorkloadSpec};
use crate::series::SeriesKey;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Feeds `n` steps in which demand `y` is drawn by `draw` and the model's base quantile is
/// `base(y-free)`: short when `y > base × margin`. Returns the realised share.
fn stream(
    cal: &mut Calibrator,
    n: usize,
    mut step: impl FnMut(&mut ChaCha8Rng) -> (f64, f64),
) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut shorts = 0usize;
    for t in 0..n {
        let (base, y) = step(&mut rng);
        let short = y > base * cal.margin();
        shorts += usize::from(short);
        cal.observe(t as i64 * 60, short);
    }
    shorts as f64 / n as f64
}

/// A model whose p99 is 30 % too low (it forecasts 0.7 × the true p99 of a log-normal
/// demand): at margin 1 it would be short about 9 % of steps; the calibrator brings the
/// share to the 1 % budget and the margin to about 1 / 0.7.
#[test]
fn a_forecast_30_percent_too_low_converges_to_the_budget() {
    let mut cal = Calibrator::new(0.01, DEFAULT_GAMMA, DEFAULT_SHORT_WINDOW);
    // ln y ~ N(ln 100, 0.3²): the true p99 is 100 · e^{0.3 · 2.326}.
    let true_p99 = 100.0 * (0.3f64 * 2.326).exp();
    let normal = |rng: &mut ChaCha8Rng| -> f64 {
        // Box–Muller.
        let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let n = 40_000;
    let share = stream(&mut cal, n, |rng| {
        (0.7 * true_p99, 100.0 * (0.3 * normal(rng)).exp())
    });
    assert!((share - 0.01).abs() < 0.002, "realised {share}");
    assert!(
        (cal.margin() - 1.0 / 0.7).abs() < 0.12,
        "margin {} should be near {}",
        cal.margin(),
        1.0 / 0.7
    );
    // The window holds the last 7 days (10,080 one-minute steps), not all 40,000.
    let recent = cal.realised().unwrap();
    assert!((recent - 0.01).abs() < 0.004, "windowed {recent}");
    assert!(
        cal.window.counts().0 <= 10_080 + 60,
        "{:?}",
        cal.window.counts()
    );
}

/// Heavy-tailed noise (Pareto, tail index 1.5: infinite variance) around a forecast that
/// assumes a light tail: still the budget's share, at a 2 % budget too.
#[test]
fn heavy_tailed_noise_converges_to_the_budget() {
    for budget in [0.01, 0.02] {
        let mut cal = Calibrator::new(budget, DEFAULT_GAMMA, DEFAULT_SHORT_WINDOW);
        let share = stream(&mut cal, 40_000, |rng| {
            let u: f64 = rng.gen_range(1e-12..1.0);
            let pareto = u.powf(-1.0 / 1.5); // ≥ 1, P(X > x) = x^-1.5
            (500.0, 50.0 * pareto)
        });
        assert!(
            (share - budget).abs() < 0.2 * budget,
            "budget {budget}: realised {share}, margin {}",
            cal.margin()
        );
    }
}

/// A model far too wide (its p99 is 3× what arrives): the margin falls below 1, so the
/// budget is met at less cost than the quantile named.
#[test]
fn a_forecast_too_wide_gets_cheaper() {
    let mut cal = Calibrator::new(0.01, DEFAULT_GAMMA, DEFAULT_SHORT_WINDOW);
    let share = stream(&mut cal, 40_000, |rng| (300.0, rng.gen_range(50.0..100.0)));
    assert!(cal.margin() < 0.4, "margin {}", cal.margin());
    assert!(share <= 0.012, "realised {share}");
}

proptest! {
    /// The two-sided long-run bound, for any sequence of log-scores `s_t = ln(y_t / base_t)`
    /// in `[−B, B]` (adversarial, not random: proptest picks them): the step is short when
    /// `s_t > θ_t`, and after `T` steps `|realised − α'| ≤ (B + γ) / (γ T)` for the margin's
    /// aim `α' = α (1 − RESERVE)`, which is the
    /// Gibbs–Candès ACI bound `(max(α₁, 1 − α₁) + γ) / (γ T)` in log-margin form (here
    /// `θ₁ = 0` and the clamps never bind since `B + γ < −THETA_MIN`).
    #[test]
    fn realised_share_is_within_the_bound(
        scores in proptest::collection::vec(-1.2f64..1.2, 1..3000),
        budget in 0.005f64..0.3,
        gamma in 0.005f64..0.15,
    ) {
        let b = 1.2;
        let mut cal = Calibrator::new(budget, gamma, DEFAULT_SHORT_WINDOW);
        let mut shorts = 0u64;
        for s in &scores {
            let short = *s > cal.theta();
            shorts += u64::from(short);
            cal.update(short);
        }
        let t = scores.len() as f64;
        let realised = shorts as f64 / t;
        let bound = (b + gamma) / (gamma * t);
        let aim = budget * (1.0 - RESERVE);
        prop_assert!((realised - aim).abs() <= bound + 1e-12,
            "realised {realised} budget {budget} bound {bound}");
        prop_assert_eq!(cal.totals(), (scores.len() as u64, shorts));
    }

    /// The one-sided bound the planner relies on: shorts may come from anything (guards,
    /// boot delays: here arbitrary) but never once the margin is above `e^{θ*}` (assumption
    /// A); then realised ≤ α + slack(θ*) whatever else happens.
    #[test]
    fn one_sided_bound_under_assumption_a(
        shorts_wanted in proptest::collection::vec(any::<bool>(), 1..3000),
        theta_star in 0.0f64..1.3,
        budget in 0.005f64..0.2,
    ) {
        let mut cal = Calibrator::new(budget, DEFAULT_GAMMA, DEFAULT_SHORT_WINDOW);
        let mut shorts = 0u64;
        for &want in &shorts_wanted {
            let short = want && cal.theta() < theta_star;
            shorts += u64::from(short);
            cal.update(short);
        }
        let realised = shorts as f64 / shorts_wanted.len() as f64;
        prop_assert!(realised <= budget + cal.slack(theta_star) + 1e-12,
            "realised {realised} budget {budget} slack {}", cal.slack(theta_star));
    }
}

#[test]
fn the_window_forgets_old_steps_and_repeated_steps_count_once() {
    let mut cal = Calibrator::new(0.01, DEFAULT_GAMMA, 3_600);
    // One short step, then an hour and a half of steps that are not.
    cal.observe(0, true);
    cal.observe(0, true);
    assert_eq!(cal.totals(), (1, 1), "a repeated timestamp is one step");
    for k in 1..=90 {
        cal.observe(k * 60, false);
    }
    assert_eq!(
        cal.realised(),
        Some(0.0),
        "the short step left the 1h window"
    );
    assert_eq!(cal.totals(), (91, 1));
    cal.observe(30, true);
    assert_eq!(cal.totals(), (91, 1), "an older timestamp is ignored");
}

fn spec(max_short: Option<f64>) -> WorkloadSpec {
    let mut s = WorkloadSpec::new("api", "rps", 10.0, 100);
    s.max_short = max_short;
    s
}

#[test]
fn tracker_counts_overload_against_full_capacity() {
    let mut t = RiskTracker::new();
    let mut s = spec(Some(0.01));
    s.target_utilization = Some(0.5);
    assert_eq!(t.level(&s).map(|l| (l.base, l.margin)), Some((0.99, 1.0)));
    // 45 on 5 replicas of 10 is busy (above the 50 % target) but not short.
    t.observe(&s, 60, Some(45.0), 5);
    assert_eq!(t.calibrator("api").unwrap().totals(), (1, 0));
    t.observe(&s, 120, Some(50.5), 5);
    t.observe(&s, 180, None, 5);
    t.observe(&s, 240, Some(f64::NAN), 5);
    assert_eq!(t.calibrator("api").unwrap().totals(), (2, 1));
    let l = t.level(&s).unwrap();
    assert!(l.margin > 1.0 && l.realised == Some(0.5), "{l:?}");
    // A new budget starts afresh; no budget, no calibrator.
    s.max_short = Some(0.05);
    t.observe(&s, 300, Some(1.0), 5);
    assert_eq!(t.calibrator("api").unwrap().totals(), (1, 0));
    let none = spec(None);
    assert_eq!(t.level(&none), None);
    t.observe(&none, 360, Some(1.0), 5);
    assert!(t.calibrator("api").is_none());
}

/// The planner provisions at the budget's level times the margin and says so.
#[test]
fn planner_provisions_at_the_calibrated_level_and_says_so() {
    let s = spec(Some(0.01));
    let f = Forecast {
        key: SeriesKey::new("rps"),
        at: 1_000,
        window: 900,
        quantiles: vec![(0.5, 100.0), (0.9, 150.0), (0.99, 200.0)],
    };
    let risk = RiskLevel {
        base: 0.99,
        margin: 1.2,
        budget: 0.01,
        realised: Some(0.008),
        window: DEFAULT_SHORT_WINDOW,
        floor: None,
    };
    let input = WorkloadInput {
        current_demand: Some(90.0),
        forecast: Some(&f),
        risk: Some(risk),
        ..WorkloadInput::new(1_000, 10)
    };
    let d = ReplicaPlanner::new().plan(&s, &input);
    // 200 × 1.2 = 240 → 24 replicas of 10.
    assert_eq!(d.to, 24, "{d}");
    assert!(
        d.reason
            .starts_with("p99 × 1.20 (budget 1% short, realised 0.80% over 7days) peak 240"),
        "{}",
        d.reason
    );
    // Without the budget, the quantile (p90 by default) as before.
    let plain = WorkloadInput {
        risk: None,
        ..input
    };
    let d = ReplicaPlanner::new().plan(&s, &plain);
    assert_eq!(d.to, 15, "{d}");
    assert!(d.reason.starts_with("p90 peak 150"), "{}", d.reason);
}

/// A series idle at 0.1 that jumps to 100 on 3 % of steps, with no warning in the forecast
/// (its base quantile stays at the idle level): no margin up to the cap helps (4 × 0.2 is
/// still idle), so without the floor 3 % of steps are short. The floor, taken from the
/// demand's own window, brings the share to the 1 % budget, within the ledger's bound.
#[test]
fn bursts_the_forecast_cannot_see_are_met_by_the_demand_floor() {
    let budget = 0.01;
    let mut cal = Calibrator::new(budget, DEFAULT_GAMMA, DEFAULT_SHORT_WINDOW);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (n, base) = (40_000usize, 0.2);
    let mut shorts = 0usize;
    let mut floored = 0usize;
    for t in 0..n {
        // Capacity is decided before the step's demand is known.
        let capacity = (base * cal.margin()).max(cal.floor().unwrap_or(0.0));
        floored += usize::from(cal.floor_level().is_some());
        let y = if rng.gen::<f64>() < 0.03 { 100.0 } else { 0.1 };
        let short = y > capacity;
        shorts += usize::from(short);
        cal.observe_demand(t as i64 * 60, short, Some(y));
    }
    let share = shorts as f64 / n as f64;
    let bound = Calibrator::bound(budget, n as u64, 0);
    assert!(share <= bound, "realised {share}, bound {bound}");
    assert!(share >= 0.5 * budget, "it spends the budget: {share}");
    assert!(floored > n / 2, "the floor carried it: {floored} of {n}");
}

/// The regime change that `nab_grok_asg_anomaly` showed: a long calm stretch on which the
/// forecast is far too wide (the margin settles at its lower clamp), then bursts the forecast
/// does not see. The floor answers the first short steps over the budget, whatever the margin:
/// at most `MAX_CREDIT + 1/γ_f + 1` short steps beyond the budget's allowance, where the margin
/// alone (climbing `(θ_max − θ_min)/γ` ≈ 55 short steps before the first design's floor) spent
/// some 1.7 % of a 3,000-step trace.
#[test]
fn a_regime_change_after_a_calm_stretch_engages_the_floor_within_a_few_steps() {
    let budget = 0.01;
    let mut cal = Calibrator::new(budget, DEFAULT_GAMMA, DEFAULT_SHORT_WINDOW);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (calm, n) = (3_500usize, 5_000usize);
    let mut shorts = 0usize;
    for t in 0..n {
        // Calm: demand 30–40 against a base of 200 (never short, even at the lowest margin).
        // Then: idle with bursts to 12 every 20 steps, against a base of 0.5 (the forecast
        // sees the idle level only; 4 × 0.5 is still far below a burst).
        let (base, y) = if t < calm {
            (200.0, rng.gen_range(30.0..40.0))
        } else if t % 20 == 0 {
            (0.5, 12.0)
        } else {
            (0.5, 0.3)
        };
        let capacity = (base * cal.margin()).max(cal.floor().unwrap_or(0.0));
        let short = y > capacity;
        shorts += usize::from(short);
        cal.observe_demand(t as i64 * 300, short, Some(y));
        if t + 1 == calm {
            assert!(
                (cal.theta() - THETA_MIN).abs() < 1e-9,
                "settled low: {}",
                cal.theta()
            );
            assert_eq!(shorts, 0);
        }
    }
    // Over the new regime: its own allowance, the banked credit, and 1/γ_f + 1 at most.
    let allowed = budget * (n - calm) as f64 + MAX_CREDIT + 1.0 / GAMMA_FLOOR + 1.0;
    assert!(
        shorts as f64 <= allowed,
        "{shorts} short steps in the new regime, allowed {allowed}"
    );
    assert!(shorts >= 5, "the bursts did hit before the floor: {shorts}");
}

/// The floor is engaged by the budget's ledger: the first short step over the budget turns it
/// on at the window's `1 − 2α` quantile (whatever the margin), more of them raise it, and once
/// the steps stop being short it goes when the ledger is back at zero.
#[test]
fn the_floor_follows_the_budget_ledger() {
    let mut cal = Calibrator::new(0.01, DEFAULT_GAMMA, DEFAULT_SHORT_WINDOW);
    let mut t = 0i64;
    let mut step = |cal: &mut Calibrator, short: bool| {
        t += 60;
        cal.observe_demand(t, short, Some(if short { 100.0 } else { 1.0 }));
    };
    step(&mut cal, true);
    assert!((cal.debt() - 0.99).abs() < 1e-12, "{}", cal.debt());
    let lvl = cal.floor_level().unwrap();
    assert!((0.98..0.99).contains(&lvl), "engaged at {lvl}");
    assert!(
        cal.margin() < 1.1,
        "the margin only moved by γ: {}",
        cal.margin()
    );
    step(&mut cal, true);
    assert!(cal.floor_level().unwrap() > lvl, "a short step raises it");
    for _ in 0..3 {
        step(&mut cal, true);
    }
    assert_eq!(
        cal.floor_level(),
        Some(1.0),
        "past 1/γ_f over: the window's maximum"
    );
    let top = cal.floor().unwrap();
    assert!((100.0..=102.0).contains(&top), "{top}");
    let mut quiet = 0;
    while cal.floor_level().is_some() {
        step(&mut cal, false);
        quiet += 1;
    }
    // A ledger of 5 × 0.99 paid off at α = 0.01 a step: 495 quiet steps.
    assert!((494..=496).contains(&quiet), "{quiet}");
    // Credit is banked up to MAX_CREDIT steps only.
    for _ in 0..5_000 {
        step(&mut cal, false);
    }
    assert!((cal.debt() + MAX_CREDIT).abs() < 1e-9, "{}", cal.debt());
}

proptest! {
    /// The ledger's bound for any sequence of would-be short steps and any margin: a step can
    /// be short only if the floor stood below the window's maximum when its capacity was
    /// decided, `lag + 1` steps before (assumption A'); then the realised share since start is
    /// at most `Calibrator::bound`.
    #[test]
    fn the_ledger_bounds_the_realised_share(
        want in proptest::collection::vec(any::<bool>(), 1..3000),
        budget in 0.005f64..0.2,
        lag in 0u64..4,
    ) {
        let mut cal = Calibrator::new(budget, DEFAULT_GAMMA, DEFAULT_SHORT_WINDOW);
        // Whether the floor stood at the window's maximum at each decision, oldest first: the
        // decision made after observing step t serves step t + lag + 1.
        let mut at_max: std::collections::VecDeque<bool> = std::collections::VecDeque::new();
        let mut shorts = 0u64;
        for (t, &w) in want.iter().enumerate() {
            let decided_at_max = if at_max.len() > lag as usize {
                at_max.pop_front().unwrap_or(false)
            } else {
                false
            };
            let short = w && !decided_at_max;
            shorts += u64::from(short);
            cal.observe_demand(t as i64, short, Some(if w { 10.0 } else { 1.0 }));
            at_max.push_back(cal.floor_level() == Some(1.0));
        }
        let n = want.len() as u64;
        let realised = shorts as f64 / n as f64;
        let bound = Calibrator::bound(budget, n, lag);
        prop_assert!(realised <= bound + 1e-12, "realised {realised} bound {bound}");
    }
}

/// With a budget, a poorly rated forecast counts in full (as every forecast does; the
/// calibrator is the accuracy control), and the demand floor stands even when no forecast can
/// be used.
#[test]
fn the_calibrated_level_is_not_weighed_down_and_the_floor_stands_alone() {
    let s = spec(Some(0.01));
    let f = Forecast {
        key: SeriesKey::new("rps"),
        at: 1_000,
        window: 900,
        quantiles: vec![(0.5, 100.0), (0.9, 150.0), (0.99, 200.0)],
    };
    let risk = RiskLevel {
        base: 0.99,
        margin: 4.0,
        budget: 0.01,
        realised: Some(0.03),
        window: DEFAULT_SHORT_WINDOW,
        floor: Some((0.985, 1_000.0)),
    };
    let input = WorkloadInput {
        current_demand: Some(90.0),
        forecast: Some(&f),
        risk: Some(risk),
        forecast_weight: 0.05,
        ..WorkloadInput::new(1_000, 10)
    };
    // max(200 × 4, floor 1000) = 1000 → 100 replicas of 10, weight 0.05 notwithstanding.
    let d = ReplicaPlanner::new().plan(&s, &input);
    assert_eq!(d.to, 100, "{d}");
    assert!(
        d.reason
            .contains("floor p98.5 of 7days's demand 1000, above the forecast"),
        "{}",
        d.reason
    );
    // No forecast: the reactive need (9) or the floor, whichever is higher.
    let alone = WorkloadInput {
        forecast: None,
        ..input
    };
    let d = ReplicaPlanner::new().plan(&s, &alone);
    assert_eq!(d.to, 100, "{d}");
    // The number comes from the floor, not the reactive need: the reason has to say so.
    assert!(
        d.reason
            .contains("engaged its floor, p98.5 of 7days's demand 1000, needing 100 → 100"),
        "{}",
        d.reason
    );
    // Without a budget the configured quantile, in full too: max(p90 150 → 15, floor 9).
    let plain = WorkloadInput {
        risk: None,
        ..input
    };
    assert_eq!(ReplicaPlanner::new().plan(&s, &plain).to, 15);
}
