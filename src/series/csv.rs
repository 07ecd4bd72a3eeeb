//! CSV history: reading `timestamp,value` and `timestamp,series,value` files onto a fixed step,
//! and writing collected history back in the long format.
//!
//! Every problem with the input is either an error naming the file and line, or a documented
//! repair that is counted in the [`SeriesReport`]: rows out of time order are sorted, rows
//! sharing a timestamp are averaged, short gaps are interpolated, long gaps split the series.
//!
//! Memory follows the data, not the file's size or its time span. Files are read as streams,
//! one record at a time, each at most [`MAX_RECORD_BYTES`](super::reader::MAX_RECORD_BYTES);
//! rows are kept as 16-byte samples, and resampling stores only *runs* of steps with values
//! ([`super::resample`]). Each series is still handed on as one [`Series`] on one grid (every
//! consumer takes one series per key, and features need true timestamps), so the gaps between
//! runs are kept as `NaN` steps only while the grid stays within
//! [`MAX_GRID_PER_ROW`](super::blocks::MAX_GRID_PER_ROW) steps per row plus
//! [`GRID_SLACK`](super::blocks::GRID_SLACK) ([`super::blocks`]). Past that budget the series is
//! cut at its longest gaps into
//! *blocks*, and the block with the most rows (the latest of equals) is kept:
//!
//! - the other blocks are **dropped and reported** when they are stray, at most
//!   [`STRAY_ROWS`](super::blocks::STRAY_ROWS) rows or 1 % of the kept block's in all: a `0`
//!   timestamp among 20,000 one-minute rows, a row dated in the wrong century. Such rows are almost always wrong timestamps, they could not yield a
//!   single feature row on their own (one needs 13 steps of unbroken history), and keeping them
//!   would mean either decades of empty steps or a second series under the same key. They are
//!   counted in the [`SeriesReport`] with their times, and the command line warns about them;
//! - a larger block is not ours to throw away: the series is refused with an error naming the
//!   file, the blocks and the gap between them, so the user can split the file.
//!
//! The same budget refuses a `--max-gap` so long that interpolation would fill a huge grid. A
//! series needs two distinct timestamps. Messages quote at most
//! [`EXCERPT_CHARS`](super::reader::EXCERPT_CHARS) characters of any field, escaped, so a huge
//! or binary line is never echoed whole.

use super::blocks::grid;
pub(crate) use super::reader::{excerpt, CsvFile};
use super::report::RawSeries;
pub use super::report::{CsvError, DroppedRows, SeriesReport};
use super::resample::Sample;
use super::{Series, SeriesKey};
use crate::atomic_file::write_atomic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Timestamps above this many seconds (the year 5138) are taken for milliseconds or finer.
const MAX_UNIX_SECONDS: f64 = 1e11;

/// How to put history on a grid.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryOptions {
    /// Step in seconds; `None` = the median spacing of all input rows.
    pub step: Option<i64>,
    /// Longest gap, in seconds, that is filled by interpolation; `None` = three steps.
    pub max_gap: Option<i64>,
}

/// Reads every file, puts every series on one common step, and reports what was repaired.
///
/// All series share the step (given, or the median spacing over all files) because one model
/// is trained on all of them and its features are counted in steps.
pub fn read_history(
    paths: &[PathBuf],
    opts: &HistoryOptions,
) -> Result<(Vec<Series>, Vec<SeriesReport>), CsvError> {
    if paths.is_empty() {
        return Err(CsvError::Options("no history files given".into()));
    }
    let mut raw: Vec<RawSeries> = Vec::new();
    let mut seen: BTreeMap<SeriesKey, PathBuf> = BTreeMap::new();
    for path in paths {
        for r in read_file(path)? {
            if let Some(first) = seen.get(&r.key) {
                return Err(CsvError::DuplicateSeries {
                    key: excerpt(r.key.as_str()),
                    first: first.clone(),
                    second: path.clone(),
                });
            }
            seen.insert(r.key.clone(), path.clone());
            raw.push(r);
        }
    }
    drop(seen);
    for r in &raw {
        if r.samples.len() < 2 {
            return Err(CsvError::TooShort {
                path: r.file.clone(),
                key: excerpt(r.key.as_str()),
                rows: r.samples.len() + r.duplicates,
            });
        }
    }
    let step = match opts.step {
        Some(s) if s >= 1 => s,
        Some(s) => {
            return Err(CsvError::Options(format!(
                "step must be at least 1s, got {s}s"
            )))
        }
        None => median_spacing(&raw).ok_or_else(|| {
            CsvError::Options(
                "cannot infer a step: no series has two distinct timestamps; give --step".into(),
            )
        })?,
    };
    // Saturating: `--step` is the user's number, and 3 × 2^62 s must not overflow.
    let max_gap = opts.max_gap.unwrap_or(step.saturating_mul(3));
    if max_gap < 0 {
        return Err(CsvError::Options(format!(
            "max gap must not be negative, got {max_gap}s"
        )));
    }
    let max_gap_steps = (max_gap / step) as usize;
    let mut series = Vec::with_capacity(raw.len());
    let mut reports = Vec::with_capacity(raw.len());
    for r in raw {
        let (s, report) = grid(r, step, max_gap_steps)?;
        series.push(s);
        reports.push(report);
    }
    Ok((series, reports))
}

/// Median spacing between consecutive distinct timestamps over all series, in whole seconds.
/// Spacings are kept as `f32` (4 bytes a row: this is the reader's one buffer beside the
/// samples); a median rounded to whole seconds does not need more.
fn median_spacing(raw: &[RawSeries]) -> Option<i64> {
    let mut diffs: Vec<f32> = raw
        .iter()
        .flat_map(|r| r.samples.windows(2).map(|w| (w[1].ts - w[0].ts) as f32))
        .filter(|d| *d > 0.0)
        .collect();
    if diffs.is_empty() {
        return None;
    }
    let mid = diffs.len() / 2;
    let (_, m, _) = diffs.select_nth_unstable_by(mid, f32::total_cmp);
    Some((f64::from(*m).round() as i64).max(1))
}

/// Rows of one series as they are read, before repair.
struct Reading {
    name: String,
    samples: Vec<Sample>,
    reordered: usize,
}

impl Reading {
    fn push(&mut self, s: Sample) {
        if self.samples.last().is_some_and(|last| s.ts < last.ts) {
            self.reordered += 1;
        }
        // Grow by a quarter rather than double: the samples are most of the reader's memory,
        // and a doubled buffer would be up to half empty. From 16 rows, not 1,024: a long
        // file of many short series (a label exploded into series) reserved 16 KiB a series,
        // 330 MB for a 0.8 MB file of 20,000 two-row series.
        if self.samples.len() == self.samples.capacity() {
            self.samples.reserve_exact((self.samples.len() / 4).max(16));
        }
        self.samples.push(s);
    }
}

fn read_file(path: &Path) -> Result<Vec<RawSeries>, CsvError> {
    let mut file = CsvFile::open_path(path)?;
    let row_err = |line: u64, message: String| CsvError::Row {
        path: path.to_path_buf(),
        line,
        message,
    };
    let long = match file
        .header
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["timestamp", "value"] => false,
        ["timestamp", "series", "value"] => true,
        _ => {
            return Err(CsvError::Header {
                path: path.to_path_buf(),
                found: excerpt(&file.header.join(",")),
            })
        }
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());

    // Series in order of first appearance; names are looked up without allocating per row.
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut found: Vec<Reading> = Vec::new();
    while let Some((record, line)) = file.next_row()? {
        let ts = parse_timestamp(&record[0]).map_err(|m| row_err(line, m))?;
        let (name, value_field) = if long {
            (&record[1], &record[2])
        } else {
            (stem.as_str(), &record[1])
        };
        if name.is_empty() {
            return Err(row_err(line, "empty series name".into()));
        }
        let value = parse_value(value_field).map_err(|m| row_err(line, m))?;
        let at = match index.get(name) {
            Some(&at) => at,
            None => {
                index.insert(name.to_string(), found.len());
                found.push(Reading {
                    name: name.to_string(),
                    samples: Vec::new(),
                    reordered: 0,
                });
                found.len() - 1
            }
        };
        found[at].push(Sample { ts, value });
    }
    if found.is_empty() {
        return Err(CsvError::Empty {
            path: path.to_path_buf(),
            what: "has a header but no data rows",
        });
    }
    Ok(found.into_iter().map(|r| repair(r, path)).collect())
}

/// Sorts rows into time order and averages rows that share a timestamp, in place, counting
/// both.
fn repair(r: Reading, path: &Path) -> RawSeries {
    let mut samples = r.samples;
    if r.reordered > 0 {
        // In place: no second buffer the size of the file. Rows sharing a timestamp may come
        // out in any order; they are averaged, so only the last bit of the mean can differ.
        samples.sort_unstable_by(|a, b| a.ts.total_cmp(&b.ts));
    }
    let n = samples.len();
    let (mut write, mut read) = (0, 0);
    while read < n {
        let ts = samples[read].ts;
        let mut sum = samples[read].value;
        let mut next = read + 1;
        while next < n && samples[next].ts == ts {
            sum += samples[next].value;
            next += 1;
        }
        samples[write] = Sample {
            ts,
            value: sum / (next - read) as f64,
        };
        write += 1;
        read = next;
    }
    let duplicates = n - write;
    samples.truncate(write);
    samples.shrink_to_fit();
    RawSeries {
        key: SeriesKey::new(r.name),
        file: path.to_path_buf(),
        samples,
        reordered: r.reordered,
        duplicates,
    }
}

/// RFC 3339 with any offset, or Unix seconds (integer or fractional).
fn parse_timestamp(field: &str) -> Result<f64, String> {
    let quoted = excerpt(field);
    if field.is_empty() {
        return Err("empty timestamp".into());
    }
    if let Ok(secs) = field.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("timestamp '{quoted}' is not a number of seconds"));
        }
        if secs.abs() >= MAX_UNIX_SECONDS {
            let year = 1970.0 + secs / 31_556_952.0;
            return Err(format!(
                "timestamp {quoted} looks like milliseconds (or finer) since the epoch: read as \
                 seconds it is in the year {year:.0}; give Unix seconds or RFC 3339"
            ));
        }
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(field)
        .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) * 1e-9)
        .map_err(|e| {
            format!(
                "timestamp '{quoted}' is neither RFC 3339 (2024-05-01T12:00:00Z) nor Unix seconds: {e}"
            )
        })
}

/// Largest load magnitude read: what the live loop's buffers hold (`f32`), where a larger
/// sample becomes a gap. Offline, 1e308 was accepted and its windows' sums overflowed to
/// infinity, making every forecast over it NaN or infinite.
const MAX_VALUE: f64 = f32::MAX as f64;

fn parse_value(field: &str) -> Result<f64, String> {
    let quoted = excerpt(field);
    if field.is_empty() {
        return Err("empty value".into());
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() > MAX_VALUE => Err(format!(
            "value '{quoted}' is beyond ±{MAX_VALUE:.1e}, the largest load prescale holds"
        )),
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!(
            "value '{quoted}' is not finite (NaN and infinity are not load)"
        )),
        Err(_) => Err(format!("value '{quoted}' is not a number")),
    }
}

/// Writes series as `timestamp,series,value` (RFC 3339 UTC), gaps omitted, atomically. This is
/// the format [`read_history`] reads back, so collected history can be trained on directly.
/// An existing file is replaced only if it is such a file (its header), never a user's own.
pub fn write_long_csv(path: &Path, series: &[Series]) -> Result<(), CsvError> {
    let err = |error| CsvError::Write {
        path: path.to_path_buf(),
        error,
    };
    crate::atomic_file::check_replaceable(path, "a history CSV prescale wrote", |line| {
        line == "timestamp,series,value"
    })
    .map_err(err)?;
    write_atomic(path, |w| {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(["timestamp", "series", "value"])?;
        for s in series {
            for (i, v) in s.values.iter().enumerate() {
                if v.is_finite() {
                    let ts = super::format_timestamp(s.timestamp(i));
                    out.write_record([ts.as_str(), s.key.as_str(), &shortest(*v)])?;
                }
            }
        }
        out.flush()?;
        Ok(())
    })
    .map_err(|error| CsvError::Write {
        path: path.to_path_buf(),
        error,
    })
}

/// The shortest text that reads back as `v`, printing values that came from `f32` buffers
/// (51.846, not 51.84600067138672) as they were measured.
fn shortest(v: f64) -> String {
    let f = v as f32;
    if f64::from(f) == v {
        f.to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests;
