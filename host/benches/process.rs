//! Discovery to allocation, as the allocation loop runs it: target groups →
//! per-job processing (seeds, relabel filtering, identity) → one allocator
//! update for every changed job.
//!
//! `cargo bench -p target-allocator --bench process` (see BENCHMARKS.md). The
//! data follow the reference's `BenchmarkProcessTargets`: 5 targets per group,
//! 20 groups per job, 17 group labels and 24 target labels of Kubernetes
//! endpointslice discovery.
//!
//! `PROCESS_MEMORY_TARGETS=800000 cargo bench -p target-allocator --bench process`
//! instead reports the peak and retained resident memory of one full pass
//! above the memory holding the discovered groups (`PROCESS_VARIANT=unfiltered`
//! for the rule-less jobs; the default is the relabel variant), and
//! `PROCESS_PASSES=40` the fastest and median times of 40 passes, split into
//! processing and allocation (`PROCESS_TARGETS` sets the size).

use std::sync::Arc;
use std::time::{Duration, Instant};

// The binary's allocator, so figures match what runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use target_allocator::allocation::{Allocator, Collector, Labels, StrategyChoice, TargetGroup};
use target_allocator::config::{ScrapeConfig, parse_prometheus_config};
use target_allocator::discovery::{DiscoveryUpdate, JobProcessor, JobTargets, SourceKey};
use target_allocator::runtime::{Runtime, RuntimeConfig};
use target_allocator::strategies::StrategyCatalog;

const TARGETS_PER_GROUP: usize = 5;
const GROUPS_PER_JOB: usize = 20;
const TARGETS_PER_JOB: usize = TARGETS_PER_GROUP * GROUPS_PER_JOB;
const COLLECTORS: usize = 100;

/// Jobs with no rules, or with the rules a prometheus-operator ServiceMonitor
/// generates (keep by service label and port, copy meta labels, shard by
/// `$(SHARD)`); the rules drop the one target in five that is not ready.
fn jobs(count: usize, with_rules: bool) -> Vec<ScrapeConfig> {
    let rules = json!([
        {"action": "keep", "source_labels": ["__meta_kubernetes_service_label_app_kubernetes_io_name"], "regex": "node-exporter"},
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpointslice_port_name"], "regex": "metrics"},
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpointslice_endpoint_conditions_ready"], "regex": "true"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "instance", "regex": "(.*)", "replacement": "$1"},
        {"source_labels": ["__address__"], "target_label": "__tmp_hash", "action": "hashmod", "modulus": 1},
        {"source_labels": ["__tmp_hash", "__tmp_disable_sharding"], "regex": "$(SHARD);|.+;.+", "action": "keep"},
        {"action": "labeldrop", "regex": "__tmp_hash"}
    ]);
    let configs: Vec<_> = (0..count)
        .map(|j| {
            let rules = if with_rules { rules.clone() } else { json!([]) };
            json!({"job_name": format!("serviceMonitor/monitoring/node-exporter-{j}/0"), "relabel_configs": rules})
        })
        .collect();
    parse_prometheus_config(&json!({ "scrape_configs": configs })).unwrap().scrape_configs
}

fn labels(pairs: Vec<(String, String)>) -> Labels {
    Labels::new(pairs)
}

/// One job's groups; `generation` changes the pod IPs and pod names of the
/// groups it is applied to (a rollout).
fn target_group(job: usize, g: usize, generation: usize) -> TargetGroup {
    let s = |v: &str| v.to_string();
    let group_labels = vec![
        (s("__meta_kubernetes_namespace"), s("monitoring")),
        (s("__meta_kubernetes_service_name"), format!("node-exporter-{job}")),
        (s("__meta_kubernetes_service_label_app_kubernetes_io_name"), s("node-exporter")),
        (s("__meta_kubernetes_service_label_app_kubernetes_io_part_of"), s("kube-prometheus")),
        (s("__meta_kubernetes_service_label_app_kubernetes_io_version"), s("1.8.2")),
        (s("__meta_kubernetes_service_labelpresent_app_kubernetes_io_name"), s("true")),
        (s("__meta_kubernetes_service_annotation_prometheus_io_scrape"), s("true")),
        (s("__meta_kubernetes_service_annotationpresent_prometheus_io_scrape"), s("true")),
        (
            s("__meta_kubernetes_service_annotation_kubectl_kubernetes_io_last_applied_configuration"),
            s(
                "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"node-exporter\"},\"name\":\"node-exporter\",\"namespace\":\"monitoring\"},\"spec\":{\"ports\":[{\"name\":\"metrics\",\"port\":9100}]}}",
            ),
        ),
        (s("__meta_kubernetes_endpointslice_name"), format!("node-exporter-{job}-{g:05}")),
        (s("__meta_kubernetes_endpointslice_address_type"), s("IPv4")),
        (
            s("__meta_kubernetes_endpointslice_label_kubernetes_io_service_name"),
            format!("node-exporter-{job}"),
        ),
        (s("__meta_kubernetes_endpointslice_labelpresent_kubernetes_io_service_name"), s("true")),
        (
            s("__meta_kubernetes_endpointslice_label_endpointslice_kubernetes_io_managed_by"),
            s("endpointslice-controller.k8s.io"),
        ),
        (s("__meta_kubernetes_endpointslice_port_name"), s("metrics")),
        (s("__meta_kubernetes_endpointslice_port_protocol"), s("TCP")),
        (s("__meta_kubernetes_endpointslice_port"), s("9100")),
    ];
    let targets = (0..TARGETS_PER_GROUP)
        .map(|t| {
            let n = g * TARGETS_PER_GROUP + t;
            let ip = format!("10.{}.{}.{}", job / 250, job % 250, (n + generation * 100) % 256);
            let pod = format!("node-exporter-{job}-{n}-g{generation}");
            let node = format!("node-{}", (job * TARGETS_PER_JOB + n) % 5000);
            labels(vec![
                (s("__address__"), format!("{ip}:9100")),
                (s("__meta_kubernetes_endpointslice_address_target_kind"), s("Pod")),
                (s("__meta_kubernetes_endpointslice_address_target_name"), pod.clone()),
                (s("__meta_kubernetes_endpointslice_endpoint_conditions_ready"), (t != 4).to_string()),
                (s("__meta_kubernetes_endpointslice_endpoint_conditions_serving"), (t != 4).to_string()),
                (s("__meta_kubernetes_endpointslice_endpoint_conditions_terminating"), s("false")),
                (s("__meta_kubernetes_endpointslice_endpoint_node_name"), node.clone()),
                (s("__meta_kubernetes_endpointslice_endpoint_zone"), format!("zone-{}", n % 3)),
                (s("__meta_kubernetes_pod_name"), pod.clone()),
                (s("__meta_kubernetes_pod_ip"), ip),
                (
                    s("__meta_kubernetes_pod_uid"),
                    format!("0b0c2f4e-{job:08x}-{n:04x}-{generation:04x}-5e5b7a0c9d11"),
                ),
                (s("__meta_kubernetes_pod_node_name"), node),
                (s("__meta_kubernetes_pod_host_ip"), format!("192.168.{}.{}", n % 200, job % 250)),
                (s("__meta_kubernetes_pod_ready"), (t != 4).to_string()),
                (s("__meta_kubernetes_pod_phase"), s("Running")),
                (s("__meta_kubernetes_pod_controller_kind"), s("DaemonSet")),
                (s("__meta_kubernetes_pod_controller_name"), format!("node-exporter-{job}")),
                (s("__meta_kubernetes_pod_label_app_kubernetes_io_name"), s("node-exporter")),
                (s("__meta_kubernetes_pod_label_controller_revision_hash"), s("7d9c8b5f6")),
                (s("__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"), s("true")),
                (s("__meta_kubernetes_pod_container_name"), s("node-exporter")),
                (s("__meta_kubernetes_pod_container_image"), s("quay.io/prometheus/node-exporter:v1.8.2")),
                (s("__meta_kubernetes_pod_container_port_name"), s("metrics")),
                (s("__meta_kubernetes_pod_container_port_number"), s("9100")),
            ])
        })
        .collect();
    TargetGroup { labels: labels(group_labels), targets }
}

fn discovered_groups(job_count: usize) -> Vec<Vec<Arc<TargetGroup>>> {
    (0..job_count).map(|j| (0..GROUPS_PER_JOB).map(|g| Arc::new(target_group(j, g, 0))).collect()).collect()
}

struct Pipeline {
    configs: Vec<ScrapeConfig>,
    processors: Vec<JobProcessor>,
    processor_of: std::collections::HashMap<String, usize>,
    jobs: JobTargets,
    allocator: Allocator,
}

impl Pipeline {
    fn new(configs: Vec<ScrapeConfig>, choice: StrategyChoice) -> Pipeline {
        let processors = configs.iter().map(|c| JobProcessor::new(c, true)).collect();
        let mut allocator = Allocator::new(choice);
        allocator.set_collectors(
            (0..COLLECTORS).map(|i| Collector::new(&format!("collector-{i}"), None)).collect(),
        );
        let processor_of = configs.iter().enumerate().map(|(j, c)| (c.job_name.clone(), j)).collect();
        Pipeline { configs, processors, processor_of, jobs: JobTargets::default(), allocator }
    }

    /// One debounce window's updates, applied as the allocation loop does
    /// (jobs processed in parallel, then one allocator step). Not inlined, so
    /// that profilers can count exactly this (see BENCHMARKS.md).
    #[inline(never)]
    fn update(&mut self, updates: impl IntoIterator<Item = (usize, Vec<Arc<TargetGroup>>)>) -> usize {
        self.timed_update(updates).0
    }

    /// [`update`](Self::update), also returning how long processing and
    /// allocation took.
    fn timed_update(
        &mut self,
        updates: impl IntoIterator<Item = (usize, Vec<Arc<TargetGroup>>)>,
    ) -> (usize, Duration, Duration) {
        let started = Instant::now();
        let updates = updates.into_iter().map(|(j, groups)| DiscoveryUpdate {
            source: SourceKey { job: Arc::from(self.configs[j].job_name.as_str()), source: "k8s/0".into() },
            groups,
        });
        let processors = &self.processor_of;
        let applied =
            self.jobs.apply_all(updates.collect(), |job| processors.get(job).map(|&j| &self.processors[j]));
        let processed = Instant::now();
        self.allocator.apply_deltas(applied.into_iter().filter_map(|(_, delta)| delta).collect());
        (self.allocator.target_count(), processed - started, processed.elapsed())
    }
}

fn choice() -> StrategyChoice {
    // One call at a time here: few instance slots keep the reserved
    // address space small enough for valgrind (instruction-count profiling).
    let config = RuntimeConfig { max_concurrent_calls: 2, ..RuntimeConfig::default() };
    let runtime = Runtime::new(config).expect("runtime");
    let catalog = StrategyCatalog::with_builtins(runtime).expect("built-ins");
    StrategyChoice::new(catalog.get("consistent-hashing").expect("built-in"))
}

fn process(c: &mut Criterion) {
    let choice = choice();
    let mut group = c.benchmark_group("process");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    // `cargo test` runs benchmarks once as a smoke test: keep it small there.
    let measuring = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if measuring { &[1_000, 10_000, 100_000, 800_000] } else { &[1_000] };
    for &targets in sizes {
        let job_count = targets / TARGETS_PER_JOB;
        // Built on first use, so a filtered run builds only what it measures.
        let discovered = std::cell::OnceCell::new();
        for (variant, with_rules) in [("unfiltered", false), ("relabel", true)] {
            let configs = std::cell::OnceCell::new();
            group.throughput(Throughput::Elements(targets as u64));
            group.bench_function(BenchmarkId::new(variant, targets), |b| {
                let discovered = discovered.get_or_init(|| discovered_groups(job_count));
                let configs = configs.get_or_init(|| jobs(job_count, with_rules));
                // A fresh pipeline each time: every target is new, as on start-up.
                // Building it (loading the config) and tearing it down are not
                // part of a discovery pass: both are untimed.
                b.iter_batched(
                    || Pipeline::new(configs.clone(), choice.clone()),
                    |mut pipeline| {
                        pipeline.update(discovered.iter().cloned().enumerate());
                        pipeline
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    // A rollout touching 1% of the targets of a 100k-target set: cost should
    // follow the change, not the set. One group in each of 200 jobs changes,
    // alternating between two generations.
    let job_count = 100_000 / TARGETS_PER_JOB;
    let state = std::cell::OnceCell::new();
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("rollout-1%-of-100000", |b| {
        let (pipeline, generations) = state.get_or_init(|| {
            let base = discovered_groups(job_count);
            let mut pipeline = Pipeline::new(jobs(job_count, true), choice.clone());
            pipeline.update(base.iter().cloned().enumerate());
            let changed_jobs: Vec<usize> = (0..job_count).step_by(job_count / 200).take(200).collect();
            let rollout = |generation: usize| -> Vec<(usize, Vec<Arc<TargetGroup>>)> {
                changed_jobs
                    .iter()
                    .map(|&j| {
                        let mut groups = base[j].clone();
                        groups[3] = Arc::new(target_group(j, 3, generation));
                        (j, groups)
                    })
                    .collect()
            };
            (std::cell::RefCell::new(pipeline), [rollout(1), rollout(2)])
        });
        let mut i = 0;
        b.iter(|| {
            i += 1;
            pipeline.borrow_mut().update(generations[i % 2].clone())
        })
    });
    group.finish();
}

/// Peak and retained resident memory of one full pass, above the memory that
/// holds the discovered groups (which discovery holds in any case).
fn memory_report(targets: usize) {
    let job_count = targets / TARGETS_PER_JOB;
    let choice = choice();
    let discovered = discovered_groups(job_count);
    let with_rules = std::env::var("PROCESS_VARIANT").map_or(true, |v| v != "unfiltered");
    let configs = jobs(job_count, with_rules);
    let baseline = resident_kib("VmRSS");
    // Resets the peak (VmHWM) to the current resident size.
    std::fs::write("/proc/self/clear_refs", "5").expect("Linux /proc/self/clear_refs");
    let started = Instant::now();
    let mut pipeline = Pipeline::new(configs, choice);
    let count = pipeline.update(discovered.iter().cloned().enumerate());
    let elapsed = started.elapsed();
    let peak = resident_kib("VmHWM");
    let retained = resident_kib("VmRSS");
    let per_target = |kib: u64| (kib.saturating_sub(baseline) * 1024) as f64 / targets as f64;
    println!(
        "{targets} discovered, {count} kept, {:.2} s: peak +{:.0} B/target, retained +{:.0} B/target (baseline {} MiB)",
        elapsed.as_secs_f64(),
        per_target(peak),
        per_target(retained),
        baseline / 1024
    );
}

fn resident_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix(" kB")?.parse().ok())
        .expect("a resident-size field")
}

/// `PROCESS_PASSES` full passes at `PROCESS_TARGETS` (default 100k), each
/// on a fresh pipeline as in the benchmark: the fastest and the median time
/// of processing, of allocation and of the whole pass. On a VM whose two
/// vCPUs are sometimes one core's two hyperthreads and sometimes two cores,
/// the spread says more than criterion's mean.
fn pass_report(passes: usize) {
    let targets = std::env::var("PROCESS_TARGETS").map_or(100_000, |t| t.parse().expect("a target count"));
    let with_rules = std::env::var("PROCESS_VARIANT").map_or(true, |v| v != "unfiltered");
    let choice = choice();
    let discovered = discovered_groups(targets / TARGETS_PER_JOB);
    let configs = jobs(targets / TARGETS_PER_JOB, with_rules);
    let mut times: Vec<[f64; 3]> = (0..passes)
        .map(|_| {
            let mut pipeline = Pipeline::new(configs.clone(), choice.clone());
            let (_, processing, allocation) = pipeline.timed_update(discovered.iter().cloned().enumerate());
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            [ms(processing), ms(allocation), ms(processing + allocation)]
        })
        .collect();
    for (i, part) in ["processing", "allocation", "pass"].iter().enumerate() {
        times.sort_by(|a, b| a[i].total_cmp(&b[i]));
        println!("{part}: fastest {:.1} ms, median {:.1} ms", times[0][i], times[passes / 2][i]);
    }
}

fn main() {
    if let Ok(passes) = std::env::var("PROCESS_PASSES") {
        pass_report(passes.parse().expect("PROCESS_PASSES is a number of passes"));
        return;
    }
    if let Ok(targets) = std::env::var("PROCESS_MEMORY_TARGETS") {
        memory_report(targets.parse().expect("PROCESS_MEMORY_TARGETS is a target count"));
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    process(&mut criterion);
    criterion.final_summary();
}
