//! Values given as text in `prescale.toml`, parsed with an error that names the text:
//! Kubernetes-style quantities (`"500m"`, `"512Mi"`), quantiles (`0.9`, `"p90"`), shares
//! (`"1%"`) and durations (`"90s"`), each accepted as a number too, so values can be copied
//! from manifests.

pub use crate::series::parse_quantity;
use serde::Deserializer;
use std::fmt;

/// Why a quantity, quantile or duration given as text was refused; each names the text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseValueError {
    /// A quantity [`crate::series::parse_quantity`] refused (its message names the text).
    #[error(transparent)]
    Quantity(#[from] crate::series::QuantityError),
    /// Neither `pNN` nor a number.
    #[error("'{text}' is not a quantile like p90, p95, p99 or 0.9")]
    NotAQuantile {
        /// The text as given.
        text: String,
    },
    /// A quantile at or outside 0 and 1.
    #[error("'{text}' must be a quantile strictly between 0 and 1")]
    QuantileRange {
        /// The text as given.
        text: String,
    },
    /// Neither `N%` nor a number.
    #[error("'{text}' is not a share like \"1%\" or 0.01")]
    NotAShare {
        /// The text as given.
        text: String,
    },
    /// A share below 0 or above 100 %.
    #[error("'{text}' must be a share between 0 and 100%")]
    ShareRange {
        /// The text as given.
        text: String,
    },
    /// A duration [`crate::series::parse_duration`] refused (its message names the text).
    #[error(transparent)]
    Duration(#[from] crate::series::DurationError),
}

/// Parses a risk quantile: `0.9`, `"0.9"`, `"p90"`, `"p99.9"`.
pub fn parse_quantile(text: &str) -> Result<f64, ParseValueError> {
    let t = text.trim();
    let v = if let Some(p) = t.strip_prefix(['p', 'P']) {
        p.parse::<f64>().map(|v| v / 100.0)
    } else {
        t.parse::<f64>()
    }
    .map_err(|_| ParseValueError::NotAQuantile {
        text: text.to_string(),
    })?;
    if !(v > 0.0 && v < 1.0) {
        return Err(ParseValueError::QuantileRange {
            text: text.to_string(),
        });
    }
    Ok(v)
}

/// Parses a share: `"1%"`, `"0.5 %"`, or a plain fraction `0.01`. Only the range [0, 1] is
/// checked here; a key's own limits are its spec's `validate`.
pub fn parse_share(text: &str) -> Result<f64, ParseValueError> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| ParseValueError::NotAShare {
        text: text.to_string(),
    })?;
    if !(0.0..=1.0).contains(&v) {
        return Err(ParseValueError::ShareRange {
            text: text.to_string(),
        });
    }
    Ok(v)
}

/// A visitor taking numbers as they are and strings through a parser, so that each config key
/// accepts both `300` and `"5m"`.
struct NumOrText {
    expecting: &'static str,
    parse: fn(&str) -> Result<f64, ParseValueError>,
}

impl serde::de::Visitor<'_> for NumOrText {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<f64, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

pub(super) fn de_quantity<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(NumOrText {
        expecting: "a number or a quantity like \"500m\" or \"512Mi\"",
        parse: |t| Ok(parse_quantity(t)?),
    })
}

pub(super) fn de_opt_share<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(NumOrText {
        expecting: "a share like \"1%\" or 0.01",
        parse: parse_share,
    })
    .map(Some)
}

pub(super) fn de_quantile<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(NumOrText {
        expecting: "a quantile like 0.9 or \"p90\"",
        parse: parse_quantile,
    })
}

/// Durations as `"90s"`, `"5m"`, `"1h"` (via [`crate::series::parse_duration`]) or whole
/// seconds, at most [`crate::series::MAX_DURATION`]; `0`/`"0s"` is allowed because an instant
/// boot or no stabilisation is legitimate.
pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    fn parse(text: &str) -> Result<f64, ParseValueError> {
        let t = text.trim();
        if t.trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse::<f64>()
            == Ok(0.0)
        {
            return Ok(0.0);
        }
        crate::series::parse_duration(t)
            .map(|s| s as f64)
            .map_err(ParseValueError::from)
    }
    let v = d.deserialize_any(NumOrText {
        expecting: "a duration like \"90s\", \"5m\" or whole seconds",
        parse,
    })?;
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0) {
        return Err(serde::de::Error::custom(format!(
            "{v} is not a whole, non-negative number of seconds"
        )));
    }
    if v > crate::series::MAX_DURATION as f64 {
        return Err(serde::de::Error::custom(format!(
            "{v} seconds is longer than the limit of 366d"
        )));
    }
    Ok(v as i64)
}
