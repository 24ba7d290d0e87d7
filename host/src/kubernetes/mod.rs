//! Kubernetes: the client, shared watches, collector discovery and
//! `kubernetes_sd_configs`.
//!
//! [`sd`] owns the pure half of service discovery: Kubernetes objects in,
//! Prometheus target groups out. The sibling modules own everything that
//! talks to an API server: building clients ([`client`]), shared watches and
//! their stores ([`watch`]), collector discovery ([`collectors`]) and running
//! the SD configs over the stores ([`sd_runner`]). Nothing here allocates:
//! collector sets and target groups leave through channels, like the other
//! discovery mechanisms.

pub mod client;
pub mod collectors;
pub mod sd;
pub mod sd_runner;
pub mod watch;
