//! Kubernetes service discovery (`kubernetes_sd_configs`).
//!
//! [`sd`] owns the pure half: Kubernetes objects in, Prometheus target groups
//! out. Talking to the API server, watching and caching objects live in
//! sibling modules.

pub mod sd;
