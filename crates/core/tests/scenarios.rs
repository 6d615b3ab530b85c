//! A malicious-server test double (security-anchors §4.4): a store that keeps the real objects
//! but misbehaves on purpose. The client's checks must name every misbehaviour. Runs natively
//! and in headless Chromium.
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

use harness::rng;
use kluis_core::escrow::{self, BreakGlassSecret};
use kluis_core::manifest::{Entry, EntryState, HighWater, Manifest, ManifestUpdate, VerifiedManifest, verify};
use kluis_core::{
    EnvelopeHash, Error, KeyHierarchy, RecordHeader, RecordId, RecordKind, UnlockedKeyFile, VaultKeys, VaultSecret,
    envelope,
};

/// What the server stores for one vault: every envelope version, and every manifest it was sent.
#[derive(Default, Clone)]
struct Store {
    versions: BTreeMap<RecordId, Vec<Vec<u8>>>,
    manifests: Vec<Manifest>,
    /// Every save, in order: update `i` takes the manifest from counter `i` to `i + 1`.
    updates: Vec<Vec<u8>>,
}

impl Store {
    fn current(&self) -> &Manifest {
        self.manifests.last().unwrap()
    }
    /// The honest server: applies the update without keys, keeps the envelopes.
    fn save(&mut self, update: &ManifestUpdate, envelopes: Vec<(RecordId, Vec<u8>)>) {
        let next = self.current().apply(&ManifestUpdate::decode(&update.encode()).unwrap()).unwrap();
        for (id, env) in envelopes {
            self.versions.entry(id).or_default().push(env);
        }
        self.manifests.push(next);
        self.updates.push(update.encode());
    }
    /// The saves since counter `c`, as the sync endpoint returns them with the manifest.
    fn since(&self, c: u64) -> Vec<&[u8]> {
        self.updates.iter().filter(|u| ManifestUpdate::decode(u).unwrap().counter > c).map(Vec::as_slice).collect()
    }
    fn listing(&self) -> Vec<(RecordId, Vec<u8>)> {
        self.current().live().map(|(id, _)| (*id, self.versions[id].last().unwrap().clone())).collect()
    }
}

/// A client that keeps its high-water mark, as the browser app does.
struct Client {
    keys: VaultKeys,
    high_water: Option<HighWater>,
    head: VerifiedManifest,
}

impl Client {
    fn new(keys: VaultKeys, store: &mut Store) -> Self {
        let genesis = Manifest::genesis(&keys, 1_000);
        store.manifests.push(genesis.clone());
        let head = verify(&genesis.encode(), &keys, None, &[]).unwrap();
        Client { high_water: Some(head.high_water()), head, keys }
    }

    fn write(&mut self, store: &mut Store, id: RecordId, text: &[u8], seed: u8) {
        let header = match store.versions.get(&id).and_then(|v| v.last()) {
            Some(prev) => envelope::header_of(prev).unwrap().next(prev).unwrap(),
            None => RecordHeader::first(self.keys.id, id, RecordKind::Note),
        };
        let env = envelope::seal_with_rng(&self.keys, &header, text, &mut rng(seed)).unwrap();
        let change = Entry { version: header.version, state: EntryState::Live(EnvelopeHash::of(&env)) };
        let (update, next) = self.head.prepare_update(&self.keys, BTreeMap::from([(id, change)]), 2_000).unwrap();
        store.save(&update, vec![(id, env)]);
        self.accept(&next.encode(), &[&update.encode()]).unwrap();
    }

    fn accept(&mut self, manifest: &[u8], updates: &[&[u8]]) -> Result<(), Error> {
        let head = verify(manifest, &self.keys, self.high_water.as_ref(), updates)?;
        self.high_water = Some(head.high_water());
        self.head = head;
        Ok(())
    }

    /// Fetch: verify the manifest, then the listing, then decrypt every record.
    fn sync(&mut self, store: &Store, listing: &[(RecordId, Vec<u8>)]) -> Result<Vec<Vec<u8>>, Error> {
        let seen = self.high_water.map_or(0, |hw| hw.counter);
        self.accept(&store.current().encode(), &store.since(seen))?;
        self.head.check_listing(listing.iter().map(|(id, b)| (*id, b.as_slice())))?;
        listing.iter().map(|(_, b)| envelope::open(&self.keys, b).map(|(_, pt)| pt.to_vec())).collect()
    }
}

fn setup() -> (KeyHierarchy, Store, Client, [RecordId; 3]) {
    let secret = VaultSecret::generate_with_rng(&mut rng(1));
    let h = KeyHierarchy::derive(&secret);
    let mut store = Store::default();
    let mut client = Client::new(h.notes.clone(), &mut store);
    let ids = [RecordId::from_bytes([1; 16]), RecordId::from_bytes([2; 16]), RecordId::from_bytes([3; 16])];
    client.write(&mut store, ids[0], b"note one", 10);
    client.write(&mut store, ids[1], b"note two", 11);
    client.write(&mut store, ids[2], b"note three", 12);
    client.write(&mut store, ids[0], b"note one, revised", 13);
    (h, store, client, ids)
}

#[test]
fn honest_server_round_trip() {
    let (_, store, mut client, _) = setup();
    let notes = client.sync(&store, &store.listing()).unwrap();
    assert_eq!(notes, vec![b"note one, revised".to_vec(), b"note two".to_vec(), b"note three".to_vec()]);
    assert_eq!(client.high_water.unwrap().counter, 4);
}

#[test]
fn replaying_an_older_record_version_is_detected() {
    let (_, store, mut client, ids) = setup();
    let mut listing = store.listing();
    listing[0].1 = store.versions[&ids[0]][0].clone();
    assert_eq!(client.sync(&store, &listing), Err(Error::StaleVersion { expected: 2, got: 1 }));
}

#[test]
fn swapping_two_records_is_detected() {
    let (_, store, mut client, _) = setup();
    let mut listing = store.listing();
    let b0 = listing[0].1.clone();
    listing[0].1 = listing[1].1.clone();
    listing[1].1 = b0;
    assert_eq!(client.sync(&store, &listing), Err(Error::RecordSwapped));
}

#[test]
fn dropping_a_record_from_a_listing_is_detected() {
    let (_, store, mut client, _) = setup();
    let mut listing = store.listing();
    listing.remove(1);
    assert_eq!(client.sync(&store, &listing), Err(Error::RecordMissing));
}

#[test]
fn serving_another_vaults_record_is_detected() {
    let (h, store, mut client, _) = setup();
    // The same practitioner's identities vault: same key file, other vault.
    let other = RecordHeader::first(h.identities.id, RecordId::from_bytes([1; 16]), RecordKind::Identity);
    let foreign = envelope::seal_with_rng(&h.identities, &other, b"name", &mut rng(20)).unwrap();
    let mut listing = store.listing();
    listing[0].1 = foreign.clone();
    assert_eq!(client.sync(&store, &listing), Err(Error::ForeignVault));
    assert_eq!(envelope::open(&h.notes, &foreign).unwrap_err(), Error::ForeignVault);
}

#[test]
fn injecting_a_record_is_detected() {
    let (_, store, mut client, _) = setup();
    let mut listing = store.listing();
    // The server cannot make an envelope, but it can replay one under a new id.
    listing.push((RecordId::from_bytes([9; 16]), listing[0].1.clone()));
    assert_eq!(client.sync(&store, &listing), Err(Error::RecordSwapped));
    // Or present a record of this vault that the manifest does not list (one the client sealed
    // but never saved, say).
    let mut listing = store.listing();
    let stray = RecordHeader::first(client.keys.id, RecordId::from_bytes([9; 16]), RecordKind::Note);
    let bytes = envelope::seal_with_rng(&client.keys, &stray, b"x", &mut rng(3)).unwrap();
    listing.push((RecordId::from_bytes([9; 16]), bytes));
    assert_eq!(client.sync(&store, &listing), Err(Error::InjectedRecord));
}

#[test]
fn rolling_back_the_manifest_is_detected() {
    let (_, store, mut client, _) = setup();
    client.sync(&store, &store.listing()).unwrap();
    let old = &store.manifests[2];
    assert_eq!(client.accept(&old.encode(), &[]), Err(Error::Rollback { seen: 4, got: 2 }));
    // A new device with no high-water mark accepts an authentic old state: the documented limit
    // (docs/THREAT-MODEL.md), which comparing head counters between devices narrows.
    assert_eq!(verify(&old.encode(), &client.keys, None, &[]).unwrap().high_water().counter, 2);
}

#[test]
fn forking_the_manifest_is_detected() {
    let (_, mut store, mut client, ids) = setup();
    client.sync(&store, &store.listing()).unwrap();
    // A second device writes from the same state; the server shows each device its own branch.
    let mut other = Client { keys: client.keys.clone(), high_water: None, head: client.head.clone() };
    let mut branch = store.clone();
    other.write(&mut branch, ids[1], b"device B edit", 30);
    client.write(&mut store, ids[2], b"device A edit", 31);
    // Device A is then shown device B's branch at the same counter.
    assert_eq!(client.accept(&branch.current().encode(), &[]), Err(Error::Fork { counter: 5 }));
    // Or later, when B's branch is ahead: A's own save would silently vanish, but the branch's
    // saves do not chain from the state A saw.
    other.write(&mut branch, ids[0], b"device B again", 32);
    assert_eq!(branch.current().counter, 6);
    assert_eq!(client.accept(&branch.current().encode(), &branch.since(5)), Err(Error::Fork { counter: 6 }));
    assert_eq!(client.accept(&branch.current().encode(), &branch.since(4)), Err(Error::Fork { counter: 6 }));
    // The honest continuation of A's own branch is accepted.
    let mut next = store.clone();
    other.high_water = None;
    other.head = client.head.clone();
    other.write(&mut next, ids[1], b"device B, after seeing A", 33);
    client.accept(&next.current().encode(), &next.since(5)).unwrap();
}

#[test]
fn a_newer_manifest_without_the_saves_in_between_is_refused() {
    let (_, mut store, mut client, ids) = setup();
    let mut other = Client { keys: client.keys.clone(), high_water: None, head: client.head.clone() };
    other.write(&mut store, ids[1], b"from another device", 40);
    other.write(&mut store, ids[2], b"and again", 41);
    assert_eq!(client.accept(&store.current().encode(), &[]), Err(Error::Fork { counter: 6 }));
    assert_eq!(client.accept(&store.current().encode(), &store.since(5)), Err(Error::Fork { counter: 6 }));
    client.accept(&store.current().encode(), &store.since(4)).unwrap();
}

#[test]
fn a_server_that_alters_a_saved_change_is_detected() {
    let (_, mut store, mut client, ids) = setup();
    let env = envelope::seal_with_rng(
        &client.keys,
        &RecordHeader::first(client.keys.id, RecordId::from_bytes([4; 16]), RecordKind::Note),
        b"n",
        &mut rng(40),
    )
    .unwrap();
    let change = Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) };
    let (mut update, _) =
        client.head.prepare_update(&client.keys, BTreeMap::from([(RecordId::from_bytes([4; 16]), change)]), 3).unwrap();
    // The server also marks another record deleted while applying the save.
    update.changes.insert(ids[1], Entry { version: 2, state: EntryState::Deleted });
    store.save(&update, vec![(RecordId::from_bytes([4; 16]), env)]);
    assert_eq!(client.accept(&store.current().encode(), &store.since(4)), Err(Error::ManifestMac));
}

#[test]
fn the_server_refuses_updates_that_do_not_follow() {
    let (_, store, client, ids) = setup();
    let change = Entry { version: 1, state: EntryState::Deleted };
    let (mut update, _) = client
        .head
        .prepare_update(&client.keys, BTreeMap::from([(ids[0], Entry { version: 3, ..change })]), 3)
        .unwrap();
    // A counter that does not rise, or rises beyond what a browser's numbers hold exactly.
    for counter in [store.current().counter, 0, kluis_core::spec::MAX_COUNTER + 1] {
        let wrong = ManifestUpdate { counter, ..update.clone() };
        assert!(matches!(store.current().apply(&wrong), Err(Error::BadUpdate(_))), "counter {counter}");
    }
    // Made from another state than the server's head (compare-and-set on the chain).
    let mut stale = update.clone();
    stale.prev_chain = store.manifests[3].chain;
    assert!(matches!(store.current().apply(&stale), Err(Error::BadUpdate(_))));
    update.changes.insert(ids[1], change); // version 1 is not newer than version 1
    assert!(matches!(store.current().apply(&update), Err(Error::BadUpdate(_))));
}

#[test]
fn version_history_must_be_an_unbroken_chain_from_version_one() {
    let (_, mut store, mut client, ids) = setup();
    client.write(&mut store, ids[0], b"note one, third", 50);
    let h: Vec<&[u8]> = store.versions[&ids[0]].iter().map(Vec::as_slice).collect();
    assert_eq!(client.head.check_history(&ids[0], &h).unwrap().len(), 3);
    // Trimmed oldest, a gap, reordered, or another record's version in the chain.
    assert_eq!(client.head.check_history(&ids[0], &h[1..]), Err(Error::BrokenChain));
    assert_eq!(client.head.check_history(&ids[0], &[h[0], h[2]]), Err(Error::BrokenChain));
    assert_eq!(client.head.check_history(&ids[0], &[h[1], h[0], h[2]]), Err(Error::BrokenChain));
    let other = store.versions[&ids[1]][0].as_slice();
    assert_eq!(client.head.check_history(&ids[0], &[other, h[1], h[2]]), Err(Error::RecordSwapped));
}

#[test]
fn break_glass_recovers_the_vault_and_refuses_forgeries() {
    let secret = VaultSecret::generate_with_rng(&mut rng(60));
    let bg = BreakGlassSecret::generate_with_rng(&mut rng(61));
    // The break-glass public key reaches the client only inside the key file.
    let file = UnlockedKeyFile::new(secret.clone(), "Dr A. Jansen", 0, Some(bg.public_key())).unwrap();
    let reread = kluis_core::KeyFile::parse(file.to_text().unwrap().as_bytes()).unwrap().unlock(None).unwrap();
    let bg_pk = reread.info().break_glass.unwrap();
    let h = reread.hierarchy();
    let header = RecordHeader::first(h.notes.id, RecordId::from_bytes([5; 16]), RecordKind::Escrow);
    let sealed = escrow::seal_with_rng(reread.secret(), &bg_pk, &header, &mut rng(62)).unwrap();
    let fp = secret.public_key().fingerprint();
    let recovered = escrow::open(&sealed, &bg, &fp).unwrap();
    assert_eq!(recovered, secret);
    // The recovered secret opens the vault's notes.
    let note = envelope::seal_with_rng(
        &h.notes,
        &RecordHeader::first(h.notes.id, RecordId::from_bytes([6; 16]), RecordKind::Note),
        b"clinical",
        &mut rng(63),
    )
    .unwrap();
    assert_eq!(envelope::open(&KeyHierarchy::derive(&recovered).notes, &note).unwrap().1.as_slice(), b"clinical");
    // An escrow record is not a note, and a note is not an escrow record.
    assert!(envelope::open(&h.notes, &sealed).is_err());
    assert!(escrow::open(&note, &bg, &fp).is_err());
    // A low-order (all-zero) encapsulated key is refused, opaquely.
    let mut zero_enc = sealed.clone();
    let at = sealed.windows(3).position(|w| w == [0x08, 0x58, 0x20]).unwrap() + 3;
    zero_enc[at..at + 32].fill(0);
    assert_eq!(escrow::open(&zero_enc, &bg, &fp).unwrap_err(), Error::Decrypt);
}

#[test]
fn seal_refuses_bad_arguments() {
    let secret = VaultSecret::generate_with_rng(&mut rng(70));
    let h = KeyHierarchy::derive(&secret);
    let hdr = RecordHeader::first(h.notes.id, RecordId::from_bytes([1; 16]), RecordKind::Note);
    // Keys of another vault than the header names.
    assert!(envelope::seal_with_rng(&h.identities, &hdr, b"x", &mut rng(1)).is_err());
    // An escrow header through the record path.
    let esc = RecordHeader { kind: RecordKind::Escrow, ..hdr };
    assert!(envelope::seal_with_rng(&h.notes, &esc, b"x", &mut rng(1)).is_err());
    // Version 2 without a previous hash.
    let v2 = RecordHeader { version: 2, ..hdr };
    assert!(envelope::seal_with_rng(&h.notes, &v2, b"x", &mut rng(1)).is_err());
}

#[test]
fn debug_output_never_shows_key_bytes() {
    let secret = VaultSecret::generate_with_rng(&mut rng(80));
    let bg = BreakGlassSecret::generate_with_rng(&mut rng(81));
    let file = UnlockedKeyFile::new(secret.clone(), "Dr A. Jansen", 0, Some(bg.public_key())).unwrap();
    let parsed = kluis_core::KeyFile::parse(file.to_text().unwrap().as_bytes()).unwrap();
    let h = KeyHierarchy::derive(&secret);
    let pass = kluis_core::Passphrase::new("otter quilt harbour ninety vivid".into());
    let printed = format!("{secret:?} {bg:?} {file:?} {parsed:?} {h:?} {pass:?}");
    for needle in [hex::encode(secret.to_bytes().as_slice()), hex::encode(bg.to_bytes().as_slice())] {
        assert!(!printed.contains(&needle), "key bytes printed");
    }
    // Nor as a list of numbers, Rust's default Debug for arrays.
    let as_list = format!("{:?}", secret.to_bytes().as_slice());
    assert!(!printed.contains(&as_list[1..as_list.len() - 1]));
    assert!(!printed.contains("otter"));
    // What is printed instead is the public fingerprint.
    assert!(printed.contains(&secret.public_key().fingerprint().to_string()));
}

#[test]
fn serving_another_branchs_copy_of_the_same_version_is_detected() {
    let (_, mut store, mut client, ids) = setup();
    // Two devices each write version 3 of the same record from the same state, on a fork.
    let mut other = Client { keys: client.keys.clone(), high_water: None, head: client.head.clone() };
    let mut branch = store.clone();
    other.write(&mut branch, ids[0], b"device B's version 3", 90);
    client.write(&mut store, ids[0], b"device A's version 3", 91);
    // The server serves A its own manifest but B's envelope: same id, same version, valid
    // under the vault key; only the manifest's hash tells them apart.
    let mut listing = store.listing();
    listing[0].1 = branch.versions[&ids[0]].last().unwrap().clone();
    assert_eq!(envelope::header_of(&listing[0].1).unwrap().version, 3);
    assert!(envelope::open(&client.keys, &listing[0].1).is_ok());
    assert_eq!(client.sync(&store, &listing), Err(Error::RecordSwapped));
}

#[test]
fn an_accepted_restore_continues_the_counter_above_the_replaced_high_water_mark() {
    let (_, mut store, mut client, ids) = setup();
    client.sync(&store, &store.listing()).unwrap();
    let backup = store.clone(); // counter 4
    let new_id = RecordId::from_bytes([9; 16]);
    client.write(&mut store, ids[1], b"note two, revised", 50);
    client.write(&mut store, new_id, b"a note after the backup", 51);
    let replaced = client.high_water.unwrap();
    assert_eq!(replaced.counter, 6);
    let seen = client.head.clone();

    // The server is restored from the backup: to the device, a rollback.
    let mut restored = backup.clone();
    assert_eq!(client.sync(&restored, &restored.listing()), Err(Error::Rollback { seen: 6, got: 4 }));
    assert_eq!(client.high_water, Some(replaced), "a refused state changes nothing");
    // The restored state is authentic and complete, and the device can say what it lacks.
    let candidate = verify(&restored.current().encode(), &client.keys, None, &[]).unwrap();
    candidate.check_listing(restored.listing().iter().map(|(id, b)| (*id, b.as_slice()))).unwrap();
    let lost = candidate.lost_since(&seen);
    assert_eq!((lost.missing, lost.older, lost.unseen), (vec![new_id], vec![ids[1]], vec![]));

    // The user accepts: the confirmation save continues above the replaced mark.
    let confirm_id = RecordId::from_bytes([10; 16]);
    let env = envelope::seal_with_rng(
        &client.keys,
        &RecordHeader::first(client.keys.id, confirm_id, RecordKind::Note),
        b"restore accepted",
        &mut rng(52),
    )
    .unwrap();
    let change = Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) };
    let (update, next) = candidate
        .prepare_restore_update(&client.keys, BTreeMap::from([(confirm_id, change)]), 5_000, &replaced)
        .unwrap();
    assert_eq!(update.counter, 7);
    restored.save(&update, vec![(confirm_id, env)]);
    assert_eq!(restored.current(), &next, "the server applies the skip as the client did");
    let accepted = verify(&next.encode(), &client.keys, None, &[]).unwrap();
    client.high_water = Some(accepted.high_water());
    client.head = accepted;

    // A device that last saw the backed-up state follows without a question.
    let mut follower = Client { keys: client.keys.clone(), high_water: None, head: candidate.clone() };
    follower.high_water = Some(candidate.high_water());
    assert_eq!(follower.sync(&restored, &restored.listing()).unwrap().len(), 4);
    assert_eq!(follower.high_water.unwrap().counter, 7);
    // A device that saw the replaced state is told the history differs (it must ask its user).
    let mut other = Client { keys: client.keys.clone(), high_water: Some(replaced), head: seen.clone() };
    assert_eq!(other.sync(&restored, &restored.listing()), Err(Error::Fork { counter: 7 }));
    let lost = verify(&restored.current().encode(), &other.keys, None, &[]).unwrap().lost_since(&seen);
    assert_eq!((lost.missing, lost.older, lost.unseen), (vec![new_id], vec![ids[1]], vec![confirm_id]));
    // And the pre-restore state can never come back as current.
    assert_eq!(client.accept(&store.current().encode(), &[]), Err(Error::Rollback { seen: 7, got: 6 }));
}
