//! Fixtures and invariant checks for strategy authors.
//!
//! The checks take the strategy as a closure from input to output, so the same
//! checks run against a native [`Strategy`](crate::Strategy) in unit tests and
//! against a compiled component in the host's `check` command.

use std::collections::HashMap;

use crate::hash::{mix64, xxhash64};
use crate::{
    AssignInput, Collectors, Columns, FALLBACK, LabelColumn, NO_NODE, NO_VALUE, UNASSIGNED, validate_output,
};

/// A synthetic batch: `targets` targets spread over `jobs` jobs and `nodes`
/// nodes (one collector per node while there are enough nodes), all new.
/// Deterministic for a given `seed`.
pub fn fixture(targets: usize, collectors: usize, seed: u64) -> AssignInput {
    let jobs = targets.clamp(1, 50);
    let nodes = collectors.max(1);
    let mut input = AssignInput {
        collectors: collector_set(collectors, nodes),
        nodes: (0..nodes).map(|i| format!("node-{i}")).collect(),
        jobs: (0..jobs).map(|i| format!("job-{i}")).collect(),
        ..AssignInput::default()
    };
    let t = &mut input.targets;
    for i in 0..targets {
        let r = mix64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let address =
            format!("10.{}.{}.{}:{}", (r >> 8) & 255, (r >> 16) & 255, (r >> 24) & 255, 9000 + (r & 1023));
        t.address_hash.push(xxhash64(address.as_bytes()));
        t.identity.push(mix64(r ^ 0x5bd1_e995));
        t.job.push((i % jobs) as u32);
        // One target in eight has no node, like control-plane or static targets.
        t.node.push(if r.is_multiple_of(8) { NO_NODE } else { ((r >> 32) % nodes as u64) as u32 });
        t.previous.push(UNASSIGNED);
    }
    t.count = targets as u32;
    input
}

/// `input` with only the `columns` a strategy asked for, the others emptied,
/// as the host sends it. Wrap a native strategy with it in tests to prove its
/// `needs_columns` is complete.
pub fn only_columns(input: &AssignInput, columns: Columns) -> AssignInput {
    let mut input = input.clone();
    let t = &mut input.targets;
    if !columns.address_hash {
        t.address_hash = Vec::new();
    }
    if !columns.identity {
        t.identity = Vec::new();
    }
    if !columns.job {
        t.job = Vec::new();
    }
    if !columns.node {
        t.node = Vec::new();
    }
    if !columns.previous {
        t.previous = Vec::new();
    }
    input
}

/// Gives the targets of `input` a label column `name` (replacing one of that
/// name), as the host would send it to a strategy that lists `name` in
/// `needs_labels`: `value(i)` is target `i`'s value, `None` when it lacks the label.
pub fn set_label(input: &mut AssignInput, name: &str, mut value: impl FnMut(usize) -> Option<String>) {
    let mut column = LabelColumn { name: name.to_string(), ..LabelColumn::default() };
    let mut index: HashMap<String, u32> = HashMap::new();
    for i in 0..input.targets.len() {
        let v = match value(i) {
            Some(v) => *index.entry(v).or_insert_with_key(|v| {
                column.values.push(v.clone());
                (column.values.len() - 1) as u32
            }),
            None => NO_VALUE,
        };
        column.value.push(v);
    }
    input.labels.retain(|c| c.name != name);
    input.labels.push(column);
}

fn collector_set(collectors: usize, nodes: usize) -> Collectors {
    Collectors {
        names: (0..collectors).map(|i| format!("collector-{i:04}")).collect(),
        node: (0..collectors).map(|i| (i % nodes) as u32).collect(),
    }
}

/// A broken invariant, with enough detail to debug it.
#[derive(Clone, Debug, PartialEq)]
pub enum Violation {
    /// The strategy returned an error.
    Failed(String),
    /// The output does not have one entry per target.
    WrongLength { expected: usize, got: usize },
    /// An entry is neither a collector index, `UNASSIGNED` nor `FALLBACK`.
    InvalidIndex { target: usize, value: u32, collectors: usize },
    /// Two calls with the same input gave different outputs.
    NotDeterministic { target: usize },
    /// Targets moved although nothing changed.
    MovedWithoutChange { moved: usize },
    /// Too many targets moved when a collector was added or removed.
    TooMuchMovement { moved: usize, allowed: usize, change: &'static str },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Failed(e) => write!(f, "the strategy failed: {e}"),
            Violation::WrongLength { expected, got } => {
                write!(f, "returned {got} entries for {expected} targets")
            }
            Violation::InvalidIndex { target, value, collectors } => write!(
                f,
                "target {target} got {value}, which is no collector index (there are {collectors}), \
                 UNASSIGNED or FALLBACK"
            ),
            Violation::NotDeterministic { target } => {
                write!(f, "two calls with the same input disagree on target {target}")
            }
            Violation::MovedWithoutChange { moved } => {
                write!(f, "{moved} targets moved although nothing changed")
            }
            Violation::TooMuchMovement { moved, allowed, change } => {
                write!(f, "{moved} targets moved when {change}, more than the allowed {allowed}")
            }
        }
    }
}

impl std::error::Error for Violation {}

/// Calls `assign` and checks the output's shape.
pub fn assign_checked<F>(assign: &mut F, input: &AssignInput) -> Result<Vec<u32>, Violation>
where
    F: FnMut(&AssignInput) -> Result<Vec<u32>, String>,
{
    let output = assign(input).map_err(Violation::Failed)?;
    validate_output(input, &output)?;
    Ok(output)
}

/// Two calls with the same input must agree.
pub fn check_deterministic<F>(assign: &mut F, input: &AssignInput) -> Result<(), Violation>
where
    F: FnMut(&AssignInput) -> Result<Vec<u32>, String>,
{
    let a = assign_checked(assign, input)?;
    let b = assign_checked(assign, input)?;
    match a.iter().zip(&b).position(|(x, y)| x != y) {
        Some(target) => Err(Violation::NotDeterministic { target }),
        None => Ok(()),
    }
}

/// Feeding an assignment back as `previous`, with nothing else changed, must
/// move nothing.
pub fn check_stable<F>(assign: &mut F, input: &AssignInput) -> Result<(), Violation>
where
    F: FnMut(&AssignInput) -> Result<Vec<u32>, String>,
{
    let first = assign_checked(assign, input)?;
    let mut again = input.clone();
    again.targets.previous = first.clone();
    let second = assign_checked(assign, &again)?;
    let moved = moved(&first, &second, Some);
    if moved > 0 {
        return Err(Violation::MovedWithoutChange { moved });
    }
    Ok(())
}

/// How many targets changed collector between two assignments of the same
/// targets. `remap` translates a collector index of `before` into the index
/// space of `after` (or `None` when that collector is gone); unassigned
/// targets never count as moved.
pub fn moved(before: &[u32], after: &[u32], remap: impl Fn(u32) -> Option<u32>) -> usize {
    before.iter().zip(after).filter(|&(&b, &a)| b < FALLBACK && a < FALLBACK && remap(b) != Some(a)).count()
}

/// Result of a membership change: targets that moved and the number a perfect
/// consistent hash would move (`targets / (N+1)` on scale-up, the removed
/// collector's targets on scale-down).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Movement {
    pub moved: usize,
    pub minimum: usize,
    pub targets: usize,
}

impl Movement {
    /// `moved / minimum`, or 0 when nothing had to move.
    pub fn ratio(&self) -> f64 {
        if self.minimum == 0 { 0.0 } else { self.moved as f64 / self.minimum as f64 }
    }

    /// Most targets allowed to move at `max_ratio` times the minimum, plus 1%
    /// of the targets for sampling noise.
    pub fn allowed(&self, max_ratio: f64) -> usize {
        if max_ratio.is_infinite() {
            return usize::MAX;
        }
        (self.minimum as f64 * max_ratio).ceil() as usize + self.targets / 100
    }

    /// Fails when more than [`allowed`](Self::allowed) targets moved;
    /// `change` says what happened ("a collector was added").
    pub fn check(&self, max_ratio: f64, change: &'static str) -> Result<(), Violation> {
        let allowed = self.allowed(max_ratio);
        if self.moved > allowed {
            return Err(Violation::TooMuchMovement { moved: self.moved, allowed, change });
        }
        Ok(())
    }
}

/// Assigns `input`, adds a collector (`collector-new`, on a node of its own)
/// and assigns again with the first result as `previous`.
pub fn scale_up<F>(assign: &mut F, input: &AssignInput) -> Result<Movement, Violation>
where
    F: FnMut(&AssignInput) -> Result<Vec<u32>, String>,
{
    let before = assign_checked(assign, input)?;
    let mut grown = input.clone();
    grown.nodes.push("node-new".into());
    // Keep the name order: collectors are sorted by name, and the new name sorts last.
    grown.collectors.names.push("collector-zzzz-new".into());
    grown.collectors.node.push((grown.nodes.len() - 1) as u32);
    grown.targets.previous = before.clone();
    let after = assign_checked(assign, &grown)?;
    let moved = moved(&before, &after, Some);
    let assigned = before.iter().filter(|&&c| c < FALLBACK).count();
    Ok(Movement { moved, minimum: assigned / (input.collectors.len() + 1), targets: assigned })
}

/// Assigns `input`, removes the first collector and assigns again. Targets of
/// the removed collector must move; every other move counts against the strategy.
pub fn scale_down<F>(assign: &mut F, input: &AssignInput) -> Result<Movement, Violation>
where
    F: FnMut(&AssignInput) -> Result<Vec<u32>, String>,
{
    let before = assign_checked(assign, input)?;
    let mut shrunk = input.clone();
    shrunk.collectors.names.remove(0);
    shrunk.collectors.node.remove(0);
    let remap = |c: u32| c.checked_sub(1);
    shrunk.targets.previous = before
        .iter()
        .map(|&c| if c < FALLBACK { remap(c).unwrap_or(UNASSIGNED) } else { UNASSIGNED })
        .collect();
    let after = assign_checked(assign, &shrunk)?;
    let orphaned = before.iter().filter(|&&c| c == 0).count();
    let assigned = before.iter().filter(|&&c| c < FALLBACK).count();
    let moved_total = before
        .iter()
        .zip(&after)
        .filter(|&(&b, &a)| b < FALLBACK && a < FALLBACK && remap(b) != Some(a))
        .count();
    Ok(Movement { moved: moved_total, minimum: orphaned, targets: assigned })
}

/// Checks that a collector change moves at most `max_ratio` times the minimum
/// (plus a small allowance for sampling noise), on both scale-up and scale-down.
pub fn check_movement<F>(assign: &mut F, input: &AssignInput, max_ratio: f64) -> Result<(), Violation>
where
    F: FnMut(&AssignInput) -> Result<Vec<u32>, String>,
{
    for (change, movement) in [
        ("a collector was added", scale_up(assign, input)?),
        ("a collector was removed", scale_down(assign, input)?),
    ] {
        movement.check(max_ratio, change)?;
    }
    Ok(())
}

/// Balance of an assignment: targets per collector relative to the mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Balance {
    pub max_over_mean: f64,
    pub min_over_mean: f64,
    /// Mean targets per collector (assigned targets only).
    pub mean: f64,
    /// Standard deviation of targets per collector, in targets.
    pub stddev: f64,
    /// Standard deviation of targets per collector, relative to the mean.
    pub relative_stddev: f64,
    pub unassigned: usize,
}

/// Computes [`Balance`] of `output` over `collectors` collectors.
pub fn balance(output: &[u32], collectors: usize) -> Balance {
    let mut counts = vec![0usize; collectors];
    let mut unassigned = 0;
    for &c in output {
        match counts.get_mut(c as usize) {
            Some(n) => *n += 1,
            None => unassigned += 1,
        }
    }
    let total: usize = counts.iter().sum();
    if collectors == 0 || total == 0 {
        return Balance {
            max_over_mean: 0.0,
            min_over_mean: 0.0,
            mean: 0.0,
            stddev: 0.0,
            relative_stddev: 0.0,
            unassigned,
        };
    }
    let mean = total as f64 / collectors as f64;
    let stddev = (counts.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / collectors as f64).sqrt();
    Balance {
        max_over_mean: *counts.iter().max().unwrap_or(&0) as f64 / mean,
        min_over_mean: *counts.iter().min().unwrap_or(&0) as f64 / mean,
        mean,
        stddev,
        relative_stddev: stddev / mean,
        unassigned,
    }
}

/// `(targets, collectors)` of the fixtures [`check_all`] runs on: empty, a
/// single collector, and two sizes where movement is measurable.
pub const CHECK_SIZES: &[(usize, usize)] = &[(0, 3), (10, 1), (1000, 7), (5000, 30)];

/// The [`fixture`] seed [`check_all`] uses.
pub const CHECK_SEED: u64 = 42;

/// Runs every invariant check above on a few fixtures: valid output,
/// determinism, stability, and movement within `max_movement_ratio` of the
/// minimum (pass `f64::INFINITY` to skip the movement bound).
pub fn check_all<F>(assign: &mut F, max_movement_ratio: f64) -> Result<(), Violation>
where
    F: FnMut(&AssignInput) -> Result<Vec<u32>, String>,
{
    for &(targets, collectors) in CHECK_SIZES {
        let input = fixture(targets, collectors, CHECK_SEED);
        check_deterministic(assign, &input)?;
        check_stable(assign, &input)?;
        if max_movement_ratio.is_finite() && targets > 0 && collectors > 1 {
            check_movement(assign, &input, max_movement_ratio)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_is_deterministic_and_consistent() {
        let a = fixture(100, 4, 1);
        assert_eq!(a, fixture(100, 4, 1));
        assert_ne!(a.targets.address_hash, fixture(100, 4, 2).targets.address_hash);
        assert_eq!(a.targets.len(), 100);
        assert!(a.targets.node.iter().all(|&n| n == NO_NODE || (n as usize) < a.nodes.len()));
    }

    #[test]
    fn set_label_builds_a_column_like_the_host() {
        let mut input = fixture(4, 2, 1);
        set_label(&mut input, "zone", |i| (i != 2).then(|| format!("z{}", i % 2)));
        set_label(&mut input, "zone", |i| (i != 1).then(|| format!("z{}", i % 2)));
        assert_eq!(input.labels.len(), 1, "the second call replaces the first");
        let zone = input.label("zone").unwrap();
        assert_eq!(zone.values, ["z0", "z1"]);
        assert_eq!(zone.value, [0, NO_VALUE, 0, 1]);
        assert_eq!(zone.get(3), Some("z1"));
    }

    #[test]
    fn check_output_catches_bad_lengths_and_indices() {
        let input = fixture(3, 2, 1);
        assert!(validate_output(&input, &[0, 1, UNASSIGNED]).is_ok());
        assert_eq!(validate_output(&input, &[0, 1]), Err(Violation::WrongLength { expected: 3, got: 2 }));
        assert_eq!(
            validate_output(&input, &[0, 2, FALLBACK]),
            Err(Violation::InvalidIndex { target: 1, value: 2, collectors: 2 })
        );
    }

    #[test]
    fn checks_catch_a_strategy_that_ignores_previous() {
        // Round-robin by call count: not deterministic.
        let mut calls = 0u32;
        let mut flaky = |input: &AssignInput| {
            calls += 1;
            Ok(vec![calls % input.collectors.len() as u32; input.targets.len()])
        };
        let input = fixture(10, 3, 1);
        assert!(matches!(check_deterministic(&mut flaky, &input), Err(Violation::NotDeterministic { .. })));
        // hash % N: deterministic and stable but moves almost everything on scale-up.
        let mut modulo = |input: &AssignInput| {
            let n = input.collectors.len() as u64;
            Ok(input.targets.address_hash.iter().map(|h| (h % n) as u32).collect())
        };
        assert!(check_stable(&mut modulo, &input).is_ok());
        let big = fixture(2000, 10, 1);
        assert!(matches!(check_movement(&mut modulo, &big, 2.0), Err(Violation::TooMuchMovement { .. })));
        let up = scale_up(&mut modulo, &big).unwrap();
        assert!(up.ratio() > 5.0, "{up:?}");
        assert!(up.check(f64::INFINITY, "a collector was added").is_ok());
        assert_eq!(Movement { moved: 0, minimum: 10, targets: 200 }.allowed(1.5), 17);
    }

    #[test]
    fn balance_reports_spread() {
        let b = balance(&[0, 0, 1, 1, UNASSIGNED], 2);
        assert_eq!(b.max_over_mean, 1.0);
        assert_eq!(b.unassigned, 1);
        assert_eq!(b.relative_stddev, 0.0);
        // Counts 1, 3: mean 2, population standard deviation 1.
        let b = balance(&[0, 1, 1, 1], 2);
        assert_eq!((b.mean, b.stddev, b.relative_stddev), (2.0, 1.0, 0.5));
        assert_eq!((b.max_over_mean, b.min_over_mean), (1.5, 0.5));
    }
}
