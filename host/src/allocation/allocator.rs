//! The allocator: state, batching, fallback and the serving index.

use std::collections::HashMap;
use std::sync::Arc;

use target_allocator_sdk::{FALLBACK, Load, UNASSIGNED};

use super::assigner::{Assigner, native_fallback};
use super::batch::BatchSource;
use super::id_map::{IdMap, IdSet};
use super::interner::Interner;
use super::slot_index::SlotIndex;
use super::sorting::{Grouped, append_by_small_key, sort_by_u64_key};
use super::take_once::TakeOnce;
use super::target::{Collector, Target};
use crate::prefetch::prefetch_spanned;
use crate::runtime::CallError;

/// How many items ahead loops over scattered memory ask for the cache line
/// they will need: enough misses in flight to hide the memory's latency.
const PREFETCH_DISTANCE: usize = 64;

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

/// A strategy switch that did not happen: the new primary failed on the
/// full batch, so the old strategy and assignment stayed.
#[derive(Debug, thiserror::Error)]
#[error("strategy {strategy:?} failed to assign the targets: {error}")]
pub struct SwitchError {
    pub strategy: String,
    pub error: CallError,
    /// The failed call, for metrics.
    pub calls: Vec<StrategyCall>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strictness {
    /// A failing primary is recovered from: what discovery updates need.
    Recover,
    /// A failing primary aborts the step with nothing changed: what a switch needs.
    KeepOnFailure,
}

/// One held target. Slots live in a slab and are addressed by index, so a
/// batch and the serving index carry indexes, and the hot loops read a
/// vector instead of hashing an identity or following a pointer per target.
pub(super) struct Slot {
    /// Held by value (it points at its discovered group): the loops that
    /// read identities and address hashes find them here.
    pub target: Target,
    pub job: u32,
    /// Collector index, or `UNASSIGNED`.
    pub collector: u32,
}

impl Slot {
    pub fn new(target: Target, job: u32) -> Slot {
        Slot { target, job, collector: UNASSIGNED }
    }

    pub fn identity(&self) -> u64 {
        self.target.identity
    }
}

/// A change to one job's targets, as discovery computes it from the groups
/// that changed: only these targets are touched.
#[derive(Clone, Debug, Default)]
pub struct JobDelta {
    pub job: Arc<str>,
    /// Identities no longer discovered.
    pub removed: Vec<u64>,
    /// New targets, and known identities with fresh labels (they keep their collector).
    pub upserted: Vec<Target>,
}

/// One target of a job as serving reads it. A job's entries live in one
/// vector sorted by (collector, identity), so a collector's targets are a
/// contiguous run served in identity order, and a job costs one allocation
/// however many collectors share it. The target itself stays in its slot.
#[derive(Clone, Copy, Debug)]
struct Served {
    identity: u64,
    collector: u32,
    slot: u32,
}

impl Served {
    fn key(&self) -> (u32, u64) {
        (self.collector, self.identity)
    }
}

/// The targets of one job on one collector, in identity order.
#[derive(Clone, Copy)]
pub struct Assigned<'a> {
    served: &'a [Served],
    slots: &'a [Option<Slot>],
}

impl<'a> Assigned<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &'a Target> + use<'a> {
        let slots = self.slots;
        self.served
            .iter()
            .map(move |entry| &slots[entry.slot as usize].as_ref().expect("served slots are held").target)
    }
}

/// (identity, slot index): a target to ask the strategy about. Batches are
/// sorted by identity, which makes order-dependent strategies deterministic.
type BatchEntry = (u64, u32);

/// Upserted targets of a window waiting to be held: each delta's targets
/// (with the interned job), and every one of them as (identity, delta,
/// position).
struct Pending {
    deltas: Vec<(u32, TakeOnce<Target>)>,
    upserted: Vec<(u64, u32, u32)>,
}

impl Pending {
    /// Takes the target of entry `k` of `upserted`, with its job. Entries
    /// are taken in identity order, unrelated to where the targets lie: the
    /// one `PREFETCH_DISTANCE` further on is asked for now. Inlined: the
    /// two loops that take every pending target call it per target.
    #[inline(always)]
    fn take(&mut self, k: usize) -> (u32, Target) {
        if let Some(&(_, delta, position)) = self.upserted.get(k + PREFETCH_DISTANCE) {
            prefetch_spanned(self.deltas[delta as usize].1.place(position as usize));
        }
        let (_, delta, position) = self.upserted[k];
        let (job, targets) = &mut self.deltas[delta as usize];
        (*job, targets.take(position as usize))
    }
}

/// (job, collector, identity): an entry of the serving index to remove.
type IndexEntry = (u32, u32, u64);

/// Holds targets and collectors and keeps every target assigned.
pub struct Allocator {
    choice: StrategyChoice,
    native_fallback: Arc<dyn Assigner>,
    /// Sorted by id: a collector's index is its position.
    collectors: Vec<Collector>,
    /// The slab of held targets; `None` marks a free slot.
    slots: Vec<Option<Slot>>,
    /// Identity → slot index.
    slot_of: SlotIndex,
    /// Free slot indexes, reused before the slab grows.
    free: Vec<u32>,
    /// Targets assigned to each collector, by collector index.
    assigned: Vec<u32>,
    jobs: Interner,
    /// What serving reads: job id → its targets by (collector, identity).
    index: Vec<Vec<Served>>,
}

impl Allocator {
    pub fn new(choice: StrategyChoice) -> Allocator {
        Allocator {
            choice,
            native_fallback: native_fallback(),
            collectors: Vec::new(),
            slots: Vec::new(),
            slot_of: SlotIndex::default(),
            free: Vec::new(),
            assigned: Vec::new(),
            jobs: Interner::default(),
            index: Vec::new(),
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

    /// Switches to `choice` only if its primary strategy assigns every target:
    /// one call over all targets, with the current assignment as `previous`.
    /// If that call fails, nothing changes (the old strategy and assignment
    /// stay) and the error is returned with the failed call.
    pub fn try_set_strategy(&mut self, choice: StrategyChoice) -> Result<AllocationReport, SwitchError> {
        let previous = std::mem::replace(&mut self.choice, choice);
        let batch = self.all_entries();
        match self.allocate_batch(batch, true, Strictness::KeepOnFailure) {
            Ok(report) => Ok(report),
            Err(error) => {
                self.choice = previous;
                Err(error)
            }
        }
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
        for slot in self.slots.iter_mut().flatten() {
            if let Some(&to) = remap.get(slot.collector as usize) {
                slot.collector = to;
            }
        }
        // Both collector lists are sorted by id, so remapping keeps each
        // job's entries in (collector, identity) order.
        for served in &mut self.index {
            served.retain_mut(|entry| match remap.get(entry.collector as usize) {
                Some(&to) if to != UNASSIGNED => {
                    entry.collector = to;
                    true
                }
                _ => false,
            });
        }
        self.assigned = vec![0; collectors.len()];
        for slot in self.slots.iter().flatten() {
            if let Some(n) = self.assigned.get_mut(slot.collector as usize) {
                *n += 1;
            }
        }
        self.collectors = collectors;
        self.reallocate_all()
    }

    /// Replaces the whole target set. Targets keep their collector while their
    /// identity stays (their labels are refreshed); new ones are assigned in
    /// one batch. Equal identities collapse, the last one winning. Each
    /// target comes with its job. For tools and tests; discovery sends
    /// [`JobDelta`]s.
    pub fn set_targets(&mut self, targets: Vec<(Arc<str>, Target)>) -> AllocationReport {
        let deltas = self.replacement(None, targets);
        self.apply_deltas(deltas)
    }

    /// Replaces the targets of `job` by `targets`, leaving other jobs alone;
    /// held identities keep their collector. Looks at every target held:
    /// for tools and tests, and for a job whose discovery restarted, once
    /// its sources have all reported again. Discovery otherwise sends
    /// [`JobDelta`]s.
    pub fn set_job_targets(&mut self, job: &str, targets: Vec<Target>) -> AllocationReport {
        let job: Arc<str> = Arc::from(job);
        let deltas = self.replacement(Some(&*job), targets.into_iter().map(|t| (job.clone(), t)).collect());
        self.apply_deltas(deltas)
    }

    /// Removes every target of `job` (a job dropped from the config).
    pub fn remove_job(&mut self, job: &str) -> AllocationReport {
        let deltas = self.replacement(Some(job), Vec::new());
        self.apply_deltas(deltas)
    }

    /// Applies the changes of any number of jobs, then asks the strategy
    /// about every new target in one call: what a discovery update does.
    /// Work is proportional to the deltas, not to the targets held.
    pub fn apply_deltas(&mut self, deltas: Vec<JobDelta>) -> AllocationReport {
        let incoming: usize = deltas.iter().map(|d| d.upserted.len()).sum();
        let mut pending =
            Pending { deltas: Vec::with_capacity(deltas.len()), upserted: Vec::with_capacity(incoming) };
        let mut added = Vec::with_capacity(incoming);
        for mut delta in deltas {
            if !delta.removed.is_empty() && !delta.upserted.is_empty() {
                let upserted: IdSet = delta.upserted.iter().map(|t| t.identity).collect();
                delta.removed.retain(|id| !upserted.contains(id));
            }
            if !delta.removed.is_empty() {
                // An earlier delta of the window may have added what this one removes.
                self.hold(&mut pending, &mut added);
                self.remove_targets(&delta.removed);
            }
            let job = self.intern_job(&delta.job);
            let at = pending.deltas.len() as u32;
            let entries = delta.upserted.iter().enumerate();
            pending.upserted.extend(entries.map(|(position, t)| (t.identity, at, position as u32)));
            pending.deltas.push((job, TakeOnce::new(delta.upserted)));
        }
        self.hold(&mut pending, &mut added);
        self.allocate(added, false)
    }

    /// Takes in the pending targets in identity order: a held identity is
    /// served with the fresh labels, a new one gets a slot and its batch
    /// entry in `added`. An identity pending twice collapses, the later
    /// target winning. Identity order makes the lookups a sweep of the slot
    /// index, and gives new targets their slots in the order the strategy
    /// reads them, so that the passes over a large batch (building the
    /// input, applying the answer) read the slab sequentially.
    fn hold(&mut self, pending: &mut Pending, added: &mut Vec<BatchEntry>) {
        let upserted = &mut pending.upserted;
        sort_by_u64_key(upserted, |&(identity, _, _)| identity);
        // The sort is stable: of equal identities, keep the place of the last.
        upserted.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                (earlier.1, earlier.2) = (later.1, later.2);
            }
            same
        });
        if self.slot_of.is_empty() {
            self.hold_first(pending, added);
            return;
        }
        for k in 0..pending.upserted.len() {
            let identity = pending.upserted[k].0;
            let (job, target) = pending.take(k);
            let vacant = match self.slot_of.entry(identity) {
                Ok(at) => {
                    Self::refresh(&mut self.slots, at, target);
                    continue;
                }
                Err(vacant) => vacant,
            };
            let slot = Some(Slot::new(target, job));
            let at = match self.free.pop() {
                Some(at) => {
                    self.slots[at as usize] = slot;
                    at
                }
                None => {
                    self.slots.push(slot);
                    (self.slots.len() - 1) as u32
                }
            };
            vacant.insert(at);
            added.push((identity, at));
        }
        pending.upserted.clear();
        pending.deltas.clear();
    }

    /// [`hold`](Self::hold) when nothing is held (start-up, or every target
    /// gone): every pending identity is new, so the targets fill the slab
    /// from its start in identity order and the index is written in one
    /// sweep, with no lookup, free list or growth per target.
    fn hold_first(&mut self, pending: &mut Pending, added: &mut Vec<BatchEntry>) {
        // Nothing held: every slot is free; they are all replaced.
        self.slots.clear();
        self.free.clear();
        self.slots.reserve_exact(pending.upserted.len());
        for k in 0..pending.upserted.len() {
            let (job, target) = pending.take(k);
            self.slots.push(Some(Slot::new(target, job)));
        }
        let upserted = &pending.upserted;
        let entries = upserted.iter().enumerate().map(|(at, &(identity, _, _))| (identity, at as u32));
        added.extend(entries.clone());
        self.slot_of.fill_sorted(entries);
        pending.upserted.clear();
        pending.deltas.clear();
    }

    /// Serves the labels of `target` from slot `at`, which holds its identity.
    fn refresh(slots: &mut [Option<Slot>], at: u32, target: Target) {
        let slot = slots[at as usize].as_mut().expect("indexed slots are held");
        // Serving entries point at the slot, so the collector stays and the
        // index is untouched. Equal labels keep the old target, and so its
        // version: serving then reuses the encoded list.
        if slot.target != target {
            slot.target = target;
        }
    }

    /// The deltas (one per job) replacing the targets of `job` (all targets
    /// for `None`) by `targets`, each with its job.
    fn replacement(&self, job: Option<&str>, targets: Vec<(Arc<str>, Target)>) -> Vec<JobDelta> {
        let mut incoming: IdMap<(Arc<str>, Target)> = IdMap::default();
        for (job, target) in targets {
            incoming.insert(target.identity, (job, target));
        }
        // A scan of every target: replacing is for tools and tests; discovery
        // sends deltas.
        let job = job.map(|job| self.jobs.get(job).unwrap_or(u32::MAX));
        let held = self.held().filter(|slot| job.is_none_or(|job| slot.job == job));
        let mut deltas: HashMap<Arc<str>, JobDelta> = HashMap::new();
        fn delta_of<'d>(deltas: &'d mut HashMap<Arc<str>, JobDelta>, job: &Arc<str>) -> &'d mut JobDelta {
            deltas.entry(job.clone()).or_insert_with(|| JobDelta { job: job.clone(), ..JobDelta::default() })
        }
        for slot in held.filter(|slot| !incoming.contains_key(&slot.identity())) {
            delta_of(&mut deltas, &self.jobs.names()[slot.job as usize]).removed.push(slot.identity());
        }
        for (job, target) in incoming.into_values() {
            delta_of(&mut deltas, &job).upserted.push(target);
        }
        deltas.into_values().collect()
    }

    fn intern_job(&mut self, job: &Arc<str>) -> u32 {
        let id = self.jobs.intern(job);
        if self.index.len() <= id as usize {
            self.index.resize_with(id as usize + 1, Vec::new);
        }
        id
    }

    fn remove_targets(&mut self, ids: &[u64]) {
        let n = self.collectors.len() as u32;
        let mut unindexed = Vec::new();
        for id in ids {
            let Some(at) = self.slot_of.remove(*id) else { continue };
            let slot = self.slots[at as usize].take().expect("indexed slots are held");
            self.free.push(at);
            if slot.collector < n {
                self.assigned[slot.collector as usize] -= 1;
                unindexed.push((slot.job, slot.collector, *id));
            }
        }
        self.unindex(unindexed);
    }

    fn reallocate_all(&mut self) -> AllocationReport {
        let all = self.all_entries();
        self.allocate(all, true)
    }

    /// Every held target, as batch entries.
    fn all_entries(&self) -> Vec<BatchEntry> {
        let held = self.slots.iter().enumerate();
        held.filter_map(|(at, slot)| slot.as_ref().map(|s| (s.identity(), at as u32))).collect()
    }

    fn held(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    fn slot(&self, at: u32) -> &Slot {
        self.slots[at as usize].as_ref().expect("batch slots are held")
    }

    /// Asks the strategy about `batch` and applies the answer; a failing
    /// primary strategy is recovered from (previous collectors, native
    /// consistent hashing for the rest).
    fn allocate(&mut self, batch: Vec<BatchEntry>, full: bool) -> AllocationReport {
        match self.allocate_batch(batch, full, Strictness::Recover) {
            Ok(report) => report,
            Err(_) => unreachable!("recovering allocations do not fail"),
        }
    }

    fn allocate_batch(
        &mut self,
        mut batch: Vec<BatchEntry>,
        full: bool,
        strictness: Strictness,
    ) -> Result<AllocationReport, SwitchError> {
        if batch.is_empty() {
            return Ok(self.report(0, 0, None));
        }
        // Identity order makes the batch, and so order-dependent strategies,
        // deterministic. New targets usually arrive in that order already.
        if !batch.is_sorted_by_key(|&(identity, _)| identity) {
            sort_by_u64_key(&mut batch, |&(identity, _)| identity);
        }
        // A batch of every target (the first discovery) is a full allocation.
        let mut full = full || batch.len() == self.slot_of.len();
        let load = if full {
            Load::default()
        } else {
            self.load_outside(&batch).unwrap_or_else(|| {
                full = true;
                Load::default()
            })
        };
        if full && batch.len() < self.slot_of.len() {
            batch = self.all_entries();
            sort_by_u64_key(&mut batch, |&(identity, _)| identity);
        }
        let batch: Vec<u32> = batch.into_iter().map(|(_, at)| at).collect();
        let primary = self.choice.primary.clone();
        let input = self.source().build(&batch, primary.info(), load, &self.choice.primary_options);
        let mut errors = Vec::new();
        let mut calls = Vec::new();
        let started = std::time::Instant::now();
        let result = primary.assign(&input);
        calls.push(StrategyCall::new(primary.name(), &result, started));
        let mut output = match result {
            Ok(output) => output,
            Err(error) if strictness == Strictness::KeepOnFailure => {
                return Err(SwitchError { strategy: primary.name().to_string(), error, calls });
            }
            Err(e) => {
                tracing::error!(strategy = primary.name(), error = %e, targets = batch.len(), "strategy failed; keeping previous assignments and placing new targets with native consistent hashing");
                errors.push(format!("{}: {e}", primary.name()));
                self.recover(&batch)
            }
        };
        self.resolve_deferred(&batch, &mut output, &mut errors, &mut calls);
        let moved = self.apply(&batch, &output);
        let error = if errors.is_empty() { None } else { Some(errors.join("; ")) };
        Ok(AllocationReport { calls, ..self.report(batch.len(), moved, error) })
    }

    /// Sends the targets the primary deferred to the fallback strategy, or
    /// leaves them unassigned when there is none.
    fn resolve_deferred(
        &self,
        batch: &[u32],
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
        let ids: Vec<u32> = deferred.iter().map(|&i| batch[i]).collect();
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
    fn recover(&self, ids: &[u32]) -> Vec<u32> {
        let input = self.source().build(ids, self.native_fallback.info(), Load::default(), "");
        let hashed = self.native_fallback.assign(&input).unwrap_or_else(|e| {
            tracing::error!(error = %e, "native fallback failed");
            vec![UNASSIGNED; ids.len()]
        });
        ids.iter()
            .zip(hashed)
            .map(|(&at, h)| {
                let previous = self.slot(at).collector;
                if (previous as usize) < self.collectors.len() { previous } else { h }
            })
            .collect()
    }

    /// Writes `output` for `batch`, updating the serving index for the targets
    /// that changed. Returns how many moved between collectors.
    fn apply(&mut self, batch: &[u32], output: &[u32]) -> usize {
        let n = self.collectors.len() as u32;
        let mut moved = 0;
        let (mut unindexed, mut indexed) = (Vec::new(), Vec::with_capacity(batch.len()));
        for (&at, &to) in batch.iter().zip(output) {
            let slot = self.slots[at as usize].as_mut().expect("batch slots are held");
            let id = slot.target.identity;
            let from = slot.collector;
            if from == to {
                continue;
            }
            slot.collector = to;
            if from < n {
                moved += usize::from(to < n);
                self.assigned[from as usize] -= 1;
                unindexed.push((slot.job, from, id));
            }
            if to < n {
                self.assigned[to as usize] += 1;
                indexed.push((slot.job, Served { identity: id, collector: to, slot: at }));
            }
        }
        self.unindex(unindexed);
        self.index(indexed);
        moved
    }

    /// Removes entries from the serving index, one pass per job.
    fn unindex(&mut self, mut entries: Vec<IndexEntry>) {
        entries.sort_unstable();
        for run in entries.chunk_by(|a, b| a.0 == b.0) {
            let served = &mut self.index[run[0].0 as usize];
            if let [(_, collector, id)] = run {
                if let Ok(at) = served.binary_search_by_key(&(*collector, *id), Served::key) {
                    served.remove(at);
                }
            } else {
                served
                    .retain(|entry| run.binary_search(&(run[0].0, entry.collector, entry.identity)).is_err());
            }
        }
    }

    /// Adds entries, given in identity order, to the serving index: grouped
    /// by job (one counting sort), each job's ordered by collector as it is
    /// appended, and merged with what the job held only when the two overlap.
    fn index(&mut self, entries: Vec<(u32, Served)>) {
        debug_assert!(entries.windows(2).all(|w| w[0].1.identity < w[1].1.identity));
        let by_job =
            Grouped::by_small_key(&entries, (self.index.len(), |(job, _)| *job as usize), |&(_, e)| e);
        drop(entries);
        let by_collector = (self.collectors.len(), |e: &Served| e.collector as usize);
        let mut counts = Vec::new();
        for (job, run) in by_job.runs() {
            let served = &mut self.index[job];
            let held = served.len();
            append_by_small_key(served, run, by_collector, &mut counts);
            if held > 0 && served[held - 1].key() > served[held].key() {
                // Two sorted runs: the stable sort finds them and merges in
                // linear time, where an unstable sort would start over.
                served.sort_by_key(Served::key);
            }
        }
    }

    /// Loads held outside `batch`, for an incremental batch (whose targets
    /// are all unassigned); `None` when the per-job table would be too large.
    fn load_outside(&self, batch: &[BatchEntry]) -> Option<Load> {
        let n = self.collectors.len();
        let mut jobs: Vec<u32> = batch.iter().map(|&(_, at)| self.slot(at).job).collect();
        jobs.sort_unstable();
        jobs.dedup();
        if jobs.len().saturating_mul(n) > MAX_INCREMENTAL_LOAD_CELLS {
            return None;
        }
        let mut job_collector_targets = vec![0; jobs.len() * n];
        for (row, &job) in job_collector_targets.chunks_mut(n.max(1)).zip(&jobs) {
            for run in collector_runs(&self.index[job as usize]) {
                row[run[0].collector as usize] = run.len() as u32;
            }
        }
        Some(Load { collector_targets: self.assigned.clone(), jobs, job_collector_targets })
    }

    fn source(&self) -> BatchSource<'_> {
        BatchSource { collectors: &self.collectors, jobs: self.jobs.names(), slots: &self.slots }
    }

    fn report(&self, batch: usize, moved: usize, strategy_error: Option<String>) -> AllocationReport {
        AllocationReport { batch, moved, unassigned: self.unassigned(), strategy_error, calls: Vec::new() }
    }

    // --- views ---

    pub fn collectors(&self) -> &[Collector] {
        &self.collectors
    }

    pub fn target_count(&self) -> usize {
        self.slot_of.len()
    }

    /// Targets without a collector.
    pub fn unassigned(&self) -> usize {
        self.slot_of.len() - self.assigned.iter().map(|&n| n as usize).sum::<usize>()
    }

    /// The collector a target is assigned to.
    pub fn collector_of(&self, identity: u64) -> Option<&Collector> {
        let slot = self.slot(self.slot_of.get(identity)?);
        self.collectors.get(slot.collector as usize)
    }

    /// Jobs with at least one assigned target.
    pub fn served_jobs(&self) -> impl Iterator<Item = &Arc<str>> {
        self.jobs.names().iter().zip(&self.index).filter(|(_, c)| !c.is_empty()).map(|(job, _)| job)
    }

    /// The collectors holding targets of `job`, with those targets.
    pub fn job_assignment(&self, job: &str) -> impl Iterator<Item = (&Arc<str>, Assigned<'_>)> {
        let served = self.jobs.get(job).and_then(|j| self.index.get(j as usize));
        let runs = served.into_iter().flat_map(|served| collector_runs(served));
        runs.map(|run| {
            (&self.collectors[run[0].collector as usize].id, Assigned { served: run, slots: &self.slots })
        })
    }

    /// Targets of `job` assigned to `collector`, in identity order.
    pub fn targets_for(&self, collector: &str, job: &str) -> impl Iterator<Item = &Target> {
        let c = self.collectors.binary_search_by(|c| (*c.id).cmp(collector)).ok();
        let served = self.jobs.get(job).and_then(|j| self.index.get(j as usize));
        let run = c.zip(served).map(|(c, served)| {
            let c = c as u32;
            let start = served.partition_point(|e| e.collector < c);
            let end = start + served[start..].partition_point(|e| e.collector == c);
            &served[start..end]
        });
        let slots = &self.slots;
        run.into_iter().flat_map(move |served| Assigned { served, slots }.iter())
    }

    /// Number of targets per collector, by collector index.
    pub fn targets_per_collector(&self) -> Vec<(Arc<str>, usize)> {
        self.collectors.iter().zip(&self.assigned).map(|(c, &n)| (c.id.clone(), n as usize)).collect()
    }
}

/// A job's serving entries split by collector, each run found by binary
/// search: counting a job's targets per collector costs its collectors, not
/// its targets.
fn collector_runs(served: &[Served]) -> impl Iterator<Item = &[Served]> {
    let mut rest = served;
    std::iter::from_fn(move || {
        let collector = rest.first()?.collector;
        let (run, after) = rest.split_at(rest.partition_point(|e| e.collector == collector));
        rest = after;
        Some(run)
    })
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
