//! Criterion benches for the quantile forest on a 200k × 24 synthetic regression problem.
//!
//! The full 100-tree fit is timed once (it is also the model the prediction benches use) and
//! printed with held-out R² and the postcard size; the criterion `fit` bench uses 10 trees
//! unless `FOREST_BENCH_FULL=1`, so `cargo bench` stays short. The data set is written to
//! `target/forest_bench_data.csv` for `benches/sklearn_compare.py`.

use std::hint::black_box;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use linfa::traits::{Fit, Predict};
use linfa::Dataset;
use ndarray::{Array1, Array2};
use prescale::forecast::{ForestParams, QuantileForest};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N_TRAIN: usize = 200_000;
const N_TEST: usize = 20_000;
const N_FEAT: usize = 24;

struct Data {
    x: Array2<f64>,
    y: Array1<f64>,
    xt: Array2<f64>,
    yt: Array1<f64>,
}

struct Fixture {
    data: Data,
    model: QuantileForest,
}

/// Friedman-#1-like signal plus interactions, correlated copies of informative features,
/// pure-noise features, and Gaussian noise whose sd grows with x11 (heteroscedastic).
fn generate(n: usize, seed: u64) -> (Array2<f64>, Array1<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::<f64>::zeros((n, N_FEAT));
    let mut y = Array1::<f64>::zeros(n);
    let pi = std::f64::consts::PI;
    for i in 0..n {
        let mut r = [0.0f64; N_FEAT];
        for v in r.iter_mut() {
            *v = rng.gen::<f64>();
        }
        for j in 0..4 {
            r[12 + j] = 0.6 * r[j] + 0.4 * r[12 + j];
        }
        let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = rng.gen();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * pi * u2).cos();
        let f = 10.0 * (pi * r[0] * r[1]).sin()
            + 20.0 * (r[2] - 0.5).powi(2)
            + 10.0 * r[3]
            + 5.0 * r[4]
            + 4.0 * r[5] * r[6]
            + if r[7] > 0.5 { 3.0 * r[8] } else { 0.0 }
            + 2.0 * (2.0 * pi * r[9]).sin() * r[10];
        y[i] = f + (0.5 + 1.5 * r[11]) * z;
        x.row_mut(i).assign(&ndarray::aview1(&r));
    }
    (x, y)
}

fn bench_params() -> ForestParams {
    QuantileForest::params()
        .n_trees(100)
        .max_depth(12)
        .min_samples_leaf(5)
        .max_features(8)
        .bootstrap(true)
        .seed(7)
}

fn r2(y: &Array1<f64>, p: &Array1<f64>) -> f64 {
    let m = y.mean().unwrap_or(0.0);
    let res: f64 = y.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum();
    let tot: f64 = y.iter().map(|a| (a - m).powi(2)).sum();
    1.0 - res / tot
}

fn dump_csv(d: &Data) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/forest_bench_data.csv");
    if std::path::Path::new(path).exists() {
        return;
    }
    let write = || -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        write!(w, "test,y")?;
        for j in 0..N_FEAT {
            write!(w, ",x{j}")?;
        }
        writeln!(w)?;
        for (flag, x, y) in [(0, &d.x, &d.y), (1, &d.xt, &d.yt)] {
            for (row, yv) in x.rows().into_iter().zip(y) {
                // `{}` prints the shortest round-tripping decimal, so Python reads the same f64.
                write!(w, "{flag},{yv}")?;
                for v in row {
                    write!(w, ",{v}")?;
                }
                writeln!(w)?;
            }
        }
        w.flush()
    };
    if let Err(e) = write() {
        eprintln!("could not write {path}: {e}");
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (x, y) = generate(N_TRAIN, 1);
        let (xt, yt) = generate(N_TEST, 2);
        let data = Data { x, y, xt, yt };
        dump_csv(&data);
        let ds = Dataset::new(data.x.clone(), data.y.clone());
        let t0 = Instant::now();
        let model = bench_params().fit(&ds).expect("fit");
        let fit_s = t0.elapsed().as_secs_f64();
        let pred = model.predict(&data.xt);
        let bytes = postcard::to_stdvec(&model).expect("serialize");
        let q = model.predict_quantiles(data.xt.view(), &[0.1, 0.5, 0.9]);
        let cover = |c: usize| {
            data.yt
                .iter()
                .zip(q.column(c))
                .filter(|(y, p)| *y <= *p)
                .count() as f64
                / N_TEST as f64
        };
        println!(
            "[forest] {N_TRAIN}x{N_FEAT}, 100 trees depth 12 min_leaf 5 mtry 8 bootstrap: \
             fit {fit_s:.2} s on {} threads, test R² {:.4}, postcard size {:.2} MB, \
             coverage p10/p50/p90 {:.3}/{:.3}/{:.3}",
            rayon::current_num_threads(),
            r2(&data.yt, &pred),
            bytes.len() as f64 / 1e6,
            cover(0),
            cover(1),
            cover(2),
        );
        Fixture { data, model }
    })
}

fn bench_fit(c: &mut Criterion) {
    let f = fixture();
    let full = std::env::var("FOREST_BENCH_FULL").is_ok_and(|v| v == "1");
    let trees = if full { 100 } else { 10 };
    let ds = Dataset::new(f.data.x.clone(), f.data.y.clone());
    let params = bench_params().n_trees(trees);
    c.bench_function(&format!("fit/200k_x24_{trees}trees"), |b| {
        b.iter(|| black_box(params.fit(&ds).expect("fit")))
    });
}

fn bench_predict(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("predict");
    g.throughput(Throughput::Elements(N_TEST as u64));
    g.bench_function("mean_batch_20k_rows", |b| {
        b.iter(|| black_box(f.model.predict(&f.data.xt)))
    });
    let xq = f.data.xt.slice(ndarray::s![..2000, ..]);
    g.throughput(Throughput::Elements(2000));
    g.bench_function("quantiles_batch_2k_rows_p10_p50_p90", |b| {
        b.iter(|| black_box(f.model.predict_quantiles(xq, &[0.1, 0.5, 0.9])))
    });
    g.throughput(Throughput::Elements(1));
    let rows: Vec<Vec<f64>> = f.data.xt.rows().into_iter().map(|r| r.to_vec()).collect();
    let mut i = 0usize;
    g.bench_function("mean_row", |b| {
        b.iter(|| {
            i = (i + 1) % rows.len();
            black_box(f.model.predict_mean_row(&rows[i]))
        })
    });
    let mut out = [0.0f64; 2];
    g.bench_function("quantiles_row_p50_p90", |b| {
        b.iter(|| {
            i = (i + 1) % rows.len();
            f.model
                .predict_quantiles_row(&rows[i], &[0.5, 0.9], &mut out);
            black_box(out)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = bench_predict, bench_fit
}
criterion_main!(benches);
