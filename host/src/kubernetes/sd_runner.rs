//! Running `kubernetes_sd_configs`: parse each entry, watch what its role
//! reads through the shared [`WatchHub`] (one watch per cluster, resource,
//! namespace and selectors, however many jobs use it), turn objects into
//! target groups with the pure functions of [`super::sd`], and send each
//! entry's complete groups as a [`DiscoveryUpdate`] (source
//! `kubernetes_sd/<i>`).
//!
//! Owns config parsing for the role, the `Related` lookups backed by the
//! stores, and the per-entry rebuild loop. A group is rebuilt only when its
//! object or an object it read (its [`Dependency`]s) changed; otherwise the
//! previous `Arc<TargetGroup>` is sent again so downstream diffing is a
//! pointer comparison. Groups keep their position across updates (a deleted
//! object leaves an empty group in its slot, as Prometheus sends one), so
//! the per-position matching downstream stays cheap. It must not touch
//! allocation or the label rules of [`super::sd`].

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::client::{ApiServer, ClusterSource};
use super::sd::{self, AttachMetadata, Dependency, Related, Role};
use super::watch::{SharedWatch, WatchHub, WatchKey, Watchable, resource_name};
use crate::allocation::TargetGroup;
use crate::config::{PrometheusConfig, ScrapeConfig};
use crate::discovery::{DiscoveryUpdate, SourceKey};

/// Object changes arriving within this window are turned into one update.
pub const SD_DEBOUNCE: Duration = Duration::from_millis(200);

/// One `kubernetes_sd_configs` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct KubernetesSdConfig {
    pub role: Role,
    /// `namespaces.names`; empty means every namespace.
    pub namespaces: Vec<String>,
    /// `namespaces.own_namespace`: also the namespace the client runs in.
    pub own_namespace: bool,
    /// `selectors`, by role: (label, field).
    pub selectors: HashMap<Role, (Option<String>, Option<String>)>,
    pub attach: AttachMetadata,
    pub cluster: ClusterSource,
}

/// An entry this version cannot run, naming job, entry and key.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("job {job:?}: kubernetes_sd_configs[{index}].{key}: {message}")]
pub struct SdConfigError {
    pub job: String,
    pub index: usize,
    pub key: String,
    pub message: String,
}

/// The roles whose selectors a role may use (Prometheus's rule).
fn allowed_selector_roles(role: Role) -> &'static [Role] {
    match role {
        Role::Pod => &[Role::Pod, Role::Node],
        Role::Service => &[Role::Service],
        Role::Endpoints => &[Role::Endpoints, Role::Pod, Role::Service, Role::Node],
        Role::EndpointSlice => &[Role::EndpointSlice, Role::Pod, Role::Service, Role::Node],
        Role::Node => &[Role::Node],
        Role::Ingress => &[Role::Ingress],
    }
}

/// The `kubernetes_sd_configs` of `job` (as written in the config).
pub fn parse_sd_configs(job: &ScrapeConfig) -> Result<Vec<KubernetesSdConfig>, SdConfigError> {
    let Some(list) = job.printed.get("kubernetes_sd_configs") else { return Ok(Vec::new()) };
    let entries = list.as_array().cloned().unwrap_or_default();
    entries.iter().enumerate().map(|(index, entry)| parse_entry(&job.job_name, index, entry)).collect()
}

fn parse_entry(job: &str, index: usize, entry: &Value) -> Result<KubernetesSdConfig, SdConfigError> {
    let err = |key: &str, message: String| SdConfigError { job: job.into(), index, key: key.into(), message };
    let text = |v: &Value, key: &str| {
        v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
    };
    let role_of = |v: Option<&str>, key: &str| -> Result<Role, SdConfigError> {
        let name = v.ok_or_else(|| err(key, "is required".into()))?;
        name.parse::<Role>().map_err(|e| err(key, e.to_string()))
    };
    let role = role_of(entry.get("role").and_then(Value::as_str), "role")?;
    let namespaces = entry.get("namespaces");
    let names = namespaces
        .and_then(|n| n.get("names"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let own_namespace =
        namespaces.and_then(|n| n.get("own_namespace")).and_then(Value::as_bool).unwrap_or(false);
    let mut selectors = HashMap::new();
    for (i, selector) in entry.get("selectors").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let key = format!("selectors[{i}].role");
        let selector_role = role_of(selector.get("role").and_then(Value::as_str), &key)?;
        if !allowed_selector_roles(role).contains(&selector_role) {
            return Err(err(&key, format!("role {selector_role} is not allowed with role {role}")));
        }
        if selectors.insert(selector_role, (text(selector, "label"), text(selector, "field"))).is_some() {
            return Err(err(&key, format!("role {selector_role} is given more than once")));
        }
    }
    let attach = entry.get("attach_metadata");
    let flag = |name: &str| attach.and_then(|a| a.get(name)).and_then(Value::as_bool).unwrap_or(false);
    let attach = AttachMetadata {
        node: flag("node"),
        namespace: flag("namespace"),
        deployment: flag("deployment"),
        job: flag("job"),
        cronjob: flag("cronjob"),
    };
    let api_server = text(entry, "api_server");
    let kubeconfig = text(entry, "kubeconfig_file");
    let cluster = match (api_server, kubeconfig) {
        (Some(_), Some(_)) => return Err(err("api_server", "cannot be used with kubeconfig_file".into())),
        (None, Some(path)) => ClusterSource::Kubeconfig(path.into()),
        (Some(url), None) => {
            let authorization = entry.get("authorization");
            let tls = entry.get("tls_config");
            ClusterSource::ApiServer(ApiServer {
                url,
                bearer_token: text(entry, "bearer_token")
                    .or_else(|| authorization.and_then(|a| text(a, "credentials"))),
                bearer_token_file: text(entry, "bearer_token_file")
                    .or_else(|| authorization.and_then(|a| text(a, "credentials_file")))
                    .map(Into::into),
                ca_file: tls.and_then(|t| text(t, "ca_file")).map(Into::into),
                insecure_skip_verify: tls
                    .and_then(|t| t.get("insecure_skip_verify"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
        }
        // Prometheus: neither means the pod's service account.
        (None, None) => ClusterSource::InCluster,
    };
    Ok(KubernetesSdConfig { role, namespaces: names, own_namespace, selectors, attach, cluster })
}

/// The running `kubernetes_sd_configs` of a config; dropping it stops them.
pub struct KubernetesSd {
    tasks: Vec<JoinHandle<()>>,
}

impl KubernetesSd {
    /// Parses every job's entries and starts one task per entry. Must be
    /// called inside a tokio runtime.
    pub fn start(
        config: &PrometheusConfig,
        hub: Arc<WatchHub>,
        updates: Sender<DiscoveryUpdate>,
    ) -> Result<KubernetesSd, SdConfigError> {
        let mut parsed = Vec::new();
        for job in &config.scrape_configs {
            for (i, entry) in parse_sd_configs(job)?.into_iter().enumerate() {
                let source =
                    SourceKey { job: Arc::from(job.job_name.as_str()), source: format!("kubernetes_sd/{i}") };
                parsed.push((source, entry));
            }
        }
        let clients = Arc::new(tokio::sync::Mutex::new(HashMap::new()));
        let tasks = parsed
            .into_iter()
            .map(|(source, entry)| {
                tokio::spawn(run_entry(source, entry, hub.clone(), clients.clone(), updates.clone()))
            })
            .collect();
        Ok(KubernetesSd { tasks })
    }
}

impl Drop for KubernetesSd {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

type Clients = Arc<tokio::sync::Mutex<HashMap<ClusterSource, Client>>>;

async fn run_entry(
    source: SourceKey,
    config: KubernetesSdConfig,
    hub: Arc<WatchHub>,
    clients: Clients,
    updates: Sender<DiscoveryUpdate>,
) {
    let client = {
        let mut clients = clients.lock().await;
        match clients.get(&config.cluster) {
            Some(client) => client.clone(),
            None => match config.cluster.client().await {
                Ok(client) => clients.entry(config.cluster.clone()).or_insert(client).clone(),
                Err(error) => {
                    tracing::error!(job = %source.job, source = %source.source, %error, "kubernetes_sd: no client; the entry discovers nothing");
                    return;
                }
            },
        }
    };
    let mut watches = Watches::open(&hub, &client, &config);
    let mut dirty = watches.changes();
    watches.ready().await;
    let mut builder = GroupBuilder::default();
    loop {
        let groups = builder.rebuild(&watches, &config);
        if let Some(groups) = groups
            && updates.send(DiscoveryUpdate { source: source.clone(), groups }).is_err()
        {
            return;
        }
        if dirty.recv().await.is_none() {
            return;
        }
        // Let a burst of events settle into one update.
        tokio::time::sleep(SD_DEBOUNCE).await;
        while dirty.try_recv().is_ok() {}
    }
}

type W<K> = Arc<SharedWatch<K>>;

/// The watches one entry reads: its role's objects and the related ones.
#[derive(Default)]
struct Watches {
    pods: Vec<W<Pod>>,
    services: Vec<W<Service>>,
    endpoints: Vec<W<Endpoints>>,
    slices: Vec<W<EndpointSlice>>,
    ingresses: Vec<W<Ingress>>,
    nodes: Option<W<Node>>,
    namespaces: Option<W<Namespace>>,
    /// Forwards change signals into one channel; aborted on drop.
    forwarders: Vec<JoinHandle<()>>,
}

impl Drop for Watches {
    fn drop(&mut self) {
        for task in &self.forwarders {
            task.abort();
        }
    }
}

impl Watches {
    fn open(hub: &WatchHub, client: &Client, config: &KubernetesSdConfig) -> Watches {
        let cluster = config.cluster.describe();
        let mut namespaces: Vec<Option<String>> = config.namespaces.iter().cloned().map(Some).collect();
        if config.own_namespace {
            namespaces.push(Some(client.default_namespace().to_string()));
        }
        namespaces.sort();
        namespaces.dedup();
        if namespaces.is_empty() {
            namespaces.push(None);
        }
        let key = |resource: String, namespace: Option<String>, role: Role| {
            let (label_selector, field_selector) = config.selectors.get(&role).cloned().unwrap_or_default();
            WatchKey { cluster: cluster.clone(), resource, namespace, label_selector, field_selector }
        };
        fn each<K: Watchable>(
            hub: &WatchHub,
            client: &Client,
            namespaces: &[Option<String>],
            key: &dyn Fn(String, Option<String>, Role) -> WatchKey,
            role: Role,
        ) -> Vec<W<K>> {
            namespaces
                .iter()
                .map(|ns| hub.watch::<K>(client, key(resource_name::<K>(), ns.clone(), role)))
                .collect()
        }
        let mut w = Watches::default();
        let attach = config.attach;
        match config.role {
            Role::Pod => w.pods = each(hub, client, &namespaces, &key, Role::Pod),
            Role::Service => w.services = each(hub, client, &namespaces, &key, Role::Service),
            Role::Ingress => w.ingresses = each(hub, client, &namespaces, &key, Role::Ingress),
            Role::Endpoints | Role::EndpointSlice => {
                if config.role == Role::Endpoints {
                    w.endpoints = each(hub, client, &namespaces, &key, Role::Endpoints);
                } else {
                    w.slices = each(hub, client, &namespaces, &key, Role::EndpointSlice);
                }
                w.services = each(hub, client, &namespaces, &key, Role::Service);
                w.pods = each(hub, client, &namespaces, &key, Role::Pod);
            }
            Role::Node => {}
        }
        let needs_nodes = config.role == Role::Node
            || (attach.node && matches!(config.role, Role::Pod | Role::Endpoints | Role::EndpointSlice));
        if needs_nodes {
            w.nodes = Some(hub.watch::<Node>(client, key(resource_name::<Node>(), None, Role::Node)));
        }
        if attach.namespace && config.role != Role::Node {
            let key = WatchKey {
                cluster: cluster.clone(),
                resource: resource_name::<Namespace>(),
                namespace: None,
                label_selector: None,
                field_selector: None,
            };
            w.namespaces = Some(hub.watch::<Namespace>(client, key));
        }
        w
    }

    /// One receiver that wakes whenever any watch's store changed.
    fn changes(&mut self) -> tokio::sync::mpsc::Receiver<()> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut receivers = Vec::new();
        receivers.extend(self.pods.iter().map(|w| w.changes()));
        receivers.extend(self.services.iter().map(|w| w.changes()));
        receivers.extend(self.endpoints.iter().map(|w| w.changes()));
        receivers.extend(self.slices.iter().map(|w| w.changes()));
        receivers.extend(self.ingresses.iter().map(|w| w.changes()));
        receivers.extend(self.nodes.iter().map(|w| w.changes()));
        receivers.extend(self.namespaces.iter().map(|w| w.changes()));
        for mut changes in receivers {
            let tx = tx.clone();
            self.forwarders.push(tokio::spawn(async move {
                changes.mark_unchanged();
                while changes.changed().await.is_ok() {
                    // A full channel already holds a wake-up.
                    let _ = tx.try_send(());
                }
            }));
        }
        rx
    }

    /// Waits for every watch's first complete list (Prometheus waits for
    /// its informers to sync before sending anything).
    async fn ready(&self) {
        for w in &self.pods {
            w.ready().await;
        }
        for w in &self.services {
            w.ready().await;
        }
        for w in &self.endpoints {
            w.ready().await;
        }
        for w in &self.slices {
            w.ready().await;
        }
        for w in &self.ingresses {
            w.ready().await;
        }
        if let Some(w) = &self.nodes {
            w.ready().await;
        }
        if let Some(w) = &self.namespaces {
            w.ready().await;
        }
    }
}

fn find<K: Watchable>(watches: &[W<K>], namespace: &str, name: &str) -> Option<Arc<K>> {
    let key = ObjectRef::new(name).within(namespace);
    watches
        .iter()
        .filter(|w| w.key().namespace.as_deref().is_none_or(|ns| ns == namespace))
        .find_map(|w| w.store().get(&key))
}

impl Related for Watches {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        find(&self.pods, namespace, name)
    }
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        find(&self.services, namespace, name)
    }
    fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.as_ref()?.store().get(&ObjectRef::new(name))
    }
    fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces.as_ref()?.store().get(&ObjectRef::new(name))
    }
}

impl Watches {
    /// The change counters of the watches a role reads besides its own objects.
    fn related_generations(&self) -> Vec<u64> {
        let mut generations = Vec::new();
        if !self.endpoints.is_empty() || !self.slices.is_empty() {
            generations.extend(self.pods.iter().map(|w| w.generation()));
            generations.extend(self.services.iter().map(|w| w.generation()));
        }
        generations.extend(self.nodes.iter().map(|w| w.generation()));
        generations.extend(self.namespaces.iter().map(|w| w.generation()));
        generations
    }

    /// The version of a related object, or `None` when it is not known.
    fn version(&self, dependency: &Dependency) -> Option<String> {
        match dependency {
            Dependency::Pod { namespace, name } => {
                self.pod(namespace, name)?.metadata.resource_version.clone()
            }
            Dependency::Service { namespace, name } => {
                self.service(namespace, name)?.metadata.resource_version.clone()
            }
            Dependency::Node(name) => self.node(name)?.metadata.resource_version.clone(),
            Dependency::Namespace(name) => self.namespace(name)?.metadata.resource_version.clone(),
            Dependency::ReplicaSet { namespace, name } => {
                self.replica_set(namespace, name)?.metadata.resource_version.clone()
            }
            Dependency::Job { namespace, name } => {
                self.job(namespace, name)?.metadata.resource_version.clone()
            }
        }
    }
}

/// A built group and what it was built from.
struct Built {
    source: String,
    version: Option<String>,
    /// Hash of the dependencies and their versions when built.
    dependencies: u64,
    /// The dependencies, kept while the object's version stays.
    dependency_list: Vec<Dependency>,
    group: Arc<TargetGroup>,
    /// Still present in the latest rebuild.
    seen: bool,
}

/// Builds an entry's groups, reusing unchanged ones, in stable positions.
#[derive(Default)]
struct GroupBuilder {
    /// By object (namespace/name).
    built: HashMap<String, Built>,
    /// Groups in send order, by source.
    slots: Vec<(String, Arc<TargetGroup>)>,
    slot_of: HashMap<String, usize>,
    /// Slots holding the empty group of a deleted object.
    vacant: usize,
    /// The related watches' change counters at the last rebuild: while they
    /// stay, an object whose version stays needs no dependency check.
    related_generations: Vec<u64>,
    related_changed: bool,
    empty: Arc<TargetGroup>,
    sent: Option<Vec<Arc<TargetGroup>>>,
}

impl GroupBuilder {
    /// The entry's current groups, or `None` when nothing changed since the last call.
    fn rebuild(&mut self, w: &Watches, config: &KubernetesSdConfig) -> Option<Vec<Arc<TargetGroup>>> {
        let attach = &config.attach;
        // Read before building: a change during the build shows next time.
        let generations = w.related_generations();
        self.related_changed = generations != self.related_generations;
        self.related_generations = generations;
        let mut current: Vec<(String, Arc<TargetGroup>)> = Vec::new();
        for built in self.built.values_mut() {
            built.seen = false;
        }
        match config.role {
            Role::Pod => self.objects(
                &w.pods,
                w,
                &mut current,
                |p| sd::pod_group(p, w, attach),
                |p| sd::pod_dependencies(p, attach),
            ),
            Role::Service => self.objects(
                &w.services,
                w,
                &mut current,
                |s| sd::service_group(s, w, attach),
                |s| sd::service_dependencies(s, attach),
            ),
            Role::Endpoints => self.objects(
                &w.endpoints,
                w,
                &mut current,
                |e| sd::endpoints_group(e, w, attach),
                |e| sd::endpoints_dependencies(e, w, attach),
            ),
            Role::EndpointSlice => self.objects(
                &w.slices,
                w,
                &mut current,
                |s| sd::endpointslice_group(s, w, attach),
                |s| sd::endpointslice_dependencies(s, w, attach),
            ),
            Role::Ingress => self.objects(
                &w.ingresses,
                w,
                &mut current,
                |i| sd::ingress_group(i, w, attach),
                |i| sd::ingress_dependencies(i, attach),
            ),
            Role::Node => {
                let nodes: Vec<W<Node>> = w.nodes.iter().cloned().collect();
                self.objects(&nodes, w, &mut current, sd::node_group, |_| Vec::new())
            }
        }
        self.built.retain(|_, b| b.seen);
        self.place(current);
        let groups: Vec<Arc<TargetGroup>> = self.slots.iter().map(|(_, g)| g.clone()).collect();
        let unchanged = self.sent.as_ref().is_some_and(|sent| {
            sent.len() == groups.len() && sent.iter().zip(&groups).all(|(a, b)| Arc::ptr_eq(a, b))
        });
        if unchanged {
            return None;
        }
        self.sent = Some(groups.clone());
        Some(groups)
    }

    fn objects<K: Watchable>(
        &mut self,
        watches: &[W<K>],
        related: &Watches,
        out: &mut Vec<(String, Arc<TargetGroup>)>,
        group: impl Fn(&K) -> (String, TargetGroup),
        dependencies: impl Fn(&K) -> Vec<Dependency>,
    ) {
        let related_changed = self.related_changed;
        for watch in watches {
            for object in watch.store().state() {
                let meta = object.meta();
                let id = format!(
                    "{}/{}",
                    meta.namespace.as_deref().unwrap_or(""),
                    meta.name.as_deref().unwrap_or("")
                );
                let version = meta.resource_version.clone();
                if let Some(built) = self.built.get_mut(&id)
                    && built.version == version
                    && !related_changed
                {
                    // Neither the object nor anything it could read changed.
                    built.seen = true;
                    out.push((built.source.clone(), built.group.clone()));
                    continue;
                }
                let dependencies = match self.built.get_mut(&id) {
                    Some(built) if built.version == version => std::mem::take(&mut built.dependency_list),
                    _ => dependencies(&object),
                };
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                for dependency in &dependencies {
                    dependency.hash(&mut hasher);
                    related.version(dependency).hash(&mut hasher);
                }
                let fingerprint = hasher.finish();
                if let Some(built) = self.built.get_mut(&id)
                    && built.version == version
                    && built.dependencies == fingerprint
                {
                    built.seen = true;
                    built.dependency_list = dependencies;
                    out.push((built.source.clone(), built.group.clone()));
                    continue;
                }
                let (source, fresh) = group(&object);
                let group = match self.built.get(&id) {
                    // Rebuilt to the same content: keep the old Arc.
                    Some(old) if *old.group == fresh => old.group.clone(),
                    _ => Arc::new(fresh),
                };
                let built = Built {
                    source: source.clone(),
                    version,
                    dependencies: fingerprint,
                    dependency_list: dependencies,
                    group: group.clone(),
                    seen: true,
                };
                self.built.insert(id, built);
                out.push((source, group));
            }
        }
    }

    /// Puts `current` into the slots: a known source keeps its position, a
    /// new one is appended, a vanished one leaves the empty group behind
    /// (Prometheus sends an empty group for a deleted object). When most
    /// slots are vacant they are dropped, shifting positions once.
    fn place(&mut self, mut current: Vec<(String, Arc<TargetGroup>)>) {
        let mut present = vec![false; self.slots.len()];
        for (source, group) in current.drain(..) {
            match self.slot_of.get(&source) {
                Some(&i) => {
                    if Arc::ptr_eq(&self.slots[i].1, &self.empty) {
                        self.vacant -= 1;
                    }
                    self.slots[i].1 = group;
                    present[i] = true;
                }
                None => {
                    self.slot_of.insert(source.clone(), self.slots.len());
                    self.slots.push((source, group));
                    present.push(true);
                }
            }
        }
        for (i, here) in present.iter().enumerate() {
            if !here && !Arc::ptr_eq(&self.slots[i].1, &self.empty) {
                self.slots[i].1 = self.empty.clone();
                self.vacant += 1;
            }
        }
        if self.vacant > 64 && self.vacant * 2 > self.slots.len() {
            let empty = self.empty.clone();
            self.slots.retain(|(_, g)| !Arc::ptr_eq(g, &empty));
            self.slot_of = self.slots.iter().enumerate().map(|(i, (s, _))| (s.clone(), i)).collect();
            self.vacant = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_prometheus_config;
    use serde_json::json;

    fn parse(entry: Value) -> Result<Vec<KubernetesSdConfig>, SdConfigError> {
        let config = parse_prometheus_config(&json!({
            "scrape_configs": [{"job_name": "j", "kubernetes_sd_configs": [entry]}]
        }))
        .unwrap();
        parse_sd_configs(&config.scrape_configs[0])
    }

    #[test]
    fn entries_parse_with_prometheus_rules() {
        let entry = parse(json!({
            "role": "endpoints",
            "namespaces": {"own_namespace": true, "names": ["a", "b"]},
            "selectors": [{"role": "pod", "label": "app=web"}, {"role": "endpoints", "field": "metadata.name=x"}],
            "attach_metadata": {"node": true},
            "api_server": "https://k8s.example:6443",
            "authorization": {"credentials": "t"},
            "tls_config": {"insecure_skip_verify": true},
        }))
        .unwrap()
        .remove(0);
        assert_eq!(entry.role, Role::Endpoints);
        assert_eq!(entry.namespaces, ["a", "b"]);
        assert!(entry.own_namespace && entry.attach.node && !entry.attach.namespace);
        assert_eq!(entry.selectors[&Role::Pod], (Some("app=web".into()), None));
        assert_eq!(entry.selectors[&Role::Endpoints], (None, Some("metadata.name=x".into())));
        let ClusterSource::ApiServer(api) = &entry.cluster else { panic!("{:?}", entry.cluster) };
        assert_eq!((api.bearer_token.as_deref(), api.insecure_skip_verify), (Some("t"), true));
        assert_eq!(parse(json!({"role": "node"})).unwrap()[0].cluster, ClusterSource::InCluster);

        for (entry, key) in [
            (json!({}), "kubernetes_sd_configs[0].role: is required"),
            (json!({"role": "deployment"}), "kubernetes_sd_configs[0].role: unknown"),
            (
                json!({"role": "pod", "selectors": [{"role": "service"}]}),
                "selectors[0].role: role service is not allowed",
            ),
            (
                json!({"role": "pod", "api_server": "http://x", "kubeconfig_file": "k"}),
                "api_server: cannot be used",
            ),
        ] {
            let err = parse(entry).unwrap_err().to_string();
            assert!(err.starts_with("job \"j\": ") && err.contains(key), "{err}");
        }
    }

    fn group(address: &str) -> Arc<TargetGroup> {
        Arc::new(crate::discovery::group_of_addresses(vec![address.into()], Default::default()))
    }

    #[test]
    fn groups_keep_their_positions_and_deleted_ones_leave_an_empty_group() {
        let mut builder = GroupBuilder::default();
        let (a, b, c) = (group("a:1"), group("b:1"), group("c:1"));
        builder.place(vec![("pod/n/a".into(), a.clone()), ("pod/n/b".into(), b.clone())]);
        builder.place(vec![("pod/n/c".into(), c.clone()), ("pod/n/b".into(), b.clone())]);
        let groups: Vec<&Arc<TargetGroup>> = builder.slots.iter().map(|(_, g)| g).collect();
        assert!(groups[0].targets.is_empty(), "a's slot holds the empty group");
        assert!(Arc::ptr_eq(groups[1], &b) && Arc::ptr_eq(groups[2], &c));
        // a comes back into its old slot.
        builder.place(vec![
            ("pod/n/a".into(), a.clone()),
            ("pod/n/b".into(), b.clone()),
            ("pod/n/c".into(), c),
        ]);
        assert!(Arc::ptr_eq(&builder.slots[0].1, &a));
        assert_eq!(builder.vacant, 0);
        // Mostly vacant slots are compacted.
        let many: Vec<(String, Arc<TargetGroup>)> =
            (0..200).map(|i| (format!("pod/n/{i}"), group("x:1"))).collect();
        builder.place(many);
        builder.place(vec![("pod/n/b".into(), b.clone())]);
        assert_eq!(builder.slots.len(), 1);
        assert!(Arc::ptr_eq(&builder.slots[0].1, &b));
    }
}
