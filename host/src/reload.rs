//! Hot reload: watching the config file and `strategy_dir`.
//!
//! One reloader thread serializes all reload work. A `notify` watcher on the
//! config file's directory and on `strategy_dir` (directories, not files, so a
//! Kubernetes ConfigMap's atomic `..data` symlink swap is seen), debounced,
//! plus a periodic rescan for volumes whose changes inotify misses, trigger a
//! [`Reloader::reload`]: rescan the plugin directory into the catalogue,
//! re-read the config, and hand what changed to the allocation thread as
//! [`Event`]s. Every decision that can fail (parsing, validation, loading a
//! plugin, resolving the strategy and its options) happens here, so the
//! allocation thread only receives checked values.
//!
//! It must not touch allocation state or the served snapshot: it publishes
//! only the catalogue view and the reload metrics.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant, SystemTime};

use notify::Watcher;
use sha2::{Digest, Sha256};

use crate::allocation::{Collector, StrategyChoice};
use crate::app::{ServeOptions, choice_key, choose_strategy, refuse_unavailable_features};
use crate::config::{AllocatorConfig, load_config};
use crate::discovery::DiscoveryUpdate;
use crate::metrics::{FileLabel, Metrics, ResultLabel};
use crate::server::{CatalogView, ServerState};
use crate::strategies::StrategyCatalog;

/// File events arriving within this window are handled together (an
/// editor's save, a ConfigMap swap, a copy in progress).
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);
/// A steady stream of events still triggers a reload at least this often.
const MAX_RELOAD_DELAY: Duration = Duration::from_secs(2);
/// Everything is re-read this often even without events: some volume types
/// (and ConfigMap updates on some kernels) are not reported by inotify.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(30);

/// What the allocation thread is told.
pub enum Event {
    /// Targets of one discovery source, from the discovery run `generation`
    /// (updates of an earlier, stopped run are ignored).
    Discovery { generation: u64, update: DiscoveryUpdate },
    /// The complete current collector set (Kubernetes collector discovery).
    Collectors(Vec<Collector>),
    /// A new, valid config with its resolved strategies.
    Config { config: Box<AllocatorConfig>, choice: StrategyChoice },
    /// The configured strategies resolve to other components now (a plugin
    /// file was replaced).
    Strategy(StrategyChoice),
}

/// Owns the catalogue and the last accepted config.
pub struct Reloader {
    options: ServeOptions,
    config: AllocatorConfig,
    catalog: StrategyCatalog,
    events: Sender<Event>,
    state: Arc<ServerState>,
    metrics: Arc<Metrics>,
    /// sha256 of the config file as last read, accepted or refused: an
    /// unchanged file is not parsed again.
    config_digest: Option<[u8; 32]>,
    /// The last read of the config was refused: retried when the catalogue
    /// changes (it may have named a plugin that was not loaded yet).
    refused: bool,
    /// The strategies last handed to the allocation thread.
    sent_choice: String,
    /// Why the last config reload was refused (for `/strategies`).
    config_error: Option<String>,
}

impl Reloader {
    /// `config` and `choice` are what the allocator started with.
    pub fn new(
        options: ServeOptions,
        config: AllocatorConfig,
        choice: &StrategyChoice,
        catalog: StrategyCatalog,
        events: Sender<Event>,
        state: Arc<ServerState>,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        let config_digest = std::fs::read(&options.config_file).ok().map(|b| Sha256::digest(&b).into());
        let reloader = Reloader {
            options,
            config,
            catalog,
            events,
            state,
            metrics,
            config_digest,
            refused: false,
            sent_choice: choice_key(choice),
            config_error: None,
        };
        reloader.publish_catalog();
        reloader
    }

    /// Runs on its own thread until the allocation thread is gone.
    pub fn spawn(mut self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("reload".into()).spawn(move || {
            let (wake_tx, wake_rx) = channel();
            // Keeps watching while the thread runs.
            let _watcher = self.watch(wake_tx);
            loop {
                wait_for_change(&wake_rx);
                if !self.reload() {
                    return;
                }
            }
        })
    }

    /// Starts the directory watcher; without one (inotify limits), the
    /// periodic rescan still applies changes.
    fn watch(&self, wake: Sender<()>) -> Option<notify::RecommendedWatcher> {
        let config_dir = parent_dir(&self.options.config_file);
        let config_name = self.options.config_file.file_name().map(|n| n.to_os_string());
        let strategy_dir = self.config.strategy_dir.clone();
        let relevant = {
            let strategy_dir = strategy_dir.clone();
            move |path: &Path| {
                let name = path.file_name();
                // The config file itself, or a ConfigMap's `..data` swap.
                name.is_some_and(|n| {
                    Some(n) == config_name.as_deref() || n.to_string_lossy().starts_with("..")
                }) || strategy_dir.as_deref().is_some_and(|dir| path.starts_with(dir))
            }
        };
        let handler = move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && !event.kind.is_access()
                && event.paths.iter().any(|p| relevant(p))
            {
                let _ = wake.send(());
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, "cannot watch files; changes apply at the next periodic rescan");
                return None;
            }
        };
        let strategy_dir = strategy_dir.filter(|dir| *dir != config_dir);
        for dir in std::iter::once(config_dir).chain(strategy_dir) {
            if let Err(error) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), %error, "cannot watch the directory; changes apply at the next periodic rescan");
            }
        }
        Some(watcher)
    }

    /// Rescans the plugins and re-reads the config, sending what changed.
    /// Returns false once the allocation thread is gone.
    pub fn reload(&mut self) -> bool {
        let catalog_changed = self.rescan_plugins();
        let text = match std::fs::read(&self.options.config_file) {
            Ok(text) => Some(text),
            Err(error) => {
                // Mid-swap or not mounted: the next event or rescan retries.
                tracing::debug!(file = %self.options.config_file.display(), %error, "config file unreadable");
                None
            }
        };
        let digest: Option<[u8; 32]> = text.as_ref().map(|t| Sha256::digest(t).into());
        let config_changed = digest.is_some() && digest != self.config_digest;
        if config_changed || (catalog_changed && self.refused) {
            self.config_digest = digest;
            return self.reload_config();
        }
        if catalog_changed {
            return self.re_resolve();
        }
        true
    }

    /// Scans `strategy_dir`; true when the catalogue changed.
    fn rescan_plugins(&mut self) -> bool {
        let Some(dir) = self.config.strategy_dir.clone() else { return false };
        let in_use = in_use(&self.config);
        let report = self.catalog.scan_dir(&dir, &|name| in_use.iter().any(|n| n == name));
        for (path, _) in &report.errors {
            self.metrics
                .strategy_load_errors
                .get_or_create(&FileLabel { file: path.display().to_string() })
                .inc();
        }
        // A deleted file of a strategy in use changes only the file list.
        if report.changed || self.catalog.files() != self.state.catalog().files {
            self.publish_catalog();
        }
        report.changed
    }

    fn reload_config(&mut self) -> bool {
        let path = self.options.config_file.display().to_string();
        let loaded =
            load_config(&self.options.config_file, &self.options.environment, &self.options.overrides)
                .map_err(anyhow::Error::from)
                .and_then(|(config, warnings)| {
                    refuse_unavailable_features(&config)?;
                    let choice = choose_strategy(&mut self.catalog, &config)?;
                    Ok((config, warnings, choice))
                });
        let (config, warnings, choice) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                self.refused = true;
                let message = format!("{error:#}");
                tracing::error!(file = %path, error = %message, "config reload refused; the previous config stays in force");
                self.config_error = Some(message);
                self.publish_catalog();
                self.metrics.config_reloads.get_or_create(&ResultLabel { result: "failure".into() }).inc();
                self.metrics.config_last_reload_successful.set(0);
                return true;
            }
        };
        self.refused = false;
        if self.config_error.take().is_some() {
            self.publish_catalog();
        }
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        for key in config.restart_only_changes(&self.config) {
            tracing::warn!(file = %path, key, "config key changed; it takes effect only after a restart");
        }
        tracing::info!(file = %path, strategy = %config.allocation_strategy, "config reloaded");
        self.metrics.config_reloads.get_or_create(&ResultLabel { result: "success".into() }).inc();
        self.metrics.config_last_reload_successful.set(1);
        self.metrics.config_last_reload_success_timestamp.set(unix_now());
        // Keys that need a restart keep their running values.
        let mut config = config;
        config.strategy_dir = self.config.strategy_dir.clone();
        config.strategy_cache_dir = self.config.strategy_cache_dir.clone();
        config.kube_config_file_path = self.config.kube_config_file_path.clone();
        config.collector_namespace = self.config.collector_namespace.clone();
        config.collector_selector = self.config.collector_selector.clone();
        config.collector_not_ready_grace_period = self.config.collector_not_ready_grace_period;
        if config.collectors.is_some() != self.config.collectors.is_some() {
            config.collectors = self.config.collectors.clone();
        }
        self.config = config.clone();
        self.sent_choice = choice_key(&choice);
        self.events.send(Event::Config { config: Box::new(config), choice }).is_ok()
    }

    /// The catalogue changed under an unchanged config: if the configured
    /// names now resolve to other components, switch to them.
    fn re_resolve(&mut self) -> bool {
        let choice = match choose_strategy(&mut self.catalog, &self.config) {
            Ok(choice) => choice,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "the reloaded strategy cannot be used; the running one stays");
                return true;
            }
        };
        let key = choice_key(&choice);
        if key == self.sent_choice {
            return true;
        }
        self.sent_choice = key;
        self.events.send(Event::Strategy(choice)).is_ok()
    }

    fn publish_catalog(&self) {
        self.state.publish_catalog(CatalogView {
            strategies: self.catalog.strategies(),
            files: self.catalog.files(),
            strategy_dir: self.config.strategy_dir.clone(),
            config_error: self.config_error.clone(),
        });
    }
}

/// Strategy names the config uses: never unloaded when their file goes.
fn in_use(config: &AllocatorConfig) -> Vec<String> {
    std::iter::once(config.allocation_strategy.clone()).chain(config.fallback_strategy()).collect()
}

/// Waits for a debounced burst of events or the periodic rescan.
fn wait_for_change(wake: &Receiver<()>) {
    match wake.recv_timeout(RESCAN_INTERVAL) {
        Ok(()) => {}
        Err(RecvTimeoutError::Timeout) => return,
        // No watcher: rescan periodically.
        Err(RecvTimeoutError::Disconnected) => {
            std::thread::sleep(RESCAN_INTERVAL);
            return;
        }
    }
    let started = Instant::now();
    while started.elapsed() < MAX_RELOAD_DELAY {
        match wake.recv_timeout(RELOAD_DEBOUNCE) {
            Ok(()) => continue,
            Err(_) => break,
        }
    }
}

fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
