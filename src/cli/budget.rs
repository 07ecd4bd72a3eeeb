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
/// given (said on stdout; the budget is then the user's, not checked), else all of them if
/// they fit in `available` bytes (`None`: unknown, not checked).
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
                    let what = format!(
                        "training on {total} points would take about {} at its peak (about \
                         {TRAIN_BYTES_PER_POINT} bytes a point), more than the {} available here",
                        size(need),
                        size(free)
                    );
                    // Two significant digits of a budget that leaves a fifth of what is
                    // available for the rest, if a sample within it holds a series at all.
                    let fits = free / 5 * 4 / TRAIN_BYTES_PER_POINT;
                    let round = 10u64.pow(fits.max(10).ilog10() - 1);
                    let budget = fits / round * round;
                    if spread_sample(&lens, budget as usize).is_empty() {
                        bail!(
                            "{what}, and no single series fits in it (the shortest has {} \
                             points): train on a larger machine",
                            lens.iter().filter(|&&n| n > 0).min().unwrap_or(&0)
                        );
                    }
                    bail!(
                        "{what}: pass --max-points {budget} to train on a spread sample of the \
                         series (every k-th, whole), or train on a larger machine"
                    )
                }
                _ => Ok(series),
            }
        }
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Bytes this process can still allocate, as far as can be told: the kernel's `MemAvailable`,
/// capped in a container by its cgroup's limit less what it uses that the kernel cannot
/// reclaim (page cache, such as the history just read, can be). The cgroup is this process's
/// own (`/proc/self/cgroup`), v2 or v1. `None` where nothing is readable (not Linux).
pub(super) fn available() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let number = |p: &str| read(p)?.trim().parse::<u64>().ok();
    let stat = |p: &str, key: &str| {
        read(p)?.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse::<u64>().ok()).flatten()
        })
    };
    let meminfo = read("/proc/meminfo").and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let own = read("/proc/self/cgroup").unwrap_or_default();
    // v2: one line "0::/path"; "max" (no limit) does not parse, so no cap.
    let v2 = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .and_then(|path| {
            let dir = group_dir("/sys/fs/cgroup", path);
            let limit = number(&format!("{dir}/memory.max"))?;
            let used = number(&format!("{dir}/memory.current")).unwrap_or(0);
            let cache = stat(&format!("{dir}/memory.stat"), "inactive_file").unwrap_or(0);
            Some(limit.saturating_sub(used.saturating_sub(cache)))
        });
    // v1: "N:memory:/path" (or with other controllers); an unlimited group's limit is huge.
    let v1 = own
        .lines()
        .filter_map(|l| l.split_once(':')?.1.split_once(':'))
        .find(|(controllers, _)| controllers.split(',').any(|c| c == "memory"))
        .and_then(|(_, path)| {
            let dir = group_dir("/sys/fs/cgroup/memory", path);
            let limit = number(&format!("{dir}/memory.limit_in_bytes"))?;
            let used = number(&format!("{dir}/memory.usage_in_bytes")).unwrap_or(0);
            let cache = stat(&format!("{dir}/memory.stat"), "total_inactive_file").unwrap_or(0);
            Some(limit.saturating_sub(used.saturating_sub(cache)))
        });
    [meminfo, v2, v1].into_iter().flatten().min()
}

/// The directory of the cgroup at `path` under the hierarchy mounted at `mount`; the mount
/// itself where that is not there (a container whose mount shows its own group as the root).
fn group_dir(mount: &str, path: &str) -> String {
    let dir = format!("{mount}{}", path.trim_end_matches('/'));
    if std::path::Path::new(&dir).is_dir() {
        dir
    } else {
        mount.to_string()
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
            e.contains("training on 10000 points would take about 5 MiB")
                && e.contains("more than the 4 MiB available here: pass --max-points 6400 "),
            "{e}"
        );
        // Two significant digits: 8 MB × 0.8 / 500 = 12,800 → 12,000.
        let e = within(fleet(10, 3000), None, Some(8_000_000))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --max-points 12000 "), "{e}");
        // When not even one series would fit, no budget is suggested.
        let e = within(fleet(3, 100_000), None, Some(40_000_000))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("and no single series fits in it (the shortest has 100000 points)")
                && !e.contains("--max-points"),
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

    /// Whatever the machine, Linux tells how much is available, and it is no more than the
    /// kernel's total.
    #[test]
    fn the_memory_available_is_read_on_linux() {
        let total = std::fs::read_to_string("/proc/meminfo")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap()
            * 1024;
        let free = available().expect("readable on Linux");
        assert!(free > 0 && free <= total, "{free} of {total}");
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
