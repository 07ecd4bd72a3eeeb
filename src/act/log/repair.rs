//! What opening the decision log checks and mends: a file that is not a decision log is
//! refused untouched, and a last line torn by a crash is cut, but only when it can be
//! prescale's own (the start of a record, or NULs); a complete record without its newline
//! gets one.

use super::MAX_RECORD_BYTES;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

/// What opening did to the log's tail.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Repair {
    /// The file ended with a newline (or was empty).
    None,
    /// The last line was a complete record without its newline; the newline was appended.
    AddedNewline,
    /// This many bytes of a torn last line were cut.
    Cut(u64),
    /// The last line is not ours, complete or torn: nothing was changed. Holds its excerpt.
    Foreign(String),
}

/// Every record starts so: `Line` serialises `cycle` first. A line that starts so and does not
/// parse is a write torn by a crash, not someone else's file.
const RECORD_PREFIX: &[u8] = b"{\"cycle\":";

/// True when `line` (without its newline) is a whole decision-log record: an object with a
/// `cycle` number and a `decision` naming its kind, target and counts. Other keys are allowed
/// (`applied`, the actuator's `outcome` text), so a log written by a newer version is still a log.
pub(super) fn is_record(line: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
        return false;
    };
    let d = &v["decision"];
    v.is_object()
        && v.get("outcome").is_none_or(|o| o.is_string())
        && v["cycle"].is_u64()
        && d["at"].is_i64()
        && d["kind"].is_string()
        && d["target"].is_string()
        && d["from"].is_u64()
        && d["to"].is_u64()
}

/// Reads at most `limit` bytes from `pos`.
fn read_at(file: &mut File, pos: u64, limit: usize) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(pos))?;
    let mut buf = Vec::with_capacity(limit.min(8192));
    Read::take(&mut *file, limit as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// `None` when the file is empty or starts like a decision log; otherwise a short excerpt of
/// its first line for the error. A lone line without a newline may be a torn first write, so
/// a prefix of a record is accepted there (the repair then cuts it).
pub(super) fn foreign_first_line(file: &mut File) -> std::io::Result<Option<String>> {
    let head = read_at(file, 0, MAX_RECORD_BYTES + 1)?;
    if head.is_empty() {
        return Ok(None);
    }
    let ours = match head.iter().position(|&b| b == b'\n') {
        Some(i) => is_record(&head[..i]),
        // No newline: the whole file is one line, complete or torn.
        None if head.len() <= MAX_RECORD_BYTES => {
            is_record(&head) || head.starts_with(RECORD_PREFIX)
        }
        None => false,
    };
    Ok((!ours).then(|| excerpt(&head)))
}

/// The start of the first line, escaped (binary files stay printable) and cut to 40 chars.
fn excerpt(head: &[u8]) -> String {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let text: String = line
        .iter()
        .take(40)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if line.len() > 40 {
        format!("\"{text}\"…")
    } else {
        format!("\"{text}\"")
    }
}

/// True when `tail` (a last line without its newline) is what a write of records torn by a
/// crash leaves: every record starts with [`RECORD_PREFIX`], so the start of one, or a part of
/// that prefix; either may be followed or replaced by NULs (blocks allocated but not written
/// before a power loss). Anything else was written by someone else.
pub(super) fn looks_torn(tail: &[u8]) -> bool {
    let data = tail
        .iter()
        .rposition(|&b| b != 0)
        .map_or(&tail[..0], |i| &tail[..=i]);
    data.starts_with(RECORD_PREFIX) || RECORD_PREFIX.starts_with(data)
}

/// True when the `len` bytes from `pos` are all NULs, read in blocks.
fn all_nul(file: &mut File, pos: u64, len: u64) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(pos))?;
    let mut block = [0u8; 4096];
    let mut left = len;
    while left > 0 {
        let n = (block.len() as u64).min(left) as usize;
        file.read_exact(&mut block[..n])?;
        if block[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// Repairs only what is provably torn: a last line without its newline is kept (newline
/// added) when it is a complete record, cut when it is what a torn write leaves
/// ([`looks_torn`]), and otherwise left alone and reported.
pub(super) fn repair_torn_tail(file: &mut File) -> std::io::Result<Repair> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Repair::None);
    }
    // Read backwards in blocks until a newline is found.
    let mut keep = 0;
    let mut pos = len;
    let mut block = vec![0u8; 4096];
    while pos > 0 {
        let n = block.len().min(pos as usize);
        pos -= n as u64;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut block[..n])?;
        if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
            keep = pos + i as u64 + 1;
            break;
        }
    }
    if keep == len {
        return Ok(Repair::None);
    }
    // A tail longer than any record is not read whole: it cannot be one, and is torn only
    // when it is all NULs.
    let tail_len = len - keep;
    let torn = if tail_len <= MAX_RECORD_BYTES as u64 {
        let tail = read_at(file, keep, MAX_RECORD_BYTES)?;
        if is_record(&tail) {
            // The file is in append mode, so this lands at the end whatever the cursor.
            file.write_all(b"\n")?;
            return Ok(Repair::AddedNewline);
        }
        looks_torn(&tail)
    } else {
        all_nul(file, keep, tail_len)?
    };
    if !torn {
        return Ok(Repair::Foreign(excerpt(&read_at(file, keep, 64)?)));
    }
    file.set_len(keep)?;
    Ok(Repair::Cut(tail_len))
}
