//! The `/scrape_configs` response: every job as Prometheus prints it, with
//! secrets redacted unless the request may see them.

use serde_json::{Map, Value};

use crate::config::ScrapeConfig;

/// What a redacted secret reads as, as in Prometheus.
pub const REDACTED: &str = "<secret>";

/// Secret-typed fields of Prometheus's HTTP client settings, by the key of
/// the section holding them. These sections also appear inside discovery
/// configs, which are served as written.
const CLIENT_SECRETS: &[(&str, &str)] = &[
    ("basic_auth", "password"),
    ("authorization", "credentials"),
    ("oauth2", "client_secret"),
    ("oauth2", "client_certificate_key"),
    ("tls_config", "key"),
];

/// Secret-typed fields of the discovery mechanisms' own settings.
const DISCOVERY_SECRETS: &[(&str, &str)] = &[
    ("aws_sd_configs", "secret_key"),
    ("azure_sd_configs", "client_secret"),
    ("consul_sd_configs", "token"),
    ("consul_sd_configs", "password"),
    ("ec2_sd_configs", "secret_key"),
    ("ecs_sd_configs", "secret_key"),
    ("elasticache_sd_configs", "secret_key"),
    ("lightsail_sd_configs", "secret_key"),
    ("marathon_sd_configs", "auth_token"),
    ("msk_sd_configs", "secret_key"),
    ("oci_sd_configs", "key_passphrase"),
    ("openstack_sd_configs", "password"),
    ("openstack_sd_configs", "application_credential_secret"),
    ("outscale_sd_configs", "secret_key"),
    ("ovhcloud_sd_configs", "application_secret"),
    ("ovhcloud_sd_configs", "consumer_key"),
    ("rds_sd_configs", "secret_key"),
    ("scaleway_sd_configs", "secret_key"),
    ("stackit_sd_configs", "service_account_key"),
    ("stackit_sd_configs", "private_key"),
    ("uyuni_sd_configs", "password"),
];

/// `{"<job>": {...}}` for all jobs, keys sorted. `redact` replaces secret values.
pub fn render(jobs: &[ScrapeConfig], redact: bool) -> Vec<u8> {
    let mut all = Map::new();
    for job in jobs {
        let mut printed = Value::Object(job.printed.clone());
        strip_equal_regex(&mut printed);
        if redact {
            redact_secrets(&mut printed, "", "");
        }
        all.insert(job.job_name.clone(), printed);
    }
    // serde_json's Map is a BTreeMap here, so keys come out sorted.
    serde_json::to_vec(&Value::Object(all)).expect("JSON values serialize")
}

/// Prometheus before 2.54 printed a default `regex` on `keepequal`/`dropequal`
/// rules and then refused to read them back (prometheus#12534), so the
/// reference deletes it. Jobs printed here never carry one (Prometheus 3 prints
/// no default regex and refuses a written one); this keeps the reference's
/// guarantee for any printed form.
fn strip_equal_regex(job: &mut Value) {
    for key in ["relabel_configs", "metric_relabel_configs"] {
        if let Some(Value::Array(rules)) = job.get_mut(key) {
            for rule in rules {
                let action =
                    rule.get("action").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
                if (action == "keepequal" || action == "dropequal")
                    && let Some(rule) = rule.as_object_mut()
                {
                    rule.remove("regex");
                }
            }
        }
    }
}

/// Whether `key`, inside `parent` inside `grandparent`, holds secrets: a
/// string, or a list of them (`proxy_connect_header` values and
/// `http_headers.<name>.secrets`).
///
/// `bearer_token` is a client setting of the job itself (`parent` empty) or
/// of a discovery config; elsewhere, as in a static config's `labels`, it is
/// user data that merely has that name.
fn is_secret(grandparent: &str, parent: &str, key: &str) -> bool {
    (key == "bearer_token" && (parent.is_empty() || parent.ends_with("_sd_configs")))
        || parent == "proxy_connect_header"
        || (grandparent == "http_headers" && key == "secrets")
        || CLIENT_SECRETS.iter().chain(DISCOVERY_SECRETS).any(|(p, k)| *p == parent && *k == key)
}

/// Replaces secrets as Prometheus prints them: `<secret>` for a set value
/// (an empty one in a list prints as null), and the password of a proxy URL
/// as `xxxxx`.
///
/// The reference masks proxy passwords even in its unredacted response,
/// which leaves collectors unable to use them; here only the redacted
/// response masks them.
fn redact_secrets(value: &mut Value, grandparent: &str, parent: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if is_secret(grandparent, parent, key) {
                    hide(child);
                } else if key == "proxy_url" {
                    if let Some(masked) = child.as_str().and_then(mask_url_password) {
                        *child = Value::String(masked);
                    }
                } else {
                    redact_secrets(child, parent, key);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_secrets(item, grandparent, parent)),
        _ => {}
    }
}

fn hide(secret: &mut Value) {
    match secret {
        Value::String(s) if !s.is_empty() => *secret = Value::String(REDACTED.into()),
        Value::Array(items) => {
            for item in items {
                *item = match item.as_str() {
                    Some("") | None => Value::Null,
                    Some(_) => Value::String(REDACTED.into()),
                };
            }
        }
        _ => {}
    }
}

/// `http://user:pass@proxy:3128` → `http://user:xxxxx@proxy:3128`.
fn mask_url_password(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (userinfo, host) = rest[..authority_end].rsplit_once('@')?;
    let (user, _) = userinfo.split_once(':')?;
    Some(format!("{scheme}://{user}:xxxxx@{host}{}", &rest[authority_end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_prometheus_config;
    use serde_json::json;

    fn jobs(config: Value) -> Vec<ScrapeConfig> {
        parse_prometheus_config(&config).unwrap().scrape_configs
    }

    fn rendered(jobs: &[ScrapeConfig], redact: bool) -> Value {
        serde_json::from_slice(&render(jobs, redact)).unwrap()
    }

    #[test]
    fn every_secret_is_redacted_only_when_asked_and_files_are_not_secrets() {
        let jobs = jobs(json!({"scrape_configs": [
            {
                "job_name": "a",
                "basic_auth": {"username": "u", "password": "p"},
                "tls_config": {"key": "PEM", "cert": "CERT"},
                "proxy_url": "http://pu:pp@proxy:3128/x",
                "proxy_connect_header": {"Proxy-Auth": ["h1", ""]},
                "http_headers": {"X-Token": {"values": ["v"], "secrets": ["s"], "files": ["/f"]}},
                "kubernetes_sd_configs": [{"role": "pod", "bearer_token": "k", "basic_auth": {"password": "kp"}}],
                "consul_sd_configs": [{"server": "c:8500", "token": "ct"}],
                "ec2_sd_configs": [{"region": "r", "access_key": "ak", "secret_key": "sk"}]
            },
            {"job_name": "b", "bearer_token": "t"},
            {"job_name": "c", "authorization": {"credentials_file": "/c"}},
            {
                "job_name": "f",
                "basic_auth": {"username_file": "/u", "password_file": "/p"},
                "tls_config": {"key_file": "/k", "cert_file": "/c"}
            },
            {
                "job_name": "d",
                "oauth2": {"client_id": "id", "client_secret": "s", "token_url": "http://t",
                           "tls_config": {"key": "PEM", "cert": "CERT"}}
            },
            {
                "job_name": "e",
                "oauth2": {"client_id": "id", "token_url": "http://t", "client_certificate_key": "PEM",
                           "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}
            }
        ]}));
        let redacted = rendered(&jobs, true);
        let a = &redacted["a"];
        assert_eq!(a["basic_auth"], json!({"username": "u", "password": REDACTED}));
        assert_eq!(a["tls_config"], json!({"key": REDACTED, "cert": "CERT", "insecure_skip_verify": false}));
        assert_eq!(a["proxy_url"], "http://pu:xxxxx@proxy:3128/x");
        assert_eq!(a["proxy_connect_header"], json!({"Proxy-Auth": [REDACTED, null]}));
        assert_eq!(
            a["http_headers"],
            json!({"X-Token": {"values": ["v"], "secrets": [REDACTED], "files": ["/f"]}})
        );
        assert_eq!(a["kubernetes_sd_configs"][0]["bearer_token"], REDACTED);
        assert_eq!(a["kubernetes_sd_configs"][0]["basic_auth"]["password"], REDACTED);
        assert_eq!(a["consul_sd_configs"][0]["token"], REDACTED);
        assert_eq!(
            a["ec2_sd_configs"][0],
            json!({"region": "r", "access_key": "ak", "secret_key": REDACTED})
        );
        assert_eq!(redacted["b"]["authorization"], json!({"type": "Bearer", "credentials": REDACTED}));
        assert_eq!(redacted["c"]["authorization"], json!({"type": "Bearer", "credentials_file": "/c"}));
        assert_eq!(redacted["f"]["basic_auth"], json!({"username_file": "/u", "password_file": "/p"}));
        assert_eq!(
            redacted["f"]["tls_config"],
            json!({"key_file": "/k", "cert_file": "/c", "insecure_skip_verify": false})
        );
        assert_eq!(redacted["d"]["oauth2"]["client_secret"], REDACTED);
        assert_eq!(redacted["d"]["oauth2"]["tls_config"]["key"], REDACTED);
        assert_eq!(redacted["e"]["oauth2"]["client_certificate_key"], REDACTED);

        let full = rendered(&jobs, false);
        assert_eq!(full["a"]["basic_auth"]["password"], "p");
        assert_eq!(full["a"]["proxy_url"], "http://pu:pp@proxy:3128/x");
        assert_eq!(full["a"]["proxy_connect_header"], json!({"Proxy-Auth": ["h1", ""]}));
        assert_eq!(full["a"]["http_headers"]["X-Token"]["secrets"], json!(["s"]));
        assert_eq!(full["a"]["ec2_sd_configs"][0]["secret_key"], "sk");
        assert_eq!(full["b"]["authorization"]["credentials"], "t");
        assert_eq!(full["e"]["oauth2"]["client_certificate_key"], "PEM");
        let text = String::from_utf8(render(&jobs, true)).unwrap();
        for secret in ["\"p\"", "hunter", "\"PEM\"", "\"h1\"", "\"kp\"", "\"ct\"", "\"sk\"", "pp@"] {
            assert!(!text.contains(secret), "{secret} leaks: {text}");
        }
    }

    #[test]
    fn labels_named_like_secrets_are_not_redacted() {
        // Found by the scrape_config fuzz target: a static label named
        // `bearer_token` was served as `<secret>`, changing the target's labels.
        let jobs = jobs(json!({"scrape_configs": [{
            "job_name": "a",
            "static_configs": [{"targets": ["x:1"], "labels": {"bearer_token": "v", "password": "w"}}],
            "kubernetes_sd_configs": [{"role": "pod", "bearer_token": "k"}]
        }]}));
        let a = &rendered(&jobs, true)["a"];
        assert_eq!(a["static_configs"][0]["labels"], json!({"bearer_token": "v", "password": "w"}));
        assert_eq!(a["kubernetes_sd_configs"][0]["bearer_token"], REDACTED);
    }

    #[test]
    fn proxy_passwords_are_masked_like_prometheus() {
        assert_eq!(mask_url_password("http://u:p@h:1").as_deref(), Some("http://u:xxxxx@h:1"));
        assert_eq!(mask_url_password("http://u:p@h:1/a@b").as_deref(), Some("http://u:xxxxx@h:1/a@b"));
        assert_eq!(mask_url_password("http://u@h:1"), None);
        assert_eq!(mask_url_password("http://h:1"), None);
    }

    #[test]
    fn equal_actions_lose_their_regex() {
        let mut jobs = jobs(json!({"scrape_configs": [{
            "job_name": "a",
            "relabel_configs": [
                {"action": "keepequal", "source_labels": ["x"], "target_label": "y"},
                {"action": "keep", "source_labels": ["x"], "regex": "a.*"}
            ]
        }]}));
        assert!(jobs[0].printed["relabel_configs"][0].get("regex").is_none(), "never printed here");
        // As a printer older than Prometheus 2.54 wrote it (a config that
        // writes it is refused at load, as Prometheus refuses it).
        jobs[0].printed["relabel_configs"][0]["regex"] = json!("(.*)");
        let out = rendered(&jobs, true);
        let rules = &out["a"]["relabel_configs"];
        assert!(rules[0].get("regex").is_none());
        assert_eq!(rules[1]["regex"], "a.*");
    }
}
