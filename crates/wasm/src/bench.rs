//! A vault built in memory for the benchmark page (`web/bench.html`): a key file and a sync
//! response holding `n` notes of `size` bytes, exactly as the server would send them. No
//! server is involved, so the page measures the browser's own work.

use std::collections::BTreeMap;

use kluis_core::manifest::{Entry, EntryState, Manifest, verify};
use kluis_core::wire::SyncResponse;
use kluis_core::{
    EnvelopeHash, KeyHierarchy, RecordHeader, RecordId, RecordKind, UnlockedKeyFile, VaultSecret, envelope,
};
use wasm_bindgen::prelude::*;

/// What the benchmark page opens.
#[wasm_bindgen]
#[derive(Debug)]
pub struct BenchVault {
    key_file: Vec<u8>,
    sync: Vec<u8>,
    envelopes: Vec<Vec<u8>>,
}

#[wasm_bindgen]
impl BenchVault {
    /// Seals `n` notes of `size` bytes into a fresh vault.
    pub fn build(n: u32, size: u32) -> Result<BenchVault, JsError> {
        let secret =
            VaultSecret::generate_with_rng(&mut kluis_core::rand_core::UnwrapErr(kluis_core::rand_core::OsRng));
        let keys = KeyHierarchy::derive(&secret).notes;
        let file = UnlockedKeyFile::new(secret, "benchmark", 0, None).map_err(|e| JsError::new(&e.to_string()))?;
        let key_file = file.to_text().map_err(|e| JsError::new(&e.to_string()))?.as_bytes().to_vec();
        let genesis = verify(&Manifest::genesis(&keys, 0).encode(), &keys, None, &[])
            .map_err(|e| JsError::new(&e.to_string()))?;
        // A note as the app stores it (FORMAT.md §11), `size` bytes in all.
        let frame = r#"{"v":1,"client":"00000000000000000000000000000000","date":"2026-11-25","s":"","o":"","a":"","p":"","tags":[]}"#;
        let fill = (size as usize).saturating_sub(frame.len());
        let text = frame.replacen(r#""s":"""#, &format!(r#""s":"{}""#, "x".repeat(fill)), 1).into_bytes();
        let mut records = Vec::with_capacity(n as usize);
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let id = RecordId::random();
            let env = envelope::seal(&keys, &RecordHeader::first(keys.id, id, RecordKind::Note), &text)
                .map_err(|e| JsError::new(&e.to_string()))?;
            entries.insert(id, Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) });
            records.push((id, env));
        }
        records.sort_by_key(|(id, _)| *id);
        let (update, head) = genesis.prepare_update(&keys, entries, 0).map_err(|e| JsError::new(&e.to_string()))?;
        let head = head.encode();
        let update = update.encode();
        let sync = SyncResponse {
            head: &head,
            updates: vec![&update],
            records: records.iter().map(|(id, e)| (*id, e.as_slice())).collect(),
        }
        .encode();
        let envelopes = records.into_iter().map(|(_, e)| e).collect();
        Ok(BenchVault { key_file, sync, envelopes })
    }

    /// The key file (plain text bytes; a benchmark key, not a secret anyone uses).
    #[wasm_bindgen(getter)]
    pub fn key_file(&self) -> Vec<u8> {
        self.key_file.clone()
    }

    /// The sync response, as `GET /api/vaults/{id}/sync?since=0` would send it.
    #[wasm_bindgen(getter)]
    pub fn sync(&self) -> Vec<u8> {
        self.sync.clone()
    }

    /// The same records' envelopes, each its own array, in id order.
    #[wasm_bindgen(getter)]
    pub fn envelopes(&self) -> js_sys::Array {
        self.envelopes.iter().map(|e| js_sys::Uint8Array::from(e.as_slice())).collect()
    }
}
