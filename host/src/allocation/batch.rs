//! Building a strategy's input from allocator state.

use std::collections::HashMap;

use target_allocator_sdk::{AssignInput, Collectors, LabelColumn, Load, NO_VALUE, Targets};

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
    /// The input for the targets `ids` (which must all be present), in that order.
    pub fn build(&self, ids: &[u64], needs_labels: &[String], load: Load, options: &str) -> AssignInput {
        let n = ids.len();
        let mut targets = Targets {
            address_hash: Vec::with_capacity(n),
            identity: Vec::with_capacity(n),
            job: Vec::with_capacity(n),
            node: Vec::with_capacity(n),
            previous: Vec::with_capacity(n),
        };
        let mut columns: Vec<(LabelColumn, HashMap<&str, u32>)> = needs_labels
            .iter()
            .map(|name| (LabelColumn { name: name.clone(), values: Vec::new(), value: Vec::with_capacity(n) }, HashMap::new()))
            .collect();
        for id in ids {
            let slot = &self.slots[id];
            targets.address_hash.push(slot.target.address_hash);
            targets.identity.push(slot.target.identity);
            targets.job.push(slot.job);
            targets.node.push(slot.node);
            targets.previous.push(slot.collector);
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
