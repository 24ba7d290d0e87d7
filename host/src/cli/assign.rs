//! `target-allocator assign`: show what a strategy does with a set of targets.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};

use super::common::{catalog, read_targets};
use crate::allocation::{Allocator, Collector};
use crate::strategies::DEFAULT_STRATEGY;

#[derive(Debug, Args)]
pub struct AssignArgs {
    /// Strategy name (built-in) or path to a strategy component (.wasm).
    #[arg(long, default_value = DEFAULT_STRATEGY)]
    strategy: String,
    /// Collector ids, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    collectors: Vec<String>,
    /// Nodes of collectors, as `collector=node`, comma separated (for per-node).
    #[arg(long, value_delimiter = ',')]
    collector_nodes: Vec<String>,
    /// The strategy's options, as JSON.
    #[arg(long, default_value = "")]
    options: String,
    /// Strategy for targets the main one defers (per-node's node-less targets).
    #[arg(long)]
    fallback_strategy: Option<String>,
    /// The fallback strategy's options, as JSON.
    #[arg(long, default_value = "")]
    fallback_options: String,
    /// Job name given to the targets (part of their identity).
    #[arg(long, default_value = "default")]
    job: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Target groups in Prometheus file_sd JSON format; `-` reads standard input.
    input: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// `<address><TAB><collector id>` per target, `-` when unassigned.
    Text,
    /// A JSON array of `{"address", "collector"}` (collector `null` when unassigned).
    Json,
}

pub fn run(args: AssignArgs) -> Result<()> {
    let targets = read_targets(&args.input, &args.job)?;
    let collectors = collectors(&args.collectors, &args.collector_nodes)?;

    let mut catalog = catalog()?;
    let fallback = args.fallback_strategy.as_deref().map(|name| (name, args.fallback_options.as_str()));
    let choice = catalog.choose(&args.strategy, &args.options, fallback)?;

    let mut allocator = Allocator::new(choice);
    allocator.set_collectors(collectors);
    let report = allocator.set_job_targets(&args.job, targets.clone());
    if let Some(error) = &report.strategy_error {
        eprintln!("warning: {error}");
    }

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        Format::Text => {
            for target in &targets {
                let collector = allocator.collector_of(target.identity).map_or("-", |c| &c.id);
                writeln!(out, "{}\t{collector}", target.address())?;
            }
        }
        Format::Json => {
            let rows: Vec<serde_json::Value> = targets
                .iter()
                .map(|t| {
                    let collector = allocator.collector_of(t.identity).map(|c| c.id.to_string());
                    serde_json::json!({ "address": t.address(), "collector": collector })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn collectors(ids: &[String], nodes: &[String]) -> Result<Vec<Collector>> {
    let mut node_of = std::collections::HashMap::new();
    for pair in nodes {
        let Some((collector, node)) = pair.split_once('=') else {
            bail!("--collector-nodes entry {pair:?} is not collector=node");
        };
        if !ids.iter().any(|id| id == collector) {
            bail!("--collector-nodes names {collector:?}, which is not in --collectors");
        }
        node_of.insert(collector.to_string(), Arc::<str>::from(node));
    }
    let mut seen = std::collections::HashSet::new();
    ids.iter()
        .map(|id| {
            if id.is_empty() {
                bail!("--collectors has an empty collector id");
            }
            if !seen.insert(id) {
                bail!("--collectors lists {id:?} twice");
            }
            Ok(Collector { id: Arc::from(id.as_str()), node: node_of.get(id).cloned() })
        })
        .collect()
}
