//! The relabel engine against Prometheus itself: `promtool check
//! service-discovery` (Debian's prometheus package) is the oracle.
//!
//! Each fixture is a job with synthetic targets and rules. promtool reports,
//! per target, the discovered labels (seeded) and the final labels (empty when
//! dropped). Our engine runs the same rules on the same discovered labels and
//! must keep or drop the same targets and produce the same labels (after
//! Prometheus's own post-processing: `__meta_*` removed, `instance` defaulted
//! to the address).
//!
//! Fixtures avoid the corners where Prometheus 2 (this oracle) and 3 (the
//! reference) differ: `.` against newlines, and `replace` into an invalid name.

use std::process::Command;

use serde_json::{Value, json};
use target_allocator::config::parse_prometheus_config;
use target_allocator::relabel::{LabelMap, NameValidation, relabel};

fn fixtures() -> Vec<(&'static str, Value)> {
    let targets = json!([
        {"targets": ["10.0.0.1:9100", "10.0.0.2:9100", "web.example:8080"],
         "labels": {"__meta_kubernetes_pod_name": "web-1", "__meta_kubernetes_namespace": "prod",
                    "__meta_kubernetes_pod_label_app": "Web", "env": "prod"}},
        {"targets": ["10.0.1.1:9100"],
         "labels": {"__meta_kubernetes_pod_name": "db-0", "__meta_kubernetes_namespace": "data",
                    "__meta_kubernetes_pod_annotation_note": "line one\nline two", "env": "staging",
                    "__meta_unicode": "ünïcødé ✓"}}
    ]);
    let job = |name: &'static str, extra: Value, rules: Value| {
        let mut job = json!({"job_name": name, "static_configs": targets.clone(), "relabel_configs": rules});
        for (k, v) in extra.as_object().unwrap() {
            job[k] = v.clone();
        }
        (name, job)
    };
    vec![
        job(
            "defaults",
            json!({}),
            json!([{"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"}]),
        ),
        job(
            "keep-drop",
            json!({}),
            json!([
                {"action": "keep", "source_labels": ["__meta_kubernetes_namespace"], "regex": "prod|data"},
                {"action": "drop", "source_labels": ["__address__"], "regex": "10\\.0\\.0\\.2:.*"}
            ]),
        ),
        job(
            "replace-groups",
            json!({}),
            json!([
                {"source_labels": ["__address__"], "regex": "([^:]+):(\\d+)", "target_label": "host", "replacement": "${1}"},
                {"source_labels": ["__address__"], "regex": "(?P<h>[^:]+):(?P<p>\\d+)", "target_label": "port_$p", "replacement": "$h"},
                {"source_labels": ["env", "__meta_kubernetes_namespace"], "separator": "/", "target_label": "where"},
                {"source_labels": ["missing"], "target_label": "empty_from_missing", "replacement": "fixed"},
                {"source_labels": ["env"], "regex": "prod", "target_label": "env", "replacement": ""}
            ]),
        ),
        job(
            "case",
            json!({}),
            json!([
                {"action": "lowercase", "source_labels": ["__meta_kubernetes_pod_label_app"], "target_label": "app"},
                {"action": "uppercase", "source_labels": ["env"], "target_label": "ENV"},
                {"action": "Replace", "source_labels": ["__meta_unicode"], "target_label": "u"}
            ]),
        ),
        job(
            "hashmod",
            json!({}),
            json!([
                {"action": "hashmod", "source_labels": ["__address__"], "modulus": 7, "target_label": "__tmp_hash"},
                {"action": "keep", "source_labels": ["__tmp_hash"], "regex": "[0-3]"},
                {"source_labels": ["__tmp_hash"], "target_label": "shard"}
            ]),
        ),
        job(
            "labelmap",
            json!({}),
            json!([
                {"action": "labelmap", "regex": "__meta_kubernetes_pod_(name|label_(.+))", "replacement": "k8s_$1"},
                {"action": "labelmap", "regex": "__meta_kubernetes_(namespace)"}
            ]),
        ),
        job(
            "labeldrop-labelkeep",
            json!({}),
            json!([
                {"action": "labelmap", "regex": "__meta_kubernetes_(.+)"},
                {"action": "labeldrop", "regex": "pod_label_.*"},
                {"action": "labelkeep", "regex": "__.*|namespace|pod_name|env"}
            ]),
        ),
        job(
            "keepequal-dropequal",
            json!({}),
            json!([
                {"source_labels": ["env"], "target_label": "copy"},
                {"action": "keepequal", "source_labels": ["copy"], "target_label": "env"},
                {"action": "dropequal", "source_labels": ["__meta_kubernetes_namespace"], "target_label": "env"}
            ]),
        ),
        job(
            "multiline-utf8",
            json!({}),
            json!([
                {"source_labels": ["__meta_kubernetes_pod_annotation_note"], "regex": "line one\\n(.*)", "target_label": "second"},
                {"action": "keep", "source_labels": ["__meta_unicode", "env"], "regex": "(ünïcødé ✓;staging|;prod)"}
            ]),
        ),
        job(
            "seeded",
            json!({"metrics_path": "/probe", "scheme": "https", "scrape_interval": "15s",
                             "params": {"module": ["http_2xx"], "target": ["a", "b"]}}),
            json!([
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__param_target"], "target_label": "instance"},
                {"target_label": "__address__", "replacement": "blackbox:9115"},
                {"action": "keep", "source_labels": ["__scheme__", "__metrics_path__", "__scrape_interval__", "job"], "regex": "https;/probe;15s;seeded"}
            ]),
        ),
        job(
            "address-rewrite",
            json!({}),
            json!([
                {"source_labels": ["__address__"], "regex": "10\\.0\\.0\\.\\d+:9100", "target_label": "__address__", "replacement": "node-exporter:9100"}
            ]),
        ),
    ]
}

fn promtool(config: &std::path::Path, job: &str) -> Vec<Value> {
    let out = Command::new("promtool")
        // Static targets arrive at once; without a short timeout promtool waits 30 s.
        .args(["check", "service-discovery", "--timeout=300ms"])
        .arg(config)
        .arg(job)
        .output()
        .expect("run promtool (scripts/setup --tests installs it)");
    assert!(out.status.success(), "promtool failed on {job}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("promtool output for {job}: {e}"))
}

fn to_map(value: &Value) -> LabelMap {
    value.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect()
}

/// What Prometheus relabels for each target of `job`, in config order: group
/// labels, the address, then the job's seed labels where absent. (promtool's
/// own `discoveredLabels` cannot serve: Prometheus 2.42 prints them after
/// relabeling has modified them.)
fn discovered(job: &Value) -> Vec<LabelMap> {
    let parsed = parse_prometheus_config(&json!({ "scrape_configs": [job] })).unwrap();
    let seeds = parsed.scrape_configs[0].seed_labels();
    let mut out = Vec::new();
    for group in job["static_configs"].as_array().unwrap() {
        for address in group["targets"].as_array().unwrap() {
            let mut labels = to_map(&group["labels"]);
            labels.insert("__address__".into(), address.as_str().unwrap().into());
            for (name, value) in &seeds {
                labels.entry(name.clone()).or_insert_with(|| value.clone());
            }
            out.push(labels);
        }
    }
    out
}

#[test]
fn relabeling_matches_promtool_on_every_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = fixtures();
    let config = dir.path().join("prometheus.yml");
    let jobs: Vec<&Value> = fixtures.iter().map(|(_, job)| job).collect();
    std::fs::write(&config, json!({ "scrape_configs": jobs }).to_string()).unwrap();
    let mut kept = 0;
    let mut dropped = 0;
    for (name, job) in &fixtures {
        let rules = parse_rules(&job["relabel_configs"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let results = promtool(&config, name);
        let (our_kept, our_dropped) = compare(name, job, &rules, &results);
        dropped += our_dropped;
        kept += our_kept.len();
    }
    assert!(kept > 20 && dropped > 0, "the fixtures exercise both outcomes ({kept} kept, {dropped} dropped)");
}

#[test]
fn rules_promtool_rejects_are_rejected_too() {
    let dir = tempfile::tempdir().unwrap();
    for rule in [
        json!({"action": "hashmod", "source_labels": ["a"], "target_label": "t"}),
        json!({"action": "keepequal", "source_labels": ["a"], "target_label": "t", "regex": "(.*)"}),
        json!({"action": "labeldrop", "regex": "a", "target_label": "t"}),
        json!({"action": "uppercase", "source_labels": ["a"], "target_label": "t", "replacement": "x"}),
        json!({"action": "labelmap", "regex": "(.*)", "replacement": "not-valid"}),
        json!({"action": "nonsense"}),
        json!({"regex": "(unclosed", "target_label": "t"}),
    ] {
        let config = dir.path().join("bad.yml");
        let job =
            json!({"job_name": "j", "static_configs": [{"targets": ["a:1"]}], "relabel_configs": [rule]});
        std::fs::write(&config, json!({ "scrape_configs": [job] }).to_string()).unwrap();
        let out = Command::new("promtool").args(["check", "config"]).arg(&config).output().unwrap();
        assert!(!out.status.success(), "promtool accepts {rule}");
        assert!(parse_rules(&json!([rule])).is_err(), "we accept {rule}, promtool does not");
    }
}

/// Runs `rules` over the job's targets and checks the outcome equals
/// promtool's `results`; returns the kept label sets and the number dropped.
fn compare(
    name: &str,
    job: &Value,
    rules: &[target_allocator::relabel::RelabelRule],
    results: &[Value],
) -> (std::collections::BTreeSet<LabelMap>, usize) {
    let inputs = discovered(job);
    // promtool orders its results by its own target hashing and collapses
    // targets that end with identical labels (as the reference collapses
    // equal identities), so outcomes compare as sets of kept label sets
    // plus the number dropped.
    let expected: Vec<LabelMap> = results.iter().map(|r| to_map(&r["labels"])).collect();
    let ours: Vec<LabelMap> = inputs
        .into_iter()
        .map(|mut labels| {
            if !relabel(&mut labels, rules) {
                return LabelMap::new();
            }
            // Prometheus's own post-processing after relabeling.
            labels.retain(|k, _| !k.starts_with("__meta_"));
            if !labels.contains_key("instance") {
                let address = labels["__address__"].clone();
                labels.insert("instance".into(), address);
            }
            labels
        })
        .collect();
    let split = |all: Vec<LabelMap>| {
        let dropped = all.iter().filter(|l| l.is_empty()).count();
        let kept: std::collections::BTreeSet<LabelMap> = all.into_iter().filter(|l| !l.is_empty()).collect();
        (kept, dropped)
    };
    let (expected_kept, expected_dropped) = split(expected);
    let (our_kept, our_dropped) = split(ours);
    assert_eq!(our_kept, expected_kept, "{name}: kept targets and their labels");
    assert_eq!(our_dropped, expected_dropped, "{name}: dropped targets");
    (our_kept, our_dropped)
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        target_allocator_sdk::hash::mix64(self.0)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

const NAMES: &[&str] = &["a", "b", "env", "__meta_x", "__meta_kubernetes_pod_name", "__tmp_t"];
const VALUES: &[&str] = &["", "x", "y", "ab", "Ab", "a;b", "10.0.0.1:80", "host:9100", "ünï ✓", "x_y"];
const REGEXES: &[&str] =
    &["(.*)", "x", "(a|b).*", "[a-z]+", "([^:]+):(\\d+)", ".*y.*", "10\\..*", "(?i)ab", "", "(.+);(.*)"];
const REPLACEMENTS: &[&str] = &["$1", "", "z", "${1}_$2", "v$1", "$$"];
const ACTIONS: &[&str] = &[
    "replace",
    "replace",
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
];

fn random_rule(rng: &mut Rng) -> Value {
    let action = *rng.pick(ACTIONS);
    let sources: Vec<&str> = (0..1 + rng.next() % 2).map(|_| *rng.pick(NAMES)).collect();
    // Plain target names only: where a template expands to an invalid name,
    // Prometheus 2 (this oracle) and 3 (the reference) disagree.
    let target = *rng.pick(&["a", "b", "env", "out", "__tmp_t"]);
    match action {
        "labelmap" => {
            json!({"action": action, "regex": rng.pick(&["__meta_(.+)", "(a|b)", "(.*)"]), "replacement": rng.pick(&["$1", "m_$1", "copy_${1}"])})
        }
        // Neither may remove `__address__` or the seeded `__scrape_*__` labels:
        // Prometheus then rejects the target as invalid after relabeling,
        // which the reference's filter (and ours) does not model.
        "labeldrop" => {
            json!({"action": action, "regex": rng.pick(&["__meta_.*", "a|b", "env", "__tmp.*|a"])})
        }
        "labelkeep" => {
            json!({"action": action, "regex": rng.pick(&["__.*", "__.*|job|a|b", "__.*|job|env"])})
        }
        "keepequal" | "dropequal" => {
            json!({"action": action, "source_labels": sources, "target_label": target})
        }
        "lowercase" | "uppercase" => {
            json!({"action": action, "source_labels": sources, "target_label": target})
        }
        "hashmod" => {
            json!({"action": action, "source_labels": sources, "target_label": target, "modulus": 1 + rng.next() % 5})
        }
        _ => json!({
            "action": action,
            "source_labels": sources,
            "separator": rng.pick(&[";", "/", ""]),
            "regex": rng.pick(REGEXES),
            "target_label": target,
            "replacement": rng.pick(REPLACEMENTS),
        }),
    }
}

fn random_targets(rng: &mut Rng, index: usize) -> Value {
    let groups: Vec<Value> = (0..5)
        .map(|t| {
            let mut labels = serde_json::Map::new();
            for _ in 0..1 + rng.next() % 4 {
                labels.insert(rng.pick(NAMES).to_string(), json!(rng.pick(VALUES)));
            }
            json!({"targets": [format!("10.9.{index}.{t}:9100")], "labels": labels})
        })
        .collect();
    Value::Array(groups)
}

/// Hundreds of generated rule lists and label sets from fixed seeds, each
/// compared with promtool like the fixtures above.
#[test]
fn randomized_relabeling_matches_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(20261127);
    let mut jobs = Vec::new();
    for i in 0..80 {
        let rules: Vec<Value> = (0..1 + rng.next() % 4).map(|_| random_rule(&mut rng)).collect();
        if parse_rules(&Value::Array(rules.clone())).is_err() {
            continue;
        }
        jobs.push(json!({"job_name": format!("random-{i}"), "static_configs": random_targets(&mut rng, i), "relabel_configs": rules}));
    }
    assert!(jobs.len() >= 60, "most generated rule lists are valid ({})", jobs.len());
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, json!({ "scrape_configs": jobs }).to_string()).unwrap();
    let mut compared = 0;
    let mut prepared = 0;
    for job in &jobs {
        let name = job["job_name"].as_str().unwrap();
        let rules = parse_rules(&job["relabel_configs"]).unwrap();
        let results = promtool(&config, name);
        compare(name, job, &rules, &results);
        compared += results.len();
        prepared += usize::from(target_allocator::relabel::PreparedRules::new(&rules).is_some());
    }
    assert!(compared >= 250, "{compared} targets compared");
    // Both engines face the oracle: rule lists that name every label they
    // touch run prepared (on slots), the others on the general engine.
    let general = jobs.len() - prepared;
    assert!(prepared >= 20 && general >= 10, "{prepared} prepared and {general} general rule lists");
}

/// Debian's promtool (Prometheus 2.42) validates names the legacy way.
fn parse_rules(rules: &Value) -> Result<Vec<target_allocator::relabel::RelabelRule>, String> {
    target_allocator::relabel::parse_rules(rules, NameValidation::Legacy)
}
