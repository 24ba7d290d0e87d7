//! The `target-allocator` binary.

use clap::{Parser, Subcommand};
use target_allocator::cli;

#[derive(Debug, Parser)]
#[command(
    name = "target-allocator",
    version,
    about = "Prometheus target allocator with WebAssembly strategies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Assign target groups (file_sd JSON) to collectors with a strategy and print the result.
    Assign(cli::assign::AssignArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Assign(args) => cli::assign::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
