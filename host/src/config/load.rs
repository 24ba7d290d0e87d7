//! Reading the config with the reference's precedence: defaults < file <
//! environment < flags. Validation runs last, on the merged result.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::duration::parse_duration;
use super::file::{AllocatorConfig, CollectorEntry, ConfigError};
use super::prometheus::parse_prometheus_config;

pub const DEFAULT_CONFIG_FILE: &str = "/conf/targetallocator.yaml";

/// Keys the reference accepts that this allocator reads but does not act on
/// yet, or only passes along: accepted without a warning.
const KNOWN_KEYS: &[&str] = &[
    "listen_addr",
    "kube_config_file_path",
    "collector_selector",
    "collector_namespace",
    "config",
    "allocation_strategy",
    "allocation_fallback_strategy",
    "allocation_strategy_config",
    "filter_strategy",
    "prometheus_cr",
    "https",
    "telemetry",
    "collector_not_ready_grace_period",
    "allow_insecure_auth_secrets",
    "collectors",
    "strategy_dir",
    "strategy_cache_dir",
];

/// Flags that override the file when given (the reference's flag names).
#[derive(Clone, Debug, Default)]
pub struct CliOverrides {
    pub listen_addr: Option<String>,
    pub enable_prometheus_cr_watcher: bool,
    pub kubeconfig_path: Option<PathBuf>,
    pub enable_https_server: bool,
    pub listen_addr_https: Option<String>,
    pub https_ca_file: Option<String>,
    pub https_tls_cert_file: Option<String>,
    pub https_tls_key_file: Option<String>,
    pub allow_insecure_auth_secrets: bool,
}

/// The environment variables the reference reads.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// `OTELCOL_NAMESPACE`: overrides `collector_namespace`.
    pub otelcol_namespace: Option<String>,
    /// `ALLOW_INSECURE_AUTH_SECRETS`: only `true` has an effect.
    pub allow_insecure_auth_secrets: Option<String>,
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment {
            otelcol_namespace: std::env::var("OTELCOL_NAMESPACE").ok().filter(|s| !s.is_empty()),
            allow_insecure_auth_secrets: std::env::var("ALLOW_INSECURE_AUTH_SECRETS").ok(),
        }
    }
}

/// Reads, merges and validates. Returns the config and warnings (unknown keys).
pub fn load_config(
    path: &Path,
    env: &Environment,
    cli: &CliOverrides,
) -> Result<(AllocatorConfig, Vec<String>), ConfigError> {
    let shown = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    let (mut config, warnings) = parse_config(&text, &shown)?;
    resolve_relative_paths(&mut config, path.parent().unwrap_or(Path::new(".")));
    if let Some(ns) = &env.otelcol_namespace {
        config.collector_namespace = ns.clone();
    }
    if env.allow_insecure_auth_secrets.as_deref() == Some("true") {
        config.allow_insecure_auth_secrets = true;
    }
    apply_flags(&mut config, cli);
    validate(&config, &shown)?;
    Ok((config, warnings))
}

/// Relative `file_sd_configs` files and `strategy_dir` are relative to the
/// config file's directory, as Prometheus resolves file paths.
fn resolve_relative_paths(config: &mut AllocatorConfig, base: &Path) {
    for job in &mut config.prometheus.scrape_configs {
        for file_sd in &mut job.file_sd_configs {
            for file in &mut file_sd.files {
                if Path::new(file.as_str()).is_relative() {
                    *file = base.join(&*file).display().to_string();
                }
            }
        }
    }
    for dir in [&mut config.strategy_dir, &mut config.strategy_cache_dir].into_iter().flatten() {
        if dir.is_relative() {
            *dir = base.join(&*dir);
        }
    }
}

fn apply_flags(config: &mut AllocatorConfig, cli: &CliOverrides) {
    if let Some(addr) = &cli.listen_addr {
        config.listen_addr = addr.clone();
    }
    if cli.enable_prometheus_cr_watcher {
        config.prometheus_cr.enabled = true;
    }
    if let Some(path) = &cli.kubeconfig_path {
        config.kube_config_file_path = Some(path.clone());
    }
    if cli.enable_https_server {
        config.https.enabled = true;
    }
    for (flag, field) in [
        (&cli.listen_addr_https, &mut config.https.listen_addr),
        (&cli.https_ca_file, &mut config.https.ca_file_path),
        (&cli.https_tls_cert_file, &mut config.https.tls_cert_file_path),
        (&cli.https_tls_key_file, &mut config.https.tls_key_file_path),
    ] {
        if let Some(value) = flag {
            *field = value.clone();
        }
    }
    if cli.allow_insecure_auth_secrets {
        config.allow_insecure_auth_secrets = true;
    }
}

/// Parses config text (no environment or flags, no cross-key validation).
pub fn parse_config(text: &str, path: &str) -> Result<(AllocatorConfig, Vec<String>), ConfigError> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| ConfigError::Yaml { path: path.into(), message: e.to_string() })?;
    let root = match serde_json::to_value(yaml) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => Map::new(),
        Ok(_) => return Err(invalid(path, "(top level)", "must be a mapping of keys to values")),
        Err(e) => return Err(ConfigError::Yaml { path: path.into(), message: e.to_string() }),
    };
    let mut warnings: Vec<String> = root
        .keys()
        .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
        .map(|k| format!("{path}: unknown key `{k}` is ignored"))
        .collect();
    let mut config = AllocatorConfig::default();
    let take = |key: &str| root.get(key).filter(|v| !v.is_null());
    if let Some(v) = take("listen_addr") {
        config.listen_addr = typed(path, "listen_addr", v)?;
    }
    if let Some(v) = take("kube_config_file_path") {
        config.kube_config_file_path = Some(typed(path, "kube_config_file_path", v)?);
    }
    config.collector_selector = take("collector_selector").cloned();
    if let Some(v) = take("collector_namespace") {
        config.collector_namespace = typed(path, "collector_namespace", v)?;
    }
    if let Some(v) = take("config") {
        config.prometheus = parse_prometheus_config(v).map_err(|e| invalid(path, &e.key, &e.message))?;
        warnings.extend(config.prometheus.warnings.iter().map(|w| format!("{path}: {w}")));
    }
    if let Some(v) = take("allocation_strategy") {
        config.allocation_strategy = typed(path, "allocation_strategy", v)?;
    }
    if let Some(v) = take("allocation_fallback_strategy") {
        config.allocation_fallback_strategy = typed(path, "allocation_fallback_strategy", v)?;
    }
    if let Some(v) = take("allocation_strategy_config") {
        config.allocation_strategy_config =
            typed::<BTreeMap<String, Value>>(path, "allocation_strategy_config", v)?;
    }
    if let Some(v) = take("filter_strategy") {
        config.filter_strategy = typed(path, "filter_strategy", v)?;
    }
    if let Some(v) = take("prometheus_cr") {
        config.prometheus_cr = typed(path, "prometheus_cr", v)?;
    }
    if let Some(v) = take("https") {
        config.https = typed(path, "https", v)?;
    }
    if let Some(v) = take("collector_not_ready_grace_period") {
        let text: String = typed(path, "collector_not_ready_grace_period", v)?;
        config.collector_not_ready_grace_period =
            parse_duration(&text).map_err(|e| invalid(path, "collector_not_ready_grace_period", &e))?;
    }
    if let Some(v) = take("allow_insecure_auth_secrets") {
        config.allow_insecure_auth_secrets = typed(path, "allow_insecure_auth_secrets", v)?;
    }
    if let Some(v) = take("collectors") {
        config.collectors = Some(typed::<Vec<CollectorEntry>>(path, "collectors", v)?);
    }
    if let Some(v) = take("strategy_dir") {
        config.strategy_dir = Some(typed(path, "strategy_dir", v)?);
    }
    if let Some(v) = take("strategy_cache_dir") {
        config.strategy_cache_dir = Some(typed(path, "strategy_cache_dir", v)?);
    }
    Ok((config, warnings))
}

/// The reference's start-up checks, plus ours, on the merged config.
fn validate(config: &AllocatorConfig, path: &str) -> Result<(), ConfigError> {
    if config.prometheus.scrape_configs.is_empty() && !config.prometheus_cr.enabled {
        return Err(invalid(
            path,
            "config.scrape_configs",
            "no scrape configs and prometheus_cr is disabled: nothing to allocate",
        ));
    }
    match &config.collectors {
        None if config.collector_namespace.is_empty() => {
            return Err(invalid(
                path,
                "collector_namespace",
                "is required (or set OTELCOL_NAMESPACE) unless `collectors` lists the collectors",
            ));
        }
        Some(collectors) => {
            let mut seen = HashSet::new();
            for (i, c) in collectors.iter().enumerate() {
                if c.id.is_empty() {
                    return Err(invalid(path, &format!("collectors[{i}].id"), "must not be empty"));
                }
                if !seen.insert(&c.id) {
                    return Err(invalid(
                        path,
                        &format!("collectors[{i}].id"),
                        &format!("{:?} is listed twice", c.id),
                    ));
                }
            }
        }
        None => {}
    }
    if !config.prometheus_cr.allow_namespaces.is_empty() && !config.prometheus_cr.deny_namespaces.is_empty() {
        return Err(invalid(
            path,
            "prometheus_cr",
            "allow_namespaces and deny_namespaces are mutually exclusive",
        ));
    }
    if config.https.enabled
        && (config.https.tls_cert_file_path.is_empty() || config.https.tls_key_file_path.is_empty())
    {
        return Err(invalid(path, "https", "enabled without tls_cert_file_path and tls_key_file_path"));
    }
    socket_addr(&config.listen_addr).map_err(|e| invalid(path, "listen_addr", &e))?;
    if let Some(dir) = &config.strategy_dir
        && !dir.is_dir()
    {
        return Err(invalid(path, "strategy_dir", &format!("{} is not a directory", dir.display())));
    }
    // Cache files are deserialized as trusted native code, so strategy files
    // (which anyone who can edit the ConfigMap controls) must never be among them.
    if let Some(dir) = &config.strategy_dir {
        let cache = config.strategy_cache_dir();
        if cache.starts_with(dir) || dir.starts_with(&cache) {
            return Err(invalid(
                path,
                "strategy_cache_dir",
                &format!(
                    "{} overlaps strategy_dir {}: the compiled-code cache must be a separate directory only the allocator writes",
                    cache.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// `":8080"` (all interfaces, as Go writes it) or `host:port`.
pub fn socket_addr(addr: &str) -> Result<std::net::SocketAddr, String> {
    let full = if addr.starts_with(':') { format!("0.0.0.0{addr}") } else { addr.to_string() };
    use std::net::ToSocketAddrs;
    full.to_socket_addrs()
        .map_err(|e| format!("{addr:?} is not host:port or :port ({e})"))?
        .next()
        .ok_or_else(|| format!("{addr:?} resolves to no address"))
}

fn typed<T: DeserializeOwned>(path: &str, key: &str, value: &Value) -> Result<T, ConfigError> {
    serde_json::from_value(value.clone()).map_err(|e| invalid(path, key, &e.to_string()))
}

fn invalid(path: &str, key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid { path: path.into(), key: key.into(), message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
collectors: [{id: c1}]
config:
  scrape_configs:
    - job_name: a
      static_configs: [{targets: ['x:1']}]
";

    fn load_text(text: &str, env: &Environment, cli: &CliOverrides) -> Result<AllocatorConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ta.yaml");
        std::fs::write(&path, text).unwrap();
        load_config(&path, env, cli).map(|(c, _)| c)
    }

    #[test]
    fn defaults_match_the_reference() {
        let c = load_text(MINIMAL, &Environment::default(), &CliOverrides::default()).unwrap();
        assert_eq!(c.listen_addr, ":8080");
        assert_eq!(c.allocation_strategy, "consistent-hashing");
        assert_eq!(c.filter_strategy, "relabel-config");
        assert_eq!(c.collector_not_ready_grace_period, std::time::Duration::from_secs(30));
        assert_eq!(c.https.listen_addr, ":8443");
        assert_eq!(c.prometheus_cr.scrape_interval, std::time::Duration::from_secs(30));
        assert!(!c.allow_insecure_auth_secrets);
    }

    #[test]
    fn precedence_is_defaults_file_environment_flags() {
        let text = format!("{MINIMAL}listen_addr: ':9000'\ncollector_namespace: from-file\n");
        let env = Environment {
            otelcol_namespace: Some("from-env".into()),
            allow_insecure_auth_secrets: Some("yes".into()),
        };
        let cli = CliOverrides { listen_addr: Some(":9100".into()), ..CliOverrides::default() };
        let c = load_text(&text, &env, &cli).unwrap();
        assert_eq!(c.collector_namespace, "from-env");
        assert_eq!(c.listen_addr, ":9100");
        assert!(!c.allow_insecure_auth_secrets, "only the exact value `true` counts");
        let env = Environment { allow_insecure_auth_secrets: Some("true".into()), ..Environment::default() };
        assert!(load_text(MINIMAL, &env, &CliOverrides::default()).unwrap().allow_insecure_auth_secrets);
    }

    #[test]
    fn explicit_null_keeps_the_default_and_unknown_keys_warn() {
        let text = format!("{MINIMAL}allocation_strategy: null\nsurprise: 1\n");
        let (c, warnings) = parse_config(&text, "ta.yaml").unwrap();
        assert_eq!(c.allocation_strategy, "consistent-hashing");
        assert_eq!(warnings, vec!["ta.yaml: unknown key `surprise` is ignored"]);
    }

    #[test]
    fn scrape_config_keys_prometheus_does_not_know_warn_with_their_path() {
        let text = "collectors: [{id: c1}]\nconfig:\n  scrape_configs:\n    - {job_name: a, colour: red}\n";
        let (c, warnings) = parse_config(text, "ta.yaml").unwrap();
        assert!(!c.prometheus.scrape_configs[0].printed.contains_key("colour"));
        assert_eq!(
            warnings,
            vec![
                "ta.yaml: unknown key `config.scrape_configs[0] (job \"a\").colour` is ignored, as Prometheus ignores it"
            ]
        );
    }

    #[test]
    fn invalid_configs_name_the_key() {
        let env = Environment::default();
        let cli = CliOverrides::default();
        for (text, key) in [
            ("collectors: [{id: c1}]\n", "config.scrape_configs"),
            ("config: {scrape_configs: [{job_name: a}]}\n", "collector_namespace"),
            (
                &format!("{MINIMAL}prometheus_cr: {{allow_namespaces: [a], deny_namespaces: [b]}}\n"),
                "prometheus_cr",
            ),
            (
                &format!("{MINIMAL}collector_not_ready_grace_period: soon\n"),
                "collector_not_ready_grace_period",
            ),
            (
                "collectors: [{id: c1}, {id: c1}]\nconfig: {scrape_configs: [{job_name: a}]}\n",
                "collectors[1].id",
            ),
            (&format!("{MINIMAL}listen_addr: 'nope'\n"), "listen_addr"),
            (&format!("{MINIMAL}strategy_dir: /nonexistent/dir\n"), "strategy_dir"),
            (&format!("{MINIMAL}strategy_dir: /tmp\nstrategy_cache_dir: /tmp/cache\n"), "strategy_cache_dir"),
            (&format!("{MINIMAL}https: {{enabled: true}}\n"), "https"),
            ("config: [1]\n", "config"),
            ("listen_addr: [\n", "not valid YAML"),
        ] {
            let err = load_text(text, &env, &cli).unwrap_err().to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn strategy_options_and_fallback_follow_the_reference_keys() {
        let text = format!(
            "{MINIMAL}allocation_strategy: per-node\nallocation_strategy_config:\n  per_node:\n    fallback_strategy: {{name: least-weighted}}\n"
        );
        let (c, _) = parse_config(&text, "ta.yaml").unwrap();
        assert_eq!(c.strategy_options("per-node"), r#"{"fallback_strategy":{"name":"least-weighted"}}"#);
        assert_eq!(c.fallback_strategy().as_deref(), Some("least-weighted"));
        let text = format!(
            "{MINIMAL}allocation_strategy: per-node\nallocation_fallback_strategy: consistent-hashing\n"
        );
        let (c, _) = parse_config(&text, "ta.yaml").unwrap();
        assert_eq!(c.fallback_strategy().as_deref(), Some("consistent-hashing"));
        assert_eq!(c.strategy_options("consistent-hashing"), "");
    }
}
