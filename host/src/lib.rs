//! The `target-allocator` host: discovery, allocation and serving, with
//! assignment strategies running as WebAssembly components.

pub mod allocation;
pub mod cli;
pub mod discovery;
pub mod runtime;
pub mod strategies;
