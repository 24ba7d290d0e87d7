//! The WebAssembly runtime for strategies.
//!
//! Owns everything wasmtime: the one [`Engine`](wasmtime::Engine), compiling
//! and pre-linking components ([`StrategyPre`], deduplicated by digest), and
//! running one sandboxed call per assignment batch with a deadline, a memory
//! cap and validated output (`strategy_call`).
//!
//! It must not touch allocation state: it turns an [`AssignInput`] into a
//! checked `Vec<u32>` or a classified [`CallError`], and nothing else.
//!
//! [`AssignInput`]: target_allocator_sdk::AssignInput

mod bindings;
mod builtin;
mod code_cache;
mod engine;
mod errors;
mod limits;
mod strategy_call;
mod strategy_pre;

pub use builtin::load_builtins;
pub use code_cache::{CacheDirError, CodeCache};
pub use engine::{Runtime, RuntimeConfig};
pub use errors::{CallError, LoadError};
pub use limits::CallLimits;
pub use strategy_pre::{SMOKE_TEST_TARGETS, StrategyPre, StrategySource, supported_range};

/// The contract versions this host runs, oldest first. Each has a frozen WIT
/// directory under `wit/` and a bindings module; a guest exporting a
/// semver-compatible version of one of them loads, any other is refused.
pub const SUPPORTED_CONTRACTS: &[&str] = &["ta:allocator@0.1.0"];
