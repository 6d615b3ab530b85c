//! An open vault in the browser: its keys, the manifest the device has verified, and the save
//! being prepared. Every check is kluis-core's (`manifest::verify`, `check_record`,
//! `check_listing`, `prepare_update`); this file only moves bytes between them and JavaScript.

use std::collections::BTreeMap;

use js_sys::{Array, JsString, Object, Reflect, Uint8Array};
use kluis_core::manifest::{Entry, EntryState, HighWater, Manifest, VerifiedManifest, verify};
use kluis_core::wire::{SaveRequest, SyncResponse};
use kluis_core::{EnvelopeHash, RecordHeader, RecordId, RecordKind, VaultKeys, envelope};
use wasm_bindgen::prelude::*;

use crate::{webcrypto, whole};

/// Label of the escrow record id (see `escrow_id`).
const ESCROW_ID_LABEL: &[u8] = b"kluis/v1/app/escrow-record-id";

fn err(e: &kluis_core::Error) -> JsError {
    // The kind first ("rollback: ..."), so the app can tell the user what the server did.
    JsError::new(&format!("{}: {e}", e.kind()))
}

fn to_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Exactly `N` bytes from hex digits (either case), or `None`.
fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    data_encoding::HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()?.try_into().ok()
}

fn id_hex(id: &RecordId) -> String {
    to_hex(&id.to_bytes())
}

fn parse_id(s: &str) -> Result<RecordId, JsError> {
    from_hex(s).map(RecordId::from_bytes).ok_or_else(|| JsError::new("a record id is 32 hex digits"))
}

fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Note => "note",
        RecordKind::Identity => "identity",
        RecordKind::Escrow => "escrow",
    }
}

fn ids(list: &[RecordId]) -> Array {
    list.iter().map(|id| JsValue::from_str(&id_hex(id))).collect()
}

/// `{counter, saved_at, chain}` of a manifest, for the app to show.
fn state(m: &Manifest) -> Result<Object, JsError> {
    let o = Object::new();
    set(&o, "counter", &JsValue::from_f64(m.counter as f64))?;
    set(&o, "saved_at", &JsValue::from_f64(m.saved_at_ms as f64))?;
    set(&o, "chain", &JsValue::from_str(&to_hex(&m.chain)))?;
    Ok(o)
}

fn set(obj: &Object, key: &str, value: &JsValue) -> Result<(), JsError> {
    Reflect::set(obj, &JsValue::from_str(key), value).map(|_| ()).map_err(|_| JsError::new("cannot build a result"))
}

/// One vault (notes or identities) opened in this page.
#[wasm_bindgen]
#[derive(Debug)]
pub struct VaultSession {
    keys: VaultKeys,
    kind: RecordKind,
    head: VerifiedManifest,
    pending: Option<Manifest>,
    /// An authentic state the server offers that does not descend from the device's high-water
    /// mark (a restore from backup, or a rollback): kept apart until the user decides.
    offered: Option<VerifiedManifest>,
    /// After the user accepted an offered state: the high-water mark it replaces, which the
    /// next save's counter must rise above (FORMAT.md §4.5).
    replaced: Option<HighWater>,
}

impl VaultSession {
    pub(crate) fn new(keys: VaultKeys, kind: RecordKind, genesis_ms: u64) -> Result<Self, JsError> {
        let genesis = Manifest::genesis(&keys, genesis_ms).encode();
        let head = verify(&genesis, &keys, None, &[]).map_err(|e| err(&e))?;
        Ok(VaultSession { keys, kind, head, pending: None, offered: None, replaced: None })
    }
}

#[wasm_bindgen]
impl VaultSession {
    /// The vault id (hex), for the API's URLs.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        to_hex(&self.keys.id.to_bytes())
    }

    /// The genesis manifest that creates this vault on the server.
    pub fn genesis(&self, now_ms: f64) -> Result<Vec<u8>, JsError> {
        Ok(Manifest::genesis(&self.keys, whole(now_ms, "a time")?).encode())
    }

    /// The verified manifest's counter (the device's high-water mark after `accept`).
    #[wasm_bindgen(getter)]
    pub fn counter(&self) -> f64 {
        self.head.manifest().counter as f64
    }

    /// The verified manifest's history chain (hex): with the counter, the high-water mark to
    /// keep, and, shortened, what two devices compare.
    #[wasm_bindgen(getter)]
    pub fn chain(&self) -> String {
        to_hex(&self.head.manifest().chain)
    }

    /// Checks a sync response (FORMAT.md §10.2) and opens its records: the manifest against
    /// the device's high-water mark (`hw_counter`, `hw_chain`; none on a device that never saw
    /// this vault) and the saves since it, then every record against the manifest (with
    /// `full`, also that no live record is missing), then decrypts them. Resolves to `[{id,
    /// kind, plaintext}]`, where `plaintext` is the record's bytes (UTF-8 JSON, FORMAT.md §11;
    /// null for an escrow record, which only the break-glass key opens). Rejects with the kind
    /// of failure first (`rollback: …`, `fork: …`, `record-missing: …`, `auth-fail: …`), and
    /// then changes nothing.
    pub async fn accept(
        &mut self,
        sync: Uint8Array,
        full: bool,
        hw_counter: Option<f64>,
        hw_chain: Option<String>,
    ) -> Result<Array, JsError> {
        let hw = match (hw_counter, hw_chain) {
            (Some(counter), Some(chain)) => {
                let chain = from_hex(&chain).ok_or_else(|| JsError::new("a stored high-water mark is damaged"))?;
                Some(HighWater { counter: whole(counter, "a stored counter")?, chain })
            }
            _ => None,
        };
        let (head, records) = self.verify_and_open(&sync, hw, full).await?;
        self.head = head;
        self.pending = None;
        Ok(records)
    }

    /// The common part of `accept` and `inspect`. The page's copy of the response stays where
    /// it is: wasm gets its own copy to parse and verify, WebCrypto hashes and decrypts views
    /// of the page's. Hashing runs in WebCrypto while wasm unwraps the record keys; failures of
    /// the listing are reported before failures to decrypt, so a record the server swapped or
    /// injected is named as such.
    async fn verify_and_open(
        &self,
        sync: &Uint8Array,
        hw: Option<HighWater>,
        full: bool,
    ) -> Result<(VerifiedManifest, Array), JsError> {
        let copy = sync.to_vec();
        let s = SyncResponse::decode(&copy).map_err(|e| err(&e))?;
        let head = verify(s.head, &self.keys, hw.as_ref(), &s.updates).map_err(|e| err(&e))?;
        let views = s
            .records
            .iter()
            .map(|(_, bytes)| {
                let from = webcrypto::offset_in(&copy, bytes);
                let to = from.saturating_add(bytes.len());
                match (u32::try_from(from), u32::try_from(to)) {
                    (Ok(from), Ok(to)) => Ok(sync.subarray(from, to)),
                    _ => Err(JsError::new("a sync response is too large for this browser")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let browser = |e: webcrypto::OpenError| match e {
            webcrypto::OpenError::Core(e) => err(&e),
            webcrypto::OpenError::Browser(e) => JsError::new(&e),
        };
        let subtle = webcrypto::subtle().map_err(browser)?;
        let digests = webcrypto::start_digests(&subtle, &views).map_err(browser)?;
        // Escrow records are sealed to the practice's break-glass key: only that key opens them.
        let started: Vec<Option<Result<webcrypto::Pending<'_>, webcrypto::OpenError>>> = s
            .records
            .iter()
            .zip(&views)
            .map(|((_, bytes), view)| match envelope::header_of(bytes) {
                Ok(h) if h.kind == RecordKind::Escrow => None,
                _ => Some(webcrypto::start(&subtle, &self.keys, bytes, view)),
            })
            .collect();
        let hashes = webcrypto::digests(&digests).await.map_err(browser)?;
        let listed = s.records.iter().zip(&hashes).map(|((id, bytes), hash)| (*id, *bytes, *hash));
        let headers = if full {
            head.check_listing_hashed(listed).map_err(|e| err(&e))?
        } else {
            listed
                .map(|(id, b, h)| head.check_record_hashed(&id, b, h))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(&e))?
        };
        let mut pending = Vec::with_capacity(started.len());
        for p in started.into_iter().flatten() {
            pending.push(p.map_err(browser)?);
        }
        let mut plaintexts = webcrypto::finish(&subtle, pending).await.map_err(browser)?.into_iter();
        // Each string crossing into JavaScript costs a TextDecoder call, which for 10,000
        // records costed more than their decryption: the ids cross as one string, cut there,
        // and the property names and kinds once.
        let all_ids = JsString::from(s.records.iter().map(|(id, _)| id_hex(id)).collect::<String>());
        let (k_id, k_kind, k_plaintext) = (JsValue::from("id"), JsValue::from("kind"), JsValue::from("plaintext"));
        let kinds =
            [RecordKind::Note, RecordKind::Identity, RecordKind::Escrow].map(|k| (k, JsValue::from(kind_name(k))));
        let out = Array::new();
        for (i, header) in (0u32..).zip(&headers) {
            let o = Object::new();
            let put = |k: &JsValue, v: &JsValue| {
                Reflect::set(&o, k, v).map(|_| ()).map_err(|_| JsError::new("cannot build a result"))
            };
            let at = i.saturating_mul(32);
            put(&k_id, &all_ids.slice(at, at.saturating_add(32)).into())?;
            let kind = kinds.iter().find(|(k, _)| *k == header.kind).map_or(JsValue::NULL, |(_, v)| v.clone());
            put(&k_kind, &kind)?;
            let plaintext = if header.kind == RecordKind::Escrow {
                JsValue::NULL
            } else {
                plaintexts.next().ok_or_else(|| JsError::new("a record was not opened"))?.into()
            };
            put(&k_plaintext, &plaintext)?;
            out.push(&o);
        }
        Ok((head, out))
    }

    /// The verified manifest, encoded: the device keeps the last one it accepted (metadata
    /// only: ids, versions, hashes, times) to say what a restored state lacks (FORMAT.md §11).
    pub fn manifest(&self) -> Vec<u8> {
        self.head.manifest().encode()
    }

    /// After `accept` refused a full sync as `rollback` or `fork`: checks whether the server
    /// offers an authentic, complete state all the same (a restore from backup looks exactly
    /// like a rollback), opens its records, and compares it with `seen`, the last manifest this
    /// device accepted (from `manifest`; none if the device kept none). Resolves to `{offered:
    /// {counter, saved_at, chain}, seen: {…} or null, missing, older, unseen: [ids], records:
    /// [{id, kind, plaintext}]}`; the state stays apart until `accept_offered`. Rejects if the
    /// offered state fails any other check.
    pub async fn inspect(&mut self, sync: Uint8Array, seen: Option<Vec<u8>>) -> Result<Object, JsError> {
        let (offered, records) = self.verify_and_open(&sync, None, true).await?;
        let seen = seen.and_then(|bytes| verify(&bytes, &self.keys, None, &[]).ok());
        let out = Object::new();
        set(&out, "offered", &state(offered.manifest())?.into())?;
        match &seen {
            Some(seen) => {
                let lost = offered.lost_since(seen);
                set(&out, "seen", &state(seen.manifest())?.into())?;
                set(&out, "missing", &ids(&lost.missing).into())?;
                set(&out, "older", &ids(&lost.older).into())?;
                set(&out, "unseen", &ids(&lost.unseen).into())?;
            }
            None => {
                for key in ["missing", "older", "unseen"] {
                    set(&out, key, &Array::new().into())?;
                }
                set(&out, "seen", &JsValue::NULL)?;
            }
        }
        set(&out, "records", &records.into())?;
        self.offered = Some(offered);
        Ok(out)
    }

    /// The user accepted the state `inspect` offered, in place of the high-water mark
    /// (`hw_counter`, `hw_chain`): it becomes this session's state, and the next save (the
    /// app's confirmation record) continues the counter above the replaced mark (FORMAT.md §4.5).
    pub fn accept_offered(&mut self, hw_counter: f64, hw_chain: String) -> Result<(), JsError> {
        // Everything is checked before anything changes.
        let chain = from_hex(&hw_chain).ok_or_else(|| JsError::new("a stored high-water mark is damaged"))?;
        let replaced = HighWater { counter: whole(hw_counter, "a stored counter")?, chain };
        let offered = self.offered.take().ok_or_else(|| JsError::new("no state was offered"))?;
        self.head = offered;
        self.pending = None;
        self.replaced = Some(replaced);
        Ok(())
    }

    /// Opens an envelope of this vault (checked by `accept`): kluis-core unwraps its key,
    /// WebCrypto decrypts its body. Resolves to the plaintext as text.
    pub async fn open(&self, envelope: Vec<u8>) -> Result<String, JsError> {
        let keys = self.keys.clone();
        match webcrypto::open(&keys, &envelope).await {
            Ok((_, plaintext)) => String::from_utf8(plaintext).map_err(|_| JsError::new("a record is not text")),
            Err(webcrypto::OpenError::Core(e)) => Err(err(&e)),
            Err(webcrypto::OpenError::Browser(e)) => Err(JsError::new(&e)),
        }
    }

    /// Opens many envelopes of this vault (`[Uint8Array]`, already checked) at once, as
    /// `accept` does: for the benchmark page, which times decryption alone. Resolves to their
    /// plaintexts (`Uint8Array`), in order; rejects if any fails.
    pub async fn open_all(&self, envelopes: Array) -> Result<Array, JsError> {
        let browser = |e: webcrypto::OpenError| match e {
            webcrypto::OpenError::Core(e) => err(&e),
            webcrypto::OpenError::Browser(e) => JsError::new(&e),
        };
        let views: Vec<Uint8Array> = envelopes.iter().map(JsCast::unchecked_into).collect();
        let copies: Vec<Vec<u8>> = views.iter().map(Uint8Array::to_vec).collect();
        let subtle = webcrypto::subtle().map_err(browser)?;
        let pending = copies
            .iter()
            .zip(&views)
            .map(|(bytes, view)| webcrypto::start(&subtle, &self.keys, bytes, view))
            .collect::<Result<Vec<_>, _>>()
            .map_err(browser)?;
        Ok(webcrypto::finish(&subtle, pending).await.map_err(browser)?.into_iter().collect())
    }

    /// Opens an envelope entirely in wasm (RustCrypto AES-GCM): the baseline of the benchmark
    /// page, beside the WebCrypto route of `open`.
    pub fn open_in_wasm(&self, envelope: &[u8]) -> Result<String, JsError> {
        let (_, plaintext) = envelope::open(&self.keys, envelope).map_err(|e| err(&e))?;
        String::from_utf8(plaintext).map_err(|_| JsError::new("a record is not text"))
    }

    /// Every current version number of the live records, `{id: version}`, for history views.
    pub fn versions(&self) -> Result<Object, JsError> {
        let o = Object::new();
        for (id, e) in &self.head.manifest().entries {
            if matches!(e.state, EntryState::Live(_)) {
                set(&o, &id_hex(id), &JsValue::from_f64(e.version as f64))?;
            }
        }
        Ok(o)
    }

    /// Opens an older version of a record, fetched by the app from
    /// `/records/{id}?version=N`: checked to be that record of this vault at that version.
    pub async fn open_version(&self, id: String, version: f64, envelope: Vec<u8>) -> Result<String, JsError> {
        let header = envelope::header_of(&envelope).map_err(|e| err(&e))?;
        if header.vault != self.keys.id || header.id != parse_id(&id)? || header.version != whole(version, "a version")?
        {
            return Err(JsError::new("swapped: the server sent another record or version than asked for"));
        }
        self.open(envelope).await
    }

    /// A fresh random record id (hex).
    pub fn new_id(&self) -> String {
        id_hex(&RecordId::random())
    }

    /// Prepares one save (FORMAT.md §10.1): `changes` is `[[id, text or null], ...]`, where
    /// null deletes. Returns the request body; after the server says 204, call `commit`; after
    /// 409, sync and prepare again.
    pub fn prepare(&mut self, changes: Array, now_ms: f64) -> Result<Vec<u8>, JsError> {
        let mut entries = BTreeMap::new();
        let mut sealed: Vec<(RecordId, Vec<u8>)> = Vec::new();
        for change in changes.iter() {
            let pair: Array = change.dyn_into().map_err(|_| JsError::new("a change is [id, text or null]"))?;
            let id = parse_id(&pair.get(0).as_string().ok_or_else(|| JsError::new("a change needs an id"))?)?;
            let current = self.head.manifest().entries.get(&id).copied();
            match pair.get(1).as_string() {
                Some(text) => {
                    let header = match current {
                        Some(Entry { version, state: EntryState::Live(prev) }) => RecordHeader {
                            vault: self.keys.id,
                            id,
                            version: version.checked_add(1).ok_or_else(|| JsError::new("version overflow"))?,
                            kind: self.kind,
                            prev,
                        },
                        Some(Entry { state: EntryState::Deleted, .. }) => {
                            return Err(JsError::new("a deleted record cannot be written again"));
                        }
                        None => RecordHeader::first(self.keys.id, id, self.kind),
                    };
                    let env = envelope::seal(&self.keys, &header, text.as_bytes()).map_err(|e| err(&e))?;
                    entries
                        .insert(id, Entry { version: header.version, state: EntryState::Live(EnvelopeHash::of(&env)) });
                    sealed.push((id, env));
                }
                None => {
                    let Some(Entry { version, state: EntryState::Live(_) }) = current else {
                        return Err(JsError::new("no such record to delete"));
                    };
                    let version = version.checked_add(1).ok_or_else(|| JsError::new("version overflow"))?;
                    entries.insert(id, Entry { version, state: EntryState::Deleted });
                }
            }
        }
        let now = whole(now_ms, "a time")?;
        let (update, next) = match &self.replaced {
            Some(replaced) => self.head.prepare_restore_update(&self.keys, entries, now, replaced),
            None => self.head.prepare_update(&self.keys, entries, now),
        }
        .map_err(|e| err(&e))?;
        sealed.sort_by_key(|(id, _)| *id);
        let body = SaveRequest {
            update: &update.encode(),
            envelopes: sealed.iter().map(|(id, e)| (*id, e.as_slice())).collect(),
        }
        .encode();
        self.pending = Some(next);
        Ok(body)
    }

    /// The record id of this vault's break-glass escrow record for the key file's break-glass
    /// key (none without one): SHA-256 of a label, the vault id and that public key, so the app
    /// can tell whether the current break-glass key already holds a sealed copy.
    pub fn escrow_id(&self, vault: &crate::Vault) -> Option<String> {
        use sha2::{Digest, Sha256};
        let bg = vault.unlocked().info().break_glass?;
        let digest = Sha256::new()
            .chain_update(ESCROW_ID_LABEL)
            .chain_update(self.keys.id.to_bytes())
            .chain_update(bg.to_bytes())
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(digest.get(..16)?);
        Some(id_hex(&RecordId::from_bytes(id)))
    }

    /// Prepares the save that stores the key-file secret sealed to the practice's break-glass
    /// key (kluis-core escrow, FORMAT.md §5) as a record of this (notes) vault, so the practice
    /// can recover the vault in an emergency. Then `commit` as for any save.
    pub fn prepare_escrow(&mut self, vault: &crate::Vault, now_ms: f64) -> Result<Vec<u8>, JsError> {
        let bg =
            vault.unlocked().info().break_glass.ok_or_else(|| JsError::new("this key file has no break-glass key"))?;
        let id = parse_id(&self.escrow_id(vault).ok_or_else(|| JsError::new("no break-glass key"))?)?;
        if self.head.manifest().entries.contains_key(&id) {
            return Err(JsError::new("the escrow record exists already"));
        }
        let header = RecordHeader::first(self.keys.id, id, RecordKind::Escrow);
        let env = kluis_core::escrow::seal(vault.unlocked().secret(), &bg, &header).map_err(|e| err(&e))?;
        let entries = BTreeMap::from([(id, Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) })]);
        let (update, next) =
            self.head.prepare_update(&self.keys, entries, whole(now_ms, "a time")?).map_err(|e| err(&e))?;
        let body = SaveRequest { update: &update.encode(), envelopes: vec![(id, &env)] }.encode();
        self.pending = Some(next);
        Ok(body)
    }

    /// The server stored the prepared save: it becomes the verified head.
    pub fn commit(&mut self) -> Result<(), JsError> {
        let next = self.pending.take().ok_or_else(|| JsError::new("no save is pending"))?;
        self.head = verify(&next.encode(), &self.keys, None, &[]).map_err(|e| err(&e))?;
        self.replaced = None;
        Ok(())
    }
}
