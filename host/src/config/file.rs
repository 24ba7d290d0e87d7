//! The config file's keys, with the reference allocator's defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration::parse_duration;
use super::prometheus::PrometheusConfig;

/// `filter_strategy` value that applies each job's relabel rules before allocation.
pub const FILTER_RELABEL_CONFIG: &str = "relabel-config";

/// A problem with the configuration, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not valid YAML: {message}")]
    Yaml { path: String, message: String },
    #[error("{path}: `{key}`: {message}")]
    Invalid { path: String, key: String, message: String },
}

/// Every key of the reference allocator's config file, plus ours.
#[derive(Clone, Debug, PartialEq)]
pub struct AllocatorConfig {
    pub listen_addr: String,
    pub kube_config_file_path: Option<PathBuf>,
    pub collector_selector: Option<serde_json::Value>,
    pub collector_namespace: String,
    pub prometheus: PrometheusConfig,
    pub allocation_strategy: String,
    pub allocation_fallback_strategy: String,
    /// Per strategy name: its options as JSON.
    pub allocation_strategy_config: BTreeMap<String, serde_json::Value>,
    pub filter_strategy: String,
    pub prometheus_cr: PrometheusCrConfig,
    pub https: HttpsConfig,
    pub collector_not_ready_grace_period: Duration,
    pub allow_insecure_auth_secrets: bool,
    /// Ours: a static collector list; no Kubernetes needed when set.
    pub collectors: Option<Vec<CollectorEntry>>,
    /// Ours: a directory of custom strategy components, watched.
    pub strategy_dir: Option<PathBuf>,
    /// Ours: where compiled components are cached; `None` means the default,
    /// [`default_strategy_cache_dir`].
    pub strategy_cache_dir: Option<PathBuf>,
}

/// The compiled-code cache when `strategy_cache_dir` is not set: a private
/// directory under the system temp dir (an `emptyDir` in a pod).
pub fn default_strategy_cache_dir() -> PathBuf {
    std::env::temp_dir().join("target-allocator-strategy-cache")
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            listen_addr: ":8080".into(),
            kube_config_file_path: None,
            collector_selector: None,
            collector_namespace: String::new(),
            prometheus: PrometheusConfig::default(),
            allocation_strategy: "consistent-hashing".into(),
            allocation_fallback_strategy: String::new(),
            allocation_strategy_config: BTreeMap::new(),
            filter_strategy: FILTER_RELABEL_CONFIG.into(),
            prometheus_cr: PrometheusCrConfig::default(),
            https: HttpsConfig::default(),
            collector_not_ready_grace_period: Duration::from_secs(30),
            allow_insecure_auth_secrets: false,
            collectors: None,
            strategy_dir: None,
            strategy_cache_dir: None,
        }
    }
}

impl AllocatorConfig {
    /// The compiled-code cache directory in effect.
    pub fn strategy_cache_dir(&self) -> PathBuf {
        self.strategy_cache_dir.clone().unwrap_or_else(default_strategy_cache_dir)
    }

    /// Keys that differ from `other` and only take effect at start, for the
    /// warning a hot reload gives.
    pub fn restart_only_changes(&self, other: &AllocatorConfig) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |key, changed: bool| {
            if changed {
                keys.push(key);
            }
        };
        check("listen_addr", self.listen_addr != other.listen_addr);
        check("https", self.https != other.https);
        check("prometheus_cr", self.prometheus_cr != other.prometheus_cr);
        check("kube_config_file_path", self.kube_config_file_path != other.kube_config_file_path);
        check("collector_namespace", self.collector_namespace != other.collector_namespace);
        check("collector_selector", self.collector_selector != other.collector_selector);
        check(
            "collector_not_ready_grace_period",
            self.collector_not_ready_grace_period != other.collector_not_ready_grace_period,
        );
        check("strategy_dir", self.strategy_dir != other.strategy_dir);
        check("strategy_cache_dir", self.strategy_cache_dir != other.strategy_cache_dir);
        check("collectors (set or unset)", self.collectors.is_some() != other.collectors.is_some());
        keys
    }

    /// Options for strategy `name` as JSON text: `allocation_strategy_config`
    /// under the name, or under the name with `-` as `_` (the reference writes
    /// `per_node` for `per-node`); empty when absent.
    pub fn strategy_options(&self, name: &str) -> String {
        let value = self
            .allocation_strategy_config
            .get(name)
            .or_else(|| self.allocation_strategy_config.get(&name.replace('-', "_")));
        match value {
            Some(serde_json::Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    }

    /// The fallback strategy for targets the main one defers:
    /// `allocation_strategy_config.per_node.fallback_strategy.name`, else
    /// `allocation_fallback_strategy`.
    pub fn fallback_strategy(&self) -> Option<String> {
        let from_options = self
            .allocation_strategy_config
            .get(&self.allocation_strategy)
            .or_else(|| self.allocation_strategy_config.get(&self.allocation_strategy.replace('-', "_")))
            .and_then(|v| v.pointer("/fallback_strategy/name"))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        from_options.or_else(|| Some(self.allocation_fallback_strategy.clone()).filter(|s| !s.is_empty()))
    }
}

/// `prometheus_cr.*`: accepted and validated now; CR discovery is in-cluster work.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct PrometheusCrConfig {
    pub enabled: bool,
    pub allow_namespaces: Vec<String>,
    pub deny_namespaces: Vec<String>,
    pub secret_namespaces: Vec<String>,
    pub service_monitor_selector: Option<serde_json::Value>,
    pub service_monitor_namespace_selector: Option<serde_json::Value>,
    pub pod_monitor_selector: Option<serde_json::Value>,
    pub pod_monitor_namespace_selector: Option<serde_json::Value>,
    pub scrape_config_selector: Option<serde_json::Value>,
    pub scrape_config_namespace_selector: Option<serde_json::Value>,
    pub probe_selector: Option<serde_json::Value>,
    pub probe_namespace_selector: Option<serde_json::Value>,
    #[serde(deserialize_with = "duration_field")]
    pub scrape_interval: Duration,
    #[serde(deserialize_with = "duration_field")]
    pub evaluation_interval: Duration,
    pub scrape_protocols: Vec<String>,
    pub scrape_classes: Vec<serde_json::Value>,
    pub deny_fs_access_through_sms: bool,
}

impl Default for PrometheusCrConfig {
    fn default() -> Self {
        PrometheusCrConfig {
            enabled: false,
            allow_namespaces: Vec::new(),
            deny_namespaces: Vec::new(),
            secret_namespaces: Vec::new(),
            service_monitor_selector: None,
            service_monitor_namespace_selector: None,
            pod_monitor_selector: None,
            pod_monitor_namespace_selector: None,
            scrape_config_selector: None,
            scrape_config_namespace_selector: None,
            probe_selector: None,
            probe_namespace_selector: None,
            scrape_interval: Duration::from_secs(30),
            evaluation_interval: Duration::ZERO,
            scrape_protocols: [
                "OpenMetricsText1.0.0",
                "OpenMetricsText0.0.1",
                "PrometheusText1.0.0",
                "PrometheusText0.0.4",
            ]
            .map(String::from)
            .to_vec(),
            scrape_classes: Vec::new(),
            deny_fs_access_through_sms: false,
        }
    }
}

/// `https.*`: the additional mTLS listener.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct HttpsConfig {
    pub enabled: bool,
    pub listen_addr: String,
    pub ca_file_path: String,
    pub tls_cert_file_path: String,
    pub tls_key_file_path: String,
}

impl Default for HttpsConfig {
    fn default() -> Self {
        HttpsConfig {
            enabled: false,
            listen_addr: ":8443".into(),
            ca_file_path: String::new(),
            tls_cert_file_path: String::new(),
            tls_key_file_path: String::new(),
        }
    }
}

/// One entry of the static `collectors:` list.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorEntry {
    pub id: String,
    #[serde(default)]
    pub node: Option<String>,
}

fn duration_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}
