//! `/scrape_configs` against Prometheus's own printing: every scrape config
//! field, defaults and `global` inheritance, secrets, and a differential run
//! against a real Prometheus's `/api/v1/status/config`.
//!
//! The reference serves each job as Prometheus 3 prints it (its YAML
//! marshalling turned into JSON). Debian's Prometheus 2.42 is the live
//! oracle for the fields it knows; the expected JSON of the other tests is
//! written from Prometheus 3's config structs (`config/config.go`,
//! `common/config`, `model/relabel`).

use serde_json::{Map, Value, json};
use target_allocator::config::parse_prometheus_config;
use target_allocator::server::render_scrape_configs;

use crate::support::{
    PROMETHEUS_3_ONLY_DEFAULTS, RunningAllocator, free_port, http_get, spawn_allocator, spawn_prometheus,
    wait_for,
};

/// Starts an allocator whose `config:` block is `config` (YAML, indented
/// two spaces), with `extra` top-level keys.
fn serve(config: &str, extra: &str) -> (tempfile::TempDir, RunningAllocator) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("collectors: [{{id: c1}}]\n{extra}config:\n{config}");
    let allocator = spawn_allocator(dir.path(), free_port(), &text, &[]);
    (dir, allocator)
}

fn scrape_configs(allocator: &RunningAllocator) -> Value {
    let (status, body) = http_get(allocator.port, "/scrape_configs").unwrap();
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

/// What Prometheus 3 prints for a job that sets nothing, without `global`.
fn bare_job(name: &str) -> Value {
    json!({
        "job_name": name,
        "honor_timestamps": true,
        "track_timestamps_staleness": false,
        "scrape_interval": "1m",
        "scrape_timeout": "10s",
        "scrape_protocols": ["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0", "PrometheusText0.0.4"],
        "scrape_native_histograms": false,
        "always_scrape_classic_histograms": false,
        "convert_classic_histograms_to_nhcb": false,
        "extra_scrape_metrics": false,
        "metrics_path": "/metrics",
        "scheme": "http",
        "enable_compression": true,
        "metric_name_validation_scheme": "utf8",
        "metric_name_escaping_scheme": "allow-utf-8",
        "follow_redirects": true,
        "enable_http2": true
    })
}

/// `overrides` over `job`.
fn with(mut job: Value, overrides: Value) -> Value {
    for (key, value) in overrides.as_object().unwrap() {
        job[key] = value.clone();
    }
    job
}

/// A job of [`EVERY_FIELD`]: `overrides` over what it inherits from that
/// config's `global` when it sets nothing.
fn job(overrides: Value) -> Value {
    let name = overrides["job_name"].as_str().unwrap();
    let inherited = json!({"scrape_interval": "45s", "scrape_timeout": "12s", "sample_limit": 1000, "keep_dropped_targets": 7});
    with(with(bare_job(name), inherited), overrides)
}

/// Every scrape config field Prometheus 3 accepts, in jobs that may combine
/// them (one authentication method per job), with secrets everywhere.
const EVERY_FIELD: &str = r#"
  global:
    scrape_interval: 45s
    scrape_timeout: 12s
    sample_limit: 1000
    keep_dropped_targets: 7
    evaluation_interval: 1m
    external_labels: {dc: eu}
  scrape_configs:
    - job_name: everything
      honor_labels: true
      honor_timestamps: false
      track_timestamps_staleness: true
      params: {module: [http_2xx], target: [a, b]}
      scrape_interval: 30s
      scrape_timeout: 20s
      scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0]
      fallback_scrape_protocol: PrometheusText0.0.4
      scrape_native_histograms: true
      always_scrape_classic_histograms: true
      convert_classic_histograms_to_nhcb: true
      extra_scrape_metrics: true
      scrape_failure_log_file: /var/log/scrape-failures.log
      metrics_path: /probe
      scheme: https
      enable_compression: false
      body_size_limit: 10MB
      sample_limit: 5000
      target_limit: 100
      label_limit: 64
      label_name_length_limit: 128
      label_value_length_limit: 2048
      keep_dropped_targets: 10
      native_histogram_bucket_limit: 160
      native_histogram_min_bucket_factor: 1.1
      metric_name_validation_scheme: legacy
      metric_name_escaping_scheme: dots
      basic_auth: {username: prom, password: basic-secret}
      tls_config:
        ca: CA-PEM
        cert: CERT-PEM
        key: KEY-SECRET
        server_name: target.example
        insecure_skip_verify: true
        min_version: TLS12
        max_version: TLS13
      proxy_url: http://proxy-user:proxy-secret@proxy.example:3128
      no_proxy: localhost,10.0.0.0/8
      proxy_connect_header: {Proxy-Authorization: [connect-secret]}
      http_headers:
        X-Scope-OrgID: {values: [tenant-1]}
        X-Api-Key: {secrets: [header-secret], files: [/etc/api-key]}
      follow_redirects: false
      enable_http2: false
      relabel_configs:
        - source_labels: [__address__]
          target_label: __param_target
        - {action: Replace, source_labels: [__param_target], regex: '(.*)', target_label: instance}
        - {target_label: __address__, replacement: 'blackbox:9115'}
        - {action: keepequal, source_labels: [__tmp_a], target_label: __tmp_b}
        - {action: hashmod, source_labels: [__address__], modulus: 8, target_label: __tmp_hash}
        - {action: labelmap, regex: '__meta_(.+)'}
      metric_relabel_configs:
        - {action: drop, source_labels: [__name__, job], separator: /, regex: 'go_.*'}
        - {action: labeldrop, regex: 'tmp_.*'}
        - {action: dropequal, source_labels: [a], target_label: b}
      static_configs:
        - targets: ['10.0.0.1:9115']
          labels: {team: web}
      file_sd_configs:
        - files: [sd/*.json]
      kubernetes_sd_configs:
        - role: pod
          namespaces: {names: [web]}
          bearer_token: kubernetes-secret
      consul_sd_configs:
        - {server: 'consul:8500', token: consul-secret}
    - job_name: oauth
      oauth2:
        client_id: client
        client_secret: oauth-secret
        scopes: [read]
        token_url: https://auth.example/token
        endpoint_params: {audience: prom}
        tls_config: {ca_file: /etc/ca.pem}
        proxy_url: http://proxy.example:3128
      static_configs: [{targets: ['10.0.0.2:80']}]
    - job_name: jwt
      oauth2:
        client_id: c
        token_url: https://auth.example/token
        grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer
        client_certificate_key: jwt-secret
        signature_algorithm: RS384
        iss: me
        audience: you
        claims: {tier: gold}
    - job_name: bearer
      bearer_token: bearer-secret
      proxy_from_environment: true
      proxy_connect_header: {X-Proxy: [env-proxy-secret]}
    - job_name: files
      authorization: {type: Token, credentials_file: /etc/token}
      tls_config: {ca_file: /etc/ca.pem, cert_file: /etc/cert.pem, key_file: /etc/key.pem}
    - job_name: basic-files
      basic_auth: {username_file: /etc/user, password_file: /etc/password}
"#;

/// [`EVERY_FIELD`] as Prometheus 3 prints it, secrets in clear.
fn every_field_printed() -> Value {
    let everything = json!({
            "job_name": "everything",
            "honor_labels": true,
            "honor_timestamps": false,
            "track_timestamps_staleness": true,
            "params": {"module": ["http_2xx"], "target": ["a", "b"]},
            "scrape_interval": "30s",
            "scrape_timeout": "20s",
            "scrape_protocols": ["PrometheusProto", "OpenMetricsText1.0.0"],
            "fallback_scrape_protocol": "PrometheusText0.0.4",
            "scrape_native_histograms": true,
            "always_scrape_classic_histograms": true,
            "convert_classic_histograms_to_nhcb": true,
            "extra_scrape_metrics": true,
            "scrape_failure_log_file": "/var/log/scrape-failures.log",
            "metrics_path": "/probe",
            "scheme": "https",
            "enable_compression": false,
            "body_size_limit": "10MiB",
            "sample_limit": 5000,
            "target_limit": 100,
            "label_limit": 64,
            "label_name_length_limit": 128,
            "label_value_length_limit": 2048,
            "keep_dropped_targets": 10,
            "native_histogram_bucket_limit": 160,
            "native_histogram_min_bucket_factor": 1.1,
            "metric_name_validation_scheme": "legacy",
            "metric_name_escaping_scheme": "dots",
            "basic_auth": {"username": "prom", "password": "basic-secret"},
            "tls_config": {
                "ca": "CA-PEM", "cert": "CERT-PEM", "key": "KEY-SECRET", "server_name": "target.example",
                "insecure_skip_verify": true, "min_version": "TLS12", "max_version": "TLS13"
            },
            "proxy_url": "http://proxy-user:proxy-secret@proxy.example:3128",
            "no_proxy": "localhost,10.0.0.0/8",
            "proxy_connect_header": {"Proxy-Authorization": ["connect-secret"]},
            "http_headers": {
                "X-Scope-OrgID": {"values": ["tenant-1"]},
                "X-Api-Key": {"secrets": ["header-secret"], "files": ["/etc/api-key"]}
            },
            "follow_redirects": false,
            "enable_http2": false,
            "relabel_configs": [
                {"source_labels": ["__address__"], "separator": ";", "target_label": "__param_target",
                 "replacement": "$1", "action": "replace"},
                {"source_labels": ["__param_target"], "separator": ";", "regex": "(.*)", "target_label": "instance",
                 "replacement": "$1", "action": "replace"},
                {"separator": ";", "target_label": "__address__", "replacement": "blackbox:9115", "action": "replace"},
                {"source_labels": ["__tmp_a"], "separator": ";", "target_label": "__tmp_b", "replacement": "$1",
                 "action": "keepequal"},
                {"source_labels": ["__address__"], "separator": ";", "modulus": 8, "target_label": "__tmp_hash",
                 "replacement": "$1", "action": "hashmod"},
                {"separator": ";", "regex": "__meta_(.+)", "replacement": "$1", "action": "labelmap"}
            ],
            "metric_relabel_configs": [
                {"source_labels": ["__name__", "job"], "separator": "/", "regex": "go_.*", "replacement": "$1",
                 "action": "drop"},
                {"separator": ";", "regex": "tmp_.*", "replacement": "$1", "action": "labeldrop"},
                {"source_labels": ["a"], "separator": ";", "target_label": "b", "replacement": "$1",
                 "action": "dropequal"}
            ],
            "static_configs": [{"targets": ["10.0.0.1:9115"], "labels": {"team": "web"}}],
            "file_sd_configs": [{"files": ["sd/*.json"]}],
            "kubernetes_sd_configs": [
                {"role": "pod", "namespaces": {"names": ["web"]}, "bearer_token": "kubernetes-secret"}
            ],
            "consul_sd_configs": [{"server": "consul:8500", "token": "consul-secret"}]
    });
    json!({
        "everything": everything,
        "oauth": job(json!({
            "job_name": "oauth",
            "oauth2": {
                "client_id": "client", "client_secret": "oauth-secret", "scopes": ["read"],
                "token_url": "https://auth.example/token", "endpoint_params": {"audience": "prom"},
                "tls_config": {"ca_file": "/etc/ca.pem", "insecure_skip_verify": false},
                "proxy_url": "http://proxy.example:3128"
            },
            "static_configs": [{"targets": ["10.0.0.2:80"]}]
        })),
        "jwt": job(json!({
            "job_name": "jwt",
            "oauth2": {
                "client_id": "c", "token_url": "https://auth.example/token",
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "client_certificate_key": "jwt-secret", "signature_algorithm": "RS384", "iss": "me",
                "audience": "you", "claims": {"tier": "gold"}
            }
        })),
        "bearer": job(json!({
            "job_name": "bearer",
            "authorization": {"type": "Bearer", "credentials": "bearer-secret"},
            "proxy_from_environment": true,
            "proxy_connect_header": {"X-Proxy": ["env-proxy-secret"]}
        })),
        "files": job(json!({
            "job_name": "files",
            "authorization": {"type": "Token", "credentials_file": "/etc/token"},
            "tls_config": {
                "ca_file": "/etc/ca.pem", "cert_file": "/etc/cert.pem", "key_file": "/etc/key.pem",
                "insecure_skip_verify": false
            }
        })),
        "basic-files": job(json!({
            "job_name": "basic-files",
            "basic_auth": {"username_file": "/etc/user", "password_file": "/etc/password"}
        }))
    })
}

/// Where [`every_field_printed`] holds secrets, and what Prometheus prints
/// there when it redacts.
const REDACTED_AT: [(&str, &str); 11] = [
    ("/everything/basic_auth/password", "<secret>"),
    ("/everything/tls_config/key", "<secret>"),
    ("/everything/proxy_url", "http://proxy-user:xxxxx@proxy.example:3128"),
    ("/everything/proxy_connect_header/Proxy-Authorization/0", "<secret>"),
    ("/everything/http_headers/X-Api-Key/secrets/0", "<secret>"),
    ("/everything/kubernetes_sd_configs/0/bearer_token", "<secret>"),
    ("/everything/consul_sd_configs/0/token", "<secret>"),
    ("/oauth/oauth2/client_secret", "<secret>"),
    ("/jwt/oauth2/client_certificate_key", "<secret>"),
    ("/bearer/authorization/credentials", "<secret>"),
    ("/bearer/proxy_connect_header/X-Proxy/0", "<secret>"),
];

#[test]
fn every_field_is_served_as_prometheus_prints_it_redacted_and_not() {
    let expected = every_field_printed();
    let (_dir, insecure) = serve(EVERY_FIELD, "allow_insecure_auth_secrets: true\n");
    assert_eq!(scrape_configs(&insecure), expected);

    let mut redacted = expected;
    for (pointer, shown) in REDACTED_AT {
        *redacted.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = json!(shown);
    }
    let (_dir, plain) = serve(EVERY_FIELD, "");
    let body = http_get(plain.port, "/scrape_configs").unwrap().1;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), redacted);
    assert!(!body.contains("-secret"), "a secret leaks over plain HTTP: {body}");
}

#[test]
fn printed_jobs_read_back_to_themselves() {
    let (_dir, allocator) = serve(EVERY_FIELD, "allow_insecure_auth_secrets: true\n");
    let served = scrape_configs(&allocator);
    // What a collector does with the response: read each job as a scrape
    // config. Without `global`, so every inherited value must be explicit.
    let jobs: Vec<Value> = served.as_object().unwrap().values().cloned().collect();
    let reread = parse_prometheus_config(&json!({ "scrape_configs": jobs })).unwrap();
    assert!(reread.warnings.is_empty(), "{:?}", reread.warnings);
    let rendered: Value =
        serde_json::from_slice(&render_scrape_configs(&reread.scrape_configs, false)).unwrap();
    assert_eq!(rendered, served);
}

#[test]
fn a_minimal_config_prints_every_default_and_inherits_global() {
    let (_dir, bare) = serve("  scrape_configs:\n    - job_name: bare\n", "");
    assert_eq!(scrape_configs(&bare), json!({"bare": bare_job("bare")}));

    let config = r#"
  global:
    scrape_interval: 8s
    scrape_protocols: [PrometheusText1.0.0, PrometheusProto]
    body_size_limit: 1GB
    sample_limit: 1
    target_limit: 2
    label_limit: 3
    label_name_length_limit: 4
    label_value_length_limit: 5
    keep_dropped_targets: 6
    metric_name_validation_scheme: legacy
    scrape_native_histograms: true
    always_scrape_classic_histograms: true
    convert_classic_histograms_to_nhcb: true
    extra_scrape_metrics: true
    scrape_failure_log_file: /var/log/failures.log
  scrape_configs:
    - job_name: inherits
    - job_name: overrides
      scrape_interval: 2s
      sample_limit: 10
      metric_name_validation_scheme: utf8
      scrape_native_histograms: false
"#;
    let (_dir, global) = serve(config, "");
    let served = scrape_configs(&global);
    let inherited = json!({
        "scrape_interval": "8s",
        // The default timeout is capped at the interval.
        "scrape_timeout": "8s",
        "scrape_protocols": ["PrometheusText1.0.0", "PrometheusProto"],
        "body_size_limit": "1GiB",
        "sample_limit": 1,
        "target_limit": 2,
        "label_limit": 3,
        "label_name_length_limit": 4,
        "label_value_length_limit": 5,
        "keep_dropped_targets": 6,
        "metric_name_validation_scheme": "legacy",
        "metric_name_escaping_scheme": "underscores",
        "scrape_native_histograms": true,
        "always_scrape_classic_histograms": true,
        "convert_classic_histograms_to_nhcb": true,
        "extra_scrape_metrics": true,
        "scrape_failure_log_file": "/var/log/failures.log"
    });
    assert_eq!(served["inherits"], with(bare_job("inherits"), inherited.clone()));
    let expected = with(
        with(bare_job("overrides"), inherited),
        json!({
            "scrape_interval": "2s",
            "scrape_timeout": "2s",
            "sample_limit": 10,
            "metric_name_validation_scheme": "utf8",
            // A job naming its validation scheme escapes as that scheme does.
            "metric_name_escaping_scheme": "allow-utf-8",
            // Protocols stay global's: they win over the native histogram default.
            "scrape_native_histograms": false
        }),
    );
    assert_eq!(served["overrides"], expected);
}

/// The jobs of the differential test: every field Prometheus 2.42 knows,
/// except TLS versions (2.42 prints them as numbers, a bug fixed later).
fn known_to_prometheus_2(dir: &std::path::Path) -> Value {
    let token = dir.join("token");
    let password = dir.join("password");
    std::fs::write(&token, "t").unwrap();
    std::fs::write(&password, "p").unwrap();
    json!({
        "global": {"scrape_interval": "45s", "scrape_timeout": "12s"},
        "scrape_configs": [
            {
                "job_name": "known-fields",
                "honor_labels": true,
                "honor_timestamps": false,
                "params": {"module": ["http_2xx"], "target": ["x", "y"]},
                "scrape_interval": "1h",
                "scrape_timeout": "20s",
                "metrics_path": "/probe",
                "scheme": "https",
                "body_size_limit": "1536B",
                "sample_limit": 5,
                "target_limit": 6,
                "label_limit": 7,
                "label_name_length_limit": 8,
                "label_value_length_limit": 9,
                "basic_auth": {"username": "u", "password": "basic-secret"},
                "tls_config": {"server_name": "s", "insecure_skip_verify": true},
                "proxy_url": "http://user:proxy-secret@127.0.0.1:3128",
                "proxy_connect_header": {"X-Proxy": ["connect-secret"]},
                "follow_redirects": false,
                "enable_http2": false,
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"action": "Keep", "source_labels": ["__param_target"], "regex": "(.*)"},
                    {"action": "keepequal", "source_labels": ["a"], "target_label": "b"},
                    {"action": "hashmod", "source_labels": ["__address__"], "modulus": 3, "target_label": "h"},
                    {"action": "labelmap", "regex": "__meta_(.+)", "replacement": "m_$1"},
                    {"target_label": "fixed", "replacement": "v", "separator": "|"}
                ],
                "metric_relabel_configs": [
                    {"action": "labeldrop", "regex": "tmp_.*"},
                    {"action": "dropequal", "source_labels": ["a"], "target_label": "b"}
                ],
                "static_configs": [{"targets": ["127.0.0.1:1"], "labels": {"team": "a"}}, {"targets": []}]
            },
            {"job_name": "defaults", "static_configs": [{"targets": ["127.0.0.1:2"]}]},
            {"job_name": "bearer", "bearer_token": "bearer-secret", "scrape_interval": "10s"},
            {"job_name": "bearer-file", "bearer_token_file": token},
            {"job_name": "authorization", "authorization": {"type": "Token", "credentials": "authz-secret"}},
            {"job_name": "basic-file", "basic_auth": {"username": "u", "password_file": password}},
            {
                "job_name": "oauth",
                "oauth2": {
                    "client_id": "id", "client_secret": "oauth-secret", "token_url": "http://127.0.0.1:1/token",
                    "scopes": ["a", "b"], "endpoint_params": {"k": "v"}, "tls_config": {"server_name": "x"},
                    "proxy_url": "http://127.0.0.1:3128"
                }
            }
        ]
    })
}

/// Removes from `theirs` (Prometheus 2.42's print) and `ours` what is known
/// to differ between Prometheus 2.42 and 3:
/// - keys 2.42 does not have ([`PROMETHEUS_3_ONLY_DEFAULTS`]);
/// - 2.42 prints the default relabel regex `(.*)`; Prometheus ≥ 2.54 prints
///   a regex only when the rule wrote one;
/// - 2.42 prints an empty `oauth2.client_secret_file`; 3 leaves it out.
fn normalise(ours: &mut Map<String, Value>, theirs: &mut Map<String, Value>) {
    ours.retain(|key, _| !PROMETHEUS_3_ONLY_DEFAULTS.contains(&key.as_str()));
    for key in ["relabel_configs", "metric_relabel_configs"] {
        let (Some(Value::Array(our_rules)), Some(Value::Array(their_rules))) =
            (ours.get(key), theirs.get_mut(key))
        else {
            continue;
        };
        for (ours, theirs) in our_rules.iter().zip(their_rules) {
            if ours.get("regex").is_none() && theirs["regex"] == "(.*)" {
                theirs.as_object_mut().unwrap().remove("regex");
            }
        }
    }
    if let Some(Value::Object(oauth2)) = theirs.get_mut("oauth2") {
        oauth2.retain(|_, value| value != "");
    }
}

#[test]
fn jobs_match_what_prometheus_itself_prints() {
    let dir = tempfile::tempdir().unwrap();
    let config = known_to_prometheus_2(dir.path());
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let (_prometheus, port) = spawn_prometheus(dir.path(), "oracle", &config_file);
    let (_dir, allocator) = serve(&format!("  {config}\n"), "");

    let mut printed = None;
    wait_for("Prometheus to serve its config", || {
        printed = http_get(port, "/api/v1/status/config").ok().filter(|(status, _)| *status == 200);
        printed.is_some()
    });
    let response: Value = serde_json::from_str(&printed.unwrap().1).unwrap();
    let theirs: Value = serde_yaml::from_str(response["data"]["yaml"].as_str().unwrap()).unwrap();
    let ours = scrape_configs(&allocator);
    let their_jobs = theirs["scrape_configs"].as_array().unwrap();
    assert_eq!(their_jobs.len(), ours.as_object().unwrap().len());
    for their_job in their_jobs {
        let name = their_job["job_name"].as_str().unwrap();
        let mut their_job = their_job.as_object().unwrap().clone();
        let mut our_job = ours[name].as_object().unwrap().clone();
        normalise(&mut our_job, &mut their_job);
        assert_eq!(Value::Object(our_job), Value::Object(their_job), "job {name}");
    }
}
