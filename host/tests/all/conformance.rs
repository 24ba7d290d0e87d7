//! Each built-in, run through the Wasm path, against the reference semantics.
//!
//! consistent-hashing is checked against `GoRing`, an independent model of
//! `buraksezer/consistent` written here the way the Go library is structured
//! (a hash → member map, a sorted slice with duplicates, float loads), and
//! against golden owners produced by the real Go library
//! (`tests/data/reference-ring-golden.json`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use target_allocator::allocation::{Allocator, Collector, StrategyChoice};
use target_allocator_sdk::hash::xxhash64;
use target_allocator_sdk::{AssignInput, Collectors, FALLBACK, NO_NODE, Targets, UNASSIGNED};

use crate::support::{addresses, builtin, collectors, job_target, target};

/// The Go library's algorithm, step by step, with its version differences.
struct GoRing {
    partitions: HashMap<u64, String>,
}

impl GoRing {
    const PARTITION_COUNT: u64 = 1061;
    const REPLICATION_FACTOR: usize = 5;
    const LOAD: f64 = 1.1;

    /// `None` where the library panics ("not enough room").
    fn new(members: &[String], legacy: bool) -> Option<GoRing> {
        let mut ring: HashMap<u64, String> = HashMap::new();
        let mut sorted_set: Vec<u64> = Vec::new();
        let mut member_set: HashSet<String> = HashSet::new();
        for member in members {
            for i in 0..Self::REPLICATION_FACTOR {
                let key = if legacy { format!("{member}{i}") } else { format!("{i}:{member}") };
                let h = xxhash64(key.as_bytes());
                ring.insert(h, member.clone());
                sorted_set.push(h);
            }
            sorted_set.sort();
            member_set.insert(member.clone());
        }
        let mut partitions = HashMap::new();
        if members.is_empty() {
            return Some(GoRing { partitions });
        }
        let avg_load = if legacy {
            ((Self::PARTITION_COUNT / member_set.len() as u64) as f64 * Self::LOAD).ceil()
        } else {
            (Self::PARTITION_COUNT as f64 / member_set.len() as f64 * Self::LOAD).ceil()
        };
        let mut loads: HashMap<String, f64> = HashMap::new();
        for part_id in 0..Self::PARTITION_COUNT {
            let key = xxhash64(&part_id.to_le_bytes());
            let mut idx = sorted_set.iter().position(|&h| h >= key).unwrap_or(sorted_set.len());
            if idx >= sorted_set.len() {
                idx = 0;
            }
            let mut count = 0;
            loop {
                count += 1;
                let out_of_room = if legacy { count >= sorted_set.len() } else { count > sorted_set.len() };
                if out_of_room {
                    return None;
                }
                let member = &ring[&sorted_set[idx]];
                let load = loads.get(member).copied().unwrap_or(0.0);
                if load + 1.0 <= avg_load {
                    partitions.insert(part_id, member.clone());
                    *loads.entry(member.clone()).or_default() += 1.0;
                    break;
                }
                idx += 1;
                if idx >= sorted_set.len() {
                    idx = 0;
                }
            }
        }
        Some(GoRing { partitions })
    }

    fn locate(&self, key: &str) -> Option<&str> {
        self.partitions.get(&(xxhash64(key.as_bytes()) % Self::PARTITION_COUNT)).map(String::as_str)
    }
}

fn input_for(names: &[String], addrs: &[String], options: &str) -> AssignInput {
    AssignInput {
        collectors: Collectors { names: names.to_vec(), node: vec![NO_NODE; names.len()] },
        targets: Targets {
            count: addrs.len() as u32,
            address_hash: addrs.iter().map(|a| xxhash64(a.as_bytes())).collect(),
            identity: (0..addrs.len() as u64).collect(),
            job: vec![0; addrs.len()],
            node: vec![NO_NODE; addrs.len()],
            previous: vec![UNASSIGNED; addrs.len()],
        },
        jobs: vec!["job".into()],
        options: options.into(),
        ..AssignInput::default()
    }
}

fn sorted_names(prefix: &str, n: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    // The host hands strategies collectors sorted by name.
    names.sort();
    names
}

fn check_against_model(format: &str, legacy: bool, counts: impl Iterator<Item = usize>, addrs: &[String]) {
    let wasm = builtin("consistent-hashing");
    let options = format!(r#"{{"ring_format":"{format}"}}"#);
    for n in counts {
        let names = sorted_names("collector-", n);
        let model = GoRing::new(&names, legacy).expect("the reference places every partition");
        let output = wasm.assign(&input_for(&names, addrs, &options)).expect("assign");
        for (address, &c) in addrs.iter().zip(&output) {
            assert_eq!(
                Some(names[c as usize].as_str()),
                model.locate(address),
                "{format} ring, {n} collectors, address {address}"
            );
        }
    }
}

#[test]
fn consistent_hashing_matches_the_reference_ring_for_1_to_300_collectors() {
    let addrs = addresses(3000);
    check_against_model("current", false, 1..=300, &addrs);
}

#[test]
fn consistent_hashing_legacy_format_matches_the_older_reference_ring() {
    let addrs = addresses(3000);
    check_against_model("legacy", true, 1..=300, &addrs);
}

#[test]
fn consistent_hashing_matches_the_real_go_library() {
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("../data/reference-ring-golden.json")).expect("golden file parses");
    let wasm = builtin("consistent-hashing");
    // The key → partition mapping (xxhash64 of the address, mod 1061).
    for key in golden["keys"].as_array().unwrap() {
        let address = key["address"].as_str().unwrap();
        assert_eq!(xxhash64(address.as_bytes()) % 1061, key["partition"].as_u64().unwrap(), "{address}");
    }
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for case in cases {
        let n = case["members"].as_u64().unwrap() as usize;
        let format = case["format"].as_str().unwrap();
        let prefix = if case["scheme"] == "collector" { "collector-" } else { "otel-collector-" };
        let golden_names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        let names = sorted_names(prefix, n);
        let options = format!(r#"{{"ring_format":"{format}"}}"#);
        if case["panic"].as_bool().unwrap() {
            assert!(wasm.assign(&input_for(&names, &["a:1".into()], &options)).is_err());
            continue;
        }
        // One target per partition: a key whose hash lands in partition p.
        let owners = case["owners"].as_array().unwrap();
        let mut keys = vec![None; 1061];
        let mut i = 0u64;
        while keys.iter().any(Option::is_none) {
            let address = format!("probe-{i}:80");
            let p = (xxhash64(address.as_bytes()) % 1061) as usize;
            keys[p].get_or_insert(address);
            i += 1;
        }
        let keys: Vec<String> = keys.into_iter().map(Option::unwrap).collect();
        let output = wasm.assign(&input_for(&names, &keys, &options)).expect("assign");
        for (p, &c) in output.iter().enumerate() {
            let expected = &golden_names[owners[p].as_u64().unwrap() as usize];
            assert_eq!(&names[c as usize], expected, "{format}/{prefix}{n}: partition {p}");
        }
    }
}

#[test]
fn consistent_hashing_is_order_independent_and_agrees_across_allocators() {
    // Two allocators fed the same collectors and targets in different orders
    // (as two replicas would be) agree on every target.
    let targets: Vec<_> = addresses(2000).iter().map(|a| target("job", a, &[])).collect();
    let mut a = Allocator::new(StrategyChoice::new(builtin("consistent-hashing")));
    let mut b = Allocator::new(StrategyChoice::new(builtin("consistent-hashing")));
    a.set_collectors(collectors(7));
    a.set_job_targets("job", targets.clone());
    let mut reversed = targets.clone();
    reversed.reverse();
    b.set_job_targets("job", reversed);
    let mut cs = collectors(7);
    cs.reverse();
    b.set_collectors(cs);
    for t in &targets {
        assert_eq!(a.collector_of(t.identity), b.collector_of(t.identity));
    }
}

#[test]
fn least_weighted_balances_breaks_ties_by_job_then_name_and_is_sticky() {
    let lw = builtin("least-weighted");
    let mut allocator = Allocator::new(StrategyChoice::new(lw));
    allocator.set_collectors(collectors(3));
    // Six targets of job "a": two each, exactly balanced.
    let first: Vec<_> = (0..6).map(|i| job_target("a", &format!("a{i}:1"))).collect();
    allocator.set_targets(first.clone());
    let counts: Vec<usize> = allocator.targets_per_collector().iter().map(|c| c.1).collect();
    assert_eq!(counts, vec![2, 2, 2]);
    // One target of job "b": all collectors tie on totals and on job "b",
    // so the smallest name wins.
    let mut second = first.clone();
    second.push(job_target("b", "b0:1"));
    allocator.set_targets(second.clone());
    assert_eq!(allocator.collector_of(second[6].1.identity).unwrap().id.as_ref(), "collector-0");
    // Another "b": collector-0 is fuller; 1 and 2 tie; name order picks collector-1.
    let mut third = second.clone();
    third.push(job_target("b", "b1:1"));
    allocator.set_targets(third.clone());
    assert_eq!(allocator.collector_of(third[7].1.identity).unwrap().id.as_ref(), "collector-1");
    // A new collector moves nothing.
    let before: Vec<_> = third.iter().map(|(_, t)| allocator.collector_of(t.identity).cloned()).collect();
    let report = allocator.set_collectors(collectors(4));
    assert_eq!(report.moved, 0);
    let after: Vec<_> = third.iter().map(|(_, t)| allocator.collector_of(t.identity).cloned()).collect();
    assert_eq!(before, after);
    // The next new target goes to the empty collector.
    let mut fourth = third.clone();
    fourth.push(job_target("c", "c0:1"));
    allocator.set_targets(fourth.clone());
    assert_eq!(allocator.collector_of(fourth[8].1.identity).unwrap().id.as_ref(), "collector-3");
    // Removing a collector re-places only its targets.
    let snapshot: Vec<Collector> =
        fourth.iter().map(|(_, t)| allocator.collector_of(t.identity).unwrap().clone()).collect();
    let remaining: Vec<Collector> =
        collectors(4).into_iter().filter(|c| c.id.as_ref() != "collector-1").collect();
    let report = allocator.set_collectors(remaining);
    assert_eq!(report.moved, 0, "orphans are re-placed, nothing moves between live collectors");
    assert_eq!(allocator.unassigned(), 0);
    for ((_, t), was) in fourth.iter().zip(&snapshot) {
        let now = allocator.collector_of(t.identity).unwrap();
        if was.id.as_ref() != "collector-1" {
            assert_eq!(now, was);
        }
    }
}

fn per_node_allocator(fallback: Option<&str>) -> (Allocator, Vec<target_allocator::allocation::Target>) {
    let mut choice = StrategyChoice::new(builtin("per-node"));
    choice.fallback = fallback.map(|name| (builtin(name) as Arc<_>, String::new()));
    let mut allocator = Allocator::new(choice);
    allocator.set_collectors(vec![
        Collector::new("col-a", Some("node-a")),
        Collector::new("col-b", Some("node-b")),
        Collector::new("col-x", None),
    ]);
    let targets = vec![
        target("j", "1:1", &[("__meta_kubernetes_pod_node_name", "node-a")]),
        target("j", "2:1", &[("__meta_kubernetes_node_name", "node-b")]),
        target("j", "3:1", &[("__meta_kubernetes_endpoint_node_name", "node-c")]),
        target(
            "j",
            "4:1",
            &[
                ("__meta_kubernetes_endpointslice_address_target_kind", "Node"),
                ("__meta_kubernetes_endpointslice_address_target_name", "node-b"),
            ],
        ),
        target("j", "apiserver:6443", &[]),
    ];
    allocator.set_job_targets("j", targets.clone());
    (allocator, targets)
}

#[test]
fn per_node_places_targets_on_their_node_and_leaves_the_rest_without_fallback() {
    let (allocator, targets) = per_node_allocator(None);
    let ids: Vec<Option<&str>> =
        targets.iter().map(|t| allocator.collector_of(t.identity).map(|c| c.id.as_ref())).collect();
    assert_eq!(ids, vec![Some("col-a"), Some("col-b"), None, Some("col-b"), None]);
    assert_eq!(allocator.unassigned(), 2);
}

#[test]
fn per_node_sends_node_less_targets_to_the_fallback_only() {
    let (allocator, targets) = per_node_allocator(Some("consistent-hashing"));
    let ids: Vec<Option<&str>> =
        targets.iter().map(|t| allocator.collector_of(t.identity).map(|c| c.id.as_ref())).collect();
    // The node-less target goes where consistent hashing over all collectors puts it;
    // the target on node-c (no collector there) stays unassigned, as in the reference.
    let names: Vec<String> = vec!["col-a".into(), "col-b".into(), "col-x".into()];
    let ring = GoRing::new(&names, false).unwrap();
    assert_eq!(ids[..4], [Some("col-a"), Some("col-b"), None, Some("col-b")]);
    assert_eq!(ids[4], ring.locate("apiserver:6443"));
}

#[test]
fn per_node_defers_with_the_fallback_marker() {
    let pn = builtin("per-node");
    let mut input = input_for(&["c".into()], &["a:1".into(), "b:1".into()], "");
    input.nodes = vec!["n".into()];
    input.collectors.node = vec![0];
    input.targets.node = vec![0, NO_NODE];
    assert_eq!(pn.assign(&input).unwrap(), vec![0, FALLBACK]);
}
