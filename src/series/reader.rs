//! CSV input read as a stream, one bounded record at a time.
//!
//! Every CSV input of prescale (history files, the simulator's task lists) goes through
//! [`CsvFile`]: the `csv` crate's reader over [`Bounded`], which counts the bytes of the record
//! being read and refuses one longer than [`MAX_RECORD_BYTES`]. The `csv` crate would otherwise
//! buffer a whole record, so one 1 GB line (or a file of NUL bytes, which has no line breaks)
//! would be read whole into memory and echoed whole in the error. Memory is therefore the
//! reader's buffer plus one record, whatever the file's size, and a message quotes at most
//! [`EXCERPT_CHARS`] characters of input.

use super::report::CsvError;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Longest record (one line, or several when a quoted field holds line breaks) accepted, in
/// bytes. History rows are tens of bytes; a megabyte leaves room for any real series name.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;
/// Longest excerpt of input, in characters after escaping, that any message quotes.
pub const EXCERPT_CHARS: usize = 80;
/// Bytes of each record kept for an excerpt: enough for [`EXCERPT_CHARS`] characters of
/// 4-byte UTF-8.
const HEAD_BYTES: usize = 4 * EXCERPT_CHARS;

/// `text` escaped (control characters and NULs visible) and cut to [`EXCERPT_CHARS`]
/// characters, so a message stays one short line whatever the input held.
pub(crate) fn excerpt(text: &str) -> String {
    let (mut out, cut) = escaped_head(text);
    if cut {
        out.push_str(&format!("… ({} characters)", text.chars().count()));
    }
    out
}

/// The escaped head of `text`, at most [`EXCERPT_CHARS`] characters, and whether it was cut.
fn escaped_head(text: &str) -> (String, bool) {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let esc = c.escape_debug();
        let n = esc.len();
        if used + n > EXCERPT_CHARS {
            return (out, true);
        }
        out.extend(esc);
        used += n;
    }
    (out, false)
}

/// A record longer than [`MAX_RECORD_BYTES`]: where it starts and how it begins.
#[derive(Debug)]
pub(crate) struct TooLong {
    /// 1-based line where the record starts.
    pub(crate) line: u64,
    /// Its first characters, escaped.
    pub(crate) head: String,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a record longer than {} MiB (a missing line break, binary data?), starting '{}…'",
            MAX_RECORD_BYTES >> 20,
            self.head
        )
    }
}

impl std::error::Error for TooLong {}

/// Where the CSV syntax is, byte by byte: the `csv` crate's default dialect (`"` quotes,
/// doubled to escape, any of `\r`, `\n`, `\r\n` ends a record), tracked only to know where a
/// record ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    StartField,
    InField,
    InQuotes,
    QuoteInQuotes,
}

/// A reader that passes bytes through while following the CSV syntax, and fails with
/// [`TooLong`] as soon as one record exceeds [`MAX_RECORD_BYTES`].
///
/// It also knows the line each record starts on. The `csv` crate's positions do not: they are
/// taken before it skips the blank lines ahead of a record, and the `\n` of a CRLF counts as
/// such a blank line, so in a CRLF file every record after the first was one line early. Line
/// numbers count what the `csv` crate takes for a line break, `\n`, `\r` and `\r\n` (one
/// break, not two); the lines of records read ahead of the parser wait in a queue (bounded by
/// the parser's buffer) until [`CsvFile`] takes them, one per record, in order.
pub(crate) struct Bounded<R> {
    inner: R,
    syntax: Syntax,
    /// The line being read (1-based).
    line: u64,
    /// The last byte read was a `\r`: a `\n` right after it ends the same line.
    after_cr: bool,
    /// A record has started and not ended.
    in_record: bool,
    /// Start lines of the records read but not yet taken by the parser's caller.
    starts: std::collections::VecDeque<u64>,
    /// Bytes of the current record so far.
    record_bytes: u64,
    /// The current record's first bytes, for the excerpt.
    head: Vec<u8>,
    /// A byte other than ASCII whitespace has been read.
    pub(crate) nonblank: bool,
}

impl<R: Read> Bounded<R> {
    pub(crate) fn new(inner: R) -> Self {
        Bounded {
            inner,
            syntax: Syntax::StartField,
            line: 1,
            after_cr: false,
            in_record: false,
            starts: std::collections::VecDeque::new(),
            record_bytes: 0,
            head: Vec::with_capacity(HEAD_BYTES),
            nonblank: false,
        }
    }

    /// Follows one byte; true when it ends a record.
    fn step(&mut self, b: u8) -> bool {
        use Syntax::*;
        let newline = b == b'\n' || b == b'\r';
        let (next, ends) = match (self.syntax, b) {
            (InQuotes, b'"') => (QuoteInQuotes, false),
            (InQuotes, _) => (InQuotes, false),
            (StartField, b'"') | (QuoteInQuotes, b'"') => (InQuotes, false),
            (_, b',') => (StartField, false),
            (_, _) if newline => (StartField, true),
            _ => (InField, false),
        };
        self.syntax = next;
        ends
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if !b.is_ascii_whitespace() {
                self.nonblank = true;
            }
            // A lone `\r` ends a record for the `csv` crate (old Mac files): a line too.
            if b == b'\r' || (b == b'\n' && !self.after_cr) {
                self.line += 1;
            }
            self.after_cr = b == b'\r';
            if self.step(b) {
                self.record_bytes = 0;
                self.in_record = false;
                self.head.clear();
                continue;
            }
            if !self.in_record {
                self.in_record = true;
                self.starts.push_back(self.line);
            }
            self.record_bytes += 1;
            if self.head.len() < HEAD_BYTES {
                self.head.push(b);
            }
            if self.record_bytes > MAX_RECORD_BYTES {
                let (head, _) = escaped_head(&String::from_utf8_lossy(&self.head));
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    TooLong {
                        line: self.starts.back().copied().unwrap_or(self.line),
                        head,
                    },
                ));
            }
        }
        Ok(n)
    }
}

/// A CSV file with a header, read the one way every CSV input of prescale is read (history
/// here, the simulator's task lists): streamed record by record with a bounded record size, an
/// all-blank file refused, fields trimmed, the header lower-cased without a byte-order mark,
/// and every problem naming the file and line.
pub(crate) struct CsvFile<'p, R> {
    path: &'p Path,
    rdr: csv::Reader<Bounded<R>>,
    record: csv::StringRecord,
    /// The header's fields, lower-cased.
    pub(crate) header: Vec<String>,
}

impl<'p> CsvFile<'p, File> {
    /// Opens `path` and reads its header.
    pub(crate) fn open_path(path: &'p Path) -> Result<Self, CsvError> {
        let file = File::open(path).map_err(|error| CsvError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::open(file, path)
    }
}

impl<'p, R: Read> CsvFile<'p, R> {
    /// Reads the header of `src`, the contents of `path` (used only in messages).
    pub(crate) fn open(src: R, path: &'p Path) -> Result<Self, CsvError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(Bounded::new(src));
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| row_error(path, 1, e))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        if header.iter().all(String::is_empty) {
            // A blank first line: the file is empty if nothing but blanks follows. Read on
            // record by record (bounded) rather than refuse a header that is only late.
            let mut record = csv::StringRecord::new();
            while !rdr.get_ref().nonblank && rdr.read_record(&mut record).unwrap_or(false) {
                rdr.get_mut().starts.pop_front();
            }
            if !rdr.get_ref().nonblank {
                return Err(CsvError::Empty {
                    path: path.to_path_buf(),
                    what: "is empty",
                });
            }
        }
        // The header's start line, if it had one (a blank file has none).
        rdr.get_mut().starts.pop_front();
        Ok(CsvFile {
            path,
            rdr,
            record: csv::StringRecord::new(),
            header,
        })
    }

    /// The next data row with its 1-based line, or `None` at the end of the file. A malformed
    /// row (a field count unlike the header's, invalid UTF-8, a record over
    /// [`MAX_RECORD_BYTES`]) is an error naming its line. The record's buffer is reused.
    pub(crate) fn next_row(&mut self) -> Result<Option<(&csv::StringRecord, u64)>, CsvError> {
        let read = self.rdr.read_record(&mut self.record);
        // The record just read (or refused) is the oldest one the reader has seen start.
        let start = self.rdr.get_mut().starts.pop_front();
        let line = |pos: Option<&csv::Position>| start.or(pos.map(|p| p.line())).unwrap_or(0);
        match read {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some((&self.record, line(self.record.position())))),
            Err(e) => {
                let line = line(e.position());
                Err(row_error(self.path, line, e))
            }
        }
    }
}

/// A `csv` error as a [`CsvError`] naming the file and line, quoting at most an excerpt.
fn row_error(path: &Path, line: u64, e: csv::Error) -> CsvError {
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("row has {len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".to_string(),
        _ => excerpt(&e.to_string()),
    };
    match e.into_kind() {
        csv::ErrorKind::Io(error) => {
            match error.get_ref().and_then(|x| x.downcast_ref::<TooLong>()) {
                Some(long) => CsvError::Row {
                    path: path.to_path_buf(),
                    line: long.line,
                    message: long.to_string(),
                },
                None => CsvError::Io {
                    path: path.to_path_buf(),
                    error,
                },
            }
        }
        _ => CsvError::Row {
            path: path.to_path_buf(),
            line,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[u8]) -> Result<Vec<(Vec<String>, u64)>, String> {
        let path = Path::new("t.csv");
        let mut f = CsvFile::open(text, path).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some((r, line)) = f.next_row().map_err(|e| e.to_string())? {
            out.push((r.iter().map(str::to_string).collect(), line));
        }
        Ok(out)
    }

    #[test]
    fn line_numbers_are_right_with_crlf_and_quoted_breaks() {
        let lf = rows(b"a,b\n1,2\n\n3,\"x\ny\"\n4,5\n").unwrap();
        let crlf = rows(b"a,b\r\n1,2\r\n\r\n3,\"x\r\ny\"\r\n4,5\r\n").unwrap();
        let lines = |r: &[(Vec<String>, u64)]| r.iter().map(|x| x.1).collect::<Vec<_>>();
        assert_eq!(lines(&lf), vec![2, 4, 6]);
        assert_eq!(lines(&crlf), vec![2, 4, 6]);
        // A bad row after CRLF lines names its own line.
        let e = rows(b"a,b\r\n1,2\r\n3,4\r\n5\r\n").unwrap_err();
        assert!(e.starts_with("t.csv:4: row has 1 fields"), "{e}");
    }

    /// A lone `\r` ends a record for the `csv` crate (old Mac files), so it ends a line too.
    #[test]
    fn line_numbers_are_right_with_cr_only_line_endings() {
        let lines = |r: &[(Vec<String>, u64)]| r.iter().map(|x| x.1).collect::<Vec<_>>();
        assert_eq!(lines(&rows(b"a,b\r1,2\r\r3,4\r").unwrap()), vec![2, 4]);
        let e = rows(b"a,b\r1,2\r3\r4,5\r").unwrap_err();
        assert!(e.starts_with("t.csv:3: row has 1 fields"), "{e}");
        // Mixed: a CRLF is one break, a CR then a LF apart are two.
        let mixed = rows(b"a,b\r\n1,2\r3,\"x\r\ny\"\n\r4,5\n").unwrap();
        assert_eq!(lines(&mixed), vec![2, 3, 6]);
    }

    #[test]
    fn a_record_over_the_cap_names_its_line_and_quotes_little() {
        let mut text = b"a,b\r\n1,2\r\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES as usize + 10));
        text.extend(b",3\r\n");
        let e = rows(&text).unwrap_err();
        assert!(e.starts_with("t.csv:3: a record longer than 1 MiB"), "{e}");
        assert!(e.len() < 300, "{} bytes: {e:.300}", e.len());
        // Just under the cap is fine: the limit is the record, not the file.
        let mut ok = b"a,b\n".to_vec();
        ok.extend(std::iter::repeat_n(b'y', MAX_RECORD_BYTES as usize - 10));
        ok.extend(b",3\n1,2\n");
        assert_eq!(rows(&ok).unwrap().len(), 2);
    }

    #[test]
    fn quoted_line_breaks_count_toward_one_record() {
        // Short lines, one record: a quote left open swallows the rest of the file.
        let mut text = b"a,b\n1,\"".to_vec();
        for _ in 0..(MAX_RECORD_BYTES / 4) {
            text.extend(b"ab\r\n");
        }
        text.extend(b"zz");
        let e = rows(&text).unwrap_err();
        assert!(e.starts_with("t.csv:2: a record longer"), "{e}");
        // A doubled quote inside quotes does not close them; a quote mid-field opens nothing.
        let r = rows(b"a,b\n\"x\"\"\ny\",2\nq\"r,\"s\"\n").unwrap();
        assert_eq!(r[0].0, vec!["x\"\ny", "2"]);
        assert_eq!(
            (r[1].0.clone(), r[1].1),
            (vec!["q\"r".into(), "s".into()], 4)
        );
    }

    #[test]
    fn nul_bytes_are_refused_with_a_short_escaped_excerpt() {
        let e = rows(&vec![0u8; 3 << 20]).unwrap_err();
        assert!(e.starts_with("t.csv:1: a record longer"), "{e:.300}");
        assert!(e.contains("\\0"), "{e}");
        assert!(e.len() < 300, "{} bytes", e.len());
    }

    #[test]
    fn blank_files_are_empty() {
        for text in [&b""[..], b"\n\n", b"  \n \r\n\t\n"] {
            let e = rows(text).unwrap_err();
            assert_eq!(e, "t.csv: is empty", "{text:?}");
        }
        // Blank lines before a header are skipped by the csv reader, so a late header reads.
        assert_eq!(rows(b"\n\na,b\n1,2\n").unwrap().len(), 1);
    }

    #[test]
    fn excerpts_are_short_after_escaping() {
        assert_eq!(excerpt("abc"), "abc");
        let nul = excerpt(&"\0".repeat(500));
        assert!(
            nul.starts_with("\\0\\0") && nul.ends_with("(500 characters)"),
            "{nul}"
        );
        assert!(nul.chars().count() <= EXCERPT_CHARS + 20, "{nul}");
    }
}
