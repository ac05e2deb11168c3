//! Replays the fuzz seeds (`fuzz/seeds/<target>/`) and every input a fuzz run ever failed on
//! (`fuzz/regressions/<target>/`) through the checks the fuzz targets run, on stable Rust, so
//! that a fixed crash stays fixed without nightly or libFuzzer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use cronpush::fuzzing::{check_grouping_key_path, check_protobuf_decode, check_text_parse};

/// The files of `fuzz/<kind>/<target>/`, sorted; none when the directory does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.map(|e| e.expect("readable directory entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let seeds = inputs("seeds", target);
    assert!(!seeds.is_empty(), "fuzz/seeds/{target} holds no inputs");
    let failed: Vec<String> = seeds
        .iter()
        .chain(&inputs("regressions", target))
        .filter(|path| {
            let bytes = std::fs::read(path).expect("readable fuzz input");
            catch_unwind(AssertUnwindSafe(|| check(&bytes))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: the check panics on {failed:?}");
}

#[test]
fn text_parse_inputs_hold() {
    replay("text_parse", check_text_parse);
}

#[test]
fn protobuf_decode_inputs_hold() {
    replay("protobuf_decode", check_protobuf_decode);
}

#[test]
fn grouping_key_path_inputs_hold() {
    replay("grouping_key_path", check_grouping_key_path);
}
