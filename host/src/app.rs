//! The running allocator: wires config, strategies, discovery, allocation
//! and the server together.
//!
//! Allocation runs on one dedicated thread that owns the [`Allocator`]
//! (strategy calls are blocking Wasm calls); discovery and HTTP run on tokio.
//! After every change the thread publishes a new immutable snapshot.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::allocation::{AllocationReport, Allocator, Collector, StrategyChoice};
use crate::config::{
    AllocatorConfig, CliOverrides, Environment, FILTER_RELABEL_CONFIG, load_config, socket_addr,
};
use crate::discovery::{DiscoveryManager, DiscoveryUpdate, JobProcessor, JobTargets};
use crate::kubernetes::client::ClusterSource;
use crate::kubernetes::collectors;
use crate::kubernetes::sd_runner::KubernetesSd;
use crate::kubernetes::watch::{WatchHub, WatchKey, resource_name};
use crate::metrics::{
    ActiveStrategyLabels, AllocateLabels, CallLabels, CollectorLabels, JobLabel, Metrics, SourceLabel,
    StrategyLabel,
};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::server::{Body, ServerState, Snapshot, render_scrape_configs, router};
use crate::strategies::StrategyCatalog;
use k8s_openapi::api::core::v1::Pod;

/// Discovery updates arriving within this window are applied together.
pub const DISCOVERY_DEBOUNCE: Duration = Duration::from_millis(500);
/// A steady stream of updates is still applied at least this often.
pub const MAX_DISCOVERY_DELAY: Duration = Duration::from_secs(5);

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
    let collector_source = CollectorSource::from_config(&config)?;
    let runtime = Runtime::new(RuntimeConfig::default())
        .map_err(|e| anyhow::anyhow!("starting the Wasm runtime: {e:#}"))?;
    let mut catalog = StrategyCatalog::with_builtins(runtime).context("loading the built-in strategies")?;
    let choice = choose_strategy(&mut catalog, &config)?;
    let metrics = Arc::new(Metrics::new());
    let state = ServerState::new(metrics.clone());
    state.set_serve_secrets(config.allow_insecure_auth_secrets);
    let listen = socket_addr(&config.listen_addr).map_err(anyhow::Error::msg)?;

    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let (inputs_tx, inputs_rx) = channel::<Input>();
    let updates_tx = forward_discovery(inputs_tx.clone())?;
    // One hub: collector discovery and every kubernetes_sd entry share watches.
    let hub = WatchHub::new();
    let (initial_collectors, _collector_discovery) = collector_source.start(&tokio, &hub, inputs_tx)?;
    let (_discovery, _kubernetes_sd) = {
        let _guard = tokio.enter();
        let kubernetes_sd = KubernetesSd::start(&config.prometheus, hub, updates_tx.clone())?;
        (DiscoveryManager::start(&config.prometheus, updates_tx), kubernetes_sd)
    };
    let allocation = {
        let state = state.clone();
        let metrics = metrics.clone();
        let config = config.clone();
        std::thread::Builder::new()
            .name("allocation".into())
            .spawn(move || allocation_loop(config, choice, initial_collectors, inputs_rx, state, metrics))
            .context("starting the allocation thread")?
    };
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
    drop(_discovery);
    drop(_kubernetes_sd);
    drop(_collector_discovery);
    drop(allocation);
    Ok(())
}

/// Features the config can ask for that this version cannot deliver: refuse
/// rather than run without them, or warn where the job still works.
fn refuse_unavailable_features(config: &AllocatorConfig) -> Result<()> {
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
    }
    if config.filter_strategy == crate::config::FILTER_RELABEL_CONFIG
        && config.prometheus.scrape_configs.iter().any(|j| j.printed.contains_key("relabel_configs"))
    {
        tracing::warn!(
            "filter_strategy relabel-config: relabel rules are not applied before allocation in this version; collectors still apply them when scraping"
        );
    }
    Ok(())
}

fn choose_strategy(catalog: &mut StrategyCatalog, config: &AllocatorConfig) -> Result<StrategyChoice> {
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

/// What the allocation thread reacts to.
pub enum Input {
    /// The complete current groups of one discovery source.
    Discovery(DiscoveryUpdate),
    /// The complete current collector set (Kubernetes collector discovery).
    Collectors(Vec<Collector>),
}

/// Discovery tasks send plain [`DiscoveryUpdate`]s; a small thread wraps
/// them into the allocation thread's [`Input`]s.
fn forward_discovery(inputs: Sender<Input>) -> Result<Sender<DiscoveryUpdate>> {
    let (updates_tx, updates_rx) = channel::<DiscoveryUpdate>();
    std::thread::Builder::new()
        .name("discovery-forward".into())
        .spawn(move || {
            for update in updates_rx {
                if inputs.send(Input::Discovery(update)).is_err() {
                    return;
                }
            }
        })
        .context("starting the discovery forwarding thread")?;
    Ok(updates_tx)
}

/// Where the collectors come from: the config's static `collectors:` list,
/// or the collector pods in Kubernetes (the reference's only source).
enum CollectorSource {
    Static(Vec<Collector>),
    Kubernetes { cluster: ClusterSource, namespace: String, label_selector: Option<String>, grace: Duration },
}

impl CollectorSource {
    fn from_config(config: &AllocatorConfig) -> Result<CollectorSource> {
        Ok(match &config.collectors {
            Some(list) => CollectorSource::Static(
                list.iter().map(|c| Collector::new(&c.id, c.node.as_deref())).collect(),
            ),
            None => CollectorSource::Kubernetes {
                cluster: ClusterSource::for_allocator(config.kube_config_file_path.as_deref()),
                namespace: config.collector_namespace.clone(),
                label_selector: collectors::label_selector(config.collector_selector.as_ref())?,
                grace: config.collector_not_ready_grace_period,
            },
        })
    }

    /// The collectors to start with, and the running discovery (if any),
    /// which sends later sets to `inputs`. Stops when the guard is dropped.
    fn start(
        self,
        tokio: &tokio::runtime::Runtime,
        hub: &WatchHub,
        inputs: Sender<Input>,
    ) -> Result<(Vec<Collector>, Option<tokio::task::JoinHandle<()>>)> {
        let (cluster, namespace, label_selector, grace) = match self {
            CollectorSource::Static(list) => return Ok((list, None)),
            CollectorSource::Kubernetes { cluster, namespace, label_selector, grace } => {
                (cluster, namespace, label_selector, grace)
            }
        };
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
        let task = tokio.spawn(collectors::run_collector_discovery(pods, grace, move |set| {
            inputs.send(Input::Collectors(set)).is_ok()
        }));
        Ok((Vec::new(), Some(task)))
    }
}

fn allocation_loop(
    config: AllocatorConfig,
    choice: StrategyChoice,
    collectors: Vec<Collector>,
    inputs: Receiver<Input>,
    state: Arc<ServerState>,
    metrics: Arc<Metrics>,
) {
    let strategy = choice.primary.name().to_string();
    record_active_strategy(&metrics, &choice);
    let mut allocator = Allocator::new(choice);
    apply_collectors(&mut allocator, collectors, &metrics, &strategy);
    metrics.events.get_or_create(&SourceLabel { source: "EventSourceConfigMap".into() }).inc();

    let scrape_configs = (
        Arc::new(Body::new(render_scrape_configs(&config.prometheus.scrape_configs, true))),
        Arc::new(Body::new(render_scrape_configs(&config.prometheus.scrape_configs, false))),
    );
    let publish = |allocator: &Allocator, changed_jobs: Option<&BTreeSet<Arc<str>>>| {
        let previous = state.snapshot();
        state.publish(Snapshot::build(&previous, allocator, scrape_configs.clone(), changed_jobs));
    };
    publish(&allocator, None);

    let filter = config.filter_strategy == FILTER_RELABEL_CONFIG;
    let processors: HashMap<&str, JobProcessor> = config
        .prometheus
        .scrape_configs
        .iter()
        .map(|job| (job.job_name.as_str(), JobProcessor::new(job, filter)))
        .collect();
    let mut jobs = JobTargets::default();
    loop {
        let Ok(first) = inputs.recv() else { return };
        let mut dirty = BTreeSet::new();
        let mut deltas = Vec::new();
        let mut new_collectors = None;
        let window_started = Instant::now();
        let mut next = Some(first);
        while let Some(input) = next.take() {
            match input {
                Input::Discovery(update) => {
                    let job = update.source.job.clone();
                    if let Some(processor) = processors.get(&*job)
                        && let Some(delta) = jobs.apply(update, processor)
                    {
                        dirty.insert(job.clone());
                        deltas.push(delta);
                    }
                }
                // Collector sets come debounced: apply without waiting further.
                Input::Collectors(set) => {
                    new_collectors = Some(set);
                    break;
                }
            }
            if window_started.elapsed() >= MAX_DISCOVERY_DELAY {
                break;
            }
            match inputs.recv_timeout(DISCOVERY_DEBOUNCE) {
                Ok(input) => next = Some(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // New collectors first, so new targets are placed once, on them.
        let collectors_changed = new_collectors.is_some();
        if let Some(set) = new_collectors {
            apply_collectors(&mut allocator, set, &metrics, &strategy);
        }
        if !dirty.is_empty() {
            let started = Instant::now();
            let report = allocator.apply_deltas(deltas);
            for (job, count) in jobs.discovered_per_job() {
                metrics.targets.get_or_create(&JobLabel { job_name: job.to_string() }).set(count as i64);
            }
            metrics.targets_remaining.set(allocator.target_count() as i64);
            record_step(&metrics, &strategy, "SetTargets", started, &report);
            tracing::debug!(
                jobs = dirty.len(),
                batch = report.batch,
                moved = report.moved,
                "applied discovery updates"
            );
        }
        if collectors_changed {
            publish(&allocator, None);
        } else if !dirty.is_empty() {
            publish(&allocator, Some(&dirty));
        } else {
            continue;
        }
        record_targets_per_collector(&metrics, &strategy, &allocator);
    }
}

fn apply_collectors(
    allocator: &mut Allocator,
    collectors: Vec<Collector>,
    metrics: &Metrics,
    strategy: &str,
) {
    let started = Instant::now();
    metrics.collectors_discovered.set(collectors.len() as i64);
    let report = allocator.set_collectors(collectors);
    record_step(metrics, strategy, "SetCollectors", started, &report);
    metrics
        .collectors_allocatable
        .get_or_create(&StrategyLabel { strategy: strategy.to_string() })
        .set(allocator.collectors().len() as i64);
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
