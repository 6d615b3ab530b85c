//! The ciphertext record store on sled, behind a small interface (so a second backend can be
//! added without touching the HTTP handlers).
//!
//! Three trees, all keyed by vault id first:
//! - `heads`:   vault id → the current manifest (FORMAT.md §4);
//! - `records`: vault id ‖ record id ‖ u64 version → the envelope, immutable once written;
//! - `updates`: vault id ‖ u64 counter → the save that produced that counter (FORMAT.md §4.4),
//!   which clients replay to check that a newer manifest descends from theirs.
//!
//! A save is one sled transaction over the three trees, compare-and-set on the current head, and
//! is acknowledged only after `flush` (concurrent savers share flushes). Records are opaque: the
//! store checks only that each one is the envelope the save's manifest names (its SHA-256).

use std::path::Path;

use kluis_core::manifest::{EntryState, Manifest, ManifestUpdate};
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
    /// sled failed.
    #[error("storage failure: {0}")]
    Io(#[from] sled::Error),
}

/// The record store.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    heads: Tree,
    records: Tree,
    updates: Tree,
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
            records: db.open_tree("records")?,
            updates: db.open_tree("updates")?,
            db,
        })
    }

    /// Waits until every write so far is on disk. Runs sled's blocking `flush` on tokio's
    /// blocking pool: sled 0.34's `flush_async` routes through sled's own small thread pool and
    /// was seen to stall for good under many concurrent savers (the store benchmark hung with
    /// no CPU use). Concurrent flushes share the fsync that is already under way (group commit).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|_| StoreError::Io(sled::Error::ReportableBug("flush task failed".into())))??;
        Ok(())
    }

    /// Creates a vault from its genesis manifest (counter 0, no entries), once.
    pub async fn create_vault(&self, genesis: &[u8]) -> Result<VaultId, StoreError> {
        let m = Manifest::decode(genesis).map_err(|_| StoreError::BadRequest("not a manifest"))?;
        if m.counter != 0 || !m.entries.is_empty() || m.chain != kluis_core::manifest::genesis_chain(&m.vault) {
            return Err(StoreError::BadRequest("a new vault starts from a genesis manifest"));
        }
        let key = m.vault.to_bytes();
        self.heads.compare_and_swap(key, None as Option<&[u8]>, Some(genesis))?.map_err(|_| StoreError::Exists)?;
        self.flush().await?;
        Ok(m.vault)
    }

    /// The current manifest of a vault.
    pub fn head(&self, vault: &VaultId) -> Result<Vec<u8>, StoreError> {
        self.heads.get(vault.to_bytes())?.map(|v| v.to_vec()).ok_or(StoreError::NotFound)
    }

    /// Applies a save atomically: the manifest update and the envelopes of its live changes.
    /// Returns the new manifest once it is durable.
    pub async fn save(&self, update: &[u8], envelopes: &[(RecordId, Vec<u8>)]) -> Result<Vec<u8>, StoreError> {
        let u = ManifestUpdate::decode(update).map_err(|_| StoreError::BadRequest("not a manifest update"))?;
        let head_bytes = self.head(&u.vault)?;
        let head = Manifest::decode(&head_bytes).map_err(|_| StoreError::BadRequest("stored manifest unreadable"))?;
        if u.counter != head.counter.saturating_add(1) || u.prev_chain != head.chain {
            return Err(StoreError::Conflict);
        }
        let next = head.apply(&u).map_err(|e| match e {
            kluis_core::Error::BadUpdate(why) => StoreError::BadRequest(why),
            _ => StoreError::BadRequest("the update does not apply"),
        })?;
        // Every live change comes with exactly its envelope, and nothing else comes.
        let live = u.changes.iter().filter(|(_, e)| matches!(e.state, EntryState::Live(_))).count();
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
        let next_bytes = next.encode();
        let head_key = u.vault.to_bytes();
        let result = (&self.heads, &self.records, &self.updates).transaction(|(heads, records, updates)| {
            // Compare-and-set on the head inside the transaction: a concurrent save loses here.
            if heads.get(head_key)?.as_deref() != Some(head_bytes.as_slice()) {
                return Err(ConflictableTransactionError::Abort(StoreError::Conflict));
            }
            for (key, bytes) in &writes {
                if records.insert(key.as_slice(), *bytes)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(StoreError::BadRequest(
                        "that record version exists already (records are immutable)",
                    )));
                }
            }
            updates.insert(update_key(&u.vault, u.counter), update)?;
            heads.insert(&head_key, next_bytes.as_slice())?;
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(StoreError::Io(e)),
        }
        self.flush().await?;
        Ok(next_bytes)
    }

    /// One version of a record (the current one when `version` is `None`).
    pub fn record(&self, vault: &VaultId, id: &RecordId, version: Option<u64>) -> Result<Vec<u8>, StoreError> {
        let version = match version {
            Some(v) => v,
            None => {
                let head = Manifest::decode(&self.head(vault)?).map_err(|_| StoreError::NotFound)?;
                let e = head.entries.get(id).ok_or(StoreError::NotFound)?;
                if e.state == EntryState::Deleted {
                    return Err(StoreError::NotFound);
                }
                e.version
            }
        };
        self.records.get(record_key(vault, id, version))?.map(|v| v.to_vec()).ok_or(StoreError::NotFound)
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

    /// The current envelope of every live record changed after counter `since` (0: all of them),
    /// with one read of the manifest (the bulk sync of a 10,000-record vault).
    pub fn records_since(&self, vault: &VaultId, since: u64) -> Result<Vec<(RecordId, Vec<u8>)>, StoreError> {
        let head = Manifest::decode(&self.head(vault)?).map_err(|_| StoreError::NotFound)?;
        let changed: Option<std::collections::BTreeSet<RecordId>> = if since == 0 {
            None
        } else {
            let mut set = std::collections::BTreeSet::new();
            for u in self.updates_since(vault, since)? {
                let u = ManifestUpdate::decode(&u).map_err(|_| StoreError::BadRequest("stored update unreadable"))?;
                set.extend(u.changes.keys().copied());
            }
            Some(set)
        };
        head.entries
            .iter()
            .filter(|(id, e)| e.state != EntryState::Deleted && changed.as_ref().is_none_or(|c| c.contains(id)))
            .map(|(id, e)| {
                let bytes = self.records.get(record_key(vault, id, e.version))?.ok_or(StoreError::NotFound)?;
                Ok((*id, bytes.to_vec()))
            })
            .collect()
    }
}
