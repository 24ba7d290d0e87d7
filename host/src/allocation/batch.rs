//! Building a strategy's input from allocator state.

use std::collections::HashMap;
use std::sync::Arc;

use target_allocator_sdk::{AssignInput, Collectors, Info, LabelColumn, Load, NO_NODE, NO_VALUE, Targets};

use super::allocator::Slot;
use super::id_map::IdSet;
use super::interner::Interner;
use super::target::{Collector, Target};

/// The input the allocator would send `strategy` for `targets` of `job`,
/// all new (no previous collector, no load), over `collectors`: for offline
/// tools that replay a job's target list. A target whose identity repeats
/// an earlier one is left out, as the allocator keeps one target per identity.
pub fn input_for_new_targets(
    job: &str,
    targets: &[Target],
    collectors: &[Collector],
    strategy: &Info,
    options: &str,
) -> AssignInput {
    let mut jobs = Interner::default();
    let job = jobs.intern(&Arc::from(job));
    let mut seen = IdSet::default();
    let mut slots = Vec::with_capacity(targets.len());
    for target in targets {
        if seen.insert(target.identity) {
            slots.push(Some(Slot::new(target.clone(), job)));
        }
    }
    let batch: Vec<u32> = (0..slots.len() as u32).collect();
    let source = BatchSource { collectors, jobs: jobs.names(), slots: &slots };
    source.build(&batch, strategy, Load::default(), options)
}

/// What the allocator lends to build one input.
pub(super) struct BatchSource<'a> {
    pub collectors: &'a [Collector],
    pub jobs: &'a [Arc<str>],
    /// The allocator's slab (`None`: a free slot).
    pub slots: &'a [Option<Slot>],
}

impl BatchSource<'_> {
    /// The input for the targets in slots `batch` (which must all be held),
    /// in that order, with the columns and labels `strategy` asks for.
    ///
    /// The job and node tables carry only the names this call refers to
    /// (renumbered), and only when the strategy reads those columns.
    pub fn build(&self, batch: &[u32], strategy: &Info, mut load: Load, options: &str) -> AssignInput {
        let n = batch.len();
        let wanted = strategy.needs_columns;
        let mut jobs = LocalTable::default();
        let job_name = |job: u32| self.jobs[job as usize].to_string();
        // Nodes are looked up only for strategies that read them.
        let mut nodes = LocalTable::default();
        let collector_nodes: Vec<u32> = if wanted.node {
            self.collectors.iter().map(|c| nodes.local(c.node.as_deref(), str::to_string)).collect()
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
        for &at in batch {
            let slot = self.slots[at as usize].as_ref().expect("batch slots are held");
            if wanted.address_hash {
                targets.address_hash.push(slot.target.address_hash);
            }
            if wanted.identity {
                targets.identity.push(slot.target.identity);
            }
            if wanted.job {
                targets.job.push(jobs.local(Some(slot.job), job_name));
            }
            if wanted.node {
                targets.node.push(nodes.local(slot.target.node(), str::to_string));
            }
            if wanted.previous {
                targets.previous.push(slot.collector);
            }
            for (column, seen) in &mut columns {
                let value = match slot.target.label(&column.name) {
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
            load.jobs = load.jobs.iter().map(|&job| jobs.local(Some(job), job_name)).collect();
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

/// Key → id within one call, collecting the names in use.
struct LocalTable<K> {
    local: HashMap<K, u32>,
    names: Vec<String>,
}

impl<K> Default for LocalTable<K> {
    fn default() -> Self {
        LocalTable { local: HashMap::new(), names: Vec::new() }
    }
}

impl<K: std::hash::Hash + Eq + Copy> LocalTable<K> {
    /// The call-local id of `key` (`NO_NODE` for none), naming it with `name` when new.
    fn local(&mut self, key: Option<K>, name: impl FnOnce(K) -> String) -> u32 {
        let Some(key) = key else { return NO_NODE };
        *self.local.entry(key).or_insert_with(|| {
            self.names.push(name(key));
            (self.names.len() - 1) as u32
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocation::{Labels, identity_hash};
    use target_allocator_sdk::UNASSIGNED;

    fn target(job: &str, pairs: &[(&str, &str)]) -> Target {
        let labels = Labels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect());
        let identity = identity_hash(labels.iter(), job);
        Target::new(labels, identity)
    }

    #[test]
    fn input_for_new_targets_keeps_one_target_per_identity_and_asks_columns_and_labels() {
        let a = target("j1", &[("__address__", "a:1"), ("zone", "z1")]);
        let b = target("j1", &[("__address__", "b:1"), ("__meta_kubernetes_pod_node_name", "n1")]);
        let collectors = [Collector::new("c0", Some("n1")), Collector::new("c1", None)];
        let strategy = Info { needs_labels: vec!["zone".into()], ..Info::default() };
        let input =
            input_for_new_targets("j1", &[a.clone(), b.clone(), a.clone()], &collectors, &strategy, "{}");
        assert_eq!(input.targets.len(), 2, "the repeated identity is dropped");
        assert_eq!(input.targets.identity, [a.identity, b.identity]);
        assert_eq!(input.targets.address_hash, [a.address_hash, b.address_hash]);
        assert_eq!(input.targets.previous, [UNASSIGNED, UNASSIGNED]);
        assert_eq!(input.jobs, ["j1"]);
        assert_eq!(input.targets.job, [0, 0]);
        assert_eq!(input.nodes, ["n1"]);
        assert_eq!(input.targets.node, [NO_NODE, 0]);
        assert_eq!(input.collectors.node, [0, NO_NODE]);
        assert_eq!(input.label("zone").unwrap().value, [0, NO_VALUE]);
        assert_eq!(input.options, "{}");

        let hash_only = Info { needs_columns: target_allocator_sdk::Columns::NONE, ..Info::default() };
        let input = input_for_new_targets("j1", &[a], &collectors, &hash_only, "");
        assert_eq!(input.targets.len(), 1);
        assert!(input.targets.identity.is_empty() && input.targets.previous.is_empty());
    }
}
