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

/// A target of `job` at `address` with extra labels.
pub fn target(job: &str, address: &str, extra: &[(&str, &str)]) -> Target {
    let mut pairs = vec![("__address__".to_string(), address.to_string())];
    pairs.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let labels = Labels::new(pairs);
    let identity = identity_hash(labels.iter(), job);
    Target::new(job.into(), labels, identity)
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

/// A plain HTTP/1.1 GET to 127.0.0.1:`port`; returns status and body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.to_string() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
