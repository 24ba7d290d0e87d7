//! The allocator's identity → slot map: an open-addressing table in which
//! an identity's home position is its leading bits.
//!
//! Identities are xxhash64 digests, evenly spread, so their leading bits
//! serve as a hash. What that buys: a batch visited in identity order (as
//! the allocator visits every batch) sweeps the table from start to end.
//! A start-up pass looks up and inserts every target; in a general hash map
//! each of those is a cache miss into a table of megabytes, here they are a
//! sequential scan. Random lookups cost what they cost in any hash map.
//!
//! Linear probing, grown at three quarters full, with backward-shift
//! deletion (no tombstones, so lookups never slow down with churn).

/// Marks a free entry: slot indexes stay below it.
const FREE: u32 = u32::MAX;

/// Entries of the smallest table.
const MIN_ENTRIES: usize = 16;

#[derive(Clone, Debug)]
pub struct SlotIndex {
    /// (identity, slot); `slot == FREE` marks a free entry.
    entries: Vec<(u64, u32)>,
    len: usize,
    /// `64 - log2(entries.len())`: an identity's home is `identity >> shift`.
    shift: u32,
}

impl Default for SlotIndex {
    fn default() -> Self {
        SlotIndex::with_entries(MIN_ENTRIES)
    }
}

impl SlotIndex {
    fn with_entries(entries: usize) -> SlotIndex {
        debug_assert!(entries.is_power_of_two());
        SlotIndex { entries: vec![(0, FREE); entries], len: 0, shift: 64 - entries.trailing_zeros() }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    fn home(&self, identity: u64) -> usize {
        // A table of one entry would shift by 64: never smaller than MIN_ENTRIES.
        (identity >> self.shift) as usize
    }

    /// The position holding `identity`, or the free one ending its probe.
    fn find(&self, identity: u64) -> Result<usize, usize> {
        let mask = self.mask();
        let mut at = self.home(identity);
        loop {
            let (held, slot) = self.entries[at];
            if slot == FREE {
                return Err(at);
            }
            if held == identity {
                return Ok(at);
            }
            at = (at + 1) & mask;
        }
    }

    pub fn get(&self, identity: u64) -> Option<u32> {
        self.find(identity).ok().map(|at| self.entries[at].1)
    }

    /// Maps `identity` to `slot` (below `u32::MAX`), returning the slot it
    /// had. The allocator maps through [`entry`](Self::entry); the model
    /// test compares this with `HashMap::insert`.
    #[cfg(test)]
    fn insert(&mut self, identity: u64, slot: u32) -> Option<u32> {
        assert!(slot != FREE, "slot indexes stay below u32::MAX");
        match self.find(identity) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, slot)),
            Err(_) if self.len + 1 > self.entries.len() / 4 * 3 => {
                self.grow_for(self.len + 1);
                self.insert(identity, slot)
            }
            Err(at) => {
                self.entries[at] = (identity, slot);
                self.len += 1;
                None
            }
        }
    }

    /// The slot of `identity`, or the place to map it (one probe for a
    /// lookup followed by an insert).
    pub fn entry(&mut self, identity: u64) -> Result<u32, VacantEntry<'_>> {
        if self.len + 1 > self.entries.len() / 4 * 3 {
            self.grow_for(self.len + 1);
        }
        match self.find(identity) {
            Ok(at) => Ok(self.entries[at].1),
            Err(at) => Err(VacantEntry { index: self, at, identity }),
        }
    }

    /// Maps an empty index's identities to slots, given in identity order
    /// (distinct): one sweep of the table, each entry placed after the one
    /// before unless its home lies further on.
    pub fn fill_sorted(&mut self, entries: impl ExactSizeIterator<Item = (u64, u32)>) {
        assert!(self.is_empty(), "an empty index is filled");
        self.reserve(entries.len());
        let mut next = 0;
        for (identity, slot) in entries {
            assert!(slot != FREE, "slot indexes stay below u32::MAX");
            let at = self.home(identity).max(next);
            if at > self.mask() {
                // The run reached the table's end: the rest wrap around.
                let at = self.find(identity).expect_err("identities are distinct");
                self.entries[at] = (identity, slot);
            } else {
                debug_assert!(self.entries[at].1 == FREE, "sorted identities are placed in order");
                self.entries[at] = (identity, slot);
                next = at + 1;
            }
            self.len += 1;
        }
    }

    /// Makes room for `additional` more identities without growing.
    pub fn reserve(&mut self, additional: usize) {
        let wanted = self.len + additional;
        if wanted > self.entries.len() / 4 * 3 {
            self.grow_for(wanted);
        }
    }

    fn grow_for(&mut self, len: usize) {
        let entries = (len.div_ceil(3) * 4).next_power_of_two().max(MIN_ENTRIES);
        let old = std::mem::replace(self, SlotIndex::with_entries(entries));
        // The old table is in about home order: this too is a sweep.
        for (identity, slot) in old.entries.into_iter().filter(|&(_, slot)| slot != FREE) {
            let at = self.find(identity).expect_err("identities are unique");
            self.entries[at] = (identity, slot);
        }
        self.len = old.len;
    }

    /// Unmaps `identity`, returning its slot.
    pub fn remove(&mut self, identity: u64) -> Option<u32> {
        let mut hole = self.find(identity).ok()?;
        let slot = self.entries[hole].1;
        let mask = self.mask();
        // Move back each later entry of the run that the hole would cut
        // off from its home.
        let mut next = (hole + 1) & mask;
        while self.entries[next].1 != FREE {
            let home = self.home(self.entries[next].0);
            // Whether `home` lies cyclically in (hole, next]: then the entry
            // stays reachable where it is.
            let reachable =
                if hole <= next { hole < home && home <= next } else { hole < home || home <= next };
            if !reachable {
                self.entries[hole] = self.entries[next];
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.entries[hole] = (0, FREE);
        self.len -= 1;
        Some(slot)
    }
}

/// Where an identity that [`SlotIndex::entry`] did not find goes.
pub struct VacantEntry<'a> {
    index: &'a mut SlotIndex,
    at: usize,
    identity: u64,
}

impl VacantEntry<'_> {
    /// Maps the identity to `slot` (below `u32::MAX`).
    pub fn insert(self, slot: u32) {
        assert!(slot != FREE, "slot indexes stay below u32::MAX");
        self.index.entries[self.at] = (self.identity, slot);
        self.index.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Evenly spread numbers from `seed`, the same on every run.
    fn random(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state = target_allocator_sdk::hash::mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            state
        }
    }

    #[test]
    fn behaves_as_a_map_under_random_inserts_and_removals() {
        let mut next = random(7);
        // Identities from a small pool of clustered values (equal leading
        // bits: long probe runs that wrap around) and of spread ones.
        let pool: Vec<u64> = (0..600)
            .map(|i| {
                if i % 3 == 0 {
                    u64::MAX - (i as u64 % 40)
                } else if i % 3 == 1 {
                    i as u64
                } else {
                    next()
                }
            })
            .collect();
        let mut index = SlotIndex::default();
        let mut model: HashMap<u64, u32> = HashMap::new();
        for round in 0..20_000u32 {
            let identity = pool[(next() % pool.len() as u64) as usize];
            if next().is_multiple_of(3) {
                assert_eq!(index.remove(identity), model.remove(&identity), "round {round}");
            } else if next().is_multiple_of(2) {
                let slot = round % 1000;
                assert_eq!(index.insert(identity, slot), model.insert(identity, slot), "round {round}");
            } else {
                let slot = round % 1000;
                match index.entry(identity) {
                    Ok(held) => assert_eq!(Some(&held), model.get(&identity), "round {round}"),
                    Err(vacant) => {
                        assert!(!model.contains_key(&identity), "round {round}");
                        vacant.insert(slot);
                        model.insert(identity, slot);
                    }
                }
            }
            assert_eq!(index.len(), model.len());
            if round % 997 == 0 {
                for &identity in &pool {
                    assert_eq!(index.get(identity), model.get(&identity).copied(), "round {round}");
                }
            }
        }
        index.reserve(100_000);
        for (&identity, &slot) in &model {
            assert_eq!(index.get(identity), Some(slot));
        }
    }

    #[test]
    fn an_index_filled_in_order_finds_what_inserts_would() {
        let mut next = random(11);
        // Spread identities, and clusters at both ends of the table, whose
        // runs collide and wrap around from the last entry to the first.
        for count in [0, 1, 12, 13, 1000] {
            let mut identities: Vec<u64> = (0..count)
                .map(|i| match i % 4 {
                    0 => u64::MAX - i as u64,
                    1 => i as u64,
                    _ => next(),
                })
                .collect();
            identities.sort_unstable();
            identities.dedup();
            let mut filled = SlotIndex::default();
            filled
                .fill_sorted(identities.iter().enumerate().map(|(slot, &identity)| (identity, slot as u32)));
            assert_eq!(filled.len(), identities.len());
            for (slot, &identity) in identities.iter().enumerate() {
                assert_eq!(filled.get(identity), Some(slot as u32), "{count} identities");
            }
            // Still a working table: removals and inserts as ever.
            for &identity in identities.iter().step_by(2) {
                assert!(filled.remove(identity).is_some());
            }
            for (slot, &identity) in identities.iter().enumerate() {
                let expected = (slot % 2 == 1).then_some(slot as u32);
                assert_eq!(filled.get(identity), expected, "{count} identities after removals");
            }
            assert_eq!(filled.get(next()), None);
        }
    }
}
