//! The shapes of Prometheus' answers (`data` of `/api/v1/query` and `/api/v1/query_range`), as
//! the collector uses them. Both readers fill these: the hand-written one in `json.rs`, which the
//! client uses, and serde (the derives below), which the parse benchmark measures against it.
//! They sit apart from the client so that neither reader imports the other's module.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// One sample: Unix seconds (possibly fractional) and its value (`NaN`, `±Inf` kept as such).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix seconds.
    pub ts: f64,
    /// The value.
    pub value: f64,
}

/// One series of a range query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RangeSeries {
    /// Its labels (`__name__` included when the query keeps it).
    #[serde(default)]
    pub metric: BTreeMap<String, String>,
    /// Samples in time order.
    #[serde(default)]
    pub values: Vec<Point>,
}

/// One series of an instant query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstantSample {
    /// Its labels.
    #[serde(default)]
    pub metric: BTreeMap<String, String>,
    /// The sample (absent for native histograms, which prescale does not read).
    #[serde(default)]
    pub value: Option<Point>,
}

/// The `data` of a successful answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum QueryData {
    /// A range vector (from `query_range`).
    Matrix(Vec<RangeSeries>),
    /// An instant vector.
    Vector(Vec<InstantSample>),
    /// A scalar.
    Scalar(Point),
    /// A string, `[ts, "text"]`.
    String(StringPoint),
}

impl QueryData {
    /// Prometheus' `resultType` for this data.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            QueryData::Matrix(_) => "matrix",
            QueryData::Vector(_) => "vector",
            QueryData::Scalar(_) => "scalar",
            QueryData::String(_) => "string",
        }
    }
}

/// A string result: `[ts, "text"]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StringPoint(pub f64, pub String);

/// A successful answer with Prometheus' warnings (e.g. a query that matched too many series on
/// a federated setup), which callers log.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    /// The data.
    pub data: T,
    /// `warnings`, as sent.
    pub warnings: Vec<String>,
}

impl<'de> Deserialize<'de> for Point {
    /// `[ts, "value"]`: Prometheus sends the value as a string (Go's float formatting, `NaN`,
    /// `+Inf`, `-Inf`), parsed as the standard library parses it.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (ts, SampleValue(value)) = <(f64, SampleValue)>::deserialize(d)?;
        Ok(Point { ts, value })
    }
}

/// A sample value's string, parsed without allocating.
struct SampleValue(f64);

impl<'de> Deserialize<'de> for SampleValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SampleValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sample value as a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SampleValue, E> {
                s.parse()
                    .map(SampleValue)
                    .map_err(|_| E::custom(format!("sample value '{s}' is not a number")))
            }
        }
        d.deserialize_str(V)
    }
}
