//! The record envelope (FORMAT.md §3): one version of one record, as the server stores it.
//!
//! The header (vault, record id, version, kind, hash of the previous version) travels in the
//! clear so the server can index it, and is bound into the associated data of both AEADs, so the
//! server cannot move an envelope to another vault, record, version or place in the chain.

mod open;
mod seal;

use sha2::{Digest, Sha256};

use crate::cbor::{Reader, Writer};
use crate::error::{Error, Result, malformed};
use crate::hierarchy::VaultId;
use crate::spec::{
    ESCROW_ENC_BYTES, ESCROW_SEALED_BYTES, FORMAT_VERSION, HASH_BYTES, LABEL_RECORD_AAD, MAX_ENVELOPE_BYTES,
    NONCE_BYTES, RECORD_ID_BYTES, SUITE_ESCROW, SUITE_RECORD, TAG_BYTES, WRAPPED_KEY_BYTES,
};

pub use open::{BodyJob, Plaintext, open, unwrap_body};
#[cfg(feature = "os-rng")]
pub use seal::seal;
pub use seal::seal_with_rng;

const WHAT: &str = "envelope";

/// A record's id: 128 random bits chosen by the client (FORMAT.md §3.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub(crate) [u8; RECORD_ID_BYTES]);

impl RecordId {
    /// A fresh random id.
    pub fn random_with_rng(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut id = [0; RECORD_ID_BYTES];
        rng.fill_bytes(&mut id);
        RecordId(id)
    }

    /// A fresh id from the OS or browser RNG.
    #[cfg(feature = "os-rng")]
    pub fn random() -> Self {
        Self::random_with_rng(&mut rand_core::UnwrapErr(rand_core::OsRng))
    }

    /// Wraps raw bytes.
    pub fn from_bytes(b: [u8; RECORD_ID_BYTES]) -> Self {
        RecordId(b)
    }

    /// The raw bytes.
    pub fn to_bytes(&self) -> [u8; RECORD_ID_BYTES] {
        self.0
    }
}

impl core::fmt::Debug for RecordId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RecordId({})", data_encoding::HEXLOWER.encode(&self.0))
    }
}

/// What a record holds (FORMAT.md §3.2). Visible to the server; it links nothing, because a
/// note names its client only inside its ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A client's identity (name, contact details); lives in the identities vault.
    Identity,
    /// A clinical note; lives in the notes vault.
    Note,
    /// The break-glass escrow of the key-file secret (suite 2, FORMAT.md §5).
    Escrow,
}

impl RecordKind {
    /// Its code in the envelope.
    pub fn code(self) -> u64 {
        match self {
            RecordKind::Identity => 1,
            RecordKind::Note => 2,
            RecordKind::Escrow => 3,
        }
    }

    fn from_code(c: u64) -> Result<Self> {
        match c {
            1 => Ok(RecordKind::Identity),
            2 => Ok(RecordKind::Note),
            3 => Ok(RecordKind::Escrow),
            value => Err(Error::Unsupported { what: "record kind", value }),
        }
    }

    /// The vault a record of this kind lives in (FORMAT.md §3.2).
    pub fn vault_kind(self) -> crate::hierarchy::VaultKind {
        match self {
            RecordKind::Identity => crate::hierarchy::VaultKind::Identities,
            RecordKind::Note | RecordKind::Escrow => crate::hierarchy::VaultKind::Notes,
        }
    }

    fn suite(self) -> u64 {
        match self {
            RecordKind::Escrow => SUITE_ESCROW,
            RecordKind::Identity | RecordKind::Note => SUITE_RECORD,
        }
    }
}

/// SHA-256 of an encoded envelope: what the manifest and the next version's `prev` name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnvelopeHash(pub(crate) [u8; HASH_BYTES]);

impl EnvelopeHash {
    /// The hash of the encoded envelope `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        EnvelopeHash(Sha256::digest(bytes).into())
    }

    /// The all-zero value that stands for "no previous version".
    pub const NONE: EnvelopeHash = EnvelopeHash([0; HASH_BYTES]);

    /// The raw bytes.
    pub fn to_bytes(&self) -> [u8; HASH_BYTES] {
        self.0
    }

    /// Wraps raw bytes (as a store keeps them).
    pub fn from_bytes(b: [u8; HASH_BYTES]) -> Self {
        EnvelopeHash(b)
    }
}

impl core::fmt::Debug for EnvelopeHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "EnvelopeHash({})", data_encoding::HEXLOWER.encode(&self.0))
    }
}

/// The clear, authenticated header of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// The vault it belongs to.
    pub vault: VaultId,
    /// The record.
    pub id: RecordId,
    /// Its version, from 1.
    pub version: u64,
    /// What it holds.
    pub kind: RecordKind,
    /// Hash of version `version - 1`, or [`EnvelopeHash::NONE`] for version 1.
    pub prev: EnvelopeHash,
}

impl RecordHeader {
    /// The header of the first version of a new record.
    pub fn first(vault: VaultId, id: RecordId, kind: RecordKind) -> Self {
        RecordHeader { vault, id, version: 1, kind, prev: EnvelopeHash::NONE }
    }

    /// The header of the version after the one whose encoded envelope is `previous`.
    pub fn next(&self, previous: &[u8]) -> Result<Self> {
        let version = self.version.checked_add(1).ok_or(Error::InvalidArgument("version overflow"))?;
        Ok(RecordHeader { version, prev: EnvelopeHash::of(previous), ..*self })
    }

    pub(crate) fn check(&self) -> Result<()> {
        // FORMAT.md §3.2: versions start at 1; version 1, and only version 1, has no predecessor.
        if self.version == 0 {
            return Err(malformed(WHAT, "version 0"));
        }
        if (self.version == 1) != (self.prev == EnvelopeHash::NONE) {
            return Err(malformed(WHAT, "only version 1 has no previous version"));
        }
        Ok(())
    }

    /// The associated data bound into every AEAD of the envelope (FORMAT.md §3.3).
    // Format version, suite and kind are single-byte codes by definition (FORMAT.md §3.3).
    #[allow(clippy::cast_possible_truncation)]
    pub(crate) fn aad(&self) -> [u8; AAD_BYTES] {
        let mut aad = [0u8; AAD_BYTES];
        let parts: [&[u8]; 8] = [
            LABEL_RECORD_AAD,
            &[FORMAT_VERSION as u8],
            &[self.kind.suite() as u8],
            &self.vault.0,
            &self.id.0,
            &self.version.to_be_bytes(),
            &[self.kind.code() as u8],
            &self.prev.0,
        ];
        let mut at = 0;
        for p in parts {
            for (dst, src) in aad.iter_mut().skip(at).zip(p) {
                *dst = *src;
            }
            at += p.len();
        }
        aad
    }
}

/// Length of the associated data (FORMAT.md §3.3).
pub(crate) const AAD_BYTES: usize = LABEL_RECORD_AAD.len() + 1 + 1 + 16 + RECORD_ID_BYTES + 8 + 1 + HASH_BYTES;

/// The cryptographic part of an envelope, by suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// Suite 1 (FORMAT.md §3.4).
    Record {
        wrap_nonce: [u8; NONCE_BYTES],
        wrapped_key: [u8; WRAPPED_KEY_BYTES],
        commitment: [u8; HASH_BYTES],
        body_nonce: [u8; NONCE_BYTES],
        body: &'a [u8],
    },
    /// Suite 2 (FORMAT.md §5.2).
    Escrow { enc: [u8; ESCROW_ENC_BYTES], sealed: [u8; ESCROW_SEALED_BYTES] },
}

/// A decoded envelope borrowing its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The clear header.
    pub header: RecordHeader,
    pub(crate) body: Body<'a>,
}

impl<'a> Envelope<'a> {
    /// Decodes an envelope strictly (FORMAT.md §3.1): canonical CBOR, exactly the fields of its
    /// suite in order, exact lengths, no trailing bytes, size checked before parsing.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(Error::TooLarge { what: WHAT, len: bytes.len(), max: MAX_ENVELOPE_BYTES });
        }
        let mut r = Reader::new(bytes, WHAT);
        // The map length depends on the suite, which comes second: read it from the first byte
        // (a map of at most 23 fields has its length in the head byte), check it once the suite is known.
        let fields = peek_map_len(bytes)?;
        r.map_exact(fields)?;
        r.key(1)?;
        let format = r.uint()?;
        if format != FORMAT_VERSION {
            return Err(Error::Unsupported { what: "envelope format version", value: format });
        }
        r.key(2)?;
        let suite = r.uint()?;
        let expected_fields = match suite {
            SUITE_RECORD => 12,
            SUITE_ESCROW => 9,
            value => return Err(Error::Unsupported { what: "envelope suite", value }),
        };
        if fields != expected_fields {
            return Err(malformed(WHAT, "wrong number of fields for its suite"));
        }
        r.key(3)?;
        let vault = VaultId(r.bytes_exact("vault id must be 16 bytes")?);
        r.key(4)?;
        let id = RecordId(r.bytes_exact("record id must be 16 bytes")?);
        r.key(5)?;
        let version = r.uint()?;
        r.key(6)?;
        let kind = RecordKind::from_code(r.uint()?)?;
        if kind.suite() != suite {
            return Err(malformed(WHAT, "record kind does not match the suite"));
        }
        r.key(7)?;
        let prev = EnvelopeHash(r.bytes_exact("previous hash must be 32 bytes")?);
        let header = RecordHeader { vault, id, version, kind, prev };
        header.check()?;
        let body = if suite == SUITE_RECORD {
            r.key(8)?;
            let wrap_nonce = r.bytes_exact("nonce must be 12 bytes")?;
            r.key(9)?;
            let wrapped_key = r.bytes_exact("wrapped key must be 52 bytes")?;
            r.key(10)?;
            let commitment = r.bytes_exact("commitment must be 32 bytes")?;
            r.key(11)?;
            let body_nonce = r.bytes_exact("nonce must be 12 bytes")?;
            r.key(12)?;
            let body = r.bytes()?;
            let padded = body.len().checked_sub(TAG_BYTES).ok_or_else(|| malformed(WHAT, "body too short"))?;
            if padded < crate::spec::MIN_PADDED_BYTES || crate::padding::padme(padded) != padded {
                return Err(malformed(WHAT, "body length is not a padding bucket"));
            }
            Body::Record { wrap_nonce, wrapped_key, commitment, body_nonce, body }
        } else {
            r.key(8)?;
            let enc = r.bytes_exact("encapsulated key must be 32 bytes")?;
            r.key(9)?;
            let sealed = r.bytes_exact("sealed secret must be 48 bytes")?;
            Body::Escrow { enc, sealed }
        };
        r.finish()?;
        Ok(Envelope { header, body })
    }

    /// Writes the header fields 1–7 (FORMAT.md §3.1).
    pub(crate) fn write_header(w: &mut Writer, header: &RecordHeader, fields: usize) {
        w.map(fields);
        w.key(1).uint(FORMAT_VERSION);
        w.key(2).uint(header.kind.suite());
        w.key(3).bytes(&header.vault.0);
        w.key(4).bytes(&header.id.0);
        w.key(5).uint(header.version);
        w.key(6).uint(header.kind.code());
        w.key(7).bytes(&header.prev.0);
    }

    /// Encodes the envelope canonically (the inverse of [`Envelope::decode`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        match self.body {
            Body::Record { wrap_nonce, wrapped_key, commitment, body_nonce, body } => {
                Self::write_header(&mut w, &self.header, 12);
                w.key(8).bytes(&wrap_nonce);
                w.key(9).bytes(&wrapped_key);
                w.key(10).bytes(&commitment);
                w.key(11).bytes(&body_nonce);
                w.key(12).bytes(body);
            }
            Body::Escrow { enc, sealed } => {
                Self::write_header(&mut w, &self.header, 9);
                w.key(8).bytes(&enc);
                w.key(9).bytes(&sealed);
            }
        }
        w.out
    }
}

fn peek_map_len(bytes: &[u8]) -> Result<u64> {
    match bytes.first() {
        Some(b) if b >> 5 == 5 && b & 0x1f < 24 => Ok(u64::from(b & 0x1f)),
        Some(_) => Err(malformed(WHAT, "expected a map of at most 23 fields")),
        None => Err(malformed(WHAT, "truncated")),
    }
}

/// Reads only the header of an encoded envelope (after a full strict decode).
pub fn header_of(bytes: &[u8]) -> Result<RecordHeader> {
    Envelope::decode(bytes).map(|e| e.header)
}
