//! Allocation: which collector scrapes each target.
//!
//! Owns the targets (by identity), the collectors, the current assignment and
//! the collector → job → targets index that serving reads. It calls the active
//! strategy in batches — every target when collectors change, only the new
//! ones when targets are added — diffs the result against the previous
//! assignment and applies it in one step.
//!
//! It must not discover anything or speak HTTP, and it knows strategies only
//! through [`Assigner`]: whether one runs as Wasm or natively is not its concern.

mod allocator;
mod assigner;
mod batch;
mod id_map;
mod interner;
mod slot_index;
mod sorting;
mod take_once;
mod target;
mod values;

pub use allocator::{
    AllocationReport, Allocator, Assigned, JobDelta, StrategyCall, StrategyChoice, SwitchError,
};
pub use assigner::{Assigner, NativeAssigner, native_fallback};
pub use batch::input_for_new_targets;
pub use id_map::{IdMap, IdSet, IdentityHasher};
pub use target::{
    Collector, IdentityInput, Labels, Layout, Merged, MergedLabels, NonMeta, Pairs, Target, TargetGroup,
    identity_hash, next_version, node_name,
};
