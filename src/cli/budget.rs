//! Training within this machine's memory: `--max-points`, or a refusal before training when
//! the history would not fit. Training holds about
//! [`TRAIN_BYTES_PER_POINT`](prescale::forecast::TRAIN_BYTES_PER_POINT) per point at its peak,
//! sixty times the history's own size, so a history that loads fine can still take the machine
//! down minutes into training; the estimate is checked against what the kernel says is
//! available (and the cgroup's limit, in a container) before the first tree.

use anyhow::{bail, Result};
use prescale::forecast::{spread_sample, TRAIN_BYTES_PER_POINT};
use prescale::series::Series;

/// `series` as training is handed them: a spread sample of at most `max_points` points when
/// given (said on stdout), else all of them if they fit in `available` bytes (`None`: unknown,
/// not checked).
pub(super) fn within(
    series: Vec<Series>,
    max_points: Option<usize>,
    available: Option<u64>,
) -> Result<Vec<Series>> {
    let lens: Vec<usize> = series.iter().map(Series::len).collect();
    let total: usize = lens.iter().sum();
    match max_points {
        Some(0) => bail!("--max-points must be at least 1"),
        Some(max) if total > max => {
            let keep = spread_sample(&lens, max);
            if keep.is_empty() {
                bail!(
                    "--max-points {max} is less than any one series holds (the shortest: {} \
                     points): series are trained on whole",
                    lens.iter().min().unwrap_or(&0)
                );
            }
            let mut keep = keep.into_iter().peekable();
            let n = series.len();
            let sample: Vec<Series> = series
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep.next_if(|k| k == i).is_some())
                .map(|(_, s)| s)
                .collect();
            println!(
                "training on a spread sample: {} of {n} series, {} of {total} points \
                 (--max-points {max})",
                sample.len(),
                sample.iter().map(Series::len).sum::<usize>()
            );
            Ok(sample)
        }
        Some(_) => Ok(series),
        None => {
            let need = total as u64 * TRAIN_BYTES_PER_POINT;
            match available {
                Some(free) if need > free => {
                    // A round budget that leaves a fifth of what is available for the rest.
                    let fits = free / 5 * 4 / TRAIN_BYTES_PER_POINT;
                    let round = 10u64.pow(fits.max(1).ilog10());
                    bail!(
                        "training on {total} points would take about {} at its peak (about \
                         {TRAIN_BYTES_PER_POINT} bytes a point), more than the {} available \
                         here: pass --max-points {} to train on a spread sample of the series \
                         (every k-th, whole), or train on a larger machine",
                        gib(need),
                        gib(free),
                        fits / round * round
                    )
                }
                _ => Ok(series),
            }
        }
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Bytes this process can still allocate, as far as can be told: the kernel's `MemAvailable`,
/// capped by the cgroup's memory limit less its usage (cgroup v2) in a container. `None` where
/// neither is readable (not Linux).
pub(super) fn available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let read = |p: &str| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok();
    // "max" (no limit) does not parse: no cap.
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .map(|max| max.saturating_sub(read("/sys/fs/cgroup/memory.current").unwrap_or(0)));
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescale::series::SeriesKey;

    fn fleet(n: usize, len: usize) -> Vec<Series> {
        (0..n)
            .map(|i| Series {
                key: SeriesKey::new(format!("s{i}")),
                start: 0,
                step: 60,
                values: vec![1.0; len],
            })
            .collect()
    }

    #[test]
    fn a_history_too_large_for_memory_is_refused_with_a_budget_that_fits() {
        // 10 series × 1,000 points = 10,000 points: ~5 MB at 500 bytes a point.
        let e = within(fleet(10, 1000), None, Some(4_000_000))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("training on 10000 points would take about 0.0 GiB")
                && e.contains("pass --max-points 6000 "),
            "{e}"
        );
        assert_eq!(
            within(fleet(10, 1000), None, Some(6_000_000))
                .unwrap()
                .len(),
            10
        );
        assert_eq!(within(fleet(10, 1000), None, None).unwrap().len(), 10);
    }

    #[test]
    fn max_points_trains_on_every_kth_series_whole() {
        let s = within(fleet(10, 1000), Some(3000), Some(1)).unwrap();
        let keys: Vec<&str> = s.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["s0", "s4", "s8"]);
        assert_eq!(
            within(fleet(10, 1000), Some(10_000), None).unwrap().len(),
            10
        );
        let e = within(fleet(10, 1000), Some(999), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("less than any one series holds"), "{e}");
        assert!(within(fleet(1, 10), Some(0), None).is_err());
    }
}
