//! A save: the changed entries and the MAC of the resulting state (FORMAT.md §4.4).

use std::collections::BTreeMap;

use super::{Entry, Manifest, VerifiedManifest, decode_shape, write_body};
use crate::cbor::Writer;
use crate::envelope::RecordId;
use crate::error::{Error, Result};
use crate::hierarchy::{VaultId, VaultKeys};
use crate::spec::HASH_BYTES;

/// What a client sends to save: the new counter, its time, the entries that changed, and the
/// MAC of the whole manifest after the change. Same encoding as a manifest (FORMAT.md §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestUpdate {
    /// The vault.
    pub vault: VaultId,
    /// The new counter: exactly one more than the manifest it applies to.
    pub counter: u64,
    /// The client's time of the save, milliseconds since the Unix epoch.
    pub saved_at_ms: u64,
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
            changes: d.entries,
            mac: d.mac,
        })
    }

    /// Encodes canonically.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.changes.len() * 56);
        write_body(&mut w, 6, &self.vault, self.counter, self.saved_at_ms, self.changes.iter());
        w.key(6).bytes(&self.mac);
        w.out
    }
}

impl Manifest {
    /// Applies an update without keys, as the server does: same vault, counter exactly one
    /// more, and every changed record's version higher than before. The result carries the
    /// update's MAC, which only a client can check.
    pub fn apply(&self, update: &ManifestUpdate) -> Result<Manifest> {
        if update.vault != self.vault {
            return Err(Error::ForeignVault);
        }
        if self.counter.checked_add(1) != Some(update.counter) {
            return Err(Error::BadUpdate("counter is not exactly one more than the current one"));
        }
        if update.changes.is_empty() {
            return Err(Error::BadUpdate("an update changes at least one record"));
        }
        let mut next = self.clone();
        for (id, change) in &update.changes {
            if let Some(old) = self.entries.get(id) {
                if change.version <= old.version {
                    return Err(Error::BadUpdate("a record's version must increase"));
                }
            }
            next.entries.insert(*id, *change);
        }
        next.counter = update.counter;
        next.saved_at_ms = update.saved_at_ms;
        next.mac = update.mac;
        Ok(next)
    }
}

impl VerifiedManifest {
    /// Prepares a save: the update to send, and the manifest it produces (which becomes this
    /// client's new state once the server acknowledges it).
    pub fn prepare_update(
        &self,
        keys: &VaultKeys,
        changes: BTreeMap<RecordId, Entry>,
        saved_at_ms: u64,
    ) -> Result<(ManifestUpdate, Manifest)> {
        if keys.id != self.manifest().vault {
            return Err(Error::ForeignVault);
        }
        let counter = self.manifest().counter.checked_add(1).ok_or(Error::BadUpdate("counter overflow"))?;
        let mut update = ManifestUpdate { vault: keys.id, counter, saved_at_ms, changes, mac: [0; HASH_BYTES] };
        let mut next = self.manifest().apply(&update)?;
        next.mac = next.compute_mac(keys);
        update.mac = next.mac;
        Ok((update, next))
    }
}
