//! The `endpointslice` role (discovery.k8s.io/v1): one target per endpoint
//! address and slice port, plus targets for container ports of the backing
//! pods that no slice port covers.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use super::labels::{
    LabelSet, NAMESPACE, add_namespace_metadata, add_node_metadata, add_object_meta, bool_value, group,
    join_host_port, or_empty, sanitize_label_name,
};
use super::pod::{BackingPods, pod_labels_dependencies};
use super::service::service_labels;
use super::{AttachMetadata, Dependency, Related, Role, group_source};
use crate::allocation::TargetGroup;

/// The label naming the service a slice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The slice's group: source `endpointslice/<namespace>/<name>`, with the
/// labels of its service when known. The secondary slice of a dual-stack
/// service has no targets: they would repeat the primary slice's.
pub fn endpointslice_group(
    slice: &EndpointSlice,
    related: &dyn Related,
    attach: &AttachMetadata,
) -> (String, TargetGroup) {
    let namespace = or_empty(&slice.metadata.namespace);
    let source = group_source(Role::EndpointSlice, namespace, or_empty(&slice.metadata.name));
    let mut labels = LabelSet::new();
    labels.set(NAMESPACE, namespace);
    labels.meta("endpointslice_address_type", slice.address_type.clone());
    add_object_meta(&mut labels, &slice.metadata, "endpointslice");
    let service = service_name(slice).and_then(|name| related.service(namespace, name));
    if let Some(service) = &service {
        labels.extend(service_labels(service));
    }
    if attach.namespace {
        add_namespace_metadata(&mut labels, related, namespace);
    }
    if service.as_deref().is_some_and(|s| secondary_family(s, slice)) {
        return (source, group(labels, Vec::new()));
    }

    let mut pods = BackingPods::default();
    let mut targets = Vec::new();
    for endpoint in slice.endpoints.iter().flatten() {
        for port in slice.ports.iter().flatten() {
            for address in &endpoint.addresses {
                let mut target = LabelSet::new();
                let host_port = port.port.map(|p| join_host_port(address, p));
                target.set("__address__", host_port.unwrap_or_else(|| address.clone()));
                if let Some(name) = &port.name {
                    target.meta("endpointslice_port_name", name.clone());
                }
                if let Some(protocol) = &port.protocol {
                    target.meta("endpointslice_port_protocol", protocol.clone());
                }
                if let Some(number) = port.port {
                    target.meta("endpointslice_port", number.to_string());
                }
                if let Some(app_protocol) = &port.app_protocol {
                    target.meta("endpointslice_port_app_protocol", app_protocol.clone());
                }
                add_endpoint_labels(&mut target, endpoint);
                if attach.node
                    && let Some(node) = endpoint_node(endpoint)
                {
                    add_node_metadata(&mut target, related, node);
                }
                if let Some(pod) = BackingPods::resolve(related, endpoint.target_ref.as_ref()) {
                    pods.add_target_labels(&mut target, &pod, port.port, None, related, attach);
                }
                targets.push(target);
            }
        }
    }
    targets.extend(pods.uncovered_targets());
    (source, group(labels, targets))
}

/// The objects [`endpointslice_group`] reads besides the slice: its service,
/// every referenced pod (and what its labels read), the endpoints' nodes and
/// the namespace as `attach` asks. `related` finds the pods' controllers.
pub fn endpointslice_dependencies(
    slice: &EndpointSlice,
    related: &dyn Related,
    attach: &AttachMetadata,
) -> Vec<Dependency> {
    let namespace = or_empty(&slice.metadata.namespace);
    let mut deps = Vec::new();
    if let Some(name) = service_name(slice) {
        deps.push(Dependency::Service { namespace: namespace.to_string(), name: name.to_string() });
    }
    if attach.namespace {
        deps.push(Dependency::Namespace(namespace.to_string()));
    }
    for endpoint in slice.endpoints.iter().flatten() {
        if attach.node
            && let Some(node) = endpoint_node(endpoint)
        {
            deps.push(Dependency::Node(node.to_string()));
        }
        if let Some(target_ref) = endpoint.target_ref.as_ref().filter(|r| r.kind.as_deref() == Some("Pod")) {
            deps.push(Dependency::Pod {
                namespace: or_empty(&target_ref.namespace).to_string(),
                name: or_empty(&target_ref.name).to_string(),
            });
        }
        if let Some(pod) = BackingPods::resolve(related, endpoint.target_ref.as_ref()) {
            deps.extend(pod_labels_dependencies(&pod, attach));
        }
    }
    deps.sort();
    deps.dedup();
    deps
}

fn service_name(slice: &EndpointSlice) -> Option<&str> {
    slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL).map(String::as_str)
}

/// The endpoint's own labels: conditions, hostname, target reference, node,
/// zone and deprecated topology, each only when set.
fn add_endpoint_labels(target: &mut LabelSet, endpoint: &Endpoint) {
    let conditions = endpoint.conditions.as_ref();
    let flags = [
        ("ready", conditions.and_then(|c| c.ready)),
        ("serving", conditions.and_then(|c| c.serving)),
        ("terminating", conditions.and_then(|c| c.terminating)),
    ];
    for (condition, value) in flags {
        if let Some(value) = value {
            target.meta(&format!("endpointslice_endpoint_conditions_{condition}"), bool_value(value));
        }
    }
    if let Some(hostname) = &endpoint.hostname {
        target.meta("endpointslice_endpoint_hostname", hostname.clone());
    }
    if let Some(target_ref) = &endpoint.target_ref {
        target.meta("endpointslice_address_target_kind", or_empty(&target_ref.kind));
        target.meta("endpointslice_address_target_name", or_empty(&target_ref.name));
    }
    if let Some(node_name) = &endpoint.node_name {
        target.meta("endpointslice_endpoint_node_name", node_name.clone());
    }
    if let Some(zone) = &endpoint.zone {
        target.meta("endpointslice_endpoint_zone", zone.clone());
    }
    for (key, value) in endpoint.deprecated_topology.iter().flatten() {
        let name = sanitize_label_name(key);
        target.meta(&format!("endpointslice_endpoint_topology_{name}"), value.clone());
        target.meta(&format!("endpointslice_endpoint_topology_present_{name}"), "true");
    }
}

/// The node whose metadata an endpoint gets: the node it references, or else
/// its node name.
fn endpoint_node(endpoint: &Endpoint) -> Option<&str> {
    match &endpoint.target_ref {
        Some(r) if r.kind.as_deref() == Some("Node") => Some(or_empty(&r.name)),
        _ => endpoint.node_name.as_deref(),
    }
}

/// Whether the slice is not of the primary IP family of a dual-stack service.
fn secondary_family(service: &Service, slice: &EndpointSlice) -> bool {
    let Some(spec) = &service.spec else { return false };
    let dual_stack = matches!(spec.ip_family_policy.as_deref(), Some("PreferDualStack" | "RequireDualStack"));
    match spec.ip_families.as_deref() {
        Some([primary, ..]) if dual_stack => *primary != slice.address_type,
        _ => false,
    }
}
