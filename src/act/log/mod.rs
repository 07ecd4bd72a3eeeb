//! The JSON-lines decision log: one line per decision, appended, never torn; and its tail read
//! back at start-up ([`read_tail`]) so a restart plans from the counts it last recorded.

mod recover;
mod repair;

pub use recover::{read_tail, LogTail, TailOptions};
use repair::{foreign_first_line, repair_torn_tail, Repair};

use super::Outcome;
use crate::plan::Decision;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A problem with the decision log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Opening, reading, repairing, writing or syncing the log failed.
    #[error("decision log {path}: {error}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// What the OS said (not a `source`: the message shows it already).
        error: std::io::Error,
    },
    /// The file exists and holds something other than a decision log; it was left untouched.
    #[error(
        "decision log {path}: not a decision log (line 1 is not a decision record: {excerpt}); \
         refusing to write into it: point `decision_log` at a new or empty file"
    )]
    NotALog {
        /// The file.
        path: PathBuf,
        /// The start of its first line, escaped and cut short.
        excerpt: String,
    },
    /// Another process holds the log open for writing (another prescale, or this one's
    /// previous pod still stopping on a shared volume); it was left untouched.
    #[error(
        "decision log {path}: another process is writing to it (it holds the file's lock); \
         two writers would interleave their cycles, and the repair of a torn last line could cut \
         the other's newest records: stop the other prescale or give each its own \
         `decision_log`"
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The last line lacks its newline and is neither a record nor what a write of prescale's
    /// torn by a crash leaves (the start of a record, or NULs); it was left untouched.
    #[error(
        "decision log {path}: the last line has no newline and is neither a decision record \
         nor one torn by a crash ({excerpt}); refusing to cut bytes prescale did not write: \
         end the line or move the file"
    )]
    ForeignTail {
        /// The file.
        path: PathBuf,
        /// The start of the last line, escaped and cut short.
        excerpt: String,
    },
}

/// Longest line taken for a decision record; a longer one cannot be one (a record is a few
/// hundred bytes), so it is judged without being read whole.
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// An append-only JSON-lines file of decisions.
///
/// Each cycle's lines are encoded into one buffer and written with a single `write_all` on a
/// file opened with `O_APPEND`, so concurrent readers (`tail -f`, a log shipper) never see half
/// a cycle interleaved with another writer. A line left half-written by a crash is cut off when
/// the log is next opened, and the cut is reported, so every line in the file always parses;
/// a complete last line that only lacks its newline is kept. A file that is not a decision log
/// is refused, never written to.
pub struct DecisionLog {
    path: PathBuf,
    file: File,
    /// Records are marked `"applied": true` (an `--apply` run's).
    applied: bool,
}

/// One record. `cycle` must stay the first field: [`RECORD_PREFIX`] tells a torn record from
/// someone else's file by it. `outcome` (issue #9) and `applied` came later: records without
/// them, written before, are still records, so readers treat both as optional; new fields are
/// only ever added.
#[derive(serde::Serialize)]
struct Line<'a> {
    cycle: u64,
    decision: &'a Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a Outcome>,
    /// Written only by `--apply` runs, so dry-run lines are as before and old lines (without
    /// the field) read as dry-run ones: a restarted `--apply` run must recover only counts that
    /// were handed to the actuator, never a dry-run's recommendations.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    applied: bool,
}

impl DecisionLog {
    /// Opens (creating) the log at `path`, repairing a torn last line.
    ///
    /// A non-empty file whose first line is not a decision record is refused and left exactly
    /// as it was: `decision_log` pointed at the wrong file must not cost that file a byte.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let err = |error| LogError::Io {
            path: path.to_path_buf(),
            error,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        // `append` without `truncate`: opening never changes an existing file's bytes.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        // Held until the log is dropped, taken before anything is read or cut: another
        // writer's append in progress looks like a torn last line, and cutting it would lose
        // lines prescale did not write. An advisory lock: only other prescales respect it.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LogError::Locked {
                    path: path.to_path_buf(),
                })
            }
            // A file system without locks (some network ones): go on, as before locks were
            // taken, and say so once.
            Err(std::fs::TryLockError::Error(e)) => tracing::warn!(
                "decision log {}: could not lock it ({e}); a second prescale writing to it \
                 would not be refused",
                path.display()
            ),
        }
        if let Some(excerpt) = foreign_first_line(&mut file).map_err(err)? {
            return Err(LogError::NotALog {
                path: path.to_path_buf(),
                excerpt,
            });
        }
        match repair_torn_tail(&mut file).map_err(err)? {
            Repair::None => {}
            Repair::AddedNewline => tracing::warn!(
                "decision log {}: the last line was complete but had no newline; added one",
                path.display()
            ),
            Repair::Cut(cut) => tracing::warn!(
                "decision log {}: removed a torn last line ({cut} bytes) left by an earlier crash",
                path.display()
            ),
            Repair::Foreign(excerpt) => {
                return Err(LogError::ForeignTail {
                    path: path.to_path_buf(),
                    excerpt,
                })
            }
        }
        Ok(DecisionLog {
            path: path.to_path_buf(),
            file,
            applied: false,
        })
    }

    /// Marks every record appended from now on `"applied": true`: set when decisions are
    /// carried out (`--apply`), so that a restart in that mode recovers only from them.
    pub fn set_applied(&mut self, applied: bool) {
        self.applied = applied;
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per decision, all in one write, each with its outcome: `outcomes[i]`
    /// is `decisions[i]`'s (a decision without one is logged without the field).
    pub fn append(
        &mut self,
        cycle: u64,
        decisions: &[Decision],
        outcomes: &[Outcome],
    ) -> Result<(), LogError> {
        if decisions.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(decisions.len() * 256);
        for (i, decision) in decisions.iter().enumerate() {
            let line = Line {
                cycle,
                decision,
                outcome: outcomes.get(i),
                applied: self.applied,
            };
            serde_json::to_writer(&mut buf, &line)
                .map_err(|e| self.err(std::io::Error::other(e)))?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).map_err(|e| self.err(e))
    }

    /// Forces what was appended to disk.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.file.sync_data().map_err(|e| self.err(e))
    }

    fn err(&self, error: std::io::Error) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::repair::{is_record, looks_torn};
    use super::*;
    use crate::act::tests::decision;
    use crate::act::Skip;
    use crate::plan::DecisionKind;

    #[test]
    fn appends_and_repairs_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log/d.jsonl");
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(1, &[decision(DecisionKind::ScaleUp, "web", 1, 2)], &[])
            .unwrap();
        log.append(2, &[decision(DecisionKind::Hold, "web", 2, 2)], &[])
            .unwrap();
        log.sync().unwrap();
        drop(log);
        // Simulate a crash in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"cycle\":3,\"decis").unwrap();
        drop(f);
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(4, &[decision(DecisionKind::ScaleDown, "web", 2, 1)], &[])
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

    /// A second writer is refused while the first holds the log, and cuts nothing: the first
    /// one's append in progress looks like a torn line to it. Once the first is gone, the log
    /// opens again.
    #[test]
    fn a_second_writer_is_refused_and_cuts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        let mut first = DecisionLog::open(&p).unwrap();
        first
            .append(1, &[decision(DecisionKind::ScaleUp, "web", 1, 2)], &[])
            .unwrap();
        // The first writer's next record, half visible to others.
        OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"cycle\":2,\"decis")
            .unwrap();
        let before = std::fs::read(&p).unwrap();
        let err = DecisionLog::open(&p).err().expect("refused");
        assert!(matches!(err, LogError::Locked { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("d.jsonl") && text.contains("another process"),
            "{text}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), before, "not a byte changed");
        drop(first);
        DecisionLog::open(&p).unwrap();
    }

    /// The log as its cycles, one per line; every line must parse.
    fn cycles(p: &Path) -> Vec<u64> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["cycle"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_complete_last_line_without_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(1, &[decision(DecisionKind::ScaleUp, "web", 1, 2)], &[])
            .unwrap();
        log.append(2, &[decision(DecisionKind::Hold, "web", 2, 2)], &[])
            .unwrap();
        drop(log);
        // An editor or `head -c` can leave a complete record without its newline: it is data,
        // not a torn write.
        let mut bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.pop(), Some(b'\n'));
        std::fs::write(&p, &bytes).unwrap();
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(3, &[decision(DecisionKind::ScaleDown, "web", 2, 1)], &[])
            .unwrap();
        assert_eq!(cycles(&p), vec![1, 2, 3]);

        // The same for a log whose only line lacks its newline.
        let q = dir.path().join("one.jsonl");
        let first = bytes.split(|&b| b == b'\n').next().unwrap();
        std::fs::write(&q, first).unwrap();
        let mut log = DecisionLog::open(&q).unwrap();
        log.append(5, &[decision(DecisionKind::Hold, "web", 1, 1)], &[])
            .unwrap();
        assert_eq!(cycles(&q), vec![1, 5]);
    }

    #[test]
    fn a_torn_first_write_is_cut_and_a_long_nul_tail_too() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        std::fs::write(&p, b"{\"cycle\":1,\"decision\":{\"at\":17").unwrap();
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(2, &[decision(DecisionKind::Hold, "web", 1, 1)], &[])
            .unwrap();
        drop(log);
        assert_eq!(cycles(&p), vec![2]);
        // NULs longer than any record (a power loss after the size was updated) are cut.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&vec![0u8; 3 * MAX_RECORD_BYTES]).unwrap();
        drop(f);
        DecisionLog::open(&p).unwrap();
        assert_eq!(cycles(&p), vec![2]);
    }

    /// Found by `tests/fuzz_readers.rs` (`decision_log`): any last line without a newline that
    /// was not a record was cut, though no torn write of prescale's leaves e.g. `\x0b` or a
    /// line of text: bytes someone else wrote were destroyed.
    #[test]
    fn a_last_line_prescale_did_not_write_is_refused_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(1, &[decision(DecisionKind::Hold, "web", 1, 1)], &[])
            .unwrap();
        drop(log);
        let good = std::fs::read(&p).unwrap();
        for tail in [
            b"\x0b".to_vec(),
            b"note: restarted by hand".to_vec(),
            b"{\"level\":\"info\"".to_vec(),
            vec![b'x'; 3 * MAX_RECORD_BYTES],
        ] {
            let bytes = [&good[..], &tail[..]].concat();
            std::fs::write(&p, &bytes).unwrap();
            let err = DecisionLog::open(&p).err().expect("refused");
            assert!(matches!(err, LogError::ForeignTail { .. }), "{err:?}");
            assert!(err.to_string().contains("d.jsonl"), "{err}");
            assert!(err.to_string().len() < 400, "{err}");
            assert_eq!(std::fs::read(&p).unwrap(), bytes, "the file was changed");
        }
        // What a torn write leaves is still cut: part of the record prefix, then NULs.
        std::fs::write(&p, [&good[..], b"{\"cyc\0\0"].concat()).unwrap();
        DecisionLog::open(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), good);
    }

    #[test]
    fn refuses_a_file_that_is_not_a_decision_log_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let line = serde_json::to_string(&Line {
            cycle: 1,
            decision: &decision(DecisionKind::Hold, "web", 1, 1),
            outcome: Some(&Outcome::Skipped(Skip::Nothing)),
            applied: false,
        })
        .unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            // A model file: binary, no newline at all (54 bytes were lost this way).
            (
                "m.model",
                b"PRESCALE\x01\x00\x00\x00\x26\x00\x00\x00\x00\x00\x00\x00abcd{}".to_vec(),
            ),
            ("notes.txt", b"hello\nworld\nno newline at the end".to_vec()),
            (
                "other.jsonl",
                b"{\"level\":\"info\",\"msg\":\"hi\"}\n{\"cycle\":2}".to_vec(),
            ),
            (
                "config.toml",
                b"[prometheus]\nurl = \"http://x\"\n".to_vec(),
            ),
            // A decision record as the second line does not make a log of the first.
            ("mixed.jsonl", format!("not json\n{line}\n").into_bytes()),
        ];
        for (name, bytes) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            let err = DecisionLog::open(&p).err().expect(name);
            let msg = err.to_string();
            assert!(
                msg.contains(name) && msg.contains("not a decision log"),
                "{msg}"
            );
            assert!(matches!(err, LogError::NotALog { .. }), "{err:?}");
            assert_eq!(std::fs::read(&p).unwrap(), bytes, "{name} was modified");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Whatever a file holds, opening never panics, and either refuses (file untouched,
        /// error naming it) or leaves a log whose every line is a record, keeping every
        /// complete record that was there.
        #[test]
        fn open_refuses_or_leaves_only_records(
            records in 0usize..4,
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            junk_first in proptest::prelude::any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("d.jsonl");
            let mut bytes = Vec::new();
            if junk_first {
                bytes.extend_from_slice(&tail);
            }
            for c in 0..records {
                let line = Line { cycle: c as u64, decision: &decision(DecisionKind::Hold, "web", 1, 1), outcome: Some(&Outcome::Skipped(Skip::Nothing)), applied: c % 2 == 1 };
                serde_json::to_writer(&mut bytes, &line).unwrap();
                bytes.push(b'\n');
            }
            if !junk_first {
                bytes.extend_from_slice(&tail);
            }
            std::fs::write(&p, &bytes).unwrap();
            match DecisionLog::open(&p) {
                Err(e) => {
                    proptest::prop_assert!(e.to_string().contains("d.jsonl"), "{}", e);
                    proptest::prop_assert_eq!(std::fs::read(&p).unwrap(), bytes);
                }
                Ok(_) => {
                    // Only the part after the last newline may change: cut when it is not a
                    // record, completed with a newline when it is.
                    let text = std::fs::read(&p).unwrap();
                    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                    let rest = &bytes[keep..];
                    let want = if rest.is_empty() {
                        bytes.clone()
                    } else if is_record(rest) {
                        [&bytes[..], b"\n"].concat()
                    } else {
                        proptest::prop_assert!(looks_torn(rest), "cut a tail not torn: {:?}", rest);
                        bytes[..keep].to_vec()
                    };
                    proptest::prop_assert_eq!(text, want);
                }
            }
        }
    }

    /// Logs written before outcomes were recorded stay logs: opened, appended to with
    /// outcomes, and a complete new-format last line without newline is kept, not cut.
    #[test]
    fn records_with_and_without_outcome_are_both_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(1, &[decision(DecisionKind::ScaleUp, "web", 1, 2)], &[])
            .unwrap();
        drop(log);
        let old = std::fs::read_to_string(&p).unwrap();
        assert!(!old.contains("outcome"), "{old}");
        let mut log = DecisionLog::open(&p).unwrap();
        let failed = Outcome::Failed("kubectl exited with status 1".into());
        log.append(
            2,
            &[
                decision(DecisionKind::ScaleUp, "web", 2, 3),
                decision(DecisionKind::Hold, "api", 1, 1),
            ],
            &[failed, Outcome::Skipped(Skip::Nothing)],
        )
        .unwrap();
        drop(log);
        let mut bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.pop(), Some(b'\n'));
        std::fs::write(&p, &bytes).unwrap();
        DecisionLog::open(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let outcomes: Vec<Option<String>> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.get("outcome").map(|o| o.as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                None,
                Some("failed: kubectl exited with status 1".to_string()),
                Some("skipped".to_string())
            ]
        );
        let line = text.lines().nth(1).unwrap();
        assert!(is_record(line.as_bytes()));
        // An outcome must be text; other keys (a newer version's) leave a record a record.
        let number = line.replace("\"failed: kubectl exited with status 1\"", "3");
        assert!(!is_record(number.as_bytes()), "{number}");
        let other = line.replace("\"outcome\"", "\"other\"");
        assert!(is_record(other.as_bytes()), "{other}");
    }

    #[test]
    fn a_file_with_no_newline_at_all_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        std::fs::write(&p, b"{\"cycle\":1,\"decision\":{").unwrap();
        let mut f = OpenOptions::new().read(true).append(true).open(&p).unwrap();
        assert_eq!(repair_torn_tail(&mut f).unwrap(), Repair::Cut(23));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
    }
}
