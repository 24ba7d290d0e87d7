//! The HTTP API collectors and Prometheus HTTP SD consume, byte-compatible
//! with the reference allocator's (see the README for the routes).
//!
//! Owns routing, content negotiation (ETag, gzip) and request metrics. It
//! answers only from the current [`Snapshot`] and must not touch the
//! allocator: a request never waits for an allocation.

mod body;
mod scrape_configs;
mod snapshot;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{MatchedPath, Query, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use body::Body;
pub use scrape_configs::{REDACTED, render as render_scrape_configs};
pub use snapshot::{Snapshot, query_escape, query_unescape};

use crate::metrics::{Metrics, PathLabel};
use crate::strategies::{FileStatus, StrategyStatus};

/// The catalogue as the reloader last published it (`/strategies`).
#[derive(Clone, Debug, Default)]
pub struct CatalogView {
    pub strategies: Vec<StrategyStatus>,
    pub files: Vec<FileStatus>,
    pub strategy_dir: Option<std::path::PathBuf>,
    /// Why the last config reload was refused; `None` once one is applied.
    pub config_error: Option<String>,
}

/// The strategies the allocation thread runs (`/strategies`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ActiveView {
    pub strategy: Option<ActiveStrategy>,
    pub fallback: Option<ActiveStrategy>,
    /// Why the last attempt to switch strategies failed, if it did (the
    /// previous strategy then stayed).
    pub last_switch_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ActiveStrategy {
    pub name: String,
    pub digest: String,
}

/// What handlers share: the current snapshot and the metrics.
pub struct ServerState {
    snapshot: ArcSwap<Snapshot>,
    catalog: ArcSwap<CatalogView>,
    active: ArcSwap<ActiveView>,
    metrics: Arc<Metrics>,
    /// Serve secrets in `/scrape_configs` over plain HTTP (`allow_insecure_auth_secrets`).
    serve_secrets: std::sync::atomic::AtomicBool,
}

impl ServerState {
    pub fn new(metrics: Arc<Metrics>) -> Arc<ServerState> {
        Arc::new(ServerState {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            catalog: ArcSwap::from_pointee(CatalogView::default()),
            active: ArcSwap::from_pointee(ActiveView::default()),
            metrics,
            serve_secrets: false.into(),
        })
    }

    /// Swaps in a new snapshot; requests in flight finish on the old one.
    pub fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn set_serve_secrets(&self, serve: bool) {
        self.serve_secrets.store(serve, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn publish_catalog(&self, view: CatalogView) {
        self.catalog.store(Arc::new(view));
    }

    pub fn publish_active(&self, view: ActiveView) {
        self.active.store(Arc::new(view));
    }

    pub fn catalog(&self) -> Arc<CatalogView> {
        self.catalog.load_full()
    }

    pub fn active(&self) -> Arc<ActiveView> {
        self.active.load_full()
    }

    /// The `/strategies` document: every strategy with its active flag, the
    /// `strategy_dir` files with their last errors, and the active choice.
    pub fn strategies_document(&self) -> serde_json::Value {
        let catalog = self.catalog.load();
        let active = self.active.load();
        let is = |role: &Option<ActiveStrategy>, s: &StrategyStatus| {
            role.as_ref().is_some_and(|a| a.name == s.name && a.digest == s.digest)
        };
        let strategies: Vec<serde_json::Value> = catalog
            .strategies
            .iter()
            .map(|s| {
                let mut entry = serde_json::to_value(s).expect("plain data serializes");
                entry["active"] = is(&active.strategy, s).into();
                entry["fallback"] = is(&active.fallback, s).into();
                entry
            })
            .collect();
        serde_json::json!({
            "active": &**active,
            "strategy_dir": catalog.strategy_dir,
            "config_error": catalog.config_error,
            "strategies": strategies,
            "files": catalog.files,
        })
    }
}

/// The API's routes.
pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/scrape_configs", get(scrape_configs))
        .route("/jobs", get(jobs))
        .route("/jobs/{job}/targets", get(job_targets))
        .route("/strategies", get(strategies))
        .route("/livez", get(|| async { StatusCode::OK }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), record_duration))
        .with_state(state)
}

async fn scrape_configs(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    let snapshot = state.snapshot();
    let body = if state.serve_secrets.load(std::sync::atomic::Ordering::Relaxed) {
        &snapshot.scrape_configs_full
    } else {
        &snapshot.scrape_configs_redacted
    };
    respond(body, &headers)
}

async fn jobs(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    respond(&state.snapshot().jobs, &headers)
}

#[derive(serde::Deserialize)]
struct TargetsQuery {
    collector_id: Option<String>,
}

async fn job_targets(
    State(state): State<Arc<ServerState>>,
    params: RawPathParams,
    Query(query): Query<TargetsQuery>,
    headers: HeaderMap,
) -> Response {
    // The collector escapes job names with Go's QueryEscape (`+` for space),
    // so the raw segment is decoded the same way.
    let raw = params.iter().next().map(|(_, v)| v).unwrap_or_default();
    let Some(job) = query_unescape(raw) else {
        let message = serde_json::json!({ "error": format!("invalid percent-encoding in job name {raw:?}") });
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(message)).into_response();
    };
    let snapshot = state.snapshot();
    match query.collector_id {
        Some(collector) => respond(snapshot.slice(&job, &collector), &headers),
        None => respond(&Body::new(snapshot.job_by_collector(&job)), &headers),
    }
}

async fn strategies(State(state): State<Arc<ServerState>>) -> Response {
    let mut body = serde_json::to_vec_pretty(&state.strategies_document()).expect("JSON values serialize");
    body.push(b'\n');
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

async fn readyz(State(state): State<Arc<ServerState>>) -> StatusCode {
    if state.snapshot().ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    let mut response = state.metrics.encode().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// A JSON body with ETag revalidation and gzip when the client accepts it.
fn respond(body: &Body, request: &HeaderMap) -> Response {
    let etag = HeaderValue::from_str(&body.etag).expect("hex etag is a valid header");
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == body.etag || tag.trim() == "*"));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let accepts_gzip = request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.split(';').next().unwrap_or("").trim() == "gzip"));
        match body.gzip().filter(|_| accepts_gzip) {
            Some(gzip) => {
                let mut r = gzip.clone().into_response();
                r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            None => body.bytes.clone().into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::ETAG, etag);
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

async fn record_duration(State(state): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    let path = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.http_duration.get_or_create(&PathLabel { path }).observe(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readyz_is_unavailable_until_the_first_snapshot() {
        let state = ServerState::new(Arc::new(Metrics::new()));
        assert_eq!(readyz(State(state.clone())).await, StatusCode::SERVICE_UNAVAILABLE);
        state.publish(Snapshot { ready: true, ..Snapshot::default() });
        assert_eq!(readyz(State(state)).await, StatusCode::OK);
    }
}
