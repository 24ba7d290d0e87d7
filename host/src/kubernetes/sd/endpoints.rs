//! The `endpoints` role: one target per address and port of each subset,
//! ready addresses first, plus targets for container ports of the backing
//! pods that no endpoint port covers.

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints};

use super::labels::{
    LabelSet, NAMESPACE, add_namespace_metadata, add_node_metadata, add_object_meta, bool_value, group,
    join_host_port, or_empty,
};
use super::pod::{BackingPods, pod_labels_dependencies};
use super::service::service_labels;
use super::{AttachMetadata, Dependency, Related, Role, group_source};
use crate::allocation::TargetGroup;

/// The endpoints' group: source `endpoints/<namespace>/<name>`, with the
/// labels of the service of the same name when it is known.
pub fn endpoints_group(
    endpoints: &Endpoints,
    related: &dyn Related,
    attach: &AttachMetadata,
) -> (String, TargetGroup) {
    let namespace = or_empty(&endpoints.metadata.namespace);
    let name = or_empty(&endpoints.metadata.name);
    let source = group_source(Role::Endpoints, namespace, name);
    let mut labels = LabelSet::new();
    labels.set(NAMESPACE, namespace);
    if let Some(service) = related.service(namespace, name) {
        labels.extend(service_labels(&service));
    }
    add_object_meta(&mut labels, &endpoints.metadata, "endpoints");
    if attach.namespace {
        add_namespace_metadata(&mut labels, related, namespace);
    }

    let mut pods = BackingPods::default();
    let mut targets = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        for port in subset.ports.iter().flatten() {
            // A not-ready address gets its own target even if it repeats a
            // ready one: Prometheus lets the later `ready="false"` stand.
            let ready = subset.addresses.iter().flatten().map(|a| (a, true));
            let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, false));
            for (address, is_ready) in ready.chain(not_ready) {
                let mut target = LabelSet::new();
                target.set("__address__", join_host_port(&address.ip, port.port));
                target.meta("endpoint_port_name", or_empty(&port.name));
                target.meta("endpoint_port_protocol", or_empty(&port.protocol));
                target.meta("endpoint_ready", bool_value(is_ready));
                if let Some(target_ref) = &address.target_ref {
                    target.meta("endpoint_address_target_kind", or_empty(&target_ref.kind));
                    target.meta("endpoint_address_target_name", or_empty(&target_ref.name));
                }
                if let Some(node_name) = &address.node_name {
                    target.meta("endpoint_node_name", node_name.clone());
                }
                if let Some(hostname) = address.hostname.as_deref().filter(|h| !h.is_empty()) {
                    target.meta("endpoint_hostname", hostname);
                }
                if attach.node
                    && let Some(node) = address_node(address)
                {
                    add_node_metadata(&mut target, related, node);
                }
                if let Some(pod) = BackingPods::resolve(related, address.target_ref.as_ref()) {
                    let protocol = Some(or_empty(&port.protocol));
                    pods.add_target_labels(&mut target, &pod, Some(port.port), protocol, related, attach);
                }
                targets.push(target);
            }
        }
    }
    targets.extend(pods.uncovered_targets());
    (source, group(labels, targets))
}

/// The objects [`endpoints_group`] reads besides the endpoints: the service
/// of the same name, every referenced pod (and what its labels read), the
/// addresses' nodes and the namespace as `attach` asks. `related` finds the
/// pods' controllers.
pub fn endpoints_dependencies(
    endpoints: &Endpoints,
    related: &dyn Related,
    attach: &AttachMetadata,
) -> Vec<Dependency> {
    let namespace = or_empty(&endpoints.metadata.namespace);
    let name = or_empty(&endpoints.metadata.name);
    let mut deps = vec![Dependency::Service { namespace: namespace.to_string(), name: name.to_string() }];
    if attach.namespace {
        deps.push(Dependency::Namespace(namespace.to_string()));
    }
    for subset in endpoints.subsets.iter().flatten() {
        let addresses = subset.addresses.iter().flatten().chain(subset.not_ready_addresses.iter().flatten());
        for address in addresses {
            if attach.node
                && let Some(node) = address_node(address)
            {
                deps.push(Dependency::Node(node.to_string()));
            }
            if let Some(target_ref) = address.target_ref.as_ref().filter(|r| r.kind.as_deref() == Some("Pod"))
            {
                deps.push(Dependency::Pod {
                    namespace: or_empty(&target_ref.namespace).to_string(),
                    name: or_empty(&target_ref.name).to_string(),
                });
            }
            if let Some(pod) = BackingPods::resolve(related, address.target_ref.as_ref()) {
                deps.extend(pod_labels_dependencies(&pod, attach));
            }
        }
    }
    deps.sort();
    deps.dedup();
    deps
}

/// The node whose metadata an address gets: its node name, or else the node
/// it references.
fn address_node(address: &EndpointAddress) -> Option<&str> {
    if let Some(node_name) = &address.node_name {
        return Some(node_name);
    }
    address.target_ref.as_ref().filter(|r| r.kind.as_deref() == Some("Node")).map(|r| or_empty(&r.name))
}
