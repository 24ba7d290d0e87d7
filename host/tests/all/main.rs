//! The host's integration tests: one binary, one module per area.

// Expected `/scrape_configs` bodies are large `json!` literals.
#![recursion_limit = "256"]

mod allocator;
mod api;
mod cli;
mod conformance;
mod deploy;
mod e2e_prometheus;
mod faults;
mod fuzz_corpus;
mod kubernetes;
mod kubernetes_sd;
mod plugin_files;
mod relabel_promtool;
mod reload;
mod scrape_configs;
mod support;
