//! Starting the discovery tasks of a config, and collecting their groups per job.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use std::sync::mpsc::Sender;
use tokio::task::JoinHandle;

use super::file_sd::run_file_sd;
use super::http_sd::run_http_sd;
use super::target_group::{JobProcessor, TargetGroup};
use super::{DiscoveryUpdate, SourceKey};
use crate::allocation::Target;
use crate::config::PrometheusConfig;

/// The running discovery tasks of one config; dropping it stops them.
pub struct DiscoveryManager {
    tasks: Vec<JoinHandle<()>>,
}

impl DiscoveryManager {
    /// Starts one task per SD config. Static configs are reported at once.
    pub fn start(config: &PrometheusConfig, updates: Sender<DiscoveryUpdate>) -> DiscoveryManager {
        let mut tasks = Vec::new();
        for job in &config.scrape_configs {
            let name: Arc<str> = Arc::from(job.job_name.as_str());
            let key = |kind: &str, i: usize| SourceKey { job: name.clone(), source: format!("{kind}/{i}") };
            let static_groups: Vec<TargetGroup> = job
                .static_configs
                .iter()
                .map(|s| TargetGroup { targets: s.targets.clone(), labels: s.labels.clone() })
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

/// The latest groups of every source, by job.
#[derive(Debug, Default)]
pub struct JobTargets {
    groups: HashMap<Arc<str>, BTreeMap<String, Vec<TargetGroup>>>,
}

impl JobTargets {
    /// Records an update; returns `false` when it changes nothing.
    pub fn apply(&mut self, update: DiscoveryUpdate) -> bool {
        let sources = self.groups.entry(update.source.job).or_default();
        if sources.get(&update.source.source) == Some(&update.groups) {
            return false;
        }
        sources.insert(update.source.source, update.groups);
        true
    }

    /// Every target of `job` that `processor` keeps, in source then group order.
    pub fn targets(&self, job: &str, processor: &JobProcessor) -> Vec<Target> {
        let Some(sources) = self.groups.get(job) else { return Vec::new() };
        let groups: Vec<TargetGroup> = sources.values().flatten().cloned().collect();
        processor.targets(&groups)
    }

    /// Targets discovered per job, before any filtering.
    pub fn discovered_per_job(&self) -> impl Iterator<Item = (&str, usize)> {
        self.groups.iter().map(|(job, sources)| {
            (&**job, sources.values().flatten().map(|g| g.targets.len()).sum::<usize>())
        })
    }
}
