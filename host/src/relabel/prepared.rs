//! A job's rules prepared against the label names they spell out.
//!
//! Most rule lists read and write only names written in the rules: every
//! action but `labelmap`, `labelkeep`, a `labeldrop` whose regex is more than
//! a name, and a `replace` whose target is a template. Such a list is
//! prepared once: each name gets a slot, and relabeling a target is indexing
//! into its slots — no label set is built, searched or shifted per rule.
//! Lists that need every label run on the general engine
//! ([`relabel_set`](super::relabel_set)); the fuzz checks hold the two to the
//! same results.
//!
//! Owns only the rule program; filling the slots from discovered labels is
//! the caller's (it knows the label layout), as is what the result is for.

use std::borrow::Cow;

use super::case::{go_lowercase, go_uppercase};
use super::engine::LabelMap;
use super::rule::{Action, RelabelRule};
use crate::label_order::{LabelName, intern};

/// A slot index: the position of a name in [`PreparedRules::names`].
type Slot = u32;

/// One step as scheduling sees it: the slots it reads, the slot it may write.
pub type StepShape = (Vec<Slot>, Option<Slot>);

/// `hashmod` results below this are answered from a table instead of
/// formatting a number per target.
const HASHMOD_TABLE: u64 = 1024;

/// Rules prepared against the names they use; see the module docs.
#[derive(Debug)]
pub struct PreparedRules {
    rules: Vec<RelabelRule>,
    /// Every name a rule reads or writes, sorted and unique.
    names: Vec<LabelName>,
    steps: Vec<Step>,
    /// "0", "1", …: the `hashmod` results that can be borrowed.
    numbers: Vec<String>,
}

#[derive(Debug)]
struct Step {
    /// Index into `rules`.
    rule: usize,
    sources: Vec<Slot>,
    op: Op,
}

#[derive(Debug, PartialEq)]
enum Op {
    /// `replace` of one source by `(.*)` into `$1`: the target shares the
    /// source's value (the most common rule).
    Copy {
        to: Slot,
    },
    Replace {
        to: Slot,
    },
    Keep,
    Drop,
    /// `keep` (or `drop`, `keep: false`) of one source by a literal regex:
    /// a string comparison, with no automaton and no cached decision.
    Equals {
        literal: Box<str>,
        keep: bool,
    },
    KeepEqual {
        target: Slot,
    },
    DropEqual {
        target: Slot,
    },
    HashMod {
        to: Slot,
    },
    Lowercase {
        to: Slot,
    },
    Uppercase {
        to: Slot,
    },
    /// `labeldrop` whose regex is one name.
    Delete {
        slot: Slot,
    },
}

/// The steps of a rule list split by what they read (see
/// [`PreparedRules::schedule`]), each part in rule order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Schedule {
    pub shared: Vec<usize>,
    pub per_target: Vec<usize>,
    /// Per slot, whether targets may differ in it once the rules ran.
    pub varying: Vec<bool>,
}

impl Step {
    /// The slots the step reads.
    fn reads(&self) -> impl Iterator<Item = Slot> + Clone + '_ {
        self.sources.iter().copied().chain(self.op.compared())
    }
}

impl Op {
    /// The slot the step may write.
    fn written(&self) -> Option<Slot> {
        match *self {
            Op::Copy { to }
            | Op::Replace { to }
            | Op::HashMod { to }
            | Op::Lowercase { to }
            | Op::Uppercase { to } => Some(to),
            Op::Delete { slot } => Some(slot),
            Op::Keep | Op::Drop | Op::Equals { .. } | Op::KeepEqual { .. } | Op::DropEqual { .. } => None,
        }
    }

    /// The slot the step compares its sources with, besides reading them.
    fn compared(&self) -> Option<Slot> {
        match *self {
            Op::KeepEqual { target } | Op::DropEqual { target } => Some(target),
            _ => None,
        }
    }
}

/// The values of one target's slots, by slot; empty means absent, as in
/// Prometheus. Reused from target to target.
#[derive(Debug, Default)]
pub struct SlotValues<'a> {
    pub values: Vec<Cow<'a, str>>,
    /// Joined source values of the rule being run.
    joined: String,
    pub decisions: Decisions,
}

/// Per step, the last value a `keep`/`drop` regex decided and its answer.
/// Targets of one job mostly present the same values to these rules (a
/// service name, a port name, the `$(SHARD)` rule's input), and comparing
/// strings is far cheaper than running the automaton. Owns no borrowed
/// data, so a caller keeps one per rule list across groups.
#[derive(Debug, Default)]
pub struct Decisions(Vec<Option<(String, bool)>>);

impl PreparedRules {
    /// `None` when a rule may read or write names it does not spell out.
    pub fn new(rules: &[RelabelRule]) -> Option<PreparedRules> {
        let mut names: Vec<&str> = Vec::new();
        for rule in rules {
            match rule.action {
                Action::LabelMap | Action::LabelKeep => return None,
                Action::LabelDrop => names.push(rule.regex.literal()?),
                Action::Replace if rule.target_label.contains('$') => return None,
                Action::Keep | Action::Drop => {}
                _ => names.push(&rule.target_label),
            }
            names.extend(rule.source_labels.iter().map(String::as_str));
        }
        names.sort_unstable();
        names.dedup();
        let slot = |name: &str| names.binary_search(&name).expect("every name has a slot") as Slot;
        let steps = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let to = || slot(&rule.target_label);
                let op = match rule.action {
                    Action::Replace if is_copy(rule) => Op::Copy { to: to() },
                    Action::Replace => Op::Replace { to: to() },
                    Action::Keep | Action::Drop => {
                        let keep = rule.action == Action::Keep;
                        match rule.regex.literal().filter(|_| rule.source_labels.len() == 1) {
                            Some(literal) => Op::Equals { literal: literal.into(), keep },
                            None if keep => Op::Keep,
                            None => Op::Drop,
                        }
                    }
                    Action::KeepEqual => Op::KeepEqual { target: to() },
                    Action::DropEqual => Op::DropEqual { target: to() },
                    Action::HashMod => Op::HashMod { to: to() },
                    Action::Lowercase => Op::Lowercase { to: to() },
                    Action::Uppercase => Op::Uppercase { to: to() },
                    Action::LabelDrop => Op::Delete { slot: slot(rule.regex.literal().expect("checked")) },
                    Action::LabelMap | Action::LabelKeep => unreachable!("refused above"),
                };
                // Anything modulo 1 is 0 (prometheus-operator's unsharded
                // default): such a step reads nothing, so it can run once
                // per group rather than per target.
                let sources = if matches!(op, Op::HashMod { .. }) && rule.modulus == 1 {
                    Vec::new()
                } else {
                    rule.source_labels.iter().map(|s| slot(s)).collect()
                };
                Step { rule: index, sources, op }
            })
            .collect();
        let largest_modulus = rules.iter().filter(|r| r.action == Action::HashMod).map(|r| r.modulus).max();
        let numbers = (0..largest_modulus.unwrap_or(0).min(HASHMOD_TABLE)).map(|n| n.to_string()).collect();
        Some(PreparedRules {
            rules: rules.to_vec(),
            names: names.into_iter().map(intern).collect(),
            steps,
            numbers,
        })
    }

    /// The slots' names, sorted: slot `i` holds the value of `names()[i]`.
    pub fn names(&self) -> &[LabelName] {
        &self.names
    }

    /// What [`schedule`](Self::schedule) depends on besides the slots that
    /// vary: per step, the slots it reads and the slot it may write. Rule
    /// lists of one shape over the same names schedule alike, whatever their
    /// regexes and replacements.
    pub fn shape(&self) -> Vec<StepShape> {
        self.steps.iter().map(|step| (step.reads().collect(), step.op.written())).collect()
    }

    /// The slot of `name`, if a rule uses it.
    pub fn slot(&self, name: &str) -> Option<usize> {
        self.names.binary_search_by(|n| (**n).cmp(name)).ok()
    }

    /// Runs the rules on `slots` (one value per name, filled by the caller).
    /// Returns `false` when a rule drops the target; the slots then hold what
    /// the rules had made of it so far.
    pub fn run<'a>(&'a self, slots: &mut SlotValues<'a>) -> bool {
        debug_assert_eq!(slots.values.len(), self.names.len());
        (0..self.steps.len()).all(|index| self.step(index, slots))
    }

    /// Splits the rules for targets that share every slot but those marked
    /// in `varies` (the targets of one discovered group share its labels):
    /// which steps can run once for all of them, and which per target.
    ///
    /// A step runs once when it reads no varying slot and writes none that
    /// a per-target step before it read or wrote: running it ahead of those
    /// then changes nothing. Running the shared steps on the shared values,
    /// then each target's steps in order on a copy, gives every target the
    /// outcome of the whole list; and when a shared step drops, every target
    /// would have been dropped.
    pub fn schedule(&self, varies: &[bool]) -> Schedule {
        debug_assert_eq!(varies.len(), self.names.len());
        let mut varying = varies.to_vec();
        let mut used_per_target = vec![false; self.names.len()];
        let mut schedule = Schedule::default();
        for (index, step) in self.steps.iter().enumerate() {
            let reads = step.reads();
            let written = step.op.written();
            let shared = !reads.clone().any(|slot| varying[slot as usize])
                && written.is_none_or(|slot| !varying[slot as usize] && !used_per_target[slot as usize]);
            if shared {
                schedule.shared.push(index);
            } else {
                schedule.per_target.push(index);
                for slot in reads.chain(written) {
                    used_per_target[slot as usize] = true;
                }
                if let Some(slot) = written {
                    varying[slot as usize] = true;
                }
            }
        }
        schedule.varying = varying;
        schedule
    }

    /// Runs the steps `steps` (indexes into the rules, in order) on `slots`;
    /// see [`run`](Self::run) and [`schedule`](Self::schedule).
    pub fn run_steps<'a>(&'a self, steps: &[usize], slots: &mut SlotValues<'a>) -> bool {
        debug_assert_eq!(slots.values.len(), self.names.len());
        steps.iter().all(|&index| self.step(index, slots))
    }

    /// Runs step `index`: a copy or a literal comparison (most per-target
    /// steps) in place, any other through [`apply`](Self::apply).
    #[inline(always)]
    fn step<'a>(&'a self, index: usize, slots: &mut SlotValues<'a>) -> bool {
        let step = &self.steps[index];
        match &step.op {
            Op::Copy { to } => {
                let copied = slots.values[step.sources[0] as usize].clone();
                slots.values[*to as usize] = copied;
                true
            }
            Op::Equals { literal, keep } => (*slots.values[step.sources[0] as usize] == **literal) == *keep,
            _ => self.apply(index, step, slots),
        }
    }

    /// One step other than a copy (which [`step`](Self::step) makes).
    #[inline(never)]
    fn apply<'a>(&'a self, index: usize, step: &Step, slots: &mut SlotValues<'a>) -> bool {
        let rule = &self.rules[step.rule];
        let (written, to): (Cow<'a, str>, Slot) = {
            let value: &str = match step.sources.as_slice() {
                [only] => &slots.values[*only as usize],
                sources => {
                    slots.joined.clear();
                    for (i, &source) in sources.iter().enumerate() {
                        if i > 0 {
                            slots.joined.push_str(&rule.separator);
                        }
                        slots.joined.push_str(&slots.values[source as usize]);
                    }
                    &slots.joined
                }
            };
            match step.op {
                Op::Keep | Op::Drop => {
                    let decided = &mut slots.decisions.0;
                    if decided.len() < self.steps.len() {
                        decided.resize(self.steps.len(), None);
                    }
                    let matched = match &mut decided[index] {
                        Some((last, matched)) if last == value => *matched,
                        decided => {
                            let matched = rule.regex.is_match(value);
                            match decided {
                                Some((last, answer)) => {
                                    last.clear();
                                    last.push_str(value);
                                    *answer = matched;
                                }
                                None => *decided = Some((value.to_string(), matched)),
                            }
                            matched
                        }
                    };
                    return matched == (step.op == Op::Keep);
                }
                Op::KeepEqual { target } => return *slots.values[target as usize] == *value,
                Op::DropEqual { target } => return *slots.values[target as usize] != *value,
                Op::Replace { to } => {
                    let Some(groups) = rule.regex.captures(value) else { return true };
                    let mut replaced = String::new();
                    groups.expand(&rule.replacement, &mut replaced);
                    (Cow::Owned(replaced), to)
                }
                Op::Lowercase { to } => (Cow::Owned(go_lowercase(value)), to),
                Op::Uppercase { to } => (Cow::Owned(go_uppercase(value)), to),
                Op::HashMod { to } => (self.hash_mod(rule.modulus, value), to),
                Op::Delete { slot } => (Cow::Borrowed(""), slot),
                Op::Copy { .. } | Op::Equals { .. } => unreachable!("made by `step`"),
            }
        };
        slots.values[to as usize] = written;
        true
    }

    /// Prometheus's `hashmod`: the last 8 bytes of the value's MD5, big-endian,
    /// modulo `modulus`.
    fn hash_mod<'a>(&'a self, modulus: u64, value: &str) -> Cow<'a, str> {
        // Anything modulo 1 is 0: prometheus-operator's unsharded default.
        let n = if modulus == 1 {
            0
        } else {
            let digest = md5::compute(value.as_bytes());
            u64::from_be_bytes(digest.0[8..16].try_into().expect("8 bytes")) % modulus
        };
        match self.numbers.get(n as usize) {
            Some(number) => Cow::Borrowed(number),
            None => Cow::Owned(n.to_string()),
        }
    }

    /// Relabels a whole label map: the slots are read from it and written
    /// back; labels no rule names are untouched.
    pub fn relabel_map(&self, labels: &mut LabelMap) -> bool {
        labels.retain(|_, value| !value.is_empty());
        let values = self.names.iter().map(|n| Cow::Borrowed(labels.get(&**n).map_or("", String::as_str)));
        let mut slots = SlotValues { values: values.collect(), ..SlotValues::default() };
        let kept = self.run(&mut slots);
        let results: Vec<(String, String)> =
            self.names.iter().zip(slots.values).map(|(n, v)| (n.to_string(), v.into_owned())).collect();
        for (name, value) in results {
            if value.is_empty() {
                labels.remove(&name);
            } else {
                labels.insert(name, value);
            }
        }
        kept
    }
}

/// Whether a `replace` only copies its one source: `(.*)` into `$1` with a
/// literal target.
pub(super) fn is_copy(rule: &RelabelRule) -> bool {
    rule.source_labels.len() == 1
        && rule.regex.matches_everything()
        && matches!(rule.replacement.as_str(), "$1" | "${1}")
        && !rule.target_label.contains('$')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relabel::{NameValidation, parse_rules};

    #[test]
    fn steps_on_shared_labels_run_once_and_the_rest_per_target() {
        let rules = parse_rules(
            &serde_json::json!([
                {"action": "keep", "source_labels": ["__meta_service"], "regex": "web"},
                {"source_labels": ["__meta_pod"], "target_label": "pod"},
                {"source_labels": ["__meta_namespace"], "target_label": "namespace"},
                {"action": "keepequal", "source_labels": ["zone"], "target_label": "pod"},
                {"source_labels": ["__meta_namespace"], "target_label": "pod"},
                {"action": "hashmod", "source_labels": ["__address__"], "target_label": "__tmp_hash", "modulus": 4},
                {"action": "labeldrop", "regex": "__tmp_hash"},
                {"action": "drop", "source_labels": ["namespace"], "regex": "kube-system"}
            ]),
            NameValidation::Utf8,
        )
        .unwrap();
        let prepared = PreparedRules::new(&rules).unwrap();
        // Targets of a group differ in their address and pod only.
        let varies: Vec<bool> =
            prepared.names().iter().map(|n| matches!(&**n, "__address__" | "__meta_pod")).collect();
        let schedule = prepared.schedule(&varies);
        // Writing `pod` again after a per-target step compared it, and
        // dropping `__tmp_hash` after a per-target step wrote it, stay in order.
        assert_eq!((schedule.shared, schedule.per_target), (vec![0, 2, 7], vec![1, 3, 4, 5, 6]));
        let varying: Vec<&str> =
            prepared.names().iter().zip(&schedule.varying).filter(|(_, v)| **v).map(|(n, _)| &**n).collect();
        assert_eq!(varying, ["__address__", "__meta_pod", "__tmp_hash", "pod"]);
        let none_vary = prepared.schedule(&vec![false; varies.len()]);
        assert_eq!(none_vary.shared, (0..rules.len()).collect::<Vec<_>>());
    }

    #[test]
    fn literal_keep_and_drop_compare_as_the_automaton_matches() {
        use crate::relabel::{LabelSet, relabel_set};
        for (action, regex) in
            [("keep", "true"), ("drop", "true"), ("keep", ""), ("drop", ""), ("keep", "a.b")]
        {
            let rules = parse_rules(
                &serde_json::json!([{"action": action, "source_labels": ["ready"], "regex": regex}]),
                NameValidation::Utf8,
            )
            .unwrap();
            let prepared = PreparedRules::new(&rules).unwrap();
            let literal = matches!(prepared.steps[0].op, Op::Equals { .. });
            assert_eq!(literal, regex != "a.b", "{action} {regex:?}");
            for value in ["true", "false", "", "truer", "a.b", "axb"] {
                let mut slots = SlotValues::default();
                slots.values.push(Cow::Borrowed(value));
                let mut set = LabelSet::new();
                set.extend_sorted([("ready", value)].into_iter().filter(|(_, v)| !v.is_empty()));
                assert_eq!(
                    prepared.run(&mut slots),
                    relabel_set(&mut set, &rules),
                    "{action} {regex:?} on {value:?}"
                );
            }
        }
    }

    #[test]
    fn an_unsharded_hashmod_reads_nothing_so_the_sharding_rules_run_once() {
        // prometheus-operator's sharding rules with one shard (modulus 1).
        let rules = parse_rules(
            &serde_json::json!([
                {"action": "hashmod", "source_labels": ["__address__"], "target_label": "__tmp_hash", "modulus": 1},
                {"action": "keep", "source_labels": ["__tmp_hash", "__tmp_disable_sharding"], "regex": "$(SHARD);|.+;.+"},
                {"action": "labeldrop", "regex": "__tmp_hash"}
            ]),
            NameValidation::Utf8,
        )
        .unwrap();
        let prepared = PreparedRules::new(&rules).unwrap();
        let varies: Vec<bool> = prepared.names().iter().map(|n| &**n == "__address__").collect();
        let schedule = prepared.schedule(&varies);
        assert_eq!((schedule.shared, schedule.per_target), (vec![0, 1, 2], vec![]));
        let mut slots = SlotValues::default();
        slots.values.extend(prepared.names().iter().map(|n| match &**n {
            "__address__" => Cow::Borrowed("10.0.0.1:9100"),
            "__tmp_disable_sharding" => Cow::Borrowed("true"),
            _ => Cow::Borrowed(""),
        }));
        // Whatever the address, the hashmod writes 0.
        assert!(prepared.run_steps(&[0], &mut slots));
        assert_eq!(slots.values[prepared.slot("__tmp_hash").unwrap()], "0");
    }

    #[test]
    fn shared_then_per_target_steps_equal_the_whole_list_on_random_rules() {
        // Few names, so that rules read and write each other's labels.
        const NAMES: [&str; 6] = ["a", "b", "c", "__address__", "__meta_x", "__meta_y"];
        const VALUES: [&str; 5] = ["", "web", "x", "A", "kube-system"];
        let mut state = 20261128u64;
        let mut next = move |n: usize| {
            state = target_allocator_sdk::hash::mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            (state % n as u64) as usize
        };
        let mut mixed = 0;
        for _ in 0..3000 {
            let rules: Vec<serde_json::Value> = (0..2 + next(7))
                .map(|_| {
                    let sources: Vec<&str> = (0..1 + next(2)).map(|_| NAMES[next(NAMES.len())]).collect();
                    let target = NAMES[next(NAMES.len())];
                    match next(8) {
                        0 => serde_json::json!({"action": (["keep", "drop"][next(2)]), "source_labels": sources,
                            "regex": (["web", ".+", "x|A", ""][next(4)])}),
                        1 => serde_json::json!({"source_labels": sources, "target_label": target}),
                        2 => serde_json::json!({"source_labels": sources, "target_label": target,
                            "regex": "(.)(.*)", "replacement": "${2}-$1"}),
                        3 => serde_json::json!({"action": (["keepequal", "dropequal"][next(2)]),
                            "source_labels": sources, "target_label": target}),
                        4 => serde_json::json!({"action": "hashmod", "source_labels": sources,
                            "target_label": target, "modulus": 1 + next(4)}),
                        5 => serde_json::json!({"action": (["lowercase", "uppercase"][next(2)]),
                            "source_labels": sources, "target_label": target}),
                        6 => serde_json::json!({"action": "labeldrop", "regex": target}),
                        _ => serde_json::json!({"source_labels": sources, "target_label": target,
                            "regex": "x", "replacement": "was-x"}),
                    }
                })
                .collect();
            let rules = parse_rules(&serde_json::Value::Array(rules), NameValidation::Utf8).unwrap();
            let prepared = PreparedRules::new(&rules).expect("every rule names its labels");
            let labels =
                NAMES.iter().map(|n| (n.to_string(), VALUES[next(VALUES.len())].to_string())).collect();
            let varies: Vec<bool> = prepared.names().iter().map(|_| next(3) == 0).collect();
            let schedule = prepared.schedule(&varies);
            mixed += usize::from(!schedule.shared.is_empty() && !schedule.per_target.is_empty());
            crate::fuzzing::check_schedule(&prepared, &labels, &varies);
        }
        assert!(mixed > 1000, "only {mixed} rule lists had both shared and per-target steps");
    }
}
