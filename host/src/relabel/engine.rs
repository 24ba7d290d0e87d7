//! Applying rules to a label set, with Prometheus's semantics.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::case::{go_lowercase, go_uppercase};
use super::prepared::{PreparedRules, is_copy};
use super::rule::{Action, RelabelRule};
use crate::label_order::compare_names;

/// Labels by name; an empty value means absent, as in Prometheus.
pub type LabelMap = BTreeMap<String, String>;

/// A label set being relabeled: sorted by name, names unique, values never
/// empty (an empty value is no label at all in Prometheus).
///
/// It borrows the discovered strings and owns only what rules write, so
/// relabeling a target whose rules only read labels allocates nothing; one
/// set is reused for every target of a job.
#[derive(Debug, Default)]
pub struct LabelSet<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Joined source values of the rule being applied.
    joined: String,
}

impl<'a> LabelSet<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the set, keeping its memory for the next target.
    pub fn clear(&mut self) {
        self.pairs.clear();
    }

    /// Fills an empty set from labels sorted by name with unique names.
    /// Empty values are skipped.
    pub fn extend_sorted(&mut self, sorted: impl IntoIterator<Item = (&'a str, &'a str)>) {
        debug_assert!(self.pairs.is_empty());
        self.pairs.extend(
            sorted.into_iter().filter(|(_, v)| !v.is_empty()).map(|(n, v)| (Cow::from(n), Cow::from(v))),
        );
        debug_assert!(self.pairs.windows(2).all(|w| w[0].0 < w[1].0), "input must be sorted and unique");
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).ok().map(|i| &*self.pairs[i].1)
    }

    /// Sets `name`; an empty value deletes it, as Prometheus's label builder does.
    pub fn set(&mut self, name: Cow<'a, str>, value: Cow<'a, str>) {
        match (self.position(&name), value.is_empty()) {
            (Ok(i), true) => {
                self.pairs.remove(i);
            }
            (Ok(i), false) => self.pairs[i].1 = value,
            (Err(i), false) => self.pairs.insert(i, (name, value)),
            (Err(_), true) => {}
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.position(name) {
            self.pairs.remove(i);
        }
    }

    /// In name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (&**n, &**v))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.pairs.binary_search_by(|(n, _)| compare_names(n, name))
    }
}

/// The rule's source values joined by its separator; borrowed from the set
/// when there is a single source, else built in `joined`.
fn source_value<'s>(
    pairs: &'s [(Cow<'_, str>, Cow<'_, str>)],
    joined: &'s mut String,
    rule: &RelabelRule,
) -> &'s str {
    let find =
        |name: &str| pairs.binary_search_by(|(n, _)| compare_names(n, name)).ok().map(|i| &*pairs[i].1);
    if let [only] = rule.source_labels.as_slice() {
        return find(only).unwrap_or("");
    }
    joined.clear();
    for (i, name) in rule.source_labels.iter().enumerate() {
        if i > 0 {
            joined.push_str(&rule.separator);
        }
        joined.push_str(find(name).unwrap_or(""));
    }
    joined
}

/// Applies `rules` in order. Returns `false` when a rule drops the target;
/// `labels` then holds whatever the rules had made of it so far.
pub fn relabel(labels: &mut LabelMap, rules: &[RelabelRule]) -> bool {
    if let Some(prepared) = PreparedRules::new(rules) {
        return prepared.relabel_map(labels);
    }
    let mut set = LabelSet::new();
    set.extend_sorted(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let kept = relabel_set(&mut set, rules);
    let result: LabelMap = set.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    *labels = result;
    kept
}

/// The value a `replace` rule writes when it only copies its one source label
/// (`regex: (.*)`, `replacement: $1`, a literal target): the most common rule
/// shape, answered by sharing the source value. `None` for any other rule.
fn copied_source<'a>(labels: &LabelSet<'a>, rule: &RelabelRule) -> Option<Cow<'a, str>> {
    if !is_copy(rule) {
        return None;
    }
    let source = &rule.source_labels[0];
    Some(labels.position(source).map_or(Cow::Borrowed(""), |i| labels.pairs[i].1.clone()))
}

/// [`relabel`] over a borrowed [`LabelSet`].
pub fn relabel_set<'a>(labels: &mut LabelSet<'a>, rules: &'a [RelabelRule]) -> bool {
    rules.iter().all(|rule| apply(labels, rule))
}

fn apply<'a>(labels: &mut LabelSet<'a>, rule: &'a RelabelRule) -> bool {
    if rule.action == Action::Replace
        && let Some(copied) = copied_source(labels, rule)
    {
        labels.set(Cow::Borrowed(&rule.target_label), copied);
        return true;
    }
    // Rules that only read decide here, on the borrowed source value.
    let write: Option<(Cow<'a, str>, String)> = {
        let value = source_value(&labels.pairs, &mut labels.joined, rule);
        let get = |name: &str| {
            labels.pairs.binary_search_by(|(n, _)| compare_names(n, name)).ok().map(|i| &*labels.pairs[i].1)
        };
        let target = || Cow::Borrowed(rule.target_label.as_str());
        match rule.action {
            Action::Drop => return !rule.regex.is_match(value),
            Action::Keep => return rule.regex.is_match(value),
            Action::DropEqual | Action::KeepEqual => {
                let equal = get(&rule.target_label).unwrap_or("") == value;
                return equal == (rule.action == Action::KeepEqual);
            }
            Action::Replace => {
                let Some(groups) = rule.regex.captures(value) else { return true };
                let name = if rule.target_label.contains('$') {
                    let mut name = String::new();
                    groups.expand(&rule.target_label, &mut name);
                    if !rule.names.is_valid(&name) {
                        return true;
                    }
                    Cow::Owned(name)
                } else {
                    target()
                };
                let mut replaced = String::new();
                groups.expand(&rule.replacement, &mut replaced);
                Some((name, replaced))
            }
            Action::Lowercase => Some((target(), go_lowercase(value))),
            Action::Uppercase => Some((target(), go_uppercase(value))),
            Action::HashMod => {
                let digest = md5::compute(value.as_bytes());
                let tail = u64::from_be_bytes(digest.0[8..16].try_into().expect("8 bytes"));
                Some((target(), (tail % rule.modulus).to_string()))
            }
            Action::LabelMap | Action::LabelDrop | Action::LabelKeep => None,
        }
    };
    match (write, rule.action) {
        (Some((name, value)), _) => labels.set(name, Cow::Owned(value)),
        (None, Action::LabelMap) => {
            let renamed: Vec<(String, Cow<'a, str>)> = labels
                .pairs
                .iter()
                .filter_map(|(name, v)| rule.regex.expand(&rule.replacement, name).map(|n| (n, v.clone())))
                .collect();
            for (name, value) in renamed {
                labels.set(Cow::Owned(name), value);
            }
        }
        (None, Action::LabelDrop) => labels.pairs.retain(|(name, _)| !rule.regex.is_match(name)),
        (None, Action::LabelKeep) => labels.pairs.retain(|(name, _)| rule.regex.is_match(name)),
        (None, _) => unreachable!("every writing action produced a label"),
    }
    true
}
