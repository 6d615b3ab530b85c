//! The record API end to end with a client that verifies everything it gets: saves, delta
//! sync, versions, deletes, concurrent conflicting saves over HTTP, the identities vault in its
//! own store, and saves that must change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/server.rs"]
mod server;
#[path = "support/vaults.rs"]
mod vaults;

use axum::http::StatusCode;
use kluis_core::manifest::{Manifest, verify};
use kluis_core::wire::{SaveRequest, SyncResponse};
use kluis_core::{RecordKind, VaultSecret, envelope};
use server::{Call, TestServer};
use vaults::{App, id, keys};

#[tokio::test]
async fn save_sync_versions_and_delete() {
    let s = TestServer::new();
    let token = s.practice("P", "anna").await;
    let mut app = App::new(&s, &token, keys(1).0, "notes").await;
    assert_eq!(
        app.save(app.prepare(&[(id(1), Some(b"S: slept badly")), (id(2), Some(b"S: knee pain"))], RecordKind::Note))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.sync().await, 2);
    assert_eq!(app.notes[&id(1)], b"S: slept badly");
    // An edit, then a delta sync returns only what changed.
    assert_eq!(
        app.save(app.prepare(&[(id(1), Some(b"S: slept better"))], RecordKind::Note)).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.sync().await, 1);
    assert_eq!(app.notes[&id(1)], b"S: slept better");
    // A reloaded page knows its high-water mark but holds no records: `all` brings every one,
    // with only the saves since its mark.
    let url = format!("/api/vaults/{}/sync?since={}&all=true", app.vault, app.hw.counter);
    let res = s.call(Call::get(&url).session(&token)).await;
    let reload = SyncResponse::decode(&res.body).unwrap();
    assert_eq!((reload.updates.len(), reload.records.len()), (0, 2));
    verify(reload.head, &app.keys, Some(&app.hw), &reload.updates).unwrap();
    // Every version stays readable, immutable.
    let v1 = s
        .call(
            Call::get(&format!("/api/vaults/{}/records/{}?version=1", app.vault, hex::encode([1u8; 16])))
                .session(&token),
        )
        .await;
    assert_eq!(envelope::open(&app.keys, &v1.body).unwrap().1, b"S: slept badly");
    let current = s
        .call(Call::get(&format!("/api/vaults/{}/records/{}", app.vault, hex::encode([1u8; 16]))).session(&token))
        .await;
    assert_eq!(envelope::open(&app.keys, &current.body).unwrap().1, b"S: slept better");
    // Delete writes a tombstone: the record is gone from the listing, not its history.
    assert_eq!(app.save(app.prepare(&[(id(2), None)], RecordKind::Note)).await, StatusCode::NO_CONTENT);
    app.sync().await;
    assert!(!app.notes.contains_key(&id(2)));
    let gone = s
        .call(Call::get(&format!("/api/vaults/{}/records/{}", app.vault, hex::encode([2u8; 16]))).session(&token))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let head = s.call(Call::get(&format!("/api/vaults/{}/head", app.vault)).session(&token)).await;
    assert_eq!(verify(&head.body, &app.keys, Some(&app.hw), &[]).unwrap().manifest().counter, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conflicting_saves_one_wins_none_lost() {
    // Leaked so the concurrent requests can be spawned as tasks of their own.
    let s: &'static TestServer = Box::leak(Box::new(TestServer::new()));
    let token = s.practice("P", "anna").await;
    let mut app = App::new(s, &token, keys(2).0, "notes").await;
    // Eight tabs prepare a save from the same head; exactly one may land.
    let bodies: Vec<Vec<u8>> =
        (0..8u8).map(|i| app.prepare(&[(id(10 + i), Some(b"concurrent"))], RecordKind::Note)).collect();
    let calls = bodies
        .into_iter()
        .map(|b| s.call(Call::post(&format!("/api/vaults/{}/saves", app.vault)).session(&token).cbor(b)));
    let calls: Vec<_> = calls.collect();
    let statuses: Vec<StatusCode> = futures_join(calls.into_iter()).await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::NO_CONTENT).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 7, "{statuses:?}");
    assert_eq!(app.sync().await, 1);
    // The losers sync and save again: nothing is lost.
    for i in 0..8u8 {
        if app.notes.contains_key(&id(10 + i)) {
            continue;
        }
        assert_eq!(
            app.save(app.prepare(&[(id(10 + i), Some(b"concurrent"))], RecordKind::Note)).await,
            StatusCode::NO_CONTENT
        );
        app.sync().await;
    }
    assert_eq!(app.notes.len(), 8);
    let _ = std::fs::remove_dir_all(s.dir.path());
}

async fn futures_join<F: std::future::Future<Output = server::Res> + Send + 'static>(
    calls: impl Iterator<Item = F>,
) -> Vec<StatusCode> {
    let tasks: Vec<_> = calls.map(|f| tokio::spawn(f)).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().status);
    }
    out
}

#[tokio::test]
async fn refused_saves_change_nothing() {
    let s = TestServer::new();
    let anna = s.practice("P", "anna").await;
    let bram = s.member("P", "bram", &[kluis_server::accounts::model::Role::Practitioner]).await;
    let mut a = App::new(&s, &anna, keys(3).0, "notes").await;
    let b = App::new(&s, &bram, keys(4).0, "notes").await;
    let genesis_head = a.head.clone();
    assert_eq!(a.save(a.prepare(&[(id(1), Some(b"first"))], RecordKind::Note)).await, StatusCode::NO_CONTENT);
    a.sync().await;
    let before = s.state.notes.head(&a.keys.id).await.unwrap();
    let current = std::mem::replace(&mut a.head, genesis_head);
    let stale = a.prepare(&[(id(2), Some(b"stale"))], RecordKind::Note);
    a.head = current;
    // A save prepared from an older head: 409.
    assert_eq!(a.save(stale).await, StatusCode::CONFLICT);
    // Bram's update posted to Anna's vault URL is "not found"; Anna posting Bram's update to her
    // own vault URL is refused as naming another vault.
    let bram_body = b.prepare(&[(id(3), Some(b"bram"))], RecordKind::Note);
    let res =
        s.call(Call::post(&format!("/api/vaults/{}/saves", a.vault)).session(&bram).cbor(bram_body.clone())).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(a.save(bram_body).await, StatusCode::BAD_REQUEST);
    // Damaged bodies: truncated, an envelope swapped for another, trailing bytes.
    let good = a.prepare(&[(id(4), Some(b"good"))], RecordKind::Note);
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(a.save(good[..good.len() - 1].to_vec()).await, StatusCode::BAD_REQUEST);
    assert_eq!(a.save(trailing).await, StatusCode::BAD_REQUEST);
    let other = a.prepare(&[(id(4), Some(b"evil"))], RecordKind::Note);
    let (g, o) = (SaveRequest::decode(&good).unwrap(), SaveRequest::decode(&other).unwrap());
    let mixed = SaveRequest { update: g.update, envelopes: o.envelopes.clone() }.encode();
    assert_eq!(a.save(mixed).await, StatusCode::BAD_REQUEST);
    // A record kind of the other vault cannot be saved here either (kluis-core binds kinds to
    // vaults; the server only checks the hash, the client refuses it on reading).
    assert_eq!(s.state.notes.head(&a.keys.id).await.unwrap(), before, "nothing changed");
    assert_eq!(a.save(good).await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn identities_live_in_their_own_store() {
    let s = TestServer::new();
    let token = s.practice("P", "anna").await;
    let (notes, identities) = keys(5);
    let mut n = App::new(&s, &token, notes, "notes").await;
    let mut c = App::new(&s, &token, identities, "identities").await;
    assert_eq!(
        c.save(c.prepare(&[(id(1), Some(b"Jan Jansen, 06-12345678"))], RecordKind::Identity)).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(n.save(n.prepare(&[(id(1), Some(b"S: headache"))], RecordKind::Note)).await, StatusCode::NO_CONTENT);
    assert_eq!(c.sync().await, 1);
    assert_eq!(n.sync().await, 1);
    assert!(
        s.state.identities.owner(&c.keys.id).unwrap().is_some() && s.state.notes.owner(&c.keys.id).unwrap().is_none()
    );
    assert!(
        s.state.notes.owner(&n.keys.id).unwrap().is_some() && s.state.identities.owner(&n.keys.id).unwrap().is_none()
    );
    // One vault of each kind per user.
    let again = s
        .call(Call::post("/api/vaults/identities").session(&token).cbor(Manifest::genesis(&keys(6).1, 1).encode()))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let me = s.call(Call::get("/api/me").session(&token)).await.json();
    assert_eq!(me["vaults"]["identities"], c.vault);
    assert_eq!(me["vaults"]["notes"], n.vault);
}

#[tokio::test]
async fn the_key_file_is_registered_once() {
    let s = TestServer::new();
    let token = s.practice("P", "anna").await;
    let key = |seed: u8| {
        let f = kluis_core::UnlockedKeyFile::new(VaultSecret::from_bytes([seed; 32]), "k", 0, None).unwrap();
        serde_json::json!({"public_key": f.info().public_key_text().unwrap()})
    };
    let register = |body: serde_json::Value| Call::post("/api/vault-key").session(&token).json(body);
    assert_eq!(s.call(register(key(1))).await.status, StatusCode::CREATED);
    assert_eq!(s.call(register(key(1))).await.status, StatusCode::OK);
    assert_eq!(s.call(register(key(2))).await.status, StatusCode::CONFLICT);
    let bg = kluis_core::keyfile::break_glass_text(
        &kluis_core::UnlockedKeyFile::new(VaultSecret::from_bytes([3; 32]), "k", 0, None).unwrap().info().public,
    )
    .unwrap();
    assert_eq!(s.call(register(serde_json::json!({"public_key": bg}))).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.call(register(serde_json::json!({"public_key": "kluispub1nonsense"}))).await.status,
        StatusCode::BAD_REQUEST
    );
    let me = s.call(Call::get("/api/me").session(&token)).await.json();
    assert_eq!(me["public_key"], key(1)["public_key"]);
}
