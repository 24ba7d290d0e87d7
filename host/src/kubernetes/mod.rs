//! Kubernetes: the client, shared watches, collector discovery and the
//! `kubernetes_sd_configs` runner.
//!
//! Owns everything that talks to an API server. It must not allocate: it
//! reports collector sets and target groups through channels, like the
//! other discovery mechanisms.

pub mod client;
pub mod collectors;
pub mod watch;
