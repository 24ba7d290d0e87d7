//! `per-node`: each target goes to the collector on its own node.
//!
//! For collectors running as a DaemonSet. A target's node comes from its
//! Kubernetes meta labels (the host resolves it, as the reference does).
//! Targets without a node are handed to the fallback strategy
//! (`allocation_fallback_strategy`, or `fallback_strategy.name` in this
//! strategy's options); without one they stay unassigned, as do targets on a
//! node that runs no collector. When two collectors share a node, the one
//! with the smallest name gets its targets (the reference picks one at random).

use serde::Deserialize;
use target_allocator_sdk::{AssignInput, Columns, FALLBACK, Info, NO_NODE, Strategy, UNASSIGNED, options};

pub const NAME: &str = "per-node";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Read by the host, which runs the fallback; accepted here so the
    /// reference's `allocation_strategy_config.per_node` block validates.
    #[allow(dead_code)]
    fallback_strategy: Option<FallbackStrategy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FallbackStrategy {
    #[allow(dead_code)]
    name: String,
}

#[derive(Default)]
pub struct PerNode;

impl Strategy for PerNode {
    fn info(&self) -> Info {
        Info {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Each target goes to the collector on its node; node-less targets to the fallback"
                .into(),
            needs_labels: Vec::new(),
            needs_columns: Columns { node: true, ..Columns::NONE },
        }
    }

    fn validate_options(&self, options: &str) -> Result<(), String> {
        options::parse::<Options>(options).map(drop)
    }

    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let mut collector_on_node = vec![UNASSIGNED; input.nodes.len()];
        // Collectors are sorted by name: the first one seen on a node keeps it.
        for (c, &node) in input.collectors.node.iter().enumerate() {
            if let Some(slot) = collector_on_node.get_mut(node as usize)
                && *slot == UNASSIGNED
            {
                *slot = c as u32;
            }
        }
        Ok(input
            .targets
            .node
            .iter()
            .map(|&node| match node {
                NO_NODE => FALLBACK,
                n => collector_on_node.get(n as usize).copied().unwrap_or(UNASSIGNED),
            })
            .collect())
    }
}

target_allocator_sdk::export_strategy!(PerNode);

#[cfg(test)]
mod tests {
    use super::*;
    use target_allocator_sdk::testing;

    #[test]
    fn targets_follow_their_node() {
        let mut input = testing::fixture(0, 0, 1);
        input.nodes = vec!["a".into(), "b".into(), "c".into()];
        input.collectors.names = vec!["col-1".into(), "col-2".into(), "col-3".into()];
        input.collectors.node = vec![1, 0, 1];
        input.targets.node = vec![0, 1, 2, NO_NODE];
        input.targets.address_hash = vec![0; 4];
        // node b has col-1 and col-3: the smaller name wins; node c has none.
        assert_eq!(PerNode.assign(&input).unwrap(), vec![1, 0, UNASSIGNED, FALLBACK]);
    }

    #[test]
    fn passes_the_sdk_invariants() {
        let columns = PerNode.info().needs_columns;
        testing::check_all(
            &mut |i: &AssignInput| PerNode.assign(&testing::only_columns(i, columns)),
            f64::INFINITY,
        )
        .unwrap();
    }

    #[test]
    fn accepts_the_reference_fallback_option() {
        assert!(PerNode.validate_options(r#"{"fallback_strategy":{"name":"consistent-hashing"}}"#).is_ok());
        assert!(PerNode.validate_options(r#"{"fallback":"x"}"#).is_err());
    }
}
