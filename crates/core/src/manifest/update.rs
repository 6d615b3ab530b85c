//! A save: the changed entries and the MAC of the resulting state (FORMAT.md §4.4).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{Chain, Entry, Fields, Manifest, VerifiedManifest, decode_shape, write_fields};
use crate::cbor::Writer;
use crate::envelope::RecordId;
use crate::error::{Error, Result};
use crate::hierarchy::{VaultId, VaultKeys};
use crate::spec::{HASH_BYTES, LABEL_MANIFEST_CHAIN, MAX_COUNTER, MAX_MANIFEST_ENTRIES};

/// What a client sends to save: the new counter, its time, the chain of the state it applies
/// to, the entries that change, and the MAC of the whole manifest after the change. Same
/// encoding as a manifest (FORMAT.md §4.4). The server keeps every update: a client replays
/// them to check that a newer manifest descends from the last one it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestUpdate {
    /// The vault.
    pub vault: VaultId,
    /// The new counter: higher than the manifest's it applies to; one more for an ordinary
    /// save, above the replaced high-water mark for a restore acceptance (FORMAT.md §4.5).
    pub counter: u64,
    /// The client's time of the save, milliseconds since the Unix epoch.
    pub saved_at_ms: u64,
    /// The chain of the manifest this update applies to.
    pub prev_chain: Chain,
    /// The entries that change (new records, new versions, deletions).
    pub changes: BTreeMap<RecordId, Entry>,
    /// MAC of the resulting manifest.
    pub mac: [u8; HASH_BYTES],
}

impl ManifestUpdate {
    /// Decodes an update strictly (no key needed).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let d = decode_shape(bytes, "manifest update")?;
        Ok(ManifestUpdate {
            vault: d.vault,
            counter: d.counter,
            saved_at_ms: d.saved_at_ms,
            prev_chain: d.chain,
            changes: d.entries,
            mac: d.mac,
        })
    }

    fn write(&self, w: &mut Writer, map_len: usize) {
        let f = Fields {
            vault: &self.vault,
            counter: self.counter,
            saved_at_ms: self.saved_at_ms,
            chain: &self.prev_chain,
            entries: self.changes.iter(),
        };
        write_fields(w, map_len, f);
    }

    /// Encodes canonically.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(128 + self.changes.len() * 56);
        self.write(&mut w, 7);
        w.key(7).bytes(&self.mac);
        w.out
    }

    /// The chain after this update: SHA-256("kluis/v1/manifest-chain" ‖ canonical CBOR of the
    /// map of fields 1–6), which includes the previous chain (FORMAT.md §4.3).
    pub fn next_chain(&self) -> Chain {
        let mut w = Writer::with_capacity(128 + self.changes.len() * 56);
        self.write(&mut w, 6);
        Sha256::new().chain_update(LABEL_MANIFEST_CHAIN).chain_update(&w.out).finalize().into()
    }
}

/// What an update is checked against, for a server that stores a manifest's entries apart
/// rather than as one blob (FORMAT.md §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadState {
    /// The vault.
    pub vault: VaultId,
    /// The current counter.
    pub counter: u64,
    /// The current chain.
    pub chain: Chain,
    /// How many entries (live and deleted) the manifest lists.
    pub entry_count: u64,
}

impl ManifestUpdate {
    /// Checks this update against the current head without keys, as the server does: same
    /// vault, a higher counter (at most `MAX_COUNTER`), built on this very state (its chain), at least one
    /// change, every changed record's version higher than its current one (`current` looks it
    /// up), and the result within the format's limits. Returns the new entry count.
    pub fn check_against(&self, head: &HeadState, mut current: impl FnMut(&RecordId) -> Option<Entry>) -> Result<u64> {
        if self.vault != head.vault {
            return Err(Error::ForeignVault);
        }
        if self.counter <= head.counter {
            return Err(Error::BadUpdate("the counter must be higher than the current one"));
        }
        if self.counter > MAX_COUNTER {
            return Err(Error::BadUpdate("the counter is beyond the highest a save may set"));
        }
        if self.prev_chain != head.chain {
            return Err(Error::BadUpdate("the update was made from another state of the vault"));
        }
        if self.changes.is_empty() {
            return Err(Error::BadUpdate("an update changes at least one record"));
        }
        let mut count = head.entry_count;
        for (id, change) in &self.changes {
            match current(id) {
                Some(old) if change.version <= old.version => {
                    return Err(Error::BadUpdate("a record's version must increase"));
                }
                Some(_) => {}
                None => count = count.saturating_add(1),
            }
        }
        // An entry encodes in at most 60 bytes, so the entry limit keeps the whole manifest
        // within MAX_MANIFEST_BYTES as well.
        if count > MAX_MANIFEST_ENTRIES {
            return Err(Error::BadUpdate("the vault would hold more records than a manifest may list"));
        }
        Ok(count)
    }
}

impl Manifest {
    /// The state an update is checked against.
    pub fn head_state(&self) -> HeadState {
        HeadState {
            vault: self.vault,
            counter: self.counter,
            chain: self.chain,
            entry_count: self.entries.len() as u64,
        }
    }

    /// Applies an update without keys, as the server does ([`ManifestUpdate::check_against`]).
    /// The result carries the update's MAC, which only a client can check.
    pub fn apply(&self, update: &ManifestUpdate) -> Result<Manifest> {
        update.check_against(&self.head_state(), |id| self.entries.get(id).copied())?;
        let mut next = self.clone();
        next.entries.extend(update.changes.iter().map(|(id, e)| (*id, *e)));
        next.counter = update.counter;
        next.saved_at_ms = update.saved_at_ms;
        next.chain = update.next_chain();
        next.mac = update.mac;
        Ok(next)
    }
}

impl VerifiedManifest {
    /// Prepares a save: the update to send, and the manifest it produces (which becomes this
    /// client's state once the server acknowledges the update).
    pub fn prepare_update(
        &self,
        keys: &VaultKeys,
        changes: BTreeMap<RecordId, Entry>,
        saved_at_ms: u64,
    ) -> Result<(ManifestUpdate, Manifest)> {
        let counter = self.manifest().counter.checked_add(1).ok_or(Error::BadUpdate("counter overflow"))?;
        self.prepare_update_at(keys, changes, saved_at_ms, counter)
    }

    /// [`prepare_update`](Self::prepare_update) with the new counter given.
    pub(super) fn prepare_update_at(
        &self,
        keys: &VaultKeys,
        changes: BTreeMap<RecordId, Entry>,
        saved_at_ms: u64,
        counter: u64,
    ) -> Result<(ManifestUpdate, Manifest)> {
        let head = self.manifest();
        if keys.id != head.vault {
            return Err(Error::ForeignVault);
        }
        let mut update = ManifestUpdate {
            vault: keys.id,
            counter,
            saved_at_ms,
            prev_chain: head.chain,
            changes,
            mac: [0; HASH_BYTES],
        };
        let mut next = head.apply(&update)?;
        next.mac = next.compute_mac(keys);
        update.mac = next.mac;
        Ok((update, next))
    }
}
