//! The command line: parses arguments with clap and calls the library, one file per
//! subcommand. No logic of its own beyond turning arguments into options and results into
//! text; this is the only place that names `clap` or `anyhow` (the library's typed errors
//! become `anyhow` here, at the edge).

mod backtest;
mod budget;
mod collect;
mod forecast;
mod run;
mod simulate;
mod train;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use prescale::forecast::{Anchor, TrainOptions};
use prescale::series::{
    self, format_duration, parse_duration, HistoryOptions, Series, SeriesReport,
};
use std::io::IsTerminal;
use std::path::PathBuf;

/// prescale: a predictive autoscaler. Learns each workload's load pattern and provisions ahead
/// of demand, with a known risk.
#[derive(Debug, Parser)]
#[command(name = "prescale", version, about, long_about = None)]
pub struct Cli {
    /// How logs are written to stderr: `text` for people, `json` (one object per line) for
    /// log pipelines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The format of the log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when stderr is a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a forecaster on CSV history and write a model file.
    Train(train::TrainArgs),
    /// Score a forecaster on the held-out tail of CSV history against baselines.
    Backtest(backtest::BacktestArgs),
    /// Forecast the next window's peak from recent CSV history with a trained model.
    Forecast(forecast::ForecastArgs),
    /// Collect history from Prometheus (configured in prescale.toml) and export it as CSV.
    Collect(collect::CollectArgs),
    /// Replay history through scaling policies and score them, or run task queues.
    Simulate(Box<simulate::SimulateArgs>),
    /// Run the live loop (collect → forecast → plan → act → export); dry-run unless --apply.
    /// Without --config, replays the bundled data/ with the shipped model.
    Run(run::RunArgs),
}

/// How CSV history is read and put on a grid.
/// The online calibration of forecasts from history, as `backtest` and `forecast` apply it.
#[derive(Debug, Args)]
pub struct OnlineArgs {
    /// The model's quantiles as it makes them, without the online calibration the live loop
    /// applies (`[online_calibration] enabled = false`).
    #[arg(long)]
    no_online_calibration: bool,
    /// Step size of the online calibration (`[online_calibration] gain`).
    #[arg(long, value_name = "GAIN", default_value_t = prescale::forecast::online::DEFAULT_GAIN)]
    online_gain: f64,
    /// The forest's median as it is, not chosen online between it and its mixes with the last
    /// window's peak (`[online_calibration] median = false`).
    #[arg(long)]
    forest_median: bool,
}

impl OnlineArgs {
    /// The calibration asked for, checked.
    pub fn config(&self) -> Result<prescale::forecast::OnlineConfig> {
        let online = prescale::forecast::OnlineConfig {
            enabled: !self.no_online_calibration,
            gain: self.online_gain,
            median: !self.forest_median,
        };
        if let Err(e) = online.validate() {
            bail!("--online-gain: {e}");
        }
        Ok(online)
    }
}

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
    #[arg(long, default_value_t = 10)]
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
    /// What forecasts are measured from: `recent` (the last window's peak), `zero`, or
    /// `auto` (fit both, keep the cheaper at 1 % short on held-out rows).
    #[arg(long, value_enum, default_value_t = AnchorArg::Zero)]
    pub anchor: AnchorArg,
    /// Train on a spread sample of the series (every k-th, whole) of at most N points.
    /// Without it, training that would not fit in the memory available here (about 500 bytes
    /// a point at its peak) is refused before it starts.
    #[arg(long, value_name = "N")]
    pub max_points: Option<usize>,
}

/// `--anchor`: a fixed anchor, or the choice by held-out loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnchorArg {
    /// Fit both anchors, keep the one cheaper at 1 % short on held-out rows.
    Auto,
    /// Measure from the last window's peak.
    Recent,
    /// Measure from zero.
    Zero,
}

impl ForestArgs {
    /// `series` as training is handed them: within `--max-points`, or refused when they would
    /// not fit in the memory available.
    fn within_memory(&self, series: Vec<Series>) -> Result<Vec<Series>> {
        budget::within(series, self.max_points, budget::available())
    }

    fn options(&self, step: i64) -> TrainOptions {
        TrainOptions {
            quantiles: self.quantiles.clone(),
            n_trees: self.trees,
            max_depth: self.max_depth,
            min_samples_leaf: self.min_leaf,
            max_features: self.max_features,
            seed: self.seed,
            show_progress: std::io::stderr().is_terminal(),
            anchor: match self.anchor {
                AnchorArg::Auto => None,
                AnchorArg::Recent => Some(Anchor::Recent),
                AnchorArg::Zero => Some(Anchor::Zero),
            },
            ..TrainOptions::new(step, self.window)
        }
    }
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Backtest(a) => backtest::run(a),
        Command::Forecast(a) => forecast::run(a),
        Command::Collect(a) => collect::run(&a),
        Command::Run(a) => run::run(a),
        Command::Simulate(a) => simulate::run(*a),
    }
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
        // Dropped rows are data the user gave and prescale did not use: worth a warning.
        if r.dropped.is_empty() {
            tracing::info!("read {}", r.summary());
        } else {
            tracing::warn!("read {}", r.summary());
        }
    }
}

/// Sets up logging to stderr for every subcommand (`RUST_LOG` overrides the default `info`):
/// stdout carries only a command's results, so it can be piped into another program.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        // Colour codes are noise in a file or a log collector: only a terminal gets them.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
