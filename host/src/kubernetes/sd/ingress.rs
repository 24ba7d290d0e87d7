//! The `ingress` role: one target per rule and path, addressed by the rule's
//! host.

use k8s_openapi::api::networking::v1::Ingress;

use super::labels::{LabelSet, NAMESPACE, add_namespace_metadata, add_object_meta, group, or_empty};
use super::service::namespace_dependency;
use super::{AttachMetadata, Dependency, Related, Role, group_source};
use crate::allocation::TargetGroup;

/// The ingress's group: source `ingress/<namespace>/<name>`. Only
/// `attach.namespace` applies. A rule without `http` counts as path `/`; a
/// rule whose `http` lists no paths has no targets (as in Prometheus).
pub fn ingress_group(
    ingress: &Ingress,
    related: &dyn Related,
    attach: &AttachMetadata,
) -> (String, TargetGroup) {
    let namespace = or_empty(&ingress.metadata.namespace);
    let source = group_source(Role::Ingress, namespace, or_empty(&ingress.metadata.name));
    let spec = ingress.spec.as_ref();
    let mut labels = LabelSet::new();
    labels.set(NAMESPACE, namespace);
    if let Some(class) = spec.and_then(|s| s.ingress_class_name.as_ref()) {
        labels.meta("ingress_class_name", class.clone());
    }
    add_object_meta(&mut labels, &ingress.metadata, "ingress");
    if attach.namespace {
        add_namespace_metadata(&mut labels, related, namespace);
    }

    let tls_hosts: Vec<&str> = spec
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|tls| tls.hosts.iter().flatten())
        .map(String::as_str)
        .collect();
    let mut targets = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let host = or_empty(&rule.host);
        let https = tls_hosts.iter().any(|pattern| matches_host_pattern(pattern, host));
        let paths: Vec<&str> = match &rule.http {
            None => vec!["/"],
            Some(http) => http
                .paths
                .iter()
                .map(|p| p.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/"))
                .collect(),
        };
        for path in paths {
            let mut target = LabelSet::new();
            target.set("__address__", host);
            target.meta("ingress_scheme", if https { "https" } else { "http" });
            target.meta("ingress_host", host);
            target.meta("ingress_path", path);
            targets.push(target);
        }
    }
    (source, group(labels, targets))
}

/// The objects [`ingress_group`] reads besides the ingress.
pub fn ingress_dependencies(ingress: &Ingress, attach: &AttachMetadata) -> Vec<Dependency> {
    namespace_dependency(&ingress.metadata.namespace, attach)
}

/// Whether a TLS host covers a rule's host: equal, or a `*.` pattern whose
/// other dot-separated parts equal the host's (the wildcard is one label).
fn matches_host_pattern(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let mut pattern_parts = pattern.split('.');
    let mut host_parts = host.split('.');
    if pattern_parts.next() != Some("*") {
        return false;
    }
    host_parts.next();
    pattern_parts.eq(host_parts)
}
