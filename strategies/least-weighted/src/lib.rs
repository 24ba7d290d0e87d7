//! `least-weighted`: the reference allocator's sticky least-loaded strategy.
//!
//! A target keeps its previous collector while that collector exists. Every
//! other target goes, in input order, to the collector with the fewest
//! targets; ties go to the collector with the fewest targets of the same job,
//! then to the smallest collector name. Adding a collector moves nothing; its
//! share grows only with new or orphaned targets.
//!
//! The reference scans every collector per target; here collectors are kept in
//! buckets by load (as bitsets), so a batch costs O(targets · collectors / 64)
//! at worst and far less in practice, with identical results.

use std::collections::{BTreeMap, HashMap};

use target_allocator_sdk::{AssignInput, Columns, Info, Strategy, UNASSIGNED};

pub const NAME: &str = "least-weighted";

#[derive(Default)]
pub struct LeastWeighted;

impl Strategy for LeastWeighted {
    fn info(&self) -> Info {
        Info {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sticky: new targets go to the collector with the fewest targets".into(),
            needs_labels: Vec::new(),
            needs_columns: Columns { job: true, previous: true, ..Columns::NONE },
        }
    }

    fn validate_options(&self, options: &str) -> Result<(), String> {
        match options.trim() {
            "" | "null" | "{}" => Ok(()),
            other => Err(format!("least-weighted takes no options, got {other}")),
        }
    }

    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let collectors = input.collectors.len();
        let targets = &input.targets;
        if collectors == 0 {
            return Ok(vec![UNASSIGNED; targets.len()]);
        }
        let mut output = targets.previous.clone();
        let mut totals: Vec<u32> = (0..collectors).map(|c| input.load.collector(c)).collect();
        let mut pending = Vec::new();
        for (i, &p) in targets.previous.iter().enumerate() {
            if (p as usize) < collectors {
                totals[p as usize] += 1;
            } else {
                pending.push(i);
            }
        }
        if pending.is_empty() {
            return Ok(output);
        }
        let mut by_total = Levels::new(&totals, collectors);
        let mut jobs = JobLevels::new(input, collectors);
        for i in pending {
            let job = targets.job[i];
            let (least_total, tied) = by_total.lowest();
            let chosen = jobs.get(job).first_in(tied);
            output[i] = chosen;
            by_total.raise(chosen, least_total);
            jobs.get(job).raise_member(chosen);
        }
        Ok(output)
    }
}

/// Collectors bucketed by a count, lowest first.
struct Levels {
    words: usize,
    levels: BTreeMap<u32, Vec<u64>>,
    count: Vec<u32>,
}

impl Levels {
    fn new(count: &[u32], collectors: usize) -> Self {
        let words = collectors.div_ceil(64);
        let mut levels: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for (c, &n) in count.iter().enumerate() {
            levels.entry(n).or_insert_with(|| vec![0; words])[c / 64] |= 1 << (c % 64);
        }
        Levels { words, levels, count: count.to_vec() }
    }

    /// The lowest count and the set of collectors having it.
    fn lowest(&self) -> (u32, &[u64]) {
        let (&n, set) = self.levels.first_key_value().expect("at least one collector");
        (n, set)
    }

    /// Moves collector `c` (currently at `n`) up by one.
    fn raise(&mut self, c: u32, n: u32) {
        let (w, bit) = (c as usize / 64, 1u64 << (c % 64));
        let set = self.levels.get_mut(&n).expect("collector is at its level");
        set[w] &= !bit;
        if set.iter().all(|&x| x == 0) {
            self.levels.remove(&n);
        }
        self.levels.entry(n + 1).or_insert_with(|| vec![0; self.words])[w] |= bit;
        self.count[c as usize] = n + 1;
    }

    fn raise_member(&mut self, c: u32) {
        let n = self.count[c as usize];
        self.raise(c, n);
    }

    /// The smallest collector of `among` at the lowest level that has one.
    fn first_in(&self, among: &[u64]) -> u32 {
        for set in self.levels.values() {
            for (w, (&a, &b)) in set.iter().zip(among).enumerate() {
                let both = a & b;
                if both != 0 {
                    return (w * 64) as u32 + both.trailing_zeros();
                }
            }
        }
        unreachable!("`among` is a non-empty subset of the collectors")
    }
}

/// Per-job levels, built on first use from the load outside the batch and
/// the sticky targets inside it.
struct JobLevels<'a> {
    input: &'a AssignInput,
    collectors: usize,
    sticky: Option<HashMap<u32, Vec<u32>>>,
    built: HashMap<u32, Levels>,
}

impl<'a> JobLevels<'a> {
    fn new(input: &'a AssignInput, collectors: usize) -> Self {
        JobLevels { input, collectors, sticky: None, built: HashMap::new() }
    }

    fn get(&mut self, job: u32) -> &mut Levels {
        if !self.built.contains_key(&job) {
            let mut counts = self.base_counts(job);
            if let Some(sticky) = self.sticky().get(&job) {
                for (c, n) in counts.iter_mut().zip(sticky) {
                    *c += n;
                }
            }
            self.built.insert(job, Levels::new(&counts, self.collectors));
        }
        self.built.get_mut(&job).expect("just built")
    }

    /// Per-collector counts of `job` held outside the batch.
    fn base_counts(&self, job: u32) -> Vec<u32> {
        let load = &self.input.load;
        match load.jobs.iter().position(|&j| j == job) {
            Some(row) => {
                let start = row * self.collectors;
                load.job_collector_targets
                    .get(start..start + self.collectors)
                    .map(<[u32]>::to_vec)
                    .unwrap_or_else(|| vec![0; self.collectors])
            }
            None => vec![0; self.collectors],
        }
    }

    /// Per job, per collector: sticky targets inside the batch (computed once).
    fn sticky(&mut self) -> &HashMap<u32, Vec<u32>> {
        let (input, collectors) = (self.input, self.collectors);
        self.sticky.get_or_insert_with(|| {
            let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
            for (&p, &job) in input.targets.previous.iter().zip(&input.targets.job) {
                if (p as usize) < collectors {
                    map.entry(job).or_insert_with(|| vec![0; collectors])[p as usize] += 1;
                }
            }
            map
        })
    }
}

target_allocator_sdk::export_strategy!(LeastWeighted);

#[cfg(test)]
mod tests {
    use super::*;
    use target_allocator_sdk::testing;

    /// The reference's rule, one full scan per target.
    fn reference(input: &AssignInput) -> Vec<u32> {
        let n = input.collectors.len();
        let mut totals: Vec<u32> = (0..n).map(|c| input.load.collector(c)).collect();
        let mut per_job: HashMap<(u32, usize), u32> = HashMap::new();
        for (row, &job) in input.load.jobs.iter().enumerate() {
            for c in 0..n {
                per_job.insert((job, c), input.load.job_collector_targets[row * n + c]);
            }
        }
        let mut out = input.targets.previous.clone();
        for (i, &p) in input.targets.previous.iter().enumerate() {
            if (p as usize) < n {
                totals[p as usize] += 1;
                *per_job.entry((input.targets.job[i], p as usize)).or_default() += 1;
            }
        }
        for (slot, &job) in out.iter_mut().zip(&input.targets.job) {
            if (*slot as usize) < n {
                continue;
            }
            let best =
                (0..n).min_by_key(|&c| (totals[c], per_job.get(&(job, c)).copied().unwrap_or(0), c)).unwrap();
            *slot = best as u32;
            totals[best] += 1;
            *per_job.entry((job, best)).or_default() += 1;
        }
        out
    }

    #[test]
    fn matches_the_reference_rule() {
        for (targets, collectors, seed) in [(1000, 7, 1), (3000, 64, 2), (3000, 65, 3), (500, 130, 4)] {
            let mut input = testing::fixture(targets, collectors, seed);
            // Half the targets already placed, some on collectors that are gone.
            for (i, p) in input.targets.previous.iter_mut().enumerate() {
                if i % 2 == 0 {
                    *p = (i % (collectors + 3)) as u32;
                    if *p as usize >= collectors {
                        *p = UNASSIGNED;
                    }
                }
            }
            input.load.collector_targets = (0..collectors as u32).map(|c| c % 5).collect();
            input.load.jobs = vec![0, 3];
            input.load.job_collector_targets = (0..2 * collectors as u32).map(|x| x % 3).collect();
            assert_eq!(LeastWeighted.assign(&input).unwrap(), reference(&input), "{targets}/{collectors}");
        }
    }

    #[test]
    fn ties_go_to_fewest_of_the_job_then_smallest_name() {
        let mut input = testing::fixture(4, 3, 1);
        input.targets.job = vec![0, 0, 1, 0];
        // Collector 0 already holds two targets of job 0, collector 1 two of job 1.
        input.load.collector_targets = vec![2, 2, 0];
        input.load.jobs = vec![0, 1];
        input.load.job_collector_targets = vec![2, 0, 0, 0, 2, 0];
        // 1st: collector 2 (fewest). 2nd: all tied at... totals [2,2,1] -> 2 again.
        // 3rd (job 1): totals [2,2,2]; job-1 counts [0,2,0] -> collector 0.
        // 4th (job 0): totals [3,2,2]; collectors 1 and 2 tie; job-0 counts [2,0,2] -> 1.
        assert_eq!(LeastWeighted.assign(&input).unwrap(), vec![2, 2, 0, 1]);
    }

    #[test]
    fn adding_a_collector_moves_nothing() {
        let input = testing::fixture(2000, 10, 5);
        let up = testing::scale_up(&mut |i: &AssignInput| LeastWeighted.assign(i), &input).unwrap();
        assert_eq!(up.moved, 0);
        let down = testing::scale_down(&mut |i: &AssignInput| LeastWeighted.assign(i), &input).unwrap();
        assert_eq!(down.moved, down.minimum, "only the removed collector's targets move");
    }

    #[test]
    fn passes_the_sdk_invariants() {
        let columns = LeastWeighted.info().needs_columns;
        testing::check_all(
            &mut |i: &AssignInput| LeastWeighted.assign(&testing::only_columns(i, columns)),
            1.0,
        )
        .unwrap();
    }

    #[test]
    fn refuses_options() {
        assert!(LeastWeighted.validate_options("{}").is_ok());
        assert!(LeastWeighted.validate_options(r#"{"x":1}"#).is_err());
    }
}
