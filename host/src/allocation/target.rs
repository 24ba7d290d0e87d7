//! Targets and collectors as allocation sees them.

use std::sync::Arc;

use target_allocator_sdk::hash::xxhash64;

/// A label set, sorted by name, names unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a label set; later duplicates of a name win.
    pub fn new(mut pairs: Vec<(String, String)>) -> Labels {
        // Stable sort keeps input order among equal names; keep the last.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        Labels(out)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|i| self.0[i].1.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One scrape target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub job: Arc<str>,
    /// The discovered `__address__` (before relabeling).
    pub address: String,
    /// The discovered labels (group and target merged, before relabeling), served to collectors.
    pub labels: Labels,
    /// Unique per target; see [`identity_hash`].
    pub identity: u64,
    /// xxhash64 of `address`: the consistent-hashing key.
    pub address_hash: u64,
    /// The node the target runs on, from its Kubernetes meta labels.
    pub node: Option<Arc<str>>,
    /// xxhash64 over every label, meta labels included: tells whether what is
    /// served for this target changed.
    pub labels_hash: u64,
}

impl Target {
    /// A target with the given identity (computed by the caller: discovery
    /// hashes the relabeled labels).
    pub fn new(job: Arc<str>, labels: Labels, identity: u64) -> Target {
        let address = labels.get("__address__").unwrap_or_default().to_string();
        let node = node_name(&labels).map(Arc::from);
        let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
        for (name, value) in labels.iter() {
            hasher.update(name.as_bytes());
            hasher.update(&[0xff]);
            hasher.update(value.as_bytes());
            hasher.update(&[0xff]);
        }
        Target {
            address_hash: xxhash64(address.as_bytes()),
            labels_hash: hasher.digest(),
            job,
            address,
            labels,
            identity,
            node,
        }
    }
}

/// The reference allocator's target identity: xxhash64 over the labels in
/// name order, skipping `__meta_*`, each as name 0xFF value 0xFF, then the job name.
pub fn identity_hash<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>, job: &str) -> u64 {
    let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
    for (name, value) in labels {
        if name.starts_with("__meta_") {
            continue;
        }
        hasher.update(name.as_bytes());
        hasher.update(&[0xff]);
        hasher.update(value.as_bytes());
        hasher.update(&[0xff]);
    }
    hasher.update(job.as_bytes());
    hasher.digest()
}

/// The node a target runs on, by the reference allocator's rules: the first
/// non-empty of the pod, node and endpoint node-name meta labels, else the
/// EndpointSlice address target when it is a Node.
pub fn node_name(labels: &Labels) -> Option<&str> {
    for name in [
        "__meta_kubernetes_pod_node_name",
        "__meta_kubernetes_node_name",
        "__meta_kubernetes_endpoint_node_name",
    ] {
        if let Some(v) = labels.get(name).filter(|v| !v.is_empty()) {
            return Some(v);
        }
    }
    if labels.get("__meta_kubernetes_endpointslice_address_target_kind") == Some("Node") {
        return labels.get("__meta_kubernetes_endpointslice_address_target_name").filter(|v| !v.is_empty());
    }
    None
}

/// A collector that can receive targets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Collector {
    /// The collector id (pod name), as collectors send it in `collector_id`.
    pub id: Arc<str>,
    pub node: Option<Arc<str>>,
}

impl Collector {
    pub fn new(id: &str, node: Option<&str>) -> Collector {
        Collector { id: Arc::from(id), node: node.map(Arc::from) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
    }

    #[test]
    fn labels_sort_and_last_duplicate_wins() {
        let l = labels(&[("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "2"), ("b", "3")]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn identity_skips_meta_labels_and_includes_the_job() {
        let a = labels(&[("__address__", "x:1"), ("__meta_pod", "p1")]);
        let b = labels(&[("__address__", "x:1"), ("__meta_pod", "p2")]);
        assert_eq!(identity_hash(a.iter(), "j"), identity_hash(b.iter(), "j"));
        assert_ne!(identity_hash(a.iter(), "j"), identity_hash(a.iter(), "k"));
        // name 0xFF value 0xFF, then the job
        let mut bytes = b"__address__\xffx:1\xff".to_vec();
        bytes.extend_from_slice(b"j");
        assert_eq!(identity_hash(a.iter(), "j"), xxhash64(&bytes));
    }

    #[test]
    fn node_follows_the_reference_precedence() {
        assert_eq!(node_name(&labels(&[("__meta_kubernetes_pod_node_name", "n1")])), Some("n1"));
        assert_eq!(
            node_name(&labels(&[
                ("__meta_kubernetes_pod_node_name", ""),
                ("__meta_kubernetes_endpoint_node_name", "n3"),
                ("__meta_kubernetes_node_name", "n2"),
            ])),
            Some("n2")
        );
        let slice = [
            ("__meta_kubernetes_endpointslice_address_target_kind", "Node"),
            ("__meta_kubernetes_endpointslice_address_target_name", "n4"),
        ];
        assert_eq!(node_name(&labels(&slice)), Some("n4"));
        let pod_slice = [
            ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
            ("__meta_kubernetes_endpointslice_address_target_name", "p"),
            ("__meta_kubernetes_endpointslice_endpoint_node_name", "n5"),
        ];
        assert_eq!(node_name(&labels(&pod_slice)), None);
    }

    #[test]
    fn target_derives_address_hash_and_node() {
        let t = Target::new(
            "job".into(),
            labels(&[("__address__", "10.0.0.1:9100"), ("__meta_kubernetes_pod_node_name", "n1")]),
            7,
        );
        assert_eq!(t.address, "10.0.0.1:9100");
        assert_eq!(t.address_hash, xxhash64(b"10.0.0.1:9100"));
        assert_eq!(t.node.as_deref(), Some("n1"));
    }
}
