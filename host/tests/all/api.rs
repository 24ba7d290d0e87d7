//! The HTTP API over real loopback HTTP, against the reference's contract:
//! routes, status codes, content types, encoding of job names, secrets, and
//! the improvements (ETag, gzip).

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::support::{RunningAllocator, free_port, http_get, http_request, spawn_allocator, wait_for};

const COLLECTORS: &str = "collectors:\n  - id: c1\n  - id: c2\n";

fn allocator_with(jobs: &str, extra: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, RunningAllocator) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("{COLLECTORS}{extra}config:\n  scrape_configs:\n{jobs}");
    let allocator = spawn_allocator(dir.path(), free_port(), &config, env);
    (dir, allocator)
}

fn many_targets_job(name: &str, count: usize) -> String {
    let targets: Vec<String> = (0..count).map(|i| format!("'10.3.{}.{}:9100'", i / 250, i % 250)).collect();
    format!(
        "    - job_name: '{name}'\n      static_configs:\n        - targets: [{}]\n          labels: {{team: api}}\n",
        targets.join(", ")
    )
}

fn targets_of(port: u16, path: &str) -> Vec<serde_json::Value> {
    let r = http_request(port, path, &[]).unwrap();
    assert_eq!(r.status, 200, "{path}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
    serde_json::from_slice(&r.body).unwrap()
}

/// Waits until the allocator serves `count` targets of `job` across c1 and c2.
fn wait_for_targets(port: u16, job_path: &str, count: usize) {
    wait_for("targets to be allocated", || {
        ["c1", "c2"]
            .iter()
            .map(|c| targets_of(port, &format!("/jobs/{job_path}/targets?collector_id={c}")).len())
            .sum::<usize>()
            == count
    });
}

#[test]
fn targets_per_collector_split_the_job_and_unknowns_get_an_empty_list() {
    let (_dir, a) = allocator_with(&many_targets_job("node", 40), "", &[]);
    wait_for_targets(a.port, "node", 40);
    let c1 = targets_of(a.port, "/jobs/node/targets?collector_id=c1");
    let c2 = targets_of(a.port, "/jobs/node/targets?collector_id=c2");
    assert!(!c1.is_empty() && !c2.is_empty());
    let element = &c1[0];
    let address = element["targets"][0].as_str().unwrap();
    assert_eq!(element["targets"].as_array().unwrap().len(), 1);
    assert_eq!(element["labels"]["__address__"], address);
    assert_eq!(element["labels"]["team"], "api");
    assert!(element["labels"].get("job").is_none(), "seeded labels are not served");
    for path in ["/jobs/node/targets?collector_id=nobody", "/jobs/nothing/targets?collector_id=c1"] {
        let r = http_request(a.port, path, &[]).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "[]\n"), "{path}");
    }
}

#[test]
fn job_names_are_query_escaped_like_the_collector_does() {
    let (_dir, a) = allocator_with(&many_targets_job("serviceMonitor/ns/a b/0", 4), "", &[]);
    wait_for_targets(a.port, "serviceMonitor%2Fns%2Fa+b%2F0", 4);
    let jobs: serde_json::Value = serde_json::from_str(&http_get(a.port, "/jobs").unwrap().1).unwrap();
    assert_eq!(jobs["serviceMonitor/ns/a b/0"]["_link"], "/jobs/serviceMonitor%2Fns%2Fa+b%2F0/targets");
    let r = http_request(a.port, "/jobs/bad%zz/targets?collector_id=c1", &[]).unwrap();
    assert_eq!(r.status, 500);
    assert!(r.text().contains("invalid percent-encoding"));
}

#[test]
fn a_job_without_collector_id_lists_every_collector() {
    let (_dir, a) = allocator_with(&many_targets_job("node", 10), "", &[]);
    wait_for_targets(a.port, "node", 10);
    let (status, body) = http_get(a.port, "/jobs/node/targets").unwrap();
    assert_eq!(status, 200);
    let all: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(all["c1"]["_link"], "/jobs/node/targets?collector_id=c1");
    let total =
        all["c1"]["targets"].as_array().unwrap().len() + all["c2"]["targets"].as_array().unwrap().len();
    assert_eq!(total, 10);
    let unknown: serde_json::Value =
        serde_json::from_str(&http_get(a.port, "/jobs/nope/targets").unwrap().1).unwrap();
    assert_eq!(unknown["c2"]["targets"], serde_json::json!([]));
}

#[test]
fn etags_revalidate_and_gzip_is_served_when_asked() {
    let (_dir, a) = allocator_with(&many_targets_job("node", 200), "", &[]);
    wait_for_targets(a.port, "node", 200);
    let path = "/jobs/node/targets?collector_id=c1";
    let plain = http_request(a.port, path, &[]).unwrap();
    let etag = plain.header("etag").unwrap().to_string();
    let again = http_request(a.port, path, &[("If-None-Match", &etag)]).unwrap();
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let zipped = http_request(a.port, path, &[("Accept-Encoding", "gzip, deflate")]).unwrap();
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert!(zipped.body.len() < plain.body.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, plain.body);
}

const SECRET_JOB: &str = "    - job_name: secret\n      basic_auth: {username: u, password: hunter2}\n      static_configs: [{targets: ['x:1']}]\n";

#[test]
fn secrets_are_redacted_on_plain_http_unless_allowed() {
    let (_dir, a) = allocator_with(SECRET_JOB, "", &[]);
    let body = http_get(a.port, "/scrape_configs").unwrap().1;
    let configs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(configs["secret"]["basic_auth"]["password"], "<secret>");
    assert!(!body.contains("hunter2"));
    let (_dir, a) = allocator_with(SECRET_JOB, "allow_insecure_auth_secrets: true\n", &[]);
    assert!(http_get(a.port, "/scrape_configs").unwrap().1.contains("hunter2"));
    let (_dir, a) = allocator_with(SECRET_JOB, "", &[("ALLOW_INSECURE_AUTH_SECRETS", "true")]);
    assert!(http_get(a.port, "/scrape_configs").unwrap().1.contains("hunter2"));
}

#[test]
fn health_metrics_and_unknown_paths() {
    let (_dir, a) = allocator_with(&many_targets_job("node", 5), "", &[]);
    wait_for_targets(a.port, "node", 5);
    assert_eq!(http_get(a.port, "/livez").unwrap().0, 200);
    assert_eq!(http_get(a.port, "/readyz").unwrap().0, 200);
    let missing = http_request(a.port, "/nope", &[]).unwrap();
    assert_eq!((missing.status, missing.text().as_str()), (404, "404 page not found"));
    let metrics = http_request(a.port, "/metrics", &[]).unwrap();
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
    let text = metrics.text();
    for needle in [
        "opentelemetry_allocator_targets{job_name=\"node\"} 5",
        "opentelemetry_allocator_collectors_allocatable{strategy=\"consistent-hashing\"} 2",
        "opentelemetry_allocator_targets_unassigned 0",
        "opentelemetry_allocator_http_duration_seconds_count{path=\"/jobs/{job}/targets\"}",
        "opentelemetry_allocator_strategy_calls_total{strategy=\"consistent-hashing\",result=\"ok\"}",
        "opentelemetry_allocator_strategy_active{strategy=\"consistent-hashing\"",
        "opentelemetry_allocator_strategy_call_duration_seconds_count{strategy=\"consistent-hashing\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics:\n{text}");
    }
}

/// A tiny HTTP SD endpoint whose answer the test changes.
struct SdServer {
    port: u16,
    answer: Arc<Mutex<(u16, &'static str, String)>>,
}

impl SdServer {
    fn start() -> SdServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = Arc::new(Mutex::new((200, "application/json", "[]".to_string())));
        let shared = answer.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                use std::io::Write;
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let (status, content_type, body) = shared.lock().unwrap().clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        SdServer { port, answer }
    }

    fn set(&self, status: u16, content_type: &'static str, body: &str) {
        *self.answer.lock().unwrap() = (status, content_type, body.to_string());
    }
}

#[test]
fn http_sd_follows_the_endpoint_and_keeps_the_last_good_list() {
    let sd = SdServer::start();
    sd.set(
        200,
        "application/json; charset=utf-8",
        r#"[{"targets": ["10.4.0.1:80", "10.4.0.2:80"], "labels": {"zone": "a"}}]"#,
    );
    let job = format!(
        "    - job_name: http\n      http_sd_configs:\n        - url: http://127.0.0.1:{}/sd\n          refresh_interval: 1s\n",
        sd.port
    );
    let (_dir, a) = allocator_with(&job, "", &[]);
    wait_for_targets(a.port, "http", 2);
    // Failures of every kind keep the last good list.
    for (status, content_type, body) in
        [(500, "application/json", "[]"), (200, "text/plain", "[]"), (200, "application/json", "[null]")]
    {
        sd.set(status, content_type, body);
        std::thread::sleep(std::time::Duration::from_millis(2500));
        wait_for_targets(a.port, "http", 2);
    }
    sd.set(200, "application/json", r#"[{"targets": ["10.4.0.3:80"]}]"#);
    wait_for_targets(a.port, "http", 1);
}

#[test]
fn a_bad_config_is_refused_with_the_key_named_and_unknown_keys_warn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "collectors: [{id: c1}]\nconfig:\n  scrape_configs:\n    - job_name: a\n      scrape_interval: soon\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_target-allocator"))
        .arg("--config-file")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scrape_interval") && stderr.contains("invalid duration \"soon\""), "{stderr}");
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_target-allocator"))
        .args(["--config-file", "/nonexistent/ta.yaml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("reading /nonexistent/ta.yaml"));

    let (_dir, a) = allocator_with(&many_targets_job("node", 1), "surprise_key: 1\n", &[]);
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("unknown key `surprise_key` is ignored"), "{log}");
}

/// `scripts/run-example`'s allocator: the bundled example config, as shipped,
/// starts and serves every job's targets.
#[test]
fn the_bundled_local_example_runs_and_serves_its_jobs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let port = free_port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_target-allocator"))
        .arg("--config-file")
        .arg(root.join("examples/local/targetallocator.yaml"))
        .arg(format!("--listen-addr=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("start the allocator");
    let _running = RunningAllocator { child, port, log: log.path().to_path_buf() };
    let served = |job: &str| {
        ["collector-0", "collector-1", "collector-2"]
            .iter()
            .map(|c| targets_of(port, &format!("/jobs/{job}/targets?collector_id={c}")).len())
            .sum::<usize>()
    };
    let expected = [("node", 4), ("apps", 4), ("blackbox", 2)];
    wait_for("the example's jobs to be served", || {
        http_get(port, "/readyz").is_ok_and(|(s, _)| s == 200)
            && expected.iter().all(|&(job, count)| served(job) == count)
    });
    let log = std::fs::read_to_string(log.path()).unwrap();
    assert!(!log.contains("ERROR"), "{log}");
}
