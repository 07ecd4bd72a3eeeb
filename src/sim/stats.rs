//! The statistics both simulator parts need (a percentile, Jain's fairness index). It lives here, below both, so that batch
//! scheduling does not import trace replay for it.

/// The `pct` percentile (0–100) of the finite values, linearly interpolated; `None` if there
/// are none.
pub fn percentile(values: &[f64], pct: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = (pct.clamp(0.0, 100.0) / 100.0) * (v.len() - 1) as f64;
    let i = pos.floor() as usize;
    let f = pos - i as f64;
    let j = (i + 1).min(v.len() - 1);
    Some(v[i] + f * (v[j] - v[i]))
}

/// Jain's fairness index of `x`: (Σx)² / (n · Σx²), 1 when all are equal, 1/n when one has
/// everything; 1 for an empty or all-zero vector (nobody is treated worse than anyone).
pub fn jain_index(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().sum();
    let squares: f64 = x.iter().map(|v| v * v).sum();
    if x.is_empty() || squares == 0.0 {
        1.0
    } else {
        sum * sum / (x.len() as f64 * squares)
    }
}
