//! `rendezvous`: highest-random-weight hashing, the smallest strategy that
//! moves as few targets as possible when collectors come and go.
//!
//! Every (target, collector) pair gets a pseudo-random score; the target goes
//! to the collector with the highest. A new collector wins about 1/(N+1) of
//! the targets and takes only those; a removed collector's targets go to their
//! second choice and nothing else moves. It needs no state, so every allocator
//! replica computes the same answer.
//!
//! Option (optional): `key`, what is hashed —
//! - `address` (default): the discovered `__address__`, like the reference's
//!   consistent-hashing, so label changes never move a target;
//! - `identity`: the target's labels and job, which spreads targets that share
//!   one `host:port` (several metrics paths, or one exporter in many jobs).

use serde::Deserialize;
use target_allocator_sdk::hash::{rendezvous, xxhash64};
use target_allocator_sdk::{AssignInput, Columns, Info, Strategy, UNASSIGNED, options};

pub const NAME: &str = "rendezvous";

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Key {
    #[default]
    Address,
    Identity,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[serde(default)]
    pub key: Key,
}

#[derive(Default)]
pub struct Rendezvous;

impl Strategy for Rendezvous {
    fn info(&self) -> Info {
        Info {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Rendezvous (highest random weight) hashing: minimal movement, no state".into(),
            needs_labels: Vec::new(),
            // `info` cannot see the options, so ask for both keys.
            needs_columns: Columns { address_hash: true, identity: true, ..Columns::NONE },
        }
    }

    fn validate_options(&self, options: &str) -> Result<(), String> {
        options::parse::<Options>(options).map(drop)
    }

    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let options = options::parse::<Options>(&input.options)?;
        // Hash collectors by name, not index: a collector keeps its targets
        // when others are added or removed and the indices shift.
        let collectors: Vec<u64> = input.collectors.names.iter().map(|n| xxhash64(n.as_bytes())).collect();
        let keys = match options.key {
            Key::Address => &input.targets.address_hash,
            Key::Identity => &input.targets.identity,
        };
        Ok(keys.iter().map(|&key| rendezvous(key, &collectors).unwrap_or(UNASSIGNED)).collect())
    }
}

target_allocator_sdk::export_strategy!(Rendezvous);

#[cfg(test)]
mod tests {
    use super::*;
    use target_allocator_sdk::testing;

    fn assign_as_host(input: &AssignInput) -> Result<Vec<u32>, String> {
        Rendezvous.assign(&testing::only_columns(input, Rendezvous.info().needs_columns))
    }

    #[test]
    fn passes_the_sdk_invariants() {
        testing::check_all(&mut assign_as_host, 1.2).unwrap();
    }

    #[test]
    fn movement_is_minimal_on_10k_targets() {
        for (collectors, seed) in [(10, 1), (30, 2)] {
            let input = testing::fixture(10_000, collectors, seed);
            let up = testing::scale_up(&mut assign_as_host, &input).unwrap();
            // Only the new collector's share moves: about 10k/(N+1).
            let allowed = 1.2 * 10_000.0 / (collectors + 1) as f64;
            eprintln!("rendezvous N={collectors} scale-up: moved {} (minimum {})", up.moved, up.minimum);
            assert!(up.moved as f64 <= allowed, "moved {} > {allowed}", up.moved);
            let down = testing::scale_down(&mut assign_as_host, &input).unwrap();
            assert_eq!(down.moved, down.minimum, "only the removed collector's targets move");
        }
    }

    #[test]
    fn balance_is_that_of_random_placement() {
        let input = testing::fixture(10_000, 10, 3);
        let balance = testing::balance(&assign_as_host(&input).unwrap(), 10);
        eprintln!("rendezvous 10k/10: {balance:?}");
        // 1000 per collector on average, standard deviation about √1000 ≈ 32.
        assert!(balance.max_over_mean < 1.1 && balance.min_over_mean > 0.9, "{balance:?}");
    }

    #[test]
    fn identity_key_spreads_targets_sharing_an_address() {
        let mut input = testing::fixture(300, 5, 4);
        input.targets.address_hash = vec![42; 300];
        let by_address = assign_as_host(&input).unwrap();
        assert!(by_address.iter().all(|&c| c == by_address[0]));
        input.options = r#"{"key": "identity"}"#.into();
        let by_identity = assign_as_host(&input).unwrap();
        assert!(testing::balance(&by_identity, 5).min_over_mean > 0.5);
    }

    #[test]
    fn options_are_validated() {
        assert!(Rendezvous.validate_options("").is_ok());
        assert!(Rendezvous.validate_options(r#"{"key":"identity"}"#).is_ok());
        assert!(Rendezvous.validate_options(r#"{"key":"labels"}"#).unwrap_err().contains("unknown variant"));
        assert!(Rendezvous.validate_options(r#"{"keys":"address"}"#).unwrap_err().contains("unknown field"));
    }
}
