//! Shared watches: one kube-runtime watcher and reflector store per
//! (cluster, resource, namespace, selectors), however many consumers read it.
//!
//! Owns the watch tasks and their stores. Consumers get a [`SharedWatch`]:
//! a read-only store plus a change counter that moves only when the store
//! holds a complete state (after a full list, or on a watch event), never in
//! the middle of a re-list, so a consumer never sees a partial set. It must
//! not interpret objects: that is the consumers' business.

use std::any::Any;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

/// Which objects one watch follows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WatchKey {
    /// Identifies the cluster and credentials (see `ClusterSource`).
    pub cluster: String,
    /// `apiVersion/kind`.
    pub resource: String,
    /// `None`: every namespace (and cluster-scoped resources).
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

/// What a typed resource needs to be watched here, including how to
/// address it (kube types namespaced and cluster-scoped APIs differently).
pub trait Watchable:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    /// The API for `namespace`, or every namespace when `None`.
    fn api(client: Client, namespace: Option<&str>) -> Api<Self>;
}

macro_rules! namespaced {
    ($($kind:ty),*) => {$(
        impl Watchable for $kind {
            fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
                match namespace {
                    Some(ns) => Api::namespaced(client, ns),
                    None => Api::all(client),
                }
            }
        }
    )*};
}

macro_rules! cluster_scoped {
    ($($kind:ty),*) => {$(
        impl Watchable for $kind {
            /// Cluster-scoped: the namespace does not apply.
            fn api(client: Client, _namespace: Option<&str>) -> Api<Self> {
                Api::all(client)
            }
        }
    )*};
}

namespaced!(Pod, Service, Endpoints, EndpointSlice, Ingress);
cluster_scoped!(Node, Namespace);

/// A running watch: its store and change counter. The watch stops when the
/// last holder drops it.
pub struct SharedWatch<K: Watchable> {
    key: WatchKey,
    store: Store<K>,
    changes: signal::Receiver<u64>,
    task: JoinHandle<()>,
}

impl<K: Watchable> SharedWatch<K> {
    pub fn key(&self) -> &WatchKey {
        &self.key
    }

    /// The objects as of the last complete state.
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// A receiver that changes whenever the store does; its value is 0 until
    /// the first complete list.
    pub fn changes(&self) -> signal::Receiver<u64> {
        self.changes.clone()
    }

    /// The change counter's current value (0 before the first complete list).
    pub fn generation(&self) -> u64 {
        *self.changes.borrow()
    }

    /// Waits for the first complete list.
    pub async fn ready(&self) {
        let mut changes = self.changes.clone();
        let _ = changes.wait_for(|n| *n > 0).await;
    }
}

impl<K: Watchable> Drop for SharedWatch<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The watches of one process, shared by key.
#[derive(Default)]
pub struct WatchHub {
    watches: Mutex<HashMap<WatchKey, Weak<dyn Any + Send + Sync>>>,
    started: AtomicUsize,
}

impl WatchHub {
    pub fn new() -> Arc<WatchHub> {
        Arc::new(WatchHub::default())
    }

    /// The running watch for `key`, or a new one through `client`. Must be
    /// called inside a tokio runtime.
    pub fn watch<K: Watchable>(&self, client: &Client, key: WatchKey) -> Arc<SharedWatch<K>> {
        debug_assert_eq!(key.resource, resource_name::<K>());
        let mut watches = self.watches.lock().unwrap();
        if let Some(existing) = watches.get(&key).and_then(Weak::upgrade)
            && let Ok(shared) = existing.downcast::<SharedWatch<K>>()
        {
            return shared;
        }
        let shared = Arc::new(start::<K>(client.clone(), key.clone()));
        self.started.fetch_add(1, Ordering::Relaxed);
        let erased: Arc<dyn Any + Send + Sync> = shared.clone();
        watches.retain(|_, w| w.strong_count() > 0);
        watches.insert(key, Arc::downgrade(&erased));
        shared
    }

    /// How many watches this hub has started.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }
}

/// `apiVersion/kind` of `K`, as in [`WatchKey::resource`].
pub fn resource_name<K: Resource<DynamicType = ()>>() -> String {
    format!("{}/{}", K::api_version(&()), K::kind(&()))
}

fn start<K: Watchable>(client: Client, key: WatchKey) -> SharedWatch<K> {
    let api = K::api(client, key.namespace.as_deref());
    let config = watcher::Config {
        label_selector: key.label_selector.clone(),
        field_selector: key.field_selector.clone(),
        ..watcher::Config::default()
    };
    let (store, writer) = reflector::store::<K>();
    let (notify, changes) = signal::channel(0u64);
    let what = format!("{key:?}");
    let task = tokio::spawn(async move {
        // The reflector swaps in a re-listed state only at InitDone, so the
        // store never shows a partial list; errors are retried with backoff
        // (a 410 restarts from a fresh list).
        let events = reflector::reflector(writer, watcher::watcher(api, config).default_backoff());
        futures::pin_mut!(events);
        let mut failing = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(_) | Event::Delete(_) | Event::InitDone) => {
                    if failing {
                        tracing::info!(watch = %what, "kubernetes watch recovered");
                        failing = false;
                    }
                    notify.send_modify(|n| *n += 1);
                }
                Ok(Event::Init | Event::InitApply(_)) => {}
                Err(error) => {
                    // One warning per failure streak; the backoff retries.
                    if !failing {
                        tracing::warn!(watch = %what, %error, "kubernetes watch failed; retrying");
                    }
                    failing = true;
                }
            }
        }
    });
    SharedWatch { key, store, changes, task }
}
