//! The scale planner: how many replicas a workload should have when new ones would be ready.
//!
//! One cycle per workload:
//!
//! 1. **Raw number.** Predictive need `ceil(q-quantile of forecast peak × (1 + headroom) /
//!    capacity)` is blended with the reactive need `ceil(current demand / capacity)` by the
//!    forecast's measured accuracy weight `w`: `ceil(w·predictive + (1−w)·reactive)`. A model
//!    that has been wrong lately (low `w`) therefore fades to plain reactive scaling, and an
//!    unhealthy model counts for nothing.
//! 2. **Guards**, in this order, each recorded when it changes the number:
//!    surge (never below the reactive need, so a spike the forecast missed is still caught) →
//!    stale data / unhealthy model (no scale-down) → tolerance band (hold small changes, unless
//!    current demand already needs more) → scale-down stabilisation (HPA-style: scale down only
//!    to the highest recommendation of the window; a workload seen for the first time counts
//!    its current replicas as that window's history, so nothing shrinks before a full window
//!    of evidence) → maximum step → min/max bounds (last, because they are the user's policy).

use super::decision::{num, Decision, DecisionKind, Guard, GuardKind};
use super::spec::WorkloadSpec;
use crate::forecast::Forecast;
use crate::series::format_duration;
use std::collections::{HashMap, VecDeque};

/// What the planner knows about one workload at one instant.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadInput<'a> {
    /// Now, Unix seconds (the caller's clock: wall time live, replay time in the simulator).
    pub now: i64,
    /// Replicas running (or requested) now.
    pub current_replicas: u32,
    /// Current demand in the demand series' units; `None` or non-finite when unknown.
    pub current_demand: Option<f64>,
    /// The forecast of peak demand; its window should cover the workload's boot time.
    pub forecast: Option<&'a Forecast>,
    /// The demand data are stale (collector lagging or failing): never scale down on them.
    pub data_stale: bool,
    /// The forecasting model is healthy; when false its forecast is ignored and nothing shrinks.
    pub model_healthy: bool,
    /// How much the forecast counts, 0..=1, usually [`AccuracyTracker::weight`](super::AccuracyTracker::weight).
    pub forecast_weight: f64,
}

impl<'a> WorkloadInput<'a> {
    /// An input with no demand and no forecast, fresh data, a healthy model and full trust; set
    /// the fields that apply.
    pub fn new(now: i64, current_replicas: u32) -> Self {
        WorkloadInput {
            now,
            current_replicas,
            current_demand: None,
            forecast: None,
            data_stale: false,
            model_healthy: true,
            forecast_weight: 1.0,
        }
    }
}

/// Scale-down memory of one workload: recommendations of the last window as a monotonic
/// queue (timestamps ascending, values strictly descending), so the window maximum is the
/// front and memory stays small whatever the planning interval.
#[derive(Debug, Clone, Default)]
struct History {
    recs: VecDeque<(i64, u32)>,
}

impl History {
    fn push(&mut self, at: i64, n: u32) {
        while self.recs.back().is_some_and(|&(_, v)| v <= n) {
            self.recs.pop_back();
        }
        self.recs.push_back((at, n));
    }

    fn prune(&mut self, now: i64, window: i64) {
        let oldest = now.saturating_sub(window);
        while self.recs.front().is_some_and(|&(t, _)| t <= oldest) {
            self.recs.pop_front();
        }
    }

    fn max(&self) -> Option<u32> {
        self.recs.front().map(|&(_, v)| v)
    }
}

/// Plans replicas for workloads, remembering what each needs for scale-down stabilisation.
///
/// Keep one per run (live loop or simulation) and call [`plan`](Self::plan) once per workload
/// per interval.
#[derive(Debug, Clone, Default)]
pub struct ReplicaPlanner {
    history: HashMap<String, History>,
    last_seen: HashMap<String, i64>,
}

/// Replicas needed to serve `demand` at `capacity` per replica, rounding up but forgiving the
/// float noise that would turn an exact 4.0 into 5.
fn need(demand: f64, capacity: f64) -> u32 {
    let n = (demand / capacity - 1e-9).ceil();
    if n.is_nan() || n <= 0.0 {
        0
    } else if n >= u32::MAX as f64 {
        u32::MAX
    } else {
        n as u32
    }
}

/// Why the forecast did not count, for the reason line.
enum ForecastUse {
    Used { q: f64, n: u32 },
    Ignored(&'static str),
}

impl ReplicaPlanner {
    /// A planner with no memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the memory of workloads no longer configured.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.history.retain(|k, _| keep(k));
        self.last_seen.retain(|k, _| keep(k));
    }

    /// One planning cycle for one workload.
    pub fn plan(&mut self, spec: &WorkloadSpec, input: &WorkloadInput) -> Decision {
        let now = input.now;
        let current = input.current_replicas;
        let demand = input.current_demand.filter(|d| d.is_finite() && *d >= 0.0);
        let forecast_quantiles = input.forecast.map(|f| f.quantiles.clone());
        let mut decision = Decision {
            at: now,
            kind: DecisionKind::Hold,
            target: spec.name.clone(),
            node: None,
            to_node: None,
            from: current,
            to: current,
            raw: current,
            forecast: forecast_quantiles,
            current: demand,
            guards: Vec::new(),
            reason: String::new(),
        };
        if let Err(e) = spec.validate() {
            decision.guards.push(Guard {
                kind: GuardKind::InvalidSpec,
                before: current,
                after: current,
            });
            decision.reason = format!("held: {e}");
            return decision;
        }

        // Time going backwards (a simulator restarting its replay) invalidates the memory.
        if self.last_seen.get(&spec.name).is_some_and(|&t| t > now) {
            self.history.remove(&spec.name);
        }
        self.last_seen.insert(spec.name.clone(), now);

        let cap = spec.effective_capacity();
        let unit = if spec.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", spec.unit)
        };
        let reactive = demand.map(|d| need(d, cap));
        let weight = if input.forecast_weight.is_finite() {
            input.forecast_weight.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let fc_use = match input.forecast {
            None => ForecastUse::Ignored("no forecast"),
            Some(_) if !input.model_healthy => {
                ForecastUse::Ignored("model unhealthy, forecast ignored")
            }
            Some(f) if f.at.saturating_add(f.window) <= now => {
                ForecastUse::Ignored("forecast out of date")
            }
            Some(f) => match f.quantile(spec.quantile) {
                Some(q) if q.is_finite() && q >= 0.0 => {
                    if weight > 0.0 {
                        ForecastUse::Used {
                            q,
                            n: need(q * (1.0 + spec.headroom), cap),
                        }
                    } else {
                        ForecastUse::Ignored("forecast weight 0: recent forecasts were wrong")
                    }
                }
                _ => ForecastUse::Ignored("forecast unusable (not a finite quantile)"),
            },
        };

        let mut no_signal = false;
        let raw = match (&fc_use, reactive) {
            (ForecastUse::Used { n, .. }, r) => {
                let base = r.unwrap_or(current) as f64;
                need(weight * *n as f64 + (1.0 - weight) * base, 1.0)
            }
            (ForecastUse::Ignored(_), Some(r)) => r,
            (ForecastUse::Ignored(_), None) => {
                no_signal = true;
                current
            }
        };

        let mut basis = match &fc_use {
            ForecastUse::Used { q, n } => {
                let mut s = format!(
                    "p{} peak {}{unit} over next {} needs {n} × {}{unit}",
                    num(spec.quantile * 100.0),
                    num(*q),
                    format_duration(input.forecast.map_or(0, |f| f.window)),
                    num(cap),
                );
                if weight < 1.0 {
                    match (demand, reactive) {
                        (Some(d), Some(r)) => s.push_str(&format!(
                            "; at forecast weight {weight:.2} with current {}{unit} ({r}) → {raw}",
                            num(d)
                        )),
                        _ => s.push_str(&format!(
                            "; at forecast weight {weight:.2} with {current} running → {raw}"
                        )),
                    }
                }
                s
            }
            ForecastUse::Ignored(why) => match (demand, reactive) {
                (Some(d), Some(r)) => format!(
                    "current {}{unit} needs {r} × {}{unit} ({why})",
                    num(d),
                    num(cap)
                ),
                _ => format!("no current demand and {why}"),
            },
        };
        if input.data_stale && demand.is_some() {
            basis.push_str(" [stale]");
        }

        let mut n = raw;
        let mut guards: Vec<Guard> = Vec::new();
        if no_signal {
            // Recorded although the number does not move: "why hold" must be answerable.
            guards.push(Guard {
                kind: GuardKind::NoSignal,
                before: current,
                after: current,
            });
        }
        let mut apply = |kind: GuardKind, new: u32, n: &mut u32| {
            if new != *n {
                guards.push(Guard {
                    kind,
                    before: *n,
                    after: new,
                });
                *n = new;
            }
        };
        if let Some(r) = reactive {
            if r > n {
                apply(GuardKind::Surge, r, &mut n);
            }
        }
        if n < current {
            if input.data_stale {
                apply(GuardKind::StaleData, current, &mut n);
            } else if !input.model_healthy {
                apply(GuardKind::UnhealthyModel, current, &mut n);
            }
        }
        if n != current && current > 0 {
            let change = (n as f64 - current as f64).abs() / current as f64;
            let demand_needs_more = n > current && reactive.is_some_and(|r| r > current);
            if change <= spec.tolerance && !demand_needs_more {
                apply(GuardKind::Tolerance, current, &mut n);
            }
        }
        if spec.scale_down_window > 0 {
            let h = self.history.entry(spec.name.clone()).or_insert_with(|| {
                // First sight: what runs now stands for the unseen part of the window.
                let mut h = History::default();
                h.push(now, current);
                h
            });
            h.prune(now, spec.scale_down_window);
            h.push(now, n);
            if n < current {
                let m = h.max().unwrap_or(n).clamp(n, current);
                apply(GuardKind::Stabilization, m, &mut n);
            }
        }
        if n > current {
            if let Some(up) = spec.max_step_up {
                apply(
                    GuardKind::MaxStep,
                    n.min(current.saturating_add(up)),
                    &mut n,
                );
            }
        } else if n < current {
            if let Some(down) = spec.max_step_down {
                apply(
                    GuardKind::MaxStep,
                    n.max(current.saturating_sub(down)),
                    &mut n,
                );
            }
        }
        if n < spec.min_replicas {
            apply(GuardKind::MinReplicas, spec.min_replicas, &mut n);
        }
        if n > spec.max_replicas {
            apply(GuardKind::MaxReplicas, spec.max_replicas, &mut n);
        }

        let mut reason = basis;
        for g in &guards {
            let phrase = match g.kind {
                GuardKind::Surge => format!(
                    "raised to {} by current demand {}{unit} (surge the forecast missed)",
                    g.after,
                    num(demand.unwrap_or(0.0))
                ),
                GuardKind::StaleData => format!("held at {}: data stale, no scale-down", g.after),
                GuardKind::UnhealthyModel => {
                    format!("held at {}: model unhealthy, no scale-down", g.after)
                }
                GuardKind::NoSignal => format!("held at {}", g.after),
                GuardKind::Tolerance => {
                    format!(
                        "held at {}: within {}% tolerance",
                        g.after,
                        num(spec.tolerance * 100.0)
                    )
                }
                GuardKind::Stabilization => format!(
                    "{} {} by {} scale-down stabilisation",
                    if g.after == current {
                        "held at"
                    } else {
                        "limited to"
                    },
                    g.after,
                    format_duration(spec.scale_down_window)
                ),
                GuardKind::MaxStep => format!(
                    "limited to {} by max step {}",
                    g.after,
                    if g.after > current {
                        format!("+{}", spec.max_step_up.unwrap_or(0))
                    } else {
                        format!("-{}", spec.max_step_down.unwrap_or(0))
                    }
                ),
                GuardKind::MinReplicas => format!("raised to min {}", g.after),
                GuardKind::MaxReplicas => format!("capped at max {}", g.after),
                _ => format!("{} → {}", g.kind, g.after),
            };
            reason.push_str("; ");
            reason.push_str(&phrase);
        }

        decision.kind = match n.cmp(&current) {
            std::cmp::Ordering::Greater => DecisionKind::ScaleUp,
            std::cmp::Ordering::Less => DecisionKind::ScaleDown,
            std::cmp::Ordering::Equal => DecisionKind::Hold,
        };
        decision.raw = raw;
        decision.to = n;
        decision.guards = guards;
        decision.reason = reason;
        decision
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn low_forecast_weight_degrades_to_reactive() {
        let f = fc(0, 1000.0); // forecast says 20
        let mut i = input(0, 4, 200.0, Some(&f)); // current says 4
        i.forecast_weight = 0.0;
        let d = ReplicaPlanner::new().plan(&spec(), &i);
        assert_eq!(d.raw, 4, "{d}");
        assert!(d.reason.contains("forecast weight 0"), "{}", d.reason);
        i.forecast_weight = 0.5;
        let d = ReplicaPlanner::new().plan(&spec(), &i);
        assert_eq!(d.raw, 12, "{d}");
        assert!(d.reason.contains("weight 0.50"), "{}", d.reason);
        i.forecast_weight = f64::NAN;
        assert_eq!(ReplicaPlanner::new().plan(&spec(), &i).raw, 4);
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
    fn forecast_without_current_demand_blends_with_running_replicas() {
        let f = fc(0, 1000.0); // 20
        let i = WorkloadInput {
            forecast: Some(&f),
            forecast_weight: 0.5,
            ..WorkloadInput::new(0, 10)
        };
        assert_eq!(ReplicaPlanner::new().plan(&spec(), &i).raw, 15);
    }

    #[test]
    fn guard_tolerance_stops_flapping() {
        let mut s = spec();
        s.scale_down_window = 0;
        let mut p = ReplicaPlanner::new();
        // Forecast wobbles between 10 and 11 replicas' worth: stay at 10.
        for (t, peak) in [(0, 520.0), (15, 480.0), (30, 530.0), (45, 470.0)] {
            let f = fc(t, peak);
            let d = p.plan(&s, &input(t, 10, 400.0, Some(&f)));
            assert_eq!(d.to, 10, "{d}");
        }
        let f = fc(60, 530.0);
        let d = p.plan(&s, &input(60, 10, 400.0, Some(&f)));
        assert!(d.guarded_by(GuardKind::Tolerance), "{d}");
        // ... but not when current demand already needs more.
        let d = p.plan(&s, &input(75, 10, 540.0, Some(&f)));
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
                    let reactive = need(demand, s.effective_capacity());
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
}
