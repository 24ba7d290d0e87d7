//! `consistent-hashing`: the reference allocator's default strategy, bit for bit.
//!
//! Each target's `__address__` hash picks one of 1061 partitions; partitions
//! belong to collectors through a bounded-load ring (see
//! [`target_allocator_sdk::ring`]). Only the address is hashed, so label
//! changes never move a target, and every allocator replica computes the same
//! assignment from the same collector set.
//!
//! Options (all optional):
//! - `ring_format`: `current` (default; reference releases since 2026-08-20,
//!   `buraksezer/consistent` v1.0.0) or `legacy` (earlier releases, v0.10.0).
//! - `partitions`, `replicas`, `load`: ring parameters. Changing them breaks
//!   compatibility with the reference allocator.

use serde::Deserialize;
use target_allocator_sdk::ring::{PartitionRing, ReplicaKeyFormat, RingConfig};
use target_allocator_sdk::{AssignInput, Columns, Info, Strategy, UNASSIGNED, options};

pub const NAME: &str = "consistent-hashing";

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RingFormat {
    #[default]
    Current,
    Legacy,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[serde(default)]
    pub ring_format: RingFormat,
    pub partitions: Option<u32>,
    pub replicas: Option<u32>,
    pub load: Option<f64>,
}

impl Options {
    pub fn ring_config(&self) -> Result<RingConfig, String> {
        let default = RingConfig::default();
        let config = RingConfig {
            partitions: self.partitions.unwrap_or(default.partitions),
            replicas: self.replicas.unwrap_or(default.replicas),
            load: self.load.unwrap_or(default.load),
            format: match self.ring_format {
                RingFormat::Current => ReplicaKeyFormat::IndexColonName,
                RingFormat::Legacy => ReplicaKeyFormat::NameIndex,
            },
        };
        if config.partitions == 0 || config.partitions > 1_000_000 {
            return Err(format!("partitions must be between 1 and 1000000, got {}", config.partitions));
        }
        if config.replicas == 0 || config.replicas > 1000 {
            return Err(format!("replicas must be between 1 and 1000, got {}", config.replicas));
        }
        if !(config.load >= 1.0 && config.load <= 100.0) {
            return Err(format!("load must be between 1.0 and 100.0, got {}", config.load));
        }
        Ok(config)
    }
}

#[derive(Default)]
pub struct ConsistentHashing;

impl Strategy for ConsistentHashing {
    fn info(&self) -> Info {
        Info {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reference-compatible bounded-load partition ring over target addresses (default)"
                .into(),
            needs_labels: Vec::new(),
            needs_columns: Columns { address_hash: true, ..Columns::NONE },
        }
    }

    fn validate_options(&self, options: &str) -> Result<(), String> {
        options::parse::<Options>(options)?.ring_config().map(drop)
    }

    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let config = options::parse::<Options>(&input.options)?.ring_config()?;
        let ring = PartitionRing::build(&input.collectors.names, &config).map_err(|e| e.to_string())?;
        Ok(input.targets.address_hash.iter().map(|&h| ring.owner(h).unwrap_or(UNASSIGNED)).collect())
    }
}

target_allocator_sdk::export_strategy!(ConsistentHashing);

#[cfg(test)]
mod tests {
    use super::*;
    use target_allocator_sdk::testing;

    #[test]
    fn passes_the_sdk_invariants() {
        // The reference ring moves up to about 2.5x the minimum (load-cap effects).
        let columns = ConsistentHashing.info().needs_columns;
        testing::check_all(
            &mut |i: &AssignInput| ConsistentHashing.assign(&testing::only_columns(i, columns)),
            3.0,
        )
        .unwrap();
    }

    #[test]
    fn no_collectors_means_unassigned() {
        let input = testing::fixture(5, 0, 1);
        assert_eq!(ConsistentHashing.assign(&input).unwrap(), vec![UNASSIGNED; 5]);
    }

    #[test]
    fn options_are_validated() {
        let s = ConsistentHashing;
        assert!(s.validate_options("").is_ok());
        assert!(s.validate_options(r#"{"ring_format":"legacy"}"#).is_ok());
        assert!(s.validate_options(r#"{"ring_format":"old"}"#).unwrap_err().contains("unknown variant"));
        assert!(s.validate_options(r#"{"load":0.5}"#).unwrap_err().contains("load"));
        assert!(s.validate_options(r#"{"ring":"legacy"}"#).unwrap_err().contains("unknown field"));
    }
}
