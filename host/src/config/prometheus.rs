//! The `config:` block: a Prometheus configuration (`global` and
//! `scrape_configs`) read with Prometheus's defaults, global inheritance and
//! checks.
//!
//! Each job is also printed as Prometheus 3 (the version the reference links)
//! prints it, every default filled in; `/scrape_configs` serves that form, so
//! collectors get each job exactly as the reference would send it. Service
//! discovery sections other than `static_configs` are served as written:
//! collectors replace them with HTTP SD anyway.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Map, Value};

use super::bytes::format_bytes;
use super::duration::format_duration;
use super::fields::{Fields, KeyError, scalar_text};
use super::http_client::{print_http_client, string_lists};
use crate::relabel::{NameValidation, RelabelRule, parse_rules};

pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);
pub const DEFAULT_HTTP_SD_REFRESH: Duration = Duration::from_secs(60);

/// What Prometheus proposes to targets when nothing says otherwise.
const DEFAULT_SCRAPE_PROTOCOLS: [&str; 4] =
    ["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0", "PrometheusText0.0.4"];
/// The default when the job scrapes native histograms.
const PROTO_FIRST_SCRAPE_PROTOCOLS: [&str; 5] = [
    "PrometheusProto",
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText1.0.0",
    "PrometheusText0.0.4",
];
const ESCAPING_SCHEMES: [&str; 4] = ["allow-utf-8", "underscores", "dots", "values"];
/// Limits a job takes from `global` when it leaves them at 0.
const INHERITED_LIMITS: [&str; 6] = [
    "sample_limit",
    "target_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "keep_dropped_targets",
];
/// The discovery mechanisms Prometheus registers (`<name>_sd_configs`).
const SD_MECHANISMS: &[&str] = &[
    "aws",
    "azure",
    "consul",
    "digitalocean",
    "dns",
    "docker",
    "dockerswarm",
    "ec2",
    "ecs",
    "elasticache",
    "eureka",
    "file",
    "gce",
    "hetzner",
    "http",
    "ionos",
    "kubernetes",
    "kuma",
    "lightsail",
    "linode",
    "marathon",
    "msk",
    "nerve",
    "nomad",
    "oci",
    "openstack",
    "outscale",
    "ovhcloud",
    "puppetdb",
    "rds",
    "scaleway",
    "serverset",
    "stackit",
    "triton",
    "uyuni",
    "vultr",
];
/// `global` keys that do not concern scraping: accepted, not used.
const OTHER_GLOBAL_KEYS: [&str; 4] =
    ["evaluation_interval", "rule_query_offset", "query_log_file", "external_labels"];

/// The parts of a Prometheus config that matter to an allocator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrometheusConfig {
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Keys that were dropped (Prometheus does not know them) or read under
    /// another name; the caller logs them.
    pub warnings: Vec<String>,
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

impl NameValidation {
    /// `None` for "" (unset), as Prometheus reads it.
    fn parse(fields: &mut Fields, key: &str) -> Result<Option<NameValidation>, KeyError> {
        match fields.string(key)?.as_deref() {
            None | Some("") => Ok(None),
            Some("utf8") => Ok(Some(NameValidation::Utf8)),
            Some("legacy") => Ok(Some(NameValidation::Legacy)),
            Some(other) => Err(fields.error(key, format!("must be utf8 or legacy, got {other:?}"))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            NameValidation::Utf8 => "utf8",
            NameValidation::Legacy => "legacy",
        }
    }

    /// The escaping a job gets when it names only its validation scheme.
    fn default_escaping(self) -> &'static str {
        match self {
            NameValidation::Utf8 => "allow-utf-8",
            NameValidation::Legacy => "underscores",
        }
    }
}

/// The `global` settings jobs inherit.
struct Global {
    scrape_interval: Duration,
    scrape_timeout: Duration,
    scrape_protocols: Option<Vec<String>>,
    body_size_limit: u64,
    limits: [u64; INHERITED_LIMITS.len()],
    name_validation: NameValidation,
    name_escaping: String,
    scrape_native_histograms: bool,
    convert_classic_histograms_to_nhcb: bool,
    always_scrape_classic_histograms: bool,
    extra_scrape_metrics: bool,
    scrape_failure_log_file: String,
}

/// Parses the `config:` value (already converted to JSON). Error keys are
/// paths relative to `config`.
pub fn parse_prometheus_config(value: &Value) -> Result<PrometheusConfig, KeyError> {
    let Some(root) = value.as_object() else {
        return Err(KeyError::new("config", "must be a mapping with `global` and `scrape_configs`"));
    };
    let mut ignored = Vec::new();
    let mut warnings = Vec::new();
    let global = parse_global(root.get("global"), &mut ignored)?;
    let jobs = match root.get("scrape_configs") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(jobs)) => &jobs[..],
        Some(_) => return Err(KeyError::new("config.scrape_configs", "must be a list")),
    };
    let mut seen = HashSet::new();
    let mut scrape_configs = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let path = format!("config.scrape_configs[{i}]");
        let job = parse_job(job, &path, &global, &mut ignored, &mut warnings)?;
        if !seen.insert(job.job_name.clone()) {
            return Err(KeyError::new(
                format!("{path}.job_name"),
                format!("{:?} is used by more than one job", job.job_name),
            ));
        }
        scrape_configs.push(job);
    }
    warnings.extend(
        ignored.into_iter().map(|key| format!("unknown key `{key}` is ignored, as Prometheus ignores it")),
    );
    Ok(PrometheusConfig { scrape_configs, warnings })
}

fn parse_global(value: Option<&Value>, ignored: &mut Vec<String>) -> Result<Global, KeyError> {
    let empty = Value::Object(Map::new());
    let value = match value {
        None | Some(Value::Null) => &empty,
        Some(v) => v,
    };
    let mut f = Fields::new(value, "config.global")?;
    let scrape_interval = f.duration("scrape_interval")?.unwrap_or(DEFAULT_SCRAPE_INTERVAL);
    let scrape_timeout = match f.duration("scrape_timeout")? {
        Some(timeout) if timeout > scrape_interval => {
            return Err(f.error("scrape_timeout", "is greater than the global scrape_interval"));
        }
        Some(timeout) => timeout,
        None => DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval),
    };
    let scrape_protocols = scrape_protocols(&mut f)?;
    let body_size_limit = f.bytes("body_size_limit")?.unwrap_or(0);
    let mut limits = [0; INHERITED_LIMITS.len()];
    for (limit, key) in limits.iter_mut().zip(INHERITED_LIMITS) {
        *limit = f.uint(key)?.unwrap_or(0);
    }
    let name_validation =
        NameValidation::parse(&mut f, "metric_name_validation_scheme")?.unwrap_or(NameValidation::Utf8);
    let name_escaping = match f.string("metric_name_escaping_scheme")?.as_deref() {
        None | Some("") => name_validation.default_escaping().to_string(),
        Some(scheme) => escaping_scheme(&f, "metric_name_escaping_scheme", scheme)?,
    };
    let mut flag = |key: &str| f.boolean(key).map(Option::unwrap_or_default);
    let scrape_native_histograms = flag("scrape_native_histograms")?;
    let convert_classic_histograms_to_nhcb = flag("convert_classic_histograms_to_nhcb")?;
    let always_scrape_classic_histograms = flag("always_scrape_classic_histograms")?;
    let extra_scrape_metrics = flag("extra_scrape_metrics")?;
    let scrape_failure_log_file = f.string("scrape_failure_log_file")?.unwrap_or_default();
    for key in OTHER_GLOBAL_KEYS {
        f.raw(key);
    }
    f.finish(ignored);
    Ok(Global {
        scrape_interval,
        scrape_timeout,
        scrape_protocols,
        body_size_limit,
        limits,
        name_validation,
        name_escaping,
        scrape_native_histograms,
        convert_classic_histograms_to_nhcb,
        always_scrape_classic_histograms,
        extra_scrape_metrics,
        scrape_failure_log_file,
    })
}

/// `scrape_protocols`, checked; `None` when unset.
fn scrape_protocols(f: &mut Fields) -> Result<Option<Vec<String>>, KeyError> {
    let key = "scrape_protocols";
    let Some(protocols) = f.strings(key)? else { return Ok(None) };
    if protocols.is_empty() {
        return Err(f.error(key, "must name at least one protocol"));
    }
    let mut seen = HashSet::new();
    for protocol in &protocols {
        check_protocol(protocol).map_err(|e| f.error(key, e))?;
        if !seen.insert(protocol.to_ascii_lowercase()) {
            return Err(f.error(key, format!("{protocol} is listed twice")));
        }
    }
    Ok(Some(protocols))
}

fn check_protocol(protocol: &str) -> Result<(), String> {
    if PROTO_FIRST_SCRAPE_PROTOCOLS.contains(&protocol) {
        return Ok(());
    }
    let mut known = PROTO_FIRST_SCRAPE_PROTOCOLS;
    known.sort();
    Err(format!("{protocol:?} is not a scrape protocol (known: {})", known.join(", ")))
}

fn escaping_scheme(f: &Fields, key: &str, scheme: &str) -> Result<String, KeyError> {
    if ESCAPING_SCHEMES.contains(&scheme) {
        Ok(scheme.to_string())
    } else {
        Err(f.error(key, format!("must be one of {}, got {scheme:?}", ESCAPING_SCHEMES.join(", "))))
    }
}

fn parse_job(
    value: &Value,
    path: &str,
    global: &Global,
    ignored: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<ScrapeConfig, KeyError> {
    let Some(map) = value.as_object() else {
        return Err(KeyError::new(path, "must be a mapping"));
    };
    let job_name = match map.get("job_name").and_then(scalar_text) {
        Some(name) if !name.is_empty() => name,
        _ => return Err(KeyError::new(format!("{path}.job_name"), "is required")),
    };
    let mut f = Fields::new(value, &format!("{path} (job {job_name:?})"))?;
    f.raw("job_name");
    let mut out = Map::new();
    out.insert("job_name".into(), Value::String(job_name.clone()));
    if f.boolean("honor_labels")?.unwrap_or(false) {
        out.insert("honor_labels".into(), Value::Bool(true));
    }
    let honor_timestamps = f.boolean("honor_timestamps")?.unwrap_or(true);
    out.insert("honor_timestamps".into(), Value::Bool(honor_timestamps));
    let track_staleness = f.boolean("track_timestamps_staleness")?.unwrap_or(false);
    out.insert("track_timestamps_staleness".into(), Value::Bool(track_staleness));
    let params = f.string_lists("params")?.unwrap_or_default();
    if !params.is_empty() {
        out.insert("params".into(), string_lists(params.clone()));
    }

    let scrape_interval = f.duration("scrape_interval")?.unwrap_or(global.scrape_interval);
    let scrape_timeout = match f.duration("scrape_timeout")? {
        Some(timeout) if timeout > scrape_interval => {
            return Err(f.error("scrape_timeout", "is greater than scrape_interval"));
        }
        Some(timeout) => timeout,
        None => global.scrape_timeout.min(scrape_interval),
    };
    out.insert("scrape_interval".into(), Value::String(format_duration(scrape_interval)));
    out.insert("scrape_timeout".into(), Value::String(format_duration(scrape_timeout)));
    let names = print_formats(&mut f, global, &mut out, warnings)?;

    let metrics_path = f.string("metrics_path")?.unwrap_or_else(|| "/metrics".into());
    if !metrics_path.is_empty() {
        out.insert("metrics_path".into(), Value::String(metrics_path.clone()));
    }
    let scheme = f.string("scheme")?.unwrap_or_else(|| "http".into());
    if scheme != "http" && scheme != "https" {
        return Err(f.error("scheme", format!("must be http or https, got {scheme:?}")));
    }
    out.insert("scheme".into(), Value::String(scheme.clone()));
    let compression = f.boolean("enable_compression")?.unwrap_or(true);
    out.insert("enable_compression".into(), Value::Bool(compression));
    print_limits(&mut f, global, &mut out)?;
    print_http_client(&mut f, &mut out, ignored)?;
    let discovery = parse_discovery(&mut f, &mut out, ignored)?;

    let relabel_rules = rules_at(&mut f, "relabel_configs", names, &mut out)?;
    // Not applied here (collectors apply them to samples), but refused when
    // invalid, as Prometheus would refuse them.
    rules_at(&mut f, "metric_relabel_configs", names, &mut out)?;
    if relabel_rules.is_empty() {
        // Prometheus's guard against URLs written as targets.
        for target in discovery.static_configs.iter().flat_map(|g| &g.targets) {
            if target.contains('/') {
                return Err(
                    f.error("static_configs", format!("{target:?} looks like a URL; targets are host:port"))
                );
            }
        }
    }
    f.finish(ignored);
    Ok(ScrapeConfig {
        job_name,
        scrape_interval,
        scrape_timeout,
        metrics_path,
        scheme,
        params,
        static_configs: discovery.static_configs,
        file_sd_configs: discovery.file_sd_configs,
        http_sd_configs: discovery.http_sd_configs,
        relabel_rules,
        printed: out,
    })
}

/// What the job asks targets for and how it stores what they send: scrape
/// protocols, histogram handling, extra metrics, metric name schemes.
fn print_formats(
    f: &mut Fields,
    global: &Global,
    out: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<NameValidation, KeyError> {
    let native_histograms =
        f.optional_boolean("scrape_native_histograms")?.unwrap_or(global.scrape_native_histograms);
    let protocols = match scrape_protocols(f)? {
        Some(protocols) => protocols,
        None => match &global.scrape_protocols {
            Some(protocols) => protocols.clone(),
            None if native_histograms => PROTO_FIRST_SCRAPE_PROTOCOLS.map(String::from).to_vec(),
            None => DEFAULT_SCRAPE_PROTOCOLS.map(String::from).to_vec(),
        },
    };
    out.insert("scrape_protocols".into(), Value::from(protocols));
    let fallback = f.string("fallback_scrape_protocol")?.unwrap_or_default();
    if !fallback.is_empty() {
        check_protocol(&fallback).map_err(|e| f.error("fallback_scrape_protocol", e))?;
        out.insert("fallback_scrape_protocol".into(), Value::String(fallback));
    }
    out.insert("scrape_native_histograms".into(), Value::Bool(native_histograms));

    let mut always_classic = f.optional_boolean("always_scrape_classic_histograms")?;
    // Prometheus 2's name: Prometheus 3 would drop it, but its intent is clear.
    if let Some(old) = f.optional_boolean("scrape_classic_histograms")? {
        let old_key = f.key_path("scrape_classic_histograms");
        if always_classic.is_none() {
            always_classic = Some(old);
            warnings.push(format!(
                "`{old_key}` is read as always_scrape_classic_histograms, its Prometheus 3 name"
            ));
        } else {
            warnings.push(format!("`{old_key}` is ignored: always_scrape_classic_histograms is set"));
        }
    }
    for (key, own, inherited) in [
        ("always_scrape_classic_histograms", always_classic, global.always_scrape_classic_histograms),
        (
            "convert_classic_histograms_to_nhcb",
            f.optional_boolean("convert_classic_histograms_to_nhcb")?,
            global.convert_classic_histograms_to_nhcb,
        ),
        ("extra_scrape_metrics", f.optional_boolean("extra_scrape_metrics")?, global.extra_scrape_metrics),
    ] {
        out.insert(key.into(), Value::Bool(own.unwrap_or(inherited)));
    }
    let failure_log = f.string("scrape_failure_log_file")?.unwrap_or_default();
    let failure_log =
        if failure_log.is_empty() { global.scrape_failure_log_file.clone() } else { failure_log };
    if !failure_log.is_empty() {
        out.insert("scrape_failure_log_file".into(), Value::String(failure_log));
    }

    let (validation, escaping) = name_schemes(f, global)?;
    out.insert("metric_name_validation_scheme".into(), Value::String(validation.name().into()));
    out.insert("metric_name_escaping_scheme".into(), Value::String(escaping));
    Ok(validation)
}

/// The limits; 0 means unset, and the ones with a global counterpart take it.
fn print_limits(f: &mut Fields, global: &Global, out: &mut Map<String, Value>) -> Result<(), KeyError> {
    let body_size_limit = f.bytes("body_size_limit")?.filter(|l| *l != 0).unwrap_or(global.body_size_limit);
    if body_size_limit != 0 {
        out.insert("body_size_limit".into(), Value::String(format_bytes(body_size_limit)));
    }
    for (key, global_limit) in INHERITED_LIMITS.into_iter().zip(global.limits) {
        let limit = f.uint(key)?.filter(|l| *l != 0).unwrap_or(global_limit);
        if limit != 0 {
            out.insert(key.into(), Value::from(limit));
        }
    }
    if let Some(limit) = f.uint("native_histogram_bucket_limit")?.filter(|l| *l != 0) {
        out.insert("native_histogram_bucket_limit".into(), Value::from(limit));
    }
    if let Some(factor) = f.float("native_histogram_min_bucket_factor")?.filter(|x| *x != 0.0) {
        out.insert("native_histogram_min_bucket_factor".into(), number(factor));
    }
    Ok(())
}

/// The job's discovery sections: the ones this allocator runs, parsed.
struct Discovery {
    static_configs: Vec<StaticConfig>,
    file_sd_configs: Vec<FileSdConfig>,
    http_sd_configs: Vec<HttpSdConfig>,
}

/// Reads `static_configs` (printed as Prometheus prints target groups),
/// `file_sd_configs` and `http_sd_configs`, and serves every registered
/// `*_sd_configs` as written.
fn parse_discovery(
    f: &mut Fields,
    out: &mut Map<String, Value>,
    ignored: &mut Vec<String>,
) -> Result<Discovery, KeyError> {
    let static_configs = list_at(f, "static_configs", |v, p| {
        let mut group = Fields::new(v, p)?;
        let targets = group.strings("targets")?.unwrap_or_default();
        let labels = group.string_map("labels")?.unwrap_or_default();
        group.finish(ignored);
        Ok(StaticConfig { targets, labels })
    })?;
    let file_sd_configs = list_at(f, "file_sd_configs", |v, p| {
        let mut sd = Fields::new(v, p)?;
        let files = sd.strings("files")?.unwrap_or_default();
        if files.is_empty() {
            return Err(sd.error("files", "must name at least one file"));
        }
        for file in &files {
            let ext = file.rsplit('.').next().unwrap_or_default();
            if !["json", "yml", "yaml"].contains(&ext) {
                return Err(sd.error("files", format!("{file:?} must end in .json, .yml or .yaml")));
            }
        }
        let refresh_interval = sd.duration("refresh_interval")?.unwrap_or(DEFAULT_FILE_SD_REFRESH);
        Ok(FileSdConfig { files, refresh_interval })
    })?;
    let http_sd_configs = list_at(f, "http_sd_configs", |v, p| {
        let mut sd = Fields::new(v, p)?;
        let url = sd.string("url")?.unwrap_or_default();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(sd.error("url", format!("must be an http:// or https:// URL, got {url:?}")));
        }
        let refresh_interval = sd.duration("refresh_interval")?.unwrap_or(DEFAULT_HTTP_SD_REFRESH);
        Ok(HttpSdConfig { url, refresh_interval })
    })?;
    if !static_configs.is_empty() {
        let groups = static_configs.iter().map(|group| {
            let mut printed = Map::new();
            printed.insert("targets".into(), Value::from(group.targets.clone()));
            if !group.labels.is_empty() {
                let labels = group.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone())));
                printed.insert("labels".into(), Value::Object(labels.collect()));
            }
            Value::Object(printed)
        });
        out.insert("static_configs".into(), Value::Array(groups.collect()));
    }
    let sd_keys: Vec<&String> = f
        .keys()
        .filter(|k| k.strip_suffix("_sd_configs").is_some_and(|name| SD_MECHANISMS.contains(&name)))
        .collect();
    for key in sd_keys {
        match f.raw(key) {
            Some(Value::Array(items)) if items.iter().any(Value::is_null) => {
                return Err(f.error(key, "contains an empty entry"));
            }
            Some(items @ Value::Array(list)) if !list.is_empty() => {
                out.insert(key.clone(), items.clone());
            }
            None | Some(Value::Null | Value::Array(_)) => {}
            Some(_) => return Err(f.error(key, "must be a list")),
        }
    }
    Ok(Discovery { static_configs, file_sd_configs, http_sd_configs })
}

/// The job's metric name validation and escaping schemes, each defaulting as
/// Prometheus defaults them (the escaping follows the job's own validation
/// when it names one, else the global escaping).
fn name_schemes(f: &mut Fields, global: &Global) -> Result<(NameValidation, String), KeyError> {
    let own_validation = NameValidation::parse(f, "metric_name_validation_scheme")?;
    let validation = own_validation.unwrap_or(global.name_validation);
    let key = "metric_name_escaping_scheme";
    let escaping = match f.string(key)?.as_deref() {
        None | Some("") => match own_validation {
            None => global.name_escaping.clone(),
            Some(own) => own.default_escaping().to_string(),
        },
        Some(scheme) => escaping_scheme(f, key, scheme)?,
    };
    if escaping == "allow-utf-8" && validation != NameValidation::Utf8 {
        return Err(f.error(key, "allow-utf-8 needs metric_name_validation_scheme utf8"));
    }
    Ok((validation, escaping))
}

/// Parses a relabel rule list and prints it into `out`.
fn rules_at(
    f: &mut Fields,
    key: &str,
    names: NameValidation,
    out: &mut Map<String, Value>,
) -> Result<Vec<RelabelRule>, KeyError> {
    let raw = f.raw(key).unwrap_or(&Value::Null);
    let rules = parse_rules(raw, names).map_err(|e| f.error(key, e))?;
    if let (Value::Array(written), false) = (raw, rules.is_empty()) {
        let printed = written.iter().zip(&rules).map(|(written, rule)| print_rule(written, rule));
        out.insert(key.into(), Value::Array(printed.collect()));
    }
    Ok(rules)
}

/// A relabel rule as Prometheus prints it: separator, replacement and action
/// always, and the regex only when the rule wrote one (Prometheus tells its
/// default regex apart by identity, so even a written `(.*)` prints).
fn print_rule(written: &Value, rule: &RelabelRule) -> Value {
    let mut out = Map::new();
    if !rule.source_labels.is_empty() {
        out.insert("source_labels".into(), Value::from(rule.source_labels.clone()));
    }
    out.insert("separator".into(), Value::String(rule.separator.clone()));
    if written.get("regex").is_some_and(|r| !r.is_null()) {
        out.insert("regex".into(), Value::String(rule.regex.source().into()));
    }
    if rule.modulus != 0 {
        out.insert("modulus".into(), Value::from(rule.modulus));
    }
    if !rule.target_label.is_empty() {
        out.insert("target_label".into(), Value::String(rule.target_label.clone()));
    }
    out.insert("replacement".into(), Value::String(rule.replacement.clone()));
    out.insert("action".into(), Value::String(rule.action.name().into()));
    Value::Object(out)
}

/// A float as Prometheus's YAML-to-JSON path prints it: whole numbers as
/// integers.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 { Value::from(x as i64) } else { Value::from(x) }
}

fn list_at<T>(
    f: &mut Fields,
    key: &str,
    mut parse: impl FnMut(&Value, &str) -> Result<T, KeyError>,
) -> Result<Vec<T>, KeyError> {
    let path = f.key_path(key);
    match f.raw(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Null => Err(KeyError::new(format!("{path}[{i}]"), "is empty")),
                item => parse(item, &format!("{path}[{i}]")),
            })
            .collect(),
        Some(_) => Err(KeyError::new(path, "must be a list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(config: Value) -> PrometheusConfig {
        parse_prometheus_config(&config).unwrap()
    }

    fn printed(global: Value, job: Value) -> Value {
        let config = parse(json!({"global": global, "scrape_configs": [job]}));
        Value::Object(config.scrape_configs[0].printed.clone())
    }

    /// Printing is a fixed point: a printed job reads back to itself.
    fn assert_round_trips(job: &Value) {
        assert_eq!(&printed(json!(null), job.clone()), job, "printed job does not read back to itself");
    }

    #[test]
    fn jobs_inherit_global_settings_and_prometheus_defaults() {
        let config = parse(json!({
            "global": {"scrape_interval": "30s", "scrape_timeout": "20s"},
            "scrape_configs": [
                {"job_name": "a", "static_configs": [{"targets": ["x:1"], "labels": {"env": "prod"}}]},
                {"job_name": "b", "scrape_interval": "15s", "metrics_path": "/m"}
            ]
        }));
        let [a, b] = &config.scrape_configs[..] else { panic!() };
        assert_eq!((a.scrape_interval, a.scrape_timeout), (Duration::from_secs(30), Duration::from_secs(20)));
        // The global timeout is capped at the job's shorter interval.
        assert_eq!((b.scrape_interval, b.scrape_timeout), (Duration::from_secs(15), Duration::from_secs(15)));
        assert_eq!(a.static_configs[0].labels["env"], "prod");
        assert_eq!(a.printed["scrape_interval"], "30s");
        assert_eq!(b.printed["metrics_path"], "/m");
        // A short global interval caps the default global timeout too.
        let short =
            parse(json!({"global": {"scrape_interval": "5s"}, "scrape_configs": [{"job_name": "a"}]}));
        assert_eq!(short.scrape_configs[0].printed["scrape_timeout"], "5s");
    }

    // Every default of a minimal job: host/tests/all/scrape_configs.rs (`bare_job`).

    #[test]
    fn jobs_take_limits_protocols_and_schemes_from_global_unless_set() {
        let global = json!({
            "scrape_interval": "20s", "scrape_timeout": "15s",
            "scrape_protocols": ["PrometheusText0.0.4"],
            "body_size_limit": "10MB", "sample_limit": 1, "target_limit": 2, "label_limit": 3,
            "label_name_length_limit": 4, "label_value_length_limit": 5, "keep_dropped_targets": 6,
            "metric_name_validation_scheme": "legacy",
            "scrape_native_histograms": true, "always_scrape_classic_histograms": true,
            "convert_classic_histograms_to_nhcb": true, "extra_scrape_metrics": true,
            "scrape_failure_log_file": "/var/log/fail.log",
            "evaluation_interval": "1m", "external_labels": {"dc": "x"}
        });
        let inherited = printed(global.clone(), json!({"job_name": "a"}));
        for (key, value) in [
            ("scrape_interval", json!("20s")),
            ("scrape_timeout", json!("15s")),
            ("scrape_protocols", json!(["PrometheusText0.0.4"])),
            ("body_size_limit", json!("10MiB")),
            ("sample_limit", json!(1)),
            ("keep_dropped_targets", json!(6)),
            ("metric_name_validation_scheme", json!("legacy")),
            ("metric_name_escaping_scheme", json!("underscores")),
            ("scrape_native_histograms", json!(true)),
            ("always_scrape_classic_histograms", json!(true)),
            ("convert_classic_histograms_to_nhcb", json!(true)),
            ("extra_scrape_metrics", json!(true)),
            ("scrape_failure_log_file", json!("/var/log/fail.log")),
        ] {
            assert_eq!(inherited[key], value, "{key}");
        }
        assert_round_trips(&inherited);
        let own = printed(
            global,
            json!({"job_name": "a", "scrape_protocols": ["PrometheusProto"], "body_size_limit": "1536B",
                   "sample_limit": 10, "metric_name_validation_scheme": "utf8",
                   "always_scrape_classic_histograms": false, "scrape_native_histograms": false}),
        );
        assert_eq!(own["scrape_protocols"], json!(["PrometheusProto"]));
        assert_eq!(own["body_size_limit"], "1KiB512B");
        assert_eq!(own["sample_limit"], 10);
        assert_eq!(own["target_limit"], 2, "a limit left at 0 comes from global");
        // A job naming its own validation scheme gets that scheme's escaping.
        assert_eq!(own["metric_name_escaping_scheme"], "allow-utf-8");
        assert_eq!(own["always_scrape_classic_histograms"], false);
        assert_eq!(own["scrape_native_histograms"], false);
    }

    #[test]
    fn native_histograms_put_protobuf_first_unless_protocols_are_set() {
        let job = printed(json!({"scrape_native_histograms": true}), json!({"job_name": "a"}));
        assert_eq!(job["scrape_protocols"][0], "PrometheusProto");
        let job = printed(json!(null), json!({"job_name": "a", "scrape_native_histograms": true}));
        assert_eq!(job["scrape_protocols"].as_array().unwrap().len(), 5);
        let job = printed(
            json!({"scrape_protocols": ["OpenMetricsText1.0.0"]}),
            json!({"job_name": "a", "scrape_native_histograms": true}),
        );
        assert_eq!(job["scrape_protocols"], json!(["OpenMetricsText1.0.0"]));
    }

    #[test]
    fn escaping_follows_the_validation_scheme_that_applies() {
        let schemes = |global: Value, mut job: Value| {
            job["job_name"] = json!("a");
            let job = printed(global, job);
            (job["metric_name_validation_scheme"].clone(), job["metric_name_escaping_scheme"].clone())
        };
        assert_eq!(schemes(json!(null), json!({})), (json!("utf8"), json!("allow-utf-8")));
        assert_eq!(
            schemes(json!({"metric_name_escaping_scheme": "dots"}), json!({})),
            (json!("utf8"), json!("dots"))
        );
        assert_eq!(
            schemes(
                json!({"metric_name_escaping_scheme": "dots"}),
                json!({"metric_name_validation_scheme": "legacy"})
            ),
            (json!("legacy"), json!("underscores"))
        );
        assert_eq!(
            schemes(
                json!({"metric_name_validation_scheme": "legacy"}),
                json!({"metric_name_escaping_scheme": "values"})
            ),
            (json!("legacy"), json!("values"))
        );
    }

    #[test]
    fn http_client_settings_print_as_prometheus_normalises_them() {
        let job = printed(
            json!(null),
            json!({"job_name": "a", "bearer_token_file": "/t", "follow_redirects": false,
                   "tls_config": {"insecure_skip_verify": false}, "colour": "red"}),
        );
        assert_eq!(job["authorization"], json!({"type": "Bearer", "credentials_file": "/t"}));
        assert!(job.get("bearer_token_file").is_none() && job.get("tls_config").is_none());
        assert_eq!((&job["follow_redirects"], &job["enable_http2"]), (&json!(false), &json!(true)));
        let job = printed(
            json!(null),
            json!({"job_name": "a", "authorization": {"type": " Token ", "credentials": "c"},
                   "tls_config": {"server_name": "s", "min_version": "TLS12"},
                   "proxy_from_environment": true, "proxy_connect_header": {"X": ["v"]}}),
        );
        assert_eq!(job["authorization"], json!({"type": "Token", "credentials": "c"}));
        assert_eq!(
            job["tls_config"],
            json!({"server_name": "s", "min_version": "TLS12", "insecure_skip_verify": false})
        );
        assert_eq!(job["proxy_from_environment"], true);
        assert_round_trips(&job);
    }

    #[test]
    fn relabel_rules_print_with_defaults_and_only_written_regexes() {
        let job = printed(
            json!(null),
            json!({"job_name": "a", "relabel_configs": [
                {"source_labels": ["a"], "target_label": "b"},
                {"action": "Keep", "source_labels": ["a"], "regex": "(.*)"},
                {"action": "hashmod", "source_labels": ["a"], "modulus": 4, "target_label": "h"},
                {"action": "keepequal", "source_labels": ["a"], "target_label": "c"}
            ], "metric_relabel_configs": [{"action": "labeldrop", "regex": "tmp_.*"}]}),
        );
        assert_eq!(
            job["relabel_configs"],
            json!([
                {"source_labels": ["a"], "separator": ";", "target_label": "b", "replacement": "$1", "action": "replace"},
                {"source_labels": ["a"], "separator": ";", "regex": "(.*)", "replacement": "$1", "action": "keep"},
                {"source_labels": ["a"], "separator": ";", "modulus": 4, "target_label": "h", "replacement": "$1", "action": "hashmod"},
                {"source_labels": ["a"], "separator": ";", "target_label": "c", "replacement": "$1", "action": "keepequal"}
            ])
        );
        assert_eq!(
            job["metric_relabel_configs"],
            json!([{"separator": ";", "regex": "tmp_.*", "replacement": "$1", "action": "labeldrop"}])
        );
        assert_round_trips(&job);
    }

    #[test]
    fn unknown_keys_are_dropped_with_a_warning_and_old_names_are_read() {
        let config = parse(json!({"global": {"colour": 1}, "scrape_configs": [{
            "job_name": "a", "colour": "red", "basic_auth": {"username": "u", "shade": 1},
            "scrape_classic_histograms": true, "foo_sd_configs": [{}],
            "kubernetes_sd_configs": [{"role": "pod", "anything": "as written"}]
        }]}));
        let job = &config.scrape_configs[0].printed;
        assert!(!job.contains_key("colour") && !job.contains_key("foo_sd_configs"));
        assert_eq!(job["basic_auth"], json!({"username": "u"}));
        assert_eq!(job["always_scrape_classic_histograms"], true);
        assert_eq!(job["kubernetes_sd_configs"], json!([{"role": "pod", "anything": "as written"}]));
        let warnings = config.warnings.join("\n");
        for key in ["config.global.colour", "(job \"a\").colour", "basic_auth.shade", "foo_sd_configs"] {
            assert!(warnings.contains(key), "{key} not in {warnings}");
        }
        assert!(warnings.contains("scrape_classic_histograms` is read as always_scrape_classic_histograms"));
    }

    #[test]
    fn null_is_the_zero_value_as_in_prometheus() {
        let job = printed(
            json!(null),
            json!({"job_name": "a", "honor_timestamps": null, "scrape_interval": null, "sample_limit": null,
                   "always_scrape_classic_histograms": null, "basic_auth": null}),
        );
        assert_eq!(job["honor_timestamps"], false);
        assert_eq!(job["scrape_interval"], "1m");
        assert!(job.get("sample_limit").is_none() && job.get("basic_auth").is_none());
        assert_eq!(job["always_scrape_classic_histograms"], false);
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
                json!({"global": {"scrape_interval": "5s", "scrape_timeout": "6s"}}),
                "config.global.scrape_timeout",
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
            (
                json!({"scrape_configs": [{"job_name": "a", "static_configs": [{"targets": ["http://x:1/m"]}]}]}),
                "static_configs",
            ),
            (json!({"scrape_configs": [{"job_name": "a", "sample_limit": -1}]}), "sample_limit"),
            (json!({"scrape_configs": [{"job_name": "a", "body_size_limit": 1000}]}), "body_size_limit"),
            (json!({"scrape_configs": [{"job_name": "a", "scrape_protocols": []}]}), "scrape_protocols"),
            (
                json!({"scrape_configs": [{"job_name": "a", "scrape_protocols": ["PrometheusProto", "prometheusproto"]}]}),
                "scrape_protocols",
            ),
            (json!({"global": {"scrape_protocols": ["HTML"]}}), "config.global.scrape_protocols"),
            (
                json!({"scrape_configs": [{"job_name": "a", "fallback_scrape_protocol": "x"}]}),
                "fallback_scrape_protocol",
            ),
            (
                json!({"scrape_configs": [{"job_name": "a", "metric_name_validation_scheme": "ascii"}]}),
                "metric_name_validation_scheme",
            ),
            (
                json!({"scrape_configs": [{"job_name": "a", "metric_name_validation_scheme": "legacy",
                                            "metric_name_escaping_scheme": "allow-utf-8"}]}),
                "metric_name_escaping_scheme",
            ),
            (
                json!({"scrape_configs": [{"job_name": "a", "basic_auth": {"password": "p", "password_file": "/p"}}]}),
                "basic_auth",
            ),
            (
                json!({"scrape_configs": [{"job_name": "a", "bearer_token": "t", "authorization": {"credentials": "c"}}]}),
                "authorization",
            ),
            (
                json!({"scrape_configs": [{"job_name": "a", "authorization": {"type": "Basic"}}]}),
                "authorization",
            ),
            (
                json!({"scrape_configs": [{"job_name": "a", "basic_auth": {}, "authorization": {}}]}),
                "(job \"a\")",
            ),
            (json!({"scrape_configs": [{"job_name": "a", "oauth2": {"client_id": "i"}}]}), "oauth2"),
            (json!({"scrape_configs": [{"job_name": "a", "tls_config": {"cert": "C"}}]}), "tls_config"),
            (
                json!({"scrape_configs": [{"job_name": "a", "tls_config": {"min_version": "SSL3"}}]}),
                "min_version",
            ),
            (json!({"scrape_configs": [{"job_name": "a", "no_proxy": "x"}]}), "(job \"a\")"),
            (
                json!({"scrape_configs": [{"job_name": "a", "http_headers": {"authorization": {"values": ["x"]}}}]}),
                "http_headers.authorization",
            ),
            (json!({"scrape_configs": [{"job_name": "a", "honor_labels": "yes"}]}), "honor_labels"),
            (
                json!({"scrape_configs": [{"job_name": "a", "kubernetes_sd_configs": [null]}]}),
                "kubernetes_sd_configs",
            ),
        ];
        for (config, key) in cases {
            let error = parse_prometheus_config(&config).unwrap_err();
            assert!(error.key.contains(key), "{error} should name {key}");
        }
    }
}
