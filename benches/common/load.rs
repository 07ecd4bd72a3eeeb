//! The synthetic load the scale and quantile benches forecast, so both measure the same
//! series. Include it with `#[path = "common/load.rs"] mod load;`.

/// A value of series `i` at `ts`: a daily wave of the series' own size and phase, plus noise
/// from the LCG state `s`.
pub fn value(i: usize, ts: i64, s: &mut u64) -> f64 {
    *s = s
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let u = (*s >> 11) as f64 / (1u64 << 53) as f64;
    let size = 10.0 + (i % 97) as f64 * 3.0;
    let hour = (ts % 86_400) as f64 / 3600.0 + (i % 24) as f64;
    size * (1.0 + 0.5 * (std::f64::consts::TAU * hour / 24.0).sin() + 0.2 * u)
}
