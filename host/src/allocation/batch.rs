//! Building a strategy's input from allocator state.

use std::collections::HashMap;

use target_allocator_sdk::{AssignInput, Collectors, Info, LabelColumn, Load, NO_VALUE, Targets};

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
    pub fn build(&self, ids: &[u64], strategy: &Info, load: Load, options: &str) -> AssignInput {
        let n = ids.len();
        let wanted = strategy.needs_columns;
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
                targets.job.push(slot.job);
            }
            if wanted.node {
                targets.node.push(slot.node);
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
        AssignInput {
            collectors: Collectors {
                names: self.collectors.iter().map(|c| c.id.to_string()).collect(),
                node: self.collector_nodes.to_vec(),
            },
            nodes: self.nodes.to_vec(),
            jobs: self.jobs.to_vec(),
            targets,
            labels: columns.into_iter().map(|(c, _)| c).collect(),
            load,
            options: options.to_string(),
        }
    }
}
