//! Features and targets, computed in one pass over a fixed-step buffer.
//!
//! The same [`compute`] serves training (every origin of a long history), backtests and the
//! live loop (one origin: the newest value of a ring), so there is no second, offline-only copy
//! that could drift. All value features are divided by a recent *level* of the series, which
//! makes them scale-free: one global model can learn from series of any size and forecast a
//! series it never saw.

mod latest;

pub use latest::{latest, Latest};

use ndarray::Array2;
use std::collections::VecDeque;
use std::ops::Range;

/// Normalised values are clipped to this, so an idle series that wakes up cannot produce a
/// ratio of 10^9 that would dominate every split of the forest.
const RATIO_CAP: f64 = 1_000.0;

/// What to compute, fixed at training time and stored in the model so the live loop computes
/// exactly the same features.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureSpec {
    /// Seconds per step.
    pub step: i64,
    /// Seconds of the forecast window (t, t + window].
    pub window: i64,
    /// Point lags, in steps (0 = the newest value).
    pub lags: Vec<usize>,
    /// Rolling windows (mean, max, std each), in steps.
    pub rolling: Vec<usize>,
    /// Steps over which the normalising level is the mean.
    pub level_steps: usize,
    /// Steps in a day and a week, for the seasonal features (0 = not used).
    pub season: Vec<usize>,
    /// Fewest steps of unbroken history before an origin gets a row.
    pub min_history: usize,
}

/// One row per usable origin.
#[derive(Debug, Clone)]
pub struct Rows {
    /// Features, one row per origin.
    pub x: Array2<f64>,
    /// The index (into the values given) of each row's origin.
    pub origin: Vec<usize>,
    /// The level each row was normalised by; multiply a forecast by it to get real units.
    pub level: Vec<f64>,
    /// The peak of the last window (clipped at the last gap): the persistence forecast that
    /// the target is measured from.
    pub base: Vec<f64>,
    /// (Peak over the next window − base) / level; `NaN` where that window is not (entirely)
    /// known yet or crosses a gap. Learning the change from persistence rather than the level
    /// itself means the forest's default is persistence, which is hard to beat on series that
    /// wander like a random walk, and it only has to learn the corrections.
    pub target: Vec<f64>,
    /// Origins asked for that got no row (a gap at the origin, or too little history since
    /// the last gap).
    pub skipped: usize,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.origin.len()
    }

    /// True when no origin gave a row.
    pub fn is_empty(&self) -> bool {
        self.origin.is_empty()
    }
}

fn steps(seconds: i64, step: i64) -> usize {
    ((seconds as f64 / step as f64).round() as usize).max(1)
}

/// Why a feature spec cannot be made, or cannot serve data of another step or window.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    /// The sampling step is shorter than a second.
    #[error("step must be at least 1s, got {step}s")]
    Step {
        /// The step asked for, seconds.
        step: i64,
    },
    /// The forecast window is shorter than a second.
    #[error("window must be at least 1s, got {window}s")]
    Window {
        /// The window asked for, seconds.
        window: i64,
    },
    /// The data's step is not the one the model was trained on.
    #[error("the model was trained on a {trained}s step, the data has a {found}s step")]
    StepMismatch {
        /// The model's step, seconds.
        trained: i64,
        /// The data's step, seconds.
        found: i64,
    },
    /// The window asked for is not the one the model forecasts.
    #[error("the model forecasts a {trained}s window, {asked}s was asked for")]
    WindowMismatch {
        /// The model's window, seconds.
        trained: i64,
        /// The window asked for, seconds.
        asked: i64,
    },
}

impl FeatureSpec {
    /// The standard set of features for a step and a forecast window (both in seconds).
    ///
    /// Lags are in steps (the most recent samples carry the most information whatever the
    /// step); rolling windows are in time (the window itself, 1 h, 6 h, 24 h) so they mean the
    /// same for 1-minute and 5-minute data.
    pub fn new(step: i64, window: i64) -> Result<Self, FeatureError> {
        if step < 1 {
            return Err(FeatureError::Step { step });
        }
        if window < 1 {
            return Err(FeatureError::Window { window });
        }
        let h = horizon_steps(step, window);
        let rolling = vec![
            h.max(3),
            steps(3600, step).max(2),
            steps(6 * 3600, step).max(2),
            steps(24 * 3600, step).max(2),
        ];
        Ok(FeatureSpec {
            step,
            window,
            // Every step of the last twelve, not a sparse 0, 1, 2, 3, 6, 12: on noisy per-minute
            // counts the forest needs the recent values themselves to average the noise away
            // (what the plain forest the yardstick compares against does; the yardstick's cost
            // at 1 % short improved with it, see the README).
            lags: (0..12).collect(),
            rolling,
            level_steps: steps(3600, step).max(3),
            season: vec![steps(86_400, step), steps(7 * 86_400, step)],
            min_history: 13,
        })
    }

    /// Steps in the forecast window: the window rounded up to whole steps, at least one.
    pub fn horizon(&self) -> usize {
        horizon_steps(self.step, self.window)
    }

    /// Number of features per row.
    pub fn n_features(&self) -> usize {
        self.lags.len() + 3 * self.rolling.len() + 2 * self.season.len() + 4
    }

    /// Feature names, in column order (for reports and importances).
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lags.iter().map(|k| format!("lag_{k}")).collect();
        for w in &self.rolling {
            for stat in ["mean", "max", "std"] {
                out.push(format!("roll{w}_{stat}"));
            }
        }
        for d in &self.season {
            out.push(format!("season{d}_peak"));
            out.push(format!("season{d}_known"));
        }
        out.extend(["hour_sin", "hour_cos", "dow_sin", "dow_cos"].map(String::from));
        out
    }

    /// Steps of unbroken history before an origin that the rolling part looks at.
    fn lookback(&self) -> usize {
        let lag = self.lags.iter().copied().max().unwrap_or(0) + 1;
        let roll = self.rolling.iter().copied().max().unwrap_or(1);
        lag.max(roll).max(self.level_steps).max(self.min_history)
    }

    /// How many newest values the live loop must hand over so that the newest origin gets the
    /// same features it would get from a full history.
    pub fn history_needed(&self) -> usize {
        let season = self.season.iter().copied().max().unwrap_or(0);
        self.lookback().max(season + 1)
    }

    /// The parts of `n` newest values (the origin last) that [`latest`] reads: the lookback
    /// before the origin, and each season's window one season back. Everything else may be
    /// left out (see [`Ring::tail_parts_into`](crate::series::Ring::tail_parts_into)) without
    /// changing a bit of the row.
    pub fn latest_reads(&self, n: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        let h = self.horizon();
        let recent = n.saturating_sub(self.lookback() + 1)..n;
        let seasons = self
            .season
            .iter()
            .filter_map(move |&d| n.checked_sub(d).map(|lo| lo..(lo + h).min(n)));
        std::iter::once(recent).chain(seasons)
    }

    /// Checks that a model trained with `self` can serve data described by `other`.
    pub fn check_compatible(&self, step: i64, window: i64) -> Result<(), FeatureError> {
        if step != self.step {
            return Err(FeatureError::StepMismatch {
                trained: self.step,
                found: step,
            });
        }
        if window != self.window {
            return Err(FeatureError::WindowMismatch {
                trained: self.window,
                asked: window,
            });
        }
        Ok(())
    }
}

fn horizon_steps(step: i64, window: i64) -> usize {
    (((window + step - 1) / step) as usize).max(1)
}

/// Peak of `values[range]` when every value there is finite.
fn window_peak(values: &[f64], range: Range<usize>) -> Option<f64> {
    if range.end > values.len() || range.is_empty() {
        return None;
    }
    values[range]
        .iter()
        .try_fold(f64::NEG_INFINITY, |m, &v| v.is_finite().then(|| m.max(v)))
}

/// A rolling maximum over the last `w` indices, by a monotonic deque: O(1) amortised a step.
struct RollingMax {
    w: usize,
    q: VecDeque<(usize, f64)>,
}

impl RollingMax {
    fn push(&mut self, i: usize, v: f64) -> f64 {
        while self.q.back().is_some_and(|&(_, b)| b <= v) {
            self.q.pop_back();
        }
        self.q.push_back((i, v));
        while self.q.front().is_some_and(|&(j, _)| j + self.w <= i) {
            self.q.pop_front();
        }
        self.q.front().map_or(v, |&(_, m)| m)
    }
}

/// Computes feature rows for the origins in `origins` (indices into `values`, whose first value
/// is at `start` Unix seconds). One pass runs from far enough before the first origin that every
/// rolling window is complete; windows never reach back across a gap (`NaN`): they start at the
/// gap's end instead.
pub fn compute(spec: &FeatureSpec, values: &[f64], start: i64, origins: Range<usize>) -> Rows {
    let end = origins.end.min(values.len());
    let first = origins.start.min(end);
    let nf = spec.n_features();
    let h = spec.horizon();
    let begin = first.saturating_sub(spec.lookback());
    let long = spec.rolling.iter().copied().max().unwrap_or(1);

    let mut x: Vec<f64> = Vec::with_capacity((end - first) * nf);
    let (mut origin, mut level, mut target, mut base) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut skipped = 0;

    // Prefix sums of value and value² since `begin` (gaps count as 0; windows never cover them).
    let mut s1 = Vec::with_capacity(end - begin + 1);
    let mut s2 = Vec::with_capacity(end - begin + 1);
    let mut sa = Vec::with_capacity(end - begin + 1);
    s1.push(0.0);
    s2.push(0.0);
    sa.push(0.0);
    let mut maxes: Vec<RollingMax> = spec
        .rolling
        .iter()
        .map(|&w| RollingMax {
            w,
            q: VecDeque::new(),
        })
        .collect();
    let mut abs_max = RollingMax {
        w: long,
        q: VecDeque::new(),
    };
    let mut last_window = RollingMax {
        w: h,
        q: VecDeque::new(),
    };
    let mut roll_max = vec![0.0; spec.rolling.len()];
    let mut seg_start = begin;
    let mut row = vec![0.0; nf];

    for t in begin..end {
        let v = values[t];
        let k = t - begin;
        let finite = v.is_finite();
        let vv = if finite { v } else { 0.0 };
        s1.push(s1[k] + vv);
        s2.push(s2[k] + vv * vv);
        sa.push(sa[k] + vv.abs());
        if !finite {
            seg_start = t + 1;
            maxes.iter_mut().for_each(|m| m.q.clear());
            abs_max.q.clear();
            last_window.q.clear();
            if t >= first {
                skipped += 1;
            }
            continue;
        }
        for (m, out) in maxes.iter_mut().zip(roll_max.iter_mut()) {
            *out = m.push(t, v);
        }
        let abs_peak = abs_max.push(t, v.abs());
        let recent = last_window.push(t, v);
        if t < first {
            continue;
        }
        if t + 1 - seg_start < spec.min_history {
            skipped += 1;
            continue;
        }
        // Mean over the last `w` values of this segment, from the prefix sums.
        let mean_of = |sums: &[f64], w: usize| {
            let lo = (t + 1).saturating_sub(w).max(seg_start) - begin;
            (sums[k + 1] - sums[lo]) / (k + 1 - lo) as f64
        };
        let lvl = mean_of(&sa, spec.level_steps)
            .max(0.1 * mean_of(&sa, long))
            .max(0.01 * abs_peak)
            .max(1e-9);
        let norm = |v: f64| (v / lvl).clamp(-RATIO_CAP, RATIO_CAP);

        let mut c = 0;
        for &lag in &spec.lags {
            let i = t.saturating_sub(lag).max(seg_start);
            row[c] = norm(values[i]);
            c += 1;
        }
        for (j, &w) in spec.rolling.iter().enumerate() {
            let m = mean_of(&s1, w);
            let var = (mean_of(&s2, w) - m * m).max(0.0);
            row[c] = norm(m);
            row[c + 1] = norm(roll_max[j]);
            row[c + 2] = norm(var.sqrt());
            c += 3;
        }
        seasonal_columns(spec, values, t, h, roll_max[0], norm, &mut row[c..]);
        c += 2 * spec.season.len();
        calendar_columns(start + t as i64 * spec.step, &mut row[c..]);

        x.extend_from_slice(&row);
        origin.push(t);
        level.push(lvl);
        base.push(recent);
        target.push(window_peak(values, t + 1..t + 1 + h).map_or(f64::NAN, |p| norm(p - recent)));
    }
    let n = origin.len();
    Rows {
        x: Array2::from_shape_vec((n, nf), x).expect("rows are nf wide by construction"),
        origin,
        level,
        base,
        target,
        skipped,
    }
}

/// Seasonal columns of the row at origin `t`, two per season: the peak of the same window one
/// season back; where that is unknown, the recent peak stands in and the flag says so, so the
/// forest can tell the two apart.
#[inline]
fn seasonal_columns(
    spec: &FeatureSpec,
    values: &[f64],
    t: usize,
    h: usize,
    recent_peak: f64,
    norm: impl Fn(f64) -> f64,
    row: &mut [f64],
) {
    let mut c = 0;
    for &d in &spec.season {
        // The same window one season back ends at t + h - d, which lies in the future (the
        // target itself) when the season is shorter than the window: clip it at the origin so
        // a row only ever reads values at or before t.
        let past = (t + 1)
            .checked_sub(d)
            .map(|lo| window_peak(values, lo..(lo + h).min(t + 1)));
        match past.flatten() {
            Some(p) => {
                row[c] = norm(p);
                row[c + 1] = 1.0;
            }
            None => {
                row[c] = norm(recent_peak);
                row[c + 1] = 0.0;
            }
        }
        c += 2;
    }
}

/// The four calendar columns at `ts`: hour of day and day of week on the unit circle, so 23:00
/// sits next to 00:00 and Sunday next to Monday.
#[inline]
fn calendar_columns(ts: i64, row: &mut [f64]) {
    let (hour, dow) = calendar(ts);
    let tau = std::f64::consts::TAU;
    row[0] = (tau * hour / 24.0).sin();
    row[1] = (tau * hour / 24.0).cos();
    row[2] = (tau * dow / 7.0).sin();
    row[3] = (tau * dow / 7.0).cos();
}

/// Fractional hour of day and day of week (Monday = 0), UTC.
fn calendar(ts: i64) -> (f64, f64) {
    let day = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    let dow = (day + 3).rem_euclid(7);
    (secs as f64 / 3600.0, dow as f64 + secs as f64 / 86_400.0)
}

/// The actual peak over (t, t + horizon] in real units, when it is fully known.
pub fn actual_peak(spec: &FeatureSpec, values: &[f64], t: usize) -> Option<f64> {
    window_peak(values, t + 1..t + 1 + spec.horizon())
}

/// The persistence baseline: the peak of the last window [t - horizon + 1, t].
pub fn persistence(spec: &FeatureSpec, values: &[f64], t: usize) -> Option<f64> {
    let h = spec.horizon();
    (t + 1)
        .checked_sub(h)
        .and_then(|lo| window_peak(values, lo..t + 1))
}

/// The seasonal-naive baseline: the peak of the same window one day earlier.
pub fn seasonal_naive(spec: &FeatureSpec, values: &[f64], t: usize) -> Option<f64> {
    let d = *spec.season.first()?;
    // Clipped at the origin like the seasonal feature: a baseline must not see the future.
    (t + 1)
        .checked_sub(d)
        .and_then(|lo| window_peak(values, lo..(lo + spec.horizon()).min(t + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    fn spec() -> FeatureSpec {
        // 1-minute step, 3-minute window: h = 3; rolling (3, 60, 360, 1440); level over 60.
        // Sparse lags (the standard set before it took every step of the last twelve) keep the
        // hand-computed column indices below short; models trained with them still load.
        FeatureSpec {
            lags: vec![0, 1, 2, 3, 6, 12],
            ..FeatureSpec::new(60, 180).unwrap()
        }
    }

    #[test]
    fn spec_shapes() {
        let s = spec();
        assert_eq!(s.horizon(), 3);
        assert_eq!(s.rolling, vec![3, 60, 360, 1440]);
        assert_eq!(s.season, vec![1440, 10080]);
        assert_eq!(s.n_features(), 26);
        assert_eq!(s.names().len(), 26);
        let standard = FeatureSpec::new(60, 180).unwrap();
        assert_eq!(standard.lags, (0..12).collect::<Vec<_>>());
        assert_eq!(standard.n_features(), 32);
        assert_eq!(standard.names().len(), 32);
        assert_eq!(s.history_needed(), 10081);
        // A coarse step still gets at least one step of window.
        assert_eq!(FeatureSpec::new(1800, 900).unwrap().horizon(), 1);
        assert!(FeatureSpec::new(0, 900).is_err());
    }

    #[test]
    fn hand_computed_row() {
        let s = spec();
        // 20 values: 1..=20 (level window 60 > 20 so the level is the mean of what exists).
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        // 2024-01-01T00:00:00Z is a Monday.
        let start = 1_704_067_200;
        let rows = compute(&s, &values, start, 15..16);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows.origin, vec![15]);
        let r = rows.x.row(0);
        // Level: mean |v| of values[0..=15] = 8.5 (other floors are smaller).
        let lvl = 8.5;
        assert_abs_diff_eq!(rows.level[0], lvl);
        // Lags 0,1,2,3,6,12 of index 15: values 16, 15, 14, 13, 10, 4.
        for (c, v) in [16.0, 15.0, 14.0, 13.0, 10.0, 4.0].iter().enumerate() {
            assert_abs_diff_eq!(r[c], v / lvl, epsilon = 1e-12);
        }
        // Rolling window 3: values 14, 15, 16 → mean 15, max 16, std sqrt(2/3).
        assert_abs_diff_eq!(r[6], 15.0 / lvl, epsilon = 1e-12);
        assert_abs_diff_eq!(r[7], 16.0 / lvl, epsilon = 1e-12);
        assert_abs_diff_eq!(r[8], (2.0f64 / 3.0).sqrt() / lvl, epsilon = 1e-9);
        // Rolling window 60 is clipped to the 16 values there are: mean 8.5, max 16.
        assert_abs_diff_eq!(r[9], 1.0, epsilon = 1e-12);
        assert_abs_diff_eq!(r[10], 16.0 / lvl, epsilon = 1e-12);
        // Population std of 1..=16 = sqrt((16² - 1) / 12).
        assert_abs_diff_eq!(r[11], ((255.0f64) / 12.0).sqrt() / lvl, epsilon = 1e-9);
        // No day or week of history: seasonal peak falls back to the recent peak, flag 0.
        assert_abs_diff_eq!(r[18], 16.0 / lvl, epsilon = 1e-12);
        assert_eq!(r[19], 0.0);
        assert_eq!(r[21], 0.0);
        // 00:15 on a Monday.
        let hour: f64 = 0.25;
        assert_abs_diff_eq!(
            r[22],
            (std::f64::consts::TAU * hour / 24.0).sin(),
            epsilon = 1e-12
        );
        assert_abs_diff_eq!(
            r[24],
            (std::f64::consts::TAU * (hour / 24.0) / 7.0).sin(),
            epsilon = 1e-12
        );
        // Base: peak of the last 3 values = 16; target: (peak of values[16..19] = 19) − 16.
        assert_eq!(rows.base[0], 16.0);
        assert_abs_diff_eq!(rows.target[0], 3.0 / lvl, epsilon = 1e-12);
    }

    #[test]
    fn seasonal_lag_uses_the_same_window_a_day_back() {
        let s = spec();
        let values: Vec<f64> = (0..1500).map(|i| (i % 1440) as f64 + 1.0).collect();
        let t = 1460;
        let rows = compute(&s, &values, 0, t..t + 1);
        // One day back the window (t-1440, t-1440+3] holds values at 21, 22, 23 → 22, 23, 24.
        assert_eq!(rows.x[[0, 19]], 1.0);
        assert_abs_diff_eq!(rows.x[[0, 18]] * rows.level[0], 24.0, epsilon = 1e-9);
        assert_eq!(seasonal_naive(&s, &values, t), Some(24.0));
        assert_eq!(persistence(&s, &values, t), Some(values[t]));
        assert_eq!(actual_peak(&s, &values, t), Some(values[t + 3]));
    }

    #[test]
    fn rows_never_read_past_their_origin() {
        // A season (2 steps) shorter than the window (3 steps): one season back, the window
        // would end a step after the origin. Changing every value after the origin must not
        // change the row (only the target).
        let mut s = spec();
        s.season = vec![2, 1440];
        let values: Vec<f64> = (0..40).map(|i| 10.0 + (i % 5) as f64).collect();
        let t = 30;
        let a = compute(&s, &values, 0, t..t + 1);
        let mut future_changed = values.clone();
        future_changed[t + 1..].iter_mut().for_each(|v| *v = 1e6);
        let b = compute(&s, &future_changed, 0, t..t + 1);
        assert_eq!(a.x, b.x);
        assert_ne!(a.target, b.target);
        // The short season's peak covers values[t - 1..=t] only: max(14, 10) here.
        assert_abs_diff_eq!(
            a.x[[0, 18]] * a.level[0],
            values[t - 1].max(values[t]),
            epsilon = 1e-9
        );
        assert_eq!(a.x[[0, 19]], 1.0);
    }

    #[test]
    fn windows_do_not_cross_gaps_and_targets_do_not_either() {
        let s = spec();
        let mut values: Vec<f64> = (0..60).map(|i| 100.0 + i as f64).collect();
        values[30] = f64::NAN;
        let rows = compute(&s, &values, 0, 0..60);
        // Origins 0..12 lack history; 30 is a gap; 31..43 lack history since the gap.
        assert_eq!(rows.skipped, 12 + 1 + 12);
        assert!(rows.origin.iter().all(|&o| !(30..43).contains(&o)));
        // The first row after the gap sees only its own segment: its 60-step mean is of 31..=43.
        let i = rows.origin.iter().position(|&o| o == 43).unwrap();
        let mean: f64 = (31..=43).map(|k| values[k]).sum::<f64>() / 13.0;
        assert_abs_diff_eq!(rows.x[[i, 9]] * rows.level[i], mean, epsilon = 1e-9);
        // Origins whose target window holds the gap (27, 28, 29) have no target.
        for o in 27..30 {
            let j = rows.origin.iter().position(|&x| x == o).unwrap();
            assert!(rows.target[j].is_nan());
        }
        // The last origins have no future to score against.
        assert!(rows.target.last().unwrap().is_nan());
    }

    #[test]
    fn live_row_equals_offline_row() {
        let s = FeatureSpec::new(300, 900).unwrap();
        let values: Vec<f64> = (0..5000)
            .map(|i| 50.0 + 30.0 * ((i as f64) / 40.0).sin())
            .collect();
        let full = compute(&s, &values, 1_700_000_000, 0..values.len());
        let need = s.history_needed();
        let tail = &values[values.len() - need..];
        let tail_start = 1_700_000_000 + 300 * (values.len() - need) as i64;
        let live = compute(&s, tail, tail_start, need - 1..need);
        assert_eq!(live.len(), 1);
        let last = full.len() - 1;
        for c in 0..s.n_features() {
            assert_abs_diff_eq!(live.x[[0, c]], full.x[[last, c]], epsilon = 1e-9);
        }
        assert_abs_diff_eq!(live.level[0], full.level[last], epsilon = 1e-9);
    }

    #[test]
    fn idle_series_stay_bounded() {
        let s = spec();
        let mut values = vec![0.0; 100];
        values[99] = 1e12;
        let rows = compute(&s, &values, 0, 0..100);
        assert!(rows.x.iter().all(|v| v.is_finite() && v.abs() <= RATIO_CAP));
        assert!(rows
            .target
            .iter()
            .filter(|v| v.is_finite())
            .all(|v| v.abs() <= RATIO_CAP));
    }
}
