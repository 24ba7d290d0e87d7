//! Linear-time sorts for the allocator's large batches.
//!
//! A start-up or a collector change sorts every target twice: the strategy's
//! batch by identity, and the serving index by (job, collector). Comparison
//! sorts spent a fifth of a 100k-target pass there; keys here are integers
//! with known bounds, so counting and radix sorts do it in a few linear passes.

/// Below this many items a comparison sort is as fast and allocates nothing.
const SMALL: usize = 512;

/// Bits per radix digit: 256 write streams per pass stay cache-friendly.
const DIGIT_BITS: u32 = 8;

/// Sorts `items` by a `u64` key (least significant digit radix sort).
/// Equal keys keep their order.
pub fn sort_by_u64_key<T: Copy>(items: &mut Vec<T>, key: impl Fn(&T) -> u64) {
    if items.len() < SMALL {
        items.sort_by_key(|item| key(item));
        return;
    }
    let mut spare = items.clone();
    let buckets = 1usize << DIGIT_BITS;
    let mut shift = 0;
    while shift < u64::BITS {
        let digit = |item: &T| ((key(item) >> shift) as usize) & (buckets - 1);
        let mut counts = vec![0usize; buckets];
        for item in items.iter() {
            counts[digit(item)] += 1;
        }
        // A digit every key shares (the top bits of small keys) orders nothing.
        if counts.contains(&items.len()) {
            shift += DIGIT_BITS;
            continue;
        }
        let mut start = 0;
        for count in counts.iter_mut() {
            (*count, start) = (start, start + *count);
        }
        for item in items.iter() {
            let at = &mut counts[digit(item)];
            spare[*at] = *item;
            *at += 1;
        }
        std::mem::swap(items, &mut spare);
        shift += DIGIT_BITS;
    }
}

/// Sorts `items` by a key below `buckets` (counting sort). Equal keys keep
/// their order, so sorting by a minor key, then by a major one, orders by both.
pub fn sort_by_small_key<T>(items: Vec<T>, buckets: usize, key: impl Fn(&T) -> usize) -> Vec<T> {
    if items.len() < SMALL {
        let mut items = items;
        items.sort_by_key(|item| key(item));
        return items;
    }
    let mut counts = vec![0usize; buckets + 1];
    for item in &items {
        counts[key(item) + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    // Each item goes straight to its place: a bucket of vectors would allocate per key.
    let mut places: Vec<usize> = Vec::with_capacity(items.len());
    for item in &items {
        let at = &mut counts[key(item)];
        places.push(*at);
        *at += 1;
    }
    let mut sorted: Vec<Option<T>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (item, at) in items.into_iter().zip(places) {
        sorted[at] = Some(item);
    }
    sorted.into_iter().map(|item| item.expect("every place is filled once")).collect()
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
    fn radix_sort_orders_like_a_stable_sort() {
        for (n, bits) in [(0, 64), (10, 64), (5000, 64), (5000, 8), (20_000, 40)] {
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
        let mut expected = items.clone();
        expected.sort_by_key(|&(major, minor, _)| (major, minor));
        let by_minor = sort_by_small_key(items, 101, |item| item.1);
        assert_eq!(sort_by_small_key(by_minor, 13, |item| item.0), expected);
    }
}
