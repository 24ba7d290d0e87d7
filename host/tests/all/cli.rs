//! `target-allocator assign`, run as a user would.

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
