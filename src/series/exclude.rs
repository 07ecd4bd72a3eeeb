//! Time ranges excluded from training (an incident, a migration): `prescale train --exclude
//! FROM..TO` and `[run] retrain_exclude`. Excluded samples become gaps (`NaN`) in the series
//! handed to training, not deletions from the data: the gap rules then guarantee that no
//! feature window spans them and no training target lies inside them, exactly as for a
//! missing stretch of data.

use super::{format_timestamp, Series, SeriesKey};
use serde::{Deserialize, Deserializer};

/// Timestamps with an absolute value from here on are milliseconds (or finer), not seconds:
/// 10^11 s is the year ~5138.
const MAX_UNIX_SECONDS: u64 = 100_000_000_000;

/// A bad time or range, naming where it came from (a flag or a config key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The text is not `FROM..TO` or one side does not parse.
    #[error("{source_name}: {message}")]
    Invalid {
        /// The flag or key it came from (`--exclude`, `run.retrain_exclude[0]`).
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// Every sample of every series falls inside an excluded range.
    #[error(
        "{source_name} excludes every sample of every series ({ranges}): nothing left to train on"
    )]
    Everything {
        /// The flag or key the ranges came from.
        source_name: String,
        /// The ranges, as given.
        ranges: String,
    },
}

/// Parses a point in time given by a user: RFC 3339 with any offset
/// (`2026-12-24T18:00:00Z`) or whole Unix seconds. A number that looks like milliseconds is
/// refused, as the history reader refuses it.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        if secs.unsigned_abs() >= MAX_UNIX_SECONDS {
            return Err(format!(
                "'{t}' looks like milliseconds since the epoch; give Unix seconds or RFC 3339"
            ));
        }
        return Ok(secs);
    }
    let shown: String = t.chars().take(80).collect();
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .map_err(|e| {
            format!("'{shown}' is neither RFC 3339 (2026-12-24T18:00:00Z) nor Unix seconds: {e}")
        })
}

/// Deserialises a time given as an RFC 3339 string or whole Unix seconds, with
/// [`parse_time`]'s message on failure (an untagged enum would only say "no variant matched").
pub fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a time: RFC 3339 (\"2026-12-24T18:00:00Z\") or whole Unix seconds")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            parse_time(&v.to_string()).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            parse_time(&v.to_string()).map_err(E::custom)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
            parse_time(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

/// A half-open time range `[from, to)`, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// First second inside the range.
    #[serde(deserialize_with = "de_time")]
    pub from: i64,
    /// First second after the range.
    #[serde(deserialize_with = "de_time")]
    pub to: i64,
}

impl TimeRange {
    /// Parses `FROM..TO` (each side RFC 3339 or Unix seconds); errors name `source_name`.
    pub fn parse(text: &str, source_name: &str) -> Result<TimeRange, RangeError> {
        let bad = |message: String| RangeError::Invalid {
            source_name: source_name.to_string(),
            message,
        };
        let (from, to) = text.split_once("..").ok_or_else(|| {
            let shown: String = text.chars().take(80).collect();
            bad(format!(
                "'{shown}' is not FROM..TO (e.g. 2026-11-02T09:00:00Z..2026-11-02T13:30:00Z)"
            ))
        })?;
        let range = TimeRange {
            from: parse_time(from).map_err(|m| bad(format!("FROM {m}")))?,
            to: parse_time(to).map_err(|m| bad(format!("TO {m}")))?,
        };
        range.validate(source_name)?;
        Ok(range)
    }

    /// Checks that `to` is after `from`.
    pub fn validate(&self, source_name: &str) -> Result<(), RangeError> {
        if self.to <= self.from {
            return Err(RangeError::Invalid {
                source_name: source_name.to_string(),
                message: format!(
                    "TO ({}) must be after FROM ({})",
                    format_timestamp(self.to),
                    format_timestamp(self.from)
                ),
            });
        }
        Ok(())
    }

    /// Whether `t` lies inside.
    pub fn contains(&self, t: i64) -> bool {
        t >= self.from && t < self.to
    }
}

impl std::fmt::Display for TimeRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}..{}",
            format_timestamp(self.from),
            format_timestamp(self.to)
        )
    }
}

/// Turns every sample of `series` inside one of `ranges` into a gap, and returns, per series,
/// how many real (finite) points were excluded. Refuses (naming `source_name`) when nothing
/// finite would be left in any series; series with nothing excluded are listed with 0.
pub fn exclude(
    series: &mut [Series],
    ranges: &[TimeRange],
    source_name: &str,
) -> Result<Vec<(SeriesKey, usize)>, RangeError> {
    if ranges.is_empty() {
        return Ok(series.iter().map(|s| (s.key.clone(), 0)).collect());
    }
    let mut counts = Vec::with_capacity(series.len());
    let mut left = 0usize;
    for s in series.iter_mut() {
        let (start, step) = (s.start, s.step);
        let mut n = 0;
        for (i, v) in s.values.iter_mut().enumerate() {
            let t = start + step * i as i64;
            if v.is_finite() && ranges.iter().any(|r| r.contains(t)) {
                *v = f64::NAN;
                n += 1;
            }
        }
        left += s.values.iter().filter(|v| v.is_finite()).count();
        counts.push((s.key.clone(), n));
    }
    if left == 0 {
        return Err(RangeError::Everything {
            source_name: source_name.to_string(),
            ranges: ranges
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Series {
        Series {
            key: SeriesKey::new("s"),
            start: 1000,
            step: 60,
            values: (0..n).map(|i| i as f64).collect(),
        }
    }

    #[test]
    fn times_parse_as_rfc3339_or_seconds_and_bad_ones_say_why() {
        assert_eq!(parse_time("2026-12-24T18:00:00Z"), Ok(1_798_135_200));
        assert_eq!(parse_time("2026-12-24T19:00:00+01:00"), Ok(1_798_135_200));
        assert_eq!(parse_time("1798135200"), Ok(1_798_135_200));
        assert!(parse_time("1798135200000")
            .unwrap_err()
            .contains("milliseconds"));
        assert!(parse_time("christmas").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn ranges_parse_and_bad_ones_name_their_flag() {
        let r = TimeRange::parse("100..200", "--exclude").unwrap();
        assert_eq!((r.from, r.to), (100, 200));
        let r = TimeRange::parse("2026-01-01T00:00:00Z..2026-01-01T01:00:00Z", "--exclude");
        assert_eq!(r.unwrap().to - 1_767_225_600, 3600);
        for (bad, want) in [
            ("200..100", "must be after"),
            ("100..100", "must be after"),
            ("100", "not FROM..TO"),
            ("yesterday..200", "FROM 'yesterday'"),
            ("100..soon", "TO 'soon'"),
        ] {
            let e = TimeRange::parse(bad, "--exclude").unwrap_err().to_string();
            assert!(
                e.starts_with("--exclude: ") && e.contains(want),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn excluded_samples_become_gaps_and_are_counted() {
        let mut s = [series(10)];
        // Steps at 1000, 1060, ...: [1060, 1180) holds steps 1 and 2.
        let counts = exclude(
            &mut s,
            &[TimeRange {
                from: 1060,
                to: 1180,
            }],
            "x",
        )
        .unwrap();
        assert_eq!(counts, vec![(SeriesKey::new("s"), 2)]);
        assert!(s[0].values[1].is_nan() && s[0].values[2].is_nan());
        assert_eq!(s[0].values[3], 3.0);
        assert_eq!(s[0].values.len(), 10, "excluded, not deleted");
    }

    #[test]
    fn excluding_everything_is_an_error() {
        let mut s = [series(10)];
        let e = exclude(&mut s, &[TimeRange { from: 0, to: 5000 }], "--exclude").unwrap_err();
        assert!(
            e.to_string().contains("--exclude excludes every sample"),
            "{e}"
        );
    }
}
