//! CPU time, for benches that must mean something on a machine shared with other builds:
//! there wall time mostly measures the others; CPU time does not. Include it with
//! `#[path = "common/cpu.rs"] mod cpu;`.

/// CPU time this process's threads have run, seconds (Linux: each thread's
/// `/proc/self/task/*/schedstat`, in ns; rayon's threads live as long as the process); NaN
/// where there is no `/proc`.
pub fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}
