//! A client of the record API that verifies everything it gets, as the browser app does.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use axum::http::StatusCode;
use kluis_core::manifest::{Entry, EntryState, HighWater, Manifest, VerifiedManifest, verify};
use kluis_core::wire::{SaveRequest, SyncResponse};
use kluis_core::{EnvelopeHash, KeyHierarchy, RecordHeader, RecordId, RecordKind, VaultKeys, VaultSecret, envelope};

use super::server::{Call, TestServer};

pub struct App<'a> {
    pub s: &'a TestServer,
    pub token: String,
    pub keys: VaultKeys,
    pub vault: String,
    pub head: VerifiedManifest,
    pub hw: HighWater,
    /// The plaintext of every live record, as this client last verified it.
    pub notes: BTreeMap<RecordId, Vec<u8>>,
}

impl<'a> App<'a> {
    pub async fn new(s: &'a TestServer, token: &str, keys: VaultKeys, kind: &str) -> App<'a> {
        let genesis = Manifest::genesis(&keys, 1).encode();
        let res = s.call(Call::post(&format!("/api/vaults/{kind}")).session(token).cbor(genesis.clone())).await;
        assert_eq!(res.status, StatusCode::CREATED);
        let vault = res.json()["vault"].as_str().unwrap().to_owned();
        assert_eq!(vault, hex::encode(keys.id.to_bytes()));
        let head = verify(&genesis, &keys, None, &[]).unwrap();
        App { s, token: token.to_owned(), keys, vault, hw: head.high_water(), head, notes: BTreeMap::new() }
    }

    /// The client of a vault that exists already, as a new browser knows it: only its keys. It
    /// starts from the genesis state; its first sync brings and verifies everything.
    pub fn existing(s: &'a TestServer, token: &str, keys: VaultKeys) -> App<'a> {
        let genesis = Manifest::genesis(&keys, 1).encode();
        let head = verify(&genesis, &keys, None, &[]).unwrap();
        let vault = hex::encode(keys.id.to_bytes());
        App { s, token: token.to_owned(), keys, vault, hw: head.high_water(), head, notes: BTreeMap::new() }
    }

    /// A save of new versions of `changes` (None: delete), prepared from the verified head.
    pub fn prepare(&self, changes: &[(RecordId, Option<&[u8]>)], kind: RecordKind) -> Vec<u8> {
        let mut entries = BTreeMap::new();
        let mut envs = Vec::new();
        for (id, text) in changes {
            let version = self.head.manifest().entries.get(id).map_or(1, |e| e.version + 1);
            match text {
                Some(text) => {
                    let header = match self.head.manifest().entries.get(id) {
                        Some(_) => {
                            let prev = self.record(id);
                            envelope::header_of(&prev).unwrap().next(&prev).unwrap()
                        }
                        None => RecordHeader::first(self.keys.id, *id, kind),
                    };
                    let env = envelope::seal(&self.keys, &header, text).unwrap();
                    entries.insert(
                        *id,
                        Entry { version: header.version, state: EntryState::Live(EnvelopeHash::of(&env)) },
                    );
                    envs.push((*id, env));
                }
                None => {
                    entries.insert(*id, Entry { version, state: EntryState::Deleted });
                }
            }
        }
        let (update, _) = self.head.prepare_update(&self.keys, entries, 5).unwrap();
        let envelopes: Vec<(RecordId, &[u8])> = envs.iter().map(|(id, e)| (*id, e.as_slice())).collect();
        SaveRequest { update: &update.encode(), envelopes }.encode()
    }

    pub fn record(&self, id: &RecordId) -> Vec<u8> {
        // Read synchronously through the store for preparing only; the API path is tested below.
        self.s
            .state
            .notes
            .record(&self.keys.id, id, None)
            .or_else(|_| self.s.state.identities.record(&self.keys.id, id, None))
            .unwrap()
    }

    pub async fn save(&self, body: Vec<u8>) -> StatusCode {
        self.s
            .call(Call::post(&format!("/api/vaults/{}/saves", self.vault)).session(&self.token).cbor(body))
            .await
            .status
    }

    /// Delta sync from the high-water mark: verifies the chain of saves and every record.
    pub async fn sync(&mut self) -> usize {
        let res = self
            .s
            .call(Call::get(&format!("/api/vaults/{}/sync?since={}", self.vault, self.hw.counter)).session(&self.token))
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.headers["content-type"], "application/cbor");
        let sync = SyncResponse::decode(&res.body).unwrap();
        self.head = verify(sync.head, &self.keys, Some(&self.hw), &sync.updates).unwrap();
        self.hw = self.head.high_water();
        for (id, env) in &sync.records {
            self.head.check_record(id, env).unwrap();
            self.notes.insert(*id, envelope::open(&self.keys, env).unwrap().1);
        }
        self.notes
            .retain(|id, _| matches!(self.head.manifest().entries.get(id).map(|e| e.state), Some(EntryState::Live(_))));
        sync.records.len()
    }
}

pub fn id(n: u8) -> RecordId {
    RecordId::from_bytes([n; 16])
}

pub fn keys(seed: u8) -> (VaultKeys, VaultKeys) {
    let h = KeyHierarchy::derive(&VaultSecret::from_bytes([seed; 32]));
    (h.notes, h.identities)
}
