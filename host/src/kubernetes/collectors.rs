//! Collector discovery: the collector pods in `collector_namespace` that
//! `collector_selector` selects, as the reference's collector watcher finds
//! them (§4 of the spec), plus the terminating-pod fix.
//!
//! Owns the selector translation, the health rule and the loop that
//! publishes collector sets. It must not touch the allocator: it sends each
//! new set through a callback, and only when the set changed.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff;
use serde_json::Value;

use super::watch::SharedWatch;
use crate::allocation::Collector;

/// Changes arriving within this window are published together.
pub const COLLECTOR_DEBOUNCE: Duration = Duration::from_millis(250);

/// A `collector_selector` that cannot be expressed as a label selector.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("`collector_selector`: {0}")]
pub struct SelectorError(String);

/// The `labelSelector` query for a Kubernetes LabelSelector object
/// (`matchLabels` / `matchExpressions`, or their lower-case spellings as
/// the reference accepts them; camelCase wins). `None` selects everything:
/// the reference's quirk that a nil or empty selector selects every pod.
pub fn label_selector(selector: Option<&Value>) -> Result<Option<String>, SelectorError> {
    let Some(selector) = selector.filter(|s| !s.is_null()) else { return Ok(None) };
    let object = selector.as_object().ok_or_else(|| SelectorError("must be a mapping".into()))?;
    let field = |camel: &str| {
        object.get(camel).or_else(|| object.get(&camel.to_lowercase())).filter(|v| !v.is_null())
    };
    let mut requirements = Vec::new();
    if let Some(labels) = field("matchLabels") {
        let labels =
            labels.as_object().ok_or_else(|| SelectorError("matchLabels must be a mapping".into()))?;
        let mut pairs: Vec<_> = labels.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in pairs {
            let value =
                value.as_str().ok_or_else(|| SelectorError(format!("matchLabels.{key} must be a string")))?;
            requirements.push(format!("{key}={value}"));
        }
    }
    if let Some(expressions) = field("matchExpressions") {
        let expressions =
            expressions.as_array().ok_or_else(|| SelectorError("matchExpressions must be a list".into()))?;
        for (i, expression) in expressions.iter().enumerate() {
            let bad = |what: &str| SelectorError(format!("matchExpressions[{i}]: {what}"));
            let key = expression.get("key").and_then(Value::as_str).ok_or_else(|| bad("no key"))?;
            let operator =
                expression.get("operator").and_then(Value::as_str).ok_or_else(|| bad("no operator"))?;
            let values: Vec<&str> = expression
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            requirements.push(match operator {
                "In" | "NotIn" if values.is_empty() => return Err(bad("In and NotIn need values")),
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                other => return Err(bad(&format!("unknown operator {other:?}"))),
            });
        }
    }
    Ok(Some(requirements.join(",")).filter(|s| !s.is_empty()))
}

/// The collectors among `pods` at time `now`, sorted by id, and when the
/// answer can next change without a pod changing (a not-ready pod's grace
/// period running out).
pub fn collectors_from_pods(
    pods: &[Arc<Pod>],
    grace: Duration,
    now: Timestamp,
) -> (Vec<Collector>, Option<Duration>) {
    let mut collectors = Vec::new();
    let mut recheck: Option<Duration> = None;
    for pod in pods {
        let Some(name) = pod.metadata.name.as_deref() else { continue };
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
        else {
            continue;
        };
        // Terminating pods are gone for allocation even while they still
        // report Ready (the reference fixed this after its snapshot, #5594).
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if !grace.is_zero()
            && let Some(since) = unhealthy_since(pod)
        {
            // A transition in the future (clock skew) counts as just now.
            let age = Duration::try_from(now.duration_since(since)).unwrap_or_default();
            if age > grace {
                continue;
            }
            let left = grace - age + Duration::from_millis(1);
            recheck = Some(recheck.map_or(left, |r| r.min(left)));
        }
        collectors.push(Collector::new(name, Some(node)));
    }
    collectors.sort_by(|a, b| a.id.cmp(&b.id));
    (collectors, recheck)
}

/// When `pod` became unhealthy by the reference's rule, if it is: not
/// Running since its start, or a Ready condition not True since its last
/// transition. The earliest such time counts.
fn unhealthy_since(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?;
    let mut since: Option<Timestamp> = None;
    let mut note = |t: Timestamp| since = Some(since.map_or(t, |s| s.min(t)));
    if status.phase.as_deref() != Some("Running")
        && let Some(start) = &status.start_time
    {
        note(start.0);
    }
    for condition in status.conditions.iter().flatten() {
        if condition.type_ == "Ready"
            && condition.status != "True"
            && let Some(transition) = &condition.last_transition_time
        {
            note(transition.0);
        }
    }
    since
}

/// Publishes the collector set of `pods` through `publish` whenever it
/// changes, until `publish` returns false. Waits for the first complete
/// list; a re-list after a watch error never shows as an empty set because
/// the store only swaps in complete lists.
pub async fn run_collector_discovery(
    pods: Arc<SharedWatch<Pod>>,
    grace: Duration,
    mut publish: impl FnMut(Vec<Collector>) -> bool,
) {
    let mut changes = pods.changes();
    if changes.wait_for(|n| *n > 0).await.is_err() {
        return;
    }
    let mut last: Option<Vec<Collector>> = None;
    loop {
        changes.mark_unchanged();
        let (collectors, recheck) = collectors_from_pods(&pods.store().state(), grace, Timestamp::now());
        let changed = last.as_ref() != Some(&collectors);
        if changed {
            tracing::info!(
                collectors = collectors.len(),
                ids = ?collectors.iter().map(|c| c.id.as_ref()).collect::<Vec<_>>(),
                "collectors discovered"
            );
            last = Some(collectors.clone());
            if !publish(collectors) {
                return;
            }
        }
        let recheck = async {
            match recheck {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                // Let a burst of pod events settle into one set.
                tokio::time::sleep(COLLECTOR_DEBOUNCE).await;
            }
            _ = recheck => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn selectors_become_label_selector_queries() {
        assert_eq!(label_selector(None), Ok(None));
        assert_eq!(label_selector(Some(&json!({}))), Ok(None));
        assert_eq!(label_selector(Some(&json!({"matchLabels": null}))), Ok(None));
        let selector = json!({
            "matchlabels": {"ignored": "x"},
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["x", "y"]},
                {"key": "zone", "operator": "NotIn", "values": ["z"]},
                {"key": "has", "operator": "Exists"},
                {"key": "not", "operator": "DoesNotExist"},
            ],
        });
        assert_eq!(
            label_selector(Some(&selector)).unwrap().as_deref(),
            Some("a=1,b=2,tier in (x,y),zone notin (z),has,!not")
        );
        assert_eq!(
            label_selector(Some(&json!({"matchlabels": {"a": "1"}}))).unwrap().as_deref(),
            Some("a=1")
        );
        let err = label_selector(Some(&json!({"matchExpressions": [{"key": "a", "operator": "Near"}]})))
            .unwrap_err();
        assert!(err.to_string().contains("matchExpressions[0]"), "{err}");
    }

    #[test]
    fn the_health_rule_follows_the_reference_with_terminating_pods_excluded() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let ready = |name: &str, node: Option<&str>| {
            json!({"metadata": {"name": name}, "spec": {"containers": [], "nodeName": node},
                   "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
        };
        let not_ready = |name: &str, since: &str| {
            json!({"metadata": {"name": name}, "spec": {"containers": [], "nodeName": "n1"},
                   "status": {"phase": "Running",
                              "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": since}]}})
        };
        let mut terminating = ready("terminating", Some("n1"));
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:09:00Z");
        let pending = json!({"metadata": {"name": "pending-old"}, "spec": {"containers": [], "nodeName": "n2"},
                             "status": {"phase": "Pending", "startTime": "2026-01-01T00:00:00Z"}});
        let pods: Vec<Arc<Pod>> = [
            ready("b", Some("n2")),
            ready("a", Some("n1")),
            ready("unscheduled", None),
            terminating,
            not_ready("recent", "2026-01-01T00:09:50Z"),
            not_ready("stale", "2026-01-01T00:05:00Z"),
            pending,
        ]
        .into_iter()
        .map(pod)
        .collect();
        let (collectors, recheck) = collectors_from_pods(&pods, Duration::from_secs(30), now);
        let ids: Vec<(&str, Option<&str>)> =
            collectors.iter().map(|c| (c.id.as_ref(), c.node.as_deref())).collect();
        assert_eq!(ids, [("a", Some("n1")), ("b", Some("n2")), ("recent", Some("n1"))]);
        // "recent" has 20 s of grace left.
        let recheck = recheck.unwrap();
        assert!(recheck > Duration::from_secs(19) && recheck <= Duration::from_secs(21), "{recheck:?}");
        // A zero grace period disables health filtering (not the other rules).
        let (collectors, recheck) = collectors_from_pods(&pods, Duration::ZERO, now);
        assert_eq!(collectors.len(), 5);
        assert_eq!(recheck, None);
    }
}
