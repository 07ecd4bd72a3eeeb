//! The one statistic both simulator parts need. It lives here, below both, so that batch
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
