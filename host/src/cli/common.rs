//! Helpers the subcommands share: reading targets, loading strategies and
//! calling them the way the allocator does.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;
use target_allocator_sdk::AssignInput;
use target_allocator_sdk::testing::{only_columns, set_label};

use crate::allocation::{Assigner, Target};
use crate::discovery::{JobProcessor, TargetGroup, parse_target_groups};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::strategies::StrategyCatalog;

/// Output format of the report commands (`check`, `simulate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned lines for people.
    Text,
    /// One JSON object, for scripts.
    Json,
}

/// Targets of `job` from a Prometheus file_sd JSON file (`-` is standard
/// input), as discovery would produce them without relabeling.
pub fn read_targets(path: &Path, job: &str) -> Result<Vec<Target>> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let groups = parse_target_groups(&text).with_context(|| format!("reading {}", path.display()))?;
    let groups: Vec<Arc<TargetGroup>> = groups.into_iter().map(Arc::new).collect();
    Ok(JobProcessor::unfiltered(job).targets(&groups))
}

/// A catalogue of the built-ins on a default runtime, as the server starts with.
pub fn catalog() -> Result<StrategyCatalog> {
    let runtime = Runtime::new(RuntimeConfig::default())
        .map_err(|e| anyhow::anyhow!("starting the Wasm runtime: {e:#}"))?;
    StrategyCatalog::with_builtins(runtime).context("loading the built-in strategies")
}

/// Calls a strategy as the allocator would — only the columns it asks for,
/// with its options — and times every call, for the SDK's checks, which take
/// the strategy as a closure.
pub struct TimedStrategy<'a> {
    strategy: &'a dyn Assigner,
    options: &'a str,
    pub calls: u32,
    pub targets: u64,
    pub elapsed: Duration,
}

impl<'a> TimedStrategy<'a> {
    pub fn new(strategy: &'a dyn Assigner, options: &'a str) -> Self {
        TimedStrategy { strategy, options, calls: 0, targets: 0, elapsed: Duration::ZERO }
    }

    pub fn assign(&mut self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let info = self.strategy.info();
        let mut input = only_columns(input, info.needs_columns);
        // The host sends a column for every label the strategy names, all
        // `NO_VALUE` when no target has it, as for synthetic fixtures.
        for name in &info.needs_labels {
            if input.label(name).is_none() {
                set_label(&mut input, name, |_| None);
            }
        }
        input.options = self.options.to_string();
        let start = Instant::now();
        let output = self.strategy.assign(&input).map_err(|e| e.to_string());
        self.elapsed += start.elapsed();
        self.calls += 1;
        self.targets += input.targets.len() as u64;
        output
    }

    /// Mean wall time per call so far.
    pub fn mean_call(&self) -> Duration {
        self.elapsed.checked_div(self.calls).unwrap_or_default()
    }
}

/// Writes a finished report to standard output; a closed pipe (`| head`) is
/// an error to return, not a panic as with `println!`.
pub fn print_report(report: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(report.as_bytes()).and_then(|()| out.flush()).context("writing the report")
}

#[cfg(test)]
mod tests {
    use target_allocator_sdk::testing::fixture;
    use target_allocator_sdk::{Columns, Info, NO_VALUE, Strategy};

    use super::*;
    use crate::allocation::NativeAssigner;

    /// Fails unless it gets exactly what the host would send it.
    struct Picky;

    impl Strategy for Picky {
        fn info(&self) -> Info {
            Info {
                name: "picky".into(),
                needs_labels: vec!["zone".into()],
                needs_columns: Columns { address_hash: true, ..Columns::NONE },
                ..Info::default()
            }
        }

        fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
            let zone = input.label("zone").ok_or("no zone column")?;
            if zone.value.iter().any(|&v| v != NO_VALUE) || !input.targets.identity.is_empty() {
                return Err("unexpected data".into());
            }
            if input.options != "{\"k\":1}" {
                return Err(format!("options {:?}", input.options));
            }
            Ok(vec![0; input.targets.len()])
        }
    }

    #[test]
    fn timed_strategy_sends_what_the_host_sends_and_counts_calls() {
        let picky = NativeAssigner::new(Picky);
        let mut timed = TimedStrategy::new(&picky, "{\"k\":1}");
        let input = fixture(100, 2, 1);
        assert_eq!(timed.assign(&input), Ok(vec![0; 100]));
        assert_eq!(timed.assign(&input), Ok(vec![0; 100]));
        assert_eq!((timed.calls, timed.targets), (2, 200));
    }
}
