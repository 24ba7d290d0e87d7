//! `target-allocator simulate`: how evenly a strategy spreads targets, how
//! many it moves when a collector comes or goes, and how long it takes.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use target_allocator_sdk::AssignInput;
use target_allocator_sdk::testing::{
    CHECK_SEED, Movement, assign_checked, balance, fixture, scale_down, scale_up,
};

use super::common::{ReportFormat, TimedStrategy, catalog, print_report, read_targets};
use crate::allocation::{Collector, input_for_new_targets};
use crate::strategies::DEFAULT_STRATEGY;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Strategy name (built-in) or path to a strategy component (.wasm).
    #[arg(long, default_value = DEFAULT_STRATEGY)]
    strategy: String,
    /// A number of synthetic targets, or target groups in Prometheus file_sd
    /// JSON format (`-` reads standard input).
    #[arg(long)]
    targets: String,
    /// Number of collectors (named collector-0000, collector-0001, ...).
    #[arg(long)]
    collectors: usize,
    /// The strategy's options, as JSON.
    #[arg(long, default_value = "")]
    options: String,
    /// Job name given to targets read from a file (part of their identity).
    #[arg(long, default_value = "default")]
    job: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

pub fn run(args: SimulateArgs) -> Result<()> {
    if args.collectors == 0 {
        bail!("--collectors must be at least 1");
    }
    let mut catalog = catalog()?;
    let choice = catalog.choose(&args.strategy, &args.options, None)?;
    let strategy = choice.primary;

    let (input, origin) = match args.targets.parse::<usize>() {
        // Collector names match the file case, so both sort the same way.
        Ok(n) => (fixture(n, args.collectors, CHECK_SEED), "synthetic".to_string()),
        Err(_) => {
            let path = PathBuf::from(&args.targets);
            let targets = read_targets(&path, &args.job)?;
            let collectors: Vec<Collector> =
                (0..args.collectors).map(|i| Collector::new(&format!("collector-{i:04}"), None)).collect();
            (
                input_for_new_targets(&args.job, &targets, &collectors, strategy.info(), &args.options),
                args.targets.clone(),
            )
        }
    };
    let targets = input.targets.len();

    let mut timed = TimedStrategy::new(&*strategy, &args.options);
    let mut assign = |input: &AssignInput| timed.assign(input);
    let output = assign_checked(&mut assign, &input).map_err(|v| anyhow!("{v}")).context("assigning")?;
    let balance = balance(&output, args.collectors);
    let up = scale_up(&mut assign, &input).map_err(|v| anyhow!("{v}")).context("adding a collector")?;
    let down = scale_down(&mut assign, &input).map_err(|v| anyhow!("{v}")).context("removing a collector")?;
    let per_call = timed.mean_call().as_secs_f64();
    let per_target =
        if timed.targets == 0 { 0.0 } else { timed.elapsed.as_secs_f64() / timed.targets as f64 };

    let info = strategy.info();
    let mut out = String::new();
    match args.format {
        ReportFormat::Text => {
            let n = args.collectors;
            writeln!(out, "strategy    {} {} ({})", info.name, info.version, strategy.source())?;
            writeln!(out, "targets     {targets} ({origin}), {n} collectors")?;
            writeln!(
                out,
                "balance     max/mean {:.3}, min/mean {:.3}, stddev {:.1} targets ({:.1}% of the mean {:.1}), \
                 unassigned {}",
                balance.max_over_mean,
                balance.min_over_mean,
                balance.stddev,
                balance.relative_stddev * 100.0,
                balance.mean,
                balance.unassigned
            )?;
            writeln!(out, "scale-up    {n} -> {} collectors: {}", n + 1, movement_text(&up, "1/(N+1)"))?;
            writeln!(
                out,
                "scale-down  {n} -> {} collectors: {}",
                n - 1,
                movement_text(&down, "the removed collector's targets")
            )?;
            writeln!(
                out,
                "time        {:.2} ms per assignment, {:.3} µs per target (mean of {} calls)",
                per_call * 1e3,
                per_target * 1e6,
                timed.calls
            )?;
        }
        ReportFormat::Json => {
            let movement = |m: &Movement| {
                serde_json::json!({
                    "moved": m.moved, "minimum": m.minimum, "targets": m.targets, "ratio": m.ratio(),
                })
            };
            let report = serde_json::json!({
                "strategy": { "name": info.name, "version": info.version, "source": strategy.source() },
                "targets": targets,
                "origin": origin,
                "collectors": args.collectors,
                "balance": {
                    "max_over_mean": balance.max_over_mean,
                    "min_over_mean": balance.min_over_mean,
                    "mean": balance.mean,
                    "stddev": balance.stddev,
                    "relative_stddev": balance.relative_stddev,
                    "unassigned": balance.unassigned,
                },
                "scale_up": movement(&up),
                "scale_down": movement(&down),
                "ms_per_assignment": per_call * 1e3,
                "us_per_target": per_target * 1e6,
                "calls": timed.calls,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        }
    }
    print_report(&out)
}

/// `minimum` says where the minimum comes from.
fn movement_text(m: &Movement, minimum: &str) -> String {
    format!(
        "moved {} of {} assigned targets; minimum {} ({minimum}); ratio {:.2}",
        m.moved,
        m.targets,
        m.minimum,
        m.ratio()
    )
}
