//! The allocator: state, batching, fallback and the serving index.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use target_allocator_sdk::{FALLBACK, Load, NO_NODE, UNASSIGNED};

use super::assigner::{Assigner, native_fallback};
use super::batch::BatchSource;
use super::interner::Interner;
use super::target::{Collector, Target};
use crate::runtime::CallError;

/// Incremental batches carry per-job loads (`jobs × collectors` integers);
/// above this size a full reallocation is cheaper to describe.
const MAX_INCREMENTAL_LOAD_CELLS: usize = 4 << 20;

/// The strategies in force and their options.
#[derive(Clone)]
pub struct StrategyChoice {
    pub primary: Arc<dyn Assigner>,
    /// JSON text from `allocation_strategy_config`, or empty.
    pub primary_options: String,
    /// Decides targets the primary defers with `FALLBACK` (per-node's node-less targets).
    pub fallback: Option<(Arc<dyn Assigner>, String)>,
}

impl StrategyChoice {
    pub fn new(primary: Arc<dyn Assigner>) -> Self {
        StrategyChoice { primary, primary_options: String::new(), fallback: None }
    }
}

/// What one allocation step did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AllocationReport {
    /// Targets the strategy was asked about.
    pub batch: usize,
    /// Targets that changed from one collector to another.
    pub moved: usize,
    /// Targets without a collector after the step (all targets, not just the batch).
    pub unassigned: usize,
    /// Why the primary or fallback strategy failed, if it did; the step then kept
    /// previous assignments and placed the rest with native consistent hashing.
    pub strategy_error: Option<String>,
    /// Every strategy call the step made and its result (`ok` or the failure kind).
    pub calls: Vec<StrategyCall>,
}

/// One strategy call and how it went.
#[derive(Clone, Debug, PartialEq)]
pub struct StrategyCall {
    pub strategy: String,
    /// `ok`, or a [`CallError::kind`](crate::runtime::CallError::kind).
    pub result: &'static str,
    pub seconds: f64,
}

pub(super) struct Slot {
    pub target: Arc<Target>,
    pub job: u32,
    pub node: u32,
    /// Collector index, or `UNASSIGNED`.
    pub collector: u32,
}

/// collector id → job → identity → target.
pub type ServingIndex = HashMap<Arc<str>, HashMap<Arc<str>, BTreeMap<u64, Arc<Target>>>>;

/// Holds targets and collectors and keeps every target assigned.
pub struct Allocator {
    choice: StrategyChoice,
    native_fallback: Arc<dyn Assigner>,
    /// Sorted by id: a collector's index is its position.
    collectors: Vec<Collector>,
    collector_nodes: Vec<u32>,
    slots: HashMap<u64, Slot>,
    /// job → identities, so a job's update touches only that job.
    ids_by_job: HashMap<Arc<str>, HashSet<u64>>,
    /// Targets assigned to each collector, by collector index.
    assigned: Vec<u32>,
    jobs: Interner,
    nodes: Interner,
    index: ServingIndex,
}

impl Allocator {
    pub fn new(choice: StrategyChoice) -> Allocator {
        Allocator {
            choice,
            native_fallback: native_fallback(),
            collectors: Vec::new(),
            collector_nodes: Vec::new(),
            slots: HashMap::new(),
            ids_by_job: HashMap::new(),
            assigned: Vec::new(),
            jobs: Interner::default(),
            nodes: Interner::default(),
            index: HashMap::new(),
        }
    }

    pub fn strategy(&self) -> &StrategyChoice {
        &self.choice
    }

    /// Switches strategies and reassigns every target once, with the current
    /// assignment as `previous`.
    pub fn set_strategy(&mut self, choice: StrategyChoice) -> AllocationReport {
        self.choice = choice;
        self.reallocate_all()
    }

    /// Replaces the collector set. Any change reassigns every target; the
    /// strategy decides what moves.
    pub fn set_collectors(&mut self, mut collectors: Vec<Collector>) -> AllocationReport {
        collectors.sort();
        collectors.dedup_by(|a, b| a.id == b.id);
        if collectors == self.collectors {
            return self.report(0, 0, None);
        }
        let new_index: HashMap<&str, u32> =
            collectors.iter().enumerate().map(|(i, c)| (&*c.id, i as u32)).collect();
        let remap: Vec<u32> =
            self.collectors.iter().map(|c| new_index.get(&*c.id).copied().unwrap_or(UNASSIGNED)).collect();
        for slot in self.slots.values_mut() {
            if let Some(&to) = remap.get(slot.collector as usize) {
                slot.collector = to;
            }
        }
        let gone: Vec<Arc<str>> = self
            .collectors
            .iter()
            .filter(|c| !new_index.contains_key(&*c.id))
            .map(|c| c.id.clone())
            .collect();
        for id in gone {
            self.index.remove(&id);
        }
        self.collector_nodes =
            collectors.iter().map(|c| c.node.as_ref().map_or(NO_NODE, |n| self.nodes.intern(n))).collect();
        self.assigned = vec![0; collectors.len()];
        for slot in self.slots.values() {
            if let Some(n) = self.assigned.get_mut(slot.collector as usize) {
                *n += 1;
            }
        }
        self.collectors = collectors;
        self.reallocate_all()
    }

    /// Replaces the whole target set. Targets keep their collector while their
    /// identity stays (their labels are refreshed); new ones are assigned in
    /// one batch. Equal identities collapse, the last one winning.
    pub fn set_targets(&mut self, targets: Vec<Target>) -> AllocationReport {
        self.replace_targets(None, targets)
    }

    /// Replaces the targets of one job, leaving other jobs alone: what a
    /// discovery update of that job calls.
    pub fn set_job_targets(&mut self, job: &str, targets: Vec<Target>) -> AllocationReport {
        debug_assert!(targets.iter().all(|t| &*t.job == job));
        self.replace_targets(Some(job), targets)
    }

    /// Removes every target of `job` (a job dropped from the config).
    pub fn remove_job(&mut self, job: &str) -> AllocationReport {
        self.replace_targets(Some(job), Vec::new())
    }

    /// Replaces the targets of `job`, or all targets when `job` is `None`.
    fn replace_targets(&mut self, job: Option<&str>, targets: Vec<Target>) -> AllocationReport {
        let mut incoming: HashMap<u64, Target> = HashMap::with_capacity(targets.len());
        for target in targets {
            incoming.insert(target.identity, target);
        }
        let removed: Vec<u64> = match job {
            None => self.slots.keys().filter(|id| !incoming.contains_key(id)).copied().collect(),
            Some(job) => self
                .ids_by_job
                .get(job)
                .into_iter()
                .flatten()
                .filter(|id| !incoming.contains_key(id))
                .copied()
                .collect(),
        };
        self.remove_targets(&removed);
        let mut added = Vec::new();
        for (id, target) in incoming {
            let target = Arc::new(target);
            match self.slots.get_mut(&id) {
                Some(slot) => {
                    if *slot.target != *target {
                        // Same identity, new labels: serve the fresh ones, keep the collector.
                        if let Some(c) = self.collectors.get(slot.collector as usize)
                            && let Some(entry) =
                                self.index.get_mut(&c.id).and_then(|jobs| jobs.get_mut(&slot.target.job))
                        {
                            entry.insert(id, target.clone());
                        }
                        slot.target = target;
                    }
                }
                None => {
                    let job = self.jobs.intern(&target.job);
                    let node = target.node.as_ref().map_or(NO_NODE, |n| self.nodes.intern(n));
                    self.ids_by_job.entry(target.job.clone()).or_default().insert(id);
                    self.slots.insert(id, Slot { target, job, node, collector: UNASSIGNED });
                    added.push(id);
                }
            }
        }
        self.allocate(added, false)
    }

    fn remove_targets(&mut self, ids: &[u64]) {
        for id in ids {
            if let Some(slot) = self.slots.remove(id) {
                if let Some(ids) = self.ids_by_job.get_mut(&slot.target.job) {
                    ids.remove(id);
                    if ids.is_empty() {
                        self.ids_by_job.remove(&slot.target.job);
                    }
                }
                self.unindex(*id, &slot);
            }
        }
    }

    fn reallocate_all(&mut self) -> AllocationReport {
        let all: Vec<u64> = self.slots.keys().copied().collect();
        self.allocate(all, true)
    }

    /// Asks the strategy about `batch` and applies the answer.
    fn allocate(&mut self, mut batch: Vec<u64>, full: bool) -> AllocationReport {
        if batch.is_empty() {
            return self.report(0, 0, None);
        }
        // Identity order makes the batch, and so order-dependent strategies, deterministic.
        batch.sort_unstable();
        let mut full = full;
        let load = if full {
            Load::default()
        } else {
            self.load_outside(&batch).unwrap_or_else(|| {
                full = true;
                Load::default()
            })
        };
        if full && batch.len() < self.slots.len() {
            batch = self.slots.keys().copied().collect();
            batch.sort_unstable();
        }
        let primary = self.choice.primary.clone();
        let input = self.source().build(&batch, primary.info(), load, &self.choice.primary_options);
        let mut errors = Vec::new();
        let mut calls = Vec::new();
        let started = std::time::Instant::now();
        let result = primary.assign(&input);
        calls.push(StrategyCall::new(primary.name(), &result, started));
        let mut output = match result {
            Ok(output) => output,
            Err(e) => {
                tracing::error!(strategy = primary.name(), error = %e, targets = batch.len(), "strategy failed; keeping previous assignments and placing new targets with native consistent hashing");
                errors.push(format!("{}: {e}", primary.name()));
                self.recover(&batch)
            }
        };
        self.resolve_deferred(&batch, &mut output, &mut errors, &mut calls);
        let moved = self.apply(&batch, &output);
        let error = if errors.is_empty() { None } else { Some(errors.join("; ")) };
        AllocationReport { calls, ..self.report(batch.len(), moved, error) }
    }

    /// Sends the targets the primary deferred to the fallback strategy, or
    /// leaves them unassigned when there is none.
    fn resolve_deferred(
        &self,
        batch: &[u64],
        output: &mut [u32],
        errors: &mut Vec<String>,
        calls: &mut Vec<StrategyCall>,
    ) {
        let deferred: Vec<usize> = (0..output.len()).filter(|&i| output[i] == FALLBACK).collect();
        if deferred.is_empty() {
            return;
        }
        let Some((fallback, options)) = &self.choice.fallback else {
            for &i in &deferred {
                output[i] = UNASSIGNED;
            }
            return;
        };
        let ids: Vec<u64> = deferred.iter().map(|&i| batch[i]).collect();
        let input = self.source().build(&ids, fallback.info(), Load::default(), options);
        let started = std::time::Instant::now();
        let result = fallback.assign(&input);
        calls.push(StrategyCall::new(fallback.name(), &result, started));
        let decided = match result {
            Ok(decided) => decided,
            Err(e) => {
                tracing::error!(strategy = fallback.name(), error = %e, targets = ids.len(), "fallback strategy failed");
                errors.push(format!("{} (fallback): {e}", fallback.name()));
                self.recover(&ids)
            }
        };
        for (&i, &c) in deferred.iter().zip(&decided) {
            // A fallback cannot defer again.
            output[i] = if c == FALLBACK { UNASSIGNED } else { c };
        }
    }

    /// The assignment of `ids` when a strategy failed: previous collectors
    /// where they still exist, native consistent hashing for the rest.
    fn recover(&self, ids: &[u64]) -> Vec<u32> {
        let input = self.source().build(ids, self.native_fallback.info(), Load::default(), "");
        let hashed = self.native_fallback.assign(&input).unwrap_or_else(|e| {
            tracing::error!(error = %e, "native fallback failed");
            vec![UNASSIGNED; ids.len()]
        });
        ids.iter()
            .zip(hashed)
            .map(|(id, h)| {
                let previous = self.slots[id].collector;
                if (previous as usize) < self.collectors.len() { previous } else { h }
            })
            .collect()
    }

    /// Writes `output` for `batch`, updating the serving index for the targets
    /// that changed. Returns how many moved between collectors.
    fn apply(&mut self, batch: &[u64], output: &[u32]) -> usize {
        let mut moved = 0;
        for (id, &to) in batch.iter().zip(output) {
            let slot = self.slots.get_mut(id).expect("batch targets exist");
            let from = slot.collector;
            if from == to {
                continue;
            }
            let target = slot.target.clone();
            slot.collector = to;
            if let Some(c) = self.collectors.get(from as usize) {
                moved += usize::from((to as usize) < self.collectors.len());
                index_remove(&mut self.index, &c.id, &target.job, *id);
                self.assigned[from as usize] -= 1;
            }
            if let Some(c) = self.collectors.get(to as usize) {
                self.assigned[to as usize] += 1;
                self.index
                    .entry(c.id.clone())
                    .or_default()
                    .entry(target.job.clone())
                    .or_default()
                    .insert(*id, target);
            }
        }
        moved
    }

    fn unindex(&mut self, id: u64, slot: &Slot) {
        if let Some(c) = self.collectors.get(slot.collector as usize) {
            index_remove(&mut self.index, &c.id, &slot.target.job, id);
            self.assigned[slot.collector as usize] -= 1;
        }
    }

    /// Loads held outside `batch`, for an incremental batch (whose targets
    /// are all unassigned); `None` when the per-job table would be too large.
    fn load_outside(&self, batch: &[u64]) -> Option<Load> {
        let n = self.collectors.len();
        let mut jobs: Vec<u32> = batch.iter().map(|id| self.slots[id].job).collect();
        jobs.sort_unstable();
        jobs.dedup();
        if jobs.len().saturating_mul(n) > MAX_INCREMENTAL_LOAD_CELLS {
            return None;
        }
        let mut job_collector_targets = Vec::with_capacity(jobs.len() * n);
        for &job in &jobs {
            let name = self.jobs.names()[job as usize].as_str();
            for c in &self.collectors {
                let held = self.index.get(&c.id).and_then(|j| j.get(name)).map_or(0, BTreeMap::len);
                job_collector_targets.push(held as u32);
            }
        }
        Some(Load { collector_targets: self.assigned.clone(), jobs, job_collector_targets })
    }

    fn source(&self) -> BatchSource<'_> {
        BatchSource {
            collectors: &self.collectors,
            collector_nodes: &self.collector_nodes,
            nodes: self.nodes.names(),
            jobs: self.jobs.names(),
            slots: &self.slots,
        }
    }

    fn report(&self, batch: usize, moved: usize, strategy_error: Option<String>) -> AllocationReport {
        AllocationReport { batch, moved, unassigned: self.unassigned(), strategy_error, calls: Vec::new() }
    }

    // --- views ---

    pub fn collectors(&self) -> &[Collector] {
        &self.collectors
    }

    pub fn target_count(&self) -> usize {
        self.slots.len()
    }

    /// Targets without a collector.
    pub fn unassigned(&self) -> usize {
        self.slots.len() - self.assigned.iter().map(|&n| n as usize).sum::<usize>()
    }

    /// The collector a target is assigned to.
    pub fn collector_of(&self, identity: u64) -> Option<&Collector> {
        self.slots.get(&identity).and_then(|s| self.collectors.get(s.collector as usize))
    }

    /// The serving index: collector id → job → targets (by identity).
    pub fn index(&self) -> &ServingIndex {
        &self.index
    }

    /// Targets of `job` assigned to `collector`, in identity order.
    pub fn targets_for(&self, collector: &str, job: &str) -> impl Iterator<Item = &Arc<Target>> {
        self.index.get(collector).and_then(|jobs| jobs.get(job)).into_iter().flat_map(|t| t.values())
    }

    /// Number of targets per collector, by collector index.
    pub fn targets_per_collector(&self) -> Vec<(Arc<str>, usize)> {
        self.collectors.iter().zip(&self.assigned).map(|(c, &n)| (c.id.clone(), n as usize)).collect()
    }
}

impl StrategyCall {
    fn new(
        strategy: &str,
        result: &Result<Vec<u32>, CallError>,
        started: std::time::Instant,
    ) -> StrategyCall {
        StrategyCall {
            strategy: strategy.to_string(),
            result: match result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            },
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

fn index_remove(index: &mut ServingIndex, collector: &str, job: &str, id: u64) {
    if let Some(jobs) = index.get_mut(collector)
        && let Some(targets) = jobs.get_mut(job)
    {
        targets.remove(&id);
        if targets.is_empty() {
            jobs.remove(job);
        }
    }
}
