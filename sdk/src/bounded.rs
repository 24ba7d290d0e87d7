//! Rendezvous hashing with bounded loads.
//!
//! Hashing balances only on average: with 10k targets on 10 collectors the
//! busiest collector gets about 10 % more than the mean, and weighted targets
//! make it worse. [`assign`] caps every collector's load at (1 + ε) × the mean
//! ([`Loads`]) and sends each target to the best-ranked collector that has
//! room, keeping targets where they are whenever they still fit. The result
//! stays close to plain rendezvous hashing: adding a collector takes over the
//! targets that rank it first, removing one moves only its targets (plus the
//! few that overflowed and now fit where they rank best).
//!
//! Strategies choose the collectors each target may hash over
//! ([`Candidates`]): all of them, or the collectors of the target's zone.
//!
//! ```
//! use target_allocator_sdk::bounded::{self, Candidates, Loads};
//! use target_allocator_sdk::testing;
//!
//! let input = testing::fixture(1000, 7, 1);
//! let weights = vec![1.0; input.targets.len()];
//! let mut loads = Loads::new(vec![0.0; input.collectors.len()], &weights, 0.1);
//! let all = Candidates::all(&input);
//! let out = bounded::assign(&input.targets.address_hash, &weights, &input.targets.previous, &mut loads, |_| &all);
//! assert!(testing::balance(&out, 7).max_over_mean <= 1.1);
//! ```

use crate::hash::{rendezvous, rendezvous_ranking, xxhash64};
use crate::{AssignInput, UNASSIGNED};

/// A set of collectors that targets hash over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    collectors: Vec<u32>,
    /// Per candidate: xxhash64 of its name, so a collector keeps its hash
    /// (and its targets) when others come and go.
    hashes: Vec<u64>,
}

impl Candidates {
    /// The collectors with indices `collectors` (into `input.collectors`).
    pub fn new(input: &AssignInput, collectors: impl IntoIterator<Item = u32>) -> Candidates {
        let collectors: Vec<u32> = collectors.into_iter().collect();
        let hashes =
            collectors.iter().map(|&c| xxhash64(input.collectors.names[c as usize].as_bytes())).collect();
        Candidates { collectors, hashes }
    }

    /// Every collector of `input`.
    pub fn all(input: &AssignInput) -> Candidates {
        Candidates::new(input, 0..input.collectors.len() as u32)
    }

    pub fn len(&self) -> usize {
        self.collectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.collectors.is_empty()
    }

    /// The collector `key` ranks first, if there is any.
    pub fn first(&self, key: u64) -> Option<u32> {
        rendezvous(key, &self.hashes).map(|i| self.collectors[i as usize])
    }

    /// Every candidate in `key`'s order of preference, into `out`.
    pub fn ranked(&self, key: u64, out: &mut Vec<u32>) {
        rendezvous_ranking(key, &self.hashes, out);
        for slot in out.iter_mut() {
            *slot = self.collectors[*slot as usize];
        }
    }
}

/// Per-collector load against a common cap.
#[derive(Clone, Debug, PartialEq)]
pub struct Loads {
    load: Vec<f64>,
    cap: f64,
}

impl Loads {
    /// `held[c]` is the load collector `c` carries outside the batch (one
    /// entry per collector); `weights` are the batch's targets. The cap is
    /// `max((1 + ε) · mean, mean + heaviest · (1 − 1/N))`, mean over
    /// everything held and in the batch. The second term guarantees that every
    /// target fits somewhere; it wins only when a single target is heavy next
    /// to ε · mean (small batches, extreme weights), so loads stay within
    /// (1 + ε) · mean whenever `heaviest ≤ ε · mean · N/(N−1)`.
    pub fn new(held: Vec<f64>, weights: &[f64], epsilon: f64) -> Loads {
        let n = held.len();
        if n == 0 {
            return Loads { load: held, cap: 0.0 };
        }
        let total = held.iter().sum::<f64>() + weights.iter().sum::<f64>();
        let heaviest = weights.iter().copied().fold(0.0, f64::max);
        let mean = total / n as f64;
        let cap = ((1.0 + epsilon) * mean).max(mean + heaviest * (1.0 - 1.0 / n as f64));
        Loads { load: held, cap }
    }

    /// The most any collector may carry.
    pub fn cap(&self) -> f64 {
        self.cap
    }

    /// What collector `c` carries so far.
    pub fn load(&self, c: u32) -> f64 {
        self.load[c as usize]
    }

    /// Whether collector `c` can take `weight` more without exceeding the cap
    /// (with a tolerance for rounding).
    pub fn fits(&self, c: u32, weight: f64) -> bool {
        self.load[c as usize] + weight <= self.cap * (1.0 + 1e-12)
    }

    fn add(&mut self, c: u32, weight: f64) {
        self.load[c as usize] += weight;
    }

    /// The collector with the least load (the smallest index among equals).
    pub fn least_loaded(&self) -> Option<u32> {
        (0..self.load.len() as u32).min_by(|&a, &b| self.load(a).total_cmp(&self.load(b)))
    }
}

/// Assigns each target `i` (key `keys[i]`, weight `weights[i]`, collector
/// `previous[i]` before the call or [`UNASSIGNED`]; `previous` may be empty)
/// to a collector of `candidates(i)`, never exceeding `loads`' cap:
///
/// 1. Targets already on the candidate their key ranks first stay, while it
///    has room.
/// 2. The others, in key order, go to the first of: that top-ranked
///    candidate, their previous collector, the next candidate in rank order
///    that has room, and, when every candidate is full, the least-loaded
///    collector overall (for zones: the spill to another zone).
///
/// Targets are processed in key order, so the result does not depend on the
/// order of the batch except among equal keys. Feeding the result back as
/// `previous` moves nothing. Every entry is [`UNASSIGNED`] when there are no
/// collectors.
pub fn assign<'a>(
    keys: &[u64],
    weights: &[f64],
    previous: &[u32],
    loads: &mut Loads,
    candidates: impl Fn(usize) -> &'a Candidates,
) -> Vec<u32> {
    let n = keys.len();
    let collectors = loads.load.len();
    let mut out = vec![UNASSIGNED; n];
    if collectors == 0 {
        return out;
    }
    let previous = |i: usize| previous.get(i).copied().filter(|&p| (p as usize) < collectors);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by_key(|&i| (keys[i], i));
    let first: Vec<Option<u32>> = (0..n).map(|i| candidates(i).first(keys[i])).collect();

    for &i in &order {
        if let Some(c) = first[i].filter(|&c| previous(i) == Some(c) && loads.fits(c, weights[i])) {
            loads.add(c, weights[i]);
            out[i] = c;
        }
    }
    let mut ranked = Vec::new();
    for &i in &order {
        if out[i] != UNASSIGNED {
            continue;
        }
        let w = weights[i];
        let chosen = [first[i], previous(i)]
            .into_iter()
            .flatten()
            .find(|&c| loads.fits(c, w))
            .or_else(|| {
                candidates(i).ranked(keys[i], &mut ranked);
                ranked.iter().copied().find(|&c| loads.fits(c, w))
            })
            .or_else(|| loads.least_loaded())
            .expect("there is at least one collector");
        loads.add(chosen, w);
        out[i] = chosen;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, fixture};

    fn run(input: &AssignInput, weights: &[f64], epsilon: f64) -> (Vec<u32>, Loads) {
        let held = (0..input.collectors.len()).map(|c| f64::from(input.load.collector(c))).collect();
        let mut loads = Loads::new(held, weights, epsilon);
        let all = Candidates::all(input);
        let out = assign(&input.targets.address_hash, weights, &input.targets.previous, &mut loads, |_| &all);
        (out, loads)
    }

    #[test]
    fn caps_every_collector_and_is_stable() {
        for epsilon in [0.0, 0.05, 0.25] {
            let mut input = fixture(10_000, 10, 3);
            let weights = vec![1.0; 10_000];
            let (out, loads) = run(&input, &weights, epsilon);
            let balance = testing::balance(&out, 10);
            assert!(balance.max_over_mean <= 1.0 + epsilon + 1e-9, "ε {epsilon}: {balance:?}");
            assert!((0..10).all(|c| loads.load(c) <= loads.cap()));
            input.targets.previous = out.clone();
            assert_eq!(run(&input, &weights, epsilon).0, out, "feeding the result back moves nothing");
        }
    }

    #[test]
    fn the_order_of_the_batch_does_not_matter() {
        let input = fixture(3000, 7, 8);
        let weights: Vec<f64> = (0..3000).map(|i| (1 + i % 5) as f64).collect();
        let (out, _) = run(&input, &weights, 0.05);
        // The same targets, reversed.
        let mut reversed = input.clone();
        reversed.targets.address_hash.reverse();
        let reversed_weights: Vec<f64> = weights.iter().rev().copied().collect();
        let (mut out_reversed, _) = run(&reversed, &reversed_weights, 0.05);
        out_reversed.reverse();
        assert_eq!(out, out_reversed);
    }

    #[test]
    fn with_room_everywhere_it_is_plain_rendezvous() {
        let input = fixture(2000, 9, 4);
        let (out, _) = run(&input, &vec![1.0; 2000], 100.0);
        let all = Candidates::all(&input);
        let plain: Vec<u32> = input.targets.address_hash.iter().map(|&k| all.first(k).unwrap()).collect();
        assert_eq!(out, plain);
    }

    #[test]
    fn full_candidates_spill_to_the_least_loaded_collector() {
        let input = fixture(90, 3, 5);
        // Every target may only go to collector 0, which can take a third of them.
        let only_first = Candidates::new(&input, [0]);
        let weights = vec![1.0; 90];
        let mut loads = Loads::new(vec![0.0, 10.0, 0.0], &weights, 0.0);
        let out = assign(&input.targets.address_hash, &weights, &[], &mut loads, |_| &only_first);
        let counts: Vec<usize> = (0..3).map(|c| out.iter().filter(|&&o| o == c).count()).collect();
        // Total 100, cap 100/3 + 2/3 = 34: collector 0 fills up, the rest levels the others.
        assert_eq!(counts, [34, 23, 33]);
    }

    #[test]
    fn every_target_fits_even_when_one_is_heavy() {
        let input = fixture(20, 4, 6);
        let mut weights = vec![1.0; 20];
        weights[7] = 50.0;
        let (out, loads) = run(&input, &weights, 0.1);
        assert!(out.iter().all(|&c| c < 4));
        assert!((0..4).all(|c| loads.load(c) <= loads.cap() * (1.0 + 1e-12)));
    }

    #[test]
    fn no_collectors_means_unassigned() {
        let input = fixture(5, 0, 1);
        assert_eq!(run(&input, &[1.0; 5], 0.25).0, vec![UNASSIGNED; 5]);
    }
}
