//! Irregular samples → one value per fixed step, with the gap rule: short gaps are interpolated
//! (and counted), long gaps stay gaps.

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

/// Puts time-ordered `samples` on a grid of `step` seconds starting at the first sample
/// (reported rounded to its nearest whole second). Each sample goes to its nearest grid point; several samples at one point are
/// averaged. Runs of up to `max_gap_steps` empty points between two values are filled by linear
/// interpolation; longer runs are left as `NaN`.
///
/// Returns the grid start and its values. `samples` must be sorted by `ts` (the CSV reader sorts
/// and reports before calling this).
pub fn resample(
    samples: &[Sample],
    step: i64,
    max_gap_steps: usize,
) -> (i64, Vec<f64>, ResampleStats) {
    let mut stats = ResampleStats {
        samples: samples.len(),
        ..ResampleStats::default()
    };
    let Some(first) = samples.first() else {
        return (0, Vec::new(), stats);
    };
    let step = step.max(1);
    // Slots count from the first sample itself, so it always lands in slot 0 (a grid counted
    // from its floored second could round a x.7 s first sample into slot 1 and leave slot 0
    // empty); the reported start is that sample's nearest whole second.
    let origin = first.ts;
    let start = origin.round() as i64;
    let slot = |ts: f64| ((ts - origin) / step as f64).round().max(0.0) as usize;
    let n = samples.last().map(|s| slot(s.ts) + 1).unwrap_or(0);
    let mut sum = vec![0.0f64; n];
    let mut count = vec![0u32; n];
    for s in samples {
        let i = slot(s.ts);
        sum[i] += s.value;
        count[i] += 1;
    }
    let mut values: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(&s, &c)| if c == 0 { f64::NAN } else { s / f64::from(c) })
        .collect();
    stats.merged = count.iter().map(|&c| c.saturating_sub(1) as usize).sum();

    // Fill or keep each run of empty points between two values.
    let mut i = 0;
    while i < n {
        if !values[i].is_nan() {
            i += 1;
            continue;
        }
        let gap_start = i;
        while i < n && values[i].is_nan() {
            i += 1;
        }
        let len = i - gap_start;
        // The first and last points always hold a sample, so a run has values on both sides.
        let (left, right) = (values[gap_start - 1], values[i]);
        if len <= max_gap_steps {
            for k in 0..len {
                let frac = (k + 1) as f64 / (len + 1) as f64;
                values[gap_start + k] = left + (right - left) * frac;
            }
            stats.interpolated += len;
        } else {
            stats.gap_steps += len;
            stats.long_gaps += 1;
        }
    }
    (start, values, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(ts: f64, value: f64) -> Sample {
        Sample { ts, value }
    }

    #[test]
    fn regular_input_is_unchanged() {
        let input: Vec<Sample> = (0..5)
            .map(|i| s(1000.0 + 60.0 * i as f64, i as f64))
            .collect();
        let (start, v, st) = resample(&input, 60, 2);
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
        let (_, v, st) = resample(&input, 10, 2);
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
        let (start, v, st) = resample(&[s(0.7, 1.0), s(3.7, 4.0)], 1, 5);
        assert_eq!(start, 1);
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(st.interpolated, 2);
    }

    #[test]
    fn samples_sharing_a_step_are_averaged() {
        let input = [s(0.0, 1.0), s(4.0, 3.0), s(10.0, 5.0)];
        let (_, v, st) = resample(&input, 10, 0);
        assert_eq!(v, vec![2.0, 5.0]);
        assert_eq!(st.merged, 1);
    }

    proptest! {
        /// Every sample lands somewhere; the grid covers first to last sample; values stay
        /// within the input's range; every step is accounted for as value, fill or gap.
        #[test]
        fn resampling_accounts_for_everything(
            mut ts in proptest::collection::vec(0.0f64..100_000.0, 1..300),
            step in 1i64..900,
            max_gap in 0usize..5,
        ) {
            ts.sort_by(f64::total_cmp);
            let input: Vec<Sample> = ts.iter().enumerate().map(|(i, &t)| s(t, (i % 17) as f64)).collect();
            let (start, v, st) = resample(&input, step, max_gap);
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
