//! The `pod` role: one target per declared container port, or one per
//! container without ports.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ContainerStatus, ObjectReference, Pod};

use super::labels::{
    LabelSet, NAMESPACE, add_container, add_container_port, add_namespace_metadata, add_node_metadata,
    add_object_meta, containers, controller_of, group, join_host_port, or_empty,
};
use super::{AttachMetadata, Dependency, Related, Role, group_source};
use crate::allocation::TargetGroup;

/// The pod's group: source `pod/<namespace>/<name>`. A pod without an IP
/// (not scheduled or gone) has an empty group, and so has a pod whose node
/// is unknown when node metadata is attached (Prometheus waits for the node).
pub fn pod_group(pod: &Pod, related: &dyn Related, attach: &AttachMetadata) -> (String, TargetGroup) {
    let namespace = or_empty(&pod.metadata.namespace);
    let source = group_source(Role::Pod, namespace, or_empty(&pod.metadata.name));
    let status = pod.status.as_ref();
    let pod_ip = status.map(|s| or_empty(&s.pod_ip)).unwrap_or("");
    let node_name = node_name(pod);
    if pod_ip.is_empty() || (attach.node && related.node(node_name).is_none()) {
        return (source, TargetGroup::default());
    }

    let mut labels = pod_labels(pod, related, attach);
    labels.set(NAMESPACE, namespace);
    if attach.node {
        add_node_metadata(&mut labels, related, node_name);
    }
    if attach.namespace {
        add_namespace_metadata(&mut labels, related, namespace);
    }

    let no_statuses = Vec::new();
    let mut targets = Vec::new();
    for (container, is_init) in containers(pod) {
        let statuses = status
            .and_then(|s| {
                if is_init { s.init_container_statuses.as_ref() } else { s.container_statuses.as_ref() }
            })
            .unwrap_or(&no_statuses);
        let container_id = container_id(statuses, &container.name);
        let ports = container.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            let mut target = LabelSet::new();
            target.set("__address__", pod_ip);
            add_container(&mut target, container, is_init);
            target.meta("pod_container_id", container_id);
            targets.push(target);
            continue;
        }
        for port in ports {
            let mut target = LabelSet::new();
            target.set("__address__", join_host_port(pod_ip, port.container_port));
            add_container_port(&mut target, container, port, is_init);
            target.meta("pod_container_id", container_id);
            targets.push(target);
        }
    }
    (source, group(labels, targets))
}

/// The objects [`pod_group`] reads besides the pod.
pub fn pod_dependencies(pod: &Pod, attach: &AttachMetadata) -> Vec<Dependency> {
    let namespace = or_empty(&pod.metadata.namespace);
    let mut deps = Vec::new();
    if attach.node {
        deps.push(Dependency::Node(node_name(pod).to_string()));
    }
    if attach.namespace {
        deps.push(Dependency::Namespace(namespace.to_string()));
    }
    deps.extend(pod_labels_dependencies(pod, attach));
    deps
}

/// The pod-level labels, shared with the endpoints roles (which add them to
/// targets backed by the pod): no namespace, no attached node or namespace.
pub(super) fn pod_labels(pod: &Pod, related: &dyn Related, attach: &AttachMetadata) -> LabelSet {
    let status = pod.status.as_ref();
    let status_field = |f: fn(&k8s_openapi::api::core::v1::PodStatus) -> &Option<String>| {
        status.map(|s| or_empty(f(s))).unwrap_or("").to_string()
    };
    let mut labels = LabelSet::new();
    labels.meta("pod_ip", status_field(|s| &s.pod_ip));
    labels.meta("pod_ready", pod_ready(pod));
    labels.meta("pod_phase", status_field(|s| &s.phase));
    labels.meta("pod_node_name", node_name(pod));
    labels.meta("pod_host_ip", status_field(|s| &s.host_ip));
    labels.meta("pod_uid", or_empty(&pod.metadata.uid));
    add_object_meta(&mut labels, &pod.metadata, "pod");

    let Some(controller) = controller_of(&pod.metadata) else { return labels };
    // Prometheus leaves out empty kinds and names rather than setting "".
    if !controller.kind.is_empty() {
        labels.meta("pod_controller_kind", controller.kind.clone());
    }
    if !controller.name.is_empty() {
        labels.meta("pod_controller_name", controller.name.clone());
    }
    let namespace = or_empty(&pod.metadata.namespace);
    match controller.kind.as_str() {
        "ReplicaSet" if attach.deployment => {
            let owner = related.replica_set(namespace, &controller.name);
            if let Some(owner) = owner.as_ref().and_then(|rs| controller_of(&rs.metadata))
                && owner.kind == "Deployment"
            {
                labels.meta("pod_deployment_name", owner.name.clone());
            }
        }
        "Job" => {
            if attach.job {
                labels.meta("pod_job_name", controller.name.clone());
            }
            if attach.cronjob {
                let owner = related.job(namespace, &controller.name);
                if let Some(owner) = owner.as_ref().and_then(|job| controller_of(&job.metadata))
                    && owner.kind == "CronJob"
                {
                    labels.meta("pod_cronjob_name", owner.name.clone());
                }
            }
        }
        _ => {}
    }
    labels
}

/// The objects [`pod_labels`] reads.
pub(super) fn pod_labels_dependencies(pod: &Pod, attach: &AttachMetadata) -> Vec<Dependency> {
    let Some(controller) = controller_of(&pod.metadata) else { return Vec::new() };
    let namespace = or_empty(&pod.metadata.namespace).to_string();
    let name = controller.name.clone();
    match controller.kind.as_str() {
        "ReplicaSet" if attach.deployment => vec![Dependency::ReplicaSet { namespace, name }],
        "Job" if attach.cronjob => vec![Dependency::Job { namespace, name }],
        _ => Vec::new(),
    }
}

pub(super) fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().map(|s| or_empty(&s.node_name)).unwrap_or("")
}

/// The `Ready` condition's status in lower case, `unknown` without one.
fn pod_ready(pod: &Pod) -> String {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.to_lowercase())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The container's ID from its status; empty when the status is missing.
fn container_id<'a>(statuses: &'a [ContainerStatus], name: &str) -> &'a str {
    statuses.iter().find(|s| s.name == name).map(|s| or_empty(&s.container_id)).unwrap_or("")
}

/// Pods behind endpoint targets (endpoints and endpointslice roles), in the
/// order first seen, with the endpoint ports that produced targets for them:
/// their other container ports become targets of their own.
#[derive(Default)]
pub(super) struct BackingPods {
    pods: Vec<BackingPod>,
}

struct BackingPod {
    pod: Arc<Pod>,
    /// Computed once: every target of the pod carries them.
    labels: LabelSet,
    covered_ports: Vec<i32>,
}

impl BackingPods {
    /// The pod an endpoint's target reference names, if it is a known pod.
    pub fn resolve(related: &dyn Related, target_ref: Option<&ObjectReference>) -> Option<Arc<Pod>> {
        let target_ref = target_ref.filter(|r| r.kind.as_deref() == Some("Pod"))?;
        related.pod(or_empty(&target_ref.namespace), or_empty(&target_ref.name))
    }

    /// Adds the pod's labels to an endpoint target on `port`, and the labels
    /// of the container port it hits, and remembers the port as covered.
    /// `protocol` overrides the container port's protocol (the endpoints role
    /// reports the endpoint port's).
    pub fn add_target_labels(
        &mut self,
        target: &mut LabelSet,
        pod: &Arc<Pod>,
        port: Option<i32>,
        protocol: Option<&str>,
        related: &dyn Related,
        attach: &AttachMetadata,
    ) {
        let same = |seen: &BackingPod| {
            seen.pod.metadata.namespace == pod.metadata.namespace
                && seen.pod.metadata.name == pod.metadata.name
        };
        let index = match self.pods.iter().position(same) {
            Some(index) => index,
            None => {
                let labels = pod_labels(pod, related, attach);
                self.pods.push(BackingPod { pod: pod.clone(), labels, covered_ports: Vec::new() });
                self.pods.len() - 1
            }
        };
        let seen = &mut self.pods[index];
        seen.covered_ports.extend(port);
        target.extend(seen.labels.clone());

        // Within a container the first matching port counts; a later
        // container with the port overrides an earlier one.
        let hit = containers(pod)
            .filter_map(|(c, is_init)| {
                c.ports.iter().flatten().find(|p| Some(p.container_port) == port).map(|p| (c, p, is_init))
            })
            .last();
        if let Some((container, container_port, is_init)) = hit {
            add_container_port(target, container, container_port, is_init);
            if let Some(protocol) = protocol {
                target.meta("pod_container_port_protocol", protocol);
            }
        }
    }

    /// One target per container port of the seen pods that no endpoint port
    /// covered, with the pod's labels; none for pods without an IP.
    pub fn uncovered_targets(&self) -> Vec<LabelSet> {
        let mut targets = Vec::new();
        for seen in &self.pods {
            let pod_ip = seen.pod.status.as_ref().map(|s| or_empty(&s.pod_ip)).unwrap_or("");
            if pod_ip.is_empty() {
                continue;
            }
            for (container, is_init) in containers(&seen.pod) {
                for port in container.ports.iter().flatten() {
                    if seen.covered_ports.contains(&port.container_port) {
                        continue;
                    }
                    let mut target = LabelSet::new();
                    target.set("__address__", join_host_port(pod_ip, port.container_port));
                    add_container_port(&mut target, container, port, is_init);
                    target.extend(seen.labels.clone());
                    targets.push(target);
                }
            }
        }
        targets
    }
}
