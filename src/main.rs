//! The `prescale` binary: parse the command line, run it, report errors with their context.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::init_logging();
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
