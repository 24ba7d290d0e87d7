//! `target-allocator assign`, `check` and `simulate`, run as a user would.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::test_guest_path;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/targets.json");

fn run(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_target-allocator"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn prints_one_line_per_target_in_input_order() {
    let (ok, stdout, stderr) = run(&["assign", "--collectors", "c1,c2,c3", EXAMPLE], None);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let addresses: Vec<&str> = lines.iter().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(
        addresses,
        [
            "10.0.0.1:9100",
            "10.0.0.2:9100",
            "10.0.0.3:9100",
            "10.0.0.4:9100",
            "10.0.1.1:8080",
            "10.0.1.2:8080",
            "apiserver.example:6443",
            "etcd.example:2379"
        ]
    );
    assert!(lines.iter().all(|l| ["c1", "c2", "c3"].contains(&l.split('\t').nth(1).unwrap())));
}

#[test]
fn reads_standard_input_and_marks_unassigned_targets() {
    let groups = r#"[{"targets": ["a:1"], "labels": {"__meta_kubernetes_pod_node_name": "n1"}},
                     {"targets": ["b:1"]}]"#;
    let (ok, stdout, stderr) = run(
        &["assign", "--strategy", "per-node", "--collectors", "c1", "--collector-nodes", "c1=n1", "-"],
        Some(groups),
    );
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "a:1\tc1\nb:1\t-\n");
    let (ok, stdout, _) = run(
        &[
            "assign",
            "--strategy",
            "per-node",
            "--collectors",
            "c1",
            "--collector-nodes",
            "c1=n1",
            "--fallback-strategy",
            "least-weighted",
            "--format",
            "json",
            "-",
        ],
        Some(groups),
    );
    assert!(ok);
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"address": "a:1", "collector": "c1"}, {"address": "b:1", "collector": "c1"}])
    );
}

#[test]
fn options_select_the_legacy_ring() {
    let many: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    let collectors = many.join(",");
    let (_, current, _) = run(&["assign", "--collectors", &collectors, EXAMPLE], None);
    let (ok, legacy, stderr) = run(
        &["assign", "--collectors", &collectors, "--options", r#"{"ring_format":"legacy"}"#, EXAMPLE],
        None,
    );
    assert!(ok, "{stderr}");
    assert_ne!(current, legacy, "the two ring formats place these targets differently");
}

#[test]
fn bad_input_fails_with_a_message_naming_the_problem() {
    for (args, stdin, expected) in [
        (vec!["assign", "--collectors", "c1", "-"], Some("{\"targets\": []}"), "not a list of target groups"),
        (vec!["assign", "--collectors", "c1", "/nonexistent.json"], None, "reading /nonexistent.json"),
        (
            vec!["assign", "--strategy", "nope", "--collectors", "c1", EXAMPLE],
            None,
            "unknown strategy \"nope\"; available: consistent-hashing, least-weighted, per-node",
        ),
        (vec!["assign", "--collectors", "c1,c1", EXAMPLE], None, "lists \"c1\" twice"),
        (
            vec!["assign", "--collectors", "c1", "--collector-nodes", "c2=n", EXAMPLE],
            None,
            "not in --collectors",
        ),
        (
            vec!["assign", "--collectors", "c1", "--options", "{\"load\": 0}", EXAMPLE],
            None,
            "load must be between",
        ),
    ] {
        let (ok, _, stderr) = run(&args, stdin);
        assert!(!ok, "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn loads_a_strategy_from_a_file_and_refuses_a_broken_one() {
    let guest = test_guest_path("wrong-length");
    let (ok, stdout, stderr) =
        run(&["assign", "--strategy", guest.to_str().unwrap(), "--collectors", "c1,c2", EXAMPLE], None);
    // The guest loads but returns a bad assignment: the command still answers,
    // using native consistent hashing, and says why.
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 8);
    assert!(stderr.contains("wrong-length: the strategy returned an invalid assignment"), "{stderr}");
    let forbidden = test_guest_path("imports-wasi");
    let (ok, _, stderr) =
        run(&["assign", "--strategy", forbidden.to_str().unwrap(), "--collectors", "c1", EXAMPLE], None);
    assert!(!ok);
    assert!(stderr.contains("imports `wasi:cli/environment@0.2.0`"), "{stderr}");
}

/// A built-in's component as a file: host/build.rs writes the built-ins next
/// to the test guests.
fn builtin_component(name: &str) -> String {
    component_file(&format!("strategy-{name}"))
}

/// A component host/build.rs wrote for the suite, by package name.
fn component_file(package: &str) -> String {
    let path = std::path::Path::new(env!("TA_TEST_GUESTS_DIR")).join(format!("{package}.wasm"));
    path.to_str().unwrap().to_string()
}

#[test]
fn check_passes_the_sdk_examples() {
    // What an author copying an example starts from must pass `check` as built.
    let zones = r#"{"collector_zones": {"collector-00": "a", "collector-0": "b", "collector-zzzz": "a"}}"#;
    for (package, options) in
        [("example-rendezvous", ""), ("example-bounded-load", ""), ("example-zone-aware", zones)]
    {
        let (ok, stdout, stderr) = run(&["check", &component_file(package), "--options", options], None);
        assert!(ok, "{package}: {stdout}{stderr}");
        assert_eq!(stdout.lines().last(), Some("passed"), "{package}: {stdout}");
    }
    // The zone-aware example refuses to run without a zone mapping, and says so.
    let (ok, stdout, _) = run(&["check", &component_file("example-zone-aware")], None);
    assert!(!ok);
    assert!(stdout.lines().any(|l| l.starts_with("FAIL  options")), "{stdout}");
}

#[test]
fn check_passes_built_ins_by_file_and_by_name() {
    for strategy in [builtin_component("consistent-hashing"), "least-weighted".to_string()] {
        let (ok, stdout, stderr) = run(&["check", &strategy], None);
        assert!(ok, "{strategy}: {stdout}{stderr}");
        for step in [
            "load",
            "options",
            "valid output",
            "deterministic",
            "no movement without change",
            "movement on scale-up",
            "movement on scale-down",
            "time",
        ] {
            assert!(stdout.lines().any(|l| l.starts_with(&format!("ok    {step} "))), "{step}: {stdout}");
        }
        assert!(stdout.contains("ms per 100000 targets"), "{stdout}");
        assert_eq!(stdout.lines().last(), Some("passed"));
    }
}

#[test]
fn check_fails_fault_guests_naming_what_failed() {
    for (guest, step, message) in [
        ("wrong-length", "valid output", "returned 1 entries for 0 targets"),
        ("panic", "valid output", "strategy panicked"),
        ("bad-index", "valid output", "which is no collector index"),
        ("imports-wasi", "load", "imports `wasi:cli/environment@0.2.0`"),
    ] {
        let path = test_guest_path(guest);
        let (ok, stdout, stderr) = run(&["check", path.to_str().unwrap()], None);
        assert!(!ok, "{guest} should fail: {stdout}");
        let line = stdout.lines().find(|l| l.starts_with(&format!("FAIL  {step} "))).unwrap_or_default();
        assert!(line.contains(message), "{guest}: {stdout}");
        assert!(stderr.contains(&format!("failed: {step}")), "{guest}: {stderr}");
    }
}

#[test]
fn check_judges_movement_against_the_bound() {
    // Bounded-load consistent hashing moves about 1.3-2.4 times the minimum on
    // the check's fixtures: within the default bound of 3, not within 1.
    let (ok, stdout, stderr) = run(&["check", "consistent-hashing", "--max-movement", "1"], None);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("FAIL  movement on scale-up"), "{stdout}");
    assert!(stdout.contains("more than the allowed"), "{stdout}");
    assert!(stderr.contains("movement on scale-up"), "{stderr}");
    let (ok, _, stderr) = run(&["check", "consistent-hashing", "--options", "{\"load\": 0}"], None);
    assert!(!ok);
    assert!(stderr.contains("failed: options"), "{stderr}");
}

#[test]
fn check_json_report_has_the_documented_keys() {
    let (ok, stdout, stderr) = run(&["check", "per-node", "--format", "json"], None);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["strategy"]["name"], "per-node");
    assert_eq!(report["strategy"]["source"], "built-in");
    assert_eq!(report["passed"], true);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 8);
    assert!(
        checks.iter().all(|c| c["result"] == "passed" && c["name"].is_string() && c["detail"].is_string())
    );
    for key in ["scale_up", "scale_down"] {
        let rows = report[key].as_array().unwrap();
        // Two fixture sizes where movement is measurable, three seeds each.
        assert_eq!(rows.len(), 6, "{key}");
        for field in ["seed", "targets", "collectors", "moved", "minimum", "ratio"] {
            assert!(rows[0][field].is_number(), "{key}.{field}");
        }
    }
    assert!(report["ms_per_100k_targets"].is_number());

    let guest = test_guest_path("wrong-length");
    let (ok, stdout, _) = run(&["check", guest.to_str().unwrap(), "--format", "json"], None);
    assert!(!ok);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(report["checks"][2]["result"], "failed");
    assert_eq!(report["checks"][3]["result"], "skipped");
}

#[test]
fn simulate_reports_balance_movement_and_time_for_synthetic_targets() {
    let (ok, stdout, stderr) =
        run(&["simulate", "--strategy", "least-weighted", "--targets", "10000", "--collectors", "10"], None);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "strategy    least-weighted 0.1.0 (built-in)");
    assert_eq!(lines[1], "targets     10000 (synthetic), 10 collectors");
    // Least-weighted fills collectors evenly and is sticky: adding a collector
    // moves nothing, removing one moves only its own targets.
    assert_eq!(
        lines[2],
        "balance     max/mean 1.000, min/mean 1.000, stddev 0.0 targets (0.0% of the mean 1000.0), unassigned 0"
    );
    assert_eq!(
        lines[3],
        "scale-up    10 -> 11 collectors: moved 0 of 10000 assigned targets; minimum 909 (1/(N+1)); ratio 0.00"
    );
    assert_eq!(
        lines[4],
        "scale-down  10 -> 9 collectors: moved 1000 of 10000 assigned targets; minimum 1000 \
         (the removed collector's targets); ratio 1.00"
    );
    assert!(lines[5].starts_with("time        ") && lines[5].contains("ms per assignment"), "{stdout}");
}

#[test]
fn simulate_reads_file_sd_targets_and_prints_json() {
    let (ok, stdout, stderr) =
        run(&["simulate", "--targets", EXAMPLE, "--collectors", "3", "--format", "json"], None);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["strategy"]["name"], "consistent-hashing");
    assert_eq!(report["targets"], 8);
    assert_eq!(report["origin"], EXAMPLE);
    assert_eq!(report["collectors"], 3);
    for field in ["max_over_mean", "min_over_mean", "mean", "stddev", "relative_stddev", "unassigned"] {
        assert!(report["balance"][field].is_number(), "balance.{field}");
    }
    assert_eq!(report["balance"]["unassigned"], 0);
    // 8 targets over 3 + 1 collectors: 2 must move at least.
    assert_eq!(report["scale_up"]["minimum"], 2);
    assert_eq!(report["scale_up"]["targets"], 8);
    for field in ["moved", "ratio"] {
        assert!(report["scale_up"][field].is_number() && report["scale_down"][field].is_number());
    }
    for field in ["ms_per_assignment", "us_per_target", "calls"] {
        assert!(report[field].is_number(), "{field}");
    }

    let groups = r#"[{"targets": ["a:1", "b:1", "c:1", "d:1"]}]"#;
    let (ok, stdout, stderr) = run(&["simulate", "--targets", "-", "--collectors", "2"], Some(groups));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("targets     4 (-), 2 collectors"), "{stdout}");
}

#[test]
fn simulate_refuses_bad_arguments() {
    for (args, expected) in [
        (vec!["simulate", "--targets", "10", "--collectors", "0"], "--collectors must be at least 1"),
        (
            vec!["simulate", "--targets", "/nonexistent.json", "--collectors", "2"],
            "reading /nonexistent.json",
        ),
        (vec!["simulate", "--strategy", "nope", "--targets", "10", "--collectors", "2"], "unknown strategy"),
        (
            vec!["simulate", "--targets", "10", "--collectors", "2", "--options", "{\"load\": 0}"],
            "load must be between",
        ),
    ] {
        let (ok, _, stderr) = run(&args, None);
        assert!(!ok, "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
