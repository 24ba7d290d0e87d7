//! Label helpers shared by the roles: names, sanitisation, object metadata,
//! the labels `attach_metadata` adds, and target addresses.

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::Related;
use crate::allocation::{Labels, TargetGroup};

/// Every label of this discovery starts with it.
pub const META_PREFIX: &str = "__meta_kubernetes_";

/// The label holding an object's namespace, set by every namespaced role.
pub const NAMESPACE: &str = "__meta_kubernetes_namespace";

/// Label pairs under construction; names are complete label names.
/// Later pairs with the same name win, as they would in a Go map.
#[derive(Debug, Default, Clone)]
pub struct LabelSet(pub Vec<(String, String)>);

impl LabelSet {
    pub fn new() -> LabelSet {
        LabelSet(Vec::new())
    }

    /// Sets `__meta_kubernetes_<suffix>`.
    pub fn meta(&mut self, suffix: &str, value: impl Into<String>) {
        self.0.push((format!("{META_PREFIX}{suffix}"), value.into()));
    }

    /// Sets a label by its full name.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    pub fn extend(&mut self, other: LabelSet) {
        self.0.extend(other.0);
    }

    pub fn into_labels(self) -> Labels {
        Labels::new(self.0)
    }
}

/// A group from its shared labels and its targets' own labels.
pub fn group(labels: LabelSet, targets: Vec<LabelSet>) -> TargetGroup {
    TargetGroup {
        labels: labels.into_labels(),
        targets: targets.into_iter().map(LabelSet::into_labels).collect(),
    }
}

/// Prometheus's `strutil.SanitizeLabelName`: every character outside
/// `[a-zA-Z0-9_]` becomes one `_`. Only used after a valid prefix, so a
/// leading digit needs no care.
pub fn sanitize_label_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// `<host>:<port>`, bracketing IPv6 hosts as Go's `net.JoinHostPort` does.
pub fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// A boolean as Go's `strconv.FormatBool` writes it.
pub fn bool_value(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// A value Go would read from an optional string field: absent is empty.
pub fn or_empty(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

/// `<resource>_label_<name>`, `<resource>_labelpresent_<name>` and the same
/// for annotations, names sanitised.
pub fn add_labels_and_annotations(out: &mut LabelSet, meta: &ObjectMeta, resource: &str) {
    let kinds = [("label", &meta.labels), ("annotation", &meta.annotations)];
    for (kind, map) in kinds {
        for (key, value) in map.iter().flatten() {
            let name = sanitize_label_name(key);
            out.meta(&format!("{resource}_{kind}_{name}"), value.clone());
            out.meta(&format!("{resource}_{kind}present_{name}"), "true");
        }
    }
}

/// `<role>_name` plus the object's labels and annotations.
pub fn add_object_meta(out: &mut LabelSet, meta: &ObjectMeta, role: &str) {
    out.meta(&format!("{role}_name"), or_empty(&meta.name));
    add_labels_and_annotations(out, meta, role);
}

/// `attach_metadata.node`: the node's name, labels and annotations, when the
/// node is known (nothing otherwise, as Prometheus).
pub fn add_node_metadata(out: &mut LabelSet, related: &dyn Related, node_name: &str) {
    if let Some(node) = related.node(node_name) {
        add_object_meta(out, &node.metadata, "node");
    }
}

/// `attach_metadata.namespace`: the namespace's labels and annotations (its
/// name is already `__meta_kubernetes_namespace`), when the namespace is known.
pub fn add_namespace_metadata(out: &mut LabelSet, related: &dyn Related, namespace: &str) {
    if let Some(ns) = related.namespace(namespace) {
        add_labels_and_annotations(out, &ns.metadata, "namespace");
    }
}

/// The owner reference marked as controller, as Kubernetes' `GetControllerOf`.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|r| r.controller == Some(true))
}

/// A pod's containers then its init containers, each with whether it is an
/// init container: the order every role lists container ports in.
pub fn containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    let spec = pod.spec.as_ref();
    let regular = spec.into_iter().flat_map(|s| s.containers.iter()).map(|c| (c, false));
    let init = spec.into_iter().flat_map(|s| s.init_containers.iter().flatten()).map(|c| (c, true));
    regular.chain(init)
}

/// The labels describing one container port, shared by the pod role and the
/// endpoints roles' targets for ports no endpoint covers.
pub fn add_container_port(out: &mut LabelSet, container: &Container, port: &ContainerPort, is_init: bool) {
    add_container(out, container, is_init);
    out.meta("pod_container_port_name", or_empty(&port.name));
    out.meta("pod_container_port_number", port.container_port.to_string());
    out.meta("pod_container_port_protocol", or_empty(&port.protocol));
}

/// The labels describing a container, port or not.
pub fn add_container(out: &mut LabelSet, container: &Container, is_init: bool) {
    out.meta("pod_container_name", container.name.clone());
    out.meta("pod_container_image", or_empty(&container.image));
    out.meta("pod_container_init", bool_value(is_init));
}
