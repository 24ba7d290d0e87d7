//! `kubernetes_sd_configs` end to end: the running allocator discovers
//! targets through the test API server with the real kube-rs client, and
//! serves them on `/jobs/{job}/targets`, relabel filtering applied; jobs
//! with the same role and namespaces share one watch.

use std::collections::BTreeSet;

use kube_apiserver::ApiServer;
use serde_json::{Value, json};

use crate::support::{RunningAllocator, free_port, http_get, spawn_allocator, wait_for};

fn app_pod(name: &str, app: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "apps", "labels": {"app": app}},
        "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "app",
                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "hostIP": "192.0.2.1",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn collector_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "otel", "labels": {"app": "collector"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "otelcol", "image": "otelcol"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn web_endpoints(addresses: &[(&str, &str)]) -> Value {
    let addresses: Vec<Value> = addresses
        .iter()
        .map(|(ip, pod)| {
            json!({"ip": ip, "nodeName": "n1",
                                "targetRef": {"kind": "Pod", "name": pod, "namespace": "apps"}})
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "apps"},
        "subsets": [{"addresses": addresses, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]
    })
}

fn web_service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "apps", "labels": {"tier": "front"}},
        "spec": {"clusterIP": "10.96.0.10", "type": "ClusterIP",
                 "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    })
}

fn allocator_on(server: &ApiServer) -> (tempfile::TempDir, RunningAllocator) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let sd =
        format!("{{role: pod, kubeconfig_file: {}, namespaces: {{names: [apps]}}}}", kubeconfig.display());
    let endpoints_sd = format!(
        "{{role: endpoints, kubeconfig_file: {}, namespaces: {{names: [apps]}}}}",
        kubeconfig.display()
    );
    let config = format!(
        "kube_config_file_path: {}\ncollector_namespace: otel\ncollector_selector: {{matchLabels: {{app: collector}}}}\n\
         config:\n  scrape_configs:\n\
         \x20   - job_name: web-pods\n      kubernetes_sd_configs: [{sd}]\n\
         \x20     relabel_configs:\n\
         \x20       - {{source_labels: [__meta_kubernetes_pod_label_app], regex: web, action: keep}}\n\
         \x20   - job_name: all-pods\n      kubernetes_sd_configs: [{sd}]\n\
         \x20   - job_name: web-endpoints\n      kubernetes_sd_configs: [{endpoints_sd}]\n",
        kubeconfig.display()
    );
    let allocator = spawn_allocator(dir.path(), free_port(), &config, &[]);
    (dir, allocator)
}

/// Every target of `job` across collectors: (address, the label `label`).
fn targets(port: u16, job: &str, label: &str) -> BTreeSet<(String, String)> {
    let (status, body) = http_get(port, &format!("/jobs/{job}/targets")).unwrap();
    assert_eq!(status, 200);
    let all: serde_json::Map<String, Value> = serde_json::from_str(&body).unwrap();
    all.values()
        .flat_map(|c| c["targets"].as_array().cloned().unwrap_or_default())
        .map(|g| {
            let address = g["targets"][0].as_str().unwrap_or("").to_string();
            (address, g["labels"][label].as_str().unwrap_or("").to_string())
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn roles_serve_their_targets_with_relabel_filtering_and_shared_watches() {
    let server = ApiServer::start();
    server.apply_all([
        collector_pod("c1"),
        collector_pod("c2"),
        app_pod("web-0", "web", "10.1.0.1"),
        app_pod("web-1", "web", "10.1.0.2"),
        app_pod("db-0", "db", "10.1.0.3"),
        web_service(),
        web_endpoints(&[("10.1.0.1", "web-0"), ("10.1.0.2", "web-1")]),
    ]);
    let (_dir, a) = allocator_on(&server);
    let pod_name = "__meta_kubernetes_pod_name";
    wait_for("pod targets", || {
        targets(a.port, "web-pods", pod_name)
            == pairs(&[("10.1.0.1:8080", "web-0"), ("10.1.0.2:8080", "web-1")])
    });
    assert_eq!(
        targets(a.port, "all-pods", pod_name),
        pairs(&[("10.1.0.1:8080", "web-0"), ("10.1.0.2:8080", "web-1"), ("10.1.0.3:8080", "db-0")])
    );
    wait_for("endpoints targets", || {
        targets(a.port, "web-endpoints", pod_name)
            == pairs(&[("10.1.0.1:8080", "web-0"), ("10.1.0.2:8080", "web-1")])
    });
    assert_eq!(
        targets(a.port, "web-endpoints", "__meta_kubernetes_service_label_tier"),
        pairs(&[("10.1.0.1:8080", "front"), ("10.1.0.2:8080", "front")])
    );

    // Both pod jobs and the endpoints role's pod lookups read one watch of
    // the apps namespace; the collectors have their own in otel.
    let pods = server.counts("pods");
    assert_eq!(pods.open_watches, 2, "{pods:?}");
    assert_eq!(pods.watches, 2, "{pods:?}");

    // A pod relabelled out of web, a pod gone, an endpoint added.
    server.apply(app_pod("web-1", "canary", "10.1.0.2")).unwrap();
    assert!(server.delete("v1", "Pod", "apps", "db-0"));
    server.apply(app_pod("web-2", "web", "10.1.0.4")).unwrap();
    server
        .apply(web_endpoints(&[("10.1.0.1", "web-0"), ("10.1.0.2", "web-1"), ("10.1.0.4", "web-2")]))
        .unwrap();
    wait_for("pod changes", || {
        targets(a.port, "web-pods", pod_name)
            == pairs(&[("10.1.0.1:8080", "web-0"), ("10.1.0.4:8080", "web-2")])
    });
    wait_for("endpoints changes", || targets(a.port, "web-endpoints", pod_name).len() == 3);
    assert_eq!(
        targets(a.port, "all-pods", pod_name),
        pairs(&[("10.1.0.1:8080", "web-0"), ("10.1.0.2:8080", "web-1"), ("10.1.0.4:8080", "web-2")])
    );
    // Related objects re-emit groups: the service's labels follow the service.
    let mut service = web_service();
    service["metadata"]["labels"]["tier"] = json!("back");
    server.apply(service).unwrap();
    wait_for("service label change on endpoints targets", || {
        targets(a.port, "web-endpoints", "__meta_kubernetes_service_label_tier")
            .iter()
            .all(|(_, t)| t == "back")
    });
}

#[test]
fn service_endpointslice_node_and_ingress_roles_run_through_the_runner() {
    let server = ApiServer::start();
    server.apply_all([
        collector_pod("c1"),
        app_pod("web-0", "web", "10.1.0.1"),
        web_service(),
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": "n1", "labels": {"zone": "a"}},
               "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.1"}],
                          "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "web-abc", "namespace": "apps",
                            "labels": {"kubernetes.io/service-name": "web"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": true}, "nodeName": "n1",
                              "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "apps"}}],
               "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "web", "namespace": "apps"},
               "spec": {"rules": [{"host": "web.example", "http": {"paths": [
                   {"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 8080}}}}]}}]}}),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let k = kubeconfig.display();
    let config = format!(
        "kube_config_file_path: {k}\ncollector_namespace: otel\ncollector_selector: {{matchLabels: {{app: collector}}}}\n\
         config:\n  scrape_configs:\n\
         \x20   - {{job_name: services, kubernetes_sd_configs: [{{role: service, kubeconfig_file: {k}}}]}}\n\
         \x20   - {{job_name: slices, kubernetes_sd_configs: [{{role: endpointslice, kubeconfig_file: {k}, attach_metadata: {{node: true}}}}]}}\n\
         \x20   - {{job_name: nodes, kubernetes_sd_configs: [{{role: node, kubeconfig_file: {k}}}]}}\n\
         \x20   - {{job_name: ingresses, kubernetes_sd_configs: [{{role: ingress, kubeconfig_file: {k}, namespaces: {{names: [apps]}}}}]}}\n"
    );
    let a = spawn_allocator(dir.path(), free_port(), &config, &[]);
    wait_for("every role's targets", || {
        targets(a.port, "services", "__meta_kubernetes_service_name")
            == pairs(&[("web.apps.svc:8080", "web")])
            && targets(a.port, "slices", "__meta_kubernetes_node_label_zone")
                == pairs(&[("10.1.0.1:8080", "a")])
            && targets(a.port, "nodes", "__meta_kubernetes_node_name") == pairs(&[("192.0.2.1:10250", "n1")])
            && targets(a.port, "ingresses", "__meta_kubernetes_ingress_host")
                == pairs(&[("web.example", "web.example")])
    });
    // attach_metadata.node: the node's labels follow the node.
    server
        .apply(
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"zone": "b"}},
                      "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.1"}],
                                 "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}),
        )
        .unwrap();
    wait_for("node label on slice targets", || {
        targets(a.port, "slices", "__meta_kubernetes_node_label_zone") == pairs(&[("10.1.0.1:8080", "b")])
    });
    // Cluster-wide roles share the watch: nodes are watched once for both jobs.
    assert_eq!(server.counts("nodes").open_watches, 1);
}
