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
//!   [`STRAY_ROWS`](super::blocks::STRAY_ROWS) rows or 1 % of the kept block's: a `0`
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
use super::resample::{ResampleStats, Sample};
use super::{Series, SeriesKey};
use crate::atomic_file::write_atomic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Timestamps above this many seconds (the year 5138) are taken for milliseconds or finer.
const MAX_UNIX_SECONDS: f64 = 1e11;

/// A problem with a history file. Every variant names the file; row problems name the line.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be opened or read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said (not a `source`: the message shows it already).
        error: std::io::Error,
    },
    /// The file has no header or no data rows.
    #[error("{path}: {what}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// "is empty" or "has a header but no data rows".
        what: &'static str,
    },
    /// The header is not one of the two accepted forms.
    #[error(
        "{path}:1: header is '{found}', expected 'timestamp,value' or 'timestamp,series,value'"
    )]
    Header {
        /// The file.
        path: PathBuf,
        /// The header as found.
        found: String,
    },
    /// A data row could not be used.
    #[error("{path}:{line}: {message}")]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// What is wrong with the row.
        message: String,
    },
    /// The same series comes from two places, so which to believe is not ours to guess.
    #[error("series '{key}' appears in both {first} and {second}")]
    DuplicateSeries {
        /// The series.
        key: String,
        /// Where it was seen first.
        first: PathBuf,
        /// Where it was seen again.
        second: PathBuf,
    },
    /// A series with fewer than two distinct timestamps: no step, no history to learn from.
    #[error(
        "{path}: series '{key}' has only one distinct timestamp ({rows} rows): cannot infer a \
         step or learn from it; it needs rows at two or more times"
    )]
    TooShort {
        /// The file.
        path: PathBuf,
        /// The series.
        key: String,
        /// Data rows it had.
        rows: usize,
    },
    /// A series whose grid would be far larger than its data, in a way that dropping a few
    /// stray rows does not cure: two large blocks far apart, or a `--max-gap` that would fill
    /// a huge grid.
    #[error("{path}: series '{key}' {detail}")]
    Sparse {
        /// The file.
        path: PathBuf,
        /// The series.
        key: String,
        /// Rows, span, first and last timestamp, the biggest gap with where it is, and what
        /// to do.
        detail: String,
    },
    /// Options that cannot work with this data.
    #[error("{0}")]
    Options(String),
    /// Writing a CSV file failed.
    #[error("writing {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong (not a `source`: the message shows it already).
        error: std::io::Error,
    },
}

/// How to put history on a grid.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryOptions {
    /// Step in seconds; `None` = the median spacing of all input rows.
    pub step: Option<i64>,
    /// Longest gap, in seconds, that is filled by interpolation; `None` = three steps.
    pub max_gap: Option<i64>,
}

/// What reading one series found and did, for the user to see.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeriesReport {
    /// The series.
    pub key: SeriesKey,
    /// Where it came from.
    pub file: PathBuf,
    /// Data rows read.
    pub rows: usize,
    /// Rows that came before an earlier timestamp and were put back in order.
    pub reordered: usize,
    /// Rows whose timestamp repeated an earlier row's; averaged with it.
    pub duplicates: usize,
    /// Stray rows left out because they sit too far from the rest (see the module doc).
    pub dropped: Vec<DroppedRows>,
    /// What resampling did to the rows kept.
    pub resample: ResampleStats,
}

/// A block of stray rows left out of a series: how many distinct timestamps, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DroppedRows {
    /// Distinct timestamps in the block.
    pub rows: usize,
    /// Its first timestamp, Unix seconds.
    pub first: i64,
    /// Its last timestamp, Unix seconds.
    pub last: i64,
}

impl SeriesReport {
    /// One line for logs and CLI output, naming only what is not clean.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} rows", self.rows)];
        if self.reordered > 0 {
            parts.push(format!("{} out-of-order rows sorted", self.reordered));
        }
        if self.duplicates > 0 {
            parts.push(format!("{} duplicate timestamps averaged", self.duplicates));
        }
        let merged = self.resample.merged.saturating_sub(self.duplicates);
        if merged > 0 {
            parts.push(format!("{merged} samples averaged into shared steps"));
        }
        if self.resample.interpolated > 0 {
            parts.push(format!(
                "{} missing steps interpolated",
                self.resample.interpolated
            ));
        }
        if self.resample.long_gaps > 0 {
            parts.push(format!(
                "{} long gaps ({} steps) left as gaps",
                self.resample.long_gaps, self.resample.gap_steps
            ));
        }
        if !self.dropped.is_empty() {
            let n = self.dropped_rows();
            parts.push(format!(
                "{n} {} far from the rest dropped ({})",
                if n == 1 { "row" } else { "rows" },
                describe_blocks(&self.dropped)
            ));
        }
        format!(
            "{} ({}): {}",
            self.key,
            self.file.display(),
            parts.join(", ")
        )
    }

    /// Rows left out as stray, over all dropped blocks.
    pub fn dropped_rows(&self) -> usize {
        self.dropped.iter().map(|d| d.rows).sum()
    }
}

/// "1 at T" or "3 from T1 to T2", for up to three blocks, then how many more.
fn describe_blocks(blocks: &[DroppedRows]) -> String {
    let ts = super::format_timestamp;
    let mut text: Vec<String> = blocks
        .iter()
        .take(3)
        .map(|d| match d.rows {
            1 => format!("1 at {}", ts(d.first)),
            n => format!("{n} from {} to {}", ts(d.first), ts(d.last)),
        })
        .collect();
    if blocks.len() > 3 {
        text.push(format!("and {} more blocks", blocks.len() - 3));
    }
    text.join(", ")
}

/// Raw rows of one series before resampling: distinct timestamps in time order.
pub(super) struct RawSeries {
    pub(super) key: SeriesKey,
    pub(super) file: PathBuf,
    pub(super) samples: Vec<Sample>,
    pub(super) reordered: usize,
    pub(super) duplicates: usize,
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
        // and a doubled buffer would be up to half empty.
        if self.samples.len() == self.samples.capacity() {
            self.samples
                .reserve_exact((self.samples.len() / 4).max(1024));
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

fn parse_value(field: &str) -> Result<f64, String> {
    let quoted = excerpt(field);
    if field.is_empty() {
        return Err("empty value".into());
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!(
            "value '{quoted}' is not finite (NaN and infinity are not load)"
        )),
        Err(_) => Err(format!("value '{quoted}' is not a number")),
    }
}

/// Writes series as `timestamp,series,value` (RFC 3339 UTC), gaps omitted, atomically. This is
/// the format [`read_history`] reads back, so collected history can be trained on directly.
pub fn write_long_csv(path: &Path, series: &[Series]) -> Result<(), CsvError> {
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn f32_values_print_as_measured() {
        assert_eq!(shortest(f64::from(51.846f32)), "51.846");
        assert_eq!(shortest(0.1), "0.1");
        assert_eq!(shortest(1e300).parse::<f64>().unwrap(), 1e300);
        assert_eq!(shortest(3.0), "3");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn read_one(text: &str) -> Result<(Vec<Series>, Vec<SeriesReport>), CsvError> {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "web.csv", text);
        read_history(&[p], &HistoryOptions::default())
    }

    fn err_text(text: &str) -> String {
        read_one(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_wide_format_rfc3339_and_offsets() {
        let (s, r) = read_one(
            "timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T01:05:00+01:00,2\n2024-01-01T00:10:00Z,3.5\n",
        )
        .unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].key.as_str(), "web");
        assert_eq!(s[0].step, 300);
        assert_eq!(s[0].start, 1_704_067_200);
        assert_eq!(s[0].values, vec![1.0, 2.0, 3.5]);
        assert_eq!(r[0].rows, 3);
    }

    #[test]
    fn reads_long_format_and_unix_seconds() {
        let (s, _) =
            read_one("timestamp,series,value\n60,a,1\n60,b,10\n120,a,2\n120,b,20\n180,a,3\n")
                .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].key.as_str(), "a");
        assert_eq!(s[0].values, vec![1.0, 2.0, 3.0]);
        assert_eq!(s[1].values, vec![10.0, 20.0]);
        assert_eq!(s[1].step, 60);
    }

    #[test]
    fn bad_inputs_name_file_and_line() {
        let e = err_text("timestamp,value\n60,1\nnot-a-time,2\n");
        assert!(e.contains("web.csv:3:") && e.contains("not-a-time"), "{e}");
        let e = err_text("timestamp,value\n60,1\n120,abc\n");
        assert!(
            e.contains("web.csv:3:") && e.contains("'abc' is not a number"),
            "{e}"
        );
        let e = err_text("timestamp,value\n60,NaN\n");
        assert!(e.contains("web.csv:2:") && e.contains("not finite"), "{e}");
        let e = err_text("timestamp,value\n60,inf\n");
        assert!(e.contains("not finite"), "{e}");
        let e = err_text("timestamp,value\n1700000000000,1\n");
        assert!(
            e.contains("milliseconds") && e.contains("web.csv:2:"),
            "{e}"
        );
        let e = err_text("timestamp,value\n60,1\n120\n");
        assert!(e.contains("web.csv:3:") && e.contains("fields"), "{e}");
        let e = err_text("time,load\n60,1\n");
        assert!(
            e.contains("web.csv:1:") && e.contains("header is 'time,load'"),
            "{e}"
        );
        let e = err_text("60,1\n120,2\n");
        assert!(e.contains("header"), "{e}");
        let e = err_text("");
        assert!(e.contains("web.csv: is empty"), "{e}");
        let e = err_text("timestamp,value\n");
        assert!(e.contains("no data rows"), "{e}");
        let e = err_text("timestamp,value\n60,\n");
        assert!(e.contains("empty value"), "{e}");
        let e = err_text("timestamp,series,value\n60,,1\n");
        assert!(e.contains("empty series name"), "{e}");
        let e = err_text("timestamp,value\n60,1\n");
        assert!(e.contains("cannot infer a step"), "{e}");
    }

    #[test]
    fn a_text_value_column_is_an_error_not_a_series() {
        let e = err_text("timestamp,value\n2024-01-01T00:00:00Z,high\n2024-01-01T00:05:00Z,low\n");
        assert!(
            e.contains("web.csv:2:") && e.contains("'high' is not a number"),
            "{e}"
        );
    }

    #[test]
    fn unsorted_and_duplicate_rows_are_repaired_and_counted() {
        let (s, r) = read_one("timestamp,value\n120,2\n60,1\n180,3\n180,5\n240,4\n").unwrap();
        assert_eq!(s[0].values, vec![1.0, 2.0, 4.0, 4.0]);
        assert_eq!(r[0].reordered, 1);
        assert_eq!(r[0].duplicates, 1);
        assert_eq!(r[0].rows, 5);
        let text = r[0].summary();
        assert!(
            text.contains("1 out-of-order") && text.contains("1 duplicate"),
            "{text}"
        );
    }

    #[test]
    fn gaps_are_filled_or_kept_and_reported() {
        let mut text = String::from("timestamp,value\n");
        for i in [0, 1, 3, 4, 10, 11, 12] {
            text.push_str(&format!("{},{}\n", 60 * i, i));
        }
        let (s, r) = read_one(&text).unwrap();
        assert_eq!(s[0].values[2], 2.0);
        assert!(s[0].values[5..10].iter().all(|v| v.is_nan()));
        assert_eq!(s[0].segments(), vec![0..5, 10..13]);
        assert_eq!(r[0].resample.interpolated, 1);
        assert_eq!(r[0].resample.long_gaps, 1);
        assert!(r[0].summary().contains("1 long gaps"));
    }

    #[test]
    fn same_series_in_two_files_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.csv",
            "timestamp,series,value\n60,x,1\n120,x,2\n",
        );
        let b = write(
            dir.path(),
            "b.csv",
            "timestamp,series,value\n60,x,1\n120,x,2\n",
        );
        let e = read_history(&[a, b], &HistoryOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("'x' appears in both"), "{e}");
    }

    #[test]
    fn missing_file_names_it() {
        let e = read_history(
            &[PathBuf::from("/nonexistent/h.csv")],
            &HistoryOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent/h.csv"), "{e}");
    }

    #[test]
    fn long_csv_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = Series {
            key: SeriesKey::new("cpu{instance=\"a,b\"}"),
            start: 1_704_067_200,
            step: 60,
            values: vec![1.5, 2.0, f64::NAN, f64::NAN, f64::NAN, f64::NAN, 3.25],
        };
        let p = dir.path().join("out.csv");
        write_long_csv(&p, std::slice::from_ref(&s)).unwrap();
        let (back, _) = read_history(
            &[p],
            &HistoryOptions {
                step: Some(60),
                max_gap: Some(60),
            },
        )
        .unwrap();
        assert_eq!(back[0].key, s.key);
        assert_eq!(back[0].start, s.start);
        assert_eq!(back[0].values[..2], s.values[..2]);
        assert!(back[0].values[2..6].iter().all(|v| v.is_nan()));
        assert_eq!(back[0].values[6], 3.25);
    }

    #[test]
    fn stray_rows_far_away_are_dropped_and_reported() {
        // A 1970 row before, and a 2100 row after, 500 one-minute rows.
        let mut text = String::from("timestamp,value\n0,7\n");
        for i in 0..500i64 {
            text.push_str(&format!("{},{}\n", 1_700_000_010 + 60 * i, i % 9));
        }
        text.push_str("4102444800,9\n");
        let (s, r) = read_one(&text).unwrap();
        // The grid starts at the kept block's first row, not on the stray row's phase.
        assert_eq!(
            (s[0].start, s[0].step, s[0].len()),
            (1_700_000_010, 60, 500)
        );
        assert!(s[0].values.iter().all(|v| v.is_finite()));
        let dropped: Vec<(usize, i64)> = r[0].dropped.iter().map(|d| (d.rows, d.first)).collect();
        assert_eq!(dropped, vec![(1, 0), (1, 4_102_444_800)]);
        assert_eq!((r[0].rows, r[0].resample.samples), (502, 500));
        let text = r[0].summary();
        assert!(
            text.contains("2 rows far from the rest dropped (1 at 1970-01-01T00:00:00Z, 1 at 2100-01-01T00:00:00Z)"),
            "{text}"
        );
    }

    #[test]
    fn two_large_blocks_far_apart_are_refused_naming_both() {
        let mut text = String::from("timestamp,value\n");
        for i in 0..100i64 {
            text.push_str(&format!("{},1\n", 60 * i));
        }
        for i in 0..100i64 {
            text.push_str(&format!("{},2\n", 1_700_000_000 + 60 * i));
        }
        let e = err_text(&text);
        assert!(e.contains("web.csv: series 'web' has 200 rows"), "{e}");
        assert!(
            e.contains("2 blocks") && e.contains("100 rows from 1970-01-01T00:00:00Z"),
            "{e}"
        );
        assert!(e.contains("biggest gap"), "{e}");
    }

    #[test]
    fn an_ordinary_outage_stays_on_the_grid() {
        // 5,000 rows with a 10,000-step outage in the middle: within the budget, kept as NaN.
        let mut text = String::from("timestamp,value\n");
        for i in (0..2_500i64).chain(12_500..15_000) {
            text.push_str(&format!("{},1\n", 60 * i));
        }
        let (s, r) = read_one(&text).unwrap();
        assert_eq!(s[0].len(), 15_000);
        assert_eq!(s[0].segments(), vec![0..2_500, 12_500..15_000]);
        assert!(r[0].dropped.is_empty());
        assert_eq!(r[0].resample.gap_steps, 10_000);
    }

    #[test]
    fn a_huge_max_gap_is_refused_before_filling() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "web.csv",
            "timestamp,value\n0,1\n60,1\n90000000000,2\n",
        );
        let opts = HistoryOptions {
            step: Some(60),
            max_gap: Some(i64::MAX / 2),
        };
        let e = read_history(&[p], &opts).unwrap_err().to_string();
        assert!(
            e.contains("web.csv") && e.contains("shorter --max-gap"),
            "{e}"
        );
    }

    proptest! {
        /// The parser never panics, whatever bytes it is given: it reads or it errs.
        #[test]
        fn parser_never_panics(text in "\\PC{0,200}") {
            let _ = read_one(&text);
        }

        /// Arbitrary rows around a valid header either parse to finite values or give an error
        /// that names the file.
        #[test]
        fn rows_parse_or_name_the_file(rows in proptest::collection::vec(("[0-9a-z:.+-]{0,12}", "[0-9a-zA-Z.eE+-]{0,8}"), 1..20)) {
            let mut text = String::from("timestamp,value\n");
            for (t, v) in &rows { text.push_str(&format!("{t},{v}\n")); }
            match read_one(&text) {
                Ok((s, _)) => prop_assert!(s[0].values.iter().any(|v| v.is_finite())),
                Err(e) => prop_assert!(e.to_string().contains("web.csv")),
            }
        }

        /// Any valid set of rows in any order reads back to the same values as sorted input.
        #[test]
        fn order_does_not_matter(mut steps in proptest::collection::btree_set(0i64..500, 2..60), seed in any::<u64>()) {
            let mut rows: Vec<(i64, f64)> = std::mem::take(&mut steps).into_iter().map(|k| (60 * k, (k % 13) as f64)).collect();
            let sorted_text: String = std::iter::once("timestamp,value\n".to_string()).chain(rows.iter().map(|(t, v)| format!("{t},{v}\n"))).collect();
            let mut rng = seed;
            for i in (1..rows.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                rows.swap(i, (rng >> 33) as usize % (i + 1));
            }
            let shuffled_text: String = std::iter::once("timestamp,value\n".to_string()).chain(rows.iter().map(|(t, v)| format!("{t},{v}\n"))).collect();
            let opts = HistoryOptions { step: Some(60), max_gap: Some(180) };
            let dir = tempfile::tempdir().unwrap();
            let a = read_history(&[write(dir.path(), "a.csv", &sorted_text)], &opts).unwrap().0;
            let b = read_history(&[write(dir.path(), "a.csv", &shuffled_text)], &opts).unwrap().0;
            prop_assert_eq!(a[0].start, b[0].start);
            prop_assert_eq!(a[0].values.len(), b[0].values.len());
            for (x, y) in a[0].values.iter().zip(&b[0].values) {
                prop_assert!(x == y || (x.is_nan() && y.is_nan()));
            }
        }
    }
}
