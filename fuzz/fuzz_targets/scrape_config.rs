#![no_main]
//! See `target_allocator::fuzzing::check_scrape_config` for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| target_allocator::fuzzing::check_scrape_config(data));
