//! Shared test helpers.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use target_allocator::allocation::{Collector, Labels, Target, identity_hash};
use target_allocator::runtime::{Runtime, RuntimeConfig, StrategyPre, StrategySource};
use target_allocator::strategies::StrategyCatalog;

/// One runtime for the whole test binary, like the server has.
pub fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime")).clone()
}

pub fn catalog() -> StrategyCatalog {
    StrategyCatalog::with_builtins(runtime()).expect("built-ins load")
}

/// A built-in strategy, through the Wasm path.
pub fn builtin(name: &str) -> Arc<StrategyPre> {
    static CATALOG: OnceLock<StrategyCatalog> = OnceLock::new();
    CATALOG.get_or_init(catalog).get(name).unwrap_or_else(|| panic!("no built-in {name}"))
}

/// Path of a fault-injection guest component built from `tests/guests/<name>`.
pub fn test_guest_path(name: &str) -> PathBuf {
    PathBuf::from(env!("TA_TEST_GUESTS_DIR")).join(format!("guest-{name}.wasm"))
}

pub fn load_test_guest(
    runtime: &Arc<Runtime>,
    name: &str,
) -> Result<StrategyPre, target_allocator::runtime::LoadError> {
    let path = test_guest_path(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    StrategyPre::prepare(runtime, &bytes, StrategySource::File(path))
}

pub fn collectors(n: usize) -> Vec<Collector> {
    (0..n).map(|i| Collector::new(&format!("collector-{i}"), None)).collect()
}

/// A target of `job` at `address`, with its job, as `Allocator::set_targets` takes it.
pub fn job_target(job: &str, address: &str) -> (Arc<str>, Target) {
    (job.into(), target(job, address, &[]))
}

/// A target of `job` at `address` with extra labels.
pub fn target(job: &str, address: &str, extra: &[(&str, &str)]) -> Target {
    let mut pairs = vec![("__address__".to_string(), address.to_string())];
    pairs.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let labels = Labels::new(pairs);
    let identity = identity_hash(labels.iter(), job);
    Target::new(labels, identity)
}

/// `count` distinct addresses.
pub fn addresses(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("10.{}.{}.{}:{}", i / 65536 % 256, i / 256 % 256, i % 256, 9000 + i % 100))
        .collect()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An HTTP response as the tests see it.
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A plain HTTP/1.1 GET to 127.0.0.1:`port` with extra request headers.
pub fn http_request(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let extra: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    Ok(HttpResponse { status, headers, body: if chunked { dechunk(&body) } else { body } })
}

/// A plain HTTP/1.1 GET to 127.0.0.1:`port`; returns status and body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_request(port, path, &[]).map(|r| (r.status, r.text()))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..end]);
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        let rest = &body[end + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// The allocator binary running as a server; killed when dropped.
pub struct RunningAllocator {
    pub child: std::process::Child,
    pub port: u16,
    pub log: std::path::PathBuf,
}

impl Drop for RunningAllocator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `target-allocator` on `port` with `config` (without `listen_addr`,
/// which this adds) written to `dir`, and waits until it is ready.
pub fn spawn_allocator(
    dir: &std::path::Path,
    port: u16,
    config: &str,
    env: &[(&str, &str)],
) -> RunningAllocator {
    let path = dir.join("targetallocator.yaml");
    std::fs::write(&path, format!("listen_addr: 127.0.0.1:{port}\n{config}")).unwrap();
    let log = dir.join(format!("allocator-{port}.log"));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_target-allocator"))
        .arg("--config-file")
        .arg(&path)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the allocator");
    let running = RunningAllocator { child, port, log };
    wait_for("the allocator to be ready", || {
        http_get(port, "/readyz").map(|(s, _)| s == 200).unwrap_or(false)
    });
    running
}

/// Polls `done` every 100 ms for up to 60 s.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Keys `/scrape_configs` prints for every job (Prometheus 3 defaults, as
/// the reference prints them) that Debian's Prometheus 2.42, the oracle of
/// these tests, does not know and refuses.
pub const PROMETHEUS_3_ONLY_DEFAULTS: [&str; 9] = [
    "track_timestamps_staleness",
    "scrape_protocols",
    "enable_compression",
    "scrape_native_histograms",
    "always_scrape_classic_histograms",
    "convert_classic_histograms_to_nhcb",
    "extra_scrape_metrics",
    "metric_name_validation_scheme",
    "metric_name_escaping_scheme",
];

/// A child process killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Debian's `prometheus` on a free port with the config file
/// `config`, keeping its data in `dir/data-<name>`.
pub fn spawn_prometheus(dir: &std::path::Path, name: &str, config: &std::path::Path) -> (Process, u16) {
    let port = free_port();
    let child = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join(format!("data-{name}")).display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start prometheus (scripts/setup --tests installs it)");
    (Process(child), port)
}
