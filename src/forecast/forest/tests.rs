use super::*;
use linfa::traits::Fit;
use linfa::traits::Predict;
use linfa::Dataset;
use linfa::ParamGuard;
use ndarray::Array1;
use ndarray::Array2;
use proptest::prelude::{
    any, prop_assert, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig, Strategy,
};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

fn uniform(rng: &mut ChaCha8Rng, n: usize, p: usize, lo: f64, hi: f64) -> Array2<f64> {
    Array2::from_shape_fn((n, p), |_| rng.gen_range(lo..hi))
}

fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller; avoids pulling in rand_distr for tests.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn r2(y: &Array1<f64>, pred: &Array1<f64>) -> f64 {
    let mean = y.mean().unwrap_or(0.0);
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
    let ss_tot: f64 = y.iter().map(|a| (a - mean).powi(2)).sum();
    1.0 - ss_res / ss_tot
}

fn smooth_data(n: usize, seed: u64) -> (Array2<f64>, Array1<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = uniform(&mut rng, n, 4, -3.0, 3.0);
    let y = x
        .rows()
        .into_iter()
        .map(|r| (r[0]).sin() * 3.0 + r[1] * r[1])
        .collect();
    (x, y)
}

fn small_params() -> ForestParams {
    QuantileForest::params().n_trees(24).max_features(3)
}

fn small_model() -> &'static QuantileForest {
    static M: OnceLock<QuantileForest> = OnceLock::new();
    M.get_or_init(|| {
        let (x, y) = smooth_data(2000, 1);
        small_params()
            .fit(&Dataset::new(x, y))
            .expect("fit small model")
    })
}

#[test]
fn fits_known_function() {
    let (x, y) = smooth_data(4000, 2);
    let (xt, yt) = smooth_data(1000, 3);
    let model = small_params().fit(&Dataset::new(x, y)).unwrap();
    let pred = model.predict(&xt);
    let score = r2(&yt, &pred);
    assert!(score > 0.9, "R² {score}");
    // Batch mean and per-row mean agree exactly (same summation order).
    let row = xt.row(7).to_vec();
    assert_eq!(pred[7], model.predict_mean_row(&row));
    // x0 and x1 carry all the signal.
    let imp = model.feature_importances();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(imp[0] + imp[1] > 0.9, "importances {imp:?}");
}

#[test]
fn quantile_coverage_close_to_nominal() {
    // y = 2 x0 + N(0, (0.2 + 0.8 x1)^2): heteroscedastic, the forest has to localise sd.
    let make = |n: usize, seed: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = uniform(&mut rng, n, 3, 0.0, 1.0);
        let y: Array1<f64> = x
            .rows()
            .into_iter()
            .map(|r| 2.0 * r[0] + (0.2 + 0.8 * r[1]) * gauss(&mut rng))
            .collect();
        (x, y)
    };
    let (x, y) = make(8000, 10);
    let (xt, yt) = make(3000, 11);
    let model = QuantileForest::params()
        .n_trees(40)
        .max_features(3)
        .min_samples_leaf(10)
        .fit(&Dataset::new(x, y))
        .unwrap();
    let q = model.predict_quantiles(xt.view(), &[0.1, 0.5, 0.9]);
    let frac = |c: usize| {
        yt.iter().zip(q.column(c)).filter(|(y, p)| *y <= *p).count() as f64 / yt.len() as f64
    };
    let (c10, c50, c90) = (frac(0), frac(1), frac(2));
    assert!((c90 - 0.9).abs() < 0.04, "p90 coverage {c90}");
    assert!((c50 - 0.5).abs() < 0.04, "p50 coverage {c50}");
    assert!((c10 - 0.1).abs() < 0.04, "p10 coverage {c10}");
    // The band must actually follow the noise level, not just be globally calibrated.
    let width = |x1: f64| {
        let q = model.predict_quantiles(ndarray::arr2(&[[0.5, x1, 0.5]]).view(), &[0.1, 0.9]);
        q[[0, 1]] - q[[0, 0]]
    };
    assert!(
        width(0.9) > 2.0 * width(0.1),
        "band ignores heteroscedasticity"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn quantiles_are_ordered(
        row in proptest::collection::vec(-5.0f64..5.0, 4),
        mut qs in proptest::collection::vec(-0.5f64..1.5, 1..8),
    ) {
        let m = small_model();
        qs.sort_by(f64::total_cmp);
        let mut out = vec![0.0; qs.len()];
        m.predict_quantiles_row(&row, &qs, &mut out);
        for w in out.windows(2) {
            prop_assert!(w[0] <= w[1], "{:?} for {:?}", out, qs);
        }
        // Out-of-range q clamps to the extremes.
        let mut ext = [0.0; 4];
        m.predict_quantiles_row(&row, &[-1.0, 0.0, 1.0, 2.0], &mut ext);
        prop_assert_eq!(ext[0], ext[1]);
        prop_assert_eq!(ext[2], ext[3]);
        prop_assert!(out.iter().all(|v| *v >= ext[0] && *v <= ext[3]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// The batched path (tree-outer walk over blocks of rows) gives the per-row path's
    /// quantiles to the bit, across block and lane boundaries, NaN features included.
    #[test]
    fn block_prediction_equals_row_by_row(
        seed in 0u64..1_000,
        rows in 1usize..600,
        nan_every in 0usize..50,
        qs in proptest::collection::vec(-0.2f64..1.2, 0..6),
    ) {
        let m = small_model();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = uniform(&mut rng, rows, 4, -4.0, 4.0);
        if nan_every > 0 {
            x.iter_mut().step_by(nan_every).for_each(|v| *v = f64::NAN);
        }
        let flat = x.as_slice().unwrap();
        let mut block = vec![0.0; rows * qs.len()];
        m.predict_quantiles_block(flat, &qs, &mut block);
        let batch = m.predict_quantiles(x.view(), &qs);
        for r in 0..rows {
            let mut one = vec![0.0; qs.len()];
            m.predict_quantiles_row(&flat[r * 4..(r + 1) * 4], &qs, &mut one);
            for (k, v) in one.iter().enumerate() {
                prop_assert_eq!(v.to_bits(), block[r * qs.len() + k].to_bits(), "row {} q {}", r, k);
                prop_assert_eq!(v.to_bits(), batch[[r, k]].to_bits(), "row {} q {}", r, k);
            }
        }
    }
}

/// A forest whose every leaf holds the same value: all atoms of a row fall on one grid
/// position, one bucket, every centre a tie.
fn flat_model() -> &'static QuantileForest {
    static M: OnceLock<QuantileForest> = OnceLock::new();
    M.get_or_init(|| {
        let (x, _) = smooth_data(300, 5);
        let y = Array1::from_elem(300, 7.0);
        small_params()
            .fit(&Dataset::new(x, y))
            .expect("fit flat model")
    })
}

/// A forest with up to 40 atoms per leaf, down to single-row leaves: leaves of one, two and
/// three lanes' chunks, and atoms of many different weights in one row.
fn wide_model() -> &'static QuantileForest {
    static M: OnceLock<QuantileForest> = OnceLock::new();
    M.get_or_init(|| {
        let (x, y) = smooth_data(1500, 9);
        small_params()
            .leaf_quantiles(40)
            .min_samples_leaf(1)
            .fit(&Dataset::new(x, y))
            .expect("fit wide model")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// The merge that sorts only the buckets the levels fall in gives the full sort's answers
    /// to the bit: at any level (out of range, NaN, on a centre, repeated), on rows of any
    /// spread, when every atom ties, and with leaves of many atom counts (several lanes'
    /// chunks per leaf).
    #[test]
    fn selective_merge_equals_full_sort(
        row in proptest::collection::vec(-4.0f64..4.0, 4),
        mut qs in proptest::collection::vec(prop_oneof![
            -0.5f64..1.5,
            Just(0.0), Just(1.0), Just(0.5), Just(f64::NAN),
            (0u32..=48).prop_map(|k| f64::from(k) / 48.0),
        ], 0..10),
        which in 0u8..3,
    ) {
        let m = match which {
            0 => small_model(),
            1 => flat_model(),
            _ => wide_model(),
        };
        qs.push(0.9);
        let leaves = m.leaves_of(&row);
        let mut fast = vec![0.0; qs.len()];
        m.predict_quantiles_row(&row, &qs, &mut fast);
        let mut full = vec![0.0; qs.len()];
        super::merge::merge_sorted(
            &m.trees,
            m.y_offset,
            &leaves,
            &qs,
            &mut full,
            &mut Default::default(),
        );
        for (k, (a, b)) in fast.iter().zip(&full).enumerate() {
            prop_assert_eq!(a.to_bits(), b.to_bits(), "q {} = {}: {} vs {}", k, qs[k], a, b);
        }
    }
}

/// The shipped model's forest (`models/web.model`: 100 trees, up to 16 atoms per leaf).
fn shipped_forest() -> &'static QuantileForest {
    static M: OnceLock<QuantileForest> = OnceLock::new();
    M.get_or_init(|| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/web.model");
        crate::forecast::Model::load(&p)
            .expect("models/web.model loads")
            .forest
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The same on the forest the live loop runs, at its own levels and around them.
    #[test]
    fn selective_merge_equals_full_sort_on_the_shipped_model(
        seed in any::<u64>(),
        spread in prop_oneof![Just(1.0f64), Just(3.0), Just(50.0)],
        mut qs in proptest::collection::vec(0.0f64..1.0, 0..4),
    ) {
        let m = shipped_forest();
        qs.extend([0.5, 0.9, 0.95, 0.99]);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..8 {
            let row: Vec<f64> = (0..m.n_features()).map(|_| rng.gen_range(-spread..spread)).collect();
            let leaves = m.leaves_of(&row);
            let mut fast = vec![0.0; qs.len()];
            m.predict_quantiles_row(&row, &qs, &mut fast);
            let mut full = vec![0.0; qs.len()];
            super::merge::merge_sorted(&m.trees, m.y_offset, &leaves, &qs, &mut full, &mut Default::default());
            for (k, (a, b)) in fast.iter().zip(&full).enumerate() {
                prop_assert_eq!(a.to_bits(), b.to_bits(), "q {} = {}: {} vs {}", k, qs[k], a, b);
            }
        }
    }
}

#[test]
fn deterministic_across_runs_and_thread_counts() {
    let (x, y) = smooth_data(1500, 4);
    let ds = Dataset::new(x.clone(), y);
    let params = small_params().n_trees(8).seed(42);
    let fit_in = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| params.fit(&ds).unwrap())
    };
    let a = fit_in(1);
    let b = fit_in(2);
    let c = params.fit(&ds).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    let qa = a.predict_quantiles(x.view(), &[0.1, 0.5, 0.9]);
    let qb = b.predict_quantiles(x.view(), &[0.1, 0.5, 0.9]);
    assert_eq!(qa, qb);
    let d = small_params().n_trees(8).seed(43).fit(&ds).unwrap();
    assert_ne!(a.predict(&x), d.predict(&x));
}

#[test]
fn invalid_params_name_the_parameter() {
    let cases: Vec<(ForestParams, &str)> = vec![
        (QuantileForest::params().n_trees(0), "n_trees"),
        // Once a capacity-overflow abort (usize::MAX) or days of growing memory (1e8).
        (
            QuantileForest::params().n_trees(super::params::MAX_TREES + 1),
            "n_trees",
        ),
        (QuantileForest::params().n_trees(usize::MAX), "n_trees"),
        (QuantileForest::params().max_features(0), "max_features"),
        (
            QuantileForest::params().min_samples_leaf(0),
            "min_samples_leaf",
        ),
        (QuantileForest::params().max_bins(257), "max_bins"),
        (QuantileForest::params().max_bins(1), "max_bins"),
        (QuantileForest::params().leaf_quantiles(0), "leaf_quantiles"),
        (QuantileForest::params().max_depth(0), "max_depth"),
        (
            QuantileForest::params().sample_fraction(0.0),
            "sample_fraction",
        ),
        (
            QuantileForest::params().sample_fraction(f64::NAN),
            "sample_fraction",
        ),
    ];
    for (p, name) in cases {
        match p.check_ref() {
            Err(e @ ForestError::InvalidParameter { name: n, .. }) => {
                assert_eq!(n, name);
                assert!(e.to_string().contains(name));
            }
            other => panic!("{name}: expected error, got {other:?}"),
        }
    }
    assert!(QuantileForest::params().check().is_ok());
    // Fitting through the unchecked params reports the same error.
    let (x, y) = smooth_data(50, 5);
    let err = QuantileForest::params()
        .n_trees(0)
        .fit(&Dataset::new(x, y))
        .unwrap_err();
    assert!(matches!(
        err,
        ForestError::InvalidParameter {
            name: "n_trees",
            ..
        }
    ));
}

#[test]
fn bad_inputs_are_errors() {
    let (mut x, mut y) = smooth_data(100, 6);
    x[[17, 2]] = f64::NAN;
    let err = small_params()
        .fit(&Dataset::new(x.clone(), y.clone()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ForestError::NonFiniteFeature {
                row: 17,
                column: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("row 17") && err.to_string().contains("column 2"));
    x[[17, 2]] = 0.0;
    y[33] = f64::INFINITY;
    let err = small_params()
        .fit(&Dataset::new(x.clone(), y.clone()))
        .unwrap_err();
    assert!(matches!(err, ForestError::NonFiniteTarget { row: 33, .. }));
    // Finite, but spread wider than a leaf's f32 holds: refused, not stored as infinities
    // that prediction would read as NaN (and panic on).
    y[33] = 4e38;
    let err = small_params()
        .fit(&Dataset::new(x.clone(), y.clone()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ForestError::InvalidParameter {
                name: "targets",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("row 33"), "{err}");
    y[33] = 0.0;
    drop((x, y));

    let empty = Dataset::new(Array2::<f64>::zeros((0, 3)), Array1::<f64>::zeros(0));
    assert!(matches!(
        small_params().fit(&empty).unwrap_err(),
        ForestError::EmptyDataset { rows: 0, .. }
    ));
    let no_features = Dataset::new(Array2::<f64>::zeros((5, 0)), Array1::<f64>::zeros(5));
    assert!(matches!(
        small_params().fit(&no_features).unwrap_err(),
        ForestError::EmptyDataset { features: 0, .. }
    ));

    let m = small_model();
    let wrong = Array2::<f64>::zeros((3, 5));
    assert_eq!(
        m.try_predict_quantiles(wrong.view(), &[0.5]).unwrap_err(),
        ForestError::FeatureCount {
            expected: 4,
            found: 5
        }
    );
    assert!(m.try_predict_mean(wrong.view()).is_err());
}

#[test]
fn tiny_and_degenerate_datasets_fit() {
    // One row, constant targets and constant features must not panic.
    let one = Dataset::new(ndarray::arr2(&[[1.0, 2.0]]), ndarray::arr1(&[3.0]));
    // The progress bar path must work (indicatif hides itself when stderr is no tty).
    let m = small_params().show_progress(true).fit(&one).unwrap();
    assert_eq!(m.predict_mean_row(&[0.0, 0.0]), 3.0);
    let mut out = [0.0; 2];
    m.predict_quantiles_row(&[0.0, 0.0], &[0.1, 0.9], &mut out);
    assert_eq!(out, [3.0, 3.0]);
    let constant = Dataset::new(Array2::<f64>::ones((50, 3)), Array1::from_elem(50, 1.5));
    let m = small_params().fit(&constant).unwrap();
    assert_eq!(m.predict_mean_row(&[1.0, 1.0, 1.0]), 1.5);
    assert_eq!(m.feature_importances(), vec![0.0; 3]);
    // Huge offset, tiny signal: centring must keep the split search meaningful.
    let (x, y) = smooth_data(1000, 8);
    let shifted = y.mapv(|v| 1e9 + v);
    let m = small_params()
        .fit(&Dataset::new(x.clone(), shifted))
        .unwrap();
    let pred = m.predict(&x).mapv(|v| v - 1e9);
    assert!(r2(&y, &pred) > 0.8);
}

#[test]
fn serde_round_trip_is_exact() {
    let m = small_model();
    let bytes = postcard::to_stdvec(m).unwrap();
    let back: QuantileForest = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(&back, m);
    let (x, _) = smooth_data(200, 9);
    assert_eq!(back.predict(&x), m.predict(&x));
    assert_eq!(
        back.predict_quantiles(x.view(), &[0.05, 0.5, 0.95]),
        m.predict_quantiles(x.view(), &[0.05, 0.5, 0.95])
    );
    // Corrupt or truncated bytes are errors, never panics or hangs.
    assert!(postcard::from_bytes::<QuantileForest>(&bytes[..bytes.len() / 2]).is_err());
    let mut bad = m.clone();
    bad.trees[0].nodes[0].right = 0;
    let bytes = postcard::to_stdvec(&bad).unwrap();
    assert!(postcard::from_bytes::<QuantileForest>(&bytes).is_err());
    let mut bad = m.clone();
    bad.trees[0].leaves.truncate(3);
    let bytes = postcard::to_stdvec(&bad).unwrap();
    assert!(postcard::from_bytes::<QuantileForest>(&bytes).is_err());
}

#[test]
fn non_contiguous_input_matches_contiguous() {
    let m = small_model();
    let (x, _) = smooth_data(100, 12);
    let xf = x.t().as_standard_layout().t().to_owned(); // column-major copy
    assert_eq!(m.predict(&x), m.predict(&xf));
    assert_eq!(
        m.predict_quantiles(x.view(), &[0.3]),
        m.predict_quantiles(xf.view(), &[0.3])
    );
}

/// Fitting on listed rows of a table is fitting on a copy of those rows: the same forest, bit
/// for bit (more rows than the binning samples, so the sampled edges are checked too). A row
/// past the table is an error, not a panic.
#[test]
fn fitting_on_listed_rows_equals_fitting_on_their_copy() {
    let (x, y) = smooth_data(70_000, 13);
    let rows: Vec<usize> = (0..x.nrows()).filter(|r| r % 7 != 3).rev().collect();
    let copy = x.select(ndarray::Axis(0), &rows);
    let ys: Array1<f64> = rows.iter().map(|&r| y[r]).collect();
    let params = QuantileForest::params().n_trees(4).max_features(3);
    let a = params.fit(&Dataset::new(copy, ys.clone())).unwrap();
    let b = params
        .check_ref()
        .unwrap()
        .fit_rows(x.view(), &rows, ys.view())
        .unwrap();
    assert_eq!(
        postcard::to_stdvec(&a).unwrap(),
        postcard::to_stdvec(&b).unwrap()
    );
    let e = params
        .check_ref()
        .unwrap()
        .fit_rows(x.view(), &[0, 70_000], ys.slice(ndarray::s![..2]))
        .unwrap_err();
    assert!(
        e.to_string().contains("row 70000 of a table of 70000"),
        "{e}"
    );
}
