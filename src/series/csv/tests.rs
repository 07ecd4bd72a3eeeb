//! Tests of the history CSV reader: formats, repairs, blocks and errors.

use super::*;
use proptest::prelude::*;

#[test]
fn f32_values_print_as_measured() {
    assert_eq!(shortest(f64::from(51.846f32)), "51.846");
    assert_eq!(shortest(0.1), "0.1");
    assert_eq!(shortest(1e300).parse::<f64>().unwrap(), 1e300);
    assert_eq!(shortest(3.0), "3");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn read_one(text: &str) -> Result<(Vec<Series>, Vec<SeriesReport>), CsvError> {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "web.csv", text);
    read_history(&[p], &HistoryOptions::default())
}

fn err_text(text: &str) -> String {
    read_one(text).unwrap_err().to_string()
}

#[test]
fn reads_wide_format_rfc3339_and_offsets() {
    let (s, r) = read_one(
        "timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T01:05:00+01:00,2\n2024-01-01T00:10:00Z,3.5\n",
    )
    .unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].key.as_str(), "web");
    assert_eq!(s[0].step, 300);
    assert_eq!(s[0].start, 1_704_067_200);
    assert_eq!(s[0].values, vec![1.0, 2.0, 3.5]);
    assert_eq!(r[0].rows, 3);
}

#[test]
fn reads_long_format_and_unix_seconds() {
    let (s, _) =
        read_one("timestamp,series,value\n60,a,1\n60,b,10\n120,a,2\n120,b,20\n180,a,3\n").unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].key.as_str(), "a");
    assert_eq!(s[0].values, vec![1.0, 2.0, 3.0]);
    assert_eq!(s[1].values, vec![10.0, 20.0]);
    assert_eq!(s[1].step, 60);
}

#[test]
fn bad_inputs_name_file_and_line() {
    let e = err_text("timestamp,value\n60,1\nnot-a-time,2\n");
    assert!(e.contains("web.csv:3:") && e.contains("not-a-time"), "{e}");
    let e = err_text("timestamp,value\n60,1\n120,abc\n");
    assert!(
        e.contains("web.csv:3:") && e.contains("'abc' is not a number"),
        "{e}"
    );
    let e = err_text("timestamp,value\n60,NaN\n");
    assert!(e.contains("web.csv:2:") && e.contains("not finite"), "{e}");
    let e = err_text("timestamp,value\n60,inf\n");
    assert!(e.contains("not finite"), "{e}");
    // Finite but beyond f32: once read, and every forecast over it was NaN or infinite.
    for v in ["1e308", "-1e39"] {
        let e = err_text(&format!("timestamp,value\n60,1\n120,{v}\n"));
        assert!(
            e.contains("web.csv:3:") && e.contains(&format!("'{v}' is beyond ±3.4e38")),
            "{e}"
        );
    }
    let (s, _) = read_one("timestamp,value\n60,3e38\n120,-3e38\n").unwrap();
    assert_eq!(s[0].values, vec![3e38, -3e38]);
    let e = err_text("timestamp,value\n1700000000000,1\n");
    assert!(
        e.contains("milliseconds") && e.contains("web.csv:2:"),
        "{e}"
    );
    let e = err_text("timestamp,value\n60,1\n120\n");
    assert!(e.contains("web.csv:3:") && e.contains("fields"), "{e}");
    let e = err_text("time,load\n60,1\n");
    assert!(
        e.contains("web.csv:1:") && e.contains("header is 'time,load'"),
        "{e}"
    );
    let e = err_text("60,1\n120,2\n");
    assert!(e.contains("header"), "{e}");
    let e = err_text("");
    assert!(e.contains("web.csv: is empty"), "{e}");
    let e = err_text("timestamp,value\n");
    assert!(e.contains("no data rows"), "{e}");
    let e = err_text("timestamp,value\n60,\n");
    assert!(e.contains("empty value"), "{e}");
    let e = err_text("timestamp,series,value\n60,,1\n");
    assert!(e.contains("empty series name"), "{e}");
    let e = err_text("timestamp,value\n60,1\n");
    assert!(e.contains("cannot infer a step"), "{e}");
}

#[test]
fn a_text_value_column_is_an_error_not_a_series() {
    let e = err_text("timestamp,value\n2024-01-01T00:00:00Z,high\n2024-01-01T00:05:00Z,low\n");
    assert!(
        e.contains("web.csv:2:") && e.contains("'high' is not a number"),
        "{e}"
    );
}

#[test]
fn unsorted_and_duplicate_rows_are_repaired_and_counted() {
    let (s, r) = read_one("timestamp,value\n120,2\n60,1\n180,3\n180,5\n240,4\n").unwrap();
    assert_eq!(s[0].values, vec![1.0, 2.0, 4.0, 4.0]);
    assert_eq!(r[0].reordered, 1);
    assert_eq!(r[0].duplicates, 1);
    assert_eq!(r[0].rows, 5);
    let text = r[0].summary();
    assert!(
        text.contains("1 out-of-order") && text.contains("1 duplicate"),
        "{text}"
    );
}

#[test]
fn gaps_are_filled_or_kept_and_reported() {
    let mut text = String::from("timestamp,value\n");
    for i in [0, 1, 3, 4, 10, 11, 12] {
        text.push_str(&format!("{},{}\n", 60 * i, i));
    }
    let (s, r) = read_one(&text).unwrap();
    assert_eq!(s[0].values[2], 2.0);
    assert!(s[0].values[5..10].iter().all(|v| v.is_nan()));
    assert_eq!(s[0].segments(), vec![0..5, 10..13]);
    assert_eq!(r[0].resample.interpolated, 1);
    assert_eq!(r[0].resample.long_gaps, 1);
    assert!(r[0].summary().contains("1 long gaps"));
}

#[test]
fn same_series_in_two_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.csv",
        "timestamp,series,value\n60,x,1\n120,x,2\n",
    );
    let b = write(
        dir.path(),
        "b.csv",
        "timestamp,series,value\n60,x,1\n120,x,2\n",
    );
    let e = read_history(&[a, b], &HistoryOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("'x' appears in both"), "{e}");
}

#[test]
fn missing_file_names_it() {
    let e = read_history(
        &[PathBuf::from("/nonexistent/h.csv")],
        &HistoryOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/h.csv"), "{e}");
}

#[test]
fn long_csv_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let s = Series {
        key: SeriesKey::new("cpu{instance=\"a,b\"}"),
        start: 1_704_067_200,
        step: 60,
        values: vec![1.5, 2.0, f64::NAN, f64::NAN, f64::NAN, f64::NAN, 3.25],
    };
    let p = dir.path().join("out.csv");
    write_long_csv(&p, std::slice::from_ref(&s)).unwrap();
    let (back, _) = read_history(
        &[p],
        &HistoryOptions {
            step: Some(60),
            max_gap: Some(60),
        },
    )
    .unwrap();
    assert_eq!(back[0].key, s.key);
    assert_eq!(back[0].start, s.start);
    assert_eq!(back[0].values[..2], s.values[..2]);
    assert!(back[0].values[2..6].iter().all(|v| v.is_nan()));
    assert_eq!(back[0].values[6], 3.25);
}

/// An export over an earlier export is fine; over a user's own file (another header) it is
/// refused, naming the file, and the file is left as it was.
#[test]
fn long_csv_replaces_only_its_own_kind_of_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = Series {
        key: SeriesKey::new("cpu"),
        start: 1_704_067_200,
        step: 60,
        values: vec![1.0, 2.0],
    };
    let p = dir.path().join("cpu.csv");
    write_long_csv(&p, std::slice::from_ref(&s)).unwrap();
    write_long_csv(&p, std::slice::from_ref(&s)).unwrap();
    std::fs::write(&p, "time,cpu\n2024-01-01,1\n").unwrap();
    let e = write_long_csv(&p, std::slice::from_ref(&s))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cpu.csv") && e.contains("refusing to replace it"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "time,cpu\n2024-01-01,1\n"
    );
}

#[test]
fn stray_rows_far_away_are_dropped_and_reported() {
    // A 1970 row before, and a 2100 row after, 500 one-minute rows.
    let mut text = String::from("timestamp,value\n0,7\n");
    for i in 0..500i64 {
        text.push_str(&format!("{},{}\n", 1_700_000_010 + 60 * i, i % 9));
    }
    text.push_str("4102444800,9\n");
    let (s, r) = read_one(&text).unwrap();
    // The grid starts at the kept block's first row, not on the stray row's phase.
    assert_eq!(
        (s[0].start, s[0].step, s[0].len()),
        (1_700_000_010, 60, 500)
    );
    assert!(s[0].values.iter().all(|v| v.is_finite()));
    let dropped: Vec<(usize, i64)> = r[0].dropped.iter().map(|d| (d.rows, d.first)).collect();
    assert_eq!(dropped, vec![(1, 0), (1, 4_102_444_800)]);
    assert_eq!((r[0].rows, r[0].resample.samples), (502, 500));
    let text = r[0].summary();
    assert!(
        text.contains("2 rows far from the rest dropped (1 at 1970-01-01T00:00:00Z, 1 at 2100-01-01T00:00:00Z)"),
        "{text}"
    );
}

#[test]
fn a_step_finer_than_the_rows_is_refused_not_most_rows_dropped() {
    // Half-hourly rows on a 5-minute step: every row stood alone, and the grid budget once cut
    // off the first fifth of the file one "stray" row at a time (20 % of the rows dropped with
    // a warning). Now the stray rows are counted in all, and the message names the step.
    let mut text = String::from("timestamp,value\n");
    for i in 0..10_000i64 {
        text.push_str(&format!("{},{}\n", 1_700_000_000 + 1_800 * i, i % 7));
    }
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "taxi.csv", &text);
    let read = |step| {
        read_history(
            std::slice::from_ref(&p),
            &HistoryOptions {
                step: Some(step),
                max_gap: None,
            },
        )
    };
    let e = read(300).unwrap_err().to_string();
    assert!(e.contains("taxi.csv: series 'taxi' has 10000 rows"), "{e}");
    assert!(
        e.contains("rows are a median 30m apart, but the step is 5m") && e.contains("--step 30m"),
        "{e}"
    );
    // At the rows' own step, everything reads and nothing is dropped.
    let (s, r) = read(1_800).unwrap();
    assert_eq!((s[0].len(), r[0].dropped_rows()), (10_000, 0));
}

#[test]
fn two_large_blocks_far_apart_are_refused_naming_both() {
    let mut text = String::from("timestamp,value\n");
    for i in 0..100i64 {
        text.push_str(&format!("{},1\n", 60 * i));
    }
    for i in 0..100i64 {
        text.push_str(&format!("{},2\n", 1_700_000_000 + 60 * i));
    }
    let e = err_text(&text);
    assert!(e.contains("web.csv: series 'web' has 200 rows"), "{e}");
    assert!(
        e.contains("2 blocks") && e.contains("100 rows from 1970-01-01T00:00:00Z"),
        "{e}"
    );
    assert!(e.contains("biggest gap"), "{e}");
}

#[test]
fn an_ordinary_outage_stays_on_the_grid() {
    // 5,000 rows with a 10,000-step outage in the middle: within the budget, kept as NaN.
    let mut text = String::from("timestamp,value\n");
    for i in (0..2_500i64).chain(12_500..15_000) {
        text.push_str(&format!("{},1\n", 60 * i));
    }
    let (s, r) = read_one(&text).unwrap();
    assert_eq!(s[0].len(), 15_000);
    assert_eq!(s[0].segments(), vec![0..2_500, 12_500..15_000]);
    assert!(r[0].dropped.is_empty());
    assert_eq!(r[0].resample.gap_steps, 10_000);
}

#[test]
fn a_huge_max_gap_is_refused_before_filling() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "web.csv",
        "timestamp,value\n0,1\n60,1\n90000000000,2\n",
    );
    let opts = HistoryOptions {
        step: Some(60),
        max_gap: Some(i64::MAX / 2),
    };
    let e = read_history(&[p], &opts).unwrap_err().to_string();
    assert!(
        e.contains("web.csv") && e.contains("shorter --max-gap"),
        "{e}"
    );
}

proptest! {
    /// The parser never panics, whatever bytes it is given: it reads or it errs.
    #[test]
    fn parser_never_panics(text in "\\PC{0,200}") {
        let _ = read_one(&text);
    }

    /// Arbitrary rows around a valid header either parse to finite values or give an error
    /// that names the file.
    #[test]
    fn rows_parse_or_name_the_file(rows in proptest::collection::vec(("[0-9a-z:.+-]{0,12}", "[0-9a-zA-Z.eE+-]{0,8}"), 1..20)) {
        let mut text = String::from("timestamp,value\n");
        for (t, v) in &rows { text.push_str(&format!("{t},{v}\n")); }
        match read_one(&text) {
            Ok((s, _)) => prop_assert!(s[0].values.iter().any(|v| v.is_finite())),
            Err(e) => prop_assert!(e.to_string().contains("web.csv")),
        }
    }

    /// Any valid set of rows in any order reads back to the same values as sorted input.
    #[test]
    fn order_does_not_matter(mut steps in proptest::collection::btree_set(0i64..500, 2..60), seed in any::<u64>()) {
        let mut rows: Vec<(i64, f64)> = std::mem::take(&mut steps).into_iter().map(|k| (60 * k, (k % 13) as f64)).collect();
        let sorted_text: String = std::iter::once("timestamp,value\n".to_string()).chain(rows.iter().map(|(t, v)| format!("{t},{v}\n"))).collect();
        let mut rng = seed;
        for i in (1..rows.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            rows.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let shuffled_text: String = std::iter::once("timestamp,value\n".to_string()).chain(rows.iter().map(|(t, v)| format!("{t},{v}\n"))).collect();
        let opts = HistoryOptions { step: Some(60), max_gap: Some(180) };
        let dir = tempfile::tempdir().unwrap();
        let a = read_history(&[write(dir.path(), "a.csv", &sorted_text)], &opts).unwrap().0;
        let b = read_history(&[write(dir.path(), "a.csv", &shuffled_text)], &opts).unwrap().0;
        prop_assert_eq!(a[0].start, b[0].start);
        prop_assert_eq!(a[0].values.len(), b[0].values.len());
        for (x, y) in a[0].values.iter().zip(&b[0].values) {
            prop_assert!(x == y || (x.is_nan() && y.is_nan()));
        }
    }
}
