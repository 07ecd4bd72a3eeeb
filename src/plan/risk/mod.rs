//! Risk as a budget of under-provisioned time: `max_short = "1%"` on a `[[workload]]` means at
//! most 1 % of planning steps with demand above the capacity that was running, and prescale
//! chooses how far above the forecast to provision so that the budget is met, at least cost.
//!
//! # How
//!
//! The planner provisions at the forecast's `base` quantile (the model's level nearest to
//! `1 − max_short`, interpolated: `p99` for 1 %) times a **margin** `e^θ`. The margin is kept
//! calibrated online by quantile tracking (Angelopoulos, Candès & Tibshirani 2023, "Conformal
//! PID control", the `P` part; the log-space form of adaptive conformal inference, Gibbs &
//! Candès 2021): after every step
//!
//! ```text
//! θ ← θ + γ · (short − α')        short ∈ {0, 1},  α' = α (1 − RESERVE),  α = max_short
//! ```
//!
//! A short step raises the margin by `e^{γ(1−α')}`; each step that was not short lowers it by
//! `e^{−γα'}`, so it settles where short steps are an `α'` share of all, a little under the
//! budget (why: the ledger section below). Why the *step* (demand
//! above the capacity running in it) and not "the forecast's quantile missed the peak": the
//! step is what the budget counts, and it sees everything between the forecast and the
//! capacity (the reactive floor, rounding to whole replicas, the tolerance band, the step
//! limits), so a forecast that is too wide makes the margin fall below 1 (cheaper than the
//! quantile) and one too narrow makes it rise, whatever the model does.
//!
//! Why the log-margin and not the level `α_t` itself (plain ACI): a plain-ACI level reaches 0
//! (an infinite quantile, i.e. `max_replicas`) after two short steps in a row at a 1 % budget
//! and stays there for a hundred steps per excess short. Bursts come in runs of short steps
//! while replicas boot, so that would be the cost of every burst. In log space a run of `k`
//! short steps costs a margin of `e^{γk}` instead.
//!
//! # The guarantee, and when it holds
//!
//! Unrolling the update (clamps aside), `θ_{T+1} = θ_1 + γ Σ (short_t − α')`, so over `T` steps
//!
//! ```text
//! realised short share − α'  =  (θ_{T+1} − θ_1) / (γ T)
//! ```
//!
//! for *any* sequence of demand and forecasts: no model, stationarity or exchangeability is
//! assumed. If a margin of `e^{θ*}` is never short (assumption A), `θ` never climbs past
//! `θ* + γ(d + 1)`, where `d` is the steps between a decision and the step it serves (the boot
//! time), and the realised share is at most `α' + (θ* − θ_1 + γ(d + 1)) / (γT)`: it converges to
//! `α'`, under the budget, or below. `θ` is clamped to `[ln 1/4, ln 4]`; the lower clamp only ever raises
//! `θ`, which can only lower the short share, and the upper one is never reached while A
//! holds. A fails when capacity cannot follow the margin: `max_replicas`, `max_step_up` or a
//! capped pool bind, or a step in demand arrives within the boot time with no warning in the
//! forecast (then no margin short of one covering the jump helps). Two-sided, for scores
//! `ln(peak / forecast)` bounded in `[−B, B]` (the calibrator alone, fed forecast misses):
//! `|realised − α'| ≤ (2B + γ)/(γT)` (Angelopoulos et al., Proposition 1).
//!
//! # When the margin cannot: the demand floor, on the budget's ledger
//!
//! When A fails (bursts the forecast does not see, a regime the model never saw), short steps
//! go on whatever the margin. A floor then takes over: a high quantile of the workload's own
//! demand over the window (`floor`), which is what a static policy at the budget's percentile
//! provisions. Capacity is the larger of the margin's and the floor's.
//!
//! The floor is driven by the budget's **ledger** `D = Σ (short − α)` since start (the excess
//! short steps over what the budget allows so far), not by the margin: it is engaged while
//! `D > 0`, at the window's `1 − 2α` quantile at first and up to its maximum at `D = 1/γ_f`
//! ([`GAMMA_FLOOR`]). Why the ledger and not "the margin reached its cap" (the first design):
//! the margin climbs its whole range `[ln ¼, ln 4]` in `(θ_max − θ_min)/γ` ≈ 55 short steps,
//! every one of them over budget once the margin had settled low on a calm series and the load
//! changes regime (measured: `nab_grok_asg_anomaly` went from steady load to idle with
//! bursts 4× a replica, and realised 1.70 % over 3,235 steps, the range alone being 1.7 %).
//! On the ledger the floor answers the first short step over budget whatever the margin, so:
//!
//! ```text
//! realised short share since start  ≤  α + (1/γ_f + d + 1) / T
//! ```
//!
//! as long as capacity at the window's maximum is not short (assumption A': demand does not
//! beat its own recent record, and `max_replicas` and the step limits let capacity reach it):
//! once `D ≥ 1/γ_f` the floor is at the maximum, and only the `d + 1` steps decided before can
//! still be short. It does not depend on the margin or the model at all. A trace shorter than
//! `(1/γ_f + d + 1)/α` steps gets no guarantee at the budget from any online rule that starts
//! without knowledge of the load: [`Calibrator::bound`] is what simulate prints next to the
//! realised share.
//!
//! Two details keep the floor for real failures. The margin aims a little below the budget
//! (`α (1 − RESERVE)`, [`RESERVE`]) so that on a series the margin handles, `D` drifts below
//! zero and the margin's own finite-sample wobble (`(θ_{T+1} − θ_1)/(γT)`, a step or two either
//! way) does not engage the floor; and the credit `−D` is capped at [`MAX_CREDIT`] steps, so a
//! long calm period does not bank a budget that a regime change then spends in one go (the cap
//! only raises `D`, which only engages the floor sooner: the bound holds).
//!
//! The realised share over the workload's `short_window` (default 7 days) is reported next to
//! the budget in every decision's reason and as `prescale_short_share{workload}`; the bound
//! is about all steps since start, the window about the recent past.

mod floor;
mod saved;

pub use saved::{CheckedRisk, SavedRisk};

use crate::forecast::Forecast;
use crate::plan::spec::WorkloadSpec;
use floor::DemandWindow;
use std::collections::{HashMap, VecDeque};

/// Default step size `γ` of the log-margin: a short step raises the margin by about 5 %.
///
/// Why 0.05: large enough that a margin 2× off is corrected within some 14 short steps (a
/// 1 % budget allows 14 in 1,400 steps, five days at 5-minute steps), small enough that one
/// burst of short steps while replicas boot (3–6 steps) moves the margin by 15–35 %, not by
/// multiples.
pub const DEFAULT_GAMMA: f64 = 0.05;

/// Default `short_window`: the realised short share is reported over the last 7 days.
pub const DEFAULT_SHORT_WINDOW: i64 = 7 * 86_400;

/// Lowest log-margin: provisioning at a quarter of the base quantile is as cheap as it goes.
pub const THETA_MIN: f64 = -1.386_294_361_119_890_6; // ln(1/4)
/// Highest log-margin: at most 4× the budget's quantile.
///
/// Why a cap: when bursts arrive within the boot time with no sign in the forecast (a series
/// idle at 0.1 % that jumps to 100 %), no margin on the forecast prevents the short steps, and
/// an uncapped margin only grows cost (measured on the shared traces: 3–90× the oracle's for
/// no fewer short steps). A model needing more than 4× its own p99 does not see the load's
/// bursts: past the cap the demand floor takes over (module doc), and `prescale_risk_floor`
/// says so.
pub const THETA_MAX: f64 = 1.386_294_361_119_890_6; // ln(4)

/// Step size of the floor's position `v = γ_f · D ∈ [0, 1]` on the budget's ledger `D` (see
/// the module doc): four short steps more than the budget allows take the floor from its
/// lowest level to the window's maximum, so at most `4 + d + 1` excess short steps in all
/// under assumption A'.
pub const GAMMA_FLOOR: f64 = 0.25;

/// Share of the budget the margin keeps in reserve: it aims at `α (1 − RESERVE)`, so that on
/// load the margin can handle the ledger drifts below zero (by `RESERVE · α` per step) and the
/// floor stays off through the margin's wobble. Measured on the 15 shared traces simulate can
/// train on: with no reserve `nab_nyc_taxi` ends at 1.01 % and the floor's engagements cost
/// more (geometric mean of cost/oracle 2.339 against 2.317 at 10 %); 5 % is as cheap (2.310)
/// but leaves one trace at 0.99 %.
pub const RESERVE: f64 = 0.1;

/// Most excess steps the ledger may bank (`D ≥ −MAX_CREDIT`): after a long calm period a new
/// regime engages the floor within this many short steps over budget. Measured: 4 costs 6 %
/// more on NASA HTTP (the floor engaging on wobble), 8 the same elsewhere.
pub const MAX_CREDIT: f64 = 8.0;

/// Buckets the window is kept in: memory per workload is fixed, not one entry per step.
const BUCKETS: i64 = 168;

/// Short and total steps of a bounded time window, in fixed buckets.
#[derive(Debug, Clone)]
struct ShortWindow {
    window: i64,
    bucket: i64,
    /// (bucket start, steps, short steps), oldest first.
    buckets: VecDeque<(i64, u64, u64)>,
}

impl ShortWindow {
    fn new(window: i64) -> Self {
        let window = window.max(1);
        ShortWindow {
            window,
            bucket: (window / BUCKETS).max(1),
            buckets: VecDeque::new(),
        }
    }

    fn push(&mut self, ts: i64, short: bool) {
        let start = ts.div_euclid(self.bucket) * self.bucket;
        match self.buckets.back_mut() {
            Some(b) if b.0 == start => {
                b.1 += 1;
                b.2 += u64::from(short);
            }
            _ => self.buckets.push_back((start, 1, u64::from(short))),
        }
        let oldest = ts.saturating_sub(self.window);
        // A bucket ending at or before the window's start holds nothing of it.
        while self
            .buckets
            .front()
            .is_some_and(|b| b.0.saturating_add(self.bucket) <= oldest)
        {
            self.buckets.pop_front();
        }
    }

    /// (steps, short steps) in the window.
    fn counts(&self) -> (u64, u64) {
        self.buckets
            .iter()
            .fold((0, 0), |(n, s), b| (n + b.1, s + b.2))
    }
}

/// The online calibrator of one workload: the log-margin `θ` over the base quantile, updated
/// once per step with whether the step was short (see the module doc for the rule and its
/// guarantee).
#[derive(Debug, Clone)]
pub struct Calibrator {
    budget: f64,
    gamma: f64,
    theta: f64,
    theta_start: f64,
    /// The budget's ledger `D = Σ (short − α)`, at least `−MAX_CREDIT`: the floor is engaged
    /// while it is above zero (module doc).
    debt: f64,
    steps: u64,
    shorts: u64,
    window: ShortWindow,
    demand: DemandWindow,
    last_ts: Option<i64>,
}

impl Calibrator {
    /// A calibrator for a short-step budget `budget` in (0, 1) with step size `gamma` > 0,
    /// reporting over `window` seconds, starting at margin 1 (the base quantile as forecast).
    /// Out-of-range values are clamped (validate the spec first).
    pub fn new(budget: f64, gamma: f64, window: i64) -> Self {
        let budget = if budget.is_finite() {
            budget.clamp(1e-6, 0.5)
        } else {
            0.01
        };
        let gamma = if gamma.is_finite() && gamma > 0.0 {
            gamma
        } else {
            DEFAULT_GAMMA
        };
        Calibrator {
            budget,
            gamma,
            theta: 0.0,
            theta_start: 0.0,
            debt: 0.0,
            steps: 0,
            shorts: 0,
            window: ShortWindow::new(window),
            demand: DemandWindow::new(window),
            last_ts: None,
        }
    }

    /// One step at `ts` and whether it was short. A repeated or older timestamp is ignored
    /// (a replay restarting, a cycle seeing no new sample), so a step is counted once.
    pub fn observe(&mut self, ts: i64, short: bool) {
        self.observe_demand(ts, short, None);
    }

    /// [`observe`](Self::observe), also adding the step's demand to the window the floor is
    /// taken from.
    pub fn observe_demand(&mut self, ts: i64, short: bool, demand: Option<f64>) {
        if self.last_ts.is_some_and(|t| ts <= t) {
            return;
        }
        self.last_ts = Some(ts);
        self.update(short);
        self.window.push(ts, short);
        if let Some(d) = demand {
            self.demand.push(ts, d);
        }
    }

    /// The update alone, without a timestamp: the log-margin moves towards the reserve's aim
    /// (`θ ← θ + γ(short − α(1 − RESERVE))`, clamped to `[THETA_MIN, THETA_MAX]`) and the
    /// ledger by the step's excess over the budget (`D ← max(D + short − α, −MAX_CREDIT)`).
    /// Both are telescoping sums (module doc): over `T` steps the realised share is at most
    /// `α (1 − RESERVE) + (θ* − θ_1 + γ(d + 1))/(γT)` when a margin of `e^{θ*}` is never short
    /// (assumption A), and at most `α + (1/γ_f + d + 1)/T` when the floor at the window's
    /// maximum is never short (A'), whatever the margin.
    pub fn update(&mut self, short: bool) {
        self.steps += 1;
        self.shorts += u64::from(short);
        let err = if short { 1.0 } else { 0.0 };
        let aim = self.budget * (1.0 - RESERVE);
        self.theta = (self.theta + self.gamma * (err - aim)).clamp(THETA_MIN, THETA_MAX);
        self.debt = (self.debt + err - self.budget).max(-MAX_CREDIT);
    }

    /// The floor's position `v = γ_f · D` in `[0, 1]` (0 = no floor).
    fn floor_position(&self) -> f64 {
        (GAMMA_FLOOR * self.debt).clamp(0.0, 1.0)
    }

    /// The budget's ledger `D`: short steps since start beyond what the budget allows so far
    /// (negative: in credit, at most `MAX_CREDIT` (8) steps).
    pub fn debt(&self) -> f64 {
        self.debt
    }

    /// The quantile of the window's demand the floor stands at, `None` while there is no
    /// floor: from `1 − 2α` (just engaged) through `1 − α` to the window's maximum.
    pub fn floor_level(&self) -> Option<f64> {
        let v = self.floor_position();
        (self.debt > 0.0).then_some(1.0 - 2.0 * self.budget * (1.0 - v))
    }

    /// The floor in demand units: the window's demand at [`floor_level`](Self::floor_level).
    pub fn floor(&self) -> Option<f64> {
        self.demand.quantile(self.floor_level()?)
    }

    /// The margin `e^θ` the base quantile is multiplied by.
    pub fn margin(&self) -> f64 {
        self.theta.exp()
    }

    /// The log-margin `θ`.
    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// The budget `α`.
    pub fn budget(&self) -> f64 {
        self.budget
    }

    /// The step size `γ`.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Steps observed since start, and how many were short.
    pub fn totals(&self) -> (u64, u64) {
        (self.steps, self.shorts)
    }

    /// Short share over the reporting window; `None` before any step.
    pub fn realised(&self) -> Option<f64> {
        let (n, s) = self.window.counts();
        (n > 0).then(|| s as f64 / n as f64)
    }

    /// The guarantee's slack after the steps so far: the realised share since start is at
    /// most `budget + slack(theta_max)` when the log-margin never exceeded `theta_max`
    /// (module doc); `(θ_max − θ_1 + γ) / (γ T)`. Infinite before any step.
    pub fn slack(&self, theta_max: f64) -> f64 {
        if self.steps == 0 {
            return f64::INFINITY;
        }
        (theta_max - self.theta_start + self.gamma) / (self.gamma * self.steps as f64)
    }

    /// The ledger's bound on the realised share since start after `steps` steps with `lag`
    /// steps between a decision and the step it serves: `α + (1/γ_f + lag + 1)/steps`, which
    /// holds whatever the forecast as long as the floor at the window's maximum is not short
    /// (assumption A', module doc). Infinite for zero steps.
    pub fn bound(budget: f64, steps: u64, lag: u64) -> f64 {
        if steps == 0 {
            return f64::INFINITY;
        }
        budget + (1.0 / GAMMA_FLOOR + lag as f64 + 1.0) / steps as f64
    }
}

/// The model's level the margin scales for a budget: `1 − budget`, which the forecast
/// interpolates between its levels and clamps to its outermost one (p99 for 1 %, p99 too for
/// 0.1 % if p99 is the model's top level: the margin then does the rest).
pub fn base_level(budget: f64) -> f64 {
    (1.0 - budget).clamp(0.5, 0.999)
}

/// What the planner provisions at for a workload with a budget, this cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskLevel {
    /// The forecast's level the margin scales (interpolated between the model's levels).
    pub base: f64,
    /// The calibrated margin `e^θ` on the base quantile.
    pub margin: f64,
    /// The budget, a share of steps (0.01 = 1 %).
    pub budget: f64,
    /// Realised short share over the window; `None` before any step.
    pub realised: Option<f64>,
    /// The reporting window, seconds.
    pub window: i64,
    /// The demand floor, when the margin alone has not met the budget: (the level within
    /// the window's demand, the demand there).
    pub floor: Option<(f64, f64)>,
}

impl RiskLevel {
    /// The demand to provision for: the base quantile of `f` times the margin, or the floor
    /// if that is higher; `None` when the forecast has no finite, non-negative value there.
    pub fn provision(&self, f: &Forecast) -> Option<f64> {
        let v = f.quantile(self.base)? * self.margin;
        let v = self.floor.map_or(v, |(_, fl)| v.max(fl));
        (v.is_finite() && v >= 0.0).then_some(v)
    }
}

/// What the exporter shows per workload with a budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskStats {
    /// The budget, a share of steps.
    pub budget: f64,
    /// Realised short share over the window; `None` before any step.
    pub realised: Option<f64>,
    /// The window, seconds.
    pub window: i64,
    /// The forecast level provisioned at.
    pub base: f64,
    /// The margin on it.
    pub margin: f64,
    /// Steps observed since start.
    pub steps: u64,
    /// The demand floor while engaged, in the demand's unit.
    pub floor: Option<f64>,
}

/// One calibrator per workload with a `max_short`, keyed by workload name: the live loop and
/// the simulator feed it every step and ask it for the level to plan at.
#[derive(Debug, Clone, Default)]
pub struct RiskTracker {
    gamma: f64,
    workloads: HashMap<String, Calibrator>,
}

impl RiskTracker {
    /// A tracker with the default step size.
    pub fn new() -> Self {
        Self::with_gamma(DEFAULT_GAMMA)
    }

    /// A tracker whose calibrators use step size `gamma`.
    pub fn with_gamma(gamma: f64) -> Self {
        RiskTracker {
            gamma,
            workloads: HashMap::new(),
        }
    }

    /// One step of `spec` at `ts`: `demand` served by `ready` replicas. Short means demand
    /// above `ready × replica_capacity` (full capacity, not the target utilisation: the budget
    /// counts overload, not a busy replica). Workloads without `max_short`, unknown demand and
    /// non-finite values are not counted; a changed budget or window starts afresh.
    pub fn observe(&mut self, spec: &WorkloadSpec, ts: i64, demand: Option<f64>, ready: u32) {
        let Some(budget) = spec.max_short else {
            self.workloads.remove(&spec.name);
            return;
        };
        let Some(d) = demand.filter(|d| d.is_finite()) else {
            return;
        };
        let gamma = self.gamma;
        let cal = self
            .workloads
            .entry(spec.name.clone())
            .or_insert_with(|| Calibrator::new(budget, gamma, spec.short_window));
        if cal.budget != budget || cal.window.window != spec.short_window.max(1) {
            *cal = Calibrator::new(budget, gamma, spec.short_window);
        }
        let capacity = f64::from(ready) * spec.replica_capacity;
        cal.observe_demand(ts, d > capacity * (1.0 + 1e-9), Some(d));
    }

    /// The level `spec` is planned at this cycle: `None` without `max_short`; margin 1 before
    /// any step.
    pub fn level(&self, spec: &WorkloadSpec) -> Option<RiskLevel> {
        let budget = spec.max_short?;
        let cal = self
            .workloads
            .get(&spec.name)
            .filter(|c| c.budget == budget);
        Some(RiskLevel {
            base: base_level(budget),
            margin: cal.map_or(1.0, Calibrator::margin),
            budget,
            realised: cal.and_then(Calibrator::realised),
            window: spec.short_window,
            floor: cal.and_then(|c| Some((c.floor_level()?, c.floor()?))),
        })
    }

    /// What the exporter shows for `spec`; `None` without `max_short`.
    pub fn stats(&self, spec: &WorkloadSpec) -> Option<RiskStats> {
        let l = self.level(spec)?;
        Some(RiskStats {
            budget: l.budget,
            realised: l.realised,
            window: l.window,
            base: l.base,
            margin: l.margin,
            steps: self.workloads.get(&spec.name).map_or(0, |c| c.steps),
            floor: l.floor.map(|(_, v)| v),
        })
    }

    /// The calibrator of a workload, if it has seen a step.
    pub fn calibrator(&self, name: &str) -> Option<&Calibrator> {
        self.workloads.get(name)
    }

    /// Forgets workloads for which `keep` is false (no longer configured).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.workloads.retain(|k, _| keep(k));
    }

    /// How many workloads it keeps a ledger for.
    pub fn len(&self) -> usize {
        self.workloads.len()
    }

    /// Whether it keeps no ledger.
    pub fn is_empty(&self) -> bool {
        self.workloads.is_empty()
    }
}

#[cfg(test)]
mod tests;
