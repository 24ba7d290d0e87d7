//! The `/scrape_configs` response: every job as Prometheus prints it, with
//! secrets redacted unless the request may see them.

use serde_json::{Map, Value};

use crate::config::ScrapeConfig;

/// What a redacted secret reads as, as in Prometheus.
pub const REDACTED: &str = "<secret>";

/// Keys holding secrets, by the key of the mapping they sit in ("" = any).
const SECRET_KEYS: &[(&str, &str)] = &[
    ("basic_auth", "password"),
    ("authorization", "credentials"),
    ("oauth2", "client_secret"),
    ("tls_config", "key"),
    ("", "bearer_token"),
];

/// `{"<job>": {...}}` for all jobs, keys sorted. `redact` replaces secret values.
pub fn render(jobs: &[ScrapeConfig], redact: bool) -> Vec<u8> {
    let mut all = Map::new();
    for job in jobs {
        let mut printed = Value::Object(job.printed.clone());
        strip_equal_regex(&mut printed);
        if redact {
            redact_secrets(&mut printed, "");
        }
        all.insert(job.job_name.clone(), printed);
    }
    // serde_json's Map is a BTreeMap here, so keys come out sorted.
    serde_json::to_vec(&Value::Object(all)).expect("JSON values serialize")
}

/// Prometheus re-adds a default `regex` to `keepequal`/`dropequal` rules when it
/// prints them, and then refuses the rule when it reads it back: drop it.
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

fn redact_secrets(value: &mut Value, parent: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let secret = SECRET_KEYS.iter().any(|(p, k)| k == key && (p.is_empty() || *p == parent));
                if secret && child.as_str().is_some_and(|s| !s.is_empty()) {
                    *child = Value::String(REDACTED.into());
                } else {
                    redact_secrets(child, key);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_secrets(item, parent)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_prometheus_config;
    use serde_json::json;

    fn jobs(config: Value) -> Vec<ScrapeConfig> {
        parse_prometheus_config(&config).unwrap().scrape_configs
    }

    #[test]
    fn secrets_are_redacted_only_when_asked() {
        let jobs = jobs(json!({"scrape_configs": [{
            "job_name": "a",
            "basic_auth": {"username": "u", "password": "p"},
            "authorization": {"type": "Bearer", "credentials": "t"},
            "oauth2": {"client_id": "id", "client_secret": "s", "tls_config": {"key": "PEM"}},
            "tls_config": {"key": "PEM", "cert": "CERT"},
            "kubernetes_sd_configs": [{"role": "pod", "bearer_token": "x"}]
        }]}));
        let redacted: Value = serde_json::from_slice(&render(&jobs, true)).unwrap();
        let a = &redacted["a"];
        assert_eq!(a["basic_auth"], json!({"username": "u", "password": REDACTED}));
        assert_eq!(a["authorization"]["credentials"], REDACTED);
        assert_eq!(a["oauth2"]["client_secret"], REDACTED);
        assert_eq!(a["oauth2"]["tls_config"]["key"], REDACTED);
        assert_eq!(a["tls_config"], json!({"key": REDACTED, "cert": "CERT"}));
        assert_eq!(a["kubernetes_sd_configs"][0]["bearer_token"], REDACTED);
        let full: Value = serde_json::from_slice(&render(&jobs, false)).unwrap();
        assert_eq!(full["a"]["basic_auth"]["password"], "p");
    }

    #[test]
    fn equal_actions_lose_their_regex() {
        let jobs = jobs(json!({"scrape_configs": [{
            "job_name": "a",
            "relabel_configs": [
                {"action": "keepequal", "source_labels": ["x"], "target_label": "y", "regex": "(.*)"},
                {"action": "keep", "source_labels": ["x"], "regex": "a.*"}
            ]
        }]}));
        let out: Value = serde_json::from_slice(&render(&jobs, true)).unwrap();
        let rules = &out["a"]["relabel_configs"];
        assert!(rules[0].get("regex").is_none());
        assert_eq!(rules[1]["regex"], "a.*");
    }
}
