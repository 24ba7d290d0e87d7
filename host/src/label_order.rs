//! Label names: their order (bytewise, as Prometheus sorts them) and their
//! shared storage, used by relabeling and allocation, which both keep labels
//! sorted by name.
//!
//! Label sets are searched and merged by name for every target. Kubernetes
//! meta label names share long prefixes (`__meta_kubernetes_...`), so each
//! comparison scans many equal bytes; comparing eight bytes at a time inline
//! is several times cheaper than a `memcmp` call for names this short.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// A label name, shared: every target with a label of this name points at
/// the same bytes (see [`intern`]).
pub type LabelName = Arc<str>;

/// Every label name seen, once.
static NAMES: Mutex<Option<HashSet<Arc<str>>>> = Mutex::new(None);

/// The shared copy of `name`. Targets carry dozens of labels whose names
/// repeat across all of them; sharing the names saves most of a target's
/// label memory, and keeps the bytes that sorted lookups compare in cache.
/// Names are never forgotten: label names are few (a cluster's label keys),
/// unlike values.
pub fn intern(name: &str) -> LabelName {
    let mut names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(shared) = names.get(name) {
        return shared.clone();
    }
    let shared: Arc<str> = Arc::from(name);
    names.insert(shared.clone());
    shared
}

/// Compares two label names bytewise (the same order as `str::cmp`).
#[inline]
pub fn compare_names(a: &str, b: &str) -> Ordering {
    // Interned names are often the very same bytes.
    if std::ptr::eq(a, b) {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let common = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= common {
        let x = u64::from_be_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < common {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_names_are_shared() {
        let a = intern("__meta_kubernetes_pod_name");
        let b = intern(&String::from("__meta_kubernetes_pod_name"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(compare_names(&a, &b), Ordering::Equal);
    }

    #[test]
    fn agrees_with_str_order() {
        let names = [
            "",
            "a",
            "ab",
            "b",
            "__address__",
            "__meta_",
            "__meta_kubernetes_pod_name",
            "__meta_kubernetes_pod_node_name",
            "__meta_kubernetes_pod_node_namf",
            "__meta`",
            "job",
            "é",
            "zz",
            "__meta_kubernetes_endpointslice_address_target_kind",
            "__meta_kubernetes_endpointslice_address_target_name",
        ];
        for a in names {
            for b in names {
                assert_eq!(compare_names(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
