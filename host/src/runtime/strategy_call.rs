//! Calling a prepared strategy: one fresh, sandboxed instance per call.
//!
//! A new store per call means a trap, a timeout or leaked guest state never
//! affects the next call; instantiating from the pre-linked component costs
//! microseconds next to a batch.

use target_allocator_sdk::{AssignInput, Columns, Info, validate_output};

use super::bindings::v0_1::ta::allocator::types as wit;
use super::engine::HostState;
use super::errors::CallError;
use super::strategy_pre::StrategyPre;

impl StrategyPre {
    /// Runs `assign` on `input` and returns the checked output: exactly one
    /// collector index, `UNASSIGNED` or `FALLBACK` per target.
    pub fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, CallError> {
        let limits = &self.runtime.config().limits;
        let targets = input.targets.len();
        let deadline = limits.deadline(targets);
        let memory = limits.memory(targets, table_bytes(input));
        let mut store = self.runtime.new_store(self.name(), targets, memory, deadline);
        let instance = self.pre.instantiate(&mut store).map_err(CallError::Instantiate)?;
        // Per-target columns are lent as they are; only the string tables
        // need a slice of `&str` built.
        let label_values: Vec<Vec<&str>> = input.labels.iter().map(|c| str_refs(&c.values)).collect();
        let labels: Vec<wit::LabelColumn<'_>> = input
            .labels
            .iter()
            .zip(&label_values)
            .map(|(c, values)| wit::LabelColumn { name: &c.name, values, value: &c.value })
            .collect();
        let wanted = self.info().needs_columns;
        let (collector_names, nodes, jobs) =
            (str_refs(&input.collectors.names), str_refs(&input.nodes), str_refs(&input.jobs));
        let request = wit::AssignInput {
            collectors: wit::Collectors { names: &collector_names, node: &input.collectors.node },
            nodes: &nodes,
            jobs: &jobs,
            // Only the columns the strategy reads cross the boundary.
            targets: wit::Targets {
                count: input.targets.count,
                address_hash: column(wanted.address_hash, &input.targets.address_hash),
                identity: column(wanted.identity, &input.targets.identity),
                job: column(wanted.job, &input.targets.job),
                node: column(wanted.node, &input.targets.node),
                previous: column(wanted.previous, &input.targets.previous),
            },
            labels: &labels,
            load: wit::Load {
                collector_targets: &input.load.collector_targets,
                jobs: &input.load.jobs,
                job_collector_targets: &input.load.job_collector_targets,
            },
            options: &input.options,
        };
        let output = instance
            .ta_allocator_strategy()
            .call_assign(&mut store, request)
            .map_err(|e| classify(e, &store, deadline))?
            .map_err(CallError::Guest)?;
        validate_output(input, &output).map_err(|v| CallError::InvalidOutput(v.to_string()))?;
        Ok(output)
    }

    /// Runs `validate-options`. The outer error is a failed call; the inner
    /// one the strategy's verdict on the options.
    pub fn validate_options(&self, options: &str) -> Result<Result<(), String>, CallError> {
        let limits = &self.runtime.config().limits;
        let deadline = limits.deadline(0);
        let mut store = self.runtime.new_store(self.name(), 0, limits.memory(0, options.len()), deadline);
        let instance = self.pre.instantiate(&mut store).map_err(CallError::Instantiate)?;
        instance
            .ta_allocator_strategy()
            .call_validate_options(&mut store, options)
            .map_err(|e| classify(e, &store, deadline))
    }

    pub(super) fn call_info(&self) -> Result<Info, CallError> {
        let limits = &self.runtime.config().limits;
        let deadline = limits.deadline(0);
        let mut store = self.runtime.new_store("(loading)", 0, limits.memory(0, 0), deadline);
        let instance = self.pre.instantiate(&mut store).map_err(CallError::Instantiate)?;
        let info = instance
            .ta_allocator_strategy()
            .call_info(&mut store)
            .map_err(|e| classify(e, &store, deadline))?;
        let flags = info.needs_columns;
        Ok(Info {
            name: info.name,
            version: info.version,
            description: info.description,
            needs_labels: info.needs_labels,
            needs_columns: Columns {
                address_hash: flags.contains(wit::Columns::ADDRESS_HASH),
                identity: flags.contains(wit::Columns::IDENTITY),
                job: flags.contains(wit::Columns::JOB),
                node: flags.contains(wit::Columns::NODE),
                previous: flags.contains(wit::Columns::PREVIOUS),
            },
        })
    }
}

fn column<T>(wanted: bool, values: &[T]) -> &[T] {
    if wanted { values } else { &[] }
}

fn str_refs(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// Bytes of the strings an input carries in its tables.
fn table_bytes(input: &AssignInput) -> usize {
    let strings = |v: &[String]| v.iter().map(|s| s.len() + 8).sum::<usize>();
    strings(&input.collectors.names)
        + strings(&input.nodes)
        + strings(&input.jobs)
        + input.labels.iter().map(|c| strings(&c.values)).sum::<usize>()
        + input.options.len()
}

fn classify(
    error: wasmtime::Error,
    store: &wasmtime::Store<HostState>,
    deadline: std::time::Duration,
) -> CallError {
    let state = store.data();
    if state.memory.exceeded {
        return CallError::MemoryLimit { limit: state.memory.limit };
    }
    if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
        return CallError::Timeout(deadline);
    }
    let mut message = format!("{error:#}");
    // wasmtime reports exhausted hostcall fuel (our cap on lifted data) as a
    // plain error; its wording is pinned with the wasmtime version.
    if message.contains("fuel allocated for hostcalls has been exhausted") {
        return CallError::OutputTooLarge { limit: store.hostcall_fuel() };
    }
    if let Some(logged) = &state.last_error_logged {
        message = format!("{logged} ({message})");
    }
    CallError::Trap(message)
}
