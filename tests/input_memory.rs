//! Memory follows the data (issue #10, item 3): history files are read as streams and put on a
//! grid without ever materialising a long gap. A counting global allocator measures the peak
//! bytes live while each reader runs, above what was live before it started.
//!
//! The peak counts what the allocator was asked for: a `realloc` adds only the difference
//! between the new and the old size (the system allocator grows large blocks in place, by
//! remapping). Each test holds one lock from start to end, input generation included, so the
//! other tests of this binary cannot add to its peak.

#[path = "common/counting.rs"]
mod counting;

use counting::{alone, peak_of};
use prescale::series::{read_history, CsvError, HistoryOptions, Series, SeriesReport};
use std::io::Write;
use std::path::{Path, PathBuf};

type Read = Result<(Vec<Series>, Vec<SeriesReport>), CsvError>;

/// `read_history` on one file with default options, measured.
fn read_measured(path: &Path) -> (Read, usize) {
    let paths = [path.to_path_buf()];
    peak_of(|| read_history(&paths, &HistoryOptions::default()))
}

fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

const MIB: usize = 1 << 20;

#[test]
fn one_far_timestamp_does_not_allocate_by_span() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "far.csv",
        b"timestamp,value\n0,1\n1,2\n2,3\n3,4\n90000000000,5\n",
    );
    let (read, peak) = read_measured(&p);
    let (series, reports) = read.expect("the stray row is dropped, the rest reads");
    assert_eq!(series[0].values, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(reports[0].dropped_rows(), 1);
    assert_eq!(reports[0].dropped[0].first, 90_000_000_000);
    eprintln!("far timestamp: peak {peak} bytes");
    // The span is 9e10 one-second steps (720 GB as f64): the reader needs its buffers only.
    assert!(peak < MIB / 4, "peak {peak} bytes");
}

#[test]
fn one_stray_zero_among_20000_rows_stays_small() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("timestamp,value\n");
    for i in 0..20_000i64 {
        body.push_str(&format!("{},{}\n", 1_700_000_000 + 60 * i, i % 50));
    }
    body.push_str("0,1\n");
    let p = write(dir.path(), "stray.csv", body.as_bytes());
    let (read, peak) = read_measured(&p);
    let (series, reports) = read.expect("the stray row is dropped, the rest reads");
    assert_eq!((series[0].len(), series[0].start), (20_000, 1_700_000_000));
    assert_eq!(series[0].gap_steps(), 0);
    assert_eq!(reports[0].dropped_rows(), 1);
    assert!(reports[0].summary().contains("1 at 1970-01-01T00:00:00Z"));
    eprintln!("stray zero: peak {peak} bytes for {} bytes", body.len());
    // 28 million empty steps (226 MB) before; now the rows and one value per step.
    assert!(
        peak < 4 * body.len(),
        "peak {peak} bytes for {} bytes of input",
        body.len()
    );
}

#[test]
fn a_very_long_line_is_refused_with_file_line_and_excerpt_in_little_memory() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    // CRLF line ends: the line number must still be the long line's own.
    let mut body = b"timestamp,value\r\n60,1\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'x', 16 * MIB));
    body.extend(b",2\r\n120,3\r\n");
    let p = write(dir.path(), "long.csv", &body);
    drop(body);
    let (read, peak) = read_measured(&p);
    let e = read.unwrap_err().to_string();
    let at = format!("{}:3: a record longer than 1 MiB", p.display());
    assert!(e.starts_with(&at), "{e:.300}");
    assert!(e.contains("'xxxxxxxx"), "{e:.300}");
    assert!(e.len() < at.len() + 200, "{} bytes: {e:.300}", e.len());
    eprintln!("16 MiB line: peak {peak} bytes");
    assert!(peak < 4 * MIB, "peak {peak} bytes for a 16 MiB line");
}

#[test]
fn a_file_of_nul_bytes_is_refused_in_little_memory() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "nul.csv", &vec![0u8; 32 * MIB]);
    let (read, peak) = read_measured(&p);
    let e = read.unwrap_err().to_string();
    let at = format!("{}:1: a record longer than 1 MiB", p.display());
    assert!(e.starts_with(&at), "{e:.300}");
    assert!(e.contains("\\0\\0"), "{e:.300}");
    assert!(e.len() < at.len() + 200, "{} bytes: {e:.300}", e.len());
    eprintln!("32 MiB of NULs: peak {peak} bytes");
    assert!(peak < 4 * MIB, "peak {peak} bytes for 32 MiB of NULs");
}

#[test]
fn a_large_file_is_streamed_not_read_whole() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.csv");
    // ~50 MB of the long format `collect --export-csv` writes: 20 series × 1-minute rows.
    let series = 20;
    let steps = 54_000i64;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        writeln!(w, "timestamp,series,value").unwrap();
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for i in 0..steps {
            let ts = (t0 + chrono::Duration::seconds(60 * i))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            for k in 0..series {
                let v = (i * 7 + k * 13) % 1000;
                writeln!(w, "{ts},node-{k:03}/cpu_seconds,0.{v:04}").unwrap();
            }
        }
    }
    let size = std::fs::metadata(&p).unwrap().len() as usize;
    assert!(size > 45_000_000, "{size} bytes");
    let (read, peak) = read_measured(&p);
    let (all, _) = read.unwrap();
    assert_eq!(all.len(), series as usize);
    assert!(all
        .iter()
        .all(|s| s.len() == steps as usize && s.step == 60));
    // The rows as 16-byte samples (about 17 MB here) plus one series' grid: well under the
    // file's size, where reading it whole took the file and three times as much again.
    eprintln!("peak {peak} bytes reading {size} bytes");
    assert!(
        peak < size * 6 / 10,
        "peak {peak} bytes reading {size} bytes"
    );
}

#[test]
fn many_short_series_cost_what_their_rows_do() {
    // Long format, 20,000 series of 2 rows each (a label exploded into series): each series
    // once reserved room for 1,024 rows when its first row came, 16 KiB, so this 0.9 MB file
    // took 330 MB while read, and a 4 MB one (200,000 series) 900 MB.
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("timestamp,series,value\n");
    for i in 0..20_000 {
        for t in 0..2 {
            body.push_str(&format!("{},s{i},{}\n", 1_700_000_000 + 300 * t, i % 7));
        }
    }
    let p = write(dir.path(), "many.csv", body.as_bytes());
    let (read, peak) = read_measured(&p);
    let (series, _) = read.expect("every series has two rows");
    assert_eq!(series.len(), 20_000);
    eprintln!(
        "many short series: peak {peak} bytes for {} bytes",
        body.len()
    );
    assert!(
        peak < 40 * MIB,
        "peak {peak} bytes for a {} byte file",
        body.len()
    );
}
