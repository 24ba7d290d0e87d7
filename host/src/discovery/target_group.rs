//! Prometheus target groups (`file_sd` / `http_sd` format).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::allocation::{Labels, Target, identity_hash};
use crate::config::ScrapeConfig;
use crate::relabel::{LabelMap, RelabelRule, relabel};

/// `{"targets": ["host:port", ...], "labels": {"name": "value", ...}}`
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetGroupError {
    #[error("not a list of target groups ({{\"targets\": [...], \"labels\": {{...}}}}): {0}")]
    Json(#[from] serde_json::Error),
    #[error("target group {group}: target {target} is an empty address")]
    EmptyAddress { group: usize, target: usize },
}

/// Parses a JSON list of target groups.
pub fn parse_target_groups(text: &str) -> Result<Vec<TargetGroup>, TargetGroupError> {
    let groups: Vec<TargetGroup> = serde_json::from_str(text)?;
    for (g, group) in groups.iter().enumerate() {
        if let Some(t) = group.targets.iter().position(|t| t.trim().is_empty()) {
            return Err(TargetGroupError::EmptyAddress { group: g, target: t });
        }
    }
    Ok(groups)
}

/// Name of the label the reference sets before a job's rules so that
/// prometheus-operator's `$(SHARD)` keep rule (`regex: $(SHARD);|.+;.+` over
/// `[__tmp_hash, __tmp_disable_sharding]`) keeps every target here; collectors
/// substitute `$(SHARD)` themselves.
const DISABLE_SHARDING: &str = "__tmp_disable_sharding";

/// Turns one job's target groups into targets, as the reference allocator
/// does: merged labels served as discovered, relabel filtering, identity.
pub struct JobProcessor {
    job: Arc<str>,
    seeds: Vec<(String, String)>,
    /// The job's rules wrapped in the sharding neutraliser; `None` when
    /// filtering is off.
    rules: Option<Vec<RelabelRule>>,
}

impl JobProcessor {
    /// With `filter` (`filter_strategy: relabel-config`), targets the job's
    /// `relabel_configs` drop are left out and identity is computed on the
    /// relabeled labels; otherwise on the discovered labels.
    pub fn new(scrape: &ScrapeConfig, filter: bool) -> JobProcessor {
        let rules = filter.then(|| {
            let mut rules = Vec::with_capacity(scrape.relabel_rules.len() + 2);
            rules.push(
                RelabelRule::parse(
                    &serde_json::json!({"target_label": DISABLE_SHARDING, "replacement": "true"}),
                )
                .expect("a valid rule"),
            );
            rules.extend(scrape.relabel_rules.iter().cloned());
            rules.push(
                RelabelRule::parse(&serde_json::json!({"action": "labeldrop", "regex": DISABLE_SHARDING}))
                    .expect("a valid rule"),
            );
            rules
        });
        JobProcessor { job: Arc::from(scrape.job_name.as_str()), seeds: scrape.seed_labels(), rules }
    }

    /// No rules and no seeds: identity over the discovered labels.
    pub fn unfiltered(job: &str) -> JobProcessor {
        JobProcessor { job: Arc::from(job), seeds: Vec::new(), rules: None }
    }

    /// One target per address of every group, in order, minus those the rules
    /// drop: group labels plus `__address__` (a target's own address wins over
    /// a group label of that name). Equal identities are left for the
    /// allocator to collapse.
    pub fn targets(&self, groups: &[TargetGroup]) -> Vec<Target> {
        let mut targets = Vec::new();
        for group in groups {
            for address in &group.targets {
                let mut pairs: Vec<(String, String)> =
                    group.labels.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
                pairs.push(("__address__".to_string(), address.clone()));
                let labels = Labels::new(pairs);
                let identity = match &self.rules {
                    None => identity_hash(labels.iter(), &self.job),
                    Some(rules) => {
                        let mut relabeled: LabelMap =
                            labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
                        for (name, value) in &self.seeds {
                            relabeled.entry(name.clone()).or_insert_with(|| value.clone());
                        }
                        if !relabel(&mut relabeled, rules) {
                            continue;
                        }
                        identity_hash(relabeled.iter().map(|(n, v)| (n.as_str(), v.as_str())), &self.job)
                    }
                };
                targets.push(Target::new(self.job.clone(), labels, identity));
            }
        }
        targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_become_targets_in_order() {
        let groups = parse_target_groups(
            r#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod", "__address__": "ignored"}},
                {"targets": ["c:3"]}]"#,
        )
        .unwrap();
        let targets = JobProcessor::unfiltered("job").targets(&groups);
        let addresses: Vec<&str> = targets.iter().map(|t| t.address.as_str()).collect();
        assert_eq!(addresses, ["a:1", "b:2", "c:3"]);
        assert_eq!(targets[0].labels.get("env"), Some("prod"));
        assert_ne!(targets[0].identity, targets[1].identity);
    }

    fn job(config: serde_json::Value) -> ScrapeConfig {
        crate::config::parse_prometheus_config(&serde_json::json!({ "scrape_configs": [config] }))
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    fn group(targets: &[&str], labels: &[(&str, &str)]) -> TargetGroup {
        TargetGroup {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            labels: labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn relabel_filtering_drops_what_the_rules_drop_and_serves_discovered_labels() {
        let scrape = job(serde_json::json!({"job_name": "j", "relabel_configs": [
            {"action": "keep", "source_labels": ["__meta_role"], "regex": "web"},
            {"source_labels": ["__meta_pod"], "target_label": "pod"}
        ]}));
        let groups = [
            group(&["a:1", "b:1"], &[("__meta_role", "web"), ("__meta_pod", "p")]),
            group(&["c:1"], &[("__meta_role", "db")]),
        ];
        let targets = JobProcessor::new(&scrape, true).targets(&groups);
        assert_eq!(targets.iter().map(|t| t.address.as_str()).collect::<Vec<_>>(), ["a:1", "b:1"]);
        // Served labels are the discovered ones: meta labels in, seeds and relabeled labels out.
        let served: Vec<(&str, &str)> = targets[0].labels.iter().collect();
        assert_eq!(served, [("__address__", "a:1"), ("__meta_pod", "p"), ("__meta_role", "web")]);
        // Without filtering every target is kept.
        assert_eq!(JobProcessor::new(&scrape, false).targets(&groups).len(), 3);
    }

    #[test]
    fn identity_follows_the_relabeled_labels_and_the_job() {
        let rewrite = job(serde_json::json!({"job_name": "j", "relabel_configs": [
            {"source_labels": ["__address__"], "regex": "10\\.0\\.0\\.[0-9]+:9100", "target_label": "__address__", "replacement": "exporter:9100"},
            {"action": "labeldrop", "regex": "__meta_.*"}
        ]}));
        let groups = [group(&["10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:80"], &[("__meta_pod", "x")])];
        let t = JobProcessor::new(&rewrite, true).targets(&groups);
        assert_eq!(t[0].identity, t[1].identity, "an address rewrite to the same labels collapses");
        assert_ne!(t[0].identity, t[2].identity);
        assert_eq!(t[0].address, "10.0.0.1:9100", "the served address is the discovered one");
        // The same address in two jobs is two targets.
        let other =
            job(serde_json::json!({"job_name": "k", "relabel_configs": rewrite.printed["relabel_configs"]}));
        let u = JobProcessor::new(&other, true).targets(&groups);
        assert_ne!(t[0].identity, u[0].identity);
        // The same address with distinct paths is two targets.
        let paths =
            [group(&["h:1"], &[("__metrics_path__", "/a")]), group(&["h:1"], &[("__metrics_path__", "/b")])];
        let p = JobProcessor::new(&job(serde_json::json!({"job_name": "j"})), true).targets(&paths);
        assert_ne!(p[0].identity, p[1].identity);
        // Meta labels never count: a renamed pod keeps its identity.
        let renamed = [group(&["10.0.0.1:9100"], &[("__meta_pod", "y")])];
        assert_eq!(JobProcessor::new(&rewrite, true).targets(&renamed)[0].identity, t[0].identity);
    }

    #[test]
    fn prometheus_operator_sharding_keeps_every_target() {
        let scrape = job(serde_json::json!({"job_name": "serviceMonitor/ns/app/0", "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__tmp_hash"},
            {"action": "hashmod", "source_labels": ["__tmp_hash"], "target_label": "__tmp_hash", "modulus": 1},
            {"action": "keep", "source_labels": ["__tmp_hash", "__tmp_disable_sharding"], "regex": "$(SHARD);|.+;.+"}
        ]}));
        let targets = JobProcessor::new(&scrape, true).targets(&[group(&["a:1", "b:2"], &[])]);
        assert_eq!(targets.len(), 2, "the `$(SHARD)` keep rule is neutralised");
    }

    #[test]
    fn errors_name_the_problem() {
        let err = parse_target_groups(r#"[{"target": ["a:1"]}]"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `target`"), "{err}");
        let err = parse_target_groups(r#"[{"targets": ["a:1", " "]}]"#).unwrap_err().to_string();
        assert!(err.contains("group 0: target 1"), "{err}");
    }
}
