//! Applying rules to a label set, with Prometheus's semantics.

use std::collections::BTreeMap;

use super::rule::{Action, RelabelRule, is_valid_label_name};

/// Labels by name; an empty value means absent, as in Prometheus.
pub type LabelMap = BTreeMap<String, String>;

/// Applies `rules` in order. Returns `false` when a rule drops the target;
/// `labels` then holds whatever the rules had made of it so far.
pub fn relabel(labels: &mut LabelMap, rules: &[RelabelRule]) -> bool {
    // An empty value is no label at all (Prometheus drops them from label sets).
    labels.retain(|_, value| !value.is_empty());
    rules.iter().all(|rule| apply(labels, rule))
}

fn apply(labels: &mut LabelMap, rule: &RelabelRule) -> bool {
    let value = rule
        .source_labels
        .iter()
        .map(|name| labels.get(name).map(String::as_str).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(&rule.separator);
    let target = || labels.get(&rule.target_label).map(String::as_str).unwrap_or("");
    match rule.action {
        Action::Drop => return !rule.regex.is_match(&value),
        Action::Keep => return rule.regex.is_match(&value),
        Action::DropEqual => return target() != value,
        Action::KeepEqual => return target() == value,
        Action::Replace => {
            let Some(name) = rule.regex.expand(&rule.target_label, &value) else { return true };
            if !is_valid_label_name(&name) {
                return true;
            }
            let replaced = rule.regex.expand(&rule.replacement, &value).unwrap_or_default();
            set(labels, name, replaced);
        }
        Action::Lowercase => set(labels, rule.target_label.clone(), value.to_lowercase()),
        Action::Uppercase => set(labels, rule.target_label.clone(), value.to_uppercase()),
        Action::HashMod => {
            let digest = md5::compute(value.as_bytes());
            let tail = u64::from_be_bytes(digest.0[8..16].try_into().expect("8 bytes"));
            set(labels, rule.target_label.clone(), (tail % rule.modulus).to_string());
        }
        Action::LabelMap => {
            let renamed: Vec<(String, String)> = labels
                .iter()
                .filter_map(|(name, v)| rule.regex.expand(&rule.replacement, name).map(|n| (n, v.clone())))
                .collect();
            for (name, v) in renamed {
                set(labels, name, v);
            }
        }
        Action::LabelDrop => labels.retain(|name, _| !rule.regex.is_match(name)),
        Action::LabelKeep => labels.retain(|name, _| rule.regex.is_match(name)),
    }
    true
}

/// Prometheus's builder treats setting an empty value as deleting.
fn set(labels: &mut LabelMap, name: String, value: String) {
    if value.is_empty() {
        labels.remove(&name);
    } else {
        labels.insert(name, value);
    }
}
