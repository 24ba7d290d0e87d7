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
