//! The `service` role: one target per service port, addressed by the
//! service's cluster DNS name.

use k8s_openapi::api::core::v1::Service;

use super::labels::{
    LabelSet, NAMESPACE, add_namespace_metadata, add_object_meta, group, join_host_port, or_empty,
};
use super::{AttachMetadata, Dependency, Related, Role, group_source};
use crate::allocation::TargetGroup;

/// The service's group: source `service/<namespace>/<name>`. Only
/// `attach.namespace` applies.
pub fn service_group(
    service: &Service,
    related: &dyn Related,
    attach: &AttachMetadata,
) -> (String, TargetGroup) {
    let namespace = or_empty(&service.metadata.namespace);
    let name = or_empty(&service.metadata.name);
    let source = group_source(Role::Service, namespace, name);
    let mut labels = service_labels(service);
    if attach.namespace {
        add_namespace_metadata(&mut labels, related, namespace);
    }

    let spec = service.spec.as_ref();
    let service_type = spec.map(|s| or_empty(&s.type_)).unwrap_or("");
    let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let targets = ports
        .iter()
        .map(|port| {
            let mut target = LabelSet::new();
            target.set("__address__", join_host_port(&format!("{name}.{namespace}.svc"), port.port));
            target.meta("service_port_name", or_empty(&port.name));
            target.meta("service_port_number", port.port.to_string());
            target.meta("service_port_protocol", or_empty(&port.protocol));
            target.meta("service_type", service_type);
            // An ExternalName service has no cluster IP worth reporting.
            if service_type == "ExternalName" {
                target.meta("service_external_name", spec.map(|s| or_empty(&s.external_name)).unwrap_or(""));
            } else {
                target.meta("service_cluster_ip", spec.map(|s| or_empty(&s.cluster_ip)).unwrap_or(""));
            }
            if service_type == "LoadBalancer" {
                target.meta("service_loadbalancer_ip", load_balancer_ips(service));
            }
            target
        })
        .collect();
    (source, group(labels, targets))
}

/// The objects [`service_group`] reads besides the service.
pub fn service_dependencies(service: &Service, attach: &AttachMetadata) -> Vec<Dependency> {
    namespace_dependency(&service.metadata.namespace, attach)
}

/// The namespace, when its metadata is attached: all the service and ingress
/// roles read.
pub(super) fn namespace_dependency(namespace: &Option<String>, attach: &AttachMetadata) -> Vec<Dependency> {
    if attach.namespace { vec![Dependency::Namespace(or_empty(namespace).to_string())] } else { Vec::new() }
}

/// Namespace, name, labels and annotations of a service: its group labels,
/// also given to the endpoints and endpoint slices of the service.
pub(super) fn service_labels(service: &Service) -> LabelSet {
    let mut labels = LabelSet::new();
    labels.set(NAMESPACE, or_empty(&service.metadata.namespace));
    add_object_meta(&mut labels, &service.metadata, "service");
    labels
}

/// The load balancer's ingress IPs joined by commas, or else the deprecated
/// `spec.loadBalancerIP` (possibly empty).
fn load_balancer_ips(service: &Service) -> String {
    let ingress =
        service.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_ref());
    let ips: Vec<&str> =
        ingress.into_iter().flatten().filter_map(|i| i.ip.as_deref()).filter(|ip| !ip.is_empty()).collect();
    if ips.is_empty() {
        service.spec.as_ref().map(|s| or_empty(&s.load_balancer_ip)).unwrap_or("").to_string()
    } else {
        ips.join(",")
    }
}
