//! Targets and collectors as allocation sees them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use target_allocator_sdk::hash::xxhash64;

use crate::label_order::{LabelName, compare_names, intern};

/// A label set, sorted by name, names unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels {
    /// Names are interned: shared by every target that has them.
    pairs: Vec<(LabelName, String)>,
    /// Where the `__meta_*` names sit (contiguous, as names are sorted):
    /// identity skips them without searching.
    meta: (u32, u32),
}

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
        Labels::from_sorted(out)
    }

    /// From pairs already sorted by name with unique names.
    pub fn from_sorted(pairs: Vec<(String, String)>) -> Labels {
        debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        let pairs: Vec<(LabelName, String)> = pairs.into_iter().map(|(n, v)| (intern(&n), v)).collect();
        // '`' follows '_': every `__meta_*` name sorts in ["__meta_", "__meta`").
        let start = pairs.partition_point(|(n, _)| &**n < "__meta_");
        let end = start + pairs[start..].partition_point(|(n, _)| &**n < "__meta`");
        Labels { pairs, meta: (start as u32, end as u32) }
    }

    /// The labels outside the `__meta_*` run (contiguous, as names are sorted).
    pub fn non_meta(&self) -> NonMeta<'_> {
        let (start, end) = (self.meta.0 as usize, self.meta.1 as usize);
        self.pairs[..start].iter().chain(self.pairs[end..].iter())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        // `__address__` sorts first in nearly every target's own labels, and the
        // label most asked for: found without touching the other names.
        if let Some((first, value)) = self.pairs.first()
            && **first == *name
        {
            return Some(value);
        }
        self.pairs.binary_search_by(|(n, _)| compare_names(n, name)).ok().map(|i| self.pairs[i].1.as_str())
    }

    /// [`get`](Labels::get) for an interned `name`, first trying where `hint`
    /// says the name was (or was missing) in the last set asked. Targets of
    /// one group, and usually of one job, share their label layout, so the
    /// answer mostly costs two pointer comparisons instead of a search.
    pub fn get_hinted(&self, name: &LabelName, hint: &mut NameHint) -> Option<&str> {
        // Names are interned and never forgotten: equal pointers mean equal names.
        let name_at =
            |i: usize| self.pairs.get(i).map_or(std::ptr::null(), |(n, _)| Arc::as_ptr(n).cast::<u8>());
        if hint.found {
            if let Some((n, value)) = self.pairs.get(hint.at)
                && Arc::ptr_eq(n, name)
            {
                return Some(value);
            }
        } else if hint.at <= self.pairs.len()
            && name_at(hint.at.wrapping_sub(1)) == hint.before
            && name_at(hint.at) == hint.after
        {
            // The same neighbours as when the name was found missing between them.
            return None;
        }
        match self.pairs.binary_search_by(|(n, _)| compare_names(n, name)) {
            Ok(at) => {
                *hint = NameHint { at, found: true, ..NameHint::default() };
                Some(&self.pairs[at].1)
            }
            Err(at) => {
                *hint =
                    NameHint { at, found: false, before: name_at(at.wrapping_sub(1)), after: name_at(at) };
                None
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (&**n, v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Where [`Labels::get_hinted`] last found a name, or found it missing
/// between two neighbours (compared by address only, never read).
#[derive(Clone, Copy, Debug)]
pub struct NameHint {
    at: usize,
    found: bool,
    before: *const u8,
    after: *const u8,
}

impl Default for NameHint {
    fn default() -> Self {
        // `at` past any set: the first lookup searches.
        NameHint { at: usize::MAX, found: false, before: std::ptr::null(), after: std::ptr::null() }
    }
}

/// Discovered targets that share labels: what service discovery produces
/// (Prometheus's target group). Targets point at their group instead of
/// copying its labels, so a target costs the same whatever its label count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// Labels common to every target of the group.
    pub labels: Labels,
    /// Each target's own labels (at least `__address__`); they win over the group's.
    pub targets: Vec<Labels>,
}

impl TargetGroup {
    /// The merged labels of target `index`, in name order.
    pub fn target_labels(&self, index: usize) -> MergedLabels<'_> {
        Merged::new(self.labels.pairs.iter(), self.targets[index].pairs.iter())
    }

    /// The merged labels of target `index` minus `__meta_*`, in name order:
    /// what identity hashes, found without walking the meta labels.
    pub fn target_labels_without_meta(&self, index: usize) -> Merged<NonMeta<'_>, NonMeta<'_>> {
        Merged::new(self.labels.non_meta(), self.targets[index].non_meta())
    }
}

/// Sorted labels without the `__meta_*` run.
pub type NonMeta<'a> =
    std::iter::Chain<std::slice::Iter<'a, (LabelName, String)>, std::slice::Iter<'a, (LabelName, String)>>;

/// A group's labels merged with one target's own.
pub type MergedLabels<'a> =
    Merged<std::slice::Iter<'a, (LabelName, String)>, std::slice::Iter<'a, (LabelName, String)>>;

/// Two sorted label lists merged in name order, the second winning on equal names.
pub struct Merged<G: Iterator, O: Iterator> {
    group: std::iter::Peekable<G>,
    own: std::iter::Peekable<O>,
}

impl<'a, G, O> Merged<G, O>
where
    G: Iterator<Item = &'a (LabelName, String)>,
    O: Iterator<Item = &'a (LabelName, String)>,
{
    fn new(group: G, own: O) -> Self {
        Merged { group: group.peekable(), own: own.peekable() }
    }
}

impl<'a, G, O> Iterator for Merged<G, O>
where
    G: Iterator<Item = &'a (LabelName, String)>,
    O: Iterator<Item = &'a (LabelName, String)>,
{
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let take_own = match (self.group.peek(), self.own.peek()) {
            (None, None) => return None,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(g), Some(o)) => match compare_names(&g.0, &o.0) {
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => {
                    self.group.next();
                    true
                }
            },
        };
        let (name, value) = if take_own { self.own.next() } else { self.group.next() }?;
        Some((&**name, value.as_str()))
    }
}

/// Gives every processed group's targets a version no other target had, so
/// a serving slice can tell whether its targets were re-discovered.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

/// A fresh target version (see [`Target::version`]).
pub fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, AtomicOrdering::Relaxed)
}

/// One scrape target: one entry of a discovered group, with its identity.
#[derive(Clone, Debug)]
pub struct Target {
    pub job: Arc<str>,
    group: Arc<TargetGroup>,
    index: u32,
    /// Unique per target; see [`identity_hash`].
    pub identity: u64,
    /// xxhash64 of the address: the consistent-hashing key.
    pub address_hash: u64,
    version: u64,
}

impl Target {
    /// Target `index` of `group`, with the identity the caller computed
    /// (discovery hashes the relabeled labels) and a version from
    /// [`next_version`] (one per processed group is enough).
    pub fn in_group(
        job: Arc<str>,
        group: Arc<TargetGroup>,
        index: usize,
        identity: u64,
        version: u64,
    ) -> Target {
        let mut target = Target { job, group, index: index as u32, identity, address_hash: 0, version };
        target.address_hash = xxhash64(target.address().as_bytes());
        target
    }

    /// A target alone in its group.
    pub fn new(job: Arc<str>, labels: Labels, identity: u64) -> Target {
        let group = TargetGroup { labels: Labels::default(), targets: vec![labels] };
        Target::in_group(job, Arc::new(group), 0, identity, next_version())
    }

    /// The discovered labels (group and target merged, before relabeling),
    /// served to collectors, in name order.
    pub fn labels(&self) -> MergedLabels<'_> {
        self.group.target_labels(self.index as usize)
    }

    /// One discovered label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.group.targets[self.index as usize].get(name).or_else(|| self.group.labels.get(name))
    }

    /// The discovered `__address__` (before relabeling).
    pub fn address(&self) -> &str {
        self.label("__address__").unwrap_or_default()
    }

    /// The node the target runs on, from its Kubernetes meta labels.
    pub fn node(&self) -> Option<&str> {
        node_name([&self.group.targets[self.index as usize], &self.group.labels])
    }

    /// Changes whenever the target is re-discovered with different labels;
    /// equal versions mean equal labels.
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl PartialEq for Target {
    fn eq(&self, other: &Target) -> bool {
        self.job == other.job
            && self.identity == other.identity
            && ((Arc::ptr_eq(&self.group, &other.group) && self.index == other.index)
                || self.labels().eq(other.labels()))
    }
}

impl Eq for Target {}

/// The reference allocator's target identity: xxhash64 over the labels in
/// name order, skipping `__meta_*`, each as name 0xFF value 0xFF, then the job name.
pub fn identity_hash<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>, job: &str) -> u64 {
    let mut input = HashInput::default();
    for (name, value) in labels {
        if name.starts_with("__meta_") {
            continue;
        }
        input.push(name.as_bytes());
        input.push(&[0xff]);
        input.push(value.as_bytes());
        input.push(&[0xff]);
    }
    input.push(job.as_bytes());
    input.digest()
}

/// Bytes to hash, gathered on the stack and hashed in one go: the streaming
/// hasher's per-call overhead is most of the cost for a few short labels.
struct HashInput {
    buffer: [u8; 512],
    len: usize,
    /// Takes over when the input outgrows the buffer.
    stream: Option<xxhash_rust::xxh64::Xxh64>,
}

impl Default for HashInput {
    fn default() -> Self {
        HashInput { buffer: [0; 512], len: 0, stream: None }
    }
}

impl HashInput {
    fn push(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buffer.len() {
            let stream = self.stream.get_or_insert_with(|| xxhash_rust::xxh64::Xxh64::new(0));
            stream.update(&self.buffer[..self.len]);
            self.len = 0;
            if bytes.len() > self.buffer.len() {
                stream.update(bytes);
                return;
            }
        }
        self.buffer[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn digest(mut self) -> u64 {
        match self.stream.take() {
            Some(mut stream) => {
                stream.update(&self.buffer[..self.len]);
                stream.digest()
            }
            None => xxhash64(&self.buffer[..self.len]),
        }
    }
}

/// The node a target runs on, by the reference allocator's rules: the first
/// non-empty of `__meta_kubernetes_{pod_node_name,node_name,endpoint_node_name}`,
/// else `__meta_kubernetes_endpointslice_address_target_name` when
/// `..._target_kind` is `Node`. `label_sets` are searched
/// in order; a name present in an earlier set hides it in later ones.
///
/// One pass over the names, with the candidates' shared prefix checked first:
/// per-node strategies ask this for every target of every call.
pub fn node_name<'a, const N: usize>(label_sets: [&'a Labels; N]) -> Option<&'a str> {
    let mut found: [Option<&'a str>; 5] = [None; 5];
    for labels in label_sets {
        let meta = &labels.pairs[labels.meta.0 as usize..labels.meta.1 as usize];
        let kubernetes = meta.partition_point(|(n, _)| &**n < "__meta_kubernetes_");
        for (name, value) in &meta[kubernetes..] {
            let Some(rest) = name.strip_prefix("__meta_kubernetes_") else { break };
            let slot = match rest {
                "pod_node_name" => 0,
                "node_name" => 1,
                "endpoint_node_name" => 2,
                "endpointslice_address_target_kind" => 3,
                "endpointslice_address_target_name" => 4,
                _ => continue,
            };
            found[slot].get_or_insert(value.as_str());
        }
    }
    if let Some(node) = found[..3].iter().flatten().find(|v| !v.is_empty()) {
        return Some(node);
    }
    if found[3] == Some("Node") {
        return found[4].filter(|v| !v.is_empty());
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
    fn hinted_lookups_agree_with_searches_whatever_the_layouts() {
        // Sets of differing layouts in turn, so hints are right, stale and missing.
        let sets = [
            labels(&[("a", "1"), ("c", "3"), ("e", "5")]),
            labels(&[("a", "1"), ("c", "3"), ("e", "5")]),
            labels(&[("a", "x"), ("b", "2"), ("c", "y"), ("e", "z")]),
            labels(&[("c", "only")]),
            labels(&[]),
            labels(&[("b", "2"), ("d", "4")]),
            labels(&[("a", "1"), ("c", "3"), ("e", "5")]),
            labels(&[("d", "4"), ("f", "6")]),
        ];
        let names: Vec<LabelName> = ["a", "b", "c", "d", "e", "f", "0", "z"].map(intern).to_vec();
        let mut hints = vec![NameHint::default(); names.len()];
        for _round in 0..3 {
            for set in &sets {
                for (name, hint) in names.iter().zip(&mut hints) {
                    assert_eq!(set.get_hinted(name, hint), set.get(name), "{name} in {set:?}");
                }
            }
        }
    }

    #[test]
    fn labels_sort_and_last_duplicate_wins() {
        let l = labels(&[("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "2"), ("b", "3")]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn non_meta_skips_exactly_the_meta_run() {
        let l = labels(&[
            ("__meta_a", "1"),
            ("__address__", "x"),
            ("__meta", "2"),
            ("__metax", "3"),
            ("job", "j"),
        ]);
        let names: Vec<&str> = l.non_meta().map(|(n, _)| &**n).collect();
        assert_eq!(names, ["__address__", "__meta", "__metax", "job"]);
        assert_eq!(labels(&[("__meta_a", "1")]).non_meta().count(), 0);
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
        // Inputs longer than the stack buffer hash the same as in one piece.
        let long = "v".repeat(700);
        let c = labels(&[("__address__", "x:1"), ("long", &long), ("z", "1")]);
        let mut bytes = Vec::new();
        for piece in ["__address__", "x:1", "long", &long, "z", "1"] {
            bytes.extend_from_slice(piece.as_bytes());
            bytes.push(0xff);
        }
        bytes.extend_from_slice(b"j");
        let expected = xxhash64(&bytes);
        assert_eq!(identity_hash(c.iter(), "j"), expected);
    }

    #[test]
    fn node_follows_the_reference_precedence() {
        let node = |pairs: &[(&str, &str)]| node_name([&labels(pairs)]).map(str::to_string);
        assert_eq!(node(&[("__meta_kubernetes_pod_node_name", "n1")]).as_deref(), Some("n1"));
        assert_eq!(
            node(&[
                ("__meta_kubernetes_pod_node_name", ""),
                ("__meta_kubernetes_endpoint_node_name", "n3"),
                ("__meta_kubernetes_node_name", "n2"),
            ])
            .as_deref(),
            Some("n2")
        );
        let slice = [
            ("__meta_kubernetes_endpointslice_address_target_kind", "Node"),
            ("__meta_kubernetes_endpointslice_address_target_name", "n4"),
        ];
        assert_eq!(node(&slice).as_deref(), Some("n4"));
        let pod_slice = [
            ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
            ("__meta_kubernetes_endpointslice_address_target_name", "p"),
            ("__meta_kubernetes_endpointslice_endpoint_node_name", "n5"),
        ];
        assert_eq!(node(&pod_slice), None);
    }

    #[test]
    fn target_merges_its_labels_over_its_groups() {
        let group = Arc::new(TargetGroup {
            labels: labels(&[
                ("__address__", "group:1"),
                ("__meta_kubernetes_pod_node_name", "n1"),
                ("z", "g"),
            ]),
            targets: vec![labels(&[("__address__", "10.0.0.1:9100"), ("a", "t")])],
        });
        let t = Target::in_group("job".into(), group.clone(), 0, 7, next_version());
        assert_eq!(t.address(), "10.0.0.1:9100", "a target's own label wins");
        assert_eq!(t.address_hash, xxhash64(b"10.0.0.1:9100"));
        assert_eq!(t.node(), Some("n1"));
        assert_eq!(
            t.labels().collect::<Vec<_>>(),
            [
                ("__address__", "10.0.0.1:9100"),
                ("__meta_kubernetes_pod_node_name", "n1"),
                ("a", "t"),
                ("z", "g")
            ]
        );
        // Equal labels from another group are the same target.
        let copy = Target::in_group("job".into(), Arc::new((*group).clone()), 0, 7, next_version());
        assert_eq!(t, copy);
        let alone = Target::new("job".into(), labels(&[("__address__", "10.0.0.1:9100")]), 7);
        assert_ne!(t, alone);
    }
}
