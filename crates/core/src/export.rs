//! A user's export (FORMAT.md §12): both vaults of one practitioner, every stored version of
//! every record, the current manifest and every manifest update, as the server holds them, in
//! one canonical CBOR file that anything with a CBOR reader can take apart: no sled needed. The
//! server writes it (`kluis-server export`); the break-glass holder reads it
//! (`kluis-keys escrow recover`), and verifies everything in it against the manifests before
//! trusting a byte (`crate::manifest::verify`).
//!
//! Decoding is strict canonical CBOR that borrows from the input, like the wire bodies.

use crate::cbor::{Reader, Writer};
use crate::envelope::RecordId;
use crate::error::{Error, Result, malformed};
use crate::hierarchy::VaultId;
use crate::spec::{EXPORT_VERSION, MAX_EXPORT_BYTES, MAX_EXPORT_ITEMS, RECORD_ID_BYTES, VAULT_ID_BYTES};

const WHAT: &str = "export";

/// One vault as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultExport<'a> {
    /// The vault's id.
    pub vault: VaultId,
    /// The current manifest (§4.1).
    pub manifest: &'a [u8],
    /// Every manifest update, from counter 1 upward (§4.4).
    pub updates: Vec<&'a [u8]>,
    /// Every record, ascending ids, with every stored version, oldest first (never empty).
    pub records: Vec<(RecordId, Vec<&'a [u8]>)>,
}

/// A practitioner's export: when it was made, and their notes and identities vaults (either
/// may be absent: never created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserExport<'a> {
    /// When the server wrote it, ms since the Unix epoch (the server's word).
    pub exported_at_ms: u64,
    /// The notes vault.
    pub notes: Option<VaultExport<'a>>,
    /// The identities vault.
    pub identities: Option<VaultExport<'a>>,
}

impl VaultExport<'_> {
    fn write(&self, w: &mut Writer) {
        w.map(4).key(1).bytes(&self.vault.to_bytes()).key(2).bytes(self.manifest).key(3).array(self.updates.len());
        for u in &self.updates {
            w.bytes(u);
        }
        w.key(4).array(self.records.len());
        for (id, versions) in &self.records {
            w.array(2).bytes(&id.to_bytes()).array(versions.len());
            for v in versions {
                w.bytes(v);
            }
        }
    }

    fn size(&self) -> usize {
        self.manifest.len()
            + self.updates.iter().map(|u| u.len() + 9).sum::<usize>()
            + self.records.iter().map(|(_, v)| 32 + v.iter().map(|e| e.len() + 9).sum::<usize>()).sum::<usize>()
            + 64
    }
}

impl<'a> VaultExport<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        r.map_exact(4)?;
        r.key(1)?;
        let vault = VaultId::from_bytes(r.bytes_exact::<VAULT_ID_BYTES>("a vault id is not 16 bytes")?);
        r.key(2)?;
        let manifest = r.bytes()?;
        r.key(3)?;
        let n = r.array(MAX_EXPORT_ITEMS)?;
        let mut updates = Vec::new();
        for _ in 0..n {
            updates.push(r.bytes()?);
        }
        r.key(4)?;
        let n = r.array(MAX_EXPORT_ITEMS)?;
        let mut records: Vec<(RecordId, Vec<&'a [u8]>)> = Vec::new();
        for _ in 0..n {
            if r.array(2)? != 2 {
                return Err(malformed(WHAT, "a record is not a pair of id and versions"));
            }
            let id = RecordId::from_bytes(r.bytes_exact::<RECORD_ID_BYTES>("a record id is not 16 bytes")?);
            if records.last().is_some_and(|(last, _)| *last >= id) {
                return Err(malformed(WHAT, "records out of order or repeated"));
            }
            let m = r.array(MAX_EXPORT_ITEMS)?;
            if m == 0 {
                return Err(malformed(WHAT, "a record without a version"));
            }
            let mut versions = Vec::new();
            for _ in 0..m {
                versions.push(r.bytes()?);
            }
            records.push((id, versions));
        }
        Ok(VaultExport { vault, manifest, updates, records })
    }
}

fn write_optional(w: &mut Writer, v: Option<&VaultExport<'_>>) {
    match v {
        Some(v) => v.write(w),
        None => {
            w.null();
        }
    }
}

impl<'a> UserExport<'a> {
    /// Encodes the export: `{1: version, 2: exported_at_ms, 3: notes or null, 4: identities or
    /// null}`.
    pub fn encode(&self) -> Vec<u8> {
        let size =
            self.notes.as_ref().map_or(0, VaultExport::size) + self.identities.as_ref().map_or(0, VaultExport::size);
        let mut w = Writer::with_capacity(size + 32);
        w.map(4).key(1).uint(EXPORT_VERSION).key(2).uint(self.exported_at_ms).key(3);
        write_optional(&mut w, self.notes.as_ref());
        w.key(4);
        write_optional(&mut w, self.identities.as_ref());
        w.out
    }

    /// Decodes an export, refusing anything but the one canonical encoding of version 1.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() > MAX_EXPORT_BYTES {
            return Err(Error::TooLarge { what: WHAT, len: bytes.len(), max: MAX_EXPORT_BYTES });
        }
        let mut r = Reader::new(bytes, WHAT);
        r.map_exact(4)?;
        r.key(1)?;
        let version = r.uint()?;
        if version != EXPORT_VERSION {
            return Err(Error::Unsupported { what: "export version", value: version });
        }
        r.key(2)?;
        let exported_at_ms = r.uint()?;
        r.key(3)?;
        let notes = if r.null_or()? { None } else { Some(VaultExport::read(&mut r)?) };
        r.key(4)?;
        let identities = if r.null_or()? { None } else { Some(VaultExport::read(&mut r)?) };
        r.finish()?;
        Ok(UserExport { exported_at_ms, notes, identities })
    }
}
