//! The object store: current objects per resource, one global resource
//! version counter (as etcd has), and the event history watches resume from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};

/// A resource the server serves.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    /// "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Everything a Prometheus `kubernetes_sd_configs` role or the collector
/// watcher reads.
pub const RESOURCES: [Resource; 7] = [
    Resource { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true },
    Resource { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true },
    Resource { group: "", version: "v1", plural: "endpoints", kind: "Endpoints", namespaced: true },
    Resource { group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false },
    Resource { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
    Resource {
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        kind: "EndpointSlice",
        namespaced: true,
    },
    Resource {
        group: "networking.k8s.io",
        version: "v1",
        plural: "ingresses",
        kind: "Ingress",
        namespaced: true,
    },
];

/// Index into [`RESOURCES`].
pub type ResourceId = usize;

pub fn resource_by_plural(group: &str, version: &str, plural: &str) -> Option<ResourceId> {
    RESOURCES.iter().position(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn resource_by_kind(api_version: &str, kind: &str) -> Option<ResourceId> {
    RESOURCES.iter().position(|r| r.api_version() == api_version && r.kind == kind)
}

/// (namespace, name); namespace "" for cluster-scoped objects.
pub type Key = (String, String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, kept so watches can resume and paginated lists can read the
/// snapshot their continue token names.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub resource: ResourceId,
    pub kind: EventType,
    pub key: Key,
    /// The object after the change (for a deletion: its last state, at the deletion's version).
    pub object: Arc<Value>,
    /// The object before the change.
    pub previous: Option<Arc<Value>>,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("object has no apiVersion/kind this server serves: {0}")]
    UnknownKind(String),
    #[error("object has no metadata.name")]
    NoName,
    #[error("namespaced object {0} has no metadata.namespace")]
    NoNamespace(String),
}

pub struct Store {
    pub rv: u64,
    objects: Vec<BTreeMap<Key, Arc<Value>>>,
    history: VecDeque<Arc<Event>>,
    /// Versions up to this one are no longer in `history`.
    pub compacted: u64,
    next_uid: u64,
}

impl Default for Store {
    fn default() -> Self {
        // Start above 1 so "0" (any version) and real versions never meet.
        Store {
            rv: 100,
            objects: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
            history: VecDeque::new(),
            compacted: 100,
            next_uid: 1,
        }
    }
}

/// History kept without an explicit compaction; older watches get 410.
const MAX_HISTORY: usize = 1 << 20;

impl Store {
    /// Creates or replaces an object; returns the event to broadcast.
    pub fn apply(&mut self, mut object: Value) -> Result<Arc<Event>, StoreError> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let resource = resource_by_kind(api_version, kind)
            .ok_or_else(|| StoreError::UnknownKind(format!("{api_version} {kind}")))?;
        let name = object.pointer("/metadata/name").and_then(Value::as_str).ok_or(StoreError::NoName)?;
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
        if RESOURCES[resource].namespaced && namespace.is_empty() {
            return Err(StoreError::NoNamespace(name.to_string()));
        }
        let key = (namespace.to_string(), name.to_string());
        self.rv += 1;
        let previous = self.objects[resource].get(&key).cloned();
        let metadata = object
            .as_object_mut()
            .and_then(|o| o.get_mut("metadata"))
            .and_then(Value::as_object_mut)
            .expect("metadata has a name");
        metadata.insert("resourceVersion".into(), json!(self.rv.to_string()));
        let uid = previous.as_ref().and_then(|p| p.pointer("/metadata/uid").cloned()).unwrap_or_else(|| {
            self.next_uid += 1;
            json!(format!("00000000-0000-0000-0000-{:012}", self.next_uid))
        });
        metadata.entry("uid").or_insert(uid);
        metadata.entry("creationTimestamp").or_insert(json!("2026-01-01T00:00:00Z"));
        let object = Arc::new(object);
        self.objects[resource].insert(key.clone(), object.clone());
        let kind = if previous.is_some() { EventType::Modified } else { EventType::Added };
        Ok(self.record(Event { rv: self.rv, resource, kind, key, object, previous }))
    }

    /// Deletes an object; `None` when there was none.
    pub fn delete(&mut self, resource: ResourceId, key: &Key) -> Option<Arc<Event>> {
        let previous = self.objects[resource].remove(key)?;
        self.rv += 1;
        let mut last = (*previous).clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let event = Event {
            rv: self.rv,
            resource,
            kind: EventType::Deleted,
            key: key.clone(),
            object: Arc::new(last),
            previous: Some(previous),
        };
        Some(self.record(event))
    }

    fn record(&mut self, event: Event) -> Arc<Event> {
        let event = Arc::new(event);
        self.history.push_back(event.clone());
        if self.history.len() > MAX_HISTORY
            && let Some(old) = self.history.pop_front()
        {
            self.compacted = old.rv;
        }
        event
    }

    /// Forgets all history: resuming from any earlier version now gets 410.
    pub fn compact(&mut self) {
        // Compaction is itself a revision (as in etcd): a client whose last
        // seen version is older than it cannot resume, even if no object
        // changed since.
        self.rv += 1;
        self.history.clear();
        self.compacted = self.rv;
    }

    pub fn get(&self, resource: ResourceId, key: &Key) -> Option<Arc<Value>> {
        self.objects[resource].get(key).cloned()
    }

    /// Events after version `rv`, oldest first; `None` when compacted away.
    pub fn events_after(&self, rv: u64) -> Option<impl Iterator<Item = &Arc<Event>>> {
        if rv < self.compacted {
            return None;
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Some(self.history.range(start..))
    }

    /// The objects of `resource` as they were at version `rv`, in key order;
    /// `None` when that version is compacted away.
    pub fn objects_at(&self, resource: ResourceId, rv: u64) -> Option<BTreeMap<Key, Arc<Value>>> {
        let mut later: Vec<&Arc<Event>> = self.events_after(rv)?.filter(|e| e.resource == resource).collect();
        let mut objects = self.objects[resource].clone();
        later.reverse();
        for event in later {
            match &event.previous {
                Some(previous) => objects.insert(event.key.clone(), previous.clone()),
                None => objects.remove(&event.key),
            };
        }
        Some(objects)
    }

    /// The current objects of `resource` (no copy when it is the latest version).
    pub fn current(&self, resource: ResourceId) -> &BTreeMap<Key, Arc<Value>> {
        &self.objects[resource]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"}, "status": {"phase": phase}})
    }

    #[test]
    fn versions_increase_and_snapshots_rewind() {
        let mut store = Store::default();
        let a = store.apply(pod("a", "Pending")).unwrap();
        let snapshot = store.rv;
        let b = store.apply(pod("b", "Running")).unwrap();
        store.apply(pod("a", "Running")).unwrap();
        store.delete(0, &("ns".into(), "b".into())).unwrap();
        assert!(b.rv > a.rv && store.rv == b.rv + 2);
        let then = store.objects_at(0, snapshot).unwrap();
        assert_eq!(then.len(), 1);
        assert_eq!(then[&("ns".to_string(), "a".to_string())]["status"]["phase"], "Pending");
        assert_eq!(store.events_after(snapshot).unwrap().count(), 3);
        store.compact();
        assert!(store.objects_at(0, snapshot).is_none());
        assert!(store.events_after(snapshot).is_none());
        assert_eq!(store.events_after(store.rv).unwrap().count(), 0);
    }
}
