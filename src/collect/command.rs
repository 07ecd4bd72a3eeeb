//! `prescale collect`: backfill every signal from Prometheus, optionally keep polling, and write
//! the buffers as CSV that `prescale train --history` reads. The CLI only parses arguments and
//! calls [`run_command`].

use super::{CollectError, Collector, PollReport};
use crate::config::Config;
use std::path::PathBuf;

/// What `prescale collect` was asked to do.
#[derive(Debug, Clone)]
pub struct CommandOptions {
    /// `prescale.toml`.
    pub config: PathBuf,
    /// Where to write `<signal>.csv`; `None` = only report.
    pub export_csv: Option<PathBuf>,
    /// Keep polling on the step grid until Ctrl-C, re-exporting after every poll.
    pub follow: bool,
}

/// Runs the command on its own Tokio runtime; prints a summary per signal to stdout.
// anyhow: this file moves to `cli/`, the one place allowed to name it; it joins the
// configuration's errors and the collector's.
pub fn run_command(opts: &CommandOptions) -> anyhow::Result<()> {
    let config = Config::load(&opts.config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CollectError::Runtime)?;
    rt.block_on(run_async(&config, opts))
}

async fn run_async(config: &Config, opts: &CommandOptions) -> anyhow::Result<()> {
    let mut collector = Collector::connect(config.require_prometheus()?, &config.signals).await?;
    let report = collector.backfill(super::unix_now()).await;
    print_summary(&collector, &report);
    export(&collector, opts)?;
    if opts.follow {
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
                if let Some(dir) = &opts.export_csv {
                    if let Err(e) = super::export_csv(store, dir) {
                        tracing::error!(error = %e, "export failed");
                        export_error = Some(e);
                    }
                }
            })
            .await;
        if let Some(e) = export_error {
            return Err(e.into());
        }
        return Ok(());
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

fn export<S: super::Source>(c: &Collector<S>, opts: &CommandOptions) -> Result<(), CollectError> {
    if let Some(dir) = &opts.export_csv {
        for f in c.export_csv(dir)? {
            println!("wrote {}", f.display());
        }
    }
    Ok(())
}

fn print_summary<S: super::Source>(c: &Collector<S>, report: &PollReport) {
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
