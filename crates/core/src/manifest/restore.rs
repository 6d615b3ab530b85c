//! Accepting a restored state of a vault (FORMAT.md §4.5).
//!
//! A server restored from a backup serves an older state than a device has seen: to the device
//! it looks exactly like a rollback (or, after another device accepted the restore, a fork). The
//! device cannot tell the two apart, so it asks its user. Only if the user accepts, with the key
//! file unlocked, does it take the older state, and its first save then continues the counter
//! above its replaced high-water mark, so that no counter this device has seen is reused (other
//! devices detect the change of branch by the chain).

use std::collections::BTreeMap;

use super::{Entry, EntryState, Manifest, ManifestUpdate, VerifiedManifest};
use crate::envelope::RecordId;
use crate::error::{Error, Result};
use crate::hierarchy::VaultKeys;
use crate::manifest::HighWater;

/// What a device loses by accepting a state in place of the last one it saw, record by record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lost {
    /// Records live in the state seen that the accepted state does not list at all.
    pub missing: Vec<RecordId>,
    /// Records the accepted state lists at a lower version than the state seen: later edits
    /// are lost, or a deletion is undone.
    pub older: Vec<RecordId>,
    /// Records the accepted state lists that the state seen did not, or at a higher version:
    /// saves made on another branch (after another device accepted a restore, for example).
    pub unseen: Vec<RecordId>,
}

impl VerifiedManifest {
    /// Compares this (authentic) state with `seen`, the last state this device accepted.
    pub fn lost_since(&self, seen: &VerifiedManifest) -> Lost {
        let mut lost = Lost::default();
        let now = &self.manifest().entries;
        for (id, before) in &seen.manifest().entries {
            match now.get(id) {
                None if matches!(before.state, EntryState::Live(_)) => lost.missing.push(*id),
                None => {}
                Some(e) if e.version < before.version => lost.older.push(*id),
                Some(e) if e.version > before.version => lost.unseen.push(*id),
                Some(_) => {}
            }
        }
        lost.unseen.extend(now.keys().filter(|id| !seen.manifest().entries.contains_key(id)));
        lost.unseen.sort_unstable();
        lost
    }

    /// Prepares the save that accepts this state in place of the device's high-water mark
    /// `replaced` (FORMAT.md §4.5): as [`prepare_update`](Self::prepare_update), but the new
    /// counter is one more than the higher of this state's counter and `replaced.counter`.
    pub fn prepare_restore_update(
        &self,
        keys: &VaultKeys,
        changes: BTreeMap<RecordId, Entry>,
        saved_at_ms: u64,
        replaced: &HighWater,
    ) -> Result<(ManifestUpdate, Manifest)> {
        let above = self.manifest().counter.max(replaced.counter);
        let counter = above.checked_add(1).ok_or(Error::BadUpdate("counter overflow"))?;
        self.prepare_update_at(keys, changes, saved_at_ms, counter)
    }
}
