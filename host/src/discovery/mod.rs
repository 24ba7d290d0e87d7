//! Discovery: turning target sources into targets.
//!
//! Owns the Prometheus target-group format and how groups become
//! [`Target`](crate::allocation::Target)s. It must not assign anything.

mod target_group;

pub use target_group::{TargetGroup, TargetGroupError, parse_target_groups, targets_from_groups};
