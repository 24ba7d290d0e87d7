//! The `target-allocator` binary.

use std::path::PathBuf;

/// Allocation-heavy work (label sets, per-target strings) spends much of its
/// time in glibc's malloc; mimalloc halves discovery-to-allocation time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use target_allocator::app::{ServeOptions, serve};
use target_allocator::cli;
use target_allocator::config::{CliOverrides, DEFAULT_CONFIG_FILE, Environment};

/// With no subcommand it runs the allocator, taking the reference allocator's flags.
#[derive(Debug, Parser)]
#[command(
    name = "target-allocator",
    version,
    about = "Prometheus target allocator with WebAssembly strategies"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Assign target groups (file_sd JSON) to collectors with a strategy and print the result.
    Assign(cli::assign::AssignArgs),
    /// Check a strategy component: load it and run the SDK's invariant checks and a timing.
    Check(cli::check::CheckArgs),
    /// Measure a strategy's balance, movement on scale-up/-down and speed.
    Simulate(cli::simulate::SimulateArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The config file.
    #[arg(long, default_value = DEFAULT_CONFIG_FILE)]
    config_file: PathBuf,
    /// Plain-HTTP listen address (overrides `listen_addr`).
    #[arg(long)]
    listen_addr: Option<String>,
    /// Enable Prometheus CR discovery (overrides `prometheus_cr.enabled`).
    #[arg(long)]
    enable_prometheus_cr_watcher: bool,
    /// Kubeconfig path (overrides `kube_config_file_path`).
    #[arg(long)]
    kubeconfig_path: Option<PathBuf>,
    /// Enable the mTLS listener (overrides `https.enabled`).
    #[arg(long)]
    enable_https_server: bool,
    #[arg(long)]
    listen_addr_https: Option<String>,
    #[arg(long)]
    https_ca_file: Option<String>,
    #[arg(long)]
    https_tls_cert_file: Option<String>,
    #[arg(long)]
    https_tls_key_file: Option<String>,
    /// Serve secrets in /scrape_configs over plain HTTP.
    #[arg(long)]
    allow_insecure_auth_secrets: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log level (`RUST_LOG` syntax also works through the environment).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Accepted for compatibility with the reference's zap flags: `json` selects JSON logs.
    #[arg(long)]
    zap_encoder: Option<String>,
    /// Accepted for compatibility: sets the log level (debug, info, error, ...).
    #[arg(long)]
    zap_log_level: Option<String>,
    #[arg(long = "zap-devel", hide = true)]
    _zap_devel: bool,
    #[arg(long = "zap-stacktrace-level", hide = true)]
    _zap_stacktrace_level: Option<String>,
    #[arg(long = "zap-time-encoding", hide = true)]
    _zap_time_encoding: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Assign(args)) => {
            init_logging(LogFormat::Text, "warn");
            cli::assign::run(args)
        }
        Some(Command::Check(args)) => {
            init_logging(LogFormat::Text, "warn");
            cli::check::run(args)
        }
        Some(Command::Simulate(args)) => {
            init_logging(LogFormat::Text, "warn");
            cli::simulate::run(args)
        }
        None => {
            let s = cli.serve;
            let json = s.log_format == LogFormat::Json || s.zap_encoder.as_deref() == Some("json");
            let level = s.zap_log_level.clone().unwrap_or(s.log_level.clone());
            init_logging(if json { LogFormat::Json } else { LogFormat::Text }, &level);
            serve(ServeOptions {
                config_file: s.config_file,
                environment: Environment::from_process(),
                overrides: CliOverrides {
                    listen_addr: s.listen_addr,
                    enable_prometheus_cr_watcher: s.enable_prometheus_cr_watcher,
                    kubeconfig_path: s.kubeconfig_path,
                    enable_https_server: s.enable_https_server,
                    listen_addr_https: s.listen_addr_https,
                    https_ca_file: s.https_ca_file,
                    https_tls_cert_file: s.https_tls_cert_file,
                    https_tls_key_file: s.https_tls_key_file,
                    allow_insecure_auth_secrets: s.allow_insecure_auth_secrets,
                },
            })
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
