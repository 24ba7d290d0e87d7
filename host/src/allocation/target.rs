//! Targets and collectors as allocation sees them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use target_allocator_sdk::hash::xxhash64;

use super::values::{PackedValues, Values};
use crate::label_order::{LabelName, compare_names, intern};
use crate::prefetch::prefetch_lines;

/// Lines [`TargetGroup::prefetch`] loads of the list of targets: a few
/// dozen targets' entries, more than most groups have.
const TARGET_LIST_LINES: usize = 8;

/// The names of a label set, sorted and unique, shared by every set with
/// the same names (interned when a label set is built). Targets discovered
/// alike (the pods of one workload, the endpoints of one service) share one
/// layout, so per-layout work — where a name sits, what identity reads — is
/// done once per layout instead of once per target, and each target stores
/// only its values.
#[derive(Debug)]
pub struct Layout {
    /// Interned: equal names are the same pointer.
    names: Box<[LabelName]>,
    /// Where the `__meta_*` names sit (contiguous, as names are sorted):
    /// identity skips them without searching.
    meta: (u32, u32),
}

impl PartialEq for Layout {
    fn eq(&self, other: &Layout) -> bool {
        self.names.len() == other.names.len()
            && self.names.iter().zip(&*other.names).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for Layout {}

impl std::hash::Hash for Layout {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for name in &*self.names {
            std::ptr::hash(Arc::as_ptr(name).cast::<u8>(), state);
        }
    }
}

/// Every layout in use, once; see [`Layout::intern`].
static LAYOUTS: Mutex<Option<LayoutTable>> = Mutex::new(None);

#[derive(Default)]
struct LayoutTable {
    layouts: HashSet<Arc<Layout>>,
    /// Layouts no label set uses are dropped when the table doubles past this.
    prune_at: usize,
}

impl Layout {
    /// The shared layout of `names` (sorted, unique, interned).
    fn intern(names: Vec<LabelName>) -> Arc<Layout> {
        // '`' follows '_': every `__meta_*` name sorts in ["__meta_", "__meta`").
        let start = names.partition_point(|n| &**n < "__meta_");
        let end = start + names[start..].partition_point(|n| &**n < "__meta`");
        let layout = Layout { names: names.into_boxed_slice(), meta: (start as u32, end as u32) };
        let mut table = LAYOUTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let table = table.get_or_insert_with(LayoutTable::default);
        if let Some(shared) = table.layouts.get(&layout) {
            return shared.clone();
        }
        if table.layouts.len() >= table.prune_at {
            // Unlike names, layouts come and go with workloads: forget unused ones.
            table.layouts.retain(|layout| Arc::strong_count(layout) > 1);
            table.prune_at = (table.layouts.len() * 2).max(1024);
        }
        let shared = Arc::new(layout);
        table.layouts.insert(shared.clone());
        shared
    }

    pub fn names(&self) -> &[LabelName] {
        &self.names
    }

    /// The range of `names()` outside which no name starts with `__meta_`.
    pub fn meta_range(&self) -> std::ops::Range<usize> {
        self.meta.0 as usize..self.meta.1 as usize
    }

    /// The position of each of `wanted` (sorted, interned) in this layout.
    pub fn positions(&self, wanted: &[LabelName]) -> Vec<Option<u32>> {
        let mut at = 0;
        wanted
            .iter()
            .map(|name| {
                at += self.names[at..].partition_point(|n| compare_names(n, name).is_lt());
                (self.names.get(at).is_some_and(|n| Arc::ptr_eq(n, name))).then_some(at as u32)
            })
            .collect()
    }
}

/// A label set, sorted by name, names unique.
#[derive(Clone, Debug)]
pub struct Labels {
    layout: Arc<Layout>,
    /// By position in the layout.
    values: PackedValues,
}

impl Default for Labels {
    fn default() -> Self {
        Labels::from_sorted(Vec::new())
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        (Arc::ptr_eq(&self.layout, &other.layout) || *self.layout == *other.layout)
            && self.values == other.values
    }
}

impl Eq for Labels {}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.layout.hash(state);
        self.values.hash(state);
    }
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
        let names = pairs.iter().map(|(n, _)| intern(n)).collect();
        let values = PackedValues::new(pairs.iter().map(|(_, v)| v.as_str()));
        Labels { layout: Layout::intern(names), values }
    }

    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// See [`PackedValues::prefetch`].
    pub fn prefetch(&self) {
        self.values.prefetch();
    }

    /// The value at `position` of the layout.
    pub fn value_at(&self, position: u32) -> &str {
        self.values.get(position as usize)
    }

    /// The labels outside the `__meta_*` run (contiguous, as names are sorted).
    pub fn non_meta(&self) -> NonMeta<'_> {
        let meta = self.layout.meta_range();
        self.pairs_in(0..meta.start).chain(self.pairs_in(meta.end..self.values.len()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let names = &self.layout.names;
        names.binary_search_by(|n| compare_names(n, name)).ok().map(|i| self.values.get(i))
    }

    /// `get("__address__")`, the label most asked for (once per discovered
    /// target): it sorts first in nearly every target's own labels, and
    /// names are interned, so a pointer comparison finds it.
    pub fn address(&self) -> Option<&str> {
        static ADDRESS: std::sync::LazyLock<LabelName> = std::sync::LazyLock::new(|| intern("__address__"));
        match self.layout.names.first() {
            Some(first) if Arc::ptr_eq(first, &ADDRESS) => Some(self.values.get(0)),
            _ => self.get("__address__"),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs().map(|(n, v)| (&**n, v))
    }

    fn pairs(&self) -> Pairs<'_> {
        self.pairs_in(0..self.values.len())
    }

    fn pairs_in(&self, range: std::ops::Range<usize>) -> Pairs<'_> {
        self.layout.names[range.clone()].iter().zip(self.values.range(range))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
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
    /// Starts loading the group's labels and its list of targets (not the
    /// targets' labels: see [`Labels::prefetch`]).
    pub fn prefetch(&self) {
        self.labels.prefetch();
        prefetch_lines(&self.targets, TARGET_LIST_LINES);
    }

    /// The merged labels of target `index`, in name order.
    pub fn target_labels(&self, index: usize) -> MergedLabels<'_> {
        Merged::new(self.labels.pairs(), self.targets[index].pairs())
    }

    /// The merged labels of target `index` minus `__meta_*`, in name order:
    /// what identity hashes, found without walking the meta labels.
    pub fn target_labels_without_meta(&self, index: usize) -> Merged<NonMeta<'_>, NonMeta<'_>> {
        Merged::new(self.labels.non_meta(), self.targets[index].non_meta())
    }
}

/// A label set's (name, value) pairs in name order.
pub type Pairs<'a> = std::iter::Zip<std::slice::Iter<'a, LabelName>, Values<'a>>;

/// Sorted labels without the `__meta_*` run.
pub type NonMeta<'a> = std::iter::Chain<Pairs<'a>, Pairs<'a>>;

/// A group's labels merged with one target's own.
pub type MergedLabels<'a> = Merged<Pairs<'a>, Pairs<'a>>;

/// Two sorted label lists merged in name order, the second winning on equal names.
pub struct Merged<G: Iterator, O: Iterator> {
    group: std::iter::Peekable<G>,
    own: std::iter::Peekable<O>,
}

impl<'a, G, O> Merged<G, O>
where
    G: Iterator<Item = (&'a LabelName, &'a str)>,
    O: Iterator<Item = (&'a LabelName, &'a str)>,
{
    fn new(group: G, own: O) -> Self {
        Merged { group: group.peekable(), own: own.peekable() }
    }
}

impl<'a, G, O> Iterator for Merged<G, O>
where
    G: Iterator<Item = (&'a LabelName, &'a str)>,
    O: Iterator<Item = (&'a LabelName, &'a str)>,
{
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let take_own = match (self.group.peek(), self.own.peek()) {
            (None, None) => return None,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(g), Some(o)) => match compare_names(g.0, o.0) {
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => {
                    self.group.next();
                    true
                }
            },
        };
        let (name, value) = if take_own { self.own.next() } else { self.group.next() }?;
        Some((&**name, value))
    }
}

/// Gives every processed group's targets a version no other target had, so
/// a serving slice can tell whether its targets were re-discovered.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

/// Versions a thread takes from [`NEXT_VERSION`] at a time: threads
/// processing groups in parallel would otherwise contend for its cache line
/// once per group.
const VERSION_BLOCK: u64 = 4096;

thread_local! {
    /// This thread's unused versions: `next..end`.
    static VERSIONS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// A fresh target version (see [`Target::version`]).
pub fn next_version() -> u64 {
    VERSIONS.with(|block| {
        let (mut next, mut end) = block.get();
        if next == end {
            next = NEXT_VERSION.fetch_add(VERSION_BLOCK, AtomicOrdering::Relaxed);
            end = next + VERSION_BLOCK;
        }
        block.set((next + 1, end));
        next
    })
}

/// One scrape target: one entry of a discovered group, with its identity.
/// Its job is not here: a delta names its job, and the allocator keeps each
/// target's job by number (a name per target would be 16 bytes and a
/// shared count touched per target).
#[derive(Clone, Debug)]
pub struct Target {
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
    pub fn in_group(group: Arc<TargetGroup>, index: usize, identity: u64, version: u64) -> Target {
        let mut target = Target { group, index: index as u32, identity, address_hash: 0, version };
        target.address_hash = xxhash64(target.address().as_bytes());
        target
    }

    /// A target alone in its group.
    pub fn new(labels: Labels, identity: u64) -> Target {
        let group = TargetGroup { labels: Labels::default(), targets: vec![labels] };
        Target::in_group(Arc::new(group), 0, identity, next_version())
    }

    /// The target's position in its discovered group.
    pub fn index(&self) -> usize {
        self.index as usize
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
        let own = &self.group.targets[self.index as usize];
        own.address().or_else(|| self.group.labels.address()).unwrap_or_default()
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
        // The identity hashes the job name as well.
        self.identity == other.identity
            && ((Arc::ptr_eq(&self.group, &other.group) && self.index == other.index)
                || self.labels().eq(other.labels()))
    }
}

impl Eq for Target {}

/// The reference allocator's target identity: xxhash64 over the labels in
/// name order, skipping `__meta_*`, each as name 0xFF value 0xFF, then the job name.
pub fn identity_hash<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>, job: &str) -> u64 {
    let mut input = IdentityInput::default();
    for (name, value) in labels {
        if !name.starts_with("__meta_") {
            input.label(name, value);
        }
    }
    input.finish(job)
}

/// The bytes [`identity_hash`] hashes, gathered and hashed in one go (the
/// streaming hasher's per-call overhead is most of the cost for a few short
/// labels). Reusable: hot loops keep one and [`clear`](Self::clear) it.
#[derive(Debug)]
pub struct IdentityInput {
    bytes: Vec<u8>,
}

impl Default for IdentityInput {
    fn default() -> Self {
        // A typical target's labels fit: no regrowth while appending.
        IdentityInput { bytes: Vec::with_capacity(512) }
    }
}

impl IdentityInput {
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Appends one label; the caller skips `__meta_*` and keeps name order.
    pub fn label(&mut self, name: &str, value: &str) {
        push_key(&mut self.bytes, name);
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.push(0xff);
    }

    /// A label name as [`keyed`](Self::keyed) appends it, for callers that
    /// append the same names for many targets.
    pub fn key(name: &str) -> Box<[u8]> {
        let mut key = Vec::with_capacity(name.len() + 1);
        push_key(&mut key, name);
        key.into_boxed_slice()
    }

    /// Appends one label whose name is given as its [`key`](Self::key).
    pub fn keyed(&mut self, key: &[u8], value: &str) {
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.push(0xff);
    }

    /// Appends bytes gathered by another input (labels in their place).
    pub fn append(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// The bytes appended so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The identity of the labels appended, for `job`.
    pub fn finish(&mut self, job: &str) -> u64 {
        self.bytes.extend_from_slice(job.as_bytes());
        self.hash()
    }

    /// The identity of the bytes appended, the job name being among them.
    pub fn hash(&self) -> u64 {
        xxhash64(&self.bytes)
    }
}

/// A label name as identity hashes it: the name, then 0xFF.
fn push_key(bytes: &mut Vec<u8>, name: &str) {
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(0xff);
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
        let meta = labels.layout.meta_range();
        let kubernetes =
            meta.start + labels.layout.names[meta].partition_point(|n| &**n < "__meta_kubernetes_");
        for (name, value) in labels.pairs_in(kubernetes..labels.len()) {
            let Some(rest) = name.strip_prefix("__meta_kubernetes_") else { break };
            let slot = match rest {
                "pod_node_name" => 0,
                "node_name" => 1,
                "endpoint_node_name" => 2,
                "endpointslice_address_target_kind" => 3,
                "endpointslice_address_target_name" => 4,
                _ => continue,
            };
            found[slot].get_or_insert(value);
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

    #[test]
    fn identity_input_holds_its_pieces_in_order_whatever_their_lengths() {
        let text: Vec<u8> = (0..600u32).map(|i| (i * 37 % 251) as u8).collect();
        let mut input = IdentityInput::default();
        let mut expected = Vec::new();
        // Every short length, then runs that outgrow the first buffer.
        for (round, n) in (0..=70).chain([300, 0, 5, 590]).enumerate() {
            let piece = &text[round % 7..][..n];
            input.append(piece);
            expected.extend_from_slice(piece);
            assert_eq!(input.bytes(), expected, "after a piece of {n} bytes");
        }
        assert_eq!(input.hash(), xxhash64(&expected));
        input.clear();
        input.label("a", "b");
        assert_eq!(input.bytes(), b"a\xffb\xff");
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
    }

    #[test]
    fn equal_names_share_a_layout_and_positions_follow_it() {
        let a = labels(&[("a", "1"), ("c", "3"), ("e", "5")]);
        let b = labels(&[("e", "x"), ("a", "y"), ("c", "z")]);
        assert!(Arc::ptr_eq(a.layout(), b.layout()), "the same names, one layout");
        assert!(!Arc::ptr_eq(a.layout(), labels(&[("a", "1")]).layout()));
        let wanted: Vec<LabelName> = ["0", "a", "b", "c", "e", "f"].map(intern).to_vec();
        let positions = b.layout().positions(&wanted);
        assert_eq!(positions, [None, Some(0), None, Some(1), Some(2), None]);
        let values: Vec<Option<&str>> = positions.iter().map(|p| p.map(|p| b.value_at(p))).collect();
        let searched: Vec<Option<&str>> = wanted.iter().map(|n| b.get(n)).collect();
        assert_eq!(values, searched);
        assert_eq!(labels(&[]).layout().positions(&wanted), [None; 6]);
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
        // Long inputs hash the same as in one piece.
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
        let t = Target::in_group(group.clone(), 0, 7, next_version());
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
        let copy = Target::in_group(Arc::new((*group).clone()), 0, 7, next_version());
        assert_eq!(t, copy);
        let alone = Target::new(labels(&[("__address__", "10.0.0.1:9100")]), 7);
        assert_ne!(t, alone);
        // The address from the group when the target has none, and where a
        // name sorts before it.
        let group = Arc::new(TargetGroup {
            labels: labels(&[("Zone", "z"), ("__address__", "group:1")]),
            targets: vec![labels(&[("Zone", "t")]), labels(&[])],
        });
        for index in 0..2 {
            let t = Target::in_group(group.clone(), index, 7, next_version());
            assert_eq!(t.address(), "group:1");
            assert_eq!(t.address_hash, xxhash64(b"group:1"));
        }
        assert_eq!(group.labels.address(), group.labels.get("__address__"));
        assert_eq!(labels(&[("a", "b")]).address(), None);
    }
}
