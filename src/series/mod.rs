//! Fixed-step time series: the value every stage of prescale hands on.
//!
//! A [`Series`] is a finished history (read from CSV, or copied out of a live buffer); a
//! [`Ring`] is the bounded buffer the collector appends to. Both keep one value per step and
//! mark missing samples as gaps (`NaN`), never as zeros, so that nothing downstream mistakes an
//! outage for idle load.

mod blocks;
pub(crate) mod csv;
mod exclude;
mod map;
mod quantity;
mod reader;
mod report;
mod resample;
mod ring;

pub use self::csv::{
    read_history, write_long_csv, CsvError, DroppedRows, HistoryOptions, SeriesReport,
};
pub use exclude::{de_time, exclude, parse_time, RangeError, TimeRange};
pub use map::{SeriesHasher, SeriesMap};
pub use quantity::{parse_quantity, QuantityError};
pub use resample::{join, resample, run_steps, ResampleStats, Resampled, Run, Sample};
pub use ring::{PushOutcome, Ring};

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

/// A stable name for one series: a file stem, the `series` column of a long CSV, or a
/// Prometheus signal name plus the label values that identify one series of it.
///
/// Shared text (`Arc<str>`), not a `String`: the loop copies each key into several per-cycle
/// maps, and at 100,000 series those copies' allocations were an eighth of its cycle
/// (`benches/loop_cycle.rs`: 3.14 → 2.78 s); a copy is now a count. Serialised as the string.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct SeriesKey(std::sync::Arc<str>);

impl SeriesKey {
    /// A key from a plain name.
    pub fn new(name: impl Into<String>) -> Self {
        SeriesKey(name.into().into())
    }

    /// A key for one series of a signal, e.g. `cpu{instance="a:9100"}`. Labels are sorted by
    /// name so the same label set always gives the same key, whatever order Prometheus used.
    pub fn from_labels(signal: &str, labels: &BTreeMap<String, String>) -> Self {
        Self::from_sorted_labels(signal, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// [`from_labels`](Self::from_labels) of labels already sorted by name (and each name
    /// once), written straight into the key: the collector makes a key per series per poll.
    pub(crate) fn from_sorted_labels<'a>(
        signal: &str,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut labels = labels.into_iter().peekable();
        if labels.peek().is_none() {
            return SeriesKey(signal.into());
        }
        let mut key = String::with_capacity(signal.len() + 64);
        key.push_str(signal);
        key.push('{');
        for (i, (k, v)) in labels.enumerate() {
            if i > 0 {
                key.push(',');
            }
            key.push_str(k);
            key.push_str("=\"");
            for c in v.chars() {
                if matches!(c, '\\' | '"') {
                    key.push('\\');
                }
                key.push(c);
            }
            key.push('"');
        }
        key.push('}');
        SeriesKey(key.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The signal name and labels of a key made by [`from_labels`](Self::from_labels), e.g.
    /// `cpu{instance="a:9100"}` → `("cpu", {instance: "a:9100"})`. Any other key (a file stem,
    /// a CSV `series` value that is not of this form) is all name and no labels.
    pub fn parts(&self) -> (&str, BTreeMap<String, String>) {
        let whole = (&*self.0, BTreeMap::new());
        let Some((name, rest)) = self.0.split_once('{') else {
            return whole;
        };
        match rest.strip_suffix('}').map(parse_labels) {
            Some(Some(labels)) if !name.is_empty() => (name, labels),
            _ => whole,
        }
    }
}

/// `k1="v1",k2="v2"` as [`SeriesKey::from_labels`] writes it (values with `\\` and `\"`
/// escaped); `None` if it is not of that form.
fn parse_labels(mut rest: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => value.push(chars.next()?.1),
                (_, c) => value.push(c),
            }
        };
        if key.is_empty() || labels.insert(key.to_string(), value).is_some() {
            return None;
        }
        rest = &after[end + 1..];
        if !rest.is_empty() {
            rest = rest.strip_prefix(',')?;
        }
    }
    Some(labels)
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One series on a fixed step: `values[i]` is the sample at `start + i * step` (Unix seconds).
/// `NaN` marks a gap that was too long to interpolate; finite values are real or interpolated
/// samples.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Series {
    /// Which series this is.
    pub key: SeriesKey,
    /// Timestamp of `values[0]`, Unix seconds.
    pub start: i64,
    /// Spacing of the values in seconds (at least 1).
    pub step: i64,
    /// One value per step; `NaN` = gap.
    pub values: Vec<f64>,
}

impl Series {
    /// A series for tests: `name`'s `values` from `start`, one per `step` seconds.
    #[cfg(test)]
    pub(crate) fn for_test(name: &str, start: i64, step: i64, values: Vec<f64>) -> Self {
        Series {
            key: SeriesKey::new(name),
            start,
            step,
            values,
        }
    }

    /// Number of steps covered (gaps included).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the series holds no steps at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Timestamp of step `i`.
    pub fn timestamp(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Timestamp one step past the last value.
    pub fn end(&self) -> i64 {
        self.timestamp(self.values.len())
    }

    /// The runs of finite values, as index ranges, in time order. Long gaps split a series into
    /// segments; nothing that needs contiguous history may look across a segment boundary.
    pub fn segments(&self) -> Vec<Range<usize>> {
        segments(&self.values)
    }

    /// Number of gap steps (`NaN`).
    pub fn gap_steps(&self) -> usize {
        self.values.iter().filter(|v| v.is_nan()).count()
    }

    /// A copy of the steps in `range` (clamped to the series), with the start moved to match.
    pub fn slice(&self, range: Range<usize>) -> Series {
        let end = range.end.min(self.values.len());
        let begin = range.start.min(end);
        Series {
            key: self.key.clone(),
            start: self.timestamp(begin),
            step: self.step,
            values: self.values[begin..end].to_vec(),
        }
    }
}

/// The runs of finite values of `values`, as index ranges.
pub fn segments(values: &[f64]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut begin = None;
    for (i, v) in values.iter().enumerate() {
        match (v.is_finite(), begin) {
            (true, None) => begin = Some(i),
            (false, Some(b)) => {
                out.push(b..i);
                begin = None;
            }
            _ => {}
        }
    }
    if let Some(b) = begin {
        out.push(b..values.len());
    }
    out
}

/// The `*.csv` files directly in `dir`, sorted by path, so a directory of history reads in the
/// same order everywhere.
pub fn csv_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "csv") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Why a duration text was refused; each message quotes the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration `humantime` understands.
    #[error("'{text}' is not a duration like 30s, 5m, 1h or 7d: {reason}")]
    Syntax {
        /// The text as given.
        text: String,
        /// What `humantime` said.
        reason: String,
    },
    /// Has a fraction of a second: every step and window is whole seconds.
    #[error("'{0}' is not a whole number of seconds")]
    Fraction(String),
    /// Zero: no step, window or timeout may be empty.
    #[error("'{0}' must be longer than zero")]
    Zero(String),
    /// Longer than [`MAX_DURATION`].
    #[error("'{0}' is longer than the limit of 366d")]
    TooLong(String),
}

/// Longest duration any setting takes, in seconds: 366 days (the longest lookback, a leap
/// year). A longer one is surely a typo, and the bound keeps every sum and product of
/// durations and timestamps (`3 × step`, `start + warmup`, `interval / speed`) far from
/// overflowing.
pub const MAX_DURATION: i64 = 366 * 86_400;

/// Parses a duration such as `5m`, `15m`, `1h30m`, `7d` or `90s` into whole seconds, at most
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| DurationError::Syntax {
        text: text.to_string(),
        reason: e.to_string(),
    })?;
    if d.subsec_nanos() != 0 {
        return Err(DurationError::Fraction(text.to_string()));
    }
    let secs = d.as_secs();
    if secs == 0 {
        return Err(DurationError::Zero(text.to_string()));
    }
    match i64::try_from(secs) {
        Ok(s) if s <= MAX_DURATION => Ok(s),
        _ => Err(DurationError::TooLong(text.to_string())),
    }
}

/// Formats Unix seconds as RFC 3339 UTC to the second (`2024-01-01T00:00:00Z`): the one
/// spelling of an instant in everything prescale writes (CSV, decision log, reports, metrics).
/// An instant outside chrono's range (hundreds of millennia away) prints as its number.
pub fn format_timestamp(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ts.to_string())
}

/// Formats seconds back into the shortest `humantime` text (`300` → `5m`).
pub fn format_duration(secs: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs.max(0) as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_labels() {
        let mut a = BTreeMap::new();
        a.insert("job".to_string(), "node".to_string());
        a.insert("instance".to_string(), "x:1".to_string());
        assert_eq!(
            SeriesKey::from_labels("cpu", &a).as_str(),
            "cpu{instance=\"x:1\",job=\"node\"}"
        );
        assert_eq!(
            SeriesKey::from_labels("cpu", &BTreeMap::new()).as_str(),
            "cpu"
        );
    }

    #[test]
    fn parts_undo_from_labels() {
        let mut a = BTreeMap::new();
        a.insert("service".to_string(), "api".to_string());
        a.insert("path".to_string(), "a\\b\"c,d}=\"\n\\n".to_string());
        let key = SeriesKey::from_labels("rps", &a);
        assert_eq!(key.parts(), ("rps", a));
        assert_eq!(SeriesKey::new("web").parts(), ("web", BTreeMap::new()));
        // Not of the form: all name, nothing lost.
        for odd in [
            "a{b}",
            "a{b=\"c}",
            "{b=\"c\"}",
            "a{b=\"c\"d=\"e\"}",
            "a{=\"c\"}",
        ] {
            assert_eq!(SeriesKey::new(odd).parts(), (odd, BTreeMap::new()), "{odd}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parts_round_trip(
            name in "[a-z_:][a-z0-9_:]{0,8}",
            labels in proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,6}", "\\PC{0,8}", 0..4),
        ) {
            let key = SeriesKey::from_labels(&name, &labels);
            // The spelling keys always had (saved state and logs name series by it).
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let spelt = if labels.is_empty() { name.clone() } else { format!("{name}{{{}}}", inner.join(",")) };
            proptest::prop_assert_eq!(key.as_str(), spelt.as_str());
            proptest::prop_assert_eq!(key.parts(), (name.as_str(), labels));
        }
    }

    #[test]
    fn segments_split_on_gaps() {
        let v = [f64::NAN, 1.0, 2.0, f64::NAN, f64::NAN, 3.0];
        assert_eq!(segments(&v), vec![1..3, 5..6]);
        assert!(segments(&[f64::NAN]).is_empty());
    }

    #[test]
    fn csv_files_lists_only_csv_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.csv", "a.csv", "notes.txt"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = csv_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.csv", "b.csv"]);
        assert!(csv_files(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), 300);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("7d").unwrap(), 7 * 86400);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("five")
            .unwrap_err()
            .to_string()
            .contains("five"));
        assert_eq!(format_duration(300), "5m");
    }
}
