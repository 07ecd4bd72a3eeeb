//! Rolling-origin evaluation of a model over the held-out tail of each series, against the
//! persistence and seasonal-naive baselines scored on exactly the same points.
//!
//! At every origin t of the tail the model sees only values up to t (features never look
//! ahead) and forecasts the peak over (t, t + window]; the model itself is fixed, not refitted
//! per origin, which is how it would run between retrainings. The model's quantiles are
//! corrected online ([`online`]) exactly as the live loop corrects them, each
//! origin learning only from targets complete by then, unless the caller turns that off.

use super::features::{actual_peak, persistence, seasonal_naive};
use super::model::Model;
use super::online::{self, OnlineConfig};
use crate::series::{Series, SeriesKey};
use serde::Serialize;

mod report;
pub use report::{level_name, ForecastsCsvError, ReportError};

/// One scored origin.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The series.
    pub key: SeriesKey,
    /// The origin's timestamp, Unix seconds.
    pub ts: i64,
    /// The peak that actually came over (ts, ts + window].
    pub actual: f64,
    /// The model's quantiles, at the model's levels.
    pub quantiles: Vec<f64>,
    /// The persistence forecast (peak of the last window).
    pub persistence: f64,
    /// The seasonal-naive forecast (same window one day earlier), where a day of history exists.
    pub seasonal: Option<f64>,
}

/// Error figures of one forecaster on a set of points.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scores {
    /// Points scored.
    pub n: usize,
    /// Σ|actual − point| / Σ|actual|, the point being the median.
    pub wape: f64,
    /// Root mean squared error of the point forecast.
    pub rmse: f64,
    /// Mean absolute error relative to persistence's on the same points.
    pub mase: f64,
    /// `(level, share of actuals at or under that quantile)`; empty for point forecasts.
    pub coverage: Vec<(f64, f64)>,
    /// `(level, mean pinball loss / mean |actual|)`; for point forecasts the point stands in
    /// for every quantile.
    pub pinball: Vec<(f64, f64)>,
}

/// Scores of the model and the baselines on one set of points.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What was scored ("overall" or a series key).
    pub name: String,
    /// The model.
    pub model: Scores,
    /// Persistence.
    pub persistence: Scores,
    /// Seasonal naive, when it is defined on these points.
    pub seasonal: Option<Scores>,
    /// Why seasonal naive is missing, when it is.
    pub seasonal_note: Option<String>,
}

/// The whole backtest.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How the model was obtained (a file, or trained on the head of the history).
    pub model: String,
    /// Step and window, seconds.
    pub step: i64,
    /// Forecast window, seconds.
    pub window: i64,
    /// Share of each series held out.
    pub holdout: f64,
    /// Model quantile levels.
    pub levels: Vec<f64>,
    /// Step size of the online calibration applied to the model's quantiles; `None`: off.
    pub online_gain: Option<f64>,
    /// Whether the median was chosen online ([`OnlineConfig::median`](super::OnlineConfig::median)).
    pub online_median: bool,
    /// Per series.
    pub series: Vec<Comparison>,
    /// All points together.
    pub overall: Comparison,
    /// Every scored point.
    #[serde(skip)]
    pub points: Vec<Point>,
}

/// Index where the held-out tail of a series of `len` steps starts.
pub fn holdout_start(len: usize, holdout: f64) -> usize {
    let tail = (len as f64 * holdout.clamp(0.0, 1.0)).round() as usize;
    len - tail.min(len)
}

/// Scores `model` over the last `holdout` share of every series, its quantiles corrected
/// online per `online` (starting afresh at the tail, as a live loop starts with a new model).
pub fn run(
    model: &Model,
    series: &[Series],
    holdout: f64,
    model_name: &str,
    online: &OnlineConfig,
) -> Report {
    let starts: Vec<usize> = series
        .iter()
        .map(|s| holdout_start(s.len(), holdout))
        .collect();
    run_from(model, series, &starts, holdout, model_name, online)
}

/// [`run`] with each series scored from its own index in `starts` (the report still says
/// `holdout`): a model contest scores only what neither side was trained on.
pub(crate) fn run_from(
    model: &Model,
    series: &[Series],
    starts: &[usize],
    holdout: f64,
    model_name: &str,
    online: &OnlineConfig,
) -> Report {
    let spec = &model.spec;
    let mut points = Vec::new();
    let mut per_series = Vec::new();
    for (s, &from) in series.iter().zip(starts) {
        let from = from.min(s.len());
        let raw = model.forecast_range(&s.key, &s.values, s.start, from..s.len());
        let forecasts = online::replay(online, &s.values, s.start, s.step, raw);
        let mut pts: Vec<Point> = forecasts
            .into_iter()
            .filter_map(|(t, f)| {
                Some(Point {
                    key: s.key.clone(),
                    ts: f.at,
                    actual: actual_peak(spec, &s.values, t)?,
                    quantiles: f.quantiles.iter().map(|q| q.1).collect(),
                    persistence: persistence(spec, &s.values, t)?,
                    seasonal: seasonal_naive(spec, &s.values, t),
                })
            })
            .collect();
        per_series.push(compare(s.key.as_str(), &mut pts, &model.quantiles));
        points.extend(pts);
    }
    let overall = compare("overall", &mut points.clone(), &model.quantiles);
    Report {
        model: model_name.to_string(),
        step: spec.step,
        window: spec.window,
        holdout,
        levels: model.quantiles.clone(),
        online_gain: online.enabled.then_some(online.gain),
        online_median: online.enabled && online.median,
        series: per_series,
        overall,
        points,
    }
}

/// Scores the model and the baselines on the same points. Seasonal naive joins when it is
/// defined on at least half of them; the set is then narrowed to where it is, for all three.
fn compare(name: &str, pts: &mut Vec<Point>, levels: &[f64]) -> Comparison {
    let with_season = pts.iter().filter(|p| p.seasonal.is_some()).count();
    let (seasonal_note, use_season) = if pts.is_empty() {
        (Some("no points to score".to_string()), false)
    } else if with_season * 2 >= pts.len() {
        if with_season < pts.len() {
            pts.retain(|p| p.seasonal.is_some());
            (
                Some(format!(
                    "scored on the {with_season} points that have a day of history before them"
                )),
                true,
            )
        } else {
            (None, true)
        }
    } else {
        (
            Some(format!(
                "needs a day of history before each origin; {with_season} of {} points have it",
                pts.len()
            )),
            false,
        )
    };
    let actual: Vec<f64> = pts.iter().map(|p| p.actual).collect();
    let persist: Vec<f64> = pts.iter().map(|p| p.persistence).collect();
    let median = levels.iter().position(|&q| q >= 0.5).unwrap_or(0);
    let model_q: Vec<Vec<f64>> = pts.iter().map(|p| p.quantiles.clone()).collect();
    let model_pt: Vec<f64> = model_q.iter().map(|q| q[median]).collect();
    let p_mae = mae(&actual, &persist);
    let point_quantiles =
        |v: &[f64]| -> Vec<Vec<f64>> { v.iter().map(|&x| vec![x; levels.len()]).collect() };
    let model = scores(&actual, &model_pt, &model_q, levels, p_mae, true);
    let persistence = scores(
        &actual,
        &persist,
        &point_quantiles(&persist),
        levels,
        p_mae,
        false,
    );
    let seasonal = use_season.then(|| {
        let s: Vec<f64> = pts.iter().map(|p| p.seasonal.unwrap_or(f64::NAN)).collect();
        scores(&actual, &s, &point_quantiles(&s), levels, p_mae, false)
    });
    Comparison {
        name: name.to_string(),
        model,
        persistence,
        seasonal,
        seasonal_note,
    }
}

fn mae(a: &[f64], f: &[f64]) -> f64 {
    a.iter().zip(f).map(|(a, f)| (a - f).abs()).sum::<f64>() / a.len().max(1) as f64
}

fn scores(
    actual: &[f64],
    point: &[f64],
    quantiles: &[Vec<f64>],
    levels: &[f64],
    persistence_mae: f64,
    coverage: bool,
) -> Scores {
    let n = actual.len();
    let sum_abs: f64 = actual.iter().map(|a| a.abs()).sum();
    let abs_err: f64 = actual.iter().zip(point).map(|(a, f)| (a - f).abs()).sum();
    let sq_err: f64 = actual.iter().zip(point).map(|(a, f)| (a - f).powi(2)).sum();
    let mean_abs = sum_abs / n.max(1) as f64;
    let mut cov = Vec::new();
    let mut pin = Vec::new();
    for (j, &q) in levels.iter().enumerate() {
        let loss: f64 = actual
            .iter()
            .zip(quantiles)
            .map(|(&a, qs)| pinball(q, a, qs[j]))
            .sum::<f64>()
            / n.max(1) as f64;
        pin.push((q, loss / mean_abs));
        if coverage {
            let under = actual
                .iter()
                .zip(quantiles)
                .filter(|(&a, qs)| a <= qs[j])
                .count();
            cov.push((q, under as f64 / n.max(1) as f64));
        }
    }
    Scores {
        n,
        wape: abs_err / sum_abs,
        rmse: (sq_err / n.max(1) as f64).sqrt(),
        mase: (abs_err / n.max(1) as f64) / persistence_mae,
        coverage: cov,
        pinball: pin,
    }
}

/// The pinball (quantile) loss of forecasting `f` at level `q` when `a` came.
pub fn pinball(q: f64, a: f64, f: f64) -> f64 {
    let d = a - f;
    if d >= 0.0 {
        q * d
    } else {
        (q - 1.0) * d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    fn pt(actual: f64, q: [f64; 2], persistence: f64, seasonal: Option<f64>) -> Point {
        Point {
            key: SeriesKey::new("s"),
            ts: 0,
            actual,
            quantiles: q.to_vec(),
            persistence,
            seasonal,
        }
    }

    #[test]
    fn hand_checked_scores() {
        // Levels p50, p90. Three points.
        let levels = [0.5, 0.9];
        let mut pts = vec![
            pt(10.0, [8.0, 12.0], 9.0, Some(10.0)),
            pt(20.0, [22.0, 25.0], 15.0, Some(18.0)),
            pt(30.0, [30.0, 29.0], 20.0, Some(33.0)),
        ];
        let c = compare("s", &mut pts, &levels);
        // Model: errors 2, 2, 0 → WAPE 4/60; RMSE sqrt(8/3); persistence errors 1, 5, 10 → MAE 16/3.
        assert_abs_diff_eq!(c.model.wape, 4.0 / 60.0, epsilon = 1e-12);
        assert_abs_diff_eq!(c.model.rmse, (8.0f64 / 3.0).sqrt(), epsilon = 1e-12);
        assert_abs_diff_eq!(c.model.mase, (4.0 / 3.0) / (16.0 / 3.0), epsilon = 1e-12);
        assert_abs_diff_eq!(c.persistence.mase, 1.0, epsilon = 1e-12);
        assert_abs_diff_eq!(c.persistence.wape, 16.0 / 60.0, epsilon = 1e-12);
        // p90 coverage: 10 ≤ 12, 20 ≤ 25, 30 > 29 → 2/3; p50: 10 > 8, 20 ≤ 22, 30 ≤ 30 → 2/3.
        assert_eq!(c.model.coverage, vec![(0.5, 2.0 / 3.0), (0.9, 2.0 / 3.0)]);
        // Pinball at 0.9: 0.9·(10−12)→0.2, (20−25)→0.5, 0.9·(30−29)=0.9 → mean 1.6/3, / mean 20.
        assert_abs_diff_eq!(c.model.pinball[1].1, (1.6 / 3.0) / 20.0, epsilon = 1e-12);
        let s = c.seasonal.unwrap();
        // Seasonal errors 0, 2, 3 → WAPE 5/60, MASE (5/3)/(16/3).
        assert_abs_diff_eq!(s.wape, 5.0 / 60.0, epsilon = 1e-12);
        assert_abs_diff_eq!(s.mase, 5.0 / 16.0, epsilon = 1e-12);
        assert!(s.coverage.is_empty());
    }

    #[test]
    fn seasonal_narrows_or_drops_out() {
        let levels = [0.5, 0.9];
        let mut pts = vec![
            pt(10.0, [10.0, 10.0], 10.0, None),
            pt(20.0, [20.0, 20.0], 10.0, Some(20.0)),
            pt(30.0, [30.0, 30.0], 10.0, Some(30.0)),
        ];
        let c = compare("s", &mut pts, &levels);
        assert_eq!(c.model.n, 2);
        assert!(c.seasonal.is_some() && c.seasonal_note.unwrap().contains("2 points"));
        let mut pts = vec![
            pt(10.0, [10.0, 10.0], 10.0, None),
            pt(20.0, [20.0, 20.0], 10.0, None),
        ];
        let c = compare("s", &mut pts, &levels);
        assert_eq!(c.model.n, 2);
        assert!(c.seasonal.is_none() && c.seasonal_note.unwrap().contains("0 of 2"));
    }

    #[test]
    fn tiny_series_end_to_end() {
        use crate::forecast::{Model, TrainOptions};
        use crate::series::Series;
        // Hourly steps, a 1-hour window (one step ahead), three days: value = hour + 10·day.
        let values: Vec<f64> = (0..72)
            .map(|i| (i % 24) as f64 + 10.0 * (i / 24) as f64 + 1.0)
            .collect();
        let s = Series {
            key: SeriesKey::new("tiny"),
            start: 1_704_067_200,
            step: 3600,
            values: values.clone(),
        };
        let opts = TrainOptions {
            n_trees: 10,
            max_depth: 4,
            min_samples_leaf: 2,
            calibration_fraction: 0.0,
            ..TrainOptions::new(3600, 3600)
        };
        let history = Series {
            key: SeriesKey::new("history"),
            values: (0..240)
                .map(|i| (i % 24) as f64 + 10.0 * (i / 24) as f64 + 1.0)
                .collect(),
            ..s.clone()
        };
        let model = Model::train(&[history], &opts).unwrap();
        let r = run(
            &model,
            std::slice::from_ref(&s),
            0.25,
            "tiny",
            &OnlineConfig::default(),
        );
        // Tail starts at 54; origins 54..=70 have their next value: 17 points, all with a day
        // of history, so seasonal naive is scored on the same 17.
        let c = &r.series[0];
        assert_eq!(c.model.n, 17);
        assert_eq!(c.persistence.n, 17);
        assert!(c.seasonal_note.is_none());
        let (mut p_err, mut s_err, mut sum) = (0.0, 0.0, 0.0);
        for t in 54..71 {
            sum += values[t + 1];
            p_err += (values[t + 1] - values[t]).abs();
            s_err += (values[t + 1] - values[t + 1 - 24]).abs();
        }
        assert_abs_diff_eq!(c.persistence.wape, p_err / sum, epsilon = 1e-12);
        assert_abs_diff_eq!(
            c.seasonal.as_ref().unwrap().wape,
            s_err / sum,
            epsilon = 1e-12
        );
        assert_abs_diff_eq!(c.persistence.mase, 1.0, epsilon = 1e-12);
        // The tail is hours 6..23 of the third day: persistence is off by exactly 1 each hour,
        // seasonal naive by the 10 the level rose since yesterday.
        assert_abs_diff_eq!(p_err, 17.0, epsilon = 1e-12);
        assert_abs_diff_eq!(s_err, 170.0, epsilon = 1e-12);
        assert_eq!(r.points.len(), 17);
        assert_eq!(r.points[0].ts, s.timestamp(54));
        assert_eq!(r.points[0].actual, values[55]);
        // The overall block is the one series.
        assert_eq!(r.overall.model.n, 17);
        let dir = tempfile::tempdir().unwrap();
        let written = r.write(dir.path()).unwrap();
        assert!(written.iter().any(|p| p.ends_with("tiny.png")));
        r.write_forecasts_csv(&dir.path().join("f.csv")).unwrap();
        let text = std::fs::read_to_string(dir.path().join("f.csv")).unwrap();
        assert_eq!(text.lines().count(), 18);
        assert!(
            text.starts_with("timestamp,p50,p90,p95,p99\n2024-01-03T06:00:00Z,"),
            "{text}"
        );
    }

    #[test]
    fn names_and_holdout() {
        assert_eq!(level_name(0.9), "90");
        assert_eq!(level_name(0.995), "99.5");
        assert_eq!(holdout_start(100, 0.3), 70);
        assert_eq!(holdout_start(10, 1.5), 0);
        assert_eq!(pinball(0.9, 10.0, 8.0), 0.9 * 2.0);
        assert_abs_diff_eq!(pinball(0.9, 8.0, 10.0), 0.2, epsilon = 1e-12);
    }
}
