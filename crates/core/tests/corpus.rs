//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/`) through the fuzz targets' own
//! checks (`fuzz/checks.rs`), so every `cargo test` on stable exercises what `cargo fuzz` does.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../../../fuzz/checks.rs"]
mod checks;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = format!("{}/../../fuzz/seeds/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        // Truncations of every seed, too: the cheapest mutations, and the ones parsers get wrong.
        for cut in [1, 2, 7, data.len() / 2] {
            if cut < data.len() {
                check(&data[..data.len() - cut]);
            }
        }
        n += 1;
    }
    println!("{target}: {n} seeds replayed");
    n
}

#[test]
fn envelope_seeds() {
    assert!(replay("envelope", checks::envelope) >= 30);
}

#[test]
fn manifest_seeds() {
    assert!(replay("manifest", checks::manifest) >= 15);
}

#[test]
fn key_file_seeds() {
    assert!(replay("key_file", checks::key_file) >= 25);
}

#[test]
fn paper_seeds() {
    assert!(replay("paper", checks::paper) >= 3);
}

#[test]
fn wire_seeds() {
    assert!(replay("wire", checks::wire) >= 6);
}

#[test]
fn export_seeds() {
    assert!(replay("export", checks::export) >= 4);
}

#[test]
fn backup_seeds() {
    assert!(replay("backup", checks::backup) >= 4);
}
