//! `prescale collect`: backfill every signal from Prometheus, optionally keep polling, and write
//! the buffers as CSV that `prescale train --history` reads. Collecting is the library's
//! [`Collector`]; this file owns the runtime, SIGINT/SIGTERM and what is printed. Like `run`,
//! it waits for a Prometheus that is not up yet rather than failing (a crash loop as a
//! Kubernetes job or sidecar); a stop during the wait ends it cleanly, with nothing written.

use anyhow::{Context, Result};
use clap::Args;
use prescale::collect::{self, CollectError, Collector, PollReport, Source};
use prescale::config::Config;
use std::path::PathBuf;
use tokio::sync::watch;

/// `prescale collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The configuration file ([prometheus] and [[signal]] sections).
    #[arg(long, value_name = "FILE", default_value = "prescale.toml")]
    config: PathBuf,
    /// Write each signal's history to DIR/<signal>.csv, the format `train --history` reads.
    #[arg(long, value_name = "DIR")]
    export_csv: Option<PathBuf>,
    /// Keep polling on the step grid until Ctrl-C or SIGTERM, re-exporting after every poll.
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
    let mut stop = stop_on_signals().context("installing the SIGINT/SIGTERM handlers")?;
    // Waits as long as Prometheus is unreachable (logging what for); a query it rejects fails
    // at once.
    let prometheus = config.require_prometheus()?;
    let Some(mut collector) =
        Collector::connect_waiting(prometheus, &config.signals, stop.clone(), |_| {}).await?
    else {
        tracing::warn!("stopped while waiting for Prometheus: nothing was collected");
        return Ok(());
    };
    // A backfill of a long lookback can take a while: a stop ends it too, exporting nothing
    // half-fetched.
    let report = tokio::select! {
        r = collector.backfill(collect::unix_now()) => r,
        _ = stop.wait_for(|s| *s) => {
            tracing::warn!("stopped during the backfill: nothing was exported");
            return Ok(());
        }
    };
    print_summary(&collector, &report);
    export(&collector, a)?;
    if a.follow {
        return Ok(follow(&mut collector, a, stop).await?);
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

/// A flag that turns true at the first SIGINT (Ctrl-C) or SIGTERM (`kill`, Kubernetes). The
/// handlers are installed before this returns, so a signal that comes at once is not lost.
fn stop_on_signals() -> std::io::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::info!("stop requested; finishing");
            let _ = tx.send(true);
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stop requested; finishing");
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Polls until stopped, re-exporting after every poll; the last export error, if any, fails
/// the command once it stops.
async fn follow<S: Source>(
    collector: &mut Collector<S>,
    a: &CollectArgs,
    stop: watch::Receiver<bool>,
) -> Result<(), CollectError> {
    let mut export_error = None;
    collector
        .run(stop, |report, store| {
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
