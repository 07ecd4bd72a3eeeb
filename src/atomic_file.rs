//! Atomic file writes: a reader sees the old file or the new one, never half of either.

use std::io::{self, Write};
use std::path::Path;

/// Writes a file through a temporary file in the same directory, synced and then renamed over
/// `path`. A crash mid-write leaves the previous file intact.
pub fn write_atomic<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".prescale-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    // A temporary file is private (0600), and the rename would make the result so: a model
    // copied into an image would be unreadable to its non-root user. The file replaced keeps
    // its mode; a new one gets the usual 0644.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map_or(0o644, |m| m.permissions().mode() & 0o7777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    {
        let mut w = io::BufWriter::new(tmp.as_file_mut());
        write(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Whether `path` holds what prescale must not replace: an existing, non-empty regular file
/// whose first `len` bytes (or fewer, if it is shorter) `ours` does not recognise. A missing
/// or empty file, or anything but a regular file (the write then fails and says why), does
/// not: there is nothing of someone else's to lose.
pub fn holds_foreign(path: &Path, len: usize, ours: impl Fn(&[u8]) -> bool) -> io::Result<bool> {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(false);
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Ok(false);
    }
    let mut head = Vec::with_capacity(len.min(4096));
    file.take(len as u64).read_to_end(&mut head)?;
    Ok(!head.is_empty() && !ours(&head))
}

/// Refuses to replace a file ([`holds_foreign`]) whose first line `ours` does not recognise
/// as the header prescale writes there: an output flag pointed at an input (`backtest
/// --forecasts-csv` at the history it reads) or at a user's own file must not destroy it.
/// Nothing of the file is quoted: it may hold anything.
pub fn check_replaceable(path: &Path, what: &str, ours: impl Fn(&str) -> bool) -> io::Result<()> {
    let line_is_ours = |head: &[u8]| {
        let first = head
            .split(|&b| b == b'\n' || b == b'\r')
            .next()
            .unwrap_or(&[]);
        std::str::from_utf8(first).is_ok_and(|l| ours(l.trim_start_matches('\u{feff}')))
    };
    if holds_foreign(path, 4096, line_is_ours)? {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "it exists and is not {what} (its first line is not the header prescale \
                 writes): refusing to replace it; choose another path or remove the file"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_keeps_old_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.txt");
        write_atomic(&p, |w| w.write_all(b"first")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        let err = write_atomic(&p, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_0644_and_a_replaced_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.model");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        write_atomic(&p, |w| w.write_all(b"one")).unwrap();
        assert_eq!(mode(&p), 0o644);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, |w| w.write_all(b"two")).unwrap();
        assert_eq!(mode(&p), 0o640);
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }

    #[test]
    fn only_what_prescale_wrote_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        let ours = |l: &str| l == "timestamp,p50";
        check_replaceable(&p, "a forecasts CSV", ours).unwrap();
        std::fs::write(&p, "").unwrap();
        check_replaceable(&p, "a forecasts CSV", ours).unwrap();
        std::fs::write(&p, "timestamp,p50\r\n1,2\r\n").unwrap();
        check_replaceable(&p, "a forecasts CSV", ours).unwrap();
        std::fs::write(&p, "timestamp,value\n1,SECRET\n").unwrap();
        let e = check_replaceable(&p, "a forecasts CSV", ours).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("is not a forecasts CSV"), "{e}");
        assert!(
            !e.to_string().contains("SECRET") && !e.to_string().contains("value"),
            "{e}"
        );
        std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
        assert!(check_replaceable(&p, "a forecasts CSV", ours).is_err());
        check_replaceable(dir.path(), "a forecasts CSV", ours).unwrap();
    }
}
