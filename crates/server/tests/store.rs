//! The record store on a real sled directory: atomic compare-and-set saves, immutability,
//! durability across reopening, delta sync, and a client that verifies what it gets back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use kluis_core::manifest::{Entry, EntryState, HighWater, Manifest, VerifiedManifest, verify};
use kluis_core::{EnvelopeHash, KeyHierarchy, RecordHeader, RecordId, RecordKind, VaultKeys, VaultSecret, envelope};
use kluis_server::store::{Store, StoreError};

struct Client {
    keys: VaultKeys,
    head: VerifiedManifest,
    hw: HighWater,
}

impl Client {
    async fn new(store: &Store, seed: u8) -> Self {
        let keys = KeyHierarchy::derive(&VaultSecret::from_bytes([seed; 32])).notes;
        let genesis = Manifest::genesis(&keys, 1).encode();
        store.create_vault([seed; 16], &genesis).await.unwrap();
        let head = verify(&genesis, &keys, None, &[]).unwrap();
        Client { hw: head.high_water(), head, keys }
    }

    /// Prepares a save of `notes` (new records, or new versions of existing ones).
    fn prepare(&self, store: &Store, notes: &[(RecordId, &[u8])]) -> (Vec<u8>, Vec<(RecordId, Vec<u8>)>) {
        let mut changes = BTreeMap::new();
        let mut envs = Vec::new();
        for (id, text) in notes {
            let header = match store.record(&self.keys.id, id, None) {
                Ok(prev) => envelope::header_of(&prev).unwrap().next(&prev).unwrap(),
                Err(_) => RecordHeader::first(self.keys.id, *id, RecordKind::Note),
            };
            let env = envelope::seal(&self.keys, &header, text).unwrap();
            changes.insert(*id, Entry { version: header.version, state: EntryState::Live(EnvelopeHash::of(&env)) });
            envs.push((*id, env));
        }
        let (update, _) = self.head.prepare_update(&self.keys, changes, 2).unwrap();
        (update.encode(), envs)
    }

    /// Syncs: verifies the head against the high-water mark and the saves since, then every record.
    async fn sync(&mut self, store: &Store) -> Vec<Vec<u8>> {
        let head = store.head(&self.keys.id).await.unwrap();
        let since = store.updates_since(&self.keys.id, self.hw.counter).unwrap();
        let since: Vec<&[u8]> = since.iter().map(Vec::as_slice).collect();
        self.head = verify(&head, &self.keys, Some(&self.hw), &since).unwrap();
        self.hw = self.head.high_water();
        let records = store.records_since(&self.keys.id, 0).await.unwrap();
        self.head.check_listing(records.iter().map(|(id, b)| (*id, b.as_slice()))).unwrap();
        records.iter().map(|(_, b)| envelope::open(&self.keys, b).unwrap().1).collect()
    }
}

fn id(n: u8) -> RecordId {
    RecordId::from_bytes([n; 16])
}

#[tokio::test]
async fn saves_apply_atomically_and_a_client_verifies_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut c = Client::new(&store, 1).await;
    let (u, e) = c.prepare(&store, &[(id(1), b"first"), (id(2), b"second")]);
    store.save(&c.keys.id, &u, &e).await.unwrap();
    assert_eq!(c.sync(&store).await, vec![b"first".to_vec(), b"second".to_vec()]);
    let (u, e) = c.prepare(&store, &[(id(1), b"first, revised")]);
    store.save(&c.keys.id, &u, &e).await.unwrap();
    assert_eq!(c.sync(&store).await, vec![b"first, revised".to_vec(), b"second".to_vec()]);
    // History keeps every version; delta sync returns what changed after counter 1.
    assert_eq!(store.history(&c.keys.id, &id(1)).unwrap().len(), 2);
    let delta = store.records_since(&c.keys.id, 1).await.unwrap();
    assert_eq!(delta.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![id(1)]);
    let versions = store.history(&c.keys.id, &id(1)).unwrap();
    let versions: Vec<&[u8]> = versions.iter().map(Vec::as_slice).collect();
    assert_eq!(c.head.check_history(&id(1), &versions).unwrap().len(), 2);
}

#[tokio::test]
async fn a_stale_save_is_a_conflict_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = Client::new(&store, 2).await;
    let (u1, e1) = c.prepare(&store, &[(id(1), b"from device A")]);
    let (u2, e2) = c.prepare(&store, &[(id(2), b"from device B")]);
    store.save(&c.keys.id, &u1, &e1).await.unwrap();
    let head = store.head(&c.keys.id).await.unwrap();
    assert!(matches!(store.save(&c.keys.id, &u2, &e2).await, Err(StoreError::Conflict)));
    assert_eq!(store.head(&c.keys.id).await.unwrap(), head);
    assert!(matches!(store.record(&c.keys.id, &id(2), Some(1)), Err(StoreError::NotFound)));
    assert_eq!(store.updates_since(&c.keys.id, 0).unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_saves_from_one_state_let_exactly_one_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = Client::new(&store, 3).await;
    let vault = c.keys.id;
    let saves: Vec<_> = (0..8u8).map(|i| c.prepare(&store, &[(id(10 + i), b"concurrent")])).collect();
    let tasks: Vec<_> = saves
        .into_iter()
        .map(|(u, e)| {
            let store = store.clone();
            tokio::spawn(async move { store.save(&vault, &u, &e).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(Manifest::decode(&store.head(&c.keys.id).await.unwrap()).unwrap().entries.len(), 1);
}

#[tokio::test]
async fn saves_that_contradict_themselves_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = Client::new(&store, 4).await;
    let (u, e) = c.prepare(&store, &[(id(1), b"one"), (id(2), b"two")]);
    let head = store.head(&c.keys.id).await.unwrap();
    // An envelope missing, an extra one, or one that is not the envelope the update names.
    assert!(matches!(store.save(&c.keys.id, &u, &e[..1]).await, Err(StoreError::BadRequest(_))));
    let mut extra = e.clone();
    extra.push((id(3), e[0].1.clone()));
    assert!(matches!(store.save(&c.keys.id, &u, &extra).await, Err(StoreError::BadRequest(_))));
    let swapped = vec![(id(1), e[1].1.clone()), (id(2), e[0].1.clone())];
    assert!(matches!(store.save(&c.keys.id, &u, &swapped).await, Err(StoreError::BadRequest(_))));
    assert!(matches!(store.save(&c.keys.id, b"not cbor", &e).await, Err(StoreError::BadRequest(_))));
    assert_eq!(store.head(&c.keys.id).await.unwrap(), head);
    assert!(store.records_since(&c.keys.id, 0).await.unwrap().is_empty());
    // A vault is created once, from a genesis manifest only.
    let genesis = Manifest::genesis(&c.keys, 1).encode();
    assert!(matches!(store.create_vault([0xee; 16], &genesis).await, Err(StoreError::Exists)));
    assert!(matches!(store.create_vault([0xef; 16], &head[..head.len() - 1]).await, Err(StoreError::BadRequest(_))));
    // The honest save still works afterwards.
    store.save(&c.keys.id, &u, &e).await.unwrap();
}

#[tokio::test]
async fn acknowledged_saves_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, head) = {
        let store = Store::open(dir.path()).unwrap();
        let c = Client::new(&store, 5).await;
        let (u, e) = c.prepare(&store, &[(id(1), b"durable")]);
        store.save(&c.keys.id, &u, &e).await.unwrap();
        (c.keys.id, store.head(&c.keys.id).await.unwrap())
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.head(&vault).await.unwrap(), head);
    assert_eq!(store.records_since(&vault, 0).await.unwrap().len(), 1);
}

/// Copies a (closed) store directory: a backup of the server's disk.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_restored_store_takes_the_save_that_accepts_it_above_the_old_counter() {
    let live = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let mut c = {
        let store = Store::open(live.path()).unwrap();
        let mut c = Client::new(&store, 6).await;
        let (u, e) = c.prepare(&store, &[(id(1), b"before the backup")]);
        store.save(&c.keys.id, &u, &e).await.unwrap();
        c.sync(&store).await;
        c
    };
    copy_dir(live.path(), backup.path());
    let backed_up = c.hw;
    {
        let store = Store::open(live.path()).unwrap();
        for text in [&b"after the backup"[..], b"and again"] {
            let (u, e) = c.prepare(&store, &[(id(2), text)]);
            store.save(&c.keys.id, &u, &e).await.unwrap();
            c.sync(&store).await;
        }
    }
    assert_eq!(c.hw.counter, 3);

    // The server comes back from the backup: an older state, which the device refuses...
    let store = Store::open(backup.path()).unwrap();
    let head = store.head(&c.keys.id).await.unwrap();
    let refused = verify(&head, &c.keys, Some(&c.hw), &[]);
    assert_eq!(refused, Err(kluis_core::Error::Rollback { seen: 3, got: 1 }));
    // ...until its user accepts it: the accepting save skips to counter 4, and the store takes it.
    let candidate = verify(&head, &c.keys, None, &[]).unwrap();
    let env = envelope::seal(&c.keys, &RecordHeader::first(c.keys.id, id(3), RecordKind::Note), b"accepted").unwrap();
    let change = Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) };
    let (u, _) = candidate.prepare_restore_update(&c.keys, BTreeMap::from([(id(3), change)]), 9, &c.hw).unwrap();
    assert_eq!(u.counter, 4);
    // The same skip from any other state is a conflict.
    let stale = kluis_core::manifest::ManifestUpdate { prev_chain: c.hw.chain, ..u.clone() };
    assert!(matches!(
        store.save(&c.keys.id, &stale.encode(), &[(id(3), env.clone())]).await,
        Err(StoreError::Conflict)
    ));
    store.save(&c.keys.id, &u.encode(), &[(id(3), env)]).await.unwrap();
    // A device that last saw the backed-up state follows over the skip.
    c.hw = backed_up;
    c.head = candidate;
    assert_eq!(c.sync(&store).await, vec![b"before the backup".to_vec(), b"accepted".to_vec()]);
    assert_eq!(c.hw.counter, 4);
}
