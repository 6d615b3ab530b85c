//! The bodies exchanged between the browser and the server (FORMAT.md §10): a save request and
//! a sync response. Both sides use this module, so the server checks exactly what the client
//! writes. Decoding is strict canonical CBOR and borrows from the input: no declared length can
//! make either side allocate, and every accepted body re-encodes to the same bytes.
//!
//! The server never looks inside the byte strings it carries (envelopes, manifests, updates);
//! their own parsers and the client's verification do that.

use crate::cbor::{Reader, Writer};
use crate::envelope::RecordId;
use crate::error::{Error, Result, malformed};
use crate::spec::{MAX_SAVE_BYTES, MAX_SAVE_RECORDS, MAX_SYNC_BYTES, MAX_SYNC_UPDATES, RECORD_ID_BYTES};

const SAVE: &str = "save request";
const SYNC: &str = "sync response";

/// One save (§10.1): the manifest update and the envelope of each new or changed record, in
/// ascending record-id order with no duplicates. Deleted records have no envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveRequest<'a> {
    /// The encoded manifest update (FORMAT.md §4.4).
    pub update: &'a [u8],
    /// `(record id, envelope)` for every live change of the update.
    pub envelopes: Vec<(RecordId, &'a [u8])>,
}

/// What a vault holds since a counter (§10.2): the current manifest, the saves after the
/// counter (so the client can check that the manifest descends from the one it knows), and the
/// current envelope of every live record changed after it (all of them for counter 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse<'a> {
    /// The encoded current manifest (FORMAT.md §4.1).
    pub head: &'a [u8],
    /// Encoded manifest updates, oldest first.
    pub updates: Vec<&'a [u8]>,
    /// `(record id, envelope)` in ascending record-id order.
    pub records: Vec<(RecordId, &'a [u8])>,
}

fn write_records(w: &mut Writer, records: &[(RecordId, &[u8])]) {
    w.array(records.len());
    for (id, bytes) in records {
        w.array(2).bytes(&id.to_bytes()).bytes(bytes);
    }
}

fn read_records<'a>(r: &mut Reader<'a>, max: u64, what: &'static str) -> Result<Vec<(RecordId, &'a [u8])>> {
    let n = r.array(max)?;
    let mut out: Vec<(RecordId, &'a [u8])> = Vec::new();
    for _ in 0..n {
        if r.array(2)? != 2 {
            return Err(malformed(what, "a record is not a pair of id and envelope"));
        }
        let id = RecordId::from_bytes(r.bytes_exact::<RECORD_ID_BYTES>("a record id is not 16 bytes")?);
        if out.last().is_some_and(|(last, _)| *last >= id) {
            return Err(malformed(what, "records out of order or repeated"));
        }
        out.push((id, r.bytes()?));
    }
    Ok(out)
}

fn too_large(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len > max { Err(Error::TooLarge { what, len, max }) } else { Ok(()) }
}

impl<'a> SaveRequest<'a> {
    /// Encodes the request: `{1: update, 2: [[id, envelope], ...]}`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            self.update.len() + self.envelopes.iter().map(|(_, e)| e.len() + 32).sum::<usize>() + 16,
        );
        w.map(2).key(1).bytes(self.update).key(2);
        write_records(&mut w, &self.envelopes);
        w.out
    }

    /// Decodes a request, refusing anything but the one canonical encoding.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        too_large(SAVE, bytes.len(), MAX_SAVE_BYTES)?;
        let mut r = Reader::new(bytes, SAVE);
        r.map_exact(2)?;
        r.key(1)?;
        let update = r.bytes()?;
        r.key(2)?;
        let envelopes = read_records(&mut r, MAX_SAVE_RECORDS, SAVE)?;
        r.finish()?;
        Ok(SaveRequest { update, envelopes })
    }
}

impl<'a> SyncResponse<'a> {
    /// Encodes the response: `{1: head, 2: [update, ...], 3: [[id, envelope], ...]}`.
    pub fn encode(&self) -> Vec<u8> {
        let size = self.head.len()
            + self.updates.iter().map(|u| u.len() + 9).sum::<usize>()
            + self.records.iter().map(|(_, e)| e.len() + 32).sum::<usize>()
            + 32;
        let mut w = Writer::with_capacity(size);
        w.map(3).key(1).bytes(self.head).key(2).array(self.updates.len());
        for u in &self.updates {
            w.bytes(u);
        }
        w.key(3);
        write_records(&mut w, &self.records);
        w.out
    }

    /// Decodes a response, refusing anything but the one canonical encoding.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        too_large(SYNC, bytes.len(), MAX_SYNC_BYTES)?;
        let mut r = Reader::new(bytes, SYNC);
        r.map_exact(3)?;
        r.key(1)?;
        let head = r.bytes()?;
        r.key(2)?;
        let n = r.array(MAX_SYNC_UPDATES)?;
        let mut updates = Vec::new();
        for _ in 0..n {
            updates.push(r.bytes()?);
        }
        r.key(3)?;
        let records = read_records(&mut r, crate::spec::MAX_MANIFEST_ENTRIES, SYNC)?;
        r.finish()?;
        Ok(SyncResponse { head, updates, records })
    }
}
