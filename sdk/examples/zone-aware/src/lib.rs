//! `zone-aware`: scrape targets from collectors in their own zone, to save
//! cross-zone traffic, without letting one zone's collectors drown.
//!
//! A target goes to a collector of its zone by rendezvous hashing. No
//! collector carries more than (1 + `max_skew`) × the mean load of all
//! collectors: when a zone's collectors are full, its remaining targets spill
//! to the least-loaded collector of another zone. Targets without a zone, or
//! whose zone has no collector, hash over all collectors. Targets stay where
//! they are while they fit (see [`target_allocator_sdk::bounded`]).
//!
//! A target's zone is the first of [`ZONE_LABELS`] it has, else the zone of
//! its node in `node_zones`. The contract gives collectors no labels, only a
//! name and a node, so their zones come from the options:
//!
//! - `collector_zones`: collector name prefix → zone; the longest matching
//!   prefix wins (`{"collector-eu-west-1a-": "eu-west-1a"}` for one
//!   StatefulSet per zone, or full pod names);
//! - `node_zones`: node name → zone, for collectors no prefix matches and for
//!   targets without a zone label;
//! - `max_skew` (default 0.5): how far above the mean a collector may go
//!   before its zone's targets spill elsewhere. A large value (e.g. 100)
//!   never spills.
//!
//! At least one of `collector_zones` and `node_zones` is required.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use target_allocator_sdk::bounded::{self, Candidates, Loads};
use target_allocator_sdk::{AssignInput, Columns, Info, Strategy, options};

pub const NAME: &str = "zone-aware";

/// Where a target's zone comes from, first present wins. `info` cannot see
/// the options (the host asks for labels once, at load time), so to read
/// another label, change this list.
pub const ZONE_LABELS: &[&str] = &[
    // kubernetes_sd, role endpointslice (ServiceMonitors).
    "__meta_kubernetes_endpointslice_endpoint_zone",
    // role node; roles pod, endpoints and endpointslice with `attach_metadata: {node: true}`.
    "__meta_kubernetes_node_label_topology_kubernetes_io_zone",
    // ec2_sd and gce_sd.
    "__meta_ec2_availability_zone",
    "__meta_gce_zone",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    pub collector_zones: BTreeMap<String, String>,
    pub node_zones: BTreeMap<String, String>,
    pub max_skew: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { collector_zones: BTreeMap::new(), node_zones: BTreeMap::new(), max_skew: 0.5 }
    }
}

impl Options {
    pub fn parse(text: &str) -> Result<Options, String> {
        let options: Options = options::parse(text)?;
        if options.collector_zones.is_empty() && options.node_zones.is_empty() {
            return Err("zone-aware needs `collector_zones` or `node_zones` for the collectors' zones".into());
        }
        if !(0.0..=100.0).contains(&options.max_skew) {
            return Err(format!("max_skew must be between 0 and 100, got {}", options.max_skew));
        }
        Ok(options)
    }

    /// The zone of the collector `name` running on `node`.
    pub fn collector_zone(&self, name: &str, node: Option<&str>) -> Option<&str> {
        let by_prefix = self.collector_zones.iter().filter(|(prefix, _)| name.starts_with(prefix.as_str()));
        match by_prefix.max_by_key(|(prefix, _)| prefix.len()) {
            Some((_, zone)) => Some(zone),
            None => self.node_zone(node),
        }
    }

    fn node_zone(&self, node: Option<&str>) -> Option<&str> {
        node.and_then(|n| self.node_zones.get(n)).map(String::as_str)
    }
}

#[derive(Default)]
pub struct ZoneAware;

impl Strategy for ZoneAware {
    fn info(&self) -> Info {
        Info {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Targets go to collectors of their own zone, up to a skew limit".into(),
            needs_labels: ZONE_LABELS.iter().map(|&l| l.into()).collect(),
            // `node` also brings the collectors' nodes: the host sends those
            // only to strategies that ask for the node column.
            needs_columns: Columns { address_hash: true, node: true, previous: true, ..Columns::NONE },
        }
    }

    fn validate_options(&self, options: &str) -> Result<(), String> {
        Options::parse(options).map(drop)
    }

    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let options = Options::parse(&input.options)?;
        let node_name = |node: u32| input.nodes.get(node as usize).map(String::as_str);

        let mut by_zone: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (c, name) in input.collectors.names.iter().enumerate() {
            let node = input.collectors.node.get(c).and_then(|&n| node_name(n));
            if let Some(zone) = options.collector_zone(name, node) {
                by_zone.entry(zone).or_default().push(c as u32);
            }
        }
        let zones: HashMap<&str, Candidates> = by_zone
            .into_iter()
            .map(|(zone, collectors)| (zone, Candidates::new(input, collectors)))
            .collect();
        let all = Candidates::all(input);

        let targets = &input.targets;
        let labels = input.first_label(ZONE_LABELS);
        let zone_of = |i: usize| {
            labels.get(i).or_else(|| options.node_zone(targets.node.get(i).and_then(|&n| node_name(n))))
        };
        let weights = vec![1.0; targets.len()];
        let held = (0..input.collectors.len()).map(|c| f64::from(input.load.collector(c)));
        let mut loads = Loads::new(held.collect(), &weights, options.max_skew);
        Ok(bounded::assign(&targets.address_hash, &weights, &targets.previous, &mut loads, |i| {
            zone_of(i).and_then(|zone| zones.get(zone)).unwrap_or(&all)
        }))
    }
}

target_allocator_sdk::export_strategy!(ZoneAware);

#[cfg(test)]
mod tests {
    use super::*;
    use target_allocator_sdk::{UNASSIGNED, testing};

    fn assign_as_host(input: &AssignInput) -> Result<Vec<u32>, String> {
        ZoneAware.assign(&testing::only_columns(input, ZoneAware.info().needs_columns))
    }

    /// `collectors` named `col-<zone>-<n>` (sorted, as the host sorts them),
    /// `targets` spread over the zones by `share` (the rest without a zone).
    fn zoned(
        targets: usize,
        collectors: &[(&str, usize)],
        share: &[(&str, f64)],
        max_skew: f64,
    ) -> AssignInput {
        let total: usize = collectors.iter().map(|(_, n)| n).sum();
        let mut input = testing::fixture(targets, total, 11);
        input.collectors.names =
            collectors.iter().flat_map(|&(zone, n)| (0..n).map(move |i| format!("col-{zone}-{i}"))).collect();
        let prefixes: Vec<String> =
            collectors.iter().map(|(zone, _)| format!(r#""col-{zone}-": "{zone}""#)).collect();
        input.options =
            format!(r#"{{"collector_zones": {{{}}}, "max_skew": {max_skew}}}"#, prefixes.join(", "));
        let hashes = input.targets.address_hash.clone();
        testing::set_label(&mut input, ZONE_LABELS[0], |i| {
            let mut u = (hashes[i] >> 11) as f64 / (1u64 << 53) as f64;
            share.iter().find_map(|&(zone, s)| {
                u -= s;
                (u < 0.0).then(|| zone.to_string())
            })
        });
        input
    }

    fn zone_of_collector(input: &AssignInput, c: u32) -> &str {
        input.collectors.names[c as usize].split('-').nth(1).unwrap()
    }

    /// Targets with a zone label that ended up in that zone.
    fn in_zone(input: &AssignInput, output: &[u32]) -> (usize, usize) {
        let zones = input.label(ZONE_LABELS[0]).unwrap();
        let labelled: Vec<usize> = (0..output.len()).filter(|&i| zones.get(i).is_some()).collect();
        let kept =
            labelled.iter().filter(|&&i| zones.get(i) == Some(zone_of_collector(input, output[i]))).count();
        (kept, labelled.len())
    }

    #[test]
    fn passes_the_sdk_invariants() {
        // The fixtures' collector i runs on node-i; put node-i in zone i % 3,
        // and give nine targets in ten a zone label.
        let node_zones: Vec<String> = (0..64).map(|i| format!(r#""node-{i}": "z{}""#, i % 3)).collect();
        let options = format!(r#"{{"node_zones": {{{}}}}}"#, node_zones.join(", "));
        testing::check_all(
            &mut |input: &AssignInput| {
                let mut input = input.clone();
                input.options = options.clone();
                let hashes = input.targets.address_hash.clone();
                testing::set_label(&mut input, ZONE_LABELS[1], |i| {
                    (!hashes[i].is_multiple_of(10)).then(|| format!("z{}", hashes[i] % 3))
                });
                assign_as_host(&input)
            },
            1.2,
        )
        .unwrap();
    }

    #[test]
    fn keeps_targets_in_their_zone_when_capacity_allows() {
        let shares = [("a", 0.3), ("b", 0.3), ("c", 0.3)];
        let input = zoned(10_000, &[("a", 3), ("b", 3), ("c", 3)], &shares, 0.5);
        let output = assign_as_host(&input).unwrap();
        let (kept, labelled) = in_zone(&input, &output);
        let balance = testing::balance(&output, 9);
        eprintln!("zone-aware even zones: {kept}/{labelled} in zone, {balance:?}");
        assert_eq!(kept, labelled);
        assert!(balance.max_over_mean <= 1.5, "{balance:?}");
    }

    #[test]
    fn a_crowded_zone_spills_only_what_exceeds_the_skew() {
        // Zone a has half the targets but a third of the collectors.
        let shares = [("a", 0.5), ("b", 0.3), ("c", 0.2)];
        for max_skew in [0.2, 0.5] {
            let input = zoned(10_000, &[("a", 2), ("b", 2), ("c", 2)], &shares, max_skew);
            let output = assign_as_host(&input).unwrap();
            let (kept, labelled) = in_zone(&input, &output);
            let balance = testing::balance(&output, 6);
            // The most that can stay: each zone keeps min(its targets, 2 · cap).
            let cap = (1.0 + max_skew) * 10_000.0 / 6.0;
            let zone_targets = |z: &str| {
                let zones = input.label(ZONE_LABELS[0]).unwrap();
                (0..output.len()).filter(|&i| zones.get(i) == Some(z)).count() as f64
            };
            let best: f64 = ["a", "b", "c"].iter().map(|z| zone_targets(z).min(2.0 * cap.floor())).sum();
            eprintln!(
                "zone-aware 50/30/20 % max_skew {max_skew}: {kept}/{labelled} in zone (best possible {best}), \
                 max/mean {:.3}",
                balance.max_over_mean
            );
            assert!(balance.max_over_mean <= 1.0 + max_skew + 1e-9, "{balance:?}");
            assert!(kept as f64 >= 0.99 * best, "{kept} in zone, {best} possible");
        }
    }

    #[test]
    fn targets_of_a_zone_without_collectors_spread_over_all() {
        let input = zoned(6000, &[("a", 3), ("b", 3)], &[("x", 1.0)], 0.5);
        let balance = testing::balance(&assign_as_host(&input).unwrap(), 6);
        assert!(balance.max_over_mean < 1.15 && balance.min_over_mean > 0.85, "{balance:?}");
    }

    #[test]
    fn adding_a_collector_to_a_zone_moves_only_that_zones_targets() {
        let shares = [("a", 1.0 / 3.0), ("b", 1.0 / 3.0), ("c", 1.0 / 3.0)];
        let input = zoned(10_000, &[("a", 3), ("b", 3), ("c", 3)], &shares, 0.5);
        let before = assign_as_host(&input).unwrap();
        // Add col-a-3: it sorts after col-a-2, so later collectors shift by one.
        let mut grown = input.clone();
        grown.collectors.names.insert(3, "col-a-3".into());
        grown.collectors.node.insert(3, 0);
        grown.targets.previous = before.iter().map(|&c| if c >= 3 { c + 1 } else { c }).collect();
        let after = assign_as_host(&grown).unwrap();
        let zones = input.label(ZONE_LABELS[0]).unwrap();
        let moved: Vec<usize> =
            (0..before.len()).filter(|&i| grown.targets.previous[i] != after[i]).collect();
        let zone_a = (0..before.len()).filter(|&i| zones.get(i) == Some("a")).count();
        eprintln!(
            "zone-aware: adding a 4th collector to zone a moved {} of its {zone_a} targets",
            moved.len()
        );
        assert!(moved.iter().all(|&i| zones.get(i) == Some("a") && after[i] == 3));
        assert!(moved.len() as f64 <= 1.2 * zone_a as f64 / 4.0, "moved {}", moved.len());
    }

    #[test]
    fn zones_come_from_prefixes_then_nodes() {
        let options = Options::parse(
            r#"{"collector_zones": {"col-": "z1", "col-b-": "z2"}, "node_zones": {"n1": "z3", "n2": "z4"}}"#,
        )
        .unwrap();
        assert_eq!(options.collector_zone("col-b-0", Some("n1")), Some("z2"), "longest prefix");
        assert_eq!(options.collector_zone("col-a-0", None), Some("z1"));
        assert_eq!(options.collector_zone("other", Some("n2")), Some("z4"));
        assert_eq!(options.collector_zone("other", Some("n9")), None);
    }

    #[test]
    fn targets_without_a_zone_label_take_their_nodes_zone() {
        let mut input = testing::fixture(4, 2, 1);
        input.nodes = vec!["n-a".into(), "n-b".into(), "n-c".into()];
        input.collectors.node = vec![0, 1];
        input.targets.node = vec![0, 1, 1, 2];
        input.options = r#"{"node_zones": {"n-a": "a", "n-b": "b"}}"#.into();
        testing::set_label(&mut input, ZONE_LABELS[2], |i| (i == 1).then(|| "a".to_string()));
        let output = assign_as_host(&input).unwrap();
        // The label wins over the node; n-c has no zone, so target 3 may go anywhere.
        assert_eq!(output[..3], [0, 0, 1]);
        assert_ne!(output[3], UNASSIGNED);
    }

    #[test]
    fn options_are_validated() {
        assert!(ZoneAware.validate_options(r#"{"node_zones": {"n": "z"}}"#).is_ok());
        assert!(ZoneAware.validate_options("").unwrap_err().contains("collector_zones"));
        let skew = ZoneAware.validate_options(r#"{"node_zones": {"n": "z"}, "max_skew": -0.1}"#);
        assert!(skew.unwrap_err().contains("max_skew"));
        let typo = ZoneAware.validate_options(r#"{"zone_label": "zone"}"#).unwrap_err();
        assert!(typo.contains("unknown field"), "{typo}");
    }
}
