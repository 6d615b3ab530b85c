//! Verifying what the server delivers against the manifest and the client's high-water mark
//! (FORMAT.md §4.3).

use std::collections::BTreeSet;

use super::{Chain, EntryState, Manifest, ManifestUpdate};
use crate::envelope::{Envelope, EnvelopeHash, RecordHeader, RecordId};
use crate::error::{Error, Result};
use crate::hierarchy::VaultKeys;
use crate::mac::mac_eq;

/// The newest vault state a client has seen: its counter and history chain. The client stores
/// it (per device) and refuses to go back or sideways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighWater {
    /// Highest counter seen.
    pub counter: u64,
    /// The history chain at that counter, which identifies every save up to it.
    pub chain: Chain,
}

/// A manifest whose MAC verified and that descends from the client's high-water mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedManifest(Manifest);

/// Decodes and verifies a manifest: strict form, this vault, MAC in constant time; then,
/// against the high-water mark: a lower counter is [`Error::Rollback`]; the same counter with
/// another chain, or a higher counter that `updates` (the saves since the high-water mark, in
/// order, as the server stored them) do not link to, is [`Error::Fork`].
///
/// Without a high-water mark (a device's first sync) any authentic manifest is accepted: the
/// documented trust-on-first-use limit.
pub fn verify(
    bytes: &[u8],
    keys: &VaultKeys,
    high_water: Option<&HighWater>,
    updates: &[&[u8]],
) -> Result<VerifiedManifest> {
    let m = Manifest::decode(bytes)?;
    if m.vault != keys.id {
        return Err(Error::ForeignVault);
    }
    if !mac_eq(&m.compute_mac(keys), &m.mac) {
        return Err(Error::ManifestMac);
    }
    if let Some(hw) = high_water {
        if m.counter < hw.counter {
            return Err(Error::Rollback { seen: hw.counter, got: m.counter });
        }
        let fork = Error::Fork { counter: m.counter };
        // Replay the chain from the high-water mark over the saves since (hashes only).
        let mut chain = hw.chain;
        let mut counter = hw.counter;
        for bytes in updates {
            let u = ManifestUpdate::decode(bytes)?;
            // Counters only rise; they skip upward after a restore acceptance (§4.5).
            if u.vault != m.vault || u.counter <= counter || u.prev_chain != chain {
                return Err(fork);
            }
            chain = u.next_chain();
            counter = u.counter;
        }
        if counter != m.counter || chain != m.chain {
            return Err(fork);
        }
    }
    Ok(VerifiedManifest(m))
}

impl VerifiedManifest {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.0
    }

    /// The high-water mark to store after accepting this manifest.
    pub fn high_water(&self) -> HighWater {
        HighWater { counter: self.0.counter, chain: self.0.chain }
    }

    /// Checks an envelope the server delivered as the current version of record `requested`.
    /// Returns its header; the caller then decrypts it.
    pub fn check_record(&self, requested: &RecordId, bytes: &[u8]) -> Result<RecordHeader> {
        self.check_record_hashed(requested, bytes, EnvelopeHash::of(bytes))
    }

    /// [`check_record`](Self::check_record) with the envelope's SHA-256 computed by the caller
    /// over exactly `bytes` (the browser binding has WebCrypto compute it, off the page's thread
    /// and several times faster than SHA-256 compiled to wasm).
    pub fn check_record_hashed(&self, requested: &RecordId, bytes: &[u8], hash: EnvelopeHash) -> Result<RecordHeader> {
        let header = Envelope::decode(bytes)?.header;
        if header.vault != self.0.vault {
            return Err(Error::ForeignVault);
        }
        if header.id != *requested {
            return Err(Error::RecordSwapped);
        }
        let entry = self.0.entries.get(&header.id).ok_or(Error::InjectedRecord)?;
        let EntryState::Live(expected) = entry.state else {
            return Err(Error::InjectedRecord);
        };
        if header.version < entry.version {
            return Err(Error::StaleVersion { expected: entry.version, got: header.version });
        }
        if header.version > entry.version {
            return Err(Error::InjectedRecord);
        }
        if hash != expected {
            return Err(Error::RecordSwapped);
        }
        Ok(header)
    }

    /// Checks a full listing: every envelope as in [`check_record`](Self::check_record), no
    /// record twice, and every live record of the manifest present.
    pub fn check_listing<'a>(
        &self,
        records: impl IntoIterator<Item = (RecordId, &'a [u8])>,
    ) -> Result<Vec<RecordHeader>> {
        self.check_listing_hashed(records.into_iter().map(|(id, bytes)| (id, bytes, EnvelopeHash::of(bytes))))
    }

    /// [`check_listing`](Self::check_listing) with each envelope's SHA-256 computed by the
    /// caller over exactly its bytes (see [`check_record_hashed`](Self::check_record_hashed)).
    pub fn check_listing_hashed<'a>(
        &self,
        records: impl IntoIterator<Item = (RecordId, &'a [u8], EnvelopeHash)>,
    ) -> Result<Vec<RecordHeader>> {
        let mut seen = BTreeSet::new();
        let mut headers = Vec::new();
        for (id, bytes, hash) in records {
            if !seen.insert(id) {
                return Err(Error::RecordSwapped);
            }
            headers.push(self.check_record_hashed(&id, bytes, hash)?);
        }
        if self.0.live().any(|(id, _)| !seen.contains(id)) {
            return Err(Error::RecordMissing);
        }
        Ok(headers)
    }

    /// Checks the history of record `id`: `versions` are consecutive envelopes, oldest first,
    /// each naming the hash of the one before, from version 1 to the current version.
    pub fn check_history(&self, id: &RecordId, versions: &[&[u8]]) -> Result<Vec<RecordHeader>> {
        let (last, older) = versions.split_last().ok_or(Error::RecordMissing)?;
        let mut headers = Vec::with_capacity(versions.len());
        let mut prev: Option<(u64, EnvelopeHash)> = None;
        for bytes in older {
            let h = Envelope::decode(bytes)?.header;
            if h.vault != self.0.vault {
                return Err(Error::ForeignVault);
            }
            if h.id != *id {
                return Err(Error::RecordSwapped);
            }
            check_link(prev, &h)?;
            prev = Some((h.version, EnvelopeHash::of(bytes)));
            headers.push(h);
        }
        let current = self.check_record(id, last)?;
        check_link(prev, &current)?;
        headers.push(current);
        Ok(headers)
    }
}

fn check_link(prev: Option<(u64, EnvelopeHash)>, h: &RecordHeader) -> Result<()> {
    match prev {
        Some((v, hash)) if Some(h.version) == v.checked_add(1) && h.prev == hash => Ok(()),
        Some(_) => Err(Error::BrokenChain),
        // A history starts at version 1, so the server cannot trim its oldest versions.
        None if h.version == 1 => Ok(()),
        None => Err(Error::BrokenChain),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;
    use crate::hierarchy::KeyHierarchy;
    use crate::manifest::{Entry, EntryState};
    use crate::secret::VaultSecret;

    /// An update with the right chain whose counter does not rise is `fork`, even when the
    /// manifest it leads to is authentic: otherwise a save at an old counter could replace
    /// the state a device saw at that counter.
    #[test]
    fn an_update_whose_counter_does_not_rise_is_a_fork() {
        let keys = KeyHierarchy::derive(&VaultSecret::from_bytes([3; 32])).notes;
        let genesis = verify(&Manifest::genesis(&keys, 1).encode(), &keys, None, &[]).unwrap();
        let change = BTreeMap::from([(
            RecordId::from_bytes([1; 16]),
            Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(b"x")) },
        )]);
        let (_, one) = genesis.prepare_update(&keys, change.clone(), 2).unwrap();
        let one = verify(&one.encode(), &keys, None, &[]).unwrap();
        let hw = one.high_water();
        // The same counter (a lower one is refused before the replay, as `rollback`).
        let counter = hw.counter;
        let mut update = ManifestUpdate {
            vault: keys.id,
            counter,
            saved_at_ms: 3,
            prev_chain: hw.chain,
            changes: BTreeMap::from([(
                RecordId::from_bytes([2; 16]),
                Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(b"y")) },
            )]),
            mac: [0; 32],
        };
        let mut next = one.manifest().clone();
        next.entries.extend(update.changes.iter().map(|(id, e)| (*id, *e)));
        next.counter = counter;
        next.saved_at_ms = 3;
        next.chain = update.next_chain();
        next.mac = next.compute_mac(&keys);
        update.mac = next.mac;
        let got = verify(&next.encode(), &keys, Some(&hw), &[&update.encode()]);
        assert_eq!(got, Err(Error::Fork { counter }), "counter {counter}");
    }
}
