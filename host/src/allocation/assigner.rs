//! The one interface allocation has to strategies, Wasm or native.

use std::sync::Arc;

use strategy_consistent_hashing::ConsistentHashing;
use target_allocator_sdk::{AssignInput, Info, Strategy, validate_output};

use crate::runtime::{CallError, StrategyPre};

/// Something that assigns batches of targets.
pub trait Assigner: Send + Sync {
    fn info(&self) -> &Info;
    /// `Ok(Err(message))` when the strategy rejects the options.
    fn validate_options(&self, options: &str) -> Result<Result<(), String>, CallError>;
    /// A checked assignment: one valid entry per target.
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, CallError>;

    fn name(&self) -> &str {
        &self.info().name
    }

    /// sha256 of the component, or `native`.
    fn digest(&self) -> &str;

    /// Where it came from: `built-in`, a file path, or `native`.
    fn source(&self) -> String;
}

impl Assigner for StrategyPre {
    fn info(&self) -> &Info {
        StrategyPre::info(self)
    }
    fn validate_options(&self, options: &str) -> Result<Result<(), String>, CallError> {
        StrategyPre::validate_options(self, options)
    }
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, CallError> {
        StrategyPre::assign(self, input)
    }
    fn digest(&self) -> &str {
        StrategyPre::digest(self)
    }
    fn source(&self) -> String {
        StrategyPre::source(self).to_string()
    }
}

/// A strategy compiled into the host, held to the same output checks as a guest.
pub struct NativeAssigner<S> {
    strategy: S,
    info: Info,
}

impl<S: Strategy> NativeAssigner<S> {
    pub fn new(strategy: S) -> Self {
        let info = strategy.info();
        NativeAssigner { strategy, info }
    }
}

impl<S: Strategy + Send + Sync> Assigner for NativeAssigner<S> {
    fn info(&self) -> &Info {
        &self.info
    }
    fn validate_options(&self, options: &str) -> Result<Result<(), String>, CallError> {
        Ok(self.strategy.validate_options(options))
    }
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, CallError> {
        let output = self.strategy.assign(input).map_err(CallError::Guest)?;
        validate_output(input, &output).map_err(|v| CallError::InvalidOutput(v.to_string()))?;
        Ok(output)
    }
    fn digest(&self) -> &str {
        "native"
    }
    fn source(&self) -> String {
        "native".into()
    }
}

/// The safety net when a strategy fails: consistent hashing compiled natively
/// from the same crate as the built-in guest, so it does not depend on Wasm.
pub fn native_fallback() -> Arc<dyn Assigner> {
    Arc::new(NativeAssigner::new(ConsistentHashing))
}
