//! The `prescale` binary: parse the command line, run it, report errors with their context.

mod cli;

use clap::Parser;

/// mimalloc, not glibc's malloc: the live loop builds and drops per-series maps and the
/// snapshot every cycle, and at 100,000 series glibc spent a third of the cycle's CPU in
/// malloc, free and their consolidation (`benches/loop_cycle.rs`: 2.78 → 1.87 s a cycle; RSS
/// +8 %). The benches that model the process at scale declare the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(cli.log_format);
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once. Many library errors show their cause
/// in their own text (`{path}: {source}`, so that `to_string()` alone is useful) and also
/// expose it as `source()`; printing the chain blindly (`{:#}`) would repeat it ("No such file
/// or directory: No such file or directory").
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Shown {
        path: String,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_shown_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let os = io.to_string();
        let e = anyhow::Error::new(Shown {
            path: "/x.csv".into(),
            source: io,
        })
        .context("reading history");
        let text = describe(&e);
        assert_eq!(text, format!("reading history: /x.csv: {os}"));
    }
}
