//! Role tests: objects built from JSON as the API server would send them,
//! complete label sets asserted (expected values read off Prometheus's
//! discovery code and its tests).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;
use crate::allocation::{Labels, TargetGroup};

/// An in-memory [`Related`].
#[derive(Default)]
pub(super) struct Store {
    pods: HashMap<(String, String), Arc<Pod>>,
    services: HashMap<(String, String), Arc<Service>>,
    nodes: HashMap<String, Arc<Node>>,
    namespaces: HashMap<String, Arc<Namespace>>,
    replica_sets: HashMap<(String, String), Arc<ReplicaSet>>,
    jobs: HashMap<(String, String), Arc<Job>>,
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_string(), name.to_string())
}

fn meta_key<T: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>>(
    object: &T,
) -> (String, String) {
    let meta = object.metadata();
    key(meta.namespace.as_deref().unwrap_or(""), meta.name.as_deref().unwrap_or(""))
}

impl Store {
    pub fn with_pod(mut self, pod: Pod) -> Store {
        self.pods.insert(meta_key(&pod), Arc::new(pod));
        self
    }
    pub fn with_service(mut self, service: Service) -> Store {
        self.services.insert(meta_key(&service), Arc::new(service));
        self
    }
    pub fn with_node(mut self, node: Node) -> Store {
        self.nodes.insert(meta_key(&node).1, Arc::new(node));
        self
    }
    pub fn with_namespace(mut self, namespace: Namespace) -> Store {
        self.namespaces.insert(meta_key(&namespace).1, Arc::new(namespace));
        self
    }
    pub fn with_replica_set(mut self, rs: ReplicaSet) -> Store {
        self.replica_sets.insert(meta_key(&rs), Arc::new(rs));
        self
    }
    pub fn with_job(mut self, job: Job) -> Store {
        self.jobs.insert(meta_key(&job), Arc::new(job));
        self
    }
}

impl Related for Store {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&key(namespace, name)).cloned()
    }
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&key(namespace, name)).cloned()
    }
    fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.get(name).cloned()
    }
    fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces.get(name).cloned()
    }
    fn replica_set(&self, namespace: &str, name: &str) -> Option<Arc<ReplicaSet>> {
        self.replica_sets.get(&key(namespace, name)).cloned()
    }
    fn job(&self, namespace: &str, name: &str) -> Option<Arc<Job>> {
        self.jobs.get(&key(namespace, name)).cloned()
    }
}

pub(super) fn object<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("fixture parses")
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
}

/// Asserts a group label by label, so a failure names the differing label.
#[track_caller]
pub(super) fn assert_group(actual: &TargetGroup, group_labels: &[(&str, &str)], targets: &[&[(&str, &str)]]) {
    let show = |l: &Labels| l.iter().map(|(n, v)| format!("{n}={v:?}")).collect::<Vec<_>>().join("\n  ");
    assert_eq!(show(&actual.labels), show(&labels(group_labels)), "group labels");
    assert_eq!(actual.targets.len(), targets.len(), "target count: {:#?}", actual.targets);
    for (i, (actual, expected)) in actual.targets.iter().zip(targets).enumerate() {
        assert_eq!(show(actual), show(&labels(expected)), "target {i}");
    }
}

const NONE: AttachMetadata =
    AttachMetadata { node: false, namespace: false, deployment: false, job: false, cronjob: false };

fn node(name: &str) -> Node {
    object(json!({
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "z1"}, "annotations": {"a": "b"}},
    }))
}

fn namespace(name: &str) -> Namespace {
    object(json!({"metadata": {"name": name, "labels": {"team": "obs"}, "annotations": {"owner.io/x": "y"}}}))
}

#[test]
fn role_names_round_trip() {
    for role in [Role::Pod, Role::Service, Role::Endpoints, Role::EndpointSlice, Role::Node, Role::Ingress] {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
    }
    assert_eq!("endpointslice".parse::<Role>(), Ok(Role::EndpointSlice));
    assert!("endpoint".parse::<Role>().is_err());
}

#[test]
fn sanitises_label_names() {
    assert_eq!(sanitize_label_name("app.kubernetes.io/name"), "app_kubernetes_io_name");
    assert_eq!(sanitize_label_name("é-x"), "__x");
    assert_eq!(sanitize_label_name("ok_09"), "ok_09");
}

// ---------------------------------------------------------------- pod

fn web_pod() -> Pod {
    object(json!({
        "metadata": {
            "name": "web-1", "namespace": "shop", "uid": "u-1",
            "labels": {"app.kubernetes.io/name": "web", "tier": ""},
            "annotations": {"prometheus.io/scrape": "true"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Other", "name": "not-controller", "uid": "o"},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5f", "uid": "r", "controller": true},
            ],
        },
        "spec": {
            "nodeName": "n1",
            "containers": [
                {"name": "app", "image": "app:1", "ports": [
                    {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                    {"containerPort": 9090, "protocol": "UDP"},
                ]},
                {"name": "sidecar", "image": "side:2"},
            ],
            "initContainers": [
                {"name": "init", "image": "init:3", "ports": [{"name": "i", "containerPort": 7000, "protocol": "TCP"}]},
            ],
        },
        "status": {
            "phase": "Running", "podIP": "10.0.0.1", "hostIP": "192.168.0.1",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "containerID": "containerd://a", "image": "app:1", "imageID": "", "ready": true, "restartCount": 0},
            ],
            "initContainerStatuses": [
                {"name": "init", "containerID": "containerd://i", "image": "init:3", "imageID": "", "ready": false, "restartCount": 0},
            ],
        },
    }))
}

/// The group labels of [`web_pod`] without attached metadata.
const WEB_POD_LABELS: &[(&str, &str)] = &[
    ("__meta_kubernetes_namespace", "shop"),
    ("__meta_kubernetes_pod_annotation_prometheus_io_scrape", "true"),
    ("__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape", "true"),
    ("__meta_kubernetes_pod_controller_kind", "ReplicaSet"),
    ("__meta_kubernetes_pod_controller_name", "web-5f"),
    ("__meta_kubernetes_pod_host_ip", "192.168.0.1"),
    ("__meta_kubernetes_pod_ip", "10.0.0.1"),
    ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "web"),
    ("__meta_kubernetes_pod_label_tier", ""),
    ("__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name", "true"),
    ("__meta_kubernetes_pod_labelpresent_tier", "true"),
    ("__meta_kubernetes_pod_name", "web-1"),
    ("__meta_kubernetes_pod_node_name", "n1"),
    ("__meta_kubernetes_pod_phase", "Running"),
    ("__meta_kubernetes_pod_ready", "true"),
    ("__meta_kubernetes_pod_uid", "u-1"),
];

#[test]
fn pod_targets_per_container_port_and_portless_container() {
    let (source, group) = pod_group(&web_pod(), &Store::default(), &NONE);
    assert_eq!(source, "pod/shop/web-1");
    assert_group(
        &group,
        WEB_POD_LABELS,
        &[
            &[
                ("__address__", "10.0.0.1:8080"),
                ("__meta_kubernetes_pod_container_id", "containerd://a"),
                ("__meta_kubernetes_pod_container_image", "app:1"),
                ("__meta_kubernetes_pod_container_init", "false"),
                ("__meta_kubernetes_pod_container_name", "app"),
                ("__meta_kubernetes_pod_container_port_name", "http"),
                ("__meta_kubernetes_pod_container_port_number", "8080"),
                ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ],
            &[
                ("__address__", "10.0.0.1:9090"),
                ("__meta_kubernetes_pod_container_id", "containerd://a"),
                ("__meta_kubernetes_pod_container_image", "app:1"),
                ("__meta_kubernetes_pod_container_init", "false"),
                ("__meta_kubernetes_pod_container_name", "app"),
                ("__meta_kubernetes_pod_container_port_name", ""),
                ("__meta_kubernetes_pod_container_port_number", "9090"),
                ("__meta_kubernetes_pod_container_port_protocol", "UDP"),
            ],
            // No status for the sidecar: an empty container ID, as Prometheus.
            &[
                ("__address__", "10.0.0.1"),
                ("__meta_kubernetes_pod_container_id", ""),
                ("__meta_kubernetes_pod_container_image", "side:2"),
                ("__meta_kubernetes_pod_container_init", "false"),
                ("__meta_kubernetes_pod_container_name", "sidecar"),
            ],
            &[
                ("__address__", "10.0.0.1:7000"),
                ("__meta_kubernetes_pod_container_id", "containerd://i"),
                ("__meta_kubernetes_pod_container_image", "init:3"),
                ("__meta_kubernetes_pod_container_init", "true"),
                ("__meta_kubernetes_pod_container_name", "init"),
                ("__meta_kubernetes_pod_container_port_name", "i"),
                ("__meta_kubernetes_pod_container_port_number", "7000"),
                ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ],
        ],
    );
}

#[test]
fn pod_without_ip_has_an_empty_group() {
    let pod: Pod = object(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
        "status": {"phase": "Pending"},
    }));
    let (source, group) = pod_group(&pod, &Store::default(), &NONE);
    assert_eq!(source, "pod/ns/p");
    assert_eq!(group, TargetGroup::default());
}

#[test]
fn not_ready_pod_without_controller_or_ready_condition() {
    let pod: Pod = object(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]},
        "status": {"phase": "Running", "podIP": "fd00::1", "conditions": [{"type": "Ready", "status": "False"}]},
    }));
    let expected_labels = [
        ("__meta_kubernetes_namespace", "ns"),
        ("__meta_kubernetes_pod_host_ip", ""),
        ("__meta_kubernetes_pod_ip", "fd00::1"),
        ("__meta_kubernetes_pod_name", "p"),
        ("__meta_kubernetes_pod_node_name", ""),
        ("__meta_kubernetes_pod_phase", "Running"),
        ("__meta_kubernetes_pod_ready", "false"),
        ("__meta_kubernetes_pod_uid", "u"),
    ];
    let target = [
        ("__address__", "[fd00::1]:80"),
        ("__meta_kubernetes_pod_container_id", ""),
        ("__meta_kubernetes_pod_container_image", "i"),
        ("__meta_kubernetes_pod_container_init", "false"),
        ("__meta_kubernetes_pod_container_name", "c"),
        ("__meta_kubernetes_pod_container_port_name", ""),
        ("__meta_kubernetes_pod_container_port_number", "80"),
        ("__meta_kubernetes_pod_container_port_protocol", ""),
    ];
    assert_group(&pod_group(&pod, &Store::default(), &NONE).1, &expected_labels, &[&target]);

    // Without a Ready condition readiness is unknown.
    let mut pod = pod;
    pod.status.as_mut().unwrap().conditions = None;
    let group = pod_group(&pod, &Store::default(), &NONE).1;
    assert_eq!(group.labels.get("__meta_kubernetes_pod_ready"), Some("unknown"));
}

#[test]
fn pod_attach_metadata_node_and_namespace() {
    let store = Store::default().with_node(node("n1")).with_namespace(namespace("shop"));
    let attach = AttachMetadata { node: true, namespace: true, ..NONE };
    let group = pod_group(&web_pod(), &store, &attach).1;
    let mut expected = WEB_POD_LABELS.to_vec();
    expected.extend([
        ("__meta_kubernetes_node_name", "n1"),
        ("__meta_kubernetes_node_label_topology_kubernetes_io_zone", "z1"),
        ("__meta_kubernetes_node_labelpresent_topology_kubernetes_io_zone", "true"),
        ("__meta_kubernetes_node_annotation_a", "b"),
        ("__meta_kubernetes_node_annotationpresent_a", "true"),
        ("__meta_kubernetes_namespace_label_team", "obs"),
        ("__meta_kubernetes_namespace_labelpresent_team", "true"),
        ("__meta_kubernetes_namespace_annotation_owner_io_x", "y"),
        ("__meta_kubernetes_namespace_annotationpresent_owner_io_x", "true"),
    ]);
    let expected_group = labels(&expected);
    assert_eq!(group.labels, expected_group);
    assert_eq!(group.targets.len(), 4);
    assert_eq!(
        pod_dependencies(&web_pod(), &attach),
        vec![Dependency::Node("n1".into()), Dependency::Namespace("shop".into())]
    );

    // Prometheus waits for the node: until it is known the pod has no targets.
    let without_node = Store::default().with_namespace(namespace("shop"));
    assert_eq!(pod_group(&web_pod(), &without_node, &attach).1, TargetGroup::default());
    // An unknown namespace only drops the namespace labels.
    let without_namespace = Store::default().with_node(node("n1"));
    let group = pod_group(&web_pod(), &without_namespace, &attach).1;
    assert!(group.labels.get("__meta_kubernetes_node_name").is_some());
    assert!(group.labels.iter().all(|(n, _)| !n.starts_with("__meta_kubernetes_namespace_")));
}

#[test]
fn pod_attach_metadata_deployment_job_cronjob() {
    let rs: ReplicaSet =
        object(json!({"metadata": {"name": "web-5f", "namespace": "shop", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d", "controller": true},
        ]}}));
    let store = Store::default().with_replica_set(rs);
    let attach = AttachMetadata { deployment: true, ..NONE };
    let group = pod_group(&web_pod(), &store, &attach).1;
    assert_eq!(group.labels.get("__meta_kubernetes_pod_deployment_name"), Some("web"));
    assert_eq!(group.labels.len(), WEB_POD_LABELS.len() + 1);
    assert_eq!(
        pod_dependencies(&web_pod(), &attach),
        vec![Dependency::ReplicaSet { namespace: "shop".into(), name: "web-5f".into() }]
    );
    // Off by default, and absent while the ReplicaSet is unknown.
    assert_eq!(pod_group(&web_pod(), &store, &NONE).1.labels, labels(WEB_POD_LABELS));
    assert_eq!(pod_group(&web_pod(), &Store::default(), &attach).1.labels, labels(WEB_POD_LABELS));

    let mut pod = web_pod();
    pod.metadata.owner_references = Some(vec![object(json!(
        {"apiVersion": "batch/v1", "kind": "Job", "name": "nightly-29", "uid": "j", "controller": true}
    ))]);
    let job: Job =
        object(json!({"metadata": {"name": "nightly-29", "namespace": "shop", "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": "c", "controller": true},
        ]}}));
    let store = Store::default().with_job(job);
    let both = AttachMetadata { job: true, cronjob: true, ..NONE };
    let group = pod_group(&pod, &store, &both).1;
    assert_eq!(group.labels.get("__meta_kubernetes_pod_controller_kind"), Some("Job"));
    assert_eq!(group.labels.get("__meta_kubernetes_pod_job_name"), Some("nightly-29"));
    assert_eq!(group.labels.get("__meta_kubernetes_pod_cronjob_name"), Some("nightly"));
    let job_only = pod_group(&pod, &store, &AttachMetadata { job: true, ..NONE }).1;
    assert_eq!(job_only.labels.get("__meta_kubernetes_pod_job_name"), Some("nightly-29"));
    assert_eq!(job_only.labels.get("__meta_kubernetes_pod_cronjob_name"), None);
}

// ---------------------------------------------------------------- service

fn service(spec: Value, status: Value) -> Service {
    object(json!({
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {"x/y": "z"}},
        "spec": spec,
        "status": status,
    }))
}

const WEB_SERVICE_LABELS: &[(&str, &str)] = &[
    ("__meta_kubernetes_namespace", "shop"),
    ("__meta_kubernetes_service_annotation_x_y", "z"),
    ("__meta_kubernetes_service_annotationpresent_x_y", "true"),
    ("__meta_kubernetes_service_label_app", "web"),
    ("__meta_kubernetes_service_labelpresent_app", "true"),
    ("__meta_kubernetes_service_name", "web"),
];

#[test]
fn cluster_ip_service_has_a_target_per_port() {
    let svc = service(
        json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"port": 53, "protocol": "UDP"},
        ]}),
        json!({}),
    );
    let (source, group) = service_group(&svc, &Store::default(), &NONE);
    assert_eq!(source, "service/shop/web");
    assert_group(
        &group,
        WEB_SERVICE_LABELS,
        &[
            &[
                ("__address__", "web.shop.svc:80"),
                ("__meta_kubernetes_service_cluster_ip", "10.96.0.10"),
                ("__meta_kubernetes_service_port_name", "http"),
                ("__meta_kubernetes_service_port_number", "80"),
                ("__meta_kubernetes_service_port_protocol", "TCP"),
                ("__meta_kubernetes_service_type", "ClusterIP"),
            ],
            &[
                ("__address__", "web.shop.svc:53"),
                ("__meta_kubernetes_service_cluster_ip", "10.96.0.10"),
                ("__meta_kubernetes_service_port_name", ""),
                ("__meta_kubernetes_service_port_number", "53"),
                ("__meta_kubernetes_service_port_protocol", "UDP"),
                ("__meta_kubernetes_service_type", "ClusterIP"),
            ],
        ],
    );
}

#[test]
fn external_name_service_reports_the_name_not_a_cluster_ip() {
    let svc = service(
        json!({"type": "ExternalName", "externalName": "db.example.com", "ports": [{"port": 5432, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_group(
        &service_group(&svc, &Store::default(), &NONE).1,
        WEB_SERVICE_LABELS,
        &[&[
            ("__address__", "web.shop.svc:5432"),
            ("__meta_kubernetes_service_external_name", "db.example.com"),
            ("__meta_kubernetes_service_port_name", ""),
            ("__meta_kubernetes_service_port_number", "5432"),
            ("__meta_kubernetes_service_port_protocol", "TCP"),
            ("__meta_kubernetes_service_type", "ExternalName"),
        ]],
    );
}

#[test]
fn load_balancer_service_reports_ingress_ips_or_the_spec_ip() {
    let spec = json!({"type": "LoadBalancer", "clusterIP": "10.96.0.11", "loadBalancerIP": "1.1.1.1",
        "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]});
    let target = |lb_ip| {
        vec![
            ("__address__", "web.shop.svc:443"),
            ("__meta_kubernetes_service_cluster_ip", "10.96.0.11"),
            ("__meta_kubernetes_service_loadbalancer_ip", lb_ip),
            ("__meta_kubernetes_service_port_name", "https"),
            ("__meta_kubernetes_service_port_number", "443"),
            ("__meta_kubernetes_service_port_protocol", "TCP"),
            ("__meta_kubernetes_service_type", "LoadBalancer"),
        ]
    };
    let with_status = service(
        spec.clone(),
        json!({"loadBalancer": {"ingress": [{"ip": "2.2.2.2"}, {"hostname": "lb.example.com"}, {"ip": "3.3.3.3"}]}}),
    );
    let group = service_group(&with_status, &Store::default(), &NONE).1;
    assert_group(&group, WEB_SERVICE_LABELS, &[&target("2.2.2.2,3.3.3.3")]);
    let without_status = service(spec, json!({}));
    let group = service_group(&without_status, &Store::default(), &NONE).1;
    assert_group(&group, WEB_SERVICE_LABELS, &[&target("1.1.1.1")]);
}

#[test]
fn service_attach_metadata_namespace() {
    let svc = service(json!({"ports": [{"port": 80}]}), json!({}));
    let attach = AttachMetadata { namespace: true, node: true, ..NONE };
    let group = service_group(&svc, &Store::default().with_namespace(namespace("shop")), &attach).1;
    let mut expected = WEB_SERVICE_LABELS.to_vec();
    expected.extend([
        ("__meta_kubernetes_namespace_label_team", "obs"),
        ("__meta_kubernetes_namespace_labelpresent_team", "true"),
        ("__meta_kubernetes_namespace_annotation_owner_io_x", "y"),
        ("__meta_kubernetes_namespace_annotationpresent_owner_io_x", "true"),
    ]);
    // No type: Prometheus reports it empty and still gives the cluster IP.
    let target = [
        ("__address__", "web.shop.svc:80"),
        ("__meta_kubernetes_service_cluster_ip", ""),
        ("__meta_kubernetes_service_port_name", ""),
        ("__meta_kubernetes_service_port_number", "80"),
        ("__meta_kubernetes_service_port_protocol", ""),
        ("__meta_kubernetes_service_type", ""),
    ];
    assert_group(&group, &expected, &[&target]);
    assert_eq!(service_dependencies(&svc, &attach), vec![Dependency::Namespace("shop".into())]);
    assert_eq!(service_dependencies(&svc, &NONE), vec![]);
}

// ---------------------------------------------------------------- node

fn node_with_addresses(addresses: Value) -> Node {
    object(json!({
        "metadata": {"name": "n1", "labels": {"kubernetes.io/os": "linux"}, "annotations": {"n": "1"}},
        "spec": {"providerID": "aws:///eu-1a/i-1"},
        "status": {
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}],
        },
    }))
}

#[test]
fn node_target_uses_the_preferred_address_and_the_kubelet_port() {
    let node = node_with_addresses(json!([
        {"type": "Hostname", "address": "ip-10-0-0-5"},
        {"type": "ExternalIP", "address": "54.0.0.5"},
        {"type": "InternalIP", "address": "10.0.0.5"},
        {"type": "InternalIP", "address": "10.0.0.6"},
    ]));
    let (source, group) = node_group(&node);
    assert_eq!(source, "node/n1");
    let expected_labels = [
        ("__meta_kubernetes_node_annotation_n", "1"),
        ("__meta_kubernetes_node_annotationpresent_n", "true"),
        ("__meta_kubernetes_node_condition_memorypressure", "false"),
        ("__meta_kubernetes_node_condition_ready", "true"),
        ("__meta_kubernetes_node_label_kubernetes_io_os", "linux"),
        ("__meta_kubernetes_node_labelpresent_kubernetes_io_os", "true"),
        ("__meta_kubernetes_node_name", "n1"),
        ("__meta_kubernetes_node_provider_id", "aws:///eu-1a/i-1"),
    ];
    assert_group(
        &group,
        &expected_labels,
        &[&[
            ("__address__", "10.0.0.5:10250"),
            ("__meta_kubernetes_node_address_ExternalIP", "54.0.0.5"),
            ("__meta_kubernetes_node_address_Hostname", "ip-10-0-0-5"),
            ("__meta_kubernetes_node_address_InternalIP", "10.0.0.5"),
            ("instance", "n1"),
        ]],
    );

    let external = node_with_addresses(json!([
        {"type": "Hostname", "address": "h"},
        {"type": "ExternalDNS", "address": "n1.example.com"},
        {"type": "ExternalIP", "address": "54.0.0.5"},
    ]));
    assert_eq!(node_group(&external).1.targets[0].get("__address__"), Some("54.0.0.5:10250"));
    let hostname_only = node_with_addresses(json!([{"type": "Hostname", "address": "h"}]));
    assert_eq!(node_group(&hostname_only).1.targets[0].get("__address__"), Some("h:10250"));
    let unknown_only = node_with_addresses(json!([{"type": "Weird", "address": "w"}]));
    assert!(node_group(&unknown_only).1.targets.is_empty());
}

// ---------------------------------------------------------------- ingress

#[test]
fn ingress_targets_per_rule_and_path_with_tls_scheme() {
    let ingress: k8s_openapi::api::networking::v1::Ingress = object(json!({
        "metadata": {"name": "front", "namespace": "shop", "labels": {"l": "v"}},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["*.example.com"]}, {"hosts": ["secure.org"]}],
            "rules": [
                {"host": "shop.example.com", "http": {"paths": [
                    {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}},
                    {"pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                ]}},
                {"host": "a.b.example.com"},
                {"host": "secure.org", "http": {"paths": []}},
                {"host": "plain.org", "http": {"paths": [
                    {"path": "/x", "pathType": "Exact", "backend": {"service": {"name": "x", "port": {"number": 80}}}},
                ]}},
            ],
        },
    }));
    let (source, group) = ingress_group(&ingress, &Store::default(), &NONE);
    assert_eq!(source, "ingress/shop/front");
    let target = |host, scheme, path| {
        vec![
            ("__address__", host),
            ("__meta_kubernetes_ingress_host", host),
            ("__meta_kubernetes_ingress_path", path),
            ("__meta_kubernetes_ingress_scheme", scheme),
        ]
    };
    assert_group(
        &group,
        &[
            ("__meta_kubernetes_ingress_class_name", "nginx"),
            ("__meta_kubernetes_ingress_label_l", "v"),
            ("__meta_kubernetes_ingress_labelpresent_l", "true"),
            ("__meta_kubernetes_ingress_name", "front"),
            ("__meta_kubernetes_namespace", "shop"),
        ],
        &[
            &target("shop.example.com", "https", "/api"),
            &target("shop.example.com", "https", "/"),
            // The wildcard covers one DNS label only; no http means "/".
            &target("a.b.example.com", "http", "/"),
            // secure.org lists no paths: no target, as in Prometheus.
            &target("plain.org", "http", "/x"),
        ],
    );
}

#[test]
fn ingress_without_class_or_rules_and_namespace_metadata() {
    let ingress: k8s_openapi::api::networking::v1::Ingress =
        object(json!({"metadata": {"name": "empty", "namespace": "shop"}, "spec": {}}));
    let attach = AttachMetadata { namespace: true, ..NONE };
    let group = ingress_group(&ingress, &Store::default().with_namespace(namespace("shop")), &attach).1;
    assert_group(
        &group,
        &[
            ("__meta_kubernetes_ingress_name", "empty"),
            ("__meta_kubernetes_namespace", "shop"),
            ("__meta_kubernetes_namespace_annotation_owner_io_x", "y"),
            ("__meta_kubernetes_namespace_annotationpresent_owner_io_x", "true"),
            ("__meta_kubernetes_namespace_label_team", "obs"),
            ("__meta_kubernetes_namespace_labelpresent_team", "true"),
        ],
        &[],
    );
    assert_eq!(ingress_dependencies(&ingress, &attach), vec![Dependency::Namespace("shop".into())]);
}

// ------------------------------------------------------ endpoints roles

/// [`web_pod`]'s labels as endpoint targets carry them (no namespace).
fn web_pod_target_labels() -> Vec<(&'static str, &'static str)> {
    WEB_POD_LABELS.iter().copied().filter(|(n, _)| *n != "__meta_kubernetes_namespace").collect()
}

fn concat<'a>(parts: &[&[(&'a str, &'a str)]]) -> Vec<(&'a str, &'a str)> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// Targets for [`web_pod`]'s container ports that no endpoint covers.
fn web_pod_uncovered_targets() -> [Vec<(&'static str, &'static str)>; 2] {
    let pod = web_pod_target_labels();
    [
        concat(&[
            &[
                ("__address__", "10.0.0.1:9090"),
                ("__meta_kubernetes_pod_container_image", "app:1"),
                ("__meta_kubernetes_pod_container_init", "false"),
                ("__meta_kubernetes_pod_container_name", "app"),
                ("__meta_kubernetes_pod_container_port_name", ""),
                ("__meta_kubernetes_pod_container_port_number", "9090"),
                ("__meta_kubernetes_pod_container_port_protocol", "UDP"),
            ],
            &pod,
        ]),
        concat(&[
            &[
                ("__address__", "10.0.0.1:7000"),
                ("__meta_kubernetes_pod_container_image", "init:3"),
                ("__meta_kubernetes_pod_container_init", "true"),
                ("__meta_kubernetes_pod_container_name", "init"),
                ("__meta_kubernetes_pod_container_port_name", "i"),
                ("__meta_kubernetes_pod_container_port_number", "7000"),
                ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ],
            &pod,
        ]),
    ]
}

fn web_endpoints() -> k8s_openapi::api::core::v1::Endpoints {
    object(json!({
        "metadata": {"name": "web", "namespace": "shop", "labels": {"e.io/x": "1"}},
        "subsets": [{
            "addresses": [{"ip": "10.0.0.1", "hostname": "h1", "nodeName": "n1",
                "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"}}],
            "notReadyAddresses": [{"ip": "10.0.0.9", "targetRef": {"kind": "Node", "name": "n2"}}],
            // No protocol: the endpoints role reports the endpoint port's.
            "ports": [{"name": "http", "port": 8080}],
        }],
    }))
}

fn web_service() -> Service {
    service(json!({"type": "ClusterIP", "ports": [{"port": 80}]}), json!({}))
}

#[test]
fn endpoints_targets_ready_and_not_ready_and_uncovered_pod_ports() {
    let store = Store::default().with_pod(web_pod()).with_service(web_service());
    let (source, group) = endpoints_group(&web_endpoints(), &store, &NONE);
    assert_eq!(source, "endpoints/shop/web");
    let group_labels = concat(&[
        WEB_SERVICE_LABELS,
        &[
            ("__meta_kubernetes_endpoints_label_e_io_x", "1"),
            ("__meta_kubernetes_endpoints_labelpresent_e_io_x", "true"),
            ("__meta_kubernetes_endpoints_name", "web"),
        ],
    ]);
    let ready = concat(&[
        &[
            ("__address__", "10.0.0.1:8080"),
            ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
            ("__meta_kubernetes_endpoint_address_target_name", "web-1"),
            ("__meta_kubernetes_endpoint_hostname", "h1"),
            ("__meta_kubernetes_endpoint_node_name", "n1"),
            ("__meta_kubernetes_endpoint_port_name", "http"),
            ("__meta_kubernetes_endpoint_port_protocol", ""),
            ("__meta_kubernetes_endpoint_ready", "true"),
            ("__meta_kubernetes_pod_container_image", "app:1"),
            ("__meta_kubernetes_pod_container_init", "false"),
            ("__meta_kubernetes_pod_container_name", "app"),
            ("__meta_kubernetes_pod_container_port_name", "http"),
            ("__meta_kubernetes_pod_container_port_number", "8080"),
            ("__meta_kubernetes_pod_container_port_protocol", ""),
        ],
        &web_pod_target_labels(),
    ]);
    let not_ready = [
        ("__address__", "10.0.0.9:8080"),
        ("__meta_kubernetes_endpoint_address_target_kind", "Node"),
        ("__meta_kubernetes_endpoint_address_target_name", "n2"),
        ("__meta_kubernetes_endpoint_port_name", "http"),
        ("__meta_kubernetes_endpoint_port_protocol", ""),
        ("__meta_kubernetes_endpoint_ready", "false"),
    ];
    let [uncovered_udp, uncovered_init] = web_pod_uncovered_targets();
    assert_group(&group, &group_labels, &[&ready, &not_ready, &uncovered_udp, &uncovered_init]);

    // Without the service and pod known: no service or pod labels, no extra targets.
    let group = endpoints_group(&web_endpoints(), &Store::default(), &NONE).1;
    assert_eq!(group.labels.get("__meta_kubernetes_service_name"), None);
    assert_eq!(group.targets.len(), 2);
    assert_eq!(group.targets[0].get("__meta_kubernetes_pod_name"), None);
}

#[test]
fn endpoints_attach_node_metadata_by_node_name_or_node_reference() {
    let store = Store::default().with_pod(web_pod()).with_node(node("n1")).with_node(node("n2"));
    let attach = AttachMetadata { node: true, ..NONE };
    let group = endpoints_group(&web_endpoints(), &store, &attach).1;
    let node_names: Vec<_> = group.targets.iter().map(|t| t.get("__meta_kubernetes_node_name")).collect();
    assert_eq!(node_names, [Some("n1"), Some("n2"), None, None]);
    assert_eq!(group.targets[0].get("__meta_kubernetes_node_label_topology_kubernetes_io_zone"), Some("z1"));
    assert_eq!(group.targets[1].get("__meta_kubernetes_node_annotationpresent_a"), Some("true"));
    // Node labels are per target, never on the group.
    assert!(group.labels.iter().all(|(n, _)| !n.starts_with("__meta_kubernetes_node_")));
    assert_eq!(
        endpoints_dependencies(&web_endpoints(), &store, &attach),
        vec![
            Dependency::Pod { namespace: "shop".into(), name: "web-1".into() },
            Dependency::Service { namespace: "shop".into(), name: "web".into() },
            Dependency::Node("n1".into()),
            Dependency::Node("n2".into()),
        ]
    );
    assert_eq!(
        endpoints_dependencies(&web_endpoints(), &store, &NONE),
        vec![
            Dependency::Pod { namespace: "shop".into(), name: "web-1".into() },
            Dependency::Service { namespace: "shop".into(), name: "web".into() },
        ]
    );
}

fn web_slice() -> k8s_openapi::api::discovery::v1::EndpointSlice {
    object(json!({
        "metadata": {"name": "web-abc", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.1"], "hostname": "h1", "nodeName": "n1", "zone": "z1",
             "conditions": {"ready": true, "serving": true, "terminating": false},
             "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
             "deprecatedTopology": {"topology.kubernetes.io/region": "r1"}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}, {"name": "any"}],
    }))
}

#[test]
fn endpointslice_targets_with_conditions_zones_and_uncovered_pod_ports() {
    let store = Store::default().with_pod(web_pod()).with_service(web_service());
    let (source, group) = endpointslice_group(&web_slice(), &store, &NONE);
    assert_eq!(source, "endpointslice/shop/web-abc");
    let group_labels = concat(&[
        WEB_SERVICE_LABELS,
        &[
            ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
            ("__meta_kubernetes_endpointslice_label_kubernetes_io_service_name", "web"),
            ("__meta_kubernetes_endpointslice_labelpresent_kubernetes_io_service_name", "true"),
            ("__meta_kubernetes_endpointslice_name", "web-abc"),
        ],
    ]);
    let first_endpoint: &[(&str, &str)] = &[
        ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
        ("__meta_kubernetes_endpointslice_address_target_name", "web-1"),
        ("__meta_kubernetes_endpointslice_endpoint_conditions_ready", "true"),
        ("__meta_kubernetes_endpointslice_endpoint_conditions_serving", "true"),
        ("__meta_kubernetes_endpointslice_endpoint_conditions_terminating", "false"),
        ("__meta_kubernetes_endpointslice_endpoint_hostname", "h1"),
        ("__meta_kubernetes_endpointslice_endpoint_node_name", "n1"),
        ("__meta_kubernetes_endpointslice_endpoint_topology_present_topology_kubernetes_io_region", "true"),
        ("__meta_kubernetes_endpointslice_endpoint_topology_topology_kubernetes_io_region", "r1"),
        ("__meta_kubernetes_endpointslice_endpoint_zone", "z1"),
    ];
    let http_port: &[(&str, &str)] = &[
        ("__meta_kubernetes_endpointslice_port", "8080"),
        ("__meta_kubernetes_endpointslice_port_app_protocol", "http"),
        ("__meta_kubernetes_endpointslice_port_name", "http"),
        ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
    ];
    let any_port: &[(&str, &str)] = &[("__meta_kubernetes_endpointslice_port_name", "any")];
    let pod = web_pod_target_labels();
    let pod_http: &[(&str, &str)] = &[
        ("__meta_kubernetes_pod_container_image", "app:1"),
        ("__meta_kubernetes_pod_container_init", "false"),
        ("__meta_kubernetes_pod_container_name", "app"),
        ("__meta_kubernetes_pod_container_port_name", "http"),
        ("__meta_kubernetes_pod_container_port_number", "8080"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ];
    let second_endpoint: &[(&str, &str)] =
        &[("__meta_kubernetes_endpointslice_endpoint_conditions_ready", "false")];
    let [uncovered_udp, uncovered_init] = web_pod_uncovered_targets();
    assert_group(
        &group,
        &group_labels,
        &[
            &concat(&[&[("__address__", "10.0.0.1:8080")], http_port, first_endpoint, &pod, pod_http]),
            // A port without a number: the bare address, no container match.
            &concat(&[&[("__address__", "10.0.0.1")], any_port, first_endpoint, &pod]),
            &concat(&[&[("__address__", "10.0.0.2:8080")], http_port, second_endpoint]),
            &concat(&[&[("__address__", "10.0.0.2")], any_port, second_endpoint]),
            &uncovered_udp,
            &uncovered_init,
        ],
    );
}

#[test]
fn endpointslice_of_a_dual_stack_service_secondary_family_has_no_targets() {
    let dual_stack = service(
        json!({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6", "IPv4"], "ports": [{"port": 80}]}),
        json!({}),
    );
    let store = Store::default().with_service(dual_stack.clone());
    let group = endpointslice_group(&web_slice(), &store, &NONE).1;
    assert!(group.targets.is_empty());
    assert_eq!(group.labels.get("__meta_kubernetes_service_name"), Some("web"));

    let mut primary = dual_stack;
    primary.spec.as_mut().unwrap().ip_families = Some(vec!["IPv4".into(), "IPv6".into()]);
    let store = Store::default().with_service(primary);
    assert_eq!(endpointslice_group(&web_slice(), &store, &NONE).1.targets.len(), 4);
}

#[test]
fn endpointslice_attach_metadata() {
    let mut slice = web_slice();
    slice.endpoints.as_mut().unwrap()[1].target_ref = Some(object(json!({"kind": "Node", "name": "n2"})));
    let store = Store::default()
        .with_pod(web_pod())
        .with_node(node("n1"))
        .with_node(node("n2"))
        .with_namespace(namespace("shop"));
    let attach = AttachMetadata { node: true, namespace: true, ..NONE };
    let group = endpointslice_group(&slice, &store, &attach).1;
    let node_names: Vec<_> = group.targets.iter().map(|t| t.get("__meta_kubernetes_node_name")).collect();
    assert_eq!(node_names, [Some("n1"), Some("n1"), Some("n2"), Some("n2"), None, None]);
    assert_eq!(group.labels.get("__meta_kubernetes_namespace_label_team"), Some("obs"));
    assert_eq!(
        endpointslice_dependencies(&slice, &store, &attach),
        vec![
            Dependency::Pod { namespace: "shop".into(), name: "web-1".into() },
            Dependency::Service { namespace: "shop".into(), name: "web".into() },
            Dependency::Node("n1".into()),
            Dependency::Node("n2".into()),
            Dependency::Namespace("shop".into()),
        ]
    );
    let plain = endpointslice_group(&slice, &store, &NONE).1;
    assert!(plain.targets.iter().all(|t| t.get("__meta_kubernetes_node_name").is_none()));
    assert!(plain.labels.get("__meta_kubernetes_namespace_label_team").is_none());
}

#[test]
fn group_sources_for_deleted_objects() {
    assert_eq!(group_source(Role::Pod, "ns", "p"), "pod/ns/p");
    assert_eq!(group_source(Role::Service, "ns", "s"), "service/ns/s");
    assert_eq!(group_source(Role::Endpoints, "ns", "e"), "endpoints/ns/e");
    assert_eq!(group_source(Role::EndpointSlice, "ns", "e"), "endpointslice/ns/e");
    assert_eq!(group_source(Role::Ingress, "ns", "i"), "ingress/ns/i");
    assert_eq!(group_source(Role::Node, "", "n"), "node/n");
}

#[test]
fn role_and_attach_metadata_deserialize_from_configuration() {
    assert_eq!(serde_json::from_value::<Role>(json!("endpointslice")).unwrap(), Role::EndpointSlice);
    let err = serde_json::from_value::<Role>(json!("Pod")).unwrap_err().to_string();
    assert!(err.contains("unknown Kubernetes SD role \"Pod\""), "{err}");
    let attach: AttachMetadata = serde_json::from_value(json!({"node": true, "cronjob": true})).unwrap();
    assert_eq!(attach, AttachMetadata { node: true, cronjob: true, ..NONE });
    assert_eq!(serde_json::from_value::<AttachMetadata>(json!({})).unwrap(), NONE);
    assert!(serde_json::from_value::<AttachMetadata>(json!({"nodes": true})).is_err());
}

#[test]
fn endpoint_port_matching_later_container_wins_and_ipless_pods_add_no_targets() {
    // Two containers declare the endpoint's port: the later one is reported.
    // The pod has no IP, so its other ports give no targets.
    let pod: Pod = object(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [
            {"name": "first", "image": "f", "ports": [{"name": "a", "containerPort": 80, "protocol": "TCP"}]},
            {"name": "second", "image": "s", "ports": [
                {"name": "b", "containerPort": 80, "protocol": "TCP"},
                {"name": "c", "containerPort": 80, "protocol": "UDP"},
                {"name": "other", "containerPort": 81},
            ]},
        ]},
    }));
    let slice: k8s_openapi::api::discovery::v1::EndpointSlice = object(json!({
        "metadata": {"name": "s", "namespace": "ns"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.1.1"], "targetRef": {"kind": "Pod", "name": "p", "namespace": "ns"}}],
        "ports": [{"port": 80}],
    }));
    let store = Store::default().with_pod(pod);
    let group = endpointslice_group(&slice, &store, &NONE).1;
    assert_eq!(group.targets.len(), 1);
    let target = &group.targets[0];
    assert_eq!(target.get("__meta_kubernetes_pod_container_name"), Some("second"));
    assert_eq!(target.get("__meta_kubernetes_pod_container_port_name"), Some("b"));
    assert_eq!(target.get("__meta_kubernetes_pod_container_port_protocol"), Some("TCP"));
    assert_eq!(target.get("__meta_kubernetes_pod_ip"), Some(""));
    assert_eq!(target.get("__meta_kubernetes_pod_ready"), Some("unknown"));
    // Without a service label the slice has no service labels or dependency.
    assert_eq!(group.labels.get("__meta_kubernetes_service_name"), None);
    assert_eq!(
        endpointslice_dependencies(&slice, &store, &NONE),
        vec![Dependency::Pod { namespace: "ns".into(), name: "p".into() }]
    );
}
