//! Discovery: turning target sources into targets.
//!
//! Owns the Prometheus target-group format, the local discovery mechanisms
//! (`static_configs`, `file_sd_configs`, `http_sd_configs`) and the per-job
//! bookkeeping that turns their groups into [`Target`](crate::allocation::Target)s.
//! It must not assign anything: it reports which jobs changed.

mod file_sd;
mod http_sd;
mod manager;
mod target_group;

use std::sync::Arc;

pub use crate::allocation::TargetGroup;
pub use file_sd::expand_globs;
pub use manager::{DiscoveryManager, JobTargets};
pub use target_group::{
    GroupProcessing, JobProcessor, TargetGroupError, group_of_addresses, parse_target_groups,
};

/// One discovery source of one job, e.g. `("node", "file_sd/0")`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey {
    pub job: Arc<str>,
    pub source: String,
}

/// The complete current target groups of one source.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoveryUpdate {
    pub source: SourceKey,
    pub groups: Vec<Arc<TargetGroup>>,
}
