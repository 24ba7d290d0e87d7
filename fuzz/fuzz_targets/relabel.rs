#![no_main]
//! See `target_allocator::fuzzing::check_relabel` for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| target_allocator::fuzzing::check_relabel(data));
