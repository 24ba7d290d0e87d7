//! The strategies compiled into the binary (see `host/build.rs`).

use std::sync::Arc;

use super::engine::Runtime;
use super::errors::LoadError;
use super::strategy_pre::{StrategyPre, StrategySource};

include!(concat!(env!("OUT_DIR"), "/builtin_components.rs"));

/// Compiles every built-in, in parallel (each takes tens of milliseconds).
pub fn load_builtins(runtime: &Arc<Runtime>) -> Result<Vec<StrategyPre>, LoadError> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = BUILTIN_COMPONENTS
            .iter()
            .map(|(_, bytes)| {
                scope.spawn(move || StrategyPre::prepare(runtime, bytes, StrategySource::Builtin))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("compiling a built-in panicked")).collect()
    })
}
