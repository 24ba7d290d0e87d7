//! A test Kubernetes API server: the list/watch protocol over real HTTP on
//! loopback, served from in-memory objects the test controls.
//!
//! Serves core/v1 pods, services, endpoints, nodes and namespaces,
//! discovery.k8s.io/v1 endpointslices and networking.k8s.io/v1 ingresses,
//! namespaced and across all namespaces, with what clients rely on:
//! - LIST with the list's `resourceVersion`, `limit`/`continue` pages read
//!   from one snapshot (410 `Expired` once it is compacted away),
//!   `labelSelector` and `fieldSelector`;
//! - WATCH (`watch=true`) streaming JSON lines with monotonically increasing
//!   versions, resuming from `resourceVersion`, selector transitions
//!   (a modified object leaving the selection is DELETED for the watch),
//!   `allowWatchBookmarks`, `timeoutSeconds`, and a too-old version
//!   answered as the real server does: HTTP 200 then an ERROR event whose
//!   Status has code 410;
//! - test controls: apply/delete objects, close every watch, compact the
//!   history, make the next requests fail, and count requests.
//!
//! It runs on its own thread and runtime, so synchronous tests and other
//! runtimes can drive it alike. It keeps no state on disk.

mod selector;
mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

pub use selector::{FieldSelector, LabelSelector, SelectorError};
pub use store::{Event, EventType, RESOURCES, Resource, ResourceId, StoreError};
use store::{Key, Store, resource_by_kind, resource_by_plural};

/// How the server behaves; the defaults suit tests.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often an idle watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { bookmark_interval: Duration::from_secs(1) }
    }
}

/// Requests seen per resource plural.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub lists: usize,
    /// Watch requests answered (each one is a connection).
    pub watches: usize,
    /// Watches streaming right now.
    pub open_watches: usize,
}

struct Injected {
    plural: String,
    remaining: usize,
    code: u16,
}

struct Shared {
    store: Mutex<Store>,
    events: broadcast::Sender<Arc<Event>>,
    /// Bumped to close every open watch.
    disconnect: watch::Sender<u64>,
    counts: Mutex<HashMap<String, Counts>>,
    injected: Mutex<Vec<Injected>>,
    options: Options,
}

/// A running test API server; stops when dropped.
pub struct ApiServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Starts a server on a free loopback port.
    pub fn start() -> ApiServer {
        ApiServer::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> ApiServer {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            events: broadcast::channel(1 << 16).0,
            disconnect: watch::channel(0).0,
            counts: Mutex::new(HashMap::new()),
            injected: Mutex::new(Vec::new()),
            options,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name("kube-apiserver".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .expect("start the API server thread");
        ApiServer { shared, address, stop: Some(stop), thread: Some(thread) }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kubeconfig whose current context points at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n\
             users:\n- name: test\n  user:\n    token: test-token\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\n\
             current-context: test\n",
            self.url()
        )
    }

    /// Writes [`ApiServer::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Creates or replaces an object (`apiVersion`, `kind`, `metadata.name`,
    /// and `metadata.namespace` when namespaced); returns its new version.
    pub fn apply(&self, object: Value) -> Result<u64, StoreError> {
        let mut store = self.shared.store.lock().unwrap();
        let event = store.apply(object)?;
        let rv = event.rv;
        // Sent under the lock so watches see events in version order.
        let _ = self.shared.events.send(event);
        Ok(rv)
    }

    /// Applies many objects; panics on an invalid one (fixtures are code).
    pub fn apply_all(&self, objects: impl IntoIterator<Item = Value>) {
        let mut store = self.shared.store.lock().unwrap();
        for object in objects {
            let event = store.apply(object).expect("a valid fixture object");
            let _ = self.shared.events.send(event);
        }
    }

    /// Deletes an object; false when there was none.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let Some(resource) = resource_by_kind(api_version, kind) else { return false };
        let mut store = self.shared.store.lock().unwrap();
        match store.delete(resource, &(namespace.to_string(), name.to_string())) {
            Some(event) => {
                let _ = self.shared.events.send(event);
                true
            }
            None => false,
        }
    }

    /// The stored object, with its server-set metadata.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let resource = resource_by_kind(api_version, kind)?;
        let store = self.shared.store.lock().unwrap();
        store.get(resource, &(namespace.to_string(), name.to_string())).map(|o| (*o).clone())
    }

    /// The current resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().unwrap().rv
    }

    /// Closes every open watch stream, as a restarting API server or a
    /// broken connection does. Clients resume from their last version.
    pub fn disconnect_watches(&self) {
        self.shared.disconnect.send_modify(|n| *n += 1);
    }

    /// Forgets the event history: resuming a watch or a paginated list from
    /// any earlier version now gets 410 Gone and the client must re-list.
    pub fn compact(&self) {
        self.shared.store.lock().unwrap().compact();
    }

    /// The next `count` list or watch requests for `plural` fail with HTTP `code`.
    pub fn fail_next(&self, plural: &str, count: usize, code: u16) {
        self.shared.injected.lock().unwrap().push(Injected { plural: plural.into(), remaining: count, code });
    }

    /// Requests seen for `plural` so far.
    pub fn counts(&self, plural: &str) -> Counts {
        self.shared.counts.lock().unwrap().get(plural).cloned().unwrap_or_default()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.disconnect_watches();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A parsed request path.
struct Target {
    resource: ResourceId,
    /// `Some` for a namespaced path.
    namespace: Option<String>,
    /// `Some` for a single-object GET.
    name: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let find = |plural: &str| resource_by_plural(group, version, plural);
    let (resource, namespace, name) = match rest {
        [plural] => (find(plural)?, None, None),
        ["namespaces", ns, plural] => (find(plural)?, Some(ns.to_string()), None),
        ["namespaces", ns, plural, name] => (find(plural)?, Some(ns.to_string()), Some(name.to_string())),
        [plural, name] => (find(plural)?, None, Some(name.to_string())),
        _ => return None,
    };
    if namespace.is_some() && !RESOURCES[resource].namespaced {
        return None;
    }
    Some(Target { resource, namespace, name })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn status_response(code: u16, reason: &str, message: &str) -> Response {
    let code_ = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code_, &status(code, reason, message))
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (code, [("content-type", "application/json")], body.to_string()).into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if uri.path() == "/version" {
        return json_response(
            StatusCode::OK,
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-test"}),
        );
    }
    if method != Method::GET {
        return status_response(405, "MethodNotAllowed", "this test server only reads");
    }
    let Some(target) = parse_path(uri.path()) else {
        return status_response(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({})", uri.path()),
        );
    };
    let plural = RESOURCES[target.resource].plural;
    if let Some(code) = take_injected(&shared, plural) {
        return status_response(code, "InternalError", "injected failure");
    }
    if let Some(name) = &target.name {
        let key = (target.namespace.clone().unwrap_or_default(), name.clone());
        let store = shared.store.lock().unwrap();
        return match store.get(target.resource, &key) {
            Some(object) => json_response(StatusCode::OK, &object),
            None => status_response(404, "NotFound", &format!("{plural} \"{name}\" not found")),
        };
    }
    let labels = match LabelSelector::parse(param("labelSelector").unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return status_response(400, "BadRequest", &e.to_string()),
    };
    let fields = match FieldSelector::parse(param("fieldSelector").unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return status_response(400, "BadRequest", &e.to_string()),
    };
    let filter = Filter { resource: target.resource, namespace: target.namespace, labels, fields };
    if matches!(param("watch"), Some("true" | "1")) {
        let timeout = param("timeoutSeconds").and_then(|t| t.parse().ok()).map(Duration::from_secs);
        let bookmarks = matches!(param("allowWatchBookmarks"), Some("true" | "1"));
        return start_watch(&shared, filter, param("resourceVersion").unwrap_or(""), timeout, bookmarks);
    }
    let limit = param("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    list(&shared, &filter, limit, param("continue"))
}

fn take_injected(shared: &Shared, plural: &str) -> Option<u16> {
    let mut injected = shared.injected.lock().unwrap();
    let found = injected.iter_mut().find(|i| i.plural == plural && i.remaining > 0)?;
    found.remaining -= 1;
    let code = found.code;
    injected.retain(|i| i.remaining > 0);
    Some(code)
}

fn count(shared: &Shared, plural: &str, update: impl FnOnce(&mut Counts)) {
    update(shared.counts.lock().unwrap().entry(plural.to_string()).or_default());
}

/// What one list or watch selects.
struct Filter {
    resource: ResourceId,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, key: &Key, object: &Value) -> bool {
        self.namespace.as_ref().is_none_or(|ns| *ns == key.0)
            && self.labels.matches(object)
            && self.fields.matches(object)
    }
}

fn list(shared: &Shared, filter: &Filter, limit: Option<usize>, continue_: Option<&str>) -> Response {
    let resource = &RESOURCES[filter.resource];
    count(shared, resource.plural, |c| c.lists += 1);
    // A continue token is "<snapshot version>/<namespace>/<name>" of the last item served.
    let start = match continue_.filter(|c| !c.is_empty()) {
        None => None,
        Some(token) => {
            let mut parts = token.splitn(3, '/');
            match (parts.next().and_then(|v| v.parse::<u64>().ok()), parts.next(), parts.next()) {
                (Some(rv), Some(ns), Some(name)) => Some((rv, (ns.to_string(), name.to_string()))),
                _ => return status_response(400, "BadRequest", "invalid continue token"),
            }
        }
    };
    let store = shared.store.lock().unwrap();
    let snapshot_rv = start.as_ref().map_or(store.rv, |(rv, _)| *rv);
    let rewound;
    let objects = if snapshot_rv == store.rv {
        store.current(filter.resource)
    } else {
        match store.objects_at(filter.resource, snapshot_rv) {
            Some(objects) => {
                rewound = objects;
                &rewound
            }
            None => {
                return status_response(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. \
                     You can start a new list without the continue parameter.",
                );
            }
        }
    };
    let range = match &start {
        Some((_, after)) => {
            objects.range::<Key, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
        }
        None => objects.range::<Key, _>(..),
    };
    let mut items = Vec::new();
    let mut last_key = None;
    let mut remaining = 0usize;
    for (key, object) in range {
        if !filter.matches(key, object) {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            remaining += 1;
            continue;
        }
        last_key = Some(key);
        items.push(object.clone());
    }
    let mut metadata = json!({"resourceVersion": snapshot_rv.to_string()});
    if remaining > 0
        && let Some((ns, name)) = last_key
    {
        metadata["continue"] = json!(format!("{snapshot_rv}/{ns}/{name}"));
        metadata["remainingItemCount"] = json!(remaining);
    }
    // Items in a list carry no kind/apiVersion of their own, as the real server sends them.
    let mut body = String::with_capacity(64 + items.len() * 512);
    body.push_str(&format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
        resource.kind,
        resource.api_version(),
        metadata
    ));
    drop(store);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let mut item = (**item).clone();
        if let Some(o) = item.as_object_mut() {
            o.remove("kind");
            o.remove("apiVersion");
        }
        body.push_str(&item.to_string());
    }
    body.push_str("]}");
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// What an event means for a watch with this filter, as the real server's
/// watch cache decides: selection transitions become ADDED / DELETED.
fn translate(filter: &Filter, event: &Event) -> Option<Bytes> {
    if event.resource != filter.resource {
        return None;
    }
    let now = event.kind != EventType::Deleted && filter.matches(&event.key, &event.object);
    let before = event.previous.as_ref().is_some_and(|p| filter.matches(&event.key, p));
    let kind = match (before, now) {
        (false, true) => "ADDED",
        (true, true) => "MODIFIED",
        (true, false) => "DELETED",
        (false, false) => return None,
    };
    Some(watch_line(kind, &event.object))
}

fn start_watch(
    shared: &Arc<Shared>,
    filter: Filter,
    resource_version: &str,
    timeout: Option<Duration>,
    bookmarks: bool,
) -> Response {
    let resource = &RESOURCES[filter.resource];
    count(shared, resource.plural, |c| {
        c.watches += 1;
        c.open_watches += 1;
    });
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1024);
    let mut initial = Vec::new();
    let (events, progress) = {
        let store = shared.store.lock().unwrap();
        let from = match resource_version {
            "" | "0" => {
                // No version: the current state as ADDED events, then changes.
                for (key, object) in store.current(filter.resource) {
                    if filter.matches(key, object) {
                        initial.push(watch_line("ADDED", object));
                    }
                }
                Some(store.rv)
            }
            rv => match rv.parse::<u64>() {
                Ok(rv) => match store.events_after(rv) {
                    Some(later) => {
                        initial.extend(later.filter_map(|e| translate(&filter, e)));
                        Some(rv.max(store.rv))
                    }
                    None => {
                        let message = format!("too old resource version: {rv} ({})", store.compacted);
                        initial.push(watch_line("ERROR", &status(410, "Expired", &message)));
                        None
                    }
                },
                Err(_) => {
                    drop(store);
                    count(shared, resource.plural, |c| c.open_watches -= 1);
                    return status_response(400, "BadRequest", &format!("invalid resourceVersion {rv:?}"));
                }
            },
        };
        // Subscribed under the store lock: nothing falls between replay and live events.
        (shared.events.subscribe(), from)
    };
    let shared = shared.clone();
    let mut disconnect = shared.disconnect.subscribe();
    disconnect.mark_unchanged();
    tokio::spawn(async move {
        let plural = RESOURCES[filter.resource].plural;
        let kind = RESOURCES[filter.resource].kind;
        let api_version = RESOURCES[filter.resource].api_version();
        stream_watch(
            &shared,
            &filter,
            tx,
            initial,
            events,
            progress,
            disconnect,
            timeout,
            bookmarks,
            kind,
            &api_version,
        )
        .await;
        count(&shared, plural, |c| c.open_watches -= 1);
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(body)
        .expect("a valid response")
}

#[allow(clippy::too_many_arguments)]
async fn stream_watch(
    shared: &Shared,
    filter: &Filter,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    initial: Vec<Bytes>,
    mut events: broadcast::Receiver<Arc<Event>>,
    progress: Option<u64>,
    mut disconnect: watch::Receiver<u64>,
    timeout: Option<Duration>,
    bookmarks: bool,
    kind: &str,
    api_version: &str,
) {
    for line in initial {
        if tx.send(Ok(line)).await.is_err() {
            return;
        }
    }
    // The watch ended with its ERROR event (too old a version).
    let Some(mut progress) = progress else { return };
    let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(1800)));
    tokio::pin!(deadline);
    let mut bookmark = tokio::time::interval(shared.options.bookmark_interval);
    bookmark.tick().await;
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = disconnect.changed() => return,
            _ = tx.closed() => return,
            received = events.recv() => match received {
                Ok(event) => {
                    // Events are broadcast in version order, so every version up to this
                    // one has been seen: a bookmark may name it.
                    progress = progress.max(event.rv);
                    if let Some(line) = translate(filter, &event)
                        && tx.send(Ok(line)).await.is_err()
                    {
                        return;
                    }
                }
                // A watcher too slow to keep up is closed, as the real server does;
                // the client resumes from its last version.
                Err(_) => return,
            },
            _ = bookmark.tick(), if bookmarks => {
                let object = json!({"kind": kind, "apiVersion": api_version,
                                    "metadata": {"resourceVersion": progress.to_string()}});
                if tx.send(Ok(watch_line("BOOKMARK", &object))).await.is_err() {
                    return;
                }
            }
        }
    }
}
