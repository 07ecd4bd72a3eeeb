//! One series onto one grid within a budget: the gaps between runs are kept as `NaN` steps
//! while the grid stays within [`MAX_GRID_PER_ROW`] steps per row plus [`GRID_SLACK`]; past
//! that, the series is cut at its longest gaps into blocks, the block with the most rows kept,
//! stray blocks dropped and reported, larger ones refused. The module doc of the CSV reader
//! (`series::csv`) says why.

use super::reader::excerpt;
use super::report::{CsvError, DroppedRows, RawSeries, SeriesReport};
use super::resample::{join, resample, run_steps, Run};
use super::Series;
use std::ops::Range;

/// Grid steps allowed per data row before a series counts as mostly empty time.
pub const MAX_GRID_PER_ROW: u64 = 4;
/// Grid steps allowed on top of [`MAX_GRID_PER_ROW`] per row, so short series with one
/// ordinary outage still read whole.
pub const GRID_SLACK: u64 = 10_000;
/// A block of rows cut off by a gap beyond the grid budget is dropped as stray when it has at
/// most this many rows (or at most 1 % of the kept block's).
pub const STRAY_ROWS: usize = 3;

/// Puts one series on the grid: resampled into runs, cut into blocks if the grid would exceed
/// its budget, stray blocks dropped (see the module doc). The raw samples are released before
/// the runs are joined, so a series never holds both its rows and a second copy of its grid.
pub(super) fn grid(
    r: RawSeries,
    step: i64,
    max_gap_steps: usize,
) -> Result<(Series, SeriesReport), CsvError> {
    let budget = MAX_GRID_PER_ROW * r.samples.len() as u64 + GRID_SLACK;
    let filled = run_steps(&r.samples, step, max_gap_steps);
    if filled > budget {
        return Err(sparse(
            &r,
            step,
            format!(
                "; a --max-gap of {max_gap_steps} steps would fill {filled} steps by \
                 interpolation, more than {MAX_GRID_PER_ROW} per row: give a shorter --max-gap"
            ),
        ));
    }
    let res = resample(&r.samples, step, max_gap_steps);
    let blocks = blocks(&res.runs, budget);
    let main = blocks
        .iter()
        .enumerate()
        .max_by_key(|(_, b)| b.rows)
        .map(|(i, _)| i)
        .expect("a series with samples has a run");
    // In all, not per block: a step far finer than the rows' spacing cuts every row into a
    // block of its own, each "stray", and dropping them one by one dropped most of the file.
    let stray_limit = STRAY_ROWS.max(blocks[main].rows / 100);
    let stray_rows = r.samples.len() - blocks[main].rows;
    if stray_rows > stray_limit {
        let what = spacing_advice(&r, step, max_gap_steps)
            .unwrap_or_else(|| describe_split(&r, &blocks, main, stray_limit));
        return Err(sparse(&r, step, what));
    }
    let mut dropped = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        if i == main {
            continue;
        }
        dropped.push(DroppedRows {
            rows: b.rows,
            first: r.samples[b.samples.start].ts.round() as i64,
            last: r.samples[b.samples.end - 1].ts.round() as i64,
        });
    }
    let rows = r.samples.len() + r.duplicates;
    let res = if dropped.is_empty() {
        res
    } else {
        // Resampled again on its own: stray rows must neither set the grid's origin nor
        // count in its stats. The first pass's runs go first.
        let keep = blocks[main].samples.clone();
        drop(res);
        resample(&r.samples[keep], step, max_gap_steps)
    };
    let RawSeries {
        key,
        file,
        samples,
        reordered,
        duplicates,
    } = r;
    drop(samples);
    let report = SeriesReport {
        key: key.clone(),
        file,
        rows,
        reordered,
        duplicates,
        dropped,
        resample: res.stats,
    };
    let (start, runs) = (res.start, res.runs);
    let offset = runs.first().map_or(0, |r| r.offset) as i64;
    let series = Series {
        key,
        start: start + offset * step,
        step,
        values: join(runs),
    };
    Ok((series, report))
}

/// Runs that stay on one grid: which runs, which samples, how many rows.
struct Block {
    samples: Range<usize>,
    rows: usize,
}

/// Cuts `runs` at their longest gaps until the steps kept (runs plus the gaps left between
/// them) fit `budget`. Without a cut, one block of everything.
fn blocks(runs: &[Run], budget: u64) -> Vec<Block> {
    let span = match (runs.first(), runs.last()) {
        (Some(a), Some(b)) => b.end() - a.offset,
        _ => 0,
    };
    let mut cuts: Vec<usize> = Vec::new();
    if span > budget {
        // (gap, index of the run after it), longest first; ties cut earliest first.
        let mut gaps: Vec<(u64, usize)> = runs
            .windows(2)
            .enumerate()
            .map(|(i, w)| (w[1].offset - w[0].end(), i + 1))
            .collect();
        gaps.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut kept = span;
        for (gap, at) in gaps {
            if kept <= budget {
                break;
            }
            kept -= gap;
            cuts.push(at);
        }
        cuts.sort_unstable();
    }
    cuts.push(runs.len());
    let mut out = Vec::with_capacity(cuts.len());
    let (mut run0, mut sample0) = (0, 0);
    for cut in cuts {
        let rows: usize = runs[run0..cut].iter().map(|r| r.samples).sum();
        out.push(Block {
            samples: sample0..sample0 + rows,
            rows,
        });
        run0 = cut;
        sample0 += rows;
    }
    out
}

/// What a split series looks like, for the error: its blocks and what is dropped and kept.
fn describe_split(r: &RawSeries, blocks: &[Block], main: usize, stray_limit: usize) -> String {
    let ts = |i: usize| super::format_timestamp(r.samples[i].ts.round() as i64);
    let mut text: Vec<String> = blocks
        .iter()
        .take(4)
        .map(|b| {
            format!(
                "{} rows from {} to {}",
                b.rows,
                ts(b.samples.start),
                ts(b.samples.end - 1)
            )
        })
        .collect();
    if blocks.len() > 4 {
        text.push(format!("and {} more", blocks.len() - 4));
    }
    format!(
        "; its rows form {} blocks too far apart for one grid ({}). At most {} rows in all \
         would be dropped as stray and the largest block ({} rows) kept, but dropping {} is not \
         ours to decide: remove the rows with wrong timestamps or split the file at the gap",
        blocks.len(),
        text.join(", "),
        stray_limit,
        blocks[main].rows,
        r.samples.len() - blocks[main].rows,
    )
}

/// When the rows are farther apart than the gaps interpolation fills, the step is what is
/// wrong (`--step 5m` on half-hourly data), not the timestamps: say so. `None` otherwise.
fn spacing_advice(r: &RawSeries, step: i64, max_gap_steps: usize) -> Option<String> {
    // Only on the error path: one f32 a row.
    let mut gaps: Vec<f32> = r
        .samples
        .windows(2)
        .map(|w| (w[1].ts - w[0].ts) as f32)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    let mid = gaps.len() / 2;
    let median = f64::from(*gaps.select_nth_unstable_by(mid, f32::total_cmp).1);
    let filled = (max_gap_steps as f64 + 1.0) * step as f64;
    if median <= filled {
        return None;
    }
    let spacing = super::format_duration(median.round() as i64);
    Some(format!(
        "; its rows are a median {spacing} apart, but the step is {} and only gaps up to {} are \
         filled, so most rows stand alone, too far apart for one grid: give a step of about \
         the rows' spacing (--step {spacing})",
        super::format_duration(step),
        super::format_duration((max_gap_steps as i64).saturating_mul(step)),
    ))
}

/// The Sparse error for `r`: rows, span and biggest gap, then `advice`.
fn sparse(r: &RawSeries, step: i64, advice: String) -> CsvError {
    let (first, last) = (r.samples[0].ts, r.samples[r.samples.len() - 1].ts);
    // In f64: a span of 1e11 s over a 1 s step must not overflow before it is printed.
    let slots = ((last - first) / step as f64).round() + 1.0;
    let (gap_at, gap) = r
        .samples
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i, w[1].ts - w[0].ts))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0));
    let ts = |t: f64| super::format_timestamp(t.round() as i64);
    let next = (gap_at + 1).min(r.samples.len() - 1);
    CsvError::Sparse {
        path: r.file.clone(),
        key: excerpt(r.key.as_str()),
        detail: format!(
            "has {} rows but spans {} steps of {step}s, from {} to {}; the biggest gap is {} \
             steps, from {} to {}{advice}",
            r.samples.len(),
            slots as u64,
            ts(first),
            ts(last),
            (gap / step as f64).round() as u64,
            ts(r.samples[gap_at].ts),
            ts(r.samples[next].ts),
        ),
    }
}
