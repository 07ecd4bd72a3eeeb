//! The decision log read back at start-up: the newest count recorded per workload and pool.
//!
//! Without it every restart planned from `min_replicas` (every first decision said `from: 1`)
//! although the run before had recommended 5–6 (issue #10, item 5). The log grows by a line per
//! workload and pool every cycle and is never rotated by prescale, so it is read *backwards*, in
//! chunks, up to a cap: memory and time follow the cap, not the file. Every cycle logs a
//! decision (a hold at least) for every workload, so a workload's newest count is within the
//! last cycle's lines, far inside any sensible cap. Pools get a record only when the node
//! planner adds, removes or holds against a bound; a pool whose last record lies beyond the cap
//! starts from the configured nodes, as before.
//!
//! The same tail gives the Kubernetes actuator the count it last set per workload
//! ([`LogTail::last_set`]), so the first change after a restart is checked against it like
//! every other: a count changed by someone while prescale was down is left, not overwritten.
//!
//! A line that is not a record (torn, foreign, from a newer version with another shape) is
//! skipped and counted, never fatal: recovery is a best effort on top of a log that must not
//! stop the loop from starting.

use super::{LogError, MAX_RECORD_BYTES};
use crate::plan::{DecisionKind, RecordedCounts};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How much of the log to read, and which records count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailOptions {
    /// Bytes read per step backwards (64 KiB by default).
    pub chunk: usize,
    /// Most bytes read in all (4 MiB by default): older records are not looked at.
    pub cap: u64,
    /// Count only records marked `"applied": true` (or with an `outcome` of `applied`): set for
    /// `--apply` runs, whose start must be the cluster's state, which a dry-run's
    /// recommendations never were.
    pub applied_only: bool,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            chunk: 64 * 1024,
            cap: 4 * 1024 * 1024,
            applied_only: false,
        }
    }
}

/// What the tail held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTail {
    /// The newest count per workload and per pool.
    pub counts: RecordedCounts,
    /// Records read (whatever their kind, counted or not).
    pub records: usize,
    /// Lines that were not records (torn, foreign, overlong): skipped.
    pub skipped: usize,
    /// Records passed over because they were not carried out: a dry-run's under
    /// [`TailOptions::applied_only`], or any record whose `outcome` is `failed`.
    pub not_applied: usize,
    /// Bytes read.
    pub bytes_read: u64,
    /// True when the cap stopped the reading before the start of the file.
    pub capped: bool,
    /// Per workload, the count prescale last set or adopted through an actuator, whatever
    /// [`TailOptions::applied_only`] says: the newest scale record whose outcome is `applied`
    /// (its `to`) or `skipped (changed elsewhere: live N)` (N, the count it then went on
    /// from). Seeds the Kubernetes actuator's changed-elsewhere check after a restart, which
    /// otherwise would have nothing to compare the first live count with.
    pub last_set: BTreeMap<String, u32>,
    /// Per workload, the count a change that got no answer asked for
    /// ([`Outcome::unanswered`](crate::act::Outcome::unanswered)), when no newer scale record
    /// of it was carried out, adopted or dry-run (failures that learnt nothing and holds,
    /// which send nothing, settle nothing). Found live after a restart, that count is the
    /// change having landed, not someone else's.
    pub pending: BTreeMap<String, u32>,
    /// Workloads whose newest settling scale record has been read: older ones say nothing
    /// more of what is pending.
    settled: BTreeSet<String>,
}

/// The fields recovery needs of one record; everything else is ignored, so lines written by
/// older versions (no `applied`) and newer ones (an `outcome`, more fields) both parse.
#[derive(serde::Deserialize)]
struct TailLine {
    /// Not used, but required: it is what makes a JSON object a decision record.
    #[serde(rename = "cycle")]
    _cycle: u64,
    decision: TailDecision,
    #[serde(default)]
    applied: bool,
    /// An actuator's outcome (`dry-run`, `applied`, `failed`, `skipped`), if the record has one.
    #[serde(default)]
    outcome: Option<String>,
}

#[derive(serde::Deserialize)]
struct TailDecision {
    kind: String,
    target: String,
    to: u32,
    /// The outcome may also be written inside the decision.
    #[serde(default)]
    outcome: Option<String>,
}

/// Reads the newest count per workload and per pool from the end of the decision log at
/// `path`. A missing file is an empty tail (first start).
///
/// Workload counts come from `scale_up`, `scale_down` and `hold` records, pool counts from
/// `add_node`, `remove_node` and `hold` records (names are unique across workloads and pools,
/// so a hold's target says which it is to the caller); `place` and `move` count replicas on one
/// node and are passed over. Newest means last in the file.
pub fn read_tail(path: &Path, opts: TailOptions) -> Result<LogTail, LogError> {
    let err = |error| LogError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LogTail::default()),
        Err(e) => return Err(err(e)),
    };
    read_backwards(&mut file, opts).map_err(err)
}

fn read_backwards(file: &mut File, opts: TailOptions) -> std::io::Result<LogTail> {
    let mut tail = LogTail::default();
    let chunk = opts.chunk.max(1) as u64;
    let mut pos = file.metadata()?.len();
    // The start of a line whose end was read but whose beginning lies before `pos`.
    let mut pending: Vec<u8> = Vec::new();
    // The line `pending` belongs to grew past any record's length: it was dropped, and the line
    // is skipped when its start is found.
    let mut overlong = false;
    let mut buf = Vec::new();
    while pos > 0 && tail.bytes_read < opts.cap {
        let n = chunk.min(pos).min(opts.cap - tail.bytes_read);
        pos -= n;
        tail.bytes_read += n;
        buf.resize(n as usize, 0);
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut buf)?;
        let mut end = buf.len();
        while let Some(i) = buf[..end].iter().rposition(|&b| b == b'\n') {
            let head = &buf[i + 1..end];
            if overlong {
                tail.skipped += 1;
            } else if pending.is_empty() {
                take_line(head, opts, &mut tail);
            } else {
                let line = [head, &pending[..]].concat();
                take_line(&line, opts, &mut tail);
            }
            pending.clear();
            overlong = false;
            end = i;
        }
        if !overlong {
            if end + pending.len() > MAX_RECORD_BYTES {
                pending.clear();
                overlong = true;
            } else {
                pending.splice(0..0, buf[..end].iter().copied());
            }
        }
    }
    if pos == 0 {
        // The file's first line: complete, since nothing precedes it.
        if overlong {
            tail.skipped += 1;
        } else {
            take_line(&pending, opts, &mut tail);
        }
    } else {
        // The cap cut a line: it is neither read nor counted.
        tail.capped = true;
    }
    Ok(tail)
}

/// Takes one line (without its newline) into the tail, newest first: a target already counted
/// keeps its newer count.
fn take_line(line: &[u8], opts: TailOptions, tail: &mut LogTail) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    if line.len() > MAX_RECORD_BYTES {
        tail.skipped += 1;
        return;
    }
    let Ok(rec) = serde_json::from_slice::<TailLine>(line) else {
        tail.skipped += 1;
        return;
    };
    let Some(kind) = DecisionKind::ALL
        .into_iter()
        .find(|k| k.label() == rec.decision.kind)
    else {
        tail.skipped += 1;
        return;
    };
    tail.records += 1;
    take_pending(&rec, kind, tail);
    if let Some(n) = set_by_actuator(&rec, kind) {
        tail.last_set
            .entry(rec.decision.target.clone())
            .or_insert(n);
        // A count adopted from someone else's change was read from the cluster: it is the
        // workload's count as surely as an applied one, and planning from the older applied
        // count after a restart would undo the person's change.
        tail.counts
            .replicas
            .entry(rec.decision.target.clone())
            .or_insert(n);
    }
    if !carried_out(&rec, kind, opts.applied_only) {
        tail.not_applied += 1;
        return;
    }
    let TailDecision { target, to, .. } = rec.decision;
    let counts = &mut tail.counts;
    match kind {
        DecisionKind::ScaleUp | DecisionKind::ScaleDown => {
            counts.replicas.entry(target).or_insert(to);
        }
        DecisionKind::AddNode | DecisionKind::RemoveNode => {
            counts.nodes.entry(target).or_insert(to);
        }
        DecisionKind::Hold => {
            counts.replicas.entry(target.clone()).or_insert(to);
            counts.nodes.entry(target).or_insert(to);
        }
        DecisionKind::Place | DecisionKind::Move => {}
    }
}

/// Newest first, per workload: an unanswered change's count is pending unless a newer scale
/// record settled it: one carried out, left for a live count, dry-run or previewed. A hold
/// sends nothing and a failure may have learnt nothing (a GET without an answer), so both
/// leave what is older standing. (A refused PATCH after a GET did settle it in the run that
/// logged it; read back it does not, which at worst takes someone's later change to that
/// same count for the landing: planned from alike, only not counted as external.)
fn take_pending(rec: &TailLine, kind: DecisionKind, tail: &mut LogTail) {
    if !matches!(kind, DecisionKind::ScaleUp | DecisionKind::ScaleDown) {
        return;
    }
    let target = &rec.decision.target;
    if tail.settled.contains(target) {
        return;
    }
    let outcome = rec.outcome.as_deref().or(rec.decision.outcome.as_deref());
    if let Some(n) = outcome.and_then(crate::act::Outcome::asked_in) {
        tail.pending.insert(target.clone(), n);
        tail.settled.insert(target.clone());
        return;
    }
    if !outcome.is_some_and(|o| o.starts_with("failed")) {
        tail.settled.insert(target.clone());
    }
}

/// The count a scale record says an actuator set (`applied`: its `to`) or adopted (`skipped
/// (changed elsewhere: live N)` or `skipped (earlier change landed: live N)`: N); `None` for
/// anything else (a dry run, a failure, a preview, a hold), which leaves the count prescale
/// last set where it was.
fn set_by_actuator(rec: &TailLine, kind: DecisionKind) -> Option<u32> {
    if !matches!(kind, DecisionKind::ScaleUp | DecisionKind::ScaleDown) {
        return None;
    }
    let outcome = rec.outcome.as_deref().or(rec.decision.outcome.as_deref())?;
    if outcome == "applied" {
        return Some(rec.decision.to);
    }
    crate::act::Outcome::live_count_in(outcome)
}

/// Whether a record's count may be believed as the cluster's: never when its outcome is
/// `failed` (written `failed: <reason>`); under `applied_only`, only when it was applied (a hold changes nothing, so an
/// outcome of `skipped` does not make it less true).
fn carried_out(rec: &TailLine, kind: DecisionKind, applied_only: bool) -> bool {
    let outcome = rec.outcome.as_deref().or(rec.decision.outcome.as_deref());
    if outcome.is_some_and(|o| o == "failed" || o.starts_with("failed:")) {
        return false;
    }
    if !applied_only {
        return true;
    }
    match outcome {
        None => rec.applied,
        Some("applied") => true,
        Some("skipped") => rec.applied && kind == DecisionKind::Hold,
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::tests::decision;
    use crate::act::DecisionLog;
    use proptest::prelude::*;
    use std::io::Write;

    fn line(cycle: u64, kind: DecisionKind, target: &str, to: u32, applied: bool) -> String {
        let d = decision(kind, target, 0, to);
        let l = super::super::Line {
            cycle,
            decision: &d,
            outcome: None,
            applied,
        };
        serde_json::to_string(&l).unwrap()
    }

    /// An applied-mode record of `kind` for `target` with an actuator's `outcome`.
    fn with_outcome(
        cycle: u64,
        kind: DecisionKind,
        target: &str,
        to: u32,
        outcome: &str,
    ) -> String {
        line(cycle, kind, target, to, true).replacen(
            &format!("{{\"cycle\":{cycle},"),
            &format!("{{\"cycle\":{cycle},\"outcome\":\"{outcome}\","),
            1,
        )
    }

    fn map(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// Reads the whole file forwards, last record wins: what the backwards reader must equal.
    fn forwards(bytes: &[u8], applied_only: bool) -> (RecordedCounts, usize, usize) {
        let mut newest_first = LogTail::default();
        let opts = TailOptions {
            applied_only,
            ..TailOptions::default()
        };
        for l in bytes.split(|&b| b == b'\n').rev() {
            take_line(l, opts, &mut newest_first);
        }
        (
            newest_first.counts,
            newest_first.records,
            newest_first.skipped,
        )
    }

    fn read(bytes: &[u8], opts: TailOptions) -> LogTail {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        std::fs::write(&p, bytes).unwrap();
        read_tail(&p, opts).unwrap()
    }

    #[test]
    fn newest_count_per_workload_and_pool_across_chunk_boundaries() {
        let text = [
            line(1, DecisionKind::ScaleUp, "web", 5, false),
            line(1, DecisionKind::AddNode, "general", 3, false),
            line(1, DecisionKind::Place, "web", 2, false),
            line(2, DecisionKind::ScaleUp, "web", 6, false),
            line(2, DecisionKind::Hold, "api", 4, false),
            line(2, DecisionKind::Hold, "general", 3, false),
            line(3, DecisionKind::Move, "web", 1, false),
        ]
        .join("\n")
            + "\n";
        // Every chunk size from one byte (a boundary inside every line) to the whole file.
        for chunk in (1..40).chain([text.len() - 1, text.len(), 64 * 1024]) {
            let t = read(
                text.as_bytes(),
                TailOptions {
                    chunk,
                    ..TailOptions::default()
                },
            );
            assert_eq!(
                t.counts.replicas,
                map(&[("web", 6), ("api", 4), ("general", 3)]),
                "chunk {chunk}"
            );
            assert_eq!(
                t.counts.nodes,
                map(&[("general", 3), ("api", 4)]),
                "chunk {chunk}"
            );
            assert_eq!((t.records, t.skipped, t.capped), (7, 0, false), "{chunk}");
        }
    }

    #[test]
    fn torn_foreign_and_overlong_lines_are_skipped_and_counted() {
        let mut bytes = Vec::new();
        writeln!(bytes, "{}", line(1, DecisionKind::ScaleUp, "web", 5, false)).unwrap();
        // Foreign JSON, a record of an unknown kind, binary junk, an overlong line.
        writeln!(bytes, "{{\"level\":\"info\"}}").unwrap();
        let unknown = line(2, DecisionKind::ScaleUp, "web", 9, false).replace("scale_up", "warp");
        writeln!(bytes, "{unknown}").unwrap();
        bytes.extend_from_slice(b"\x00\xff\xfe junk\n");
        bytes.extend_from_slice(&vec![b'{'; 3 * MAX_RECORD_BYTES]);
        bytes.push(b'\n');
        // A torn last line (a crash mid-write).
        let last = line(3, DecisionKind::ScaleUp, "web", 7, false);
        bytes.extend_from_slice(&last.as_bytes()[..last.len() / 2]);
        for chunk in [7, 4096, 64 * 1024] {
            let t = read(
                &bytes,
                TailOptions {
                    chunk,
                    ..TailOptions::default()
                },
            );
            assert_eq!(t.counts.replicas, map(&[("web", 5)]), "chunk {chunk}");
            assert_eq!((t.records, t.skipped), (1, 5), "chunk {chunk}");
        }
        // A complete last line without its newline is a record.
        let t = read(
            format!(
                "{}\n{last}",
                line(1, DecisionKind::ScaleUp, "web", 5, false)
            )
            .as_bytes(),
            TailOptions::default(),
        );
        assert_eq!(t.counts.replicas, map(&[("web", 7)]));
    }

    #[test]
    fn a_huge_log_is_read_only_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        let mut f = std::io::BufWriter::new(File::create(&p).unwrap());
        // An old workload only at the start, then about 64 MiB of one other workload's cycles.
        writeln!(f, "{}", line(0, DecisionKind::ScaleUp, "old", 9, false)).unwrap();
        let mut written = 0u64;
        let mut cycle = 1;
        while written < 64 << 20 {
            let l = line(cycle, DecisionKind::Hold, "web", (cycle % 50) as u32, false);
            writeln!(f, "{l}").unwrap();
            written += l.len() as u64 + 1;
            cycle += 1;
        }
        drop(f);
        let t0 = std::time::Instant::now();
        let t = read_tail(&p, TailOptions::default()).unwrap();
        let took = t0.elapsed();
        assert!(t.capped);
        assert_eq!(t.bytes_read, 4 << 20);
        assert_eq!(
            t.counts.replicas,
            map(&[("web", ((cycle - 1) % 50) as u32)])
        );
        assert!(!t.counts.replicas.contains_key("old"));
        // 4 MiB of parsing, whatever the file's size (tens of ms; generous for a loaded box).
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }

    /// `last_set` is the newest applied scale, or the live count adopted from a change
    /// elsewhere; dry runs, failures, previews and holds pass over, whatever `applied_only`.
    #[test]
    fn last_set_is_the_newest_applied_or_adopted_count() {
        let with = with_outcome;
        let up = DecisionKind::ScaleUp;
        let text = [
            with(1, up, "web", 5, "applied"),
            with(1, up, "api", 3, "applied"),
            with(1, up, "db", 2, "applied"),
            with(
                2,
                up,
                "web",
                8,
                "failed: timeout: GET had no answer within 10s",
            ),
            with(2, up, "api", 4, "skipped (changed elsewhere: live 9)"),
            with(2, DecisionKind::ScaleDown, "db", 1, "applied"),
            with(3, DecisionKind::Hold, "web", 8, "skipped"),
            with(3, up, "api", 12, "skipped (preview)"),
            with(3, up, "db", 4, "dry-run"),
            line(3, up, "old", 4, false),
            with(4, up, "cache", 9, "skipped (earlier change landed: live 6)"),
        ]
        .join("\n");
        for applied_only in [true, false] {
            let t = read(
                text.as_bytes(),
                TailOptions {
                    applied_only,
                    chunk: 61,
                    ..TailOptions::default()
                },
            );
            assert_eq!(
                t.last_set,
                map(&[("web", 5), ("api", 9), ("db", 1), ("cache", 6)]),
                "applied_only = {applied_only}"
            );
        }
        // What the next start plans from: the adopted 9 for api, not its older applied 3.
        let t = read(
            text.as_bytes(),
            TailOptions {
                applied_only: true,
                chunk: 61,
                ..TailOptions::default()
            },
        );
        assert_eq!(
            t.counts.replicas,
            map(&[("web", 8), ("api", 9), ("db", 1), ("cache", 6)])
        );
    }

    /// An unanswered change's count stays pending through newer holds and failures (which
    /// sent nothing or learnt nothing), and is settled by a newer carried-out, adopted or
    /// dry-run record.
    #[test]
    fn an_unanswered_change_is_pending_until_a_newer_record_settles_it() {
        let with = with_outcome;
        let (up, hold) = (DecisionKind::ScaleUp, DecisionKind::Hold);
        let lost = |to| {
            crate::act::Outcome::unanswered("timeout: PATCH had no answer within 1s".into(), to)
                .to_string()
        };
        let text = [
            with(1, up, "web", 5, &lost(5)),
            with(1, up, "api", 4, &lost(4)),
            with(1, up, "db", 3, &lost(3)),
            with(1, up, "old", 6, &lost(6)),
            with(2, hold, "web", 5, "skipped"),
            with(
                2,
                up,
                "api",
                6,
                "failed: timeout: GET had no answer within 1s",
            ),
            with(2, up, "db", 6, "applied"),
            with(2, up, "old", 7, &lost(7)),
            with(3, up, "old", 7, "dry-run"),
        ]
        .join("\n");
        let t = read(
            text.as_bytes(),
            TailOptions {
                applied_only: true,
                chunk: 53,
                ..TailOptions::default()
            },
        );
        assert_eq!(t.pending, map(&[("web", 5), ("api", 4)]));
        // Failed, it is not believed: planning goes on from what was carried out.
        assert_eq!(t.counts.replicas.get("api"), None);
    }

    #[test]
    fn applied_only_takes_applied_records_and_no_failed_one() {
        let failed = line(4, DecisionKind::ScaleUp, "web", 9, true).replacen(
            "{\"cycle\":4,",
            "{\"cycle\":4,\"outcome\":\"failed: sh exited with status 3: nope\",",
            1,
        );
        let skipped_up = line(5, DecisionKind::ScaleUp, "api", 8, true).replacen(
            "{\"cycle\":5,",
            "{\"cycle\":5,\"outcome\":\"skipped\",",
            1,
        );
        let text = [
            line(1, DecisionKind::ScaleUp, "web", 5, true),
            line(1, DecisionKind::ScaleUp, "api", 3, true),
            line(2, DecisionKind::ScaleUp, "web", 7, false),
            line(3, DecisionKind::ScaleUp, "api", 6, false),
            failed,
            skipped_up,
        ]
        .join("\n");
        let applied = read(
            text.as_bytes(),
            TailOptions {
                applied_only: true,
                ..TailOptions::default()
            },
        );
        assert_eq!(applied.counts.replicas, map(&[("web", 5), ("api", 3)]));
        assert_eq!(applied.not_applied, 4);
        // A dry-run takes its own records too, but never a failed one.
        let dry = read(text.as_bytes(), TailOptions::default());
        assert_eq!(dry.counts.replicas, map(&[("web", 7), ("api", 8)]));
        assert_eq!(dry.not_applied, 1);
    }

    #[test]
    fn what_the_log_writes_is_what_the_tail_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        let mut log = DecisionLog::open(&p).unwrap();
        log.append(1, &[decision(DecisionKind::ScaleUp, "web", 2, 5)], &[])
            .unwrap();
        log.set_applied(true);
        log.append(2, &[decision(DecisionKind::ScaleUp, "web", 5, 6)], &[])
            .unwrap();
        log.set_applied(false);
        log.append(3, &[decision(DecisionKind::ScaleUp, "web", 6, 8)], &[])
            .unwrap();
        drop(log);
        let all = read_tail(&p, TailOptions::default()).unwrap();
        assert_eq!(all.counts.replicas, map(&[("web", 8)]));
        let applied = TailOptions {
            applied_only: true,
            ..TailOptions::default()
        };
        assert_eq!(
            read_tail(&p, applied).unwrap().counts.replicas,
            map(&[("web", 6)])
        );
        // No file yet: nothing recorded.
        let none = read_tail(&dir.path().join("none.jsonl"), applied).unwrap();
        assert_eq!(none, LogTail::default());
    }

    /// Lines for the property test: records of a few targets and kinds, or junk.
    fn any_line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (
                0usize..7,
                prop::sample::select(vec!["web", "api", "general"]),
                0u32..50,
                any::<bool>()
            )
                .prop_map(|(k, t, to, applied)| line(
                    1,
                    DecisionKind::ALL[k],
                    t,
                    to,
                    applied
                )
                .into_bytes()),
            prop::collection::vec(any::<u8>(), 0..60),
            "[ -~]{0,60}".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the file holds and wherever the chunks cut it, reading backwards never
        /// panics and finds exactly what reading the whole file forwards finds.
        #[test]
        fn backwards_in_chunks_equals_forwards(
            lines in prop::collection::vec(any_line(), 0..30),
            newline_at_end in any::<bool>(),
            chunk in 1usize..200,
            applied_only in any::<bool>(),
        ) {
            let mut bytes = lines.join(&b'\n');
            if newline_at_end {
                bytes.push(b'\n');
            }
            let t = read(&bytes, TailOptions { chunk, applied_only, ..TailOptions::default() });
            let (counts, records, skipped) = forwards(&bytes, applied_only);
            prop_assert_eq!(t.counts, counts);
            prop_assert_eq!((t.records, t.skipped), (records, skipped));
            prop_assert_eq!(t.bytes_read, bytes.len() as u64);
        }

        /// Arbitrary bytes under a small cap: no panic, never more read than the cap.
        #[test]
        fn arbitrary_bytes_never_panic_and_respect_the_cap(
            bytes in prop::collection::vec(any::<u8>(), 0..4000),
            chunk in 1usize..300,
            cap in 1u64..2000,
        ) {
            let t = read(&bytes, TailOptions { chunk, cap, applied_only: false });
            prop_assert!(t.bytes_read <= cap);
            prop_assert_eq!(t.capped, (bytes.len() as u64) > cap);
        }
    }
}
