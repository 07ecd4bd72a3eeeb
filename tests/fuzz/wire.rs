//! Generators for the machine-written inputs: Prometheus answers, model files and decision
//! logs. Each starts from what the real writer produces and breaks it.

use super::{apply, mutation, Bytes, Mutation};
use proptest::prelude::*;

/// Timestamps as Prometheus might (or a broken proxy might) write them.
fn ts_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (1_749_990_000u64..1_750_010_000).prop_map(|t| t.to_string()),
        2 => (1_700_000_000u64..1_800_000_000, 0u32..1000).prop_map(|(t, f)| format!("{t}.{f:03}")),
        3 => proptest::sample::select(vec![
            "1e300", "-1e300", "9.3e18", "-9.3e18", "9.3e15", "-9.3e15", "9223372036854775807",
            "-9223372036854775808", "1e19", "0", "-0", "-1", "1e-300", "4.9e-324",
            "1.7976931348623157e308",
        ]).prop_map(str::to_string),
        1 => (1usize..400).prop_map(|n| "9".repeat(n)),
    ]
}

/// Sample value strings, `"` excluded (the renderer adds them).
fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Unreadable values refuse the whole answer, so they are rare: most cases must reach
        // the code behind the parser.
        16 => (-1e6f64..1e6).prop_map(|v| v.to_string()),
        2 => proptest::sample::select(vec![
            "NaN", "+Inf", "-Inf", "Inf", "1e999", "-1e999", "1.7976931348623157e308", "4.9e-324",
        ]).prop_map(str::to_string),
        1 => proptest::sample::select(vec!["", "abc", "1e", "0x1", "\\u0031"]).prop_map(str::to_string),
        1 => (1usize..400).prop_map(|n| "9".repeat(n)),
    ]
}

/// A label value with JSON escapes, non-ASCII and (rarely) a long run.
fn label_text() -> impl Strategy<Value = String> {
    prop_oneof![
        16 => "[a-z0-9-]{1,12}",
        2 => proptest::sample::select(vec![r#"a\"b"#, r#"\u00e9\ud83d\ude00"#, r#"\\"#, "é", r#"\n"#]).prop_map(str::to_string),
        1 => Just(r#"\ud800"#.to_string()),
        1 => (1usize..20_000).prop_map(|n| "l".repeat(n)),
    ]
}

/// A run of series with the same number of points: how one answer is shaped, and how a
/// reader that sizes an array by the previous one is caught (many short series after a long
/// one).
#[derive(Debug, Clone)]
pub struct Block {
    points: usize,
    repeat: usize,
    ts: Vec<String>,
    values: Vec<String>,
    labels: Vec<String>,
}

fn block() -> impl Strategy<Value = Block> {
    // Long series come one to three at a time and only short ones by the hundred, so an answer
    // stays under a few MB (a 100 MB one costs seconds per case and proves nothing more).
    let shape = prop_oneof![
        2 => (Just(0usize), prop_oneof![1usize..4, 50usize..400]),
        1 => (Just(1usize), prop_oneof![1usize..4, 50usize..400]),
        2 => (2usize..50, prop_oneof![1usize..4, 50usize..400]),
        1 => (500usize..3000, 1usize..4),
    ];
    (
        shape,
        proptest::collection::vec(ts_text(), 1..4),
        proptest::collection::vec(value_text(), 1..4),
        proptest::collection::vec(label_text(), 1..3),
    )
        .prop_map(|((points, repeat), ts, values, labels)| Block {
            points,
            repeat,
            ts,
            values,
            labels,
        })
}

/// The shape of an answer.
#[derive(Debug, Clone)]
pub enum Shape {
    /// A range query's matrix.
    Matrix(Vec<Block>),
    /// An instant vector.
    Vector(Vec<Block>),
    /// A scalar.
    Scalar(String, String),
    /// A string result.
    Str(String, String),
    /// Prometheus' error envelope.
    Error(String, String),
}

/// A whole answer: HTTP status, shape, decoration and byte mutations.
#[derive(Debug, Clone)]
pub struct PromCase {
    /// HTTP status.
    pub status: u16,
    shape: Shape,
    /// `result` before `resultType`.
    result_first: bool,
    /// An unknown key holding this many nested arrays.
    nesting: usize,
    /// Spaces and newlines between tokens.
    spaced: bool,
    warnings: Vec<String>,
    mutations: Vec<Mutation>,
}

pub fn prom() -> impl Strategy<Value = PromCase> {
    let shape = prop_oneof![
        6 => proptest::collection::vec(block(), 0..5).prop_map(Shape::Matrix),
        2 => proptest::collection::vec(block(), 0..3).prop_map(Shape::Vector),
        1 => (ts_text(), value_text()).prop_map(|(t, v)| Shape::Scalar(t, v)),
        1 => (ts_text(), label_text()).prop_map(|(t, v)| Shape::Str(t, v)),
        1 => (
            proptest::sample::select(vec!["bad_data", "execution", "timeout", ""]).prop_map(str::to_string),
            prop_oneof![label_text(), (1usize..50_000).prop_map(|n| "e".repeat(n))],
        ).prop_map(|(t, m)| Shape::Error(t, m)),
    ];
    (
        prop_oneof![8 => Just(200u16), 1 => proptest::sample::select(vec![204u16, 302, 400, 422, 429, 500, 503])],
        shape,
        any::<bool>(),
        prop_oneof![6 => Just(0usize), 1 => 1usize..80],
        prop::bool::weighted(0.2),
        proptest::collection::vec(prop_oneof![label_text(), (1usize..20_000).prop_map(|n| "w".repeat(n))], 0..2),
        // Byte mutations break most answers outright, so most cases go without.
        prop_oneof![3 => Just(Vec::new()), 2 => proptest::collection::vec(mutation(), 1..3)],
    )
        .prop_map(|(status, shape, result_first, nesting, spaced, warnings, mutations)| PromCase {
            status,
            shape,
            result_first,
            nesting,
            spaced,
            warnings,
            mutations,
        })
}

fn points(b: &Block, series: usize) -> String {
    (0..b.points)
        .map(|i| {
            let k = i + series;
            format!(
                "[{},\"{}\"]",
                b.ts[k % b.ts.len()],
                b.values[k % b.values.len()]
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn metric(b: &Block, series: usize) -> String {
    let v = &b.labels[series % b.labels.len()];
    format!(r#"{{"__name__":"up","instance":"{v}-{series}"}}"#)
}

impl PromCase {
    /// The body as sent.
    pub fn body(&self) -> Vec<u8> {
        let (kind, result) = match &self.shape {
            Shape::Matrix(blocks) => {
                let mut items = Vec::new();
                for b in blocks {
                    for r in 0..b.repeat {
                        let n = items.len();
                        items.push(format!(
                            r#"{{"metric":{},"values":[{}]}}"#,
                            metric(b, n),
                            points(b, r)
                        ));
                    }
                }
                ("matrix", format!("[{}]", items.join(",")))
            }
            Shape::Vector(blocks) => {
                let mut items = Vec::new();
                for b in blocks {
                    for r in 0..b.repeat {
                        let n = items.len();
                        let p = format!(
                            "[{},\"{}\"]",
                            b.ts[r % b.ts.len()],
                            b.values[r % b.values.len()]
                        );
                        items.push(format!(r#"{{"metric":{},"value":{p}}}"#, metric(b, n)));
                    }
                }
                ("vector", format!("[{}]", items.join(",")))
            }
            Shape::Scalar(t, v) => ("scalar", format!("[{t},\"{v}\"]")),
            Shape::Str(t, v) => ("string", format!("[{t},\"{v}\"]")),
            Shape::Error(t, m) => {
                let body = format!(r#"{{"status":"error","errorType":"{t}","error":"{m}"}}"#);
                return self.finish(body);
            }
        };
        // `0` inside: with no nesting at all the value is still JSON.
        let deep = format!("{}0{}", "[".repeat(self.nesting), "]".repeat(self.nesting));
        let data = if self.result_first {
            format!(r#"{{"result":{result},"extra":{deep},"resultType":"{kind}"}}"#)
        } else {
            format!(r#"{{"resultType":"{kind}","extra":{deep},"result":{result}}}"#)
        };
        let warnings: Vec<String> = self.warnings.iter().map(|w| format!("\"{w}\"")).collect();
        let body = format!(
            r#"{{"status":"success","data":{data},"warnings":[{}],"infos":[]}}"#,
            warnings.join(",")
        );
        self.finish(body)
    }

    fn finish(&self, body: String) -> Vec<u8> {
        let body = if self.spaced {
            body.replace(',', " ,\n ").replace(':', " : ")
        } else {
            body
        };
        let mut bytes = body.into_bytes();
        for m in &self.mutations {
            apply(&mut bytes, m);
        }
        bytes
    }
}

/// One change to a model file.
#[derive(Debug, Clone)]
pub enum ModelEdit {
    /// Set a header byte (magic, version, length, CRC): the CRC is not recomputed.
    Header(usize, u8),
    /// Set the header's payload length.
    Length(u64),
    /// A byte mutation of the payload, CRC and length recomputed so decoding and validation,
    /// not the checksum, meet it.
    Payload(Mutation),
    /// Write these eight bytes (an `f64`: NaN, infinity, a huge value) at this fraction of the
    /// payload, CRC recomputed.
    Float(f64, [u8; 8]),
    /// Write a run of `0xff` (a varint length of 2^64 − 1 or so) at this fraction, CRC
    /// recomputed.
    HugeVarint(f64, usize),
}

pub fn model_edits() -> impl Strategy<Value = Vec<ModelEdit>> {
    let float = proptest::sample::select(vec![
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        1e308,
        -1e308,
        2.0,
        -1.0,
        0.5,
        f64::MIN_POSITIVE,
    ])
    .prop_map(f64::to_le_bytes);
    let edit = prop_oneof![
        1 => (0usize..24, any::<u8>()).prop_map(|(i, b)| ModelEdit::Header(i, b)),
        1 => prop_oneof![Just(u64::MAX), Just(1u64 << 40), 0u64..100_000].prop_map(ModelEdit::Length),
        6 => mutation().prop_map(ModelEdit::Payload),
        3 => (0.0f64..1.0, float).prop_map(|(at, f)| ModelEdit::Float(at, f)),
        2 => (0.0f64..1.0, 1usize..11).prop_map(|(at, n)| ModelEdit::HugeVarint(at, n)),
    ];
    proptest::collection::vec(edit, 1..5)
}

/// `file` (a model file as written) with `edits` applied.
pub fn edit_model(file: &[u8], edits: &[ModelEdit]) -> Vec<u8> {
    let mut header = file[..24].to_vec();
    let mut payload = file[24..].to_vec();
    let mut header_edits = Vec::new();
    for e in edits {
        let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len.saturating_sub(1));
        match e {
            ModelEdit::Payload(m) => apply(&mut payload, m),
            ModelEdit::Float(f, bytes) => {
                if payload.len() >= 8 {
                    let i = at(*f, payload.len() - 7);
                    payload[i..i + 8].copy_from_slice(bytes);
                }
            }
            ModelEdit::HugeVarint(f, n) => {
                let i = at(*f, payload.len());
                for b in payload.iter_mut().skip(i).take(*n) {
                    *b = 0xff;
                }
            }
            other => header_edits.push(other.clone()),
        }
    }
    header[12..20].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[20..24].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    for e in header_edits {
        match e {
            ModelEdit::Header(i, b) => header[i] = b,
            ModelEdit::Length(n) => header[12..20].copy_from_slice(&n.to_le_bytes()),
            _ => {}
        }
    }
    header.extend_from_slice(&payload);
    header
}

/// What follows a decision log's complete records.
#[derive(Debug, Clone)]
pub enum Tail {
    /// Nothing.
    None,
    /// A record cut after this many bytes (a write torn by a crash).
    Torn(usize),
    /// A whole record without its newline.
    Unterminated,
    /// NUL bytes (blocks allocated but never written before a power loss).
    Nuls(usize),
    /// Any bytes.
    Bytes(Bytes),
    /// A long line of one byte, around the longest record the reader takes.
    Long(usize),
}

/// A decision log: complete records, then a tail; sometimes junk first, sometimes a broken
/// middle line.
#[derive(Debug, Clone)]
pub struct LogCase {
    /// Complete records first.
    pub records: usize,
    /// Junk before the first record.
    pub junk_first: Option<Bytes>,
    /// A byte mutation somewhere in the records.
    pub middle: Option<Mutation>,
    /// What comes after.
    pub tail: Tail,
}

pub fn log_case() -> impl Strategy<Value = LogCase> {
    let tail = prop_oneof![
        1 => Just(Tail::None),
        3 => (0usize..400).prop_map(Tail::Torn),
        1 => Just(Tail::Unterminated),
        1 => (1usize..5000).prop_map(Tail::Nuls),
        3 => proptest::collection::vec(any::<u8>(), 1..300).prop_map(|b| Tail::Bytes(Bytes(b))),
        1 => prop_oneof![60_000usize..70_000, 100_000usize..200_000].prop_map(Tail::Long),
    ];
    (
        0usize..6,
        prop::option::weighted(
            0.1,
            proptest::collection::vec(any::<u8>(), 1..100).prop_map(Bytes),
        ),
        prop::option::weighted(0.15, mutation()),
        tail,
    )
        .prop_map(|(records, junk_first, middle, tail)| LogCase {
            records,
            junk_first,
            middle,
            tail,
        })
}

impl LogCase {
    /// The file's bytes, given one record's line (without newline).
    pub fn bytes(&self, record: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(j) = &self.junk_first {
            out.extend_from_slice(j);
            out.push(b'\n');
        }
        for _ in 0..self.records {
            out.extend_from_slice(record);
            out.push(b'\n');
        }
        if let Some(m) = &self.middle {
            apply(&mut out, m);
        }
        match &self.tail {
            Tail::None => {}
            Tail::Torn(n) => out.extend_from_slice(&record[..(*n).min(record.len() - 1)]),
            Tail::Unterminated => out.extend_from_slice(record),
            Tail::Nuls(n) => out.extend(std::iter::repeat_n(0u8, *n)),
            Tail::Bytes(b) => out.extend_from_slice(b),
            Tail::Long(n) => out.extend(std::iter::repeat_n(b'x', *n)),
        }
        out
    }
}
