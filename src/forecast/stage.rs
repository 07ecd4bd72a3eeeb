//! Cold start: which forecaster a series is planned with, from how much history it has.
//!
//! Three stages, in the order a new workload goes through them:
//!
//! - **`reactive`**: too little unbroken history for the features to make a row (the feature
//!   spec's `min_history`: 13 samples, so at a 5-minute step the first forecast comes 60 min
//!   after the first sample, with 65 min of data). No forecast: the planner uses the reactive
//!   need alone, as the HPA would. It is not widened: it is measured demand, not a forecast,
//!   so there is no model error to cover, and a margin on top of it would be a guess
//!   (`headroom` is the user's knob for that).
//! - **`global`**: the shared model of `run.model`, trained across series on scale-free
//!   features, so it forecasts a series it never saw. With little history its daily and weekly
//!   features are missing (they fall back to the recent peak), and its calibration was fitted
//!   on rows that mostly had them: it is overconfident. So the forecast the planner sees is
//!   **widened** by [`widen_factor`] while the history is under [`WIDEN_UNTIL`]: a margin on
//!   every quantile that shrinks linearly from [`WIDEN_AT_START`] at the first forecast to 1 at
//!   one day. Measured (`examples/cold_start.rs`, second table: 16 shared traces, 1,536
//!   origins per context length): the margin the global model's p90 needs to cover 90 % of
//!   peaks grows, relative to what it needs with 8 days of history, by × 1.051 with 2 h,
//!   × 1.029 with 6 h, × 1.014 with 12 h and not at all from 24 h (p90 coverage 0.839, 0.858,
//!   0.867, then 0.879–0.882); the line from 1.06 lies at or above each of those. The VPA
//!   widens its recommendation bounds while its history is short too (by `1 + 1/days`, far
//!   more, as it has no model of the series' shape to lean on).
//! - **`own`**: a model trained on this series' history alone, once it has
//!   `run.own_model_after` of it ([`DEFAULT_OWN_MODEL_AFTER`], measured) and only when it beats
//!   the model the series uses now on its held-out newest fifth (the Retrainer's rule: p90
//!   pinball). Measured on the shared traces, an own model wins more often than not from 2
//!   days and on two thirds of the cases from 4 days; the per-series contest keeps the global
//!   model where it is still better. The training itself is [`OwnModels`](super::OwnModels).
//!
//! A stage is re-derived every cycle from what is there, never stored: a gap that leaves too
//! little unbroken history sends a series back to `reactive` until the features have a row
//! again, and an own model that cannot forecast (a gap at the origin) leaves the global one
//! to try.

use crate::series::format_duration;

/// `run.own_model_after` when not set: 4 days of history. Measured with
/// `examples/cold_start.rs` on the 16 shared traces that resample to 5 minutes (two held-out
/// periods each): an own model's p90 pinball beat the global one's in 14/32 cases at 12 h,
/// 16/32 at 1 day, 18/32 at 2 days, 20/32 at 3 days and 22/32 at 4 days (median ratio 0.92).
/// Four days is the shortest history at which own models won two cases in three.
pub const DEFAULT_OWN_MODEL_AFTER: i64 = 4 * 86_400;

/// History (seconds) from which the global model's forecasts are used as they are.
pub const WIDEN_UNTIL: i64 = 86_400;

/// The margin on a global forecast made with the least history that makes one.
pub const WIDEN_AT_START: f64 = 1.06;

/// Which forecaster a series is planned with this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// No forecast yet: the reactive need alone.
    Reactive,
    /// The shared model of `run.model`.
    Global,
    /// A model trained on the series' own history.
    Own,
}

impl Stage {
    /// Every stage, in the order a workload goes through them.
    pub const ALL: [Stage; 3] = [Stage::Reactive, Stage::Global, Stage::Own];
    /// Their labels, as `prescale_forecast_stage{stage}` exports them.
    pub const LABELS: [&'static str; 3] = ["reactive", "global", "own"];

    /// The stage's label: `reactive`, `global` or `own`.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Reactive => Self::LABELS[0],
            Stage::Global => Self::LABELS[1],
            Stage::Own => Self::LABELS[2],
        }
    }
}

/// One series' stage this cycle and what it rests on, for the decision's reason.
#[derive(Debug, Clone, PartialEq)]
pub struct StageView {
    /// The stage.
    pub stage: Stage,
    /// Seconds of history held (samples × step); in `reactive`, of unbroken history since the
    /// last gap, which is what the features need.
    pub history: i64,
    /// Seconds of unbroken history the first forecast needs.
    pub needed: i64,
    /// Since when an own model is used (Unix seconds), in `own`.
    pub own_since: Option<i64>,
    /// The margin on the forecast handed to the planner (1 = none).
    pub widen: f64,
    /// `run.own_model_after`, if own models are on.
    pub own_after: Option<i64>,
}

impl StageView {
    /// The stage of a series with `history` seconds of history (`unbroken` of them since the
    /// last gap): `own` when its own model forecast (`own_since` is then when it was adopted),
    /// else `global` when the global model did, else `reactive`.
    pub fn derive(
        history: i64,
        unbroken: i64,
        needed: i64,
        global_forecast: bool,
        own_since: Option<i64>,
        own_after: Option<i64>,
    ) -> StageView {
        let stage = match (own_since, global_forecast) {
            (Some(_), _) => Stage::Own,
            (None, true) => Stage::Global,
            (None, false) => Stage::Reactive,
        };
        StageView {
            stage,
            history: if stage == Stage::Reactive {
                unbroken
            } else {
                history
            },
            needed,
            own_since,
            widen: if stage == Stage::Global {
                widen_factor(history, needed)
            } else {
                1.0
            },
            own_after,
        }
    }

    /// The reason's opening words: "reactive: 20m of history, forecasts from 1h 5m", "global
    /// model: 20h of history, forecast × 1.04 until 1day", "own model since 2026-…".
    pub fn reason(&self) -> String {
        let h = format_duration(self.history);
        match self.stage {
            Stage::Reactive => format!(
                "reactive: {h} of history, forecasts from {}",
                format_duration(self.needed)
            ),
            Stage::Global => {
                let mut s = format!("global model: {h} of history");
                // Shown while it still rounds to a visible margin.
                if self.widen >= 1.005 {
                    s.push_str(&format!(
                        ", forecast × {:.2} until {}",
                        self.widen,
                        format_duration(WIDEN_UNTIL)
                    ));
                }
                if let Some(after) = self.own_after.filter(|a| self.history < *a) {
                    s.push_str(&format!(
                        ", own model tried from {}",
                        format_duration(after)
                    ));
                }
                s
            }
            Stage::Own => format!(
                "own model since {} ({h} of history)",
                crate::series::format_timestamp(self.own_since.unwrap_or(0))
            ),
        }
    }
}

/// The margin on a global forecast made with `history` seconds of history, when the first
/// forecast needs `needed`: [`WIDEN_AT_START`] at `needed`, shrinking linearly to 1 at
/// [`WIDEN_UNTIL`], 1 from there on.
pub fn widen_factor(history: i64, needed: i64) -> f64 {
    if history >= WIDEN_UNTIL {
        return 1.0;
    }
    let span = (WIDEN_UNTIL - needed).max(1) as f64;
    let left = ((WIDEN_UNTIL - history.max(needed)) as f64 / span).clamp(0.0, 1.0);
    1.0 + (WIDEN_AT_START - 1.0) * left
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEED: i64 = 13 * 300;

    #[test]
    fn stages_follow_history_and_models() {
        let s = StageView::derive(600, 600, NEED, false, None, Some(4 * 86_400));
        assert_eq!(s.stage, Stage::Reactive);
        assert_eq!(s.widen, 1.0);
        assert_eq!(s.reason(), "reactive: 10m of history, forecasts from 1h 5m");
        // A gap: the unbroken part is what reactive reports.
        let s = StageView::derive(86_400, 1_200, NEED, false, None, None);
        assert_eq!((s.stage, s.history), (Stage::Reactive, 1_200));
        let s = StageView::derive(20 * 3600, 20 * 3600, NEED, true, None, Some(4 * 86_400));
        assert_eq!(s.stage, Stage::Global);
        assert!(s.widen > 1.0 && s.widen < 1.05, "{}", s.widen);
        assert!(
            s.reason()
                .starts_with("global model: 20h of history, forecast × 1.0"),
            "{}",
            s.reason()
        );
        assert!(
            s.reason().ends_with(", own model tried from 4days"),
            "{}",
            s.reason()
        );
        let s = StageView::derive(5 * 86_400, 5 * 86_400, NEED, true, None, Some(4 * 86_400));
        assert_eq!((s.stage, s.widen), (Stage::Global, 1.0));
        assert_eq!(s.reason(), "global model: 5days of history");
        let s = StageView::derive(5 * 86_400, 0, NEED, false, Some(1_800_000_000), None);
        assert_eq!(s.stage, Stage::Own);
        assert_eq!(
            s.reason(),
            "own model since 2027-01-15T08:00:00Z (5days of history)"
        );
    }

    #[test]
    fn widening_shrinks_from_its_start_to_nothing_at_a_day() {
        assert_eq!(widen_factor(NEED, NEED), WIDEN_AT_START);
        assert_eq!(widen_factor(0, NEED), WIDEN_AT_START);
        let mid = widen_factor((NEED + WIDEN_UNTIL) / 2, NEED);
        assert!((mid - (1.0 + WIDEN_AT_START) / 2.0).abs() < 1e-3, "{mid}");
        assert_eq!(widen_factor(WIDEN_UNTIL, NEED), 1.0);
        assert_eq!(widen_factor(30 * 86_400, NEED), 1.0);
        let mut last = f64::INFINITY;
        for h in (0..WIDEN_UNTIL).step_by(300) {
            let w = widen_factor(h, NEED);
            assert!(w <= last && w >= 1.0);
            last = w;
        }
    }

    #[test]
    fn labels_are_the_exported_ones() {
        let labels: Vec<_> = Stage::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(labels, Stage::LABELS);
    }
}
