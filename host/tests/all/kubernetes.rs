//! Kubernetes, through the real kube-rs client against the test API server
//! (`tests/kube-apiserver`) over loopback: collector discovery in the
//! running allocator, watch recovery without flapping, shared watches and
//! paginated lists.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube_apiserver::ApiServer;
use serde_json::{Value, json};
use target_allocator::kubernetes::client::ClusterSource;
use target_allocator::kubernetes::watch::{WatchHub, WatchKey, resource_name};

use crate::support::{RunningAllocator, free_port, http_get, spawn_allocator, wait_for};

const NAMESPACE: &str = "otel";

/// A collector pod: Running, scheduled on `node`, Ready.
fn collector_pod(name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/component": "opentelemetry-collector"}},
        "spec": {"nodeName": node, "containers": [{"name": "otelcol", "image": "otelcol"}]},
        "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z",
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    })
}

fn not_ready_since(mut pod: Value, since: &str) -> Value {
    pod["status"]["conditions"] = json!([{"type": "Ready", "status": "False", "lastTransitionTime": since}]);
    pod
}

fn static_job(targets: usize) -> String {
    let addresses: Vec<String> = (0..targets).map(|i| format!("'10.9.0.{i}:9100'")).collect();
    format!(
        "config:\n  scrape_configs:\n    - job_name: static\n      static_configs:\n        - targets: [{}]\n",
        addresses.join(", ")
    )
}

const COMPONENT_SELECTOR: &str =
    "collector_selector:\n  matchlabels:\n    app.kubernetes.io/component: opentelemetry-collector\n";

/// The allocator discovering collectors through `server`, with `extra`
/// config (which may replace the default `collector_selector`).
fn allocator_on(server: &ApiServer, extra: &str) -> (tempfile::TempDir, RunningAllocator) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let selector = if extra.contains("collector_selector") { "" } else { COMPONENT_SELECTOR };
    let config = format!(
        "kube_config_file_path: {}\ncollector_namespace: {NAMESPACE}\n{selector}{extra}{}",
        kubeconfig.display(),
        static_job(20)
    );
    let allocator = spawn_allocator(dir.path(), free_port(), &config, &[]);
    (dir, allocator)
}

/// The collectors the allocator serves the `static` job to, and how many
/// targets they have in all.
fn served(port: u16) -> (BTreeSet<String>, usize) {
    let (status, body) = http_get(port, "/jobs/static/targets").unwrap();
    assert_eq!(status, 200);
    let all: serde_json::Map<String, Value> = serde_json::from_str(&body).unwrap();
    let targets = all.values().map(|c| c["targets"].as_array().map_or(0, Vec::len)).sum();
    (all.keys().cloned().collect(), targets)
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn wait_for_collectors(port: u16, ids: &[&str]) {
    let expected = set(ids);
    let targets = if ids.is_empty() { 0 } else { 20 };
    wait_for(&format!("collectors {ids:?}"), || served(port) == (expected.clone(), targets));
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let body = http_get(port, "/metrics").unwrap().1;
    body.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[test]
fn collectors_follow_their_pods() {
    let server = ApiServer::start();
    server.apply_all([
        collector_pod("c1", "n1"),
        collector_pod("c2", "n2"),
        // Not selected: other labels, or another namespace.
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": NAMESPACE},
               "spec": {"nodeName": "n1", "containers": []}, "status": {"phase": "Running"}}),
        {
            let mut p = collector_pod("elsewhere", "n1");
            p["metadata"]["namespace"] = json!("other");
            p
        },
        // Selected but unscheduled.
        {
            let mut p = collector_pod("pending", "n1");
            p["spec"].as_object_mut().unwrap().remove("nodeName");
            p["status"] = json!({"phase": "Pending"});
            p
        },
    ]);
    let (_dir, a) = allocator_on(&server, "");
    wait_for_collectors(a.port, &["c1", "c2"]);
    assert_eq!(metric(a.port, "opentelemetry_allocator_collectors_discovered"), Some(2.0));

    server.apply(collector_pod("c3", "n3")).unwrap();
    wait_for_collectors(a.port, &["c1", "c2", "c3"]);
    // Terminating pods stop being collectors at once, even while Ready.
    let mut terminating = collector_pod("c2", "n2");
    terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    server.apply(terminating).unwrap();
    wait_for_collectors(a.port, &["c1", "c3"]);
    assert!(server.delete("v1", "Pod", NAMESPACE, "c1"));
    wait_for_collectors(a.port, &["c3"]);
    // Not ready for longer than the grace period (default 30 s): gone.
    server.apply(not_ready_since(collector_pod("c3", "n3"), "2026-01-01T00:00:00Z")).unwrap();
    wait_for_collectors(a.port, &[]);
    assert_eq!(metric(a.port, "opentelemetry_allocator_collectors_discovered"), Some(0.0));
    // Not ready just now: still a collector within the grace period.
    server.apply(not_ready_since(collector_pod("c4", "n4"), &Timestamp::now().to_string())).unwrap();
    wait_for_collectors(a.port, &["c4"]);
}

#[test]
fn a_not_ready_collector_leaves_when_its_grace_period_runs_out() {
    let server = ApiServer::start();
    server.apply(collector_pod("steady", "n1")).unwrap();
    server.apply(not_ready_since(collector_pod("failing", "n2"), &Timestamp::now().to_string())).unwrap();
    let (_dir, a) = allocator_on(&server, "collector_not_ready_grace_period: 3s\n");
    // Nothing about the pods changes: the allocator's own re-evaluation removes it.
    wait_for_collectors(a.port, &["failing", "steady"]);
    wait_for_collectors(a.port, &["steady"]);
    // A zero grace period disables the health rule.
    let server = ApiServer::start();
    server.apply(not_ready_since(collector_pod("failing", "n2"), "2026-01-01T00:00:00Z")).unwrap();
    let (_dir, a) = allocator_on(&server, "collector_not_ready_grace_period: 0s\n");
    wait_for_collectors(a.port, &["failing"]);
}

#[test]
fn selector_expressions_select_collectors() {
    let server = ApiServer::start();
    let mut blue = collector_pod("blue", "n1");
    blue["metadata"]["labels"]["colour"] = json!("blue");
    let mut red = collector_pod("red", "n1");
    red["metadata"]["labels"]["colour"] = json!("red");
    server.apply_all([blue, red, collector_pod("plain", "n2")]);
    let (_dir, a) = allocator_on(
        &server,
        "collector_selector:\n  matchExpressions:\n    - {key: colour, operator: In, values: [blue, green]}\n",
    );
    wait_for_collectors(a.port, &["blue"]);
}

#[test]
fn watch_disconnects_and_410_recover_without_flapping() {
    let server = ApiServer::start();
    server.apply_all([collector_pod("c1", "n1"), collector_pod("c2", "n2")]);
    let (_dir, a) = allocator_on(&server, "");
    wait_for_collectors(a.port, &["c1", "c2"]);
    let assignment = http_get(a.port, "/jobs/static/targets").unwrap().1;
    let steady = |what: &str| {
        let (collectors, targets) = served(a.port);
        assert_eq!((collectors, targets), (set(&["c1", "c2"]), 20), "{what}: the collector set flapped");
        assert_eq!(http_get(a.port, "/jobs/static/targets").unwrap().1, assignment, "{what}: targets moved");
    };

    // A dropped connection: the watch resumes from its last version.
    let before = server.counts("pods");
    server.disconnect_watches();
    wait_for("the watch to resume", || {
        steady("disconnect");
        server.counts("pods").watches > before.watches
    });

    // History compacted, then disconnected: the resume gets 410 and kube re-lists.
    let before = server.counts("pods");
    server.compact();
    server.disconnect_watches();
    wait_for("a re-list after 410", || {
        steady("410");
        let now = server.counts("pods");
        now.lists > before.lists && now.open_watches == 1
    });

    // Failing requests are retried with backoff; the set holds meanwhile.
    server.fail_next("pods", 3, 500);
    server.compact();
    server.disconnect_watches();
    server.apply(collector_pod("c3", "n3")).unwrap();
    wait_for_collectors(a.port, &["c1", "c2", "c3"]);
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("kubernetes watch failed; retrying"), "{log}");
}

#[test]
fn no_cluster_configuration_is_an_error_naming_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("targetallocator.yaml");
    std::fs::write(
        &path,
        format!(
            "collector_namespace: otel\nkube_config_file_path: {}\n{}",
            dir.path().join("missing").display(),
            static_job(1)
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_target-allocator"))
        .arg("--config-file")
        .arg(&path)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("collector discovery in namespace \"otel\""), "{stderr}");
    assert!(stderr.contains("in-cluster config (service account)"), "{stderr}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn pods_key(server: &ApiServer, namespace: Option<&str>, labels: Option<&str>) -> WatchKey {
    WatchKey {
        cluster: server.url(),
        resource: resource_name::<Pod>(),
        namespace: namespace.map(str::to_string),
        label_selector: labels.map(str::to_string),
        field_selector: None,
    }
}

#[test]
fn shared_watches_open_one_connection_and_list_in_pages() {
    let server = ApiServer::start();
    // 1234 pods: three pages of kube-runtime's 500.
    server.apply_all((0..1234).map(|i| {
        let mut pod = collector_pod(&format!("p{i:04}"), "n1");
        pod["metadata"]["namespace"] = json!(format!("ns{}", i % 7));
        pod
    }));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let rt = runtime();
    rt.block_on(async {
        let client = ClusterSource::Kubeconfig(kubeconfig).client().await.unwrap();
        let hub = WatchHub::new();
        let first = hub.watch::<Pod>(&client, pods_key(&server, None, None));
        let second = hub.watch::<Pod>(&client, pods_key(&server, None, None));
        assert!(Arc::ptr_eq(&first, &second));
        // A different selection is a different watch.
        let narrow = hub.watch::<Pod>(&client, pods_key(&server, Some("ns3"), None));
        first.ready().await;
        narrow.ready().await;
        assert_eq!(first.store().len(), 1234);
        assert_eq!(narrow.store().len(), (0..1234).filter(|i| i % 7 == 3).count());
        assert_eq!(hub.started(), 2);
        let counts = server.counts("pods");
        // Three pages for all namespaces, one for ns3.
        assert_eq!(counts.lists, 4, "{counts:?}");
        wait_until(|| server.counts("pods").open_watches == 2).await;
        assert_eq!(server.counts("pods").watches, 2);

        // Changes reach the store through the one watch.
        let mut changes = first.changes();
        changes.mark_unchanged();
        server.delete("v1", "Pod", "ns0", "p0000");
        changes.changed().await.unwrap();
        wait_until(|| first.store().len() == 1233).await;
        // When the last holder goes, the watch stops.
        drop((first, second, narrow));
        wait_until(|| server.counts("pods").open_watches == 0).await;
    });
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
