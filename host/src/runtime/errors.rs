//! Why loading or calling a strategy failed.

use std::time::Duration;

/// A component that cannot become a strategy. The message says which step failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the file is {size} bytes, more than the {limit}-byte limit for strategies")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "not a WebAssembly component (a core module?): build for wasm32-unknown-unknown and \
         turn it into a component with `wasm-tools component new` or the wit-component crate"
    )]
    NotAComponent,
    #[error(
        "the file is precompiled native code, not a WebAssembly component: strategy files must be \
         .wasm components (compiled code is only read from the allocator's own cache)"
    )]
    Precompiled,
    #[error("compiling the component failed: {0:#}")]
    Compile(wasmtime::Error),
    #[error("the component does not implement a supported contract (supported: {supported}): {reason}")]
    UnsupportedContract { supported: String, reason: String },
    #[error(
        "the component imports `{import}`, which strategies may not use: a strategy may import \
         only `ta:allocator/host` (logging). WASI imports usually come from building for \
         wasm32-wasip1/wasip2; build for wasm32-unknown-unknown instead"
    )]
    ForbiddenImport { import: String },
    #[error("linking the component failed: {0:#}")]
    Link(wasmtime::Error),
    #[error("the smoke test failed: {0}")]
    SmokeTest(String),
}

/// A strategy call that produced no usable assignment.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the strategy ran past its {0:?} deadline")]
    Timeout(Duration),
    #[error("the strategy tried to use more than its {limit}-byte memory limit")]
    MemoryLimit { limit: usize },
    #[error("the strategy returned more data than its batch allows ({limit} bytes)")]
    OutputTooLarge { limit: usize },
    #[error("the strategy trapped: {0}")]
    Trap(String),
    #[error("the strategy returned an error: {0}")]
    Guest(String),
    #[error("the strategy returned an invalid assignment: {0}")]
    InvalidOutput(String),
    #[error("the strategy could not be instantiated: {0:#}")]
    Instantiate(wasmtime::Error),
}

impl CallError {
    /// A short, stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::MemoryLimit { .. } => "memory_limit",
            CallError::OutputTooLarge { .. } => "output_too_large",
            CallError::Trap(_) => "trap",
            CallError::Guest(_) => "guest_error",
            CallError::InvalidOutput(_) => "invalid_output",
            CallError::Instantiate(_) => "instantiate",
        }
    }
}
