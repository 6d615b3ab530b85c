// The property each fuzz target checks, shared with kluis-core's `tests/corpus.rs`, which
// replays the committed seeds (`fuzz/seeds/<target>/`) as ordinary tests on stable.
//
// Every parser must return (never panic) on any input, and whatever it accepts must be
// canonical: encoding the decoded value gives back exactly the input.
#![allow(dead_code, unreachable_pub, clippy::panic)]

use kluis_core::envelope::{self, Envelope};
use kluis_core::manifest::{self, Manifest, ManifestUpdate};
use kluis_core::{KeyFile, KeyHierarchy, VaultSecret};

fn keys() -> KeyHierarchy {
    // The testkit's secret is not needed: any fixed key exercises the same code paths.
    KeyHierarchy::derive(&VaultSecret::from_bytes([0x42; 32]))
}

pub fn envelope(data: &[u8]) {
    if let Ok(e) = Envelope::decode(data) {
        if e.encode() != data {
            panic!("accepted a non-canonical envelope");
        }
    }
    let _ = envelope::open(&keys().notes, data);
}

pub fn manifest(data: &[u8]) {
    if let Ok(m) = Manifest::decode(data) {
        if m.encode() != data {
            panic!("accepted a non-canonical manifest");
        }
    }
    if let Ok(u) = ManifestUpdate::decode(data) {
        if u.encode() != data {
            panic!("accepted a non-canonical manifest update");
        }
    }
    let _ = manifest::verify(data, &keys().notes, None, &[]);
}

pub fn key_file(data: &[u8]) {
    let Ok(file) = KeyFile::parse(data) else { return };
    let Ok(unlocked) = file.unlock(None) else { return };
    // An accepted plain file writes back to the same text, up to a byte-order mark and CRLF.
    let text = unlocked.to_text().unwrap_or_else(|e| panic!("cannot write back an accepted key file: {e}"));
    let input = String::from_utf8_lossy(data);
    let normalized = input.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    if *text != normalized {
        panic!("accepted a key file that does not write back identically");
    }
}

pub fn paper(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = kluis_core::paper::decode(text) else { return };
    // Whatever is accepted encodes back to groups that decode to the same key.
    let again = kluis_core::paper::decode(&kluis_core::paper::encode(&file).join(" "))
        .unwrap_or_else(|e| panic!("an accepted paper backup does not round-trip: {e}"));
    if again.secret() != file.secret() || again.info() != file.info() {
        panic!("an accepted paper backup re-encodes to another key");
    }
}

pub fn wire(data: &[u8]) {
    use kluis_core::wire::{SaveRequest, SyncResponse};
    if let Ok(s) = SaveRequest::decode(data) {
        if s.encode() != data {
            panic!("accepted a non-canonical save request");
        }
    }
    if let Ok(s) = SyncResponse::decode(data) {
        if s.encode() != data {
            panic!("accepted a non-canonical sync response");
        }
    }
}

pub fn export(data: &[u8]) {
    use kluis_core::export::UserExport;
    if let Ok(e) = UserExport::decode(data) {
        if e.encode() != data {
            panic!("accepted a non-canonical export");
        }
    }
}

pub fn backup(data: &[u8]) {
    use kluis_core::backup::{Decoded, decode, decode_item};
    if let Ok(b) = decode(data) {
        if b.encode() != data {
            panic!("accepted a non-canonical backup");
        }
    }
    // Streaming: a prefix of an item is always "incomplete", and asks for more than it has.
    let items = data.get(kluis_core::spec::BACKUP_HEADER_BYTES..).unwrap_or_default();
    if let Ok(Decoded::Item(_, used)) = decode_item(items) {
        for cut in 0..used.min(4096) {
            match decode_item(&items[..cut]) {
                Ok(Decoded::Incomplete(need)) if need > cut => {}
                other => panic!("a {cut}-byte prefix of a {used}-byte item gave {other:?}"),
            }
        }
    }
}
