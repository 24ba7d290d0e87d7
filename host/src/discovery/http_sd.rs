//! `http_sd_configs`: target groups polled from an HTTP endpoint, with
//! Prometheus HTTP SD's rules (200, `application/json`, a list of groups);
//! on failure the last good list is kept.

use std::sync::Arc;
use std::time::Duration;

use std::sync::mpsc::Sender;

use super::target_group::parse_target_groups;
use super::{DiscoveryUpdate, SourceKey};
use crate::allocation::TargetGroup;
use crate::config::HttpSdConfig;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one `http_sd_configs` entry until the receiver is dropped.
pub async fn run_http_sd(source: SourceKey, config: HttpSdConfig, updates: Sender<DiscoveryUpdate>) {
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(job = %source.job, "http_sd: cannot build an HTTP client: {e}");
            return;
        }
    };
    let mut last_sent: Option<Vec<Arc<TargetGroup>>> = None;
    loop {
        match fetch(&client, &config).await {
            Ok(groups) => {
                if last_sent.as_ref().is_none_or(|sent| !sent.iter().map(|g| &**g).eq(groups.iter())) {
                    let groups: Vec<Arc<TargetGroup>> = groups.into_iter().map(Arc::new).collect();
                    last_sent = Some(groups.clone());
                    if updates.send(DiscoveryUpdate { source: source.clone(), groups }).is_err() {
                        return;
                    }
                }
            }
            Err(message) => {
                tracing::warn!(job = %source.job, url = %config.url, "http_sd: {message}; keeping the last good targets");
            }
        }
        tokio::time::sleep(config.refresh_interval).await;
    }
}

async fn fetch(client: &reqwest::Client, config: &HttpSdConfig) -> Result<Vec<TargetGroup>, String> {
    let response = client
        .get(&config.url)
        .header("Accept", "application/json")
        .header("User-Agent", concat!("target-allocator/", env!("CARGO_PKG_VERSION")))
        .header("X-Prometheus-Refresh-Interval-Seconds", config.refresh_interval.as_secs().to_string())
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("server returned HTTP {}", response.status()));
    }
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media != "application/json" {
        return Err(format!("unsupported content type {content_type:?}, expected application/json"));
    }
    let body = response.text().await.map_err(|e| format!("reading the body failed: {e}"))?;
    parse_target_groups(&body).map_err(|e| e.to_string())
}
