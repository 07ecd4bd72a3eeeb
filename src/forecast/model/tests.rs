//! Tests of training, forecasting, calibration and model-file validation.

use super::calibration::{grid_level, pit_of, CALIB_POINTS};
use super::*;
use std::sync::OnceLock;

pub(crate) fn daily_series(key: &str, days: usize, seed: u64) -> Series {
    // 5-minute load with a daily cycle, weekday effect and noise from a simple LCG.
    let mut s = seed
        .wrapping_mul(2862933555777941757)
        .wrapping_add(3037000493);
    let n = days * 288;
    let values = (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            let hour = (i % 288) as f64 / 12.0;
            100.0
                + 60.0
                    * (std::f64::consts::TAU * (hour - 6.0) / 24.0)
                        .sin()
                        .max(-0.5)
                + 20.0 * u
        })
        .collect();
    Series {
        key: SeriesKey::new(key),
        start: 1_704_067_200,
        step: 300,
        values,
    }
}

fn small_opts() -> TrainOptions {
    TrainOptions {
        n_trees: 20,
        max_depth: 8,
        ..TrainOptions::new(300, 900)
    }
}

#[test]
fn trains_forecasts_and_round_trips() {
    let s = daily_series("web", 10, 1);
    let m = Model::train(std::slice::from_ref(&s), &small_opts()).unwrap();
    assert_eq!(m.meta.series.len(), 1);
    assert!(m.meta.rows > 2500);
    assert_eq!(m.calibration.len(), CALIB_POINTS);
    let f = m.forecast_latest(&s.key, &s.values, s.start).unwrap();
    assert_eq!(f.at, s.timestamp(s.len() - 1));
    // The batched path gives the same forecasts, and None where there is no row.
    let cut = s.slice(0..s.len() - 5);
    let many = m.forecast_many(&[
        (s.key.clone(), s.values.clone(), s.start),
        (s.key.clone(), vec![f64::NAN; 3], 0),
        (cut.key.clone(), cut.values.clone(), cut.start),
    ]);
    let close = |a: &Forecast, b: &Forecast| {
        a.at == b.at
            && a.quantiles
                .iter()
                .zip(&b.quantiles)
                .all(|(x, y)| (x.1 - y.1).abs() < 1e-9)
    };
    assert!(close(many[0].as_ref().unwrap(), &f));
    assert!(many[1].is_none());
    let single = m.forecast_latest(&cut.key, &cut.values, cut.start).unwrap();
    assert!(close(many[2].as_ref().unwrap(), &single));
    let qs: Vec<f64> = f.quantiles.iter().map(|q| q.1).collect();
    assert!(qs.windows(2).all(|w| w[0] <= w[1]), "{qs:?}");
    assert!(qs[0] > 40.0 && qs[3] < 250.0, "{qs:?}");

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.model");
    m.save(&p).unwrap();
    let back = Model::load(&p).unwrap();
    assert_eq!(back.spec, m.spec);
    assert_eq!(back.forecast_latest(&s.key, &s.values, s.start), Some(f));
    // Its fingerprint survives the file; another model's differs.
    assert_eq!(back.fingerprint(), m.fingerprint());
    let other = Model::train(&[daily_series("web", 10, 2)], &small_opts()).unwrap();
    assert_ne!(other.fingerprint(), m.fingerprint());
}

#[test]
fn bad_files_get_clear_errors() {
    let s = daily_series("web", 3, 2);
    let m = Model::train(std::slice::from_ref(&s), &small_opts()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.model");
    m.save(&p).unwrap();
    let good = std::fs::read(&p).unwrap();
    let check = |bytes: &[u8], want: &str| {
        let q = dir.path().join("bad.model");
        std::fs::write(&q, bytes).unwrap();
        let e = Model::load(&q).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("bad.model"), "{e}");
    };
    check(b"hello world, not a model", "not a prescale model");
    check(&good[..good.len() / 2], "truncated");
    check(&good[..10], "truncated");
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    check(&flipped, "checksum");
    let mut newer = good.clone();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    check(&newer, &format!("version {}", FORMAT_VERSION + 1));
    let e = Model::load(&dir.path().join("missing.model"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.model"), "{e}");
}

#[test]
fn load_refuses_a_model_that_breaks_an_invariant() {
    let s = daily_series("web", 3, 4);
    let good = Model::train(std::slice::from_ref(&s), &small_opts()).unwrap();
    assert_eq!(good.calibration.len(), CALIB_POINTS);
    let dir = tempfile::tempdir().unwrap();
    type Break = fn(&mut Model);
    let cases: Vec<(&str, Break, &str)> = vec![
        // Found by fuzzing: a swapped calibration table made p95 < p90.
        (
            "swapped",
            |m| m.calibration.swap(89, 94),
            "calibration table is not increasing",
        ),
        (
            "flat",
            |m| m.calibration[50] = m.calibration[49],
            "calibration table is not increasing",
        ),
        ("above1", |m| m.calibration[98] = 1.5, "not in (0, 1)"),
        ("nan", |m| m.calibration[3] = f64::NAN, "not in (0, 1)"),
        ("short", |m| m.calibration.truncate(50), "50 points"),
        (
            "crossed",
            |m| m.quantiles = vec![0.9, 0.5],
            "quantile levels must be strictly increasing",
        ),
        ("level1", |m| m.quantiles = vec![0.5, 1.0], "not in (0, 1)"),
        ("nolevel", |m| m.quantiles.clear(), "quantile level"),
        ("step0", |m| m.spec.step = 0, "step"),
        ("window0", |m| m.spec.window = -5, "window"),
        ("roll0", |m| m.spec.rolling[1] = 0, "rolling window"),
        ("season0", |m| m.spec.season[0] = 0, "season"),
        ("level0", |m| m.spec.level_steps = 0, "level"),
        ("farlag", |m| m.spec.lags[5] = usize::MAX / 2, "lag"),
        (
            "features",
            |m| m.spec.lags.push(24),
            "forest takes 32 features, the feature spec makes 33",
        ),
    ];
    for (name, breaks, want) in cases {
        let mut m = good.clone();
        breaks(&mut m);
        // Saved through the normal path, so header and CRC are valid.
        let p = dir.path().join(format!("{name}.model"));
        m.save(&p).unwrap();
        let msg = match Model::load(&p) {
            Ok(_) => panic!("{name}: a broken model loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.contains(&format!("{name}.model")) && msg.contains(want),
            "{name}: {msg}"
        );
    }
    // The untouched model still loads.
    let p = dir.path().join("good.model");
    good.save(&p).unwrap();
    Model::load(&p).unwrap();
}

#[test]
fn save_replaces_only_a_model_or_nothing() {
    let m = &fuzz_base_model();
    let dir = tempfile::tempdir().unwrap();
    // Someone's history, a configuration, a short text: never replaced, left byte for byte.
    for (name, body) in [
        (
            "history.csv",
            &b"timestamp,value\n2024-01-01T00:00:00Z,1\n"[..],
        ),
        ("prescale.toml", &b"[run]\n"[..]),
        ("x", &b"PRESC"[..]),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        let e = m.save(&p).unwrap_err();
        assert!(matches!(e, ModelError::NotOurs { .. }), "{name}: {e}");
        assert!(e.to_string().contains(name), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), body, "{name} was changed");
    }
    // Nothing there, an empty file, or a model (even a damaged one) is replaced.
    let fresh = dir.path().join("new.model");
    m.save(&fresh).unwrap();
    m.save(&fresh).unwrap();
    let empty = dir.path().join("empty.model");
    std::fs::write(&empty, b"").unwrap();
    m.save(&empty).unwrap();
    let damaged = dir.path().join("damaged.model");
    std::fs::write(&damaged, b"PRESCALE\x02garbage").unwrap();
    m.save(&damaged).unwrap();
    for p in [&fresh, &empty, &damaged] {
        assert_eq!(Model::load(p).unwrap().fingerprint(), m.fingerprint());
    }
}

/// The model of [`fuzz_base`], decoded.
fn fuzz_base_model() -> Model {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.model");
    std::fs::write(&p, &fuzz_base().0).unwrap();
    Model::load(&p).unwrap()
}

/// A small trained model, its file bytes and a series to forecast, shared by the cases.
fn fuzz_base() -> &'static (Vec<u8>, Series) {
    static BASE: std::sync::OnceLock<(Vec<u8>, Series)> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let s = daily_series("web", 3, 5);
        let opts = TrainOptions {
            n_trees: 8,
            max_depth: 5,
            ..TrainOptions::new(300, 900)
        };
        let m = Model::train(std::slice::from_ref(&s), &opts).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.model");
        m.save(&p).unwrap();
        (std::fs::read(&p).unwrap(), s)
    })
}

/// `file` with its payload replaced and the header's length and CRC made to match.
fn reheadered(file: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = file[..12].to_vec();
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Mutated payloads that pass the CRC: load never panics, and either refuses, naming
    /// the file, or gives a model whose quantiles never cross.
    #[test]
    fn mutated_model_payloads_are_refused_or_forecast_in_order(
        edits in proptest::collection::vec(
            (proptest::prop_oneof![0usize..1_200, 0usize..usize::MAX], proptest::prelude::any::<u8>()),
            1..6,
        ),
        cut in proptest::option::of(0usize..usize::MAX),
    ) {
        let (file, s) = fuzz_base();
        let mut payload = file[24..].to_vec();
        for (at, byte) in edits {
            let i = at % payload.len();
            payload[i] = byte;
        }
        if let Some(c) = cut {
            payload.truncate(c % payload.len());
        }
        let bytes = reheadered(file, &payload);
        let path = std::path::Path::new("fuzzed.model");
        match Model::from_bytes(&bytes, path) {
            Err(e) => proptest::prop_assert!(e.to_string().contains("fuzzed.model"), "{}", e),
            Ok(m) => {
                let n = s.len();
                let mut fs: Vec<Forecast> = m
                    .forecast_range(&s.key, &s.values, s.start, n - 40..n)
                    .into_iter()
                    .map(|(_, f)| f)
                    .collect();
                fs.extend(m.forecast_latest(&s.key, &s.values, s.start));
                for f in fs {
                    let qs: Vec<f64> = f.quantiles.iter().map(|q| q.1).collect();
                    proptest::prop_assert!(
                        qs.windows(2).all(|w| w[0] <= w[1]),
                        "quantiles cross: {:?}", f.quantiles
                    );
                }
            }
        }
    }
}

#[test]
fn refuses_bad_options_and_too_little_data() {
    let s = daily_series("web", 3, 3);
    let mut o = small_opts();
    o.quantiles = vec![0.9, 0.5];
    assert!(Model::train(std::slice::from_ref(&s), &o)
        .unwrap_err()
        .to_string()
        .contains("increasing"));
    let o = TrainOptions::new(60, 900);
    assert!(Model::train(std::slice::from_ref(&s), &o)
        .unwrap_err()
        .to_string()
        .contains("300s step"));
    let tiny = s.slice(0..30);
    let e = Model::train(&[tiny], &small_opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not enough history"), "{e}");
}

#[test]
fn a_model_trains_from_exactly_the_history_needed_on() {
    // A long window at a fine step (15 min of 1 s samples, as the Azure LLM traces): the
    // calibration part could hold 20 rows while the first fit's part, which ends a window
    // before it, held none; that failed ("empty dataset") from a length that trained fine
    // until a longer one did again. Now every length from `history_needed` on trains (short
    // ones uncalibrated) and every shorter one is refused as too little history.
    let long = daily_series("llm", 11, 5);
    let fine = Series {
        step: 1,
        ..long.slice(0..3000)
    };
    let opts = TrainOptions {
        n_trees: 4,
        max_depth: 4,
        ..TrainOptions::new(1, 900)
    };
    let needed = opts.history_needed().unwrap();
    assert_eq!(needed, 50 + 900 + 13 - 1);
    for len in (needed - 60..3000).step_by(37).chain([needed - 1, needed]) {
        match Model::train(&[fine.slice(0..len)], &opts) {
            Ok(_) => assert!(len >= needed, "{len} < {needed} steps trained"),
            Err(ModelError::TooLittleData { .. }) => {
                assert!(len < needed, "{len} >= {needed} steps refused")
            }
            Err(e) => panic!("{len} steps: {e}"),
        }
    }
}

#[test]
fn calibration_table_maps_identity_when_calibrated() {
    let table: Vec<f64> = (0..CALIB_POINTS).map(grid_level).collect();
    for q in [0.05, 0.5, 0.9, 0.95, 0.99, 0.995] {
        assert!((calibrated_level(&table, q) - q).abs() < 1e-9, "{q}");
    }
    assert_eq!(calibrated_level(&[], 0.9), 0.9);
}

/// A wave, then idle days to the end of the history (the calibration rows): every held-out
/// target is 0 and the forest has it exactly, a rounding away. The PITs once took that
/// rounding for "above" or "below", and the table then read every level at one point; now
/// they tie, carry no spread, and no table is kept.
#[test]
fn a_flat_held_out_tail_keeps_no_calibration_table() {
    let mut s = daily_series("web", 10, 3);
    let n = s.values.len();
    for v in &mut s.values[n - 3 * 288..] {
        *v = 0.0;
    }
    let m = Model::train(std::slice::from_ref(&s), &small_opts()).unwrap();
    assert!(m.calibration.is_empty(), "{:?}", &m.calibration[..5]);
    // Ties, not a rounding either way.
    let grid = [0.25, 0.5, 0.75];
    let zero_ish = [1e-9_f64 as f32 as f64 * 0.5, 0.0, -1e-12];
    assert_eq!(pit_of(&zero_ish, &grid, 0.0), 0.5);
}

#[test]
fn pit_interpolates_between_grid_quantiles() {
    let grid = [0.25, 0.5, 0.75];
    let q = [1.0, 2.0, 3.0];
    assert!((pit_of(&q, &grid, 2.5) - 0.625).abs() < 1e-12);
    assert_eq!(pit_of(&q, &grid, 0.0), 0.125);
    assert_eq!(pit_of(&q, &grid, 9.0), 0.875);
    // A tie across the whole grid sits in the middle.
    assert_eq!(pit_of(&[1.0, 1.0, 1.0], &grid, 1.0), 0.5);
}

#[test]
fn format_1_files_load_as_recent_anchored_and_forecast_the_same() {
    // A version 1 payload is the model without its anchor, fields in the same order.
    #[derive(serde::Serialize)]
    struct V1<'a> {
        spec: &'a FeatureSpec,
        quantiles: &'a Vec<f64>,
        calibration: &'a Vec<f64>,
        forest: &'a QuantileForest,
        meta: &'a ModelMeta,
    }
    let s = daily_series("web", 3, 5);
    let opts = TrainOptions {
        anchor: Some(Anchor::Recent),
        ..small_opts()
    };
    let m = Model::train(std::slice::from_ref(&s), &opts).unwrap();
    let payload = postcard::to_stdvec(&V1 {
        spec: &m.spec,
        quantiles: &m.quantiles,
        calibration: &m.calibration,
        forest: &m.forest,
        meta: &m.meta,
    })
    .unwrap();
    let mut bytes = b"PRESCALE".to_vec();
    bytes.extend(1u32.to_le_bytes());
    bytes.extend((payload.len() as u64).to_le_bytes());
    bytes.extend(crc32fast::hash(&payload).to_le_bytes());
    bytes.extend(&payload);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("old.model");
    std::fs::write(&p, &bytes).unwrap();
    let back = Model::load(&p).unwrap();
    assert_eq!(back.anchor, AnchorChoice::fixed(Anchor::Recent));
    let f = m.forecast_latest(&s.key, &s.values, s.start);
    assert!(f.is_some());
    assert_eq!(back.forecast_latest(&s.key, &s.values, s.start), f);
    // A version 1 header on a version 2 payload fails to decode, naming file and version.
    let mut mixed = bytes[..24].to_vec();
    let v2 = postcard::to_stdvec(&m).unwrap();
    mixed[12..20].copy_from_slice(&(v2.len() as u64).to_le_bytes());
    mixed[20..24].copy_from_slice(&crc32fast::hash(&v2).to_le_bytes());
    mixed.extend(&v2);
    std::fs::write(&p, &mixed).unwrap();
    let e = Model::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("old.model") && e.contains("format version 1"),
        "{e}"
    );
}

#[test]
fn the_anchor_is_chosen_by_held_out_cost() {
    // Both candidates are fitted on the same rows and scored on the same held-out rows; the
    // lower loss wins, on a seasonal series and on a geometric random walk alike.
    let s = daily_series("noisy", 6, 7);
    let auto = TrainOptions {
        anchor: None,
        ..small_opts()
    };
    let m = Model::train(std::slice::from_ref(&s), &auto).unwrap();
    let losses = &m.anchor.held_out_cost;
    assert_eq!(losses.len(), 2, "{:?}", m.anchor);
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    let best = if losses[0] <= losses[1] {
        Anchor::Recent
    } else {
        Anchor::Zero
    };
    assert_eq!(m.anchor.anchor, best);
    // A geometric random walk with large steps: the recent peak is the best guess, and the
    // ratio to the hour's level varies widely.
    let mut v: f64 = 1000.0;
    let mut state = 11u64;
    let walk: Vec<f64> = (0..6 * 288)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v *= (((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.4).exp();
            v.clamp(1.0, 1e6)
        })
        .collect();
    let rw = Series {
        key: SeriesKey::new("walk"),
        values: walk,
        ..s.clone()
    };
    let m = Model::train(std::slice::from_ref(&rw), &auto).unwrap();
    let losses = &m.anchor.held_out_cost;
    assert_eq!(losses.len(), 2, "{:?}", m.anchor);
    assert_eq!(
        m.anchor.anchor,
        Anchor::ALL[usize::from(losses[1] < losses[0])]
    );
    // Fixed (zero is the default): no comparison made.
    let m = Model::train(std::slice::from_ref(&rw), &small_opts()).unwrap();
    assert_eq!(m.anchor, AnchorChoice::fixed(Anchor::Zero));
}

/// `forecast_latest` as it was before it read the newest row alone: `compute`'s last row.
fn forecast_by_compute(m: &Model, key: &SeriesKey, values: &[f64], start: i64) -> Option<Forecast> {
    let n = values.len();
    let rows = features::compute(&m.spec, values, start, n.saturating_sub(1)..n);
    if rows.is_empty() {
        return None;
    }
    let cal: Vec<f64> = m.quantiles.iter().map(|&q| m.calibrated_level(q)).collect();
    let mut out = vec![0.0; cal.len()];
    m.forest
        .predict_quantiles_row(rows.x.row(0).as_slice()?, &cal, &mut out);
    let at = start + (n as i64 - 1) * m.spec.step;
    let (level, base) = (rows.level[0], rows.base[0]);
    Some(m.labelled(key, at, out.into_iter().map(|v| m.to_units(v, level, base))))
}

fn shipped() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/web.model");
        Model::load(&p).expect("models/web.model loads")
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// `forecast_latest` (the own models' path) gives what `compute`'s last row gives, to the
    /// bit, on histories of any length with gaps anywhere (and none where `compute` has none).
    #[test]
    fn forecast_latest_is_computes_last_row_to_the_bit(
        values in proptest::collection::vec(
            proptest::prop_oneof![
                8 => 0.0f64..500.0,
                1 => proptest::prelude::Just(f64::NAN),
                1 => proptest::prelude::Just(0.0),
            ],
            0..2_400,
        ),
        clean_tail in 0usize..400,
        start in 1_600_000_000i64..1_800_000_000,
    ) {
        let mut values = values;
        values.iter_mut().rev().take(clean_tail).for_each(|v| if v.is_nan() { *v = 1.0 });
        let m = shipped();
        let start = start - start % m.spec.step;
        let key = SeriesKey::new("s");
        let bits = |f: Option<Forecast>| f.map(|f| {
            (f.at, f.quantiles.iter().map(|(l, v)| (l.to_bits(), v.to_bits())).collect::<Vec<_>>())
        });
        let got = m.forecast_latest(&key, &values, start);
        let want = forecast_by_compute(m, &key, &values, start);
        proptest::prop_assert_eq!(bits(got), bits(want));
    }
}
