//! Maps keyed by target identity or a dense index. Identities are already
//! xxhash64 digests, so hashing them again (SipHash, the std default) only
//! costs time; indexes need only spreading.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Passes a `u64` key through as its own hash.
#[derive(Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are meant to be hashed here; fold anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// Small integers (collector indexes) are spread over the high bits,
    /// which the hash table's probing relies on.
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;
pub type IdSet = HashSet<u64, BuildHasherDefault<IdentityHasher>>;
/// Keyed by a dense index (collector, job).
pub type IndexMap<V> = HashMap<u32, V, BuildHasherDefault<IdentityHasher>>;
