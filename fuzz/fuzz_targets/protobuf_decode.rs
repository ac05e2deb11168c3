//! Fuzz target: see `cronpush::fuzzing::check_protobuf_decode` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cronpush::fuzzing::check_protobuf_decode(data));
