//! What the server answers from: immutable, rebuilt after each change and
//! swapped in whole, so a request sees either the old or the new state.
//!
//! Target lists are encoded once per (job, collector) slice; a rebuild reuses
//! the bytes of every slice whose targets did not change.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::body::Body;
use crate::allocation::{Allocator, Assigned, Target};

/// One (job, collector) target list.
#[derive(Clone, Debug)]
pub struct Slice {
    fingerprint: u64,
    pub body: Arc<Body>,
}

#[derive(Debug)]
pub struct Snapshot {
    /// Set once the first config has been applied (`/readyz`).
    pub ready: bool,
    pub scrape_configs_redacted: Arc<Body>,
    pub scrape_configs_full: Arc<Body>,
    /// `/jobs`.
    pub jobs: Arc<Body>,
    /// Known collectors, sorted.
    pub collectors: Vec<Arc<str>>,
    /// job → collector → targets.
    pub slices: HashMap<Arc<str>, HashMap<Arc<str>, Slice>>,
    pub empty_list: Arc<Body>,
}

impl Default for Snapshot {
    fn default() -> Self {
        let empty_object = Arc::new(Body::new("{}"));
        Snapshot {
            ready: false,
            scrape_configs_redacted: empty_object.clone(),
            scrape_configs_full: empty_object,
            jobs: Arc::new(Body::new("{}\n")),
            collectors: Vec::new(),
            slices: HashMap::new(),
            empty_list: Arc::new(Body::new("[]\n")),
        }
    }
}

impl Snapshot {
    /// A snapshot of `allocator`'s assignment, reusing `previous`'s slices
    /// where nothing changed. With `changed_jobs`, only those jobs are looked
    /// at and every other job's slices are taken from `previous` as they are
    /// (valid while the collector set is the same; otherwise all jobs are
    /// rebuilt), so a discovery update of one job costs that job's targets.
    pub fn build(
        previous: &Snapshot,
        allocator: &Allocator,
        scrape_configs: (Arc<Body>, Arc<Body>),
        changed_jobs: Option<&BTreeSet<Arc<str>>>,
    ) -> Snapshot {
        let collectors: Vec<Arc<str>> = allocator.collectors().iter().map(|c| c.id.clone()).collect();
        let changed_jobs = changed_jobs.filter(|_| previous.ready && previous.collectors == collectors);
        let reuse = |job: &Arc<str>, collector: &Arc<str>, targets: Assigned| {
            let fingerprint = fingerprint(targets.iter());
            let reused = previous
                .slices
                .get(job)
                .and_then(|by_collector| by_collector.get(collector))
                .filter(|slice| slice.fingerprint == fingerprint)
                .map(|slice| slice.body.clone());
            let body = reused.unwrap_or_else(|| Arc::new(Body::new(encode_targets(targets.iter()))));
            Slice { fingerprint, body }
        };
        let mut slices: HashMap<Arc<str>, HashMap<Arc<str>, Slice>> = HashMap::new();
        match changed_jobs {
            Some(changed) => {
                for (job, by_collector) in &previous.slices {
                    if !changed.contains(job) {
                        slices.insert(job.clone(), by_collector.clone());
                    }
                }
                for job in changed {
                    for (collector, targets) in allocator.job_assignment(job) {
                        let slice = reuse(job, collector, targets);
                        slices.entry(job.clone()).or_default().insert(collector.clone(), slice);
                    }
                }
            }
            None => {
                for job in allocator.served_jobs() {
                    for (collector, targets) in allocator.job_assignment(job) {
                        let slice = reuse(job, collector, targets);
                        slices.entry(job.clone()).or_default().insert(collector.clone(), slice);
                    }
                }
            }
        }
        let mut job_names: Vec<&Arc<str>> = slices.keys().collect();
        job_names.sort();
        let mut jobs = serde_json::Map::new();
        for job in job_names {
            jobs.insert(
                job.to_string(),
                serde_json::json!({ "_link": format!("/jobs/{}/targets", query_escape(job)) }),
            );
        }
        let mut jobs_body = serde_json::to_vec(&jobs).expect("JSON values serialize");
        jobs_body.push(b'\n');
        Snapshot {
            ready: true,
            scrape_configs_redacted: scrape_configs.0,
            scrape_configs_full: scrape_configs.1,
            jobs: Arc::new(Body::new(jobs_body)),
            collectors,
            slices,
            empty_list: previous.empty_list.clone(),
        }
    }

    /// The targets of `job` for `collector`: `[]` for an unknown job or collector.
    pub fn slice(&self, job: &str, collector: &str) -> &Arc<Body> {
        self.slices.get(job).and_then(|c| c.get(collector)).map_or(&self.empty_list, |s| &s.body)
    }

    /// `/jobs/<job>/targets` without a collector: every known collector with
    /// its link and targets (an unknown job gives every collector `[]`).
    pub fn job_by_collector(&self, job: &str) -> Vec<u8> {
        let mut out = Vec::from(&b"{"[..]);
        for (i, collector) in self.collectors.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let link =
                format!("/jobs/{}/targets?collector_id={}", query_escape(job), query_escape(collector));
            serde_json::to_writer(&mut out, &**collector).expect("strings serialize");
            out.extend_from_slice(b":{\"_link\":");
            serde_json::to_writer(&mut out, &link).expect("strings serialize");
            out.extend_from_slice(b",\"targets\":");
            let targets = &self.slice(job, collector).bytes;
            out.extend_from_slice(targets.strip_suffix(b"\n").unwrap_or(targets));
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
        out
    }
}

fn fingerprint<'a>(targets: impl Iterator<Item = &'a Target>) -> u64 {
    let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
    for t in targets {
        hasher.update(&t.identity.to_le_bytes());
        hasher.update(&t.version().to_le_bytes());
    }
    hasher.digest()
}

/// `[{"targets":["<address>"],"labels":{...}}, ...]` plus a newline, in
/// identity order; labels are the discovered ones, sorted by name.
fn encode_targets<'a>(targets: impl Iterator<Item = &'a Target>) -> Vec<u8> {
    let mut out = Vec::from(&b"["[..]);
    for (i, target) in targets.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"targets\":[");
        serde_json::to_writer(&mut out, target.address()).expect("strings serialize");
        out.extend_from_slice(b"],\"labels\":{");
        for (j, (name, value)) in target.labels().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, name).expect("strings serialize");
            out.push(b':');
            serde_json::to_writer(&mut out, value).expect("strings serialize");
        }
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]\n");
    out
}

/// Go's `url.QueryEscape`, which the collector uses for job names in URLs.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte.
pub fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_slices_are_reused_and_changed_ones_rebuilt() {
        use crate::allocation::{Collector, Labels, StrategyChoice, Target, native_fallback};
        let target = |job: &str, address: &str, extra: &str| {
            let labels =
                Labels::new(vec![("__address__".into(), address.into()), ("x".into(), extra.into())]);
            (
                job.into(),
                Target::new(labels, crate::allocation::identity_hash([("__address__", address)], job)),
            )
        };
        let mut allocator = Allocator::new(StrategyChoice::new(native_fallback()));
        allocator.set_collectors(vec![Collector::new("c", None)]);
        allocator.set_targets(vec![target("a", "1:1", "v1"), target("b", "2:2", "v1")]);
        let bodies = (Arc::new(Body::new("{}")), Arc::new(Body::new("{}")));
        let first = Snapshot::build(&Snapshot::default(), &allocator, bodies.clone(), None);
        // Job b's only target gets new labels under the same identity.
        allocator.set_job_targets("b", vec![target("b", "2:2", "v2").1]);
        let second = Snapshot::build(&first, &allocator, bodies.clone(), None);
        assert!(Arc::ptr_eq(first.slice("a", "c"), second.slice("a", "c")), "job a was not re-encoded");
        assert!(!Arc::ptr_eq(first.slice("b", "c"), second.slice("b", "c")));
        assert!(std::str::from_utf8(&second.slice("b", "c").bytes).unwrap().contains("\"x\":\"v2\""));
        assert!(Arc::ptr_eq(second.slice("zzz", "c"), &second.empty_list));
        // Rebuilding only the changed job gives the same answers.
        allocator.set_job_targets("b", vec![target("b", "2:2", "v3").1]);
        let changed: BTreeSet<Arc<str>> = [Arc::from("b")].into();
        let third = Snapshot::build(&second, &allocator, bodies.clone(), Some(&changed));
        assert!(Arc::ptr_eq(second.slice("a", "c"), third.slice("a", "c")));
        assert!(std::str::from_utf8(&third.slice("b", "c").bytes).unwrap().contains("\"x\":\"v3\""));
        // A job emptied by the update disappears from the snapshot.
        allocator.set_job_targets("b", Vec::new());
        let fourth = Snapshot::build(&third, &allocator, bodies.clone(), Some(&changed));
        assert!(Arc::ptr_eq(fourth.slice("b", "c"), &fourth.empty_list));
        assert!(!std::str::from_utf8(&fourth.jobs.bytes).unwrap().contains("\"b\""));
        // A collector change rebuilds everything, whatever `changed_jobs` says.
        allocator.set_collectors(vec![Collector::new("d", None)]);
        let fifth = Snapshot::build(&fourth, &allocator, bodies, Some(&changed));
        assert!(!Arc::ptr_eq(fifth.slice("a", "d"), &fifth.empty_list));
    }

    #[test]
    fn query_escaping_matches_go() {
        assert_eq!(query_escape("serviceMonitor/ns/a b/0"), "serviceMonitor%2Fns%2Fa+b%2F0");
        assert_eq!(
            query_unescape("serviceMonitor%2Fns%2Fa+b%2F0").as_deref(),
            Some("serviceMonitor/ns/a b/0")
        );
        assert_eq!(query_unescape("bad%zz"), None);
        assert_eq!(query_unescape("cut%2"), None);
    }
}
