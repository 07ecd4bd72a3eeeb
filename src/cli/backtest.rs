//! `prescale backtest`: scores a model (given or trained on each series' head) on the held-out
//! tail against baselines, and writes the report.

use super::{read, ForestArgs, HistoryArgs, OnlineArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use prescale::forecast::backtest::{self, holdout_start};
use prescale::forecast::Model;
use prescale::series::Series;
use std::path::PathBuf;

/// `prescale backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    history: HistoryArgs,
    /// A trained model to score; without it, a model is trained on the head of each series
    /// with the same defaults as `train` and scored on the tail.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Share of each series held out and scored.
    #[arg(long, default_value_t = 0.3)]
    holdout: f64,
    /// Directory for report.json and the charts.
    #[arg(long, value_name = "DIR")]
    report: PathBuf,
    /// Also write every scored forecast as CSV (timestamp,p50,p90,p95,p99).
    #[arg(long, value_name = "FILE")]
    forecasts_csv: Option<PathBuf>,
    /// Scored with the live loop's online calibration unless `--no-online-calibration`.
    #[command(flatten)]
    online: OnlineArgs,
    #[command(flatten)]
    forest: ForestArgs,
}

/// Runs `prescale backtest`.
pub(crate) fn run(a: BacktestArgs) -> Result<()> {
    if !(0.0 < a.holdout && a.holdout < 1.0) {
        bail!(
            "--holdout must be between 0 and 1 (exclusive), got {}",
            a.holdout
        );
    }
    let online = a.online.config()?;
    let (model, name, series) = match &a.model {
        Some(path) => {
            let model = Model::load(path)?;
            let series = read(&a.history, Some(model.spec.step))?;
            (model, path.display().to_string(), series)
        }
        None => {
            let series = read(&a.history, None)?;
            let step = series[0].step;
            let heads: Vec<Series> = series
                .iter()
                .map(|s| s.slice(0..holdout_start(s.len(), a.holdout)))
                .collect();
            let heads = a.forest.within_memory(heads)?;
            let model = Model::train(&heads, &a.forest.options(step)).context(
                "training on the history before the held-out tail (pass --model to score a trained model)",
            )?;
            let name = format!(
                "a forest trained on the first {:.0}% of each series, {}",
                (1.0 - a.holdout) * 100.0,
                model.anchor
            );
            (model, name, series)
        }
    };
    let report = backtest::run(&model, &series, a.holdout, &name, &online);
    print!("{}", report.table());
    let written = report.write(&a.report)?;
    for p in written {
        println!("wrote {}", p.display());
    }
    if let Some(path) = &a.forecasts_csv {
        report.write_forecasts_csv(path)?;
        println!(
            "wrote {} ({} forecasts)",
            path.display(),
            report.points.len()
        );
    }
    Ok(())
}
