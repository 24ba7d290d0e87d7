//! Building a kube client from the allocator's settings: a kubeconfig file,
//! an explicit API server URL, or the pod's service account (in-cluster).
//!
//! Owns client construction and the identity of a cluster (so watches on
//! the same cluster can be shared). It must not start watches.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Where a client's cluster and credentials come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterSource {
    /// The service account mounted into the pod (`KUBERNETES_SERVICE_HOST`).
    InCluster,
    /// A kubeconfig file's current context.
    Kubeconfig(PathBuf),
    /// An API server URL with optional bearer token and TLS settings
    /// (`kubernetes_sd_configs.api_server`).
    ApiServer(ApiServer),
}

/// `api_server` with the HTTP client settings kube's config can carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiServer {
    pub url: String,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

/// Why no client could be built; each names its source.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig { path: String, source: kube::config::KubeconfigError },
    #[error("in-cluster config (service account): {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("api_server {url}: {message}")]
    ApiServer { url: String, message: String },
    #[error("{source_name}: building the client: {error}")]
    Build { source_name: String, error: kube::Error },
}

impl ClusterSource {
    /// The reference's rule for `kube_config_file_path`: the given path, or
    /// `$HOME/.kube/config`; when that file does not exist, in-cluster.
    pub fn for_allocator(kube_config_file_path: Option<&Path>) -> ClusterSource {
        let path = match kube_config_file_path {
            Some(p) if !p.as_os_str().is_empty() => Some(p.to_path_buf()),
            Some(_) => None,
            None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kube/config")),
        };
        match path {
            Some(path) if path.exists() => ClusterSource::Kubeconfig(path),
            _ => ClusterSource::InCluster,
        }
    }

    /// How logs and errors name this source.
    pub fn describe(&self) -> String {
        match self {
            ClusterSource::InCluster => "in-cluster config (service account)".into(),
            ClusterSource::Kubeconfig(path) => format!("kubeconfig {}", path.display()),
            ClusterSource::ApiServer(api) => format!("api_server {}", api.url),
        }
    }

    /// A client for this source.
    pub async fn client(&self) -> Result<Client, ClientError> {
        let config = match self {
            ClusterSource::InCluster => Config::incluster()?,
            ClusterSource::Kubeconfig(path) => {
                let shown = path.display().to_string();
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|source| ClientError::Kubeconfig { path: shown.clone(), source })?;
                Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|source| ClientError::Kubeconfig { path: shown, source })?
            }
            ClusterSource::ApiServer(api) => api_server_config(api)?,
        };
        Client::try_from(config).map_err(|error| ClientError::Build { source_name: self.describe(), error })
    }
}

fn api_server_config(api: &ApiServer) -> Result<Config, ClientError> {
    let fail = |message: String| ClientError::ApiServer { url: api.url.clone(), message };
    let uri: http::Uri = api.url.parse().map_err(|e| fail(format!("not a URL: {e}")))?;
    let mut config = Config::new(uri);
    config.accept_invalid_certs = api.insecure_skip_verify;
    // kube reads the CA file and re-reads a token file itself (service
    // account tokens rotate).
    config.root_cert_file = api.ca_file.clone();
    if let Some(token) = &api.bearer_token {
        config.auth_info.token = Some(token.clone().into());
    } else if let Some(file) = &api.bearer_token_file {
        config.auth_info.token_file = Some(file.display().to_string());
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_kubeconfig_falls_back_to_in_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert_eq!(ClusterSource::for_allocator(Some(&missing)), ClusterSource::InCluster);
        assert_eq!(ClusterSource::for_allocator(Some(Path::new(""))), ClusterSource::InCluster);
        let present = dir.path().join("config");
        std::fs::write(&present, "").unwrap();
        assert_eq!(ClusterSource::for_allocator(Some(&present)), ClusterSource::Kubeconfig(present));
    }

    #[tokio::test]
    async fn errors_name_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("config");
        std::fs::write(&bad, "clusters: [").unwrap();
        let err = ClusterSource::Kubeconfig(bad.clone()).client().await.err().unwrap().to_string();
        assert!(err.contains(&bad.display().to_string()), "{err}");
        let api = ApiServer { url: "not a url".into(), ..ApiServer::default() };
        let err = ClusterSource::ApiServer(api).client().await.err().unwrap().to_string();
        assert!(err.starts_with("api_server not a url"), "{err}");
    }
}
