//! Hash functions strategies commonly need.

/// xxhash64 with seed 0: the hash the reference allocator uses everywhere
/// (`cespare/xxhash` `Sum64`).
pub fn xxhash64(data: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(data, 0)
}

/// Jump consistent hash (Lamping & Veach): maps `key` to a bucket in
/// `0..buckets`; growing `buckets` by one moves exactly the keys that must move.
/// Returns `None` when `buckets` is zero.
pub fn jump(mut key: u64, buckets: u32) -> Option<u32> {
    if buckets == 0 {
        return None;
    }
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    Some(b as u32)
}

/// A strong 64-bit mixer (the finaliser of SplitMix64), used to score
/// (key, member) pairs in rendezvous hashing.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Rendezvous (highest random weight) hashing: the member with the highest
/// score for `key` wins. `member_hashes` are stable per-member hashes (e.g.
/// [`xxhash64`] of the collector name), so the winner depends on the member
/// set, not on its order. Adding a member moves only the keys it wins.
/// Returns the winning position in `member_hashes`, or `None` when empty.
pub fn rendezvous(key: u64, member_hashes: &[u64]) -> Option<u32> {
    let mut best: Option<(u64, u64, u32)> = None;
    for (i, &m) in member_hashes.iter().enumerate() {
        let score = mix64(key ^ m);
        // Ties (practically impossible) go to the smaller member hash, so the
        // result does not depend on the order of `member_hashes`.
        let better = match best {
            None => true,
            Some((s, h, _)) => score > s || (score == s && m < h),
        };
        if better {
            best = Some((score, m, i as u32));
        }
    }
    best.map(|(_, _, i)| i)
}

/// Every member ranked by its rendezvous score for `key`, best first: the
/// first is [`rendezvous`]'s winner, the next is where the key goes when the
/// winner is unavailable (full, or removed), and so on. Fills `out` with
/// positions in `member_hashes`. O(n log n): prefer [`rendezvous`] when only
/// the winner is needed.
pub fn rendezvous_ranking(key: u64, member_hashes: &[u64], out: &mut Vec<u32>) {
    out.clear();
    out.extend(0..member_hashes.len() as u32);
    // Same order as `rendezvous`: higher score first, ties to the smaller member hash.
    out.sort_by_cached_key(|&i| {
        let m = member_hashes[i as usize];
        (std::cmp::Reverse(mix64(key ^ m)), m)
    });
}

/// Weighted rendezvous hashing: member `i` wins about `weights[i] / Σ weights`
/// of the keys. Members with weight 0 never win.
pub fn rendezvous_weighted(key: u64, member_hashes: &[u64], weights: &[f64]) -> Option<u32> {
    let mut best: Option<(f64, u32)> = None;
    for (i, (&m, &w)) in member_hashes.iter().zip(weights).enumerate() {
        if w <= 0.0 {
            continue;
        }
        // Map the hash into (0, 1) and use the -w / ln(u) form, which keeps the
        // minimal-movement property of plain rendezvous.
        let u = ((mix64(key ^ m) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = -w / u.ln();
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, i as u32));
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxhash64_matches_published_vectors() {
        // Reference values of XXH64 with seed 0.
        assert_eq!(xxhash64(b""), 0xef46_db37_51d8_e999);
        assert_eq!(xxhash64(b"a"), 0xd24e_c4f1_a98c_6e5b);
    }

    #[test]
    fn jump_moves_only_to_the_new_bucket() {
        let mut moved = 0;
        for k in 0..10_000u64 {
            let key = mix64(k);
            let (a, b) = (jump(key, 10).unwrap(), jump(key, 11).unwrap());
            if a != b {
                assert_eq!(b, 10);
                moved += 1;
            }
        }
        // Expect about 1/11 of the keys to move.
        assert!((700..1100).contains(&moved), "moved {moved}");
        assert_eq!(jump(1, 0), None);
    }

    #[test]
    fn rendezvous_is_order_independent_and_minimal() {
        let members: Vec<u64> = (0..8).map(|i| xxhash64(format!("c{i}").as_bytes())).collect();
        let mut reversed = members.clone();
        reversed.reverse();
        let more: Vec<u64> = members.iter().copied().chain([xxhash64(b"c8")]).collect();
        for k in 0..5_000u64 {
            let a = members[rendezvous(k, &members).unwrap() as usize];
            let b = reversed[rendezvous(k, &reversed).unwrap() as usize];
            assert_eq!(a, b);
            let c = more[rendezvous(k, &more).unwrap() as usize];
            assert!(c == a || c == more[8], "a key moved between old members");
        }
        assert_eq!(rendezvous(1, &[]), None);
    }

    #[test]
    fn ranking_starts_with_the_winner_and_drops_removed_members_only() {
        let members: Vec<u64> = (0..8).map(|i| xxhash64(format!("c{i}").as_bytes())).collect();
        let (mut ranked, mut without_first) = (Vec::new(), Vec::new());
        for k in 0..2_000u64 {
            rendezvous_ranking(k, &members, &mut ranked);
            assert_eq!(ranked.len(), members.len());
            assert_eq!(Some(ranked[0]), rendezvous(k, &members));
            // Removing a member leaves the others in the same order.
            rendezvous_ranking(k, &members[1..], &mut without_first);
            let expected: Vec<u32> = ranked.iter().filter(|&&i| i != 0).map(|&i| i - 1).collect();
            assert_eq!(without_first, expected);
        }
        rendezvous_ranking(1, &[], &mut ranked);
        assert!(ranked.is_empty());
    }

    #[test]
    fn weighted_rendezvous_follows_weights() {
        let members: Vec<u64> = (0..2).map(|i| xxhash64(format!("c{i}").as_bytes())).collect();
        let wins = (0..20_000u64)
            .filter(|&k| rendezvous_weighted(mix64(k), &members, &[3.0, 1.0]) == Some(0))
            .count();
        assert!((14_000..16_000).contains(&wins), "wins {wins}");
        assert_eq!(rendezvous_weighted(1, &members, &[0.0, 0.0]), None);
    }
}
