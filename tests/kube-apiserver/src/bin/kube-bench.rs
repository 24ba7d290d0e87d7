//! Benchmark: the allocator discovering a large cluster through the test
//! API server. Measures the allocator process's CPU time and peak RSS from
//! start to the first full assignment, then over a steady trickle of
//! updates.
//!
//! Usage: kube-bench <target-allocator binary> [pods] [endpoints objects] [addresses each] [trickle seconds]
//! (defaults 10000 5000 10 30).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_apiserver::ApiServer;
use serde_json::{Value, json};

const COLLECTORS: usize = 5;

fn pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("app-{i}"), "namespace": format!("ns-{}", i % 10),
                     "labels": {"app": format!("app-{}", i % 100), "pod-template-hash": "abc"},
                     "annotations": {"prometheus.io/scrape": "true"}},
        "spec": {"nodeName": format!("node-{}", i % 50),
                 "containers": [{"name": "app", "image": "app:1",
                                 "ports": [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": format!("10.{}.{}.{}", i / 65536, i / 256 % 256, i % 256),
                   "hostIP": "192.0.2.1",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn endpoints(i: usize, addresses: usize, pods: usize, generation: usize) -> Value {
    let ns = format!("ns-{}", i % 10);
    let list: Vec<Value> = (0..addresses)
        .map(|k| {
            let n = i * addresses + k + generation;
            // Address k of object i refers to a pod of the same namespace.
            let pod = (n / 10 * 10 + i % 10) % pods;
            json!({"ip": format!("10.{}.{}.{}", 100 + n / 65536, n / 256 % 256, n % 256),
                   "nodeName": format!("node-{}", pod % 50),
                   "targetRef": {"kind": "Pod", "name": format!("app-{pod}"), "namespace": ns}})
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": format!("svc-{i}"), "namespace": ns, "labels": {"app": format!("svc-{}", i % 100)}},
        "subsets": [{"addresses": list, "ports": [{"name": "metrics", "port": 8080, "protocol": "TCP"}]}]
    })
}

fn service(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % 10),
                     "labels": {"app": format!("svc-{}", i % 100)}},
        "spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP",
                 "ports": [{"name": "metrics", "port": 8080, "protocol": "TCP"}]}
    })
}

fn collector(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("collector-{i}"), "namespace": "otel", "labels": {"app": "collector"}},
        "spec": {"nodeName": format!("node-{i}"), "containers": [{"name": "otelcol", "image": "otelcol"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    Ok(raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// Sum of a metric's samples on `/metrics`.
fn metric_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// (CPU seconds, peak RSS in MiB) of `pid` so far.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the name).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let binary = args
        .get(1)
        .expect("usage: kube-bench <target-allocator binary> [pods] [endpoints] [addresses] [seconds]");
    let number = |i: usize, default: usize| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (pods, endpoint_objects, addresses, trickle) =
        (number(2, 10_000), number(3, 5_000), number(4, 10), number(5, 30));

    let server = ApiServer::start();
    server.apply_all((0..COLLECTORS).map(collector));
    server.apply_all((0..pods).map(pod));
    server.apply_all((0..endpoint_objects).map(service));
    server.apply_all((0..endpoint_objects).map(|i| endpoints(i, addresses, pods, 0)));
    let dir = std::env::temp_dir().join(format!("kube-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.join("targetallocator.yaml");
    std::fs::write(
        &config,
        format!(
            "listen_addr: 127.0.0.1:{port}\nkube_config_file_path: {}\ncollector_namespace: otel\n\
             collector_selector: {{matchLabels: {{app: collector}}}}\n\
             config:\n  scrape_configs:\n\
             \x20   - job_name: pods\n      kubernetes_sd_configs: [{{role: pod, kubeconfig_file: {0}}}]\n\
             \x20   - job_name: endpoints\n      kubernetes_sd_configs: [{{role: endpoints, kubeconfig_file: {0}}}]\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    let expected = (pods + endpoint_objects * addresses) as f64;
    println!(
        "fixtures: {pods} pods, {endpoint_objects} services and endpoints x {addresses} addresses, {COLLECTORS} collectors; {expected} targets"
    );

    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("--config-file")
        .arg(&config)
        .arg("--log-level")
        .arg("warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the allocator");
    let pid = child.id();
    let deadline = started + Duration::from_secs(600);
    loop {
        let body = get(port, "/metrics").unwrap_or_default();
        let assigned = metric_sum(&body, "opentelemetry_allocator_targets_per_collector");
        if assigned >= expected
            && metric_sum(&body, "opentelemetry_allocator_collectors_discovered") == COLLECTORS as f64
        {
            break;
        }
        assert!(Instant::now() < deadline, "no full assignment after 600 s (assigned {assigned})");
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = started.elapsed();
    let (cpu_first, rss_first) = usage(pid);
    println!(
        "first full assignment: {:.2} s wall, {cpu_first:.2} s CPU, peak RSS {rss_first:.0} MiB",
        first.as_secs_f64()
    );

    // Trickle: every 100 ms one pod changes a label and one endpoints object moves its addresses.
    let trickle_started = Instant::now();
    let mut changes = 0usize;
    while trickle_started.elapsed() < Duration::from_secs(trickle as u64) {
        let i = changes % pods;
        let mut p = pod(i);
        p["metadata"]["labels"]["version"] = json!(changes.to_string());
        server.apply(p).unwrap();
        server.apply(endpoints(changes % endpoint_objects, addresses, pods, changes + 1)).unwrap();
        changes += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let (cpu_end, rss_end) = usage(pid);
    println!(
        "trickle: {changes} pod + {changes} endpoints changes over {trickle} s: {:.2} s CPU ({:.1}% of one core), peak RSS {rss_end:.0} MiB",
        cpu_end - cpu_first,
        (cpu_end - cpu_first) / trickle as f64 * 100.0
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
