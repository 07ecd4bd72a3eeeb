//! Irregular samples → runs of one value per fixed step, with the gap rule: short gaps are
//! interpolated (and counted), long gaps end a run.
//!
//! Memory follows the samples, never the time span. A *run* holds consecutive steps that all
//! have a value (measured, averaged or interpolated); a gap longer than the limit is not stored
//! here at all, only the offset of the next run says how long it was. So one sample dated 1970
//! among recent rows costs one run of one value, not decades of empty steps. Whether (and how)
//! runs are joined into one [`Series`](super::Series) with `NaN` gaps is the caller's decision
//! ([`join`] does it for runs whose span was bounded first).

/// One raw sample: a timestamp in (possibly fractional) Unix seconds and a finite value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Unix seconds.
    pub ts: f64,
    /// The measured value.
    pub value: f64,
}

/// What resampling did to a series, so that callers can report it instead of hiding it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResampleStats {
    /// Samples that went in.
    pub samples: usize,
    /// Samples that shared a step with another sample and were averaged into it.
    pub merged: usize,
    /// Steps with no sample that were filled by linear interpolation.
    pub interpolated: usize,
    /// Steps with no sample left as gaps because their run was longer than the limit.
    pub gap_steps: usize,
    /// How many such long gaps (each splits the series into one more segment).
    pub long_gaps: usize,
}

/// Consecutive steps that each hold a value, measured or interpolated.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Steps from the grid's first step (the first sample's) to this run's first value.
    pub offset: u64,
    /// One value per step, all finite.
    pub values: Vec<f64>,
    /// Input samples that went into this run.
    pub samples: usize,
}

impl Run {
    /// The step just after this run's last value.
    pub fn end(&self) -> u64 {
        self.offset + self.values.len() as u64
    }
}

/// Samples on a grid, as runs separated by long gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct Resampled {
    /// Unix seconds of the grid's first step (the first sample, rounded to a whole second).
    pub start: i64,
    /// The runs, in time order; the first starts at offset 0.
    pub runs: Vec<Run>,
    /// What was done.
    pub stats: ResampleStats,
}

/// Steps the runs of `samples` would hold, counted without allocating: the samples' distinct
/// steps plus the interpolated ones. Callers compare it with a budget before [`resample`],
/// because a huge `max_gap_steps` over sparse samples would otherwise fill a huge grid.
pub fn run_steps(samples: &[Sample], step: i64, max_gap_steps: usize) -> u64 {
    let mut steps = 0u64;
    let mut prev: Option<u64> = None;
    for slot in slots(samples, step) {
        match prev {
            None => steps = 1,
            Some(p) if slot == p => {}
            Some(p) if slot - p - 1 <= max_gap_steps as u64 => steps += slot - p,
            Some(_) => steps += 1,
        }
        prev = Some(slot);
    }
    steps
}

/// Each sample's step on a grid of `step` seconds counted from the first sample (so it always
/// lands in step 0: a grid counted from its floored second could round a x.7 s first sample
/// into step 1).
fn slots(samples: &[Sample], step: i64) -> impl Iterator<Item = u64> + '_ {
    let origin = samples.first().map_or(0.0, |s| s.ts);
    let step = step.max(1) as f64;
    // Saturating float → int casts: a span of 1e11 s cannot overflow a u64 of steps.
    samples
        .iter()
        .map(move |s| ((s.ts - origin) / step).round().max(0.0) as u64)
}

/// Puts time-ordered `samples` on a grid of `step` seconds starting at the first sample. Each
/// sample goes to its nearest grid point; several samples at one point are averaged. Runs of up
/// to `max_gap_steps` empty points between two values are filled by linear interpolation; a
/// longer run of empty points ends a [`Run`] and is only counted.
///
/// Memory is one value per step of the runs ([`run_steps`]), whatever the span. `samples` must
/// be sorted by `ts` (the CSV reader sorts and reports before calling this).
pub fn resample(samples: &[Sample], step: i64, max_gap_steps: usize) -> Resampled {
    let mut stats = ResampleStats {
        samples: samples.len(),
        ..ResampleStats::default()
    };
    let start = samples.first().map_or(0, |s| s.ts.round() as i64);
    let mut runs: Vec<Run> = Vec::new();
    // The step being gathered: its slot, sum and count.
    let mut open: Option<(u64, f64, u32)> = None;
    for (slot, s) in slots(samples, step).zip(samples) {
        match open {
            Some((at, sum, n)) if at == slot => {
                open = Some((at, sum + s.value, n + 1));
                stats.merged += 1;
            }
            _ => {
                if let Some(done) = open {
                    place(&mut runs, &mut stats, done, max_gap_steps);
                }
                open = Some((slot, s.value, 1));
            }
        }
    }
    if let Some(done) = open {
        place(&mut runs, &mut stats, done, max_gap_steps);
    }
    Resampled { start, runs, stats }
}

/// Appends one finished step (slot, sum, count) to the last run, interpolating a short gap
/// before it, or starts a new run after a long one.
fn place(
    runs: &mut Vec<Run>,
    stats: &mut ResampleStats,
    (slot, sum, n): (u64, f64, u32),
    max_gap_steps: usize,
) {
    let value = sum / f64::from(n);
    let samples = n as usize;
    if let Some(run) = runs.last_mut() {
        let empty = slot - run.end();
        if empty <= max_gap_steps as u64 {
            let left = *run.values.last().expect("runs are never empty");
            let len = empty as usize;
            for k in 0..len {
                let frac = (k + 1) as f64 / (len + 1) as f64;
                run.values.push(left + (value - left) * frac);
            }
            stats.interpolated += len;
            run.values.push(value);
            run.samples += samples;
            return;
        }
        stats.gap_steps += empty as usize;
        stats.long_gaps += 1;
    }
    runs.push(Run {
        offset: slot,
        values: vec![value],
        samples,
    });
}

/// Joins runs into one grid, long gaps as `NaN`, starting at the first run's step. Only for
/// runs whose span the caller has bounded: this is the one place gaps are materialised. Each
/// run is released as soon as it is copied, and the first one's buffer is reused.
pub fn join(runs: Vec<Run>) -> Vec<f64> {
    let mut runs = runs.into_iter();
    let Some(first) = runs.next() else {
        return Vec::new();
    };
    let base = first.offset;
    let total = runs.as_slice().last().map_or(first.end(), Run::end) - base;
    let mut values = first.values;
    // Exactly the grid, not a doubled buffer.
    values.reserve_exact(total as usize - values.len());
    for run in runs {
        let at = (run.offset - base) as usize;
        values.resize(at, f64::NAN);
        values.extend_from_slice(&run.values);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(ts: f64, value: f64) -> Sample {
        Sample { ts, value }
    }

    /// The old single-grid result: start, values with `NaN` gaps, stats.
    fn grid(samples: &[Sample], step: i64, max_gap: usize) -> (i64, Vec<f64>, ResampleStats) {
        let r = resample(samples, step, max_gap);
        (r.start, join(r.runs), r.stats)
    }

    #[test]
    fn regular_input_is_unchanged() {
        let input: Vec<Sample> = (0..5)
            .map(|i| s(1000.0 + 60.0 * i as f64, i as f64))
            .collect();
        let (start, v, st) = grid(&input, 60, 2);
        assert_eq!(start, 1000);
        assert_eq!(v, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            st,
            ResampleStats {
                samples: 5,
                ..Default::default()
            }
        );
    }

    #[test]
    fn short_gaps_interpolate_long_gaps_stay() {
        // Values at steps 0, 3 (gap of 2 → filled), 7 (gap of 3 → kept with limit 2).
        let input = [s(0.0, 0.0), s(30.0, 3.0), s(70.0, 7.0)];
        let (_, v, st) = grid(&input, 10, 2);
        assert_eq!(&v[..4], &[0.0, 1.0, 2.0, 3.0]);
        assert!(v[4..7].iter().all(|x| x.is_nan()));
        assert_eq!(v[7], 7.0);
        assert_eq!(st.interpolated, 2);
        assert_eq!(st.gap_steps, 3);
        assert_eq!(st.long_gaps, 1);
    }

    #[test]
    fn a_fractional_first_timestamp_starts_the_grid() {
        // Found by the property test: 0.7 s with a 1 s step used to land in slot 1.
        let (start, v, st) = grid(&[s(0.7, 1.0), s(3.7, 4.0)], 1, 5);
        assert_eq!(start, 1);
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(st.interpolated, 2);
    }

    #[test]
    fn samples_sharing_a_step_are_averaged() {
        let input = [s(0.0, 1.0), s(4.0, 3.0), s(10.0, 5.0)];
        let (_, v, st) = grid(&input, 10, 0);
        assert_eq!(v, vec![2.0, 5.0]);
        assert_eq!(st.merged, 1);
    }

    #[test]
    fn a_long_gap_splits_runs_without_storing_the_gap() {
        // 0,1 1,2 2,3 3,4 90000000000,5 at a 1 s step: the gap is 9e10 steps, never allocated.
        let input = [
            s(0.0, 1.0),
            s(1.0, 2.0),
            s(2.0, 3.0),
            s(3.0, 4.0),
            s(9e10, 5.0),
        ];
        let r = resample(&input, 1, 3);
        assert_eq!(r.runs.len(), 2);
        assert_eq!(r.runs[0].values, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!((r.runs[0].offset, r.runs[0].samples), (0, 4));
        assert_eq!(r.runs[1].values, vec![5.0]);
        assert_eq!((r.runs[1].offset, r.runs[1].samples), (90_000_000_000, 1));
        assert_eq!(r.stats.long_gaps, 1);
        assert_eq!(r.stats.gap_steps, 90_000_000_000 - 4);
        assert_eq!(run_steps(&input, 1, 3), 5);
    }

    #[test]
    fn run_boundaries_follow_the_limit_exactly() {
        // Empty steps between values: 3 (= limit, filled), then 4 (> limit, a new run).
        let input = [s(0.0, 0.0), s(4.0, 4.0), s(9.0, 9.0), s(10.0, 10.0)];
        let r = resample(&input, 1, 3);
        let shape: Vec<(u64, usize, usize)> = r
            .runs
            .iter()
            .map(|r| (r.offset, r.values.len(), r.samples))
            .collect();
        assert_eq!(shape, vec![(0, 5, 2), (9, 2, 2)]);
        assert_eq!(r.runs[0].values, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!((r.stats.interpolated, r.stats.gap_steps), (3, 4));
        assert_eq!(run_steps(&input, 1, 3), 7);
        // A huge limit would fill everything: counted first, without allocating.
        assert_eq!(
            run_steps(&[s(0.0, 1.0), s(9e10, 1.0)], 1, usize::MAX),
            9e10 as u64 + 1
        );
    }

    #[test]
    fn nothing_in_nothing_out() {
        let r = resample(&[], 60, 3);
        assert!(r.runs.is_empty());
        assert!(join(r.runs).is_empty());
        assert_eq!(run_steps(&[], 60, 3), 0);
    }

    proptest! {
        /// Every sample lands somewhere; the grid covers first to last sample; values stay
        /// within the input's range; every step is accounted for as value, fill or gap; runs
        /// hold exactly the steps `run_steps` counts and are separated by long gaps only.
        #[test]
        fn resampling_accounts_for_everything(
            mut ts in proptest::collection::vec(0.0f64..100_000.0, 1..300),
            step in 1i64..900,
            max_gap in 0usize..5,
        ) {
            ts.sort_by(f64::total_cmp);
            let input: Vec<Sample> = ts.iter().enumerate().map(|(i, &t)| s(t, (i % 17) as f64)).collect();
            let r = resample(&input, step, max_gap);
            let in_runs: usize = r.runs.iter().map(|r| r.values.len()).sum();
            prop_assert_eq!(in_runs as u64, run_steps(&input, step, max_gap));
            prop_assert_eq!(r.runs.iter().map(|r| r.samples).sum::<usize>(), input.len());
            for w in r.runs.windows(2) {
                prop_assert!(w[1].offset - w[0].end() > max_gap as u64);
            }
            let (start, v, st) = grid(&input, step, max_gap);
            prop_assert!((start as f64 - ts[0]).abs() <= 0.5);
            prop_assert!(!v.is_empty());
            prop_assert!(v.first().unwrap().is_finite() && v.last().unwrap().is_finite());
            let filled = v.iter().filter(|x| x.is_finite()).count();
            prop_assert_eq!(filled + st.gap_steps, v.len());
            prop_assert_eq!(filled - st.interpolated + st.merged, input.len());
            for x in v.iter().filter(|x| x.is_finite()) {
                prop_assert!((0.0..=16.0).contains(x));
            }
            for run in super::super::segments(&v).windows(2) {
                prop_assert!(run[1].start - run[0].end > max_gap);
            }
        }
    }
}
