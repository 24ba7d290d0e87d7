//! Linear-time sorts for the allocator's large batches.
//!
//! A start-up or a collector change sorts every target twice: the strategy's
//! batch by identity, and the serving index by (job, collector). Comparison
//! sorts spent a fifth of a 100k-target pass there; keys here are integers
//! with known bounds, so counting sorts do it in a few linear passes.

/// Below this many items a comparison sort is as fast and allocates nothing.
const SMALL: usize = 512;

/// Bits of the key each counting pass of [`sort_by_u64_key`] orders by:
/// 2048 buckets, whose counts and write positions stay in the L1 cache.
const DIGIT_BITS: u32 = 11;

/// Sorts `items` by a `u64` key; equal keys keep their order.
///
/// Made for keys spread evenly over the whole range, as identities are
/// (xxhash64 digests): two counting passes (a radix sort over the leading
/// 22 bits, the lower digit first) leave only items that share those bits
/// out of order, runs of one or two items, each then sorted on its own.
/// Small digits keep every bucket's count and write position in the cache;
/// one pass over the leading 16 bits would scatter the items through a
/// count table larger than the cache, two misses an item. Other keys are
/// still sorted correctly, by the per-run sort, only not in linear time.
pub fn sort_by_u64_key<T: Copy>(items: &mut [T], key: impl Fn(&T) -> u64) {
    if items.len() < SMALL {
        items.sort_by_key(|item| key(item));
        return;
    }
    const BUCKETS: usize = 1 << DIGIT_BITS;
    let leading = |item: &T| key(item) >> (u64::BITS - 2 * DIGIT_BITS);
    let high = |item: &T| (leading(item) >> DIGIT_BITS) as usize;
    let low = |item: &T| leading(item) as usize & (BUCKETS - 1);
    sort_by_small_keys(items, (BUCKETS, high), (BUCKETS, low));
    for run in items.chunk_by_mut(|a, b| leading(a) == leading(b)) {
        if run.len() > 1 {
            run.sort_by_key(|item| key(item));
        }
    }
}

/// Sorts `items` by (`major`, `minor`), two keys below their bucket counts;
/// items equal in both keep their order (two stable counting sorts, the
/// minor key first, with one copy of the items).
pub fn sort_by_small_keys<T: Copy>(
    items: &mut [T],
    (major_buckets, major): (usize, impl Fn(&T) -> usize),
    (minor_buckets, minor): (usize, impl Fn(&T) -> usize),
) {
    if items.len() < SMALL {
        items.sort_by_key(|item| (major(item), minor(item)));
        return;
    }
    // Both keys counted in one pass over the items.
    let mut next_major = vec![0usize; major_buckets + 1];
    let mut next_minor = vec![0usize; minor_buckets + 1];
    for item in &*items {
        next_major[major(item) + 1] += 1;
        next_minor[minor(item) + 1] += 1;
    }
    running_sums(&mut next_major);
    running_sums(&mut next_minor);
    let mut by_minor = items.to_vec();
    scatter(items, &mut by_minor, &mut next_minor, minor);
    scatter(&by_minor, items, &mut next_major, major);
}

/// `items` grouped by a key below `buckets`, each item as `value(item)`:
/// the runs of equal keys in key order, items in their order within a run.
pub struct Grouped<U> {
    values: Vec<U>,
    /// (key, end in `values`) of each run, in key order.
    runs: Vec<(usize, usize)>,
}

impl<U> Grouped<U> {
    /// Groups with one stable counting sort, or a comparison sort for few
    /// items (whose cost does not grow with the number of buckets).
    pub fn by_small_key<T>(
        items: &[T],
        (buckets, key): (usize, impl Fn(&T) -> usize),
        value: impl Fn(&T) -> U,
    ) -> Grouped<U> {
        let Some(first) = items.first() else { return Grouped { values: Vec::new(), runs: Vec::new() } };
        if items.len() < SMALL {
            let mut keyed: Vec<(usize, U)> = items.iter().map(|item| (key(item), value(item))).collect();
            keyed.sort_by_key(|&(key, _)| key);
            let mut runs: Vec<(usize, usize)> = Vec::new();
            for (end, &(key, _)) in keyed.iter().enumerate() {
                match runs.last_mut() {
                    Some(run) if run.0 == key => run.1 = end + 1,
                    _ => runs.push((key, end + 1)),
                }
            }
            return Grouped { values: keyed.into_iter().map(|(_, value)| value).collect(), runs };
        }
        let mut starts = vec![0usize; buckets + 1];
        for item in items {
            starts[key(item) + 1] += 1;
        }
        running_sums(&mut starts);
        let runs = (0..buckets).filter(|&k| starts[k] < starts[k + 1]).map(|k| (k, starts[k + 1])).collect();
        // Every place is written once by the scatter; the first item's value
        // only fills them until then.
        let mut values: Vec<U> = (0..items.len()).map(|_| value(first)).collect();
        for item in items {
            let at = &mut starts[key(item)];
            values[*at] = value(item);
            *at += 1;
        }
        Grouped { values, runs }
    }

    /// Each key with its items.
    pub fn runs(&self) -> impl Iterator<Item = (usize, &[U])> {
        let starts = std::iter::once(0).chain(self.runs.iter().map(|&(_, end)| end));
        self.runs.iter().zip(starts).map(|(&(key, end), start)| (key, &self.values[start..end]))
    }
}

/// Appends `run` to `out` ordered by a key below `buckets`, items with
/// equal keys in their order. `counts` is scratch space, kept by callers
/// that append many runs. A counting sort when the run is large next to the
/// bucket count; otherwise a comparison sort of the appended items.
pub fn append_by_small_key<T: Copy>(
    out: &mut Vec<T>,
    run: &[T],
    (buckets, key): (usize, impl Fn(&T) -> usize),
    counts: &mut Vec<usize>,
) {
    let base = out.len();
    if run.len() < SMALL_RUN || run.len() * 2 < buckets {
        out.extend_from_slice(run);
        out[base..].sort_by_key(|item| key(item));
        return;
    }
    counts.clear();
    counts.resize(buckets + 1, 0);
    for item in run {
        counts[key(item) + 1] += 1;
    }
    running_sums(counts);
    out.resize(base + run.len(), run[0]);
    scatter(run, &mut out[base..], counts, key);
}

/// Below this many items, [`append_by_small_key`] sorts by comparison.
const SMALL_RUN: usize = 32;

/// Turns counts shifted by one place into where each key starts.
fn running_sums(counts: &mut [usize]) {
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
}

/// Puts each of `from` at the next place of its key in `to`, in order.
fn scatter<T: Copy>(from: &[T], to: &mut [T], next: &mut [usize], key: impl Fn(&T) -> usize) {
    for item in from {
        let at = &mut next[key(item)];
        to[*at] = *item;
        *at += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<(u64, u32)> {
        let mut x = seed;
        (0..n as u32)
            .map(|i| {
                x = target_allocator_sdk::hash::mix64(x.wrapping_add(0x9e37_79b9_7f4a_7c15));
                (x, i)
            })
            .collect()
    }

    #[test]
    fn identity_sort_orders_like_a_stable_sort() {
        for (n, bits) in [(0, 64), (10, 64), (5000, 64), (100_000, 64), (5000, 8), (20_000, 40), (50_000, 50)]
        {
            let mut items = pseudo_random(n, n as u64);
            for item in &mut items {
                item.0 &= u64::MAX >> (64 - bits);
            }
            let mut expected = items.clone();
            expected.sort_by_key(|item| item.0);
            sort_by_u64_key(&mut items, |item| item.0);
            assert_eq!(items, expected, "{n} keys of {bits} bits");
        }
    }

    #[test]
    fn counting_sorts_compose_into_an_order_by_both_keys() {
        let items: Vec<(usize, usize, u32)> = pseudo_random(6000, 7)
            .into_iter()
            .map(|(x, i)| ((x % 13) as usize, ((x >> 20) % 101) as usize, i))
            .collect();
        // Above and below the comparison-sort cutoff.
        for n in [items.len(), 300] {
            let mut expected = items[..n].to_vec();
            expected.sort_by_key(|&(major, minor, _)| (major, minor));
            let mut both = items[..n].to_vec();
            sort_by_small_keys(
                &mut both,
                (13, |item: &(usize, usize, u32)| item.0),
                (101, |item: &(usize, usize, u32)| item.1),
            );
            assert_eq!(both, expected, "{n} items");
        }
    }

    #[test]
    fn grouping_keeps_each_key_s_items_in_order() {
        let items: Vec<(usize, u32)> =
            pseudo_random(3000, 11).into_iter().map(|(x, i)| ((x % 997) as usize, i)).collect();
        // Counting (many items) and comparison (few) paths, and no items.
        for n in [items.len(), 100, 0] {
            let grouped =
                Grouped::by_small_key(&items[..n], (997, |item: &(usize, u32)| item.0), |item| item.1);
            let mut expected: Vec<(usize, Vec<u32>)> = Vec::new();
            let mut sorted = items[..n].to_vec();
            sorted.sort_by_key(|item| item.0);
            for run in sorted.chunk_by(|a, b| a.0 == b.0) {
                expected.push((run[0].0, run.iter().map(|item| item.1).collect()));
            }
            let runs: Vec<(usize, Vec<u32>)> = grouped.runs().map(|(key, run)| (key, run.to_vec())).collect();
            assert_eq!(runs, expected, "{n} items");
        }
    }

    #[test]
    fn appending_orders_the_run_by_key_after_what_was_there() {
        let items: Vec<(usize, u32)> =
            pseudo_random(500, 3).into_iter().map(|(x, i)| ((x % 40) as usize, i)).collect();
        let mut counts = Vec::new();
        // Counting (a long run, few buckets), comparison (a short run; many buckets).
        for (n, buckets) in [(500, 40), (10, 40), (100, 1000)] {
            let run: Vec<(usize, u32)> = items[..n].iter().map(|&(k, i)| (k % buckets, i)).collect();
            let mut out = vec![(usize::MAX, 0)];
            append_by_small_key(&mut out, &run, (buckets, |item: &(usize, u32)| item.0), &mut counts);
            let mut expected = run.clone();
            expected.sort_by_key(|item| item.0);
            assert_eq!(out[0], (usize::MAX, 0), "what was there stays");
            assert_eq!(out[1..], expected[..], "{n} items over {buckets} keys");
        }
    }
}
