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
