//! `prescale run`: the live loop on its own Tokio runtime, with a one-line summary at the end.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Where the built-in demo configuration came from: its relative paths resolve against it.
const DEMO_CONFIG_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml");

/// `prescale run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file; default: the bundled demo (config/demo.toml, replaying data/).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run one cycle and exit.
    #[arg(long)]
    once: bool,
    /// Stop after N cycles (at least 1: the loop runs its first cycle before any limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    cycles: Option<u64>,
    /// Carry out the decisions of workloads in mode = "auto" through run.actuator (the
    /// Kubernetes API, or run.apply_command) instead of only showing and logging them.
    #[arg(long)]
    apply: bool,
}

/// Runs `prescale run`.
pub(crate) fn run(a: RunArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(path) => prescale::config::Config::load(path)?,
        // The demo's relative paths (data/, the shipped model) are anchored at the repository
        // this binary was built from, not the working directory, so it runs from anywhere.
        None => prescale::config::Config::from_toml(
            std::path::Path::new(DEMO_CONFIG_PATH),
            prescale::DEMO_CONFIG,
        )?,
    };
    let opts = prescale::RunOptions {
        once: a.once,
        apply: a.apply,
        cycles: a.cycles,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(prescale::run(cfg, opts, Box::new(std::io::stdout())));
    // A retraining or an own model's contest may still run on a blocking thread, and a
    // runtime's drop waits for those: after SIGTERM their result is not wanted, and waiting
    // could outlast the pod's grace period (the state is saved already).
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    let summary = result?;
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
