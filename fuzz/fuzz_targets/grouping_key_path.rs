//! Fuzz target: see `cronpush::fuzzing::check_grouping_key_path` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cronpush::fuzzing::check_grouping_key_path(data));
