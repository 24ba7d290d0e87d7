//! Self-observability: the reference allocator's metric names (with its
//! known metric bugs fixed) plus the strategy runtime's.
//!
//! Owns the registry and the exposition text. Other modules record through
//! [`Metrics`]; nothing here reads allocation or discovery state itself.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Buckets in seconds for request and allocation latencies (the reference
/// uses the SDK defaults, which are meant for milliseconds).
const LATENCY_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    pub job_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CollectorLabels {
    pub collector_name: String,
    pub strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StrategyLabel {
    pub strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AllocateLabels {
    pub method: String,
    pub strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabel {
    pub path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub strategy: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActiveStrategyLabels {
    pub strategy: String,
    pub version: String,
    pub digest: String,
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabel {
    pub file: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric the allocator exports.
pub struct Metrics {
    registry: Registry,
    pub targets: Family<JobLabel, Gauge>,
    pub targets_remaining: Gauge,
    pub targets_per_collector: Family<CollectorLabels, Gauge>,
    pub targets_unassigned: Gauge,
    pub collectors_allocatable: Family<StrategyLabel, Gauge>,
    pub collectors_discovered: Gauge,
    pub time_to_allocate: Family<AllocateLabels, Histogram, fn() -> Histogram>,
    pub http_duration: Family<PathLabel, Histogram, fn() -> Histogram>,
    pub events: Family<SourceLabel, Counter>,
    pub strategy_calls: Family<CallLabels, Counter>,
    pub strategy_call_duration: Family<StrategyLabel, Histogram, fn() -> Histogram>,
    pub strategy_fallback_active: Gauge,
    pub active_strategy: Family<ActiveStrategyLabels, Gauge>,
    pub config_reloads: Family<ResultLabel, Counter>,
    pub config_last_reload_successful: Gauge,
    pub config_last_reload_success_timestamp: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub strategy_load_errors: Family<FileLabel, Counter>,
    pub strategy_switches: Family<ResultLabel, Counter>,
    pub strategy_switch_moved_targets: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            targets: Family::default(),
            targets_remaining: Gauge::default(),
            targets_per_collector: Family::default(),
            targets_unassigned: Gauge::default(),
            collectors_allocatable: Family::default(),
            collectors_discovered: Gauge::default(),
            time_to_allocate: Family::new_with_constructor(latency_histogram),
            http_duration: Family::new_with_constructor(latency_histogram),
            events: Family::default(),
            strategy_calls: Family::default(),
            strategy_call_duration: Family::new_with_constructor(latency_histogram),
            strategy_fallback_active: Gauge::default(),
            active_strategy: Family::default(),
            config_reloads: Family::default(),
            config_last_reload_successful: Gauge::default(),
            config_last_reload_success_timestamp: Gauge::default(),
            strategy_load_errors: Family::default(),
            strategy_switches: Family::default(),
            strategy_switch_moved_targets: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "opentelemetry_allocator_targets",
            "Targets discovered per job, before filtering",
            m.targets.clone(),
        );
        r.register(
            "opentelemetry_allocator_targets_remaining",
            "Targets handed to allocation after filtering, before deduplication",
            m.targets_remaining.clone(),
        );
        r.register(
            "opentelemetry_allocator_targets_per_collector",
            "Targets assigned to each collector",
            m.targets_per_collector.clone(),
        );
        r.register(
            "opentelemetry_allocator_targets_unassigned",
            "Targets without a collector",
            m.targets_unassigned.clone(),
        );
        r.register(
            "opentelemetry_allocator_collectors_allocatable",
            "Collectors that can receive targets",
            m.collectors_allocatable.clone(),
        );
        r.register(
            "opentelemetry_allocator_collectors_discovered",
            "Collectors discovered",
            m.collectors_discovered.clone(),
        );
        r.register(
            "opentelemetry_allocator_time_to_allocate",
            "Seconds an allocation step took",
            m.time_to_allocate.clone(),
        );
        r.register(
            "opentelemetry_allocator_http_duration_seconds",
            "Seconds to serve an HTTP request, by route",
            m.http_duration.clone(),
        );
        r.register("opentelemetry_allocator_events", "Configuration events by source", m.events.clone());
        r.register(
            "opentelemetry_allocator_strategy_calls",
            "Strategy calls by strategy and result (ok or the failure kind)",
            m.strategy_calls.clone(),
        );
        r.register(
            "opentelemetry_allocator_strategy_call_duration_seconds",
            "Seconds one strategy call took, instantiation and data transfer included",
            m.strategy_call_duration.clone(),
        );
        r.register(
            "opentelemetry_allocator_strategy_fallback_active",
            "1 while the last allocation fell back to native consistent hashing",
            m.strategy_fallback_active.clone(),
        );
        r.register(
            "opentelemetry_allocator_strategy_active",
            "The strategy in force (value 1), with its version, digest and source",
            m.active_strategy.clone(),
        );
        r.register(
            "opentelemetry_allocator_config_reloads",
            "Configuration loads and hot reloads by result (success or failure)",
            m.config_reloads.clone(),
        );
        r.register(
            "opentelemetry_allocator_config_last_reload_successful",
            "1 if the last configuration reload was applied, 0 if it was refused",
            m.config_last_reload_successful.clone(),
        );
        r.register(
            "opentelemetry_allocator_config_last_reload_success_timestamp_seconds",
            "Unix time of the last configuration load or reload that was applied",
            m.config_last_reload_success_timestamp.clone(),
        );
        r.register(
            "opentelemetry_allocator_strategy_load_errors",
            "Strategy files from strategy_dir refused (compile, link, contract or smoke test), by file",
            m.strategy_load_errors.clone(),
        );
        r.register(
            "opentelemetry_allocator_strategy_switches",
            "Switches of the active strategy by result (success, or failure when the new strategy failed and the old one stayed)",
            m.strategy_switches.clone(),
        );
        r.register(
            "opentelemetry_allocator_strategy_switch_moved_targets",
            "Targets that changed collector in the last successful strategy switch",
            m.strategy_switch_moved_targets.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_reference_names() {
        let m = Metrics::new();
        m.targets.get_or_create(&JobLabel { job_name: "a".into() }).set(3);
        m.events.get_or_create(&SourceLabel { source: "EventSourceConfigMap".into() }).inc();
        m.time_to_allocate
            .get_or_create(&AllocateLabels { method: "SetTargets".into(), strategy: "x".into() })
            .observe(0.002);
        let text = m.encode();
        for needle in [
            "opentelemetry_allocator_targets{job_name=\"a\"} 3",
            "opentelemetry_allocator_events_total{source=\"EventSourceConfigMap\"} 1",
            "opentelemetry_allocator_time_to_allocate_bucket{le=\"0.0025\",method=\"SetTargets\",strategy=\"x\"} 1",
            "opentelemetry_allocator_targets_unassigned 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
