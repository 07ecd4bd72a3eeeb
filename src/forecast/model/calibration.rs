//! Quantile recalibration: forests are overconfident on data they did not see, so training
//! scores the first fit's quantiles on held-back rows (their PIT values) and keeps the table
//! that maps each nominal level to the forest level those rows actually fell under. The table
//! is part of the model file, so a loaded one is checked here too.

use super::super::forest::QuantileForest;
use ndarray::{Array1, Array2, Axis};

/// Calibration resolution: PIT quantiles at 1 %, 2 %, …, 99 %.
pub(super) const CALIB_POINTS: usize = 99;

/// Below this spread between the held-out rows' 5th and 95th PIT percentiles they carry no
/// information on the forest's spread (a well-calibrated forest gives 0.9, an overconfident
/// one more), and no table is kept.
const MIN_PIT_SPREAD: f64 = 0.05;

/// At most this many calibration rows are scored; more adds time, not precision.
const CALIB_MAX_ROWS: usize = 20_000;

/// What is wrong with a calibration table, if anything: it must be empty (identity) or hold
/// one level per grid point, each in (0, 1) and strictly increasing, so that calibrated
/// quantiles keep the order of their nominal levels.
pub(super) fn calibration_problem(table: &[f64]) -> Option<String> {
    if table.is_empty() {
        return None;
    }
    if table.len() != CALIB_POINTS {
        return Some(format!(
            "calibration table has {} points, expected 0 or {CALIB_POINTS}",
            table.len()
        ));
    }
    if let Some((k, v)) = table
        .iter()
        .enumerate()
        .find(|(_, v)| !(**v > 0.0 && **v < 1.0))
    {
        return Some(format!("calibration point {k} is {v}, not in (0, 1)"));
    }
    let k = table.windows(2).position(|w| w[1] <= w[0])?;
    Some(format!(
        "calibration table is not increasing at point {} ({} then {}), so quantiles would cross",
        k + 1,
        table[k],
        table[k + 1]
    ))
}

pub(super) fn grid_level(k: usize) -> f64 {
    (k + 1) as f64 / (CALIB_POINTS + 1) as f64
}

/// Maps a nominal level through the calibration table (identity when there is none).
pub(super) fn calibrated_level(table: &[f64], q: f64) -> f64 {
    if table.len() != CALIB_POINTS {
        return q;
    }
    let pos = q * (CALIB_POINTS + 1) as f64 - 1.0;
    if pos <= 0.0 {
        return table[0] * q / grid_level(0);
    }
    if pos >= (CALIB_POINTS - 1) as f64 {
        let last = table[CALIB_POINTS - 1];
        let f = (q - grid_level(CALIB_POINTS - 1)) / (1.0 - grid_level(CALIB_POINTS - 1));
        return (last + f * (1.0 - last)).min(1.0);
    }
    let i = pos.floor() as usize;
    let f = pos - i as f64;
    table[i] + f * (table[i + 1] - table[i])
}

/// Probability integral transform of each held-out target under the forest, then the PIT's own
/// quantiles: where a well-calibrated forest would have them at 1 %…99 %, an overconfident one
/// has them bunched at the ends. Returns the table and p90 coverage before and after.
pub(super) fn calibrate(
    forest: &QuantileForest,
    x: &Array2<f64>,
    y: &Array1<f64>,
) -> (Vec<f64>, f64, f64) {
    let step = (y.len() / CALIB_MAX_ROWS).max(1);
    let grid: Vec<f64> = (0..CALIB_POINTS).map(grid_level).collect();
    let idx: Vec<usize> = (0..y.len()).step_by(step).collect();
    let sub = x.select(Axis(0), &idx);
    let q = forest.predict_quantiles(sub.view(), &grid);
    let mut pit: Vec<f64> = idx
        .iter()
        .zip(q.axis_iter(Axis(0)))
        .map(|(&i, row)| pit_of(row.as_slice().unwrap_or(&[]), &grid, y[i]))
        .collect();
    let raw_cov = idx
        .iter()
        .zip(q.axis_iter(Axis(0)))
        .filter(|(&i, row)| y[i] <= row[89])
        .count() as f64
        / idx.len() as f64;
    pit.sort_by(f64::total_cmp);
    let n = pit.len();
    // Held-out rows that all fall at one point of the forest's distribution (a flat tail:
    // every target 0, every quantile 0) say nothing about its spread: a table from them would
    // read every level at that one point, p50 and p99 alike. No table (identity) instead.
    let spread = pit[(n * 19 / 20).min(n - 1)] - pit[n / 20];
    if spread < MIN_PIT_SPREAD {
        return (Vec::new(), raw_cov, raw_cov);
    }
    let mut table: Vec<f64> = grid
        .iter()
        .map(|&g| {
            let pos = g * (n - 1) as f64;
            let i = pos.floor() as usize;
            let f = pos - i as f64;
            pit[i] + f * (pit[(i + 1).min(n - 1)] - pit[i])
        })
        .collect();
    // Keep the map strictly increasing so quantiles stay ordered.
    for k in 1..table.len() {
        if table[k] <= table[k - 1] {
            table[k] = (table[k - 1] + 1e-6).min(1.0);
        }
    }
    let cal90 = calibrated_level(&table, 0.9);
    let qc = forest.predict_quantiles(sub.view(), &[cal90]);
    let cal_cov = idx
        .iter()
        .zip(qc.column(0))
        .filter(|(&i, &v)| y[i] <= v)
        .count() as f64
        / idx.len() as f64;
    (table, raw_cov, cal_cov)
}

/// The forest's CDF at `y`, read off its quantiles at `grid` levels; ties take the middle of
/// their range (a randomised PIT would be noisier for the same expectation).
pub(super) fn pit_of(q: &[f64], grid: &[f64], y: f64) -> f64 {
    // Leaves hold f32 offsets from the targets' centre: a target the forest has exactly comes
    // back a rounding away from it, which must count as a tie, not as above or below.
    let scale = q.iter().fold(y.abs(), |m, v| m.max(v.abs())).max(1.0);
    let tol = 8.0 * f64::from(f32::EPSILON) * scale;
    let below = q.partition_point(|&v| v < y - tol);
    let at_or_below = q.partition_point(|&v| v <= y + tol);
    let lo = if below == 0 { 0.0 } else { grid[below - 1] };
    let hi = if at_or_below == 0 {
        grid[0]
    } else if at_or_below >= grid.len() {
        1.0
    } else {
        grid[at_or_below]
    };
    if below == at_or_below && below > 0 && below < grid.len() {
        // Strictly between two grid quantiles: interpolate.
        let (a, b) = (q[below - 1], q[below]);
        let f = if b > a { (y - a) / (b - a) } else { 0.5 };
        return grid[below - 1] + f * (grid[below] - grid[below - 1]);
    }
    0.5 * (lo + hi)
}
