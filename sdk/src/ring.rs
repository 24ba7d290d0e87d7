//! The reference allocator's consistent-hashing ring, reproduced exactly.
//!
//! The reference (OpenTelemetry Operator target allocator) uses the Go library
//! `buraksezer/consistent` with 1061 partitions, 5 replicas per member, load
//! factor 1.1 and xxhash64. Keys map to partitions by `hash % partitions`;
//! partitions map to members by walking a ring of replica points clockwise
//! from the partition's own hash until a member below the load cap is found.
//! Reproducing it bit for bit lets a fleet migrate between the reference and
//! this allocator, or run both, without moving targets.
//!
//! Two library versions produced different rings; [`ReplicaKeyFormat`] selects one.

use crate::hash::xxhash64;

/// How replica point keys are spelled, which decides where points land.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplicaKeyFormat {
    /// `"<index>:<name>"` with a float average load: `buraksezer/consistent`
    /// v1.0.0, used by reference releases since 2026-08-20.
    #[default]
    IndexColonName,
    /// `"<name><index>"` with an integer-division average load: v0.10.0, used by
    /// every earlier reference release. With more than ten replicas its keys can
    /// collide (`node1`+`11` and `node11`+`1`), and it supports at most
    /// `partitions` members.
    NameIndex,
}

/// Ring parameters. [`RingConfig::default`] is the reference's configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RingConfig {
    pub partitions: u32,
    pub replicas: u32,
    pub load: f64,
    pub format: ReplicaKeyFormat,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig { partitions: 1061, replicas: 5, load: 1.1, format: ReplicaKeyFormat::IndexColonName }
    }
}

/// Why a ring could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The walk found no member below the load cap. The reference library
    /// panics here; with the legacy format this happens as soon as there are
    /// more members than partitions.
    NoRoom { partition: u32, members: usize },
    /// The configuration cannot build a ring (zero partitions or replicas).
    InvalidConfig(&'static str),
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::NoRoom { partition, members } => write!(
                f,
                "no collector has room for partition {partition} with {members} collectors \
                 (the legacy ring format supports at most as many collectors as partitions)"
            ),
            RingError::InvalidConfig(why) => write!(f, "invalid ring configuration: {why}"),
        }
    }
}

impl std::error::Error for RingError {}

/// Partition → member table. Lookups are one modulo and one array read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRing {
    owners: Vec<u32>,
}

impl PartitionRing {
    /// Builds the ring for `members` (names must be unique). Member `i` of the
    /// slice is reported as owner `i`. Returns an empty ring without members.
    ///
    /// Members are added in slice order, which matters only when two replica
    /// points hash equally: the later member then owns both points, as in the
    /// library (where the reference's order is Go map order, i.e. random).
    pub fn build<S: AsRef<str>>(members: &[S], config: &RingConfig) -> Result<Self, RingError> {
        if config.partitions == 0 || config.replicas == 0 {
            return Err(RingError::InvalidConfig("partitions and replicas must be positive"));
        }
        if members.is_empty() {
            return Ok(PartitionRing { owners: Vec::new() });
        }
        let points = ring_points(members, config);
        let average = average_load(config, members.len());
        // The legacy library gives up one position before it has seen them all.
        let max_visits = match config.format {
            ReplicaKeyFormat::IndexColonName => points.len(),
            ReplicaKeyFormat::NameIndex => points.len() - 1,
        };
        let mut loads = vec![0u32; members.len()];
        let mut owners = Vec::with_capacity(config.partitions as usize);
        for partition in 0..config.partitions {
            let key = xxhash64(&u64::from(partition).to_le_bytes());
            let mut idx = points.partition_point(|&(h, _)| h < key);
            if idx == points.len() {
                idx = 0;
            }
            let mut visits = 0;
            let owner = loop {
                if visits == max_visits {
                    return Err(RingError::NoRoom { partition, members: members.len() });
                }
                visits += 1;
                let member = points[idx].1;
                if f64::from(loads[member as usize] + 1) <= average {
                    break member;
                }
                idx = if idx + 1 == points.len() { 0 } else { idx + 1 };
            };
            loads[owner as usize] += 1;
            owners.push(owner);
        }
        Ok(PartitionRing { owners })
    }

    /// The member owning `key_hash` (e.g. xxhash64 of a target address), or
    /// `None` for an empty ring.
    #[inline]
    pub fn owner(&self, key_hash: u64) -> Option<u32> {
        if self.owners.is_empty() {
            return None;
        }
        Some(self.owners[(key_hash % self.owners.len() as u64) as usize])
    }

    /// Owner of each partition, by partition id.
    pub fn partition_owners(&self) -> &[u32] {
        &self.owners
    }
}

/// The sorted replica points as (hash, member). Equal hashes keep one entry
/// each (the library's sorted set holds duplicates) but all point to the
/// member added last, since the library's hash → member map is overwritten.
fn ring_points<S: AsRef<str>>(members: &[S], config: &RingConfig) -> Vec<(u64, u32)> {
    let mut points = Vec::with_capacity(members.len() * config.replicas as usize);
    let mut key = String::new();
    for (m, name) in members.iter().enumerate() {
        for i in 0..config.replicas {
            key.clear();
            use std::fmt::Write;
            let _ = match config.format {
                ReplicaKeyFormat::IndexColonName => write!(key, "{i}:{}", name.as_ref()),
                ReplicaKeyFormat::NameIndex => write!(key, "{}{i}", name.as_ref()),
            };
            points.push((xxhash64(key.as_bytes()), m as u32));
        }
    }
    // Stable by hash, then member order: the last entry of an equal-hash run is
    // the member added last.
    points.sort_unstable();
    let mut run_start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].0 != points[run_start].0 {
            let last = points[i - 1].1;
            for p in &mut points[run_start..i] {
                p.1 = last;
            }
            run_start = i;
        }
    }
    points
}

fn average_load(config: &RingConfig, members: usize) -> f64 {
    let average = match config.format {
        ReplicaKeyFormat::IndexColonName => f64::from(config.partitions) / members as f64,
        ReplicaKeyFormat::NameIndex => (u64::from(config.partitions) / members as u64) as f64,
    };
    (average * config.load).ceil()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("collector-{i}")).collect()
    }

    #[test]
    fn every_partition_has_an_owner_within_the_cap() {
        for n in [1, 2, 3, 7, 15, 100, 300] {
            let ring = PartitionRing::build(&names(n), &RingConfig::default()).unwrap();
            let mut loads = vec![0u32; n];
            for &o in ring.partition_owners() {
                loads[o as usize] += 1;
            }
            let cap = (1061.0 / n as f64 * 1.1f64).ceil() as u32;
            assert!(loads.iter().all(|&l| l <= cap), "n={n}");
            assert_eq!(loads.iter().sum::<u32>(), 1061);
        }
    }

    #[test]
    fn owner_depends_on_the_member_set_not_its_order() {
        let a = names(20);
        let mut b = a.clone();
        b.reverse();
        let ra = PartitionRing::build(&a, &RingConfig::default()).unwrap();
        let rb = PartitionRing::build(&b, &RingConfig::default()).unwrap();
        for p in 0..1061u64 {
            let oa = &a[ra.owner(p).unwrap() as usize];
            let ob = &b[rb.owner(p).unwrap() as usize];
            assert_eq!(oa, ob);
        }
    }

    #[test]
    fn legacy_format_refuses_more_members_than_partitions() {
        let config = RingConfig { format: ReplicaKeyFormat::NameIndex, ..RingConfig::default() };
        assert!(PartitionRing::build(&names(1061), &config).is_ok());
        assert!(matches!(PartitionRing::build(&names(1062), &config), Err(RingError::NoRoom { .. })));
        // The current format spreads any number of members (most idle).
        assert!(PartitionRing::build(&names(1500), &RingConfig::default()).is_ok());
    }

    #[test]
    fn legacy_colliding_replica_keys_go_to_the_member_added_last() {
        // With more than ten replicas, "node1" replica 11 and "node11" replica 1
        // are both the key "node111". (With the reference's 5 replicas, keys of
        // distinct names cannot collide.)
        let config =
            RingConfig { format: ReplicaKeyFormat::NameIndex, replicas: 12, ..RingConfig::default() };
        let ring = PartitionRing::build(&["node1", "node11"], &config).unwrap();
        let points = ring_points(&["node1", "node11"], &config);
        let h = xxhash64(b"node111");
        let owners: Vec<u32> = points.iter().filter(|p| p.0 == h).map(|p| p.1).collect();
        assert_eq!(owners, vec![1, 1]);
        assert_eq!(ring.partition_owners().len(), 1061);
    }

    #[test]
    fn empty_ring_owns_nothing() {
        let ring = PartitionRing::build::<&str>(&[], &RingConfig::default()).unwrap();
        assert_eq!(ring.owner(42), None);
    }
}
