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
    let mut next_major = bucket_starts(items, major_buckets, &major);
    let mut next_minor = bucket_starts(items, minor_buckets, &minor);
    let mut by_minor = items.to_vec();
    scatter(items, &mut by_minor, &mut next_minor, minor);
    scatter(&by_minor, items, &mut next_major, major);
}

/// Where each key's items start in sorted order (one entry more than buckets).
fn bucket_starts<T>(items: &[T], buckets: usize, key: impl Fn(&T) -> usize) -> Vec<usize> {
    let mut starts = vec![0usize; buckets + 1];
    for item in items {
        starts[key(item) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    starts
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
}
