//! Checks run by the fuzz targets (`fuzz/`), kept here so that the integration
//! tests can replay the committed corpus through exactly the same code with a
//! plain `cargo test` (no cargo-fuzz, no nightly).
//!
//! Each `check_*` takes arbitrary bytes and panics when an invariant breaks.
//! Input the parsers refuse is fine: only panics and broken invariants count.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::{ScrapeConfig, parse_config, parse_prometheus_config};
use crate::relabel::{
    Action, LabelMap, LabelSet, NameValidation, PreparedRules, RelabelRegex, RelabelRule, SlotValues,
    parse_rules, relabel, relabel_set,
};
use crate::server::render_scrape_configs;

/// Scrape-config parsing, printing and re-parsing.
///
/// The bytes are read as YAML twice: as a whole allocator config file and as
/// the `config:` block alone. Whatever parses must print as valid JSON at
/// `/scrape_configs`, and what is printed must parse again, to the same jobs:
/// collectors configure themselves from that output, so a job that prints
/// but does not parse again (or parses differently) would reach them broken.
///
/// "The same" allows what Prometheus itself does not keep: a field set to
/// its zero value (`metrics_path: null` or `""`) prints as absent, as with
/// Prometheus's `omitempty`, and so reads back as the default. Printing is
/// therefore checked to be stable from the second printing on.
pub fn check_scrape_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok((config, _warnings)) = parse_config(text, "fuzz.yaml") {
        check_jobs(&config.prometheus.scrape_configs);
    }
    if let Ok(yaml) = serde_yaml::from_str::<serde_yaml::Value>(text)
        && let Ok(value) = serde_json::to_value(yaml)
        && let Ok(config) = parse_prometheus_config(&value)
    {
        check_jobs(&config.scrape_configs);
    }
}

fn check_jobs(jobs: &[ScrapeConfig]) {
    let by_name: BTreeMap<&str, &ScrapeConfig> = jobs.iter().map(|j| (j.job_name.as_str(), j)).collect();
    assert_eq!(by_name.len(), jobs.len(), "job names are unique after parsing");
    for redact in [false, true] {
        let (body, reparsed) = print_and_parse(jobs, redact);
        for job in &reparsed {
            let original = by_name.get(job.job_name.as_str()).expect("the printed job's name is the job's");
            // Secrets read `<secret>` when redacted, but they sit only in
            // fields passed along: everything the allocator interprets is kept.
            assert_eq!(interpreted(job), interpreted(original), "printing and parsing again changed the job");
        }
        let (again, reparsed_again) = print_and_parse(&reparsed, redact);
        assert_eq!(reparsed_again, reparsed, "printing is not stable: {}", String::from_utf8_lossy(&body));
        let (third, _) = print_and_parse(&reparsed_again, redact);
        assert_eq!(third, again, "printing is not stable");
    }
    for job in jobs {
        check_static_targets(job);
    }
}

/// `/scrape_configs` for `jobs`, and its jobs parsed again (in name order).
fn print_and_parse(jobs: &[ScrapeConfig], redact: bool) -> (Vec<u8>, Vec<ScrapeConfig>) {
    let body = render_scrape_configs(jobs, redact);
    let shown = || String::from_utf8_lossy(&body).into_owned();
    let printed: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("/scrape_configs is not JSON ({e}): {}", shown()));
    let Value::Object(printed) = printed else { panic!("/scrape_configs is not an object") };
    assert_eq!(printed.len(), jobs.len(), "one printed entry per job");
    let reparsed = parse_prometheus_config(&json!({"scrape_configs": printed.values().collect::<Vec<_>>()}))
        .unwrap_or_else(|e| panic!("printed jobs do not parse again: {e:?}\n{}", shown()));
    (body, reparsed.scrape_configs)
}

/// The job without its printed form, with the zero values Prometheus prints
/// as absent replaced by the defaults they read back as.
fn interpreted(job: &ScrapeConfig) -> ScrapeConfig {
    let mut job = job.clone();
    job.printed = Map::new();
    if job.metrics_path.is_empty() {
        job.metrics_path = "/metrics".into();
    }
    job
}

/// The job's own rules over its static targets, seeded as Prometheus seeds them.
fn check_static_targets(job: &ScrapeConfig) {
    for static_config in &job.static_configs {
        for address in &static_config.targets {
            let mut labels: LabelMap = static_config.labels.clone();
            labels.insert("__address__".into(), address.clone());
            for (name, value) in job.seed_labels() {
                labels.entry(name).or_insert(value);
            }
            relabel(&mut labels, &job.relabel_rules);
            assert!(labels.values().all(|v| !v.is_empty()), "empty value after relabeling: {labels:?}");
        }
    }
}

/// The relabel engine on rules and labels decoded from the bytes.
///
/// Rules are built as YAML would give them (so parsing and validation run
/// too) from small alphabets of names, values and regexes that make matches,
/// collisions and edge cases likely; now and then a field is raw input text.
/// Checked: never panics; no rules is the identity (minus empty values, which
/// are no labels in Prometheus); the result is deterministic; applying the
/// rules one at a time gives the same result as applying them together; the
/// shortcuts for the default regex `(.*)` agree with running a regex; and
/// each step does what its action means.
pub fn check_relabel(data: &[u8]) {
    let mut input = Bytes(data);
    let names = if input.byte() % 4 == 0 { NameValidation::Legacy } else { NameValidation::Utf8 };
    let rules_json: Vec<Value> = (0..input.below(6)).map(|_| rule_json(&mut input)).collect();
    let mut labels = LabelMap::new();
    for _ in 0..input.below(7) {
        let name = input.text(INPUT_NAMES);
        let value = input.text(VALUES);
        labels.insert(name, value);
    }
    let Ok(rules) = parse_rules(&Value::Array(rules_json), names) else { return };
    let present: LabelMap = labels.iter().filter(|(_, v)| !v.is_empty()).map(clone_pair).collect();

    let mut identity = labels.clone();
    assert!(relabel(&mut identity, &[]), "no rules drops nothing");
    assert_eq!(identity, present, "no rules changes nothing but empty values");

    let mut together = labels.clone();
    let kept = relabel(&mut together, &rules);
    let mut again = labels.clone();
    assert_eq!(relabel(&mut again, &rules), kept, "keep/drop is deterministic");
    if let Some(prepared) = PreparedRules::new(&rules) {
        // Which slots differ between targets; mixed when the input has run out.
        let pattern = input.byte() ^ 0b1010_0110;
        let varies: Vec<bool> = (0..prepared.names().len()).map(|i| (pattern >> (i % 8)) & 1 == 1).collect();
        check_schedule(&prepared, &labels, &varies);
        // Those rules ran prepared (on slots); the general engine must agree.
        let mut set = LabelSet::new();
        set.extend_sorted(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let kept_generally = relabel_set(&mut set, &rules);
        let generally: LabelMap = set.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        assert_eq!(kept_generally, kept, "prepared rules keep differently: {rules:?} on {labels:?}");
        assert_eq!(generally, together, "prepared rules relabel differently: {rules:?} on {labels:?}");
    }
    assert_eq!(again, together, "relabeling is deterministic");

    let mut current = present;
    let mut kept_stepwise = true;
    for rule in &rules {
        let before = current.clone();
        let kept_step = relabel(&mut current, std::slice::from_ref(rule));
        check_step(rule, &before, &current, kept_step);
        if !kept_step {
            kept_stepwise = false;
            break;
        }
    }
    assert_eq!(kept_stepwise, kept, "rules one at a time keep as rules together");
    assert_eq!(current, together, "rules one at a time relabel as rules together");

    // The engine answers `(.*)` without running it, and copies a source label
    // outright for `replace` with `(.*)` and `$1`; the same rules with an
    // equivalent regex it cannot recognise must give the same result.
    static SLOW_EVERYTHING: std::sync::OnceLock<RelabelRegex> = std::sync::OnceLock::new();
    let slow_everything =
        SLOW_EVERYTHING.get_or_init(|| RelabelRegex::new("(?:(.*))").expect("a valid regex"));
    let slow: Vec<RelabelRule> = rules
        .iter()
        .map(|rule| {
            let mut slow = rule.clone();
            if rule.regex.matches_everything() {
                slow.regex = slow_everything.clone();
            }
            slow
        })
        .collect();
    let mut slowly = labels.clone();
    assert_eq!(relabel(&mut slowly, &slow), kept, "the (.*) shortcut decides differently");
    assert_eq!(slowly, together, "the (.*) shortcut relabels differently");
}

/// Prepared rules split into steps shared by targets that agree on every
/// slot but those in `varies` (see [`PreparedRules::schedule`]): the shared
/// steps must not read the varying slots, and running them once, then the
/// rest on each target's copy, must give what the whole list gives.
pub(crate) fn check_schedule(prepared: &PreparedRules, labels: &LabelMap, varies: &[bool]) {
    let value = |name: &str| labels.get(name).map_or("", String::as_str);
    let names = prepared.names();
    let mut whole = SlotValues::default();
    whole.values.extend(names.iter().map(|n| Cow::Borrowed(value(n))));
    let kept = prepared.run(&mut whole);

    let schedule = prepared.schedule(varies);
    let mut steps = [schedule.shared.clone(), schedule.per_target.clone()].concat();
    steps.sort_unstable();
    assert_eq!(steps, (0..steps.len()).collect::<Vec<_>>(), "every step runs once: {schedule:?}");
    // What the shared steps see in a varying slot is no target's value.
    let unread = "\u{1}not a target's value";
    let mut shared = SlotValues::default();
    shared
        .values
        .extend(names.iter().zip(varies).map(|(n, &v)| Cow::Borrowed(if v { unread } else { value(n) })));
    if !prepared.run_steps(&schedule.shared, &mut shared) {
        assert!(!kept, "a shared step drops what the whole list keeps: {schedule:?}");
        return;
    }
    let mut target = SlotValues::default();
    let own = shared.values.iter().zip(names).zip(varies);
    target.values.extend(own.map(|((s, n), &v)| if v { Cow::Borrowed(value(n)) } else { s.clone() }));
    let kept_per_target = prepared.run_steps(&schedule.per_target, &mut target);
    assert_eq!(kept_per_target, kept, "shared and per-target steps keep differently: {schedule:?}");
    if kept {
        assert_eq!(
            target.values, whole.values,
            "shared and per-target steps relabel differently: {schedule:?}"
        );
        // A slot said not to vary holds what the shared steps left in it.
        for (slot, varying) in schedule.varying.iter().enumerate() {
            if !varying {
                assert_eq!(target.values[slot], shared.values[slot], "slot {slot} varies: {schedule:?}");
            }
        }
    }
}

/// What one rule may do to `before`, by its action (Prometheus semantics).
fn check_step(rule: &RelabelRule, before: &LabelMap, after: &LabelMap, kept: bool) {
    let context = || format!("{rule:?}\nbefore: {before:?}\nafter: {after:?}");
    assert!(after.values().all(|v| !v.is_empty()), "empty value: {}", context());
    // New names come from the rule's target label, valid under the rule's
    // name validation (`replace` checks its expanded target, the other
    // targets are checked at load), or from labelmap, which like Prometheus
    // sets whatever the expansion gives.
    if rule.action != Action::LabelMap {
        for name in after.keys().filter(|n| !before.contains_key(*n)) {
            assert!(rule.names.is_valid(name), "new label {name:?} is not a valid name: {}", context());
        }
    }
    let value = rule
        .source_labels
        .iter()
        .map(|n| before.get(n).map(String::as_str).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(&rule.separator);
    let target = before.get(&rule.target_label).map(String::as_str).unwrap_or("");
    let decides = match rule.action {
        Action::Keep => Some(rule.regex.is_match(&value)),
        Action::Drop => Some(!rule.regex.is_match(&value)),
        Action::KeepEqual => Some(target == value),
        Action::DropEqual => Some(target != value),
        _ => None,
    };
    if let Some(expected) = decides {
        assert_eq!(kept, expected, "wrong keep/drop decision: {}", context());
        assert_eq!(after, before, "a keep/drop rule changed labels: {}", context());
        return;
    }
    assert!(kept, "only keep/drop rules drop targets: {}", context());
    // Labels whose value changed, appeared or disappeared.
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|n| before.get(*n) != after.get(*n))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    match rule.action {
        Action::Lowercase | Action::Uppercase => {
            assert!(changed.iter().all(|n| **n == rule.target_label), "changed other labels: {}", context());
            let cased = after.get(&rule.target_label).map(String::as_str).unwrap_or("");
            // Prometheus uses Go's strings.ToLower/ToUpper: one char for one
            // char (simple case mapping), so `ß` stays and `İ` becomes `i`.
            assert_eq!(
                cased.chars().count(),
                value.chars().count(),
                "case mapping is per char: {}",
                context()
            );
            if value.is_ascii() {
                let expected = match rule.action {
                    Action::Lowercase => value.to_ascii_lowercase(),
                    _ => value.to_ascii_uppercase(),
                };
                assert_eq!(cased, expected, "wrong case mapping: {}", context());
            }
        }
        Action::HashMod => {
            let shard = after.get(&rule.target_label).expect("hashmod always sets its target");
            assert!(shard.parse::<u64>().is_ok_and(|s| s < rule.modulus), "bad shard: {}", context());
            assert!(changed.iter().all(|n| **n == rule.target_label), "changed other labels: {}", context());
        }
        Action::Replace => {
            if !rule.regex.is_match(&value) {
                assert_eq!(after, before, "replace without a match changed labels: {}", context());
            }
            assert!(changed.len() <= 1, "replace changed more than one label: {}", context());
            if let Some(name) = changed.first() {
                let expected_name = rule.regex.expand(&rule.target_label, &value);
                assert_eq!(expected_name.as_ref(), Some(*name), "replace wrote another label: {}", context());
                let expected = rule.regex.expand(&rule.replacement, &value).filter(|v| !v.is_empty());
                assert_eq!(after.get(*name), expected.as_ref(), "wrong replaced value: {}", context());
            }
        }
        Action::LabelMap => {
            // Labels are copied under new names, never removed; every changed
            // label is a copy of one that the regex renames to it.
            assert!(before.keys().all(|n| after.contains_key(n)), "labelmap removed a label: {}", context());
            for name in changed {
                let copied = before.iter().any(|(old, v)| {
                    after.get(name) == Some(v)
                        && rule.regex.expand(&rule.replacement, old).as_ref() == Some(name)
                });
                assert!(copied, "labelmap made {name:?} from nothing: {}", context());
            }
        }
        Action::LabelDrop | Action::LabelKeep => {
            let keep = rule.action == Action::LabelKeep;
            let expected: LabelMap =
                before.iter().filter(|(n, _)| rule.regex.is_match(n) == keep).map(clone_pair).collect();
            assert_eq!(after, &expected, "wrong labels kept: {}", context());
        }
        Action::Keep | Action::Drop | Action::KeepEqual | Action::DropEqual => unreachable!("decided above"),
    }
}

/// Translating a Go (RE2) regex and using it never panics, and the anchors
/// hold: a regex that compiles matches whole strings only.
pub fn check_go_regex(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A regex, then probe texts, separated by NUL.
    let mut parts = text.split('\0');
    let source = parts.next().unwrap_or_default();
    let Ok(regex) = RelabelRegex::new(source) else { return };
    for probe in parts.chain(["", "a", "0", "٣", "é", "\n", "a\nb", " ", "_", "ß"]) {
        let matched = regex.is_match(probe);
        assert_eq!(regex.expand("$0", probe).is_some(), matched, "expand and is_match disagree");
        // Prometheus anchors a regex by wrapping it in `^(?s:` and `)$`, so
        // group 0 is all the text, unless the regex closes that group itself
        // (`a)|(b`, which Go and this accept alike): only without `)` is that ruled out.
        if let Some(whole) = regex.expand("${0}", probe)
            && !source.contains(')')
        {
            assert_eq!(whole, probe, "{source:?} matched only part of {probe:?}");
        }
        for template in ["$1", "${1}x", "$name", "$$", "$", "${", "a_$1_b"] {
            regex.expand(template, probe);
        }
    }
}

fn clone_pair((n, v): (&String, &String)) -> (String, String) {
    (n.clone(), v.clone())
}

/// Input bytes read front to back; zeros once they run out, so every input
/// decodes to something.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    /// One of `options`, or (for the top few byte values) up to 15 bytes of
    /// raw input, so the fuzzer can also invent strings the alphabets lack.
    fn text(&mut self, options: &[&str]) -> String {
        let choice = self.byte();
        if choice < 240 {
            return options[choice as usize % options.len()].to_string();
        }
        let len = (choice - 240) as usize;
        let raw: Vec<u8> = (0..len).map(|_| self.byte()).collect();
        String::from_utf8_lossy(&raw).into_owned()
    }
}

const ACTIONS: &[&str] = &[
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
    "Replace",
    "KEEP",
    "LabelMap",
    "",
    "explode",
];
/// Names rules may refer to (the last ones valid only under UTF-8 validation).
const NAMES: &[&str] = &[
    "__address__",
    "__meta_pod",
    "__meta_",
    "job",
    "a",
    "a_b",
    "b",
    "__tmp_x",
    "instance",
    "env",
    "t",
    "a.b",
    "é",
];
/// Discovered label names: any string, as file_sd and http_sd deliver them.
const INPUT_NAMES: &[&str] = &[
    "__address__",
    "__meta_pod",
    "__meta_",
    "job",
    "a",
    "a_b",
    "b",
    "__tmp_x",
    "env",
    "t",
    "",
    "9x",
    "bad-name",
    "é",
    "a.b",
];
const VALUES: &[&str] = &[
    "",
    "x",
    "Prod",
    "prod",
    "a;b",
    "10.0.0.1:9100",
    "host:80",
    "ß",
    "İ",
    "ΑΣ",
    "ǅ",
    "٣",
    "line\nbreak",
    "$1",
    "a",
    "__meta_pod",
];
const REGEXES: &[&str] = &[
    "(.*)",
    ".*",
    "",
    "a",
    "(a)",
    "(.+)",
    "prod|dev",
    "([^:]+):(\\d+)",
    "(?P<n>a)(b)?",
    "__meta_(.*)",
    "__meta_(.+)",
    "(.*)_b",
    "[a-z]+",
    "(?i)PROD",
    "\\w+",
    "[\\W]+",
    "[^\\D]",
    "\\s",
    "(",
    "a{2}",
    "(a|)",
    "[[:alpha:]]+",
    "\\bx",
    "(.)(.)",
    "a)|(b",
    "(?s:.)+",
    "\\d+",
    "[]a]",
    "x*?",
    "\\pL+",
];
const SEPARATORS: &[&str] = &[";", "", "/", ":", "a"];
const TARGETS: &[&str] = &[
    "t",
    "a",
    "env",
    "job",
    "__address__",
    "$1",
    "${1}",
    "l_$1",
    "${1}_x",
    "$n",
    "$2x",
    "__tmp_$1",
    "",
    "bad-name",
    "9x",
    "$$",
    "${n}",
    "a.b",
    "x_${1}.é",
];
const REPLACEMENTS: &[&str] = &[
    "$1", "", "x", "${1}", "$2", "$n", "${n}", "$$", "$1$2", "a_$1", "p_${1}_s", "$", "${", "bad-name", "$0",
];

/// One rule as YAML would give it. Usually only fields its action accepts
/// are written, required ones always (any other field makes most rules
/// invalid, so the engine would seldom run); when the field byte's top bit
/// is set, any subset is, and sometimes a field of the wrong type.
fn rule_json(input: &mut Bytes) -> Value {
    let fields = input.byte();
    let action = input.text(ACTIONS);
    // Bits: 0 action, 1 source_labels, 2 separator, 3 regex, 4 modulus,
    // 5 target_label, 6 replacement.
    let (accepted, required) = match action.to_ascii_lowercase().as_str() {
        "keep" | "drop" => (0b000_1110, 0),
        "keepequal" | "dropequal" => (0b010_0010, 0b010_0000),
        "hashmod" => (0b011_0110, 0b011_0000),
        "labelmap" => (0b100_1000, 0),
        "labeldrop" | "labelkeep" => (0b000_1000, 0),
        "lowercase" | "uppercase" => (0b010_1110, 0b010_0000),
        _ => (0b111_1110, 0b010_0000),
    };
    let any_fields = fields & 0x80 != 0;
    let present = match any_fields {
        true => fields,
        // `replace` is also the default when `action` is left out.
        false => (fields & (accepted | 1)) | required | u8::from(action != "replace"),
    };
    let mut rule = Map::new();
    let mut set = |bit: u8, key: &str, value: Value| {
        if present & (1 << bit) != 0 {
            rule.insert(key.to_string(), value);
        }
    };
    set(0, "action", Value::String(action));
    let sources = (0..input.below(4)).map(|_| Value::String(input.text(NAMES))).collect();
    set(1, "source_labels", Value::Array(sources));
    set(2, "separator", Value::String(input.text(SEPARATORS)));
    set(3, "regex", Value::String(input.text(REGEXES)));
    let modulus = match input.below(8) {
        0 => json!(0),
        1 => json!(1),
        2 => json!(2),
        3 => json!(7),
        4 => json!(u64::MAX),
        5 => json!(-1),
        6 => json!("3"),
        _ => json!(1000),
    };
    set(4, "modulus", modulus);
    set(5, "target_label", Value::String(input.text(TARGETS)));
    set(6, "replacement", Value::String(input.text(REPLACEMENTS)));
    let wrong = input.byte();
    if any_fields && wrong & 4 != 0 {
        let key = ["regex", "separator", "target_label", "source_labels"][wrong as usize % 4];
        rule.insert(key.into(), json!(7));
    }
    Value::Object(rule)
}
