//! The file the live loop keeps its learnt state in across restarts (`run.calibration_state`):
//! the online calibration's offsets ([`forecast::online`](crate::forecast::online)'s `saved`)
//! the risk ledgers of `max_short` workloads ([`SavedRisk`]), and which model
//! `run.retrained_model` holds ([`Retrained`]).
//!
//! # When the saved offsets apply
//!
//! Offsets learnt one model's errors (the live loop forgets them when a series changes
//! model), so the file names the model by a checksum of its encoding and they are restored
//! only by a run of that same model, and only for series that were on it (not on an own model
//! when saved); the ledgers count short steps, not a model's errors, and are restored
//! whatever the model. Nothing is restored when the file was saved after the run's first
//! cycle: a replay of history that starts before the state was saved must not learn from its
//! future. The same goes for the retrained model, which also needs `run.model` to be the model
//! it was retrained from (a new `run.model` is the user's newer choice) and the file to hold
//! the model named; the offsets saved after it are then its own.
//!
//! # The file
//!
//! One JSON object, written atomically (temporary file and rename), its first key a fixed
//! `format` marker, one series or workload per line. A file at the path that does not start
//! with the marker was not written by prescale: it is refused, never overwritten. One that
//! does but does not parse or holds values no calibrator can have is refused with the line,
//! or the series or workload, at fault; `run` then sets it aside ([`load_or_set_aside`]) and
//! starts afresh, as the file is a cache of what the loop learns: a rollback to a build that
//! reads an older format must not crash-loop until someone deletes it. An empty file is no
//! state (a path created ahead, `touch`).

use crate::atomic_file::write_atomic;
use crate::forecast::online::{self, SavedSeries};
use crate::plan::{CheckedRisk, SavedRisk};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The file's first bytes: `{"format":"prescale-online-calibration"`.
const FORMAT: &str = "prescale-online-calibration";
/// Format version written; the only one read.
const VERSION: u32 = 1;

/// Everything the file holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedState {
    format: String,
    version: u32,
    /// CRC-32 of the model's encoding the offsets were learnt against.
    pub model: u32,
    /// Time of the cycle the offsets were saved after (seconds since the epoch).
    pub saved_at: i64,
    /// The online calibration's offsets, per series.
    pub series: Vec<SavedSeries>,
    /// The risk trackers' state (`max_short` workloads).
    #[serde(default)]
    pub risk: Vec<SavedRisk>,
    /// The retrained model kept in `run.retrained_model`, if the loop put one in place.
    #[serde(default)]
    pub retrained: Option<Retrained>,
}

/// Which model `run.retrained_model` holds and what it replaced: a restart goes on with it only
/// while `run.model` is still the model it was retrained from, and only if the file still
/// holds that model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retrained {
    /// Fingerprint of `run.model` as the loop that retrained it loaded it.
    pub from: u32,
    /// Fingerprint of the retrained model.
    pub model: u32,
    /// The cycle's time when it was put in place (seconds since the epoch).
    pub at: i64,
    /// While the model is being written: the model the file held before (its fingerprint and
    /// time), which a stop between writing this state and writing the model leaves there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<(u32, i64)>,
}

impl SavedState {
    /// `series`' offsets (and no risk ledgers yet), as of `saved_at`, learnt against `model`.
    pub fn new(model: u32, saved_at: i64, series: Vec<SavedSeries>) -> Self {
        SavedState {
            format: FORMAT.to_string(),
            version: VERSION,
            model,
            saved_at,
            series,
            risk: Vec::new(),
            retrained: None,
        }
    }
}

/// Why a calibration state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing the file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        error: std::io::Error,
    },
    /// Something else is at the path: prescale neither reads nor replaces it.
    #[error(
        "{}: not a prescale online-calibration state file (it does not start with \
         {{\"format\":\"{FORMAT}\"); prescale will not overwrite it: move it, or set \
         run.calibration_state to another path",
        path.display()
    )]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// The file is prescale's but does not parse (e.g. edited by hand).
    #[error("{}: line {line}, column {column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The file parses but holds a value no calibrator can have.
    #[error("{}: {what}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which series or field, and what is wrong with it.
        what: String,
    },
}

/// A state file as read and checked, for the loop to restore at its first cycle.
#[derive(Debug)]
pub struct Loaded {
    /// The file's offsets, model and time as saved; its `risk` is empty, moved to `risk`.
    pub state: SavedState,
    /// The file's risk ledgers, already converted to calibrators: checking a ledger is
    /// converting it, so it is done once, here.
    pub risk: CheckedRisk,
}

/// Reads the state at `path`; `None` when there is no file.
pub fn load(path: &Path) -> Result<Option<Loaded>, StateError> {
    let Some(reader) = open(path)? else {
        return Ok(None);
    };
    let mut state: SavedState = serde_json::from_reader(reader).map_err(|e| StateError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let invalid = |what| StateError::Invalid {
        path: path.to_path_buf(),
        what,
    };
    state.check().map_err(invalid)?;
    let risk = CheckedRisk::new(std::mem::take(&mut state.risk)).map_err(invalid)?;
    Ok(Some(Loaded { state, risk }))
}

/// [`load`], but a file of prescale's that cannot be read (another format version, a field
/// this build does not know, a damaged or hand-edited file) is renamed to
/// `<name>.unreadable-<unix seconds>`, kept for a look, with a warning, and the state starts
/// afresh. What is not prescale's, or cannot be opened, stays an error.
pub fn load_or_set_aside(path: &Path, now: i64) -> Result<Option<Loaded>, StateError> {
    match load(path) {
        Err(e @ (StateError::Parse { .. } | StateError::Invalid { .. })) => {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".unreadable-{now}"));
            let aside = path.with_file_name(name);
            std::fs::rename(path, &aside).map_err(|error| StateError::Io {
                path: path.to_path_buf(),
                error,
            })?;
            tracing::warn!(
                "{e}: set aside as {}; the online calibration and the risk ledgers start afresh",
                aside.display()
            );
            Ok(None)
        }
        other => other,
    }
}

/// Fails when something is at `path` that [`save`] must not replace (not prescale's state).
/// Reads only the marker.
fn check_writable(path: &Path) -> Result<(), StateError> {
    open(path).map(|_| ())
}

/// The file from its start, once its first bytes proved it prescale's; `None` when absent or
/// empty.
/// The marker is read first, and no more than its length: a wrong path (a device, some large
/// file) costs a few bytes.
fn open(path: &Path) -> Result<Option<impl Read>, StateError> {
    let io = |error| StateError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut reader = std::io::BufReader::new(file);
    let marker = marker();
    let mut head = vec![0u8; marker.len()];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    if got == 0 {
        return Ok(None);
    }
    if head[..got] != *marker.as_bytes() {
        return Err(StateError::Foreign {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(std::io::Cursor::new(head).chain(reader)))
}

fn marker() -> String {
    format!("{{\"format\":\"{FORMAT}\"")
}

impl SavedState {
    /// The format version and the offsets; the risk ledgers are checked by converting them
    /// ([`CheckedRisk::new`]).
    fn check(&self) -> Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "format version {} (this build reads {VERSION})",
                self.version
            ));
        }
        online::check_saved(&self.series)
    }
}

/// Writes `saved` to `path` atomically: a reader, or a crash, sees the previous file or this
/// one whole. Refuses to replace a file that is not prescale's state.
pub fn save(path: &Path, saved: &SavedState) -> Result<(), StateError> {
    check_writable(path)?;
    write_atomic(path, |w: &mut dyn Write| {
        // One series per line, so that a parse error's line names the series at fault.
        write!(
            w,
            "{},\"version\":{},\"model\":{},\"saved_at\":{},\"series\":[",
            marker(),
            saved.version,
            saved.model,
            saved.saved_at
        )?;
        for (i, s) in saved.series.iter().enumerate() {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut *w, s).map_err(std::io::Error::other)?;
        }
        w.write_all(b"\n],\"risk\":[")?;
        for (i, r) in saved.risk.iter().enumerate() {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut *w, r).map_err(std::io::Error::other)?;
        }
        w.write_all(b"\n]")?;
        if let Some(r) = &saved.retrained {
            w.write_all(b",\"retrained\":")?;
            serde_json::to_writer(&mut *w, r).map_err(std::io::Error::other)?;
        }
        w.write_all(b"}\n")
    })
    .map_err(|error| StateError::Io {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests;
