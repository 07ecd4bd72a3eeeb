//! The scale planner: how many replicas a workload should have when new ones would be ready.
//!
//! One cycle per workload:
//!
//! 1. **Raw number**, by maximum, never by averaging or weighing. The reactive need
//!    `ceil(current demand × (1 + headroom) / capacity)` is a **floor**: what is needed now is
//!    needed whatever the model says, so no forecast takes capacity below it (the surge guard
//!    applies it). The predictive need `ceil(q-quantile of forecast peak × (1 + headroom) /
//!    capacity)` is counted **in full** above it, however the accuracy tracker rates the
//!    model lately; with `max_short` the quantile is the budget's level times the margin
//!    `plan::risk` calibrates online (`input.risk`), or its demand floor if higher. This is the
//!    rule of Crane, AWS predictive scaling and Alibaba's AHPA (the larger of the predictive
//!    and the reactive number), and it is why a poorly rated model can cost money (capacity
//!    above the floor that is not used) but never risk: a forecast that is too low is caught
//!    by the floor, one that is too high is paid for. Weighing it down instead provisioned
//!    below the quantile the user chose exactly when it mattered: the blend
//!    `w·forecast + (1−w)·reactive` took the demo's `api` 7 → 3 → 8 at weight 0.26, and the
//!    share of the excess that replaced it below weight 0.25 took it 7 → 2 → 8 at 0.04 (a p95
//!    of 189 needing 8, current demand 9 needing 1, then 161 the next cycle), and left
//!    `simulate` at q = 0.9 29 % of steps short on a bursty trace. Keeping the quantile
//!    honest is the online calibration's job (`forecast::online`), not the planner's; the
//!    tracker's weight is named in the reason (its WAPE and p90 coverage are on `/metrics`). Without a current demand
//!    reading there is no floor, and the running replicas stand in for it under a poorly rated
//!    forecast (one may add above them, not remove). Only an unhealthy,
//!    missing, out-of-date or unusable forecast is left out (then the floor alone). The
//!    forecast is of the peak over its window, which the live loop sizes to cover the boot
//!    time, so the number is what must be running by the time replicas ordered now are
//!    ready; a window shorter than the boot time is still used and flagged in the reason.
//! 2. **Guards**, in this order, each recorded when it changes the number:
//!    surge (the reactive floor: never below what current demand needs, so a spike the
//!    forecast missed is still caught; recorded whenever the floor beat the forecast) →
//!    stale data / unhealthy model (no scale-down) → tolerance band (hold small scale-downs;
//!    never a scale-up, which current demand or the forecast asks for) → scale-down
//!    stabilisation (HPA-style: scale down only
//!    to the highest recommendation of the window; a workload seen for the first time counts
//!    its current replicas as that window's history, so nothing shrinks before a full window
//!    of evidence) → maximum step → known-event floor (an active `events` entry, from its start
//!    minus the boot time to its end: a stated requirement, so it overrides the guards before
//!    it) → min/max bounds (last, because they are the user's policy).

use super::decision::{Decision, DecisionKind, Guard, GuardKind};
use super::risk::RiskLevel;
use super::spec::WorkloadSpec;
use crate::forecast::Forecast;
use std::collections::{HashMap, VecDeque};

/// Forecast weight under which the reason calls a forecast poorly rated.
///
/// Why 0.25: with the default `[accuracy]` settings a weight below it means the median's
/// recent WAPE is above about 0.41 (off by more than 40 % of the peak), or its p90 covered
/// fewer than about 58 % of peaks instead of 90 %. It changes nothing in the number (the
/// forecast counts in full, module doc): it tells the person reading a decision that the
/// capacity above the floor rests on a forecast that has been wrong lately.
pub const POORLY_RATED_WEIGHT: f64 = 0.25;

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
    /// The forecast's recent accuracy, 0..=1, usually [`AccuracyTracker::weight`](super::AccuracyTracker::weight):
    /// named in the reason (below [`POORLY_RATED_WEIGHT`] as poorly rated), never weighed
    /// into the number.
    pub forecast_weight: f64,
    /// For a workload with `max_short`: the level and calibrated margin to provision at,
    /// usually [`RiskTracker::level`](super::RiskTracker::level); it then replaces `quantile`.
    pub risk: Option<RiskLevel>,
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
            risk: None,
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
    memory: HashMap<String, Memory>,
}

/// What the planner remembers of one workload.
#[derive(Debug, Clone, Default)]
struct Memory {
    last_seen: i64,
    /// `None` until the first cycle with a scale-down window, and after the clock went back.
    history: Option<History>,
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
        self.memory.retain(|k, _| keep(k));
    }

    /// One planning cycle for one workload: the raw number (step 1 of the module doc), then
    /// the guards in order (step 2), each named in the reason.
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
        let memory = self.memory.entry(spec.name.clone()).or_insert(Memory {
            last_seen: now,
            history: None,
        });
        if memory.last_seen > now {
            memory.history = None;
        }
        memory.last_seen = now;

        let cycle = Cycle::new(spec, input, demand);
        // 1. Raw number.
        let fc_use = cycle.forecast_use();
        let (raw, no_signal) = cycle.raw(&fc_use);
        let mut reason = cycle.basis(&fc_use, raw);
        // 2. Guards.
        let (n, guards) = cycle.guard(raw, no_signal, memory);
        for g in &guards {
            reason.push_str("; ");
            reason.push_str(&cycle.phrase(g));
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

/// One workload's cycle: its spec and input, and what every step reads from them.
struct Cycle<'a> {
    spec: &'a WorkloadSpec,
    input: &'a WorkloadInput<'a>,
    now: i64,
    current: u32,
    /// Current demand, if known and usable.
    demand: Option<f64>,
    /// Replicas the current demand needs with the headroom: the floor no forecast goes below.
    reactive: Option<u32>,
    /// The forecast weight for the reason, clamped to 0..=1 (0 if not finite).
    weight: f64,
    /// Demand one replica serves.
    cap: f64,
    /// The demand unit with a leading space, or nothing.
    unit: String,
}

impl<'a> Cycle<'a> {
    fn new(spec: &'a WorkloadSpec, input: &'a WorkloadInput<'a>, demand: Option<f64>) -> Self {
        let cap = spec.effective_capacity();
        let unit = if spec.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", spec.unit)
        };
        // Reported only (the number counts the forecast in full, module doc); with a
        // short-step budget the reason shows the realised short share instead.
        let weight = if input.risk.is_some() {
            1.0
        } else if input.forecast_weight.is_finite() {
            input.forecast_weight.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Cycle {
            spec,
            input,
            now: input.now,
            current: input.current_replicas,
            demand,
            reactive: demand.map(|d| need(d * (1.0 + spec.headroom), cap)),
            weight,
            cap,
            unit,
        }
    }

    /// The replicas the budget's demand floor needs, while it is engaged.
    fn risk_floor(&self) -> Option<u32> {
        let (_, floor) = self.input.risk?.floor?;
        Some(need(floor * (1.0 + self.spec.headroom), self.cap))
    }

    /// Whether the forecast counts this cycle, and the replicas it asks for if so.
    fn forecast_use(&self) -> ForecastUse {
        let (spec, input) = (self.spec, self.input);
        match input.forecast {
            None => ForecastUse::Ignored("no forecast"),
            Some(_) if !input.model_healthy => {
                ForecastUse::Ignored("model unhealthy, forecast ignored")
            }
            Some(f) if f.at.saturating_add(f.window) <= self.now => {
                ForecastUse::Ignored("forecast out of date")
            }
            Some(f) => match input
                .risk
                .map_or_else(|| f.quantile(spec.quantile), |r| r.provision(f))
            {
                Some(q) if q.is_finite() && q >= 0.0 => ForecastUse::Used {
                    q,
                    n: need(q * (1.0 + spec.headroom), self.cap),
                },
                _ => ForecastUse::Ignored("forecast unusable (not a finite quantile)"),
            },
        }
    }

    /// Step 1: the predictive need in full (the surge guard then lifts it to the reactive
    /// floor if it is below: the maximum of the two, with the floor's win recorded), and
    /// whether there was no signal at all (then the current replicas stand).
    fn raw(&self, fc_use: &ForecastUse) -> (u32, bool) {
        match (fc_use, self.reactive) {
            // No demand reading, so no floor: a poorly rated forecast may add above what
            // runs but not take it away (the floor's role, played by the running replicas).
            (ForecastUse::Used { n, .. }, None) if self.weight < POORLY_RATED_WEIGHT => {
                ((*n).max(self.current), false)
            }
            (ForecastUse::Used { n, .. }, _) => (*n, false),
            // Without a usable forecast the budget's demand floor, once engaged, still
            // stands: it comes from demand alone.
            (ForecastUse::Ignored(_), Some(r)) => (r.max(self.risk_floor().unwrap_or(0)), false),
            (ForecastUse::Ignored(_), None) => (self.current, true),
        }
    }

    /// Step 2: the guards in the module doc's order, each recorded when it changes the number
    /// (no signal is recorded although it does not).
    fn guard(&self, raw: u32, no_signal: bool, memory: &mut Memory) -> (u32, Vec<Guard>) {
        let (spec, input, now, current) = (self.spec, self.input, self.now, self.current);
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
        if let Some(r) = self.reactive {
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
        // Only scale-downs are held: a scale-up here is asked for by current demand or by the
        // forecast, and holding either provisions below what the user's quantile (or demand
        // right now) needs for a boot time. Holding downs alone still stops flapping: a number
        // wobbling inside the band moves up once and then stays.
        if n < current {
            let change = (current - n) as f64 / current as f64;
            if change <= spec.tolerance {
                apply(GuardKind::Tolerance, current, &mut n);
            }
        }
        if spec.scale_down_window > 0 {
            let h = memory.history.get_or_insert_with(|| {
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
        // A declared event overrides tolerance, stabilisation and the step limit (it is a
        // stated requirement, not a guess); only max_replicas, the user's hard cap, beats it.
        if let Some(e) = super::events::strongest(&spec.events, now, spec.boot_time) {
            if n < e.floor {
                apply(GuardKind::EventFloor, e.floor, &mut n);
            }
        }
        if n < spec.min_replicas {
            apply(GuardKind::MinReplicas, spec.min_replicas, &mut n);
        }
        if n > spec.max_replicas {
            apply(GuardKind::MaxReplicas, spec.max_replicas, &mut n);
        }
        (n, guards)
    }
}

mod reason;
#[cfg(test)]
mod tests;
