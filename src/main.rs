//! The `prescale` binary: parse the command line, run it, report errors with their context.

use clap::Parser;

fn main() -> std::process::ExitCode {
    prescale::cli::init_logging();
    let cli = prescale::cli::Cli::parse();
    match prescale::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
