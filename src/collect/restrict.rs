//! Narrowing a signal's query to the series a shard plans (`[shard]`).
//!
//! A signal is one PromQL query answering every series (`sum by (service) (rate(...))`); a
//! shard wants only its own workloads' demand series. PromQL cannot filter an arbitrary
//! expression by label value directly, so the narrowed query marks the wanted series and
//! keeps only the marked ones, all inside Prometheus:
//!
//! ```text
//! sum without (prescale_shard_key, prescale_shard_keep) (
//!     label_replace(label_join((<query>), "prescale_shard_key", "\x1f", "l1", "l2"),
//!                   "prescale_shard_keep", "1", "prescale_shard_key", "<v1>\x1f<w1>|...")
//!   and on (prescale_shard_keep) label_replace(vector(1), "prescale_shard_keep", "1", "", ""))
//! ```
//!
//! `label_join` writes the key's label values into one label, `label_replace` marks the series
//! whose joined values are a wanted key (Prometheus anchors the regex), `and on(...)` drops
//! the unmarked ones, and `sum without` removes the two helper labels again (each series is
//! alone in its group, so the sum is its own value). Prometheus still evaluates the inner
//! query in full; what shrinks is the answer (bytes on the wire, JSON decoding, memory), which
//! is what limits a replica.
//!
//! The labels joined are the signal's `series_labels`, or, without them, the labels of the
//! wanted keys when they all have the same names. Otherwise (keys of mixed label sets, keys
//! with no labels) the query is left alone: the collector drops the unwanted series on
//! arrival anyway ([`Collector::keep_only`](super::Collector::keep_only)), so narrowing is an
//! optimisation and never decides correctness.

use super::config::SignalConfig;
use crate::series::SeriesKey;
use std::collections::BTreeSet;

/// The label the wanted keys' values are joined into.
pub const KEY_LABEL: &str = "prescale_shard_key";
/// The label that marks a wanted series.
pub const KEEP_LABEL: &str = "prescale_shard_keep";
/// Between joined label values: a control character no real label value contains (a value that
/// did would at worst let an unwanted series through to the collector's own filter).
const SEP: char = '\u{1f}';

/// `sig`'s query narrowed to the series `keys` (all of this signal), or `None` when it cannot
/// be narrowed (see the module doc) or there is nothing to narrow to.
pub fn restrict(sig: &SignalConfig, keys: &[SeriesKey]) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    let parts: Vec<_> = keys.iter().map(|k| k.parts().1).collect();
    let names: Vec<String> = if sig.series_labels.is_empty() {
        let first: Vec<String> = parts[0].keys().cloned().collect();
        if first.is_empty() || parts.iter().any(|p| !p.keys().eq(first.iter())) {
            return None;
        }
        first
    } else {
        sig.series_labels.clone()
    };
    // A key lacks a label its series lacked; label_join reads a missing label as "".
    let wanted: BTreeSet<String> = parts
        .iter()
        .map(|p| {
            names
                .iter()
                .map(|n| regex_escape(p.get(n).map_or("", String::as_str)))
                .collect::<Vec<_>>()
                .join(&SEP.to_string())
        })
        .collect();
    let regex = wanted.into_iter().collect::<Vec<_>>().join("|");
    let sources = names
        .iter()
        .map(|n| quote(n))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "sum without ({KEY_LABEL}, {KEEP_LABEL}) (label_replace(label_join(({query}), \"{KEY_LABEL}\", {sep}, {sources}), \"{KEEP_LABEL}\", \"1\", \"{KEY_LABEL}\", {regex}) and on ({KEEP_LABEL}) label_replace(vector(1), \"{KEEP_LABEL}\", \"1\", \"\", \"\"))",
        query = sig.query,
        sep = quote(&SEP.to_string()),
        regex = quote(&regex),
    ))
}

/// `s` as a RE2 literal: every metacharacter escaped.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` as a double-quoted PromQL string (Go's escaping rules): backslashes, quotes and control
/// characters escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn key(sig: &str, labels: &[(&str, &str)]) -> SeriesKey {
        let m: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SeriesKey::from_labels(sig, &m)
    }

    #[test]
    fn narrows_on_series_labels_with_escaped_values() {
        let mut sig = SignalConfig::new("rps", "sum by (service) (rate(x[5m]))", 60, 3600);
        sig.series_labels = vec!["service".into()];
        let q = restrict(
            &sig,
            &[
                key("rps", &[("service", "a.b")]),
                key("rps", &[("service", "c\"d")]),
            ],
        )
        .unwrap();
        assert!(q.contains("(sum by (service) (rate(x[5m])))"), "{q}");
        assert!(
            q.contains(r#""prescale_shard_key", "\x1f", "service")"#),
            "{q}"
        );
        // a\.b in RE2, then the backslash doubled for the PromQL string; the quote escaped.
        assert!(q.contains(r#""a\\.b|c\"d""#), "{q}");
    }

    #[test]
    fn without_series_labels_the_keys_labels_are_joined_if_they_agree() {
        let sig = SignalConfig::new("rps", "up", 60, 3600);
        let q = restrict(
            &sig,
            &[
                key("rps", &[("job", "a"), ("instance", "1")]),
                key("rps", &[("job", "b"), ("instance", "2")]),
            ],
        )
        .unwrap();
        assert!(q.contains(r#""instance", "job""#), "{q}");
        assert!(q.contains(r#""1\x1fa|2\x1fb""#), "{q}");
        let mixed = [
            key("rps", &[("job", "a")]),
            key("rps", &[("instance", "1")]),
        ];
        assert_eq!(restrict(&sig, &mixed), None);
        assert_eq!(restrict(&sig, &[SeriesKey::new("rps")]), None);
        assert_eq!(restrict(&sig, &[]), None);
    }
}
