//! Prometheus target groups (`file_sd` / `http_sd` format).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::allocation::{Labels, Target, identity_hash};

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

/// One target per address of every group, in order: group labels plus
/// `__address__` (a target's own address wins over a group label of that name).
/// Identity is the reference's unfiltered identity: the labels without
/// `__meta_*`, and the job.
pub fn targets_from_groups(job: &str, groups: &[TargetGroup]) -> Vec<Target> {
    let job: Arc<str> = Arc::from(job);
    groups
        .iter()
        .flat_map(|group| {
            let job = job.clone();
            group.targets.iter().map(move |address| {
                let mut pairs: Vec<(String, String)> =
                    group.labels.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
                pairs.push(("__address__".to_string(), address.clone()));
                let labels = Labels::new(pairs);
                let identity = identity_hash(labels.iter(), &job);
                Target::new(job.clone(), labels, identity)
            })
        })
        .collect()
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
        let targets = targets_from_groups("job", &groups);
        let addresses: Vec<&str> = targets.iter().map(|t| t.address.as_str()).collect();
        assert_eq!(addresses, ["a:1", "b:2", "c:3"]);
        assert_eq!(targets[0].labels.get("env"), Some("prod"));
        assert_ne!(targets[0].identity, targets[1].identity);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = parse_target_groups(r#"[{"target": ["a:1"]}]"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `target`"), "{err}");
        let err = parse_target_groups(r#"[{"targets": ["a:1", " "]}]"#).unwrap_err().to_string();
        assert!(err.contains("group 0: target 1"), "{err}");
    }
}
