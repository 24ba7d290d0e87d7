//! Building a strategy's input from allocator state.

use std::collections::HashMap;

use target_allocator_sdk::{AssignInput, Collectors, Info, LabelColumn, Load, NO_NODE, NO_VALUE, Targets};

use super::allocator::Slot;
use super::target::Collector;

/// What the allocator lends to build one input.
pub(super) struct BatchSource<'a> {
    pub collectors: &'a [Collector],
    pub collector_nodes: &'a [u32],
    pub nodes: &'a [String],
    pub jobs: &'a [String],
    pub slots: &'a HashMap<u64, Slot>,
}

impl BatchSource<'_> {
    /// The input for the targets `ids` (which must all be present), in that
    /// order, with the columns and labels `strategy` asks for.
    ///
    /// The job and node tables carry only the names this call refers to
    /// (renumbered), and only when the strategy reads those columns.
    pub fn build(&self, ids: &[u64], strategy: &Info, mut load: Load, options: &str) -> AssignInput {
        let n = ids.len();
        let wanted = strategy.needs_columns;
        let mut jobs = LocalTable::new(self.jobs);
        let mut nodes = LocalTable::new(self.nodes);
        let collector_nodes: Vec<u32> = if wanted.node {
            self.collector_nodes.iter().map(|&node| nodes.local(node)).collect()
        } else {
            vec![NO_NODE; self.collectors.len()]
        };
        let capacity = |want: bool| if want { n } else { 0 };
        let mut targets = Targets {
            count: n as u32,
            address_hash: Vec::with_capacity(capacity(wanted.address_hash)),
            identity: Vec::with_capacity(capacity(wanted.identity)),
            job: Vec::with_capacity(capacity(wanted.job)),
            node: Vec::with_capacity(capacity(wanted.node)),
            previous: Vec::with_capacity(capacity(wanted.previous)),
        };
        let mut columns: Vec<(LabelColumn, HashMap<&str, u32>)> = strategy
            .needs_labels
            .iter()
            .map(|name| {
                (
                    LabelColumn { name: name.clone(), values: Vec::new(), value: Vec::with_capacity(n) },
                    HashMap::new(),
                )
            })
            .collect();
        for id in ids {
            let slot = &self.slots[id];
            if wanted.address_hash {
                targets.address_hash.push(slot.target.address_hash);
            }
            if wanted.identity {
                targets.identity.push(slot.target.identity);
            }
            if wanted.job {
                targets.job.push(jobs.local(slot.job));
            }
            if wanted.node {
                targets.node.push(nodes.local(slot.node));
            }
            if wanted.previous {
                targets.previous.push(slot.collector);
            }
            for (column, seen) in &mut columns {
                let value = match slot.target.labels.get(&column.name) {
                    Some(v) => *seen.entry(v).or_insert_with(|| {
                        column.values.push(v.to_string());
                        (column.values.len() - 1) as u32
                    }),
                    None => NO_VALUE,
                };
                column.value.push(value);
            }
        }
        if wanted.job {
            load.jobs = load.jobs.iter().map(|&job| jobs.local(job)).collect();
        } else {
            load.jobs.clear();
            load.job_collector_targets.clear();
        }
        AssignInput {
            collectors: Collectors {
                names: self.collectors.iter().map(|c| c.id.to_string()).collect(),
                node: collector_nodes,
            },
            nodes: nodes.names,
            jobs: jobs.names,
            targets,
            labels: columns.into_iter().map(|(c, _)| c).collect(),
            load,
            options: options.to_string(),
        }
    }
}

/// Global id → id within one call, collecting the names in use.
struct LocalTable<'a> {
    all: &'a [String],
    local: HashMap<u32, u32>,
    names: Vec<String>,
}

impl<'a> LocalTable<'a> {
    fn new(all: &'a [String]) -> Self {
        LocalTable { all, local: HashMap::new(), names: Vec::new() }
    }

    /// The call-local id of `global` (`NO_NODE` stays as it is).
    fn local(&mut self, global: u32) -> u32 {
        if global == NO_NODE {
            return NO_NODE;
        }
        *self.local.entry(global).or_insert_with(|| {
            self.names.push(self.all[global as usize].clone());
            (self.names.len() - 1) as u32
        })
    }
}
