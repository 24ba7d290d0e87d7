//! The running allocator: wires config, strategies, discovery, allocation
//! and the server together.
//!
//! Allocation runs on one dedicated thread that owns the [`Allocator`]
//! (strategy calls are blocking Wasm calls); discovery and HTTP run on tokio;
//! the reloader ([`crate::reload`]) runs on its own thread. Discovery updates
//! and reloaded configs or strategies reach the allocation thread as
//! [`Event`]s on one channel, so they apply in order. After every change the
//! thread publishes a new immutable snapshot, built only once the change is
//! complete: a request sees the whole old or the whole new assignment.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Pod;

use crate::allocation::{AllocationReport, Allocator, Collector, JobDelta, StrategyChoice};
use crate::config::{
    AllocatorConfig, CliOverrides, Environment, FILTER_RELABEL_CONFIG, load_config, socket_addr,
};
use crate::discovery::{DiscoveryManager, DiscoveryUpdate, JobProcessor, JobTargets, SourceKey};
use crate::kubernetes::client::ClusterSource;
use crate::kubernetes::collectors;
use crate::kubernetes::sd_runner::{self, KubernetesSd};
use crate::kubernetes::watch::{WatchHub, WatchKey, resource_name};
use crate::metrics::{
    ActiveStrategyLabels, AllocateLabels, CallLabels, CollectorLabels, FileLabel, JobLabel, Metrics,
    ResultLabel, SourceLabel, StrategyLabel,
};
use crate::reload::{Event, Reloader};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::server::{ActiveStrategy, ActiveView, Body, ServerState, Snapshot, render_scrape_configs, router};
use crate::strategies::StrategyCatalog;

/// Discovery updates arriving within this window are applied together.
pub const DISCOVERY_DEBOUNCE: Duration = Duration::from_millis(500);
/// A steady stream of updates is still applied at least this often.
pub const MAX_DISCOVERY_DELAY: Duration = Duration::from_secs(5);
/// After a reload restarts discovery, a job keeps its old targets until all
/// its sources have reported, but no longer than this: a source that cannot
/// answer (an http_sd endpoint that is down) must not freeze the job.
pub const MAX_RESYNC_DELAY: Duration = Duration::from_secs(30);

/// How to start the server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub config_file: PathBuf,
    pub environment: Environment,
    pub overrides: CliOverrides,
}

/// Runs the allocator until SIGINT/SIGTERM.
pub fn serve(options: ServeOptions) -> Result<()> {
    let (config, warnings) = load_config(&options.config_file, &options.environment, &options.overrides)?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    refuse_unavailable_features(&config)?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(config.strategy_cache_dir()),
        ..RuntimeConfig::default()
    })
    .map_err(|e| anyhow::anyhow!("starting the Wasm runtime: {e:#}"))?;
    if let Some(dir) = runtime.cache_dir() {
        tracing::info!(dir = %dir.display(), "caching compiled strategies");
    }
    let mut catalog = StrategyCatalog::with_builtins(runtime).context("loading the built-in strategies")?;
    let metrics = Arc::new(Metrics::new());
    if let Some(dir) = &config.strategy_dir {
        // Every name the config could select must be known before choosing.
        let report = catalog.scan_dir(dir, &|_| true);
        for (path, _) in &report.errors {
            metrics.strategy_load_errors.get_or_create(&FileLabel { file: path.display().to_string() }).inc();
        }
    }
    let choice = choose_strategy(&mut catalog, &config)?;
    metrics.config_reloads.get_or_create(&ResultLabel { result: "success".into() }).inc();
    metrics.config_last_reload_successful.set(1);
    metrics.config_last_reload_success_timestamp.set(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
    );
    let state = ServerState::new(metrics.clone());
    state.set_serve_secrets(config.allow_insecure_auth_secrets);
    let listen = socket_addr(&config.listen_addr).map_err(anyhow::Error::msg)?;

    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let (events_tx, events_rx) = channel::<Event>();
    // One hub for the process: collector discovery and every kubernetes_sd
    // entry share watches, across config reloads too.
    let hub = WatchHub::new();
    let _collector_discovery = start_collector_discovery(&config, &tokio, &hub, events_tx.clone())?;
    let reloader = Reloader::new(
        options.clone(),
        config.clone(),
        &choice,
        catalog,
        events_tx.clone(),
        state.clone(),
        metrics.clone(),
    );
    let allocation = {
        let mut allocation = Allocation::new(
            config.clone(),
            choice,
            events_tx,
            tokio.handle().clone(),
            hub,
            state.clone(),
            metrics,
        );
        std::thread::Builder::new()
            .name("allocation".into())
            .spawn(move || allocation.run(events_rx))
            .context("starting the allocation thread")?
    };
    let _reloader = reloader.spawn().context("starting the reload thread")?;
    tokio.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {}", config.listen_addr))?;
        tracing::info!(address = %listen, "serving the allocator API");
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving HTTP")
    })?;
    drop(allocation);
    Ok(())
}

/// Features the config can ask for that this version cannot deliver: refuse
/// rather than run without them, or warn where the job still works.
pub(crate) fn refuse_unavailable_features(config: &AllocatorConfig) -> Result<()> {
    if config.https.enabled {
        bail!("`https.enabled`: the mTLS listener is not available in this version");
    }
    if config.prometheus_cr.enabled {
        bail!("`prometheus_cr.enabled`: Prometheus CR discovery is not available in this version");
    }
    for job in &config.prometheus.scrape_configs {
        for key in job.printed.keys().filter(|k| k.ends_with("_sd_configs")) {
            if !matches!(key.as_str(), "file_sd_configs" | "http_sd_configs" | "kubernetes_sd_configs") {
                tracing::warn!(job = %job.job_name, "`{key}` is served in /scrape_configs but not run by this version: the job gets no targets from it");
            }
        }
        sd_runner::parse_sd_configs(job)?;
    }
    if config.collectors.is_none() {
        collectors::label_selector(config.collector_selector.as_ref()).context("`collector_selector`")?;
    }
    Ok(())
}

/// Without a static `collectors:` list, the collectors are the selected pods
/// of `collector_namespace` (the reference's only source): starts watching
/// them, sending each new set as an [`Event::Collectors`]. The watch stops
/// when the runtime shuts down or the returned task is aborted.
fn start_collector_discovery(
    config: &AllocatorConfig,
    tokio: &tokio::runtime::Runtime,
    hub: &Arc<WatchHub>,
    events: Sender<Event>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    if config.collectors.is_some() {
        return Ok(None);
    }
    let namespace = config.collector_namespace.clone();
    let label_selector = collectors::label_selector(config.collector_selector.as_ref())?;
    let cluster = ClusterSource::for_allocator(config.kube_config_file_path.as_deref());
    let client = tokio
        .block_on(cluster.client())
        .with_context(|| format!("collector discovery in namespace {namespace:?}"))?;
    tracing::info!(
        cluster = %cluster.describe(), %namespace, selector = ?label_selector,
        "discovering collectors from Kubernetes"
    );
    let key = WatchKey {
        cluster: cluster.describe(),
        resource: resource_name::<Pod>(),
        namespace: Some(namespace),
        label_selector,
        field_selector: None,
    };
    let _guard = tokio.enter();
    let pods = hub.watch::<Pod>(&client, key);
    let grace = config.collector_not_ready_grace_period;
    let task = tokio.spawn(collectors::run_collector_discovery(pods, grace, move |set| {
        events.send(Event::Collectors(set)).is_ok()
    }));
    Ok(Some(task))
}

/// Resolves the configured strategy and fallback, checking their options.
pub(crate) fn choose_strategy(
    catalog: &mut StrategyCatalog,
    config: &AllocatorConfig,
) -> Result<StrategyChoice> {
    let primary = &config.allocation_strategy;
    let fallback = config.fallback_strategy();
    let fallback_options = fallback.as_deref().map(|f| config.strategy_options(f)).unwrap_or_default();
    let choice = catalog
        .choose(
            primary,
            &config.strategy_options(primary),
            fallback.as_deref().map(|f| (f, fallback_options.as_str())),
        )
        .context("`allocation_strategy`")?;
    tracing::info!(strategy = %primary, fallback = ?fallback, "strategy selected");
    Ok(choice)
}

/// What identifies a choice: the components (by digest) and their options.
/// Equal keys mean switching would change nothing.
pub(crate) fn choice_key(choice: &StrategyChoice) -> String {
    let fallback = choice.fallback.as_ref().map(|(f, o)| format!("{}:{}:{o}", f.name(), f.digest()));
    format!(
        "{}:{}:{}|{}",
        choice.primary.name(),
        choice.primary.digest(),
        choice.primary_options,
        fallback.unwrap_or_default()
    )
}

/// A discovery window: updates recorded, not yet applied.
struct Window {
    started: Instant,
    /// Updates not yet applied, the latest per source: each is a source's
    /// complete set of groups, so a newer one replaces an older one whole.
    updates: Vec<DiscoveryUpdate>,
    update_of: HashMap<SourceKey, usize>,
    dirty: BTreeSet<Arc<str>>,
    deltas: Vec<JobDelta>,
    /// Jobs whose restarted discovery has now reported every source.
    resynced: BTreeSet<Arc<str>>,
}

impl Window {
    fn new() -> Window {
        Window {
            started: Instant::now(),
            updates: Vec::new(),
            update_of: HashMap::new(),
            dirty: BTreeSet::new(),
            deltas: Vec::new(),
            resynced: BTreeSet::new(),
        }
    }
}

/// The allocation thread's state: the only owner of the [`Allocator`].
struct Allocation {
    config: AllocatorConfig,
    allocator: Allocator,
    jobs: JobTargets,
    processors: HashMap<Arc<str>, JobProcessor>,
    /// Jobs whose discovery restarted (a config reload) and that have not yet
    /// heard from all their sources: their targets stay as they were until
    /// then, so a reload never empties a job.
    resyncing: HashMap<Arc<str>, usize>,
    /// When the jobs still resyncing are taken as they are (see [`MAX_RESYNC_DELAY`]).
    resync_deadline: Option<Instant>,
    scrape_configs: (Arc<Body>, Arc<Body>),
    discovery: Option<DiscoveryManager>,
    kubernetes_sd: Option<KubernetesSd>,
    /// Shared watches of the process (kubernetes_sd entries, collector pods).
    hub: Arc<WatchHub>,
    /// The latest collector set from Kubernetes (used without `collectors:`).
    discovered_collectors: Vec<Collector>,
    generation: u64,
    events: Sender<Event>,
    tokio: tokio::runtime::Handle,
    state: Arc<ServerState>,
    metrics: Arc<Metrics>,
    last_switch_error: Option<String>,
}

impl Allocation {
    fn new(
        config: AllocatorConfig,
        choice: StrategyChoice,
        events: Sender<Event>,
        tokio: tokio::runtime::Handle,
        hub: Arc<WatchHub>,
        state: Arc<ServerState>,
        metrics: Arc<Metrics>,
    ) -> Allocation {
        Allocation {
            allocator: Allocator::new(choice),
            jobs: JobTargets::default(),
            processors: HashMap::new(),
            resyncing: HashMap::new(),
            resync_deadline: None,
            scrape_configs: (Arc::new(Body::new("{}")), Arc::new(Body::new("{}"))),
            discovery: None,
            kubernetes_sd: None,
            hub,
            discovered_collectors: Vec::new(),
            generation: 0,
            config,
            events,
            tokio,
            state,
            metrics,
            last_switch_error: None,
        }
    }

    fn strategy(&self) -> String {
        self.allocator.strategy().primary.name().to_string()
    }

    fn run(&mut self, events: Receiver<Event>) {
        self.record_active();
        self.metrics.events.get_or_create(&SourceLabel { source: "EventSourceConfigMap".into() }).inc();
        self.set_collectors();
        self.start_discovery();
        self.resyncing.clear();
        self.resync_deadline = None;
        self.publish(None);
        let mut window: Option<Window> = None;
        loop {
            let window_wait = window
                .as_ref()
                .map(|w| DISCOVERY_DEBOUNCE.min(MAX_DISCOVERY_DELAY.saturating_sub(w.started.elapsed())));
            let resync_wait = self.resync_deadline.map(|at| at.saturating_duration_since(Instant::now()));
            let received = match (window_wait, resync_wait) {
                (None, None) => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
                (a, b) => events.recv_timeout(a.into_iter().chain(b).min().expect("a wait")),
            };
            let event = match received {
                Ok(event) => event,
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    let mut w = window.take().unwrap_or_else(Window::new);
                    self.apply_recorded(&mut w);
                    if self.resync_deadline.is_some_and(|at| at <= Instant::now()) {
                        self.give_up_resync(&mut w);
                    }
                    self.flush(w);
                    continue;
                }
            };
            match event {
                Event::Discovery { generation, update } => {
                    if generation != self.generation {
                        continue;
                    }
                    let w = window.get_or_insert_with(Window::new);
                    self.record(update, w);
                    if w.started.elapsed() >= MAX_DISCOVERY_DELAY {
                        self.flush(window.take().expect("open window"));
                    }
                }
                // Discovery recorded so far is applied first, in order.
                Event::Config { config, choice } => {
                    if let Some(w) = window.take() {
                        self.flush(w);
                    }
                    self.apply_config(*config, choice);
                }
                // Collector sets come debounced: applied at once, after the
                // discovery recorded so far.
                Event::Collectors(set) => {
                    if let Some(w) = window.take() {
                        self.flush(w);
                    }
                    self.discovered_collectors = set;
                    self.set_collectors();
                    self.publish(None);
                }
                Event::Strategy(choice) => {
                    if let Some(w) = window.take() {
                        self.flush(w);
                    }
                    if self.switch(choice) {
                        self.publish(None);
                    }
                    self.record_active();
                }
            }
        }
    }

    /// Records one discovery update in the window; it is applied with the
    /// window's others (see [`apply_recorded`](Self::apply_recorded)).
    fn record(&mut self, update: DiscoveryUpdate, window: &mut Window) {
        if !self.processors.contains_key(&*update.source.job) {
            return;
        }
        match window.update_of.entry(update.source.clone()) {
            Entry::Occupied(at) => window.updates[*at.get()] = update,
            Entry::Vacant(at) => {
                at.insert(window.updates.len());
                window.updates.push(update);
            }
        }
    }

    /// Applies the window's recorded updates (jobs in parallel) and notes
    /// what changed.
    fn apply_recorded(&mut self, window: &mut Window) {
        window.update_of.clear();
        let updates = std::mem::take(&mut window.updates);
        let processors = &self.processors;
        for (job, delta) in self.jobs.apply_all(updates, |job| processors.get(job)) {
            if let Some(&expected) = self.resyncing.get(&job) {
                if self.jobs.sources_reported(&job) >= expected {
                    self.resyncing.remove(&job);
                    window.resynced.insert(job);
                    if self.resyncing.is_empty() {
                        self.resync_deadline = None;
                    }
                }
                continue;
            }
            if let Some(delta) = delta {
                window.dirty.insert(job);
                window.deltas.push(delta);
            }
        }
    }

    /// Takes the jobs still resyncing as their sources have reported so far.
    fn give_up_resync(&mut self, window: &mut Window) {
        self.resync_deadline = None;
        for (job, expected) in self.resyncing.drain() {
            tracing::warn!(
                job = %job,
                reported = self.jobs.sources_reported(&job),
                sources = expected,
                "not every discovery source of the job reported within {MAX_RESYNC_DELAY:?} of the reload; serving what they have"
            );
            window.resynced.insert(job);
        }
    }

    /// Applies a window's updates and publishes.
    fn flush(&mut self, mut window: Window) {
        self.apply_recorded(&mut window);
        let strategy = self.strategy();
        if !window.deltas.is_empty() {
            let started = Instant::now();
            let report = self.allocator.apply_deltas(std::mem::take(&mut window.deltas));
            record_step(&self.metrics, &strategy, "SetTargets", started, &report);
            tracing::debug!(
                jobs = window.dirty.len(),
                batch = report.batch,
                moved = report.moved,
                "applied discovery updates"
            );
        }
        for job in &window.resynced {
            let started = Instant::now();
            let report = self.allocator.set_job_targets(job, self.jobs.targets(job));
            record_step(&self.metrics, &strategy, "SetTargets", started, &report);
            tracing::info!(job = %job, targets = report.batch, "job resynchronised after its discovery restarted");
            window.dirty.insert(job.clone());
        }
        if window.dirty.is_empty() {
            return;
        }
        self.metrics.targets.clear();
        for (job, count) in self.jobs.discovered_per_job() {
            self.metrics.targets.get_or_create(&JobLabel { job_name: job.to_string() }).set(count as i64);
        }
        self.metrics.targets_remaining.set(self.allocator.target_count() as i64);
        self.publish(Some(&window.dirty));
    }

    /// Publishes a snapshot of the complete current assignment.
    fn publish(&self, changed_jobs: Option<&BTreeSet<Arc<str>>>) {
        let previous = self.state.snapshot();
        self.state.publish(Snapshot::build(
            &previous,
            &self.allocator,
            self.scrape_configs.clone(),
            changed_jobs,
        ));
        record_targets_per_collector(&self.metrics, &self.strategy(), &self.allocator);
    }

    fn set_collectors(&mut self) {
        let collectors: Vec<Collector> = match &self.config.collectors {
            Some(list) => list.iter().map(|c| Collector::new(&c.id, c.node.as_deref())).collect(),
            None => self.discovered_collectors.clone(),
        };
        let strategy = self.strategy();
        let started = Instant::now();
        self.metrics.collectors_discovered.set(collectors.len() as i64);
        let report = self.allocator.set_collectors(collectors);
        record_step(&self.metrics, &strategy, "SetCollectors", started, &report);
        self.metrics.collectors_allocatable.clear();
        self.metrics
            .collectors_allocatable
            .get_or_create(&StrategyLabel { strategy })
            .set(self.allocator.collectors().len() as i64);
    }

    /// (Re)starts discovery for the current config. Jobs no longer configured
    /// lose their targets at once; the others keep theirs until their new
    /// discovery has reported every source (see `resyncing`).
    fn start_discovery(&mut self) {
        // Dropping the manager stops its tasks; their late updates carry the
        // old generation and are ignored.
        self.discovery = None;
        self.generation += 1;
        let generation = self.generation;
        let filter = self.config.filter_strategy == FILTER_RELABEL_CONFIG;
        let jobs = &self.config.prometheus.scrape_configs;
        let old = std::mem::replace(
            &mut self.processors,
            jobs.iter()
                .map(|job| (Arc::from(job.job_name.as_str()), JobProcessor::new(job, filter)))
                .collect(),
        );
        // Every job of the previous config, served or not (targets may all be unassigned).
        let gone: Vec<Arc<str>> = old.into_keys().filter(|job| !self.processors.contains_key(job)).collect();
        for job in gone {
            let report = self.allocator.remove_job(&job);
            tracing::info!(job = %job, targets = report.batch, "job removed from the config; its targets are dropped");
        }
        self.resyncing = jobs
            .iter()
            .map(|job| {
                let kubernetes = sd_runner::parse_sd_configs(job).map_or(0, |entries| entries.len());
                (Arc::from(job.job_name.as_str()), DiscoveryManager::source_count(job) + kubernetes)
            })
            .collect();
        self.resync_deadline = (!self.resyncing.is_empty()).then(|| Instant::now() + MAX_RESYNC_DELAY);
        self.jobs = JobTargets::default();
        self.scrape_configs = (
            Arc::new(Body::new(render_scrape_configs(jobs, true))),
            Arc::new(Body::new(render_scrape_configs(jobs, false))),
        );
        // Discovery sends on a channel of its own; a forwarder tags its
        // updates with this run's generation.
        let (updates_tx, updates_rx) = channel::<DiscoveryUpdate>();
        let events = self.events.clone();
        let forwarder =
            std::thread::Builder::new().name(format!("discovery-{generation}")).spawn(move || {
                for update in updates_rx {
                    if events.send(Event::Discovery { generation, update }).is_err() {
                        return;
                    }
                }
            });
        if let Err(error) = forwarder {
            tracing::error!(%error, "cannot start the discovery forwarder; targets will not update");
            return;
        }
        let _guard = self.tokio.enter();
        // The new run's kubernetes_sd starts before the old one stops, so
        // watches both use stay open (and their stores full) across a reload.
        match KubernetesSd::start(&self.config.prometheus, self.hub.clone(), updates_tx.clone()) {
            Ok(kubernetes_sd) => self.kubernetes_sd = Some(kubernetes_sd),
            // Validated with the config; kept as a log should that ever change.
            Err(error) => tracing::error!(%error, "kubernetes_sd_configs not started"),
        }
        self.discovery = Some(DiscoveryManager::start(&self.config.prometheus, updates_tx));
    }

    /// Applies a reloaded config: everything in one step, published once.
    fn apply_config(&mut self, config: AllocatorConfig, choice: StrategyChoice) {
        let old = std::mem::replace(&mut self.config, config);
        self.state.set_serve_secrets(self.config.allow_insecure_auth_secrets);
        if old.prometheus != self.config.prometheus || old.filter_strategy != self.config.filter_strategy {
            tracing::info!("scrape configs changed; restarting discovery");
            self.start_discovery();
        }
        if choice_key(&choice) != choice_key(self.allocator.strategy()) {
            self.switch(choice);
        }
        if old.collectors != self.config.collectors {
            self.set_collectors();
        }
        self.publish(None);
        self.record_active();
    }

    /// Switches strategies with one full reassignment; if the new strategy
    /// fails, the old one and its assignment stay. True when it switched.
    /// The caller publishes the snapshot, then [`Self::record_active`], so
    /// `/strategies` never names a strategy whose assignment is not served yet.
    fn switch(&mut self, choice: StrategyChoice) -> bool {
        let (from, to) = (self.strategy(), choice.primary.name().to_string());
        let started = Instant::now();
        match self.allocator.try_set_strategy(choice) {
            Ok(report) => {
                tracing::info!(from = %from, to = %to, digest = %self.allocator.strategy().primary.digest(), targets = report.batch, moved = report.moved, seconds = started.elapsed().as_secs_f64(), "strategy switched");
                self.metrics.strategy_switches.get_or_create(&ResultLabel { result: "success".into() }).inc();
                self.metrics.strategy_switch_moved_targets.set(report.moved as i64);
                record_step(&self.metrics, &to, "SetStrategy", started, &report);
                self.last_switch_error = None;
                true
            }
            Err(error) => {
                tracing::error!(from = %from, to = %to, error = %error, "strategy switch failed; the previous strategy and assignment stay");
                self.metrics.strategy_switches.get_or_create(&ResultLabel { result: "failure".into() }).inc();
                let report = AllocationReport { calls: error.calls.clone(), ..AllocationReport::default() };
                record_step(&self.metrics, &to, "SetStrategy", started, &report);
                self.last_switch_error = Some(error.to_string());
                false
            }
        }
    }

    fn record_active(&self) {
        let choice = self.allocator.strategy();
        record_active_strategy(&self.metrics, choice);
        let active = |s: &Arc<dyn crate::allocation::Assigner>| ActiveStrategy {
            name: s.name().to_string(),
            digest: s.digest().to_string(),
        };
        self.state.publish_active(ActiveView {
            strategy: Some(active(&choice.primary)),
            fallback: choice.fallback.as_ref().map(|(f, _)| active(f)),
            last_switch_error: self.last_switch_error.clone(),
        });
    }
}

fn record_step(metrics: &Metrics, strategy: &str, method: &str, started: Instant, report: &AllocationReport) {
    metrics
        .time_to_allocate
        .get_or_create(&AllocateLabels { method: method.into(), strategy: strategy.into() })
        .observe(started.elapsed().as_secs_f64());
    metrics.targets_unassigned.set(report.unassigned as i64);
    for call in &report.calls {
        metrics
            .strategy_calls
            .get_or_create(&CallLabels { strategy: call.strategy.clone(), result: call.result.into() })
            .inc();
        metrics
            .strategy_call_duration
            .get_or_create(&StrategyLabel { strategy: call.strategy.clone() })
            .observe(call.seconds);
    }
    if !report.calls.is_empty() {
        metrics.strategy_fallback_active.set(i64::from(report.strategy_error.is_some()));
    }
    if let Some(error) = &report.strategy_error {
        tracing::warn!(%error, "allocation fell back to native consistent hashing for new targets");
    }
}

fn record_targets_per_collector(metrics: &Metrics, strategy: &str, allocator: &Allocator) {
    metrics.targets_per_collector.clear();
    for (collector, count) in allocator.targets_per_collector() {
        metrics
            .targets_per_collector
            .get_or_create(&CollectorLabels {
                collector_name: collector.to_string(),
                strategy: strategy.into(),
            })
            .set(count as i64);
    }
}

fn record_active_strategy(metrics: &Metrics, choice: &StrategyChoice) {
    metrics.active_strategy.clear();
    let info = choice.primary.info();
    metrics
        .active_strategy
        .get_or_create(&ActiveStrategyLabels {
            strategy: info.name.clone(),
            version: info.version.clone(),
            digest: choice.primary.digest().to_string(),
            source: choice.primary.source().to_string(),
        })
        .set(1);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
