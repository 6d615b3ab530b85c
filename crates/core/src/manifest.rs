//! The vault manifest, or head (FORMAT.md §4): vault id, a monotonic counter, the client's time of
//! the save, a hash chain over every save so far, and per record its current version and
//! envelope hash (or a tombstone), MAC'd under the vault's manifest key.
//!
//! Everything but the MAC is readable without keys, so the server can compare-and-set on the
//! chain and apply a save itself ([`Manifest::apply`]); a save sends only the changed entries and
//! the MAC of the resulting state ([`ManifestUpdate`]). The client verifies what it fetches
//! against its high-water mark, and that the new state descends from the one it saw, by
//! replaying the chain over the saves in between ([`verify`]).

mod restore;
mod update;
mod verify;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::cbor::{Reader, Writer};
use crate::envelope::{EnvelopeHash, RecordId};
use crate::error::{Error, Result, malformed};
use crate::hierarchy::{VaultId, VaultKeys};
use crate::mac::Hmac256;
use crate::spec::{
    FORMAT_VERSION, HASH_BYTES, LABEL_MANIFEST_CHAIN, LABEL_MANIFEST_MAC, MAX_MANIFEST_BYTES, MAX_MANIFEST_ENTRIES,
};

pub use restore::Lost;
pub use update::{HeadState, ManifestUpdate};
pub use verify::{HighWater, VerifiedManifest, verify};

/// A record's state in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// The current version's envelope has this hash.
    Live(EnvelopeHash),
    /// The record was deleted at this version.
    Deleted,
}

/// One manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Current version.
    pub version: u64,
    /// Live (with hash) or deleted.
    pub state: EntryState,
}

/// The history chain value: a hash over every save since genesis (FORMAT.md §4.3).
pub type Chain = [u8; HASH_BYTES];

/// A decoded manifest. Decoding checks only form; [`verify`] checks authenticity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The vault.
    pub vault: VaultId,
    /// Monotonic save counter; the genesis manifest has 0.
    pub counter: u64,
    /// The saving client's clock, milliseconds since the Unix epoch (informational).
    pub saved_at_ms: u64,
    /// The history chain after the last save.
    pub chain: Chain,
    /// Entries by record id.
    pub entries: BTreeMap<RecordId, Entry>,
    /// HMAC-SHA256 over the other fields (FORMAT.md §4.2).
    pub mac: [u8; HASH_BYTES],
}

const WHAT: &str = "manifest";

/// The fields shared by manifests and updates (FORMAT.md §4.1, §4.4); field 5 is the chain of
/// a manifest, and the chain of the state it applies to for an update.
pub(crate) struct Fields<'a, I> {
    pub(crate) vault: &'a VaultId,
    pub(crate) counter: u64,
    pub(crate) saved_at_ms: u64,
    pub(crate) chain: &'a Chain,
    pub(crate) entries: I,
}

/// Writes fields 1–6 into `w`, with a map head of `map_len` entries (6, or 7 when the caller
/// appends the MAC as field 7).
pub(crate) fn write_fields<'e>(
    w: &mut Writer,
    map_len: usize,
    f: Fields<'_, impl ExactSizeIterator<Item = (&'e RecordId, &'e Entry)>>,
) {
    w.map(map_len);
    w.key(1).uint(FORMAT_VERSION);
    w.key(2).bytes(&f.vault.0);
    w.key(3).uint(f.counter);
    w.key(4).uint(f.saved_at_ms);
    w.key(5).bytes(f.chain);
    w.key(6).array(f.entries.len());
    for (id, e) in f.entries {
        w.array(3).bytes(&id.0).uint(e.version);
        match e.state {
            EntryState::Live(h) => w.bytes(&h.0),
            EntryState::Deleted => w.null(),
        };
    }
}

/// What a manifest or update decodes to before its MAC is checked.
pub(crate) struct Decoded {
    pub(crate) vault: VaultId,
    pub(crate) counter: u64,
    pub(crate) saved_at_ms: u64,
    pub(crate) chain: Chain,
    pub(crate) entries: BTreeMap<RecordId, Entry>,
    pub(crate) mac: [u8; HASH_BYTES],
}

/// Strictly decodes the shared shape of manifests and updates (FORMAT.md §4.1).
pub(crate) fn decode_shape(bytes: &[u8], what: &'static str) -> Result<Decoded> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(Error::TooLarge { what, len: bytes.len(), max: MAX_MANIFEST_BYTES });
    }
    let mut r = Reader::new(bytes, what);
    r.map_exact(7)?;
    r.key(1)?;
    let format = r.uint()?;
    if format != FORMAT_VERSION {
        return Err(Error::Unsupported { what: "manifest format version", value: format });
    }
    r.key(2)?;
    let vault = VaultId(r.bytes_exact("vault id must be 16 bytes")?);
    r.key(3)?;
    let counter = r.uint()?;
    r.key(4)?;
    let saved_at_ms = r.uint()?;
    r.key(5)?;
    let chain = r.bytes_exact("chain must be 32 bytes")?;
    r.key(6)?;
    let n = r.array(MAX_MANIFEST_ENTRIES)?;
    let mut entries = BTreeMap::new();
    let mut last: Option<RecordId> = None;
    for _ in 0..n {
        if r.array(3)? != 3 {
            return Err(malformed(what, "an entry is [id, version, hash or null]"));
        }
        let id = RecordId(r.bytes_exact("record id must be 16 bytes")?);
        // Canonical order: strictly ascending ids, which also rules out duplicates.
        if last.is_some_and(|l| l >= id) {
            return Err(malformed(what, "entries not in strictly ascending record-id order"));
        }
        last = Some(id);
        let version = r.uint()?;
        if version == 0 {
            return Err(malformed(what, "entry with version 0"));
        }
        let state = if r.null_or()? {
            EntryState::Deleted
        } else {
            EntryState::Live(EnvelopeHash(r.bytes_exact("entry hash must be 32 bytes")?))
        };
        entries.insert(id, Entry { version, state });
    }
    r.key(7)?;
    let mac = r.bytes_exact("MAC must be 32 bytes")?;
    r.finish()?;
    Ok(Decoded { vault, counter, saved_at_ms, chain, entries, mac })
}

/// The chain value of a new vault: SHA-256("kluis/v1/manifest-chain" ‖ vault id) (§4.3).
pub fn genesis_chain(vault: &VaultId) -> Chain {
    Sha256::new().chain_update(LABEL_MANIFEST_CHAIN).chain_update(vault.0).finalize().into()
}

impl Manifest {
    /// Decodes a manifest strictly, without checking its MAC.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let d = decode_shape(bytes, WHAT)?;
        Ok(Manifest {
            vault: d.vault,
            counter: d.counter,
            saved_at_ms: d.saved_at_ms,
            chain: d.chain,
            entries: d.entries,
            mac: d.mac,
        })
    }

    fn fields(&self) -> Fields<'_, impl ExactSizeIterator<Item = (&RecordId, &Entry)>> {
        Fields {
            vault: &self.vault,
            counter: self.counter,
            saved_at_ms: self.saved_at_ms,
            chain: &self.chain,
            entries: self.entries.iter(),
        }
    }

    /// Encodes canonically.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(128 + self.entries.len() * 56);
        write_fields(&mut w, 7, self.fields());
        w.key(7).bytes(&self.mac);
        w.out
    }

    /// The MAC this manifest's fields should carry under `keys` (FORMAT.md §4.2):
    /// HMAC-SHA256(manifest_key, "kluis/v1/manifest" ‖ canonical CBOR of the map of fields 1–6).
    pub(crate) fn compute_mac(&self, keys: &VaultKeys) -> [u8; HASH_BYTES] {
        let mut w = Writer::with_capacity(128 + self.entries.len() * 56);
        write_fields(&mut w, 6, self.fields());
        let mut m = Hmac256::new(&keys.manifest);
        m.update(LABEL_MANIFEST_MAC).update(&w.out);
        m.finish()
    }

    /// The genesis manifest of a new vault: counter 0, the genesis chain, no entries, MAC'd.
    pub fn genesis(keys: &VaultKeys, saved_at_ms: u64) -> Self {
        let mut m = Manifest {
            vault: keys.id,
            counter: 0,
            saved_at_ms,
            chain: genesis_chain(&keys.id),
            entries: BTreeMap::new(),
            mac: [0; HASH_BYTES],
        };
        m.mac = m.compute_mac(keys);
        m
    }

    /// The ids of the live records.
    pub fn live(&self) -> impl Iterator<Item = (&RecordId, &EnvelopeHash)> {
        self.entries.iter().filter_map(|(id, e)| match &e.state {
            EntryState::Live(h) => Some((id, h)),
            EntryState::Deleted => None,
        })
    }
}
