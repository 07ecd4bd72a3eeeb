//! The command line: parses arguments with clap and calls the library. No logic of its own
//! beyond turning arguments into options and results into text.

use crate::forecast::backtest::{self, holdout_start};
use crate::forecast::{Model, TrainOptions};
use crate::series::{self, format_duration, parse_duration, HistoryOptions, Series, SeriesReport};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

/// prescale: a predictive autoscaler. Learns each workload's load pattern and provisions ahead
/// of demand, with a known risk.
#[derive(Debug, Parser)]
#[command(name = "prescale", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a forecaster on CSV history and write a model file.
    Train(TrainArgs),
    /// Score a forecaster on the held-out tail of CSV history against baselines.
    Backtest(BacktestArgs),
    /// Forecast the next window's peak from recent CSV history with a trained model.
    Forecast(ForecastArgs),
    /// Collect history from Prometheus (configured in prescale.toml) and export it as CSV.
    Collect(CollectArgs),
    /// Run the live loop (collect → forecast → plan → act → export); dry-run unless --apply.
    /// Without --config, replays the bundled data/ with the shipped model.
    Run(RunArgs),
}

/// `prescale run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file; default: the bundled demo (config/demo.toml, replaying data/).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run one cycle and exit.
    #[arg(long)]
    once: bool,
    /// Stop after N cycles.
    #[arg(long, value_name = "N")]
    cycles: Option<u64>,
    /// Carry decisions out with run.apply_command instead of only showing and logging them.
    #[arg(long)]
    apply: bool,
}

/// `prescale collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The configuration file ([prometheus] and [[signal]] sections).
    #[arg(long, value_name = "FILE", default_value = "prescale.toml")]
    config: PathBuf,
    /// Write each signal's history to DIR/<signal>.csv, the format `train --history` reads.
    #[arg(long, value_name = "DIR")]
    export_csv: Option<PathBuf>,
    /// Keep polling on the step grid until Ctrl-C, re-exporting after every poll.
    #[arg(long)]
    follow: bool,
}

/// How CSV history is read and put on a grid.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// History files: `timestamp,value` (series named after the file) or
    /// `timestamp,series,value`; timestamps RFC 3339 or Unix seconds.
    #[arg(long, num_args = 1.., required = true, value_name = "FILE")]
    pub history: Vec<PathBuf>,
    /// Step to resample onto (e.g. 5m); default: the median spacing of the rows (or the
    /// model's step when a model is given).
    #[arg(long, value_parser = parse_duration)]
    pub step: Option<i64>,
    /// Longest gap filled by linear interpolation; longer gaps split a series. Default: 3 steps.
    #[arg(long, value_parser = parse_duration)]
    pub max_gap: Option<i64>,
}

/// Forest and training settings.
#[derive(Debug, Args)]
pub struct ForestArgs {
    /// Forecast window: the model forecasts the peak over the next WINDOW.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub window: i64,
    /// Trees in the forest.
    #[arg(long, default_value_t = 100)]
    pub trees: usize,
    /// Deepest a tree may grow.
    #[arg(long, default_value_t = 12)]
    pub max_depth: usize,
    /// Fewest training rows per leaf.
    #[arg(long, default_value_t = 5)]
    pub min_leaf: usize,
    /// Features tried per split.
    #[arg(long, default_value_t = 8)]
    pub max_features: usize,
    /// Quantile levels to report, comma separated.
    #[arg(long, default_value = "0.5,0.9,0.95,0.99", value_delimiter = ',')]
    pub quantiles: Vec<f64>,
    /// Seed: the same seed and data give the same model.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl ForestArgs {
    fn options(&self, step: i64) -> TrainOptions {
        TrainOptions {
            quantiles: self.quantiles.clone(),
            n_trees: self.trees,
            max_depth: self.max_depth,
            min_samples_leaf: self.min_leaf,
            max_features: self.max_features,
            seed: self.seed,
            show_progress: std::io::stderr().is_terminal(),
            ..TrainOptions::new(step, self.window)
        }
    }
}

/// `prescale train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    history: HistoryArgs,
    #[command(flatten)]
    forest: ForestArgs,
    /// Where to write the model.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

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
    #[command(flatten)]
    forest: ForestArgs,
}

/// `prescale forecast`.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// The trained model.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    #[command(flatten)]
    history: HistoryArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train(a),
        Command::Backtest(a) => backtest_cmd(a),
        Command::Forecast(a) => forecast(a),
        Command::Collect(a) => Ok(crate::collect::run_command(
            &crate::collect::CommandOptions {
                config: a.config,
                export_csv: a.export_csv,
                follow: a.follow,
            },
        )?),
        Command::Run(a) => run_live(a),
    }
}

fn run_live(a: RunArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(path) => crate::config::Config::load(path)?,
        None => crate::config::Config::from_toml(
            std::path::Path::new("config/demo.toml"),
            crate::run::DEMO_CONFIG,
        )?,
    };
    let opts = crate::run::RunOptions {
        once: a.once,
        apply: a.apply,
        cycles: a.cycles,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = rt.block_on(crate::run::run(cfg, opts, Box::new(std::io::stdout())))?;
    println!(
        "done: {} cycles, {} changes recommended, {} holds{}",
        summary.cycles,
        summary.changes,
        summary.holds,
        if a.apply {
            ""
        } else {
            " (dry-run: nothing was changed)"
        }
    );
    Ok(())
}

/// Reads history, logs what was repaired, and refuses data that cannot be used.
fn read(args: &HistoryArgs, step: Option<i64>) -> Result<Vec<Series>> {
    let step = match (args.step, step) {
        (Some(given), Some(model)) if given != model => bail!(
            "--step {} differs from the model's step {}; the model can only read data on its own step",
            format_duration(given),
            format_duration(model)
        ),
        (given, model) => given.or(model),
    };
    let opts = HistoryOptions {
        step,
        max_gap: args.max_gap,
    };
    let (series, reports) = series::read_history(&args.history, &opts)?;
    report_repairs(&reports);
    Ok(series)
}

fn report_repairs(reports: &[SeriesReport]) {
    for r in reports {
        tracing::info!("read {}", r.summary());
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let series = read(&a.history, None)?;
    let step = series[0].step;
    let opts = a.forest.options(step);
    let started = std::time::Instant::now();
    let model = Model::train(&series, &opts)?;
    model
        .save(&a.out)
        .with_context(|| format!("saving the model to {}", a.out.display()))?;
    let size = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "trained on {} series, {} rows ({} origins skipped for gaps) in {:.1}s: step {}, window {}",
        model.meta.series.len(),
        model.meta.rows,
        model.meta.skipped,
        started.elapsed().as_secs_f64(),
        format_duration(step),
        format_duration(model.spec.window),
    );
    println!(
        "p90 coverage on held-back rows: {:.3} raw, {:.3} after calibration",
        model.meta.raw_p90_coverage, model.meta.calibrated_p90_coverage
    );
    println!("wrote {} ({:.1} MB)", a.out.display(), size as f64 / 1e6);
    Ok(())
}

fn backtest_cmd(a: BacktestArgs) -> Result<()> {
    if !(0.0 < a.holdout && a.holdout < 1.0) {
        bail!(
            "--holdout must be between 0 and 1 (exclusive), got {}",
            a.holdout
        );
    }
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
            let model = Model::train(&heads, &a.forest.options(step)).context(
                "training on the history before the held-out tail (pass --model to score a trained model)",
            )?;
            let name = format!(
                "a forest trained on the first {:.0}% of each series",
                (1.0 - a.holdout) * 100.0
            );
            (model, name, series)
        }
    };
    let report = backtest::run(&model, &series, a.holdout, &name);
    print!("{}", report.table());
    let written = report.write(&a.report).map_err(anyhow::Error::msg)?;
    for p in written {
        println!("wrote {}", p.display());
    }
    if let Some(path) = &a.forecasts_csv {
        report
            .write_forecasts_csv(path)
            .map_err(anyhow::Error::msg)?;
        println!(
            "wrote {} ({} forecasts)",
            path.display(),
            report.points.len()
        );
    }
    Ok(())
}

fn forecast(a: ForecastArgs) -> Result<()> {
    let model = Model::load(&a.model)?;
    let series = read(&a.history, Some(model.spec.step))?;
    let mut out = Vec::new();
    for s in &series {
        match model.forecast_latest(&s.key, &s.values, s.start) {
            Some(f) => out.push(f),
            None => tracing::warn!(
                "{}: no forecast: the newest value is a gap or there are fewer than {} steps since the last gap",
                s.key,
                model.spec.min_history
            ),
        }
    }
    if out.is_empty() {
        bail!("no series had enough recent history to forecast");
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let levels: Vec<String> = model
        .quantiles
        .iter()
        .map(|q| format!("p{}", backtest::level_name(*q)))
        .collect();
    println!(
        "{:<40} {:<22} {}",
        "series",
        format!("peak over next {}", format_duration(model.spec.window)),
        levels
            .iter()
            .map(|l| format!("{l:>10}"))
            .collect::<String>()
    );
    for f in &out {
        let at = chrono::DateTime::from_timestamp(f.at, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let qs: String = f
            .quantiles
            .iter()
            .map(|(_, v)| format!("{v:>10.3}"))
            .collect();
        println!("{:<40} {:<22} {qs}", f.key.as_str(), format!("after {at}"));
    }
    Ok(())
}

/// Sets up logging to stderr (`RUST_LOG` overrides the default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
