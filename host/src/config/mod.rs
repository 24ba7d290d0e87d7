//! Configuration: the reference allocator's config file, flags and
//! environment, plus this allocator's additions (`collectors`, `strategy_dir`).
//!
//! Owns reading, defaulting and validating configuration, with errors that
//! name the key. It must not start anything: the result is plain data.

mod bytes;
mod duration;
mod fields;
mod file;
mod http_client;
mod load;
mod prometheus;

pub use duration::{format_duration, parse_duration};
pub use fields::KeyError;
pub use file::{
    AllocatorConfig, CollectorEntry, ConfigError, FILTER_RELABEL_CONFIG, HttpsConfig, PrometheusCrConfig,
    default_strategy_cache_dir,
};
pub use load::{CliOverrides, DEFAULT_CONFIG_FILE, Environment, load_config, parse_config, socket_addr};
pub use prometheus::{
    FileSdConfig, HttpSdConfig, PrometheusConfig, ScrapeConfig, StaticConfig, parse_prometheus_config,
};
