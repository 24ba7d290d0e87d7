//! The `config:` block: a Prometheus configuration (`global` and
//! `scrape_configs`) with Prometheus's defaults and global inheritance.
//!
//! Each job keeps the full map it was written with, so fields this allocator
//! does not interpret still reach the collectors through `/scrape_configs`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Map, Value};

use super::duration::{format_duration, parse_duration};
use crate::relabel::{RelabelRule, parse_rules};

pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);
pub const DEFAULT_HTTP_SD_REFRESH: Duration = Duration::from_secs(60);

/// The parts of a Prometheus config that matter to an allocator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrometheusConfig {
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// One job.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub http_sd_configs: Vec<HttpSdConfig>,
    /// `relabel_configs`, parsed and validated.
    pub relabel_rules: Vec<RelabelRule>,
    /// The job as Prometheus prints it (defaults filled in), secrets included.
    pub printed: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSdConfig {
    pub url: String,
    pub refresh_interval: Duration,
}

impl ScrapeConfig {
    /// The labels Prometheus sets on every target of this job before
    /// relabeling, where the target does not already have them: `job`,
    /// `__scheme__`, `__metrics_path__`, `__scrape_interval__`,
    /// `__scrape_timeout__` and `__param_<name>` (first value).
    pub fn seed_labels(&self) -> Vec<(String, String)> {
        let mut seeds = vec![
            ("job".to_string(), self.job_name.clone()),
            ("__scheme__".to_string(), self.scheme.clone()),
            ("__metrics_path__".to_string(), self.metrics_path.clone()),
            ("__scrape_interval__".to_string(), format_duration(self.scrape_interval)),
            ("__scrape_timeout__".to_string(), format_duration(self.scrape_timeout)),
        ];
        for (name, values) in &self.params {
            if let Some(first) = values.first() {
                seeds.push((format!("__param_{name}"), first.clone()));
            }
        }
        seeds
    }
}

/// Parses the `config:` value (already converted to JSON). Errors are
/// `(key path, message)`, the path relative to `config`.
pub fn parse_prometheus_config(value: &Value) -> Result<PrometheusConfig, (String, String)> {
    let Some(root) = value.as_object() else {
        return Err(("config".into(), "must be a mapping with `global` and `scrape_configs`".into()));
    };
    let global = root.get("global").and_then(Value::as_object);
    let global_interval =
        duration_at(global, "scrape_interval", "config.global")?.unwrap_or(DEFAULT_SCRAPE_INTERVAL);
    let global_timeout =
        duration_at(global, "scrape_timeout", "config.global")?.unwrap_or(DEFAULT_SCRAPE_TIMEOUT);
    if global_timeout > global_interval {
        return Err((
            "config.global.scrape_timeout".into(),
            "is greater than the global scrape_interval".into(),
        ));
    }
    let jobs = match root.get("scrape_configs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(jobs)) => jobs.clone(),
        Some(_) => return Err(("config.scrape_configs".into(), "must be a list".into())),
    };
    let mut seen = HashSet::new();
    let mut scrape_configs = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let path = format!("config.scrape_configs[{i}]");
        let job = parse_job(job, &path, global_interval, global_timeout)?;
        if !seen.insert(job.job_name.clone()) {
            return Err((
                format!("{path}.job_name"),
                format!("{:?} is used by more than one job", job.job_name),
            ));
        }
        scrape_configs.push(job);
    }
    Ok(PrometheusConfig { scrape_configs })
}

fn parse_job(
    value: &Value,
    path: &str,
    global_interval: Duration,
    global_timeout: Duration,
) -> Result<ScrapeConfig, (String, String)> {
    let Some(map) = value.as_object() else {
        return Err((path.into(), "must be a mapping".into()));
    };
    let job_name = match map.get("job_name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return Err((format!("{path}.job_name"), "is required".into())),
    };
    let path = format!("{path} (job {job_name:?})");
    let scrape_interval = duration_at(Some(map), "scrape_interval", &path)?.unwrap_or(global_interval);
    let scrape_timeout = duration_at(Some(map), "scrape_timeout", &path)?
        .unwrap_or_else(|| global_timeout.min(scrape_interval));
    if scrape_timeout > scrape_interval {
        return Err((format!("{path}.scrape_timeout"), "is greater than scrape_interval".into()));
    }
    let metrics_path = string_at(map, "metrics_path", &path)?.unwrap_or_else(|| "/metrics".into());
    let scheme = string_at(map, "scheme", &path)?.unwrap_or_else(|| "http".into());
    if scheme != "http" && scheme != "https" {
        return Err((format!("{path}.scheme"), format!("must be http or https, got {scheme:?}")));
    }
    let params: BTreeMap<String, Vec<String>> = match map.get("params") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| (format!("{path}.params"), format!("must map names to lists of strings: {e}")))?,
    };
    let static_configs = list_at(map, "static_configs", &path, |v, p| {
        let targets: Vec<String> = match v.get("targets") {
            None | Some(Value::Null) => Vec::new(),
            Some(t) => serde_json::from_value(t.clone())
                .map_err(|e| (format!("{p}.targets"), format!("must be a list of host:port strings: {e}")))?,
        };
        let labels: BTreeMap<String, String> = match v.get("labels") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(l) => serde_json::from_value(l.clone())
                .map_err(|e| (format!("{p}.labels"), format!("must map label names to strings: {e}")))?,
        };
        Ok(StaticConfig { targets, labels })
    })?;
    let file_sd_configs = list_at(map, "file_sd_configs", &path, |v, p| {
        let files: Vec<String> = serde_json::from_value(v.get("files").cloned().unwrap_or(Value::Null))
            .map_err(|_| (format!("{p}.files"), "must be a list of file paths or globs".into()))?;
        if files.is_empty() {
            return Err((format!("{p}.files"), "must name at least one file".into()));
        }
        for file in &files {
            let ext = file.rsplit('.').next().unwrap_or_default();
            if !["json", "yml", "yaml"].contains(&ext) {
                return Err((format!("{p}.files"), format!("{file:?} must end in .json, .yml or .yaml")));
            }
        }
        let refresh_interval =
            duration_at(v.as_object(), "refresh_interval", p)?.unwrap_or(DEFAULT_FILE_SD_REFRESH);
        Ok(FileSdConfig { files, refresh_interval })
    })?;
    let http_sd_configs = list_at(map, "http_sd_configs", &path, |v, p| {
        let url = v.get("url").and_then(Value::as_str).unwrap_or_default().to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err((format!("{p}.url"), format!("must be an http:// or https:// URL, got {url:?}")));
        }
        let refresh_interval =
            duration_at(v.as_object(), "refresh_interval", p)?.unwrap_or(DEFAULT_HTTP_SD_REFRESH);
        Ok(HttpSdConfig { url, refresh_interval })
    })?;

    let relabel_rules = parse_rules(map.get("relabel_configs").unwrap_or(&Value::Null))
        .map_err(|e| (format!("{path}.relabel_configs"), e))?;
    // Not applied here (collectors apply them to samples), but refused when
    // invalid, as Prometheus would refuse them.
    parse_rules(map.get("metric_relabel_configs").unwrap_or(&Value::Null))
        .map_err(|e| (format!("{path}.metric_relabel_configs"), e))?;
    let mut printed = map.clone();
    let mut default = |key: &str, value: Value| {
        printed.entry(key.to_string()).or_insert(value);
    };
    default("honor_timestamps", Value::Bool(true));
    default("metrics_path", Value::String(metrics_path.clone()));
    default("scheme", Value::String(scheme.clone()));
    default("follow_redirects", Value::Bool(true));
    default("enable_http2", Value::Bool(true));
    printed.insert("scrape_interval".into(), Value::String(format_duration(scrape_interval)));
    printed.insert("scrape_timeout".into(), Value::String(format_duration(scrape_timeout)));
    Ok(ScrapeConfig {
        job_name,
        scrape_interval,
        scrape_timeout,
        metrics_path,
        scheme,
        params,
        static_configs,
        file_sd_configs,
        http_sd_configs,
        relabel_rules,
        printed,
    })
}

fn duration_at(
    map: Option<&Map<String, Value>>,
    key: &str,
    path: &str,
) -> Result<Option<Duration>, (String, String)> {
    match map.and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_duration(text).map(Some).map_err(|e| (format!("{path}.{key}"), e)),
        Some(other) => Err((format!("{path}.{key}"), format!("must be a duration such as 30s, got {other}"))),
    }
}

fn string_at(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, (String, String)> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err((format!("{path}.{key}"), format!("must be a string, got {other}"))),
    }
}

fn list_at<T>(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    parse: impl Fn(&Value, &str) -> Result<T, (String, String)>,
) -> Result<Vec<T>, (String, String)> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, item)| parse(item, &format!("{path}.{key}[{i}]"))).collect()
        }
        Some(_) => Err((format!("{path}.{key}"), "must be a list".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_inherit_global_settings_and_prometheus_defaults() {
        let config = parse_prometheus_config(&json!({
            "global": {"scrape_interval": "30s", "scrape_timeout": "20s"},
            "scrape_configs": [
                {"job_name": "a", "static_configs": [{"targets": ["x:1"], "labels": {"env": "prod"}}]},
                {"job_name": "b", "scrape_interval": "15s", "metrics_path": "/m"}
            ]
        }))
        .unwrap();
        let [a, b] = &config.scrape_configs[..] else { panic!() };
        assert_eq!((a.scrape_interval, a.scrape_timeout), (Duration::from_secs(30), Duration::from_secs(20)));
        // The global timeout is capped at the job's shorter interval.
        assert_eq!((b.scrape_interval, b.scrape_timeout), (Duration::from_secs(15), Duration::from_secs(15)));
        assert_eq!(a.static_configs[0].labels["env"], "prod");
        assert_eq!(a.printed["scrape_interval"], "30s");
        assert_eq!(b.printed["metrics_path"], "/m");
        assert_eq!(a.printed["scheme"], "http");
        assert_eq!(a.printed["honor_timestamps"], true);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (json!({"scrape_configs": [{"static_configs": []}]}), "config.scrape_configs[0].job_name"),
            (
                json!({"scrape_configs": [{"job_name": "a"}, {"job_name": "a"}]}),
                "config.scrape_configs[1].job_name",
            ),
            (json!({"scrape_configs": [{"job_name": "a", "scrape_interval": "soon"}]}), "scrape_interval"),
            (
                json!({"scrape_configs": [{"job_name": "a", "scrape_interval": "5s", "scrape_timeout": "10s"}]}),
                "scrape_timeout",
            ),
            (
                json!({"scrape_configs": [{"job_name": "a", "file_sd_configs": [{"files": ["x.txt"]}]}]}),
                "file_sd_configs[0].files",
            ),
            (
                json!({"scrape_configs": [{"job_name": "a", "http_sd_configs": [{"url": "ftp://x"}]}]}),
                "http_sd_configs[0].url",
            ),
            (
                json!({"scrape_configs": [{"job_name": "a", "static_configs": [{"targets": "x:1"}]}]}),
                "static_configs[0].targets",
            ),
        ];
        for (config, key) in cases {
            let (path, _) = parse_prometheus_config(&config).unwrap_err();
            assert!(path.contains(key), "{path} should name {key}");
        }
    }
}
