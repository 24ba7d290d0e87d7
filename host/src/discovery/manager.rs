//! Starting the discovery tasks of a config, and collecting their groups per job.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use std::sync::mpsc::Sender;
use tokio::task::JoinHandle;

use super::file_sd::run_file_sd;
use super::http_sd::run_http_sd;
use super::target_group::{JobProcessor, group_of_addresses};
use super::{DiscoveryUpdate, SourceKey};
use crate::allocation::{IdMap, IdSet, JobDelta, Target, TargetGroup};
use crate::config::PrometheusConfig;

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
    holders: IdMap<u32>,
    discovered: usize,
}

struct ProcessedGroup {
    group: Arc<TargetGroup>,
    targets: Vec<Arc<Target>>,
}

impl JobTargets {
    /// Records an update and returns what changed for the allocator, or
    /// `None` when nothing did (or the job has no processor).
    pub fn apply(&mut self, update: DiscoveryUpdate, processor: &JobProcessor) -> Option<JobDelta> {
        let state = self.jobs.entry(update.source.job.clone()).or_default();
        let mut previous = state.sources.remove(&update.source.source).unwrap_or_default();
        let unchanged = previous.len() == update.groups.len()
            && previous.iter().zip(&update.groups).all(|(p, g)| Arc::ptr_eq(&p.group, g) || p.group == *g);
        if unchanged {
            state.sources.insert(update.source.source, previous);
            return None;
        }
        let mut delta = JobDelta { job: update.source.job.clone(), ..JobDelta::default() };
        let mut processed = Vec::with_capacity(update.groups.len());
        // Groups are matched by position: an unchanged group keeps its targets.
        let mut old = previous.drain(..).map(Some).collect::<Vec<_>>();
        let mut released = Vec::new();
        for (i, group) in update.groups.into_iter().enumerate() {
            let kept = old
                .get_mut(i)
                .and_then(|slot| slot.take_if(|p| Arc::ptr_eq(&p.group, &group) || p.group == group));
            if let Some(kept) = kept {
                processed.push(kept);
                continue;
            }
            let targets: Vec<Arc<Target>> =
                processor.process_group(&group).into_iter().map(Arc::new).collect();
            for target in &targets {
                *state.holders.entry(target.identity).or_default() += 1;
            }
            delta.upserted.extend(targets.iter().cloned());
            state.discovered += group.targets.len();
            processed.push(ProcessedGroup { group, targets });
        }
        for gone in old.into_iter().flatten() {
            state.discovered -= gone.group.targets.len();
            released.extend(gone.targets);
        }
        state.sources.insert(update.source.source, processed);
        let upserted: IdSet = if released.is_empty() {
            IdSet::default()
        } else {
            delta.upserted.iter().map(|t| t.identity).collect()
        };
        for target in released {
            let id = target.identity;
            let count = state.holders.get_mut(&id).expect("held targets are counted");
            *count -= 1;
            if *count == 0 {
                state.holders.remove(&id);
                delta.removed.push(id);
            } else if !upserted.contains(&id) {
                // Another group still has this identity: serve its labels.
                if let Some(other) = state.find(id) {
                    delta.upserted.push(other);
                }
            }
        }
        Some(delta)
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
    pub fn targets(&self, job: &str) -> Vec<Arc<Target>> {
        let Some(state) = self.jobs.get(job) else { return Vec::new() };
        state.sources.values().flatten().flat_map(|p| p.targets.iter().cloned()).collect()
    }
}

impl JobState {
    /// A kept target with identity `id` (the rare path of collapsed duplicates).
    fn find(&self, id: u64) -> Option<Arc<Target>> {
        self.sources.values().flatten().flat_map(|p| &p.targets).find(|t| t.identity == id).cloned()
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

    fn addresses(targets: &[Arc<Target>]) -> Vec<&str> {
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
    }
}
