//! Kubernetes objects to Prometheus target groups: the label-generation half
//! of `kubernetes_sd_configs`.
//!
//! Each role's function turns one watched object into the group Prometheus
//! 3.x would send for it, with the same `__meta_kubernetes_*` labels (names,
//! values, which ones are present, empty values included), target addresses
//! and group source ([`group_source`]). Labels shared by every target of a
//! group are the group's labels; the rest are the targets' own, as
//! Prometheus splits them.
//!
//! Owns: label names and values, presence rules, addresses, sources. Must not
//! touch: I/O, watching, caching, selectors, relabeling — these are pure
//! functions. Objects a role needs besides its own (the pods and service
//! behind endpoints, the node of a pod, …) are looked up through [`Related`],
//! which the runner backs with its shared stores. The `*_dependencies`
//! functions list the related objects a group was built from, so the runner
//! can rebuild the group when one of them changes; they list every object
//! read, which is more than Prometheus reacts to (it rebuilds endpoints only
//! on a pod's phase change and endpoint slices never on pod changes), so
//! groups are never staler than Prometheus's. A deleted object's group is
//! the empty group under its [`group_source`].
//!
//! | role          | reads through [`Related`]                                              |
//! |---------------|------------------------------------------------------------------------|
//! | pod           | node (`attach.node`), namespace, ReplicaSet (`deployment`), Job (`cronjob`) |
//! | service       | namespace (`attach.namespace`)                                         |
//! | endpoints     | service of the same name, target pods (and what pod labels read), nodes, namespace |
//! | endpointslice | service of `kubernetes.io/service-name`, target pods, nodes, namespace |
//! | node          | nothing                                                                |
//! | ingress       | namespace (`attach.namespace`)                                         |
//!
//! Differences from the contract first proposed: [`service_group`] and
//! [`ingress_group`] take `related` and `attach` too (Prometheus attaches
//! namespace metadata to them); [`AttachMetadata`] also has Prometheus's
//! `deployment`, `job` and `cronjob` switches, which read ReplicaSets and Jobs
//! through [`Related::replica_set`] and [`Related::job`] (defaulting to
//! unknown).

mod endpoints;
mod endpointslice;
mod ingress;
mod labels;
mod node;
mod pod;
mod service;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};

pub use endpoints::{endpoints_dependencies, endpoints_group};
pub use endpointslice::{endpointslice_dependencies, endpointslice_group};
pub use ingress::{ingress_dependencies, ingress_group};
pub use labels::sanitize_label_name;
pub use node::node_group;
pub use pod::{pod_dependencies, pod_group};
pub use service::{service_dependencies, service_group};

/// The `role` of a `kubernetes_sd_config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Node,
    Ingress,
}

impl Role {
    /// The name Prometheus uses in configuration and in label names.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pod => "pod",
            Role::Service => "service",
            Role::Endpoints => "endpoints",
            Role::EndpointSlice => "endpointslice",
            Role::Node => "node",
            Role::Ingress => "ingress",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name Prometheus does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Kubernetes SD role {0:?}")]
pub struct UnknownRole(pub String);

impl<'de> serde::Deserialize<'de> for Role {
    /// From its configuration name, rejecting unknown roles as Prometheus does.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Role, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        [Role::Pod, Role::Service, Role::Endpoints, Role::EndpointSlice, Role::Node, Role::Ingress]
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Objects a role may need besides its own, looked up by the runner's shared
/// stores. `None` means "not known (yet)", which Prometheus treats as absent.
pub trait Related {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>>;
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    fn node(&self, name: &str) -> Option<Arc<Node>>;
    fn namespace(&self, name: &str) -> Option<Arc<Namespace>>;
    /// Read only with `attach_metadata.deployment`; a runner that does not
    /// watch ReplicaSets keeps this default and no deployment label appears.
    fn replica_set(&self, _namespace: &str, _name: &str) -> Option<Arc<ReplicaSet>> {
        None
    }
    /// Read only with `attach_metadata.cronjob`; a runner that does not watch
    /// Jobs keeps this default and no cronjob label appears.
    fn job(&self, _namespace: &str, _name: &str) -> Option<Arc<Job>> {
        None
    }
}

/// The source of a role's group for the object `namespace/name` (`name`
/// alone for nodes), as Prometheus names it: what the runner sends an empty
/// group under when the object is deleted.
pub fn group_source(role: Role, namespace: &str, name: &str) -> String {
    match role {
        Role::Node => format!("node/{name}"),
        _ => format!("{role}/{namespace}/{name}"),
    }
}

/// `attach_metadata` of a `kubernetes_sd_config`; deserializes from its
/// configuration form (absent switches off, unknown ones rejected as
/// Prometheus's strict parsing does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachMetadata {
    /// Node name, labels and annotations on pod, endpoints and endpointslice
    /// targets. In the pod role, a pod whose node is unknown has no targets.
    pub node: bool,
    /// Namespace labels and annotations on every role but node.
    pub namespace: bool,
    /// `pod_deployment_name` from the pod's controlling ReplicaSet.
    pub deployment: bool,
    /// `pod_job_name` for pods controlled by a Job.
    pub job: bool,
    /// `pod_cronjob_name` from the pod's controlling Job.
    pub cronjob: bool,
}

/// A related object a group was built from: when it changes (or appears, or
/// goes), the runner rebuilds the group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dependency {
    Pod { namespace: String, name: String },
    Service { namespace: String, name: String },
    Node(String),
    Namespace(String),
    ReplicaSet { namespace: String, name: String },
    Job { namespace: String, name: String },
}

#[cfg(test)]
mod tests;
