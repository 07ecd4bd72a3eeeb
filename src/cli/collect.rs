//! `prescale collect`: backfill every signal from Prometheus, optionally keep polling, and write
//! the buffers as CSV that `prescale train --history` reads. Collecting is the library's
//! [`Collector`]; this file owns the runtime, Ctrl-C and what is printed.

use anyhow::Result;
use clap::Args;
use prescale::collect::{self, CollectError, Collector, PollReport, Source};
use prescale::config::Config;
use std::path::PathBuf;

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

/// Runs the command on its own Tokio runtime; prints a summary per signal to stdout.
pub(crate) fn run(a: &CollectArgs) -> Result<()> {
    let config = Config::load(&a.config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CollectError::Runtime)?;
    rt.block_on(run_async(&config, a))
}

async fn run_async(config: &Config, a: &CollectArgs) -> Result<()> {
    let mut collector = Collector::connect(config.require_prometheus()?, &config.signals).await?;
    let report = collector.backfill(collect::unix_now()).await;
    print_summary(&collector, &report);
    export(&collector, a)?;
    if a.follow {
        return Ok(follow(&mut collector, a).await?);
    }
    let failed: Vec<String> = report
        .signals
        .iter()
        .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.signal)))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CollectError::Incomplete { failed }.into())
    }
}

/// Polls until Ctrl-C, re-exporting after every poll; the last export error, if any, fails the
/// command once it stops.
async fn follow<S: Source>(
    collector: &mut Collector<S>,
    a: &CollectArgs,
) -> Result<(), CollectError> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("interrupted; finishing");
        }
        let _ = tx.send(true);
    });
    let mut export_error = None;
    collector
        .run(rx, |report, store| {
            for s in &report.signals {
                tracing::info!(signal = %s.signal, appended = s.appended, error = ?s.error, "poll");
            }
            if let Some(dir) = &a.export_csv {
                if let Err(e) = collect::export_csv(store, dir) {
                    tracing::error!(error = %e, "export failed");
                    export_error = Some(e);
                }
            }
        })
        .await;
    match export_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn export<S: Source>(c: &Collector<S>, a: &CollectArgs) -> Result<(), CollectError> {
    if let Some(dir) = &a.export_csv {
        for f in c.export_csv(dir)? {
            println!("wrote {}", f.display());
        }
    }
    Ok(())
}

fn print_summary<S: Source>(c: &Collector<S>, report: &PollReport) {
    for s in &report.signals {
        let held = c.store().signal(&s.signal);
        let series = held.map_or(0, |h| h.len());
        let points: usize = held.map_or(0, |h| h.iter().map(|(_, e)| e.ring().len()).sum());
        match &s.error {
            None => println!(
                "{}: {series} series, {points} steps held, {} requests",
                s.signal, s.requests
            ),
            Some(e) => println!("{}: FAILED after {} requests: {e}", s.signal, s.requests),
        }
    }
}
