//! The host's integration tests: one binary, one module per area.

// Expected `/scrape_configs` bodies are large `json!` literals.
#![recursion_limit = "256"]

mod allocator;
mod api;
mod cli;
mod conformance;
mod e2e_prometheus;
mod faults;
mod kubernetes;
mod kubernetes_sd;
mod relabel_promtool;
mod scrape_configs;
mod support;
