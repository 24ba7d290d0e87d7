//! Starting the discovery tasks of a config, and collecting their groups per job.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use std::sync::mpsc::Sender;
use tokio::task::JoinHandle;

use super::file_sd::run_file_sd;
use super::http_sd::run_http_sd;
use super::target_group::{JobProcessor, group_of_addresses};
use super::{DiscoveryUpdate, SourceKey};
use crate::allocation::{IdMap, IdSet, JobDelta, Labels, Target, TargetGroup};
use crate::config::PrometheusConfig;
use crate::prefetch::prefetch;

/// The running discovery tasks of one config; dropping it stops them.
pub struct DiscoveryManager {
    tasks: Vec<JoinHandle<()>>,
}

impl DiscoveryManager {
    /// The sources `start` runs for `job`: its static configs (one source,
    /// reported at once even when empty), and each file and HTTP SD config.
    pub fn source_count(job: &crate::config::ScrapeConfig) -> usize {
        1 + job.file_sd_configs.len() + job.http_sd_configs.len()
    }

    /// Starts one task per SD config. Static configs are reported at once.
    pub fn start(config: &PrometheusConfig, updates: Sender<DiscoveryUpdate>) -> DiscoveryManager {
        let mut tasks = Vec::new();
        for job in &config.scrape_configs {
            let name: Arc<str> = Arc::from(job.job_name.as_str());
            let key = |kind: &str, i: usize| SourceKey { job: name.clone(), source: format!("{kind}/{i}") };
            let static_groups = job
                .static_configs
                .iter()
                .map(|s| Arc::new(group_of_addresses(s.targets.clone(), s.labels.clone())))
                .collect();
            let update = DiscoveryUpdate { source: key("static", 0), groups: static_groups };
            let _ = updates.send(update);
            for (i, file_sd) in job.file_sd_configs.iter().enumerate() {
                tasks.push(tokio::spawn(run_file_sd(key("file_sd", i), file_sd.clone(), updates.clone())));
            }
            for (i, http_sd) in job.http_sd_configs.iter().enumerate() {
                tasks.push(tokio::spawn(run_http_sd(key("http_sd", i), http_sd.clone(), updates.clone())));
            }
        }
        DiscoveryManager { tasks }
    }
}

impl Drop for DiscoveryManager {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The latest groups of every source, by job, with the targets made of
/// them. An update re-processes only the groups that changed and reports the
/// difference as a [`JobDelta`], so its cost follows the change, not the job.
#[derive(Default)]
pub struct JobTargets {
    jobs: HashMap<Arc<str>, JobState>,
}

#[derive(Default)]
struct JobState {
    /// source → its groups, in order, each with the targets the job's rules kept.
    sources: BTreeMap<String, Vec<ProcessedGroup>>,
    /// identity → how many kept targets have it (equal identities collapse
    /// into one allocator target, which lives while any of them does).
    /// Counted from the first update that releases targets on: until then
    /// nothing reads it, and most jobs of a start-up never change. Counting
    /// every start-up target would fill a table per job in an order
    /// unrelated to memory, a cache miss per target.
    holders: Option<IdMap<u32>>,
    discovered: usize,
}

/// Windows with fewer groups than this are processed on one thread:
/// handing work to other threads would cost more than it saves.
const PARALLEL_GROUPS: usize = 256;

/// Threads a window is processed on, at most.
const MAX_THREADS: usize = 8;

/// The threads that process large windows alongside the calling one:
/// started once and kept, so a window neither pays for starting threads
/// nor runs on threads whose allocator heaps are empty (every fresh heap
/// takes its memory from the OS again, page fault by page fault). `None`
/// on a single CPU, or when no thread could be started: windows then run
/// on the caller alone.
fn processing_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        if threads < 2 {
            return None;
        }
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(threads - 1)
            .thread_name(|i| format!("ta-processing-{i}"))
            .build();
        built.inspect_err(|e| tracing::warn!(error = %e, "processing discovery on one thread")).ok()
    });
    pool.as_ref()
}

/// One job's share of a window: its state, taken out of the map while the
/// updates are applied, and their results by position in the window.
struct JobWork<'p> {
    job: Arc<str>,
    state: JobState,
    processor: &'p JobProcessor,
    updates: Vec<(usize, DiscoveryUpdate)>,
    results: Vec<(usize, Option<JobDelta>)>,
}

impl JobWork<'_> {
    fn run(&mut self) {
        for (position, update) in self.updates.drain(..) {
            let delta = self.state.apply(update, self.processor);
            self.results.push((position, delta));
        }
    }

    fn weight(&self) -> usize {
        self.updates.iter().map(|(_, u)| u.groups.len()).sum::<usize>() + 1
    }

    /// Runs every job's updates on the calling thread and, given a pool,
    /// on its threads as well. Each thread takes the next job not yet
    /// taken, heaviest first, so a thread that is slowed down (a busy or
    /// stolen vCPU) takes fewer jobs instead of holding the others up at
    /// the end.
    fn run_on<'p>(mut work: Vec<JobWork<'p>>, pool: Option<&rayon::ThreadPool>) -> Vec<JobWork<'p>> {
        let Some(pool) = pool.filter(|_| work.len() > 1) else {
            work.iter_mut().for_each(JobWork::run);
            return work;
        };
        let helpers = pool.current_num_threads().min(work.len() - 1);
        work.sort_by_key(|w| std::cmp::Reverse(w.weight()));
        let work: Vec<Mutex<JobWork>> = work.into_iter().map(Mutex::new).collect();
        let next = AtomicUsize::new(0);
        let take_jobs = || {
            while let Some(job) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                job.lock().expect("discovery processing does not panic").run();
            }
        };
        // A panic in another thread resumes here once every thread is done.
        pool.in_place_scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|_| take_jobs());
            }
            take_jobs();
        });
        work.into_iter().map(|job| job.into_inner().expect("discovery processing does not panic")).collect()
    }
}

/// Counts one more holder of each of `identities`.
fn count_holders(holders: &mut IdMap<u32>, identities: impl IntoIterator<Item = u64>) {
    for identity in identities {
        *holders.entry(identity).or_default() += 1;
    }
}

/// A group and what the job's rules kept of it. The allocator holds the
/// targets themselves; a [`Target`] is rebuilt from these on the rare paths
/// that need one here (collapsed duplicates, a resync).
struct ProcessedGroup {
    group: Arc<TargetGroup>,
    /// (index in the group, identity) of each kept target.
    kept: Vec<(u32, u64)>,
    /// The version the group's targets were made with.
    version: u64,
}

impl ProcessedGroup {
    fn targets(&self) -> impl Iterator<Item = Target> + '_ {
        self.kept.iter().map(move |&kept| self.target(kept))
    }

    fn target(&self, (index, identity): (u32, u64)) -> Target {
        Target::in_group(self.group.clone(), index as usize, identity, self.version)
    }
}

impl JobTargets {
    /// Records an update and returns what changed for the allocator, or
    /// `None` when nothing did (or the job has no processor).
    pub fn apply(&mut self, update: DiscoveryUpdate, processor: &JobProcessor) -> Option<JobDelta> {
        self.jobs.entry(update.source.job.clone()).or_default().apply(update, processor)
    }

    /// [`apply`](Self::apply) for a window of updates, in order, with the
    /// processor of each update's job (`None`: the update is ignored). Jobs
    /// are independent, so a large window is processed on several threads,
    /// each job's updates in order on one of them. Returns each update's job
    /// and delta, in the order given.
    pub fn apply_all<'p>(
        &mut self,
        updates: Vec<DiscoveryUpdate>,
        processor_of: impl Fn(&str) -> Option<&'p JobProcessor>,
    ) -> Vec<(Arc<str>, Option<JobDelta>)> {
        let count = updates.len();
        let mut work: Vec<JobWork<'p>> = Vec::new();
        let mut work_of: HashMap<Arc<str>, usize> = HashMap::new();
        for (position, update) in updates.into_iter().enumerate() {
            let job = update.source.job.clone();
            let Some(processor) = processor_of(&job) else { continue };
            let at = *work_of.entry(job.clone()).or_insert_with(|| {
                let state = self.jobs.remove(&job).unwrap_or_default();
                work.push(JobWork { job, state, processor, updates: Vec::new(), results: Vec::new() });
                work.len() - 1
            });
            work[at].updates.push((position, update));
        }
        let groups: usize = work.iter().flat_map(|w| &w.updates).map(|(_, u)| u.groups.len()).sum();
        let pool = if groups < PARALLEL_GROUPS { None } else { processing_pool() };
        let work = JobWork::run_on(work, pool);
        let mut results: Vec<Option<(Arc<str>, Option<JobDelta>)>> = (0..count).map(|_| None).collect();
        for work in work {
            for (position, delta) in work.results {
                results[position] = Some((work.job.clone(), delta));
            }
            self.jobs.insert(work.job, work.state);
        }
        results.into_iter().flatten().collect()
    }

    /// How many sources of `job` have reported since this value was created.
    pub fn sources_reported(&self, job: &str) -> usize {
        self.jobs.get(job).map_or(0, |state| state.sources.len())
    }

    /// Targets discovered per job, before any filtering.
    pub fn discovered_per_job(&self) -> impl Iterator<Item = (&str, usize)> {
        self.jobs.iter().map(|(job, state)| (&**job, state.discovered))
    }

    /// Every kept target of `job`, in source then group order (duplicates included).
    pub fn targets(&self, job: &str) -> Vec<Target> {
        let Some(state) = self.jobs.get(job) else { return Vec::new() };
        state.sources.values().flatten().flat_map(ProcessedGroup::targets).collect()
    }
}

impl JobState {
    /// See [`JobTargets::apply`].
    fn apply(&mut self, update: DiscoveryUpdate, processor: &JobProcessor) -> Option<JobDelta> {
        let mut previous = self.sources.remove(&update.source.source).unwrap_or_default();
        let unchanged = previous.len() == update.groups.len()
            && previous.iter().zip(&update.groups).all(|(p, g)| Arc::ptr_eq(&p.group, g) || p.group == *g);
        if unchanged {
            self.sources.insert(update.source.source, previous);
            return None;
        }
        let mut delta = JobDelta {
            job: update.source.job.clone(),
            // At most every target of the update: grown once, not by doubling.
            upserted: Vec::with_capacity(update.groups.iter().map(|g| g.targets.len()).sum()),
            removed: Vec::new(),
        };
        let mut processed = Vec::with_capacity(update.groups.len());
        // Groups are matched by position: an unchanged group keeps its targets.
        let mut old = previous.drain(..).map(Some).collect::<Vec<_>>();
        let mut released = Vec::new();
        let mut processing = processor.groups();
        for (i, group) in update.groups.iter().enumerate() {
            // Discovered groups lie far apart in a large heap, each a chain
            // of pointers (the group, its labels and list of targets, their
            // labels): each link is asked for one group ahead of the next,
            // so that the group processed next is in the cache. Groups
            // known unchanged (the same allocation) are not read.
            let ahead = |ahead: usize| {
                let group = update.groups.get(i + ahead)?;
                let unchanged = old
                    .get(i + ahead)
                    .is_some_and(|p| p.as_ref().is_some_and(|p| Arc::ptr_eq(&p.group, group)));
                (!unchanged).then_some(group)
            };
            if let Some(group) = ahead(3) {
                prefetch(&**group);
            }
            if let Some(group) = ahead(2) {
                group.prefetch();
            }
            if let Some(group) = ahead(1) {
                group.targets.iter().for_each(Labels::prefetch);
            }
            let kept = old
                .get_mut(i)
                .and_then(|slot| slot.take_if(|p| Arc::ptr_eq(&p.group, group) || p.group == *group));
            if let Some(kept) = kept {
                processed.push(kept);
                continue;
            }
            let first = delta.upserted.len();
            processing.process(group, &mut delta.upserted);
            let targets = &delta.upserted[first..];
            let kept: Vec<_> =
                targets.iter().map(|target| (target.index() as u32, target.identity)).collect();
            if let Some(holders) = &mut self.holders {
                count_holders(holders, kept.iter().map(|&(_, identity)| identity));
            }
            let version = targets.first().map_or(0, Target::version);
            self.discovered += group.targets.len();
            processed.push(ProcessedGroup { group: group.clone(), kept, version });
        }
        drop(processing);
        for gone in old.into_iter().flatten() {
            self.discovered -= gone.group.targets.len();
            released.extend(gone.kept.iter().map(|&(_, identity)| identity));
        }
        if self.holders.is_none() && !released.is_empty() {
            // Counted as if from the start: the released targets included,
            // as the loop below takes them away.
            let mut holders = IdMap::default();
            let groups = self.sources.values().flatten().chain(&processed);
            count_holders(
                &mut holders,
                groups.flat_map(|group| group.kept.iter().map(|&(_, identity)| identity)),
            );
            count_holders(&mut holders, released.iter().copied());
            self.holders = Some(holders);
        }
        self.sources.insert(update.source.source, processed);
        let upserted: IdSet = if released.is_empty() {
            IdSet::default()
        } else {
            delta.upserted.iter().map(|t| t.identity).collect()
        };
        for id in released {
            let holders = self.holders.as_mut().expect("counted once targets are released");
            let count = holders.get_mut(&id).expect("held targets are counted");
            *count -= 1;
            if *count == 0 {
                holders.remove(&id);
                delta.removed.push(id);
            } else if !upserted.contains(&id) {
                // Another group still has this identity: serve its labels.
                if let Some(other) = self.find(id) {
                    delta.upserted.push(other);
                }
            }
        }
        Some(delta)
    }

    /// A kept target with identity `id` (the rare path of collapsed duplicates).
    fn find(&self, id: u64) -> Option<Target> {
        self.sources.values().flatten().find_map(|p| {
            let &kept = p.kept.iter().find(|&&(_, identity)| identity == id)?;
            Some(p.target(kept))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::group_of_addresses;

    fn update(source: &str, groups: &[Arc<TargetGroup>]) -> DiscoveryUpdate {
        DiscoveryUpdate {
            source: SourceKey { job: "j".into(), source: source.into() },
            groups: groups.to_vec(),
        }
    }

    fn group(addresses: &[&str], env: &str) -> Arc<TargetGroup> {
        let labels = [("env".to_string(), env.to_string())].into();
        Arc::new(group_of_addresses(addresses.iter().map(|a| a.to_string()).collect(), labels))
    }

    fn addresses(targets: &[Target]) -> Vec<&str> {
        let mut all: Vec<&str> = targets.iter().map(|t| t.address()).collect();
        all.sort();
        all
    }

    #[test]
    fn an_update_reprocesses_only_the_groups_that_changed() {
        let processor = JobProcessor::unfiltered("j");
        let mut jobs = JobTargets::default();
        let (a, b) = (group(&["a:1", "a:2"], "x"), group(&["b:1"], "x"));
        let first = jobs.apply(update("s", &[a.clone(), b.clone()]), &processor).unwrap();
        assert_eq!(addresses(&first.upserted), ["a:1", "a:2", "b:1"]);
        assert!(first.removed.is_empty());
        // The same groups again, even as fresh copies: nothing to do.
        assert!(jobs.apply(update("s", &[a.clone(), Arc::new((*b).clone())]), &processor).is_none());
        // Group b changes: only its targets are reported.
        let b2 = group(&["b:2"], "x");
        let second = jobs.apply(update("s", &[a.clone(), b2.clone()]), &processor).unwrap();
        assert_eq!(addresses(&second.upserted), ["b:2"]);
        assert_eq!(second.removed, [first.upserted[2].identity]);
        assert_eq!(jobs.discovered_per_job().collect::<Vec<_>>(), [("j", 3)]);
        // Another source of the same job is independent.
        let other = jobs.apply(update("t", &[group(&["c:1"], "y")]), &processor).unwrap();
        assert_eq!(addresses(&other.upserted), ["c:1"]);
        assert_eq!(addresses(&jobs.targets("j")), ["a:1", "a:2", "b:2", "c:1"]);
    }

    #[test]
    fn a_window_applied_in_parallel_equals_its_updates_applied_in_turn() {
        // Enough groups to go parallel; two sources per job, one job updated
        // twice in the window, and a job without a processor.
        let processors: HashMap<String, JobProcessor> =
            (0..40).map(|j| (format!("job{j}"), JobProcessor::unfiltered(&format!("job{j}")))).collect();
        let window = |round: usize| -> Vec<DiscoveryUpdate> {
            let mut updates = Vec::new();
            for j in 0..41 {
                for source in ["a", "b"] {
                    let groups = (0..8)
                        .map(|g| group(&[&format!("{j}-{source}-{g}:{}", (g + round) % 3)], source))
                        .collect::<Vec<_>>();
                    let key = SourceKey { job: format!("job{j}").into(), source: source.into() };
                    updates.push(DiscoveryUpdate { source: key, groups });
                }
            }
            let again = updates[4].clone();
            updates.push(DiscoveryUpdate { groups: again.groups[..3].to_vec(), ..again });
            updates
        };
        let summary = |delta: &Option<JobDelta>| {
            delta.as_ref().map(|d| {
                (addresses(&d.upserted).iter().map(|a| a.to_string()).collect::<Vec<_>>(), d.removed.clone())
            })
        };
        let (mut parallel, mut sequential) = (JobTargets::default(), JobTargets::default());
        for round in 0..3 {
            let updates = window(round);
            let expected: Vec<_> = updates
                .iter()
                .filter_map(|u| {
                    let processor = processors.get(&*u.source.job)?;
                    Some((u.source.job.clone(), summary(&sequential.apply(u.clone(), processor))))
                })
                .collect();
            let got: Vec<_> = parallel
                .apply_all(updates, |job| processors.get(job))
                .into_iter()
                .map(|(job, delta)| (job, summary(&delta)))
                .collect();
            assert_eq!(got, expected, "round {round}");
        }
        for j in 0..41 {
            let job = format!("job{j}");
            assert_eq!(addresses(&parallel.targets(&job)), addresses(&sequential.targets(&job)));
        }
        assert!(parallel.targets("job40").is_empty(), "no processor, no targets");
    }

    #[test]
    fn collapsed_identities_live_while_any_holder_does() {
        let processor = JobProcessor::unfiltered("j");
        let mut jobs = JobTargets::default();
        // The same address and labels in two sources: one identity.
        let first = jobs.apply(update("s", &[group(&["a:1"], "x")]), &processor).unwrap();
        let id = first.upserted[0].identity;
        let second = jobs.apply(update("t", &[group(&["a:1"], "x")]), &processor).unwrap();
        assert_eq!(second.upserted[0].identity, id);
        // Dropping one holder keeps the target, served from the other.
        let third = jobs.apply(update("s", &[]), &processor).unwrap();
        assert!(third.removed.is_empty());
        assert_eq!(third.upserted.len(), 1);
        assert_eq!(third.upserted[0].identity, id);
        // Dropping the last removes it.
        let fourth = jobs.apply(update("t", &[]), &processor).unwrap();
        assert_eq!(fourth.removed, [id]);
        assert!(jobs.targets("j").is_empty());
        // Holders counted since the job began, whichever update first releases one.
        jobs.apply(update("u", &[group(&["a:1"], "x")]), &processor).unwrap();
        jobs.apply(update("v", &[group(&["a:1"], "x")]), &processor).unwrap();
        jobs.apply(update("w", &[group(&["a:1"], "x")]), &processor).unwrap();
        assert!(jobs.apply(update("u", &[]), &processor).unwrap().removed.is_empty());
        assert!(jobs.apply(update("v", &[]), &processor).unwrap().removed.is_empty());
        assert_eq!(jobs.apply(update("w", &[]), &processor).unwrap().removed, [id]);
    }

    #[test]
    fn a_changed_group_keeping_an_identity_does_not_remove_it() {
        let processor = JobProcessor::unfiltered("j");
        let mut jobs = JobTargets::default();
        let first = jobs.apply(update("s", &[group(&["a:1"], "x")]), &processor).unwrap();
        let id = first.upserted[0].identity;
        // The group changes (a second target), so its old self is released;
        // the new one holds the same identity.
        let second = jobs.apply(update("s", &[group(&["a:1", "b:1"], "x")]), &processor).unwrap();
        assert!(second.removed.is_empty(), "{:?}", second.removed);
        assert_eq!(second.upserted.len(), 2);
        let third = jobs.apply(update("s", &[]), &processor).unwrap();
        let mut removed = third.removed;
        removed.sort_unstable();
        let mut held: Vec<u64> = second.upserted.iter().map(|t| t.identity).collect();
        held.sort_unstable();
        assert_eq!(removed, held);
        assert!(held.contains(&id));
    }
}
