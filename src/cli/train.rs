//! `prescale train`: history in, a model file out, and what training saw.

use super::{read, ForestArgs, HistoryArgs};
use anyhow::{Context, Result};
use clap::Args;
use prescale::forecast::Model;
use prescale::series::{exclude, format_duration, TimeRange};
use std::path::PathBuf;

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
    /// Leave a time range out of training (an incident, a migration): FROM..TO, each RFC 3339
    /// or Unix seconds, TO exclusive; repeatable. Its samples count as gaps, so no feature
    /// window spans them and no target lies inside them.
    #[arg(long, value_name = "FROM..TO")]
    exclude: Vec<String>,
}

/// Runs `prescale train`.
pub(crate) fn run(a: TrainArgs) -> Result<()> {
    let ranges = a
        .exclude
        .iter()
        .map(|r| TimeRange::parse(r, "--exclude"))
        .collect::<Result<Vec<_>, _>>()?;
    // Before reading or training: a wrong --out must not cost the training time.
    Model::check_replaceable(&a.out)?;
    let mut series = read(&a.history, None)?;
    let excluded = exclude(&mut series, &ranges, "--exclude")?;
    let series = a.forest.within_memory(series)?;
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
    println!("{}", model.anchor);
    if !ranges.is_empty() {
        // Per series, so a range that missed a series (a typo in the date) shows as 0.
        for (key, n) in &excluded {
            println!("excluded {n} points of {key}");
        }
    }
    println!("wrote {} ({:.1} MB)", a.out.display(), size as f64 / 1e6);
    Ok(())
}
