//! `bounded-load`: weighted targets, and no collector above (1 + ε) × the
//! mean load.
//!
//! Targets are not equal: one exporter serves five series, another 500,000.
//! Give heavy targets a weight and this strategy balances the sum of weights:
//! each target goes to its rendezvous-hash choice unless that collector would
//! exceed the cap, then to its next choice (consistent hashing with bounded
//! loads, see [`target_allocator_sdk::bounded`]). Targets stay where they are
//! while they fit, so membership changes move little.
//!
//! A target's weight is the first of [`WEIGHT_LABELS`] it has: a positive
//! number (at most [`MAX_WEIGHT`]); absent or anything else counts as 1.
//!
//! Option (optional): `epsilon` (default 0.25), the allowed excess over the
//! mean. Smaller is more even but moves more targets when collectors change.
//! The bound holds while no single target outweighs ε × the mean load; past
//! that, a collector may carry up to the mean plus the heaviest target (a
//! greedy placement needs that slack to always find room).

use serde::Deserialize;
use target_allocator_sdk::bounded::{self, Candidates, Loads};
use target_allocator_sdk::{AssignInput, Columns, Info, Strategy, options};

pub const NAME: &str = "bounded-load";

/// Where a target's weight comes from, first present wins. `info` cannot see
/// the options (the host asks for labels once, at load time), so to read
/// another label, change this list.
pub const WEIGHT_LABELS: &[&str] = &[
    // The pod annotation `opentelemetry.io/target-allocation-weight`.
    "__meta_kubernetes_pod_annotation_opentelemetry_io_target_allocation_weight",
    // The same annotation on the service (roles service, endpoints, endpointslice).
    "__meta_kubernetes_service_annotation_opentelemetry_io_target_allocation_weight",
    // For static_configs and file_sd: `__` labels are dropped after relabeling,
    // so the weight never reaches the series.
    "__target_allocation_weight",
];

/// Larger weights are clamped, so one typo cannot starve every other collector.
pub const MAX_WEIGHT: f64 = 1_000_000.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    pub epsilon: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { epsilon: 0.25 }
    }
}

impl Options {
    pub fn parse(text: &str) -> Result<Options, String> {
        let options: Options = options::parse(text)?;
        if !(0.0..=10.0).contains(&options.epsilon) {
            return Err(format!("epsilon must be between 0 and 10, got {}", options.epsilon));
        }
        Ok(options)
    }
}

/// The weight a label value gives.
pub fn weight(value: Option<&str>) -> f64 {
    match value.and_then(|v| v.trim().parse::<f64>().ok()) {
        Some(w) if w > 0.0 => w.min(MAX_WEIGHT), // NaN fails `> 0`, infinity is clamped
        _ => 1.0,
    }
}

#[derive(Default)]
pub struct BoundedLoad;

impl Strategy for BoundedLoad {
    fn info(&self) -> Info {
        Info {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Weighted hashing with bounded loads: no collector above (1+ε) × the mean".into(),
            needs_labels: WEIGHT_LABELS.iter().map(|&l| l.into()).collect(),
            needs_columns: Columns { address_hash: true, previous: true, ..Columns::NONE },
        }
    }

    fn validate_options(&self, options: &str) -> Result<(), String> {
        Options::parse(options).map(drop)
    }

    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let options = Options::parse(&input.options)?;
        let labels = input.first_label(WEIGHT_LABELS);
        let weights: Vec<f64> = (0..input.targets.len()).map(|i| weight(labels.get(i))).collect();
        // For a batch of new targets the host reports how many targets each
        // collector already holds, not their weights: count them at the batch's
        // mean weight.
        let mean_weight = match weights.len() {
            0 => 1.0,
            n => weights.iter().sum::<f64>() / n as f64,
        };
        let held = (0..input.collectors.len()).map(|c| f64::from(input.load.collector(c)) * mean_weight);
        let mut loads = Loads::new(held.collect(), &weights, options.epsilon);
        let all = Candidates::all(input);
        let targets = &input.targets;
        Ok(bounded::assign(&targets.address_hash, &weights, &targets.previous, &mut loads, |_| &all))
    }
}

target_allocator_sdk::export_strategy!(BoundedLoad);

#[cfg(test)]
mod tests {
    use super::*;
    use target_allocator_sdk::hash::mix64;
    use target_allocator_sdk::testing;

    fn assign_as_host(input: &AssignInput) -> Result<Vec<u32>, String> {
        BoundedLoad.assign(&testing::only_columns(input, BoundedLoad.info().needs_columns))
    }

    /// `targets` targets, one in ten heavy (weight 2 to 50), on `collectors`.
    fn weighted(targets: usize, collectors: usize, seed: u64, epsilon: f64) -> AssignInput {
        let mut input = testing::fixture(targets, collectors, seed);
        let hashes = input.targets.address_hash.clone();
        testing::set_label(&mut input, WEIGHT_LABELS[0], |i| {
            let r = mix64(hashes[i] ^ seed);
            r.is_multiple_of(10).then(|| (2 + (r >> 8) % 49).to_string())
        });
        input.options = format!(r#"{{"epsilon": {epsilon}}}"#);
        input
    }

    fn weights(input: &AssignInput) -> Vec<f64> {
        let labels = input.first_label(WEIGHT_LABELS);
        (0..input.targets.len()).map(|i| weight(labels.get(i))).collect()
    }

    /// Max and min over mean of the summed weights per collector.
    fn weighted_balance(input: &AssignInput, output: &[u32]) -> (f64, f64) {
        let mut load = vec![0.0; input.collectors.len()];
        for (&c, w) in output.iter().zip(weights(input)) {
            load[c as usize] += w;
        }
        let mean = load.iter().sum::<f64>() / load.len() as f64;
        let (max, min) = load.iter().fold((0.0, f64::MAX), |(max, min), &l| (l.max(max), l.min(min)));
        (max / mean, min / mean)
    }

    #[test]
    fn passes_the_sdk_invariants() {
        // Unweighted: at most 1.2x the minimal movement (measured about 1.0-1.1x).
        testing::check_all(&mut assign_as_host, 1.2).unwrap();
    }

    #[test]
    fn weighted_loads_stay_within_epsilon_of_the_mean() {
        // Mean weight 3.5: at 50 collectors the mean load is 700 and a weight-50
        // target exceeds 0.05 · 700, so the bound there is 1 + 49/700.
        for (collectors, epsilon) in [(10, 0.25), (10, 0.05), (50, 0.25), (50, 0.05)] {
            let input = weighted(10_000, collectors, 7, epsilon);
            let output = assign_as_host(&input).unwrap();
            let (max, min) = weighted_balance(&input, &output);
            // The bound: 1 + ε, unless one target outweighs ε · mean (see `Loads::new`).
            let weights = weights(&input);
            let mean = weights.iter().sum::<f64>() / collectors as f64;
            let heaviest = weights.iter().copied().fold(0.0, f64::max);
            let bound = 1.0 + epsilon.max(heaviest * (1.0 - 1.0 / collectors as f64) / mean);
            eprintln!(
                "bounded-load 10k/{collectors} ε={epsilon}: max/mean {max:.3} (bound {bound:.3}), min/mean {min:.3}"
            );
            assert!(max <= bound + 1e-9, "max/mean {max} > {bound}");
            if heaviest <= epsilon * mean {
                assert!(max <= 1.0 + epsilon + 1e-9);
            }
            // Plain rendezvous for comparison: the cap changes nothing unless
            // it binds, and then it lowers the maximum to the bound.
            let plain = plain_rendezvous(&input);
            let (plain_max, _) = weighted_balance(&input, &plain);
            eprintln!("  plain rendezvous on the same weights: max/mean {plain_max:.3}");
            assert!(max <= plain_max + 1e-9);
            if plain_max <= 1.0 + epsilon {
                assert_eq!(output, plain);
            }
        }
    }

    /// Rendezvous without bounds (what the cap improves on).
    fn plain_rendezvous(input: &AssignInput) -> Vec<u32> {
        let all = Candidates::all(input);
        input.targets.address_hash.iter().map(|&k| all.first(k).unwrap()).collect()
    }

    #[test]
    fn weighted_movement_stays_near_the_minimum() {
        for (collectors, epsilon) in [(10, 0.25), (30, 0.25), (10, 0.05)] {
            let input = weighted(10_000, collectors, 8, epsilon);
            let up = testing::scale_up(&mut assign_as_host, &input).unwrap();
            let down = testing::scale_down(&mut assign_as_host, &input).unwrap();
            eprintln!(
                "bounded-load 10k/{collectors} ε={epsilon}: scale-up moved {} ({:.2}x minimum {}), \
                 scale-down moved {} ({:.2}x minimum {})",
                up.moved,
                up.ratio(),
                up.minimum,
                down.moved,
                down.ratio(),
                down.minimum
            );
            let limit = if epsilon >= 0.25 { 1.3 } else { 2.0 };
            assert!(up.ratio() <= limit && down.ratio() <= limit, "{up:?} {down:?}");
        }
    }

    #[test]
    fn a_batch_of_new_targets_avoids_busy_collectors() {
        let mut input = testing::fixture(1000, 4, 9);
        // Collector 0 already holds 2000 targets, the others 100.
        input.load.collector_targets = vec![2000, 100, 100, 100];
        let output = assign_as_host(&input).unwrap();
        let counts: Vec<usize> = (0..4).map(|c| output.iter().filter(|&&o| o == c).count()).collect();
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[1..].iter().all(|&n| (280..=390).contains(&n)), "{counts:?}");
    }

    #[test]
    fn invalid_or_absent_weights_count_as_one() {
        assert_eq!(weight(None), 1.0);
        assert_eq!(weight(Some("7")), 7.0);
        assert_eq!(weight(Some(" 2.5 ")), 2.5);
        for bad in ["", "heavy", "-3", "0", "NaN", "1e3x"] {
            assert_eq!(weight(Some(bad)), 1.0, "{bad:?}");
        }
        assert_eq!(weight(Some("inf")), MAX_WEIGHT);
        assert_eq!(weight(Some("1e300")), MAX_WEIGHT);
    }

    #[test]
    fn options_are_validated() {
        assert!(BoundedLoad.validate_options("").is_ok());
        assert!(BoundedLoad.validate_options(r#"{"epsilon": 0.05}"#).is_ok());
        assert!(BoundedLoad.validate_options(r#"{"epsilon": -1}"#).unwrap_err().contains("epsilon"));
        let typo = BoundedLoad.validate_options(r#"{"weight_label": "x"}"#).unwrap_err();
        assert!(typo.contains("unknown field"), "{typo}");
    }
}
