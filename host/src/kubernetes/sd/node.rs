//! The `node` role: one target per node, the kubelet.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;

use super::labels::{LabelSet, add_object_meta, group, join_host_port, or_empty, sanitize_label_name};
use super::{Role, group_source};
use crate::allocation::TargetGroup;

/// Address types in the order the target address is picked from, as
/// Prometheus (after Kubernetes' own node address preference).
const ADDRESS_PREFERENCE: [&str; 6] =
    ["InternalIP", "InternalDNS", "ExternalIP", "ExternalDNS", "LegacyHostIP", "Hostname"];

/// The node's group: source `node/<name>`. Its target is the node's preferred
/// address with the kubelet port, with `instance` set to the node name.
/// A node with none of the known address types has no target (Prometheus
/// sends nothing then, keeping whatever it had; here the group empties).
pub fn node_group(node: &Node) -> (String, TargetGroup) {
    let name = or_empty(&node.metadata.name);
    let source = group_source(Role::Node, "", name);
    let mut labels = LabelSet::new();
    labels.meta("node_provider_id", node.spec.as_ref().map(|s| or_empty(&s.provider_id)).unwrap_or(""));
    let status = node.status.as_ref();
    for condition in status.and_then(|s| s.conditions.as_ref()).into_iter().flatten() {
        let condition_type = sanitize_label_name(&condition.type_.to_lowercase());
        labels.meta(&format!("node_condition_{condition_type}"), condition.status.to_lowercase());
    }
    add_object_meta(&mut labels, &node.metadata, "node");

    // The first address of each type.
    let mut by_type: BTreeMap<&str, &str> = BTreeMap::new();
    for address in status.and_then(|s| s.addresses.as_ref()).into_iter().flatten() {
        by_type.entry(address.type_.as_str()).or_insert(address.address.as_str());
    }
    let Some(host) = ADDRESS_PREFERENCE.iter().find_map(|t| by_type.get(t)) else {
        return (source, group(labels, Vec::new()));
    };
    let kubelet_port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map_or(0, |e| e.port);

    let mut target = LabelSet::new();
    target.set("__address__", join_host_port(host, kubelet_port));
    target.set("instance", name);
    for (address_type, address) in &by_type {
        target.set(sanitize_label_name(&format!("__meta_kubernetes_node_address_{address_type}")), *address);
    }
    (source, group(labels, vec![target]))
}
