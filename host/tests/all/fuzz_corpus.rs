//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) through the checks the
//! fuzz targets run, so what the fuzzer found keeps being checked by a plain
//! `cargo test`, without cargo-fuzz or a nightly toolchain.

use std::path::Path;

use target_allocator::fuzzing::{check_go_regex, check_relabel, check_scrape_config};

/// A fuzz target's check: panics when an invariant breaks.
type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] =
    &[("scrape_config", check_scrape_config), ("relabel", check_relabel), ("go_regex", check_go_regex)];

#[test]
fn fuzz_corpus_replays_cleanly() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (target, check) in TARGETS {
        let dir = corpus.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no inputs", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            // Name the input in the failure; the check's own message says what broke.
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails its check", file.display());
        }
    }
}

/// Between fuzzing runs: the relabel check on inputs derived from the corpus
/// by seeded mutation (byte flips, insertions, truncations), which among
/// other things holds rules prepared against their names (slots) to the
/// general engine's results on thousands of rule lists.
#[test]
fn relabel_checks_hold_on_mutated_corpus_inputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/relabel");
    let mut seeds: Vec<Vec<u8>> =
        std::fs::read_dir(&dir).unwrap().map(|entry| std::fs::read(entry.unwrap().path()).unwrap()).collect();
    seeds.sort();
    let mut state = 20261128u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        target_allocator_sdk::hash::mix64(state)
    };
    for case in 0..20_000 {
        let mut data = seeds[case % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % (data.len() + 1);
            match next() % 3 {
                0 if at < data.len() => data[at] ^= 1 << (next() % 8),
                1 => data.insert(at, next() as u8),
                _ => data.truncate(at.max(1)),
            }
        }
        let outcome = std::panic::catch_unwind(|| check_relabel(&data));
        assert!(outcome.is_ok(), "mutated input {case} fails its check: {data:?}");
    }
}
