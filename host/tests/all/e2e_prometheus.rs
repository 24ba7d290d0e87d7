//! End to end with real Prometheus servers as the collectors.
//!
//! Each `prometheus` process (Debian's package) is configured the way the
//! OpenTelemetry Collector's receiver rewrites jobs: one `http_sd_configs`
//! entry per job pointing at `/jobs/<job>/targets?collector_id=<its id>`.
//! What each server actually discovers must equal the allocator's split.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    PROMETHEUS_3_ONLY_DEFAULTS, Process, RunningAllocator, free_port, http_get, spawn_allocator,
    spawn_prometheus, wait_for,
};

const JOBS: [&str; 2] = ["static-job", "file-job"];

fn start_allocator(dir: &Path, port: u16, collectors: &[&str]) -> RunningAllocator {
    let collectors: String = collectors.iter().map(|c| format!("  - id: {c}\n")).collect();
    let static_targets: Vec<String> = (1..=12).map(|i| format!("'10.1.0.{i}:9100'")).collect();
    let config = format!(
        "collectors:\n{collectors}config:\n  scrape_configs:\n    - job_name: static-job\n      static_configs:\n        - targets: [{}]\n    - job_name: file-job\n      file_sd_configs:\n        - files: ['{}/sd/*.json']\n          refresh_interval: 1s\n",
        static_targets.join(", "),
        dir.display()
    );
    spawn_allocator(dir, port, &config, &[])
}

fn start_prometheus(dir: &Path, allocator_port: u16, collector: &str) -> (Process, u16) {
    let jobs: String = JOBS
        .iter()
        .map(|job| {
            format!(
                "  - job_name: {job}\n    scrape_interval: 1h\n    http_sd_configs:\n      - url: http://127.0.0.1:{allocator_port}/jobs/{job}/targets?collector_id={collector}\n        refresh_interval: 1s\n"
            )
        })
        .collect();
    let config = dir.join(format!("prometheus-{collector}.yml"));
    std::fs::write(&config, format!("scrape_configs:\n{jobs}")).unwrap();
    spawn_prometheus(dir, collector, &config)
}

/// job → addresses a Prometheus server discovered.
fn discovered(prometheus_port: u16) -> Option<BTreeMap<String, BTreeSet<String>>> {
    let (status, body) = http_get(prometheus_port, "/api/v1/targets?state=active").ok()?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let mut out: BTreeMap<String, BTreeSet<String>> =
        JOBS.iter().map(|j| (j.to_string(), BTreeSet::new())).collect();
    for t in v["data"]["activeTargets"].as_array()? {
        let job = t["scrapePool"].as_str()?.to_string();
        let address = t["discoveredLabels"]["__address__"].as_str()?.to_string();
        out.entry(job).or_default().insert(address);
    }
    Some(out)
}

/// job → addresses the allocator assigns to `collector`.
fn assigned(allocator_port: u16, collector: &str) -> BTreeMap<String, BTreeSet<String>> {
    JOBS.iter()
        .map(|job| {
            let (status, body) =
                http_get(allocator_port, &format!("/jobs/{job}/targets?collector_id={collector}")).unwrap();
            assert_eq!(status, 200);
            let groups: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
            let addresses = groups.iter().map(|g| g["targets"][0].as_str().unwrap().to_string()).collect();
            (job.to_string(), addresses)
        })
        .collect()
}

/// Waits until every Prometheus server discovers exactly what the allocator
/// assigns to it, then checks the split covers `expected` once.
fn converge(
    allocator: &RunningAllocator,
    servers: &[(&str, u16)],
    expected: &BTreeMap<&str, BTreeSet<String>>,
) {
    wait_for("the allocator to hold every expected target", || {
        JOBS.iter().all(|job| {
            let union: BTreeSet<String> =
                servers.iter().flat_map(|(c, _)| assigned(allocator.port, c).remove(*job).unwrap()).collect();
            union == expected[job]
        })
    });
    wait_for("the Prometheus servers to follow the allocator", || {
        servers.iter().all(|(collector, port)| discovered(*port) == Some(assigned(allocator.port, collector)))
    });
    for job in JOBS {
        let mut seen = BTreeSet::new();
        for (collector, port) in servers {
            for address in &discovered(*port).unwrap()[job] {
                assert!(
                    seen.insert(address.clone()),
                    "{address} of {job} is scraped twice (also by {collector})"
                );
            }
        }
        assert_eq!(&seen, &expected[job], "{job}: every target scraped exactly once");
    }
    // Each server got a share: the split is real.
    for (collector, port) in servers {
        let total: usize = discovered(*port).unwrap().values().map(BTreeSet::len).sum();
        assert!(total > 0, "{collector} got no targets");
    }
}

fn write_file_sd(dir: &Path, name: &str, addresses: &[String]) {
    let sd = dir.join("sd");
    std::fs::create_dir_all(&sd).unwrap();
    let body = serde_json::json!([{ "targets": addresses, "labels": { "team": "e2e" } }]);
    // Write then rename, as a careful writer (or a ConfigMap update) would.
    let tmp: PathBuf = sd.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, body.to_string()).unwrap();
    std::fs::rename(&tmp, sd.join(name)).unwrap();
}

#[test]
fn prometheus_servers_scrape_exactly_the_allocators_split() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let file_targets: Vec<String> = (1..=10).map(|i| format!("10.2.0.{i}:8080")).collect();
    write_file_sd(dir, "a.json", &file_targets);
    let port = free_port();
    let allocator = start_allocator(dir, port, &["prom-0", "prom-1"]);
    let (_p0, port0) = start_prometheus(dir, port, "prom-0");
    let (_p1, port1) = start_prometheus(dir, port, "prom-1");
    let statics: BTreeSet<String> = (1..=12).map(|i| format!("10.1.0.{i}:9100")).collect();
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::from([
        ("static-job", statics.clone()),
        ("file-job", file_targets.iter().cloned().collect()),
    ]);
    converge(&allocator, &[("prom-0", port0), ("prom-1", port1)], &expected);

    // A target added to and one removed from the file_sd file.
    let mut changed = file_targets[1..].to_vec();
    changed.push("10.2.0.99:8080".into());
    write_file_sd(dir, "a.json", &changed);
    expected.insert("file-job", changed.iter().cloned().collect());
    converge(&allocator, &[("prom-0", port0), ("prom-1", port1)], &expected);

    // A third collector in the config (the allocator restarts on the same port,
    // as the reference does on a config change; hot reload is not needed here).
    drop(allocator);
    let allocator = start_allocator(dir, port, &["prom-0", "prom-1", "prom-2"]);
    let (_p2, port2) = start_prometheus(dir, port, "prom-2");
    converge(&allocator, &[("prom-0", port0), ("prom-1", port1), ("prom-2", port2)], &expected);

    // And removed again: its targets go back to the other two.
    drop(allocator);
    let allocator = start_allocator(dir, port, &["prom-0", "prom-1"]);
    converge(&allocator, &[("prom-0", port0), ("prom-1", port1)], &expected);
    wait_for("prom-2 to drop its targets", || {
        discovered(port2).is_some_and(|d| d.values().all(BTreeSet::is_empty))
    });
}

#[test]
fn promtool_accepts_a_config_built_from_scrape_configs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let allocator = start_allocator(dir.path(), port, &["c1"]);
    let (status, body) = http_get(allocator.port, "/scrape_configs").unwrap();
    assert_eq!(status, 200);
    let jobs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(jobs.keys().collect::<Vec<_>>(), ["file-job", "static-job"]);
    // What the collector's receiver does: replace each job's SD with HTTP SD.
    // The keys Prometheus 3 prints by default are left out: this promtool is
    // 2.42, which refuses them (its 3.x successors accept them).
    let rewritten: Vec<serde_json::Value> = jobs
        .iter()
        .map(|(name, job)| {
            let mut job = job.as_object().unwrap().clone();
            job.retain(|k, _| {
                !k.ends_with("_sd_configs")
                    && k != "static_configs"
                    && !PROMETHEUS_3_ONLY_DEFAULTS.contains(&k.as_str())
            });
            job.insert(
                "http_sd_configs".into(),
                serde_json::json!([{ "url": format!("http://127.0.0.1:{port}/jobs/{name}/targets?collector_id=c1") }]),
            );
            serde_json::Value::Object(job)
        })
        .collect();
    let config = dir.path().join("prometheus.yml");
    // JSON is YAML.
    std::fs::write(&config, serde_json::json!({ "scrape_configs": rewritten }).to_string()).unwrap();
    let out =
        Command::new("promtool").arg("check").arg("config").arg(&config).output().expect("run promtool");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
