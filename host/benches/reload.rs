//! Hot reload, end to end, against the real binary over loopback HTTP:
//!
//! 1. Time from writing a new build of the active plugin into `strategy_dir`
//!    to `/strategies` naming it active, which happens only after its
//!    assignment of every target is published: debounce, sha256, compile (or
//!    a compiled-code cache hit), link, smoke test, one strategy call over all
//!    targets, snapshot. Measured with a cold cache (a build never compiled)
//!    and a warm one (a second allocator process finding the build compiled
//!    by the first in the shared `strategy_cache_dir`).
//! 2. Request latency of `/jobs/web/targets?collector_id=c1` while strategies
//!    are swapped by config edits, against the same requests without swaps.
//!
//! `cargo bench -p target-allocator --bench reload` runs 100k targets; under
//! `cargo test` it runs a small smoke version.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[path = "../tests/all/plugin_files.rs"]
mod plugin_files;
use plugin_files::{new_build, write_atomically};

const COLLECTORS: usize = 10;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let targets = if full { 100_000 } else { 2_000 };
    let rounds = if full { 5 } else { 1 };
    let swaps = if full { 10 } else { 2 };
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    write_targets(&dir.path().join("targets.json"), targets);
    let plugin = plugins.join("rendezvous.wasm");
    let rendezvous =
        std::fs::read(Path::new(env!("TA_TEST_GUESTS_DIR")).join("example-rendezvous.wasm")).unwrap();
    write_atomically(&plugin, &new_build(&rendezvous, "initial"));
    println!("{targets} targets, {COLLECTORS} collectors; strategy: the rendezvous example plugin");

    // Cold: every build is new to this process and to the disk cache.
    let config = write_config(dir.path(), "rendezvous");
    let first = Allocator::start(&config, targets);
    let cold: Vec<Duration> = (0..rounds)
        .map(|i| first.replace_plugin(&plugin, &new_build(&rendezvous, &format!("b{i}"))))
        .collect();
    report("write .wasm → serving its assignment, cold compile", &cold);
    drop(first);

    // Warm: a new process; the builds are in the disk cache, not in memory.
    write_atomically(&plugin, &new_build(&rendezvous, "initial"));
    let second = Allocator::start(&config, targets);
    let warm: Vec<Duration> = (0..rounds)
        .map(|i| second.replace_plugin(&plugin, &new_build(&rendezvous, &format!("b{i}"))))
        .collect();
    report("write .wasm → serving its assignment, warm compiled-code cache", &warm);

    // Request latency without and with strategy swaps.
    let stop = Arc::new(AtomicBool::new(false));
    let port = second.port;
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let (status, body) = get(port, "/jobs/web/targets?collector_id=c1");
                assert!(status == 200 && body.len() > 2, "{status}");
                samples.push((started, started.elapsed()));
            }
            samples
        })
    };
    let quiet_from = Instant::now();
    std::thread::sleep(Duration::from_secs(if full { 5 } else { 1 }));
    let quiet_to = Instant::now();
    let mut windows = Vec::new();
    for i in 0..swaps {
        let strategy = if i % 2 == 0 { "consistent-hashing" } else { "rendezvous" };
        let started = Instant::now();
        write_atomically(&config, config_text(dir.path(), strategy).as_bytes());
        second.wait_until(|s| active_name(s) == strategy);
        windows.push((started, Instant::now()));
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    let samples = client.join().unwrap();
    let quiet: Vec<Duration> =
        samples.iter().filter(|(at, _)| *at >= quiet_from && *at < quiet_to).map(|(_, d)| *d).collect();
    let during: Vec<Duration> = samples
        .iter()
        .filter(|(at, d)| windows.iter().any(|(from, to)| *at < *to && *at + *d > *from))
        .map(|(_, d)| *d)
        .collect();
    let swap_times: Vec<Duration> = windows.iter().map(|(from, to)| *to - *from).collect();
    report("config edit → new strategy serving", &swap_times);
    report("GET /jobs/web/targets?collector_id=c1, no swap", &quiet);
    report("GET /jobs/web/targets?collector_id=c1, overlapping a swap", &during);
}

fn active_name(strategies: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(strategies).unwrap();
    v["active"]["strategy"]["name"].as_str().unwrap_or_default().to_string()
}

fn report(what: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: n={} median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        sorted.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    );
}

struct Allocator {
    child: Child,
    port: u16,
}

impl Drop for Allocator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Allocator {
    fn start(config: &Path, targets: usize) -> Allocator {
        let port: u16 = std::fs::read_to_string(config)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("listen_addr: 127.0.0.1:"))
            .unwrap()
            .parse()
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_target-allocator"))
            .arg("--config-file")
            .arg(config)
            .arg("--log-level")
            .arg("warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let allocator = Allocator { child, port };
        let line = format!("opentelemetry_allocator_targets_remaining {targets}\n");
        let deadline = Instant::now() + Duration::from_secs(300);
        while !std::net::TcpStream::connect(("127.0.0.1", port))
            .is_ok_and(|_| get(port, "/metrics").1.contains(&line))
        {
            assert!(Instant::now() < deadline, "the allocator did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        allocator
    }

    /// Writes a new build and times until it is the active strategy.
    fn replace_plugin(&self, plugin: &Path, bytes: &[u8]) -> Duration {
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        let started = Instant::now();
        write_atomically(plugin, bytes);
        self.wait_until(|s| {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            v["active"]["strategy"]["digest"] == digest
        });
        started.elapsed()
    }

    fn wait_until(&self, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, body) = get(self.port, "/strategies");
            if done(&body) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn config_text(dir: &Path, strategy: &str) -> String {
    let port_file = dir.join("port");
    let port = match std::fs::read_to_string(&port_file) {
        Ok(port) => port,
        Err(_) => {
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
            std::fs::write(&port_file, &port).unwrap();
            port
        }
    };
    let collectors: Vec<String> = (0..COLLECTORS).map(|i| format!("{{id: c{}}}", i + 1)).collect();
    format!(
        "listen_addr: 127.0.0.1:{port}\nstrategy_dir: {}\nstrategy_cache_dir: {}\nallocation_strategy: {strategy}\n\
         collectors: [{}]\nconfig:\n  scrape_configs:\n    - job_name: web\n      file_sd_configs:\n        - files: [{}]\n",
        dir.join("plugins").display(),
        dir.join("cache").display(),
        collectors.join(", "),
        dir.join("targets.json").display()
    )
}

fn write_config(dir: &Path, strategy: &str) -> PathBuf {
    let path = dir.join("targetallocator.yaml");
    write_atomically(&path, config_text(dir, strategy).as_bytes());
    path
}

fn write_targets(path: &Path, count: usize) {
    let targets: Vec<String> = (0..count)
        .map(|i| format!("10.{}.{}.{}:{}", i / 65536 % 256, i / 256 % 256, i % 256, 9000 + i % 100))
        .collect();
    let groups = serde_json::json!([{ "targets": targets, "labels": { "team": "bench" } }]);
    std::fs::write(path, serde_json::to_vec(&groups).unwrap()).unwrap();
}

/// A blocking HTTP/1.1 GET; status and body (responses here are not chunked).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let status = String::from_utf8_lossy(&raw[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, String::from_utf8_lossy(raw.get(split + 4..).unwrap_or_default()).into_owned())
}
