//! Property tests (security-anchors §4.2): seal/open round trips for any input; every single
//! bit flip in a sealed record, a key file or a manifest is refused (exhaustively, every bit);
//! canonical encodings re-encode to the same bytes; decoders never panic on any input.
#![cfg(not(target_arch = "wasm32"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

#[path = "support/harness.rs"]
mod harness;

use std::collections::BTreeMap;

use harness::rng;
use kluis_core::envelope::{self, Envelope};
use kluis_core::manifest::{Entry, EntryState, Manifest, ManifestUpdate, verify};
use kluis_core::wire::{SaveRequest, SyncResponse};
use kluis_core::{
    EnvelopeHash, Error, Fingerprint, KeyFile, KeyHierarchy, RecordHeader, RecordId, RecordKind, UnlockedKeyFile,
    VaultSecret,
};
use proptest::prelude::*;

fn keys() -> KeyHierarchy {
    KeyHierarchy::derive(&VaultSecret::generate_with_rng(&mut rng(1)))
}

fn kind() -> impl Strategy<Value = RecordKind> {
    prop_oneof![Just(RecordKind::Note), Just(RecordKind::Identity)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_then_open_returns_the_input(
        pt in prop::collection::vec(any::<u8>(), 0..70_000),
        id in any::<[u8; 16]>(),
        version in 1u64..u64::MAX,
        prev in any::<[u8; 32]>(),
        kind in kind(),
        seed in any::<u8>(),
    ) {
        let h = keys();
        let prev = if version == 1 { EnvelopeHash::NONE } else { EnvelopeHash::of(&prev) };
        let keys = h.vault(kind.vault_kind());
        let header = RecordHeader { vault: keys.id, id: RecordId::from_bytes(id), version, kind, prev };
        let sealed = envelope::seal_with_rng(keys, &header, &pt, &mut rng(seed)).unwrap();
        let (got_header, got) = envelope::open(keys, &sealed).unwrap();
        prop_assert_eq!(got_header, header);
        prop_assert_eq!(got.as_slice(), pt.as_slice());
        // Canonical: decode then encode gives the same bytes.
        prop_assert_eq!(Envelope::decode(&sealed).unwrap().encode(), sealed.clone());
        // The body is a Padmé bucket, so sizes leak only O(log log n) bits.
        prop_assert!(sealed.len() < 256 + kluis_core::padded_len(pt.len()));
    }

    #[test]
    fn finishing_an_external_decryption_checks_the_padding_as_finish_does(
        pt in prop::collection::vec(any::<u8>(), 0..5000),
        seed in any::<u8>(),
        at in any::<prop::sample::Index>(),
    ) {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let h = keys();
        let header = RecordHeader::first(h.notes.id, RecordId::from_bytes([seed; 16]), RecordKind::Note);
        let sealed = envelope::seal_with_rng(&h.notes, &header, &pt, &mut rng(seed)).unwrap();
        let env = Envelope::decode(&sealed).unwrap();
        let job = || envelope::unwrap_body(&h.notes, &env).unwrap();
        // The bulk step as WebCrypto does it: AES-256-GCM with the job's key, nonce and aad.
        let j = job();
        let cipher = aes_gcm::Aes256Gcm::new(j.body_key_bytes()[..].into());
        let padded = cipher
            .decrypt(aes_gcm::Nonce::from_slice(j.nonce()), Payload { msg: j.ciphertext(), aad: j.aad() })
            .unwrap();
        let len = j.plaintext_len();
        prop_assert_eq!(&padded[..len], pt.as_slice());
        prop_assert_eq!(j.finish_padding(padded.len(), &padded[len..]), Ok(len));
        prop_assert_eq!(job().finish_padding(padded.len() + 1, &padded[len..]), Err(Error::Decrypt));
        if padded.len() > len {
            let mut bad = padded[len..].to_vec();
            let i = at.index(bad.len());
            bad[i] ^= 1;
            prop_assert_eq!(job().finish_padding(padded.len(), &bad), Err(Error::Decrypt));
            prop_assert_eq!(job().finish_padding(padded.len(), &padded[len + 1..]), Err(Error::Decrypt));
        }
    }

    #[test]
    fn a_wrong_vault_record_id_or_version_fails(pt in prop::collection::vec(any::<u8>(), 0..512), seed in any::<u8>(), which in 0..3usize) {
        let h = keys();
        let header = RecordHeader::first(h.notes.id, RecordId::from_bytes([7; 16]), RecordKind::Note);
        let sealed = envelope::seal_with_rng(&h.notes, &header, &pt, &mut rng(seed)).unwrap();
        let result = match which {
            0 => envelope::open(&h.identities, &sealed).map(|_| ()),
            1 => {
                let mut other = h.identities.clone();
                other.id = h.notes.id;
                other.kind = h.notes.kind;
                envelope::open(&other, &sealed).map(|_| ())
            }
            _ => {
                // Another key file's keys (a fixed pattern, never the ChaCha-drawn secret of keys()).
                let other = KeyHierarchy::derive(&VaultSecret::from_bytes([seed; 32]));
                envelope::open(&other.notes, &sealed).map(|_| ())
            }
        };
        prop_assert!(result.is_err());
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let h = keys();
        let _ = Envelope::decode(&bytes);
        let _ = envelope::open(&h.notes, &bytes);
        let _ = Manifest::decode(&bytes);
        let _ = ManifestUpdate::decode(&bytes);
        let _ = verify(&bytes, &h.notes, None, &[]);
        let _ = KeyFile::parse(&bytes).map(|f| f.unlock(None));
        let _ = Fingerprint::parse(&String::from_utf8_lossy(&bytes));
        let _ = SaveRequest::decode(&bytes);
        let _ = SyncResponse::decode(&bytes);
    }

    #[test]
    fn wire_bodies_round_trip_canonically(
        update in prop::collection::vec(any::<u8>(), 0..300),
        records in prop::collection::btree_map(any::<[u8; 16]>(), prop::collection::vec(any::<u8>(), 0..100), 0..20),
        updates in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..5),
    ) {
        let records: Vec<(RecordId, &[u8])> = records.iter().map(|(id, e)| (RecordId::from_bytes(*id), e.as_slice())).collect();
        let save = SaveRequest { update: &update, envelopes: records.clone() };
        let bytes = save.encode();
        prop_assert_eq!(SaveRequest::decode(&bytes).unwrap(), save);
        let sync = SyncResponse { head: &update, updates: updates.iter().map(Vec::as_slice).collect(), records: records.clone() };
        let bytes = sync.encode();
        prop_assert_eq!(SyncResponse::decode(&bytes).unwrap(), sync);
        // Records out of order or repeated are refused.
        if records.len() >= 2 {
            let mut swapped = records.clone();
            swapped.swap(0, 1);
            let bad = SaveRequest { update: &update, envelopes: swapped }.encode();
            prop_assert!(SaveRequest::decode(&bad).is_err());
        }
    }

    #[test]
    fn exports_round_trip_canonically_and_refuse_disorder(
        manifest in prop::collection::vec(any::<u8>(), 0..200),
        records in prop::collection::btree_map(any::<[u8; 16]>(), prop::collection::vec(prop::collection::vec(any::<u8>(), 0..60), 1..4), 0..12),
        updates in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..5),
        at in any::<u64>(),
        with_identities in any::<bool>(),
    ) {
        use kluis_core::export::{UserExport, VaultExport};
        let records: Vec<(RecordId, Vec<&[u8]>)> =
            records.iter().map(|(id, v)| (RecordId::from_bytes(*id), v.iter().map(Vec::as_slice).collect())).collect();
        let vault = VaultExport {
            vault: keys().notes.id,
            manifest: &manifest,
            updates: updates.iter().map(Vec::as_slice).collect(),
            records: records.clone(),
        };
        let export = UserExport {
            exported_at_ms: at,
            notes: Some(vault.clone()),
            identities: with_identities.then(|| VaultExport { vault: keys().identities.id, ..vault.clone() }),
        };
        let bytes = export.encode();
        prop_assert_eq!(UserExport::decode(&bytes).unwrap(), export);
        // Records out of order are refused, and so is any truncation.
        if records.len() >= 2 {
            let mut swapped = records.clone();
            swapped.swap(0, 1);
            let bad = UserExport { exported_at_ms: at, notes: Some(VaultExport { records: swapped, ..vault.clone() }), identities: None };
            prop_assert!(UserExport::decode(&bad.encode()).is_err());
        }
        for cut in 1..bytes.len().min(24) {
            prop_assert!(UserExport::decode(&bytes[..bytes.len() - cut]).is_err());
        }
    }

    #[test]
    fn manifests_round_trip_canonically(
        entries in prop::collection::btree_map(any::<[u8; 16]>(), (1u64..1000, prop::option::of(any::<[u8; 32]>())), 0..50),
        saved in any::<u64>(),
    ) {
        let h = keys();
        let head = verify(&Manifest::genesis(&h.notes, 0).encode(), &h.notes, None, &[]).unwrap();
        let changes: BTreeMap<RecordId, Entry> = entries
            .into_iter()
            .map(|(id, (version, hash))| {
                let state = hash.map_or(EntryState::Deleted, |h| EntryState::Live(EnvelopeHash::of(&h)));
                (RecordId::from_bytes(id), Entry { version, state })
            })
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        let (update, next) = head.prepare_update(&h.notes, changes, saved).unwrap();
        let bytes = next.encode();
        prop_assert_eq!(Manifest::decode(&bytes).unwrap().encode(), bytes.clone());
        prop_assert_eq!(ManifestUpdate::decode(&update.encode()).unwrap(), update.clone());
        prop_assert!(verify(&bytes, &h.notes, Some(&head.high_water()), &[&update.encode()]).is_ok());
    }

    #[test]
    fn fingerprints_are_accepted_in_any_case_and_grouping(seed in any::<u8>(), lower in any::<bool>(), sep in prop_oneof![Just(""), Just(" "), Just("-"), Just(" - ")]) {
        let fp = VaultSecret::generate_with_rng(&mut rng(seed)).public_key().fingerprint();
        let compact = fp.compact();
        let mut typed = compact.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(sep);
        if lower {
            typed = typed.to_lowercase();
        }
        prop_assert_eq!(Fingerprint::parse(&typed).unwrap(), fp);
        prop_assert_eq!(Fingerprint::parse(&fp.to_string()).unwrap(), fp);
    }
}

/// Flips every bit of `bytes` in turn and asserts `accept` refuses each result.
fn every_bit_flip_is_refused(what: &str, bytes: &[u8], accept: impl Fn(&[u8]) -> bool) {
    assert!(accept(bytes), "{what}: the unmodified input must be accepted");
    let mut b = bytes.to_vec();
    for i in 0..b.len() * 8 {
        b[i / 8] ^= 1 << (i % 8);
        assert!(!accept(&b), "{what}: flipping bit {i} (byte {}) was not detected", i / 8);
        b[i / 8] ^= 1 << (i % 8);
    }
}

#[test]
fn every_bit_of_a_sealed_record_is_protected() {
    let h = keys();
    let header = RecordHeader::first(h.notes.id, RecordId::from_bytes([1; 16]), RecordKind::Note);
    let v1 = envelope::seal_with_rng(&h.notes, &header, b"S: O: A: P:", &mut rng(2)).unwrap();
    every_bit_flip_is_refused("record v1", &v1, |b| envelope::open(&h.notes, b).is_ok());
    let v2 = envelope::seal_with_rng(&h.notes, &header.next(&v1).unwrap(), b"second", &mut rng(3)).unwrap();
    every_bit_flip_is_refused("record v2", &v2, |b| envelope::open(&h.notes, b).is_ok());
}

#[test]
fn every_bit_of_a_key_file_is_protected() {
    let secret = VaultSecret::generate_with_rng(&mut rng(4));
    let bg = kluis_core::escrow::BreakGlassSecret::generate_with_rng(&mut rng(5)).public_key();
    let text = UnlockedKeyFile::new(secret, "Practice key", 1_795_000_000, Some(bg)).unwrap().to_text().unwrap();
    every_bit_flip_is_refused("key file", text.as_bytes(), |b| {
        KeyFile::parse(b).and_then(|f| f.unlock(None)).is_ok_and(|u| u.info().break_glass == Some(bg))
    });
}

#[test]
fn every_bit_of_a_manifest_is_protected() {
    let h = keys();
    let head = verify(&Manifest::genesis(&h.notes, 5).encode(), &h.notes, None, &[]).unwrap();
    let changes = BTreeMap::from([
        (RecordId::from_bytes([1; 16]), Entry { version: 3, state: EntryState::Live(EnvelopeHash::of(b"a")) }),
        (RecordId::from_bytes([2; 16]), Entry { version: 2, state: EntryState::Deleted }),
    ]);
    let (_, next) = head.prepare_update(&h.notes, changes, 6).unwrap();
    every_bit_flip_is_refused("manifest", &next.encode(), |b| verify(b, &h.notes, None, &[]).is_ok());
}

mod paper_backup {
    use super::*;
    use kluis_core::{Error, paper};

    fn file(seed: u8, label: &str, bg: bool) -> UnlockedKeyFile {
        let bg =
            bg.then(|| kluis_core::escrow::BreakGlassSecret::generate_with_rng(&mut rng(seed ^ 0x55)).public_key());
        UnlockedKeyFile::new(VaultSecret::generate_with_rng(&mut rng(seed)), label, u64::from(seed) * 1_000_003, bg)
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trips_for_any_label(seed in any::<u8>(), label in "[\\PC]{1,64}", bg in any::<bool>(), lower in any::<bool>()) {
            prop_assume!(label.trim() == label && label.len() <= 255 && !label.chars().any(char::is_control));
            let f = file(seed, &label, bg);
            let mut typed = paper::encode(&f).join(" - ");
            if lower {
                typed = typed.to_lowercase();
            }
            let back = paper::decode(&typed).unwrap();
            prop_assert_eq!(back.secret(), f.secret());
            prop_assert_eq!(back.info(), f.info());
            prop_assert_eq!(back.to_text().unwrap(), f.to_text().unwrap());
        }

        #[test]
        fn a_single_changed_character_is_never_accepted(seed in any::<u8>(), pos in any::<prop::sample::Index>(), to in 0u8..32) {
            let f = file(seed, "Dr A. Jansen", true);
            let groups = paper::encode(&f);
            let mut chars: Vec<u8> = groups.concat().into_bytes();
            let i = pos.index(chars.len());
            let new = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[usize::from(to)];
            prop_assume!(chars[i] != new);
            chars[i] = new;
            match paper::decode(std::str::from_utf8(&chars).unwrap()) {
                Err(Error::PaperTypo { group }) => prop_assert_eq!(group, i / paper::GROUP_CHARS + 1),
                Err(Error::PaperChecksum) => {} // the 1-in-32 case where the group check collides
                other => prop_assert!(false, "accepted or misreported: {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn swapped_dropped_or_repeated_groups_are_refused() {
        let f = file(9, "Dr A. Jansen", false);
        let g = paper::encode(&f);
        let mut swapped = g.to_vec();
        swapped.swap(2, 3);
        assert!(matches!(paper::decode(&swapped.join(" ")), Err(Error::PaperTypo { group: 3 | 4 })));
        let dropped: Vec<_> = g.iter().enumerate().filter(|(i, _)| *i != 5).map(|(_, s)| s.clone()).collect();
        assert!(paper::decode(&dropped.join(" ")).is_err());
        let mut repeated = g.to_vec();
        repeated.push(g.last().unwrap().clone());
        assert!(paper::decode(&repeated.join(" ")).is_err());
        // Row numbers as printed are ignored.
        let rows: Vec<String> =
            g.chunks(6).enumerate().map(|(r, c)| format!("{:>2}.  {}", r + 1, c.join("  "))).collect();
        assert_eq!(paper::decode(&rows.join("\n")).unwrap().secret(), f.secret());
    }
}
