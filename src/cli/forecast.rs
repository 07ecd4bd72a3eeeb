//! `prescale forecast`: the next window's peak per series, as a table or JSON, corrected by
//! the online calibration the history teaches (as the live loop and `backtest` apply it).

use super::{read, HistoryArgs, OnlineArgs};
use anyhow::{bail, Result};
use clap::Args;
use prescale::forecast::{backtest, online, Model};
use prescale::series::format_duration;
use std::path::PathBuf;

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
    /// Corrected by the offsets the history teaches (every origin forecast in turn, as the
    /// live loop would have) unless `--no-online-calibration`.
    #[command(flatten)]
    online: OnlineArgs,
}

/// Runs `prescale forecast`.
pub(crate) fn run(a: ForecastArgs) -> Result<()> {
    let online = a.online.config()?;
    let model = Model::load(&a.model)?;
    let series = read(&a.history, Some(model.spec.step))?;
    let mut out = Vec::new();
    for s in &series {
        match online::latest(&online, &model, &s.key, &s.values, s.start) {
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
        let at = prescale::series::format_timestamp(f.at);
        let qs: String = f
            .quantiles
            .iter()
            .map(|(_, v)| format!("{v:>10.3}"))
            .collect();
        println!("{:<40} {:<22} {qs}", f.key.as_str(), format!("after {at}"));
    }
    Ok(())
}
