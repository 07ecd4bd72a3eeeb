//! What reading history produced besides the series: the errors, naming file and line, and the
//! report of repairs. Apart from the reader itself so that the record reader (`reader`) and the
//! block cutter (`blocks`) can name them without importing the CSV reader that uses both.

use super::resample::{ResampleStats, Sample};
use super::SeriesKey;
use std::path::PathBuf;

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
