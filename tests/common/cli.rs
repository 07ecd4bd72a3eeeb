//! Running the `prescale` binary from integration tests. Include it with
//! `#[path = "common/cli.rs"] mod cli;`.
#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;
use std::process::{Command, Output};

/// Runs `prescale` with `args` (logs at `warn`) and waits for it.
pub fn prescale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run prescale")
}

/// A path under the repository, as a string for arguments.
pub fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

/// A bundled history file in `data/`.
pub fn data(name: &str) -> String {
    repo(&format!("data/{name}"))
}

/// Everything the process printed, stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
