//! The WebCrypto route gives exactly what kluis-core's own AES-GCM gives: every envelope of the
//! frozen testkit (`crates/core/tests/testkit/envelopes.txt`) is opened both ways in headless
//! Chromium, and the plaintexts, or the kinds of failure, must be identical.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use kluis_core::{KeyHierarchy, VaultSecret, envelope};
use kluis_wasm::webcrypto::{self, OpenError};
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const ENVELOPES: &str = include_str!("../../core/tests/testkit/envelopes.txt");

fn cases() -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut case = BTreeMap::new();
    for line in ENVELOPES.lines().chain(std::iter::once("")) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !case.is_empty() {
                out.push(std::mem::take(&mut case));
            }
            continue;
        }
        let (k, v) = line.split_once(':').unwrap();
        case.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[wasm_bindgen_test]
async fn webcrypto_matches_the_native_path_on_every_testkit_envelope() {
    let mut outcomes = BTreeMap::<String, usize>::new();
    for case in cases() {
        let name = &case["case"];
        let secret: [u8; 32] = unhex(&case["secret"]).try_into().unwrap();
        let h = KeyHierarchy::derive(&VaultSecret::from_bytes(secret));
        let keys = match case["vault"].as_str() {
            "notes" => h.notes.clone(),
            "identities" => h.identities.clone(),
            // The identities vault's keys under the notes vault's id (as kluis-core's testkit).
            "identities-with-notes-id" => {
                let mut k = h.identities.clone();
                k.id = h.notes.id;
                k.kind = h.notes.kind;
                k
            }
            other => panic!("{name}: vault {other}"),
        };
        let keys = &keys;
        let bytes = unhex(&case["envelope"]);
        let native = envelope::open(keys, &bytes);
        let web = webcrypto::open(keys, &bytes).await;
        let outcome = match (native, web) {
            (Ok((nh, np)), Ok((wh, wp))) => {
                assert_eq!(np, wp, "{name}: plaintexts differ");
                assert_eq!(nh, wh, "{name}: headers differ");
                assert_eq!(np, unhex(&case["plaintext"]), "{name}");
                "ok".to_owned()
            }
            (Err(n), Err(OpenError::Core(w))) => {
                assert_eq!(n.kind(), w.kind(), "{name}: failures differ");
                n.kind().to_owned()
            }
            (n, w) => panic!("{name}: native {n:?}, WebCrypto {w:?}"),
        };
        assert_eq!(outcome, case["expect"], "{name}");
        *outcomes.entry(outcome).or_default() += 1;
    }
    // The testkit has successes and body-level tampering, which WebCrypto must catch itself.
    assert!(outcomes["ok"] >= 5 && outcomes["auth-fail"] >= 10, "{outcomes:?}");
}

/// A vault of `n` notes of about `size` bytes as the server would sync it, and its key file.
fn synced_vault(n: u32, size: usize) -> (Vec<u8>, Vec<u8>, Vec<(kluis_core::RecordId, Vec<u8>)>) {
    use kluis_core::manifest::{Entry, EntryState, Manifest, verify};
    use kluis_core::wire::SyncResponse;
    use kluis_core::{EnvelopeHash, RecordHeader, RecordId, RecordKind, UnlockedKeyFile};
    let secret = VaultSecret::from_bytes([7; 32]);
    let keys = KeyHierarchy::derive(&secret).notes;
    let key_file = UnlockedKeyFile::new(secret, "test", 0, None).unwrap().to_text().unwrap().as_bytes().to_vec();
    let genesis = verify(&Manifest::genesis(&keys, 0).encode(), &keys, None, &[]).unwrap();
    let mut records: Vec<(RecordId, Vec<u8>)> = (0..n)
        .map(|i| {
            let id = RecordId::random();
            let text = format!("note number {i} {}", "x".repeat(size));
            (id, envelope::seal(&keys, &RecordHeader::first(keys.id, id, RecordKind::Note), text.as_bytes()).unwrap())
        })
        .collect();
    records.sort_by_key(|(id, _)| *id);
    let entries = records
        .iter()
        .map(|(id, e)| (*id, Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(e)) }))
        .collect();
    let (update, head) = genesis.prepare_update(&keys, entries, 0).unwrap();
    let (head, update) = (head.encode(), update.encode());
    let sync = SyncResponse {
        head: &head,
        updates: vec![&update],
        records: records.iter().map(|(id, e)| (*id, e.as_slice())).collect(),
    }
    .encode();
    (key_file, sync, records)
}

async fn accept(session: &mut kluis_wasm::session::VaultSession, sync: &[u8]) -> Result<js_sys::Array, String> {
    session.accept(js_sys::Uint8Array::from(sync), true, None, None).await.map_err(|e| {
        let e = wasm_bindgen::JsValue::from(e);
        js_sys::Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_default()
    })
}

#[wasm_bindgen_test]
async fn a_vault_of_ten_thousand_records_opens_in_one_batch_exactly_as_natively() {
    let (mut key_file, sync, records) = synced_vault(10_000, 16);
    let vault = kluis_wasm::Vault::unlock(&mut key_file, None).map_err(|_| "unlock").unwrap();
    let mut session = vault.session("notes").map_err(|_| "session").unwrap();
    let opened = accept(&mut session, &sync).await.unwrap();
    assert_eq!(opened.length(), 10_000);
    let keys = KeyHierarchy::derive(&VaultSecret::from_bytes([7; 32])).notes;
    for (i, (id, env)) in (0u32..).zip(&records) {
        let r = opened.get(i);
        let get = |k: &str| js_sys::Reflect::get(&r, &k.into()).unwrap();
        assert_eq!(get("id").as_string().unwrap(), data_encoding::HEXLOWER.encode(&id.to_bytes()));
        let web = js_sys::Uint8Array::new(&get("plaintext")).to_vec();
        assert_eq!(web, envelope::open(&keys, env).unwrap().1, "record {i}");
    }
    // One byte of one body changed: the listing check (WebCrypto's SHA-256) names it.
    let mut tampered = sync.clone();
    let last = tampered.len() - 40;
    tampered[last] ^= 1;
    let refused = accept(&mut session, &tampered).await.unwrap_err();
    assert!(refused.starts_with("swapped"), "{refused}");
}
