//! The frozen testkit (`tests/testkit/*.txt`): every case names its expected outcome, `ok` or
//! the kind of failure ([`kluis_core::Error::kind`]). The same files run natively and in
//! headless Chromium, so the format cannot drift silently on either.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

#[path = "support/harness.rs"]
mod harness;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::collections::BTreeMap;

use harness::unhex;
use kluis_core::escrow::{self, BreakGlassSecret};
use kluis_core::manifest::{HighWater, verify};
use kluis_core::{Error, Fingerprint, KeyFile, KeyHierarchy, Passphrase, VaultKeys, VaultSecret, envelope};

struct Case {
    name: String,
    expect: String,
    fields: BTreeMap<String, String>,
}

impl Case {
    fn get(&self, k: &str) -> &str {
        self.fields.get(k).unwrap_or_else(|| panic!("{}: field {k} missing", self.name))
    }
    fn bytes(&self, k: &str) -> Vec<u8> {
        unhex(self.get(k))
    }
    fn check<T>(&self, result: Result<T, Error>, on_ok: impl FnOnce(T)) {
        match (self.expect.as_str(), result) {
            ("ok", Ok(v)) => on_ok(v),
            ("ok", Err(e)) => panic!("{}: expected ok, got {e:?}", self.name),
            (kind, Ok(_)) => panic!("{}: expected {kind}, but it was accepted", self.name),
            (kind, Err(e)) => assert_eq!(e.kind(), kind, "{}: wrong failure: {e:?}", self.name),
        }
    }
}

fn cases(text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut fields = BTreeMap::new();
        for line in block.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (k, v) = line.split_once(": ").unwrap_or_else(|| panic!("bad testkit line {line:?}"));
            assert!(fields.insert(k.to_owned(), v.to_owned()).is_none(), "duplicate field {k}");
        }
        if fields.is_empty() {
            continue;
        }
        let name = fields.remove("case").expect("case name");
        let expect = fields.remove("expect").expect("expect line");
        out.push(Case { name, expect, fields });
    }
    out
}

fn hierarchy(c: &Case) -> KeyHierarchy {
    KeyHierarchy::derive(&VaultSecret::from_bytes(c.bytes("secret").try_into().unwrap()))
}

fn vault(c: &Case, h: &KeyHierarchy) -> VaultKeys {
    match c.get("vault") {
        "notes" => h.notes.clone(),
        "identities" => h.identities.clone(),
        // The identities vault's keys under the notes vault's id: the right id, the wrong key.
        "identities-with-notes-id" => {
            let mut k = h.identities.clone();
            k.id = h.notes.id;
            k.kind = h.notes.kind;
            k
        }
        v => panic!("unknown vault {v}"),
    }
}

/// Runs every case of a kit and returns how many there were of each outcome.
fn run(kit: &str, text: &str, each: impl Fn(&Case)) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for c in cases(text) {
        each(&c);
        *counts.entry(c.expect.clone()).or_insert(0) += 1;
    }
    println!("testkit {kit}: {counts:?}");
    counts
}

#[test]
fn envelopes() {
    let counts = run("envelopes", include_str!("testkit/envelopes.txt"), |c| {
        let h = hierarchy(c);
        let keys = vault(c, &h);
        c.check(envelope::open(&keys, &c.bytes("envelope")), |(header, pt)| {
            assert_eq!(pt.as_slice(), c.bytes("plaintext").as_slice(), "{}", c.name);
            assert_eq!(header.vault, keys.id);
        });
    });
    assert!(counts["ok"] >= 5 && counts["auth-fail"] >= 10 && counts["malformed"] >= 8, "{counts:?}");
}

#[test]
fn key_files() {
    let counts = run("keyfiles", include_str!("testkit/keyfiles.txt"), |c| {
        let pass = c.fields.get("passphrase").map(|p| Passphrase::new(p.clone()));
        let result = KeyFile::parse(&c.bytes("key-file")).and_then(|f| f.unlock(pass.as_ref()));
        c.check(result, |u| {
            assert_eq!(u.info().public.fingerprint(), Fingerprint::parse(c.get("fingerprint")).unwrap(), "{}", c.name);
            let label = c.fields.get("label").map_or("Dr A. Jansen", String::as_str);
            assert_eq!(u.info().label, label);
            let break_glass = u.break_glass_secret();
            assert_eq!(break_glass.is_some(), u.info().kind == kluis_core::keyfile::KeyFileKind::BreakGlass);
            if let Some(bg) = break_glass {
                assert_eq!(bg.public_key(), u.info().public);
            }
        });
    });
    assert!(counts["ok"] >= 4 && counts["bad-checksum"] >= 1 && counts["key-file-mac"] >= 5, "{counts:?}");
}

#[test]
fn manifests() {
    let counts = run("manifests", include_str!("testkit/manifests.txt"), |c| {
        let h = hierarchy(c);
        let keys = vault(c, &h);
        let hw = c.fields.get("high-water").map(|s| {
            let (counter, chain) = s.split_once(' ').unwrap();
            HighWater { counter: counter.parse().unwrap(), chain: unhex(chain).try_into().unwrap() }
        });
        let updates: Vec<Vec<u8>> =
            c.fields.get("updates").map(|u| u.split(',').map(unhex).collect()).unwrap_or_default();
        let updates: Vec<&[u8]> = updates.iter().map(Vec::as_slice).collect();
        c.check(verify(&c.bytes("manifest"), &keys, hw.as_ref(), &updates), |m| {
            assert_eq!(m.manifest().vault, keys.id);
            assert!(hw.is_none_or(|hw| m.high_water().counter >= hw.counter));
        });
    });
    assert!(counts["ok"] >= 3 && counts["rollback"] == 1 && counts["fork"] >= 3, "{counts:?}");
}

#[test]
fn escrows() {
    let counts = run("escrow", include_str!("testkit/escrow.txt"), |c| {
        let bg = BreakGlassSecret::from_bytes(c.bytes("break-glass-secret").try_into().unwrap());
        let fp = Fingerprint::parse(c.get("fingerprint")).unwrap();
        c.check(escrow::open(&c.bytes("envelope"), &bg, &fp), |secret| {
            assert_eq!(secret.to_bytes().as_slice(), c.bytes("secret").as_slice());
        });
    });
    assert!(counts["ok"] == 1 && counts["fingerprint-mismatch"] == 1, "{counts:?}");
}

#[test]
fn histories() {
    let counts = run("histories", include_str!("testkit/histories.txt"), |c| {
        let h = hierarchy(c);
        let head = verify(&c.bytes("manifest"), &h.notes, None, &[]).unwrap();
        let id = kluis_core::RecordId::from_bytes(c.bytes("record-id").try_into().unwrap());
        let versions: Vec<Vec<u8>> = c.get("versions").split(',').map(unhex).collect();
        let versions: Vec<&[u8]> = versions.iter().map(Vec::as_slice).collect();
        c.check(head.check_history(&id, &versions), |headers| {
            assert_eq!(headers.iter().map(|h| h.version).collect::<Vec<_>>(), [1, 2, 3]);
            for v in &versions {
                envelope::open(&h.notes, v).unwrap();
            }
        });
    });
    assert!(counts["ok"] == 1 && counts["broken-chain"] >= 4, "{counts:?}");
}

#[test]
fn papers() {
    let counts = run("papers", include_str!("testkit/papers.txt"), |c| {
        // Rows are written on one line in the kit, separated by " | ".
        let typed = c.get("groups").replace(" | ", "\n");
        c.check(kluis_core::paper::decode(&typed), |file| {
            assert_eq!(file.to_text().unwrap().as_bytes(), c.bytes("key-file").as_slice(), "{}", c.name);
        });
    });
    assert!(counts["ok"] == 3 && counts["paper-typo"] >= 3 && counts["paper-checksum"] == 1, "{counts:?}");
}
