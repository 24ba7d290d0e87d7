//! The `target-allocator` host: discovery, allocation and serving, with
//! assignment strategies running as WebAssembly components.
//!
//! Modules by responsibility: [`config`] (reading configuration),
//! [`discovery`] (targets from sources), [`allocation`] (who scrapes what),
//! [`runtime`] (Wasm strategies), [`strategies`] (strategies by name),
//! [`server`] (the HTTP API), [`metrics`], [`reload`] (hot reload of the
//! config and of `strategy_dir`), [`app`] (wiring) and [`cli`].

pub mod allocation;
pub mod app;
pub mod cli;
pub mod config;
pub mod discovery;
/// The fuzz targets' checks, shared with the corpus replay test.
#[doc(hidden)]
pub mod fuzzing;
pub mod kubernetes;
pub mod label_order;
pub mod metrics;
mod prefetch;
pub mod relabel;
pub mod reload;
pub mod runtime;
pub mod server;
pub mod strategies;
