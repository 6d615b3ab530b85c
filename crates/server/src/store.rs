//! The ciphertext record store on sled, behind a small interface (so a second backend can be
//! added without touching the HTTP handlers).
//!
//! Four trees, all keyed by vault id first (the layout is FORMAT.md §9):
//! - `heads`:   vault id → u64 counter ‖ u64 saved-at ‖ u64 entry count ‖ chain[32] ‖ MAC[32];
//! - `entries`: vault id ‖ record id → u64 version ‖ u8 live ‖ envelope hash[32] (zeros if deleted);
//! - `records`: vault id ‖ record id ‖ u64 version → the envelope, immutable once written;
//! - `updates`: vault id ‖ u64 counter → the save that produced that counter (FORMAT.md §4.4),
//!   which clients replay to check that a newer manifest descends from theirs;
//! - `owners`:  vault id → owner (a user id, 16 bytes), and `by_owner`: owner → vault id, written
//!   in the same transaction as the vault's genesis head (one vault per owner per store).
//!
//! The manifest is kept as entries, not one blob, so a save writes only what it changes (a
//! 10,000-record vault's manifest is half a megabyte). A save is one sled transaction over the
//! four trees with compare-and-set on the head, checked by kluis-core's keyless rules
//! (`ManifestUpdate::check_against`), and is acknowledged only after `flush` (concurrent savers
//! share flushes). Records are opaque: the store checks only that each one is the envelope the
//! save names (its SHA-256).

mod group_commit;

use std::path::Path;

use std::collections::BTreeMap;

use kluis_core::manifest::{Chain, Entry, EntryState, HeadState, Manifest, ManifestUpdate};
use kluis_core::{EnvelopeHash, RecordId, VaultId};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};

/// Largest envelope the store accepts (FORMAT.md §3.5).
pub const MAX_RECORD_BYTES: usize = kluis_core::spec::MAX_ENVELOPE_BYTES;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The save was made from another state than the current one (HTTP 409). Nothing changed.
    #[error("the vault changed since this save was prepared")]
    Conflict,
    /// No such vault or record (or not yours: the caller maps both to 404).
    #[error("not found")]
    NotFound,
    /// The request contradicts itself or the format (HTTP 400). Nothing changed.
    #[error("{0}")]
    BadRequest(&'static str),
    /// The vault exists already.
    #[error("the vault exists already")]
    Exists,
    /// Stored data that cannot be read back (HTTP 500; logged): never the client's fault.
    #[error("stored data is unreadable: {0}")]
    Corrupt(&'static str),
    /// sled failed.
    #[error("storage failure: {0}")]
    Io(#[from] sled::Error),
}

/// The record store.
#[derive(Debug, Clone)]
pub struct Store {
    /// The database (a backup reads every tree of it).
    db: sled::Db,
    owners: Tree,
    by_owner: Tree,
    /// The flusher that saves share (group commit).
    commit: std::sync::Arc<group_commit::GroupCommit>,
    /// Per vault (sharded): held for writing by a save from before its transaction until its
    /// flush has completed, and for reading while a manifest is assembled from its head and
    /// entries. So a reader never sees half a save, nor a save that is not yet on disk (which a
    /// crash could still lose, and which a device would then take for a rollback).
    locks: std::sync::Arc<[std::sync::Arc<tokio::sync::RwLock<()>>; LOCK_SHARDS]>,
    heads: Tree,
    entries: Tree,
    records: Tree,
    updates: Tree,
}

/// A head as stored: everything of the manifest but its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    counter: u64,
    saved_at_ms: u64,
    entry_count: u64,
    chain: Chain,
    mac: [u8; 32],
}

const HEAD_BYTES: usize = 8 + 8 + 8 + 32 + 32;
/// Lock shards: saves and reads of vaults in different shards never wait for each other.
const LOCK_SHARDS: usize = 64;
const ENTRY_BYTES: usize = 8 + 1 + 32;

impl Head {
    fn encode(&self) -> [u8; HEAD_BYTES] {
        let mut b = [0u8; HEAD_BYTES];
        let parts: [&[u8]; 5] = [
            &self.counter.to_be_bytes(),
            &self.saved_at_ms.to_be_bytes(),
            &self.entry_count.to_be_bytes(),
            &self.chain,
            &self.mac,
        ];
        let mut at = 0;
        for p in parts {
            b.iter_mut().skip(at).zip(p).for_each(|(d, s)| *d = *s);
            at += p.len();
        }
        b
    }

    fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let b: &[u8; HEAD_BYTES] = b.try_into().map_err(|_| StoreError::Corrupt("stored head unreadable"))?;
        let (counter, rest) = b.split_at(8);
        let (saved, rest) = rest.split_at(8);
        let (count, rest) = rest.split_at(8);
        let (chain, mac) = rest.split_at(32);
        let u = |s: &[u8]| u64::from_be_bytes(s.try_into().unwrap_or([0; 8]));
        Ok(Head {
            counter: u(counter),
            saved_at_ms: u(saved),
            entry_count: u(count),
            chain: chain.try_into().unwrap_or([0; 32]),
            mac: mac.try_into().unwrap_or([0; 32]),
        })
    }
}

fn encode_entry(e: &Entry) -> [u8; ENTRY_BYTES] {
    let mut b = [0u8; ENTRY_BYTES];
    let (version, rest) = b.split_at_mut(8);
    version.copy_from_slice(&e.version.to_be_bytes());
    let (live, hash) = rest.split_at_mut(1);
    if let EntryState::Live(h) = e.state {
        live.fill(1);
        hash.copy_from_slice(&h.to_bytes());
    }
    b
}

fn decode_entry(b: &[u8]) -> Result<Entry, StoreError> {
    let bad = || StoreError::Corrupt("stored entry unreadable");
    let b: &[u8; ENTRY_BYTES] = b.try_into().map_err(|_| bad())?;
    let (version, rest) = b.split_at(8);
    let (live, hash) = rest.split_at(1);
    let version = u64::from_be_bytes(version.try_into().map_err(|_| bad())?);
    let state = match live {
        [1] => EntryState::Live(EnvelopeHash::from_bytes(hash.try_into().map_err(|_| bad())?)),
        [0] => EntryState::Deleted,
        _ => return Err(bad()),
    };
    Ok(Entry { version, state })
}

/// A transaction's outcome as the store's error: its own abort reason, or sled's failure.
fn applied<T>(result: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Io(e),
    })
}

/// A vault's whole content, owned (`Store::export_vault`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedVault {
    /// The vault.
    pub vault: VaultId,
    /// Its current manifest.
    pub manifest: Vec<u8>,
    /// Every manifest update, from counter 1.
    pub updates: Vec<Vec<u8>>,
    /// Every record with every stored version, oldest first, ascending ids.
    pub records: Vec<(RecordId, Vec<Vec<u8>>)>,
}

impl ExportedVault {
    /// The export format's view of it (FORMAT.md §12).
    pub fn borrowed(&self) -> kluis_core::export::VaultExport<'_> {
        kluis_core::export::VaultExport {
            vault: self.vault,
            manifest: &self.manifest,
            updates: self.updates.iter().map(Vec::as_slice).collect(),
            records: self.records.iter().map(|(id, v)| (*id, v.iter().map(Vec::as_slice).collect())).collect(),
        }
    }
}

/// What a vault takes in a store (`Store::usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Records in the vault's current state.
    pub live_records: u64,
    /// Stored versions of all records, deleted ones' too.
    pub versions: u64,
    /// Bytes of those versions' envelopes.
    pub bytes: u64,
}

fn entry_key(vault: &VaultId, id: &RecordId) -> Vec<u8> {
    [&vault.to_bytes()[..], &id.to_bytes()].concat()
}

fn record_key(vault: &VaultId, id: &RecordId, version: u64) -> Vec<u8> {
    [&vault.to_bytes()[..], &id.to_bytes(), &version.to_be_bytes()].concat()
}

fn update_key(vault: &VaultId, counter: u64) -> Vec<u8> {
    [&vault.to_bytes()[..], &counter.to_be_bytes()].concat()
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::open(dir)?;
        Ok(Store {
            heads: db.open_tree("heads")?,
            entries: db.open_tree("entries")?,
            records: db.open_tree("records")?,
            updates: db.open_tree("updates")?,
            owners: db.open_tree("owners")?,
            by_owner: db.open_tree("by_owner")?,
            db: db.clone(),
            locks: std::sync::Arc::new(std::array::from_fn(|_| std::sync::Arc::default())),
            commit: std::sync::Arc::new(
                group_commit::GroupCommit::start(db.clone()).map_err(|e| StoreError::Io(sled::Error::Io(e)))?,
            ),
        })
    }

    /// The sled database, for a backup's snapshot.
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Waits until every write so far is on disk. Concurrent callers share flushes (group
    /// commit, `store/group_commit.rs`).
    pub async fn flush(&self) -> Result<(), StoreError> {
        Ok(self.commit.flush().await?)
    }

    /// How many flushes (fsyncs) this store has run: with group commit, far fewer than saves.
    pub fn flushes(&self) -> u64 {
        self.commit.flushes()
    }

    /// Creates `owner`'s vault from its genesis manifest (counter 0, no entries), once: a vault
    /// id that exists, or an owner who has a vault in this store already, is refused.
    pub async fn create_vault(&self, owner: [u8; 16], genesis: &[u8]) -> Result<VaultId, StoreError> {
        let m = Manifest::decode(genesis).map_err(|_| StoreError::BadRequest("not a manifest"))?;
        if m.counter != 0 || !m.entries.is_empty() || m.chain != kluis_core::manifest::genesis_chain(&m.vault) {
            return Err(StoreError::BadRequest("a new vault starts from a genesis manifest"));
        }
        let head = Head { counter: 0, saved_at_ms: m.saved_at_ms, entry_count: 0, chain: m.chain, mac: m.mac };
        let id = m.vault.to_bytes();
        let write = self.lock(&m.vault).write_owned().await;
        let result = (&self.heads, &self.owners, &self.by_owner).transaction(|(heads, owners, by_owner)| {
            if heads.get(id)?.is_some() || by_owner.get(owner)?.is_some() {
                return Err(ConflictableTransactionError::Abort(StoreError::Exists));
            }
            heads.insert(&id, &head.encode()[..])?;
            owners.insert(&id, &owner)?;
            by_owner.insert(&owner, &id)?;
            Ok(())
        });
        applied(result)?;
        self.flush().await?;
        drop(write);
        Ok(m.vault)
    }

    /// The owner of a vault (a user id), if the vault is in this store.
    pub fn owner(&self, vault: &VaultId) -> Result<Option<[u8; 16]>, StoreError> {
        Ok(self.owners.get(vault.to_bytes())?.and_then(|v| v.as_ref().try_into().ok()))
    }

    /// The vault `owner` has in this store, if any.
    pub fn vault_of(&self, owner: &[u8; 16]) -> Result<Option<VaultId>, StoreError> {
        Ok(self.by_owner.get(owner)?.and_then(|v| <[u8; 16]>::try_from(v.as_ref()).ok()).map(VaultId::from_bytes))
    }

    fn stored_head(&self, vault: &VaultId) -> Result<Head, StoreError> {
        Head::decode(&self.heads.get(vault.to_bytes())?.ok_or(StoreError::NotFound)?)
    }

    /// The current entries of a vault, in record-id order.
    fn entries(&self, vault: &VaultId) -> Result<BTreeMap<RecordId, Entry>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.entries.scan_prefix(vault.to_bytes()) {
            let (k, v) = kv?;
            let id: [u8; 16] =
                k.get(16..).and_then(|s| s.try_into().ok()).ok_or(StoreError::Corrupt("stored key unreadable"))?;
            out.insert(RecordId::from_bytes(id), decode_entry(&v)?);
        }
        Ok(out)
    }

    fn lock(&self, vault: &VaultId) -> std::sync::Arc<tokio::sync::RwLock<()>> {
        let i = usize::from(vault.to_bytes()[0]) % LOCK_SHARDS;
        self.locks.get(i).cloned().unwrap_or_default()
    }

    /// Runs a read of `vault` on the blocking pool, under the vault's read lock.
    async fn read<T: Send + 'static>(
        &self,
        vault: &VaultId,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let guard = self.lock(vault).read_owned().await;
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let out = f(&store);
            drop(guard);
            out
        })
        .await
        .map_err(|_| StoreError::Corrupt("a read task failed"))?
    }

    /// The current manifest of a vault, assembled from its head and entries.
    pub async fn head(&self, vault: &VaultId) -> Result<Vec<u8>, StoreError> {
        let vault = *vault;
        self.read(&vault, move |s| s.head_unlocked(&vault)).await
    }

    fn head_unlocked(&self, vault: &VaultId) -> Result<Vec<u8>, StoreError> {
        let h = self.stored_head(vault)?;
        let m = Manifest {
            vault: *vault,
            counter: h.counter,
            saved_at_ms: h.saved_at_ms,
            chain: h.chain,
            entries: self.entries(vault)?,
            mac: h.mac,
        };
        Ok(m.encode())
    }

    /// Applies a save atomically: the manifest update and the envelopes of its live changes.
    /// Writes only what the save changes. Returns once the save is durable.
    /// The update must be for `vault` (the one the caller was authorised for).
    pub async fn save(
        &self,
        vault: &VaultId,
        update: &[u8],
        envelopes: &[(RecordId, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let u = ManifestUpdate::decode(update).map_err(|_| StoreError::BadRequest("not a manifest update"))?;
        if u.vault != *vault {
            return Err(StoreError::BadRequest("the update is for another vault"));
        }
        // Every live change comes with exactly its envelope, and nothing else comes.
        let live = u.changes.values().filter(|e| matches!(e.state, EntryState::Live(_))).count();
        if envelopes.len() != live {
            return Err(StoreError::BadRequest("send exactly one envelope per new or changed record"));
        }
        let mut writes = Vec::with_capacity(envelopes.len());
        for (id, bytes) in envelopes {
            if bytes.len() > MAX_RECORD_BYTES {
                return Err(StoreError::BadRequest("an envelope is too large"));
            }
            let entry = u.changes.get(id).ok_or(StoreError::BadRequest("an envelope the update does not name"))?;
            match entry.state {
                EntryState::Live(h) if h == EnvelopeHash::of(bytes) => {}
                _ => return Err(StoreError::BadRequest("an envelope is not the one the update names")),
            }
            writes.push((record_key(&u.vault, id, entry.version), bytes.as_slice()));
        }
        let head_key = u.vault.to_bytes();
        let next_chain = u.next_chain();
        let trees = (&self.heads, &self.entries, &self.records, &self.updates);
        let write = self.lock(vault).write_owned().await;
        let result = trees.transaction(|(heads, entries, records, updates)| {
            let abort = ConflictableTransactionError::Abort;
            let stored = heads.get(head_key)?.ok_or(abort(StoreError::NotFound))?;
            let head = Head::decode(&stored).map_err(abort)?;
            // Compare-and-set on the chain, which names the state: a save prepared from another
            // state is a conflict (HTTP 409). The counter rises, by more than one when a device
            // accepts a restored state (FORMAT.md §4.5); `check_against` checks it.
            if u.prev_chain != head.chain {
                return Err(abort(StoreError::Conflict));
            }
            let mut current = BTreeMap::new();
            for id in u.changes.keys() {
                if let Some(v) = entries.get(entry_key(&u.vault, id))? {
                    current.insert(*id, decode_entry(&v).map_err(abort)?);
                }
            }
            let state =
                HeadState { vault: u.vault, counter: head.counter, chain: head.chain, entry_count: head.entry_count };
            let entry_count = u.check_against(&state, |id| current.get(id).copied()).map_err(|e| {
                abort(match e {
                    kluis_core::Error::BadUpdate(why) => StoreError::BadRequest(why),
                    _ => StoreError::BadRequest("the update does not apply"),
                })
            })?;
            for (key, bytes) in &writes {
                if records.insert(key.as_slice(), *bytes)?.is_some() {
                    return Err(abort(StoreError::BadRequest(
                        "that record version exists already (records are immutable)",
                    )));
                }
            }
            for (id, e) in &u.changes {
                entries.insert(entry_key(&u.vault, id), &encode_entry(e)[..])?;
            }
            updates.insert(update_key(&u.vault, u.counter), update)?;
            let next =
                Head { counter: u.counter, saved_at_ms: u.saved_at_ms, entry_count, chain: next_chain, mac: u.mac };
            heads.insert(&head_key, &next.encode()[..])?;
            Ok(())
        });
        applied(result)?;
        let flushed = self.flush().await;
        drop(write);
        flushed
    }

    /// One version of a record (the current one when `version` is `None`).
    pub fn record(&self, vault: &VaultId, id: &RecordId, version: Option<u64>) -> Result<Vec<u8>, StoreError> {
        let version = match version {
            Some(v) => v,
            None => {
                let e = decode_entry(&self.entries.get(entry_key(vault, id))?.ok_or(StoreError::NotFound)?)?;
                if e.state == EntryState::Deleted {
                    return Err(StoreError::NotFound);
                }
                e.version
            }
        };
        self.records.get(record_key(vault, id, version))?.map(|v| v.to_vec()).ok_or(StoreError::NotFound)
    }

    /// What a vault takes in this store: its current live records, and every stored version
    /// with its bytes (metadata the server sees anyway; what support may be shown).
    pub fn usage(&self, vault: &VaultId) -> Result<Usage, StoreError> {
        let live = self.entries(vault)?.values().filter(|e| matches!(e.state, EntryState::Live(_))).count();
        let mut usage = Usage { live_records: live as u64, versions: 0, bytes: 0 };
        for v in self.records.scan_prefix(vault.to_bytes()).values() {
            usage.versions += 1;
            usage.bytes += v?.len() as u64;
        }
        Ok(usage)
    }

    /// Everything a vault holds, for an export (FORMAT.md §12): the current manifest, every
    /// manifest update from counter 1, and every stored version of every record (deleted ones'
    /// too), from one consistent state.
    pub async fn export_vault(&self, vault: &VaultId) -> Result<ExportedVault, StoreError> {
        let vault = *vault;
        self.read(&vault, move |s| {
            let manifest = s.head_unlocked(&vault)?;
            let updates = s.updates_since(&vault, 0)?;
            let mut records: Vec<(RecordId, Vec<Vec<u8>>)> = Vec::new();
            for kv in s.records.scan_prefix(vault.to_bytes()) {
                let (k, v) = kv?;
                let id: [u8; 16] = k
                    .get(16..32)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(StoreError::Corrupt("stored key unreadable"))?;
                let id = RecordId::from_bytes(id);
                match records.last_mut() {
                    Some((last, versions)) if *last == id => versions.push(v.to_vec()),
                    _ => records.push((id, vec![v.to_vec()])),
                }
            }
            Ok(ExportedVault { vault, manifest, updates, records })
        })
        .await
    }

    /// Deletes `owner`'s vault from this store: every record version, the entries, every
    /// update, then the head and its ownership, under the vault's write lock (FORMAT.md §9.1),
    /// and flushes. Returns whether there was one. Each tree's deletions are one atomic batch;
    /// the head goes last, so a purge cut short by a crash leaves a vault that no longer
    /// verifies for anyone, and running it again finishes it. sled's log may keep the old pages
    /// until it rewrites them; for a vault they hold only ciphertext (docs/PURGE.md).
    pub async fn purge_owner(&self, owner: [u8; 16]) -> Result<bool, StoreError> {
        let Some(vault) = self.vault_of(&owner)? else { return Ok(false) };
        let write = self.lock(&vault).write_owned().await;
        let id = vault.to_bytes();
        let store = self.clone();
        // sled's work is blocking: off the async workers (a large vault takes a while).
        tokio::task::spawn_blocking(move || {
            for tree in [&store.records, &store.entries, &store.updates] {
                let mut batch = sled::Batch::default();
                for k in tree.scan_prefix(id).keys() {
                    batch.remove(k?);
                }
                tree.apply_batch(batch)?;
            }
            (&store.heads, &store.owners, &store.by_owner)
                .transaction(|(heads, owners, by_owner)| {
                    heads.remove(&id)?;
                    owners.remove(&id)?;
                    by_owner.remove(&owner)?;
                    Ok::<(), ConflictableTransactionError<()>>(())
                })
                .map_err(|e| match e {
                    TransactionError::Storage(e) => StoreError::Io(e),
                    TransactionError::Abort(()) => StoreError::Corrupt("purge aborted"),
                })
        })
        .await
        .map_err(|_| StoreError::Corrupt("the purge's task failed"))??;
        self.flush().await?;
        drop(write);
        Ok(true)
    }

    /// Every stored version of a record, oldest first.
    pub fn history(&self, vault: &VaultId, id: &RecordId) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = [&vault.to_bytes()[..], &id.to_bytes()].concat();
        self.records.scan_prefix(prefix).values().map(|v| v.map(|v| v.to_vec()).map_err(StoreError::from)).collect()
    }

    /// The saves after counter `since`, in order (for the client's chain check and delta sync).
    pub fn updates_since(&self, vault: &VaultId, since: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let start = update_key(vault, since.saturating_add(1));
        let end = update_key(vault, u64::MAX);
        self.updates.range(start..=end).values().map(|v| v.map(|v| v.to_vec()).map_err(StoreError::from)).collect()
    }

    /// A consistent view of a vault for a client that knows counter `since` (0: nothing): the
    /// current manifest, the saves after `since` (oldest first), and the current envelope of
    /// every live record changed after it, all from the same state. This is the bulk sync that
    /// opens a 10,000-record vault in one response.
    ///
    /// With `all_records`, every live record is returned whatever `since` is: a device that
    /// knows counter `since` (its high-water mark) but holds no records, as a browser after a
    /// reload, checks the saves since its mark and receives the whole vault in one response.
    pub async fn sync(&self, vault: &VaultId, since: u64, all_records: bool) -> Result<Synced, StoreError> {
        let vault = *vault;
        self.read(&vault, move |s| s.sync_unlocked(&vault, since, all_records)).await
    }

    fn sync_unlocked(&self, vault: &VaultId, since: u64, all_records: bool) -> Result<Synced, StoreError> {
        let h = self.stored_head(vault)?;
        let entries = self.entries(vault)?;
        let updates = if since >= h.counter { Vec::new() } else { self.updates_since(vault, since)? };
        let changed: Option<std::collections::BTreeSet<RecordId>> = if since == 0 || all_records {
            None
        } else {
            let mut set = std::collections::BTreeSet::new();
            for u in &updates {
                let u = ManifestUpdate::decode(u).map_err(|_| StoreError::Corrupt("stored update unreadable"))?;
                set.extend(u.changes.keys().copied());
            }
            Some(set)
        };
        let records = entries
            .iter()
            .filter(|(id, e)| e.state != EntryState::Deleted && changed.as_ref().is_none_or(|c| c.contains(id)))
            .map(|(id, e)| {
                let bytes = self.records.get(record_key(vault, id, e.version))?.ok_or(StoreError::NotFound)?;
                Ok((*id, bytes.to_vec()))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let head = Manifest {
            vault: *vault,
            counter: h.counter,
            saved_at_ms: h.saved_at_ms,
            chain: h.chain,
            entries,
            mac: h.mac,
        }
        .encode();
        Ok(Synced { head, updates, records })
    }

    /// The current envelope of every live record changed after counter `since` (0: all).
    pub async fn records_since(&self, vault: &VaultId, since: u64) -> Result<Vec<(RecordId, Vec<u8>)>, StoreError> {
        Ok(self.sync(vault, since, false).await?.records)
    }
}

/// What [`Store::sync`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The encoded current manifest.
    pub head: Vec<u8>,
    /// The encoded saves after the counter asked for.
    pub updates: Vec<Vec<u8>>,
    /// `(id, envelope)` of the live records changed after it, in id order.
    pub records: Vec<(RecordId, Vec<u8>)>,
}

impl Synced {
    /// The wire form (FORMAT.md §10.2).
    pub fn encode(&self) -> Vec<u8> {
        kluis_core::wire::SyncResponse {
            head: &self.head,
            updates: self.updates.iter().map(Vec::as_slice).collect(),
            records: self.records.iter().map(|(id, e)| (*id, e.as_slice())).collect(),
        }
        .encode()
    }
}
