//! Discovery to allocation: target groups → targets (relabel filtering and
//! identity) → allocator, per job, as a discovery update is applied.
//!
//! `cargo bench -p target-allocator --bench process` (see BENCHMARKS.md). The
//! data follow the reference's `BenchmarkProcessTargets`: 5 targets per group,
//! 20 groups per job, about 17 group labels and a few target labels each.

use std::time::Duration;

// The binary's allocator, so figures match what runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use target_allocator::allocation::{Allocator, Collector, StrategyChoice};
use target_allocator::config::{ScrapeConfig, parse_prometheus_config};
use target_allocator::discovery::{JobProcessor, TargetGroup};
use target_allocator::runtime::{Runtime, RuntimeConfig};
use target_allocator::strategies::StrategyCatalog;

const TARGETS_PER_GROUP: usize = 5;
const GROUPS_PER_JOB: usize = 20;

fn jobs(count: usize, with_rules: bool) -> Vec<ScrapeConfig> {
    let configs: Vec<_> = (0..count)
        .map(|j| {
            // Half the jobs keep everything, half drop everything, as the reference's relabel variant.
            let action = if j % 2 == 0 { "keep" } else { "drop" };
            let rules = if with_rules {
                json!([{"action": action, "source_labels": ["__address__"], "regex": ".*"}])
            } else {
                json!([])
            };
            json!({"job_name": format!("job-{j}"), "relabel_configs": rules})
        })
        .collect();
    parse_prometheus_config(&json!({ "scrape_configs": configs })).unwrap().scrape_configs
}

fn groups(job: usize) -> Vec<TargetGroup> {
    (0..GROUPS_PER_JOB)
        .map(|g| {
            let mut labels: std::collections::BTreeMap<String, String> = [
                ("__meta_kubernetes_namespace", "monitoring"),
                ("__meta_kubernetes_service_name", "node-exporter"),
                ("__meta_kubernetes_service_label_app_kubernetes_io_name", "node-exporter"),
                ("__meta_kubernetes_service_label_app_kubernetes_io_part_of", "kube-prometheus"),
                ("__meta_kubernetes_service_label_app_kubernetes_io_version", "1.8.2"),
                ("__meta_kubernetes_service_annotation_prometheus_io_scrape", "true"),
                ("__meta_kubernetes_service_annotation_kubectl_kubernetes_io_last_applied_configuration",
                 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"node-exporter\"},\"name\":\"node-exporter\",\"namespace\":\"monitoring\"},\"spec\":{\"ports\":[{\"name\":\"metrics\",\"port\":9100}]}}"),
                ("__meta_kubernetes_endpointslice_name", "node-exporter-abcde"),
                ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
                ("__meta_kubernetes_endpointslice_port_name", "metrics"),
                ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
                ("__meta_kubernetes_endpointslice_port", "9100"),
                ("__meta_kubernetes_endpointslice_endpoint_conditions_ready", "true"),
                ("__meta_kubernetes_pod_controller_kind", "DaemonSet"),
                ("__meta_kubernetes_pod_controller_name", "node-exporter"),
                ("__meta_kubernetes_pod_phase", "Running"),
                ("__meta_kubernetes_pod_ready", "true"),
            ]
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
            labels.insert("__meta_kubernetes_pod_node_name".into(), format!("node-{job}-{g}"));
            let targets = (0..TARGETS_PER_GROUP)
                .map(|t| format!("10.{}.{}.{}:9100", job / 250, job % 250, g * TARGETS_PER_GROUP + t))
                .collect();
            TargetGroup { targets, labels }
        })
        .collect()
}

fn process(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let catalog = StrategyCatalog::with_builtins(runtime).expect("built-ins");
    let strategy = catalog.get("consistent-hashing").expect("built-in");
    let collectors: Vec<Collector> =
        (0..100).map(|i| Collector::new(&format!("collector-{i}"), None)).collect();
    let mut group = c.benchmark_group("process");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    for targets in [10_000usize, 100_000] {
        let job_count = targets / (TARGETS_PER_GROUP * GROUPS_PER_JOB);
        let discovered: Vec<Vec<TargetGroup>> = (0..job_count).map(groups).collect();
        for (variant, with_rules) in [("unfiltered", false), ("relabel", true)] {
            let configs = jobs(job_count, with_rules);
            let processors: Vec<JobProcessor> =
                configs.iter().map(|j| JobProcessor::new(j, with_rules)).collect();
            group.throughput(Throughput::Elements(targets as u64));
            group.bench_with_input(BenchmarkId::new(variant, targets), &discovered, |b, discovered| {
                b.iter(|| {
                    // A fresh allocator: every target is new, as on start-up.
                    let mut allocator = Allocator::new(StrategyChoice::new(strategy.clone()));
                    allocator.set_collectors(collectors.clone());
                    for ((config, processor), groups) in configs.iter().zip(&processors).zip(discovered) {
                        allocator.set_job_targets(&config.job_name, processor.targets(groups));
                    }
                    allocator.target_count()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, process);
criterion_main!(benches);
