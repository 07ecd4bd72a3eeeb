//! The model file: a fixed header (magic, format version, payload length, CRC-32) in front of
//! the postcard payload, so a wrong, truncated or corrupted file is told apart from a good one
//! before anything is decoded. The layout is in the parent module's doc.

use super::{AnchorChoice, Model, ModelError, ModelMeta, FORMAT_VERSION};
use crate::atomic_file::write_atomic;
use crate::forecast::features::FeatureSpec;
use crate::forecast::forest::{ForestError, UncheckedForest};
use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"PRESCALE";
const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// [`Model`] as decoded, its forest not yet checked: decoding the forest through its own
/// checks would let postcard replace their message ("tree 3: node 12 is malformed: …") with a
/// generic one. Fields in [`Model`]'s order, so the encoding is the same.
#[derive(serde::Deserialize)]
struct ModelRepr {
    spec: FeatureSpec,
    quantiles: Vec<f64>,
    calibration: Vec<f64>,
    anchor: AnchorChoice,
    forest: UncheckedForest,
    meta: ModelMeta,
}

/// Format version 1: no anchor (every such model measured from the recent peak).
#[derive(serde::Deserialize)]
struct ModelReprV1 {
    spec: FeatureSpec,
    quantiles: Vec<f64>,
    calibration: Vec<f64>,
    forest: UncheckedForest,
    meta: ModelMeta,
}

impl From<ModelReprV1> for ModelRepr {
    fn from(v: ModelReprV1) -> Self {
        ModelRepr {
            spec: v.spec,
            quantiles: v.quantiles,
            calibration: v.calibration,
            anchor: AnchorChoice::fixed(super::Anchor::Recent),
            forest: v.forest,
            meta: v.meta,
        }
    }
}

/// Oldest format version this build still reads.
const OLDEST_READABLE: u32 = 1;

impl Model {
    /// CRC-32 of the model's encoding (the payload [`save`](Self::save) writes): the same model
    /// has the same fingerprint whatever file it was read from. State learnt against one model
    /// (the online calibration's offsets) names it by this, to be restored only with it.
    pub fn fingerprint(&self) -> u32 {
        // Encoding into memory cannot fail for a model that exists.
        postcard::to_stdvec(self).map_or(0, |p| crc32fast::hash(&p))
    }

    /// Writes the model atomically (temporary file + rename), only over nothing, an empty file
    /// or another model ([`check_replaceable`](Self::check_replaceable)).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        Self::check_replaceable(path)?;
        let payload = postcard::to_stdvec(self).map_err(|e| ModelError::Decode {
            path: path.to_path_buf(),
            message: format!("encoding failed: {e}"),
        })?;
        let crc = crc32fast::hash(&payload);
        write_atomic(path, |w: &mut dyn Write| {
            w.write_all(MAGIC)?;
            w.write_all(&FORMAT_VERSION.to_le_bytes())?;
            w.write_all(&(payload.len() as u64).to_le_bytes())?;
            w.write_all(&crc.to_le_bytes())?;
            w.write_all(&payload)
        })
        .map_err(|error| ModelError::Io {
            path: path.to_path_buf(),
            error,
        })
    }

    /// Refuses a path that holds a file other than a model: `train --out` given the history
    /// it reads (or any file that is not prescale's) must not replace it. Nothing there, an
    /// empty file and anything starting with the model magic may be replaced; a path that
    /// cannot be opened for reading is left to the write to report. Callers that do a long
    /// job before saving check first, so the mistake costs no training time.
    pub fn check_replaceable(path: &Path) -> Result<(), ModelError> {
        let io = |error| ModelError::Io {
            path: path.to_path_buf(),
            error,
        };
        if path.is_dir() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory: give the model file's path",
            )));
        }
        // The write goes through a temporary file beside it: a directory that exists but
        // takes no new file would fail only after the training.
        let dir = match path.parent() {
            Some(d) if d.as_os_str().is_empty() => Some(Path::new(".")),
            d => d,
        };
        if let Some(dir) = dir.filter(|d| d.is_dir()) {
            tempfile::Builder::new()
                .prefix(".prescale-")
                .tempfile_in(dir)
                .map_err(|e| {
                    io(std::io::Error::new(
                        e.kind(),
                        format!("its directory takes no new file: {e}"),
                    ))
                })?;
        }
        if crate::atomic_file::holds_foreign(path, MAGIC.len(), |head| head == MAGIC).map_err(io)? {
            return Err(ModelError::NotOurs {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Reads a model, checking magic, version, length and checksum before decoding, and every
    /// invariant of the decoded model after (a checksum only proves the bytes are the ones
    /// written, not that what was written is sound).
    ///
    /// The file is read by what its header declares, never past it, so a wrong path (a device
    /// such as `/dev/zero`, a huge file) costs at most the header and the declared payload.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let io = |error| ModelError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::with_capacity(HEADER_LEN);
        (&mut file)
            .take(HEADER_LEN as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() == HEADER_LEN && &bytes[..MAGIC.len()] == MAGIC {
            // The declared payload and no more (bytes after it are ignored, as before); the
            // buffer grows with what is actually there, not with the length field.
            let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
            file.take(len).read_to_end(&mut bytes).map_err(io)?;
        }
        Self::from_bytes(&bytes, path)
    }

    pub(super) fn from_bytes(bytes: &[u8], path: &Path) -> Result<Model, ModelError> {
        let p = || path.to_path_buf();
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ModelError::NotAModel { path: p() });
        }
        if bytes.len() < HEADER_LEN {
            return Err(ModelError::Truncated {
                path: p(),
                expected: HEADER_LEN as u64,
                found: bytes.len() as u64,
            });
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let version = u32_at(8);
        if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
            return Err(ModelError::Version {
                path: p(),
                found: version,
            });
        }
        let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let crc = u32_at(20);
        let body = &bytes[HEADER_LEN..];
        if (body.len() as u64) < len {
            return Err(ModelError::Truncated {
                path: p(),
                // Saturating: the length field is the file's claim, up to 2^64 - 1.
                expected: (HEADER_LEN as u64).saturating_add(len),
                found: bytes.len() as u64,
            });
        }
        let body = &body[..len as usize];
        if crc32fast::hash(body) != crc {
            return Err(ModelError::Corrupt { path: p() });
        }
        let decode_error = |e: postcard::Error| ModelError::Decode {
            path: p(),
            message: format!("format version {version}: {e}"),
        };
        let raw: ModelRepr = if version == 1 {
            postcard::from_bytes::<ModelReprV1>(body)
                .map_err(decode_error)?
                .into()
        } else {
            postcard::from_bytes(body).map_err(decode_error)?
        };
        let forest = raw.forest.check().map_err(|e| ModelError::Invalid {
            path: p(),
            invariant: match e {
                ForestError::InvalidModel(m) => format!("forest {m}"),
                other => other.to_string(),
            },
        })?;
        let model = Model {
            spec: raw.spec,
            quantiles: raw.quantiles,
            calibration: raw.calibration,
            anchor: raw.anchor,
            forest,
            meta: raw.meta,
        };
        if let Some(invariant) = model.invariant_problem() {
            return Err(ModelError::Invalid {
                path: p(),
                invariant,
            });
        }
        Ok(model)
    }
}
