//! The host's integration tests: one binary, one module per area.

mod allocator;
mod api;
mod cli;
mod conformance;
mod e2e_prometheus;
mod faults;
mod relabel_promtool;
mod support;
