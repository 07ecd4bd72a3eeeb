//! The JSON-lines decision log: one line per decision, appended, never torn.

use crate::plan::Decision;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A problem with the decision log.
#[derive(Debug, thiserror::Error)]
#[error("decision log {path}: {source}")]
pub struct LogError {
    path: PathBuf,
    source: std::io::Error,
}

/// An append-only JSON-lines file of decisions.
///
/// Each cycle's lines are encoded into one buffer and written with a single `write_all` on a
/// file opened with `O_APPEND`, so concurrent readers (`tail -f`, a log shipper) never see half
/// a cycle interleaved with another writer. A line left half-written by a crash is cut off when
/// the log is next opened, and the cut is reported, so every line in the file always parses.
pub struct DecisionLog {
    path: PathBuf,
    file: File,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    cycle: u64,
    decision: &'a Decision,
}

impl DecisionLog {
    /// Opens (creating) the log at `path`, repairing a torn last line.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let err = |source| LogError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        let cut = repair_torn_tail(&mut file).map_err(err)?;
        if cut > 0 {
            tracing::warn!(
                "decision log {}: removed a torn last line ({cut} bytes) left by an earlier crash",
                path.display()
            );
        }
        Ok(DecisionLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per decision, all in one write.
    pub fn append(&mut self, cycle: u64, decisions: &[Decision]) -> Result<(), LogError> {
        if decisions.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(decisions.len() * 256);
        for decision in decisions {
            serde_json::to_writer(&mut buf, &Line { cycle, decision })
                .map_err(|e| self.err(std::io::Error::other(e)))?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).map_err(|e| self.err(e))
    }

    /// Forces what was appended to disk.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.file.sync_data().map_err(|e| self.err(e))
    }

    fn err(&self, source: std::io::Error) -> LogError {
        LogError {
            path: self.path.clone(),
            source,
        }
    }
}

/// Truncates the file after its last newline; returns the bytes removed.
fn repair_torn_tail(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    // Read backwards in blocks until a newline is found.
    let mut pos = len;
    let mut block = vec![0u8; 4096];
    while pos > 0 {
        let n = block.len().min(pos as usize);
        pos -= n as u64;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut block[..n])?;
        if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
            let keep = pos + i as u64 + 1;
            if keep < len {
                file.set_len(keep)?;
            }
            return Ok(len - keep);
        }
    }
    file.set_len(0)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::tests::decision;
    use crate::plan::DecisionKind;

    #[test]
    fn appends_and_repairs_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log/d.jsonl");
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(1, &[decision(DecisionKind::ScaleUp, "web", 1, 2)])
            .unwrap();
        log.append(2, &[decision(DecisionKind::Hold, "web", 2, 2)])
            .unwrap();
        log.sync().unwrap();
        drop(log);
        // Simulate a crash in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"cycle\":3,\"decis").unwrap();
        drop(f);
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(4, &[decision(DecisionKind::ScaleDown, "web", 2, 1)])
            .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let cycles: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["cycle"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(cycles, vec![1, 2, 4]);
    }

    #[test]
    fn a_file_with_no_newline_at_all_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        std::fs::write(&p, b"garbage-without-newline").unwrap();
        let mut f = OpenOptions::new().read(true).append(true).open(&p).unwrap();
        assert_eq!(repair_torn_tail(&mut f).unwrap(), 23);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
    }
}
