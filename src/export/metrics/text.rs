//! OpenMetrics text → the classic Prometheus text format (version 0.0.4).
//!
//! prometheus-client 0.23 encodes OpenMetrics only, and clients that do not ask for it (curl,
//! `promtool check metrics`, older scrapers) parse the classic format, where the two differ:
//!
//! - a counter's `# HELP`/`# TYPE` name the family (`foo`) in OpenMetrics but the sample
//!   (`foo_total`) in the classic format; an info family (`foo`, sample `foo_info`) has no
//!   classic type and becomes the gauge `foo_info`; `unknown` is spelled `untyped`;
//! - `# UNIT`, `# EOF`, `_created` samples and exemplars (`… # {trace_id="…"} 1`) exist only in
//!   OpenMetrics and are dropped;
//! - timestamps are seconds in OpenMetrics, integer milliseconds in the classic format;
//! - `# HELP` text escapes `"` in OpenMetrics only.
//!
//! Samples, label sets and values are otherwise written the same way, so one pass over the lines
//! converts, without parsing the exposition into families first.

/// The classic-format spelling of an OpenMetrics exposition. Lines it does not recognise are
/// kept as they are.
pub(super) fn to_classic(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    // `# HELP` comes before `# TYPE`, and the type decides the name it is written under.
    let mut help: Option<&str> = None;
    let mut family = Family::default();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, help.take(), None);
            help = Some(rest);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            family = Family::new(name, kind);
            let help = help.take().filter(|h| h.split(' ').next() == Some(name));
            flush_help(&mut out, help, Some(&family.classic_name));
            if let Some(kind) = family.classic_type {
                out.push_str("# TYPE ");
                out.push_str(&family.classic_name);
                out.push(' ');
                out.push_str(kind);
                out.push('\n');
            }
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
        } else if line.starts_with('#') || line.is_empty() {
            flush_help(&mut out, help.take(), None);
            out.push_str(line);
            out.push('\n');
        } else {
            flush_help(&mut out, help.take(), None);
            sample(&mut out, line, &family);
        }
    }
    flush_help(&mut out, help, None);
    out
}

/// The family the samples being read belong to.
#[derive(Default)]
struct Family {
    /// The family's name in OpenMetrics (`foo` for the counter whose sample is `foo_total`).
    name: String,
    /// The name its `# HELP` and `# TYPE` take in the classic format.
    classic_name: String,
    /// Its classic type; `None` for a type with no classic counterpart, whose samples are
    /// written untyped.
    classic_type: Option<&'static str>,
    /// Whether it may have `_created` samples (counters, histograms, summaries).
    has_created: bool,
}

impl Family {
    fn new(name: &str, om_type: &str) -> Family {
        let (suffix, classic_type, has_created) = match om_type {
            "counter" => ("_total", Some("counter"), true),
            "info" => ("_info", Some("gauge"), false),
            "gauge" => ("", Some("gauge"), false),
            // A state set's samples are gauges (0 or 1) named after the family.
            "stateset" => ("", Some("gauge"), false),
            "histogram" => ("", Some("histogram"), true),
            "summary" => ("", Some("summary"), true),
            "unknown" => ("", Some("untyped"), false),
            // gaugehistogram (`_gcount`, `_gsum`) has no classic form.
            _ => ("", None, false),
        };
        Family {
            name: name.to_string(),
            classic_name: format!("{name}{suffix}"),
            classic_type,
            has_created,
        }
    }
}

/// Writes a pending `# HELP` under `name` (or its own name when `None`), with OpenMetrics'
/// `\"` unescaped: the classic format escapes only `\\` and `\n` there.
fn flush_help(out: &mut String, help: Option<&str>, name: Option<&str>) {
    let Some(help) = help else { return };
    let (own, text) = help.split_once(' ').unwrap_or((help, ""));
    out.push_str("# HELP ");
    out.push_str(name.unwrap_or(own));
    out.push(' ');
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('"')) => {
                out.push('"');
                chars.next();
            }
            ('\\', Some(e)) => {
                out.push('\\');
                out.push(e);
                chars.next();
            }
            (c, _) => out.push(c),
        }
    }
    out.push('\n');
}

/// Writes one sample line in the classic format: without its exemplar, with its timestamp in
/// milliseconds, and not at all if it is a `_created` sample.
fn sample(out: &mut String, line: &str, family: &Family) {
    let series_end = series_end(line);
    let (series, rest) = line.split_at(series_end);
    let name = series.split('{').next().unwrap_or(series);
    if family.has_created
        && name
            .strip_prefix(family.name.as_str())
            .is_some_and(|s| s == "_created")
    {
        return;
    }
    // What follows the series: ` value [timestamp] [# exemplar]`.
    let rest = rest.split(" # ").next().unwrap_or(rest);
    let mut fields = rest.split_whitespace();
    out.push_str(series);
    if let Some(value) = fields.next() {
        out.push(' ');
        out.push_str(value);
    }
    if let Some(ts) = fields.next() {
        out.push(' ');
        match ts.parse::<f64>() {
            Ok(secs) if secs.is_finite() => out.push_str(&format!("{}", (secs * 1000.0).round())),
            _ => out.push_str(ts),
        }
    }
    out.push('\n');
}

/// Where a sample line's name and label set end: after the `}` that closes the label set (label
/// values may hold spaces, `}` and ` # `), or at the first space if it has none.
fn series_end(line: &str) -> usize {
    let bytes = line.as_bytes();
    let Some(open) = line.find(['{', ' ']) else {
        return line.len();
    };
    if bytes[open] == b' ' {
        return open;
    }
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate().skip(open + 1) {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return i + 1,
            _ => {}
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::metrics::labels::Lv;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family as PcFamily;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::metrics::info::Info;
    use prometheus_client::registry::{Registry, Unit};

    fn om(register: impl FnOnce(&mut Registry)) -> String {
        let mut r = Registry::with_prefix("p");
        register(&mut r);
        let mut out = String::new();
        encode(&mut out, &r).unwrap();
        out
    }

    #[test]
    fn counter_help_and_type_name_the_sample() {
        let c = PcFamily::<Vec<(String, Lv)>, Counter>::default();
        c.get_or_create(&vec![("kind".into(), Lv::from("a \"b\" }"))])
            .inc_by(3);
        let text = om(|r| r.register("decisions", "Decisions \"taken\"", c.clone()));
        assert_eq!(
            to_classic(&text),
            "# HELP p_decisions_total Decisions \"taken\".\n\
             # TYPE p_decisions_total counter\n\
             p_decisions_total{kind=\"a \\\"b\\\" }\"} 3\n"
        );
    }

    #[test]
    fn gauge_with_unit_loses_only_the_unit_line_and_eof() {
        let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        g.set(1.5);
        let text = om(|r| r.register_with_unit("window", "Window", Unit::Seconds, g.clone()));
        assert!(text.contains("# UNIT p_window_seconds seconds"), "{text}");
        assert_eq!(
            to_classic(&text),
            "# HELP p_window_seconds Window.\n\
             # TYPE p_window_seconds gauge\n\
             p_window_seconds 1.5\n"
        );
    }

    #[test]
    fn histogram_is_written_the_same_without_unit_and_eof() {
        let h = Histogram::new([0.1, 1.0]);
        h.observe(0.5);
        let text = om(|r| r.register_with_unit("cycle", "Cycle", Unit::Seconds, h.clone()));
        assert_eq!(
            to_classic(&text),
            "# HELP p_cycle_seconds Cycle.\n\
             # TYPE p_cycle_seconds histogram\n\
             p_cycle_seconds_sum 0.5\n\
             p_cycle_seconds_count 1\n\
             p_cycle_seconds_bucket{le=\"0.1\"} 0\n\
             p_cycle_seconds_bucket{le=\"1.0\"} 1\n\
             p_cycle_seconds_bucket{le=\"+Inf\"} 1\n"
        );
    }

    #[test]
    fn info_becomes_a_gauge_named_after_its_sample() {
        let text = om(|r| r.register("build", "Build", Info::new(vec![("version", "1")])));
        assert_eq!(
            to_classic(&text),
            "# HELP p_build_info Build.\n\
             # TYPE p_build_info gauge\n\
             p_build_info{version=\"1\"} 1\n"
        );
    }

    /// What prometheus-client 0.23 does not write but OpenMetrics allows, and other libraries'
    /// expositions (or a later version) may hold.
    #[test]
    fn created_exemplars_timestamps_and_unknown_types() {
        let text = "# HELP a Requests.\n\
                    # TYPE a counter\n\
                    a_total{path=\"/x # y\"} 7 1700000000.5 # {trace_id=\"t\"} 1 1700000000\n\
                    a_created{path=\"/x # y\"} 1600000000\n\
                    # TYPE u unknown\n\
                    u 1\n\
                    # TYPE g gaugehistogram\n\
                    g_gcount 2\n\
                    # EOF\n";
        assert_eq!(
            to_classic(text),
            "# HELP a_total Requests.\n\
             # TYPE a_total counter\n\
             a_total{path=\"/x # y\"} 7 1700000000500\n\
             # TYPE u untyped\n\
             u 1\n\
             g_gcount 2\n"
        );
    }
}
