//! Generators for the CSV readers: history and task files. Each builds a
//! valid input, breaks some of its fields with values from lists of known trouble, then applies
//! byte-level [`Mutation`]s.

use super::{apply, mutation, Bytes, Mutation};
use proptest::prelude::*;

/// Timestamps that are wrong in every way a history file has shown: out of range for `i64`
/// seconds or milliseconds, milliseconds, not numbers, impossible dates, huge texts.
pub fn bad_timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "",
            "abc",
            "NaN",
            "inf",
            "-inf",
            "1e300",
            "-1e300",
            "9.3e18",
            "-9.3e18",
            "9.3e15",
            "-9.3e15",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999",
            "99999999999.5",
            "-99999999999",
            "1e10",
            "0",
            "-1",
            "0.0000001",
            "1e-300",
            "2024-13-45T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "2024-05-01T12:00:00+23:59",
            "2024-05-01T12:00:00-23:59",
            "2024-05-01T12:00:00",
            "2024-05-01 12:00:00Z",
            "  17  ",
            "1,7",
            "\"1700000000\"",
            "\u{0}",
        ])
        .prop_map(str::to_string),
        (1usize..20_000).prop_map(|n| "1".repeat(n)),
        any::<f64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
    ]
}

/// Values that are not load: NaN, infinities, overflow, text, quotes, huge fields.
pub fn bad_value() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "Infinity",
            "1e308",
            "-1e308",
            "1e400",
            "-1e400",
            "1.7976931348623157e308",
            "4.9e-324",
            "abc",
            "\"4\"",
            "0x10",
            "1_000",
            "1,5",
            "\u{0}",
            "\"",
            "--1",
            "+",
            ".",
            "1e",
            "١٢",
        ])
        .prop_map(str::to_string),
        (1usize..20_000).prop_map(|n| "x".repeat(n)),
        (1usize..2_000).prop_map(|n| "9".repeat(n)),
        any::<f64>().prop_map(|v| v.to_string()),
    ]
}

/// One field-level break of a CSV file.
#[derive(Debug, Clone)]
pub enum RowEdit {
    /// Replace field `field` (modulo the row's width) of row `row` (modulo the count).
    Field {
        row: usize,
        field: usize,
        text: String,
    },
    /// Repeat a row (same timestamp or id).
    Duplicate(usize),
    /// Swap two rows.
    Swap(usize, usize),
    /// Remove a row.
    Remove(usize),
    /// A row with this timestamp added (a stray far-away row).
    Stray(String),
}

fn row_edit(width: usize, bad_field: BoxedStrategy<String>) -> impl Strategy<Value = RowEdit> {
    prop_oneof![
        6 => (any::<usize>(), 0..width, bad_field).prop_map(|(row, field, text)| RowEdit::Field { row, field, text }),
        1 => any::<usize>().prop_map(RowEdit::Duplicate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| RowEdit::Swap(a, b)),
        1 => any::<usize>().prop_map(RowEdit::Remove),
        2 => bad_timestamp().prop_map(RowEdit::Stray),
    ]
}

/// Applies `edits` to `rows`; stray rows copy the first row with field 0 replaced.
fn edit_rows(rows: &mut Vec<Vec<String>>, edits: &[RowEdit]) {
    for e in edits {
        if rows.is_empty() {
            return;
        }
        let n = rows.len();
        match e {
            RowEdit::Field { row, field, text } => {
                let r = &mut rows[row % n];
                let w = r.len();
                r[field % w] = text.clone();
            }
            RowEdit::Duplicate(i) => {
                let r = rows[i % n].clone();
                rows.insert(i % n, r);
            }
            RowEdit::Swap(a, b) => rows.swap(a % n, b % n),
            RowEdit::Remove(i) => {
                rows.remove(i % n);
            }
            RowEdit::Stray(ts) => {
                let mut r = rows[0].clone();
                r[0] = ts.clone();
                rows.push(r);
            }
        }
    }
}

/// How rows are written out.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `\r\n` line ends instead of `\n`.
    pub crlf: bool,
    /// A UTF-8 byte-order mark first.
    pub bom: bool,
    /// Every field quoted.
    pub quoted: bool,
    /// No newline after the last row.
    pub no_final_newline: bool,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
        any::<bool>(),
    )
        .prop_map(|(crlf, bom, quoted, no_final_newline)| Layout {
            crlf,
            bom,
            quoted,
            no_final_newline,
        })
}

fn render(header: &str, rows: &[Vec<String>], l: &Layout, mutations: &[Mutation]) -> Vec<u8> {
    let eol = if l.crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    if l.bom {
        out.push('\u{feff}');
    }
    out.push_str(header);
    for r in rows {
        out.push_str(eol);
        let fields: Vec<String> = if l.quoted {
            r.iter()
                .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
                .collect()
        } else {
            r.clone()
        };
        out.push_str(&fields.join(","));
    }
    if !l.no_final_newline {
        out.push_str(eol);
    }
    let mut bytes = out.into_bytes();
    for m in mutations {
        apply(&mut bytes, m);
    }
    bytes
}

/// A history file and the options it is read with.
#[derive(Debug, Clone)]
pub struct HistoryCase {
    /// The file's bytes.
    pub bytes: Bytes,
    /// `--step`, seconds.
    pub step: Option<i64>,
    /// `--max-gap`, seconds.
    pub max_gap: Option<i64>,
}

fn timestamp_text(ts: i64, style: u8) -> String {
    match style % 4 {
        0 => ts.to_string(),
        1 => format!("{ts}.25"),
        2 => prescale::series::format_timestamp(ts),
        _ => chrono::DateTime::from_timestamp(ts, 0)
            .map(|t| {
                t.with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).expect("offset"))
                    .to_rfc3339()
            })
            .unwrap_or_else(|| ts.to_string()),
    }
}

/// A `timestamp,value` or `timestamp,series,value` file with 2..400 rows on a regular step,
/// broken by field edits, a layout and byte mutations.
pub fn history() -> impl Strategy<Value = HistoryCase> {
    let options = proptest::sample::select(vec![
        None,
        Some(-5),
        Some(0),
        Some(1),
        Some(7),
        Some(60),
        Some(300),
        Some(86_400),
        Some(1 << 40),
        Some(i64::MAX / 2),
        Some(i64::MAX),
    ]);
    let gaps = proptest::sample::select(vec![None, Some(-1), Some(0), Some(600), Some(i64::MAX)]);
    (
        (any::<bool>(), 1usize..4, 2usize..400, 0u8..4),
        (
            1_000_000_000i64..2_000_000_000,
            prop_oneof![Just(1i64), Just(60), Just(300), 1i64..5000],
        ),
        proptest::collection::vec(
            row_edit(3, prop_oneof![bad_timestamp(), bad_value()].boxed()),
            0..4,
        ),
        layout(),
        proptest::collection::vec(mutation(), 0..3),
        (options.clone(), gaps),
        proptest::collection::vec(-1e6f64..1e6, 1..8),
    )
        .prop_map(
            |((long, series, n, style), (t0, step), edits, l, muts, (opt_step, max_gap), vals)| {
                let mut rows: Vec<Vec<String>> = (0..n)
                    .map(|i| {
                        let ts = timestamp_text(t0 + i as i64 * step, style);
                        let v = vals[i % vals.len()].to_string();
                        if long {
                            vec![ts, format!("s{}", i % series), v]
                        } else {
                            vec![ts, v]
                        }
                    })
                    .collect();
                edit_rows(&mut rows, &edits);
                let header = if long {
                    "timestamp,series,value"
                } else {
                    "timestamp,value"
                };
                HistoryCase {
                    bytes: Bytes(render(header, &rows, &l, &muts)),
                    step: opt_step,
                    max_gap,
                }
            },
        )
}

/// Field values that break a task row.
fn bad_task_field() -> impl Strategy<Value = String> {
    prop_oneof![
        bad_value(),
        proptest::sample::select(vec![
            "-1",
            "0",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775808",
            "-9223372036854775809",
            "1.5",
            "1e3",
        ])
        .prop_map(str::to_string),
    ]
}

/// A task file (`id,submit,duration,priority,cpu,mem,gpu`) with 1..300 rows, broken.
pub fn tasks() -> impl Strategy<Value = Bytes> {
    (
        1usize..300,
        proptest::collection::vec(row_edit(7, bad_task_field().boxed()), 0..4),
        layout(),
        proptest::collection::vec(mutation(), 0..3),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(n, edits, l, muts, bad_header)| {
            let mut rows: Vec<Vec<String>> = (0..n)
                .map(|i| {
                    vec![
                        i.to_string(),
                        (i * 7 % 100).to_string(),
                        format!("{}.5", 1 + i % 30),
                        (i % 5).to_string(),
                        "0.5".into(),
                        "2".into(),
                        (i % 2).to_string(),
                    ]
                })
                .collect();
            edit_rows(&mut rows, &edits);
            let header = if bad_header {
                "id,submit,duration,priority,cpu,mem,gpu,".to_string() + &"y".repeat(5000)
            } else {
                prescale::sim::batch::tasks::TASK_HEADER.join(",")
            };
            Bytes(render(&header, &rows, &l, &muts))
        })
}
