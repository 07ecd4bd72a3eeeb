//! How much history a workload needs before a model trained on its own history forecasts
//! better than the global model (`run.own_model_after`, see the README's "Cold start").
//!
//! For every trace (resampled to 5 minutes; traces under 4 days are skipped) and each of two
//! held-out periods (its last two days, and the two days before those), for each history
//! length `h` the `h` days before the held-out period train an *own*
//! model (the default [`TrainOptions`], exactly what the live loop trains), and both it and a
//! *global* model forecast the held-out days from the same `h` days of context. The global
//! model of a trace is trained on the other half of the traces (two folds by file order), so no
//! trace is scored by a model that saw it. The score is the pinball loss at p90, the
//! Retrainer's rule; the table prints own / global per trace and length (< 1: own wins).
//!
//! A second table measures the widening rule of the `global` stage: the global model's p90
//! coverage when a workload has only `c` of history at the forecast origin (the features then
//! see nothing older), and the margin on its p90 that would have covered 90 % of peaks.
//!
//! ```text
//! nice -n 10 cargo run --example cold_start -- ../shared/data/traces   # about a minute (debug)
//! ```

use prescale::forecast::{backtest, Model, OnlineConfig, TrainOptions};
use prescale::series::{csv_files, read_history, HistoryOptions, Series};
use std::path::PathBuf;
use std::time::Instant;

const STEP: i64 = 300;
const WINDOW: i64 = 900;
const DAY: usize = 288;
const EVAL_DAYS: usize = 2;
/// History lengths tried, in hours.
const HOURS: [usize; 8] = [12, 24, 48, 72, 96, 120, 168, 240];
/// Context lengths for the coverage table, in hours (the last: more than the weekly season).
const CONTEXT_HOURS: [usize; 9] = [2, 6, 12, 24, 48, 72, 96, 168, 192];

fn p90(model: &Model, series: &Series, holdout: f64) -> f64 {
    // The model's own quality by history length: without the online correction on top.
    let r = backtest::run(
        model,
        std::slice::from_ref(series),
        holdout,
        "",
        &OnlineConfig::off(),
    );
    r.overall
        .model
        .pinball
        .iter()
        .find(|p| (p.0 - 0.9).abs() < 1e-9)
        .map_or(f64::NAN, |p| p.1)
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/data/traces".into()),
    );
    let mut traces: Vec<Series> = Vec::new();
    for f in csv_files(&dir).expect("read the traces directory") {
        let opts = HistoryOptions {
            step: Some(STEP),
            max_gap: None,
        };
        match read_history(std::slice::from_ref(&f), &opts) {
            Ok((series, _)) => {
                for s in series {
                    if s.len() >= (EVAL_DAYS + 2) * DAY {
                        traces.push(s);
                    } else {
                        eprintln!("skipped {}: {} steps", s.key, s.len());
                    }
                }
            }
            Err(e) => eprintln!("skipped {}: {e}", f.display()),
        }
    }
    traces.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    let opts = TrainOptions::new(STEP, WINDOW);
    let t0 = Instant::now();
    let globals: Vec<Model> = (0..2)
        .map(|fold| {
            let train: Vec<Series> = traces
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 != fold)
                .map(|(_, s)| s.clone())
                .collect();
            Model::train(&train, &opts).expect("train a global model")
        })
        .collect();
    eprintln!(
        "global models trained in {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    print!("{:<42}", "trace (own/global p90 pinball)");
    for h in HOURS {
        print!(" {:>6}", format!("{h}h"));
    }
    println!();
    let mut wins = vec![(0usize, 0usize, Vec::new()); HOURS.len()];
    let mut train_secs = vec![Vec::new(); HOURS.len()];
    let cases = traces
        .iter()
        .enumerate()
        .flat_map(|(i, s)| [0, EVAL_DAYS].map(|back| (i, s, back)));
    for (i, s, back) in cases {
        let global = &globals[i % 2];
        let Some(end) = s.len().checked_sub(back * DAY) else {
            continue;
        };
        let Some(eval_start) = end.checked_sub(EVAL_DAYS * DAY) else {
            continue;
        };
        print!("{:<42}", format!("{} -{back}d", s.key.as_str()));
        for (k, &h) in HOURS.iter().enumerate() {
            let steps = h * DAY / 24;
            if steps > eval_start {
                print!(" {:>6}", "-");
                continue;
            }
            let hist = s.slice(eval_start - steps..eval_start);
            let whole = s.slice(eval_start - steps..end);
            let holdout = (EVAL_DAYS * DAY) as f64 / whole.len() as f64;
            let t = Instant::now();
            let own = match Model::train(std::slice::from_ref(&hist), &opts) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("{} at {h}h: {e}", s.key);
                    print!(" {:>6}", "err");
                    continue;
                }
            };
            train_secs[k].push(t.elapsed().as_secs_f64());
            let (o, g) = (p90(&own, &whole, holdout), p90(global, &whole, holdout));
            let ratio = o / g;
            if ratio.is_finite() {
                wins[k].1 += 1;
                wins[k].0 += usize::from(ratio < 1.0);
                wins[k].2.push(ratio);
            }
            print!(" {ratio:>6.3}");
        }
        println!();
    }
    print!("{:<42}", "own wins / cases");
    for w in &wins {
        print!(" {:>6}", format!("{}/{}", w.0, w.1));
    }
    println!();
    print!("{:<42}", "median own/global");
    for w in &mut wins {
        w.2.sort_by(f64::total_cmp);
        let m = w.2.get(w.2.len() / 2).copied().unwrap_or(f64::NAN);
        print!(" {m:>6.3}");
    }
    println!();
    print!("{:<42}", "mean own training time (s)");
    for t in &train_secs {
        print!(" {:>6.2}", t.iter().sum::<f64>() / t.len().max(1) as f64);
    }
    println!();
    coverage_by_context(&traces, &globals);
}

/// The global models' p90 coverage and the margin that covers 90 % of peaks, by how much
/// history the series had at each forecast origin (every 6th step of the last two days).
fn coverage_by_context(traces: &[Series], globals: &[Model]) {
    println!();
    println!(
        "{:<10} {:>8} {:>10} {:>8}",
        "context", "origins", "p90 cover", "m90"
    );
    let mut reference = f64::NAN;
    for c in CONTEXT_HOURS.iter().rev() {
        let steps = c * DAY / 24;
        let mut ratios = Vec::new();
        for (i, s) in traces.iter().enumerate() {
            let model = &globals[i % 2];
            let h = model.spec.horizon();
            let end = s.len();
            for t in (end - EVAL_DAYS * DAY..end - h).step_by(6) {
                let Some(lo) = (t + 1).checked_sub(steps) else {
                    continue;
                };
                let ctx = &s.values[lo..=t];
                let Some(f) = model.forecast_latest(&s.key, ctx, s.timestamp(lo)) else {
                    continue;
                };
                let actual = s.values[t + 1..=t + h]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max);
                match f.quantile(0.9) {
                    Some(q) if q > 0.0 && actual.is_finite() => ratios.push(actual / q),
                    _ => {}
                }
            }
        }
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        let covered = ratios.iter().filter(|r| **r <= 1.0).count() as f64 / n.max(1) as f64;
        let m90 = ratios.get(n * 9 / 10).copied().unwrap_or(f64::NAN);
        if reference.is_nan() {
            reference = m90;
        }
        println!(
            "{:<10} {n:>8} {covered:>10.3} {m90:>8.3}  (x{:.3} of the longest context's)",
            format!("{c}h"),
            m90 / reference
        );
    }
}
