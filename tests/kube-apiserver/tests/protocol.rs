//! The test API server's wire protocol, over raw HTTP: what kube-rs and
//! client-go rely on (list snapshots and pages, watch resume, selector
//! transitions, bookmarks, 410, timeouts).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kube_apiserver::{ApiServer, Options};
use serde_json::{Value, json};

fn pod(name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns", "labels": {"app": app}},
           "spec": {"nodeName": "n1", "containers": []}, "status": {"phase": "Running"}})
}

fn port(server: &ApiServer) -> u16 {
    server.url().rsplit(':').next().unwrap().parse().unwrap()
}

/// A GET: (status, body), for non-streaming responses.
fn get(server: &ApiServer, path: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port(server))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A watch: yields events as they arrive (chunk framing skipped).
struct Watch(BufReader<TcpStream>);

impl Watch {
    fn open(server: &ApiServer, path: &str) -> Watch {
        let mut stream = TcpStream::connect(("127.0.0.1", port(server))).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "{line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Watch(reader)
    }

    /// The next event, or `None` when the stream ended.
    fn next(&mut self) -> Option<Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.0.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let text = line.trim();
            if text.starts_with('{') {
                return Some(serde_json::from_str(text).unwrap());
            }
            // A chunk size line; "0" ends the stream.
            if text == "0" {
                return None;
            }
        }
    }

    fn next_non_bookmark(&mut self) -> Option<Value> {
        loop {
            let event = self.next()?;
            if event["type"] != "BOOKMARK" {
                return Some(event);
            }
        }
    }
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pages_come_from_one_snapshot_until_it_is_compacted() {
    let server = ApiServer::start();
    server.apply_all((0..5).map(|i| pod(&format!("p{i}"), "web")));
    let (status, first) = get(&server, "/api/v1/namespaces/ns/pods?limit=2");
    assert_eq!(status, 200);
    assert_eq!(first["kind"], "PodList");
    assert_eq!(names(&first), ["p0", "p1"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let version = first["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    // Changes after the first page do not show in later pages.
    server.apply(pod("p2", "db")).unwrap();
    assert!(server.delete("v1", "Pod", "ns", "p3"));
    server.apply(pod("p9", "web")).unwrap();
    let (_, second) = get(&server, &format!("/api/v1/namespaces/ns/pods?limit=2&continue={token}"));
    assert_eq!(names(&second), ["p2", "p3"]);
    assert_eq!(second["items"][0]["metadata"]["labels"]["app"], "web");
    assert_eq!(second["metadata"]["resourceVersion"], version.as_str());
    let token = second["metadata"]["continue"].as_str().unwrap().to_string();
    server.compact();
    let (status, gone) = get(&server, &format!("/api/v1/namespaces/ns/pods?limit=2&continue={token}"));
    assert_eq!((status, gone["code"].as_i64(), gone["reason"].as_str()), (410, Some(410), Some("Expired")));
    // Selectors filter before the limit; items carry no kind of their own.
    let (_, web) = get(&server, "/api/v1/pods?labelSelector=app%3Dweb&fieldSelector=metadata.namespace%3Dns");
    assert_eq!(names(&web), ["p0", "p1", "p4", "p9"]);
    assert!(web["items"][0].get("kind").is_none());
    let (status, _) = get(&server, "/api/v1/pods?labelSelector=app%20in%20web");
    assert_eq!(status, 400);
}

#[test]
fn watches_resume_translate_selections_and_expire() {
    let server = ApiServer::start_with(Options { bookmark_interval: Duration::from_millis(100) });
    server.apply(pod("a", "web")).unwrap();
    let (_, list) = get(&server, "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb");
    let listed: u64 = list["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    // Changes between the list and the watch are replayed.
    server.apply(pod("b", "web")).unwrap();
    let path = format!(
        "/api/v1/namespaces/ns/pods?watch=true&resourceVersion={listed}&labelSelector=app%3Dweb&allowWatchBookmarks=true&timeoutSeconds=30"
    );
    let mut watch = Watch::open(&server, &path);
    let added = watch.next_non_bookmark().unwrap();
    assert_eq!(
        (added["type"].as_str(), added["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("b"))
    );
    // Leaving the selection is a DELETED for this watch; entering it an ADDED.
    server.apply(pod("a", "db")).unwrap();
    let left = watch.next_non_bookmark().unwrap();
    assert_eq!(
        (left["type"].as_str(), left["object"]["metadata"]["name"].as_str()),
        (Some("DELETED"), Some("a"))
    );
    server.apply(pod("other", "db")).unwrap();
    server.apply(pod("a", "web")).unwrap();
    let back = watch.next_non_bookmark().unwrap();
    assert_eq!(back["type"], "ADDED");
    let versions: Vec<u64> = [&added, &left, &back]
        .iter()
        .map(|e| e["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    // Bookmarks carry progress, including versions the selection filtered out.
    let bookmark = loop {
        let event = watch.next().unwrap();
        if event["type"] == "BOOKMARK" {
            break event;
        }
    };
    let progress: u64 = bookmark["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    assert_eq!(progress, server.resource_version());
    // A disconnect ends the stream; resuming from a compacted version is a 410 ERROR event.
    server.compact();
    server.disconnect_watches();
    while watch.next().is_some() {}
    let mut resumed = Watch::open(&server, &path);
    let error = resumed.next().unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(
        (error["object"]["code"].as_i64(), error["object"]["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
    assert!(resumed.next().is_none());
    assert_eq!(server.counts("pods").watches, 2);
    // timeoutSeconds ends a quiet watch.
    let mut quick = Watch::open(&server, "/api/v1/pods?watch=1&resourceVersion=0&timeoutSeconds=1");
    let mut initial = 0;
    while let Some(event) = quick.next() {
        assert_eq!(event["type"], "ADDED");
        initial += 1;
    }
    assert_eq!(initial, 3);
    // Injected failures answer with a Status.
    server.fail_next("pods", 1, 503);
    let (status, body) = get(&server, "/api/v1/pods");
    assert_eq!((status, body["code"].as_i64()), (503, Some(503)));
    assert_eq!(get(&server, "/api/v1/pods").0, 200);
}
