//! Relabeling: Prometheus's relabel rules, reimplemented and checked against
//! Prometheus itself (`promtool check service-discovery`) in the test suite.
//!
//! Owns parsing and validating rules, the regex dialect and applying rules:
//! the general engine on a label set ([`relabel_set`]), and rule lists
//! prepared against the names they use ([`PreparedRules`], the fast path for
//! most lists). It must not know about jobs, discovery or allocation.
//!
//! Semantics follow Prometheus 3 (what the reference allocator links). Where
//! Prometheus 2 behaved differently — `.` not matching newlines, a `replace`
//! whose expanded target is not a valid name deleting the literal
//! `target_label`, and an empty `replace` result deleting the unexpanded
//! `target_label` — this follows Prometheus 3.

mod case;
mod engine;
mod prepared;
mod regex;
mod rule;

pub use engine::{LabelMap, LabelSet, relabel, relabel_set};
pub use prepared::{Decisions, PreparedRules, Schedule, SlotValues, StepShape};
pub use regex::RelabelRegex;
pub use rule::{Action, NameValidation, RelabelRule, is_valid_label_name};

/// Parses a `relabel_configs` list; errors name the rule by position.
pub fn parse_rules(rules: &serde_json::Value, names: NameValidation) -> Result<Vec<RelabelRule>, String> {
    match rules {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, rule)| RelabelRule::parse(rule, names).map_err(|e| format!("rule {i}: {e}")))
            .collect(),
        _ => Err("must be a list of relabel rules".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> LabelMap {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn run(rules: serde_json::Value, input: &[(&str, &str)]) -> Option<LabelMap> {
        let rules = parse_rules(&rules, NameValidation::Utf8).unwrap();
        let mut l = labels(input);
        relabel(&mut l, &rules).then_some(l)
    }

    #[test]
    fn every_action() {
        let base = [("__address__", "host:9100"), ("env", "Prod"), ("__meta_x", "a")];
        let out = run(
            json!([{"source_labels": ["__address__"], "regex": "([^:]+):.*", "target_label": "host"}]),
            &base,
        )
        .unwrap();
        assert_eq!(out["host"], "host");
        assert!(run(json!([{"action": "keep", "source_labels": ["env"], "regex": "dev"}]), &base).is_none());
        assert!(run(json!([{"action": "Drop", "source_labels": ["env"], "regex": "Prod"}]), &base).is_none());
        assert!(
            run(json!([{"action": "keepequal", "source_labels": ["env"], "target_label": "env"}]), &base)
                .is_some()
        );
        assert!(
            run(json!([{"action": "dropequal", "source_labels": ["env"], "target_label": "env"}]), &base)
                .is_none()
        );
        let out = run(
            json!([{"action": "lowercase", "source_labels": ["env"], "target_label": "env_l"},
                                {"action": "uppercase", "source_labels": ["env"], "target_label": "env_u"}]),
            &base,
        )
        .unwrap();
        assert_eq!((out["env_l"].as_str(), out["env_u"].as_str()), ("prod", "PROD"));
        let out = run(json!([{"action": "hashmod", "source_labels": ["__address__"], "modulus": 10, "target_label": "shard"}]), &base).unwrap();
        assert!(out["shard"].parse::<u64>().unwrap() < 10);
        let out = run(json!([{"action": "labelmap", "regex": "__meta_(.+)", "replacement": "m_$1"}]), &base)
            .unwrap();
        assert_eq!(out["m_x"], "a");
        let out = run(json!([{"action": "labeldrop", "regex": "__meta_.*"}]), &base).unwrap();
        assert!(!out.contains_key("__meta_x"));
        let out = run(json!([{"action": "labelkeep", "regex": "__.*"}]), &base).unwrap();
        assert!(!out.contains_key("env") && out.contains_key("__meta_x"));
    }

    #[test]
    fn replace_edge_cases() {
        // No match: nothing happens. Empty result: the target is deleted.
        let base = [("a", "x"), ("t", "old")];
        assert_eq!(
            run(json!([{"source_labels": ["a"], "regex": "y", "target_label": "t"}]), &base).unwrap()["t"],
            "old"
        );
        assert!(
            !run(json!([{"source_labels": ["a"], "target_label": "t", "replacement": ""}]), &base)
                .unwrap()
                .contains_key("t")
        );
        // Target label from the match; an invalid expanded name does nothing.
        let out = run(
            json!([{"source_labels": ["a"], "regex": "(.*)", "target_label": "l_$1", "replacement": "v"}]),
            &base,
        )
        .unwrap();
        assert_eq!(out["l_x"], "v");
        let to_name =
            json!([{"source_labels": ["a"], "regex": "(.*)", "target_label": "$1", "replacement": "v"}]);
        let out = run(to_name.clone(), &[("a", "9lives")]).unwrap();
        assert_eq!(out["9lives"], "v", "any non-empty name is valid under UTF-8 validation");
        let out = run(to_name, &[("b", "1")]).unwrap();
        assert_eq!(out, labels(&[("b", "1")]), "an empty expanded name is not a label name");
        // Missing source labels join as empty strings.
        let out =
            run(json!([{"source_labels": ["nope", "a"], "separator": "/", "target_label": "j"}]), &base)
                .unwrap();
        assert_eq!(out["j"], "/x");
    }

    #[test]
    fn invalid_rules_are_refused_like_prometheus() {
        for (rule, message) in [
            (
                json!({"action": "hashmod", "source_labels": ["a"], "target_label": "t"}),
                "requires non-zero modulus",
            ),
            (json!({"action": "replace", "source_labels": ["a"]}), "requires 'target_label' value"),
            (
                json!({"action": "lowercase", "source_labels": ["a"], "target_label": "t", "replacement": "x"}),
                "'replacement' can not be set",
            ),
            (
                json!({"action": "keepequal", "source_labels": ["a"], "target_label": "t", "regex": "(.*)"}),
                "requires only 'source_labels'",
            ),
            (json!({"action": "labeldrop", "regex": "a", "source_labels": ["a"]}), "requires only 'regex'"),
            (json!({"action": "labelmap", "regex": "a", "replacement": ""}), "invalid 'replacement'"),
            (json!({"action": "explode"}), "unknown relabel action"),
            (json!({"action": ""}), "relabel action cannot be empty"),
            (json!({"regex": "("}), "invalid regex"),
            (json!({"target_label": "t", "colour": "red"}), "unknown field"),
        ] {
            let err = parse_rules(&json!([{"action": "keep"}, rule]), NameValidation::Utf8).unwrap_err();
            assert!(err.starts_with("rule 1: ") && err.contains(message), "{err} should contain {message}");
        }
    }

    #[test]
    fn names_follow_the_validation_scheme() {
        // Prometheus 3 accepts any UTF-8 name by default; `legacy` keeps the classic charset.
        let utf8_only = [
            json!({"action": "labelmap", "regex": "(.*)", "replacement": "bad-name_$1"}),
            json!({"action": "replace", "target_label": "bad-name"}),
            json!({"action": "replace", "target_label": "${1}.é"}),
            json!({"source_labels": ["bad-name"], "target_label": "t"}),
            json!({"action": "hashmod", "source_labels": ["a"], "target_label": "a.b", "modulus": 2}),
        ];
        for rule in utf8_only {
            assert!(parse_rules(&json!([rule]), NameValidation::Utf8).is_ok(), "utf8 refuses {rule}");
            let err = parse_rules(&json!([rule]), NameValidation::Legacy).unwrap_err();
            assert!(err.contains("invalid") || err.contains("not a valid label name"), "{err}");
        }
        // At run time too: an expanded target is written only when valid.
        let rule =
            json!([{"source_labels": ["a"], "regex": "(.*)", "target_label": "x_$1", "replacement": "v"}]);
        for (names, kept) in [(NameValidation::Utf8, true), (NameValidation::Legacy, false)] {
            let rules = parse_rules(&rule, names).unwrap();
            let mut l = labels(&[("a", "b-c")]);
            assert!(relabel(&mut l, &rules));
            assert_eq!(l.contains_key("x_b-c"), kept, "{names:?}");
        }
    }
}
